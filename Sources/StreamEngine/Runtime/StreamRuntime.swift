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

/// The loop that owns the consumer: poll, process, act on rebalances,
/// commit, and — with `--stop-at-end` — decide when the input is done.
struct PollLoop: Sendable {
    let consumer: KafkaConsumer
    let manager: TaskManager
    let producer: KafkaProducer
    let plan: TopologyPlan
    let commitInterval: Duration
    let batchSize: Int
    let endTargets: [TopicPartition: Int64]?
    let stopRequested: @Sendable () -> Bool
    let liveStats: @Sendable (RuntimeStats) -> Void
    let logger: Logger

    func run() async throws {
        var lastCommit = ContinuousClock.now
        var lastEndCheck = ContinuousClock.now
        var endCheckedAtRound = -1
        var end = EndTracker()
        let headerless = plan.headerlessTopics
        do {
            while consumer.isOpen, !Task.isCancelled {
                // `--stop-at-end` with every task's input processed to its end: nothing more will
                // come, so the loop does not wait a poll's timeout before it commits and checks.
                let finishing = endTargets != nil ? await manager.allInputIdle() : false
                let commitNow = finishing ? await manager.hasUncommittedWork : false
                // With work to commit, the poll waits no longer than until the commit is due.
                var timeoutMs = commitNow ? 0 : await pollTimeoutMs(sinceCommit: ContinuousClock.now - lastCommit)
                // Only what the tasks wrote to repartition topics is left: it comes in a few fetches,
                // and a poll that comes back empty (idle: commit, check) should not wait 100 ms for it.
                if endTargets != nil, !finishing, await manager.allInputIdle(sourceTasksOnly: true) {
                    timeoutMs = min(timeoutMs, Self.repartitionTailPollMs)
                }
                let batch = try await consumer.poll(
                    maxMessages: batchSize, timeoutMs: timeoutMs, skippingHeadersOf: headerless,
                    skippingHeadersOfValuesStartingWith: RepartitionStamp.frameTag)
                // Records first: they were fetched for partitions still assigned. Tasks buffer
                // them and process in event-time order (end-of-partition events: lag 0).
                let buffered = await manager.hasBufferedInput
                if !batch.messages.isEmpty || !batch.partitionEOFs.isEmpty || buffered {
                    try await manager.process(batch.messages, endOfPartition: batch.partitionEOFs)
                    liveStats(await manager.stats)
                }
                // Then what the rebalance callback recorded: revoked work is committed before the partitions go.
                for event in batch.rebalanceEvents { try await manager.handle(event) }
                try await manager.restartDroppedTasks()
                // Idle: nothing came, and the tasks hold nothing they could process now.
                let workLeft = await manager.drainStoppedByBudget
                let idle = batch.messages.isEmpty && !workLeft
                let dueByIdle = idle ? await manager.hasUncommittedWork : false
                if ContinuousClock.now - lastCommit >= commitInterval || dueByIdle {
                    // The interval is a period: it counts from the start of the last commit.
                    lastCommit = ContinuousClock.now
                    do {
                        // With `--stop-at-end`, a commit while nothing comes in has nothing to overlap
                        // with; the end check right after it reads the offsets it committed.
                        try await manager.commit(overlapping: !(endTargets != nil && idle))
                    } catch is TaskMigrated {
                        // Tasks restart from the committed offsets (restartDroppedTasks).
                    }
                }
                // Every 200 ms (each check asks the group coordinator), and at once after a commit
                // round that ran while nothing came in (what a run's end looks like).
                let rounds = await manager.commitRounds
                let roundAtEnd = idle && rounds != endCheckedAtRound
                if let endTargets, roundAtEnd || ContinuousClock.now - lastEndCheck >= .milliseconds(200) {
                    endCheckedAtRound = rounds
                    lastEndCheck = ContinuousClock.now
                    if try await end.reached(endTargets, loop: self) {
                        logger.info("--stop-at-end: every input partition consumed and committed")
                        break
                    }
                }
                if stopRequested() { break }
            }
            do {
                await manager.setStopping()
                try await manager.closeAll()
            } catch is TaskMigrated {
                logger.warning("final commit lost to a rebalance: the next owner replays the uncommitted records")
            }
        } catch {
            // After a (simulated) crash nothing more may happen: the manager ignores further work.
            // A commit still running behind the tasks ends before the clients close.
            try? await manager.settleCommitInFlight()
            throw error
        }
    }

    /// How long a `--stop-at-end` poll waits once the source topics are processed to their end
    /// and only repartition records are still to come.
    static let repartitionTailPollMs: Int32 = 10

