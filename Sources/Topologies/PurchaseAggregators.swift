import StreamEngine

/// `purchase_stats`: one user's purchase totals.
///
/// State (money in cents, so sums are exact):
/// `{"orders": n, "items": n, "cents": n, "last": ms, "categories": {category: cents}}`.
/// Result: `{"orders": n, "items": n, "spent": "123.40", "lastPurchaseAt": ISO-8601,
/// "categories": {category: 123.4}}` — `orders` counts purchase events, `items`
/// sums `quantity`, `spent` sums `price × quantity` (2 decimals), `lastPurchaseAt`
/// is the latest event time, `categories` is the spend per category.
///
/// Params: `price`, `quantity`, `category` (field names; defaults as written).
public struct PurchaseStatsAggregator: Aggregator {
    public let priceField: String
    public let quantityField: String
    public let categoryField: String
    /// The three fields as keys that remember where they were last found (read once per record).
    private let price: FieldKey, quantity: FieldKey, category: FieldKey

    public init(priceField: String = "price", quantityField: String = "quantity", categoryField: String = "category") {
        self.priceField = priceField
        self.quantityField = quantityField
        self.categoryField = categoryField
        price = FieldKey(priceField)
        quantity = FieldKey(quantityField)
        category = FieldKey(categoryField)
    }

    static func make(_ p: JSONObject) throws -> any Aggregator {
        PurchaseStatsAggregator(
            priceField: p.string("price", default: "price"), quantityField: p.string("quantity", default: "quantity"),
            categoryField: p.string("category", default: "category"))
    }

    public func initial() -> JSONValue { ["orders": 0, "items": 0, "cents": 0, "last": .null, "categories": .object([:])] }

