import Foundation
import KafkaClient
import Logging
import StreamEngine
import ThreadExecutors

/// Read-only access to the state stores of a configuration: from the local
/// snapshots under a state directory, or from the stores' changelog topics.
///
/// It never writes a snapshot, a changelog, a consumer-group offset or Redis,
/// so it can run while the job runs: snapshots are replaced by rename, so a
/// read sees either the old file or the new one, never a half-written one.
public struct StateInspector: Sendable {
    /// The loaded configuration.
    public var config: StreamConfig
    /// The engine's state directory (`run --state-dir`).
    public var stateDir: String
    /// librdkafka configuration used to read changelogs; without `bootstrap.servers` Kafka is not consulted.
    public var kafkaConfig: [String: String]
    /// Logger for librdkafka's log lines.
    public var logger: Logger
    /// Timeout of each Kafka metadata or watermark request.
    public var requestTimeoutMs: Int32

    /// Creates an inspector.
    /// - Parameters:
    ///   - config: the configuration whose stores are inspected.
    ///   - stateDir: the state directory the engine wrote snapshots to.
    ///   - kafkaConfig: librdkafka settings (usually `config.kafka` with command-line overrides).
    ///   - logger: where librdkafka's log lines go.
    ///   - requestTimeoutMs: timeout of each Kafka request.
    public init(config: StreamConfig, stateDir: String, kafkaConfig: [String: String], logger: Logger, requestTimeoutMs: Int32 = 10_000) {
        self.config = config
        self.stateDir = stateDir
        self.kafkaConfig = kafkaConfig
        self.logger = logger
        self.requestTimeoutMs = requestTimeoutMs
    }

    // MARK: Stores

    /// Every store of every pipeline in file order, then the engine's internal ones.
    public var stores: [InspectedStore] {
        let plan = TopologyPlan(config: config)
        let declared = Set(config.storeNames)
        let all = plan.stores.map { s in
            InspectedStore(
                name: s.store, pipeline: s.sub.pipeline.name, subTopology: s.sub.id, changelogTopic: s.changelog,
                isInternal: !declared.contains(s.store))
        }
        return all.filter { !$0.isInternal } + all.filter(\.isInternal)
    }

    /// The store called `name`.
    /// - Throws: ``InspectionError`` (`.usage`) naming the known stores, with a "did you mean" for a misspelling.
    public func store(named name: String) throws(InspectionError) -> InspectedStore {
        let stores = self.stores
        if let s = stores.first(where: { $0.name == name }) { return s }
        let names = stores.map(\.name)
        let declared = stores.filter { !$0.isInternal }.map(\.name)
        let known = declared.isEmpty ? "\(config.sourceFile) declares no state stores" : "stores in \(config.sourceFile): \(ConfigSuggest.list(declared))"
        throw InspectionError(.usage, "unknown store '\(name)'\(ConfigSuggest.hint(for: name, in: names)); \(known)")
    }

    /// The bootstrap servers changelogs are read from, or nil when none are configured
    /// (the configuration runs the engine on its embedded cluster).
    public var bootstrapServers: String? {
        let b = (kafkaConfig["bootstrap.servers"] ?? "").trimmingCharacters(in: .whitespaces)
        return b.isEmpty ? nil : b
    }

    // MARK: Snapshots

    /// The directory holding a store's snapshot files.
    public func snapshotDirectory(of store: InspectedStore) -> String {
        "\(stateDir)/\(config.applicationId)/\(store.name)"
    }

    /// The snapshot file of a store partition.
    public func snapshotPath(of store: InspectedStore, partition: Int32) -> String {
        StoreSnapshot.path(stateDir: stateDir, applicationId: config.applicationId, store: store.name, partition: partition)
    }

