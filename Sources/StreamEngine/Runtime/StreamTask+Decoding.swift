import KafkaClient

/// Where a reader found each field `SourceDecoding` checks (the required ones, then the key
/// and timestamp fields) in the last record: records of one source keep their fields in one
/// order, so the member at that position is usually the one. For flat objects of one shape
/// (`FlatJSONObject.Shape`) the positions are known (-1: absent) and not compared again.
struct DecodeHints {
    var positions: [Int] = []
    var shape: FlatJSONObject.Shape?
    /// The date, hour and minute of the last ISO-8601 event time read (see `EventTime.ISO8601Prefix`).
    var timePrefix = EventTime.ISO8601Prefix()
}

/// A source record's value as read: a flat object (scalar members, see `FlatJSONObject`)
/// when it is one, no tree made; any other value parsed into its tree, or its parse error.
enum SourceValue: Sendable {
    case flat(FlatJSONObject)
    case parsed(Result<JSONValue, JSONParseError>)

    /// Reads a value's bytes: as a flat object when it is one, with the full parser otherwise.
    static func read(_ bytes: UnsafeRawBufferPointer, keys: inout JSONKeyCache) -> SourceValue {
        if let flat = JSONValue.parseFlatObject(bytes, keys: &keys) { return .flat(flat) }
        return .parsed(Result { () throws(JSONParseError) in try JSONValue.parse(bytes, keys: &keys) })
    }
}

/// What decoding a source record depends on: its key and timestamp fields and the
/// required fields with their types. Pipelines whose sources have the same one decode
/// a message they both read the same way, so it is decoded once for all of them.
///
/// A final class: a task calls `decode` on it per record, and a struct stored in the actor
/// was copied for each call (its arrays retained and released: ~250 instructions per record).
final class SourceDecoding: Hashable, Sendable {
    let keyField: String?
    let timestampField: String?
    let timestampFormat: TimestampFormat
    let requiredFields: [String]
    let requiredTypes: [FieldType]

    init(_ source: SourceSpec) {
        keyField = source.keyField
        timestampField = source.timestampField
        timestampFormat = source.timestampFormat
        requiredFields = source.required.map(\.field)
        requiredTypes = source.required.map(\.type)
    }

    /// Alike when they decode alike: the same fields, types and format.
    static func == (a: SourceDecoding, b: SourceDecoding) -> Bool {
        a.keyField == b.keyField && a.timestampField == b.timestampField && a.timestampFormat == b.timestampFormat
            && a.requiredFields == b.requiredFields && a.requiredTypes == b.requiredTypes
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(keyField)
        hasher.combine(timestampField)
        hasher.combine(timestampFormat)
        hasher.combine(requiredFields)
        hasher.combine(requiredTypes)
    }

