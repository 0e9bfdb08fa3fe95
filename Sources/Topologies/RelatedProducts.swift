import Foundation
import StreamEngine

/// `session_co_views`: per viewer (the record key), the products the viewer
/// viewed or bought in the same session, emitted as co-occurrences — the first
/// half of related products (`related:{productId}`, in place of the seed's
/// Elasticsearch "more like this" search).
///
/// A session is a group of the viewer's events in which consecutive events are
/// less than `gap` (default 30m) apart, as in `behaviour_stats`: the processor
/// keeps the viewer's recent sessions with their products and merges an event
/// into every session it is less than `gap` from (a late event may join two
/// sessions). When a product enters a session (a new product, or two sessions
/// merging), each new pair of distinct products in the session is emitted once,
/// dated by the later of the two products' first events in the session. So the
/// pairs emitted for a session are the pairs of its products, whatever order its
/// events arrive in. A session takes at most `max_products` (default 30)
/// products; later ones are not paired (a bound on the pairs per session).
/// Sessions that ended more than `horizon` (default 1d) before the viewer's
/// latest event are dropped, and an event older than that is ignored.
///
/// Input: `{"productId"}` (views and purchases; the pipeline filters the types).
/// Output, one record per product that gained partners: key and `productId` the
/// product, `related` an object of partner → pair time (epoch ms).
///
/// Store: viewer → `{"last": ms, "sessions": [{"s": start, "e": end, "p": {productId: first ms}}]}`.
public struct SessionCoViewsProcessor: Processor {
    let store: String
    let gap: Int64
    let horizon: Int64
    let maxProducts: Int

    static func make(_ p: JSONObject) throws -> any Processor {
        let op = "session_co_views"
        let gap = try p.duration("gap", default: "30m", for: op)
        let horizon = try p.duration("horizon", default: "1d", for: op)
        guard horizon > gap else { throw OperatorConfigError("\(op): 'horizon' must be longer than 'gap'") }
        return SessionCoViewsProcessor(
            store: p.string("store", default: "session-products"), gap: gap, horizon: horizon,
            maxProducts: try p.positiveInt("max_products", default: 30, for: op))
    }

    struct Session {
        var start: Int64
        var end: Int64
        var products: [String: Int64]
    }

    public mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError) {
        let product = try record.requiredString("productId")
        let t = record.timestamp
        let store = context.store(self.store)
        let state = store.get(record.key)?.objectValue ?? [:]
        let previousLast = state["last"]?.intValue
        if let previousLast, t < previousLast - horizon { return }
        let last = max(previousLast ?? t, t)
        var sessions = (state["sessions"]?.arrayValue ?? []).compactMap(Self.session)

        // Merge the event into every session it touches; pairs across merged sessions are new.
        var pairs: [(String, String, Int64)] = []
        var merged = Session(start: t, end: t, products: [:])
        sessions.removeAll { s in
            guard s.start - t < gap && t - s.end < gap else { return false }
            for (a, ta) in s.products where merged.products[a] == nil {
                for (b, tb) in merged.products { pairs.append((a, b, max(ta, tb))) }
            }
            for (a, ta) in s.products { merged.products[a] = min(merged.products[a] ?? ta, ta) }
            merged.start = min(merged.start, s.start)
            merged.end = max(merged.end, s.end)
            return true
        }
        if let first = merged.products[product] {
            merged.products[product] = min(first, t)
        } else if merged.products.count < maxProducts {
            for (b, tb) in merged.products { pairs.append((product, b, max(t, tb))) }
            merged.products[product] = t
        }
        sessions.append(merged)
        sessions.removeAll { $0.end < last - horizon }
        sessions.sort { $0.start < $1.start }
        store.put(record.key, .object([
            "last": .millis(last),
            "sessions": .array(sessions.map { s in
                .object(["s": .millis(s.start), "e": .millis(s.end), "p": .object(JSONObject(distinctKeys: s.products.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.millis($0.value)) }))])
            }),
        ]))

        var partners: [String: [String: Int64]] = [:]
        for (a, b, at) in pairs where a != b {
            partners[a, default: [:]][b] = at
            partners[b, default: [:]][a] = at
        }
        for (p, related) in partners.sorted(by: { $0.key < $1.key }) {
            let value: JSONObject = ["productId": .string(p), "related": .object(JSONObject(distinctKeys: related.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.millis($0.value)) }))]
            context.forward(StreamRecord(key: p, value: value, timestamp: related.values.max() ?? t, origin: record.origin))
        }
    }

    static func session(_ v: JSONValue) -> Session? {
        guard let s = v["s"]?.intValue, let e = v["e"]?.intValue, let p = v["p"]?.objectValue else { return nil }
        var products: [String: Int64] = [:]
        for (k, t) in p { products[k] = t.intValue ?? s }
        return Session(start: s, end: e, products: products)
    }
}

