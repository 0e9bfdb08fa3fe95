import KafkaClient

/// A task's stream time in the metadata of its committed offsets (`st=<epoch ms>`).
enum StreamTimeMetadata {
    /// `st=<stream time>`, and for a merged repartition input `;v=<upstream>:<next>,…`: per
    /// upstream input partition the position after the last record the task took (see
    /// `StreamTask.upstreamPosition`).
    /// - Parameter pendingEnd: a combiner's declared epoch end (`pe=`, see `StreamTask.Combiner`).
    static func format(_ streamTime: Int64?, mergePositions: [String: Int64]? = nil, pendingEnd: Int64? = nil) -> String? {
        let positions = mergePositions.map { "v=" + $0.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") }
        let parts = [streamTime.map { "st=\($0)" }, positions, pendingEnd.map { "pe=\($0)" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ";")
    }
    private static func field(_ name: String, _ metadata: String) -> Int64? {
        for part in metadata.split(separator: ";") where part.hasPrefix(name + "=") { return Int64(part.dropFirst(name.count + 1)) }
        return nil
    }
    static func parse(_ metadata: String) -> Int64? { field("st", metadata) }
    /// A combiner's declared epoch end (`pe=`).
    static func pendingEnd(_ metadata: String) -> Int64? { field("pe", metadata) }
    /// The positions of a merged input (`v=`), per upstream input partition.
    static func mergePositions(_ metadata: String) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for part in metadata.split(separator: ";") where part.hasPrefix("v=") {
            for pair in part.dropFirst(2).split(separator: ",") {
                guard let colon = pair.lastIndex(of: ":"), let v = Int64(pair[pair.index(after: colon)...]) else { continue }
                out[String(pair[..<colon])] = v
            }
        }
        return out
    }
}

extension Int64 {
    /// nil for `Int64.min` (no stream time yet).
    var nonMin: Int64? { self == .min ? nil : self }
}

/// Where a record stands in a task's input, as commit tags, commit metadata and the
/// Redis fence count it: `key` is the input topic and `value` the offset; for a merged
/// repartition input, the upstream input partition and the record's position in its
/// upstream task's output (`StreamTask.upstreamPosition`).
struct InputPosition: Sendable, Hashable {
    let key: String
    var value: Int64
}

/// A task's record being processed: its origin and input position, kept in place from one record
/// to the next. A record of the same queue as the last one only changes the offsets: no retain or
/// release of the topic's name per record (an atomic operation each, when the name is not a small
/// string). `has…` false: none (`StreamTask.currentOrigin` / `currentPosition` are nil).
struct CurrentRecord {
    var origin = RecordOrigin(topic: "", partition: 0, offset: -1)
    var hasOrigin = false
    /// The queue whose topic `origin` names (-1: set otherwise).
    var originQueue = -1
    var position = InputPosition(key: "", value: -1)
    var hasPosition = false
    /// The queue whose topic `position` names (-1: set otherwise).
    var positionQueue = -1

    mutating func setOrigin(_ o: RecordOrigin?) {
        if let o { origin = o }
        hasOrigin = o != nil
        originQueue = -1
    }

    mutating func setPosition(_ p: InputPosition?) {
        if let p { position = p }
        hasPosition = p != nil
        positionQueue = -1
    }

    /// The origin of a record of queue `queue` (topic `topics[queue]`).
    @inline(__always)
    mutating func setOrigin(queue: Int, topics: [String], partition: Int32, offset: Int64) {
        if originQueue != queue {
            origin = RecordOrigin(topic: topics[queue], partition: partition, offset: offset)
            originQueue = queue
        }
        origin.partition = partition
        origin.offset = offset
        hasOrigin = true
    }

