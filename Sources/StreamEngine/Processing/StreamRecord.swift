/// Where a record was read from: used for dead-letter headers, offset
/// tracking and de-duplication of replayed repartition records.
public struct RecordOrigin: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

/// A record flowing through a pipeline: a string key, a JSON object value and
/// its event time.
public struct StreamRecord: Sendable, Hashable {
    /// The record key (from the configured key field or the Kafka key).
    public var key: String
    /// The value; pipelines work on JSON objects.
    public var value: JSONObject
    /// Event time, epoch milliseconds.
    public var timestamp: Int64
    public var origin: RecordOrigin?

    public init(key: String, value: JSONObject, timestamp: Int64, origin: RecordOrigin? = nil) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.origin = origin
    }

    /// A field of the value (dotted paths reach into nested objects).
    public func field(_ path: String) -> JSONValue? {
        value.lookup(path)
    }
}

extension JSONObject {
    /// A field by name, or by a dotted path (`a.b`) into nested objects.
    public func lookup(_ path: String) -> JSONValue? {
        var hint = 0
        return lookup(path, hint: &hint)
    }

    /// ``lookup(_:)`` that tries the member at `hint` first (see
    /// `JSONObject.value(forKey:hint:)`) and leaves in it where the field was.
    public func lookup(_ path: String, hint: inout Int) -> JSONValue? {
        if let direct = value(forKey: path, hint: &hint) { return direct }
        guard path.contains(".") else { return nil }
        var current: JSONValue = .object(self)
        for part in path.split(separator: ".") {
            guard case .object(let o) = current, let next = o[String(part)] else { return nil }
            current = next
        }
        return current
    }
}

extension JSONValue {
    /// The value as text for keys and Redis arguments: strings as they are,
    /// integral numbers without a fraction, others as JSON.
    public var keyText: String {
        switch self {
        case .string(let s): return s
        case .number(let d):
            if let i = Int64(exactly: d) { return String(i) }
            return String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        default: return serializedString()
        }
    }
}

/// Why a record went to the dead-letter topic.
public enum DeadLetterKind: String, Sendable {
    case parse = "parse_error"
    case missingField = "missing_field"
    case wrongType = "wrong_type"
    case late = "late"
    case processor = "processor_error"
}

/// An error a step or processor raises for one record: the record goes to the
/// dead-letter topic with this reason (or stops the run with `on_error: fail`).
public struct RecordError: Error, Sendable, CustomStringConvertible {
    public var kind: DeadLetterKind
    public var message: String
    public init(_ kind: DeadLetterKind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { "\(kind.rawValue): \(message)" }
}
