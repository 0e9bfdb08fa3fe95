/// Evaluation of the stateless steps (`filter`, `select`).
enum StepEvaluation {
    static func matches(_ predicates: [FieldPredicate], _ record: StreamRecord) -> Bool {
        predicates.allSatisfy { matches($0, record) }
    }

    static func matches(_ p: FieldPredicate, _ record: StreamRecord) -> Bool {
        let v = record.field(p.field)
        switch p.op {
        case .exists: return v != nil && v != .null
        case .missing: return v == nil || v == .null
        case .eq: return v.map { equal($0, p.value) } ?? false
        case .ne: return !(v.map { equal($0, p.value) } ?? false)
        case .gt, .gte, .lt, .lte:
            guard let v, let target = p.value, let c = compare(v, target) else { return false }
            switch p.op {
            case .gt: return c > 0
            case .gte: return c >= 0
            case .lt: return c < 0
            default: return c <= 0
            }
        case .in, .notIn:
            let list = p.value?.arrayValue ?? []
            let found = v.map { x in list.contains { equal(x, $0) } } ?? false
            return p.op == .in ? found : !found
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue?) -> Bool {
        guard let b else { return false }
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }

    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int? {
        if let x = a.doubleValue, let y = b.doubleValue { return x < y ? -1 : (x > y ? 1 : 0) }
        if let x = a.stringValue, let y = b.stringValue { return x < y ? -1 : (x > y ? 1 : 0) }
        return nil
    }

    static func select(_ fields: [SelectField], _ record: StreamRecord) throws(RecordError) -> JSONObject {
        var out = JSONObject()
        for f in fields {
            if let v = try evaluate(f.expression, record) { out[f.name] = v }
        }
        return out
    }

    static func operand(_ o: SelectOperand, _ record: StreamRecord) -> JSONValue? {
        switch o {
        case .field(let f): return record.field(f)
        case .literal(let v): return v
        }
    }

    static func evaluate(_ e: SelectExpression, _ record: StreamRecord) throws(RecordError) -> JSONValue? {
        switch e {
        case .field(let f): return record.field(f)
        case .const(let v): return v
        case .mul(let ops), .add(let ops):
            var acc: Double = { if case .mul = e { return 1 } else { return 0 } }()
            for o in ops {
                guard let v = operand(o, record) else { throw RecordError(.missingField, "field '\(name(o))' is missing") }
                guard let d = v.doubleValue else { throw RecordError(.wrongType, "field '\(name(o))' must be a number, got \(v.serializedString())") }
                if case .mul = e { acc *= d } else { acc += d }
            }
            return .number(acc)
        case .concat(let ops):
            return .string(ops.map { operand($0, record)?.keyText ?? "" }.joined())
        case .coalesce(let ops):
            for o in ops { if let v = operand(o, record), !v.isNull { return v } }
            return nil
        }
    }

    private static func name(_ o: SelectOperand) -> String {
        switch o {
        case .field(let f): return f
        case .literal(let v): return v.serializedString()
        }
    }
}

/// A `window:` step: tumbling, hopping or session windows kept in a store,
/// emitted downstream when stream time passes their end plus grace.
final class WindowOperator {
    let spec: WindowSpec
    let store: KeyValueStore
    let aggregator: any Aggregator
    /// Store key → event time at which the window closes.
    private var closeAt: [String: Int64] = [:]
    /// Record key → store keys of its open sessions.
    private var sessionsByKey: [String: Set<String>] = [:]
    private var nextClose: Int64 = .max

    init(spec: WindowSpec, store: KeyValueStore, aggregator: any Aggregator) {
        self.spec = spec
        self.store = store
        self.aggregator = aggregator
        rebuildIndex()
    }

    /// Rebuilds the close index from the store (after a restore).
    func rebuildIndex() {
        closeAt.removeAll()
        sessionsByKey.removeAll()
        for (sk, e) in store.allEntries {
            guard let end = e.value["end"]?.intValue, let key = e.value["key"]?.stringValue else { continue }
            closeAt[sk] = end + lateness
            if case .session = spec.type { sessionsByKey[key, default: []].insert(sk) }
        }
        nextClose = closeAt.values.min() ?? .max
    }

    /// How long after a window's end it stays open: grace, plus the gap for sessions.
    private var lateness: Int64 {
        if case .session(let gap) = spec.type { return Int64(gap + spec.graceMillis) }
        return Int64(spec.graceMillis)
    }

