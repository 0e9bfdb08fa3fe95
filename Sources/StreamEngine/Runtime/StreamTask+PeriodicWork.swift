import Foundation
import KafkaClient

/// A task's work that is not one input record's: processors' periodic work, with windows
/// that close on a quiet stream (the deferred results of aggregates: StreamTask+DeferredResults.swift).
extension StreamTask {
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