    /// The input position of a record of queue `queue` (key: the topic `topics[queue]`).
    @inline(__always)
    mutating func setPosition(queue: Int, topics: [String], offset: Int64) {
        if positionQueue != queue {
            position = InputPosition(key: topics[queue], value: offset)
            positionQueue = queue
        }
        position.value = offset
        hasPosition = true
    }
}

/// The committed position of a task's inputs as its commit tags count them.
///
/// Several tasks read one partition (one per sub-topology reading its topic),
/// each at its own pace; the group has one offset per partition, the smallest of
/// them (reading resumes there). The commit metadata lists every reader's own
/// position and stream time (`<task>=<offset>@<stream time>;…`): a task resumes
/// from its own position (it skips what it had processed) and its commit tags
/// are checked against it. For a merged repartition input (one reader) the
/// positions are per upstream input partition (`v=`, see `InputPosition`), and
/// the Kafka offset is where reading resumes.
enum CommittedPositions {
    /// One reader's entry in the metadata.
    struct Reader: Equatable, Sendable {
        var offset: Int64
        var streamTime: Int64?
        /// A combiner's declared epoch end, when its partials may not all have been sent
        /// (`>end` after the stream time; see `StreamTask.Combiner`).
        var pendingEnd: Int64? = nil
    }

    /// Metadata listing every reader of a partition (the group offset is the smallest).
    static func format(_ readers: [TaskID: Reader]) -> String {
        readers.sorted { $0.key < $1.key }.map {
            "\($0.key)=\($0.value.offset)@\($0.value.streamTime.map(String.init) ?? "")" + ($0.value.pendingEnd.map { ">\($0)" } ?? "")
        }.joined(separator: ";")
    }

    /// The readers listed in metadata (none in metadata of another form).
    static func readers(_ metadata: String?) -> [String: Reader] {
        var out: [String: Reader] = [:]
        for part in (metadata ?? "").split(separator: ";") {
            guard let eq = part.lastIndex(of: "="), let at = part[eq...].firstIndex(of: "@"),
                  let offset = Int64(part[part.index(after: eq)..<at]) else { continue }
            let rest = part[part.index(after: at)...]
            let gt = rest.firstIndex(of: ">")
            out[String(part[..<eq])] = Reader(
                offset: offset, streamTime: Int64(rest[..<(gt ?? rest.endIndex)]),
                pendingEnd: gt.flatMap { Int64(rest[rest.index(after: $0)...]) })
        }
        return out
    }

    static func of(sub: SubTopology, partition: Int32, committed: [TopicPartition: TopicPartitionOffset]) -> [String: Int64] {
        let task = TaskID(subTopology: sub.id, partition: partition).description
        var out: [String: Int64] = [:]
        for topic in sub.sourceTopics {
            guard let c = committed[TopicPartition(topic, partition)], c.offset >= 0 else { continue }
            if sub.fromRepartition {
                out.merge(c.metadata.map(StreamTimeMetadata.mergePositions) ?? [:]) { max($0, $1) }
            } else {
                out[topic] = readers(c.metadata)[task]?.offset ?? c.offset
            }
        }
        return out
    }

    /// A combiner task's declared epoch end at its last commit (see `StreamTask.Combiner`).
    static func pendingEnd(sub: SubTopology, partition: Int32, committed: [TopicPartition: TopicPartitionOffset]) -> Int64? {
        guard !sub.fromRepartition else { return nil }
        let task = TaskID(subTopology: sub.id, partition: partition).description
        return sub.sourceTopics.compactMap { readers(committed[TopicPartition($0, partition)]?.metadata)[task]?.pendingEnd }.first
    }

