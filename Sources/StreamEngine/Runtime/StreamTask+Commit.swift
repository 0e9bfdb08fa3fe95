import Foundation
import KafkaClient

/// A task's commit: changelog records tagged with its input positions, the Redis writes
/// behind its fence (held while it replays records an earlier run wrote), the offsets it
/// hands over, and its snapshots.
extension StreamTask {
    /// Sets what the task's Redis fence says was applied (read when the task starts).
    func setRedisAppliedThrough(_ applied: [String: Int64]) { redisAppliedThrough = applied }

    /// Once the task has processed past its Redis fence, the value-replacing writes it held
    /// back while replaying records the fence covers go out with this commit. A run that
    /// wrote Redis but never committed may have taken a merged input's records in another
    /// order than this run (arrival order, idle upstreams): its values need not be this
    /// run's, and a key whose last write fell in the replay must end with this run's value.
    /// Held, not written at once, so that the replay does not show older values meanwhile.
    /// Left: if the task stops before it passed the fence, the held writes are dropped (as
    /// they were skipped before): Redis keeps the earlier run's values until they change again.
    func releaseHeldRedisWrites() {
        guard !redisAppliedThrough.isEmpty else { return }
        let passed = redisAppliedThrough.allSatisfy { (processed[$0.key] ?? .min) >= $0.value }
            && processed.contains { $0.value > (redisAppliedThrough[$0.key] ?? -1) }
        guard passed else { return }
        redisAppliedThrough = [:]
        redisBatch = heldRedis.then(redisBatch)
        heldRedis = RedisWriteBatch()
    }

    /// Whether the current record's Redis writes were applied before this task started: a
    /// replayed record whose position the fence covers. Writing them again could undo what
    /// another task did since (a guest product the member side removed, for one); writes that
    /// replace a whole value are held (see `releaseHeldRedisWrites`).
    var inRedisAlready: Bool {
        guard let position = currentPosition, let applied = redisAppliedThrough[position.key] else { return false }
        return position.value <= applied
    }

    // MARK: Commit

    /// Writes one changelog record per changed key and hands over offsets and
    /// Redis writes; `nil` when nothing happened since the last commit.
    /// - Parameter inputIdle: every input partition of the task is at its end and nothing is
    ///   buffered (said in the progress markers of a task that writes a repartition topic).
    package func prepareCommit(inputIdle: Bool = false) async throws -> TaskCommit? {
        try emitDeferredResults()
        punctuate()
        let markersSent = sendProgressMarkers(inputIdle: inputIdle)
        try await drainBacklog()
        if let e = sendError { sendError = nil; throw e }
        if streamTime != .min {
            for store in stores.values where store.name != sub.dedupeStore { store.expire(streamTime: streamTime) }
        }
        // A merged input: persist what upstream tasks said, and resume reading at the first record not taken yet.
        var resume: TopicPartitionOffset?
        if let merge = input.merge, let topic = sub.sourceTopics.first {
            for (u, p) in input.takeChangedProgress() {
                stores[sub.dedupeStore!]?.put("\(Self.progressKeyPrefix)\(u)", .object(["st": .number(Double(p.streamTime)), "idle": .bool(p.idle), "o": .number(Double(p.offset))]))
            }
            if merge.lastOffset >= 0 {
                resume = TopicPartitionOffset(topic, partition, merge.minQueuedOffset ?? merge.lastOffset + 1)
            }
        }
        let resumeMoved = resume.map { $0.offset != lastResumeOffset } ?? false
        releaseHeldRedisWrites()
        let tag = CommitTag(processed)
        let storesChanged = stores.values.contains { $0.hasChanges }
        guard tag != lastCommittedTag || storesChanged || !redisBatch.isEmpty || !punctuationBatch.isEmpty || !sqlBatch.isEmpty
            || markersSent || resumeMoved || combiner?.needsCommit == true else { return nil }
        lastResumeOffset = resume?.offset
        // The backlog is empty here: the changelog records go straight to the producer, and
        // only when its queue is full does the task suspend until there is room, so a commit of
        // many keys holds at most a queue's worth of records in memory. (`trySend` first: an
        // async call per record would leave the task's executor and come back each time.)
        let framing = ChangelogCodec.CommitFraming(tag)
        for (name, store) in stores {
            let topic = env.config.changelogTopic(store: name)
            for (key, entry) in store.takeChanges() {
                let record = ChangelogCodec.record(topic: topic, partition: partition, key: key, entry: entry, framing: framing)
                if try !env.collector.trySend(record) { try await env.collector.send(record) }
            }
        }
        try await drainBacklog()
        if let e = sendError { sendError = nil; throw e }
        let redisWrites = redisBatch.encoded
        redisBatch = RedisWriteBatch()
        let punctuationWrites = punctuationBatch.encoded
        punctuationBatch = RedisWriteBatch()
        let metadata = StreamTimeMetadata.format(streamTime == .min ? nil : streamTime, mergePositions: input.merge == nil ? nil : nextOffsets)
        var offsets: [TopicPartitionOffset]
        if let resume {
            offsets = [TopicPartitionOffset(resume.topicPartition, resume.offset, metadata: metadata)]
        } else if combiner != nil {
            offsets = combinerOffsets(streamTime: streamTime.nonMin)
        } else {
            offsets = processed.filter { _ in input.merge == nil }.map { TopicPartitionOffset($0.key, partition, $0.value + 1, metadata: metadata) }
        }
        let rows = sqlBatch.rows
        sqlBatch = SQLWriteBatch()
        return TaskCommit(task: id, tag: tag, offsets: offsets, redisWrites: redisWrites, punctuationWrites: punctuationWrites, sqlRows: rows, mayOverlap: combiner == nil)
    }

    /// Notes a commit the task took part in; true when it sent records (a combiner's partials)
    /// that the next commit must confirm, even if nothing else happens.
    @discardableResult
    package func markCommitted(_ tag: CommitTag) -> Bool {
        lastCommittedTag = tag
        return combinerCommitted()
    }

    var snapshotDue: Bool { ContinuousClock.now - lastSnapshot >= .seconds(5) }

    /// Writes a snapshot of every store; `changelogEnds` are the changelog end offsets now.
    func writeSnapshots(changelogEnds: [String: Int64], committed: [String: Int64]) throws {
        lastSnapshot = ContinuousClock.now
        for (name, store) in stores {
            guard let end = changelogEnds[name] else { continue }
            let snap = StoreSnapshot(store: name, partition: partition, changelogOffset: end, inputOffsets: committed, entries: store.allEntries)
            try snap.write(to: StoreSnapshot.path(stateDir: env.stateDir, applicationId: env.config.applicationId, store: name, partition: partition))
        }
    }

    /// Input offsets processed (next offset to read) per topic.
    var nextOffsets: [String: Int64] { processed.mapValues { $0 + 1 } }
}
