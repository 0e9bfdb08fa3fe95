import Foundation
import KafkaClient
import Logging

/// How far a changelog replay has got.
public struct ChangelogProgress: Sendable, Hashable {
    /// The changelog topic.
    public var topic: String
    /// Records read so far (all partitions being replayed).
    public var read: Int64
    /// Records to read in total (from each partition's start to its end offset at the start of the replay).
    public var total: Int64

    /// Creates a progress value.
    public init(topic: String, read: Int64, total: Int64) {
        self.topic = topic
        self.read = read
        self.total = total
    }
}

/// Replays a store's changelog topic into memory, read-only: no consumer group
/// is joined and no offset is committed, so it can run while the job runs.
///
/// Records are decoded with ``ChangelogCodec``; the latest record of a key wins
/// and a tombstone removes it, exactly as a restore without committed offsets
/// does (`StoreRestorer.restore(…, committed: nil)`). A partition is read from
/// its low watermark up to the end offset it had when the replay started.
///
/// Blocking (librdkafka polls): call ``read(partitions:progress:)`` from a
/// dedicated thread (``runOnDedicatedThread(_:_:)``).
public struct ChangelogReader: Sendable {
    /// librdkafka configuration (with `bootstrap.servers`).
    public var kafkaConfig: [String: String]
    /// The changelog topic.
    public var topic: String
    /// Logger for librdkafka's log lines.
    public var logger: Logger
    /// Timeout of each metadata and watermark request.
    public var requestTimeoutMs: Int32
    /// How long a replay may go without receiving a record before it gives up.
    public var stallTimeout: Duration

    /// Creates a reader.
    public init(kafkaConfig: [String: String], topic: String, logger: Logger, requestTimeoutMs: Int32 = 10_000, stallTimeout: Duration = .seconds(30)) {
        self.kafkaConfig = kafkaConfig
        self.topic = topic
        self.logger = logger
        self.requestTimeoutMs = requestTimeoutMs
        self.stallTimeout = stallTimeout
    }

    /// The configuration of the reading consumer: never commits. (It never
    /// creates topics either: it is asked only about topics known to exist, see ``TopicMetadata``.)
    var consumerConfig: [String: String] {
        kafkaConfig.merging(["enable.partition.eof": "true", "enable.auto.commit": "false"]) { $1 }
    }

    /// The topic's partition count, `nil` if it does not exist. Blocking.
    public func partitionCount() throws -> Int? {
        try TopicMetadata.partitionCounts(config: kafkaConfig, logger: logger, timeoutMs: requestTimeoutMs)[topic]
    }

    /// Replays partitions of the changelog. Blocking.
    /// - Parameters:
    ///   - partitions: the partitions to read, or nil for all of them.
    ///   - progress: called from time to time (at most every 100 ms) and once at the end.
    /// - Returns: the contents per partition and notes (e.g. a changelog whose oldest records are gone).
    /// - Throws: ``InspectionError`` (`.io`) when the topic is missing or Kafka does not answer.
    public func read(partitions wanted: [Int32]?, progress: (@Sendable (ChangelogProgress) -> Void)? = nil) throws -> (partitions: [StorePartitionContents], notes: [String]) {
        let bootstrap = kafkaConfig["bootstrap.servers"] ?? "?"
        let count: Int?
        do {
            count = try partitionCount()
        } catch {
            throw InspectionError(.io, "cannot read changelog topic \(topic): Kafka at \(bootstrap) does not answer (\(error))")
        }
        guard let count else {
            throw InspectionError(.io, "changelog topic \(topic) does not exist on \(bootstrap) (has the job run against this cluster?)")
        }
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(config: consumerConfig, logger: logger)
        } catch {
            throw InspectionError(.io, "cannot create a Kafka consumer for \(bootstrap): \(error)")
        }
        defer { consumer.closeBlocking() }
        let all = (0..<Int32(count)).map { $0 }
        let selected = wanted ?? all
        for p in selected where !all.contains(p) {
            throw InspectionError(.usage, "partition \(p) does not exist: changelog topic \(topic) has \(count) partitions (0...\(count - 1))")
        }

