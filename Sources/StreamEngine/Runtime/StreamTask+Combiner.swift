import KafkaClient

/// The local half of a two-phase aggregation (Flink's local-global aggregation): a task
/// whose pipeline rekeys into an aggregate with a combinable aggregator (`count`, `sum`,
/// `min`, `max`, `top_n`) folds the records it would send through the repartition topic into
/// one partial state per new key, and sends the partials once per commit. The reader merges
/// them (`Aggregator.merge`) where it would have added records one by one.
///
/// Exactness without a Kafka transaction rests on epochs that replay identically:
///
/// 1. At a commit, the task declares its epoch — the input offsets since its last epoch, up
///    to the last record processed — in the commit's metadata (`pe=<end>`), while the offset
///    it commits stays at the epoch's start. Nothing of the epoch has been sent yet.
/// 2. Once the offsets are committed, it sends the epoch's partials, keys sorted, each
///    stamped as a partial (`RepartitionStamp.partial`) at the position (end − 1, index in
///    that order).
/// 3. The next commit flushes the producer (the partials are acknowledged) before it commits
///    the epoch's end as the task's offset.
///
/// A crash after step 1 leaves the declaration committed: the next owner replays the same
/// input offsets, closes the epoch exactly at the declared end and sends the same partials at
/// the same positions, and the reader skips those it applied (de-duplication by upstream
/// position, as for records). A crash before step 1 leaves nothing sent: the replay declares
/// its own epoch. So every input record counts once, whatever the commit timing of either run.
///
/// Used when the guarantee is `at_least_once` (its commits are the engine's own), the
/// pipeline reads one source topic, only `filter` and `select` come before the `rekey`, and
/// the step after it is an `aggregate` without `ttl`. Results after the aggregate change once
/// per key and commit instead of once per record, as with Kafka Streams' record cache.
///
/// A class owned by its task (the actor): the task reads and changes it for every record it
/// folds, and a struct in the actor's stored property was copied out for each such access.
final class Combiner {
    let aggregator: any Aggregator
    /// The pipeline's one source topic (the partials' position topic).
    let inputTopic: String
    /// The repartition topic.
    let topic: String
    /// Per new key, the partial state of the epoch's records and their latest event time.
    var partials: [StoreKey: (state: JSONValue, eventTime: Int64)] = [:]
    /// The first input offset of the current epoch (what the task commits): `nil` until the
    /// task processes a record after its start.
    var epochStart: Int64?
    /// The end declared in the commit being made (sent once it is committed).
    var declaredEnd: Int64?
    /// An end an earlier run declared and committed: the task replays up to it, then sends.
    var replayEnd: Int64?
    /// Partials were sent after the last offset commit: the next commit must move the offset.
    var unconfirmed = false
    /// Made only to replay an earlier run's declared epoch (combining is off now): once the
    /// partials are confirmed, records go one by one.
    var onlyForReplay = false

    init(aggregator: any Aggregator, inputTopic: String, topic: String) {
        self.aggregator = aggregator
        self.inputTopic = inputTopic
        self.topic = topic
    }

    /// Whether records bound for the repartition topic are folded (not while a combiner made
    /// only for a replay has closed its epoch).
    var combines: Bool { !onlyForReplay || replayEnd != nil }

    /// Whether the task must commit even if nothing else changed.
    var needsCommit: Bool { declaredEnd != nil || unconfirmed || !partials.isEmpty }

    /// The most partials one input offset can number (the position's index field: 24 bits).
    static let partialsPerOffset = 1 << 24

    /// Where the `index`-th of the `count` partials of the epoch ending at `end` stands in the
    /// task's output (`RepartitionStamp.Position`): `(end − 1, index)`, and for an epoch of more
    /// than 2^24 keys (one index field's worth), consecutive positions ending at the last index of
    /// offset `end − 1`, reaching back into earlier offsets of the epoch. Increasing in `index`
    /// (the reader skips a position at or below one it applied), the same in every run, and
    /// inside the epoch: it has at least as many records as keys, so the positions stay above
    /// those of the epoch before it.
    static func position(ofPartial index: Int, count: Int, end: Int64) -> (offset: Int64, index: Int64) {
        let perOffset = Int64(partialsPerOffset)
        guard count > partialsPerOffset else { return (end - 1, Int64(index)) }
        let value = (end - 1) * perOffset + (perOffset - 1) - Int64(count - 1 - index)
        return (value / perOffset, value % perOffset)
    }

