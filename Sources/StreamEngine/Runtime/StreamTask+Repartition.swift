import Foundation
import KafkaClient

/// A task's side of repartition topics: the progress markers an upstream task sends, the
/// bounded wait of a merged input (see `UpstreamMerge`) and de-duplication of replayed records.
extension StreamTask {
    /// How long a merged input waits for an upstream task before it takes what it holds.
    static let mergeWaitBound: Duration = .seconds(30)

    /// Counts and logs (every 10 s of waiting) a merged input that holds records back for an
    /// upstream task and took none since the wait began: never a silent stall. (`drain`
    /// restarts the wait when it took records.)
    func noteMergeWait() {
        guard let merge = input.merge, merge.count > 0, let u = merge.next(releaseAll: input.releaseAll).waitingFor else {
            mergeWait = MergeWait()
            return
        }
        guard mergeWait.note(now: .now) else { return }
        let said = merge.progress[u].map { "its last stream time \($0.streamTime == .min ? "none yet" : String($0.streamTime)), \($0.idle ? "idle" : "busy"), heard at offset \($0.offset) of \(sub.sourceTopics[0])[\(partition)]; read up to offset \(merge.lastOffset)" } ?? "nothing heard from it yet"
        env.logger.info("task \(id) has held \(merge.count) records of \(sub.sourceTopics[0]) for \(mergeWait.waited) in merge order, waiting for upstream task \(sub.pipeline.name)-\(u) (\(said)): it is not running, or behind")
    }

    /// The position of a repartition record in its upstream task's output: the
    /// upstream input partition (`se-up`, `topic/partition`) and, as one
    /// comparable number, the input offset and output index (`se-seq`). It
    /// names the same record in every run, whichever instance wrote it and in
    /// whatever order the merge took it: so it is what a merged input's commit
    /// tags, commit metadata and Redis fence count, and a replayed record at or
    /// below the position reached is a duplicate. (A count of records taken
    /// would not do: two runs from one commit can take different records first,
    /// and a changelog record of an uncommitted run would then pass for committed.)
    /// - Parameter key: the position key of an upstream input topic and task (`topic/task`).
    /// - Parameter read: the message's stamp when the caller read it already.
    static func upstreamPosition(_ m: KafkaMessage, stamp read: RepartitionStamp? = nil, key: (String, Int32) -> String = { "\($0)/\($1)" }) -> InputPosition? {
        if let stamp = read ?? RepartitionStamp.of(m) {
            guard let p = stamp.position, p.offset >= 0, p.offset < 1 << 39, p.index >= 0, p.index < 1 << 24 else { return nil }
            return InputPosition(key: key(p.topic, stamp.upstreamTask), value: p.offset << 24 | p.index)
        }
        // A record of an earlier version: the text headers.
        guard let up = m.header(Headers.upstreamPartition)?.stringValue,
              let seq = m.header(Headers.upstreamSequence)?.stringValue else { return nil }
        let parts = seq.split(separator: ".")
        guard parts.count == 2, let o = Int64(parts[0]), let i = Int64(parts[1]),
              o >= 0, o < 1 << 39, i >= 0, i < 1 << 24 else { return nil }
        return InputPosition(key: up, value: o << 24 | i)
    }

    /// `upstreamPosition` with the position keys made once per upstream topic and task
    /// (a repartition record would otherwise format its key anew).
    func upstreamPositionCachingKeys(_ m: KafkaMessage, stamp: RepartitionStamp?) -> InputPosition? {
        var made: (topic: String, task: Int32, key: String)?
        let cache = upstreamKeys
        let position = Self.upstreamPosition(m, stamp: stamp) { topic, task in
            for e in cache where e.task == task && e.topic == topic { return e.key }
            let key = "\(topic)/\(task)"
            made = (topic, task, key)
            return key
        }
        if let made { upstreamKeys.append(made) }
        return position
    }

    /// Key prefix of upstream progress entries in the de-duplication store.
    static let progressKeyPrefix = "~progress/"

    /// Sends a progress marker to each partition of the repartition topic this task
    /// writes whose reader was last told (by a record or a marker) another stream
    /// time or idleness; true if it sent any. A partition that gets none of the
    /// task's records (keys co-partitioned with the input, a skewed key) still
    /// hears how far the task is: its reader would wait for it otherwise.
    func sendProgressMarkers(inputIdle: Bool) -> Bool {
        guard var out = repartitionOut else { return false }
        let now = RepartitionOutput.Said(streamTime: streamTime, idle: inputIdle)
        let headers = [
            KafkaHeader(Headers.upstreamTask, String(partition)), KafkaHeader(Headers.upstreamStreamTime, String(streamTime)),
            KafkaHeader(Headers.upstreamIdle, inputIdle ? "1" : "0"),
        ]
        var sent = false
        for q in 0..<out.partitions where out.said[Int(q)] != now {
            send(ProducerRecord(topic: out.topic, partition: q, key: nil, value: nil, headers: headers))
            out.said[Int(q)] = now
            sent = true
        }
        repartitionOut = out
        return sent
    }
}

/// The repartition topic a task writes, and what the task last told each
/// partition's reader: its stream time and whether its input was at its end.
struct RepartitionOutput {
    struct Said: Equatable {
        var streamTime: Int64
        var idle: Bool
    }

    let topic: String
    let partitions: Int32
    /// librdkafka's `partitioner` setting: the task picks each record's partition with it
    /// (`nil` for a partitioner without a key hash: the producer picks).
    let partitioner: KafkaPartitioner.Hash?
    /// Per partition, the progress its reader last heard from this task (`nil`: nothing yet).
    var said: [Said?]

    init(topic: String, partitions: Int32, partitioner: String) {
        self.topic = topic
        self.partitions = partitions
        self.partitioner = KafkaPartitioner.Hash(partitioner: partitioner)
        said = Array(repeating: nil, count: Int(max(partitions, 0)))
    }

    /// The partition librdkafka's partitioner gives `key`; `nil` leaves it to the producer (an empty key).
    func partition(ofKey key: [UInt8]) -> Int32? {
        partitioner?.partition(key: key, count: partitions)
    }
}

/// How long a merged input has waited for an upstream task, counted while the task is given
/// drain rounds: each gap between two rounds counts at most `maxGap`. When the whole instance
/// stalls (a commit that retries through a Redis or Kafka outage, a long pause of the process),
/// no upstream task on it can progress either, and the stall must not use up the wait: every
/// merged input would otherwise give up at the next round and take its records in arrival order.
struct MergeWait {
    /// The wait so far.
    private(set) var waited: Duration = .zero
    /// The longest gap between two rounds that counts in full.
    static let maxGap: Duration = .seconds(1)
    /// Logged every this much of waiting.
    static let logEvery: Duration = .seconds(10)
    private var lastRound: ContinuousClock.Instant?
    private var loggedAt: Duration = .zero

    /// Notes a round in which the input still waits; true when the wait is to be logged now.
    mutating func note(now: ContinuousClock.Instant) -> Bool {
        if let lastRound { waited += min(now - lastRound, Self.maxGap) }
        lastRound = now
        guard waited - loggedAt >= Self.logEvery else { return false }
        loggedAt = waited
        return true
    }
}
