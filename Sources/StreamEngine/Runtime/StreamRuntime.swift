import Foundation
import KafkaClient
import Logging
import MariaDBClient
import RedisClient
import ServiceLifecycle
import Synchronization

/// How the engine reaches Kafka.
public enum KafkaConnection: Sendable {
    /// An embedded cluster in this process (librdkafka's mock cluster).
    case embedded(EmbeddedKafkaCluster)
    /// A real cluster: librdkafka configuration with `bootstrap.servers`.
    case external([String: String])
}

/// Options of `stream-engine run`.
public struct RuntimeOptions: Sendable {
    /// Directory of local store snapshots.
    public var stateDir: String
    /// Exit once every input partition is consumed up to the end offset it had
    /// at start, the repartition topics are drained and everything is committed.
    public var stopAtEnd: Bool
    /// Most records taken from the consumer per poll.
    public var pollBatchSize: Int
    /// Crash simulation for recovery tests; `nil` in normal use.
    public var faultInjection: FaultInjection?
    /// Static group membership (`group.instance.id`, KIP-345): a restarted
    /// instance with the same id takes its partitions back without a rebalance
    /// of the others (on a real cluster). Unique per instance.
    public var instanceId: String?
    /// Replaces `defaults.num.standby.replicas` of the configuration when set.
    public var standbyReplicas: Int?

    public init(stateDir: String = "state", stopAtEnd: Bool = false, pollBatchSize: Int = 5000, faultInjection: FaultInjection? = nil, instanceId: String? = nil,
                standbyReplicas: Int? = nil) {
        self.instanceId = instanceId
        self.standbyReplicas = standbyReplicas
        self.stateDir = stateDir
        self.stopAtEnd = stopAtEnd
        self.pollBatchSize = pollBatchSize
        self.faultInjection = faultInjection
    }
}

/// Makes the engine stop dead at a chosen point of a chosen commit, as a
/// crash would: nothing after that point happens (no offset commit, no
/// snapshot, no revoke work), so recovery can be tested deterministically.
public struct FaultInjection: Sendable {
    public enum Point: Sendable {
        /// Changelog and output records acknowledged, Redis not yet written.
        case afterKafkaFlush
        /// Redis written, input offsets not yet committed.
        case afterRedisWrite
        /// SQL sinks' transactions committed, input offsets not yet committed.
        case afterSQLWrite
        /// Input offsets committed; nothing sent after them yet (a combiner's partials).
        case afterOffsetCommit
    }
    /// The 1-based commit (counting commits that had work) at which to crash.
    public var commit: Int
    public var point: Point
    public init(commit: Int, point: Point) {
        self.commit = commit
        self.point = point
    }
}

/// The error a run ends with when `FaultInjection` fired.
public struct SimulatedCrash: Error, CustomStringConvertible, Sendable {
    public var description: String { "simulated crash" }
}

/// A problem that stops the engine, with a one-line reason.
public struct StreamEngineError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Counts of a run.
public struct RuntimeStats: Sendable {
    public var processed: Int
    public var deadLettered: Int
    public var commits: Int
}

/// The engine: runs every pipeline of a `StreamConfig` as tasks over Kafka
/// partitions until stopped (graceful shutdown, `stop()`) or, with
/// `stopAtEnd`, until the input is consumed.
///
/// Structured end to end: `run()` owns a task group with the global tables
/// (a `Service` following their topics) and the poll loop. The loop takes the
/// consumer's batches as an async sequence (the next poll only when a batch
/// is done: back-pressure), hands them to the task manager, acts on the
/// rebalance events the batch carries (the callback only records them) and
/// commits. Blocking librdkafka calls run on one dedicated executor per handle.
public final class StreamRuntime: Service {
    /// The producer's `queue.buffering.max.messages` unless configured: the records a process
    /// holds in flight before a sender suspends.
    public static let producerQueueRecords = 20_000

    public let config: StreamConfig
    public let plan: TopologyPlan
    private let registry: OperatorRegistry
    private let connection: KafkaConnection
    private let redisURL: RedisURL?
    private let options: RuntimeOptions
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let statsBox = Mutex(RuntimeStats(processed: 0, deadLettered: 0, commits: 0))
    /// Read-only view of this instance's tasks, assignment and stores (interactive queries).
    public let queries = RuntimeQueries()

    public init(config: StreamConfig, registry: OperatorRegistry, kafka: KafkaConnection, redisURL: RedisURL?, options: RuntimeOptions, logger: Logger) {
        var effective = config
        if case .embedded(let cluster) = kafka { effective.kafka["bootstrap.servers"] = cluster.bootstrapServers }
        self.config = effective
        self.plan = TopologyPlan(config: effective)
        self.registry = registry
        self.connection = kafka
        self.redisURL = redisURL
        self.options = options
        self.logger = logger
    }

