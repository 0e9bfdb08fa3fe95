import Foundation
import StreamEngine
import Testing
@testable import Topologies

@Suite("topologies.yaml and the event generator")
struct ConfigAndGeneratorTests {
    static func eventTime(_ v: JSONValue) -> Int64? {
        v["timestamp"]?.stringValue.flatMap { EventTime.parseISO8601($0) }
    }

    @Test("topologies.yaml validates with the shop operators and declares the issue's pipelines, keys and table")
    func topologiesValidate() throws {
        let config = try ConfigLoader.load(path: ShopHarness.topologiesPath, registry: shopOperatorRegistry().names, environment: [:])
        #expect(config.pipelines.map(\.name) == [
            "lowest-price", "user-stats", "category-popularity", "trending", "behaviour", "recently-viewed", "related-products",
            "purchase-records", "recommendations",
        ])
        #expect(config.inputTopics == ["product_prices", "purchases", "user_events", "logins"])
        #expect(config.globalTables.map(\.topic) == ["shop-category-top", "shop-related"])
        var keys: [String] = []
        for p in config.pipelines {
            for case .redis(let r, _) in p.steps { keys.append(r.key.source) }
        }
        #expect(keys == [
            "price:{key}", "user:{key}:stats", "user:{key}:categories", "popular:{key}", "trending:{key}", "behaviour:{key}",
            "recent:guest:{guestId}", "recent:member:{key}", "recent:guest:{guestId}", "related:{key}", "rec:{key}",
        ])
        // The purchases table of issue 12, created by the engine.
        let table = try #require(config.sqlSinks.first)
        #expect(config.sqlSinks.count == 1)
        #expect(table.table == "purchases" && table.key == ["orderId"] && table.mode == .upsert && table.create)
        #expect(table.columns.map { "\($0.name) \($0.type?.sql ?? "-")" } == [
            "orderId VARCHAR(64)", "userId VARCHAR(64)", "productId VARCHAR(64)", "category VARCHAR(64)",
            "price DECIMAL(12,2)", "quantity INT", "purchasedAt DATETIME(3)",
        ])
        // Every stateful step after its pipeline's rekey, except the guest side of recently viewed
        // and the viewer sessions of related products (both rely on their producers' keys).
        for p in config.pipelines where !["recently-viewed", "related-products"].contains(p.name) && p.steps.contains(where: \.isStateful) {
            let firstStateful = p.steps.firstIndex { $0.isStateful }
            #expect(p.rekeyIndex != nil && firstStateful.map { $0 > p.rekeyIndex! } == true, "pipeline \(p.name)")
        }
    }

    @Test("Without the shop operators the file does not validate, naming what is missing")
    func needsShopOperators() {
        #expect {
            _ = try ConfigLoader.load(path: ShopHarness.topologiesPath, registry: OperatorRegistry().names, environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains("platform_prices") && text.contains("recent_member_views") && text.contains("topologies.yaml:")
        }
    }

    @Test("The generator is deterministic for a seed and covers the four topics with their keys")
    func generatorDeterministic() throws {
        let a = EventGenerator.generate(GeneratorOptions(events: 20_000, seed: 7))
        let b = EventGenerator.generate(GeneratorOptions(events: 20_000, seed: 7))
        let c = EventGenerator.generate(GeneratorOptions(events: 20_000, seed: 8))
        #expect(a.records.count == 20_000)
        #expect(a.records.map(\.value) == b.records.map(\.value) && a.records.map(\.key) == b.records.map(\.key))
        #expect(a.records.map(\.value) != c.records.map(\.value))
        #expect(a.logins == b.logins)

        var perTopic: [String: Int] = [:]
        var malformed = 0
        var types: Set<String> = []
        var outOfOrderPrices = 0
        var newestPrice: [String: Int64] = [:]
        for r in a.records {
            perTopic[r.topic, default: 0] += 1
            if r.malformed {
                malformed += 1
                continue
            }
            let v = try JSONValue.parse(r.value)
            let t = try #require(Self.eventTime(v))
            switch r.topic {
            case ShopEvents.pricesTopic:
                #expect(r.key == v["productId"]?.stringValue)
                let id = "\(r.key)|\(v["platform"]?.stringValue ?? "")"
                if t < newestPrice[id, default: .min] { outOfOrderPrices += 1 }
                newestPrice[id] = max(newestPrice[id, default: .min], t)
            case ShopEvents.purchasesTopic:
                #expect(r.key == v["userId"]?.stringValue)
                #expect((v["quantity"]?.intValue ?? 0) >= 1)
            case ShopEvents.userEventsTopic:
                #expect(r.key == (v["memberId"]?.stringValue ?? v["guestId"]?.stringValue))
                types.insert(v["type"]?.stringValue ?? "")
            default:
                #expect(r.topic == ShopEvents.loginsTopic)
                #expect(r.key == v["guestId"]?.stringValue)
                #expect((v["guestId"]?.stringValue?.count ?? 0) > (v["memberId"]?.stringValue?.count ?? 0))
            }
        }
        #expect(Set(perTopic.keys) == Set(ShopEvents.topics))
        #expect(perTopic[ShopEvents.pricesTopic]! > 4_000 && perTopic[ShopEvents.purchasesTopic]! > 500 && perTopic[ShopEvents.loginsTopic]! > 20)
        #expect(types == ["view", "click", "search", "add_to_cart"])
        #expect(malformed > 40 && malformed < 250)
        #expect(outOfOrderPrices > 50)
        // Guests who browsed, then logged in; some of them as members with a history.
        #expect(a.logins.filter { $0.guestViews >= 3 }.count > 10)
    }

    @Test("Spike mode packs the middle fifth of the records 5× denser in event time")
    func spike() throws {
        func span(_ records: [GeneratedRecord], _ range: Range<Int>) throws -> Int64 {
            let times = try records[range].filter { !$0.malformed && $0.topic != ShopEvents.pricesTopic }
                .map { try #require(Self.eventTime(try JSONValue.parse($0.value))) }
            return times.max()! - times.min()!
        }
        let calm = EventGenerator.generate(GeneratorOptions(events: 10_000, seed: 3)).records
        let spiky = EventGenerator.generate(GeneratorOptions(events: 10_000, seed: 3, spike: true)).records
        #expect(spiky[4_000..<6_000].allSatisfy(\.inSpike) && !spiky[3_999].inSpike && !spiky[6_000].inSpike)
        #expect(calm.allSatisfy { !$0.inSpike })
        let ratio = Double(try span(calm, 4_000..<6_000)) / Double(try span(spiky, 4_000..<6_000))
        #expect(ratio > 3.5 && ratio < 7, "ratio \(ratio)")
        #expect(ShopDemo.pickShowcase(EventGenerator.generate(GeneratorOptions(events: 10_000, seed: 3)).logins, events: 10_000) != nil)
    }
}
