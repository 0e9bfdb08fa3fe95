import Foundation
import Logging
import StreamEngine
import Testing
@testable import Topologies

extension ShopPipelineTests {
    @Suite("stream-engine demo")
    struct DemoTests {
        @Test("A small demo runs every pipeline to the end and its summary shows each result, the login merge included")
        func smallDemo() async throws {
            var logger = Logger(label: "demo-test")
            logger.logLevel = .error
            let options = DemoOptions(events: 4000, seed: 11, configPath: ShopHarness.topologiesPath)
            let generated = EventGenerator.generate(GeneratorOptions(events: options.events, seed: options.seed))
            let showcase = try #require(ShopDemo.pickShowcase(generated.logins, events: options.events))

            let summary = try await ShopDemo.run(options, logger: logger) { _ in }
            for heading in ["Top categories", "Cheapest platforms", "Related products", "the most frequent buyer", "logs in as \(showcase.memberId)"] {
                #expect(summary.contains(heading), "no \(heading) in:\n\(summary)")
            }
            // After the login the guest key is gone, and every product the guest viewed is in the member's list.
            #expect(summary.contains("recent:guest:\(showcase.guestId)  (no key: merged"), "\(summary)")
            #expect(summary.contains("of the guest's \(showcase.guestViewsBeforeLogin(in: generated.records)) products"), "\(summary)")
            // The purchases table holds every valid purchase once.
            let valid = generated.records.filter { $0.topic == ShopEvents.purchasesTopic && !$0.malformed }.count
            #expect(summary.contains("table purchases: \(valid) rows, \(valid) distinct orderId"), "\(summary)")
            // Every malformed record is dead-lettered by each pipeline it breaks, and nothing else is:
            // the generated input is in event-time order per topic, so no purchase is late for its
            // trending window after the rekey (tasks aligned in event time).
            let dlqLine = String(try #require(summary.split(separator: "\n").first { $0.contains("dead-letter topic") }))
            let totalText = dlqLine.firstMatch(of: /: ([0-9,]+) records/)?.1.replacing(",", with: "")
            let total = try #require(totalText.flatMap { Int($0) })
            #expect(!dlqLine.contains(" late in "), "\(dlqLine)")
            #expect(total == generated.records.filter(\.malformed).map(Self.pipelinesBroken).reduce(0, +), "\(dlqLine)")
        }

        /// How many pipelines dead-letter a malformed record of the generator.
        static func pipelinesBroken(_ r: GeneratedRecord) -> Int {
            switch r.topic {
            case ShopEvents.pricesTopic: return 1  // lowest-price
            case ShopEvents.purchasesTopic: return 5  // user-stats, category-popularity, trending, recommendations, purchase-records
            default:
                // An unknown type breaks behaviour only (related-products keeps views alone); a bad
                // timestamp every user_events pipeline: behaviour, recently-viewed, recommendations, related-products.
                return String(decoding: r.value, as: UTF8.self).contains(#""type":"hover""#) ? 1 : 4
            }
        }
    }
}

extension GeneratedLogin {
    /// How many distinct products the guest viewed since their previous login, if any, up to
    /// this one (at most 100, as the list keeps).
    func guestViewsBeforeLogin(in records: [GeneratedRecord]) -> Int {
        var products: Set<String> = []
        for r in records[..<index] where !r.malformed {
            guard let v = try? JSONValue.parse(r.value), v["guestId"]?.stringValue == guestId else { continue }
            if r.topic == ShopEvents.loginsTopic { products.removeAll() }
            guard r.topic == ShopEvents.userEventsTopic, v["memberId"]?.isNull ?? true,
                  v["type"]?.stringValue == "view", let p = v["productId"]?.stringValue else { continue }
            products.insert(p)
        }
        return min(products.count, 100)
    }
}
