import KafkaClient
import Logging

/// A topic the engine uses, with the partition count and configs it needs.
public struct PlannedTopic: Sendable, Hashable, CustomStringConvertible {
    public enum Role: String, Sendable, Hashable {
        case input, changelog, dedupeChangelog = "dedupe changelog", repartition, output, deadLetter = "dead letters", globalTable = "global table"
    }
    public var name: String
    public var role: Role
    /// Required partition count; `nil` when it depends on an input topic not known yet.
    public var partitions: Int?
    /// The topic whose partition count it copies (`nil` for inputs and free-standing topics).
    public var partitionsFrom: String?
    public var configs: [String: String]
    /// Whether a different partition count breaks the engine (engine-owned, co-partitioned topics).
    public var strict: Bool { role == .changelog || role == .dedupeChangelog || role == .repartition }
    /// Whether `run` creates it (inputs are created only on an embedded cluster).
    public var engineCreated: Bool { role != .input }

    public var description: String {
        let n = partitions.map(String.init) ?? "?"
        let from = partitionsFrom.map { " as \($0)" } ?? ""
        let cfg = configs.isEmpty ? "" : " " + configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(name)  \(role.rawValue), \(n) partitions\(from)\(cfg)"
    }
}

/// Creates the topics a configuration needs and checks partition counts:
/// input topics (created only on the embedded cluster), repartition,
/// changelog and de-duplication changelog topics (compacted) with the
/// partition count of their source, output, global-table and dead-letter topics.
public struct TopicSetup: Sendable {
    let config: StreamConfig
    let plan: TopologyPlan
    let admin: any TopicAdministrator
    let embedded: Bool
    let logger: Logger

    public init(config: StreamConfig, admin: any TopicAdministrator, embedded: Bool, logger: Logger) {
        self.init(config: config, plan: TopologyPlan(config: config), admin: admin, embedded: embedded, logger: logger)
    }

    init(config: StreamConfig, plan: TopologyPlan, admin: any TopicAdministrator, embedded: Bool, logger: Logger) {
        self.config = config
        self.plan = plan
        self.admin = admin
        self.embedded = embedded
        self.logger = logger
    }

    /// Every topic the configuration uses, given the partition counts of the
    /// topics that exist (`inputCounts`; unknown inputs give `nil` counts).
    public static func plannedTopics(config: StreamConfig, inputCounts: [String: Int]) -> [PlannedTopic] {
        let plan = TopologyPlan(config: config)
        let compacted = ["cleanup.policy": "compact"]
        var out: [PlannedTopic] = []
        var seen = Set<String>()
        func add(_ t: PlannedTopic) { if seen.insert(t.name).inserted { out.append(t) } }
        for topic in config.inputTopics {
            add(PlannedTopic(name: topic, role: .input, partitions: inputCounts[topic], partitionsFrom: nil, configs: [:]))
        }
        var maxInput: Int?
        for topic in config.inputTopics { if let n = inputCounts[topic] { maxInput = max(maxInput ?? 0, n) } }
        for p in config.pipelines {
            let source = p.source.topics[0]
            let n = inputCounts[source]
            if p.rekeyIndex != nil {
                add(PlannedTopic(name: config.repartitionTopic(pipeline: p.name), role: .repartition, partitions: n, partitionsFrom: source, configs: [:]))
            }
            for step in p.steps {
                if case .to(let t, _) = step {
                    add(PlannedTopic(name: t.topic, role: config.globalTables.contains { $0.topic == t.topic } ? .globalTable : .output,
                                     partitions: n, partitionsFrom: source, configs: config.globalTables.contains { $0.topic == t.topic } ? compacted : [:]))
                }
            }
        }
        for (store, changelog, sub) in plan.stores {
            let source = sub.sourceTopics[0]
            // A sub-topology reading a repartition topic has its pipeline's source count.
            let n = inputCounts[source] ?? inputCounts[sub.pipeline.source.topics[0]]
            let from = sub.fromRepartition ? sub.pipeline.source.topics[0] : source
            add(PlannedTopic(name: changelog, role: store == sub.dedupeStore ? .dedupeChangelog : .changelog, partitions: n, partitionsFrom: from,
                             configs: compacted.merging(["compression.type": "zstd"]) { $1 }))
        }
        for g in config.globalTables {
            add(PlannedTopic(name: g.topic, role: .globalTable, partitions: maxInput ?? config.defaultPartitions, partitionsFrom: nil, configs: compacted))
        }
        // Always: a processor may dead-letter even in pipelines with on_error: fail.
        add(PlannedTopic(name: config.dlqTopic, role: .deadLetter, partitions: maxInput ?? config.defaultPartitions, partitionsFrom: nil, configs: [:]))
        return out
    }

