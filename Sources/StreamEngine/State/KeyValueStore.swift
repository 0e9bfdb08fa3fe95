/// One entry of a state store: a JSON value and, for keys with a TTL, the
/// event time at which it expires.
public struct StoreEntry: Sendable, Hashable {
    public var value: JSONValue
    public var expiresAt: Int64?
    public init(value: JSONValue, expiresAt: Int64? = nil) {
        self.value = value
        self.expiresAt = expiresAt
    }
}

/// An in-memory key-value state store of one task (one store, one partition).
///
/// Owned by exactly one task actor and never shared. Writes are cached: at a
/// commit the task takes the changed keys (`takeChanges`) and writes one
/// changelog record per changed key, as Kafka Streams' record cache does.
public final class KeyValueStore {
    /// The store's name (from `topologies.yaml`).
    public let name: String
    /// The partition (of the store's changelog and of the task's input).
    public let partition: Int32
    private(set) var entries: [String: StoreEntry] = [:]
    private var changed: Set<String> = []

    public init(name: String, partition: Int32) {
        self.name = name
        self.partition = partition
    }

    /// Number of keys.
    public var count: Int { entries.count }

    public func get(_ key: String) -> JSONValue? { entries[key]?.value }

    public func entry(_ key: String) -> StoreEntry? { entries[key] }

    /// Sets a key; `expiresAt` is an event time after which the key is removed.
    public func put(_ key: String, _ value: JSONValue, expiresAt: Int64? = nil) {
        entries[key] = StoreEntry(value: value, expiresAt: expiresAt)
        changed.insert(key)
    }

    public func delete(_ key: String) {
        if entries.removeValue(forKey: key) != nil { changed.insert(key) }
    }

    /// Removes keys whose TTL ran out at `streamTime`; returns them.
    @discardableResult
    public func expire(streamTime: Int64) -> [String] {
        var gone: [String] = []
        for (k, e) in entries where (e.expiresAt ?? .max) <= streamTime { gone.append(k) }
        for k in gone { delete(k) }
        return gone
    }

    /// All keys in ascending order.
    public func sortedKeys() -> [String] { entries.keys.sorted() }

    /// Every entry (unordered).
    public var allEntries: [String: StoreEntry] { entries }

    /// The keys changed since the last call, with their current entry (`nil` = deleted).
    func takeChanges() -> [(key: String, entry: StoreEntry?)] {
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.map { ($0, entries[$0]) }
    }

    var hasChanges: Bool { !changed.isEmpty }

    /// Applies a restored record without marking it changed.
    func restore(_ key: String, _ entry: StoreEntry?) {
        entries[key] = entry
    }

    func replaceAll(_ newEntries: [String: StoreEntry]) {
        entries = newEntries
        changed.removeAll()
    }
}
