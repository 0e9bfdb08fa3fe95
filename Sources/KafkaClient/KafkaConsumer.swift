import CRdKafka
import Foundation
import Logging
import Synchronization

/// A Kafka consumer over librdkafka, in a consumer group or with manual assignment.
///
/// Threading: every blocking call runs on the handle's executor (one
/// dedicated thread). The async API (`poll`, `batches`, `commit`, `close`…)
/// suspends the caller; the synchronous methods block and are for code that
/// already runs on a thread of its own (tools, benchmarks).
///
/// Rebalances: with `manualRebalance`, librdkafka's rebalance callback only
/// records the event; it reaches the owner in the next polled `Batch`, and the
/// assignment changes when the owner calls `applyAssignment` /
/// `applyRevocation` (after committing revoked work, restoring new tasks).
/// Otherwise the callback applies the change itself and calls `rebalance`
/// (assigned: after the change; revoked: before it).
/// Offsets are never committed automatically by default (`enable.auto.commit=false`).
public final class KafkaConsumer: Sendable {
    let handle: KafkaHandle
    let queue: KafkaPointer
    private let open = RunFlag()
    let logger: Logger
    /// Whether the owner applies rebalances (`applyAssignment` / `applyRevocation`).
    public let manualRebalance: Bool
    /// A queue per assigned partition (`queuePerPartition`), else nil: one consumer queue.
    let partitionQueues: PartitionQueues?
    /// Where a partition without a committed offset starts, by `auto.offset.reset`:
    /// `KafkaOffset.beginning` (earliest), `KafkaOffset.end` (latest), or
    /// `KafkaOffset.invalid` (`error`, or a value librdkafka alone interprets).
    ///
    /// An owner that read the group's committed offsets itself and found none passes
    /// this to `applyAssignment`: librdkafka then looks the offset up at once, where
    /// for a partition assigned at `KafkaOffset.invalid` it asks the group again and,
    /// finding nothing, waits 100 ms before the same lookup (2.0.2's
    /// `rd_kafka_offset_reset` backs off whenever it resets for an error, and "no
    /// committed offset" is one).
    public let startWithoutCommittedOffset: Int64

