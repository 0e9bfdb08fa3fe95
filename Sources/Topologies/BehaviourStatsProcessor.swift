import StreamEngine

/// `behaviour_stats`: per viewer (the record key), counts of each event type,
/// the number of sessions and the latest event time.
///
/// A session is a group of the viewer's events, sorted by time, in which
/// consecutive events are less than `gap` (default 30m) apart. The count
/// includes the session still open — unlike a session `window`, which only
/// emits closed sessions. Events may arrive out of order: the processor keeps
/// the viewer's recent sessions as `[start, end]` intervals and merges an event
/// into every interval it is less than `gap` from (so a late event can join two
/// sessions into one). Sessions that ended more than `horizon` (default 1d)
/// before the viewer's latest event are folded into a count; an event that
/// could touch them (older than latest − horizon + gap) is dead-lettered as
/// `late` without changing anything.
///
/// Input: records with `type` (`view`, `click`, `add_to_cart`, `search`; any
/// other is a `wrong_type` error). Output: `{"viewerId", "views", "clicks",
/// "addToCarts", "searches", "sessions", "lastSeenAt"}`.
///
/// Store (`stores: [one]`): viewer → `{"views", "clicks", "addToCarts",
/// "searches", "last": ms, "folded": n, "open": [[start, end], ...]}`.
public struct BehaviourStatsProcessor: Processor {
    /// Counter field per event type.
    static let counters: [String: String] = ["view": "views", "click": "clicks", "add_to_cart": "addToCarts", "search": "searches"]
    static let counterNames = ["views", "clicks", "addToCarts", "searches"]

    let store: String
    let typeField: String
    let gap: Int64
    let horizon: Int64

    static func make(_ p: JSONObject) throws -> any Processor {
        let gap = try p.duration("gap", default: "30m", for: "behaviour_stats")
        let horizon = try p.duration("horizon", default: "1d", for: "behaviour_stats")
        guard horizon > gap else { throw OperatorConfigError("behaviour_stats: 'horizon' must be longer than 'gap'") }
        return BehaviourStatsProcessor(
            store: p.string("store", default: "behaviour-stats"), typeField: p.string("type", default: "type"), gap: gap, horizon: horizon)
    }

    public mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError) {
        let type = try record.requiredString(typeField)
        guard let counter = Self.counters[type] else {
            throw RecordError(.wrongType, "field '\(typeField)' must be one of \(Self.counters.keys.sorted()), got \"\(type)\"")
        }
        let store = context.store(self.store)
        let t = record.timestamp
        var state = store.get(record.key)?.objectValue ?? [:]
        let previousLast = state["last"]?.intValue
        if let previousLast, t < previousLast - horizon + gap {
            throw RecordError(.late, "event at \(EventTime.formatISO8601(t)) is more than \(horizon - gap) ms older than the viewer's latest event (\(EventTime.formatISO8601(previousLast)))")
        }
        let last = max(previousLast ?? t, t)
        state[counter] = .number(Double((state[counter]?.intValue ?? 0) + 1))
        state["last"] = .millis(last)

        // Merge the event into every open session it touches.
        var sessions = (state["open"]?.arrayValue ?? []).compactMap { v -> (Int64, Int64)? in
            guard let s = v[0]?.intValue, let e = v[1]?.intValue else { return nil }
            return (s, e)
        }
        var merged = (t, t)
        sessions.removeAll { s, e in
            guard s - t < gap && t - e < gap else { return false }
            merged = (min(merged.0, s), max(merged.1, e))
            return true
        }
        sessions.append(merged)
        var folded = state["folded"]?.intValue ?? 0
        let before = sessions.count
        sessions.removeAll { $0.1 < last - horizon }
        folded += Int64(before - sessions.count)
        sessions.sort { $0.0 < $1.0 }
        state["folded"] = .number(Double(folded))
        state["open"] = .array(sessions.map { [.millis($0.0), .millis($0.1)] })
        store.put(record.key, .object(state))

        var out: JSONObject = ["viewerId": .string(record.key)]
        for name in Self.counterNames { out[name] = state[name] ?? 0 }
        out["sessions"] = .number(Double(folded + Int64(sessions.count)))
        out["lastSeenAt"] = .string(EventTime.formatISO8601(last))
        context.forward(StreamRecord(key: record.key, value: out, timestamp: t, origin: record.origin))
    }
}