    public func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        let price = try record.nonNegativeNumber(priceField)
        let quantity = try record.positiveInteger(quantityField)
        let category = try record.requiredString(categoryField)
        let cents = try Cents.of(price: price, quantity: quantity)
        var categories = state["categories"]?.objectValue ?? [:]
        categories[category] = .number(Double((categories[category]?.intValue ?? 0) + cents))
        let last = max(state["last"]?.intValue ?? record.timestamp, record.timestamp)
        return [
            "orders": .number(Double((state["orders"]?.intValue ?? 0) + 1)),
            "items": .number(Double((state["items"]?.intValue ?? 0) + quantity)),
            "cents": .number(Double((state["cents"]?.intValue ?? 0) + cents)),
            "last": .millis(last),
            "categories": .object(categories),
        ]
    }

    /// The state's members, in the order ``initial()`` and ``add(_:_:)`` give them.
    static let members = ["orders", "items", "cents", "last", "categories"]

    /// ``add(_:_:)`` in place: the same state, without rebuilding the object (every check
    /// comes before the first change). A state of another shape goes through ``add(_:_:)``.
    public func add(into state: inout JSONValue, _ record: StreamRecord) throws(RecordError) {
        let price = try record.nonNegativeNumber(self.price)
        let quantity = try record.positiveInteger(self.quantity)
        let category = try record.requiredString(self.category)
        let cents = try Cents.of(price: price, quantity: quantity)
        guard state.objectValue?.hasKeys(Self.members) == true else {
            state = try add(state, record)
            return
        }
        let t = record.timestamp
        func plus(_ v: inout JSONValue, _ n: Int64) { v = .number(Double((v.intValue ?? 0) + n)) }
        // By position: `hasKeys` just checked that the members are `members`, in this order.
        state.modifyObject { o in
            o.modifyValue(at: 0) { plus(&$0, 1) }
            o.modifyValue(at: 1) { plus(&$0, quantity) }
            o.modifyValue(at: 2) { plus(&$0, cents) }
            o.modifyValue(at: 3) { $0 = .millis(max($0.intValue ?? t, t)) }
            o.modifyValue(at: 4) { c in
                if c.modifyObject({ $0.modifyValue(forKey: category, default: 0) { plus(&$0, cents) } }) == nil {
                    c = .object([category: .number(Double(cents))])
                }
            }
        }
    }

    /// Counts, sums in cents and a latest time merge exactly in any grouping: the user-stats
    /// pipeline's upstream tasks combine before its repartition by userId.
    public var combinable: Bool { true }

    public func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        func int(_ v: JSONValue, _ k: String) -> Int64 { v[k]?.intValue ?? 0 }
        var categories = a["categories"]?.objectValue ?? [:]
        for (c, v) in b["categories"]?.objectValue ?? [:] {
            categories[c] = .number(Double((categories[c]?.intValue ?? 0) + (v.intValue ?? 0)))
        }
        let last = [a["last"]?.intValue, b["last"]?.intValue].compactMap { $0 }.max()
        return [
            "orders": .number(Double(int(a, "orders") + int(b, "orders"))),
            "items": .number(Double(int(a, "items") + int(b, "items"))),
            "cents": .number(Double(int(a, "cents") + int(b, "cents"))),
            "last": last.map(JSONValue.millis) ?? .null,
            "categories": .object(categories),
        ]
    }

    public func result(_ state: JSONValue) -> JSONObject { result(state, only: nil) }

    /// Leaves out the members the steps after it do not read (`categories`, the largest, when
    /// only the totals go to a Redis hash).
    public func result(_ state: JSONValue, reading fields: Set<String>) -> JSONObject { result(state, only: fields) }

    private func result(_ state: JSONValue, only fields: Set<String>?) -> JSONObject {
        // The state's members by position when they are `members` in order (what `initial` and
        // `add` make), by key otherwise; the result's keys are distinct by construction.
        let o = state.objectValue ?? [:]
        let inOrder = o.hasKeys(Self.members)
        func member(_ i: Int) -> JSONValue? { inOrder ? o.value(at: i) : o[Self.members[i]] }
        func wanted(_ name: String) -> Bool { fields?.contains(name) ?? true }
        var out: [(String, JSONValue)] = []
        out.reserveCapacity(5)
        if wanted("orders") { out.append(("orders", member(0) ?? 0)) }
        if wanted("items") { out.append(("items", member(1) ?? 0)) }
        if wanted("spent") { out.append(("spent", .string(Cents.decimalString(member(2)?.intValue ?? 0)))) }
        if wanted("lastPurchaseAt") { out.append(("lastPurchaseAt", member(3)?.intValue.map { .string(EventTime.formatISO8601($0)) } ?? .null)) }
        if wanted("categories") {
            let categories = (member(4)?.objectValue ?? [:]).map { ($0.key, JSONValue.number(Cents.amount($0.value.intValue ?? 0))) }
            out.append(("categories", .object(JSONObject(distinctKeys: categories))))
        }
        return JSONObject(distinctKeys: out)
    }
}

extension PurchaseStatsAggregator: NativeStateAggregator {
    public func initialState() -> PurchaseTotals { PurchaseTotals.make(capacity: PurchaseTotals.initialCapacity) }

    public func state(from json: JSONValue) -> PurchaseTotals? {
        guard let o = json.objectValue, o.hasKeys(Self.members),
            let orders = o.value(at: 0).intValue, let items = o.value(at: 1).intValue, let cents = o.value(at: 2).intValue,
            let categories = o.value(at: 4).objectValue
        else { return nil }
        let last: Int64
        switch o.value(at: 3) {
        case .null: last = PurchaseTotals.noTime
        case let v:
            guard let t = v.intValue, t != PurchaseTotals.noTime else { return nil }
            last = t
        }
        var state = PurchaseTotals.make(capacity: max(PurchaseTotals.initialCapacity, categories.count))
        state.withUnsafeMutablePointers { h, _ in
            h.pointee.orders = orders
            h.pointee.items = items
            h.pointee.cents = cents
            h.pointee.last = last
        }
        for (name, value) in categories {
            guard let c = value.intValue else { return nil }
            PurchaseTotals.append(name, c, to: &state)
        }
        return state
    }

