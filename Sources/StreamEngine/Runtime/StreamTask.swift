import Foundation
import KafkaClient
import Logging
import Metrics
import RedisClient

/// Identifies a task: a sub-topology and a partition.
public struct TaskID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let subTopology: String
    public let partition: Int32
    public var description: String { "\(subTopology)-\(partition)" }
    public static func < (a: TaskID, b: TaskID) -> Bool { (a.subTopology, a.partition) < (b.subTopology, b.partition) }
}

/// What a task hands over at a commit.
package struct TaskCommit: Sendable {
    package let task: TaskID
    package let tag: CommitTag
    /// Next offsets to read per input partition.
    package let offsets: [TopicPartitionOffset]
    /// The Redis writes of the commit, in order, encoded for ``RedisFence``.
    package let redisWrites: RedisArguments
    /// Redis writes of periodic work (`Processor.punctuate`), applied after
    /// `redisWrites` under a fence of their own: a wall-clock sequence.
    package var punctuationWrites = RedisArguments()
    /// `redisWrites` as commands (the test driver and tests read them).
    package var redisCommands: [[String]] { RedisFence.commands(in: redisWrites) }
    /// `punctuationWrites` as commands.
    package var punctuationCommands: [[String]] { RedisFence.commands(in: punctuationWrites) }
    /// Rows of `sql` steps, written fenced by the task's input offsets.
    var sqlRows: [SQLPendingRow] = []
    /// Whether the rest of the commit may run while the task processes on: not for a task
    /// that combines before a repartition (its declared epoch's partials are the ones folded
    /// up to the commit, sent once the offsets are committed).
    var mayOverlap = true
}

/// A record that failed with `on_error: fail`.
public struct RecordFailure: Error, CustomStringConvertible, Sendable {
    public let pipeline: String
    public let origin: RecordOrigin?
    public let error: RecordError
    public var description: String {
        let at = origin.map { " at \($0.topic)[\($0.partition)]@\($0.offset)" } ?? ""
        return "pipeline \(pipeline): record\(at) failed: \(error)"
    }
}

