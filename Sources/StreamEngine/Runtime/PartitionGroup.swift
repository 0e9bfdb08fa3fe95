import KafkaClient

/// The buffered input of one task: one FIFO queue per source topic (the task
/// reads one partition of each), and the rule that decides which record the
/// task processes next (Kafka Streams' partition group, KIP-353/KIP-695).
///
/// - The record with the smallest event time among the queue heads goes
///   first; ties go to the topic listed first in the pipeline's `source.topics`
///   (then offset order within the topic). So a source of several topics under
///   one key gets the result it would get from one topic in timestamp order.
/// - While a queue is empty but its partition is not at its end (the broker
///   still holds records the consumer has not fetched), the task waits rather
///   than run ahead, unless the wait was given up (`max.task.idle.ms`).
/// - An alignment cap (see `InputScheduler`) can hold back records whose
///   event time runs ahead of the task's siblings.
struct PartitionGroup {
    /// One buffered input record, decoded when it arrived (or, in a single-queue input, when
    /// it is taken: ``appendUndecoded(_:topicIndex:)``).
    struct Pending {
        let message: KafkaMessage
        /// Event time used for ordering: the record's own, or for a record that
        /// failed to decode the last event time of its queue (it keeps its place).
        let timestamp: Int64
        /// `nil`: not decoded yet, decoded when the task takes it (see ``appendUndecoded(_:topicIndex:)``).
        let decoded: Result<StreamRecord, RecordError>?
        /// A repartition record's stamp, read once when it arrived (`nil` for other records).
        var stamp: RepartitionStamp? = nil
    }

    /// Source topics in declaration order (the tie-break order).
    let topics: [String]
    /// Per source topic; an element is `nil` once taken (`removeFirst` moves it out instead of copying it).
    private var queues: [[Pending?]]
    private var heads: [Int]
    /// The records of a single-queue input to be decoded when taken (``appendUndecoded(_:topicIndex:)``),
    /// as bare messages: a fifth of a `Pending`'s size, so a poll batch's worth stays in the cache.
    /// They come after every record of `queues[0]`: at most one of `queues[0]`, `undecoded` and `shared` holds records.
    private var undecoded: [KafkaMessage?] = []
    private var undecodedHead = 0
    /// The records of a single-queue input that several tasks read, parsed (and decoded) once for
    /// all of them (``appendShared(_:from:)``): each run's array as the readers share it (nothing
    /// writes to it), and what is left to take of it. No element is copied when they arrive, and
    /// a record's parts are released once, with the array, however many tasks read it. Like
    /// `undecoded`, they come after every record of `queues[0]`: at most one of the three holds records.
    private var shared: [SharedRun] = []
    private var sharedHead = 0

    /// A run of records shared with the other tasks that read its partition.
    private struct SharedRun {
        let inputs: [InputMessage]
        /// The next element to take.
        var next: Int
    }
    /// Event time of the last record enqueued per queue.
    private var lastEnqueued: [Int64]
    /// Event time of the last record processed per queue (partition time).
    private(set) var partitionTimes: [Int64]

    /// For a task reading a repartition topic (its only source): the merge of its
    /// upstream tasks' records in canonical order (queue 0; see `UpstreamMerge`).
    private(set) var merge: UpstreamMerge?
    /// Take merged records without waiting for upstream progress (the test driver).
    var releaseAll = false
    /// Take merged records without waiting, for now: the wait for an upstream task ran past its bound.
    var gaveUpWaiting = false

    init(topics: [String], mergingUpstreams: Int32? = nil) {
        if let n = mergingUpstreams {
            precondition(topics.count == 1, "a merged input has one topic")
            merge = UpstreamMerge(upstreams: n)
        }
        self.topics = topics
        queues = Array(repeating: [], count: topics.count)
        heads = Array(repeating: 0, count: topics.count)
        lastEnqueued = Array(repeating: .min, count: topics.count)
        partitionTimes = Array(repeating: .min, count: topics.count)
    }

    func index(of topic: String) -> Int? { topics.firstIndex(of: topic) }

    /// Records buffered in queue `i`.
    func count(_ i: Int) -> Int {
        merge?.count ?? (queues[i].count - heads[i] + (i == 0 ? undecoded.count - undecodedHead + sharedCount : 0))
    }

    /// Records the shared runs hold in memory: those left to take, and those taken but not released.
    var heldSharedRecords: Int { shared.reduce(0) { $0 + $1.inputs.count } }

    /// Records left in `shared`.
    private var sharedCount: Int { shared[sharedHead...].reduce(0) { $0 + $1.inputs.count - $1.next } }

