import KafkaClient

/// The input of a task that reads a repartition topic, put back into one
/// order that does not depend on how the upstream tasks' writes interleaved.
///
/// A repartition partition merges the records of every upstream task (one per
/// partition of the pipeline's source), written by whichever instance runs
/// each, at whatever pace: their interleaving in the partition is arrival
/// order. Each upstream task stamps what it writes with its partition
/// and its stream time at that moment (never decreasing; both in the record's
/// `RepartitionStamp`, or the `se-ut` and `se-st` headers of earlier versions),
/// and at every commit it sends a progress marker to each partition whose
/// reader last heard (by a record or a marker) another stream time or
/// idleness from it: its stream time, and whether its input is at its end
/// (`se-idle`). The downstream task keeps one queue per upstream task and
/// processes records in the order of (stream time at emission, upstream
/// partition), taking a record only once no upstream can still send one that
/// sorts before it: each other upstream has a queued record after it, or has
/// reported a stream time past it, or is idle. So every layout of instances,
/// every fetch pattern and every replay gives the same processing order —
/// the canonical merge of the upstream tasks' outputs (like Flink's
/// watermarks, with the upstream stream time as the watermark).
///
/// An upstream that is idle (its input at its end) does not hold the others
/// back; when it gets new input its records are merged from then on (the
/// same trade-off as `max.task.idle.ms`). Records without a stamp
/// (written by an older engine) are taken in arrival order.
struct UpstreamMerge {
    /// One queued record with its merge key.
    struct Entry {
        /// `nil` once taken (`removeFirst` moves it out instead of copying it).
        var pending: PartitionGroup.Pending?
        let streamTime: Int64
    }

    /// What an upstream task last said about itself.
    struct Progress: Equatable, Sendable {
        /// Its stream time: it sends nothing stamped earlier.
        var streamTime: Int64
        /// Its input was at its end (nothing more to come until new input).
        var idle: Bool
        /// Offset (in the repartition partition) of the record or marker this came from.
        var offset: Int64
    }

    /// Number of upstream tasks (partitions of the pipeline's source).
    let upstreams: Int32
    /// Above this many queued records the smallest is taken without waiting (bounded memory).
    let bound: Int
    private var queues: [[Entry]]
    private var heads: [Int]
    /// Records without a stamp (neither in the value nor in headers), in arrival order.
    private var unstamped: [PartitionGroup.Pending] = []
    private(set) var progress: [Int32: Progress] = [:]
    /// Progress entries changed since `takeChangedProgress`.
    private var changed: Set<Int32> = []
    private(set) var count = 0
    /// Highest offset appended (records and markers).
    private(set) var lastOffset: Int64 = -1

    init(upstreams: Int32, bound: Int = 200_000) {
        self.upstreams = max(1, upstreams)
        self.bound = bound
        queues = Array(repeating: [], count: Int(self.upstreams))
        heads = Array(repeating: 0, count: Int(self.upstreams))
    }

    /// Reads a record's merge key: the upstream partition and its stream time (from its stamp,
    /// or from the text headers of earlier versions).
    /// - Parameter read: the message's stamp when the caller read it already.
    static func stamp(of m: KafkaMessage, read: RepartitionStamp? = nil) -> (upstream: Int32, streamTime: Int64)? {
        if let stamp = read ?? RepartitionStamp.of(m) { return (stamp.upstreamTask, stamp.streamTime) }
        guard let u = m.header(Headers.upstreamTask)?.stringValue.flatMap({ Int32($0) }),
              let st = m.header(Headers.upstreamStreamTime)?.stringValue.flatMap({ Int64($0) }) else { return nil }
        return (u, st)
    }

    /// Whether a message is a progress marker (no value, the idle header).
    static func isMarker(_ m: KafkaMessage) -> Bool { m.header(Headers.upstreamIdle) != nil }

    /// Restores what upstream tasks had said (from the task's de-duplication store).
    mutating func restore(_ saved: [Int32: Progress]) {
        for (u, p) in saved { note(u, p) }
        changed.removeAll()
    }