/// `related_products`: per product (the record key), the products most often in
/// the same session with it, by a time-decayed co-occurrence count — the second
/// half of related products.
///
/// ```
/// related(p, q) = Σ over sessions s holding both p and q of 2^(−(T_p − t_s) / half_life)
/// ```
///
/// where `t_s` is the pair's time in session `s` (see `session_co_views`) and
/// `T_p` the latest pair time seen for `p`. Each session counts 1 when it is the
/// newest and half as much every `half_life` (default 7d) older, so the list
/// follows current taste; the sum does not depend on the order records arrive
/// in. The store keeps the `keep` (default 100) strongest partners of each
/// product and drops weights below 0.001; the output holds the `top` (default
/// 20), strongest first (ties: product id), rounded to 4 decimals.
///
/// Input: `{"productId", "related": {partner: pair time ms}}`. Output, once per
/// changed product at each commit: `{"productId", "related": {partner: weight}}`.
///
/// Store: product → `{"t": T_p, "w": {partner: weight at T_p}}`, written once per changed
/// product at each commit.
public struct RelatedProductsProcessor: Processor {
    let store: String
    let halfLife: Int64
    let top: Int
    let keep: Int
    /// A product's state as its records since the last commit left it; the store gets it
    /// at the commit (see `punctuate`).
    struct Working {
        /// `T_p`, the latest pair time seen for the product.
        var reference: Int64?
        /// Partner → weight at `reference`, at most `keep` of them, none below 0.001.
        var weights: [String: Double]
        /// The time of the product's last record.
        var time: Int64
    }
    /// Products changed since the last commit, and their order of change.
    private var working: [String: Working] = [:]
    private var changedOrder: [String] = []

    static func make(_ p: JSONObject) throws -> any Processor {
        let op = "related_products"
        let top = try p.positiveInt("top", default: 20, for: op)
        let keep = try p.positiveInt("keep", default: 100, for: op)
        guard keep >= top else { throw OperatorConfigError("\(op): 'keep' must be at least 'top'") }
        return RelatedProductsProcessor(
            store: p.string("store", default: "related-weights"), halfLife: try p.duration("half_life", default: "7d", for: op), top: top, keep: keep)
    }

    public mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError) {
        guard let related = record.field("related")?.objectValue else {
            throw RecordError(.missingField, "field 'related' (an object of product: time) is missing")
        }
        var w: Working
        if let current = working.removeValue(forKey: record.key) {
            w = current
        } else {
            let state = context.store(self.store).get(record.key)?.objectValue ?? [:]
            var weights: [String: Double] = [:]
            for (q, weight) in state["w"]?.objectValue ?? [:] { weights[q] = weight.doubleValue ?? 0 }
            w = Working(reference: state["t"]?.intValue, weights: weights, time: record.timestamp)
            changedOrder.append(record.key)
        }
        for (q, at) in related where q != record.key {
            guard let t = at.intValue else { continue }
            if let r = w.reference, t <= r {
                w.weights[q, default: 0] += decay(r - t)
            } else {
                if let r = w.reference {
                    let factor = decay(t - r)
                    for k in w.weights.keys { w.weights[k]! *= factor }
                }
                w.reference = t
                w.weights[q, default: 0] += 1
            }
        }
        // Trimmed after every record, so the weights do not depend on where commits fall.
        var faded: [String] = []
        for (q, weight) in w.weights where weight < 0.001 { faded.append(q) }
        for q in faded { w.weights[q] = nil }
        if w.weights.count > keep {
            w.weights = Dictionary(uniqueKeysWithValues: Self.ranked(w.weights).prefix(keep).map { ($0.key, $0.value) })
        }
        w.reference = w.reference ?? record.timestamp
        w.time = record.timestamp
        working[record.key] = w
    }

    /// Writes each product changed since the last commit to the store and forwards its
    /// strongest partners, once per product and commit however many pairs it gained: the
    /// store, Redis and the `related` table see one update per product and commit instead
    /// of one per co-occurrence record.
    public mutating func punctuate(context: ProcessorContext) -> Bool {
        let store = context.store(self.store)
        for product in changedOrder {
            guard let w = working[product] else { continue }
            let ranked = Self.ranked(w.weights)
            store.put(product, .object([
                "t": .millis(w.reference ?? w.time),
                "w": .object(JSONObject(distinctKeys: ranked.map { ($0.key, JSONValue.number($0.value)) })),
            ]))
            let out = ranked.prefix(top).map { ($0.key, JSONValue.number(($0.value * 10_000).rounded() / 10_000)) }
            context.forward(StreamRecord(
                key: product, value: ["productId": .string(product), "related": .object(JSONObject(distinctKeys: out))],
                timestamp: w.time))
        }
        changedOrder.removeAll(keepingCapacity: true)
        working.removeAll(keepingCapacity: true)
        return false
    }

    /// Strongest first; ties by product id.
    private static func ranked(_ weights: [String: Double]) -> [(key: String, value: Double)] {
        weights.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    private func decay(_ age: Int64) -> Double {
        exp2(-Double(age) / Double(halfLife))
    }
}
