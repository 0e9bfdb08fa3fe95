import CKafkaMockLimits
import CRdKafka
import Foundation
import Logging
import Synchronization

/// A Kafka cluster inside this process: librdkafka's mock cluster
/// (`rdkafka_mock.h`), N brokers listening on loopback and speaking the real
/// Kafka protocol (consumer groups, idempotence, transactions). Any librdkafka
/// client — in this process or another (kcat, another `stream-engine`) —
/// connects through `bootstrapServers`.
///
/// Known limits of librdkafka 2.0.2's mock, and what this type does about them:
/// - Each partition keeps only the last 5 MiB or 100,000 message sets and drops
///   older ones silently. `createTopics` lifts both limits for the topics it
///   creates (see `kafka_mock_lift_partition_limits`); topics auto-created by a
///   Metadata request keep them, and `truncatedPartitions(topic:)` detects a
///   partition that lost data (its low watermark moved above 0 — the mock
///   deletes nothing otherwise).
/// - Transactions are accepted (init, begin, commit, abort, fencing) but the
///   mock neither filters aborted records for `read_committed` consumers (its
///   Fetch answers carry no aborted-transaction list) nor stores the offsets of
///   `sendOffsetsToTransaction` (TxnOffsetCommit is answered and dropped). See
///   `supportsTransactionalIsolation`.
/// - No controller and no CreateTopics/DescribeConfigs: topics are made with
///   `rd_kafka_mock_topic_create`; configs such as `cleanup.policy` are
///   accepted and ignored (the mock does not compact).
/// - Its group coordinator completes a JoinGroup round only on a timer: 3 s
///   after the first member joins an empty group, `session.timeout.ms` − 1 s
///   after later rebalances, however soon every member rejoined. Unless
///   `groupInitialRebalanceDelayMs` is nil, a timer of this type's own on the
///   mock thread completes a round as soon as every member has rejoined (after
///   that delay for an empty group's first round), as a real coordinator with
///   `group.initial.rebalance.delay.ms` does (see `kafka_mock_groups.h`).
public final class EmbeddedKafkaCluster: TopicAdministrator {
    private let host: KafkaHandle
    private let cluster: KafkaPointer
    private let coordinator: GroupCoordinatorTuning?
    private let metadata: KafkaAdmin
    private let logger: Logger
    private let liftedTopics = Mutex<Set<String>>([])
    /// `host:port,...` of the brokers.
    public let bootstrapServers: String
    /// Number of brokers.
    public let brokerCount: Int

    /// Starts `brokers` mock brokers on loopback.
    ///
    /// - Parameter groupInitialRebalanceDelayMs: the brokers' counterpart of Kafka's
    ///   `group.initial.rebalance.delay.ms`, 0 to 3,000: how long an empty group's first
    ///   JoinGroup round waits for more members (later rounds end as soon as every member
    ///   rejoined). 0 by default, as in Kafka's own development `server.properties`; nil
    ///   leaves the mock's coordinator as librdkafka ships it (3 s, and
    ///   `session.timeout.ms` − 1 s for every later round).
    public init(
        brokers: Int = 3, groupInitialRebalanceDelayMs: Int? = 0, logger: Logger = Logger(label: "embedded-kafka")
    ) throws(KafkaError) {
        if let delay = groupInitialRebalanceDelayMs, !(0...3000).contains(delay) {
            throw KafkaError.client("group.initial.rebalance.delay.ms must be 0 to 3000 on the embedded cluster, not \(delay)")
        }
        self.logger = logger
        self.brokerCount = brokers
        // The mock cluster is owned by an rd_kafka_t of its own that nothing else uses.
        self.host = try KafkaHandle(kind: RD_KAFKA_PRODUCER, config: ["log_level": "4"], logger: logger)  // it has no brokers to talk to: keep its "no bootstrap.servers" notice quiet
        guard let mc = rd_kafka_mock_cluster_new(host.pointer, Int32(brokers)) else {
            throw KafkaError.client("rd_kafka_mock_cluster_new failed")
        }
        self.cluster = KafkaPointer(pointer: mc)
        let bootstraps = rd_kafka_mock_cluster_bootstraps(mc)!
        self.bootstrapServers = String(cString: bootstraps)
        if let delay = groupInitialRebalanceDelayMs {
            var rc: Int32 = 0
            if let c = kafka_mock_group_coordinator_install(UnsafeMutableRawPointer(mc), bootstraps, Int32(delay), 5, &rc) {
                self.coordinator = GroupCoordinatorTuning(pointer: c)
            } else {
                self.coordinator = nil
                logger.warning("""
                    could not tune the embedded cluster's group coordinator (code \(rc), librdkafka \(librdkafkaVersion)): \
                    a group's first join waits 3 s and a rebalance session.timeout.ms − 1 s, as the mock ships
                    """)
            }
        } else {
            self.coordinator = nil
        }
        self.metadata = try KafkaAdmin(config: ["bootstrap.servers": bootstrapServers], logger: logger, timeout: .seconds(10))
        logger.debug("embedded Kafka cluster (librdkafka \(librdkafkaVersion) mock) at \(bootstrapServers)")
    }

    private let alive = RunFlag()

