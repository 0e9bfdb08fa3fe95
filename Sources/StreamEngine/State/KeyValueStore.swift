/// One entry of a state store: a JSON value and, for keys with a TTL, the
/// event time at which it expires.
///
/// Held compactly: one byte array with the expiry (a flag byte, then 8 bytes
/// little-endian when there is one) followed by the value in ``JSONCompact``
/// encoding. ``value`` decodes on every access and encodes on every set, so read
/// it once per use. Equality and hashing are those of the decoded value and expiry.
public struct StoreEntry: Sendable, Hashable {
    /// Expiry flag (+ 8 bytes) and the compact value.
    private(set) var storage: [UInt8]

    /// Where the compact value starts in `storage`.
    @inline(__always)
    private var valueStart: Int { storage.first == 1 ? 9 : 1 }

    public init(value: JSONValue, expiresAt: Int64? = nil) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity((expiresAt == nil ? 1 : 9) + JSONCompact.encodedSize(value))
        Self.appendExpiry(expiresAt, to: &bytes)
        JSONCompact.encode(value, into: &bytes)
        storage = bytes
    }

    /// An entry of an aggregate's native state (its compact form written by the state itself).
    init(state: any AggregateState, expiresAt: Int64?) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        Self.appendExpiry(expiresAt, to: &bytes)
        state.encodeCompact(into: &bytes)
        // The entry stays as long as its key is unchanged, a million of them in a large store:
        // it holds its bytes, not the room reserved for writing them (a one-category
        // `purchase_stats` state is ~70 bytes; 128 of room cost ~55 MiB per million keys).
        storage = [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, initialized in
            bytes.withUnsafeBufferPointer { _ = buffer.initialize(fromContentsOf: $0) }
            initialized = bytes.count
        }
    }

    /// An entry from its storage bytes as ``storage`` holds them; `nil` when they are not
    /// well-formed (snapshot reading).
    init?(storage bytes: [UInt8]) {
        guard bytes.withUnsafeBytes(Self.isWellFormed) else { return nil }
        storage = bytes
    }

    /// An entry from a copy of storage bytes as ``storage`` holds them; `nil` when they are
    /// not well-formed (a changelog record's frame).
    init?(checkedStorage bytes: UnsafeRawBufferPointer) {
        guard Self.isWellFormed(bytes) else { return nil }
        storage = [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, initialized in
            UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            initialized = bytes.count
        }
    }

    /// Whether `bytes` are an entry's storage: the flag, the expiry when flagged, and exactly
    /// one compact value.
    private static func isWellFormed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let first = bytes.first, first <= 1 else { return false }
        let start = first == 1 ? 9 : 1
        guard bytes.count > start else { return false }
        return JSONCompact.validatedLength(of: UnsafeRawBufferPointer(rebasing: bytes[start...])) == bytes.count - start
    }

    /// An entry from a compact value already encoded (`compactValue`), with an expiry.
    init(compactValue: UnsafeRawBufferPointer, expiresAt: Int64?) {
        let header = expiresAt == nil ? 1 : 9
        storage = [UInt8](unsafeUninitializedCapacity: header + compactValue.count) { buffer, initialized in
            let base = buffer.baseAddress!
            if let expiresAt {
                base[0] = 1
                let v = UInt64(bitPattern: expiresAt)
                for b in 0..<8 { base[1 + b] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(b))) }
            } else {
                base[0] = 0
            }
            if let src = compactValue.baseAddress, compactValue.count > 0 {
                UnsafeMutableRawPointer(base + header).copyMemory(from: src, byteCount: compactValue.count)
            }
            initialized = header + compactValue.count
        }
    }

    /// The value (decoded from its compact form on every access).
    public var value: JSONValue {
        get {
            let start = valueStart
            return storage.withUnsafeBytes { JSONCompact.decode(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        }
        set { self = StoreEntry(value: newValue, expiresAt: expiresAt) }
    }

    /// The event time after which the key is removed; `nil` for no TTL.
    public var expiresAt: Int64? {
        get {
            guard storage.first == 1 else { return nil }
            var v: UInt64 = 0
            for b in 0..<8 { v |= UInt64(storage[1 + b]) << (8 * UInt64(b)) }
            return Int64(bitPattern: v)
        }
        set {
            let start = valueStart
            self = storage.withUnsafeBytes { StoreEntry(compactValue: UnsafeRawBufferPointer(rebasing: $0[start...]), expiresAt: newValue) }
        }
    }

    /// Bytes held for the entry (storage only, without the array's header).
    public var storedBytes: Int { storage.count }

    /// The value's compact bytes (``JSONCompact``), as stored, without the expiry.
    public var compactValue: ArraySlice<UInt8> { storage[valueStart...] }

    public static func == (lhs: StoreEntry, rhs: StoreEntry) -> Bool {
        lhs.expiresAt == rhs.expiresAt && lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(value)
        hasher.combine(expiresAt)
    }

    private static func appendExpiry(_ expiresAt: Int64?, to bytes: inout [UInt8]) {
        guard let expiresAt else {
            bytes.append(0)
            return
        }
        bytes.append(1)
        let v = UInt64(bitPattern: expiresAt)
        for b in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(b)))) }
    }
}