    /// Partitions that have a snapshot file (`<partition>.snapshot`), ascending.
    /// Temporary files of a snapshot being written are ignored.
    public func snapshotPartitions(of store: InspectedStore) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: snapshotDirectory(of: store))) ?? []
        return names.compactMap { name -> Int32? in
            guard name.hasSuffix(".snapshot") else { return nil }
            return Int32(name.dropLast(".snapshot".count))
        }.sorted()
    }

    /// Reads one snapshot file. Blocking (file read and decompression).
    /// - Throws: ``InspectionError`` (`.io`) naming the file; a corrupt file's message suggests `--from-changelog`.
    public func readSnapshot(of store: InspectedStore, partition: Int32) throws(InspectionError) -> StorePartitionContents {
        let path = snapshotPath(of: store, partition: partition)
        do {
            let snap = try StoreSnapshot.read(from: path)
            let summary = SnapshotSummary(
                path: path, keys: snap.entries.count, rawBytes: snap.rawBytes, compressedBytes: snap.fileBytes,
                changelogOffset: snap.changelogOffset, inputOffsets: snap.inputOffsets)
            return StorePartitionContents(partition: partition, entries: snap.entries, snapshot: summary)
        } catch let error as SnapshotError where error.missing {
            throw InspectionError(.io, "no snapshot of store \(store.name) partition \(partition) at \(path); \(fallbackAdvice)")
        } catch let error as SnapshotError {
            throw InspectionError(.io, "\(error) — the file is unusable; read the store from its changelog instead with --from-changelog\(bootstrapServers == nil ? " --bootstrap-servers HOST:PORT" : "")")
        } catch {
            throw InspectionError(.io, "snapshot \(path): \(error)")
        }
    }

    /// Reads a store from its local snapshots: every partition that has one, or only `partition`.
    /// Blocking.
    /// - Throws: ``InspectionError`` when there is no snapshot, or one is corrupt.
    public func readSnapshots(of store: InspectedStore, partition: Int32? = nil) throws(InspectionError) -> StoreContents {
        let present = snapshotPartitions(of: store)
        let wanted: [Int32]
        if let partition {
            wanted = [partition]
        } else {
            guard !present.isEmpty else {
                throw InspectionError(.io, "no snapshots of store \(store.name) in \(snapshotDirectory(of: store)); \(fallbackAdvice)")
            }
            wanted = present
        }
        var partitions: [StorePartitionContents] = []
        for p in wanted { partitions.append(try readSnapshot(of: store, partition: p)) }
        var notes: [String] = []
        if partition == nil, let last = present.last, present.count < Int(last) + 1 {
            let missing = (0...last).filter { !present.contains($0) }.map(String.init).joined(separator: ", ")
            notes.append("no local snapshot of \(store.name) for partition(s) \(missing) (another instance may own them); --from-changelog reads every partition")
        }
        return StoreContents(store: store, source: .snapshot, partitions: partitions, notes: notes)
    }

    private var fallbackAdvice: String {
        let bootstrap = bootstrapServers == nil ? " --bootstrap-servers HOST:PORT" : ""
        return "check --state-dir (the job's `run --state-dir`, default `state`), or read the changelog with --from-changelog\(bootstrap)"
    }

    // MARK: Changelog

    /// Reads a store by replaying its changelog: every partition, or only `partition`.
    /// - Parameter progress: called from the reading thread from time to time.
    /// - Throws: ``InspectionError``: `.usage` when no Kafka is configured, `.io` when it cannot be read.
    public func readChangelog(of store: InspectedStore, partition: Int32? = nil,
                              progress: (@Sendable (ChangelogProgress) -> Void)? = nil) async throws(InspectionError) -> StoreContents {
        try requireKafka()
        let reader = ChangelogReader(kafkaConfig: kafkaConfig, topic: store.changelogTopic, logger: logger, requestTimeoutMs: requestTimeoutMs)
        do {
            let (partitions, notes) = try await runOnDedicatedThread("changelog-\(store.name)") {
                try reader.read(partitions: partition.map { [$0] }, progress: progress)
            }
            return StoreContents(store: store, source: .changelog, partitions: partitions, notes: notes)
        } catch let error as InspectionError {
            throw error
        } catch {
            throw InspectionError(.io, "reading \(store.changelogTopic): \(error)")
        }
    }

    /// Throws unless a Kafka cluster to read changelogs from is configured.
    public func requireKafka() throws(InspectionError) {
        guard bootstrapServers == nil else { return }
        throw InspectionError(.usage, """
            reading a changelog needs a reachable Kafka cluster, but \(config.sourceFile) has no kafka bootstrap.servers \
            (the engine then uses an embedded cluster that lives only inside its `run` process); \
            pass --bootstrap-servers HOST:PORT of the cluster the job ran against, e.g. one started with `stream-engine dev-broker`
            """)
    }

    // MARK: List

    /// Every store with, per partition, its local snapshot (if any) and its
    /// changelog's end offset (if Kafka is configured and answers).
    /// Problems are recorded in the listing, never thrown.
    public func list() async -> StateListing {
        var listing = StateListing(applicationId: config.applicationId, stateDir: stateDir, bootstrapServers: bootstrapServers)
        let stores = self.stores
        // Ask Kafka once for every changelog's partition count and end offsets.
        var kafka: [String: (count: Int?, ends: [Int32: Int64])] = [:]
        if bootstrapServers != nil {
            let config = kafkaConfig
            let timeout = requestTimeoutMs
            let logger = self.logger
            let topics = stores.map(\.changelogTopic)
            do {
                kafka = try await runOnDedicatedThread("state-list-kafka") {
                    let counts = try TopicMetadata.partitionCounts(config: config, logger: logger, timeoutMs: timeout)
                    let reader = ChangelogReader(kafkaConfig: config, topic: "", logger: logger)
                    let consumer = try KafkaConsumer(config: reader.consumerConfig, logger: logger)
                    defer { consumer.closeBlocking() }
                    var out: [String: (count: Int?, ends: [Int32: Int64])] = [:]
                    for topic in topics {
                        let n = counts[topic]
                        var ends: [Int32: Int64] = [:]
                        for p in 0..<Int32(n ?? 0) { ends[p] = try consumer.watermarks(TopicPartition(topic, p), timeoutMs: timeout).high }
                        out[topic] = (n, ends)
                    }
                    return out
                }
                listing.kafkaReachable = true
            } catch {
                listing.kafkaError = "\(error)"
            }
        }
        for store in stores {
            let fromKafka = kafka[store.changelogTopic]
            let local = snapshotPartitions(of: store)
            let known = Set(local).union((0..<Int32(fromKafka?.count ?? 0)).map { $0 })
            var storeListing = StoreListing(store: store, changelogPartitions: fromKafka?.count, changelogExists: fromKafka.map { $0.count != nil })
            for p in known.sorted() {
                var row = PartitionListing(partition: p, snapshotPath: snapshotPath(of: store, partition: p))
                if local.contains(p) {
                    let inspector = self
                    do {
                        row.snapshot = try await runOnDedicatedThread("snapshot-read") { () throws -> SnapshotSummary? in
                            try inspector.readSnapshot(of: store, partition: p).snapshot
                        }
                    } catch {
                        row.snapshotError = "\(error)"
                    }
                }
                row.changelogEndOffset = fromKafka?.ends[p]
                storeListing.partitions.append(row)
            }
            listing.stores.append(storeListing)
        }
        return listing
    }

    // MARK: Diff

    /// Compares each local snapshot with the latest value of every key on the changelog.
    /// - Throws: ``InspectionError`` when the snapshots or the changelog cannot be read.
    public func diff(store: InspectedStore, progress: (@Sendable (ChangelogProgress) -> Void)? = nil) async throws(InspectionError) -> StoreDiff {
        try requireKafka()
        let inspector = self
        let snapshots: StoreContents
        do {
            snapshots = try await runOnDedicatedThread("snapshot-read") { try inspector.readSnapshots(of: store) }
        } catch let error as InspectionError {
            throw error
        } catch {
            throw InspectionError(.io, "\(error)")
        }
        let changelog = try await readChangelog(of: store, progress: progress)
        return StoreDiff(snapshots: snapshots, changelog: changelog)
    }
}