    public static let defaultConfig: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
    ]

    /// - Parameters:
    ///   - config: librdkafka configuration passed through unchanged (on top of
    ///     `defaultConfig`); `group.id` is required by librdkafka for `subscribe`.
    ///   - manualRebalance: the owner applies assignment changes (see the type's documentation).
    ///   - rebalance: called on the polling thread inside librdkafka's rebalance
    ///     callback; it must return quickly (record, do not wait).
    ///   - queuePerPartition: with `manualRebalance`, every partition assigned through
    ///     `applyAssignment` gets a queue of its own, which polls take from in turn:
    ///     librdkafka's prefetch bounds (`queued.min.messages`,
    ///     `queued.max.messages.kbytes`) then hold per partition, and a backlog on one
    ///     partition neither stops the fetching of the others nor queues ahead of them
    ///     (see `PartitionQueues`). A partition the polls drained from its bound is
    ///     fetched again at once (see `FetchWaker`), not at librdkafka's next wake-up.
    public init(
        config: [String: String], logger: Logger, manualRebalance: Bool = false, queuePerPartition: Bool = false,
        rebalance: (@Sendable (RebalanceEvent) -> Void)? = nil
    ) throws(KafkaError) {
        self.logger = logger
        self.manualRebalance = manualRebalance
        var merged = Self.defaultConfig.merging(config) { _, new in new }
        if merged["group.id"] == nil { merged["group.id"] = "stream-engine-unassigned-\(UUID().uuidString)" }
        startWithoutCommittedOffset = Self.startOffset(autoOffsetReset: merged["auto.offset.reset"])
        if queuePerPartition && manualRebalance && !FetchWaker.needed && merged["fetch.queue.backoff.ms"] == nil {
            // librdkafka 2.1.0 and later look at a partition stopped at its prefetch bound again
            // after this long (1 s by default); before, a `FetchWaker` wakes its leader.
            merged["fetch.queue.backoff.ms"] = "10"
        }
        let handle = try KafkaHandle(kind: RD_KAFKA_CONSUMER, config: merged, logger: logger) { conf in
            if manualRebalance {
                rd_kafka_conf_set_rebalance_cb(conf, kafkaRebalanceCallback)
            } else {
                rd_kafka_conf_set_rebalance_cb(conf, kafkaAutoRebalanceCallback)
            }
        }
        self.handle = handle
        handle.context.rebalanceObserver.withLock { $0 = rebalance }
        rd_kafka_poll_set_consumer(handle.pointer)
        let queue = KafkaPointer(pointer: rd_kafka_queue_get_consumer(handle.pointer))
        self.queue = queue
        if queuePerPartition && manualRebalance {
            do throws(KafkaError) {
                partitionQueues = try PartitionQueues(
                    main: queue.pointer, prefetchBound: Int(merged["queued.min.messages"] ?? "") ?? 100_000,
                    waker: FetchWaker.needed ? FetchWaker(handle: handle) : nil)
            } catch {
                rd_kafka_queue_destroy(queue.pointer)
                throw error
            }
        } else {
            partitionQueues = nil
        }
    }

    /// The logical start offset for `auto.offset.reset` (see `startWithoutCommittedOffset`).
    static func startOffset(autoOffsetReset: String?) -> Int64 {
        switch autoOffsetReset?.lowercased() {
        case "earliest", "smallest", "beginning": KafkaOffset.beginning
        case "latest", "largest", "end": KafkaOffset.end
        default: KafkaOffset.invalid
        }
    }

    deinit {
        // Never block here: leave the group and release the queue on the handle's thread.
        // (`close()` and `closeBlocking()` released the queue already.)
        guard open.clear() else { return }
        let queue = self.queue, handle = self.handle, partitionQueues = self.partitionQueues
        handle.context.closing.store(true, ordering: .releasing)
        partitionQueues?.waker?.closeWithoutWaiting()
        handle.executor.execute {
            partitionQueues?.close(main: queue.pointer)
            rd_kafka_consumer_close(handle.pointer)
            rd_kafka_queue_destroy(queue.pointer)
            withExtendedLifetime(handle) {}
        }
    }

    /// Leaves the group (with `manualRebalance`, the revocation is applied
    /// without further work: commit before closing) and destroys the handle.
    public func close() async {
        let queue = self.queue, handle = self.handle, logger = self.logger, partitionQueues = self.partitionQueues
        handle.context.closing.store(true, ordering: .releasing)
        if open.clear() {
            await partitionQueues?.waker?.close()
            _ = try? await handle.blocking {
                partitionQueues?.close(main: queue.pointer)
                let err = rd_kafka_consumer_close(handle.pointer)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR { logger.warning("consumer close: \(KafkaError(err))") }
                rd_kafka_queue_destroy(queue.pointer)
            }
            await handle.destroy()
        }
    }

    // MARK: Async API (on the handle's executor)

    /// Polls up to `maxMessages` (waiting up to `timeoutMs` for the first) and
    /// returns them with the rebalance events recorded meanwhile. Messages of the
    /// topics in `skippingHeadersOf`, and messages whose value starts with
    /// `skippingHeadersOfValuesStartingWith`, come without their headers (see
    /// ``pollBatch(maxMessages:timeoutMs:skippingHeadersOf:skippingHeadersOfValuesStartingWith:)``).
    public func poll(
        maxMessages: Int, timeoutMs: Int32, skippingHeadersOf: Set<String> = [], skippingHeadersOfValuesStartingWith tag: UInt8? = nil
    ) async throws -> Batch {
        var batch = try await handle.blocking {
            try self.pollBatch(maxMessages: maxMessages, timeoutMs: timeoutMs, skippingHeadersOf: skippingHeadersOf, skippingHeadersOfValuesStartingWith: tag)
        }
        batch.rebalanceEvents = handle.context.rebalanceEvents.withLock { events in
            defer { events.removeAll() }
            return events
        }
        return batch
    }

    /// The consumer as an async sequence of batches. Back-pressure: the next
    /// poll happens only when the next batch is asked for. Ends when the
    /// consumer is closed or the task is cancelled.
    /// False once the consumer is closed: `batches` ends then.
    public var isOpen: Bool { open.isSet }

    public func batches(maxMessages: Int, timeoutMs: Int32 = 100) -> Batches {
        Batches(consumer: self, maxMessages: maxMessages, timeoutMs: timeoutMs)
    }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = Batch
        let consumer: KafkaConsumer
        let maxMessages: Int
        let timeoutMs: Int32
        public struct AsyncIterator: AsyncIteratorProtocol {
            let consumer: KafkaConsumer
            let maxMessages: Int
            let timeoutMs: Int32
            public mutating func next() async throws -> Batch? {
                guard consumer.open.isSet, !Task.isCancelled else { return nil }
                return try await consumer.poll(maxMessages: maxMessages, timeoutMs: timeoutMs)
            }
        }
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer, maxMessages: maxMessages, timeoutMs: timeoutMs) }
    }

    /// Messages waiting in librdkafka's queue of each partition (`queuePerPartition`; else empty).
    public var queuedPerPartition: [TopicPartition: Int] { partitionQueues?.lengths() ?? [:] }

    /// Whether the group uses the cooperative (incremental) rebalance protocol.
    public var isCooperative: Bool { usesCooperativeProtocol(handle.pointer) }

    /// Acts on an `.assigned` event (manual rebalance): adds the partitions
    /// (cooperative) or sets the assignment (eager). An offset of
    /// `KafkaOffset.invalid` starts from the group's committed offset;
    /// `startWithoutCommittedOffset` starts where `auto.offset.reset` says.
    public func applyAssignment(_ partitions: [TopicPartitionOffset]) async throws {
        let handle = self.handle, partitionQueues = self.partitionQueues
        try await handle.blocking {
            // Before the assignment: its fetch start forwards a queue the application has not set.
            partitionQueues?.add(partitions.map(\.topicPartition), rk: handle.pointer)
            let list = makePartitionList(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if usesCooperativeProtocol(handle.pointer) {
                if let e = rd_kafka_incremental_assign(handle.pointer, list) { throw KafkaError(consuming: e) }
            } else {
                try KafkaError.check(rd_kafka_assign(handle.pointer, list), "assign")
            }
        }
    }

    /// Acts on a `.revoked` event (manual rebalance), after the revoked work was committed.
    public func applyRevocation(_ partitions: [TopicPartition]) async throws {
        let handle = self.handle, partitionQueues = self.partitionQueues
        try await handle.blocking {
            if usesCooperativeProtocol(handle.pointer) {
                let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
                defer { rd_kafka_topic_partition_list_destroy(list) }
                if let e = rd_kafka_incremental_unassign(handle.pointer, list) { throw KafkaError(consuming: e) }
                partitionQueues?.remove(partitions)
            } else {
                try KafkaError.check(rd_kafka_assign(handle.pointer, nil), "unassign")
                partitionQueues?.removeAll()
            }
        }
    }

    /// Commits offsets (offset = next offset to read); suspends until the coordinator answered.
    public func commit(_ offsets: [TopicPartitionOffset]) async throws {
        guard !offsets.isEmpty else { return }
        try await handle.blocking { try self.commit(offsets) }
    }

    /// The group's committed offsets (`KafkaOffset.invalid` when none).
    public func committed(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: Int64] {
        try await handle.blocking { try self.committed(partitions, timeoutMs: timeoutMs) }
    }

    /// The group's committed offsets with their commit metadata.
    public func committedWithMetadata(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: TopicPartitionOffset] {
        let handle = self.handle
        return try await handle.blocking {
            let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(rd_kafka_committed(handle.pointer, list, timeoutMs), "committed offsets")
            var out: [TopicPartition: TopicPartitionOffset] = [:]
            for tpo in topicPartitionOffsets(of: list) { out[tpo.topicPartition] = tpo }
            return out
        }
    }

    /// Moves the fetch position of assigned partitions.
    public func seek(_ offsets: [TopicPartitionOffset], timeoutMs: Int32 = 10_000) async throws {
        try await handle.blocking { try self.seek(offsets, timeoutMs: timeoutMs) }
    }

    /// End offsets of many partitions in one round.
    public func endOffsets(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: Int64] {
        try await handle.blocking { try self.endOffsets(partitions, timeoutMs: timeoutMs) }
    }

    /// Partition count of every topic of the cluster.
    public func topicPartitionCounts(timeoutMs: Int32 = 10_000) async throws -> [String: Int] {
        try await handle.blocking { try self.topicPartitionCounts(timeoutMs: timeoutMs) }
    }

    /// Low and high watermark of a partition.
    public func watermarks(_ tp: TopicPartition, timeoutMs: Int32 = 10_000) async throws -> Watermarks {
        try await handle.blocking { try self.watermarks(tp, timeoutMs: timeoutMs) }
    }

    /// Runs a series of blocking calls on this consumer's executor (e.g. a restore loop).
    public func withExecutor<T: Sendable>(_ body: @escaping @Sendable (KafkaConsumer) throws -> T) async throws -> T {
        try await handle.blocking { try body(self) }
    }

    // MARK: Blocking API

    /// Subscribes to topics (consumer group; partitions come through rebalances).
    public func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = makePartitionList(topics.map { TopicPartitionOffset($0, -1, KafkaOffset.invalid) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_subscribe(handle.pointer, list), "subscribe \(topics)")
    }

    /// Assigns partitions directly, without a group rebalance (restore and tool consumers).
    public func assign(_ partitions: [TopicPartitionOffset]) throws(KafkaError) {
        let list = makePartitionList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_assign(handle.pointer, list), "assign")
    }

    /// The current assignment.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try KafkaError.check(rd_kafka_assignment(handle.pointer, &list), "assignment")
        guard let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return topicPartitions(of: list)
    }

    /// Commits offsets synchronously (offset = next offset to read). Blocking:
    /// call from a dedicated thread or from a rebalance handler.
    public func commit(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = makePartitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_commit(handle.pointer, list, 0), "commit")
    }

    /// Committed offsets of the group for `partitions` (`KafkaOffset.invalid` when none). Blocking.
    public func committed(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) throws(KafkaError) -> [TopicPartition: Int64] {
        let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_committed(handle.pointer, list, timeoutMs), "committed offsets")
        var out: [TopicPartition: Int64] = [:]
        for tpo in topicPartitionOffsets(of: list) { out[tpo.topicPartition] = tpo.offset }
        return out
    }

    /// Stores offsets for a later commit (`enable.auto.offset.store=false`).
    public func storeOffsets(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        let list = makePartitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_offsets_store(handle.pointer, list), "store offsets")
    }

    /// Back-pressure: stops taking records of `partitions` until `resumeTaking`. With
    /// `queuePerPartition`, polls leave their queues alone and librdkafka stops fetching
    /// each once its queue holds the prefetch bound, keeping what it fetched; otherwise
    /// the partitions are paused (librdkafka drops what it fetched and fetches it again
    /// after `resume`).
    public func pauseTaking(_ partitions: [TopicPartition]) throws(KafkaError) {
        if let partitionQueues { partitionQueues.hold(partitions) } else { try pause(partitions) }
    }

    /// Takes records of `partitions` again (see `pauseTaking`).
    public func resumeTaking(_ partitions: [TopicPartition]) throws(KafkaError) {
        if let partitionQueues { partitionQueues.release(partitions) } else { try resume(partitions) }
    }

    /// Stops fetching from partitions (back-pressure) until `resume`.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_pause_partitions(handle.pointer, list), "pause")
    }

    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_resume_partitions(handle.pointer, list), "resume")
    }

    /// Moves the fetch position of assigned partitions. Blocking up to `timeoutMs`.
    public func seek(_ offsets: [TopicPartitionOffset], timeoutMs: Int32 = 10_000) throws(KafkaError) {
        let list = makePartitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_seek_partitions(handle.pointer, list, timeoutMs))
    }

    /// Current positions (next offset to fetch) of partitions.
    public func positions(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartition: Int64] {
        let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_position(handle.pointer, list), "position")
        var out: [TopicPartition: Int64] = [:]
        for tpo in topicPartitionOffsets(of: list) { out[tpo.topicPartition] = tpo.offset }
        return out
    }

    /// Low and high watermark asked of the broker. Blocking.
    public func watermarks(_ tp: TopicPartition, timeoutMs: Int32 = 10_000) throws(KafkaError) -> Watermarks {
        try handle.queryWatermarks(tp, timeoutMs: timeoutMs)
    }

    /// Partition count of a topic, `nil` if it does not exist. Blocking.
    public func partitionCount(topic: String, timeoutMs: Int32 = 10_000) throws(KafkaError) -> Int? {
        try handle.partitionCount(topic: topic, timeoutMs: timeoutMs)
    }

    /// End offsets of many partitions, asked of the brokers in one round. Blocking.
    public func endOffsets(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) throws(KafkaError) -> [TopicPartition: Int64] {
        try handle.endOffsets(partitions, timeoutMs: timeoutMs)
    }

    /// Partition count of every topic of the cluster. Blocking.
    public func topicPartitionCounts(timeoutMs: Int32 = 10_000) throws(KafkaError) -> [String: Int] {
        try handle.topicPartitionCounts(timeoutMs: timeoutMs)
    }

    /// The group metadata for `KafkaProducer.sendOffsetsToTransaction`.
    func groupMetadata() -> ConsumerGroupMetadata {
        ConsumerGroupMetadata(rd_kafka_consumer_group_metadata(handle.pointer))
    }

    /// A fatal error the client reported.
    public var fatalError: KafkaError? { handle.context.fatalError.withLock { $0 } }

    /// Leaves the group and closes, blocking the calling thread (tools on a
    /// thread of their own); the handle is destroyed when the last reference goes.
    public func closeBlocking() {
        handle.context.closing.store(true, ordering: .releasing)
        if open.clear() {
            partitionQueues?.waker?.closeWithoutWaiting()
            partitionQueues?.close(main: queue.pointer)
            let err = rd_kafka_consumer_close(handle.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { logger.warning("consumer close: \(KafkaError(err))") }
            rd_kafka_queue_destroy(queue.pointer)
        }
    }
}

