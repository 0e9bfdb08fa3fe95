// The record value type of the engine: an immutable-by-default JSON tree.

/// A JSON value, the payload type of every record flowing through the engine.
///
/// Numbers are stored as `Double` (like JavaScript), so integers are exact up to ±2^53.
/// Objects keep their members in insertion order (see ``JSONObject``); equality and hashing
/// of objects ignore that order.
///
/// Parse with ``parse(_:)-(UnsafeRawBufferPointer)`` and serialise with ``serialized()``.
/// In tests, values can be written as literals:
///
/// ```swift
/// let v: JSONValue = ["id": "o-1", "qty": 3, "tags": ["a", "b"], "note": nil]
/// ```
public enum JSONValue: Sendable, Hashable {
    /// The JSON `null` literal.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A JSON number. Always finite when produced by the parser.
    case number(Double)
    /// A JSON string.
    case string(String)
    /// A JSON array.
    case array([JSONValue])
    /// A JSON object with insertion-ordered, unique keys.
    case object(JSONObject)
}

// MARK: - Accessors

extension JSONValue {
    /// The member named `key` when this value is an object holding that key; otherwise `nil`.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index` when this value is an array and `index` is in range; otherwise `nil`.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let array) = self, array.indices.contains(index) else { return nil }
        return array[index]
    }

    /// The payload of a `.string`; `nil` for every other case (no conversion is attempted).
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The payload of a `.number`; `nil` for every other case.
    public var doubleValue: Double? {
        if case .number(let d) = self { return d }
        return nil
    }

    /// The number as an `Int64` when it is integral and representable (`3.0` → `3`);
    /// `nil` for fractional numbers, out-of-range numbers and non-numbers.
    public var intValue: Int64? {
        if case .number(let d) = self { return Int64(exactly: d) }
        return nil
    }

    /// The payload of a `.bool`; `nil` for every other case.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The payload of an `.object`; `nil` for every other case.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The payload of an `.array`; `nil` for every other case.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Whether this value is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Mutates the object payload in place, without copying it, when this value is an object.
    ///
    /// ```swift
    /// record.modifyObject { $0["seen"] = true }
    /// ```
    ///
    /// - Returns: the closure's result, or `nil` (and the closure is not called) when this value
    ///   is not an object.
    @discardableResult @inlinable
    public mutating func modifyObject<R, E: Error>(_ body: (inout JSONObject) throws(E) -> R) throws(E) -> R? {
        guard case .object(var object) = self else { return nil }
        self = .null  // drop our reference so `object` is uniquely referenced
        defer { self = .object(object) }
        return try body(&object)
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    /// Creates `.null`.
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    /// Creates `.bool(value)`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    /// Creates `.number(Double(value))`.
    public init(integerLiteral value: Int64) { self = .number(Double(value)) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    /// Creates `.number(value)`.
    public init(floatLiteral value: Double) { self = .number(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    /// Creates `.string(value)`.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    /// Creates `.array(elements)`.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// Creates an `.object` whose members keep the literal's order; a repeated key keeps its
    /// first position and its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        object.reserveCapacity(elements.count)
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact serialised JSON text (same as ``serializedString()``).
    public var description: String { serializedString() }
}
