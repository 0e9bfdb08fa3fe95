import StreamEngine

/// A "recently viewed" list: product → time of the latest view (epoch ms), at
/// most `maxItems` products (the most recent kept), none older than `maxAge`
/// against the newest.
///
/// Trimming keeps the same products Redis keeps with `ZREMRANGEBYRANK key 0
/// -(maxItems+1)` and `ZREMRANGEBYSCORE key -inf (newest-maxAge)`: among equal
/// times the lexicographically larger product stays.
struct RecentList {
    var items: [String: Int64]
    let maxItems: Int
    let maxAge: Int64

    init(_ json: JSONValue?, maxItems: Int, maxAge: Int64) {
        var items: [String: Int64] = [:]
        for (p, t) in json?.objectValue ?? [:] { if let t = t.intValue { items[p] = t } }
        self.items = items
        self.maxItems = maxItems
        self.maxAge = maxAge
    }

    var newest: Int64? { items.values.max() }

    /// Records a view; later time wins. Returns whether the product's time changed.
    @discardableResult
    mutating func add(_ product: String, at t: Int64) -> Bool {
        if let cur = items[product], cur >= t { return false }
        items[product] = t
        return true
    }

    /// Drops what is too old or beyond `maxItems`.
    mutating func trim() {
        guard let newest else { return }
        items = items.filter { newest - $0.value <= maxAge }
        if items.count > maxItems {
            let keep = items.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }.prefix(maxItems)
            items = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }

    /// Products newest first (ties: larger product id first, as Redis `ZREVRANGE`).
    var ordered: [(product: String, time: Int64)] {
        items.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }.map { ($0.key, $0.value) }
    }

    var json: JSONValue {
        .object(JSONObject(distinctKeys: ordered.map { ($0.product, JSONValue.millis($0.time)) }))
    }
}

/// Parameters shared by the two recently-viewed processors.
struct RecentListParams {
    let store: String
    let maxItems: Int
    let maxAge: Int64
    let guestKey: KeyTemplate

    init(_ p: JSONObject, op: String, defaultStore: String) throws {
        store = p.string("store", default: defaultStore)
        maxItems = try p.positiveInt("max_items", default: 100, for: op)
        maxAge = try p.duration("max_age", default: "30d", for: op)
        guestKey = try p.keyTemplate("guest_key", default: "recent:guest:{guestId}", for: op)
    }

    func guestKey(_ guestId: String) -> String {
        guestKey.render(recordKey: guestId) { $0 == "guestId" ? guestId : nil } ?? "recent:guest:\(guestId)"
    }

    /// `<guest key>:merged`: the latest login time whose merge was applied; guest views at or
    /// before it are not added to the guest key again (`ZADDIFNEWER`).
    func mergedGuardKey(_ guestId: String) -> String { guestKey(guestId) + ":merged" }
}

/// `recent_guest_views`: the first half of recently viewed with login merge,
/// fed by `user_events` and `logins` keyed by guestId (guest views and logins
/// share the key, so one guest lives in one task).
///
/// - A guest view (no `memberId`, a `guestId`, `type: view`, a `productId`)
///   updates the guest's list in the store and forwards a record whose
///   `guestCommands` update `recent:guest:{g}` incrementally (`ZADD`, trim to
///   `max_items`, drop older than `max_age` against the newest, `PEXPIRE`) —
///   each idempotent, so a replay after a crash leaves the same key.
/// - A login (a record from `logins_topic`: `memberId`, `guestId`) forwards a
///   merge record `{"memberId", "guestId", "products": {p: t}}` with the guest's
///   products viewed up to the login time and removes them from the store:
///   later views by that guestId start a new list. The member side removes them
///   from Redis atomically with the member list update (`recent_member_views`).
///   A guest view that arrives after its guest's login but happened before it
///   (the two topics are not ordered with each other) goes to the member too.
/// - A member view (`memberId` set) is forwarded as `{"memberId", "guestId": "",
///   "products": {p: t}}`.
/// - Other events (clicks, searches, …) are dropped: only views make the list.
///
/// Every forwarded record has `guestId` (possibly "") and `guestCommands`
/// (possibly empty); only member-bound records have `memberId`.
///
/// Store: guestId → `{"items": {p: t}, "login": {"memberId", "at"}}`, kept
/// `max_age` after the guest's latest activity (event time).
public struct RecentGuestViewsProcessor: Processor {
    let params: RecentListParams
    let loginsTopic: String

    static func make(_ p: JSONObject) throws -> any Processor {
        RecentGuestViewsProcessor(
            params: try RecentListParams(p, op: "recent_guest_views", defaultStore: "recent-guests"),
            loginsTopic: p.string("logins_topic", default: "logins"))
    }

