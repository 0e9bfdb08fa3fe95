import CRdKafka
import Foundation
import Logging
import Synchronization

/// What librdkafka's callbacks reach through the `opaque` pointer of an
/// `rd_kafka_t`. The owning `KafkaHandle` keeps it alive for longer than the
/// `rd_kafka_t` (it is released only after `rd_kafka_destroy` returned), so the
/// unretained pointer given to librdkafka is valid in every callback.
final class KafkaCallbackContext: Sendable {
    let logger: Logger
    /// Set by consumers that want rebalance events.
    let rebalance: Mutex<(@Sendable (RebalanceEvent) -> Void)?> = Mutex(nil)
    /// Delivery bookkeeping for producers.
    let deliveries = Mutex(DeliveryState())
    /// A fatal error reported through the error callback.
    let fatalError: Mutex<KafkaError?> = Mutex(nil)

    init(logger: Logger) {
        self.logger = logger
    }
}

/// Delivery counts since the producer was created, and the first failure
/// since the last `takeFailure()`.
struct DeliveryState {
    var delivered: Int64 = 0
    var failed: Int64 = 0
    var firstFailure: KafkaError?
}

/// A rebalance event handed to the consumer's handler from inside
/// librdkafka's rebalance callback (on the consumer's poll thread, before the
/// assignment changes).
public enum RebalanceEvent: Sendable {
    case assigned([TopicPartition])
    case revoked([TopicPartition])
}

/// librdkafka's `rd_kafka_t` is thread-safe (its API may be called from any
/// thread), so the pointer may cross threads; this wrapper says so once.
struct KafkaPointer: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Owns one `rd_kafka_t` and its callback context.
final class KafkaHandle: Sendable {
    let rk: KafkaPointer
    let context: KafkaCallbackContext
    let kind: rd_kafka_type_t

    var pointer: OpaquePointer { rk.pointer }

    init(kind: rd_kafka_type_t, config: [String: String], logger: Logger, configure: (OpaquePointer) -> Void = { _ in }) throws(KafkaError) {
        let conf = rd_kafka_conf_new()!
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in config.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError.client("configuration \(key)=\(value): \(cString(errbuf))")
            }
        }
        let context = KafkaCallbackContext(logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, kafkaErrorCallback)
        configure(conf)
        guard let rk = rd_kafka_new(kind, conf, &errbuf, errbuf.count) else {
            // rd_kafka_new destroys nothing on failure: the conf is still ours.
            rd_kafka_conf_destroy(conf)
            throw KafkaError.client("rd_kafka_new: \(cString(errbuf))")
        }
        self.rk = KafkaPointer(pointer: rk)
        self.context = context
        self.kind = kind
    }

    deinit {
        rd_kafka_destroy(rk.pointer)
    }

    /// Low and high watermark of a partition, asked of the broker.
    func queryWatermarks(_ tp: TopicPartition, timeoutMs: Int32) throws(KafkaError) -> Watermarks {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(rk.pointer, tp.topic, tp.partition, &low, &high, timeoutMs)
        try KafkaError.check(err, "watermarks of \(tp)")
        return Watermarks(low: low, high: high)
    }

    /// End offsets (high watermarks) of many partitions in one ListOffsets
    /// round per broker (`rd_kafka_offsets_for_times` with the "latest" timestamp).
    func endOffsets(_ partitions: [TopicPartition], timeoutMs: Int32) throws(KafkaError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = makePartitionList(partitions.map { TopicPartitionOffset($0, KafkaOffset.end) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try KafkaError.check(rd_kafka_offsets_for_times(rk.pointer, list, timeoutMs), "end offsets")
        var out: [TopicPartition: Int64] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let e = list.pointee.elems[i]
            if e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(e.err, "end offset of \(String(cString: e.topic))[\(e.partition)]")
            }
            out[TopicPartition(String(cString: e.topic), e.partition)] = e.offset
        }
        return out
    }

    /// Partition count of `topic`, or `nil` if the topic does not exist.
    ///
    /// Asks for the metadata of all topics: a request naming the topic would
    /// make a broker with auto-creation (librdkafka's mock always) create it.
    func partitionCount(topic: String, timeoutMs: Int32) throws(KafkaError) -> Int? {
        try topicPartitionCounts(timeoutMs: timeoutMs)[topic]
    }

    /// Partition count of every topic of the cluster (one Metadata request for all topics).
    func topicPartitionCounts(timeoutMs: Int32) throws(KafkaError) -> [String: Int] {
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk.pointer, 1, nil, &md, timeoutMs)
        try KafkaError.check(err, "metadata")
        guard let md else { return [:] }
        defer { rd_kafka_metadata_destroy(md) }
        var out: [String: Int] = [:]
        for i in 0..<Int(md.pointee.topic_cnt) {
            let t = md.pointee.topics[i]
            if t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { continue }
            out[String(cString: t.topic)] = Int(t.partition_cnt)
        }
        return out
    }
}

// MARK: - C callbacks (top-level functions with the exact C signatures)

private func context(of rk: OpaquePointer?) -> KafkaCallbackContext? {
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return nil }
    return Unmanaged<KafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
}