    /// ``add(into:_:)-(JSONValue,_)`` natively: the same checks first, then the totals and the
    /// category's cents changed in place (a new category appended, as the JSON state appends it).
    public func add(into state: inout PurchaseTotals, _ record: StreamRecord) throws(RecordError) {
        let price = try record.nonNegativeNumber(self.price)
        let quantity = try record.positiveInteger(self.quantity)
        let category = try record.requiredString(self.category)
        let cents = try Cents.of(price: price, quantity: quantity)
        let t = record.timestamp
        state.withUnsafeMutablePointers { h, _ in
            h.pointee.orders += 1
            h.pointee.items += quantity
            h.pointee.cents += cents
            if h.pointee.last == PurchaseTotals.noTime || h.pointee.last < t { h.pointee.last = t }
        }
        if let i = state.index(of: category) {
            state.withUnsafeMutablePointerToElements { $0[i].cents += cents }
        } else {
            PurchaseTotals.append(category, cents, to: &state)
        }
    }

    public func result(_ state: PurchaseTotals, reading fields: Set<String>?) -> JSONObject {
        func wanted(_ name: String) -> Bool { fields?.contains(name) ?? true }
        let h = state.header
        var out: [(String, JSONValue)] = []
        out.reserveCapacity(5)
        if wanted("orders") { out.append(("orders", .number(Double(h.orders)))) }
        if wanted("items") { out.append(("items", .number(Double(h.items)))) }
        if wanted("spent") { out.append(("spent", .string(Cents.decimalString(h.cents)))) }
        if wanted("lastPurchaseAt") {
            out.append(("lastPurchaseAt", h.last == PurchaseTotals.noTime ? .null : .string(EventTime.formatISO8601(h.last))))
        }
        if wanted("categories") {
            out.append(("categories", .object(JSONObject(distinctKeys: state.categories.map { ($0.name, .number(Cents.amount($0.cents))) }))))
        }
        return JSONObject(distinctKeys: out)
    }
}

/// `purchase_stats`' state natively (``NativeStateAggregator``): the totals and every category's
/// cents in one allocation, the categories in first-purchase order (the JSON state's order).
public final class PurchaseTotals: ManagedBuffer<PurchaseTotals.Totals, PurchaseTotals.Category>, AggregateState {
    /// The totals, and how many categories the object holds and has room for.
    public struct Totals {
        var orders: Int64 = 0, items: Int64 = 0, cents: Int64 = 0
        /// The latest event time; ``PurchaseTotals/noTime`` before the first purchase.
        var last: Int64 = PurchaseTotals.noTime
        var count: Int32 = 0, capacity: Int32 = 0
    }

    /// One category's spend.
    public struct Category {
        var name: String
        var cents: Int64
    }

    /// `last` of a state without purchases (`null` in JSON).
    static let noTime = Int64.min
    /// Room for this many categories in a new state (the shop's dozen, in the benchmark's data).
    static let initialCapacity = 12

    /// An empty state with room for `capacity` categories.
    static func make(capacity: Int) -> PurchaseTotals {
        let buffer = create(minimumCapacity: capacity) { _ in
            var totals = Totals()
            totals.capacity = Int32(capacity)
            return totals
        }
        return unsafeDowncast(buffer, to: PurchaseTotals.self)
    }

    deinit {
        _ = withUnsafeMutablePointers { h, e in e.deinitialize(count: Int(h.pointee.count)) }
    }

    /// Where `name` is among the categories.
    func index(of name: String) -> Int? {
        withUnsafeMutablePointers { h, e in
            for i in 0..<Int(h.pointee.count) where e[i].name == name { return i }
            return nil
        }
    }

    /// Appends a category to `state`, moving the state into a larger object when it is full.
    static func append(_ name: String, _ cents: Int64, to state: inout PurchaseTotals) {
        if state.header.count == state.header.capacity {
            let larger = PurchaseTotals.make(capacity: max(4, Int(state.header.capacity) * 2))
            state.withUnsafeMutablePointers { h, e in
                larger.withUnsafeMutablePointers { lh, le in
                    le.moveInitialize(from: e, count: Int(h.pointee.count))
                    let capacity = lh.pointee.capacity
                    lh.pointee = h.pointee
                    lh.pointee.capacity = capacity
                    h.pointee.count = 0
                }
            }
            state = larger
        }
        assert(state.header.count < state.header.capacity && Int(state.header.capacity) <= state.capacity, "room for a category")
        state.withUnsafeMutablePointers { h, e in
            (e + Int(h.pointee.count)).initialize(to: Category(name: name, cents: cents))
            h.pointee.count += 1
        }
    }