    /// Asks the engine to stop: it finishes the current batch, commits, writes snapshots and returns.
    public func stop() { stopRequested.store(true, ordering: .releasing) }

    /// Counts so far (final after `run` returned).
    public var stats: RuntimeStats { statsBox.withLock { $0 } }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await runEngine()
            } onCancel: {
                self.stop()
            }
        } onGracefulShutdown: {
            self.logger.info("shutdown requested: finishing in-flight records, committing, writing snapshots")
            self.stop()
        }
    }

    private func makeAdmin(_ cluster: ClusterKind) throws -> any TopicAdministrator {
        switch connection {
        case .embedded(let embedded): return embedded
        case .external(let cfg):
            let merged = cfg.merging(config.kafka) { $1 }
            if cluster.isMock { return try MockClusterTopicRequester(config: merged, logger: logger) }
            return try KafkaAdmin(config: merged, logger: logger)
        }
    }

    private func runEngine() async throws {
        let cluster = try await ClusterKind.detect(connection: connection, config: config, logger: logger)
        let admin = try makeAdmin(cluster)
        let sourcePartitions = try await TopicSetup(config: config, plan: plan, admin: admin, embedded: isEmbedded, logger: logger).ensureTopics()
        var endTargets: [TopicPartition: Int64] = [:]
        if options.stopAtEnd {
            for (topic, n) in sourcePartitions where config.inputTopics.contains(topic) {
                for p in 0..<Int32(n) {
                    endTargets[TopicPartition(topic, p)] = try await admin.watermarks(TopicPartition(topic, p)).high
                }
            }
        }

        var producerConfig = config.kafka
        producerConfig["message.timeout.ms"] = producerConfig["message.timeout.ms"] ?? "0"  // never drop: an outage pauses progress
        producerConfig["acks"] = "all"
        // Records in flight (queued and unacknowledged): a sender suspends beyond this, so a
        // commit of many changed keys does not hold them all in memory at once (librdkafka's
        // default is 100,000 records).
        // zstd at its fastest level for changelog, repartition and output batches (librdkafka's
        // default is zstd's 3): the producer's thread shares the machine with the tasks.
        producerConfig["compression.level"] = producerConfig["compression.level"] ?? "1"
        producerConfig["queue.buffering.max.messages"] = producerConfig["queue.buffering.max.messages"] ?? String(Self.producerQueueRecords)
        // exactly_once: on a real cluster one Kafka transaction per commit (EOS v2: one
        // transactional producer per instance, fenced through the consumer group).
        // librdkafka 2.0.2's mock neither hides aborted records nor stores transactional
        // offsets, so on it (embedded or a dev-broker) the engine relies on its own mechanisms
        // alone: changelog records tagged with their commit's input offsets, de-duplicated
        // repartition records and the Redis fence (see README "Processing guarantees").
        let transactional = config.processingGuarantee == .exactlyOnce && !cluster.isMock
        if config.processingGuarantee == .exactlyOnce && cluster.isMock {
            logger.notice("""
                exactly_once on librdkafka's mock cluster (\(cluster)): it has no transactional isolation and drops \
                TxnOffsetCommit offsets, so Kafka transactions are not used; exactly-once results come from changelog \
                commit tags, de-duplicated repartition records and the Redis fence (README "Processing guarantees")
                """)
        }
        if transactional {
            producerConfig["transactional.id"] = producerConfig["transactional.id"] ?? "\(config.applicationId)-\(UUID().uuidString)"
        }
        let producer = try KafkaProducer(config: producerConfig, logger: logger)
        // Repartition records are read once, soon after they are written: their codec
        // (lz4 unless set) trades bytes for far less CPU on both sides than the changelogs' zstd.
        for topic in plan.repartitionTopics {
            try producer.configureTopic(topic, ["compression.type": config.repartitionCompression.rawValue])
        }
        // The partitions and leaders of every topic the tasks write, known before the first record:
        // otherwise the first commit's flush waits for a metadata refresh (0.8 s on a mock cluster).
        let written = TopicSetup.plannedTopics(config: config, inputCounts: sourcePartitions).filter { $0.role != .input }.map(\.name)
        for (topic, reason) in try await producer.prepare(topics: written).sorted(by: { $0.key < $1.key }) {
            logger.notice("the producer has no metadata of \(topic) yet (\(reason)): its first records wait for librdkafka's next metadata refresh")
        }
        if transactional {
            try await producer.initTransactions()
            try producer.beginTransaction()
        }
        let redis = try await connectRedis()
        let globals = GlobalTables(specs: config.globalTables, kafkaConfig: Self.consumerBase(config, cluster: cluster), logger: logger)

        var env = TaskEnvironment(config: config, registry: registry, producer: producer, globals: globals, logger: logger, stateDir: options.stateDir)
        env.combinesBeforeRepartition = true
        env.partitionCounts = sourcePartitions
        let sql = try await startSQLSinks()
        env.sqlKinds = try await sql?.prepare()
        let consumerConfig = try Self.consumerConfig(config, plan: plan, cluster: cluster, instanceId: options.instanceId)
        if consumerConfig["partition.assignment.strategy"] == "range" && config.kafka["partition.assignment.strategy"] == nil {
            let multi = plan.subTopologies.filter { $0.sourceTopics.count > 1 }.map { "\($0.id) (\($0.sourceTopics.joined(separator: " + ")))" }
            logger.notice("rebalancing is eager (range assignor): \(multi.joined(separator: ", ")) read several co-partitioned topics, which cooperative-sticky would split between members")
        }
        let consumer = try KafkaConsumer(config: consumerConfig, logger: logger, manualRebalance: true, queuePerPartition: true)
        var readerConfig = consumerConfig
        readerConfig["isolation.level"] = "read_uncommitted"
        readerConfig.removeValue(forKey: "group.instance.id")
        let offsetReader = try KafkaConsumer(config: readerConfig, logger: logger)
        let standbyCount = options.standbyReplicas ?? config.numStandbyReplicas
        let standbys = standbyCount > 0 && !plan.stores.isEmpty
            ? try StandbyReplicas(plan: plan, partitionCounts: sourcePartitions, consumerConfig: consumerConfig, stateDir: options.stateDir, logger: logger)
            : nil
        if standbys != nil {
            logger.info("standby replicas on: this instance keeps warm copies of every store partition it does not own (num.standby.replicas \(standbyCount))")
        }
        let manager = TaskManager(plan: plan, env: env, consumer: consumer, offsetReader: offsetReader, redis: redis, admin: admin, faultInjection: options.faultInjection,
            stopRequested: { [self] in stopRequested.load(ordering: .acquiring) }, transactional: transactional, sql: sql, queries: queries,
            standbys: standbys)
        queries.setRunning(true)
        defer { queries.setRunning(false) }
        let loop = PollLoop(
            consumer: consumer, manager: manager, producer: producer, plan: plan,
            commitInterval: .milliseconds(config.commitIntervalMs), batchSize: options.pollBatchSize,
            endTargets: options.stopAtEnd ? endTargets : nil, stopRequested: { [self] in stopRequested.load(ordering: .acquiring) },
            liveStats: { [self] s in statsBox.withLock { $0 = s } }, logger: logger)

        let outcome: Result<Void, any Error> = await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await globals.run() } catch { self.logger.error("global tables stopped: \(error)") }
            }
            if let standbys {
                group.addTask { await standbys.run() }
            }
            defer { group.cancelAll() }
            do {
                try await globals.waitUntilReady()
                try consumer.subscribe(plan.subscribedTopics)
                logger.info("\(config.applicationId): running \(config.pipelines.count) pipelines on \(plan.subscribedTopics.joined(separator: ", ")) (\(consumerConfig["partition.assignment.strategy"] ?? "?")\(options.instanceId.map { ", group.instance.id \($0)" } ?? ""))")
                try await loop.run()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        let processed = await manager.processedTotal
        let commits = await manager.commits
        let deadLettered = await manager.deadLetteredTotal
        statsBox.withLock { $0 = RuntimeStats(processed: processed, deadLettered: deadLettered, commits: commits) }
        await consumer.close()
        await offsetReader.close()
        await standbys?.close()
        await producer.close()
        await redis?.close()
        await sql?.close()
        try outcome.get()
    }

    /// The writer of the `sql` steps, if there are any (`sql.url` or `run --sql-url`).
    private func startSQLSinks() async throws -> SQLSinkWriter? {
        guard !config.sqlSinks.isEmpty else { return nil }
        guard let text = config.sqlURL, !text.isEmpty else {
            throw StreamEngineError("topologies.yaml has sql sinks but no SQL URL is configured (sql.url or --sql-url)")
        }
        let url: MariaDBURL
        do { url = try MariaDBURL(text) } catch { throw StreamEngineError("\(error.message)") }
        return SQLSinkWriter(url: url, config: config, logger: logger)
    }

    private var isEmbedded: Bool { if case .embedded = connection { return true } else { return false } }

    private func connectRedis() async throws -> RedisConnection? {
        let needsRedis = config.pipelines.contains { $0.steps.contains { if case .redis = $0 { return true } else { return false } } }
        guard needsRedis else { return nil }
        guard let url = redisURL else { throw StreamEngineError("topologies.yaml has redis sinks but no Redis URL is configured (redis.url or --redis-url)") }
        let redis = RedisConnection(url: url, logger: logger)
        var lastError: (any Error)?
        for _ in 0..<20 {
            do {
                _ = try await redis.command(["PING"])
                return redis
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw StreamEngineError("cannot reach Redis: \(lastError.map { "\($0)" } ?? "unknown error")")
    }
}
