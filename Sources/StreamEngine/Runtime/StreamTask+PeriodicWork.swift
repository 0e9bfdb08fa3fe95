import Foundation
import KafkaClient

/// A task's work that is not one input record's: the deferred results of aggregates
/// (computed once per changed key at the commit) and processors' periodic work,
/// with windows that close on a quiet stream.
extension StreamTask {
    // MARK: Deferred aggregate results

    /// An empty set of changed keys per step, of a new generation (the marks of the last sets
    /// left in the stores point nowhere in them).
    func newDirtyKeys() -> [DirtyKeys] {
        dirtyGenerations += 1
        return Self.dirtyKeySets(steps: steps, generation: dirtyGenerations)
    }

    static func dirtyKeySets(steps: [CompiledStep], generation: UInt64) -> [DirtyKeys] {
        steps.map { step in
            guard case .aggregate(let store, _, _) = step else { return DirtyKeys(generation: generation) }
            return DirtyKeys(generation: generation, marksLostBefore: store.marksLost)
        }
    }

    /// Computes the result of every key changed since the last commit once and
    /// runs the steps after its aggregate. A failure dead-letters the result
    /// (the key and the result's JSON) with the source position of the key's
    /// last record: that record was applied to the state, the result is what failed.
    func emitDeferredResults() throws {
        guard dirtyKeys.contains(where: { !$0.isEmpty }) else { return }
        let pending = dirtyKeys
        dirtyKeys = newDirtyKeys()
        for (step, d) in pending.enumerated() where !d.isEmpty {
            guard case .aggregate(let store, let aggregator, _) = steps[step] else { continue }
            let fields = resultFields[step]
            for (key, last) in d.latest(marksLost: store.marksLost) {
                guard let state = store.get(key) else { continue }
                currentOrigin = last.origin
                currentPosition = last.position
                emitIndex = 0
                let value = fields.map { aggregator.result(state, reading: $0) } ?? aggregator.result(state)
                let record = StreamRecord(key: key, value: value, timestamp: last.timestamp, origin: currentOrigin)
                do throws(RecordError) { try run(record, from: step + 1) } catch {
                    let o = last.origin
                    try deadLetter(KafkaMessage(topic: o.topic, partition: o.partition, offset: o.offset, key: Array(key.utf8),
                                                value: JSONValue.object(record.value).serialized(), timestamp: last.timestamp), error)
                }
            }
        }
    }

    // MARK: Punctuation

    /// Runs every processor's periodic work and the steps after it, and closes
    /// windows idle for their `close_idle_after`.
    func punctuate() {
        currentOrigin = nil
        emitIndex = 0
        var pending = false
        // Redis writes of periodic work are fenced apart (they answer no input offsets).
        let inputWrites = redisBatch
        redisBatch = punctuationBatch
        defer {
            punctuationBatch = redisBatch
            redisBatch = inputWrites
        }
        for (i, step) in steps.enumerated() {
            switch step {
            case .process(let box, let ctx):
                ctx.streamTime = streamTime
                ctx.forwarded.removeAll(keepingCapacity: true)
                if box.processor.punctuate(context: ctx) { pending = true }
                for r in ctx.forwarded { runPunctuated(r, from: i + 1) }
            case .window(let w):
                guard let idle = w.spec.closeIdleAfterMillis, streamTime != .min else { continue }
                guard ContinuousClock.now - lastRecordAt >= .milliseconds(idle) else { continue }
                // The stream is quiet: event time moves on to the wall clock minus close_idle_after.
                let wall = Int64(Date().timeIntervalSince1970 * 1000) - Int64(idle)
                guard wall > streamTime else { continue }
                streamTime = wall
                for r in w.closeDue(streamTime: streamTime) { runPunctuated(r, from: i + 1) }
            default:
                continue
            }
        }
        hasPendingWork = pending
    }

    private func runPunctuated(_ record: StreamRecord, from index: Int) {
        do throws(RecordError) {
            try run(record, from: index)
        } catch {
            env.logger.warning("pipeline \(sub.pipeline.name): a record forwarded by periodic work failed and was dropped: \(error)")
        }
    }
}