    /// The categories, in first-purchase order.
    var categories: [Category] {
        withUnsafeMutablePointers { h, e in Array(UnsafeBufferPointer(start: e, count: Int(h.pointee.count))) }
    }

    /// ``json``'s compact bytes, written from the object (no tree made): the store encodes each
    /// changed user's state at every commit. The one place that lays the state out as JSON.
    public func encodeCompact(into out: inout [UInt8]) {
        withUnsafeMutablePointers { h, e in
            let t = h.pointee
            out.reserveCapacity(out.count + 48 + Int(t.count) * 20)
            JSONCompact.appendObjectHeader(memberCount: 5, into: &out)
            JSONCompact.appendString("orders", into: &out)
            JSONCompact.encodeNumber(Double(t.orders), into: &out)
            JSONCompact.appendString("items", into: &out)
            JSONCompact.encodeNumber(Double(t.items), into: &out)
            JSONCompact.appendString("cents", into: &out)
            JSONCompact.encodeNumber(Double(t.cents), into: &out)
            JSONCompact.appendString("last", into: &out)
            if t.last == Self.noTime { JSONCompact.appendNull(into: &out) } else { JSONCompact.encodeNumber(Double(t.last), into: &out) }
            JSONCompact.appendString("categories", into: &out)
            JSONCompact.appendObjectHeader(memberCount: Int(t.count), into: &out)
            for i in 0..<Int(t.count) {
                JSONCompact.appendString(e[i].name, into: &out)
                JSONCompact.encodeNumber(Double(e[i].cents), into: &out)
            }
        }
    }

    /// The JSON state ``PurchaseStatsAggregator`` folds (its members in its order).
    /// Read back from ``encodeCompact(into:)``'s bytes (off the record path: queries, a JSON update).
    public var json: JSONValue {
        var bytes: [UInt8] = []
        encodeCompact(into: &bytes)
        return JSONCompact.decode(bytes)
    }
}

/// `product_units`: units sold per product (of one category, when keyed by category).
///
/// State: `{productId: units}`. Result: `{"units": {productId: units}, "top":
/// {productId: units}}` — `units` holds every product, `top` the `top` best
/// sellers (most units first; ties by product id).
///
/// Params: `member` (default `productId`), `units` (default `quantity`), `top` (default 20).
public struct ProductUnitsAggregator: Aggregator {
    public let memberField: String
    public let unitsField: String
    public let top: Int

    public init(memberField: String = "productId", unitsField: String = "quantity", top: Int = 20) {
        self.memberField = memberField
        self.unitsField = unitsField
        self.top = top
    }

    static func make(_ p: JSONObject) throws -> any Aggregator {
        ProductUnitsAggregator(
            memberField: p.string("member", default: "productId"), unitsField: p.string("units", default: "quantity"),
            top: try p.positiveInt("top", default: 20, for: "product_units"))
    }

    public func initial() -> JSONValue { .object([:]) }

    public func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        let product = try record.requiredString(memberField)
        let units = try record.positiveInteger(unitsField)
        var o = state.objectValue ?? [:]
        o[product] = .number(Double((o[product]?.intValue ?? 0) + units))
        return .object(o)
    }

    /// Integer unit sums per member merge exactly in any grouping: the category-popularity
    /// pipeline's upstream tasks combine before its repartition by category.
    public var combinable: Bool { true }

    public func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        var o = a.objectValue ?? [:]
        for (k, v) in b.objectValue ?? [:] { o[k] = .number(Double((o[k]?.intValue ?? 0) + (v.intValue ?? 0))) }
        return .object(o)
    }

    public func result(_ state: JSONValue) -> JSONObject {
        let all = state.objectValue ?? [:]
        return ["units": .object(all), "top": .object(Self.best(all, count: top))]
    }

    /// The `count` members with the highest numbers, highest first; ties by member name.
    static func best(_ o: JSONObject, count: Int) -> JSONObject {
        let ranked = o.map { ($0.key, $0.value.doubleValue ?? 0) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        return JSONObject(distinctKeys: ranked.prefix(count).map { ($0.0, JSONValue.number($0.1)) })
    }
}
