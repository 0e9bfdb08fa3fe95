import Foundation
import KafkaClient
import RedisClient

/// The task manager's commit: every task prepares (changelog records, Redis commands,
/// offsets), the producer flushes, Redis is written behind the tasks' fences, SQL rows
/// go out, then the input offsets are committed and due snapshots written. Without a
/// Kafka transaction the periodic commit finishes behind the tasks (`commitInFlight`).
extension TaskManager {
    /// Commits every task: changelog and output records acknowledged and
    /// Redis writes applied (fenced; both at once unless in a Kafka transaction,
    /// where the flush comes first), then input offsets committed.
    ///
    /// - Parameter overlapping: the periodic commit of the poll loop, without a Kafka transaction:
    ///   once the changelog and output records are acknowledged, the Redis and SQL writes and
    ///   the offset commit go on while the tasks process the next records (`commitInFlight`).
    ///   The next commit, a revocation and the final commit wait for it first; its error
    ///   surfaces there or at the next batch. Not overlapped: a commit that writes snapshots
    ///   (a snapshot holds the state at the offsets it names) and one of a task that combines
    ///   before a repartition (see `Combiner`).
    func commit(overlapping: Bool = false) async throws {
        try await settleCommitInFlight()
        guard !crashed else { throw SimulatedCrash() }
        let clock = ContinuousClock()
        let tp = clock.now
        // The tasks prepare in parallel (each on its own actor; nothing of one is shared with another).
        let work = tasks.map { id, task in (task, inputIdle(id)) }
        let commits = try await withThrowingTaskGroup(of: TaskCommit?.self) { group in
            for (task, idle) in work { group.addTask { try await task.prepareCommit(inputIdle: idle) } }
            return try await group.reduce(into: [TaskCommit]()) { if let c = $1 { $0.append(c) } }
        }.sorted { $0.task < $1.task }
        uncommitted = false
        guard !commits.isEmpty else {
            commitRounds += 1
            if !pendingOffsets.isEmpty && !transactional { try await commitPendingOffsets([]) }
            return
        }
        var calls: [RedisScriptCall] = []
        for c in commits where !c.redisWrites.isEmpty {
            let fenceKey = "se:fence:\(env.config.applicationId):\(c.task)"
            calls.append(RedisFence.call(fenceKey: fenceKey, tag: c.tag, commands: c.redisWrites))
        }
        for c in commits where !c.punctuationWrites.isEmpty {
            let fenceKey = "se:fence:\(env.config.applicationId):\(c.task)"
            calls.append(RedisFence.call(fenceKey: fenceKey, punctuation: nextPunctuationFence(), commands: c.punctuationWrites))
        }
        var due: [StreamTask] = []
        for c in commits {
            if let task = tasks[c.task], await task.snapshotDue { due.append(task) }
        }
        let t0 = clock.now
        if overlapping && !transactional && due.isEmpty && commits.allSatisfy(\.mayOverlap) {
            // Redis is written while the producer flushes (see below); the commit goes on
            // behind the tasks once the changelog is acknowledged: the flush stays here, since
            // records the tasks produce meanwhile would keep a flush of the whole queue waiting.
            let redisWrite = Task { try await self.writeRedis(calls) }
            let flushTime: Duration
            do {
                flushTime = try await flushThenCheckCrash()
            } catch {
                _ = try? await redisWrite.value
                throw error
            }
            commitInFlight = Task {
                do {
                    try await redisWrite.value
                    _ = try await self.completeCommit(commits, timing: CommitTiming(start: tp, prepared: t0, flush: flushTime, redisDone: clock.now))
                } catch is TaskMigrated {
                    // The tasks were dropped dirty: they restart from the committed offsets (restartDroppedTasks).
                } catch {
                    self.commitFailure = error
                }
            }
            return
        }
        var flushTime = Duration.zero
        if transactional || calls.isEmpty || redis == nil {
            flushTime = try await flushThenCheckCrash()
            try await writeRedis(calls)
        } else {
            // Without a Kafka transaction the Redis writes need not wait for the flush: a
            // restore applies only changelog records whose offsets were committed, and the
            // offsets are committed after both. A crash in between leaves Redis ahead of the
            // committed offsets, which the fences cover (replayed writes are skipped or held).
            async let flushed: Duration = flushThenCheckCrash()
            try await writeRedis(calls)
            flushTime = try await flushed
        }
        guard try await completeCommit(commits, timing: CommitTiming(start: tp, prepared: t0, flush: flushTime, redisDone: clock.now)) else { return }
        let t3 = clock.now
        try await snapshot(due.filter { tasks[$0.id] != nil })
        let t4 = clock.now
        if t4 - t3 > .seconds(1) { logger.info("slow snapshots of \(due.count) tasks after a commit: \(t4 - t3)") }
    }