    /// Adds a record (stream time already includes it). Throws `.late` when every window it belongs to has closed.
    func add(_ record: StreamRecord, streamTime: Int64) throws(RecordError) {
        let ts = record.timestamp
        switch spec.type {
        case .tumbling(let size):
            try addTimeWindows(record, starts: [ts - mod(ts, Int64(size))], size: Int64(size), streamTime: streamTime)
        case .hopping(let size, let advance):
            let adv = Int64(advance)
            var starts: [Int64] = []
            var s = ts - mod(ts, adv)
            while s > ts - Int64(size) {
                starts.append(s)
                s -= adv
            }
            try addTimeWindows(record, starts: starts.reversed(), size: Int64(size), streamTime: streamTime)
        case .session(let gap):
            try addSession(record, gap: Int64(gap), streamTime: streamTime)
        }
    }

    private func mod(_ a: Int64, _ b: Int64) -> Int64 { ((a % b) + b) % b }

    private func addTimeWindows(_ record: StreamRecord, starts: [Int64], size: Int64, streamTime: Int64) throws(RecordError) {
        var accepted = false
        for start in starts {
            let end = start + size
            if end + lateness <= streamTime { continue }
            let sk = "\(record.key)|\(start)"
            let current = store.get(sk)?["agg"] ?? aggregator.initial()
            let agg = try aggregator.add(current, record)
            store.put(sk, .object(["key": .string(record.key), "start": .number(Double(start)), "end": .number(Double(end)), "agg": agg]))
            track(sk, closesAt: end + lateness)
            accepted = true
        }
        if !accepted { throw lateError(record, streamTime: streamTime) }
    }

    private func addSession(_ record: StreamRecord, gap: Int64, streamTime: Int64) throws(RecordError) {
        let ts = record.timestamp
        if ts + lateness <= streamTime { throw lateError(record, streamTime: streamTime) }
        var start = ts
        var end = ts
        var agg = aggregator.initial()
        for sk in sessionsByKey[record.key] ?? [] {
            guard let v = store.get(sk), let s = v["start"]?.intValue, let e = v["end"]?.intValue else { continue }
            // Same session when the event is less than `gap` from it.
            if s - ts < gap && ts - e < gap {
                start = min(start, s)
                end = max(end, e)
                agg = aggregator.merge(agg, v["agg"] ?? aggregator.initial())
                store.delete(sk)
                closeAt.removeValue(forKey: sk)
                sessionsByKey[record.key]?.remove(sk)
            }
        }
        agg = try aggregator.add(agg, record)
        let sk = "\(record.key)|\(start)"
        store.put(sk, .object(["key": .string(record.key), "start": .number(Double(start)), "end": .number(Double(end)), "agg": agg]))
        sessionsByKey[record.key, default: []].insert(sk)
        track(sk, closesAt: end + lateness)
    }

    private func lateError(_ record: StreamRecord, streamTime: Int64) -> RecordError {
        RecordError(.late, "event time \(EventTime.formatISO8601(record.timestamp)) is older than stream time \(EventTime.formatISO8601(streamTime)) minus the window's grace")
    }

    private func track(_ sk: String, closesAt t: Int64) {
        closeAt[sk] = t
        if t < nextClose { nextClose = t }
    }

    /// Closes every window due at `streamTime`: removes it and returns its result records, oldest first.
    func closeDue(streamTime: Int64) -> [StreamRecord] {
        guard streamTime >= nextClose else { return [] }
        let due = closeAt.filter { $0.value <= streamTime }.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }
        var out: [StreamRecord] = []
        for (sk, _) in due {
            closeAt.removeValue(forKey: sk)
            guard let v = store.get(sk), let key = v["key"]?.stringValue, let s = v["start"]?.intValue, let e = v["end"]?.intValue else { continue }
            store.delete(sk)
            if case .session = spec.type { sessionsByKey[key]?.remove(sk) }
            var value = aggregator.result(v["agg"] ?? aggregator.initial())
            let isSession: Bool = { if case .session = spec.type { return true } else { return false } }()
            value[isSession ? "sessionStart" : "windowStart"] = .string(EventTime.formatISO8601(s))
            value[isSession ? "sessionEnd" : "windowEnd"] = .string(EventTime.formatISO8601(e))
            out.append(StreamRecord(key: key, value: value, timestamp: isSession ? e : e - 1))
        }
        nextClose = closeAt.values.min() ?? .max
        return out
    }
}
