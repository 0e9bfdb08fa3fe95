import Foundation
import KafkaClient
import Logging
import MariaDBClient
import Metrics
import RedisClient

/// A commit failed because the group rebalanced: the tasks were dropped.
struct TaskMigrated: Error, CustomStringConvertible {
    var description: String { "tasks migrated to another group member" }
}

/// Owns the tasks of one engine instance: creates and restores them on
/// assignment, feeds them batches, commits (changelog and sinks first, input
/// offsets last), snapshots, and closes them on revocation.
actor TaskManager {
    let plan: TopologyPlan
    let env: TaskEnvironment
    let consumer: KafkaConsumer
    /// Reads the group's committed offsets. A handle of its own that never
    /// joins the group: asked through the group member itself, librdkafka
    /// 2.0.2 times out while that member's assignment is being set up.
    let offsetReader: KafkaConsumer
    let redis: RedisConnection?
    /// Writes the rows of `sql` steps (nil without any).
    let sql: SQLSinkWriter?
    let admin: any TopicAdministrator
    let logger: Logger
    var tasks: [TaskID: StreamTask] = [:]
    var tasksByPartition: [TopicPartition: [TaskID]] = [:]
    var uncommitted = false
    var processedTotal = 0
    var deadLetteredTotal = 0
    var commits = 0
    private var stopping = false
    private let stopRequested: @Sendable () -> Bool
    private let faultInjection: FaultInjection?
    let commitTimer = Timer(label: "stream_engine_commit_duration_seconds")
    let redisWriteTimer = Timer(label: "stream_engine_redis_write_seconds")
    /// Whether commits go through Kafka transactions (exactly_once on a real cluster).
    let transactional: Bool
    /// Set when a simulated crash fired: nothing is committed any more.
    var crashed = false
    /// The rest of the last periodic commit, running while the tasks process (`commit(overlapping:)`).
    var commitInFlight: Task<Void, Never>?
    /// What the commit that ran behind the tasks failed with, until the poll loop hears of it.
    var commitFailure: (any Error)?
    /// The last sequence number of periodic-work Redis writes (`nextPunctuationFence`).
    var lastPunctuationFence: Int64 = 0
    /// Read-only view of tasks and assignment for the HTTP service (interactive queries).
    let queries: RuntimeQueries
    /// Event-time order of buffered input, alignment and back-pressure.
    var scheduler: InputScheduler
    /// Warm copies of the stores of tasks running elsewhere (`num.standby.replicas`).
    let standbys: StandbyReplicas?

    init(plan: TopologyPlan, env: TaskEnvironment, consumer: KafkaConsumer, offsetReader: KafkaConsumer, redis: RedisConnection?, admin: any TopicAdministrator, faultInjection: FaultInjection? = nil,
         stopRequested: @escaping @Sendable () -> Bool = { false }, transactional: Bool = false, sql: SQLSinkWriter? = nil,
         queries: RuntimeQueries = RuntimeQueries(), standbys: StandbyReplicas? = nil) {
        self.standbys = standbys
        self.sql = sql
        self.queries = queries
        self.transactional = transactional
        self.faultInjection = faultInjection
        self.stopRequested = stopRequested
        self.plan = plan
        self.env = env
        self.consumer = consumer
        self.offsetReader = offsetReader
        self.redis = redis
        self.admin = admin
        self.logger = env.logger
        self.scheduler = InputScheduler(
            maxTaskIdleMs: env.config.maxTaskIdleMs, maxDriftMs: Int64(env.config.effectiveMaxDriftMs),
            pauseAbove: 5_000, logger: env.logger)
    }

    var hasUncommittedWork: Bool { uncommitted }
    /// Completed calls of `commit()`, with or without work.
    var commitRounds = 0
    /// `commitRounds` when this member last started tasks (an assignment, empty or not, or a
    /// restart of dropped tasks); nil before its first assignment. `--stop-at-end` counts its
    /// rounds from here: a task's processors run their periodic work first at the next commit.
    var tasksStartedAtRound: Int?
    /// Whether a processor has periodic work pending (see `Processor.punctuate`).
    var hasPendingWork: Bool {
        get async {
            for task in tasks.values where await task.hasPendingWork { return true }
            return false
        }
    }
    /// Whether some task holds input it could not process yet (waiting for another partition).
    var hasBufferedInput: Bool { scheduler.statuses.values.contains { $0.total > 0 } }
    /// The last drain stopped at its time budget with records the tasks could take:
    /// the next poll should not wait.
    var drainStoppedByBudget = false
    /// Most records a task processes in one drain round.
    static let recordsPerRound = 2_000
    /// How long drain rounds run before the poll loop polls again.
    static let drainBudget = Duration.milliseconds(100)
    var stats: RuntimeStats { RuntimeStats(processed: processedTotal, deadLettered: deadLetteredTotal, commits: commits) }

    func crashIfInjected(_ point: FaultInjection.Point) throws {
        guard let f = faultInjection, f.point == point, f.commit == commits + 1 else { return }
        crashed = true
        logger.warning("fault injection: simulated crash at commit \(f.commit) (\(point))")
        throw SimulatedCrash()
    }
    var taskIDs: [TaskID] { tasks.keys.sorted() }

    func setStopping() { stopping = true }

    // MARK: Rebalance

    /// Tasks started here that have not committed yet, with the time their partitions came.
    var awaitingFirstCommit: [TaskID: ContinuousClock.Instant] = [:]
    /// Partitions this member owns (assignment applied).
    private(set) var assignedPartitions: Set<TopicPartition> = []
    /// Partitions whose tasks were dropped dirty while still assigned: they
    /// restart from the committed offsets (`restartDroppedTasks`).
    private var dropped: Set<TopicPartition> = []

    /// Acts on a rebalance event the consumer recorded. Revoked: commits,
    /// snapshots and closes the tasks, then gives the partitions up (lost:
    /// drops them uncommitted). Assigned: creates and restores the tasks, then
    /// takes the partitions from their committed offsets. Partitions that stay
    /// (cooperative-sticky) are untouched: their tasks keep processing.
    func handle(_ event: RebalanceEvent) async throws {
        guard !crashed else { return }
        commitsHeldSince = nil
        switch event {
        case .revoked(let partitions, let lost):
            logger.info("rebalance: \(lost ? "lost" : "revoked") \(partitions.count) partitions: \(Self.summary(partitions))")
            if lost {
                dropTasks(of: partitions)
            } else {
                try await revoked(partitions)
            }
            assignedPartitions.subtract(partitions)
            dropped.subtract(partitions)
            pendingOffsets = pendingOffsets.filter { !Set(partitions).contains($0.key) }
            try await consumer.applyRevocation(partitions)
            publishQueries()
        case .assigned(let partitions):
            logger.info("rebalance: assigned \(partitions.count) partitions: \(Self.summary(partitions))")
            let committed = try await startTasks(for: partitions)
            tasksStartedAtRound = commitRounds
            assignedPartitions.formUnion(partitions)
            // The committed offsets were just read: a partition without one starts where
            // `auto.offset.reset` says, without librdkafka asking the group a second time.
            try await consumer.applyAssignment(partitions.map { tp in
                let start: Int64 = switch committed[tp] {
                case let offset? where offset >= 0: offset
                case .some: consumer.startWithoutCommittedOffset
                case nil: KafkaOffset.invalid
                }
                return TopicPartitionOffset(tp, start)
            })
            publishQueries()
        }
        await standbys?.owned(assignedPartitions)
    }

    /// The position (next offset, with metadata) each task last handed over, per input partition.
    var positions: [TaskID: [TopicPartition: TopicPartitionOffset]] = [:]
    /// The group's committed offset of each assigned partition when its tasks started.
    var startPositions: [TopicPartition: Int64] = [:]

    /// Whether every input partition of task `id` is at its end and it has nothing buffered
    /// (what its progress markers say, when it writes a repartition topic).
    func inputIdle(_ id: TaskID) -> Bool {
        guard let task = tasks[id], (scheduler.statuses[id]?.total ?? 0) == 0 else { return false }
        return task.sub.sourceTopics.allSatisfy { scheduler.atEnd(TopicPartition($0, id.partition)) }
    }

    /// Whether this member owns tasks and every one of them is input-idle (see `inputIdle`):
    /// the consumer has fetched all the broker held at its last end-of-partition events and
    /// the tasks processed it. With `--stop-at-end` nothing more comes, so the poll loop
    /// commits and checks for the end at once. With `sourceTasksOnly`, the tasks reading
    /// repartition topics are left out: what is left to come is what the member's own tasks
    /// wrote there.
    func allInputIdle(sourceTasksOnly: Bool = false) -> Bool {
        var any = false
        for (id, task) in tasks where !(sourceTasksOnly && task.sub.fromRepartition) {
            guard inputIdle(id) else { return false }
            any = true
        }
        return any
    }

    /// Tells the HTTP service's read-only view what this instance owns now.
    private func publishQueries() {
        queries.publish(tasks: tasks, assigned: assignedPartitions, pending: [])
    }

    /// Restarts the tasks dropped dirty on partitions still assigned, from the committed offsets.
    func restartDroppedTasks() async throws {
        guard !dropped.isEmpty, !crashed else { return }
        let partitions = dropped.filter { assignedPartitions.contains($0) }
        dropped = []
        guard !partitions.isEmpty else { return }
        let committed = try await startTasks(for: Array(partitions))
        tasksStartedAtRound = commitRounds
        // One seek for all, after every restore; librdkafka discards what it fetched before.
        let seeks = partitions.map { TopicPartitionOffset($0, committed[$0].flatMap { $0 >= 0 ? $0 : nil } ?? KafkaOffset.beginning) }
        try await consumer.seek(seeks, timeoutMs: 30_000)
        // The scheduler forgets them, paused ones included: they stay assigned through a
        // cooperative rebalance, so the consumer would keep them paused for good.
        scheduler.forget(partitions, tasks: [])
        do { try consumer.resumeTaking(Array(partitions)) } catch { logger.warning("resume \(Self.summary(Array(partitions))): \(error)") }
        publishQueries()
    }

    /// Creates and restores the tasks of `partitions` (those not running);
    /// returns the group's committed offsets of the partitions.
    private func startTasks(for partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        let startedAt = ContinuousClock.now
        var wanted: Set<TaskID> = []
        var subsByID: [String: SubTopology] = [:]
        for tp in partitions {
            for sub in plan.subTopologies where sub.sourceTopics.contains(tp.topic) {
                let id = TaskID(subTopology: sub.id, partition: tp.partition)
                wanted.insert(id)
                subsByID[sub.id] = sub
                if !(tasksByPartition[tp] ?? []).contains(id) { tasksByPartition[tp, default: []].append(id) }
            }
        }
        var allCommitted: [TopicPartition: Int64] = [:]
        var committedWithMetadata: [TopicPartition: TopicPartitionOffset] = [:]
        let ids = wanted.sorted().filter { tasks[$0] == nil }
        let neededPartitions = Set(ids.flatMap { id in subsByID[id.subTopology]!.sourceTopics.map { TopicPartition($0, id.partition) } }).union(partitions)
        if !neededPartitions.isEmpty {
            committedWithMetadata = try await reportingWhileWaiting("the group's committed offsets of \(Self.summary(Array(neededPartitions)))", logger: logger) { [offsetReader] in
                try await offsetReader.committedWithMetadata(Array(neededPartitions))
            }
            allCommitted = committedWithMetadata.mapValues(\.offset)
            for (tp, o) in allCommitted { startPositions[tp] = o }
        }
        for id in ids { positions.removeValue(forKey: id) }  // set again below from the task's own committed position
        var restores: [(id: TaskID, task: StreamTask, committed: [String: Int64], streamTime: Int64, warm: [String: WarmStoreCopy])] = []
        for id in ids {
            let sub = subsByID[id.subTopology]!
            let task = try StreamTask(sub: sub, partition: id.partition, env: env)
            let committed = CommittedPositions.of(sub: sub, partition: id.partition, committed: committedWithMetadata)
            // A combiner's declared epoch whose partials may not all have been sent: the task
            // replays it and sends them again (its readers skip those they applied).
            let pendingEnd = CommittedPositions.pendingEnd(sub: sub, partition: id.partition, committed: committedWithMetadata)
            if let pendingEnd { await task.replayDeclaredEpoch(endingAt: pendingEnd) }
            if !sub.fromRepartition {
                for topic in sub.sourceTopics {
                    let tp = TopicPartition(topic, id.partition)
                    positions[id, default: [:]][tp] = TopicPartitionOffset(tp, committed[topic] ?? max(0, allCommitted[tp] ?? 0),
                        metadata: StreamTimeMetadata.format(
                            CommittedPositions.streamTime(sub: sub, partition: id.partition, committed: committedWithMetadata).nonMin,
                            pendingEnd: pendingEnd))
                }
            }
            // The stream time the task had at its last commit (commit metadata, as Kafka Streams
            // keeps partition time): late records and closed windows stay as they were.
            let streamTime = CommittedPositions.streamTime(sub: sub, partition: id.partition, committed: committedWithMetadata)
            if let redis, sub.steps.contains(where: { if case .redis = $0 { return true } else { return false } }) {
                let fenceKey = "se:fence:\(env.config.applicationId):\(id)"
                let reply = try await retrying("read the Redis fence of \(id)") { try await redis.command(["HGETALL", fenceKey]) }
                var applied: [String: Int64] = [:]
                let items = reply.array ?? []
                for i in stride(from: 0, to: items.count - 1, by: 2) {
                    guard let field = items[i].string, !field.hasPrefix("~"), let value = items[i + 1].string.flatMap({ Int64($0) }) else { continue }
                    applied[field] = value
                }
                await task.setRedisAppliedThrough(applied)
            }
            let warm = await standbys?.take(stores: sub.stores, partition: id.partition) ?? [:]
            restores.append((id, task, committed, streamTime, warm))
        }
        // The tasks restore at once, with about `StoreRestorer.instanceConsumers` consumers in all:
        // one consumer waits a fetch round trip per batch, more than a few share the CPU for nothing.
        let consumersPerTask = max(1, StoreRestorer.instanceConsumers / max(1, restores.count))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for r in restores {
                group.addTask { _ = try await r.task.restore(committed: r.committed, streamTime: r.streamTime, warm: r.warm, consumers: consumersPerTask) }
            }
            try await group.waitForAll()
        }
        for r in restores {
            tasks[r.id] = r.task
            awaitingFirstCommit[r.id] = startedAt
            logger.info("task \(r.id) started (committed input offsets \(r.committed.isEmpty ? "none" : CommitTag(r.committed).description))")
        }
        return allCommitted
    }

    private func revoked(_ partitions: [TopicPartition]) async throws {
        guard !partitions.isEmpty, !crashed else { return }
        do {
            try await commit()
        } catch is TaskMigrated {
            return  // tasks already dropped; their work is replayed by the next owner
        }
        if !pendingOffsets.isEmpty {
            // The group refused the commit: the next owner replays from the committed offsets.
            logger.warning("revoked partitions go without their last offsets committed (the group refused the commit): the next owner replays those records")
            dropTasks(of: partitions)
            return
        }
        let gone = Set(partitions.flatMap { tasksByPartition[$0] ?? [] })
        for tp in partitions { tasksByPartition.removeValue(forKey: tp) }
        scheduler.forget(partitions, tasks: gone)
        for id in gone.sorted() {
            guard let task = tasks.removeValue(forKey: id) else { continue }
            try await snapshot(task)
            logger.info("task \(id) closed")
        }
        publishQueries()
    }

    /// Drops the tasks of lost partitions without committing (another member owns them already).
    private func dropTasks(of partitions: [TopicPartition]) {
        let gone = Set(partitions.flatMap { tasksByPartition[$0] ?? [] })
        for tp in partitions { tasksByPartition.removeValue(forKey: tp) }
        scheduler.forget(partitions, tasks: gone)
        for id in gone.sorted() where tasks.removeValue(forKey: id) != nil {
            logger.warning("task \(id) dropped uncommitted: its partitions were lost to the group; the new owner replays its uncommitted records")
        }
    }


    /// A short list of offsets for logs.
    static func summary(_ partitions: [TopicPartition]) -> String {
        let sorted = partitions.map(\.description).sorted()
        return sorted.prefix(8).joined(separator: ", ") + (sorted.count > 8 ? ", … (\(sorted.count) partitions)" : "")
    }

    static func summary(_ offsets: [TopicPartitionOffset]) -> String {
        let sorted = offsets.sorted { $0.description < $1.description }
        return sorted.prefix(8).map(\.description).joined(separator: ", ") + (sorted.count > 8 ? ", … (\(sorted.count) partitions)" : "")
    }

    private func snapshot(_ task: StreamTask) async throws {
        try await snapshot([task])
    }

    /// Writes snapshots of tasks; their changelog end offsets are asked for in one round.
    func snapshot(_ tasks: [StreamTask]) async throws {
        guard !tasks.isEmpty else { return }
        let partitions = tasks.flatMap { task in task.sub.stores.map { TopicPartition(env.config.changelogTopic(store: $0), task.partition) } }
        let offsets = try await offsetReader.endOffsets(partitions)
        for task in tasks {
            var ends: [String: Int64] = [:]
            for name in task.sub.stores { ends[name] = offsets[TopicPartition(env.config.changelogTopic(store: name), task.partition)] }
            let committed = await task.nextOffsets
            try await task.writeSnapshots(changelogEnds: ends, committed: committed)
        }
    }

    /// Final commit and snapshots of every task (graceful shutdown).
    func closeAll() async throws {
        guard !crashed else { return }
        try await commit()
        let all = tasks.keys.sorted().compactMap { tasks[$0] }
        tasks.removeAll()
        try await snapshot(all)
        tasksByPartition.removeAll()
        publishQueries()
    }

    /// Input offsets whose commit the group refused while it rebalanced; they
    /// are committed with the next commit (the changelog and sink writes of
    /// their records are done, so only the offsets are missing).
    var pendingOffsets: [TopicPartition: TopicPartitionOffset] = [:]
    var refusedCommits = 0
    /// Set when the group refused a commit because it rebalances; cleared by the next rebalance event.
    var commitsHeldSince: ContinuousClock.Instant?

    /// The group moved on (rebalance, or this member was removed): offsets of
    /// the old assignment can no longer be committed.
    static func isGroupChange(_ e: KafkaError) -> Bool {
        // ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID
        [22, 25, 27, 82].contains(e.code)
    }

    /// Drops every task without committing or snapshotting (as Kafka Streams
    /// closes "dirty" tasks after a TaskMigratedException). What they processed
    /// since the last commit is replayed by whoever owns the partitions next —
    /// exactly, thanks to changelog tags and the Redis fence. The partitions
    /// still assigned restart from their committed offsets (`restartDroppedTasks`).
    func dropTasksDirty(because error: KafkaError) {
        logger.warning("the consumer group moved on (\(error.name)): dropping \(tasks.count) tasks uncommitted; they restart from the committed offsets")
        scheduler.forget(tasksByPartition.keys, tasks: tasks.keys)
        tasks.removeAll()
        tasksByPartition.removeAll()
        dropped.formUnion(assignedPartitions)
        publishQueries()
    }

    /// Retries an operation on Kafka or Redis errors with exponential backoff,
    /// logging each failure: an outage pauses progress, nothing is skipped.
    /// Gives up (throws) on errors that do not heal — a fatal Kafka error, a
    /// Redis error reply — and when a stop was requested and it keeps failing:
    /// offsets are then left uncommitted and the next run replays.
    func retrying<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(100)
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as KafkaError where !error.isFatal && !Self.isGroupChange(error) {
                attempt += 1
                if (stopping || stopRequested()) && attempt > 3 { throw StreamEngineError("\(what) failed while stopping: \(error)") }
                logger.warning("\(what) failed (attempt \(attempt)), retrying in \(delay): \(error)")
            } catch let error as RedisError where error.kind != .server && error.kind != .invalidArgument {
                attempt += 1
                if (stopping || stopRequested()) && attempt > 3 { throw StreamEngineError("\(what) failed while stopping: \(error)") }
                logger.warning("\(what) failed (attempt \(attempt)), retrying in \(delay): \(error)")
            } catch let error as RedisError {
                throw StreamEngineError("\(what): Redis answered an error: \(error)")
            } catch let error as MariaDBError where error.isRetryable {
                attempt += 1
                if (stopping || stopRequested()) && attempt > 3 { throw StreamEngineError("\(what) failed while stopping: \(error)") }
                logger.warning("\(what) failed (attempt \(attempt)), retrying in \(delay): \(error)")
            } catch let error as MariaDBError {
                throw StreamEngineError("\(what): MariaDB answered an error: \(error)")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}

/// Runs `body`; while it has not finished, logs every `every` that it is
/// still waiting for `what` (never a silent stall).
func reportingWhileWaiting<T: Sendable>(_ what: String, every: Duration = .seconds(5), logger: Logger, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            let started = ContinuousClock.now
            while true {
                try await Task.sleep(for: every)
                logger.warning("still waiting for \(what) after \(ContinuousClock.now - started)")
            }
        }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
        }
        throw CancellationError()
    }
}
