import KafkaClient

/// The input position a changelog record belongs to: for each input topic of
/// the task, the last input offset covered by the commit that wrote it.
///
/// A restore applies a changelog record only if its commit completed, i.e.
/// every offset in its tag is below the task's committed input offset. Records
/// written by a commit that crashed before its offsets were committed are
/// skipped, so a replay of the same input does not count twice.
public struct CommitTag: Sendable, Hashable, CustomStringConvertible {
    public var offsets: [String: Int64]

    public init(_ offsets: [String: Int64]) { self.offsets = offsets }

    /// `topic=offset` pairs joined by `,` (topics never contain `=` or `,`).
    public var description: String {
        offsets.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    public init?(parsing text: String) {
        var out: [String: Int64] = [:]
        for pair in text.split(separator: ",") {
            guard let eq = pair.lastIndex(of: "="), let o = Int64(pair[pair.index(after: eq)...]) else { return nil }
            out[String(pair[..<eq])] = o
        }
        offsets = out
    }

    /// Whether the commit that wrote this tag completed, given committed offsets (next offset to read) per topic.
    public func isCommitted(by committed: [String: Int64]) -> Bool {
        for (topic, offset) in offsets {
            guard let c = committed[topic], c > offset else { return false }
        }
        return true
    }
}

/// Encoding of state-store records on changelog topics: key = store key,
/// value = the JSON value (a tombstone — no value — for a deleted key),
/// headers `se-tag` (the `CommitTag`) and `se-exp` (the TTL's event time).
public enum ChangelogCodec {
    public static let tagHeader = "se-tag"
    public static let expiresHeader = "se-exp"

    public static func record(topic: String, partition: Int32, key: String, entry: StoreEntry?, tag: CommitTag) -> ProducerRecord {
        var headers = [KafkaHeader(tagHeader, tag.description)]
        if let exp = entry?.expiresAt { headers.append(KafkaHeader(expiresHeader, String(exp))) }
        return ProducerRecord(
            topic: topic, partition: partition, key: Array(key.utf8), value: entry.map { $0.value.serialized() },
            headers: headers)
    }

    /// Decodes a changelog record: the key, the entry (`nil` for a tombstone) and the tag.
    public static func decode(_ m: KafkaMessage) throws -> (key: String, entry: StoreEntry?, tag: CommitTag?) {
        let key = String(decoding: m.key ?? [], as: UTF8.self)
        let tag = m.header(tagHeader)?.stringValue.flatMap(CommitTag.init(parsing:))
        guard let value = m.value else { return (key, nil, tag) }
        let json = try JSONValue.parse(value)
        let exp = m.header(expiresHeader)?.stringValue.flatMap { Int64($0) }
        return (key, StoreEntry(value: json, expiresAt: exp), tag)
    }

    /// Decodes the entry of a record that has a value, from the value's bytes and the
    /// `se-exp` header's bytes (as ``decode(_:)`` does, without a ``KafkaMessage`` and without
    /// a JSON tree: the text goes straight to the compact form). `scratch` and `transcoder`
    /// are kept by the caller between calls.
    public static func decodeEntry(value: UnsafeRawBufferPointer, expires: UnsafeRawBufferPointer?, scratch: inout [UInt8], transcoder: inout JSONCompact.Transcoder) throws -> StoreEntry {
        scratch.removeAll(keepingCapacity: true)
        try transcoder.transcode(json: value, into: &scratch)
        let exp = expires.flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
        return scratch.withUnsafeBytes { StoreEntry(compactValue: $0, expiresAt: exp) }
    }
}