/// One task: a sub-topology on one partition. An actor that owns its state
/// stores, processors and pending sink writes; the task manager feeds it
/// batches and asks it to commit.
package actor StreamTask {
    let id: TaskID
    let sub: SubTopology
    /// `sub.fromRepartition` and whether a record that passes the last step counts as output,
    /// kept apart: reading a field of `sub` per record copied the whole struct (its arrays
    /// retained and released).
    let fromRepartition: Bool
    let countsOutput: Bool
    /// Its source records are decoded when taken, not when they arrive
    /// (`PartitionGroup.appendUndecoded`): its only input is one partition of one source topic
    /// (processed in offset order) and it is not aligned in event time with other tasks.
    let decodesWhenTaken: Bool
    /// How the task's source records are decoded (see `SourceDecoding`).
    let sourceDecoding: SourceDecoding
    let partition: Int32
    let env: TaskEnvironment
    let stores: [String: KeyValueStore]
    /// Compiled once (a `let`: a record's step is read in place, not copied out of a `var` the steps could change).
    let steps: [CompiledStep]
    /// The `window` steps, with their index in `steps` (every record checks which windows closed).
    var windowSteps: [(index: Int, window: WindowOperator)] = []
    var streamTime: Int64 = .min
    /// Last processed input offset per input position key: per topic, or for a merged
    /// input per upstream task (`InputPosition`).
    var processed: [String: Int64] {
        if input.merge != nil { return mergedProcessed }
        var out: [String: Int64] = [:]
        for (topic, offset) in zip(input.topics, lastOffsets) where offset != .min { out[topic] = offset }
        return out
    }
    /// A merged input's last processed position per upstream task.
    var mergedProcessed: [String: Int64] = [:]
    /// Last processed offset per source topic, by queue index (`Int64.min`: none yet):
    /// an array store per record, not a dictionary update.
    var lastOffsets: [Int64] = []
    var lastCommittedTag: CommitTag?
    var redisBatch = RedisWriteBatch()
    var sqlBatch = SQLWriteBatch()
    var emitIndex = 0
    /// Where the record being processed (or the result being computed) comes from.
    var currentOrigin: RecordOrigin? {
        get { current.hasOrigin ? current.origin : nil }
        set { current.setOrigin(newValue) }
    }
    var lastSnapshot = ContinuousClock.now
    /// Buffered input, processed in event-time order.
    var input: PartitionGroup
    /// Per input topic (by queue index), the task's own committed position: records before it
    /// were processed here before (the partition resumes at the slowest reader's offset).
    var resumeAt: [Int64] = []
    /// Only filters come before the `rekey`: a repartition record's value is the input record's
    /// value, so its bytes go out as they came in (no serialisation).
    private var rekeyPassesInputThrough = false
    /// A repartition record's value is read by nothing: the first step is an aggregate whose
    /// aggregator does not read it (a `count` after a `rekey`), so `decode` does not parse it.
    var repartitionValueUnread = false
    /// The upstream side of `repartitionValueUnread`: the steps after this task's `rekey` never
    /// read a record's value, so its repartition records carry `{}` after their stamp instead of
    /// the input record's value (a projection, as a query planner prunes unread fields before a
    /// shuffle): fewer bytes to copy, compress, fetch and decompress per record. `{}` rather
    /// than nothing keeps them readable by a reader of an earlier version, which parses them.
    var repartitionValueLeftOut = false
    /// Position keys of upstream input topics and tasks, made once (`upstreamPositionCachingKeys`).
    var upstreamKeys: [(topic: String, task: Int32, key: String)] = []
    /// The input record being processed, when `rekeyPassesInputThrough` (its value bytes are
    /// what a rekey sends on).
    var currentInput: KafkaMessage?
    /// The repartition topic this task writes, and what it last told each partition's reader.
    var repartitionOut: RepartitionOutput?
    /// How long a merged input has waited for an upstream task (see `MergeWait`).
    var mergeWait = MergeWait()
    /// Indices of `aggregate` steps whose results only feed filter/select and
    /// materialising Redis writes: their results are computed once per changed
    /// key at the commit (as Kafka Streams' record cache does), not per record.
    /// By step index (an array, not a set: read once per record).
    var deferredAggregates: [Bool] = []
    /// Per step (empty for all but deferred steps): keys changed since the last commit, in
    /// first-change order, with the event time and message of the last record of each. By step
    /// index: an array, not a dictionary, as it is written once per record (StreamTask+DeferredResults.swift).
    var dirtyKeys: [DirtyKeys] = []
    /// Per deferred aggregate step followed only by Redis sinks that name the fields they
    /// write: those fields (`Aggregator.result(_:reading:)`); absent: the whole result.
    var resultFields: [Int: Set<String>] = [:]

    /// The number of `DirtyKeys` sets made so far (each set's `generation`).
    var dirtyGenerations: UInt64 = 0
    /// When the last record was processed (wall clock, as of the end of the `drain` that
    /// processed it), for `close_idle_after`.
    var lastRecordAt = ContinuousClock.now
    /// A record was processed since `lastRecordAt` was last set.
    private var tookRecord = false
    private let processedCounter: Counter
    let dlqCounter: Counter
    let lateCounter: Counter
    let outCounter: Counter
    package private(set) var recordsProcessed = 0
    package internal(set) var recordsDeadLettered = 0

    package init(sub: SubTopology, partition: Int32, env: TaskEnvironment) throws {
        self.id = TaskID(subTopology: sub.id, partition: partition)
        self.sub = sub
        self.sourceDecoding = SourceDecoding(sub.pipeline.source)
        self.fromRepartition = sub.fromRepartition
        self.countsOutput = sub.index == 1 || sub.pipeline.rekeyIndex == nil
        self.decodesWhenTaken = sub.sourceTopics.count == 1 && !sub.fromRepartition && !sub.alignsEventTime
        self.partition = partition
        self.env = env
        var stores: [String: KeyValueStore] = [:]
        for name in sub.stores { stores[name] = KeyValueStore(name: name, partition: partition) }
        self.stores = stores
        self.input = PartitionGroup(
            topics: sub.sourceTopics,
            mergingUpstreams: sub.fromRepartition ? Int32(env.partitionCounts[sub.sourceTopics[0]] ?? 1) : nil)
        lastOffsets = Array(repeating: .min, count: sub.sourceTopics.count)
        resumeAt = Array(repeating: .min, count: sub.sourceTopics.count)
        if !sub.fromRepartition && sub.pipeline.rekeyIndex != nil {
            let topic = env.config.repartitionTopic(pipeline: sub.pipeline.name)
            repartitionOut = RepartitionOutput(
                topic: topic, partitions: Int32(env.partitionCounts[topic] ?? 1), partitioner: env.config.kafka["partitioner"] ?? "consistent_random")
        }
        let dims = [("pipeline", sub.pipeline.name)]
        processedCounter = Counter(label: "stream_engine_records_processed", dimensions: dims)
        dlqCounter = Counter(label: "stream_engine_records_dead_lettered", dimensions: dims)
        lateCounter = Counter(label: "stream_engine_records_late", dimensions: dims)
        outCounter = Counter(label: "stream_engine_records_out", dimensions: dims)
        steps = try Self.compile(sub: sub, stores: stores, env: env, partition: partition)
        if let r = steps.firstIndex(where: { if case .rekey = $0 { true } else { false } }), !sub.fromRepartition {
            rekeyPassesInputThrough = steps[..<r].allSatisfy { if case .filter = $0 { true } else { false } }
            if let pr = sub.pipeline.rekeyIndex {
                repartitionValueLeftOut = try Self.valueUnread(by: Array(sub.pipeline.steps[(pr + 1)...]), registry: env.registry)
            }
        }
        if sub.fromRepartition {
            repartitionValueUnread = try Self.valueUnread(by: sub.steps, registry: env.registry)
        }
        if let aggregator = try Combiner.aggregator(for: sub, env: env) {
            combiner = Combiner(aggregator: aggregator, inputTopic: sub.sourceTopics[0], topic: env.config.repartitionTopic(pipeline: sub.pipeline.name))
        }
        deferredAggregates = Array(repeating: false, count: steps.count)
        dirtyGenerations = 1
        dirtyKeys = Self.dirtyKeySets(steps: steps, generation: 1)
        for (i, step) in steps.enumerated() {
            // Not the last step: its result goes nowhere (the changelog records the state).
            if case .aggregate = step, i < steps.count - 1, steps[(i + 1)...].allSatisfy(\.materialisesResults) {
                deferredAggregates[i] = true
                let read = steps[(i + 1)...].map { step -> Set<String>? in if case .redis(let sink) = step { sink.readFields } else { nil } }
                if !read.contains(nil) { resultFields[i] = read.reduce(into: Set<String>()) { $0.formUnion($1!) } }
            }
            if case .window(let w) = step { windowSteps.append((i, w)) }
        }
    }

    /// Whether the steps after a `rekey` never read a repartition record's value: the first is
    /// an aggregate whose aggregator reads only the key and the event time (`count`). The one
    /// rule for both sides of the repartition topic (`repartitionValueLeftOut`,
    /// `repartitionValueUnread`), so they cannot disagree.
    static func valueUnread(by stepsAfterRekey: [StepSpec], registry: OperatorRegistry) throws -> Bool {
        guard case .aggregate(let a, _)? = stepsAfterRekey.first else { return false }
        return !(try registry.makeAggregator(a.aggregator, params: a.params)).readsRecordValue
    }

    // MARK: Processing

    /// Buffers messages of this task's partitions (decoded now, processed by
    /// `drain` in event-time order); returns the input status for the scheduler.
    func enqueue(_ messages: [KafkaMessage]) -> InputStatus {
        enqueue(messages.map { InputMessage(message: $0, parsedValue: nil) })
    }

    /// ``enqueue(_:shared:decoded:)`` of each run in order: a poll's batch may hold several runs
    /// of one partition, each its own array (a shared one is taken in place, never joined to another).
    func enqueue(runs: [InputRun]) -> InputStatus {
        for run in runs { _ = enqueue(run.inputs, shared: run.shared, decoded: run.decoded) }
        return input.status
    }

    /// Buffers messages whose values may have been parsed once for every task that reads them.
    /// - Parameters:
    ///   - shared: `messages` were parsed once for several tasks (`TaskManager.parseShared`).
    ///   - decoded: and decoded there too (each one that parsed).
    func enqueue(_ messages: [InputMessage], shared: Bool = false, decoded: Bool = false) -> InputStatus {
        // `input.takesShared`: one partition of one source topic (not a repartition topic's merge), nothing else buffered.
        if shared, input.takesShared, let first = messages.first, let last = messages.last,
            first.message.topic == input.topics[0], last.message.topic == input.topics[0], decodesWhenTaken || decoded
        {
            // Records of this task's one partition in offset order, read by other tasks too: taken
            // from their array as it is (decoded when taken if they are not yet; a task aligned in
            // event time only takes decoded ones, whose event times it needs before); none is copied here.
            let start = messages.firstIndex { $0.message.offset >= resumeAt[0] } ?? messages.endIndex
            input.appendShared(messages, from: start)
            return input.status
        }
        for k in messages.indices {  // fields read in place: the array may be shared with other tasks
            var m = messages[k].message
            guard let i = input.index(of: m.topic) else { continue }
            if input.merge != nil && UpstreamMerge.isMarker(m) {
                input.marker(m)
                continue
            }
            if m.offset < resumeAt[i] { continue }
            if decodesWhenTaken && !messages[k].isDecoded && messages[k].failure == nil && messages[k].parsedValue == nil {
                input.appendUndecoded(m, topicIndex: i)
                continue
            }
            let origin = RecordOrigin(topic: m.topic, partition: m.partition, offset: m.offset)
            // A repartition record's stamp is read once, for the merge, the decode and the position;
            // from here on the message holds the bare value (what a dead letter carries, too) —
            // unless nothing reads the value: then the framed value stays (no copy of the payload
            // and no new message per record) and `deadLetter` strips the frame.
            var stamp: RepartitionStamp?
            if fromRepartition {
                if repartitionValueUnread, let framed = RepartitionStamp.ofFramed(m), !framed.partial {
                    stamp = framed
                } else if let framed = RepartitionStamp.unframe(m) {
                    stamp = framed.stamp
                    m.value = framed.payload
                } else {
                    stamp = RepartitionStamp.of(m)
                }
            }
            let decoded: Result<StreamRecord, RecordError>
            if let shared = messages[k].decoded {
                decoded = shared
            } else {
                do throws(RecordError) { decoded = .success(try decode(m, origin: origin, parsed: messages[k].parsedValue, stamp: stamp)) } catch { decoded = .failure(error) }
            }
            input.append(m, topicIndex: i, decoded: decoded, stamp: stamp)
        }
        return input.status
    }

    /// What one `drain` did.
    struct DrainReport: Sendable {
        var processed = 0
        var deadLettered = 0
        /// Why it stopped: `.empty`, `.starved(topic index)` or `.capped`.
        var stoppedBecause: PartitionGroup.Next = .empty
        var status = InputStatus()
        /// The topic whose empty queue holds the task back, if any.
        var starvedOn: String?
        /// It stopped at its record limit with records it could take.
        var reachedLimit = false
    }

    /// Processes buffered records, smallest event time first (see
    /// `PartitionGroup`), until a queue it must wait for is empty or the next
    /// record is beyond `cap`.
    /// - Parameter mayRunAhead: source topics whose partition is at its end
    ///   (or whose wait was given up): their empty queue does not hold the task back.
    /// - Parameter limit: the most records to process in this call.
    func drain(mayRunAhead: Set<String>, cap: Int64 = .max, limit: Int = .max) async throws -> DrainReport {
        var report = DrainReport()
        // A merged input waits for its upstream tasks' progress, but not forever (a task that is
        // never restarted, a marker that never comes): past the bound it takes what it holds.
        if mergeWait.waited >= Self.mergeWaitBound, let merge = input.merge {
            env.logger.warning("task \(id): waited \(Self.mergeWaitBound) for upstream task \(merge.next(releaseAll: false).waitingFor.map { "\(sub.pipeline.name)-\($0)" } ?? "?") of \(sub.sourceTopics[0]); taking the \(merge.count) records it holds in merge order without it")
            input.gaveUpWaiting = true
        }
        defer { input.gaveUpWaiting = false }
        let dlqBefore = recordsDeadLettered
        let topics = input.topics
        // One queue, not merged: a shared head within the cap is the next record, whatever else is buffered.
        let singleQueue = topics.count == 1 && input.merge == nil
        loop: while true {
            if report.processed >= limit {
                report.reachedLimit = true
                break
            }
            if singleQueue, let taken = try processRun(atMost: cap, limit: limit - report.processed) {
                // A run of records within the cap, taken at once and processed in order (a producer's
                // full queue leaves its records in `backlog` until after them).
                report.processed += taken
                if !backlog.isEmpty { try await drainBacklog() }
                continue
            }
            let next = input.next(mayRunAhead: { mayRunAhead.contains(topics[$0]) }, cap: cap)
            switch next {
            case .take(let i):
                if let (inputs, k) = input.takeShared(i) {
                    try process(inputs, k..<(k + 1), queue: i)
                } else {
                    try process(input.removeFirst(i), queue: i)
                }
                report.processed += 1
                // Records the producer's full queue did not take wait here (back-pressure).
                if !backlog.isEmpty { try await drainBacklog() }
            default:
                report.stoppedBecause = next
                if case .starved(let i) = next { report.starvedOn = topics[i] }
                break loop
            }
        }
        if tookRecord {
            // Once per drain, not per record: a clock read cost about 1.5 % of the two-stage job.
            lastRecordAt = ContinuousClock.now
            tookRecord = false
        }
        if report.processed > 0 {
            processedCounter.increment(by: Int64(report.processed))
            // A merged input that took records is not stuck: a wait counts from the last record taken.
            mergeWait = MergeWait()
        }
        noteMergeWait()
        report.deadLettered = recordsDeadLettered - dlqBefore
        report.status = input.status
        return report
    }

    /// Buffers and processes messages at once, in the order of `drain` with no
    /// waiting (every partition treated as at its end); returns how many went to
    /// the dead-letter topic.
    @discardableResult
    package func process(_ messages: [KafkaMessage]) async throws -> Int {
        input.releaseAll = true
        _ = enqueue(messages)
        return try await drain(mayRunAhead: Set(input.topics)).deadLettered
    }

    /// Processes a record taken out of the task's queues: as decoded, or (not decoded yet) decoded now.
    private func process(_ p: PartitionGroup.Pending, queue: Int) throws {
        try process(offset: p.message.offset, partition: p.message.partition, stamp: p.stamp, queue: queue, message: { p.message }) { () throws(RecordError) in
            var record: StreamRecord
            switch p.decoded {
            case .success(let r)?: record = r
            case .failure(let error)?: throw error
            case nil: record = try decode(p.message, origin: currentOrigin!)  // decoded now, right before its steps (`decodesWhenTaken`)
            }
            try take(&record)
        }
    }

    /// Takes and processes the records at the head of the task's single queue, when they are a shared
    /// run's or records to be decoded when taken, as a range at once: up to `limit`, within `cap`.
    /// `nil`: no such records (take them one by one).
    private func processRun(atMost cap: Int64, limit: Int) throws -> Int? {
        if let (inputs, range) = input.takeSharedRun(atMost: cap, limit: limit) {
            try process(inputs, range, queue: 0)
            return range.count
        }
        if let (messages, range) = input.takeUndecodedRun(atMost: cap, limit: limit) {
            try messages.withUnsafeBufferPointer { b in
                for k in range { try process(undecoded: b.baseAddress! + k) }
            }
            return range.count
        }
        return nil
    }

    /// Processes a record to be decoded when taken (`decodesWhenTaken`), where it lies in the
    /// group's array of them: decoded now, right before its steps.
    @inline(__always)
    private func process(undecoded element: UnsafePointer<KafkaMessage?>) throws {
        try process(offset: element.pointee.unsafelyUnwrapped.offset, partition: element.pointee.unsafelyUnwrapped.partition, stamp: nil, queue: 0,
                    message: { element.pointee! }) { () throws(RecordError) in
            var record = try decode(element.pointee!, origin: currentOrigin!)
            try take(&record)
        }
    }

    /// Processes the elements `range` of a run shared with the other tasks that read its partition,
    /// in order, read in place (see `PartitionGroup.appendShared`): as decoded, or decoded now from
    /// their parsed values.
    private func process(_ inputs: [InputMessage], _ range: Range<Int>, queue: Int) throws {
        // One closure for the range: an actor-isolated closure handed to `withUnsafeBufferPointer`
        // checks at run time that it runs on the actor, each time it is called.
        try inputs.withUnsafeBufferPointer { b in
            for k in range { try process(b.baseAddress! + k, queue: queue) }
        }
    }

    /// Processes an element of a shared run, where it lies in the run's array.
    @inline(__always)
    private func process(_ element: UnsafePointer<InputMessage>, queue: Int) throws {
        // The offset and partition read in place: a copy of the message (a retain of its payload
        // object, which has usually left the cache since it was parsed) only where it is needed.
        try process(offset: element.pointee.message.offset, partition: element.pointee.message.partition, stamp: nil, queue: queue,
                    message: { element.pointee.message }) { () throws(RecordError) in
            // The decoded record is passed on `inout`, in place: passed as a value, it was copied out
            // of the array (a retain and a release of each of its references) for every task that
            // reads it. Nothing writes it (see `take`); other readers of the run read it alike.
            if element.pointee.isDecoded {
                let record = (UnsafeMutableRawPointer(mutating: element) + InputMessage.recordOffset).assumingMemoryBound(to: StreamRecord?.self)
                return try take(&record.pointee!)
            }
            if let error = element.pointee.failure { throw error }
            var record = try decode(element.pointee.message, origin: currentOrigin!, parsed: element.pointee.parsedValue)
            try take(&record)
        }
    }

    /// Runs the steps on a record taken to be processed.
    ///
    /// `record` is `inout` only to be read in place, and is never written: an exclusive access lets
    /// the steps read an input record where it lies, in a run of records several tasks read, where
    /// a value taken from the array would be copied out by the caller (a retain and a release of
    /// each of its references: the compiler cannot tell that nothing changes the array while the
    /// steps run).
    private func take(_ record: inout StreamRecord) throws(RecordError) {
        if record.timestamp > streamTime { streamTime = record.timestamp }
        tookRecord = true
        try run(record, from: 0)
    }

    /// What processing a record involves around its steps (`steps`: the record taken, decoded if
    /// needed, and its steps run): its input position (a replayed record of a merged input already
    /// applied is skipped), the combiner, the record's origin, windows closed after it, and the
    /// dead-letter topic for a record that fails. Inlined into each `process`. `message` gives the
    /// record's message for what reads more of it than its offset and partition (a merged input's
    /// upstream position, a rekey passing the input through, a dead letter).
    @inline(__always)
    private func process(
        offset: Int64, partition: Int32, stamp: RepartitionStamp?, queue: Int, message: () -> KafkaMessage, _ steps: () throws(RecordError) -> Void
    ) throws {
        if input.merge != nil, let upstream = upstreamPositionCachingKeys(message(), stamp: stamp) {
            // A merged input: a replayed record already applied before the restart does not count again.
            // One lookup of the key (a String hashed once per record, not twice).
            if let i = mergedProcessed.index(forKey: upstream.key) {
                if upstream.value <= mergedProcessed.values[i] { return }
                mergedProcessed.values[i] = upstream.value
            } else {
                mergedProcessed[upstream.key] = upstream.value
            }
            currentPosition = upstream
        } else {
            // The queue's topic rather than `m.topic`: the message's payload object (topic, key and
            // value) has usually left the cache since `enqueue` decoded it, and only a dead letter or
            // a rekey passing the input through reads it again.
            current.setPosition(queue: queue, topics: input.topics, offset: offset)
            if input.merge != nil { mergedProcessed[current.position.key] = offset } else { lastOffsets[queue] = offset }
        }
        defer { current.hasPosition = false }
        if combiner != nil { combinerBefore(offset: offset) }
        defer { if combiner != nil { combinerAfter(offset: offset) } }
        currentIsPartial = stamp?.partial ?? false
        defer { currentIsPartial = false }
        current.setOrigin(queue: queue, topics: input.topics, partition: partition, offset: offset)
        if rekeyPassesInputThrough && !repartitionValueLeftOut { currentInput = message() }
        defer { currentInput = nil }
        emitIndex = 0
        recordsProcessed += 1
        do throws(RecordError) {
            try steps()
            try closeWindows()
        } catch {
            try deadLetter(message(), error)
        }
    }

    /// Input position of the record being processed (see `InputPosition`).
    var currentPosition: InputPosition? {
        get { current.hasPosition ? current.position : nil }
        set { current.setPosition(newValue) }
    }
    /// The origin and input position of the record being processed, kept in place between records.
    var current = CurrentRecord()
    /// For `decode`: where each checked field of the source (the required ones, then the key
    /// and timestamp fields) was in the last record.
    /// Accessed in place, without the run-time exclusivity check of a class's stored property:
    /// only the task's synchronous `decode` uses it, which nothing re-enters.
    @exclusivity(unchecked) var fieldHints = DecodeHints()
    /// For `decode`: the object keys of the records parsed so far (`JSONKeyCache`).
    /// Accessed in place, unchecked, as `fieldHints`.
    @exclusivity(unchecked) var keyCache = JSONKeyCache()
    /// Per input topic, the position through which the task's Redis writes were applied before
    /// it started here (its fence hash): a replay after a crash does not write them again.
    var redisAppliedThrough: [String: Int64] = [:]

    /// Value-replacing Redis writes of replayed records the fence covers, held back until
    /// the task has passed the fence (`releaseHeldRedisWrites`).
    var heldRedis = RedisWriteBatch()

    /// The entries of one of the task's stores (nil if the task has no such store).
    package func storeEntries(_ name: String) -> [String: StoreEntry]? {
        stores[name]?.allEntries
    }

    // MARK: Steps (StreamTask+Steps.swift)

    // MARK: Output (StreamTask+Output.swift)

    var sendError: KafkaError?

    /// Records waiting for room in the producer's queue, in order.
    var backlog: [ProducerRecord] = []

    // MARK: Periodic work (StreamTask+PeriodicWork.swift)

    /// Whether a processor has periodic work pending (see `Processor.punctuate`).
    var hasPendingWork = false
    /// Redis writes of periodic work since the last commit.
    var punctuationBatch = RedisWriteBatch()

    /// The Kafka offset last handed over for a merged input.
    var lastResumeOffset: Int64?

    // MARK: Combining before the repartition (StreamTask+Combiner.swift)

    /// Partial states of the records bound for the repartition topic (`nil`: records go one by one).
    var combiner: Combiner?
    /// The record being processed is a combiner's partial state for the first aggregate to merge.
    var currentIsPartial = false
}
