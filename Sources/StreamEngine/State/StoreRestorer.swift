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
    /// The most consumers the async restore replays one changelog range with.
    public var maxRanges = 4
    /// Changelog consumers an instance uses in all when its tasks restore at once
    /// (`TaskManager` gives each of n tasks `max(1, instanceConsumers / n)` ranges).
    public static let instanceConsumers = 4
    /// Records per range below which the async restore does not split its changelog range further.
    public var recordsPerRange: Int64 = 50_000

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

    /// Restores `store` with consumers of its own whose blocking reads run on their
    /// executors; the caller suspends meanwhile.
    ///
    /// A long changelog range is split into up to ``maxRanges`` consecutive ranges replayed
    /// at once, each by its own consumer (the broker answers a fetch with one record batch
    /// of a partition, so one consumer waits a round trip per batch); the later ranges' last
    /// write per key (tombstones included) is applied over the earlier ones, in offset order.
    /// The report's seconds include making the consumers.
    ///
    /// - Parameter warm: a standby's warm copy of the store partition: the restore starts
    ///   from it (its pending records applied by the rule of every record) instead of the snapshot.
    public func restore(store: String, partition: Int32, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?, warm: WarmStoreCopy? = nil) async throws -> (entries: [String: StoreEntry], report: RestoreReport) {
        let started = ContinuousClock.now
        var consumers = [try makeConsumer()]
        let result: Result<(entries: [String: StoreEntry], report: RestoreReport), any Error>
        do {
            var begin = try await consumers[0].withExecutor { c in
                try self.start(store: store, partition: partition, changelogTopic: changelogTopic, snapshotPath: snapshotPath, committed: committed, warm: warm, consumer: c)
            }
            let ranges = Self.split(begin.range, parts: Int(min(Int64(maxRanges), max(1, Int64(begin.range.count) / max(1, recordsPerRange)))))
            for _ in 1..<ranges.count { consumers.append(try makeConsumer()) }
            logStart(store: store, partition: partition, begin: begin, ranges: ranges.count)
            // Without a snapshot or warm copy the first range builds the store itself: its
            // records go into the entries directly, not into a change set merged afterwards.
            let firstIsBase = begin.entries.isEmpty
            let total = Int64(begin.range.count)
            var parts = try await withThrowingTaskGroup(of: RangeReplay.self) { group in
                for (i, range) in ranges.enumerated() {
                    let consumer = consumers[i]
                    group.addTask {
                        try await consumer.withExecutor { c in
                            var part = RangeReplay(index: i)
                            let building = i == 0 && firstIsBase
                            var sizing = KeyCountEstimate(records: range.count)
                            let counts = try self.replay(
                                store: store, partition: partition, changelogTopic: changelogTopic, range: range, last: i == ranges.count - 1,
                                total: total, committed: committed, consumer: c
                            ) { key, entry in
                                if building {
                                    part.base[key] = entry
                                    if let n = sizing.note(keys: part.base.count) { part.base.reserveCapacity(n) }
                                } else {
                                    part.changes.updateValue(entry, forKey: key)
                                    if let n = sizing.note(keys: part.changes.count) { part.changes.reserveCapacity(n) }
                                }
                            }
                            part.applied = counts.applied
                            part.skipped = counts.skipped
                            return part
                        }
                    }
                }
                var all: [RangeReplay] = []
                for try await part in group { all.append(part) }
                return all.sorted { $0.index < $1.index }
            }
            // The table the store will hold, taken out of its holder so that the merge changes it in place.
            var entries: [String: StoreEntry]
            if firstIsBase {
                entries = parts[0].base
                parts[0].base = [:]
            } else {
                entries = begin.entries
                begin.entries = [:]
            }
            let changed = parts.reduce(0) { $0 + $1.changes.count }
            // At most the sum (exact when the ranges changed distinct keys): one table, no rehash per doubling.
            if changed > 0 { entries.reserveCapacity(entries.count + changed) }
            for part in parts {
                for (key, entry) in part.changes { entries[key] = entry }
            }
            let target = KeyValueStore(name: store, partition: partition)
            target.replaceAll(entries)
            let report = finish(
                target, begin: begin, applied: begin.warmApplied + parts.reduce(0) { $0 + $1.applied },
                skipped: begin.warmSkipped + parts.reduce(0) { $0 + $1.skipped }, started: started)
            result = .success((target.allEntries, report))
        } catch {
            result = .failure(error)
        }
        for consumer in consumers { await consumer.close() }
        return try result.get()
    }


    /// What the replay of one changelog range brought: the entries it built (the first range of
    /// a restore without a starting copy) or its last write per key (`nil`: a tombstone).
    struct RangeReplay: Sendable {
        var index: Int
        var base: [String: StoreEntry] = [:]
        var changes: [String: StoreEntry?] = [:]
        var applied = 0
        var skipped = 0
    }

    /// How many distinct keys a changelog range will leave, estimated from its first records,
    /// so that the table it fills is sized once instead of rehashed at every doubling. The
    /// estimate is the distinct share of the first ``sample`` records scaled to the range (a
    /// changelog of a few hot keys reserves little, one write per key reserves the range).
    struct KeyCountEstimate {
        static let sample = 8192
        let records: Int
        private var seen = 0

        init(records: Int) { self.records = records }

        /// Counts one applied record; returns the capacity to reserve once, when the sample is
        /// complete (`keys`, the distinct keys so far, is read only then).
        mutating func note(keys: @autoclosure () -> Int) -> Int? {
            seen += 1
            guard seen == Self.sample, records > Self.sample else { return nil }
            let share = Double(keys()) / Double(seen)
            return min(records, Int((Double(records) * share * 1.05).rounded(.up)))
        }
    }

    /// `range` cut into `parts` consecutive ranges of (nearly) equal length.
    static func split(_ range: Range<Int64>, parts: Int) -> [Range<Int64>] {
        guard parts > 1, range.count >= parts else { return [range] }
        let n = Int64(parts)
        let length = Int64(range.count)
        return (0..<n).map { i in (range.lowerBound + length * i / n)..<(range.lowerBound + length * (i + 1) / n) }
    }

    private func makeConsumer() throws -> KafkaConsumer {
        try KafkaConsumer(config: kafkaConfig.merging(["enable.partition.eof": "true", "isolation.level": "read_committed"]) { $1 }, logger: logger)
    }

    private func restore(store: String, partition: Int32, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?, consumer: KafkaConsumer) throws -> (entries: [String: StoreEntry], report: RestoreReport) {
        let target = KeyValueStore(name: store, partition: partition)
        let report = try restore(into: target, changelogTopic: changelogTopic, snapshotPath: snapshotPath, committed: committed, consumer: consumer)
        return (target.allEntries, report)
    }

    /// Where a restore starts: the snapshot's entries (none without a usable snapshot) and
    /// the changelog range to replay after them.
    struct Start: Sendable {
        var entries: [String: StoreEntry] = [:]
        var range: Range<Int64>
        var fromSnapshot = false
        var problem: String?
        var snapshotKeys = 0
        /// Started from a standby's warm copy; its pending records applied and skipped.
        var fromWarmCopy = false
        var warmApplied = 0
        var warmSkipped = 0
    }

    /// Reads the snapshot and the changelog's watermarks; throws when the changelog no
    /// longer holds the offsets the restore needs.
    func start(store: String, partition: Int32, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]? = nil,
               warm: WarmStoreCopy? = nil, consumer: KafkaConsumer) throws -> Start {
        var begin = Start(range: 0..<0)
        var startOffset: Int64 = 0
        if let warm {
            // A standby's copy: its entries, then its pending records by the rule of every record.
            begin.entries = warm.entries
            for record in warm.pending {
                if let committed, !(record.tag?.isCommitted(by: committed) ?? false) {
                    begin.warmSkipped += 1
                } else {
                    begin.entries[record.key] = record.entry
                    begin.warmApplied += 1
                }
            }
            startOffset = warm.nextOffset
            begin.fromWarmCopy = true
            begin.snapshotKeys = warm.entries.count
        } else if let snapshotPath {
            do {
                let snap = try StoreSnapshot.read(from: snapshotPath)
                if let committed, let ahead = snap.inputOffsets.first(where: { $0.value > (committed[$0.key] ?? 0) }) {
                    // Written after a commit of this task that the group's offsets have not reached:
                    // it holds state of uncommitted records.
                    throw SnapshotError(path: snapshotPath, reason: "written at \(ahead.key) position \(ahead.value), past the committed \(committed[ahead.key] ?? 0): it holds state of uncommitted records")
                }
                begin.entries = snap.entries
                startOffset = snap.changelogOffset
                begin.fromSnapshot = true
                begin.snapshotKeys = snap.entries.count
            } catch let error as SnapshotError {
                if !error.missing {
                    begin.problem = error.description
                    logger.warning("\(error); restoring \(store)[\(partition)] from its changelog instead")
                }
            }
        }
        let wm = try consumer.watermarks(TopicPartition(changelogTopic, partition))
        if wm.low > startOffset, wm.high > startOffset {
            throw ChangelogTruncatedError(topic: changelogTopic, partition: partition, needed: startOffset, lowWatermark: wm.low)
        }
        begin.range = startOffset..<max(startOffset, wm.high)
        return begin
    }

    func restore(into store: KeyValueStore, changelogTopic: String, snapshotPath: String?, committed: [String: Int64]?, consumer: KafkaConsumer) throws -> RestoreReport {
        let started = ContinuousClock.now
        var begin = try start(store: store.name, partition: store.partition, changelogTopic: changelogTopic, snapshotPath: snapshotPath, committed: committed, consumer: consumer)
        store.replaceAll(begin.entries)
        begin.entries = [:]  // the store's table alone: restored records change it in place
        logStart(store: store.name, partition: store.partition, begin: begin, ranges: 1)
        var sizing = KeyCountEstimate(records: begin.range.count)
        let before = store.count
        let counts = try replay(
            store: store.name, partition: store.partition, changelogTopic: changelogTopic, range: begin.range, last: true,
            total: Int64(begin.range.count), committed: committed, consumer: consumer
        ) { key, entry in
            store.restore(key, entry)
            if let n = sizing.note(keys: store.count - before) { store.reserveCapacity(before + n) }
        }
        return finish(store, begin: begin, applied: counts.applied, skipped: counts.skipped, started: started)
    }

    private func logStart(store: String, partition: Int32, begin: Start, ranges: Int) {
        guard !begin.range.isEmpty else { return }
        logger.info("restoring \(store)[\(partition)]: \(begin.range.count) changelog records from offset \(begin.range.lowerBound)\(begin.fromSnapshot ? " after a snapshot of \(begin.snapshotKeys) keys" : begin.fromWarmCopy ? " after a standby's warm copy of \(begin.snapshotKeys) keys" : "")\(ranges > 1 ? " in \(ranges) ranges at once" : "")")
    }

    /// Replays `range` of the store's changelog partition, handing each record of a
    /// completed commit to `apply` in offset order; returns how many were applied and skipped.
    /// The `last` range also applies records past its end that came in its last batch (they
    /// were written after the end was measured); the others leave them to the next range.
    private func replay(
        store: String, partition: Int32, changelogTopic: String, range: Range<Int64>, last: Bool, total: Int64, committed: [String: Int64]?,
        consumer: KafkaConsumer, apply: (String, StoreEntry?) -> Void
    ) throws -> (applied: Int, skipped: Int) {
        var applied = 0
        var skipped = 0
        guard !range.isEmpty else { return (0, 0) }
        let restored = Counter(label: "stream_engine_restored_records", dimensions: [("store", store)])
        var read: Int64 = 0
        var lastLog = ContinuousClock.now
        var lastTag: CommitTag?
        var lastVerdict = false
        do {
            try ChangelogReplay.run(
                consumer: consumer, topic: changelogTopic, ranges: [partition: range],
                afterPoll: { count in
                    read += Int64(count)
                    restored.increment(by: Int64(count))
                    if ContinuousClock.now - lastLog > .seconds(2) {
                        lastLog = ContinuousClock.now
                        logger.info("restoring \(store)[\(partition)]: \(read) of \(range.count) records from offset \(range.lowerBound) (\(total) in all)")
                    }
                },
                apply: { record in
                    guard last || record.offset < range.upperBound else { return }
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
                    apply(record.key, record.entry)
                    applied += 1
                })
        } catch {
            throw error.underlying
        }
        return (applied, skipped)
    }

    private func finish(_ store: KeyValueStore, begin: Start, applied: Int, skipped: Int, started: ContinuousClock.Instant) -> RestoreReport {
        let report = RestoreReport(
            store: store.name, partition: store.partition, fromSnapshot: begin.fromSnapshot, snapshotProblem: begin.problem,
            snapshotKeys: begin.snapshotKeys, changelogRecords: applied, skippedUncommitted: skipped, keys: store.count,
            seconds: (ContinuousClock.now - started).seconds)
        if !begin.range.isEmpty || begin.fromSnapshot || begin.fromWarmCopy {
            logger.info("restored \(store.name)[\(store.partition)]: \(store.count) keys (\(begin.fromWarmCopy ? "warm copy" : "snapshot") \(begin.snapshotKeys), changelog \(applied), skipped \(skipped) uncommitted) in \(String(format: "%.2f", report.seconds)) s")
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
