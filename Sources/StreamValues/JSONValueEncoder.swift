/// Encodes `Encodable` values into a ``JSONValue``, keeping object members in the order
/// they were encoded (declaration order for synthesised conformances), so that documents
/// built from `Codable` types print the way they are declared.
///
/// Numbers become `Double`s (as every JSON number here); a non-finite `Double` or `Float`
/// is an `EncodingError`.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode(_ value: some Encodable) throws -> JSONValue {
        let root = EncodingNode()
        try root.store(value, codingPath: [])
        return root.value
    }
}

/// One value under construction: a finished value, or an object or array whose members
/// are still being encoded.
private final class EncodingNode {
    enum Kind { case value, object, array }

    private(set) var kind = Kind.value
    private var scalar = JSONValue.null
    private var keys: [String] = []
    private var members: [String: EncodingNode] = [:]
    private var elements: [EncodingNode] = []

    var value: JSONValue {
        switch kind {
        case .value: return scalar
        case .object: return .object(JSONObject(keys.map { (key: $0, value: members[$0]!.value) }))
        case .array: return .array(elements.map(\.value))
        }
    }

    var count: Int { elements.count }

    func set(_ value: JSONValue) {
        kind = .value
        scalar = value
    }

    func makeObject() {
        guard kind != .object else { return }
        kind = .object
        keys = []
        members = [:]
    }

    func member(_ key: String) -> EncodingNode {
        makeObject()
        if let node = members[key] { return node }
        let node = EncodingNode()
        keys.append(key)
        members[key] = node
        return node
    }

    func makeArray() {
        guard kind != .array else { return }
        kind = .array
        elements = []
    }

    func appendElement() -> EncodingNode {
        makeArray()
        let node = EncodingNode()
        elements.append(node)
        return node
    }

    /// Encodes `value` into this node: scalars directly, anything else through its `encode(to:)`.
    func store(_ value: some Encodable, codingPath: [any CodingKey]) throws {
        func number(_ d: Double) throws -> JSONValue {
            guard d.isFinite else {
                throw EncodingError.invalidValue(d, .init(codingPath: codingPath, debugDescription: "JSON has no \(d)"))
            }
            return .number(d)
        }
        switch value {
        case let v as JSONValue: set(v)
        case let v as Bool: set(.bool(v))
        case let v as String: set(.string(v))
        case let v as Double: set(try number(v))
        case let v as Float: set(try number(Double(v)))
        case let v as Int: set(.number(Double(v)))
        case let v as Int8: set(.number(Double(v)))
        case let v as Int16: set(.number(Double(v)))
        case let v as Int32: set(.number(Double(v)))
        case let v as Int64: set(.number(Double(v)))
        case let v as UInt: set(.number(Double(v)))
        case let v as UInt8: set(.number(Double(v)))
        case let v as UInt16: set(.number(Double(v)))
        case let v as UInt32: set(.number(Double(v)))
        case let v as UInt64: set(.number(Double(v)))
        default: try value.encode(to: NodeEncoder(node: self, codingPath: codingPath))
        }
    }
}

private struct NodeEncoder: Encoder {
    let node: EncodingNode
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.makeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.makeArray()
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(node: node, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    var codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.member(key.stringValue).set(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try node.member(key.stringValue).store(value, codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { NodeEncoder(node: node.member("super"), codingPath: codingPath) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: EncodingNode
    var codingPath: [any CodingKey]
    var count: Int { node.count }

    mutating func encodeNil() throws { node.appendElement().set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try node.appendElement().store(value, codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        NodeEncoder(node: node.appendElement(), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        NodeEncoder(node: node.appendElement(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { NodeEncoder(node: node.appendElement(), codingPath: codingPath) }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let node: EncodingNode
    var codingPath: [any CodingKey]

    mutating func encodeNil() throws { node.set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws { try node.store(value, codingPath: codingPath) }
}
