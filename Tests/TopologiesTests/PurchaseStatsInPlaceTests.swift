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
