import KafkaClient

/// A task's stream time in the metadata of its committed offsets (`st=<epoch ms>`).
enum StreamTimeMetadata {
    /// `st=<stream time>`, and for a merged repartition input `;p=<position>`: how many
    /// records of the canonical merge order the task had processed (see `UpstreamMerge`).
    static func format(_ streamTime: Int64?, mergePosition: Int64? = nil) -> String? {
        let parts = [streamTime.map { "st=\($0)" }, mergePosition.map { "p=\($0)" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ";")
    }
    private static func field(_ name: String, _ metadata: String) -> Int64? {
        for part in metadata.split(separator: ";") where part.hasPrefix(name + "=") { return Int64(part.dropFirst(name.count + 1)) }
        return nil
    }
    static func parse(_ metadata: String) -> Int64? { field("st", metadata) }
    static func mergePosition(_ metadata: String) -> Int64? { field("p", metadata) }
}

/// The committed position of a task's inputs as its commit tags count them:
/// the next offset per topic, except for a merged repartition input, whose
/// position is the number of records taken in the canonical merge order
/// (commit metadata `p=`; the Kafka offset there is only where reading resumes).
enum CommittedPositions {
    static func of(sub: SubTopology, partition: Int32, committed: [TopicPartition: TopicPartitionOffset]) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for topic in sub.sourceTopics {
            guard let c = committed[TopicPartition(topic, partition)], c.offset >= 0 else { continue }
            if sub.fromRepartition {
                out[topic] = c.metadata.flatMap(StreamTimeMetadata.mergePosition) ?? 0
            } else {
                out[topic] = c.offset
            }
        }
        return out
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
