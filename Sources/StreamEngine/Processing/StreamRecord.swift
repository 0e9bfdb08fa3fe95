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
    /// The value as read or as a step made it.
    @usableFromInline var content: Content
    /// Event time, epoch milliseconds.
    public var timestamp: Int64
    public var origin: RecordOrigin?

    /// A value as a tree, or a source record's flat object as read (made into a tree only
    /// when a step asks for the whole value).
    @usableFromInline
    enum Content: Sendable {
        case object(JSONObject)
        case flat(FlatJSONObject)
    }

    public init(key: String, value: JSONObject, timestamp: Int64, origin: RecordOrigin? = nil) {
        self.key = key
        self.content = .object(value)
        self.timestamp = timestamp
        self.origin = origin
    }

    /// A record whose value is a flat object as read (see ``FlatJSONObject``).
    public init(key: String, flat: FlatJSONObject, timestamp: Int64, origin: RecordOrigin? = nil) {
        self.key = key
        self.content = .flat(flat)
        self.timestamp = timestamp
        self.origin = origin
    }

    /// The value; pipelines work on JSON objects. A record read as a flat object makes its
    /// tree on each read: a step that reads fields uses ``field(_:)``, which does not.
    public var value: JSONObject {
        get {
            switch content {
            case .object(let o): return o
            case .flat(let f): return f.object
            }
        }
        set { content = .object(newValue) }
        _modify {
            var o: JSONObject
            switch content {
            case .object(let x): o = x
            case .flat(let f): o = f.object
            }
            content = .object(JSONObject())  // the tree stays uniquely referenced while it changes
            defer { content = .object(o) }
            yield &o
        }
    }

    /// The flat object the record was read as, while no step changed its value.
    public var flatValue: FlatJSONObject? {
        if case .flat(let f) = content { return f }
        return nil
    }

    /// The number of members of the value.
    public var fieldCount: Int {
        switch content {
        case .object(let o): return o.count
        case .flat(let f): return f.count
        }
    }

    /// A field of the value (dotted paths reach into nested objects).
    public func field(_ path: String) -> JSONValue? {
        switch content {
        case .object(let o):
            return o.lookup(path)
        case .flat(let f):
            // No nested objects in a flat one: a dotted path names a member or nothing.
            var hint = 0
            return f.value(forKey: path, hint: &hint)
        }
    }

    public static func == (a: StreamRecord, b: StreamRecord) -> Bool {
        a.key == b.key && a.timestamp == b.timestamp && a.origin == b.origin && a.value == b.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(value)
        hasher.combine(timestamp)
        hasher.combine(origin)
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
