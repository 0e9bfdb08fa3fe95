import Foundation
import KafkaClient
import Logging
import Metrics

/// Standby replicas (`defaults.num.standby.replicas` ≥ 1): warm copies of
/// the store partitions of tasks this instance does not run, kept up to date
/// from their changelogs, so that a task moving here (its owner died or left)
/// restores only the changelog tail written after the copy.
///
/// Kafka Streams places standbys with its own partition assignor and then
/// moves active tasks to the instances that hold them. librdkafka's assignors
/// (cooperative-sticky, range) cannot be told where standbys are, so the new
/// owner of a partition cannot be chosen: every instance keeps a warm copy of
/// every store partition it does not own. That costs one full copy of the
/// state per instance (memory, and the CPU of reading every changelog) and
/// makes any survivor a warm one.
///
/// One consumer of its own (manual assignment, never a group member) reads
/// the changelogs; its blocking calls run on its dedicated executor. A record
/// is applied once the group's committed offsets cover its commit tag — the
/// restore's rule (``WarmStoreBuilder``) — so a copy never holds what an
/// owner wrote but never committed.
actor StandbyReplicas {
    /// A store partition: the store's name and the partition.
    struct Key: Hashable, Sendable, Comparable {
        var store: String
        var partition: Int32
        static func < (a: Key, b: Key) -> Bool { (a.store, a.partition) < (b.store, b.partition) }
    }

    private struct StoreInfo: Sendable {
        var changelog: String
        var sub: SubTopology
    }

    private let stores: [String: StoreInfo]
    /// The stores of each changelog topic.
    private let storesByChangelog: [String: [String]]
    /// Partitions of each sub-topology (of its source topics).
    private let partitionCounts: [String: Int]
    private let config: StreamConfig
    private let stateDir: String
    private let consumer: KafkaConsumer
    private let logger: Logger
    /// Copies being kept.
    private var copies: [Key: WarmStoreBuilder] = [:]
    /// The store partitions wanted now (nil until the first assignment is known).
    private var wanted: Set<Key>?
    /// The consumer's assignment no longer matches `copies`.
    private var assignmentStale = false
    /// The group's committed offsets (with their metadata) of the owning tasks' input partitions.
    private var committed: [TopicPartition: TopicPartitionOffset] = [:]
    private var lastCommittedRefresh = ContinuousClock.now - .seconds(60)
    private var lastReport = ContinuousClock.now
    private var caughtUpLogged: Set<Key> = []
    /// Each copy's changelog end (high watermark) at the last report.
    private var lastHigh: [Key: Int64] = [:]
    private let lagGauge = Gauge(label: "stream_engine_standby_lag_records")

    /// - Parameters:
    ///   - partitionCounts: partition count of every source topic (from the topic set-up).
    ///   - consumerConfig: the group member's configuration (its `group.id` is used to read committed offsets; this consumer never joins).
    init(plan: TopologyPlan, partitionCounts: [String: Int], consumerConfig: [String: String], stateDir: String, logger: Logger) throws {
        var stores: [String: StoreInfo] = [:]
        var counts: [String: Int] = [:]
        for (store, changelog, sub) in plan.stores {
            stores[store] = StoreInfo(changelog: changelog, sub: sub)
            counts[sub.id] = sub.sourceTopics.compactMap { partitionCounts[$0] }.max() ?? 0
        }
        self.stores = stores
        self.storesByChangelog = Dictionary(grouping: stores.keys, by: { stores[$0]!.changelog })
        self.partitionCounts = counts
        self.config = plan.config
        self.stateDir = stateDir
        self.logger = logger
        var c = consumerConfig
        // One shared queue: the member's per-partition bounds do not fit it.
        for key in StreamRuntime.partitionQueuePrefetchDefaults.keys where plan.config.kafka[key] == nil { c.removeValue(forKey: key) }
        for (key, value) in StreamRuntime.sharedQueuePrefetchDefaults where plan.config.kafka[key] == nil { c[key] = value }
        c.removeValue(forKey: "group.instance.id")
        c["isolation.level"] = "read_committed"
        c["enable.partition.eof"] = "false"
        self.consumer = try KafkaConsumer(config: c, logger: logger)
    }

    /// Whether the topology has any store to keep copies of.
    nonisolated var isEmpty: Bool { stores.isEmpty }

    /// Tells the standbys which tasks run here now (the partitions assigned to
    /// this member); they keep copies of every other store partition.
    func owned(_ assigned: Set<TopicPartition>) {
        var want: Set<Key> = []
        for (store, info) in stores {
            for p in 0..<Int32(partitionCounts[info.sub.id] ?? 0) {
                let runsHere = info.sub.sourceTopics.contains { assigned.contains(TopicPartition($0, p)) }
                if !runsHere { want.insert(Key(store: store, partition: p)) }
            }
        }
        for key in copies.keys where !want.contains(key) {
            copies.removeValue(forKey: key)
            assignmentStale = true
        }
        wanted = want
    }

    /// Hands over the warm copies of a task's stores (they stop being kept here):
    /// `store → copy`, only for stores with one.
    func take(stores names: [String], partition: Int32) -> [String: WarmStoreCopy] {
        var out: [String: WarmStoreCopy] = [:]
        for name in names {
            let key = Key(store: name, partition: partition)
            wanted?.remove(key)
            guard var builder = copies.removeValue(forKey: key) else { continue }
            assignmentStale = true
            builder.resolve(committed: committedOffsets(of: key))
            out[name] = builder.copy()
            logger.info("standby: handing the warm copy of \(name)[\(partition)] to its task (\(builder.entries.count) keys, changelog offset \(builder.nextOffset), \(builder.pendingCount) records awaiting their commit)")
        }
        return out
    }

    /// Keeps the copies up to date until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            do {
                try await step()
            } catch is CancellationError {
                break
            } catch {
                logger.warning("standby replicas: \(error); retrying in 1 s")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Leaves: closes the consumer.
    func close() async {
        copies = [:]
        await consumer.close()
    }

    private func step() async throws {
        guard let wanted else {
            try await Task.sleep(for: .milliseconds(100))
            return
        }
        // Start the copies that are wanted and missing, from a local snapshot when there is one.
        let missing = wanted.subtracting(copies.keys).sorted()
        if !missing.isEmpty { try await refreshCommitted(including: missing) }
        for key in missing {
            let builder = try await start(key)
            // The task may have taken the partition meanwhile.
            if self.wanted?.contains(key) ?? false, copies[key] == nil {
                copies[key] = builder
                assignmentStale = true
            }
        }
        if copies.isEmpty {
            if assignmentStale {
                try await consumer.withExecutor { try $0.assign([]) }
                assignmentStale = false
            }
            try await Task.sleep(for: .milliseconds(100))
            return
        }
        if assignmentStale {
            let positions = copies.map { TopicPartitionOffset(stores[$0.key.store]!.changelog, $0.key.partition, $0.value.nextOffset) }
            try await consumer.withExecutor { try $0.assign(positions) }
            assignmentStale = false
        }
        if ContinuousClock.now - lastCommittedRefresh > .milliseconds(250) {
            try await refreshCommitted()
        }
        let batch = try await consumer.withExecutor {
            try $0.pollBatch(maxMessages: 10_000, timeoutMs: 100, skippingHeadersOfValuesStartingWith: ChangelogCodec.frameMarker)
        }
        guard !batch.messages.isEmpty else {
            await reportProgress()
            return
        }
        for m in batch.messages {
            for store in storesByChangelog[m.topic] ?? [] {
                let key = Key(store: store, partition: m.partition)
                guard copies[key] != nil else { continue }
                let decoded: (key: String, entry: StoreEntry?, tag: CommitTag?)
                do {
                    decoded = try ChangelogCodec.decode(m)
                } catch {
                    logger.warning("standby: changelog record \(m.topic)[\(m.partition)]@\(m.offset) is not a store record (\(error)); skipped")
                    continue
                }
                let record = ChangelogRecord(partition: m.partition, offset: m.offset, key: decoded.key, entry: decoded.entry, tag: decoded.tag)
                copies[key]!.add(record, committed: committedOffsets(of: key))
            }
        }
        await reportProgress()
    }

    /// A new copy: from the local snapshot of the store partition (left by an
    /// earlier owner on this instance) when it is readable, else empty from offset 0.
    private func start(_ key: Key) async throws -> WarmStoreBuilder {
        let info = stores[key.store]!
        let path = StoreSnapshot.path(stateDir: stateDir, applicationId: config.applicationId, store: key.store, partition: key.partition)
        let snapshot: StoreSnapshot? = FileManager.default.fileExists(atPath: path)
            ? try? await consumer.withExecutor { _ in try StoreSnapshot.read(from: path) }
            : nil
        // A snapshot ahead of the committed positions holds uncommitted state: not a start for a copy.
        if let snapshot, snapshot.inputOffsets.allSatisfy({ $0.value <= (committedOffsets(of: key)[$0.key] ?? 0) }) {
            logger.info("standby: keeping a warm copy of \(key.store)[\(key.partition)] from its local snapshot (\(snapshot.entries.count) keys, changelog offset \(snapshot.changelogOffset))")
            return WarmStoreBuilder(store: key.store, partition: key.partition, entries: snapshot.entries, nextOffset: snapshot.changelogOffset)
        }
        logger.info("standby: keeping a warm copy of \(key.store)[\(key.partition)] from the start of \(info.changelog)")
        return WarmStoreBuilder(store: key.store, partition: key.partition)
    }

    /// The committed positions of the owning task, as its commit tags count them.
    private func committedOffsets(of key: Key) -> [String: Int64] {
        guard let info = stores[key.store] else { return [:] }
        return CommittedPositions.of(sub: info.sub, partition: key.partition, committed: committed)
    }

    private func refreshCommitted(including extra: [Key] = []) async throws {
        lastCommittedRefresh = .now
        var partitions: Set<TopicPartition> = []
        for key in Array(copies.keys) + extra {
            for topic in stores[key.store]!.sub.sourceTopics { partitions.insert(TopicPartition(topic, key.partition)) }
        }
        guard !partitions.isEmpty else { return }
        let fetched = try await consumer.committedWithMetadata(Array(partitions))
        var moved = false
        for (tp, o) in fetched where o.offset >= 0 && (o.offset != committed[tp]?.offset || o.metadata != committed[tp]?.metadata) {
            committed[tp] = o
            moved = true
        }
        guard moved else { return }
        for key in Array(copies.keys) {
            copies[key]!.resolve(committed: committedOffsets(of: key))
        }
    }

    /// Logs each copy once it caught up; records the total lag (every 2 s).
    ///
    /// Caught up: at most 1 record behind the changelog's end now, or past the end measured at
    /// the last report. While the owner keeps writing, a copy that reads along is a fetch behind
    /// at any instant; the check comes right after a poll, and with the owner's commits at a
    /// regular period it can fall at the same point of that period every time, so "behind by
    /// at most 1" alone may never be seen on a partition whose fetch answers come later than
    /// another's.
    private func reportProgress() async {
        let now = ContinuousClock.now
        guard now - lastReport > .seconds(2) else { return }
        lastReport = now
        var lag: Int64 = 0
        for (key, builder) in copies.sorted(by: { $0.key < $1.key }) {
            let tp = TopicPartition(stores[key.store]!.changelog, key.partition)
            guard let wm = try? await consumer.watermarks(tp, timeoutMs: 2_000) else { continue }
            let l = max(0, wm.high - builder.nextOffset)
            lag += l
            let earlierEnd = lastHigh.updateValue(wm.high, forKey: key)
            // (1: a transaction marker may end the partition on a real cluster)
            if l <= 1 || earlierEnd.map({ builder.nextOffset >= $0 - 1 }) ?? false {
                if caughtUpLogged.insert(key).inserted {
                    logger.info("standby: warm copy of \(key.store)[\(key.partition)] is up to date (\(builder.entries.count) keys, changelog offset \(builder.nextOffset), its end \(wm.high))")
                }
            }
        }
        caughtUpLogged.formIntersection(copies.keys)
        lastHigh = lastHigh.filter { copies[$0.key] != nil }
        lagGauge.record(lag)
    }
}