    /// Records buffered in every queue.
    var total: Int { (0..<topics.count).reduce(0) { $0 + count($1) } }

    /// The event time of the head of queue `i`, `nil` when it is empty.
    /// For a merged input: the event time of the record that may go next (nil while it waits).
    func headTimestamp(_ i: Int) -> Int64? {
        if let merge {
            guard let q = merge.next(releaseAll: releaseAll || gaveUpWaiting).queue else { return nil }
            return merge.timestamp(ofQueue: q)
        }
        if heads[i] < queues[i].count { return queues[i][heads[i]]!.timestamp }
        guard i == 0 else { return nil }
        if undecodedHead < undecoded.count { return placeholderTimestamp(undecoded[undecodedHead]!, queue: 0) }
        if sharedHead < shared.count { return timestamp(shared[sharedHead].inputs, shared[sharedHead].next) }
        return nil
    }

    /// The event time of a shared record: its own when it is decoded, else the place-holding one.
    private func timestamp(_ inputs: [InputMessage], _ k: Int) -> Int64 {
        inputs[k].isDecoded ? inputs[k].record.unsafelyUnwrapped.timestamp : placeholderTimestamp(inputs[k].message, queue: 0)
    }

    /// The event time an undecoded record holds its place with: its queue's last known one, or its own timestamp.
    private func placeholderTimestamp(_ message: KafkaMessage, queue i: Int) -> Int64 {
        lastEnqueued[i] == .min ? (message.timestamp ?? .min) : lastEnqueued[i]
    }

    /// Appends a record to be decoded when it is taken: for a task whose only input is one
    /// partition of one topic, taken in offset order whatever the records' event times, and
    /// not aligned with other tasks, so nothing needs its event time before then. It is then
    /// decoded right before its steps run, while its bytes are in the cache, and its decoded
    /// form is never buffered. Its place-holding event time is the queue's last known one
    /// (or the message's timestamp).
    mutating func appendUndecoded(_ message: KafkaMessage, topicIndex i: Int) {
        precondition(merge == nil && topics.count == 1, "only a single-queue input decodes records when they are taken")
        if sharedHead < shared.count { moveShared() }
        if heads[i] < queues[i].count {  // behind decoded records: in their queue, to keep the order
            queues[i].append(Pending(message: message, timestamp: placeholderTimestamp(message, queue: i), decoded: nil))
        } else {
            Self.dropTaken(&undecoded, head: &undecodedHead, longAfter: 1024)  // a range taken at once leaves its records until here
            undecoded.append(message)
        }
    }

    /// Takes up to `limit` records to be decoded when taken at once, when they are the head of
    /// queue 0: the array holding them and the range taken, which the caller processes in order
    /// (read in place; the array is compacted at the next take or append). The range ends before
    /// the first record whose place-holding event time is beyond `cap`. `nil`: none taken.
    mutating func takeUndecodedRun(atMost cap: Int64, limit: Int) -> (messages: [KafkaMessage?], range: Range<Int>)? {
        guard merge == nil, limit > 0, heads[0] == queues[0].count, sharedHead == shared.count else { return nil }
        Self.dropTaken(&undecoded, head: &undecodedHead, longAfter: 1024)
        guard undecodedHead < undecoded.count else { return nil }
        let start = undecodedHead
        let end = undecoded.count - start > limit ? start + limit : undecoded.count
        var k = start
        var partitionTime = partitionTimes[0]
        while k < end {
            let ts = placeholderTimestamp(undecoded[k]!, queue: 0)  // as `removeFirst` gives it
            if ts > cap { break }
            if ts > partitionTime { partitionTime = ts }
            k += 1
        }
        guard k > start else { return nil }
        partitionTimes[0] = partitionTime
        undecodedHead = k
        return (undecoded, start..<k)
    }

    /// Whether ``appendShared(_:from:)`` keeps the order: nothing waits in the other queues.
    var takesShared: Bool { merge == nil && topics.count == 1 && heads[0] == queues[0].count && undecodedHead == undecoded.count }

    /// Appends the records of `inputs` from index `start` on, a run that several tasks read,
    /// without copying them (see `shared`); each is taken as it is (decoded, or decoded when
    /// taken, from its parsed value when it has one). Only when ``takesShared``.
    mutating func appendShared(_ inputs: [InputMessage], from start: Int) {
        precondition(takesShared, "shared records come after every other buffered record")
        guard start < inputs.count else { return }
        shared.append(SharedRun(inputs: inputs, next: start))
    }

