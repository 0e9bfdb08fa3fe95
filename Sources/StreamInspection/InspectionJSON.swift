import StreamEngine

// The JSON documents of `stream-engine state … --format json`, as `Encodable` types: one
// type per document, fields in output order, `OrNull` where a field is always present but
// may be null. Field names are part of the command's interface: add fields, never rename
// or remove them.

/// Encodes a document as a ``JSONValue`` (members in declaration order), which the CLI
/// prints with the engine's serializer like every other JSON it writes.
public enum InspectionDocument {
    public static func jsonValue(_ document: some Encodable) -> JSONValue {
        do {
            return try JSONValueEncoder().encode(document)
        } catch {
            // Only finite numbers, strings and JSON values go in: encoding cannot fail.
            preconditionFailure("encoding an inspection document failed: \(error)")
        }
    }
}

/// `{"key", "partition", "value", "expiresAt"}` (`expiresAt` null without a TTL).
public struct StoreItemDocument: Encodable, Sendable {
    public var key: String
    public var partition: Int32
    public var value: JSONValue
    public var expiresAt: OrNull<Int64>

    public init(_ item: StoreItem) {
        key = item.key
        partition = item.partition
        value = item.value
        expiresAt = OrNull(item.expiresAt)
    }
}

/// `{"path", "keys", "rawBytes", "compressedBytes", "ratio", "changelogOffset", "inputOffsets"}`.
public struct SnapshotDocument: Encodable, Sendable {
    public var path: String
    public var keys: Int
    public var rawBytes: Int
    public var compressedBytes: Int
    /// Raw over compressed size, to two decimals.
    public var ratio: OrNull<Double>
    public var changelogOffset: Int64
    /// Topics in name order.
    public var inputOffsets: JSONValue

    public init(_ s: SnapshotSummary) {
        path = s.path
        keys = s.keys
        rawBytes = s.rawBytes
        compressedBytes = s.compressedBytes
        ratio = OrNull(s.ratio.map { ($0 * 100).rounded() / 100 })
        changelogOffset = s.changelogOffset
        inputOffsets = .object(JSONObject(s.inputOffsets.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.number(Double($0.value))) }))
    }
}

/// `state get`: `{"store", "source", "changelogTopic", "key", "found", "partition", "value", "expiresAt", "notes"}`;
/// `partition`, `value` and `expiresAt` are null when the key is not found.
public struct StateGetDocument: Encodable, Sendable {
    public var store: String
    public var source: String
    public var changelogTopic: String
    public var key: String
    public var found: Bool
    public var partition: OrNull<Int32>
    public var value: JSONValue
    public var expiresAt: OrNull<Int64>
    public var notes: [String]
}

/// `state scan` / `state dump`: `{"store", "source", "changelogTopic", "partitions", "count", "truncated", "entries", "notes"}`.
public struct StateEntriesDocument: Encodable, Sendable {
    public var store: String
    public var source: String
    public var changelogTopic: String
    public var partitions: [Int32]
    public var count: Int
    public var truncated: Bool
    public var entries: [StoreItemDocument]
    public var notes: [String]
}

/// `state count`: `{"store", "source", "changelogTopic", "count", "partitions": [{"partition", "count"}], "notes"}`.
public struct StateCountDocument: Encodable, Sendable {
    public struct Partition: Encodable, Sendable {
        public var partition: Int32
        public var count: Int
    }

    public var store: String
    public var source: String
    public var changelogTopic: String
    public var count: Int
    public var partitions: [Partition]
    public var notes: [String]
}

extension StoreContents {
    /// `state get` of `key`.
    public func getDocument(key: String) -> JSONValue {
        let match = lookup(key).first
        return InspectionDocument.jsonValue(StateGetDocument(
            store: store.name, source: source.rawValue, changelogTopic: store.changelogTopic, key: key, found: match != nil,
            partition: OrNull(match?.partition), value: match?.value ?? .null, expiresAt: OrNull(match?.expiresAt), notes: notes))
    }

    /// `state scan` / `state dump` of `items`.
    public func entriesDocument(_ items: [StoreItem], truncated: Bool) -> JSONValue {
        InspectionDocument.jsonValue(StateEntriesDocument(
            store: store.name, source: source.rawValue, changelogTopic: store.changelogTopic, partitions: partitions.map(\.partition),
            count: items.count, truncated: truncated, entries: items.map(StoreItemDocument.init), notes: notes))
    }

