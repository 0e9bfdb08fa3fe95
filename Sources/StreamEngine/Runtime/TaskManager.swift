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
    private var tasks: [TaskID: StreamTask] = [:]
    private var tasksByPartition: [TopicPartition: [TaskID]] = [:]
    private var uncommitted = false
    private(set) var processedTotal = 0
    private(set) var deadLetteredTotal = 0
    private(set) var commits = 0
    private var stopping = false
    private let stopRequested: @Sendable () -> Bool
    private let faultInjection: FaultInjection?
    private let commitTimer = Timer(label: "stream_engine_commit_duration_seconds")
    private let redisWriteTimer = Timer(label: "stream_engine_redis_write_seconds")
    /// Whether commits go through Kafka transactions (exactly_once on a real cluster).
    let transactional: Bool
    /// Set when a simulated crash fired: nothing is committed any more.
    private var crashed = false
    /// Read-only view of tasks and assignment for the HTTP service (interactive queries).
    let queries: RuntimeQueries
    /// Event-time order of buffered input, alignment and back-pressure.
    private var scheduler: InputScheduler

    init(plan: TopologyPlan, env: TaskEnvironment, consumer: KafkaConsumer, offsetReader: KafkaConsumer, redis: RedisConnection?, admin: any TopicAdministrator, faultInjection: FaultInjection? = nil,
         stopRequested: @escaping @Sendable () -> Bool = { false }, transactional: Bool = false, sql: SQLSinkWriter? = nil,
         queries: RuntimeQueries = RuntimeQueries()) {
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
            pauseAbove: 20_000, logger: env.logger)
    }

    var hasUncommittedWork: Bool { uncommitted }
    /// Completed calls of `commit()`, with or without work.
    private(set) var commitRounds = 0
    /// Whether a processor has periodic work pending (see `Processor.punctuate`).
    var hasPendingWork: Bool {
        get async {
            for task in tasks.values where await task.hasPendingWork { return true }
            return false
        }
    }
    /// Whether some task holds input it could not process yet (waiting for another partition).
    var hasBufferedInput: Bool { scheduler.statuses.values.contains { $0.total > 0 } }
    var stats: RuntimeStats { RuntimeStats(processed: processedTotal, deadLettered: deadLetteredTotal, commits: commits) }

    private func crashIfInjected(_ point: FaultInjection.Point) throws {
        guard let f = faultInjection, f.point == point, f.commit == commits + 1 else { return }
        crashed = true
        logger.warning("fault injection: simulated crash at commit \(f.commit) (\(point))")
        throw SimulatedCrash()
    }
    var taskIDs: [TaskID] { tasks.keys.sorted() }

    func setStopping() { stopping = true }

    // MARK: Rebalance

    /// Partitions assigned but whose tasks are not started yet.
    private var pendingAssignment: [TopicPartition] = []
    /// Partitions whose tasks were dropped dirty: their fetch position is past the committed offset.
    private var rewind: Set<TopicPartition> = []

    /// Called inside the rebalance callback: only records the partitions.
    /// The tasks start (and restore) in `startPendingTasks`, outside the
    /// callback, where the group's committed offsets can be fetched.
    func assigned(_ partitions: [TopicPartition]) {
        pendingAssignment += partitions
        publishQueries()
    }

    private func publishQueries() {
        queries.publish(tasks: tasks, assigned: tasksByPartition.keys, pending: pendingAssignment)
    }

    var hasPendingAssignment: Bool { !pendingAssignment.isEmpty }

    /// Creates and restores the tasks of newly assigned partitions and moves
    /// their fetch position to the committed offsets; returns those partitions
    /// (records already polled for them are stale and must be dropped).
    @discardableResult
    func startPendingTasks() async throws -> Set<TopicPartition> {
        guard !pendingAssignment.isEmpty else { return [] }
        let partitions = pendingAssignment
        pendingAssignment = []
        var restarted: Set<TopicPartition> = []
        var seekTo: [TopicPartition: TopicPartitionOffset] = [:]
        var wanted: Set<TaskID> = []
        var subsByID: [String: SubTopology] = [:]
        for tp in partitions {
            for sub in plan.subTopologies where sub.sourceTopics.contains(tp.topic) {
                wanted.insert(TaskID(subTopology: sub.id, partition: tp.partition))
                subsByID[sub.id] = sub
                tasksByPartition[tp, default: []].append(TaskID(subTopology: sub.id, partition: tp.partition))
            }
        }
        for tp in tasksByPartition.keys { tasksByPartition[tp] = Array(Set(tasksByPartition[tp]!)).sorted() }
        for id in wanted.sorted() where tasks[id] == nil {
            let sub = subsByID[id.subTopology]!
            let task = try StreamTask(sub: sub, partition: id.partition, env: env)
            let tps = sub.sourceTopics.map { TopicPartition($0, id.partition) }
            let reader = self.offsetReader
            let committedOffsets = try await onDedicatedThread("committed-offsets") { try reader.committed(tps) }
            var committed: [String: Int64] = [:]
            for (tp, o) in committedOffsets where o >= 0 { committed[tp.topic] = o }
            _ = try await task.restore(committed: committed)
            // Partitions whose tasks were dropped dirty read on from the committed offsets
            // (a fresh assignment already fetches from there).
            for tp in tps where rewind.contains(tp) {
                seekTo[tp] = TopicPartitionOffset(tp, committed[tp.topic] ?? KafkaOffset.beginning)
            }
            tasks[id] = task
            logger.info("task \(id) started (committed input offsets \(committed.isEmpty ? "none" : CommitTag(committed).description))")
        }
        if !seekTo.isEmpty {
            // One seek for all, after every restore.
            let list = Array(seekTo.values)
            let consumer = self.consumer
            try await onDedicatedThread("seek") { try consumer.seek(list, timeoutMs: 30_000) }
            restarted = Set(seekTo.keys)
            rewind.subtract(restarted)
            scheduler.forget(restarted, tasks: [])
        }
        publishQueries()
        return restarted
    }

    func revoked(_ partitions: [TopicPartition]) async throws {
        guard !partitions.isEmpty, !crashed else { return }
        let revokedSet = Set(partitions)
        pendingAssignment.removeAll { revokedSet.contains($0) }
        rewind.subtract(revokedSet)
        do {
            try await commit()
        } catch is TaskMigrated {
            return  // tasks already dropped; their work is replayed by the next owner
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

    // MARK: Processing

    /// Buffers polled messages in their tasks and processes what event-time
    /// order allows now (see `InputScheduler`); pauses and resumes partitions
    /// for back-pressure.
    func process(_ messages: [KafkaMessage], endOfPartition: [TopicPartitionOffset] = []) async throws {
        scheduler.observe(messages, endOfPartition: endOfPartition)
        var perTask: [TaskID: [KafkaMessage]] = [:]
        for m in messages {
            for id in tasksByPartition[m.topicPartition] ?? [] { perTask[id, default: []].append(m) }
        }
        if !perTask.isEmpty {
            uncommitted = true
            let work = perTask.compactMap { id, msgs in tasks[id].map { (id, $0, msgs) } }
            let statuses = await withTaskGroup(of: (TaskID, InputStatus).self) { group in
                for (id, task, msgs) in work { group.addTask { (id, await task.enqueue(msgs)) } }
                return await group.reduce(into: [(TaskID, InputStatus)]()) { $0.append($1) }
            }
            for (id, status) in statuses { scheduler.update(id, status) }
            processedTotal += messages.count
        }
        try await drainBuffered()
    }

    /// Runs drain rounds until no task can go on: every round computes the
    /// alignment caps from the tasks' frontiers and lets each task process up to its cap.
    private func drainBuffered() async throws {
        var tasksBySub: [String: [TaskID]] = [:]
        var topicsBySub: [String: [String]] = [:]
        for (id, task) in tasks where task.sub.alignsEventTime {
            tasksBySub[id.subTopology, default: []].append(id)
            topicsBySub[id.subTopology] = task.sub.sourceTopics
        }
        while true {
            let now = ContinuousClock.now
            let caps = scheduler.caps(tasksBySub, topics: topicsBySub)
            let work: [(TaskID, StreamTask, Set<String>, Int64)] = tasks.compactMap { id, task in
                guard (scheduler.statuses[id]?.total ?? 0) > 0 else { return nil }
                return (id, task, scheduler.mayRunAhead(id, topics: task.sub.sourceTopics, now: now), caps[id.subTopology] ?? .max)
            }
            if work.isEmpty { break }
            let reports = try await withThrowingTaskGroup(of: (TaskID, StreamTask.DrainReport).self) { group in
                for (id, task, ahead, cap) in work { group.addTask { (id, try await task.drain(mayRunAhead: ahead, cap: cap)) } }
                return try await group.reduce(into: [(TaskID, StreamTask.DrainReport)]()) { $0.append($1) }
            }
            var progress = 0
            var capped = false
            for (id, r) in reports {
                scheduler.update(id, r.status)
                scheduler.noteWaiting(id, on: r.starvedOn, now: now)
                progress += r.processed
                deadLetteredTotal += r.deadLettered
                if r.stoppedBecause == .capped { capped = true }
            }
            if progress == 0 || !capped { break }
        }
        let (pause, resume) = scheduler.backPressure(readers: tasksByPartition)
        if !pause.isEmpty {
            logger.debug("pausing \(pause.count) partitions: their buffered records wait for other partitions")
            do { try consumer.pause(pause) } catch { logger.warning("pause \(pause): \(error)") }
        }
        if !resume.isEmpty {
            do { try consumer.resume(resume) } catch { logger.warning("resume \(resume): \(error)") }
        }
    }

    // MARK: Commit

    /// Commits every task: changelog and output records acknowledged, then
    /// Redis writes applied (fenced), then input offsets committed.
    func commit() async throws {
        guard !crashed else { throw SimulatedCrash() }
        var commits: [TaskCommit] = []
        for id in tasks.keys.sorted() {
            if let c = try await tasks[id]!.prepareCommit() { commits.append(c) }
        }
        uncommitted = false
        guard !commits.isEmpty else { commitRounds += 1; return }
        let clock = ContinuousClock()
        let t0 = clock.now
        try await retrying("flush Kafka producer") { try await self.env.producer.flush(timeout: .seconds(30)) }
        let t1 = clock.now
        try crashIfInjected(.afterKafkaFlush)
        if let redis {
            for c in commits where !c.redisCommands.isEmpty {
                let fenceKey = "se:fence:\(env.config.applicationId):\(c.task)"
                let args = RedisFence.arguments(tag: c.tag, commands: c.redisCommands)
                let w0 = clock.now
                _ = try await retrying("write to Redis") { try await redis.evalScript(RedisFence.script, keys: [fenceKey], args: args) }
                redisWriteTimer.recordNanoseconds((clock.now - w0).totalNanoseconds)
            }
            for c in commits where !c.punctuationCommands.isEmpty {
                let fenceKey = "se:fence:\(env.config.applicationId):\(c.task)"
                let args = RedisFence.arguments(punctuation: nextPunctuationFence(), commands: c.punctuationCommands)
                _ = try await retrying("write to Redis") { try await redis.evalScript(RedisFence.script, keys: [fenceKey], args: args) }
            }
        }
        // SQL sinks: one transaction per task, fenced by its input offsets (see SQLSinkWriter).
        if let sql {
            for c in commits where !c.sqlRows.isEmpty {
                _ = try await retrying("write to SQL") { try await sql.write(task: c.task.description, tag: c.tag, rows: c.sqlRows) }
            }
            try crashIfInjected(.afterSQLWrite)
        }
        let t2 = clock.now
        try crashIfInjected(.afterRedisWrite)
        let offsets = commits.flatMap(\.offsets)
        let consumer = self.consumer
        do {
            if transactional {
                try await commitTransaction(offsets)
            } else {
                try await retrying("commit offsets") { try await onDedicatedThread("commit") { try consumer.commit(offsets) } }
            }
        } catch let error as KafkaError where Self.isGroupChange(error) || error.requiresAbort {
            if transactional { try await abortTransaction() }
            try dropTasksDirty(because: error)
            throw TaskMigrated()
        }
        for c in commits { await tasks[c.task]?.markCommitted(c.tag) }
        self.commits += 1
        commitRounds += 1
        let t3 = clock.now
        var due: [StreamTask] = []
        for c in commits {
            if let task = tasks[c.task], await task.snapshotDue { due.append(task) }
        }
        try await snapshot(due)
        let t4 = clock.now
        commitTimer.recordNanoseconds((t4 - t0).totalNanoseconds)
        if t4 - t0 > .seconds(1) {
            logger.info("slow commit of \(commits.count) tasks: Kafka flush \(t1 - t0), Redis and SQL \(t2 - t1), offsets \(t3 - t2), snapshots \(t4 - t3)")
        }
    }

    private var lastPunctuationFence: Int64 = 0

    /// A sequence for the fence of periodic-work writes: wall-clock milliseconds, increasing.
    private func nextPunctuationFence() -> Int64 {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        lastPunctuationFence = max(now, lastPunctuationFence + 1)
        return lastPunctuationFence
    }

    private func snapshot(_ task: StreamTask) async throws {
        try await snapshot([task])
    }

    /// Writes snapshots of tasks; their changelog end offsets are asked for in one round.
    private func snapshot(_ tasks: [StreamTask]) async throws {
        guard !tasks.isEmpty else { return }
        let partitions = tasks.flatMap { task in task.sub.stores.map { TopicPartition(env.config.changelogTopic(store: $0), task.partition) } }
        let reader = offsetReader
        let offsets = try await onDedicatedThread("changelog-ends") { try reader.endOffsets(partitions) }
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

    /// exactly_once on a real cluster: changelog, output and repartition
    /// records and the input offsets commit in one Kafka transaction; the
    /// next transaction begins at once.
    private func commitTransaction(_ offsets: [TopicPartitionOffset]) async throws {
        let producer = env.producer
        try await producer.sendOffsetsToTransaction(offsets, consumer: consumer)
        try await producer.commitTransaction()
        try producer.beginTransaction()
    }

    private func abortTransaction() async throws {
        try await env.producer.abortTransaction()
        try env.producer.beginTransaction()
    }

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
    /// still assigned restart from their committed offsets.
    private func dropTasksDirty(because error: KafkaError) throws {
        logger.warning("the consumer group moved on (\(error.name)): dropping \(tasks.count) tasks uncommitted; they restart from the committed offsets")
        scheduler.forget(tasksByPartition.keys, tasks: tasks.keys)
        tasks.removeAll()
        tasksByPartition.removeAll()
        pendingAssignment = (try? consumer.assignment()) ?? []
        rewind.formUnion(pendingAssignment)
        publishQueries()
    }

    /// Retries an operation on Kafka or Redis errors with exponential backoff,
    /// logging each failure: an outage pauses progress, nothing is skipped.
    /// Gives up (throws) on errors that do not heal — a fatal Kafka error, a
    /// Redis error reply — and when a stop was requested and it keeps failing:
    /// offsets are then left uncommitted and the next run replays.
    private func retrying<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
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