    /// Takes a progress marker.
    mutating func marker(_ m: KafkaMessage) {
        lastOffset = max(lastOffset, m.offset)
        guard let (u, st) = Self.stamp(of: m) else { return }
        let idle = m.header(Headers.upstreamIdle)?.stringValue == "1"
        note(u, Progress(streamTime: st, idle: idle, offset: m.offset))
    }

    /// Queues a record.
    mutating func append(_ p: PartitionGroup.Pending) {
        lastOffset = max(lastOffset, p.message.offset)
        count += 1
        guard let (u, st) = Self.stamp(of: p.message, read: p.stamp), u >= 0, u < upstreams else {
            unstamped.append(p)
            return
        }
        queues[Int(u)].append(Entry(pending: p, streamTime: st))
        note(u, Progress(streamTime: st, idle: false, offset: p.message.offset))
    }

    /// Records the latest progress of `u`: a later position wins; the stream time never goes back.
    /// Called per record: one lookup of `u`, the entry changed in place (a later offset always changes it).
    private mutating func note(_ u: Int32, _ p: Progress) {
        if let i = progress.index(forKey: u) {
            let old = progress.values[i]
            if old.offset >= p.offset { return }
            progress.values[i] = Progress(streamTime: max(old.streamTime, p.streamTime), idle: p.idle, offset: p.offset)
        } else {
            progress[u] = p
        }
        changed.insert(u)
    }

    /// Progress entries changed since the last call (to persist them).
    mutating func takeChangedProgress() -> [Int32: Progress] {
        defer { changed.removeAll() }
        var out: [Int32: Progress] = [:]
        for u in changed { out[u] = progress[u] }
        return out
    }

    /// The merge key of queue `u`'s head (read in place: no copy of the record), `nil` when it is empty.
    private func headStreamTime(_ u: Int) -> Int64? { heads[u] < queues[u].count ? queues[u][heads[u]].streamTime : nil }

    /// The queue whose head goes next, if it may go now; `waitingFor` names the
    /// upstream that holds it back otherwise.
    /// - Parameter releaseAll: take the smallest queued record without waiting for anyone.
    func next(releaseAll: Bool) -> (queue: Int?, waitingFor: Int32?) {
        if !unstamped.isEmpty { return (-1, nil) }
        var best: Int?
        var bestKey = (Int64.max, Int32.max)
        for u in 0..<Int(upstreams) {
            guard let streamTime = headStreamTime(u) else { continue }
            let key = (streamTime, Int32(u))
            if best == nil || key < bestKey { best = u; bestKey = key }
        }
        guard let best else { return (nil, nil) }
        if releaseAll || count > bound { return (best, nil) }
        for u in 0..<upstreams where u != Int32(best) && headStreamTime(Int(u)) == nil {
            guard let p = progress[u] else { return (nil, u) }
            if p.idle { continue }
            if p.streamTime > bestKey.0 || (p.streamTime == bestKey.0 && u > bestKey.1) { continue }
            return (nil, u)
        }
        return (best, nil)
    }

    /// The event time of the record `next` chose.
    func timestamp(ofQueue q: Int) -> Int64 {
        q < 0 ? unstamped[0].timestamp : queues[q][heads[q]].pending!.timestamp
    }

    /// Removes the head of queue `q` (`-1`: the unstamped records).
    mutating func removeFirst(_ q: Int) -> PartitionGroup.Pending {
        count -= 1
        if q < 0 { return unstamped.removeFirst() }
        let p = queues[q][heads[q]].pending.take()!
        heads[q] += 1
        if heads[q] == queues[q].count {
            queues[q].removeAll(keepingCapacity: true)
            heads[q] = 0
        } else if heads[q] >= 1024 && heads[q] * 2 >= queues[q].count {
            queues[q].removeFirst(heads[q])
            heads[q] = 0
        }
        return p
    }

    /// The smallest offset still queued (the position to resume reading from after a restart).
    var minQueuedOffset: Int64? {
        var m: Int64?
        for u in 0..<Int(upstreams) where headStreamTime(u) != nil { m = min(m ?? .max, queues[u][heads[u]].pending!.message.offset) }
        if let f = unstamped.first { m = min(m ?? .max, f.message.offset) }
        return m
    }
}