    /// `state count`.
    public var countDocument: JSONValue {
        InspectionDocument.jsonValue(StateCountDocument(
            store: store.name, source: source.rawValue, changelogTopic: store.changelogTopic, count: count,
            partitions: partitions.map { .init(partition: $0.partition, count: $0.entries.count) }, notes: notes))
    }
}

/// `state list`: `{"applicationId", "stateDir", "kafka": {"bootstrapServers", "reachable", "error"},
/// "stores": [{"store", "pipeline", "subTopology", "internal", "changelogTopic", "changelogPartitions",
/// "partitions": [{"partition", "snapshotPath", "snapshot", "snapshotError", "changelogEndOffset", "lag"}]}]}`.
public struct StateListDocument: Encodable, Sendable {
    public struct Kafka: Encodable, Sendable {
        public var bootstrapServers: OrNull<String>
        public var reachable: Bool
        public var error: OrNull<String>
    }

    public struct Store: Encodable, Sendable {
        public var store: String
        public var pipeline: String
        public var subTopology: String
        public var `internal`: Bool
        public var changelogTopic: String
        public var changelogPartitions: OrNull<Int>
        public var partitions: [Partition]
    }

    public struct Partition: Encodable, Sendable {
        public var partition: Int32
        public var snapshotPath: String
        public var snapshot: OrNull<SnapshotDocument>
        public var snapshotError: OrNull<String>
        public var changelogEndOffset: OrNull<Int64>
        public var lag: OrNull<Int64>
    }

    public var applicationId: String
    public var stateDir: String
    public var kafka: Kafka
    public var stores: [Store]

    public init(_ listing: StateListing) {
        applicationId = listing.applicationId
        stateDir = listing.stateDir
        kafka = Kafka(bootstrapServers: OrNull(listing.bootstrapServers), reachable: listing.kafkaReachable, error: OrNull(listing.kafkaError))
        stores = listing.stores.map { s in
            Store(
                store: s.store.name, pipeline: s.store.pipeline, subTopology: s.store.subTopology, internal: s.store.isInternal,
                changelogTopic: s.store.changelogTopic, changelogPartitions: OrNull(s.changelogPartitions),
                partitions: s.partitions.map { p in
                    Partition(
                        partition: p.partition, snapshotPath: p.snapshotPath, snapshot: OrNull(p.snapshot.map(SnapshotDocument.init)),
                        snapshotError: OrNull(p.snapshotError), changelogEndOffset: OrNull(p.changelogEndOffset), lag: OrNull(p.lag))
                })
        }
    }
}

extension StateListing {
    /// The `state list` document.
    public var jsonValue: JSONValue { InspectionDocument.jsonValue(StateListDocument(self)) }
}

/// `state diff`: `{"store", "changelogTopic", "partitions", "keysCompared", "differenceCount", "explainedByLag",
/// "differences": [{"key", "partition", "status", "snapshotValue", "changelogValue", "changelogOffset", "afterSnapshot"}], "notes"}`.
public struct StateDiffDocument: Encodable, Sendable {
    public struct Difference: Encodable, Sendable {
        public var key: String
        public var partition: Int32
        public var status: String
        public var snapshotValue: JSONValue
        public var changelogValue: JSONValue
        public var changelogOffset: OrNull<Int64>
        public var afterSnapshot: Bool
    }

    public var store: String
    public var changelogTopic: String
    public var partitions: [Int32]
    public var keysCompared: Int
    public var differenceCount: Int
    public var explainedByLag: Int
    public var differences: [Difference]
    public var notes: [String]

    public init(_ diff: StoreDiff) {
        store = diff.store.name
        changelogTopic = diff.store.changelogTopic
        partitions = diff.partitions
        keysCompared = diff.keysCompared
        differenceCount = diff.differences.count
        explainedByLag = diff.explainedByLag
        differences = diff.differences.map { d in
            Difference(
                key: d.key, partition: d.partition, status: d.status.rawValue, snapshotValue: d.snapshotValue ?? .null,
                changelogValue: d.changelogValue ?? .null, changelogOffset: OrNull(d.changelogOffset), afterSnapshot: d.afterSnapshot)
        }
        notes = diff.notes
    }
}

extension StoreDiff {
    /// The `state diff` document.
    public var jsonValue: JSONValue { InspectionDocument.jsonValue(StateDiffDocument(self)) }
}
