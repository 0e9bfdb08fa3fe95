import CRdKafka
import Foundation

/// Polling: messages taken from librdkafka's queues (the consumer queue, or one
/// queue per partition with `queuePerPartition`) and converted, copied or read in place.
extension KafkaConsumer {
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
        // The last message's topic: consecutive messages are mostly of one topic (a fetch's records
        // of one partition), and a pointer compare costs less than hashing it for the dictionary.
        var last: (rkt: OpaquePointer, name: String, headers: Bool)?
        for i in 0..<n {
            guard let msg = ptrs[i] else { continue }
            defer { rd_kafka_message_destroy(msg) }
            let m = msg.pointee
            var topic = ""
            var headers = true
            if let rkt = m.rkt {
                if let last, last.rkt == rkt {
                    (topic, headers) = (last.name, last.headers)
                } else {
                    if let known = names[rkt] { (topic, headers) = known } else {
                        topic = String(cString: rd_kafka_topic_name(rkt))
                        headers = !skippingHeadersOf.contains(topic)
                        names[rkt] = (topic, headers)
                    }
                    last = (rkt, topic, headers)
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
    fileprivate func consumeQueue(maxMessages: Int, timeoutMs: Int32) throws(KafkaError) -> (ptrs: [UnsafeMutablePointer<rd_kafka_message_t>?], n: Int) {
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
        let key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
        let value = m.payload.map { UnsafeRawBufferPointer(start: $0, count: m.len) }
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
            topic: topic, partition: m.partition, offset: m.offset, copyingKey: key, value: value,
            headers: headers, timestamp: tsType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts)
    }
}
