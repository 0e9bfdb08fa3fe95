import Foundation
import KafkaClient
import Logging
import Metrics

/// A changelog that no longer holds the offsets a restore needs.
public struct ChangelogTruncatedError: Error, CustomStringConvertible, Sendable {
    public var topic: String
    public var partition: Int32
    public var needed: Int64
    public var lowWatermark: Int64
    public var description: String {
        "changelog \(topic)[\(partition)] starts at offset \(lowWatermark) but the restore needs offset \(needed): its older records are gone, so the store cannot be rebuilt exactly (keep a snapshot, or raise the topic's retention)"
    }
}

/// What a restore did.
public struct RestoreReport: Sendable {
    public var store: String
    public var partition: Int32
    public var fromSnapshot: Bool
    public var snapshotProblem: String?
    public var snapshotKeys: Int
    public var changelogRecords: Int
    public var skippedUncommitted: Int
    public var keys: Int
    public var seconds: Double
}

/// Rebuilds a store partition from its local snapshot plus the changelog tail,
/// or from the whole changelog when the snapshot is missing or corrupt.
/// Only changelog records whose commit completed are applied (`CommitTag`).
public struct StoreRestorer: Sendable {
    public var kafkaConfig: [String: String]
    public var logger: Logger

    public init(kafkaConfig: [String: String], logger: Logger) {
        self.kafkaConfig = kafkaConfig
        self.logger = logger
    }

    /// Restores `store`. Blocking (Kafka polls): call from a dedicated thread.
    /// - Parameters:
    ///   - committed: the task's committed input offsets (next offset to read) per topic;
    ///     `nil` to apply every record (inspection tools reading a changelog).
    public func restore(store: String, partition: Int32, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?) throws -> (entries: [String: StoreEntry], report: RestoreReport) {
        let consumer = try makeConsumer()
        defer { consumer.closeBlocking() }
        return try restore(store: store, partition: partition, changelogTopic: changelogTopic, snapshotPath: snapshotPath, committed: committed, consumer: consumer)
    }

    /// Restores `store` with a consumer of its own whose blocking reads run on
    /// that consumer's executor; the caller suspends meanwhile.
    public func restore(store: String, partition: Int32, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?) async throws -> (entries: [String: StoreEntry], report: RestoreReport) {
        let consumer = try makeConsumer()
        let result: Result<(entries: [String: StoreEntry], report: RestoreReport), any Error>
        do {
            result = .success(try await consumer.withExecutor { c in
                try self.restore(store: store, partition: partition, changelogTopic: changelogTopic, snapshotPath: snapshotPath, committed: committed, consumer: c)
            })
        } catch {
            result = .failure(error)
        }
        await consumer.close()
        return try result.get()
    }

    private func makeConsumer() throws -> KafkaConsumer {
        try KafkaConsumer(config: kafkaConfig.merging(["enable.partition.eof": "true", "isolation.level": "read_committed"]) { $1 }, logger: logger)
    }

    private func restore(store: String, partition: Int32, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?, consumer: KafkaConsumer) throws -> (entries: [String: StoreEntry], report: RestoreReport) {
        let target = KeyValueStore(name: store, partition: partition)
        let report = try restore(into: target, changelogTopic: changelogTopic, snapshotPath: snapshotPath, committed: committed, consumer: consumer)
        return (target.allEntries, report)
    }

    func restore(into store: KeyValueStore, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?, consumer: KafkaConsumer) throws -> RestoreReport {
        let started = ContinuousClock.now
        var startOffset: Int64 = 0
        var fromSnapshot = false
        var problem: String?
        var snapshotKeys = 0
        if let snapshotPath {
            do {
                let snap = try StoreSnapshot.read(from: snapshotPath)
                store.replaceAll(snap.entries)
                startOffset = snap.changelogOffset
                fromSnapshot = true
                snapshotKeys = snap.entries.count
            } catch let error as SnapshotError {
                if !error.missing {
                    problem = error.description
                    logger.warning("\(error); restoring \(store.name)[\(store.partition)] from its changelog instead")
                }
                store.replaceAll([:])
            }
        }
        let tp = TopicPartition(changelogTopic, store.partition)
        let wm = try consumer.watermarks(tp)
        if wm.low > startOffset, wm.high > startOffset {
            throw ChangelogTruncatedError(topic: changelogTopic, partition: store.partition, needed: startOffset, lowWatermark: wm.low)
        }
        var applied = 0
        var skipped = 0
        let toRead = max(0, wm.high - startOffset)
        let restored = Counter(label: "stream_engine_restored_records", dimensions: [("store", store.name)])
        if toRead > 0 {
            logger.info("restoring \(store.name)[\(store.partition)]: \(toRead) changelog records from offset \(startOffset)\(fromSnapshot ? " after a snapshot of \(snapshotKeys) keys" : "")")
            var read: Int64 = 0
            var lastLog = ContinuousClock.now
            var lastTag: CommitTag?
            var lastVerdict = false
            do {
                try ChangelogReplay.run(
                    consumer: consumer, topic: changelogTopic, ranges: [store.partition: startOffset..<wm.high],
                    afterPoll: { count in
                        read += Int64(count)
                        restored.increment(by: Int64(count))
                        if ContinuousClock.now - lastLog > .seconds(2) {
                            lastLog = ContinuousClock.now
                            logger.info("restoring \(store.name)[\(store.partition)]: \(read) / \(toRead)")
                        }
                    },
                    apply: { record in
                        if let committed {
                            // Records of one commit share their tag: judge each distinct tag once.
                            if record.tag != lastTag {
                                lastTag = record.tag
                                lastVerdict = record.tag?.isCommitted(by: committed) ?? false
                            }
                            if !lastVerdict {
                                skipped += 1
                                return
                            }
                        }
                        store.restore(record.key, record.entry)
                        applied += 1
                    })
            } catch {
                throw error.underlying
            }
        }
        let report = RestoreReport(
            store: store.name, partition: store.partition, fromSnapshot: fromSnapshot, snapshotProblem: problem,
            snapshotKeys: snapshotKeys, changelogRecords: applied, skippedUncommitted: skipped, keys: store.count,
            seconds: (ContinuousClock.now - started).seconds)
        if toRead > 0 || fromSnapshot {
            logger.info("restored \(store.name)[\(store.partition)]: \(store.count) keys (snapshot \(snapshotKeys), changelog \(applied), skipped \(skipped) uncommitted) in \(String(format: "%.2f", report.seconds)) s")
        }
        return report
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