    /// The task's stream time at its last commit.
    static func streamTime(sub: SubTopology, partition: Int32, committed: [TopicPartition: TopicPartitionOffset]) -> Int64 {
        let task = TaskID(subTopology: sub.id, partition: partition).description
        return sub.sourceTopics.compactMap { topic -> Int64? in
            let metadata = committed[TopicPartition(topic, partition)]?.metadata
            if sub.fromRepartition { return metadata.flatMap(StreamTimeMetadata.parse) }
            return readers(metadata)[task]?.streamTime ?? metadata.flatMap(StreamTimeMetadata.parse)
        }.max() ?? .min
    }
}

/// Headers the engine puts on the records it writes to repartition and output topics.
enum Headers {
    static let eventTime = "se-ts"
    /// The input partition a record came from, as `topic/partition`.
    static let upstreamPartition = "se-up"
    static let upstreamSequence = "se-seq"
    /// The upstream task (its partition) that wrote a repartition record or marker.
    static let upstreamTask = "se-ut"
    /// The upstream task's stream time when it wrote it.
    static let upstreamStreamTime = "se-st"
    /// On a progress marker: "1" when the upstream task's input was at its end.
    static let upstreamIdle = "se-idle"
    /// On a repartition record of an earlier version: ``RepartitionStamp``, binary, in place of
    /// the five text headers `se-ts`, `se-up`, `se-seq`, `se-ut` and `se-st` (which output
    /// records keep, and which repartition records of still earlier versions carry). Today's
    /// repartition records carry the stamp in their value (``RepartitionStamp/framing(_:)``);
    /// all three forms are read.
    static let repartitionStamp = "se-pos"
}

/// What a repartition record carries about itself, at the start of its value (see `framing`): its event
/// time, the upstream task that wrote it and that task's stream time, and, for a record made
/// from an input record, its position in the upstream task's output (the input topic, offset
/// and output index: what `se-up`/`se-seq` say as text).
///
/// Layout, little-endian: a version byte (1), event time (8 bytes), upstream task (4), stream
/// time (8); with a position, then the input offset (8), the output index (4) and the input
/// topic's UTF-8 (the rest).
struct RepartitionStamp: Equatable, Sendable {
    struct Position: Equatable, Sendable {
        var topic: String
        var offset: Int64
        var index: Int64
    }

    var eventTime: Int64
    var upstreamTask: Int32
    var streamTime: Int64
    var position: Position?
    /// The record carries a combiner's partial state (`{"p": state}`) for the aggregate after
    /// the `rekey` to merge, not an input record (version byte 2; see `StreamTask.Combiner`).
    var partial = false

    static let version: UInt8 = 1
    /// The version byte of a stamp whose record carries a partial state.
    static let partialVersion: UInt8 = 2
    private static let fixedSize = 21
    private static let positionFixedSize = 12

    /// The stamp's bytes: the version byte, then little-endian event time (8 bytes), upstream
    /// task (4), stream time (8) and, for a record with a position, input offset (8), output
    /// index (4) and the input topic's UTF-8. Written in place with fixed-offset stores (one
    /// allocation; a byte-by-byte append cost about 800 instructions per repartition record).
    func encoded() -> [UInt8] {
        var topic = position?.topic ?? ""
        let size = encodedCount(topic: &topic)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            write(into: UnsafeMutableRawBufferPointer(buffer), topic: &topic)
            initialized = size
        }
    }

    /// The length of ``encoded()``; `topic` is the position's topic (made contiguous).
    private func encodedCount(topic: inout String) -> Int {
        Self.fixedSize + (position == nil ? 0 : Self.positionFixedSize + topic.utf8.count)
    }

    /// Writes ``encoded()`` at the start of `raw`, which holds at least its length.
    private func write(into raw: UnsafeMutableRawBufferPointer, topic: inout String) {
        raw[0] = partial ? Self.partialVersion : Self.version
        raw.storeBytes(of: UInt64(bitPattern: eventTime).littleEndian, toByteOffset: 1, as: UInt64.self)
        raw.storeBytes(of: UInt32(bitPattern: upstreamTask).littleEndian, toByteOffset: 9, as: UInt32.self)
        raw.storeBytes(of: UInt64(bitPattern: streamTime).littleEndian, toByteOffset: 13, as: UInt64.self)
        if let position {
            raw.storeBytes(of: UInt64(bitPattern: position.offset).littleEndian, toByteOffset: 21, as: UInt64.self)
            raw.storeBytes(of: UInt32(truncatingIfNeeded: position.index).littleEndian, toByteOffset: 29, as: UInt32.self)
            topic.withUTF8 { utf8 in
                if let base = utf8.baseAddress, utf8.count > 0 {
                    (raw.baseAddress! + Self.fixedSize + Self.positionFixedSize).copyMemory(from: base, byteCount: utf8.count)
                }
            }
        }
    }