    deinit {
        // Never block here: the brokers stop on the host handle's own thread.
        guard alive.clear() else { return }
        let cluster = self.cluster, host = self.host, coordinator = self.coordinator
        host.executor.execute {
            rd_kafka_mock_cluster_destroy(cluster.pointer)
            coordinator?.free()
            withExtendedLifetime(host) {}
        }
    }

    /// Stops the brokers (waiting for them, on the host handle's executor).
    public func close() async {
        guard alive.clear() else { return }
        // Its own client first: left alive, it would try the stopped brokers again and again.
        await metadata.close()
        let cluster = self.cluster, coordinator = self.coordinator
        _ = try? await host.blocking {
            rd_kafka_mock_cluster_destroy(cluster.pointer)
            coordinator?.free()  // its timer was in the cluster's list: only now unused
        }
    }

    /// JoinGroup rounds the coordinator tuning completed before the mock's own timer
    /// would have (nil when it is not installed or stopped on a layout check).
    public var earlyCompletedJoinRounds: Int64? {
        guard let coordinator, kafka_mock_group_coordinator_disabled(coordinator.pointer) == 0 else { return nil }
        return kafka_mock_group_coordinator_completed_rounds(coordinator.pointer)
    }

    /// Whether the brokers hide aborted transactions and store transactional
    /// offsets. False for librdkafka 2.0.2's mock: an engine that needs
    /// exactly-once results on it must not depend on either.
    public static let supportsTransactionalIsolation = false

    /// Client configuration pointing at this cluster.
    public var clientConfig: [String: String] { ["bootstrap.servers": bootstrapServers] }

    /// Creates a topic now (synchronously on the mock thread) and lifts the
    /// mock's retention limits for it. An existing topic is left as it is.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let rf = Int32(min(max(replicationFactor, 1), brokerCount))
        let err = rd_kafka_mock_topic_create(cluster.pointer, name, Int32(partitions), rf)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
            throw KafkaError(err, "create topic \(name) on the embedded cluster")
        }
        liftLimits(name)
    }

    private func liftLimits(_ topic: String) {
        let alreadyDone = liftedTopics.withLock { !$0.insert(topic).inserted }
        if alreadyDone { return }
        let maxBytes = Int(1) << 46
        let rc = kafka_mock_lift_partition_limits(UnsafeMutableRawPointer(cluster.pointer), topic, maxBytes, maxBytes)
        if rc < 0 {
            liftedTopics.withLock { _ = $0.remove(topic) }
            logger.warning("""
                could not lift the embedded cluster's 5 MiB/partition retention for \(topic) (code \(rc), \
                librdkafka \(librdkafkaVersion)); data beyond it is dropped and detected as truncation
                """)
        }
    }

    /// The bytes of the record batches one partition of `topic` holds, as produced
    /// (compressed when the producer compressed them); `nil` when the topic or partition
    /// is unknown or the mock's layout cannot be read (see `kafka_mock_limits.h`). Read
    /// it when nothing is being produced to the partition (after a flush).
    public func logBytes(_ topic: String, partition: Int32) -> Int64? {
        let n = kafka_mock_partition_log_bytes(UnsafeMutableRawPointer(cluster.pointer), topic, partition)
        return n >= 0 ? n : nil
    }

    /// Whether the retention limits of `topic` were lifted.
    public func hasLiftedLimits(_ topic: String) -> Bool { liftedTopics.withLock { $0.contains(topic) } }

    public func createTopics(_ topics: [NewTopic]) async throws {
        for t in topics { try createTopic(t.name, partitions: t.partitions, replicationFactor: t.replicationFactor) }
    }

    public func partitionCount(topic: String) async throws -> Int? {
        try await metadata.partitionCount(topic: topic)
    }

    public func watermarks(_ tp: TopicPartition) async throws -> Watermarks {
        try await metadata.watermarks(tp)
    }

    public func topicPartitionCounts() async throws -> [String: Int] {
        try await metadata.topicPartitionCounts()
    }

    /// Partitions of `topic` whose oldest records the mock dropped (low watermark > 0), with that low watermark.
    public func truncatedPartitions(topic: String) async throws -> [TopicPartition: Int64] {
        guard let n = try await partitionCount(topic: topic) else { return [:] }
        var out: [TopicPartition: Int64] = [:]
        for p in 0..<Int32(n) {
            let tp = TopicPartition(topic, p)
            let wm = try await watermarks(tp)
            if wm.low > 0 { out[tp] = wm.low }
        }
        return out
    }

    // MARK: Fault injection

    // No broker down/up here: librdkafka 2.0.2's mock re-binds a downed broker's port at once and
    // asserts (aborting the process) when the kernel refuses that bind. Outages are injected
    // per request below instead.

    /// Makes the next `count` requests of an API (e.g. 0 = Produce, 1 = Fetch) fail with `error`.
    public func pushRequestErrors(apiKey: Int16, error: Int32, count: Int) {
        let errs = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: error), count: count)
        errs.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster.pointer, apiKey, count, $0.baseAddress) }
    }
}

/// The coordinator tuning's context (`kafka_mock_groups.h`): written only on the mock
/// thread; its counters are atomics; freed once, after the cluster is destroyed.
private struct GroupCoordinatorTuning: @unchecked Sendable {
    let pointer: OpaquePointer
    func free() { kafka_mock_group_coordinator_free(pointer) }
}
