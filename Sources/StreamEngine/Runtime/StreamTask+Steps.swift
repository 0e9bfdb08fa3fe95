// A task's steps: a record run through its compiled steps, and the windows closed as stream time moves.

import KafkaClient

extension StreamTask {
    func run(_ record: StreamRecord, from start: Int) throws(RecordError) {
        // The record is read in place; a step that changes it runs the rest on a changed copy
        // (a `var` copy up front cost a copy of the record per record, and one more in the
        // aggregate's closure, which may not read a `var` in place).
        var i = start
        while i < steps.count {
            switch steps[i] {
            case .filter(let p):
                if !StepEvaluation.matches(p, record) { return }
            case .select(let f):
                var changed = record
                changed.value = try StepEvaluation.select(f, record)
                try run(changed, from: i + 1)
                return
            case .rekey(let field, let topic):
                guard let v = record.field(field), !v.isNull else { throw RecordError(.missingField, "rekey field '\(field.name)' is missing") }
                if combiner?.combines == true {
                    try combine(record, key: v.keyText)
                } else {
                    produceRepartition(record, key: v.keyText, topic: topic)
                }
                return
            case .aggregate(let store, let fold, let ttl):
                let eventTime = record.timestamp
                // `initial` is a closure literal (a method reference boxed what it was taken from, per
                // record). The closures read `record` in place (no copy).
                // A combiner's partial state (`{"p": state}`) is merged by the first step after the rekey.
                let partial = i == 0 && currentIsPartial
                // A deferred result: the key is marked changed in the store's lookup (`DirtyKeys`),
                // not in one of its own.
                let deferred = deferredAggregates[i] ? currentOrigin : nil
                let key = record.key  // the mark reads the key, not the record (a closure capturing the record copied it)
                // The result, for a step after it that is not deferred: the last step's goes nowhere (the
                // changelog records the state), a deferred one's is computed at the commit (marked changed here).
                let wantsResult = i < steps.count - 1 && deferred == nil
                let result = try store.update(key, expiresAt: ttl.map { eventTime + $0 }, initial: { fold.initial() }, mark: { tag in
                    if let origin = deferred {
                        dirtyKeys[i].mark(&tag, key: key, timestamp: eventTime, origin: origin, position: currentPosition)
                    }
                }) { (state: inout StoredState) throws(RecordError) -> JSONObject? in
                    try fold.add(into: &state, record, partial: partial)
                    return wantsResult ? fold.result(state, reading: nil) : nil
                }
                if i == steps.count - 1 {
                    i += 1
                    continue
                }
                guard let result else { return }  // deferred: marked changed above
                var changed = record
                changed.value = result
                try run(changed, from: i + 1)
                return
            case .window(let w):
                try w.add(record, streamTime: streamTime)
                return  // results flow on when windows close
            case .process(let box, let ctx):
                ctx.streamTime = streamTime
                ctx.forwarded.removeAll(keepingCapacity: true)
                try box.processor.process(record, context: ctx)
                let out = ctx.forwarded
                for r in out { try run(r, from: i + 1) }
                return
            case .to(let topic, let keyField):
                let key = keyField.flatMap { record.field($0)?.keyText } ?? record.key
                send(ProducerRecord(topic: topic, key: Array(key.utf8), value: JSONValue.object(record.value).serialized(), headers: positionHeaders(record)))
            case .redis(let sink):
                if !inRedisAlready {
                    if let key = try sink.write(record, into: &redisBatch) { heldRedis.remove(key) }
                } else if sink.replacesValue, let key = try sink.write(record, into: &heldRedis) {
                    redisBatch.remove(key)  // the held value is the newer one
                }
            case .sql(let sink):
                sqlBatch.add(try sink.row(record, topic: currentOrigin?.topic ?? "", offset: currentOrigin?.offset ?? -1))
            }
            i += 1
        }
        if countsOutput { outCounter.increment() }  // it passed the pipeline's last step
    }

    /// Moves stream time forward without a record (a test driver's punctuation): windows
    /// that are due close and their results flow on.
    package func advanceStreamTime(to time: Int64) throws(RecordError) {
        guard time > streamTime else { return }
        streamTime = time
        try closeWindows()
    }

    func closeWindows() throws(RecordError) {
        for (i, w) in windowSteps {
            for r in w.closeDue(streamTime: streamTime) { try run(r, from: i + 1) }
        }
    }
}
