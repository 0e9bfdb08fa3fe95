import Synchronization

/// A field name that remembers where it was last found in a flat record (see
/// ``StreamRecord/field(_:)``): the next lookup compares that member first, so records of one
/// source, which mostly share one member order, find the field with one comparison instead of
/// a search.
///
/// One key may be read by several tasks at once (an operator's configuration is shared by the
/// tasks of its pipeline): the position is only a guess, checked before it is used, so it is
/// kept in a relaxed atomic and a stale one costs a search, never a wrong field.
public final class FieldKey: Sendable {
    /// The field's name, or a dotted path into nested objects.
    public let name: String
    /// The name's UTF-8 bytes (compared with a flat record's keys without a copy of `name`).
    private let bytes: [UInt8]
    private let hint = Atomic<Int>(0)

    public init(_ name: String) {
        self.name = name
        bytes = Array(name.utf8)
    }

    /// The position of the field in `f`, trying the remembered one first.
    func index(in f: FlatJSONObject) -> Int? {
        let guess = hint.load(ordering: .relaxed)
        var h = guess
        let found = bytes.withUnsafeBufferPointer { f.index(ofKeyBytes: $0, hint: &h) }
        if found != nil && h != guess { hint.store(h, ordering: .relaxed) }
        return found
    }
}

extension StreamRecord {
    /// ``field(_:)`` of `key`'s name, searching a flat record from where the key was last found.
    public func field(_ key: FieldKey) -> JSONValue? {
        switch content {
        case .object(let o): return o.lookup(key.name)
        case .flat(let f): return key.index(in: f).map { f.value(at: $0) }
        }
    }

    /// The number the field holds; `nil` when it is absent or holds another type (as
    /// ``field(_:)-(FieldKey)``). A flat record's is read from its index, with no ``JSONValue`` made.
    public func number(_ key: FieldKey) -> Double? {
        switch content {
        case .object(let o): return o.lookup(key.name)?.doubleValue
        case .flat(let f): return key.index(in: f).flatMap { f.number(at: $0) }
        }
    }

    /// The string the field holds; `nil` when it is absent or holds another type (as
    /// ``field(_:)-(FieldKey)``). A flat record's is read from its index, with no ``JSONValue`` made.
    public func string(_ key: FieldKey) -> String? {
        switch content {
        case .object(let o): return o.lookup(key.name)?.stringValue
        case .flat(let f): return key.index(in: f).flatMap { f.string(at: $0) }
        }
    }
}