/// The result of ``StateInspector/list()``.
public struct StateListing: Sendable {
    /// `application.id`.
    public var applicationId: String
    /// The state directory looked at.
    public var stateDir: String
    /// The Kafka cluster asked for end offsets, if one is configured.
    public var bootstrapServers: String?
    /// Whether Kafka answered.
    public var kafkaReachable = false
    /// Why Kafka could not be asked, when it was configured but failed.
    public var kafkaError: String?
    /// Every store.
    public var stores: [StoreListing] = []

    /// Creates an empty listing.
    public init(applicationId: String, stateDir: String, bootstrapServers: String?) {
        self.applicationId = applicationId
        self.stateDir = stateDir
        self.bootstrapServers = bootstrapServers
    }
}

/// One store in a ``StateListing``.
public struct StoreListing: Sendable {
    /// The store.
    public var store: InspectedStore
    /// Partition count of the changelog topic, when Kafka answered and the topic exists.
    public var changelogPartitions: Int?
    /// Whether the changelog topic exists (nil when Kafka was not asked).
    public var changelogExists: Bool?
    /// Partitions known from the snapshot files or from Kafka, ascending.
    public var partitions: [PartitionListing] = []

    /// Creates a store listing.
    public init(store: InspectedStore, changelogPartitions: Int?, changelogExists: Bool?) {
        self.store = store
        self.changelogPartitions = changelogPartitions
        self.changelogExists = changelogExists
    }
}