/// Applies rebalances inside the callback (consumers without `manualRebalance`):
/// assigned partitions are assigned before the observer hears of them, revoked
/// ones go after it returned.
func kafkaAutoRebalanceCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let opaque else { return }
    let ctx = Unmanaged<KafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    let list = partitions.map { topicPartitions(of: $0) } ?? []
    let cooperative = usesCooperativeProtocol(rk)
    let observer = ctx.rebalanceObserver.withLock { $0 }
    if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
        if cooperative {
            if let e = rd_kafka_incremental_assign(rk, partitions) { ctx.logger.error("incremental assign: \(KafkaError(consuming: e))") }
        } else {
            rd_kafka_assign(rk, partitions)
        }
        observer?(.assigned(list))
    } else {
        if err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS { ctx.logger.error("rebalance error: \(KafkaError(err))") }
        observer?(.revoked(list, lost: err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk) != 0))
        if cooperative {
            if let e = rd_kafka_incremental_unassign(rk, partitions) { ctx.logger.error("incremental unassign: \(KafkaError(consuming: e))") }
        } else if rd_kafka_assign(rk, nil) != RD_KAFKA_RESP_ERR_NO_ERROR, let partitions {
            // No protocol known any more (closing) and a cooperative assignment: unassign incrementally.
            if let e = rd_kafka_incremental_unassign(rk, partitions) { ctx.logger.error("unassign: \(KafkaError(consuming: e))") }
        }
    }
}

/// Whether the consumer's group uses the cooperative protocol. librdkafka
/// answers NULL when the consumer is in no group (e.g. while it closes).
func usesCooperativeProtocol(_ rk: OpaquePointer) -> Bool {
    guard let name = rd_kafka_rebalance_protocol(rk) else { return false }
    return String(cString: name) == "COOPERATIVE"
}
