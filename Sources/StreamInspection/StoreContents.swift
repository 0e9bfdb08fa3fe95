import StreamEngine
/// A state store as `topologies.yaml` declares it, with what inspection needs to find its data.
public struct InspectedStore: Sendable, Hashable {
    /// The store's name.
    public var name: String
    /// The pipeline whose step owns it.
    public var pipeline: String
    /// The sub-topology (task kind) that owns it: `<pipeline>` or `<pipeline>.1` after a `rekey`.
    public var subTopology: String
    /// `<application.id>-<store>-changelog`.
    public var changelogTopic: String
    /// The engine's own de-duplication store of a repartition consumer (not declared in the file).
    public var isInternal: Bool

    /// Creates a store description.
    public init(name: String, pipeline: String, subTopology: String, changelogTopic: String, isInternal: Bool) {
        self.name = name
        self.pipeline = pipeline
        self.subTopology = subTopology
        self.changelogTopic = changelogTopic
        self.isInternal = isInternal
    }
}

/// Where inspected store contents come from.
public enum StoreSource: String, Sendable, Hashable {
    /// The local snapshot files under the state directory.
    case snapshot
    /// A replay of the store's changelog topic.
    case changelog
}

/// What a snapshot file holds besides its entries.
public struct SnapshotSummary: Sendable, Hashable {
    /// The file.
    public var path: String
    /// Number of keys.
    public var keys: Int
    /// Size of the serialised entries before compression, in bytes.
    public var rawBytes: Int
    /// Size of the file (zstd-compressed), in bytes.
    public var compressedBytes: Int
    /// The changelog offset the snapshot covers: a restore replays the changelog from here.
    public var changelogOffset: Int64
    /// Committed input offsets (next offset to read) per topic when it was taken.
    public var inputOffsets: [String: Int64]

    /// `rawBytes / compressedBytes`, or nil for an empty file.
    public var ratio: Double? {
        compressedBytes > 0 ? Double(rawBytes) / Double(compressedBytes) : nil
    }

    /// Creates a summary.
    public init(path: String, keys: Int, rawBytes: Int, compressedBytes: Int, changelogOffset: Int64, inputOffsets: [String: Int64]) {
        self.path = path
        self.keys = keys
        self.rawBytes = rawBytes
        self.compressedBytes = compressedBytes
        self.changelogOffset = changelogOffset
        self.inputOffsets = inputOffsets
    }
}

/// One key of a store with its value, as inspection shows it.
public struct StoreItem: Sendable, Hashable {
    /// The key.
    public var key: String
    /// The partition (of the changelog and of the task) the key lives in.
    public var partition: Int32
    /// The value, decoded as JSON.
    public var value: JSONValue
    /// Event time (epoch milliseconds) at which the key expires, for keys with a TTL.
    public var expiresAt: Int64?

    /// Creates an item.
    public init(key: String, partition: Int32, value: JSONValue, expiresAt: Int64?) {
        self.key = key
        self.partition = partition
        self.value = value
        self.expiresAt = expiresAt
    }
}

/// The contents of one partition of a store.
public struct StorePartitionContents: Sendable {
    /// The partition.
    public var partition: Int32
    /// Every entry.
    public var entries: [String: StoreEntry]
    /// The snapshot it was read from (snapshot source).
    public var snapshot: SnapshotSummary?
    /// Changelog records read (changelog source).
    public var changelogRecords: Int?
    /// The changelog's end offset when the replay started (changelog source).
    public var changelogEndOffset: Int64?
    /// Offset of the last changelog record of each key, tombstones included (changelog source).
    public var lastOffsets: [String: Int64]

    /// Creates partition contents.
    public init(partition: Int32, entries: [String: StoreEntry], snapshot: SnapshotSummary? = nil,
                changelogRecords: Int? = nil, changelogEndOffset: Int64? = nil, lastOffsets: [String: Int64] = [:]) {
        self.partition = partition
        self.entries = entries
        self.snapshot = snapshot
        self.changelogRecords = changelogRecords
        self.changelogEndOffset = changelogEndOffset
        self.lastOffsets = lastOffsets
    }
}

/// The contents of a store (some or all of its partitions) read from snapshots
/// or from its changelog, with the queries of `stream-engine state`.
public struct StoreContents: Sendable {
    /// The store.
    public var store: InspectedStore
    /// Where the contents come from.
    public var source: StoreSource
    /// The partitions read, in ascending order.
    public var partitions: [StorePartitionContents]
    /// Things the reader should know (missing partitions, a truncated changelog).
    public var notes: [String]

    /// Creates store contents; partitions are sorted.
    public init(store: InspectedStore, source: StoreSource, partitions: [StorePartitionContents], notes: [String] = []) {
        self.store = store
        self.source = source
        self.partitions = partitions.sorted { $0.partition < $1.partition }
        self.notes = notes
    }

    /// Total number of keys.
    public var count: Int { partitions.reduce(0) { $0 + $1.entries.count } }

    /// Every item holding `key` (normally at most one: a key lives in one partition).
    public func lookup(_ key: String) -> [StoreItem] {
        partitions.compactMap { p in
            p.entries[key].map { StoreItem(key: key, partition: p.partition, value: $0.value, expiresAt: $0.expiresAt) }
        }
    }

    /// Items in ascending key order (then partition), optionally of one partition.
    public func items(partition: Int32? = nil) -> [StoreItem] {
        var out: [StoreItem] = []
        for p in partitions where partition == nil || p.partition == partition {
            for (k, e) in p.entries { out.append(StoreItem(key: k, partition: p.partition, value: e.value, expiresAt: e.expiresAt)) }
        }
        return out.sorted(by: Self.itemOrder)
    }

    /// Items whose key starts with `prefix` and lies within `from...to` (both
    /// bounds inclusive, each optional), in ascending key order, at most `limit`.
    /// - Returns: the items and whether more matched than `limit`.
    public func scan(prefix: String? = nil, from: String? = nil, to: String? = nil, limit: Int? = nil) -> (items: [StoreItem], truncated: Bool) {
        var matched: [StoreItem] = []
        for p in partitions {
            for (k, e) in p.entries {
                if let prefix, !k.hasPrefix(prefix) { continue }
                if let from, k < from { continue }
                if let to, k > to { continue }
                matched.append(StoreItem(key: k, partition: p.partition, value: e.value, expiresAt: e.expiresAt))
            }
        }
        matched.sort(by: Self.itemOrder)
        if let limit, matched.count > limit { return (Array(matched.prefix(limit)), true) }
        return (matched, false)
    }

    static func itemOrder(_ a: StoreItem, _ b: StoreItem) -> Bool {
        a.key != b.key ? a.key < b.key : a.partition < b.partition
    }
}
