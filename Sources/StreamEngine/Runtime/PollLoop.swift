import KafkaClient
import Logging

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