    /// Takes the head of queue `i` when it is a shared record: the run holding it and its index
    /// (the caller reads it in place), advancing the partition time. `nil`: take it with ``removeFirst(_:)``.
    /// - Parameter cap: `nil` (nothing taken) when the head's event time is beyond it.
    mutating func takeShared(_ i: Int, atMost cap: Int64 = .max) -> (inputs: [InputMessage], index: Int)? {
        guard i == 0, sharedHead < shared.count, heads[0] == queues[0].count, undecodedHead == undecoded.count else { return nil }
        let inputs = shared[sharedHead].inputs
        let k = shared[sharedHead].next
        let ts = timestamp(inputs, k)
        guard ts <= cap else { return nil }
        if ts > lastEnqueued[0] { lastEnqueued[0] = ts }
        if ts > partitionTimes[0] { partitionTimes[0] = ts }
        if k + 1 < inputs.count {
            shared[sharedHead].next = k + 1
        } else {
            releaseTakenRun()
        }
        return (inputs, k)
    }

    /// ``takeShared(_:atMost:)`` of up to `limit` records at once from the run at the head of
    /// queue 0: the run and the range of its records taken, which the caller processes in order.
    /// The range ends before the first record whose event time is beyond `cap`, or with the run.
    /// `nil`: none taken (as `takeShared(_:atMost:)`'s `nil`).
    mutating func takeSharedRun(atMost cap: Int64, limit: Int) -> (inputs: [InputMessage], range: Range<Int>)? {
        guard limit > 0, undecodedHead == undecoded.count, sharedHead < shared.count, heads[0] == queues[0].count, undecodedHead == undecoded.count else { return nil }
        let inputs = shared[sharedHead].inputs
        let start = shared[sharedHead].next
        let end = inputs.count - start > limit ? start + limit : inputs.count
        var k = start
        var enqueued = lastEnqueued[0]
        var partitionTime = partitionTimes[0]
        inputs.withUnsafeBufferPointer { b in
            while k < end {
                // As `timestamp(_:_:)`, with the queue's last known event time as it is by then.
                let ts = b[k].isDecoded ? b[k].record.unsafelyUnwrapped.timestamp
                    : enqueued == .min ? (b[k].message.timestamp ?? .min) : enqueued
                if ts > cap { break }
                if ts > enqueued { enqueued = ts }
                if ts > partitionTime { partitionTime = ts }
                k += 1
            }
        }
        guard k > start else { return nil }
        lastEnqueued[0] = enqueued
        partitionTimes[0] = partitionTime
        if k < inputs.count {
            shared[sharedHead].next = k
        } else {
            releaseTakenRun()
        }
        return (inputs, start..<k)
    }

    /// The run at the head of the shared ones is taken: its records go now (the caller holds the
    /// array while it reads them), not when the task next takes every shared record it has. Runs
    /// keep arriving behind the head while a task processes a backlog, so the array of runs might
    /// not be empty until the input ends, and every run taken so far stayed.
    private mutating func releaseTakenRun() {
        shared[sharedHead] = SharedRun(inputs: [], next: 0)
        sharedHead += 1
        Self.dropTaken(&shared, head: &sharedHead, longAfter: 64)
    }

    /// Moves the shared records into the queue of decoded ones (another kind of record arrives
    /// behind them): a decoded one as it is, any other to be decoded from its bytes when taken.
    private mutating func moveShared() {
        for run in shared[sharedHead...] {
            for k in run.next..<run.inputs.count {
                let ts = timestamp(run.inputs, k)
                if ts > lastEnqueued[0] { lastEnqueued[0] = ts }
                queues[0].append(Pending(message: run.inputs[k].message, timestamp: ts, decoded: run.inputs[k].decoded))
            }
        }
        shared.removeAll(keepingCapacity: true)
        sharedHead = 0
    }

    /// Moves the undecoded records into the queue of decoded ones (a decoded record arrives behind them).
    private mutating func moveUndecoded() {
        for case let m? in undecoded[undecodedHead...] { queues[0].append(Pending(message: m, timestamp: placeholderTimestamp(m, queue: 0), decoded: nil)) }
        undecoded.removeAll(keepingCapacity: true)
        undecodedHead = 0
    }

    /// Takes an upstream progress marker (merged input only).
    mutating func marker(_ message: KafkaMessage) {
        merge?.marker(message)
    }

    /// Restores upstream progress (merged input only).
    mutating func restoreProgress(_ saved: [Int32: UpstreamMerge.Progress]) {
        merge?.restore(saved)
    }

    /// Upstream progress changed since the last call (merged input only).
    mutating func takeChangedProgress() -> [Int32: UpstreamMerge.Progress] {
        merge?.takeChangedProgress() ?? [:]
    }

