import CRdKafka
import Foundation
import Synchronization

/// A queue of its own for each assigned partition of a consumer, instead of the
/// one consumer queue librdkafka forwards every partition to.
///
/// Why: librdkafka checks its prefetch bounds (`queued.min.messages`,
/// `queued.max.messages.kbytes`) against a partition's fetch queue, and a
/// forwarded fetch queue counts as the whole consumer queue. So with one shared
/// queue, a backlog of one topic stops the fetching of every partition (for up to
/// a second in 2.0.2), and what is fetched for a quiet partition waits behind the
/// backlog's records in the one FIFO. With a queue per partition, the bounds apply
/// per partition, as documented, and the reader takes each partition's records
/// from its own queue.
///
/// Waiting: each queue (and the consumer queue, which still carries rebalances,
/// errors and the messages of partitions without a queue here) writes a byte to one
/// non-blocking pipe when it becomes non-empty (`rd_kafka_queue_io_event_enable`);
/// a poll that finds nothing waits on the pipe's read end.
///
/// Threading: `add`, `remove`, `removeAll`, `consume` and `close` run on the consumer
/// handle's executor (they call librdkafka with the handle's queues); `hold`, `release`
/// and `lengths` may run anywhere. The state is behind a `Mutex`. `close(main:)` must
/// run before the consumer handle goes (the consumer's `close` and `deinit` call it).
final class PartitionQueues: Sendable {
    private struct State {
        var queues: [TopicPartition: KafkaPointer] = [:]
        /// The queues in the order a sweep visits them, rotated by one on every sweep
        /// so that a partition early in the order does not always fill the batch first.
        var order: [TopicPartition] = []
        var next = 0
        var closed = false
        /// Partitions whose queue polls leave alone for now (back-pressure, see `hold`).
        var held: Set<TopicPartition> = []
        /// Partitions whose queue a sweep saw at the prefetch bound (librdkafka stopped
        /// fetching them) and has not drained to half of it since.
        var atBound: Set<TopicPartition> = []
    }

    private let state = Mutex(State())
    private let readFD: Int32
    private let writeFD: Int32
    private static let payload: [UInt8] = [1]
    /// The count bound librdkafka stops fetching a partition at (`queued.min.messages`).
    private let prefetchBound: Int
    /// Wakes the leaders of partitions drained below their bound (librdkafka before 2.1.0).
    let waker: FetchWaker?

    /// Creates the wake-up pipe and enables it on the consumer queue `main`.
    /// - Parameters:
    ///   - prefetchBound: the consumer's `queued.min.messages`.
    ///   - waker: wakes the leaders of partitions the polls drained from their bound to half of it.
    init(main: OpaquePointer, prefetchBound: Int, waker: FetchWaker?) throws(KafkaError) {
        self.prefetchBound = max(1, prefetchBound)
        self.waker = waker
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, "pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        readFD = fds[0]
        writeFD = fds[1]
        Self.payload.withUnsafeBytes { rd_kafka_queue_io_event_enable(main, writeFD, $0.baseAddress, 1) }
    }

    /// Gives each partition a queue of its own, unless it has one: call before the
    /// partitions are assigned (librdkafka does not forward a queue the application
    /// has set the forwarding of).
    func add(_ partitions: [TopicPartition], rk: OpaquePointer) {
        state.withLock { s in
            guard !s.closed else { return }
            for tp in partitions where s.queues[tp] == nil {
                guard let q = rd_kafka_queue_get_partition(rk, tp.topic, tp.partition) else { continue }
                rd_kafka_queue_forward(q, nil)
                Self.payload.withUnsafeBytes { rd_kafka_queue_io_event_enable(q, writeFD, $0.baseAddress, 1) }
                s.queues[tp] = KafkaPointer(pointer: q)
                s.order.append(tp)
            }
        }
    }

    /// Leaves the queues of `partitions` alone in later polls until `release`: once a
    /// queue holds its partition's prefetch bound, librdkafka stops fetching it. What
    /// was fetched stays queued (a librdkafka pause would drop it and fetch it again).
    func hold(_ partitions: [TopicPartition]) {
        state.withLock { s in s.held.formUnion(partitions.filter { s.queues[$0] != nil }) }
    }

    /// Polls take from these partitions' queues again.
    func release(_ partitions: [TopicPartition]) {
        state.withLock { s in s.held.subtract(partitions) }
    }

    /// Messages (and events) waiting in each partition's queue.
    func lengths() -> [TopicPartition: Int] {
        state.withLock { s in s.queues.mapValues { Int(rd_kafka_queue_length($0.pointer)) } }
    }

    /// Releases every partition's queue (an eager unassignment).
    func removeAll() {
        state.withLock { s in
            for q in s.queues.values { Self.release(q) }
            s.queues = [:]
            s.order = []
            s.held = []
            s.atBound = []
        }
    }

