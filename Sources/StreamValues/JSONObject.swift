// An insertion-ordered small map from String keys to JSONValue.

/// The members of a JSON object: unique `String` keys mapped to ``JSONValue``s, kept in
/// insertion order.
///
/// Stored as a flat array of pairs with linear lookup, which beats hashing for the small
/// objects (up to a few dozen keys) typical of records. Iteration and serialisation follow
/// insertion order; setting an existing key keeps its position. Equality and hashing ignore
/// the order: `{"a":1,"b":2} == {"b":2,"a":1}`.
public struct JSONObject: Sendable, Hashable, Sequence {
    /// One member: a key and its value.
    public typealias Element = (key: String, value: JSONValue)

    /// Storage for one member (a struct rather than a tuple: cheaper to copy and move).
    @usableFromInline
    internal struct Member: Sendable {
        @usableFromInline var key: String
        @usableFromInline var value: JSONValue

        @inlinable init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The members in insertion order; keys are unique.
    @usableFromInline
    internal var members: [Member]

    /// Creates an empty object.
    public init() { members = [] }

    /// Creates an object from key-value pairs, in order. A repeated key keeps its first
    /// position and its last value.
    public init(_ elements: some Sequence<Element>) {
        members = []
        members.reserveCapacity(elements.underestimatedCount)
        for (key, value) in elements { self[key] = value }
    }

    /// Wraps members whose keys the caller guarantees to be unique (used by the parser).
    internal init(uniqueMembers: [Member]) { members = uniqueMembers }

    /// The number of members.
    public var count: Int { members.count }

    /// Whether the object has no members.
    public var isEmpty: Bool { members.isEmpty }

    /// The keys, in insertion order.
    public var keys: [String] { members.map(\.key) }

    /// The values, in insertion order of their keys.
    public var values: [JSONValue] { members.map(\.value) }

    /// Whether `key` is present (even when its value is `null`).
    public func contains(key: String) -> Bool { index(ofKey: key) != nil }