    /// Reads a header value; `nil` when it is not one ``encoded()`` wrote.
    init?(_ bytes: [UInt8]) {
        guard let stamp = bytes.withUnsafeBytes({ RepartitionStamp(raw: $0) }) else { return nil }
        self = stamp
    }

    /// Reads the bytes of ``encoded()``; `nil` when they are not such bytes.
    init?(raw: UnsafeRawBufferPointer) {
        guard raw.count == Self.fixedSize || raw.count > Self.fixedSize + Self.positionFixedSize,
              raw[0] == Self.version || raw[0] == Self.partialVersion else { return nil }
        partial = raw[0] == Self.partialVersion
        // Fixed offsets inside the length checked above.
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        if raw.count > Self.fixedSize {
            let topic = String(decoding: raw[(Self.fixedSize + Self.positionFixedSize)...], as: UTF8.self)
            position = Position(topic: topic, offset: Int64(bitPattern: u64(21)), index: Int64(u32(29)))
        } else {
            position = nil
        }
        (eventTime, upstreamTask, streamTime) = (Int64(bitPattern: u64(1)), Int32(bitPattern: u32(9)), Int64(bitPattern: u64(13)))
    }

    /// A repartition record's value in the framed layout: the tag byte ``frameTag`` (0, which
    /// starts no JSON or UTF-8 text, so a reader tells it from a bare value), the stamp's
    /// length (2 bytes, little-endian), the stamp (``encoded()``), then `payload`. The stamp
    /// rides in the value rather than in a header: a header costs librdkafka a header list
    /// per record when produced and a parse of the header block when read (about 3,500
    /// instructions per record together; one allocation here instead).
    func framing(_ payload: [UInt8]) -> [UInt8] {
        payload.withUnsafeBytes { framing($0) }
    }

    /// The framed value: the tag, the stamp's length and the stamp, then `payload`'s bytes.
    func framing(_ payload: UnsafeRawBufferPointer) -> [UInt8] {
        var topic = position?.topic ?? ""
        let stampCount = encodedCount(topic: &topic)
        let size = 3 + stampCount + payload.count
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw[0] = Self.frameTag
            raw.storeBytes(of: UInt16(stampCount).littleEndian, toByteOffset: 1, as: UInt16.self)
            write(into: UnsafeMutableRawBufferPointer(rebasing: raw[3...]), topic: &topic)
            if let base = payload.baseAddress, payload.count > 0 { (raw.baseAddress! + 3 + stampCount).copyMemory(from: base, byteCount: payload.count) }
            initialized = size
        }
    }

    /// The first byte of a framed repartition value (see ``framing(_:)``).
    static let frameTag: UInt8 = 0

    /// Splits a framed repartition value into its stamp and payload; `nil` when the value is
    /// not framed (a repartition record of an earlier version: its stamp is in a header).
    static func unframe(_ raw: UnsafeRawBufferPointer) -> (stamp: RepartitionStamp, payload: [UInt8])? {
        guard let (stamp, start) = framed(raw) else { return nil }
        return (stamp, Array(raw[start...]))
    }

    /// ``unframe(_:)-(UnsafeRawBufferPointer)`` of a value held in an array.
    static func unframe(_ value: [UInt8]?) -> (stamp: RepartitionStamp, payload: [UInt8])? {
        value?.withUnsafeBytes { unframe($0) } ?? nil
    }

    /// ``unframe(_:)-(UnsafeRawBufferPointer)`` of a message's value, read in place.
    static func unframe(_ m: KafkaMessage) -> (stamp: RepartitionStamp, payload: [UInt8])? {
        m.withUnsafeValue { unframe($0) } ?? nil
    }

    /// A framed value's stamp and where its payload starts; `nil` when `raw` is not framed.
    private static func framed(_ raw: UnsafeRawBufferPointer) -> (RepartitionStamp, payloadStart: Int)? {
        guard raw.count >= 3, raw[0] == frameTag else { return nil }
        let stampCount = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 1, as: UInt16.self)))
        guard 3 + stampCount <= raw.count, let stamp = RepartitionStamp(raw: UnsafeRawBufferPointer(rebasing: raw[3..<(3 + stampCount)])) else { return nil }
        return (stamp, 3 + stampCount)
    }

    /// The stamp of a framed repartition value, without copying its payload out (for a reader
    /// that never reads the payload); `nil` when the value is not framed.
    static func ofFramed(_ value: [UInt8]?) -> RepartitionStamp? {
        value?.withUnsafeBytes { framed($0)?.0 }
    }

    /// ``ofFramed(_:)-(\[UInt8\]?)`` of a message's value, read in place.
    static func ofFramed(_ m: KafkaMessage) -> RepartitionStamp? {
        m.withUnsafeValue { framed($0)?.0 } ?? nil
    }

    init(eventTime: Int64, upstreamTask: Int32, streamTime: Int64, position: Position?, partial: Bool = false) {
        self.eventTime = eventTime
        self.upstreamTask = upstreamTask
        self.streamTime = streamTime
        self.position = position
        self.partial = partial
    }

    /// The stamp of a message of an earlier version, in its `se-pos` header, if it carries one.
    static func of(_ m: KafkaMessage) -> RepartitionStamp? {
        guard let bytes = m.header(Headers.repartitionStamp)?.value else { return nil }
        return RepartitionStamp(bytes)
    }
}

