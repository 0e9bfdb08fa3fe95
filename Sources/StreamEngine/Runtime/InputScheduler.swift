import KafkaClient
import Logging

/// Event-time discipline of one engine instance's input: which buffered
/// records each task may process now, and which partitions to pause.
///
/// - **Timestamp synchronisation** (per task, see `PartitionGroup`): a task
///   whose partition has nothing buffered waits for it while the partition is
///   not at its end. "At its end" means the consumer reported a partition EOF
///   at or past everything fetched (`enable.partition.eof`): the lag is known
///   to be 0. `max.task.idle.ms` as in Kafka Streams: 0 (default) waits
///   exactly while the lag is above 0; a positive value also waits that long
///   for a partition at its end; -1 never waits.
/// - **Alignment** (like Flink's watermark alignment, FLIP-182): the tasks of
///   a sub-topology that writes a repartition topic only process records up to
///   the slowest sibling's event time plus `max.drift.ms`, so that partitions
///   replayed at different speeds do not interleave hours apart in the
///   repartition topic (which would make in-order data late downstream).
///   The frontier of a task is the event time of its next record, or — while
///   one of its queues is empty and not at its end — of the last record it
///   processed from that partition. Alignment is per instance.
/// - **Back-pressure**: a partition whose buffered records exceed a bound in
///   any task that reads it is paused until they drain to half of it, so a
///   slow reader of a partition that a fast one also reads holds a bounded
///   backlog (the records are shared: one task's backlog holds them all). It is
///   never paused while a task waits for it in event-time order, nor while a
///   merged input's records wait for upstream progress (the markers that release
///   them come through it), nor while a reader with nothing of it buffered holds
///   back its aligned siblings (they are capped at its frontier: only its
///   records move them).
struct InputScheduler {
    /// `max.task.idle.ms`.
    let maxTaskIdleMs: Int
    /// `max.drift.ms`.
    let maxDriftMs: Int64
    /// Buffered records of one partition above which it is paused.
    let pauseAbove: Int
    private let logger: Logger

    /// Next offset after the last message fetched, per partition.
    private var fetched: [TopicPartition: Int64] = [:]
    /// Offset of the last partition-EOF event, per partition.
    private var eof: [TopicPartition: Int64] = [:]
    /// Since when a task has been waiting for one of its partitions.
    private var waitingSince: [WaitKey: ContinuousClock.Instant] = [:]
    private var lastWaitLog: [WaitKey: ContinuousClock.Instant] = [:]
    /// Input status of every task that has buffered input or processed some.
    private(set) var statuses: [TaskID: InputStatus] = [:]
    /// Partitions paused for back-pressure.
    private(set) var paused: Set<TopicPartition> = []
    /// Aligned sub-topologies with a task held back by the alignment cap in the last drain
    /// round: their tasks with nothing buffered are what the cap waits for.
    var cappedSubTopologies: Set<String> = []

    struct WaitKey: Hashable {
        let task: TaskID
        let partition: TopicPartition
    }

    init(maxTaskIdleMs: Int, maxDriftMs: Int64, pauseAbove: Int, logger: Logger) {
        self.maxTaskIdleMs = maxTaskIdleMs
        self.maxDriftMs = maxDriftMs
        self.pauseAbove = pauseAbove
        self.logger = logger
    }

    /// Records what a poll brought: messages and partition-EOF events.
    mutating func observe(_ messages: [KafkaMessage], endOfPartition: [TopicPartitionOffset]) {
        observe(messages, runs: PartitionRun.runs(of: messages), endOfPartition: endOfPartition)
    }

    /// ``observe(_:endOfPartition:)`` with the batch's runs of one partition already found.
    mutating func observe(_ messages: [KafkaMessage], runs: [PartitionRun], endOfPartition: [TopicPartitionOffset]) {
        for run in runs {
            // Offsets grow within a partition: the run's last message is its furthest.
            let next = messages[run.range.upperBound - 1].offset + 1
            if next > fetched[run.partition, default: .min] { fetched[run.partition] = next }
        }
        for e in endOfPartition { eof[e.topicPartition] = e.offset }
    }

    /// Whether the consumer has fetched everything the broker held at the last EOF event of `tp`.
    func atEnd(_ tp: TopicPartition) -> Bool {
        guard let e = eof[tp] else { return false }
        return e >= fetched[tp, default: .min]
    }

    /// Forgets partitions (revoked, or rewound after tasks were dropped).
    mutating func forget(_ partitions: some Sequence<TopicPartition>, tasks: some Sequence<TaskID>) {
        for tp in partitions {
            fetched.removeValue(forKey: tp)
            eof.removeValue(forKey: tp)
            paused.remove(tp)
        }
        for id in tasks {
            statuses.removeValue(forKey: id)
            waitingSince = waitingSince.filter { $0.key.task != id }
            lastWaitLog = lastWaitLog.filter { $0.key.task != id }
        }
    }