/// An in-memory key-value state store of one task (one store, one partition).
///
/// Owned by exactly one task actor and never shared. Writes are cached: at a
/// commit the task takes the changed keys (`takeChanges`) and writes one
/// changelog record per changed key, as Kafka Streams' record cache does.
///
/// Entries are held compactly (``StoreEntry``). Values written recently stay
/// decoded in a small cache (at most ``decodedCacheLimit`` keys), so a key updated
/// by many records between two commits is encoded once per commit, not once per
/// record; reads of the whole store, `takeChanges`, `count` and `expire` flush it
/// first (the changed values encoded into the store). A flush keeps the values
/// decoded, so a key updated again after a commit is not decoded again; the
/// cache is emptied when a new key finds it full.
public final class KeyValueStore {
    /// The store's name (from `topologies.yaml`).
    public let name: String
    /// The partition (of the store's changelog and of the task's input).
    public let partition: Int32
    private var compact: [String: StoreEntry] = [:]
    /// Keys changed since the last `takeChanges`, besides the dirty ones in `decoded` (`flush`
    /// adds those here, so `put` and `update` hash a key once less).
    private var changed: Set<String> = []
    /// A value kept decoded, with its expiry; dirty: changed since the last flush (`compact`
    /// holds an older value), else `compact` holds this one.
    private struct Decoded {
        /// JSON, or the native state of the store's aggregator (see ``NativeStateAggregator``).
        var value: StoredState
        var expiresAt: Int64?
        var dirty = true
        /// The caller's mark of the key (see `update(_:expiresAt:initial:mark:_:)`), 0 when none.
        var mark: UInt64 = 0
    }

    /// Values written recently, decoded (see `Decoded`).
    private var decoded: [StoreKey: Decoded] = [:]
    /// How many of `decoded` are dirty.
    private var dirtyCount = 0

    /// No key expires before this event time (a lower bound: lowered by every expiry set,
    /// raised only by `expire`'s scan), so a commit of a store without TTLs, or whose keys
    /// expire later, does not walk every key.
    private var earliestExpiry = Int64.max

    /// How many times keys' marks were lost (see `update(_:expiresAt:initial:mark:_:)`): a
    /// caller that saw no change of it knows that no key got a second mark.
    public private(set) var marksLost = 0

    /// The most keys kept decoded before they are encoded into the store.
    public static let decodedCacheLimit = 4096

    public init(name: String, partition: Int32) {
        self.name = name
        self.partition = partition
    }

    /// Every entry, compact (the decoded cache flushed).
    var entries: [String: StoreEntry] {
        flush()
        return compact
    }

    /// Encodes the changed values of the decoded cache into the store; they stay decoded.
    private func flush() {
        guard dirtyCount > 0 else { return }
        var i = decoded.startIndex
        while i != decoded.endIndex {
            if decoded.values[i].dirty {
                let key = decoded.keys[i].string
                let d = decoded.values[i]
                compact[key] = d.value.entry(expiresAt: d.expiresAt)
                changed.insert(key)
                decoded.values[i].dirty = false
            }
            i = decoded.index(after: i)
        }
        dirtyCount = 0
    }

    /// Empties the decoded cache (its changed values encoded into the store first).
    private func evict() {
        flush()
        if !decoded.isEmpty { marksLost += 1 }
        decoded.removeAll(keepingCapacity: true)
    }

    /// Number of keys.
    public var count: Int {
        flush()
        return compact.count
    }

    /// The key's value.
    public func get(_ key: String) -> JSONValue? {
        if let d = decoded[StoreKey(key)] { return d.value.json }
        return compact[key]?.value
    }

    /// The key's value as the store holds it (an aggregate's native state is not made JSON).
    func stored(_ key: String) -> StoredState? {
        if let d = decoded[StoreKey(key)] { return d.value }
        return compact[key].map { .json($0.value) }
    }

    /// The key's entry (value and expiry).
    public func entry(_ key: String) -> StoreEntry? {
        if let d = decoded[StoreKey(key)] { return d.value.entry(expiresAt: d.expiresAt) }
        return compact[key]
    }

    /// Sets a key; `expiresAt` is an event time after which the key is removed.
    public func put(_ key: String, _ value: JSONValue, expiresAt: Int64? = nil) {
        if decoded.count >= Self.decodedCacheLimit && decoded[StoreKey(key)] == nil { evict() }
        let old = decoded.updateValue(Decoded(value: .json(value), expiresAt: expiresAt), forKey: StoreKey(key))
        if old?.dirty != true { dirtyCount += 1 }
        if old != nil { marksLost += 1 }
        if let expiresAt, expiresAt < earliestExpiry { earliestExpiry = expiresAt }
    }

