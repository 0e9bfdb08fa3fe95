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

    public init(stateDir: String = "state", stopAtEnd: Bool = false, pollBatchSize: Int = 5000, faultInjection: FaultInjection? = nil) {
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
/// One thread owns the consumer and polls it; it hands each batch to the task
/// manager and waits (back-pressure: nothing is buffered beyond one batch).
/// Rebalance callbacks run on that thread, so revoked tasks are committed and
/// closed before their partitions go.
public final class StreamRuntime: Service {
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

    private var admin: any TopicAdministrator {
        get throws {
            switch connection {
            case .embedded(let cluster): return cluster
            case .external(let cfg): return try KafkaAdmin(config: cfg.merging(config.kafka) { $1 }, logger: logger)
            }
        }
    }

    private func runEngine() async throws {
        let admin = try self.admin
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
        // exactly_once: on a real cluster one Kafka transaction per commit (EOS v2: one
        // transactional producer per instance, fenced through the consumer group).
        // librdkafka 2.0.2's mock neither hides aborted records nor stores transactional
        // offsets, so on the embedded cluster the engine relies on its own mechanisms alone:
        // changelog records tagged with their commit's input offsets, de-duplicated
        // repartition records and the Redis fence (see README "Processing guarantees").
        let transactional = config.processingGuarantee == .exactlyOnce && !isEmbedded
        if transactional {
            producerConfig["transactional.id"] = producerConfig["transactional.id"] ?? "\(config.applicationId)-\(UUID().uuidString)"
        }
        let producer = try KafkaProducer(config: producerConfig, logger: logger)
        if transactional {
            try await producer.initTransactions()
            try producer.beginTransaction()
        }
        let redis = try await connectRedis()
        let globals = GlobalTables()
        defer { globals.stop() }
        for g in config.globalTables {
            try await globals.start(table: g.name, topic: g.topic, kafkaConfig: config.kafka, logger: logger)
        }

        var env = TaskEnvironment(config: config, registry: registry, producer: producer, globals: globals, logger: logger, stateDir: options.stateDir)
        let sql = try await startSQLSinks()
        env.sqlKinds = try await sql?.prepare()
        let rebalanceError = Mutex<(any Error)?>(nil)
        let managerBox = Mutex<TaskManager?>(nil)
        var consumerConfig = config.kafka
        consumerConfig["group.id"] = config.applicationId
        consumerConfig["partition.assignment.strategy"] = consumerConfig["partition.assignment.strategy"] ?? "range"
        consumerConfig["isolation.level"] = "read_committed"
        // End-of-partition events tell the event-time scheduler that a partition's lag is 0.
        consumerConfig["enable.partition.eof"] = "true"
        if isEmbedded {
            // The mock coordinator waits a leaving member's whole session timeout before
            // completing the next rebalance: keep it short so that restarts take seconds.
            consumerConfig["session.timeout.ms"] = consumerConfig["session.timeout.ms"] ?? "3000"
            consumerConfig["heartbeat.interval.ms"] = consumerConfig["heartbeat.interval.ms"] ?? "250"
        }
        let consumer = try KafkaConsumer(config: consumerConfig, logger: logger) { event in
            guard let manager = managerBox.withLock({ $0 }) else { return }
            do {
                switch event {
                case .assigned(let tps): await manager.assigned(tps)
                case .revoked(let tps): try await manager.revoked(tps)
                }
            } catch {
                rebalanceError.withLock { if $0 == nil { $0 = error } }
            }
        }
        var readerConfig = consumerConfig
        readerConfig["isolation.level"] = "read_uncommitted"
        let offsetReader = try KafkaConsumer(config: readerConfig, logger: logger)
        let manager = TaskManager(plan: plan, env: env, consumer: consumer, offsetReader: offsetReader, redis: redis, admin: admin, faultInjection: options.faultInjection,
            stopRequested: { [self] in stopRequested.load(ordering: .acquiring) }, transactional: transactional, sql: sql, queries: queries)
        queries.setRunning(true)
        defer { queries.setRunning(false) }
        managerBox.withLock { $0 = manager }
        try consumer.subscribe(plan.subscribedTopics)
        logger.info("\(config.applicationId): running \(config.pipelines.count) pipelines on \(plan.subscribedTopics.joined(separator: ", "))")

        let loop = PollLoop(
            consumer: consumer, manager: manager, producer: producer, admin: admin, plan: plan,
            commitInterval: .milliseconds(config.commitIntervalMs), batchSize: options.pollBatchSize,
            endTargets: options.stopAtEnd ? endTargets : nil, stopRequested: { [self] in stopRequested.load(ordering: .acquiring) },
            rebalanceError: { rebalanceError.withLock { $0 } }, liveStats: { [self] s in statsBox.withLock { $0 = s } }, logger: logger)
        let outcome: Result<Void, any Error> = await withCheckedContinuation { cont in
            let thread = Thread { cont.resume(returning: Result { try loop.run() }) }
            thread.name = "stream-engine-poll"
            thread.start()
        }
        let processed = await manager.processedTotal
        let commits = await manager.commits
        let deadLettered = await manager.deadLetteredTotal
        statsBox.withLock { $0 = RuntimeStats(processed: processed, deadLettered: deadLettered, commits: commits) }
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

/// The thread that owns the consumer: poll, process, commit, and — with
/// `--stop-at-end` — decide when the input is done.
final class PollLoop: Sendable {
    let consumer: KafkaConsumer
    let manager: TaskManager
    let producer: KafkaProducer
    let admin: any TopicAdministrator
    let plan: TopologyPlan
    let commitInterval: Duration
    let batchSize: Int
    let endTargets: [TopicPartition: Int64]?
    let stopRequested: @Sendable () -> Bool
    let rebalanceError: @Sendable () -> (any Error)?
    let liveStats: @Sendable (RuntimeStats) -> Void
    let logger: Logger

    init(consumer: KafkaConsumer, manager: TaskManager, producer: KafkaProducer, admin: any TopicAdministrator, plan: TopologyPlan,
         commitInterval: Duration, batchSize: Int, endTargets: [TopicPartition: Int64]?,
         stopRequested: @escaping @Sendable () -> Bool, rebalanceError: @escaping @Sendable () -> (any Error)?,
         liveStats: @escaping @Sendable (RuntimeStats) -> Void, logger: Logger) {
        self.consumer = consumer
        self.manager = manager
        self.producer = producer
        self.admin = admin
        self.plan = plan
        self.commitInterval = commitInterval
        self.batchSize = batchSize
        self.endTargets = endTargets
        self.stopRequested = stopRequested
        self.rebalanceError = rebalanceError
        self.liveStats = liveStats
        self.logger = logger
    }

    func run() throws {
        let manager = self.manager
        var lastCommit = ContinuousClock.now
        var lastEndCheck = ContinuousClock.now
        var endProgress = EndProgress()
        do {
            while !stopRequested() {
                let batch = try consumer.pollBatch(maxMessages: batchSize, timeoutMs: 100)
                if let e = rebalanceError() { throw e }
                // Tasks of newly assigned partitions start here, outside the rebalance callback.
                var messages = batch.messages
                if bridge({ await manager.hasPendingAssignment }) {
                    let restarted = try bridge { try await manager.startPendingTasks() }
                    // They were rewound to their committed offsets: what was polled before is read again.
                    if !restarted.isEmpty { messages.removeAll { restarted.contains($0.topicPartition) } }
                }
                if !messages.isEmpty || !batch.partitionEOFs.isEmpty || bridge({ await manager.hasBufferedInput }) {
                    let toProcess = messages
                    let eofs = batch.partitionEOFs
                    liveStats(try bridge {
                        try await manager.process(toProcess, endOfPartition: eofs)
                        return await manager.stats
                    })
                }
                let idle = batch.messages.isEmpty
                if ContinuousClock.now - lastCommit >= commitInterval || (idle && bridge { await manager.hasUncommittedWork }) {
                    do {
                        try bridge { try await manager.commit() }
                    } catch is TaskMigrated {
                        // Rejoin: the next polls bring the new assignment.
                    }
                    lastCommit = ContinuousClock.now
                }
                if let endTargets, ContinuousClock.now - lastEndCheck >= .milliseconds(200) {
                    lastEndCheck = ContinuousClock.now
                    if try reachedEnd(endTargets, &endProgress) {
                        logger.info("--stop-at-end: every input partition consumed and committed")
                        break
                    }
                }
            }
            do {
                try bridge {
                    await manager.setStopping()
                    try await manager.closeAll()
                }
            } catch is TaskMigrated {
                logger.warning("final commit lost to a rebalance: the next owner replays the uncommitted records")
            }
        } catch {
            // After a (simulated) crash nothing more may happen: the manager ignores the revoke.
            consumer.close()
            throw error
        }
        consumer.close()
    }

    /// Where `--stop-at-end` stands.
    struct EndProgress {
        /// End offsets of the repartition topics, once the inputs are committed.
        var repartition: [TopicPartition: Int64]?
        /// End offsets of the global tables' topics, once the repartition topics are committed.
        var globalTables: [TopicPartition: Int64]?
        /// The commit round after which the global tables had caught up.
        var caughtUpAtRound: Int?
    }

    /// Whether the group committed every input partition up to its start end
    /// offset, then every repartition partition up to its end; then whether the
    /// global tables caught up with what the pipelines wrote to them and a
    /// commit ran after that with no periodic work left (so processors that
    /// recompute from global tables have seen their final contents).
    private func reachedEnd(_ inputs: [TopicPartition: Int64], _ progress: inout EndProgress) throws -> Bool {
        let manager = self.manager
        if progress.repartition == nil {
            guard try committedReach(inputs) else { return false }
            // Upstream is done and flushed: whatever it wrote to repartition topics is below today's end offsets.
            let producer = self.producer
            try bridge { try await producer.flush() }
            let counts = try consumer.topicPartitionCounts()
            let partitions = plan.repartitionTopics.flatMap { topic in (0..<Int32(counts[topic] ?? 0)).map { TopicPartition(topic, $0) } }
            progress.repartition = try consumer.endOffsets(partitions)
        }
        guard try committedReach(progress.repartition ?? [:]) else { return false }
        let tableTopics = plan.config.globalTables.map(\.topic)
        if tableTopics.isEmpty { return true }
        if progress.globalTables == nil {
            let producer = self.producer
            try bridge { try await producer.flush() }
            let counts = try consumer.topicPartitionCounts()
            let partitions = tableTopics.flatMap { topic in (0..<Int32(counts[topic] ?? 0)).map { TopicPartition(topic, $0) } }
            progress.globalTables = try consumer.endOffsets(partitions)
        }
        if progress.caughtUpAtRound == nil {
            let targets = progress.globalTables ?? [:]
            guard bridge({ await manager.env.globals.hasReached(targets) }) else {
                logger.debug("--stop-at-end: waiting for the global tables to read up to \(targets)")
                return false
            }
            progress.caughtUpAtRound = bridge { await manager.commitRounds }
        }
        let round = progress.caughtUpAtRound ?? 0
        return bridge {
            let rounds = await manager.commitRounds
            let pendingWork = await manager.hasPendingWork
            let uncommitted = await manager.hasUncommittedWork
            return rounds > round + 1 && !pendingWork && !uncommitted
        }
    }

    private func committedReach(_ targets: [TopicPartition: Int64]) throws -> Bool {
        let pending = targets.filter { $0.value > 0 }
        if pending.isEmpty { return true }
        let reader = bridge { [manager] in await manager.offsetReader }
        let committed = try reader.committed(Array(pending.keys))
        let done = pending.allSatisfy { committed[$0.key, default: -1] >= $0.value }
        if done { logger.debug("end reached: committed \(committed.sorted { $0.key.description < $1.key.description }) for targets \(pending.sorted { $0.key.description < $1.key.description })") }
        return done
    }
}

/// Runs async work from a dedicated (non-cooperative) thread and waits for it.
func bridge<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<Result<T, any Error>?>(nil)
    Task {
        let r: Result<T, any Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        result.withLock { $0 = r }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
}

func bridge<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<T?>(nil)
    Task {
        let r = await body()
        result.withLock { $0 = r }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}
