import CRdKafka
import Foundation
import Logging
import Synchronization

/// A librdkafka topic handle (`rd_kafka_topic_t`, whose API is thread-safe).
struct TopicPointer: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// A Kafka producer over librdkafka.
///
/// Idempotent (`enable.idempotence=true`) unless configured otherwise.
/// Delivery reports are served on the handle's executor (one dedicated
/// thread): a poll job that re-enqueues itself, so the blocking calls
/// (`flush`, transactions) queued on the same executor run between polls.
/// `send(_:)` suspends while librdkafka's queue is full (back-pressure, no
/// sleeping thread); `trySend(_:)` never waits. With a `transactional.id` the
/// transactional API is available. `close()` flushes and destroys the handle.
public final class KafkaProducer: Sendable {
    let handle: KafkaHandle
    private let running = RunFlag()
    private let logger: Logger
    /// Topic handles made by `configureTopic`, held until the producer closes (their
    /// configuration lives as long as a handle of the topic does).
    private let topicHandles = Mutex<[String: TopicPointer]>([:])

    /// Defaults applied under the caller's configuration.
    public static let defaultConfig: [String: String] = [
        "enable.idempotence": "true",
        "compression.type": "zstd",
        "linger.ms": "5",
    ]

    /// - Parameter config: librdkafka configuration, passed through unchanged
    ///   (on top of `defaultConfig`).
    public init(config: [String: String], logger: Logger) throws(KafkaError) {
        self.logger = logger
        let merged = Self.defaultConfig.merging(config) { _, new in new }
        self.handle = try KafkaHandle(kind: RD_KAFKA_PRODUCER, config: merged, logger: logger) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, kafkaDeliveryCallback)
        }
        Self.schedulePoll(handle: handle, running: running)
    }

    /// One `rd_kafka_poll` on the executor, then again (behind whatever was queued meanwhile) while running.
    private static func schedulePoll(handle: KafkaHandle, running: RunFlag) {
        handle.executor.execute {
            guard running.isSet else { return }
            rd_kafka_poll(handle.pointer, 20)
            wakeSpaceWaiters(handle)
            schedulePoll(handle: handle, running: running)
        }
    }

    /// Resumes the senders waiting for room in the queue (they retry).
    private static func wakeSpaceWaiters(_ handle: KafkaHandle) {
        let waiters = handle.context.spaceWaiters.withLock { w in
            defer { w.removeAll() }
            return w
        }
        for w in waiters { w.resume() }
    }

    deinit {
        // Never block: the poll job ends, and the handle is destroyed on its own thread.
        releaseTopicHandles()
        _ = running.clear()
        Self.wakeSpaceWaiters(handle)
    }

    /// Gives one topic its own librdkafka topic-level properties (for example
    /// `compression.type`) on top of the producer's: the producer's default topic
    /// configuration (acks, timeouts, compression level...) with `config` set over it.
    ///
    /// Call it before the first record to the topic: librdkafka keeps the
    /// configuration of the first handle of a topic, and `send` makes one with the
    /// producer's defaults. Configuring a topic twice throws.
    public func configureTopic(_ topic: String, _ config: [String: String]) throws(KafkaError) {
        guard let conf = rd_kafka_default_topic_conf_dup(handle.pointer) else {
            throw KafkaError.client("configure topic \(topic): no default topic configuration")
        }
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in config.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_topic_conf_set(conf, key, value, &errbuf, errbuf.count) != RD_KAFKA_CONF_OK {
                rd_kafka_topic_conf_destroy(conf)
                throw KafkaError.client("topic \(topic): configuration \(key)=\(value): \(cString(errbuf))")
            }
        }
        try topicHandles.withLock { (handles: inout [String: TopicPointer]) throws(KafkaError) in
            guard handles[topic] == nil else {
                rd_kafka_topic_conf_destroy(conf)
                throw KafkaError.client("topic \(topic) is configured already")
            }
            // rd_kafka_topic_new takes the conf, also when it fails.
            guard let rkt = rd_kafka_topic_new(handle.pointer, topic, conf) else {
                throw KafkaError.client("topic \(topic): rd_kafka_topic_new: \(String(cString: rd_kafka_err2str(rd_kafka_last_error())))")
            }
            handles[topic] = TopicPointer(pointer: rkt)
        }
    }

    /// Loads the partitions and leaders of `topics` into the producer's metadata, so that the
    /// first records sent to them go out at once.
    ///
    /// Without it the first record to a topic waits in librdkafka's queue until a metadata
    /// refresh names the topic's leaders: measured on a mock cluster, the first commit's
    /// flush of a job's changelog records took 0.8 s instead of a few milliseconds.
    /// Each topic gets a handle (with the producer's default topic configuration unless
    /// ``configureTopic(_:_:)`` made one before: call that first), then one Metadata request
    /// for all topics updates them all. It names no topic, so it creates none on a cluster
    /// that auto-creates topics (librdkafka's mock does).
    ///
    /// A warm-up, not a check: a topic whose metadata is not available yet (created a moment
    /// ago, a leader still being elected) is left to librdkafka's own refreshes.
    /// - Returns: the topics whose metadata did not load, with the reason.
    @discardableResult
    public func prepare(topics: [String], timeout: Duration = .seconds(10)) async throws -> [String: String] {
        for topic in topics {
            try topicHandles.withLock { (h: inout [String: TopicPointer]) throws(KafkaError) in
                guard h[topic] == nil else { return }
                guard let rkt = rd_kafka_topic_new(handle.pointer, topic, nil) else {
                    throw KafkaError.client("topic \(topic): rd_kafka_topic_new: \(String(cString: rd_kafka_err2str(rd_kafka_last_error())))")
                }
                h[topic] = TopicPointer(pointer: rkt)
            }
        }
        let client = handle
        let ms = timeout.milliseconds
        let counts: [String: Int]
        do {
            counts = try await client.blockingAfterPoll { try client.topicPartitionCounts(timeoutMs: ms) }
        } catch {
            return Dictionary(topics.map { ($0, "\(error)") }) { first, _ in first }
        }
        var missed: [String: String] = [:]
        for topic in topics where (counts[topic] ?? 0) == 0 {
            missed[topic] = counts[topic] == nil ? "not in the cluster's metadata" : "no partitions in the cluster's metadata"
        }
        return missed
    }

    /// Drops the topic handles of `configureTopic` (not blocking: a reference count).
    private func releaseTopicHandles() {
        let handles = topicHandles.withLock { h in
            defer { h.removeAll() }
            return h
        }
        for (_, t) in handles { rd_kafka_topic_destroy(t.pointer) }
    }

    /// Enqueues a record; suspends while librdkafka's queue is full (logging
    /// every 5 s that it waits). The outcome is counted; `flush` reports failures.
    public func send(_ record: ProducerRecord) async throws {
        try await produce(record, opaque: nil)
    }

    /// Enqueues a record without waiting: false when librdkafka's queue is full.
    public func trySend(_ record: ProducerRecord) throws(KafkaError) -> Bool {
        let err = produceOnce(record, opaque: nil)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR { return true }
        if err == RD_KAFKA_RESP_ERR__QUEUE_FULL { return false }
        throw KafkaError(err, "produce to \(record.topic): \(String(cString: rd_kafka_err2str(err)))")
    }

    /// Enqueues a record and waits for its delivery report.
    public func sendAndWait(_ record: ProducerRecord) async throws -> DeliveryReport {
        let waiter = DeliveryWaiter()
        let opaque = Unmanaged.passRetained(waiter).toOpaque()
        do {
            try await produce(record, opaque: opaque)
        } catch {
            Unmanaged<DeliveryWaiter>.fromOpaque(opaque).release()
            throw error
        }
        return try await waiter.report()
    }

    private func produce(_ record: ProducerRecord, opaque: UnsafeMutableRawPointer?) async throws {
        let started = ContinuousClock.now
        var lastLog = started
        while true {
            let err = produceOnce(record, opaque: opaque)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                throw KafkaError(err, "produce to \(record.topic): \(String(cString: rd_kafka_err2str(err)))")
            }
            guard running.isSet else { throw KafkaError.client("produce to \(record.topic): the producer is closed") }
            if ContinuousClock.now - lastLog >= .seconds(5) {
                lastLog = ContinuousClock.now
                logger.warning("producer queue full for \(ContinuousClock.now - started) (\(rd_kafka_outq_len(handle.pointer)) records undelivered): waiting for the brokers to acknowledge")
            }
            // Woken by the poll job after it served delivery reports.
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                handle.context.spaceWaiters.withLock { $0.append(c) }
            }
        }
    }

    private func produceOnce(_ record: ProducerRecord, opaque: UnsafeMutableRawPointer?) -> rd_kafka_resp_err_t {
        record.topic.withCString { topicPtr -> rd_kafka_resp_err_t in
            var hdrs: OpaquePointer? = nil
            if !record.headers.isEmpty {
                hdrs = rd_kafka_headers_new(record.headers.count)
                for h in record.headers {
                    // An explicit withCString: the implicit String-to-pointer conversion allocated a
                    // copy of the name per header.
                    h.name.withCString { name in
                        if let v = h.value {
                            v.withUnsafeBytes { _ = rd_kafka_header_add(hdrs, name, -1, $0.baseAddress, $0.count) }
                        } else {
                            rd_kafka_header_add(hdrs, name, -1, nil, 0)
                        }
                    }
                }
            }
            let err = withOptionalBytes(record.key) { keyPtr, keyLen in
                withOptionalBytes(record.value) { valPtr, valLen -> rd_kafka_resp_err_t in
                    // On the stack: no allocation per record.
                    return withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 8) { vus -> rd_kafka_resp_err_t in
                        var n = 0
                        func add(_ type: rd_kafka_vtype_t, _ set: (inout rd_kafka_vu_t) -> Void) {
                            var vu = rd_kafka_vu_t()
                            vu.vtype = type
                            set(&vu)
                            vus.initializeElement(at: n, to: vu)
                            n += 1
                        }
                        add(RD_KAFKA_VTYPE_TOPIC) { $0.u.cstr = topicPtr }
                        add(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = record.partition ?? -1 }
                        add(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY }
                        if let valPtr { add(RD_KAFKA_VTYPE_VALUE) { $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: valPtr); $0.u.mem.size = valLen } }
                        if let keyPtr { add(RD_KAFKA_VTYPE_KEY) { $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: keyPtr); $0.u.mem.size = keyLen } }
                        if let opaque { add(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = opaque } }
                        if let ts = record.timestamp { add(RD_KAFKA_VTYPE_TIMESTAMP) { $0.u.i64 = ts } }
                        if let hdrs { add(RD_KAFKA_VTYPE_HEADERS) { $0.u.headers = hdrs } }
                        defer { _ = vus.prefix(n).deinitialize() }
                        guard let error = rd_kafka_produceva(handle.pointer, vus.baseAddress, n) else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                        let code = rd_kafka_error_code(error)
                        rd_kafka_error_destroy(error)
                        return code
                    }
                }
            }
            // On success the headers belong to the message; on failure they are still ours.
            if err != RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs { rd_kafka_headers_destroy(hdrs) }
            return err
        }
    }

    /// Waits (on the handle's executor) until every enqueued record has a
    /// delivery report, at most `timeout`; throws on timeout or if any record
    /// sent with `send(_:)` failed since the last flush.
    public func flush(timeout: Duration = .seconds(30)) async throws {
        let handle = self.handle
        let ms = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let err = try await handle.blockingAfterPoll { rd_kafka_flush(handle.pointer, ms) }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, "flush: \(rd_kafka_outq_len(handle.pointer)) records still undelivered after \(timeout)")
        }
        if let failure = takeDeliveryFailure() { throw failure }
    }

    /// The first delivery failure since the last call, if any; clears it.
    public func takeDeliveryFailure() -> KafkaError? {
        handle.context.deliveries.withLock { state in
            defer { state.firstFailure = nil }
            return state.firstFailure
        }
    }

    /// Records delivered and failed since the producer was created.
    public var deliveryCounts: (delivered: Int64, failed: Int64) {
        handle.context.deliveries.withLock { ($0.delivered, $0.failed) }
    }

    /// A fatal error the client reported, after which it must be recreated.
    public var fatalError: KafkaError? { handle.context.fatalError.withLock { $0 } }

    // MARK: Transactions

    /// `rd_kafka_init_transactions`: fences older producers with the same `transactional.id`.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws {
        let handle = self.handle
        let ms = timeout.milliseconds
        try await handle.blockingAfterPoll {
            try KafkaError.check(rd_kafka_init_transactions(handle.pointer, ms))
        }
    }

    /// Begins a transaction (local, non-blocking).
    public func beginTransaction() throws(KafkaError) {
        try KafkaError.check(rd_kafka_begin_transaction(handle.pointer))
    }

    /// Adds the consumer's offsets to the current transaction.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartitionOffset], consumer: KafkaConsumer, timeout: Duration = .seconds(30)) async throws {
        guard !offsets.isEmpty else { return }
        let handle = self.handle
        let group = consumer.groupMetadata()
        let ms = timeout.milliseconds
        try await handle.blockingAfterPoll {
            let list = makePartitionList(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            try KafkaError.check(rd_kafka_send_offsets_to_transaction(handle.pointer, list, group.pointer, ms))
        }
    }

    /// Commits the current transaction (flushes first).
    public func commitTransaction(timeout: Duration = .seconds(60)) async throws {
        let handle = self.handle
        let ms = timeout.milliseconds
        try await handle.blockingAfterPoll {
            try KafkaError.check(rd_kafka_commit_transaction(handle.pointer, ms))
        }
    }

    /// Aborts the current transaction: its records are never visible to `read_committed` consumers.
    public func abortTransaction(timeout: Duration = .seconds(60)) async throws {
        let handle = self.handle
        let ms = timeout.milliseconds
        try await handle.blockingAfterPoll {
            try KafkaError.check(rd_kafka_abort_transaction(handle.pointer, ms))
        }
    }

    /// Flushes (bounded), stops the poll job and destroys the handle.
    public func close(timeout: Duration = .seconds(10)) async {
        do { try await flush(timeout: timeout) } catch { logger.warning("producer close: \(error)") }
        _ = running.clear()
        Self.wakeSpaceWaiters(handle)
        releaseTopicHandles()
        await handle.destroy()
    }

    /// Partition count of a topic (Metadata request), `nil` if it does not exist.
    public func partitionCount(topic: String, timeout: Duration = .seconds(10)) async throws -> Int? {
        let handle = self.handle
        let ms = timeout.milliseconds
        return try await handle.blockingAfterPoll { try handle.partitionCount(topic: topic, timeoutMs: ms) }
    }
}

