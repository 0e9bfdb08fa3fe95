import KafkaClient
import Logging

/// The Kafka client settings the engine applies by the kind of cluster it talks to, and how it tells the kinds apart.
extension StreamRuntime {
    /// The prefetch bound of consumers that read many partitions through librdkafka's
    /// one consumer queue (the standby replicas' reader; the benchmark's raw baseline),
    /// unless the file's `kafka:` section sets it.
    ///
    /// librdkafka's high-level consumer forwards every partition's fetch queue to one
    /// consumer queue, and checks `queued.min.messages` (default 100,000) and
    /// `queued.max.messages.kbytes` (default 64 MiB) against that whole queue. Once either
    /// is exceeded, no partition is fetched, and librdkafka 2.0.2 looks again only when
    /// its broker thread wakes, up to a second later (2.1.0 made that
    /// `fetch.queue.backoff.ms`). With a backlog of small records the count bound is
    /// reached first and often. Only the count bound is lifted; memory stays bounded by
    /// the 64 MiB byte bound. The group member does not need it: it reads each partition
    /// from a queue of its own (`KafkaConsumer(queuePerPartition:)`), where the
    /// bounds hold per partition.
    public static let sharedQueuePrefetchDefaults = ["queued.min.messages": "1000000"]

    /// The group member's prefetch bounds per partition (it reads each partition from a
    /// queue of its own), unless the file's `kafka:` section sets them: librdkafka's
    /// defaults (100,000 records, 64 MiB) would hold that much of every partition
    /// whose records the tasks are not taking. A partition drained from its bound is
    /// fetched again at once (`KafkaConsumer`'s fetch wake-up), so the bound need not
    /// hold a second of work.
    public static let partitionQueuePrefetchDefaults = ["queued.min.messages": "20000", "queued.max.messages.kbytes": "16384"]

    /// Consumer settings for librdkafka's mock cluster (embedded or a `dev-broker`), unless the
    /// file's `kafka:` section sets them. The mock holds a Fetch that finds no records for the
    /// whole `fetch.wait.max.ms` (librdkafka's default 500 ms), even when records arrive
    /// meanwhile; a real broker answers as soon as they do. A repartition topic read while its
    /// upstream tasks still write it, a global table, or a quiet input would otherwise see its
    /// records up to half a second late, again and again (1,000,000 records through a rekey
    /// ended with 2.3 s of such waits). 50 ms costs the mock's broker thread up to 20 empty
    /// fetches per second and broker while a consumer's input is idle (10 ms cost the
    /// two-stage job more CPU for small fetches and was no faster).
    public static let mockClusterConsumerDefaults = ["fetch.wait.max.ms": "50"]

    /// The file's `kafka:` settings for the engine's consumers, with `mockClusterConsumerDefaults`
    /// on a mock cluster where the file sets nothing else.
    static func consumerBase(_ config: StreamConfig, cluster: ClusterKind) -> [String: String] {
        var c = config.kafka
        if cluster.isMock { c.merge(mockClusterConsumerDefaults) { configured, _ in configured } }
        return c
    }

    /// The group member's configuration: `cooperative-sticky` by default
    /// (KIP-429: partitions that stay keep processing through a rebalance) —
    /// unless a task reads several topics: then `range`, the assignor that
    /// gives one member the same partition of co-partitioned topics (the sticky
    /// assignor places each topic's partitions independently, which would split
    /// a task between members). `group.instance.id` for static membership, and
    /// on librdkafka's mock short session timeouts (a dead member leaves the
    /// group only once its session timed out) and `mockClusterConsumerDefaults`. The prefetch bounds of
    /// `partitionQueuePrefetchDefaults` unless configured.
    static func consumerConfig(_ config: StreamConfig, plan: TopologyPlan, cluster: ClusterKind, instanceId: String?) throws -> [String: String] {
        var c = consumerBase(config, cluster: cluster)
        c["group.id"] = config.applicationId
        let multiTopic = plan.subTopologies.filter { $0.sourceTopics.count > 1 }
        if let configured = c["partition.assignment.strategy"] {
            if !multiTopic.isEmpty, configured.contains("cooperative-sticky") || configured.contains("roundrobin") {
                throw StreamEngineError("""
                    partition.assignment.strategy \(configured) cannot keep co-partitioned topics together, but \
                    \(multiTopic.map { "\($0.id) reads \($0.sourceTopics.joined(separator: " + "))" }.joined(separator: "; ")): \
                    remove the setting (the engine then uses range for such topologies)
                    """)
            }
        } else {
            c["partition.assignment.strategy"] = multiTopic.isEmpty ? "cooperative-sticky" : "range"
        }
        c["isolation.level"] = "read_committed"
        for (key, value) in Self.partitionQueuePrefetchDefaults where c[key] == nil { c[key] = value }
        // End-of-partition events tell the event-time scheduler that a partition's lag is 0.
        c["enable.partition.eof"] = "true"
        if let instanceId { c["group.instance.id"] = instanceId }
        if cluster.isMock {
            c["session.timeout.ms"] = c["session.timeout.ms"] ?? "3000"
            c["heartbeat.interval.ms"] = c["heartbeat.interval.ms"] ?? "250"
        }
        return c
    }
}

/// What kind of cluster the engine talks to, from the cluster id in the brokers' metadata.
struct ClusterKind: Sendable, CustomStringConvertible {
    /// The cluster id (`mockCluster…` for librdkafka's mock).
    var id: String?
    /// The mock runs in this process (`.embedded`).
    var embedded: Bool

    /// librdkafka's mock cluster: embedded, or a `stream-engine dev-broker` in another process.
    var isMock: Bool { embedded || KafkaAdmin.isMockCluster(id: id) }

    var description: String {
        let what = embedded ? "embedded mock cluster" : isMock ? "mock cluster in another process (dev-broker)" : "Kafka cluster"
        return "\(what), cluster id \(id ?? "unknown")"
    }

    static func detect(connection: KafkaConnection, config: StreamConfig, logger: Logger) async throws -> ClusterKind {
        switch connection {
        case .embedded: return ClusterKind(id: nil, embedded: true)
        case .external(let cfg):
            let admin = try KafkaAdmin(config: cfg.merging(config.kafka) { $1 }, logger: logger, timeout: .seconds(10))
            let id = try await admin.clusterId()
            if id == nil { logger.warning("the cluster at \(config.kafka["bootstrap.servers"] ?? "?") reported no cluster id within 10 s: treating it as a real Kafka cluster") }
            return ClusterKind(id: id, embedded: false)
        }
    }
}