extension StreamTask.CompiledStep {
    /// Whether the step keeps only the latest result per key (filter, select, and
    /// Redis writes that replace the key's value), so that intermediate results may be skipped.
    var materialisesResults: Bool {
        switch self {
        case .filter, .select: return true
        case .redis(let sink):
            switch sink.spec.mode {
            case .hash, .sortedSetMembers, .value, .delete: return true
            case .sortedSetMember, .commands: return false
            }
        default: return false
        }
    }
}

/// An input message for a task, with its value parsed once for every task that
/// reads its partition when several do (`nil`: the task parses it itself), and
/// decoded once when those tasks' sources decode it alike (`SourceDecoding`).
struct InputMessage: Sendable {
    let message: KafkaMessage
    let parsedValue: SourceValue?
    /// The decoded record, when decoded. Read in place by the tasks that take it (`recordOffset`).
    let record: StreamRecord?
    /// `record != nil`, kept apart: comparing the optional with `nil` in place copied the record.
    let isDecoded: Bool
    /// Why it could not be decoded, when that was tried and failed.
    let failure: RecordError?

    /// A message not decoded yet, its value parsed (`parsedValue`) or not.
    @inline(__always)
    init(message: KafkaMessage, parsedValue: SourceValue?) {
        self.message = message
        self.parsedValue = parsedValue
        (record, isDecoded, failure) = (nil, false, nil)
    }

    /// A message decoded to `record`.
    @inline(__always)
    init(message: KafkaMessage, record: StreamRecord) {
        self.message = message
        parsedValue = nil
        (self.record, isDecoded, failure) = (record, true, nil)
    }

    /// A message that failed to decode.
    @inline(__always)
    init(message: KafkaMessage, failure: RecordError) {
        self.message = message
        parsedValue = nil
        (record, isDecoded, self.failure) = (nil, false, failure)
    }

    /// Where `record` lies in an `InputMessage`: a task reads it there, passed on `inout` (never
    /// written) so the steps read it without a copy (see `StreamTask.take`).
    static let recordOffset = MemoryLayout<InputMessage>.offset(of: \.record)!

    /// Decoded: the record or its error; `nil` if not decoded yet.
    var decoded: Result<StreamRecord, RecordError>? {
        if let record { return .success(record) }
        return failure.map { .failure($0) }
    }
}

/// One poll batch's messages of one partition, as the poll loop hands them to a task that reads it.
struct InputRun: Sendable {
    let inputs: [InputMessage]
    /// Parsed once for every task that reads the partition (`TaskManager.parseShared`).
    let shared: Bool
    /// Decoded there too: each one but those whose value did not parse (decoded, to their error, when taken).
    let decoded: Bool
}