    /// Decodes a source record: its value parsed (or the parse error), checked against the
    /// required fields, with its key and event time.
    /// - Parameter hints: where each checked field (the required ones, then the key and
    ///   timestamp fields) was in the last record; records of one source keep their fields
    ///   in one order, so the first member compared is usually the one.
    func decode(_ m: KafkaMessage, parsed: consuming SourceValue, origin: consuming RecordOrigin, hints: inout DecodeHints) throws(RecordError) -> StreamRecord {
        guard m.hasValue else { throw RecordError(.parse, "record has no value") }
        let value: JSONObject
        switch parsed {
        case .flat(let flat): return try decode(m, flat: flat, origin: origin, hints: &hints)
        case .parsed(.failure(let error)): throw RecordError(.parse, "malformed JSON: \(error)")
        case .parsed(.success(.object(let o))): value = o
        case .parsed(.success): throw RecordError(.parse, "value is not a JSON object")
        }
        let n = requiredFields.count
        if hints.positions.count != n + 2 { hints.positions = Array(repeating: 0, count: n + 2) }
        hints.shape = nil
        for i in 0..<n {
            let field = requiredFields[i], type = requiredTypes[i]
            guard let v = value.lookup(field, hint: &hints.positions[i]), !v.isNull else { throw Self.missing("required field", field) }
            if !Self.matches(v, type) { throw Self.wrongType(field, type, got: v) }
        }
        let key: String
        if let kf = keyField {
            guard let v = value.lookup(kf, hint: &hints.positions[n]), !v.isNull else { throw Self.missing("key field", kf) }
            key = v.keyText
        } else {
            key = m.withUnsafeKey { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let ts: Int64
        if let tf = timestampField {
            guard let v = value.lookup(tf, hint: &hints.positions[n + 1]), !v.isNull else { throw Self.missing("timestamp field", tf) }
            switch timestampFormat {
            case .iso8601:
                guard let s = v.stringValue else { throw Self.timestampNot("an ISO-8601 string", tf, got: v) }
                guard let t = EventTime.parseISO8601(s) else { throw Self.notISO8601(tf, s) }
                ts = t
            case .epochMillis, .epochSeconds:
                guard let d = v.doubleValue else { throw Self.timestampNot("a number", tf, got: v) }
                ts = eventTime(number: d)
            }
        } else {
            ts = m.timestamp ?? 0
        }
        return StreamRecord(key: key, value: value, timestamp: ts, origin: origin)
    }

    /// ``decode(_:parsed:origin:hints:)`` of a flat object: the same checks, key and event
    /// time, and the same errors, read from its index (no tree; the event time parsed from the
    /// string's bytes).
    private func decode(_ m: KafkaMessage, flat f: consuming FlatJSONObject, origin: consuming RecordOrigin, hints: inout DecodeHints) throws(RecordError) -> StreamRecord {
        let n = requiredFields.count
        if hints.shape == nil || hints.shape != f.shape {
            // Every position, found (or -1) for this shape before any check.
            if hints.positions.count != n + 2 { hints.positions = Array(repeating: 0, count: n + 2) }
            func find(_ field: String?, _ i: Int, _ f: borrowing FlatJSONObject, _ hints: inout DecodeHints) {
                var hint = hints.positions[i]
                if let field, let j = f.index(ofKey: field, hint: &hint) { hints.positions[i] = j } else { hints.positions[i] = -1 }
            }
            for i in 0..<n { find(requiredFields[i], i, f, &hints) }
            find(keyField, n, f, &hints)
            find(timestampField, n + 1, f, &hints)
            hints.shape = f.shape
        }
        for i in 0..<n {
            // The field's name is read only for a reason: a copy of each name per record cost a retain and a release.
            let type = requiredTypes[i], j = hints.positions[i]
            guard j >= 0, f.type(at: j) != .null else { throw Self.missing("required field", requiredFields[i]) }
            if !Self.matches(f, j, type) { throw Self.wrongType(requiredFields[i], type, got: f.value(at: j)) }
        }
        let key: String
        if let kf = keyField {
            let j = hints.positions[n]
            guard j >= 0, f.type(at: j) != .null else { throw Self.missing("key field", kf) }
            key = f.string(at: j) ?? f.value(at: j).keyText  // a string as it is (its `keyText`), without a JSONValue made
        } else {
            key = m.withUnsafeKey { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let ts: Int64
        if let tf = timestampField {
            let j = hints.positions[n + 1]
            guard j >= 0, f.type(at: j) != .null else { throw Self.missing("timestamp field", tf) }
            switch timestampFormat {
            case .iso8601:
                guard let t = f.withStringBytes(at: j, { EventTime.parseISO8601(bytes: $0, prefix: &hints.timePrefix) }) else {
                    throw Self.timestampNot("an ISO-8601 string", tf, got: f.value(at: j))
                }
                guard let t else { throw Self.notISO8601(tf, f.value(at: j).stringValue ?? "") }
                ts = t
            case .epochMillis, .epochSeconds:
                guard let d = f.number(at: j) else { throw Self.timestampNot("a number", tf, got: f.value(at: j)) }
                ts = eventTime(number: d)
            }
        } else {
            ts = m.timestamp ?? 0
        }
        return StreamRecord(key: key, flat: f, timestamp: ts, origin: origin)
    }

    /// A numeric timestamp field's event time in milliseconds.
    private func eventTime(number d: Double) -> Int64 {
        timestampFormat == .epochMillis ? Int64(d) : Int64(d * 1000)
    }

    // The dead-letter reasons, the same from a tree and from a flat object.
    private static func missing(_ what: String, _ field: String) -> RecordError {
        RecordError(.missingField, "\(what) '\(field)' is missing")
    }
    private static func wrongType(_ field: String, _ type: FieldType, got v: JSONValue) -> RecordError {
        RecordError(.wrongType, "field '\(field)' must be \(type.rawValue), got \(v.serializedString())")
    }
    private static func timestampNot(_ what: String, _ field: String, got v: JSONValue) -> RecordError {
        RecordError(.wrongType, "timestamp field '\(field)' must be \(what), got \(v.serializedString())")
    }
    private static func notISO8601(_ field: String, _ s: String) -> RecordError {
        RecordError(.wrongType, "timestamp field '\(field)' is not ISO-8601: \(s)")
    }

    /// ``matches(_:_:)`` for the member at `j` of a flat object (scalars only).
    static func matches(_ f: FlatJSONObject, _ j: Int, _ type: FieldType) -> Bool {
        switch type {
        case .any: return true
        case .string: return f.type(at: j) == .string
        case .number: return f.type(at: j) == .number
        case .integer: return f.number(at: j).map { $0.rounded() == $0 } ?? false
        case .boolean: return f.type(at: j) == .boolean
        case .object, .array: return false
        }
    }

    static func matches(_ v: JSONValue, _ type: FieldType) -> Bool {
        switch (type, v) {
        case (.any, _): return true
        case (.string, .string), (.number, .number), (.boolean, .bool), (.object, .object), (.array, .array): return true
        case (.integer, .number(let d)): return d.rounded() == d
        default: return false
        }
    }
}

extension StreamTask {
    /// Decodes an input message: an engine-encoded repartition record, or a source record
    /// checked against the source's required fields, with its key and event time.
    /// - Parameter parsed: the value already parsed for every task that reads the message (`nil`: parse it here).
    /// - Parameter stamp: a repartition record's stamp, when the caller read it already.
    func decode(_ m: KafkaMessage, origin: RecordOrigin, parsed shared: SourceValue? = nil, stamp: RepartitionStamp? = nil) throws(RecordError) -> StreamRecord {
        // The key cache and the hints are used in place (`@exclusivity(unchecked)`): moving
        // them out and back cost a placeholder made and destroyed per record.
        if fromRepartition {
            // Engine-encoded: key, JSON object value, event time and the upstream position for de-duplication.
            let value: JSONObject
            if repartitionValueUnread && !(stamp?.partial ?? false) {
                value = JSONObject()  // nothing reads it (see `repartitionValueUnread`)
            } else {
                guard case .object(let parsed)?? = m.withUnsafeValue({ try? JSONValue.parse($0, keys: &keyCache) }) else {
                    throw RecordError(.parse, "repartition record is not a JSON object")
                }
                value = parsed
            }
            let ts = (stamp ?? RepartitionStamp.of(m))?.eventTime ?? m.header(Headers.eventTime)?.stringValue.flatMap { Int64($0) } ?? m.timestamp ?? 0
            return StreamRecord(key: m.withUnsafeKey { String(decoding: $0, as: UTF8.self) } ?? "", value: value, timestamp: ts, origin: origin)
        }
        let parsed = shared ?? m.withUnsafeValue { SourceValue.read($0, keys: &keyCache) } ?? .parsed(.success(.null))
        return try sourceDecoding.decode(m, parsed: parsed, origin: origin, hints: &fieldHints)
    }
}
