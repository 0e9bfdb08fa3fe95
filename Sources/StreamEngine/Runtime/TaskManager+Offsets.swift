import KafkaClient

/// The task manager's input offsets: what the group commits per partition (the
/// slowest reader's position, every reader's own in the metadata), commits the
/// group refused while it rebalanced, and Kafka transactions on a real cluster.
extension TaskManager {
    /// The offsets to commit for the partitions of `commits`: per partition the
    /// smallest position of the tasks that read it. Tasks buffer their input and
    /// take it in event-time order, so the tasks of one partition (one per
    /// sub-topology reading its topic) are at different offsets; the group's
    /// single offset per partition may only move past what every one of them
    /// has processed. A task ahead of it finds its later changelog records
    /// uncommitted after a restart and replays them.
    func groupOffsets(_ commits: [TaskCommit]) -> [TopicPartitionOffset] {
        var touched: Set<TopicPartition> = []
        for c in commits {
            for o in c.offsets {
                positions[c.task, default: [:]][o.topicPartition] = o
                touched.insert(o.topicPartition)
            }
        }
        var out: [TopicPartitionOffset] = []
        for tp in touched.sorted(by: { $0.description < $1.description }) {
            let readers = (tasksByPartition[tp] ?? []).filter { tasks[$0] != nil }
            if readers.count == 1, let only = readers.first, let o = positions[only]?[tp], tasks[only]?.sub.fromRepartition == true {
                out.append(o)  // a merged repartition input: its own resume offset and metadata
                continue
            }
            var listed: [TaskID: CommittedPositions.Reader] = [:]
            var slowest = Int64.max
            for id in readers {
                let o = positions[id]?[tp] ?? TopicPartitionOffset(tp, max(0, startPositions[tp] ?? 0))
                listed[id] = CommittedPositions.Reader(
                    offset: o.offset, streamTime: o.metadata.flatMap(StreamTimeMetadata.parse), pendingEnd: o.metadata.flatMap(StreamTimeMetadata.pendingEnd))
                slowest = min(slowest, o.offset)
            }
            if slowest != .max { out.append(TopicPartitionOffset(tp, slowest, metadata: CommittedPositions.format(listed))) }
        }
        return out
    }

    /// Commits `offsets` plus the offsets pending from refused commits, for
    /// partitions still owned. A commit refused because the group is
    /// rebalancing (cooperative: it keeps its partitions) stays pending and is
    /// retried at the next commit, logged; a member removed from the group
    /// drops its tasks (the lost-partitions event follows).
    func commitPendingOffsets(_ offsets: [TopicPartitionOffset]) async throws {
        for o in offsets where o.offset >= (pendingOffsets[o.topicPartition]?.offset ?? -1) { pendingOffsets[o.topicPartition] = o }
        let all = pendingOffsets.filter { assignedPartitions.isEmpty || assignedPartitions.contains($0.key) }.map(\.value)
        guard !all.isEmpty else { pendingOffsets = [:]; return }
        // While the group rebalances, a commit with the old generation makes librdkafka
        // declare the assignment lost: hold commits until the rebalance's event arrived (bounded).
        if let held = commitsHeldSince, ContinuousClock.now - held < .seconds(10) { return }
        if commitsHeldSince != nil { logger.warning("no rebalance event 10 s after a refused commit: trying again (\(Self.summary(all)))") }
        commitsHeldSince = nil
        let consumer = self.consumer, logger = self.logger
        do {
            try await retrying("commit offsets") {
                try await reportingWhileWaiting("commit of offsets \(Self.summary(all))", logger: logger) {
                    try await consumer.commit(all)
                }
            }
            pendingOffsets = [:]
            if refusedCommits > 0 { logger.info("offsets committed after \(refusedCommits) refused attempts: \(Self.summary(all))") }
            refusedCommits = 0
        } catch let error as KafkaError where Self.isGroupChange(error) {
            refusedCommits += 1
            if error.code == 25 || error.code == 82 {  // UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID: no longer a member
                pendingOffsets = [:]
                dropTasksDirty(because: error)
                throw TaskMigrated()
            }
            commitsHeldSince = ContinuousClock.now
            logger.warning("offset commit refused (\(error.name): the group is rebalancing), attempt \(refusedCommits); committing again once the rebalance completed (at most 10 s): \(Self.summary(all))")
        }
    }

    /// exactly_once on a real cluster: changelog, output and repartition
    /// records and the input offsets commit in one Kafka transaction; the
    /// next transaction begins at once.
    func commitTransaction(_ offsets: [TopicPartitionOffset]) async throws {
        let producer = env.producer
        try await producer.sendOffsetsToTransaction(offsets, consumer: consumer)
        try await producer.commitTransaction()
        try producer.beginTransaction()
    }

    func abortTransaction() async throws {
        try await env.producer.abortTransaction()
        try env.producer.beginTransaction()
    }
}
