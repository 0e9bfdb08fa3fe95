import CRdKafka
import Foundation
import Logging
import Synchronization
import ThreadExecutors

/// What librdkafka's callbacks reach through the `opaque` pointer of an
/// `rd_kafka_t`. The owning `KafkaHandle` keeps it alive for longer than the
/// `rd_kafka_t` (it is released only after `rd_kafka_destroy` returned), so the
/// unretained pointer given to librdkafka is valid in every callback.
final class KafkaCallbackContext: Sendable {
    let logger: Logger
    /// Rebalance events recorded by the rebalance callback, not yet taken by the consumer's owner.
    let rebalanceEvents: Mutex<[RebalanceEvent]> = Mutex([])
    /// Set while the consumer closes: the rebalance callback then applies the
    /// revocation itself (nobody polls events any more, and
    /// `rd_kafka_consumer_close` waits for it).
    let closing = Atomic<Bool>(false)
    /// Called (on the polling thread) after an event was recorded; it must not block.
    let rebalanceObserver: Mutex<(@Sendable (RebalanceEvent) -> Void)?> = Mutex(nil)
    /// Callers of `KafkaProducer.send` waiting for room in librdkafka's queue.
    let spaceWaiters: Mutex<[CheckedContinuation<Void, Never>]> = Mutex([])
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

/// A rebalance event recorded by librdkafka's rebalance callback (on the
/// consumer's poll thread). The assignment changes only when the consumer's
/// owner acts on it: `KafkaConsumer.applyAssignment` / `applyRevocation`
/// (incremental for `cooperative-sticky`, whole for eager assignors).
public enum RebalanceEvent: Sendable, Equatable {
    /// Partitions given to this member (eager: the whole new assignment).
    case assigned([TopicPartition])
    /// Partitions taken away; `lost` when the member was kicked out of the
    /// group (its offsets can no longer be committed).
    case revoked([TopicPartition], lost: Bool)
}

/// librdkafka's `rd_kafka_t` is thread-safe (its API may be called from any
/// thread), so the pointer may cross threads; this wrapper says so once.
struct KafkaPointer: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Owns one `rd_kafka_t` and its callback context.
///
/// Every blocking librdkafka call on the handle runs on `executor`, one
/// dedicated thread per handle (never Swift's cooperative pool, never a
/// thread per call). `destroy()` ends it; `deinit` never blocks: when the
/// owner did not destroy the handle, `rd_kafka_destroy` runs as the
/// executor's last job.
final class KafkaHandle: Sendable {
    let rk: KafkaPointer
    let context: KafkaCallbackContext
    let kind: rd_kafka_type_t
    /// The serial executor of this handle's blocking calls.
    let executor: DedicatedThreadExecutor
    private let alive = RunFlag()

    var pointer: OpaquePointer { rk.pointer }

    /// Runs a blocking call on the handle's executor; the caller suspends.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await executor.run(body)
    }

    /// Destroys the `rd_kafka_t` on its executor (waiting for it) and stops the executor.
    func destroy() async {
        guard alive.clear() else { return }
        let rk = self.rk, context = self.context, executor = self.executor
        _ = try? await executor.run {
            rd_kafka_destroy(rk.pointer)
            withExtendedLifetime(context) {}
            executor.shutdown()  // from its own thread: returns at once
        }
    }

    /// Defaults of every handle, under the caller's configuration.
    ///
    /// `socket.nagle.disable`: librdkafka leaves Nagle's algorithm on (the Java client
    /// turns it off). With it on, a small request written while an earlier one is not yet
    /// acknowledged waits for the peer's delayed ACK, ~40 ms on Linux: the engine's commit
    /// flush took 45 ms instead of 2 in such stretches.
    static let commonDefaults = ["socket.nagle.disable": "true"]