    /// Releases the queues of partitions no longer assigned (what they still hold is stale).
    func remove(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions {
                guard let q = s.queues.removeValue(forKey: tp) else { continue }
                Self.release(q)
            }
            let gone = Set(partitions)
            s.order.removeAll { gone.contains($0) }
            s.held.subtract(gone)
            s.atBound.subtract(gone)
        }
    }

    /// Releases every queue and closes the pipe (before the consumer is closed).
    func close(main: OpaquePointer) {
        let wasOpen = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.closed = true
            for q in s.queues.values { Self.release(q) }
            s.queues = [:]
            s.order = []
            s.held = []
            s.atBound = []
            return true
        }
        guard wasOpen else { return }
        rd_kafka_queue_io_event_enable(main, -1, nil, 0)
        Foundation.close(readFD)
        Foundation.close(writeFD)
    }

    private static func release(_ q: KafkaPointer) {
        rd_kafka_queue_io_event_enable(q.pointer, -1, nil, 0)
        rd_kafka_queue_destroy(q.pointer)
    }

    /// Up to `maxMessages` messages or events: the consumer queue's first, then each
    /// partition queue's in turn; waits up to `timeoutMs` (−1: no bound) when all are empty.
    /// The caller destroys the first `n`.
    func consume(main: OpaquePointer, maxMessages: Int, timeoutMs: Int32) throws(KafkaError) -> (ptrs: [UnsafeMutablePointer<rd_kafka_message_t>?], n: Int) {
        var ptrs = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: max(1, maxMessages))
        var drained: [TopicPartition] = []
        var n = try sweep(main: main, into: &ptrs, drained: &drained)
        if n == 0 && timeoutMs != 0 {
            var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            _ = Foundation.poll(&pfd, 1, timeoutMs)
            n = try sweep(main: main, into: &ptrs, drained: &drained)
        }
        waker?.wake(drained)
        return (ptrs, n)
    }

    /// Takes what the queues hold now, without waiting: the consumer queue's first,
    /// then each partition's share in turn (so that every partition gets into every
    /// batch, however much the others hold), then the rest in turn. Empties the pipe
    /// first: a queue that becomes non-empty after this writes to it again (the take
    /// marks it served), so a later wait cannot miss it.
    ///
    /// A queue seen at its prefetch bound before a take (librdkafka stopped fetching it) and
    /// below half of it after one is added to `drained`, once per time at the bound.
    private func sweep(main: OpaquePointer, into ptrs: inout [UnsafeMutablePointer<rd_kafka_message_t>?], drained: inout [TopicPartition]) throws(KafkaError) -> Int {
        var scratch = [UInt8](repeating: 0, count: 256)
        while read(readFD, &scratch, scratch.count) > 0 {}
        let queues: [(partition: TopicPartition, queue: OpaquePointer)] = state.withLock { s in
            let open = s.order.filter { !s.held.contains($0) }
            guard !open.isEmpty else { return [] }
            let start = s.next % open.count
            s.next = start + 1
            return (open[start...] + open[..<start]).compactMap { tp in s.queues[tp].map { (tp, $0.pointer) } }
        }
        let bound = prefetchBound
        let atBound = waker == nil ? [] : queues.map { Int(rd_kafka_queue_length($0.queue)) >= bound }
        var n = try take(from: main, upTo: ptrs.count, into: &ptrs, at: 0)
        let share = max(1, (ptrs.count - n) / max(1, queues.count))
        for q in queues where n < ptrs.count {
            n += try take(from: q.queue, upTo: min(share, ptrs.count - n), into: &ptrs, at: n)
        }
        for q in queues where n < ptrs.count {
            n += try take(from: q.queue, upTo: ptrs.count - n, into: &ptrs, at: n)
        }
        if !atBound.isEmpty {
            state.withLock { s in
                for (i, q) in queues.enumerated() {
                    if atBound[i] {
                        s.atBound.insert(q.partition)
                    } else if s.atBound.contains(q.partition), Int(rd_kafka_queue_length(q.queue)) < bound / 2 {
                        s.atBound.remove(q.partition)
                        drained.append(q.partition)
                    }
                }
            }
        }
        return n
    }

    /// Up to `limit` messages of `queue` into `ptrs` from index `at`; how many.
    private func take(from queue: OpaquePointer, upTo limit: Int, into ptrs: inout [UnsafeMutablePointer<rd_kafka_message_t>?], at: Int) throws(KafkaError) -> Int {
        let got = ptrs.withUnsafeMutableBufferPointer { buf in
            rd_kafka_consume_batch_queue(queue, 0, buf.baseAddress! + at, limit)
        }
        // Negative only with invalid arguments; what was taken before is kept.
        if got < 0 {
            if at == 0 { throw KafkaError(rd_kafka_last_error(), "consume batch") }
            return 0
        }
        return got
    }
}
