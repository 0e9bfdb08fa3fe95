import Foundation
import KafkaClient

/// One decoded changelog record.
public struct ChangelogRecord: Sendable {
    /// Where it was read.
    public var partition: Int32
    public var offset: Int64
    /// The store key, its entry (nil: a tombstone) and the commit it belongs to.
    public var key: String
    public var entry: StoreEntry?
    public var tag: CommitTag?
}

/// Why a replay stopped early.
public enum ChangelogReplayError: Error, CustomStringConvertible {
    /// Polling Kafka failed.
    case poll(any Error)
    /// A record is not a store record (``ChangelogCodec``).
    case decode(partition: Int32, offset: Int64, any Error)
    /// Nothing was received for `after` while these partitions had records left.
    case stalled(partitions: [Int32], after: Duration)

    /// The error a caller that does not add context rethrows.
    public var underlying: any Error {
        switch self {
        case .poll(let e), .decode(_, _, let e): return e
        case .stalled: return self
        }
    }

    public var description: String {
        switch self {
        case .poll(let e): return "\(e)"
        case .decode(let p, let o, let e): return "changelog record [\(p)]@\(o) is not a store record: \(e)"
        case .stalled(let ps, let after): return "nothing received for \(after) while partitions \(ps) had records left"
        }
    }
}

/// Reads changelog partitions of one topic from a start offset up to the end offset
/// measured before, decoding every record with ``ChangelogCodec``: the one replay loop of
/// the engine's restore (``StoreRestorer``) and of the inspection tools.
///
/// A partition is done when a record at or past `end - 1` arrived, or when the consumer
/// reports its end (`enable.partition.eof=true`) at or past `end`: a transaction marker
/// at the end of a partition is never delivered. Records past the end that arrive in the
/// same batch are handed on too; the caller decides about them. Blocking (librdkafka polls):
/// call from a dedicated thread.
public enum ChangelogReplay {
    /// Replays `ranges` (partition → start..<end; empty ranges are skipped) through `consumer`.
    ///
    /// - Parameters:
    ///   - stallTimeout: give up with ``ChangelogReplayError/stalled(partitions:after:)`` when
    ///     nothing arrives for this long; nil waits as long as it takes.
    ///   - afterPoll: called after every poll with the number of records it brought.
    ///   - apply: called for every record, in offset order per partition.
    public static func run(
        consumer: KafkaConsumer, topic: String, ranges: [Int32: Range<Int64>], stallTimeout: Duration? = nil,
        afterPoll: (Int) -> Void = { _ in }, apply: (ChangelogRecord) -> Void
    ) throws(ChangelogReplayError) {
        var pending = Set(ranges.filter { !$0.value.isEmpty }.keys)
        guard !pending.isEmpty else { return }
        do {
            try consumer.assign(pending.sorted().map { TopicPartitionOffset(topic, $0, ranges[$0]!.lowerBound) })
        } catch {
            throw .poll(error)
        }
        var lastRecord = ContinuousClock.now
        // Consecutive records of one commit carry the same tag: parse it once per distinct header.
        var lastTagBytes: [UInt8] = []
        var lastTag: CommitTag?
        var failure: ChangelogReplayError?
        var scratch: [UInt8] = []
        scratch.reserveCapacity(1024)
        var transcoder = JSONCompact.Transcoder()
        var lastPartition: Int32 = -1
        var lastRange: Range<Int64>?
        let tagName = strdup(ChangelogCodec.tagHeader)!
        let expiresName = strdup(ChangelogCodec.expiresHeader)!
        defer {
            free(tagName)
            free(expiresName)
        }
        while !pending.isEmpty {
            let batch: KafkaConsumer.ViewBatchSummary
            do {
                batch = try consumer.pollBatch(maxMessages: 10_000, timeoutMs: 200) { m in
                    // Batches come partition by partition: look the range up when the partition changes.
                    if m.partition != lastPartition {
                        lastPartition = m.partition
                        lastRange = ranges[m.partition]
                    }
                    guard let range = lastRange else { return true }
                    let key = m.key.map { String(decoding: $0, as: UTF8.self) } ?? ""
                    // A record of this version carries its tag in its value's frame; a tombstone,
                    // and records of earlier versions, in the se-tag header (parsing a message's
                    // header block is librdkafka's costliest step per record: only then).
                    var frame: ChangelogCodec.Frame?
                    var entry: StoreEntry?
                    if let value = m.value {
                        do {
                            frame = try ChangelogCodec.frame(of: value)
                            if let frame {
                                entry = try ChangelogCodec.entry(of: frame)
                            } else {
                                entry = try ChangelogCodec.decodeEntry(value: value, expires: m.header(cString: expiresName), scratch: &scratch, transcoder: &transcoder)
                            }
                        } catch {
                            failure = .decode(partition: m.partition, offset: m.offset, error)
                            return false
                        }
                    }
                    var tag: CommitTag?
                    if let t = frame?.tag ?? m.header(cString: tagName) {
                        if !Self.same(t, lastTagBytes) {
                            lastTagBytes = Array(t)
                            lastTag = CommitTag(parsing: String(decoding: t, as: UTF8.self))
                        }
                        tag = lastTag
                    }
                    apply(ChangelogRecord(partition: m.partition, offset: m.offset, key: key, entry: entry, tag: tag))
                    if m.offset + 1 >= range.upperBound { pending.remove(m.partition) }
                    return true
                }
            } catch {
                throw .poll(error)
            }
            if let failure { throw failure }
            for eof in batch.partitionEOFs where eof.topic == topic && eof.offset >= (ranges[eof.partition]?.upperBound ?? .max) {
                pending.remove(eof.partition)
            }
            afterPoll(batch.messages)
            let now = ContinuousClock.now
            if batch.messages > 0 || !batch.partitionEOFs.isEmpty { lastRecord = now }
            if let stallTimeout, !pending.isEmpty, now - lastRecord > stallTimeout {
                throw .stalled(partitions: pending.sorted(), after: stallTimeout)
            }
        }
    }

    /// Whether `a` holds the bytes of `b`.
    @inline(__always)
    static func same(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        a.count == b.count && b.withUnsafeBytes { b in a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
    }
}
