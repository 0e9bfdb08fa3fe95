import CRdKafka
import Foundation
import Logging
import Synchronization

/// A Kafka consumer over librdkafka, in a consumer group or with manual assignment.
///
/// Threading: `poll`/`pollBatch` block and must be called from one dedicated
/// thread (the loop that owns the consumer queue), never from Swift's
/// cooperative pool. Rebalance handlers run inside those calls, before the
/// assignment changes: revoke work (flush, commit) happens there.
/// Offsets are never committed automatically by default (`enable.auto.commit=false`).
public final class KafkaConsumer: Sendable {
    let handle: KafkaHandle
    private let queue: KafkaPointer
    private let open = RunFlag()
    private let logger: Logger

    public static let defaultConfig: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
    ]

    /// - Parameters:
    ///   - config: librdkafka configuration passed through unchanged (on top of
    ///     `defaultConfig`); `group.id` is required by librdkafka for `subscribe`.
    ///   - rebalance: called on the polling thread inside librdkafka's rebalance
    ///     callback; the call blocks that thread until the handler returns.
    public init(config: [String: String], logger: Logger, rebalance: (@Sendable (RebalanceEvent) async -> Void)? = nil) throws(KafkaError) {
        self.logger = logger
        var merged = Self.defaultConfig.merging(config) { _, new in new }
        if merged["group.id"] == nil { merged["group.id"] = "stream-engine-unassigned-\(UUID().uuidString)" }
        let handle = try KafkaHandle(kind: RD_KAFKA_CONSUMER, config: merged, logger: logger) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, kafkaRebalanceCallback)
        }
        self.handle = handle
        if let rebalance {
            handle.context.rebalance.withLock {
                $0 = { event in
                    // We are on the polling thread, never the cooperative pool: block it
                    // until the asynchronous revoke/assign work has finished.
                    let done = DispatchSemaphore(value: 0)
                    Task { await rebalance(event); done.signal() }
                    done.wait()
                }
            }
        }
        rd_kafka_poll_set_consumer(handle.pointer)
        self.queue = KafkaPointer(pointer: rd_kafka_queue_get_consumer(handle.pointer))
    }

    deinit {
        rd_kafka_queue_destroy(queue.pointer)
        if open.clear() {
            rd_kafka_consumer_close(handle.pointer)
        }
    }

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
        /// Partitions that reached their end (`enable.partition.eof=true`), with the end offset.
        public var partitionEOFs: [TopicPartitionOffset] = []
    }

    /// Polls up to `maxMessages` (blocking up to `timeoutMs` for the first),
    /// through `rd_kafka_consume_batch_queue`. Serves rebalance callbacks.
    /// Throws consumer errors other than partition EOF.
    public func pollBatch(maxMessages: Int, timeoutMs: Int32) throws(KafkaError) -> Batch {
        var ptrs = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
        let n = rd_kafka_consume_batch_queue(queue.pointer, timeoutMs, &ptrs, maxMessages)
        if n < 0 { throw KafkaError(rd_kafka_last_error(), "consume batch") }
        var batch = Batch()
        batch.messages.reserveCapacity(n)
        var firstError: KafkaError?
        // Topic names by topic handle: one String per topic and batch, not per message.
        var names: [OpaquePointer: String] = [:]
        for i in 0..<n {
            guard let msg = ptrs[i] else { continue }
            defer { rd_kafka_message_destroy(msg) }
            let m = msg.pointee
            var topic = ""
            if let rkt = m.rkt {
                if let known = names[rkt] { topic = known } else {
                    topic = String(cString: rd_kafka_topic_name(rkt))
                    names[rkt] = topic
                }
            }
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                batch.partitionEOFs.append(TopicPartitionOffset(topic, m.partition, m.offset))
                continue
            }
            do throws(KafkaError) {
                if let converted = try Self.convert(msg, topic: topic) { batch.messages.append(converted) }
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if batch.messages.isEmpty, let firstError { throw firstError }
        if let firstError { logger.warning("consumer error: \(firstError)") }
        return batch
    }

    static func convert(_ msg: UnsafeMutablePointer<rd_kafka_message_t>, topic knownTopic: String? = nil) throws(KafkaError) -> KafkaMessage? {
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
        if rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
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

    /// Commits offsets on a thread of its own.
    public func commitAsync(_ offsets: [TopicPartitionOffset]) async throws {
        try await runBlocking("kafka-commit") { try self.commit(offsets) }
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

    /// Leaves the group (revoking through the rebalance handler) and closes.
    /// Blocking: call from the polling thread or a dedicated one.
    public func close() {
        if open.clear() {
            let err = rd_kafka_consumer_close(handle.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { logger.warning("consumer close: \(KafkaError(err))") }
        }
    }
}
