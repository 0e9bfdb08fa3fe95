import StreamEngine

/// `recommendations`: per user (the record key), up to `max_items` products
/// scored so that the score says why, recomputed at the commit after a purchase, view or
/// add-to-cart of the user (once, however many came since the last commit).
///
/// ```
/// score = interest + max(popularity, related)
/// interest   = 10 if the user viewed the product within `recent_window` (default 7d)
///            + 20 if the user added it to the cart within `recent_window`
///              (both against the user's latest event)
/// popularity = (spend in the product's category / spend in the user's top category)
///            × (units of the product / units of the category's best seller)
///              for the best sellers (from the global table `categories_table`,
///              field `top`) of the user's `top_categories` (default 3)
///              categories by spend; 0 otherwise
/// related    = 1 + max over the user's anchors a of weight(a, p) / weight(a, a's top partner)
///              where the anchors are the products viewed within `recent_window`
///              and the `related_anchors` (default 5) latest purchases, and
///              weight(a, ·) comes from the global table `related_table` (field
///              `related`, written by `related_products`); 0 if p is related to none
/// ```
///
/// So 0 < score ≤ 1: popular in a category the user buys from; 1 < score ≤ 2:
/// related to what you viewed or bought; 10–12: viewed recently; 20–22: in the
/// cart recently; 30–32: both. Products the user has bought are never recommended. Ties: the more recent interaction first, then
/// the product id. Scores are rounded to 4 decimals.
///
/// Input: `{"type": "purchase" | "view" | "add_to_cart", "productId", "category",
/// "price", "quantity"}` (purchases need `category`, `price` and `quantity`;
/// other types are ignored). Output: `{"userId", "recs": {productId: score}}`.
///
/// Store: userId → `{"spend": {category: cents}, "bought": {productId: true},
/// "seen": {productId: {"view": ms, "cart": ms}}, "recentBought": {productId: ms},
/// "last": ms}`; `seen` keeps at most `max_seen` (default 50) products of the
/// recent window, `recentBought` the `related_anchors` latest purchases.
public struct RecommendationsProcessor: Processor {
    let store: String
    let table: String
    let tableField: String
    let maxItems: Int
    let topCategories: Int
    let recentWindow: Int64
    let maxSeen: Int
    /// Users to recompute per commit at most (see `punctuate`).
    let recomputeBatch: Int
    /// Milliseconds of wall-clock time between two rounds of recomputes for table changes.
    let tableRefreshMillis: Int64
    let relatedTable: String?
    let relatedField: String
    let relatedAnchors: Int

    // Caches, rebuilt from the store after a restart (not durable state).
    /// Users by the categories they bought in; `nil` until first needed.
    private var usersByCategory: [String: Set<String>]?
    /// The category table's change number last seen.
    private var tableSequence: UInt64 = 0
    /// Users by their anchor products (viewed or recently bought); `nil` until first needed.
    private var usersByAnchor: [String: Set<String>]?
    /// The related table's change number last seen.
    private var relatedSequence: UInt64 = 0
    /// Users with events since the last commit, in order of their first event.
    private var changed: [String] = []
    private var changedSet: Set<String> = []
    /// Users whose recommendations wait to be recomputed because a table row they depend
    /// on changed, oldest first.
    private var pending: [String] = []
    private var pendingSet: Set<String> = []
    /// When users were last recomputed for table changes.
    private var lastTableRound: ContinuousClock.Instant?

    static func make(_ p: JSONObject) throws -> any Processor {
        let op = "recommendations"
        return RecommendationsProcessor(
            store: p.string("store", default: "rec-profiles"),
            table: try p.requiredString("categories_table", for: op),
            tableField: p.string("categories_field", default: "top"),
            maxItems: try p.positiveInt("max_items", default: 20, for: op),
            topCategories: try p.positiveInt("top_categories", default: 3, for: op),
            recentWindow: try p.duration("recent_window", default: "7d", for: op),
            maxSeen: try p.positiveInt("max_seen", default: 50, for: op),
            recomputeBatch: try p.positiveInt("recompute_batch", default: 1000, for: op),
            tableRefreshMillis: try p.duration("table_refresh", default: "1s", for: op),
            relatedTable: p["related_table"]?.stringValue,
            relatedField: p.string("related_field", default: "related"),
            relatedAnchors: try p.positiveInt("related_anchors", default: 5, for: op))
    }