    /// The aggregator of the aggregate after `pipeline`'s `rekey` when the task reading its
    /// source may combine (see the type's conditions); `nil` otherwise. The reader side needs no
    /// rule of its own: each partial says what it is.
    /// - Parameter replaying: for an epoch an earlier run declared, whatever the settings now:
    ///   its partials must go out as partials (its reader may have applied some of them).
    static func aggregator(for sub: SubTopology, env: TaskEnvironment, replaying: Bool = false) throws -> (any Aggregator)? {
        let on = env.combinesBeforeRepartition && enabled(by: env.config)
        guard on || replaying, !sub.fromRepartition else { return nil }
        return try aggregator(for: sub.pipeline, registry: env.registry)
    }

    /// The combinable aggregator of the aggregate right after `pipeline`'s `rekey`, when the
    /// pipeline's shape allows combining (one source topic, only `filter` and `select` before the
    /// `rekey`, an aggregate without `ttl` after it); `nil` otherwise. Settings aside: see above.
    static func aggregator(for pipeline: PipelineSpec, registry: OperatorRegistry) throws -> (any Aggregator)? {
        guard let r = pipeline.rekeyIndex, pipeline.source.topics.count == 1 else { return nil }
        let stateless = pipeline.steps[..<r].allSatisfy {
            switch $0 {
            case .filter, .select: return true
            default: return false
            }
        }
        guard stateless, case .aggregate(let a, _)? = pipeline.steps[(r + 1)...].first, a.ttlMillis == nil else { return nil }
        let aggregator = try registry.makeAggregator(a.aggregator, params: a.params)
        return aggregator.combinable ? aggregator : nil
    }

    /// Whether the upstream tasks of `pipeline` combine before its repartition with these
    /// settings (what `describe` says; the runtime decides per task with the same rule).
    package static func combines(_ pipeline: PipelineSpec, config: StreamConfig, registry: OperatorRegistry) -> Bool {
        enabled(by: config) && (try? aggregator(for: pipeline, registry: registry)) != nil
    }

    /// Whether the settings let tasks combine: `defaults.combine.before.repartition` and
    /// `at_least_once` (an `exactly_once` transaction would have to span two commits).
    private static func enabled(by config: StreamConfig) -> Bool {
        config.combineBeforeRepartition && config.processingGuarantee == .atLeastOnce
    }
}

extension StreamTask {
    /// Folds a record bound for the repartition topic into its new key's partial state.
    func combine(_ record: StreamRecord, key: String) throws(RecordError) {
        guard let c = combiner else { return }
        guard c.aggregator.readsRecordKey else { return try fold(record, key: key, into: c) }
        var keyed = record
        keyed.key = key
        try fold(keyed, key: key, into: c)
    }

    /// Folds `record` (as the aggregator reads it) into the partial state of `key`.
    private func fold(_ record: StreamRecord, key: String, into c: Combiner) throws(RecordError) {
        if let i = c.partials.index(forKey: StoreKey(key)) {
            try c.aggregator.add(into: &c.partials.values[i].state, record)
            if record.timestamp > c.partials.values[i].eventTime { c.partials.values[i].eventTime = record.timestamp }
        } else {
            var state = c.aggregator.initial()
            try c.aggregator.add(into: &state, record)
            c.partials[StoreKey(key)] = (state, record.timestamp)
        }
    }

    /// Before a record at `offset`: an epoch replayed up to its declared end is closed first.
    func combinerBefore(offset: Int64) {
        guard combiner != nil else { return }
        if let end = combiner!.replayEnd, offset >= end { closeReplayedEpoch(end: end) }
        if combiner!.epochStart == nil { combiner!.epochStart = offset }
    }