/// One partition of a store in a ``StateListing``.
public struct PartitionListing: Sendable {
    /// The partition.
    public var partition: Int32
    /// Where its snapshot is (or would be).
    public var snapshotPath: String
    /// The local snapshot, when there is a readable one.
    public var snapshot: SnapshotSummary?
    /// Why the snapshot file exists but cannot be read.
    public var snapshotError: String?
    /// The changelog partition's end offset, when Kafka answered.
    public var changelogEndOffset: Int64?

    /// Changelog records written after the snapshot (what a restore replays on top of it).
    public var lag: Int64? {
        guard let end = changelogEndOffset, let snap = snapshot else { return nil }
        return max(0, end - snap.changelogOffset)
    }

    /// Creates a partition listing.
    public init(partition: Int32, snapshotPath: String) {
        self.partition = partition
        self.snapshotPath = snapshotPath
    }
}

/// Keys whose snapshot value differs from the changelog's latest value.
public struct StoreDiff: Sendable {
    /// How a key differs.
    public enum Status: String, Sendable, Hashable {
        /// In both, with different values (or expiry).
        case changed
        /// In the snapshot, but absent from the changelog (deleted there, or never written).
        case onlyInSnapshot = "only-in-snapshot"
        /// On the changelog, but absent from the snapshot.
        case onlyInChangelog = "only-in-changelog"
    }

    /// One differing key.
    public struct Difference: Sendable, Hashable {
        public var key: String
        public var partition: Int32
        public var status: Status
        public var snapshotValue: JSONValue?
        public var changelogValue: JSONValue?
        /// Offset of the key's last changelog record (tombstones included), if it has one.
        public var changelogOffset: Int64?
        /// Whether that record was written after the snapshot was taken: the
        /// difference is the snapshot's lag (a restore replays it), not an inconsistency.
        public var afterSnapshot: Bool
    }

    /// The store.
    public var store: InspectedStore
    /// Partitions compared (those with a local snapshot).
    public var partitions: [Int32]
    /// Keys compared (the union of both sides, over the compared partitions).
    public var keysCompared: Int
    /// The differences, in key order.
    public var differences: [Difference]
    /// Notes of either reader.
    public var notes: [String]

    /// Differences explained by changelog records written after the snapshot.
    public var explainedByLag: Int { differences.filter(\.afterSnapshot).count }

    /// Compares snapshot contents with changelog contents partition by partition.
    public init(snapshots: StoreContents, changelog: StoreContents) {
        store = snapshots.store
        notes = snapshots.notes + changelog.notes
        var diffs: [Difference] = []
        var compared = 0
        var partitions: [Int32] = []
        for snap in snapshots.partitions {
            partitions.append(snap.partition)
            let log = changelog.partitions.first { $0.partition == snap.partition }
            let logEntries = log?.entries ?? [:]
            let offsets = log?.lastOffsets ?? [:]
            let snapshotOffset = snap.snapshot?.changelogOffset ?? 0
            let keys = Set(snap.entries.keys).union(logEntries.keys)
            compared += keys.count
            for key in keys {
                let a = snap.entries[key]
                let b = logEntries[key]
                if a == b { continue }
                let status: Status = a == nil ? .onlyInChangelog : (b == nil ? .onlyInSnapshot : .changed)
                let offset = offsets[key]
                diffs.append(Difference(
                    key: key, partition: snap.partition, status: status, snapshotValue: a?.value, changelogValue: b?.value,
                    changelogOffset: offset, afterSnapshot: (offset ?? -1) >= snapshotOffset))
            }
        }
        self.partitions = partitions
        keysCompared = compared
        differences = diffs.sorted { $0.key != $1.key ? $0.key < $1.key : $0.partition < $1.partition }
    }
}