    public mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError) {
        let type = try record.requiredString("type")
        guard type == "purchase" || type == "view" || type == "add_to_cart" else { return }
        let product = try record.requiredString("productId")
        let t = record.timestamp
        let store = context.store(self.store)
        var state = store.get(record.key)?.objectValue ?? [:]
        var spend = state["spend"]?.objectValue ?? [:]
        var bought = state["bought"]?.objectValue ?? [:]
        var seen = state["seen"]?.objectValue ?? [:]
        var recentBought = state["recentBought"]?.objectValue ?? [:]
        let last = max(state["last"]?.intValue ?? t, t)
        usersByAnchor?[product, default: []].insert(record.key)

        if type == "purchase" {
            let category = try record.requiredString("category")
            let cents = try Cents.of(price: try record.nonNegativeNumber("price"), quantity: try record.positiveInteger("quantity"))
            spend[category] = .number(Double((spend[category]?.intValue ?? 0) + cents))
            usersByCategory?[category, default: []].insert(record.key)
            bought[product] = true
            seen[product] = nil
            if (recentBought[product]?.intValue ?? .min) < t { recentBought[product] = .millis(t) }
            let latest = recentBought.sorted { a, b in
                let (x, y) = (a.value.intValue ?? 0, b.value.intValue ?? 0)
                return x != y ? x > y : a.key < b.key
            }
            recentBought = JSONObject(distinctKeys: latest.prefix(relatedAnchors).map { ($0.key, $0.value) })
        } else if bought[product] == nil {
            let slot = type == "view" ? "view" : "cart"
            var entry = seen[product]?.objectValue ?? [:]
            if (entry[slot]?.intValue ?? .min) < t { entry[slot] = .millis(t) }
            seen[product] = .object(entry)
        }
        seen = trimmed(seen, last: last)
        state = ["spend": .object(spend), "bought": .object(bought), "seen": .object(seen), "recentBought": .object(recentBought), "last": .millis(last)]
        store.put(record.key, .object(state))
        // Recomputed once at the commit however many events the user had since the last one
        // (see `punctuate`): Redis sees the result at that commit either way.
        if changedSet.insert(record.key).inserted { changed.append(record.key) }
    }

    /// Recomputes, at each commit, the recommendations of every user with events
    /// since the last commit (each once), then of the users of every category whose row
    /// of the category table changed since the last call, and of every user with
    /// an anchor product whose row of the related table changed: a user's
    /// recommendations do not depend on the order in which the popularity,
    /// related-products and recommendations pipelines ran. The users that wait for a table
    /// change are recomputed in rounds at least `table_refresh` (default 1s, wall clock) apart,
    /// at most `recompute_batch` per round; the rest wait for the next ones. After a
    /// restart every user is recomputed once (the table may have changed meanwhile).
    public mutating func punctuate(context: ProcessorContext) -> Bool {
        let store = context.store(self.store)
        if usersByCategory == nil || usersByAnchor == nil {
            var index: [String: Set<String>] = [:]
            var anchors: [String: Set<String>] = [:]
            for user in store.sortedKeys() {
                let state = store.get(user)
                for category in state?["spend"]?.objectValue?.keys ?? [] { index[category, default: []].insert(user) }
                for product in Self.anchors(state?.objectValue ?? [:]) { anchors[product, default: []].insert(user) }
            }
            usersByCategory = index
            usersByAnchor = anchors
        }
        let (changedCategories, sequence) = context.globalChanges(table, since: tableSequence)
        tableSequence = sequence
        for category in changedCategories {
            for user in (usersByCategory?[category] ?? []).sorted() where pendingSet.insert(user).inserted { pending.append(user) }
        }
        if let relatedTable {
            let (changedProducts, sequence) = context.globalChanges(relatedTable, since: relatedSequence)
            relatedSequence = sequence
            for product in changedProducts {
                for user in (usersByAnchor?[product] ?? []).sorted() where pendingSet.insert(user).inserted { pending.append(user) }
            }
        }
        for user in changed {
            pendingSet.remove(user)
            guard let state = store.get(user)?.objectValue else { continue }
            emit(user, state, context: context)
        }
        changed.removeAll(keepingCapacity: true)
        changedSet.removeAll(keepingCapacity: true)
        // Every purchase changes its category's row, and every co-view the related rows of
        // its products, so on a busy stream most users wait here at every commit: they are
        // recomputed at most once per `table_refresh`, not at every commit.
        let now = ContinuousClock.now
        if let last = lastTableRound, now - last < .milliseconds(tableRefreshMillis) { return !pending.isEmpty }
        if !pendingSet.isEmpty { lastTableRound = now }
        var recomputed = 0
        var taken = 0
        for user in pending {
            guard recomputed < recomputeBatch else { break }
            taken += 1
            // Recomputed above with its events: nothing to do.
            guard pendingSet.remove(user) != nil else { continue }
            recomputed += 1
            guard let state = store.get(user)?.objectValue else { continue }
            emit(user, state, context: context)
        }
        pending.removeFirst(taken)
        return !pending.isEmpty
    }

    private func emit(_ user: String, _ state: JSONObject, context: ProcessorContext) {
        let last = state["last"]?.intValue ?? context.streamTime
        let recs = recommend(state, context: context)
        context.forward(StreamRecord(key: user, value: ["userId": .string(user), "recs": .object(recs)], timestamp: last))
    }

    /// The products whose related lists feed the user's recommendations: viewed recently, or bought lately.
    private static func anchors(_ state: JSONObject) -> [String] {
        Array(state["seen"]?.objectValue?.keys ?? []) + Array(state["recentBought"]?.objectValue?.keys ?? [])
    }

    /// Latest interaction with a seen product.
    private static func latest(_ entry: JSONValue) -> Int64 {
        max(entry["view"]?.intValue ?? .min, entry["cart"]?.intValue ?? .min)
    }

    private func trimmed(_ seen: JSONObject, last: Int64) -> JSONObject {
        let recent = seen.filter { last - Self.latest($0.value) <= recentWindow }
        let ranked = recent.sorted { a, b in
            let (x, y) = (Self.latest(a.value), Self.latest(b.value))
            return x != y ? x > y : a.key < b.key
        }
        return JSONObject(distinctKeys: ranked.prefix(maxSeen).map { ($0.key, $0.value) })
    }

    private func recommend(_ state: JSONObject, context: ProcessorContext) -> JSONObject {
        let spend = state["spend"]?.objectValue ?? [:]
        let bought = state["bought"]?.objectValue ?? [:]
        let seen = state["seen"]?.objectValue ?? [:]
        let last = state["last"]?.intValue ?? context.streamTime
        var score: [String: Double] = [:]
        var recency: [String: Int64] = [:]
        let categories = spend.map { ($0.key, $0.value.intValue ?? 0) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            .prefix(topCategories)
        if let topSpend = categories.first?.1, topSpend > 0 {
            for (category, cents) in categories {
                let best = context.globalLookup(table, category)?[tableField]?.objectValue ?? [:]
                guard let maxUnits = best.compactMap({ $0.value.doubleValue }).max(), maxUnits > 0 else { continue }
                let weight = Double(cents) / Double(topSpend)
                for (p, units) in best where bought[p] == nil {
                    score[p] = max(score[p] ?? 0, weight * (units.doubleValue ?? 0) / maxUnits)
                }
            }
        }
        if let relatedTable {
            for anchor in Set(Self.anchors(state)).sorted() {
                let related = context.globalLookup(relatedTable, anchor)?[relatedField]?.objectValue ?? [:]
                guard let strongest = related.compactMap({ $0.value.doubleValue }).max(), strongest > 0 else { continue }
                for (p, weight) in related where bought[p] == nil && p != anchor {
                    score[p] = max(score[p] ?? 0, 1 + (weight.doubleValue ?? 0) / strongest)
                }
            }
        }
        for (p, entry) in seen where bought[p] == nil {
            var interest = 0.0
            if let v = entry["view"]?.intValue, last - v <= recentWindow { interest += 10 }
            if let c = entry["cart"]?.intValue, last - c <= recentWindow { interest += 20 }
            score[p, default: 0] += interest
            recency[p] = Self.latest(entry)
        }
        // The `max_items` best, in order (a total order: ties end at the product id), without
        // sorting every candidate.
        let ranked = score.smallest(maxItems) { a, b in
            if a.value != b.value { return a.value > b.value }
            let (x, y) = (recency[a.key] ?? .min, recency[b.key] ?? .min)
            return x != y ? x > y : a.key < b.key
        }
        return JSONObject(distinctKeys: ranked.map { ($0.key, JSONValue.number(($0.value * 10_000).rounded() / 10_000)) })
    }
}