/// A consumer's group metadata for `sendOffsetsToTransaction`; owns the C object.
final class ConsumerGroupMetadata: Sendable {
    let handle: KafkaPointer
    var pointer: OpaquePointer { handle.pointer }
    init(_ pointer: OpaquePointer) { self.handle = KafkaPointer(pointer: pointer) }
    deinit { rd_kafka_consumer_group_metadata_destroy(handle.pointer) }
}

extension Duration {
    var milliseconds: Int32 {
        let c = components
        return Int32(clamping: c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
    }
}

@inline(__always)
func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { buf in
        // An empty array may have a nil base address; librdkafka wants a pointer for a zero-length value.
        body(buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1), buf.count)
    }
}

/// A flag shared with a loop thread: set while the loop should run.
final class RunFlag: Sendable {
    private let value = Atomic<Bool>(true)
    var isSet: Bool { value.load(ordering: .acquiring) }
    /// Clears the flag; true if it was set.
    func clear() -> Bool { value.exchange(false, ordering: .acquiringAndReleasing) }
}

extension KafkaHandle {
    /// Runs a blocking producer call on the executor, then cuts short the
    /// `rd_kafka_poll` the poll job may be waiting in there
    /// (`rd_kafka_queue_yield` on the main queue): otherwise the call would
    /// queue behind that poll until a delivery report or its timeout, which put
    /// the producer's `linger.ms` into every commit's flush.
    func blockingAfterPoll<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let rk = pointer
        return try await executor.run(body, queued: {
            // Queued first, then woken: a poll that starts after this returns at once, and one
            // running now returns and re-enqueues itself behind `body`.
            guard let queue = rd_kafka_queue_get_main(rk) else { return }
            rd_kafka_queue_yield(queue)
            rd_kafka_queue_destroy(queue)
        })
    }
}