    /// After the record at `offset`: a replayed epoch ending with it is closed.
    func combinerAfter(offset: Int64) {
        if let end = combiner?.replayEnd, offset >= end - 1 { closeReplayedEpoch(end: end) }
    }

    /// Sets the end of an epoch an earlier run declared (from the committed metadata). With
    /// combining since switched off (`combine.before.repartition`, the guarantee), the task still
    /// replays that epoch as partials, then sends records one by one.
    package func replayDeclaredEpoch(endingAt end: Int64) {
        if combiner == nil {
            guard let aggregator = try? Combiner.aggregator(for: sub, env: env, replaying: true) else {
                env.logger.warning("task \(id): an earlier run declared combined partials up to offset \(end) of \(sub.sourceTopics[0])[\(partition)], but the pipeline no longer ends its rekey in a combinable aggregate: those records are sent one by one, and the aggregate's reader skips those at or below the partials it applied")
                return
            }
            combiner = Combiner(aggregator: aggregator, inputTopic: sub.sourceTopics[0], topic: env.config.repartitionTopic(pipeline: sub.pipeline.name))
            combiner!.onlyForReplay = true
        }
        combiner!.replayEnd = end
        env.logger.info("task \(id): replaying its declared epoch up to offset \(end) of \(combiner!.inputTopic)[\(partition)] to send its partials again")
    }

    private func closeReplayedEpoch(end: Int64) {
        sendPartials(end: end)
        combiner!.replayEnd = nil
        combiner!.epochStart = end
        combiner!.unconfirmed = true
    }

    /// The combiner's offsets for a commit: the epoch's start, with the declared end (`pe=`)
    /// while its partials are not known to be sent. Declares the current epoch when it has partials.
    func combinerOffsets(streamTime st: Int64?) -> [TopicPartitionOffset] {
        guard let c = combiner else { return [] }
        let last = lastOffsets.first ?? .min
        guard last != .min else { return [] }  // nothing processed since the start: the start position stands
        var pending: Int64?
        if let end = c.replayEnd {
            pending = end  // still replaying: the declaration stands
        } else if !c.partials.isEmpty {
            c.declaredEnd = last + 1
            pending = last + 1
        } else {
            c.epochStart = last + 1  // nothing to send: the epoch's records are done with
        }
        let offset = c.epochStart ?? last + 1
        return [TopicPartitionOffset(c.inputTopic, partition, offset, metadata: StreamTimeMetadata.format(st, pendingEnd: pending))]
    }

    /// After a commit: sends the partials of the epoch it declared. True when the task has
    /// sent partials the next commit must confirm.
    func combinerCommitted() -> Bool {
        guard combiner != nil else { return false }
        if let end = combiner!.declaredEnd {
            sendPartials(end: end)
            combiner!.declaredEnd = nil
            combiner!.epochStart = end
            combiner!.unconfirmed = true
        } else {
            combiner!.unconfirmed = false
            if combiner!.onlyForReplay && combiner!.replayEnd == nil { combiner = nil; return false }
        }
        return combiner!.unconfirmed
    }

    /// Sends the partials of the epoch ending at `end`, keys sorted: the same records give the
    /// same partials at the same positions in every run.
    private func sendPartials(end: Int64) {
        guard let c = combiner else { return }
        let partials = c.partials
        c.partials = [:]
        let keys = partials.keys.map(\.string).sorted()
        for (index, key) in keys.enumerated() {
            let (state, eventTime) = partials[StoreKey(key)]!
            let at = Combiner.position(ofPartial: index, count: keys.count, end: end)
            let stamp = RepartitionStamp(
                eventTime: eventTime, upstreamTask: partition, streamTime: streamTime,
                position: .init(topic: c.inputTopic, offset: at.offset, index: at.index), partial: true)
            let keyBytes = Array(key.utf8)
            let q = repartitionOut?.partition(ofKey: keyBytes)
            if let q { repartitionOut?.said[Int(q)] = .init(streamTime: streamTime, idle: false) }
            let value = stamp.framing(JSONValue.object(["p": state]).serialized())
            send(ProducerRecord(topic: c.topic, partition: q, key: keyBytes, value: value))
        }
    }
}