        var notes: [String] = []
        var ends: [Int32: Int64] = [:]
        var starts: [Int32: Int64] = [:]
        do {
            for p in selected {
                let wm = try consumer.watermarks(TopicPartition(topic, p), timeoutMs: requestTimeoutMs)
                ends[p] = wm.high
                starts[p] = wm.low
                if wm.low > 0 {
                    notes.append("changelog \(topic)[\(p)] starts at offset \(wm.low): its older records are gone (retention), so keys written only before that are missing from this replay")
                }
            }
        } catch {
            throw InspectionError(.io, "cannot read the end offsets of \(topic) from Kafka at \(bootstrap): \(error)")
        }

        var entries: [Int32: [String: StoreEntry]] = [:]
        var lastOffsets: [Int32: [String: Int64]] = [:]
        var records: [Int32: Int] = [:]
        var pending = Set(selected.filter { ends[$0]! > starts[$0]! })
        let total = selected.reduce(Int64(0)) { $0 + ends[$1]! - starts[$1]! }
        var read: Int64 = 0
        if !pending.isEmpty {
            do {
                try consumer.assign(pending.sorted().map { TopicPartitionOffset(topic, $0, starts[$0]!) })
            } catch {
                throw InspectionError(.io, "cannot read \(topic) from Kafka at \(bootstrap): \(error)")
            }
        }
        var lastProgress = ContinuousClock.now
        var lastRecord = ContinuousClock.now
        while !pending.isEmpty {
            let batch: KafkaConsumer.Batch
            do {
                batch = try consumer.pollBatch(maxMessages: 10_000, timeoutMs: 200)
            } catch {
                throw InspectionError(.io, "reading \(topic) from Kafka at \(bootstrap) failed: \(error)")
            }
            for m in batch.messages where pending.contains(m.partition) && m.offset < ends[m.partition]! {
                let decoded: (key: String, entry: StoreEntry?, tag: CommitTag?)
                do {
                    decoded = try ChangelogCodec.decode(m)
                } catch {
                    throw InspectionError(.io, "changelog record \(topic)[\(m.partition)]@\(m.offset) is not a store record: \(error)")
                }
                entries[m.partition, default: [:]][decoded.key] = decoded.entry
                lastOffsets[m.partition, default: [:]][decoded.key] = m.offset
                records[m.partition, default: 0] += 1
                read += 1
                if m.offset + 1 >= ends[m.partition]! { pending.remove(m.partition) }
            }
            // End of partition: also reached when the last offsets are transaction markers, which are never delivered.
            for eof in batch.partitionEOFs where eof.topic == topic && eof.offset >= (ends[eof.partition] ?? .max) {
                pending.remove(eof.partition)
            }
            let now = ContinuousClock.now
            if !batch.messages.isEmpty || !batch.partitionEOFs.isEmpty { lastRecord = now }
            if now - lastRecord > stallTimeout {
                let left = pending.sorted().map { "\(topic)[\($0)]" }.joined(separator: ", ")
                throw InspectionError(.io, "reading \(topic) from Kafka at \(bootstrap) stalled: nothing received for \(stallTimeout) while \(left) had records left")
            }
            if let progress, now - lastProgress >= .milliseconds(100) {
                lastProgress = now
                progress(ChangelogProgress(topic: topic, read: read, total: total))
            }
        }
        progress?(ChangelogProgress(topic: topic, read: read, total: total))
        let contents = selected.map { p in
            StorePartitionContents(
                partition: p, entries: entries[p] ?? [:], changelogRecords: records[p] ?? 0,
                changelogEndOffset: ends[p], lastOffsets: lastOffsets[p] ?? [:])
        }
        return (contents, notes)
    }
}
