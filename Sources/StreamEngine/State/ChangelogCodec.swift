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
/// value = the entry's value in ``JSONCompact`` form, as the store holds it (a tombstone —
/// no value — for a deleted key), headers `se-tag` (the `CommitTag`) and `se-exp` (the TTL's
/// event time).
///
/// A value whose first byte is not a ``JSONCompact`` tag is read as JSON text: changelogs
/// written before the compact form (and records written by hand) still restore. The two
/// never overlap: JSON text starts with `{ [ " - t f n`, a digit or whitespace, all in
/// 0x09...0x7E; every compact value starts with a tag in 0x00...0x07 or 0x80...0xFF.
public enum ChangelogCodec {
    public static let tagHeader = "se-tag"
    public static let expiresHeader = "se-exp"

    public static func record(topic: String, partition: Int32, key: String, entry: StoreEntry?, tag: CommitTag) -> ProducerRecord {
        record(topic: topic, partition: partition, key: key, entry: entry, tagHeaders: tagHeaders(tag))
    }

    /// The headers of a commit's records without a TTL: made once per commit and shared by
    /// its records (``record(topic:partition:key:entry:tagHeaders:)``).
    public static func tagHeaders(_ tag: CommitTag) -> [KafkaHeader] { [KafkaHeader(tagHeader, tag.description)] }

    /// A changelog record with the commit's ``tagHeaders(_:)`` (and `se-exp` when the entry has a TTL).
    public static func record(topic: String, partition: Int32, key: String, entry: StoreEntry?, tagHeaders: [KafkaHeader]) -> ProducerRecord {
        var headers = tagHeaders
        if let exp = entry?.expiresAt { headers.append(KafkaHeader(expiresHeader, String(exp))) }
        return ProducerRecord(
            topic: topic, partition: partition, key: Array(key.utf8), value: entry.map { Array($0.compactValue) },
            headers: headers)
    }

    /// Whether a changelog value is in ``JSONCompact`` form (else JSON text).
    @inline(__always)
    static func isCompact(_ first: UInt8) -> Bool { first <= 0x08 || first >= 0x80 }

    /// Decodes a changelog record: the key, the entry (`nil` for a tombstone) and the tag.
    public static func decode(_ m: KafkaMessage) throws -> (key: String, entry: StoreEntry?, tag: CommitTag?) {
        let key = String(decoding: m.key ?? [], as: UTF8.self)
        let tag = m.header(tagHeader)?.stringValue.flatMap(CommitTag.init(parsing:))
        guard let value = m.value else { return (key, nil, tag) }
        let exp = m.header(expiresHeader)?.stringValue.flatMap { Int64($0) }
        var scratch: [UInt8] = []
        var transcoder = JSONCompact.Transcoder()
        let entry = try value.withUnsafeBytes { try decodeEntry(value: $0, expiresAt: exp, scratch: &scratch, transcoder: &transcoder) }
        return (key, entry, tag)
    }

    /// Decodes the entry of a record that has a value, from the value's bytes and the
    /// `se-exp` header's bytes (as ``decode(_:)`` does, without a ``KafkaMessage``): a compact
    /// value is checked and copied, JSON text goes straight to the compact form without a
    /// JSON tree. `scratch` and `transcoder` are kept by the caller between calls.
    public static func decodeEntry(value: UnsafeRawBufferPointer, expires: UnsafeRawBufferPointer?, scratch: inout [UInt8], transcoder: inout JSONCompact.Transcoder) throws -> StoreEntry {
        try decodeEntry(value: value, expiresAt: expires.flatMap { Int64(String(decoding: $0, as: UTF8.self)) }, scratch: &scratch, transcoder: &transcoder)
    }

    private static func decodeEntry(value: UnsafeRawBufferPointer, expiresAt exp: Int64?, scratch: inout [UInt8], transcoder: inout JSONCompact.Transcoder) throws -> StoreEntry {
        if let first = value.first, isCompact(first) {
            guard JSONCompact.validatedLength(of: value) == value.count else { throw ChangelogValueError() }
            return StoreEntry(compactValue: value, expiresAt: exp)
        }
        scratch.removeAll(keepingCapacity: true)
        try transcoder.transcode(json: value, into: &scratch)
        return scratch.withUnsafeBytes { StoreEntry(compactValue: $0, expiresAt: exp) }
    }
}

/// A changelog value in compact form that is truncated or malformed.
public struct ChangelogValueError: Error, CustomStringConvertible, Sendable {
    public var description: String { "a compact changelog value that is truncated or malformed" }
}
