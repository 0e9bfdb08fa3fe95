import Foundation
import KafkaClient
import Logging
import StreamEngine
import ThreadExecutors

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
/// does (`StoreRestorer.restore(…, committed: nil)`), through the same loop
/// (``ChangelogReplay``). A partition is read from its low watermark up to the end
/// offset it had when the replay started.
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

    /// The topic's partition count, `nil` if it does not exist (see ``TopicMetadata``). Blocking.
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
        let total = selected.reduce(Int64(0)) { $0 + ends[$1]! - starts[$1]! }
        var read: Int64 = 0
        var lastProgress = ContinuousClock.now
        do {
            try ChangelogReplay.run(
                consumer: consumer, topic: topic,
                ranges: Dictionary(uniqueKeysWithValues: selected.map { ($0, starts[$0]!..<max(starts[$0]!, ends[$0]!)) }),
                stallTimeout: stallTimeout,
                afterPoll: { _ in
                    let now = ContinuousClock.now
                    if let progress, now - lastProgress >= .milliseconds(100) {
                        lastProgress = now
                        progress(ChangelogProgress(topic: topic, read: read, total: total))
                    }
                },
                apply: { record in
                    // Records written after the replay started are not part of it.
                    guard record.offset < ends[record.partition]! else { return }
                    entries[record.partition, default: [:]][record.key] = record.entry
                    lastOffsets[record.partition, default: [:]][record.key] = record.offset
                    records[record.partition, default: 0] += 1
                    read += 1
                })
        } catch {
            switch error {
            case .poll(let e):
                throw InspectionError(.io, "reading \(topic) from Kafka at \(bootstrap) failed: \(e)")
            case .decode(let p, let offset, let e):
                throw InspectionError(.io, "changelog record \(topic)[\(p)]@\(offset) is not a store record: \(e)")
            case .stalled(let left, let after):
                let names = left.map { "\(topic)[\($0)]" }.joined(separator: ", ")
                throw InspectionError(.io, "reading \(topic) from Kafka at \(bootstrap) stalled: nothing received for \(after) while \(names) had records left")
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
