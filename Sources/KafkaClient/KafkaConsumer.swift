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
    private let queue: KafkaPointer
    private let open = RunFlag()
    private let logger: Logger
    /// Whether the owner applies rebalances (`applyAssignment` / `applyRevocation`).
    public let manualRebalance: Bool
    /// A queue per assigned partition (`queuePerPartition`), else nil: one consumer queue.
    private let partitionQueues: PartitionQueues?

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
    ///     (see `PartitionQueues`).
    public init(
        config: [String: String], logger: Logger, manualRebalance: Bool = false, queuePerPartition: Bool = false,
        rebalance: (@Sendable (RebalanceEvent) -> Void)? = nil
    ) throws(KafkaError) {
        self.logger = logger
        self.manualRebalance = manualRebalance
        var merged = Self.defaultConfig.merging(config) { _, new in new }
        if merged["group.id"] == nil { merged["group.id"] = "stream-engine-unassigned-\(UUID().uuidString)" }
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
                partitionQueues = try PartitionQueues(main: queue.pointer)
            } catch {
                rd_kafka_queue_destroy(queue.pointer)
                throw error
            }
        } else {
            partitionQueues = nil
        }
    }

    deinit {
        // Never block here: leave the group and release the queue on the handle's thread.
        // (`close()` and `closeBlocking()` released the queue already.)
        guard open.clear() else { return }
        let queue = self.queue, handle = self.handle, partitionQueues = self.partitionQueues
        handle.context.closing.store(true, ordering: .releasing)
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
    /// `KafkaOffset.invalid` starts from the group's committed offset.
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

    /// Polls one message (blocking up to `timeoutMs`). Serves rebalance callbacks.
    public func poll(timeoutMs: Int32) throws(KafkaError) -> KafkaMessage? {
        guard let msg = rd_kafka_consumer_poll(handle.pointer, timeoutMs) else { return nil }
        defer { rd_kafka_message_destroy(msg) }
        return try Self.convert(msg)
    }

    /// Result of `pollBatch`.
    public struct Batch: Sendable {
        public var messages: [KafkaMessage] = []
        /// Rebalance events recorded during the poll (async `poll` with `manualRebalance`).
        public var rebalanceEvents: [RebalanceEvent] = []
        /// Partitions that reached their end (`enable.partition.eof=true`), with the end offset.
        public var partitionEOFs: [TopicPartitionOffset] = []
    }

    /// Polls up to `maxMessages` (blocking up to `timeoutMs` for the first),
    /// through `rd_kafka_consume_queue`, then `rd_kafka_consume_batch_queue` without
    /// waiting for what is already fetched. Serves rebalance callbacks.
    /// Throws consumer errors other than partition EOF.
    ///
    /// Messages of the topics in `skippingHeadersOf` come with no headers: a reader that
    /// never looks at them saves their parse (librdkafka parses a record's header block
    /// on first access, with an allocation even when the block holds no header). So do
    /// messages of other topics whose value's first byte is `tag`: a value format that
    /// carries in the value what other records of the topic carry in headers (one byte
    /// read instead of the header block's parse, about 1,700 instructions for one header).
    public func pollBatch(
        maxMessages: Int, timeoutMs: Int32, skippingHeadersOf: Set<String> = [], skippingHeadersOfValuesStartingWith tag: UInt8? = nil
    ) throws(KafkaError) -> Batch {
        let (ptrs, n) = try consumeQueue(maxMessages: maxMessages, timeoutMs: timeoutMs)
        var batch = Batch()
        batch.messages.reserveCapacity(n)
        var firstError: KafkaError?
        // Topic names (and whether their headers are read) by topic handle: once per topic and batch, not per message.
        var names: [OpaquePointer: (name: String, headers: Bool)] = [:]
        for i in 0..<n {
            guard let msg = ptrs[i] else { continue }
            defer { rd_kafka_message_destroy(msg) }
            let m = msg.pointee
            var topic = ""
            var headers = true
            if let rkt = m.rkt {
                if let known = names[rkt] { (topic, headers) = known } else {
                    topic = String(cString: rd_kafka_topic_name(rkt))
                    headers = !skippingHeadersOf.contains(topic)
                    names[rkt] = (topic, headers)
                }
            }
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                batch.partitionEOFs.append(TopicPartitionOffset(topic, m.partition, m.offset))
                continue
            }
            if headers, let tag, m.len > 0, let payload = m.payload, payload.load(as: UInt8.self) == tag { headers = false }
            do throws(KafkaError) {
                if let converted = try Self.convert(msg, topic: topic, headers: headers) { batch.messages.append(converted) }
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if batch.messages.isEmpty, let firstError { throw firstError }
        if let firstError { logger.warning("consumer error: \(firstError)") }
        return batch
    }

    /// Up to `maxMessages` messages (or events) of the queue; the caller destroys the first `n`.
    private func consumeQueue(maxMessages: Int, timeoutMs: Int32) throws(KafkaError) -> (ptrs: [UnsafeMutablePointer<rd_kafka_message_t>?], n: Int) {
        if let partitionQueues { return try partitionQueues.consume(main: queue.pointer, maxMessages: maxMessages, timeoutMs: timeoutMs) }
        // Wait (up to the timeout) for the first message only, then take what is already
        // there: a batch call with a timeout waits for a full batch, which makes every
        // record of a quiet stream wait the whole timeout.
        guard let first = rd_kafka_consume_queue(queue.pointer, timeoutMs) else { return ([], 0) }
        var ptrs = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
        ptrs[0] = first
        var n = 1
        if maxMessages > 1 {
            let more = ptrs.withUnsafeMutableBufferPointer { buf in
                rd_kafka_consume_batch_queue(queue.pointer, 0, buf.baseAddress! + 1, maxMessages - 1)
            }
            if more < 0 {
                rd_kafka_message_destroy(first)
                throw KafkaError(rd_kafka_last_error(), "consume batch")
            }
            n += more
        }
        return (ptrs, n)
    }

    /// A polled message read in place (no copy of key, value or headers): valid only during
    /// the call of the `forEach` closure of ``pollBatch(maxMessages:timeoutMs:forEach:)``;
    /// copy out what must outlive it.
    public struct MessageView {
        let msg: UnsafeMutablePointer<rd_kafka_message_t>

        /// The message's partition.
        public var partition: Int32 { msg.pointee.partition }
        /// The message's offset.
        public var offset: Int64 { msg.pointee.offset }

        /// The key's bytes, or `nil` for no key.
        public var key: UnsafeRawBufferPointer? {
            msg.pointee.key.map { UnsafeRawBufferPointer(start: $0, count: msg.pointee.key_len) }
        }

        /// The value's bytes, or `nil` for no value (a tombstone).
        public var value: UnsafeRawBufferPointer? {
            msg.pointee.payload.map { UnsafeRawBufferPointer(start: $0, count: msg.pointee.len) }
        }

        /// The bytes of the last header named `name`; `nil` when there is none or it has no
        /// value (as ``KafkaMessage/header(_:)``'s `value`).
        public func header(_ name: String) -> UnsafeRawBufferPointer? {
            name.withCString { header(cString: $0) }
        }

        /// ``header(_:)`` with the name as a C string (a loop keeps it, and converts it once).
        public func header(cString name: UnsafePointer<CChar>) -> UnsafeRawBufferPointer? {
            var hdrs: OpaquePointer?
            guard rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return nil }
            var val: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_last(hdrs, name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR, let val else { return nil }
            return UnsafeRawBufferPointer(start: val, count: size)
        }
    }

    /// What ``pollBatch(maxMessages:timeoutMs:forEach:)`` saw besides the messages.
    public struct ViewBatchSummary: Sendable {
        /// Messages handed to the closure.
        public var messages = 0
        /// Partitions that reached their end (`enable.partition.eof=true`), with the end offset.
        public var partitionEOFs: [TopicPartitionOffset] = []
    }

    /// Polls like ``pollBatch(maxMessages:timeoutMs:)`` but hands each message to `forEach`
    /// in place, without copying it into a ``KafkaMessage`` (restore loops that keep only a
    /// decoded form). When `forEach` returns `false` the remaining messages of the batch are
    /// released unread. Blocking: call on the consumer's executor or a thread of its own.
    /// Errors: as `pollBatch`, an error event is thrown only when no message came with it.
    public func pollBatch(maxMessages: Int, timeoutMs: Int32, forEach body: (MessageView) -> Bool) throws(KafkaError) -> ViewBatchSummary {
        var summary = ViewBatchSummary()
        let (ptrs, n) = try consumeQueue(maxMessages: maxMessages, timeoutMs: timeoutMs)
        var firstError: KafkaError?
        var go = true
        for i in 0..<n {
            guard let msg = ptrs[i] else { continue }
            defer { rd_kafka_message_destroy(msg) }
            guard go else { continue }
            let m = msg.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                summary.partitionEOFs.append(TopicPartitionOffset(topic, m.partition, m.offset))
                continue
            }
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                do throws(KafkaError) { _ = try Self.convert(msg) } catch { if firstError == nil { firstError = error } }
                continue
            }
            summary.messages += 1
            go = body(MessageView(msg: msg))
        }
        if summary.messages == 0, let firstError { throw firstError }
        if let firstError { logger.warning("consumer error: \(firstError)") }
        return summary
    }

    static func convert(_ msg: UnsafeMutablePointer<rd_kafka_message_t>, topic knownTopic: String? = nil, headers readsHeaders: Bool = true) throws(KafkaError) -> KafkaMessage? {
        let m = msg.pointee
        let topic = knownTopic ?? m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
            var text = String(cString: rd_kafka_err2str(m.err))
            if let p = m.payload, m.len > 0 {
                text = String(decoding: UnsafeRawBufferPointer(start: p, count: m.len), as: UTF8.self)
            }
            throw KafkaError(m.err, "consume \(topic)[\(m.partition)]: \(text)")
        }
        let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let value: [UInt8]? = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) }
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(msg, &tsType)
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if readsHeaders, rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            headers.reserveCapacity(rd_kafka_header_cnt(hdrs))
            var idx = 0
            var name: UnsafePointer<CChar>?
            var val: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, idx, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(String(cString: name!), val.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
                idx += 1
            }
        }
        return KafkaMessage(
            topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
            headers: headers, timestamp: tsType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts)
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
