import StreamEngine
import Testing
import Topologies

extension ShopPipelineTests {
    @Suite("lowest-price pipeline: price:{productId}")
    struct PricePipelineTests {
        typealias E = ShopEvents

        @Test("Latest price per platform by event time; out-of-order, expired and raised prices")
        func lowestPrice() async throws {
            let h = try ShopHarness()
            // Each product's records go to a partition of the test's choosing (not the
            // engine's partitioner), in this order; the rekey brings them together.
            try await h.produce(E.pricesTopic, [
                // p-1: Coupang is cheapest until it raises its price; Amazon's older 90 arrives late and must not win.
                ("p-1", E.price(product: "p-1", platform: "Amazon", price: 100, at: At.day(0, 12)), 3),
                ("p-1", E.price(product: "p-1", platform: "Coupang", price: 95, at: At.day(0, 12, 5)), 3),
                ("p-1", E.price(product: "p-1", platform: "Gmarket", price: 120, at: At.day(0, 12, 10)), 3),
                ("p-1", E.price(product: "p-1", platform: "Amazon", price: 90, at: At.day(0, 11)), 3),
                ("p-1", E.price(product: "p-1", platform: "Coupang", price: 130, at: At.day(0, 13)), 3),
                // p-2: Amazon's 50 gets older than 24h against eBay's newest price and expires;
                // a stale 40 (older than 24h on arrival) is ignored.
                ("p-2", E.price(product: "p-2", platform: "Amazon", price: 50, at: At.day(0, 10)), 0),
                ("p-2", E.price(product: "p-2", platform: "eBay", price: 60, at: At.day(0, 12)), 0),
                ("p-2", E.price(product: "p-2", platform: "eBay", price: 61, at: At.day(1, 11)), 0),
                ("p-2", E.price(product: "p-2", platform: "Amazon", price: 40, at: At.day(0, 9)), 0),
                // p-3: exactly 24h older than the newest still counts; the same platform at the same time: later arrival wins.
                ("p-3", E.price(product: "p-3", platform: "Amazon", price: 10, at: At.day(0, 8)), 1),
                ("p-3", E.price(product: "p-3", platform: "eBay", price: 12, at: At.day(1, 8)), 2),
                ("p-3", E.price(product: "p-3", platform: "eBay", price: 11, at: At.day(1, 8)), 2),
            ])
            try await h.produceRaw(E.pricesTopic, [
                #"{"productId":"p-1","platform":"Shop","price":"cheap","timestamp":"2024-12-14T12:00:00Z"}"#,
                #"{"productId":"p-1","platform":"Shop","price":1"#,
                #"{"productId":"p-1","price":1,"timestamp":"2024-12-14T12:00:00Z"}"#,
            ])
            let rt = try await h.runToEnd(try h.config("lowest-price"))

            let priceP1 = try await h.zset("price:p-1")
            #expect(priceP1 == [Pair("Amazon", 100), Pair("Gmarket", 120), Pair("Coupang", 130)])
            let priceP2 = try await h.zset("price:p-2")
            #expect(priceP2 == [Pair("eBay", 61)])
            let priceP3 = try await h.zset("price:p-3")
            #expect(priceP3 == [Pair("Amazon", 10), Pair("eBay", 11)])
            let priceAllKeys = try await h.keys("price:*")
            #expect(priceAllKeys == ["price:p-1", "price:p-2", "price:p-3"])
            // The cheapest platform, as a reader asks for it.
            let lowest = try await h.redis.command(["ZRANGE", "price:p-1", "0", "0", "WITHSCORES"]).array?.compactMap(\.string)
            #expect(lowest == ["Amazon", "100"])
            // A 24h TTL, renewed on every update.
            let ttl = try await h.pttl("price:p-1")
            #expect(ttl > 23 * 3_600_000 && ttl <= 24 * 3_600_000)
            #expect(rt.stats.deadLettered == 3)
        }
    }
}
