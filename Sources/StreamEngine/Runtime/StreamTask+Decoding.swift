import KafkaClient

extension StreamTask {
    /// Decodes an input message: an engine-encoded repartition record, or a source record
    /// checked against the source's required fields, with its key and event time.
    /// - Parameter parsed: the value already parsed for every task that reads the message (`nil`: parse it here).
    func decode(_ m: KafkaMessage, origin: RecordOrigin, parsed shared: Result<JSONValue, JSONParseError>? = nil) throws(RecordError) -> StreamRecord {
        if sub.fromRepartition {
            // Engine-encoded: key, JSON object value, event time and the upstream position for de-duplication.
            guard let bytes = m.value, case .object(let value) = try? JSONValue.parse(bytes) else {
                throw RecordError(.parse, "repartition record is not a JSON object")
            }
            let ts = RepartitionStamp.of(m)?.eventTime ?? m.header(Headers.eventTime)?.stringValue.flatMap { Int64($0) } ?? m.timestamp ?? 0
            return StreamRecord(key: String(decoding: m.key ?? [], as: UTF8.self), value: value, timestamp: ts, origin: origin)
        }
        let source = sub.pipeline.source
        guard let bytes = m.value else { throw RecordError(.parse, "record has no value") }
        let parsed: JSONValue
        do { parsed = try shared?.get() ?? JSONValue.parse(bytes) } catch { throw RecordError(.parse, "malformed JSON: \(error)") }
        guard case .object(let value) = parsed else { throw RecordError(.parse, "value is not a JSON object") }
        // Where each field was in the last record: records of one source keep their fields in one order.
        let n = source.required.count
        if fieldHints.count != n + 2 { fieldHints = Array(repeating: 0, count: n + 2) }
        for (i, (field, type)) in source.required.enumerated() {
            guard let v = value.lookup(field, hint: &fieldHints[i]), !v.isNull else { throw RecordError(.missingField, "required field '\(field)' is missing") }
            if !Self.matches(v, type) { throw RecordError(.wrongType, "field '\(field)' must be \(type.rawValue), got \(v.serializedString())") }
        }
        let key: String
        if let kf = source.keyField {
            guard let v = value.lookup(kf, hint: &fieldHints[n]), !v.isNull else { throw RecordError(.missingField, "key field '\(kf)' is missing") }
            key = v.keyText
        } else {
            key = String(decoding: m.key ?? [], as: UTF8.self)
        }
        let ts: Int64
        if let tf = source.timestampField {
            guard let v = value.lookup(tf, hint: &fieldHints[n + 1]), !v.isNull else { throw RecordError(.missingField, "timestamp field '\(tf)' is missing") }
            switch source.timestampFormat {
            case .iso8601:
                guard let s = v.stringValue else { throw RecordError(.wrongType, "timestamp field '\(tf)' must be an ISO-8601 string, got \(v.serializedString())") }
                guard let t = EventTime.parseISO8601(s) else { throw RecordError(.wrongType, "timestamp field '\(tf)' is not ISO-8601: \(s)") }
                ts = t
            case .epochMillis, .epochSeconds:
                guard let d = v.doubleValue else { throw RecordError(.wrongType, "timestamp field '\(tf)' must be a number, got \(v.serializedString())") }
                ts = source.timestampFormat == .epochMillis ? Int64(d) : Int64(d * 1000)
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
