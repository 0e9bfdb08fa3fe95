import KafkaClient

/// What decoding a source record depends on: its key and timestamp fields and the
/// required fields with their types. Pipelines whose sources have the same one decode
/// a message they both read the same way, so it is decoded once for all of them.
struct SourceDecoding: Hashable, Sendable {
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

    /// Decodes a source record: its value parsed (or the parse error), checked against the
    /// required fields, with its key and event time.
    /// - Parameter hints: where each checked field (the required ones, then the key and
    ///   timestamp fields) was in the last record; records of one source keep their fields
    ///   in one order, so the first member compared is usually the one.
    func decode(_ m: KafkaMessage, parsed: Result<JSONValue, JSONParseError>, origin: RecordOrigin, hints: inout [Int]) throws(RecordError) -> StreamRecord {
        guard m.hasValue else { throw RecordError(.parse, "record has no value") }
        let value: JSONObject
        switch parsed {
        case .failure(let error): throw RecordError(.parse, "malformed JSON: \(error)")
        case .success(.object(let o)): value = o
        case .success: throw RecordError(.parse, "value is not a JSON object")
        }
        let n = requiredFields.count
        if hints.count != n + 2 { hints = Array(repeating: 0, count: n + 2) }
        for i in 0..<n {
            let field = requiredFields[i], type = requiredTypes[i]
            guard let v = value.lookup(field, hint: &hints[i]), !v.isNull else { throw RecordError(.missingField, "required field '\(field)' is missing") }
            if !Self.matches(v, type) { throw RecordError(.wrongType, "field '\(field)' must be \(type.rawValue), got \(v.serializedString())") }
        }
        let key: String
        if let kf = keyField {
            guard let v = value.lookup(kf, hint: &hints[n]), !v.isNull else { throw RecordError(.missingField, "key field '\(kf)' is missing") }
            key = v.keyText
        } else {
            key = m.withUnsafeKey { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        let ts: Int64
        if let tf = timestampField {
            guard let v = value.lookup(tf, hint: &hints[n + 1]), !v.isNull else { throw RecordError(.missingField, "timestamp field '\(tf)' is missing") }
            switch timestampFormat {
            case .iso8601:
                guard let s = v.stringValue else { throw RecordError(.wrongType, "timestamp field '\(tf)' must be an ISO-8601 string, got \(v.serializedString())") }
                guard let t = EventTime.parseISO8601(s) else { throw RecordError(.wrongType, "timestamp field '\(tf)' is not ISO-8601: \(s)") }
                ts = t
            case .epochMillis, .epochSeconds:
                guard let d = v.doubleValue else { throw RecordError(.wrongType, "timestamp field '\(tf)' must be a number, got \(v.serializedString())") }
                ts = timestampFormat == .epochMillis ? Int64(d) : Int64(d * 1000)
            }
        } else {
            ts = m.timestamp ?? 0
        }
        return StreamRecord(key: key, value: value, timestamp: ts, origin: origin)
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
    func decode(_ m: KafkaMessage, origin: RecordOrigin, parsed shared: Result<JSONValue, JSONParseError>? = nil, stamp: RepartitionStamp? = nil) throws(RecordError) -> StreamRecord {
        // The key cache and the hints are moved out of the task and back (not copied: no new
        // buffer); an inout access to the actor's property per use would cost a dynamic
        // exclusivity check each.
        var keys = JSONKeyCache.unused
        swap(&keys, &keyCache)
        defer { keyCache = keys }
        if sub.fromRepartition {
            // Engine-encoded: key, JSON object value, event time and the upstream position for de-duplication.
            let value: JSONObject
            if repartitionValueUnread && !(stamp?.partial ?? false) {
                value = JSONObject()  // nothing reads it (see `repartitionValueUnread`)
            } else {
                guard case .object(let parsed)?? = m.withUnsafeValue({ try? JSONValue.parse($0, keys: &keys) }) else {
                    throw RecordError(.parse, "repartition record is not a JSON object")
                }
                value = parsed
            }
            let ts = (stamp ?? RepartitionStamp.of(m))?.eventTime ?? m.header(Headers.eventTime)?.stringValue.flatMap { Int64($0) } ?? m.timestamp ?? 0
            return StreamRecord(key: m.withUnsafeKey { String(decoding: $0, as: UTF8.self) } ?? "", value: value, timestamp: ts, origin: origin)
        }
        let parsed = shared ?? m.withUnsafeValue { v in Result { () throws(JSONParseError) in try JSONValue.parse(v, keys: &keys) } } ?? .success(.null)
        var hints: [Int] = []
        swap(&hints, &fieldHints)
        defer { fieldHints = hints }
        return try sourceDecoding.decode(m, parsed: parsed, origin: origin, hints: &hints)
    }
}