    /// The value for `key`, or `nil` when absent. Setting a value replaces an existing member
    /// in place or appends a new one; setting `nil` removes the member.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index(ofKey: key) else { return nil }
            return members[i].value
        }
        set {
            if let newValue {
                updateValue(newValue, forKey: key)
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Sets the value for `key`, keeping the member's position when it already exists.
    /// - Returns: the previous value, or `nil` if the key was new.
    @discardableResult
    public mutating func updateValue(_ value: JSONValue, forKey key: String) -> JSONValue? {
        if let i = index(ofKey: key) {
            let old = members[i].value
            members[i].value = value
            return old
        }
        members.append(Member(key: key, value: value))
        return nil
    }

    /// Removes the member for `key`, keeping the order of the others.
    /// - Returns: the removed value, or `nil` if the key was absent.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = index(ofKey: key) else { return nil }
        return members.remove(at: i).value
    }

    /// Changes the value for `key` in place (a new member with `defaultValue` at the end first,
    /// when the key is absent): no copy of the value while `body` changes it.
    @inlinable
    public mutating func modifyValue<R, E: Error>(
        forKey key: String, default defaultValue: @autoclosure () -> JSONValue, _ body: (inout JSONValue) throws(E) -> R
    ) throws(E) -> R {
        let i: Int
        if let j = index(ofKey: key) {
            i = j
        } else {
            members.append(Member(key: key, value: defaultValue()))
            i = members.count - 1
        }
        return try body(&members[i].value)
    }

    /// Creates an object from members whose keys the caller knows to be distinct (another
    /// object's keys, a fixed list): no search for a repeated key per member, unlike
    /// ``init(_:)``. Repeated keys are a programming error, checked in debug builds only.
    public init(distinctKeys elements: [(String, JSONValue)]) {
        assert(Set(elements.map(\.0)).count == elements.count, "repeated keys in \(elements.map(\.0))")
        self.init(uniqueMembers: elements.map { Member(key: $0.0, value: $0.1) })
    }

    /// The value of the member at `index` (in insertion order).
    /// - Precondition: `index` is below ``count``.
    @inlinable
    public func value(at index: Int) -> JSONValue { members[index].value }

    /// Changes the value of the member at `index` (in insertion order) in place.
    /// - Precondition: `index` is below ``count``.
    @inlinable
    public mutating func modifyValue<R, E: Error>(at index: Int, _ body: (inout JSONValue) throws(E) -> R) throws(E) -> R {
        try body(&members[index].value)
    }

    /// Whether the members' keys are exactly `keys`, in this order (no array is made).
    @inlinable
    public func hasKeys(_ keys: [String]) -> Bool {
        guard members.count == keys.count else { return false }
        return members.withUnsafeBufferPointer { m in
            keys.withUnsafeBufferPointer { k in
                for i in m.indices where m[i].key != k[i] { return false }
                return true
            }
        }
    }

    /// Reserves storage for `minimumCapacity` members.
    public mutating func reserveCapacity(_ minimumCapacity: Int) {
        members.reserveCapacity(minimumCapacity)
    }

    /// Iterates the members of a ``JSONObject`` in insertion order.
    public struct Iterator: IteratorProtocol {
        @usableFromInline
        internal var base: IndexingIterator<[Member]>

        /// The next member, or `nil` at the end.
        @inlinable
        public mutating func next() -> Element? {
            guard let member = base.next() else { return nil }
            return (key: member.key, value: member.value)
        }
    }

    /// Iterates the members in insertion order.
    public func makeIterator() -> Iterator { Iterator(base: members.makeIterator()) }

    /// The number of members.
    public var underestimatedCount: Int { members.count }

    /// The value for `key`, looked for first at position `hint` (where the key was in
    /// an earlier object of the same shape: records of one source usually list their fields
    /// in one order), then among all members; `hint` becomes the position it was found at.
    @inlinable
    public func value(forKey key: String, hint: inout Int) -> JSONValue? {
        // The length first, as `index(ofKey:)` compares: a key finds the same member whatever
        // the hint (`String`'s `==` alone would also match canonical equivalents of other lengths).
        if hint >= 0 && hint < members.count && members[hint].key.utf8.count == key.utf8.count && members[hint].key == key { return members[hint].value }
        guard let i = index(ofKey: key) else { return nil }
        hint = i
        return members[i].value
    }

    @inline(__always) @usableFromInline
    internal func index(ofKey key: String) -> Int? {
        // Lengths first: `==` of two different strings is a call into the runtime, and most
        // keys a lookup passes differ in length from the one it looks for.
        let length = key.utf8.count
        return members.withUnsafeBufferPointer { buffer in
            for i in buffer.indices where buffer[i].key.utf8.count == length && buffer[i].key == key { return i }
            return nil
        }
    }

    /// Order-insensitive equality: same keys, each mapped to equal values.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        // Fast path: same order.
        var sameOrder = true
        for i in lhs.members.indices {
            if lhs.members[i].key != rhs.members[i].key {
                sameOrder = false
                break
            }
            if lhs.members[i].value != rhs.members[i].value { return false }
        }
        if sameOrder { return true }
        for (key, value) in lhs {
            guard let other = rhs[key], other == value else { return false }
        }
        return true
    }

    /// Order-insensitive hashing, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(members.count)
        var combined = 0
        for member in members {
            var h = Hasher()
            h.combine(member.key)
            h.combine(member.value)
            combined = combined &+ h.finalize()
        }
        hasher.combine(combined)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Creates an object with the literal's members in order. A repeated key keeps its first
    /// position and its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        members = []
        members.reserveCapacity(elements.count)
        for (key, value) in elements { self[key] = value }
    }
}

extension JSONObject: CustomStringConvertible {
    /// The compact serialised JSON text of the object.
    public var description: String { JSONValue.object(self).serializedString() }
}
