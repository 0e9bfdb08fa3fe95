/// Folds records into an aggregate kept in a state store.
///
/// State is JSON so that it can be written to the changelog and snapshots and
/// inspected with `stream-engine state`. Implementations must be
/// deterministic: replaying the same records gives the same state.
public protocol Aggregator: Sendable {
    /// The state before the first record.
    func initial() -> JSONValue
    /// The state after `record`.
    func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue
    /// Changes `state` in place to the state after `record` (what the runtime calls; by
    /// default `state = add(state, record)`). An implementation that changes members in place
    /// must throw, if at all, before it changes anything.
    func add(into state: inout JSONValue, _ record: StreamRecord) throws(RecordError)
    /// Merges two states (session windows merging sessions).
    func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue
    /// What flows downstream (and to sinks) for a state: a JSON object.
    func result(_ state: JSONValue) -> JSONObject
    /// ``result(_:)`` when the steps after the aggregate read only the members named in
    /// `fields` (Redis sinks with their fields listed): an implementation may leave the
    /// others out, or compute them anyway (the default: `result(state)`).
    func result(_ state: JSONValue, reading fields: Set<String>) -> JSONObject
    /// Whether `add` reads the record's value (default true). One that reads only the key
    /// and the event time (`count`) lets the runtime leave a repartition record's value unparsed
    /// when the aggregate is the first step after the `rekey`.
    var readsRecordValue: Bool { get }
    /// Whether `add` reads the record's key (default true). One that does not lets the runtime
    /// fold a record bound for a repartition into its new key's partial state as it is, without
    /// a copy of the record under its new key (`StreamTask.combine`).
    var readsRecordKey: Bool { get }
    /// Whether records may be folded into partial states before a repartition and the partials
    /// merged after it (default false): `merge(s, fold(records))` equals folding the records
    /// into `s` one by one, in any order and grouping (`count`, `sum`, `min`, `max`, `top_n`).
    /// The runtime then sends one partial per key and commit through the repartition topic
    /// instead of one record per input record (see `StreamTask.Combiner`). Sums of non-integer
    /// numbers may differ in their last bits, as any change of summation order makes them.
    var combinable: Bool { get }
}

extension Aggregator {
    public var readsRecordValue: Bool { true }
    public var readsRecordKey: Bool { true }
    public var combinable: Bool { false }

    public func add(into state: inout JSONValue, _ record: StreamRecord) throws(RecordError) {
        state = try add(state, record)
    }

    public func result(_ state: JSONValue) -> JSONObject {
        if case .object(let o) = state { return o }
        return ["value": state]
    }

    public func result(_ state: JSONValue, reading fields: Set<String>) -> JSONObject { result(state) }
}

/// Builds an aggregator from its YAML `params`.
public typealias AggregatorFactory = @Sendable (JSONObject) throws -> any Aggregator

/// A configuration problem found when building an operator from its params.
public struct OperatorConfigError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension JSONObject {
    /// A required string parameter.
    public func requiredString(_ name: String, for op: String) throws -> String {
        guard let s = self[name]?.stringValue else {
            throw OperatorConfigError("\(op): parameter '\(name)' (a string) is required")
        }
        return s
    }

    /// An optional integer parameter with a default.
    public func int(_ name: String, default value: Int) -> Int {
        self[name]?.intValue.map(Int.init) ?? value
    }

    /// An optional duration parameter (a number of milliseconds or a duration string like `30d`).
    public func durationMillis(_ name: String) throws -> Int64? {
        guard let v = self[name] else { return nil }
        if let i = v.intValue { return i }
        if let s = v.stringValue { return try DurationSpec.parse(s) }
        throw OperatorConfigError("parameter '\(name)' must be a duration such as 30s, 5m, 24h or 30d")
    }
}