    /// Appends a decoded record (or a decode failure) to its topic's queue.
    mutating func append(_ message: KafkaMessage, topicIndex i: Int, decoded: Result<StreamRecord, RecordError>, stamp: RepartitionStamp? = nil) {
        if i == 0, sharedHead < shared.count { moveShared() }
        if i == 0, undecodedHead < undecoded.count { moveUndecoded() }
        let ts: Int64
        switch decoded {
        case .success(let r): ts = r.timestamp
        case .failure: ts = lastEnqueued[i] == .min ? (message.timestamp ?? .min) : lastEnqueued[i]
        }
        if ts > lastEnqueued[i] { lastEnqueued[i] = ts }
        if merge != nil {
            merge!.append(Pending(message: message, timestamp: ts, decoded: decoded, stamp: stamp))
            return
        }
        queues[i].append(Pending(message: message, timestamp: ts, decoded: decoded))
    }

    /// What the task may do next.
    enum Next: Equatable {
        /// Take the head of this queue.
        case take(Int)
        /// Queue `i` is empty while its partition has more records on the broker.
        case starved(Int)
        /// The smallest head is beyond the alignment cap.
        case capped
        /// Nothing buffered.
        case empty
    }

    /// Chooses the next record.
    /// - Parameters:
    ///   - mayRunAhead: whether queue `i` may be empty without waiting for it
    ///     (its partition is at its end, or the wait was given up).
    ///   - cap: largest event time that may be processed now.
    /// Mutating only in its signature: a non-mutating call on the task's stored group
    /// copies the whole group (every queue retained and released) once per record.
    mutating func next(mayRunAhead: (Int) -> Bool, cap: Int64) -> Next {
        var best: Int?
        var bestTs = Int64.max
        var starved: Int?
        for i in 0..<topics.count {
            if let ts = headTimestamp(i) {
                if best == nil || ts < bestTs { best = i; bestTs = ts }
            } else if starved == nil, !mayRunAhead(i) || count(i) > 0 {
                // A merged input with records that wait for an upstream task waits even at its end.
                starved = i
            }
        }
        guard let best else { return .empty }
        if let starved { return .starved(starved) }
        return bestTs > cap ? .capped : .take(best)
    }

    /// Removes and returns the head of queue `i`, advancing its partition time.
    mutating func removeFirst(_ i: Int) -> Pending {
        if merge != nil {
            let q = merge!.next(releaseAll: releaseAll || gaveUpWaiting).queue!
            let p = merge!.removeFirst(q)
            if p.timestamp > partitionTimes[i] { partitionTimes[i] = p.timestamp }
            return p
        }
        let p: Pending
        if heads[i] == queues[i].count, i == 0, undecodedHead < undecoded.count {
            let m = Self.takeFirst(&undecoded, head: &undecodedHead)
            p = Pending(message: m, timestamp: placeholderTimestamp(m, queue: 0), decoded: nil)
        } else {
            p = Self.takeFirst(&queues[i], head: &heads[i])
        }
        if p.timestamp > partitionTimes[i] { partitionTimes[i] = p.timestamp }
        return p
    }

    /// Drops the taken elements before `head` once the queue is empty, or once they are most of
    /// a queue longer than `longAfter`.
    private static func dropTaken<Element>(_ queue: inout [Element], head: inout Int, longAfter: Int) {
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= longAfter && head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }

    /// Moves the element at `head` out of `queue` and advances `head`; the taken elements are
    /// dropped once the queue is empty, or once they are most of a long one.
    private static func takeFirst<Element>(_ queue: inout [Element?], head: inout Int) -> Element {
        let element = queue[head].take()!
        head += 1
        dropTaken(&queue, head: &head, longAfter: 1024)
        return element
    }

    /// The state a scheduler needs to align this task with its siblings.
    var status: InputStatus {
        var s = InputStatus()
        for (i, t) in topics.enumerated() {
            s.buffered[t] = count(i)
            if let h = headTimestamp(i) { s.heads[t] = h }
            s.partitionTimes[t] = partitionTimes[i]
        }
        if merge != nil, count(0) > 0, s.heads.isEmpty { s.waitsForUpstream = true }
        return s
    }
}

/// A task's buffered input as the scheduler sees it, per source topic.
struct InputStatus: Sendable, Equatable {
    /// Records buffered.
    var buffered: [String: Int] = [:]
    /// Event time of the next record, for non-empty queues.
    var heads: [String: Int64] = [:]
    /// Event time of the last record processed (`Int64.min` before the first).
    var partitionTimes: [String: Int64] = [:]
    /// A merged input holds records that wait for upstream progress: the markers that
    /// release them come through the same partition, so it must never be paused.
    var waitsForUpstream = false

    var total: Int { buffered.values.reduce(0, +) }
}