    /// Creates what is missing, checks what exists; returns the partition
    /// count of every source topic (inputs and repartition topics).
    @discardableResult
    public func ensureTopics() async throws -> [String: Int] {
        var existing = try await admin.topicPartitionCounts()
        let missingInputs = config.inputTopics.filter { existing[$0] == nil }
        if !missingInputs.isEmpty {
            guard embedded else {
                throw StreamEngineError("input topic\(missingInputs.count > 1 ? "s" : "") \(missingInputs.joined(separator: ", ")) \(missingInputs.count > 1 ? "do" : "does") not exist on \(config.kafka["bootstrap.servers"] ?? "the cluster"): create \(missingInputs.count > 1 ? "them" : "it") (e.g. `stream-engine dev-broker --topic NAME:PARTITIONS`) before `run`")
            }
            try await admin.createTopics(missingInputs.map { NewTopic(name: $0, partitions: config.defaultPartitions) })
            for t in missingInputs { existing[t] = config.defaultPartitions }
        }
        for p in config.pipelines {
            let sourceCounts = Set(p.source.topics.map { existing[$0]! })
            guard sourceCounts.count == 1 else {
                let detail = p.source.topics.map { "\($0) has \(existing[$0]!)" }.joined(separator: ", ")
                throw StreamEngineError("pipeline \(p.name): its source topics must have the same partition count (co-partitioning), but \(detail)")
            }
        }
        let planned = Self.plannedTopics(config: config, inputCounts: existing)
        var toCreate: [NewTopic] = []
        for t in planned where t.engineCreated {
            guard let want = t.partitions else { continue }
            if let have = existing[t.name] {
                if have != want {
                    let why = "\(t.role.rawValue) topic \(t.name) exists with \(have) partitions, expected \(want)\(t.partitionsFrom.map { " (the partition count of \($0))" } ?? "")"
                    if t.strict {
                        throw StreamEngineError("""
                            \(why): a task's state and keys follow its partition, so it must match. Way out: delete the topic \
                            (kafka-topics.sh --delete --topic \(t.name); on a dev-broker, restart it) and `stream-engine run` recreates it, \
                            or use a new application.id
                            """)
                    }
                    logger.warning("\(why); using it as it is")
                }
                continue
            }
            toCreate.append(NewTopic(name: t.name, partitions: want, configs: t.configs))
        }
        if !toCreate.isEmpty {
            try await admin.createTopics(toCreate)
            for t in toCreate { logger.info("created topic \(t.name) with \(t.partitions) partitions\(t.configs.isEmpty ? "" : " (\(t.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))")") }
            // The created topics must show in the metadata with the right count before anyone uses them
            // (a Metadata or Produce request for a missing topic makes librdkafka's mock auto-create it).
            let after = try await admin.topicPartitionCounts()
            for t in toCreate {
                guard let n = after[t.name] else { throw StreamEngineError("topic \(t.name) was created but the cluster's metadata does not show it") }
                if n != t.partitions { throw StreamEngineError("topic \(t.name) was created with \(n) partitions instead of \(t.partitions)") }
                existing[t.name] = n
            }
        }
        var counts: [String: Int] = [:]
        for t in config.inputTopics { counts[t] = existing[t] }
        for t in plan.repartitionTopics { counts[t] = existing[t] }
        return counts
    }
}
