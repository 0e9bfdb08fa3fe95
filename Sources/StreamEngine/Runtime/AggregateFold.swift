/// How an aggregate step folds records into the state its store holds, and reads results from
/// it: as JSON (this class), or natively for a ``NativeStateAggregator`` (``NativeAggregateFold``).
class AggregateFold {
    /// The step's aggregator.
    let aggregator: any Aggregator

    init(_ aggregator: any Aggregator) { self.aggregator = aggregator }

    /// The fold of `aggregator`: native when it keeps a native state.
    static func of(_ aggregator: any Aggregator) -> AggregateFold {
        if let native = aggregator as? any NativeStateAggregator { return native.fold() }
        return AggregateFold(aggregator)
    }

    /// The state of a key before its first record.
    func initial() -> StoredState { .json(aggregator.initial()) }

    /// Folds `record` into `state` (a combiner's partial state, `{"p": state}`, merged when
    /// `partial`). Throws, if at all, before it changes anything.
    func add(into state: inout StoredState, _ record: StreamRecord, partial: Bool) throws(RecordError) {
        var value = state.takeJSON()
        defer { state = .json(value) }
        if partial {
            value = aggregator.merge(value, record.value["p"] ?? .null)
        } else {
            try aggregator.add(into: &value, record)
        }
    }

    /// The result of `state` for the steps after the aggregate (those reading only `fields`, when given).
    func result(_ state: StoredState, reading fields: Set<String>?) -> JSONObject {
        let value = state.json
        return fields.map { aggregator.result(value, reading: $0) } ?? aggregator.result(value)
    }
}

extension NativeStateAggregator {
    /// The native fold of this aggregator (opens the existential in ``AggregateFold/of(_:)``).
    fileprivate func fold() -> AggregateFold { NativeAggregateFold(self) }
}

/// The fold of a ``NativeStateAggregator``: keys' states are native objects in the store; a JSON
/// state (restored, or a combiner's partial merged) is made native when next updated, unless it
/// is of a shape the aggregator does not know natively.
final class NativeAggregateFold<A: NativeStateAggregator>: AggregateFold {
    let native: A

    init(_ aggregator: A) {
        native = aggregator
        super.init(aggregator)
    }

    override func initial() -> StoredState { .native(native.initialState()) }

    override func add(into state: inout StoredState, _ record: StreamRecord, partial: Bool) throws(RecordError) {
        guard !partial else { return try super.add(into: &state, record, partial: true) }
        switch state {
        case .native(let held):
            // A store holds the states of one aggregate step, so of this aggregator's type.
            var s = unsafeDowncast(held, to: A.State.self)
            let before = ObjectIdentifier(s)
            try native.add(into: &s, record)
            if ObjectIdentifier(s) != before { state = .native(s) }
        case .json(let value):
            guard var s = native.state(from: value) else { return try super.add(into: &state, record, partial: false) }
            try native.add(into: &s, record)
            state = .native(s)
        }
    }

    override func result(_ state: StoredState, reading fields: Set<String>?) -> JSONObject {
        switch state {
        case .native(let held): return native.result(unsafeDowncast(held, to: A.State.self), reading: fields)
        case .json: return super.result(state, reading: fields)
        }
    }
}
