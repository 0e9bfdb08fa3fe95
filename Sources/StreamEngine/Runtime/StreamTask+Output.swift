import KafkaClient

/// What a task sends: repartition records, results to topics, dead letters, with
/// back-pressure from the producer's queue.
extension StreamTask {
    func positionHeaders(_ record: StreamRecord) -> [KafkaHeader] {
        defer { emitIndex += 1 }
        // Records of periodic work have no input position to de-duplicate by.
        guard let currentOrigin else { return [KafkaHeader(Headers.eventTime, String(record.timestamp))] }
        return [
            KafkaHeader(Headers.eventTime, String(record.timestamp)),
            KafkaHeader(Headers.upstreamPartition, "\(currentOrigin.topic)/\(partition)"),
            KafkaHeader(Headers.upstreamSequence, "\(currentOrigin.offset).\(emitIndex)"),
        ]
    }

    func produceRepartition(_ record: StreamRecord, key: String, topic: String) {
        defer { emitIndex += 1 }
        // Records of periodic work have no input position to de-duplicate by.
        let stamp = RepartitionStamp(
            eventTime: record.timestamp, upstreamTask: partition, streamTime: streamTime,
            position: currentOrigin.map { .init(topic: $0.topic, offset: $0.offset, index: Int64(emitIndex)) })
        // The task picks the partition (as the producer's partitioner would) to know which reader
        // heard "busy at this stream time": the others still need a marker at the commit.
        let keyBytes = Array(key.utf8)
        let q = repartitionOut?.partition(ofKey: keyBytes)
        if let q { repartitionOut?.said[Int(q)] = .init(streamTime: streamTime, idle: false) }
        let value = repartitionValueLeftOut
            ? stamp.framing(Self.emptyObject)
            : currentInput?.withUnsafeValue { stamp.framing($0) } ?? stamp.framing(JSONValue.object(record.value).serialized())
        send(ProducerRecord(topic: topic, partition: q, key: keyBytes, value: value))
    }

    /// Enqueues without waiting; when librdkafka's queue is full the record
    /// (and every later one, to keep their order) waits in `backlog`, which
    /// `drainBacklog` sends with back-pressure after the current record.
    /// `{}`: the value of a repartition record whose reader reads none (`repartitionValueLeftOut`).
    static let emptyObject: [UInt8] = [0x7B, 0x7D]

    func send(_ r: ProducerRecord) {
        if !backlog.isEmpty { backlog.append(r); return }
        do {
            if try !env.collector.trySend(r) { backlog.append(r) }
        } catch {
            if sendError == nil { sendError = error }
        }
    }

    /// Sends the backlog, suspending while the producer's queue is full.
    func drainBacklog() async throws {
        while !backlog.isEmpty {
            let pending = backlog
            backlog = []
            for r in pending { try await env.collector.send(r) }
        }
    }

    func deadLetter(_ m: KafkaMessage, _ error: RecordError) throws {
        if sub.pipeline.onError == .fail {
            throw RecordFailure(pipeline: sub.pipeline.name, origin: RecordOrigin(topic: m.topic, partition: m.partition, offset: m.offset), error: error)
        }
        recordsDeadLettered += 1
        dlqCounter.increment()
        if error.kind == .late { lateCounter.increment() }
        // A repartition record still framed (`repartitionValueUnread`) goes out with its bare value.
        let value = sub.fromRepartition ? RepartitionStamp.unframe(m)?.payload ?? m.value : m.value
        send(ProducerRecord(
            topic: env.config.dlqTopic, key: m.key, value: value,
            headers: [
                KafkaHeader("error", error.message), KafkaHeader("error.kind", error.kind.rawValue),
                KafkaHeader("pipeline", sub.pipeline.name), KafkaHeader("source.topic", m.topic),
                KafkaHeader("source.partition", String(m.partition)), KafkaHeader("source.offset", String(m.offset)),
            ]))
    }

}
