import KafkaClient

/// A task's stream time in the metadata of its committed offsets (`st=<epoch ms>`).
enum StreamTimeMetadata {
    static func format(_ streamTime: Int64) -> String { "st=\(streamTime)" }
    static func parse(_ metadata: String) -> Int64? {
        guard metadata.hasPrefix("st=") else { return nil }
        return Int64(metadata.dropFirst(3))
    }
}

/// Headers the engine puts on the records it writes to repartition and output topics.
enum Headers {
    static let eventTime = "se-ts"
    /// The input partition a record came from, as `topic/partition`.
    static let upstreamPartition = "se-up"
    static let upstreamSequence = "se-seq"
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