    public mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError) {
        if record.origin?.topic == loginsTopic {
            try login(record, context)
            return
        }
        guard try record.requiredString("type") == "view" else { return }
        let product = try record.requiredString("productId")
        let t = record.timestamp
        if let member = try record.optionalString("memberId") {
            forward(member: member, guest: "", products: [product: .millis(t)], record, context)
            return
        }
        let guest = try record.requiredString("guestId")
        let store = context.store(params.store)
        var state = store.get(guest)?.objectValue ?? [:]
        if let login = state["login"], let at = login["at"]?.intValue, t <= at, let member = login["memberId"]?.stringValue {
            // Viewed before the login that was already processed: it belongs to the member
            // (it never reached the guest key, so there is nothing to remove there).
            forward(member: member, guest: "", products: [product: .millis(t)], record, context)
            return
        }
        var list = RecentList(state["items"], maxItems: params.maxItems, maxAge: params.maxAge)
        let changed = list.add(product, at: t)
        list.trim()
        state["items"] = list.json
        save(&state, guest, store)

        let key = params.guestKey(guest)
        var commands: [JSONValue] = []
        // Added unless a login merge at or after this view's time went through: then the member
        // side owns the product, and a late or replayed write must not bring it back.
        if changed { commands.append(["ZADDIFNEWER", .string(key), .string(String(t)), .string(product), .string(params.mergedGuardKey(guest))]) }
        commands.append(["ZREMRANGEBYRANK", .string(key), "0", .string(String(-(params.maxItems + 1)))])
        if let newest = list.newest {
            commands.append(["ZREMRANGEBYSCORE", .string(key), "-inf", .string("(" + String(newest - params.maxAge))])
        }
        commands.append(["PEXPIRE", .string(key), .string(String(params.maxAge))])
        context.forward(StreamRecord(
            key: record.key, value: ["guestId": .string(guest), "guestCommands": .array(commands)], timestamp: t, origin: record.origin))
    }

    private func login(_ record: StreamRecord, _ context: ProcessorContext) throws(RecordError) {
        let member = try record.requiredString("memberId")
        let guest = try record.requiredString("guestId")
        let at = record.timestamp
        let store = context.store(params.store)
        var state = store.get(guest)?.objectValue ?? [:]
        let list = RecentList(state["items"], maxItems: params.maxItems, maxAge: params.maxAge)
        // Views up to the login merge; views after it (arrived first) stay as the new guest list.
        var merged = JSONObject()
        var remaining = JSONObject()
        for (p, t) in list.ordered {
            if t <= at { merged[p] = .millis(t) } else { remaining[p] = .millis(t) }
        }
        state["items"] = .object(remaining)
        if (state["login"]?["at"]?.intValue ?? .min) <= at {
            state["login"] = ["memberId": .string(member), "at": .millis(at)]
        }
        save(&state, guest, store)
        if !merged.isEmpty { forward(member: member, guest: guest, products: merged, loginAt: at, record, context) }
    }

    private func save(_ state: inout JSONObject, _ guest: String, _ store: KeyValueStore) {
        let itemsNewest = RecentList(state["items"], maxItems: params.maxItems, maxAge: params.maxAge).newest
        let latest = [itemsNewest, state["login"]?["at"]?.intValue].compactMap { $0 }.max()
        if (state["items"]?.objectValue ?? [:]).isEmpty && state["login"] == nil {
            store.delete(guest)
        } else {
            store.put(guest, .object(state), expiresAt: latest.map { $0 + params.maxAge })
        }
    }

    private func forward(member: String, guest: String, products: JSONObject, loginAt: Int64? = nil, _ record: StreamRecord, _ context: ProcessorContext) {
        var value: JSONObject = ["memberId": .string(member), "guestId": .string(guest), "products": .object(products), "guestCommands": []]
        if let loginAt { value["loginAt"] = .millis(loginAt) }
        context.forward(StreamRecord(key: record.key, value: value, timestamp: record.timestamp, origin: record.origin))
    }
}

/// `recent_member_views`: the second half, after `rekey` by memberId. Keeps
/// each member's list in the store, applies member views and login merges
/// (the same product keeps the later time; trimmed to `max_items` / `max_age`)
/// and forwards `{"memberId", "recent": {p: t}, "guestId", "guestRemovals"}`:
/// `recent` is the whole list (a `redis` sorted-set step writes it as a whole)
/// and, for a merge, `guestRemovals` holds `ZREMIFLE recent:guest:{g} t p` for
/// every merged product — removed only if the guest has not viewed it again
/// since — and `SETMAX recent:guest:{g}:merged <login time> <max_age>`, which
/// keeps the guest side's `ZADDIFNEWER` from adding a merged view again (a
/// replay after a crash, or a guest commit that lands after the merge), for a
/// `redis` `commands` step. Both steps run in the same task and
/// commit, so Redis applies them in one atomic script: no reader sees a
/// product in both lists or in neither, and the guest key disappears with its
/// last member.
///
/// Store: memberId → `{"items": {p: t}}`, kept `max_age` after the newest view.
public struct RecentMemberViewsProcessor: Processor {
    let params: RecentListParams

    static func make(_ p: JSONObject) throws -> any Processor {
        RecentMemberViewsProcessor(params: try RecentListParams(p, op: "recent_member_views", defaultStore: "recent-members"))
    }

    public mutating func process(_ record: StreamRecord, context: ProcessorContext) throws(RecordError) {
        let member = try record.requiredString("memberId")
        let guest = try record.optionalString("guestId")
        guard let products = record.field("products")?.objectValue else {
            throw RecordError(.missingField, "field 'products' (an object of productId: epoch ms) is missing")
        }
        let store = context.store(params.store)
        var list = RecentList(store.get(member)?["items"], maxItems: params.maxItems, maxAge: params.maxAge)
        var removals: [JSONValue] = []
        for (p, t) in products {
            guard let t = t.intValue else { throw RecordError(.wrongType, "product times must be epoch milliseconds") }
            list.add(p, at: t)
            if let guest { removals.append(["ZREMIFLE", .string(params.guestKey(guest)), .string(String(t)), .string(p)]) }
        }
        if let guest, let at = record.field("loginAt")?.intValue {
            removals.append(["SETMAX", .string(params.mergedGuardKey(guest)), .string(String(at)), .string(String(params.maxAge))])
        }
        list.trim()
        let json = list.json
        store.put(member, ["items": json], expiresAt: list.newest.map { $0 + params.maxAge })
        context.forward(StreamRecord(
            key: member,
            value: ["memberId": .string(member), "recent": json, "guestId": .string(guest ?? ""), "guestRemovals": .array(removals)],
            timestamp: record.timestamp, origin: record.origin))
    }
}
