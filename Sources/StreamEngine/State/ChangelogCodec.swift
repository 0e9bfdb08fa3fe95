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

/// Encoding of state-store records on changelog topics. The key is the store key. A record
/// written by this version frames its value:
///
/// | bytes | what |
/// |---|---|
/// | 1 | ``frameMarker`` (0x7F) |
/// | 2 | the length of the tag text, little-endian |
/// | n | the tag text: the ``CommitTag``'s description |
/// | rest | the entry as the store holds it: a flag byte (1: an expiry follows), the expiry's event time as 8 little-endian bytes, the value in ``JSONCompact`` form |
///
/// The tag rides in the value, not in a header, because librdkafka parses a record's whole
/// header block into a list, with allocations, on the first header read: on a restore that
/// cost more than the value's decode. A tombstone has no value, so it keeps the tag in the
/// header `se-tag` (and so does a tag text longer than 65,535 bytes).
///
/// Records of earlier versions still restore: a value that does not start with the marker is
/// the entry's ``JSONCompact`` value with the tag in `se-tag` and the expiry in `se-exp`
/// (headers), or JSON text (the first versions, and records written by hand). The three forms
/// never overlap: JSON text starts with `{ [ " - t f n`, a digit or whitespace (0x09...0x7E);
/// a compact value with a tag in 0x00...0x08 or 0x80...0xFF; a framed one with 0x7F, which is
/// neither.
public enum ChangelogCodec {
    public static let tagHeader = "se-tag"
    public static let expiresHeader = "se-exp"
    /// The first byte of a framed value.
    public static let frameMarker: UInt8 = 0x7F

    /// What a commit's changelog records share: made once per commit
    /// (``record(topic:partition:key:entry:framing:)``).
    public struct CommitFraming: Sendable {
        /// The marker, the tag's length and text: the start of every framed value.
        let prefix: [UInt8]?
        /// The tag as a header: for tombstones (and every record when the tag is too long to frame).
        let headers: [KafkaHeader]

        public init(_ tag: CommitTag) {
            let text = Array(tag.description.utf8)
            headers = [KafkaHeader(ChangelogCodec.tagHeader, text)]
            if text.count <= Int(UInt16.max) {
                prefix = [ChangelogCodec.frameMarker, UInt8(truncatingIfNeeded: text.count), UInt8(truncatingIfNeeded: text.count >> 8)] + text
            } else {
                prefix = nil
            }
        }
    }

    public static func record(topic: String, partition: Int32, key: String, entry: StoreEntry?, tag: CommitTag) -> ProducerRecord {
        record(topic: topic, partition: partition, key: key, entry: entry, framing: CommitFraming(tag))
    }

    /// A changelog record of a commit: the entry framed with the commit's tag, or a tombstone
    /// with the tag in its header.
    public static func record(topic: String, partition: Int32, key: String, entry: StoreEntry?, framing: CommitFraming) -> ProducerRecord {
        guard let entry else {
            return ProducerRecord(topic: topic, partition: partition, key: Array(key.utf8), value: nil, headers: framing.headers)
        }
        guard let prefix = framing.prefix else {
            var headers = framing.headers
            if let exp = entry.expiresAt { headers.append(KafkaHeader(expiresHeader, String(exp))) }
            return ProducerRecord(topic: topic, partition: partition, key: Array(key.utf8), value: Array(entry.compactValue), headers: headers)
        }
        var value: [UInt8] = []
        value.reserveCapacity(prefix.count + entry.storage.count)
        value += prefix
        value += entry.storage
        return ProducerRecord(topic: topic, partition: partition, key: Array(key.utf8), value: value)
    }

    /// Whether a changelog value is in ``JSONCompact`` form (else JSON text).
    @inline(__always)
    static func isCompact(_ first: UInt8) -> Bool { first <= 0x08 || first >= 0x80 }

    /// A framed value split: the tag text and the entry's storage bytes.
    public struct Frame {
        /// The tag text (``CommitTag/init(parsing:)`` reads it).
        public var tag: UnsafeRawBufferPointer
        /// The entry as the store holds it.
        var entry: UnsafeRawBufferPointer
    }

    /// The frame of a value that starts with ``frameMarker``; `nil` for a value of an earlier
    /// form. A framed value too short for its tag's length throws.
    @inline(__always)
    public static func frame(of value: UnsafeRawBufferPointer) throws(ChangelogValueError) -> Frame? {
        guard value.count > 0, value[0] == frameMarker else { return nil }
        guard value.count >= 3 else { throw ChangelogValueError() }
        let length = Int(value[1]) | Int(value[2]) << 8
        guard value.count > 3 + length else { throw ChangelogValueError() }
        return Frame(tag: UnsafeRawBufferPointer(rebasing: value[3..<(3 + length)]), entry: UnsafeRawBufferPointer(rebasing: value[(3 + length)...]))
    }

    /// The entry of a frame, its storage bytes checked and copied.
    public static func entry(of frame: Frame) throws(ChangelogValueError) -> StoreEntry {
        guard let entry = StoreEntry(checkedStorage: frame.entry) else { throw ChangelogValueError() }
        return entry
    }

    /// Decodes a changelog record: the key, the entry (`nil` for a tombstone) and the tag.
    public static func decode(_ m: KafkaMessage) throws -> (key: String, entry: StoreEntry?, tag: CommitTag?) {
        let key = String(decoding: m.key ?? [], as: UTF8.self)
        guard let value = m.value else {
            return (key, nil, m.header(tagHeader)?.stringValue.flatMap(CommitTag.init(parsing:)))
        }
        let framed = try value.withUnsafeBytes { value throws -> (StoreEntry, CommitTag?)? in
            guard let frame = try Self.frame(of: value) else { return nil }
            return (try Self.entry(of: frame), CommitTag(parsing: String(decoding: frame.tag, as: UTF8.self)))
        }
        if let (entry, tag) = framed { return (key, entry, tag) }
        let tag = m.header(tagHeader)?.stringValue.flatMap(CommitTag.init(parsing:))
        let exp = m.header(expiresHeader)?.stringValue.flatMap { Int64($0) }
        var scratch: [UInt8] = []
        var transcoder = JSONCompact.Transcoder()
        let entry = try value.withUnsafeBytes { try decodeEntry(value: $0, expiresAt: exp, scratch: &scratch, transcoder: &transcoder) }
        return (key, entry, tag)
    }

    /// Decodes the entry of a record of an earlier form (its value not framed), from the
    /// value's bytes and the `se-exp` header's bytes (as ``decode(_:)`` does, without a
    /// ``KafkaMessage``): a compact value is checked and copied, JSON text goes straight to the
    /// compact form without a JSON tree. `scratch` and `transcoder` are kept by the caller
    /// between calls.
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