    init(kind: rd_kafka_type_t, config: [String: String], logger: Logger, configure: (OpaquePointer) -> Void = { _ in }) throws(KafkaError) {
        let conf = rd_kafka_conf_new()!
        var errbuf = [CChar](repeating: 0, count: 512)
        let given = KafkaPropertyScopes.forClient(kind, config)  // a property of the other kind would only log a CONFWARN
        for (key, value) in Self.commonDefaults.merging(given, uniquingKeysWith: { _, given in given }).sorted(by: { $0.key < $1.key }) {
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
        self.executor = DedicatedThreadExecutor(name: kind == RD_KAFKA_CONSUMER ? "rdk-consumer" : "rdk-producer")
    }

    deinit {
        guard alive.clear() else { return }
        // Never block here: the destroy runs on the handle's own thread, which then exits.
        let rk = self.rk, context = self.context, executor = self.executor
        executor.execute {
            rd_kafka_destroy(rk.pointer)
            withExtendedLifetime(context) {}
            executor.shutdown()
        }
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

    /// The cluster id from the brokers' metadata (`nil` if none answered in time).
    func clusterId(timeoutMs: Int32) -> String? {
        guard let id = rd_kafka_clusterid(rk.pointer, timeoutMs) else { return nil }
        defer { rd_kafka_mem_free(rk.pointer, id) }
        return String(cString: id)
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

/// One awaiting sender's delivery report, carried through librdkafka's
/// per-message opaque: the report may arrive before or after the sender awaits it.
final class DeliveryWaiter: Sendable {
    private enum State {
        case pending
        case waiting(CheckedContinuation<DeliveryReport, any Error>)
        case done(Result<DeliveryReport, KafkaError>)
    }
    private let state = Mutex(State.pending)

    func resume(_ result: Result<DeliveryReport, KafkaError>) {
        let cont: CheckedContinuation<DeliveryReport, any Error>? = state.withLock { s in
            if case .waiting(let c) = s { s = .done(result); return c }
            s = .done(result)
            return nil
        }
        cont?.resume(with: result.mapError { $0 })
    }

    func report() async throws -> DeliveryReport {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<DeliveryReport, any Error>) in
            let ready: Result<DeliveryReport, KafkaError>? = state.withLock { s in
                if case .done(let r) = s { return r }
                s = .waiting(c)
                return nil
            }
            if let ready { c.resume(with: ready.mapError { $0 }) }
        }
    }
}

/// Only records the event: the consumer's owner acts on it later, outside
/// librdkafka's callback (`KafkaConsumer.applyAssignment` / `applyRevocation`).
/// Until then librdkafka keeps the rebalance open (heartbeats go on).
func kafkaRebalanceCallback(_ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?) {
    guard let rk, let opaque else { return }
    let ctx = Unmanaged<KafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    if ctx.closing.load(ordering: .acquiring) {
        kafkaAutoRebalanceCallback(rk, err, partitions, opaque)
        return
    }
    let list = partitions.map { topicPartitions(of: $0) } ?? []
    let event: RebalanceEvent
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        event = .assigned(list)
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        event = .revoked(list, lost: rd_kafka_assignment_lost(rk) != 0)
    default:
        ctx.logger.error("rebalance error: \(KafkaError(err))")
        event = .revoked(list, lost: true)
    }
    ctx.rebalanceEvents.withLock { $0.append(event) }
    ctx.rebalanceObserver.withLock { $0 }?(event)
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
        let metadata: String? = e.metadata.flatMap { m in
            e.metadata_size > 0 ? String(decoding: UnsafeRawBufferPointer(start: m, count: e.metadata_size), as: UTF8.self) : nil
        }
        return TopicPartitionOffset(String(cString: e.topic), e.partition, e.offset, metadata: metadata)
    }
}

/// Builds an `rd_kafka_topic_partition_list_t` (with commit metadata); the caller destroys it.
func makePartitionList(_ items: [TopicPartitionOffset]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
    let list = rd_kafka_topic_partition_list_new(Int32(max(items.count, 1)))!
    for item in items {
        let e = rd_kafka_topic_partition_list_add(list, item.topic, item.partition)!
        e.pointee.offset = item.offset
        if let metadata = item.metadata, !metadata.isEmpty {
            // librdkafka frees it with the list (rd_free, i.e. free).
            let bytes = Array(metadata.utf8)
            let buffer = malloc(bytes.count)!
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            e.pointee.metadata = buffer
            e.pointee.metadata_size = bytes.count
        }
    }
    return list
}
