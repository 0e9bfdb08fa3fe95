import KafkaClient
import Logging
import Metrics
import StreamEngine
import Synchronization
import ThreadExecutors

/// Samples what no counter reports, about once a second, into gauges:
/// consumer lag per assigned partition (end offset − the group's committed
/// offset), keys per local store partition, restore progress (tasks running,
/// partitions still restoring) and readiness.
final class RuntimeGauges: Sendable {
    let queries: RuntimeQueries
    let reader: KafkaConsumer
    let executor: DedicatedThreadExecutor
    let logger: Logger
    private let lagGauges = Mutex<[TopicPartition: Gauge]>([:])
    private let keyGauges = Mutex<[LiveStorePartition: Gauge]>([:])
    private let running = Gauge(label: "stream_engine_tasks_running")
    private let restoring = Gauge(label: "stream_engine_partitions_restoring")
    private let ready = Gauge(label: "stream_engine_ready")
    /// Last lag per partition, for the dashboard and `/ready`.
    let lastLag = Mutex<[TopicPartition: Int64]>([:])

    init(queries: RuntimeQueries, reader: KafkaConsumer, executor: DedicatedThreadExecutor, logger: Logger) {
        self.queries = queries
        self.reader = reader
        self.executor = executor
        self.logger = logger
    }

    func run(interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }

    func sample() async {
        let a = queries.assignment
        running.record(a.tasks.count)
        restoring.record(a.pending.count)
        ready.record(queries.isReady ? 1 : 0)

        let counts = await queries.keyCounts()
        keyGauges.withLock { gauges in
            for (sp, n) in counts {
                let g = gauges[sp] ?? Gauge(label: "stream_engine_store_keys", dimensions: [("store", sp.store), ("partition", String(sp.partition))])
                gauges[sp] = g
                g.record(n)
            }
            for (sp, g) in gauges where counts[sp] == nil {
                g.destroy()
                gauges.removeValue(forKey: sp)
            }
        }

        let partitions = a.partitions
        guard !partitions.isEmpty else { return }
        let reader = self.reader
        do {
            let (committed, ends) = try await executor.run {
                (try reader.committed(partitions, timeoutMs: 5000), try reader.endOffsets(partitions, timeoutMs: 5000))
            }
            var lags: [TopicPartition: Int64] = [:]
            for tp in partitions {
                guard let end = ends[tp] else { continue }
                let c = committed[tp] ?? -1
                lags[tp] = max(0, end - max(c, 0))
            }
            lastLag.withLock { $0 = lags }
            lagGauges.withLock { gauges in
                for (tp, lag) in lags {
                    let g = gauges[tp] ?? Gauge(label: "stream_engine_consumer_lag", dimensions: [("topic", tp.topic), ("partition", String(tp.partition))])
                    gauges[tp] = g
                    g.record(lag)
                }
                for (tp, g) in gauges where lags[tp] == nil {
                    g.destroy()
                    gauges.removeValue(forKey: tp)
                }
            }
        } catch {
            logger.debug("lag sampling: \(error)")
        }
    }
}
