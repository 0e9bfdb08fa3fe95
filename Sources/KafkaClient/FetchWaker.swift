import CRdKafka
import Synchronization
import ThreadExecutors

/// Wakes the broker threads that stopped fetching a partition at its prefetch bound,
/// once the application has taken enough of the partition's queue (librdkafka 2.0.x).
///
/// Why: a consumer stops fetching a partition while its fetch queue holds
/// `queued.min.messages` records (or `queued.max.messages.kbytes`), and librdkafka
/// before 2.1.0 looks at that partition again only when the leader's broker thread
/// wakes for another reason: a reply on its connection, an operation queued for it,
/// or its one-second idle timeout. A reader that drains the bound faster than that
/// sat idle for the rest of each second: a per-user aggregation of 1,000,000 records
/// on 4 partitions took 14–15 s instead of 9–10 s, at the bound of 20,000 records per
/// partition. librdkafka 2.1.0 added `fetch.queue.backoff.ms` for this; then this is
/// not used (``needed``).
///
/// How: queuing a request for the leader wakes its broker thread, which then decides
/// about every partition it leads, and fetches the ones below their bound. The request
/// is a watermark query of the partition (ListOffsets: reads nothing, changes nothing).
/// It blocks until the broker answers, which takes up to `fetch.wait.max.ms` behind a
/// fetch in flight on that connection, so it runs on a thread of its own, never on the
/// thread that polls. Requests for one partition that come while one is pending are
/// merged.
///
/// Threading: `wake` may be called anywhere; it never blocks. `close` waits for the
/// query in flight, so that the handle is not destroyed under it.
final class FetchWaker: Sendable {
    /// Whether this librdkafka needs it: before 2.1.0, which has `fetch.queue.backoff.ms`.
    static let needed = rd_kafka_version() < 0x0201_0000

    private struct State {
        var pending: [TopicPartition] = []
        var draining = false
        var closed = false
        var executor: DedicatedThreadExecutor?
        /// Wake-ups requested (for tests and logs).
        var requested = 0
    }

    private let handle: KafkaHandle
    private let state = Mutex(State())

    init(handle: KafkaHandle) {
        self.handle = handle
    }

    /// How many wake-ups were sent.
    var requested: Int { state.withLock { $0.requested } }

    /// Asks the leaders of `partitions` to look at them again; returns at once.
    func wake(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        let start: DedicatedThreadExecutor? = state.withLock { s in
            guard !s.closed else { return nil }
            for tp in partitions where !s.pending.contains(tp) { s.pending.append(tp) }
            guard !s.draining else { return nil }
            s.draining = true
            if s.executor == nil { s.executor = DedicatedThreadExecutor(name: "rdk-fetch-wake") }
            return s.executor
        }
        guard let start else { return }
        let handle = self.handle
        start.execute { [self] in
            while true {
                let next: TopicPartition? = state.withLock { s in
                    guard !s.closed, !s.pending.isEmpty else {
                        s.draining = false
                        return nil
                    }
                    s.requested += 1
                    return s.pending.removeFirst()
                }
                guard let tp = next else { return }
                var low: Int64 = 0
                var high: Int64 = 0
                // The answer is not needed: the request is the wake-up. An error (no leader
                // known yet, a timeout) leaves the partition to librdkafka's own timer.
                _ = rd_kafka_query_watermark_offsets(handle.pointer, tp.topic, tp.partition, &low, &high, 5_000)
            }
        }
    }

    /// Stops waking and waits for the request in flight; the thread ends.
    func close() async {
        guard let executor = closeState() else { return }
        _ = try? await executor.run { executor.shutdown() }
    }

    /// Stops waking without waiting (a `deinit`): the thread ends after the request in flight,
    /// which keeps the handle alive until then.
    func closeWithoutWaiting() {
        guard let executor = closeState() else { return }
        executor.execute { executor.shutdown() }
    }

    private func closeState() -> DedicatedThreadExecutor? {
        state.withLock { s in
            s.closed = true
            s.pending = []
            defer { s.executor = nil }
            return s.executor
        }
    }
}
