import StreamEngine
import Testing
import Topologies

@Suite("purchase_stats: the in-place add gives what add gives")
struct PurchaseStatsInPlaceTests {
    let aggregator = PurchaseStatsAggregator()

    func purchase(_ i: Int) -> StreamRecord {
        let categories = ["books", "électronique", "toys", "garden"]
        let value: JSONObject = [
            "userId": "u1", "price": .number(Double(i % 7) * 3.35 + 0.99), "quantity": .number(Double(1 + i % 3)),
            "category": .string(categories[(i * 5) % categories.count]),
        ]
        // Event times out of order: the latest must win.
        return StreamRecord(key: "u1", value: value, timestamp: 1_733_000_000_000 + Int64((i * 7919) % 1000) * 1000)
    }

    @Test("a run of purchases: the same state after every record, in the same member order; a state of another shape goes through add")
    func sameAsAdd() throws {
        var rebuilt = aggregator.initial()
        var inPlace = aggregator.initial()
        for i in 0..<200 {
            rebuilt = try aggregator.add(rebuilt, purchase(i))
            try aggregator.add(into: &inPlace, purchase(i))
            #expect(inPlace == rebuilt)
            #expect(JSONCompact.encoded(inPlace) == JSONCompact.encoded(rebuilt), "same bytes in the store and the changelog")
        }
        var odd: JSONValue = ["orders": 3]
        try aggregator.add(into: &odd, purchase(1))
        #expect(odd == (try aggregator.add(["orders": 3], purchase(1))))
    }

    @Test("the result reads the state by position or by key alike: the same result from its members in another order")
    func resultByPositionOrKey() throws {
        var state = aggregator.initial()
        for i in 0..<20 { try aggregator.add(into: &state, purchase(i)) }
        let inOrder = try #require(state.objectValue)
        let shuffled = JSONValue.object(JSONObject(inOrder.reversed().map { ($0.key, $0.value) }))
        #expect(shuffled.objectValue?.keys != inOrder.keys)
        let result = aggregator.result(state)
        #expect(aggregator.result(shuffled) == result)
        #expect(result.keys == ["orders", "items", "spent", "lastPurchaseAt", "categories"])
        #expect(result["orders"] == 20)
        #expect(result["categories"]?.objectValue?.count == 4)
    }

    @Test("a result for readers of some fields holds those, equal to the full result's, and leaves out the rest")
    func resultReadingSomeFields() throws {
        var state = aggregator.initial()
        for i in 0..<20 { try aggregator.add(into: &state, purchase(i)) }
        let full = aggregator.result(state)
        let totals = aggregator.result(state, reading: ["orders", "items", "spent", "lastPurchaseAt"])
        #expect(totals.keys == ["orders", "items", "spent", "lastPurchaseAt"])
        for key in totals.keys { #expect(totals[key] == full[key], "\(key)") }
        let spend = aggregator.result(state, reading: ["categories", "categories.books"])
        #expect(spend.keys == ["categories"])
        #expect(spend["categories"] == full["categories"])
    }

    @Test("a purchase it rejects leaves the state as it was")
    func rejectedLeavesState() throws {
        var state = try aggregator.add(aggregator.initial(), purchase(0))
        let before = state
        var bad = purchase(1)
        bad.value["quantity"] = 0
        #expect(throws: RecordError.self) { try aggregator.add(into: &state, bad) }
        #expect(state == before)
    }
}

@Suite("purchase_stats natively: the state the store keeps between commits gives what the JSON state gives")
struct PurchaseStatsNativeTests {
    let aggregator = PurchaseStatsAggregator()

    /// Purchases over `categories` distinct categories, event times out of order.
    func purchase(_ i: Int, categories: Int) -> StreamRecord {
        let value: JSONObject = [
            "userId": "u1", "price": .number(Double(i % 7) * 3.35 + 0.99), "quantity": .number(Double(1 + i % 3)),
            "category": .string(i % 5 == 0 ? "électronique-\(i % categories)" : "c\((i * 7) % categories)"),
        ]
        return StreamRecord(key: "u1", value: value, timestamp: 1_733_000_000_000 + Int64((i * 7919) % 1000) * 1000)
    }

    @Test("after every record: the same JSON state, bytes and member order included, and the same results", arguments: [1, 12, 40])
    func sameAsJSON(categories: Int) throws {
        var json = aggregator.initial()
        var native = aggregator.initialState()
        #expect(native.json == json)
        var initial: [UInt8] = []
        native.encodeCompact(into: &initial)
        #expect(initial == JSONCompact.encoded(json))
        for i in 0..<300 {
            let record = purchase(i, categories: categories)
            json = try aggregator.add(json, record)
            try aggregator.add(into: &native, record)
            #expect(JSONCompact.encoded(native.json) == JSONCompact.encoded(json), "record \(i)")
            var direct: [UInt8] = []
            native.encodeCompact(into: &direct)
            #expect(direct == JSONCompact.encoded(json), "the compact bytes written from the object, record \(i)")
            #expect(aggregator.result(native, reading: nil) == aggregator.result(json))
            let totals: Set<String> = ["orders", "items", "spent", "lastPurchaseAt"]
            #expect(aggregator.result(native, reading: totals).keys == aggregator.result(json, reading: totals).keys)
        }
        // More categories than a new native state has room for (12): it grew, keeping their order.
        #expect(json["categories"]?.objectValue?.count == [1: 2, 12: 24, 40: 40][categories])
    }

    @Test("a JSON state (restored from the changelog) made native folds on to the same state; one of another shape is not made native")
    func fromJSON() throws {
        var json = aggregator.initial()
        for i in 0..<50 { json = try aggregator.add(json, purchase(i, categories: 20)) }
        var native = try #require(aggregator.state(from: json))
        #expect(native.json == json)
        json = try aggregator.add(json, purchase(50, categories: 20))
        try aggregator.add(into: &native, purchase(50, categories: 20))
        #expect(native.json == json)
        #expect(try #require(aggregator.state(from: aggregator.initial())).json == aggregator.initial())
        #expect(aggregator.state(from: ["orders": 3]) == nil)
        #expect(aggregator.state(from: ["orders": 1.5, "items": 1, "cents": 1, "last": .null, "categories": .object([:])]) == nil)
        #expect(aggregator.state(from: ["orders": 1, "items": 1, "cents": 1, "last": .null, "categories": ["a": "x"]]) == nil)
    }

    @Test("a purchase it rejects leaves the native state as it was")
    func rejectedLeavesState() throws {
        var native = aggregator.initialState()
        try aggregator.add(into: &native, purchase(0, categories: 3))
        let before = native.json
        var bad = purchase(1, categories: 3)
        bad.value["quantity"] = 0
        #expect(throws: RecordError.self) { try aggregator.add(into: &native, bad) }
        bad = purchase(1, categories: 3)
        bad.value["category"] = ""
        #expect(throws: RecordError.self) { try aggregator.add(into: &native, bad) }
        #expect(native.json == before)
    }
}