    mutating func update(_ id: TaskID, _ status: InputStatus) { statuses[id] = status }

    /// Source topics of a task whose empty queue need not hold it back now.
    func mayRunAhead(_ id: TaskID, topics: [String], now: ContinuousClock.Instant) -> Set<String> {
        var out: Set<String> = []
        for t in topics {
            let tp = TopicPartition(t, id.partition)
            if maxTaskIdleMs < 0 {
                out.insert(t)
            } else if atEnd(tp) {
                if maxTaskIdleMs == 0 { out.insert(t); continue }
                // A positive max.task.idle.ms also waits for a partition at its end, that long.
                if let since = waitingSince[WaitKey(task: id, partition: tp)], now - since >= .milliseconds(maxTaskIdleMs) { out.insert(t) }
            }
        }
        return out
    }

    /// The alignment cap of each aligned sub-topology: the smallest frontier of
    /// its tasks on this instance plus `max.drift.ms` (`Int64.max`: no cap).
    func caps(_ tasksBySub: [String: [TaskID]], topics: [String: [String]]) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for (sub, ids) in tasksBySub {
            var frontier = Int64.max
            for id in ids {
                let status = statuses[id] ?? InputStatus()
                for t in topics[sub] ?? [] {
                    if let head = status.heads[t] {
                        frontier = min(frontier, head)
                    } else if !atEnd(TopicPartition(t, id.partition)) {
                        frontier = min(frontier, status.partitionTimes[t] ?? .min)
                    }
                }
            }
            let (capped, overflow) = frontier.addingReportingOverflow(maxDriftMs)
            out[sub] = frontier == .max || overflow ? .max : capped
        }
        return out
    }

    /// Notes which task waits for which partition (for `max.task.idle.ms` and
    /// the log: a wait is never silent).
    mutating func noteWaiting(_ id: TaskID, on topic: String?, now: ContinuousClock.Instant) {
        let keys = waitingSince.keys.filter { $0.task == id }
        guard let topic else {
            for k in keys { waitingSince.removeValue(forKey: k) }
            return
        }
        let key = WaitKey(task: id, partition: TopicPartition(topic, id.partition))
        for k in keys where k != key { waitingSince.removeValue(forKey: k) }
        let since = waitingSince[key] ?? now
        waitingSince[key] = since
        if now - since >= .seconds(10), now - (lastWaitLog[key] ?? since) >= .seconds(10) {
            lastWaitLog[key] = now
            let fetchedText = fetched[key.partition].map { "fetched up to offset \($0)" } ?? "nothing fetched yet"
            let eofText = eof[key.partition].map { "last end-of-partition at \($0)" } ?? "no end-of-partition seen"
            logger.info("task \(id) has waited \(now - since) for \(key.partition) to be fetched before processing its other input in event-time order (\(fetchedText), \(eofText)); set max.task.idle.ms to bound the wait")
        }
    }

    /// Partitions to pause and to resume now, given every task's buffered input.
    mutating func backPressure(readers: [TopicPartition: [TaskID]]) -> (pause: [TopicPartition], resume: [TopicPartition]) {
        var pause: [TopicPartition] = []
        var resume: [TopicPartition] = []
        for (tp, ids) in readers {
            let counts = ids.map { statuses[$0]?.buffered[tp.topic] ?? 0 }
            let least = counts.min() ?? 0
            let most = counts.max() ?? 0
            let waitedFor = waitingSince.keys.contains { $0.partition == tp } || ids.contains { statuses[$0]?.waitsForUpstream == true }
            // An empty reader whose siblings wait at the alignment cap needs this partition's records now.
            let holdsBack = least == 0 && zip(ids, counts).contains { $1 == 0 && cappedSubTopologies.contains($0.subTopology) }
            if paused.contains(tp) {
                if most <= pauseAbove / 2 || waitedFor || holdsBack {
                    paused.remove(tp)
                    resume.append(tp)
                }
            } else if most > pauseAbove && !waitedFor && !holdsBack {
                paused.insert(tp)
                pause.append(tp)
            }
        }
        return (pause, resume)
    }
}

/// Consecutive messages of a batch from one partition (a batch comes partition by partition):
/// what is looked up per partition is looked up once per run, not once per message.
struct PartitionRun: Sendable {
    var partition: TopicPartition
    var range: Range<Int>

    static func runs(of messages: [KafkaMessage]) -> [PartitionRun] {
        var out: [PartitionRun] = []
        var start = 0
        while start < messages.count {
            let tp = messages[start].topicPartition
            var end = start + 1
            while end < messages.count, messages[end].partition == tp.partition, messages[end].topic == tp.topic { end += 1 }
            out.append(PartitionRun(partition: tp, range: start..<end))
            start = end
        }
        return out
    }
}