    /// Changes a key's value in place: `body` gets the current value (`initial()` for a
    /// missing key) and changes it; the key then expires at `expiresAt`. The value is held
    /// uniquely while `body` runs, so a change of one member does not copy the rest.
    /// `body` must throw before it changes anything: a throw leaves the key as it was.
    /// - Returns: what `body` returns.
    @discardableResult
    public func update<R, E: Error>(_ key: String, expiresAt: Int64? = nil, initial: () -> JSONValue, _ body: (inout JSONValue) throws(E) -> R) throws(E) -> R {
        try update(key, expiresAt: expiresAt, initial: initial, mark: { _ in }, body)
    }

    /// ``update(_:expiresAt:initial:_:)``, then `mark` reads and sets the key's mark: a number
    /// the caller keeps with the key in the same lookup, so that it needs no map of its own
    /// keyed by the same keys (the task's changed keys, in `StreamTask.DirtyKeys`). A mark is
    /// 0 for a new key and is lost (0 again) whenever the key's value is set or leaves the
    /// decoded cache (`put`, `delete`, `restore`, a full cache emptied): the caller must
    /// expect that. Not called when `body` throws.
    @discardableResult
    public func update<R, E: Error>(
        _ key: String, expiresAt: Int64? = nil, initial: () -> JSONValue, mark: (inout UInt64) -> Void, _ body: (inout JSONValue) throws(E) -> R
    ) throws(E) -> R {
        try update(key, expiresAt: expiresAt, initial: { .json(initial()) }, mark: mark) { (state: inout StoredState) throws(E) -> R in
            var value = state.takeJSON()
            defer { state = .json(value) }
            return try body(&value)
        }
    }

    /// ``update(_:expiresAt:initial:mark:_:)`` of the value as the store holds it: `body` may
    /// keep it as an aggregate's native state (which the store makes JSON when it writes it out).
    @discardableResult
    func update<R, E: Error>(
        _ key: String, expiresAt: Int64? = nil, initial: () -> StoredState, mark: (inout UInt64) -> Void, _ body: (inout StoredState) throws(E) -> R
    ) throws(E) -> R {
        if let expiresAt, expiresAt < earliestExpiry { earliestExpiry = expiresAt }
        let result: R
        if let i = decoded.index(forKey: StoreKey(key)) {
            result = try body(&decoded.values[i].value)
            decoded.values[i].expiresAt = expiresAt
            if !decoded.values[i].dirty {
                decoded.values[i].dirty = true
                dirtyCount += 1
            }
            mark(&decoded.values[i].mark)
        } else {
            var value = compact[key].map { StoredState.json($0.value) } ?? initial()
            result = try body(&value)
            if decoded.count >= Self.decodedCacheLimit { evict() }
            var m: UInt64 = 0
            mark(&m)
            decoded[StoreKey(key)] = Decoded(value: value, expiresAt: expiresAt, mark: m)
            dirtyCount += 1
        }
        return result
    }

    /// Removes a key.
    public func delete(_ key: String) {
        let removed = decoded.removeValue(forKey: StoreKey(key))
        if removed?.dirty == true { dirtyCount -= 1 }
        if removed != nil { marksLost += 1 }
        let wasDecoded = removed?.dirty == true
        if compact.removeValue(forKey: key) != nil || wasDecoded { changed.insert(key) }
    }

    /// Removes keys whose TTL ran out at `streamTime`; returns them.
    @discardableResult
    public func expire(streamTime: Int64) -> [String] {
        guard streamTime >= earliestExpiry else { return [] }
        flush()
        var gone: [String] = []
        var earliest = Int64.max
        for (k, e) in compact {
            guard let at = e.expiresAt else { continue }
            if at <= streamTime { gone.append(k) } else if at < earliest { earliest = at }
        }
        for k in gone { delete(k) }
        earliestExpiry = earliest
        return gone
    }

    /// All keys in ascending order.
    public func sortedKeys() -> [String] { entries.keys.sorted() }

    /// Every entry (unordered).
    public var allEntries: [String: StoreEntry] { entries }

    /// The keys changed since the last call, with their current entry (`nil` = deleted).
    func takeChanges() -> [(key: String, entry: StoreEntry?)] {
        flush()
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.map { ($0, compact[$0]) }
    }

    var hasChanges: Bool { !changed.isEmpty || dirtyCount > 0 }

    /// Applies a restored record without marking it changed.
    func restore(_ key: String, _ entry: StoreEntry?) {
        // A change not yet flushed stays a change (its key goes out with the next `takeChanges`).
        if let removed = decoded.removeValue(forKey: StoreKey(key)) {
            marksLost += 1
            if removed.dirty {
                dirtyCount -= 1
                changed.insert(key)
            }
        }
        compact[key] = entry
        if let at = entry?.expiresAt, at < earliestExpiry { earliestExpiry = at }
    }

    /// Makes room for `count` keys in all (a restore that knows how many it will hold).
    func reserveCapacity(_ count: Int) {
        compact.reserveCapacity(count)
    }

    func replaceAll(_ newEntries: [String: StoreEntry]) {
        if !decoded.isEmpty { marksLost += 1 }
        decoded.removeAll()
        dirtyCount = 0
        compact = newEntries
        changed.removeAll()
        earliestExpiry = newEntries.values.reduce(Int64.max) { min($0, $1.expiresAt ?? .max) }
    }
}
