import StreamEngine
import Testing
import Topologies

/// `purchase_stats` and `product_units` say they are combinable: the runtime then folds records
/// into partial states before a repartition and merges the partials after it. That is only
/// right if merging partials of any grouping gives the state of adding every record one by one.
@Suite("purchase_stats and product_units: merged partials equal the records added one by one")
struct CombinableAggregatorsTests {
    static let categories = ["books", "électronique", "toys", "garden"]

    static func purchase(_ i: Int) -> StreamRecord {
        let value: JSONObject = [
            "userId": "u1", "productId": .string("p-\((i * 13) % 17)"), "price": .number(Double(i % 7) * 3.35 + 0.99),
            "quantity": .number(Double(1 + i % 3)), "category": .string(categories[(i * 5) % categories.count]),
        ]
        // Event times out of order: the latest must win wherever it falls.
        return StreamRecord(key: "u1", value: value, timestamp: 1_733_000_000_000 + Int64((i * 7919) % 1000) * 1000)
    }

    /// Folds `records` one by one, and in consecutive groups of the given sizes into partials that
    /// are then merged into a state that already holds `prefix`.
    static func check(_ aggregator: any Aggregator, groups: [Int], prefix: Int) throws {
        let records = (0..<(prefix + groups.reduce(0, +))).map(purchase)
        var oneByOne = aggregator.initial()
        for r in records { try aggregator.add(into: &oneByOne, r) }
        var merged = aggregator.initial()
        for r in records[..<prefix] { try aggregator.add(into: &merged, r) }
        var next = prefix
        for size in groups {
            var partial = aggregator.initial()
            for r in records[next..<(next + size)] { try aggregator.add(into: &partial, r) }
            merged = aggregator.merge(merged, partial)
            next += size
        }
        #expect(merged == oneByOne, "groups \(groups) after \(prefix)")
        #expect(aggregator.result(merged) == aggregator.result(oneByOne), "groups \(groups) after \(prefix)")
    }

    @Test("purchase_stats: combinable, and any grouping merges to the one-by-one state and result", arguments: [[1], [5, 1, 30], [200], [3, 3, 3, 3, 3, 3, 50]])
    func purchaseStats(groups: [Int]) throws {
        let aggregator = PurchaseStatsAggregator()
        #expect(aggregator.combinable)
        try Self.check(aggregator, groups: groups, prefix: 0)
        try Self.check(aggregator, groups: groups, prefix: 17)
    }

    @Test("product_units: combinable, and any grouping merges to the one-by-one state and result", arguments: [[1], [5, 1, 30], [200], [3, 3, 3, 3, 3, 3, 50]])
    func productUnits(groups: [Int]) throws {
        let aggregator = ProductUnitsAggregator(top: 5)
        #expect(aggregator.combinable)
        try Self.check(aggregator, groups: groups, prefix: 0)
        try Self.check(aggregator, groups: groups, prefix: 17)
    }
}
