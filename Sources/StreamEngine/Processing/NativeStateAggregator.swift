/// An aggregator's state in a native form of the aggregator's own, as a store keeps it between
/// commits for a ``NativeStateAggregator``. Everything outside the aggregate step (changelog,
/// snapshots, standby replicas, `stream-engine state`, queries) reads its ``json`` form.
public protocol AggregateState: AnyObject {
    /// The state as the aggregator's JSON methods hold it: what the changelog and snapshots store.
    var json: JSONValue { get }
    /// Appends ``json``'s compact encoding (``JSONCompact``) to `out`, as the store keeps it and
    /// the changelog carries it. By default it encodes ``json``; a state may write the same bytes
    /// without making the tree (the store encodes each changed key's state at every commit).
    func encodeCompact(into out: inout [UInt8])
}

extension AggregateState {
    public func encodeCompact(into out: inout [UInt8]) { JSONCompact.encode(json, into: &out) }
}

/// An aggregator that keeps its state natively while the runtime folds records into it: one
/// object per key instead of a JSON tree, so that a record of a key whose state has left the
/// CPU's caches reads a line or two instead of one per tree node (a store of many keys).
///
/// The JSON methods of ``Aggregator`` stay the definition: after the same records, ``AggregateState/json``
/// of the native state equals the state ``Aggregator/add(_:_:)`` gives, member order included (the
/// changelog's bytes do not depend on which path folded them). A JSON state the runtime restored
/// is made native by ``state(from:)`` when first updated; one of another shape stays JSON.
public protocol NativeStateAggregator: Aggregator {
    /// The native state (a class: the store holds it by reference and the aggregator changes it in place).
    associatedtype State: AggregateState
    /// ``Aggregator/initial()``, natively.
    func initialState() -> State
    /// A JSON state natively; `nil` when it is not of the shape ``Aggregator/initial()`` and
    /// ``Aggregator/add(_:_:)`` make (the runtime then folds it as JSON).
    func state(from json: JSONValue) -> State?
    /// ``Aggregator/add(into:_:)``, natively: changes `state` in place, or replaces it (to grow it).
    /// Must throw, if at all, before it changes anything.
    func add(into state: inout State, _ record: StreamRecord) throws(RecordError)
    /// ``Aggregator/result(_:reading:)`` (all members when `fields` is nil) of the native state.
    func result(_ state: State, reading fields: Set<String>?) -> JSONObject
}

/// A store's value as the store holds it decoded: JSON, or an aggregator's native state.
enum StoredState {
    case json(JSONValue)
    case native(any AggregateState)

    /// The store's entry of this value, expiring at `expiresAt`.
    func entry(expiresAt: Int64?) -> StoreEntry {
        switch self {
        case .json(let v): return StoreEntry(value: v, expiresAt: expiresAt)
        case .native(let s): return StoreEntry(state: s, expiresAt: expiresAt)
        }
    }

    /// The JSON form.
    var json: JSONValue {
        switch self {
        case .json(let v): return v
        case .native(let s): return s.json
        }
    }

    /// The JSON form, held uniquely by the caller: `self` is left `.json(.null)` until the
    /// caller puts a value back (a change in place does not copy the tree).
    mutating func takeJSON() -> JSONValue {
        let v: JSONValue
        switch self {
        case .json(let j): v = j
        case .native(let s): v = s.json
        }
        self = .json(.null)
        return v
    }
}