/// librdkafka's log lines go to swift-log (syslog levels 0–7).
func kafkaLogCallback(_ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ buf: UnsafePointer<CChar>?) {
    guard let ctx = context(of: rk) else { return }
    let fac = facility.map { String(cString: $0) } ?? "-"
    let msg = buf.map { String(cString: $0) } ?? ""
    let swiftLevel: Logger.Level
    switch level {
    case ...3: swiftLevel = .error
    case 4: swiftLevel = .warning
    case 5, 6: swiftLevel = .info
    default: swiftLevel = .debug
    }
    ctx.logger.log(level: swiftLevel, "\(msg)", metadata: ["rdkafka.facility": "\(fac)"])
}

func kafkaErrorCallback(_ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    let ctx = Unmanaged<KafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    let reasonText = reason.map { String(cString: $0) } ?? ""
    if err == RD_KAFKA_RESP_ERR__FATAL.rawValue, let rk {
        var buf = [CChar](repeating: 0, count: 512)
        let orig = rd_kafka_fatal_error(rk, &buf, buf.count)
        let error = KafkaError(code: orig.rawValue, message: cString(buf), isFatal: true)
        ctx.fatalError.withLock { if $0 == nil { $0 = error } }
        ctx.logger.error("fatal Kafka error: \(error)")
    } else {
        ctx.logger.debug("Kafka client error: \(KafkaError(code: err, message: reasonText))")
    }
}

/// Delivery report callback. The per-message opaque (`_private`) is either nil
/// (fire-and-forget: only counted) or a retained `DeliveryWaiter` released here.
func kafkaDeliveryCallback(_ rk: OpaquePointer?, _ msg: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque, let msg else { return }
    let ctx = Unmanaged<KafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    let m = msg.pointee
    let failure: KafkaError? = m.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : {
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        return KafkaError(m.err, "delivery to \(topic)[\(m.partition)] failed: \(String(cString: rd_kafka_err2str(m.err)))")
    }()
    ctx.deliveries.withLock { state in
        if let failure {
            state.failed += 1
            if state.firstFailure == nil { state.firstFailure = failure }
        } else {
            state.delivered += 1
        }
    }
    if let waiterPtr = m._private {
        let waiter = Unmanaged<DeliveryWaiter>.fromOpaque(waiterPtr).takeRetainedValue()
        if let failure {
            waiter.resume(.failure(failure))
        } else {
            let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
            waiter.resume(.success(DeliveryReport(topic: topic, partition: m.partition, offset: m.offset)))
        }
    }
}

/// Carries one awaiting sender's continuation through librdkafka's per-message opaque.
final class DeliveryWaiter: Sendable {
    let continuation: CheckedContinuation<DeliveryReport, any Error>
    init(_ continuation: CheckedContinuation<DeliveryReport, any Error>) { self.continuation = continuation }
    func resume(_ result: Result<DeliveryReport, KafkaError>) { continuation.resume(with: result.mapError { $0 }) }
}

func kafkaRebalanceCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let rk else { return }
    let ctx = opaque.map { Unmanaged<KafkaCallbackContext>.fromOpaque($0).takeUnretainedValue() }
    let list = partitions.map { topicPartitions(of: $0) } ?? []
    // NULL when the handle has no consumer group (any more): not cooperative.
    let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
    let handler = ctx?.rebalance.withLock { $0 }
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        // Assign first so that the handler can seek or query positions.
        if cooperative {
            if let e = rd_kafka_incremental_assign(rk, partitions) { ctx?.logger.error("incremental assign: \(KafkaError(consuming: e))") }
        } else {
            rd_kafka_assign(rk, partitions)
        }
        handler?(.assigned(list))
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        // Revoke work (flush, commit) happens here, before the partitions go.
        handler?(.revoked(list))
        if cooperative {
            if let e = rd_kafka_incremental_unassign(rk, partitions) { ctx?.logger.error("incremental unassign: \(KafkaError(consuming: e))") }
        } else {
            rd_kafka_assign(rk, nil)
        }
    default:
        ctx?.logger.error("rebalance error: \(KafkaError(err))")
        handler?(.revoked(list))
        rd_kafka_assign(rk, nil)
    }
}

func topicPartitions(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
    (0..<Int(list.pointee.cnt)).map { i in
        let e = list.pointee.elems[i]
        return TopicPartition(String(cString: e.topic), e.partition)
    }
}

func topicPartitionOffsets(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartitionOffset] {
    (0..<Int(list.pointee.cnt)).map { i in
        let e = list.pointee.elems[i]
        return TopicPartitionOffset(String(cString: e.topic), e.partition, e.offset)
    }
}

/// Builds an `rd_kafka_topic_partition_list_t`; the caller destroys it.
func makePartitionList(_ items: [TopicPartitionOffset]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
    let list = rd_kafka_topic_partition_list_new(Int32(max(items.count, 1)))!
    for item in items {
        rd_kafka_topic_partition_list_add(list, item.topic, item.partition).pointee.offset = item.offset
    }
    return list
}

/// Runs a blocking librdkafka call on a thread of its own, never on the
/// cooperative pool, and resumes the caller with its result.
func runBlocking<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            cont.resume(with: Result { try body() })
        }
        thread.name = name
        thread.start()
    }
}