    /// When the phases of a commit ended (for its duration metric and the slow-commit log).
    private struct CommitTiming {
        let start: ContinuousClock.Instant
        let prepared: ContinuousClock.Instant
        let flush: Duration
        let redisDone: ContinuousClock.Instant
    }

    /// A commit after its changelog flush and Redis writes: SQL writes, input offsets
    /// committed, the tasks told. False when the group refused the offsets (held for the next commit).
    private func completeCommit(_ commits: [TaskCommit], timing: CommitTiming) async throws -> Bool {
        let clock = ContinuousClock()
        // SQL sinks: one transaction per task, fenced by its input offsets (see SQLSinkWriter).
        if let sql {
            for c in commits where !c.sqlRows.isEmpty {
                _ = try await retrying("write to SQL") { try await sql.write(task: c.task.description, tag: c.tag, rows: c.sqlRows) }
            }
            try crashIfInjected(.afterSQLWrite)
        }
        let t2 = clock.now
        try crashIfInjected(.afterRedisWrite)
        let offsets = groupOffsets(commits)
        if transactional {
            do {
                try await reportingWhileWaiting("transaction commit with offsets \(Self.summary(offsets))", logger: logger) {
                    try await self.commitTransaction(offsets)
                }
            } catch let error as KafkaError where Self.isGroupChange(error) || error.requiresAbort {
                // The aborted transaction took the tasks' state changes with it: restart them.
                try await abortTransaction()
                dropTasksDirty(because: error)
                throw TaskMigrated()
            }
        } else {
            try await commitPendingOffsets(offsets)
            // Refused while the group rebalances: no snapshot of state ahead of the committed offsets.
            if !pendingOffsets.isEmpty { return false }
        }
        try crashIfInjected(.afterOffsetCommit)
        for c in commits {
            // A combiner that sent partials needs one more commit to confirm them, idle or not.
            if await tasks[c.task]?.markCommitted(c.tag) == true { uncommitted = true }
        }
        self.commits += 1
        commitRounds += 1
        for c in commits {
            if let started = awaitingFirstCommit.removeValue(forKey: c.task) {
                logger.info("task \(c.task): first commit since it started here, \(Int((ContinuousClock.now - started).seconds * 1000)) ms after its assignment")
            }
        }
        let t3 = clock.now
        commitTimer.recordNanoseconds((t3 - timing.prepared).totalNanoseconds)
        if t3 - timing.start > .seconds(1) {
            logger.info("slow commit of \(commits.count) tasks: prepare \(timing.prepared - timing.start), Kafka flush \(timing.flush), Kafka flush and Redis \(timing.redisDone - timing.prepared), SQL \(t2 - timing.redisDone), offsets \(t3 - t2)")
        }
        return true
    }

    /// Waits for the commit running behind the tasks (`commit(overlapping:)`), if any, and
    /// throws what it failed with.
    func settleCommitInFlight() async throws {
        if let inFlight = commitInFlight {
            commitInFlight = nil
            await inFlight.value
        }
        if let failure = commitFailure {
            commitFailure = nil
            throw failure
        }
    }

    /// Flushes the producer (changelog and output records acknowledged); the flush's duration.
    private func flushThenCheckCrash() async throws -> Duration {
        let start = ContinuousClock.now
        let producer = env.producer
        try await retrying("flush Kafka producer") { try await producer.flush(timeout: .seconds(30)) }
        let took = ContinuousClock.now - start
        try crashIfInjected(.afterKafkaFlush)
        return took
    }

    /// Every task's fenced write in one round trip: each is applied at most once (its
    /// fence), so a retry of the whole batch after a lost connection is safe.
    private func writeRedis(_ calls: [RedisScriptCall]) async throws {
        guard let redis, !calls.isEmpty else { return }
        let w0 = ContinuousClock.now
        _ = try await retrying("write to Redis") { try await redis.evalScript(RedisFence.script, calls: calls) }
        redisWriteTimer.recordNanoseconds((ContinuousClock.now - w0).totalNanoseconds)
    }

    /// A sequence for the fence of periodic-work writes: wall-clock milliseconds, increasing.
    private func nextPunctuationFence() -> Int64 {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        lastPunctuationFence = max(now, lastPunctuationFence + 1)
        return lastPunctuationFence
    }
}