/// Numeric field of a record, as a number; a missing or non-numeric field is a record error.
func numericField(_ record: StreamRecord, _ field: String) throws(RecordError) -> Double {
    guard let v = record.field(field) else { throw RecordError(.missingField, "field '\(field)' is missing") }
    guard let d = v.doubleValue else { throw RecordError(.wrongType, "field '\(field)' must be a number, got \(v.serializedString())") }
    return d
}

func stringField(_ record: StreamRecord, _ field: String) throws(RecordError) -> String {
    guard let v = record.field(field), !v.isNull else { throw RecordError(.missingField, "field '\(field)' is missing") }
    switch v {
    case .string(let s): return s
    case .number, .bool: return v.keyText
    default: throw RecordError(.wrongType, "field '\(field)' must be a string, got \(v.serializedString())")
    }
}

// MARK: - Built-in aggregators

/// `count`: number of records. Result `{ "count": n }`.
struct CountAggregator: Aggregator {
    func initial() -> JSONValue { .number(0) }
    func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue { .number((state.doubleValue ?? 0) + 1) }
    func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue { .number((a.doubleValue ?? 0) + (b.doubleValue ?? 0)) }
    func result(_ state: JSONValue) -> JSONObject { ["count": state] }
    var readsRecordValue: Bool { false }
    var readsRecordKey: Bool { false }
    var combinable: Bool { true }
}

/// `sum` of `field`. Result `{ "sum": x }`.
struct SumAggregator: Aggregator {
    let field: String
    /// `field`, remembering where it was last found in a record.
    private let key: FieldKey

    init(field: String) {
        self.field = field
        key = FieldKey(field)
    }

    func initial() -> JSONValue { .number(0) }
    func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        .number((state.doubleValue ?? 0) + (try numericField(record, field)))
    }
    /// ``add(_:_:)``, reading the field where it was last found (a missing or non-numeric
    /// field goes through ``add(_:_:)``, which names the reason).
    func add(into state: inout JSONValue, _ record: StreamRecord) throws(RecordError) {
        guard let x = record.number(key) else { return state = try add(state, record) }
        state = .number((state.doubleValue ?? 0) + x)
    }
    func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue { .number((a.doubleValue ?? 0) + (b.doubleValue ?? 0)) }
    func result(_ state: JSONValue) -> JSONObject { ["sum": state] }
    var readsRecordKey: Bool { false }
    var combinable: Bool { true }
}

/// `min` / `max` of `field`. Result `{ "min": x }` or `{ "max": x }`.
struct ExtremumAggregator: Aggregator {
    let field: String
    let isMax: Bool
    func initial() -> JSONValue { .null }
    func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        let x = try numericField(record, field)
        guard let cur = state.doubleValue else { return .number(x) }
        return .number(isMax ? Swift.max(cur, x) : Swift.min(cur, x))
    }
    func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        guard let x = a.doubleValue else { return b }
        guard let y = b.doubleValue else { return a }
        return .number(isMax ? Swift.max(x, y) : Swift.min(x, y))
    }
    func result(_ state: JSONValue) -> JSONObject { [isMax ? "max" : "min": state] }
    var readsRecordKey: Bool { false }
    var combinable: Bool { true }
}

/// `latest`: the record with the latest event time (ties: the later arrival).
/// State and result: that record's value plus `_ts`.
struct LatestAggregator: Aggregator {
    func initial() -> JSONValue { .null }
    func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        if let ts = state["_ts"]?.intValue, ts > record.timestamp { return state }
        var v = record.value
        v["_ts"] = .number(Double(record.timestamp))
        return .object(v)
    }
    func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        (a["_ts"]?.intValue ?? .min) > (b["_ts"]?.intValue ?? .min) ? a : b
    }
}