/// Why a product is in `rec:{userId}`, read off its score (see ``RecommendationsProcessor``):
/// what `GET /recommendation` and the demo report next to each product.
public enum RecommendationReason: String, Sendable, CaseIterable {
    case inCartAndViewed = "in the cart and viewed"
    case inCart = "in the cart"
    case viewedRecently = "viewed recently"
    case related = "related to what you viewed or bought"
    case popularInTopCategory = "popular in a top category"

    /// The reason for a score: 30+ cart and viewed, 20+ cart, 10+ viewed, the rest by
    /// the fraction: above 1 related, up to 1 popular.
    public init(score: Double) {
        switch score {
        case 30...: self = .inCartAndViewed
        case 20..<30: self = .inCart
        case 10..<20: self = .viewedRecently
        case let s where s > 1: self = .related
        default: self = .popularInTopCategory
        }
    }

    /// The reason as `GET /recommendation` reports it (the enum of its OpenAPI schema).
    public var code: String {
        switch self {
        case .inCartAndViewed: return "viewed-and-in-cart"
        case .inCart: return "in-cart"
        case .viewedRecently: return "viewed"
        case .related: return "related"
        case .popularInTopCategory: return "popular-in-your-categories"
        }
    }
}

extension Sequence {
    /// The `k` first elements of `sorted(by:)`, in that order, for a strict total order:
    /// one pass that keeps the best `k` so far (a binary search and an insertion when an
    /// element beats the last of them), instead of sorting every element.
    func smallest(_ k: Int, by areInIncreasingOrder: (Element, Element) -> Bool) -> [Element] {
        guard k > 0 else { return [] }
        var best: [Element] = []
        best.reserveCapacity(k + 1)
        for e in self {
            if best.count == k, let last = best.last, !areInIncreasingOrder(e, last) { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if areInIncreasingOrder(best[mid], e) { lo = mid + 1 } else { hi = mid }
            }
            best.insert(e, at: lo)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
