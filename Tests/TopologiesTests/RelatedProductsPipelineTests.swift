import Foundation
import StreamEngine
import Testing
import Topologies

extension ShopPipelineTests {
    @Suite("related-products pipeline: related:{productId} from co-occurrence in sessions, used by recommendations")
    struct RelatedProductsPipelineTests {
        typealias E = ShopEvents
        typealias Event = (key: String, value: JSONValue, partition: Int32)

        static func view(_ viewer: String, _ product: String, _ at: Int64, partition: Int32, guest: Bool = false) -> Event {
            (viewer, E.userEvent(id: "e-\(viewer)-\(product)-\(at)", type: "view", member: guest ? nil : viewer, guest: guest ? viewer : nil, product: product, at: at), partition)
        }

        /// The weight the README's formula gives: Σ 2^(−(T − t) / 7d).
        static func weight(_ times: [Int64], reference: Int64) -> Double {
            times.reduce(0) { $0 + exp2(-Double(reference - $1) / Double(7 * 86_400_000)) }
        }

        @Test("Two products together in three sessions rank above two together in one (newer) session; repeats within a session count once; order of arrival does not matter")
        func threeSessionsBeatOne() async throws {
            let h = try ShopHarness()
            // u-1 (partition 1): p-a with p-b in three sessions two hours apart; the third arrives
            // in reverse order and its p-b is a purchase (purchases count as being in the session).
            let s1 = At.day(0, 10), s2 = At.day(0, 12), s3 = At.day(0, 14)
            try await h.produce(E.userEventsTopic, [
                Self.view("u-1", "p-a", s1, partition: 1),
                Self.view("u-1", "p-b", s1 + 60_000, partition: 1),
                Self.view("u-1", "p-a", s1 + 120_000, partition: 1),  // again in the same session: no new pair
                Self.view("u-1", "p-b", s2, partition: 1),
                Self.view("u-1", "p-a", s2 + 300_000, partition: 1),
                Self.view("u-1", "p-a", s3 + 600_000, partition: 1),
            ])
            try await h.produce(E.purchasesTopic, [
                ("u-1", E.purchase(order: "o-1", user: "u-1", product: "p-b", category: "books", price: 10, quantity: 1, at: s3), 1),
            ])
            // g-2, a guest (partition 2): p-a with p-c once, later than all of u-1's sessions.
            let s4 = At.day(0, 20)
            try await h.produce(E.userEventsTopic, [
                Self.view("g-2", "p-c", s4, partition: 2, guest: true),
                Self.view("g-2", "p-a", s4 + 60_000, partition: 2, guest: true),
            ])
            try await h.runToEnd(h.config("related-products"))

            // Pair times: the later first event of the two products in each session.
            let ab = [s1 + 60_000, s2 + 300_000, s3 + 600_000]
            let related = try await h.zset("related:p-a")
            #expect(related.map(\.member) == ["p-c", "p-b"], "lowest first: p-b (3 sessions) above p-c (1 session)")
            let reference = s4 + 60_000
            #expect(related.first?.score == 1)
            #expect(abs((related.last?.score ?? 0) - Self.weight(ab, reference: reference)) < 0.0001)
            let b = try await h.zset("related:p-b")
            #expect(b.map(\.member) == ["p-a"])
            #expect(abs((b.first?.score ?? 0) - Self.weight(ab, reference: ab.last!)) < 0.0001, "p-b's reference is its own newest pair")
            #expect(try await h.zset("related:p-c") == [Pair("p-a", 1)])
        }

        @Test("recommendations: products related to what the user viewed score between 1 and 2 (\"related to what you viewed or bought\")")
        func recommendationsUseRelated() async throws {
            let h = try ShopHarness()
            let t = At.day(0, 10)
            var events: [Event] = []
            for (i, viewer) in ["g-1", "g-2", "g-3"].enumerated() {
                events += [Self.view(viewer, "p-a", t + Int64(i) * 3_600_000, partition: 0, guest: true),
                           Self.view(viewer, "p-b", t + Int64(i) * 3_600_000 + 60_000, partition: 0, guest: true)]
            }
            events += [Self.view("g-4", "p-a", t + 4 * 3_600_000, partition: 0, guest: true),
                       Self.view("g-4", "p-c", t + 4 * 3_600_000 + 60_000, partition: 0, guest: true)]
            try await h.produce(E.userEventsTopic, events)
            let config = try h.config("related-products", "recommendations")
            try await h.runToEnd(config)

            // A member views p-a later: p-b and p-c are recommended as related, p-b first.
            try await h.produce(E.userEventsTopic, [Self.view("u-9", "p-a", At.day(1, 9), partition: 3)])
            try await h.runToEnd(config)
            let recs = try await h.zset("rec:u-9")
            #expect(recs.map(\.member) == ["p-c", "p-b", "p-a"])
            #expect(recs.first.map { $0.score > 1 && $0.score < 2 } == true, "\(recs)")
            #expect(recs.dropFirst().first?.score == 2, "the strongest partner of p-a scores 1 + 1")
            #expect(recs.last?.score == 10, "p-a itself: viewed")
        }
    }
}