/// `top_n`: sums `score` (or counts, without `score`) per `member` and keeps
/// every member; the result holds the `n` best as `{ "top": {member: score} }`.
struct TopNAggregator: Aggregator {
    let member: String
    let score: String?
    let n: Int
    func initial() -> JSONValue { .object([:]) }
    func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        var o = state.objectValue ?? [:]
        let m = try stringField(record, member)
        let s = try score.map { f throws(RecordError) in try numericField(record, f) } ?? 1
        o[m] = .number((o[m]?.doubleValue ?? 0) + s)
        return .object(o)
    }
    func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        var o = a.objectValue ?? [:]
        for (k, v) in b.objectValue ?? [:] { o[k] = .number((o[k]?.doubleValue ?? 0) + (v.doubleValue ?? 0)) }
        return .object(o)
    }
    func result(_ state: JSONValue) -> JSONObject {
        let entries = (state.objectValue ?? [:]).map { ($0.key, $0.value.doubleValue ?? 0) }
        // Highest score first; ties by member name so the result is deterministic.
        let top = entries.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(n)
        return ["top": .object(JSONObject(top.map { (key: $0.0, value: JSONValue.number($0.1)) }))]
    }
    var readsRecordKey: Bool { false }
    var combinable: Bool { true }
}

/// `capped_set`: members ordered by time — the latest time per `member`
/// (from `time`, default the event time), at most `max_items` (the most
/// recent kept), members older than `max_age` against the newest dropped.
/// Result `{ "members": {member: epochMillis} }`.
public struct CappedTimeSetAggregator: Aggregator {
    public let member: String
    public let timeField: String?
    public let maxItems: Int
    public let maxAgeMillis: Int64?

    public init(member: String, timeField: String? = nil, maxItems: Int, maxAgeMillis: Int64?) {
        self.member = member
        self.timeField = timeField
        self.maxItems = maxItems
        self.maxAgeMillis = maxAgeMillis
    }

    public func initial() -> JSONValue { .object([:]) }

    public func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        let m = try stringField(record, member)
        let t = try timeField.map { f throws(RecordError) in Int64(try numericField(record, f)) } ?? record.timestamp
        var o = state.objectValue ?? [:]
        if let cur = o[m]?.intValue, cur >= t { return state }
        o[m] = .number(Double(t))
        return .object(trim(o))
    }

    public func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        var o = a.objectValue ?? [:]
        for (k, v) in b.objectValue ?? [:] where (o[k]?.intValue ?? .min) < (v.intValue ?? .min) { o[k] = v }
        return .object(trim(o))
    }

    /// Keeps the `maxItems` most recent members not older than `maxAge` against the newest.
    public func trim(_ o: JSONObject) -> JSONObject {
        var entries = o.map { ($0.key, $0.value.intValue ?? 0) }
        guard let newest = entries.map(\.1).max() else { return o }
        if let maxAgeMillis { entries.removeAll { newest - $0.1 > maxAgeMillis } }
        if entries.count > maxItems || entries.count != o.count {
            entries.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            return JSONObject(entries.prefix(maxItems).map { (key: $0.0, value: JSONValue.number(Double($0.1))) })
        }
        return o
    }

    public func result(_ state: JSONValue) -> JSONObject { ["members": state] }
}

/// The engine's generic aggregators, by the names used in YAML.
public enum BuiltinAggregators {
    public static let factories: [String: AggregatorFactory] = [
        "count": { _ in CountAggregator() },
        "sum": { p in SumAggregator(field: try p.requiredString("field", for: "sum")) },
        "min": { p in ExtremumAggregator(field: try p.requiredString("field", for: "min"), isMax: false) },
        "max": { p in ExtremumAggregator(field: try p.requiredString("field", for: "max"), isMax: true) },
        "latest": { _ in LatestAggregator() },
        "top_n": { p in
            TopNAggregator(member: try p.requiredString("member", for: "top_n"), score: p["score"]?.stringValue, n: p.int("n", default: 10))
        },
        "capped_set": { p in
            CappedTimeSetAggregator(
                member: try p.requiredString("member", for: "capped_set"), timeField: p["time"]?.stringValue,
                maxItems: p.int("max_items", default: 100), maxAgeMillis: try p.durationMillis("max_age"))
        },
    ]
}
