import Foundation
import KafkaClient

/// A task's side of repartition topics: the progress markers an upstream task sends, the
/// bounded wait of a merged input (see `UpstreamMerge`) and de-duplication of replayed records.
extension StreamTask {
    /// How long a merged input waits for an upstream task before it takes what it holds.
    static let mergeWaitBound: Duration = .seconds(30)

    /// Logs (every 10 s) a merged input that holds records back for an upstream task: never a silent stall.
    func noteMergeWait() {
        guard let merge = input.merge, merge.count > 0, let u = merge.next(releaseAll: input.releaseAll).waitingFor else {
            mergeWaitSince = nil
            return
        }
        let now = ContinuousClock.now
        let since = mergeWaitSince ?? now
        mergeWaitSince = since
        guard now - since >= .seconds(10), now - (mergeWaitLogged ?? since) >= .seconds(10) else { return }
        mergeWaitLogged = now
        let said = merge.progress[u].map { "its last stream time \($0.streamTime == .min ? "none yet" : String($0.streamTime)), \($0.idle ? "idle" : "busy")" } ?? "nothing heard from it yet"
        env.logger.info("task \(id) has held \(merge.count) records of \(sub.sourceTopics[0]) for \(now - since) in merge order, waiting for upstream task \(sub.pipeline.name)-\(u) (\(said)): it is not running, or behind")
    }

    /// Whether a repartition record was already applied (a replay after a
    /// crash upstream); records it as applied otherwise. Offsets are only
    /// comparable within one upstream input partition: the key names its topic too.
    func isDuplicate(_ m: KafkaMessage) -> Bool {
        guard let up = m.header(Headers.upstreamPartition)?.stringValue,
              let seq = m.header(Headers.upstreamSequence)?.stringValue else { return false }
        let parts = seq.split(separator: ".")
        guard parts.count == 2, let o = Int64(parts[0]), let i = Int(parts[1]) else { return false }
        if let last = dedupe[up], (o, i) <= (last.offset, last.index) { return true }
        dedupe[up] = (o, i)
        stores[sub.dedupeStore!]?.put(up, .object(["o": .number(Double(o)), "i": .number(Double(i))]))
        return false
    }

    /// Key prefix of upstream progress entries in the de-duplication store.
    static let progressKeyPrefix = "~progress/"

    /// Sends a progress marker to every partition of the repartition topic this
    /// task writes when its stream time or idleness changed; true if it did.
    func sendProgressMarkers(inputIdle: Bool) -> Bool {
        guard let out = repartitionOut else { return false }
        if let last = lastMarker, last.streamTime == streamTime, last.idle == inputIdle { return false }
        lastMarker = (streamTime, inputIdle)
        let headers = [
            KafkaHeader(Headers.upstreamTask, String(partition)), KafkaHeader(Headers.upstreamStreamTime, String(streamTime)),
            KafkaHeader(Headers.upstreamIdle, inputIdle ? "1" : "0"),
        ]
        for q in 0..<out.partitions {
            send(ProducerRecord(topic: out.topic, partition: q, key: nil, value: nil, headers: headers))
        }
        return true
    }
}
