import KafkaClient

/// A task's stream time in the metadata of its committed offsets (`st=<epoch ms>`).
enum StreamTimeMetadata {
    /// `st=<stream time>`, and for a merged repartition input `;v=<upstream>:<next>,…`: per
    /// upstream input partition the position after the last record the task took (see
    /// `StreamTask.upstreamPosition`).
    static func format(_ streamTime: Int64?, mergePositions: [String: Int64]? = nil) -> String? {
        let positions = mergePositions.map { "v=" + $0.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") }
        let parts = [streamTime.map { "st=\($0)" }, positions].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ";")
    }
    private static func field(_ name: String, _ metadata: String) -> Int64? {
        for part in metadata.split(separator: ";") where part.hasPrefix(name + "=") { return Int64(part.dropFirst(name.count + 1)) }
        return nil
    }
    static func parse(_ metadata: String) -> Int64? { field("st", metadata) }
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
struct InputPosition: Sendable, Equatable {
    let key: String
    let value: Int64
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
    }

    /// Metadata listing every reader of a partition (the group offset is the smallest).
    static func format(_ readers: [TaskID: Reader]) -> String {
        readers.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.offset)@\($0.value.streamTime.map(String.init) ?? "")" }.joined(separator: ";")
    }

    /// The readers listed in metadata (none in metadata of another form).
    static func readers(_ metadata: String?) -> [String: Reader] {
        var out: [String: Reader] = [:]
        for part in (metadata ?? "").split(separator: ";") {
            guard let eq = part.lastIndex(of: "="), let at = part[eq...].firstIndex(of: "@"),
                  let offset = Int64(part[part.index(after: eq)..<at]) else { continue }
            out[String(part[..<eq])] = Reader(offset: offset, streamTime: Int64(part[part.index(after: at)...]))
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
/// reads its partition when several do (`nil`: the task parses it itself).
struct InputMessage: Sendable {
    let message: KafkaMessage
    let parsedValue: Result<JSONValue, JSONParseError>?
}
