import KafkaClient
import Logging

/// Creates the topics a configuration needs and checks partition counts:
/// input topics (created only on the embedded cluster), repartition and
/// changelog topics (compacted) with the partition count of their source,
/// output topics and the dead-letter topic.
struct TopicSetup {
    let config: StreamConfig
    let plan: TopologyPlan
    let admin: any TopicAdministrator
    let embedded: Bool
    let logger: Logger

    /// Returns the partition count of every source topic (inputs and repartition topics).
    func ensureTopics() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for topic in config.inputTopics {
            if let n = try await admin.partitionCount(topic: topic) {
                counts[topic] = n
            } else if embedded {
                try await admin.createTopics([NewTopic(name: topic, partitions: config.defaultPartitions)])
                counts[topic] = config.defaultPartitions
            } else {
                throw StreamEngineError("input topic \(topic) does not exist on \(config.kafka["bootstrap.servers"] ?? "the cluster")")
            }
        }
        for g in config.globalTables where try await admin.partitionCount(topic: g.topic) == nil {
            try await admin.createTopics([NewTopic(name: g.topic, partitions: config.defaultPartitions, configs: ["cleanup.policy": "compact"])])
        }
        for p in config.pipelines {
            let sourceCounts = Set(p.source.topics.map { counts[$0]! })
            guard sourceCounts.count == 1, let n = sourceCounts.first else {
                let detail = p.source.topics.map { "\($0) has \(counts[$0]!)" }.joined(separator: ", ")
                throw StreamEngineError("pipeline \(p.name): its source topics must have the same partition count (co-partitioning), but \(detail)")
            }
            if p.rekeyIndex != nil {
                let topic = config.repartitionTopic(pipeline: p.name)
                try await ensure(topic, partitions: n, configs: [:])
                counts[topic] = n
            }
            for step in p.steps {
                if case .to(let t, _) = step, try await admin.partitionCount(topic: t.topic) == nil {
                    try await admin.createTopics([NewTopic(name: t.topic, partitions: n)])
                }
            }
        }
        for (store, changelog, sub) in plan.stores {
            let n = counts[sub.sourceTopics[0]]!
            _ = store
            try await ensure(changelog, partitions: n, configs: ["cleanup.policy": "compact", "compression.type": "zstd"])
        }
        if try await admin.partitionCount(topic: config.dlqTopic) == nil {
            try await admin.createTopics([NewTopic(name: config.dlqTopic, partitions: config.defaultPartitions)])
        }
        return counts
    }

    /// Creates an engine-owned topic, or checks an existing one has `partitions` partitions.
    private func ensure(_ topic: String, partitions: Int, configs: [String: String]) async throws {
        if let existing = try await admin.partitionCount(topic: topic) {
            guard existing == partitions else {
                throw StreamEngineError("topic \(topic) has \(existing) partitions but its source has \(partitions): engine-owned topics must match their source's partition count (delete it or fix the source)")
            }
            return
        }
        try await admin.createTopics([NewTopic(name: topic, partitions: partitions, configs: configs)])
        logger.debug("created \(topic) with \(partitions) partitions")
    }
}