    /// How long the next poll may wait for a first record: 100 ms, or less
    /// when processed work waits for a commit that is due sooner; 0 while the
    /// tasks hold records they could process now.
    private func pollTimeoutMs(sinceCommit: Duration) async -> Int32 {
        if await manager.drainStoppedByBudget { return 0 }
        guard await manager.hasUncommittedWork else { return 100 }
        let left = commitInterval - sinceCommit
        return left <= .zero ? 0 : Int32(min(100, (left / .milliseconds(1)).rounded(.up)))
    }

    /// Where `--stop-at-end` stands: the group committed every input
    /// partition up to its start end offset, then every repartition partition
    /// up to its end; then the global tables caught up with what the pipelines
    /// wrote to them, this member has its assignment, and a commit ran after both
    /// with no periodic work left (so processors that recompute from global tables
    /// have seen their final contents).
    struct EndTracker {
        /// End offsets of the repartition topics, once the inputs are committed.
        var repartition: [TopicPartition: Int64]?
        /// End offsets of the global tables' topics, once the repartition topics are committed.
        var globalTables: [TopicPartition: Int64]?
        /// The commit round after which the global tables had caught up.
        var caughtUpAtRound: Int?
        var lastWaitLog = ContinuousClock.now

        mutating func reached(_ inputs: [TopicPartition: Int64], loop: PollLoop) async throws -> Bool {
            if repartition == nil {
                guard try await committedReach(inputs, loop: loop) else { return false }
                // Upstream is done and flushed: whatever it wrote to repartition topics is below today's end offsets.
                try await loop.producer.flush()
                if loop.plan.repartitionTopics.isEmpty {
                    repartition = [:]
                } else {
                    let counts = try await loop.consumer.topicPartitionCounts()
                    let partitions = loop.plan.repartitionTopics.flatMap { topic in (0..<Int32(counts[topic] ?? 0)).map { TopicPartition(topic, $0) } }
                    repartition = try await loop.consumer.endOffsets(partitions)
                }
            }
            guard try await committedReach(repartition ?? [:], loop: loop) else { return false }
            let tableTopics = loop.plan.config.globalTables.map(\.topic)
            if tableTopics.isEmpty { return true }
            if globalTables == nil {
                try await loop.producer.flush()
                let counts = try await loop.consumer.topicPartitionCounts()
                let partitions = tableTopics.flatMap { topic in (0..<Int32(counts[topic] ?? 0)).map { TopicPartition(topic, $0) } }
                globalTables = try await loop.consumer.endOffsets(partitions)
            }
            let manager = loop.manager
            if caughtUpAtRound == nil {
                let targets = globalTables ?? [:]
                guard manager.env.globals.hasReached(targets) else {
                    if ContinuousClock.now - lastWaitLog >= .seconds(5) {
                        lastWaitLog = ContinuousClock.now
                        loop.logger.info("--stop-at-end: waiting for the global tables to read up to \(targets.sorted { $0.key.description < $1.key.description }.map { "\($0.key)@\($0.value)" }.joined(separator: ", "))")
                    }
                    return false
                }
                caughtUpAtRound = await manager.commitRounds
            }
            // Not before this member has an assignment and its new tasks ran a commit: periodic
            // work is not durable (a recompute that a stopped member left pending is redone by the
            // task's next owner when it starts the task), so a member that has not joined yet
            // would stop without it, though the group's offsets are all committed.
            guard let started = await manager.tasksStartedAtRound else {
                if ContinuousClock.now - lastWaitLog >= .seconds(5) {
                    lastWaitLog = ContinuousClock.now
                    loop.logger.info("--stop-at-end: waiting for this member's first assignment")
                }
                return false
            }
            let round = max(caughtUpAtRound ?? 0, started)
            let rounds = await manager.commitRounds
            let pendingWork = await manager.hasPendingWork
            let uncommitted = await manager.hasUncommittedWork
            return rounds > round + 1 && !pendingWork && !uncommitted
        }

        private mutating func committedReach(_ targets: [TopicPartition: Int64], loop: PollLoop) async throws -> Bool {
            let pending = targets.filter { $0.value > 0 }
            if pending.isEmpty { return true }
            let committed = try await loop.manager.offsetReader.committed(Array(pending.keys))
            let behind = pending.filter { committed[$0.key, default: -1] < $0.value }.sorted { $0.key.description < $1.key.description }
            if behind.isEmpty { return true }
            if ContinuousClock.now - lastWaitLog >= .seconds(5) {
                lastWaitLog = ContinuousClock.now
                let list = behind.prefix(8).map { "\($0.key) committed \(committed[$0.key].map { $0 < 0 ? "none" : String($0) } ?? "none") of \($0.value)" }
                loop.logger.info("--stop-at-end: waiting for the group's committed offsets to reach the end on \(behind.count) partitions: \(list.joined(separator: ", "))\(behind.count > 8 ? ", …" : "")")
            }
            return false
        }
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
