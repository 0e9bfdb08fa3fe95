import StreamEngine
import StreamEngineTesting
import Testing
import Topologies

extension InMemoryTopologyTests {
    @Suite("Purchase pipelines on the TopologyTestDriver: user stats, category popularity, trending")
    struct PurchasePipelineTests {
        typealias E = ShopEvents

        @Test("user:{u}:stats, user:{u}:categories and popular:{category} from two purchases per user")
        func userStatsAndPopularity() async throws {
            let driver = try await InMemoryTopologyTests.run(["user-stats", "category-popularity"], E.purchasesTopic, [
                // u-1's later purchase arrives first (and on another partition than the earlier one).
                ("u-1", E.purchase(order: "o-2", user: "u-1", product: "p-2", category: "books", price: 12.5, quantity: 1, at: At.day(0, 13, 30)), 1),
                ("u-1", E.purchase(order: "o-1", user: "u-1", product: "p-1", category: "shoes", price: 59.9, quantity: 2, at: At.day(0, 12)), 2),
                ("u-2", E.purchase(order: "o-3", user: "u-2", product: "p-1", category: "shoes", price: 59.9, quantity: 1, at: At.day(0, 12, 30)), 0),
                ("u-2", E.purchase(order: "o-4", user: "u-2", product: "p-3", category: "shoes", price: 0.1, quantity: 3, at: At.day(0, 12, 45)), 0),
            ], raw: [
                #"{"orderId":"o-9","userId":"u-1","productId":"p-1","category":"shoes","price":5,"quantity":"two","timestamp":"2024-12-14T12:00:00Z"}"#,
                #"{"orderId":"o-9","userId":"u-1","productId":"p-1","category":"shoes","price":5,"quantity":0,"timestamp":"2024-12-14T12:00:00Z"}"#,
            ])

            let userU1Stats = driver.redis.hgetall("user:u-1:stats")
            #expect(userU1Stats == ["orders": "2", "items": "3", "spent": "132.30", "lastPurchaseAt": "2024-12-14T13:30:00Z"])
            let userU2Stats = driver.redis.hgetall("user:u-2:stats")
            #expect(userU2Stats == ["orders": "2", "items": "4", "spent": "60.20", "lastPurchaseAt": "2024-12-14T12:45:00Z"])
            let userU1Categories = driver.redis.zrangeWithScores("user:u-1:categories").map { Pair($0.member, $0.score) }
            #expect(userU1Categories == [Pair("books", 12.5), Pair("shoes", 119.8)])
            let userU2Categories = driver.redis.zrangeWithScores("user:u-2:categories").map { Pair($0.member, $0.score) }
            #expect(userU2Categories == [Pair("shoes", 60.2)])
            // Units sold per product of each category.
            let popularShoes = driver.redis.zrangeWithScores("popular:shoes").map { Pair($0.member, $0.score) }
            #expect(popularShoes == [Pair("p-1", 3), Pair("p-3", 3)])
            let popularBooks = driver.redis.zrangeWithScores("popular:books").map { Pair($0.member, $0.score) }
            #expect(popularBooks == [Pair("p-2", 1)])
            let userAllKeys = driver.redis.keys.filter { $0.hasPrefix("user:") }.sorted()
            #expect(userAllKeys == ["user:u-1:categories", "user:u-1:stats", "user:u-2:categories", "user:u-2:stats"])
            // The bad quantity ("two", then 0) is dead-lettered by each of the two pipelines.
            #expect(await driver.counts().deadLettered == 4)
        }

        @Test("trending:{category}: the 10 best sellers of the latest closed hour; a purchase later than the grace is dead-lettered")
        func trending() async throws {
            var records: [(key: String, value: JSONValue, partition: Int32)] = []
            // All on one partition, in this order, so that the order of arrival is the one written here.
            func buy(_ product: String, _ quantity: Int, _ at: Int64) {
                let n = records.count
                records.append(("u-\(n)", E.purchase(order: "o-\(n)", user: "u-\(n)", product: product, category: "shoes", price: 10, quantity: quantity, at: at), 0))
            }
            // Window 12:00–13:00: p-1 … p-11 with 1 … 11 units (p-5 in two purchases).
            for i in 1...11 where i != 5 { buy("p-\(i)", i, At.day(0, 12, Int64(i))) }
            buy("p-5", 2, At.day(0, 12, 20))
            buy("p-5", 3, At.day(0, 12, 50))
            // Stream time passes 13:00, but 12:00–13:00 stays open for its 5 minutes of grace:
            // 20 more units of p-1 at 12:58 still count (and p-2, 2 units, falls out of the top 10).
            buy("p-12", 7, At.day(0, 13, 2))
            buy("p-1", 20, At.day(0, 12, 58))
            // 13:05 closes 12:00–13:00 (end + 5 minutes grace); 13:00–14:00 stays open.
            buy("p-12", 1, At.day(0, 13, 5))
            // Too late for the closed window.
            buy("p-2", 100, At.day(0, 12, 59))
            let driver = try await InMemoryTopologyTests.run(["trending"], E.purchasesTopic, records)

            let expected = [
                Pair("p-3", 3), Pair("p-4", 4), Pair("p-5", 5), Pair("p-6", 6), Pair("p-7", 7), Pair("p-8", 8), Pair("p-9", 9),
                Pair("p-10", 10), Pair("p-11", 11), Pair("p-1", 21),
            ]
            let trendingShoes = driver.redis.zrangeWithScores("trending:shoes").map { Pair($0.member, $0.score) }
            #expect(trendingShoes == expected)
            let trendingAllKeys = driver.redis.keys.filter { $0.hasPrefix("trending:") }.sorted()
            #expect(trendingAllKeys == ["trending:shoes"])
            #expect(await driver.counts().deadLettered == 1)
        }
    }
}
