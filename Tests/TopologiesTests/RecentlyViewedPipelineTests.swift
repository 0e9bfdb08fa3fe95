import StreamEngine
import Testing
import Topologies

extension ShopPipelineTests {
    @Suite("recently-viewed pipeline: recent:member:{m}, recent:guest:{g} and the login merge")
    struct RecentlyViewedPipelineTests {
        typealias E = ShopEvents

        static func view(_ product: String, member: String? = nil, guest: String? = nil, _ at: Int64, partition: Int32) -> (key: String, value: JSONValue, partition: Int32) {
            (E.userEventKey(member: member, guest: guest),
             E.userEvent(id: "e-\(product)-\(at)", type: "view", member: member, guest: guest, product: product, category: "shoes", at: at), partition)
        }

        @Test("At most 100 products: the 101st pushes out the oldest; a re-viewed product moves to the front; 30 days")
        func capsAndReviews() async throws {
            let h = try ShopHarness()
            var records: [(key: String, value: JSONValue, partition: Int32)] = []
            for (member, guest, partition) in [("u-cap", nil, Int32(1)), (nil, "g-cap-0123456789", Int32(2))] as [(String?, String?, Int32)] {
                for i in 1...101 { records.append(Self.view("p-\(i)", member: member, guest: guest, At.day(0, 10, Int64(i)), partition: partition)) }
                records.append(Self.view("p-50", member: member, guest: guest, At.day(0, 14), partition: partition))
                // A click is not a view: it changes nothing.
                records.append((member ?? guest!, E.userEvent(id: "c", type: "click", member: member, guest: guest, product: "p-2", at: At.day(0, 15)), partition))
            }
            // p-old is more than 30 days older than the newest view: dropped.
            records.append(Self.view("p-old", member: "u-old", At.day(0, 9), partition: 0))
            records.append(Self.view("p-new", member: "u-old", At.day(30, 9, 1), partition: 0))
            records.append(Self.view("p-old", guest: "g-old-0123456789", At.day(0, 9), partition: 3))
            records.append(Self.view("p-new", guest: "g-old-0123456789", At.day(30, 9, 1), partition: 3))
            try await h.produce(E.userEventsTopic, records)
            try await h.runToEnd(try h.config("recently-viewed"))

            // p-1 (the oldest) is gone; p-50 is the most recent.
            var expected = (2...101).filter { $0 != 50 }.map { Pair("p-\($0)", Double(At.day(0, 10, Int64($0)))) }
            expected.append(Pair("p-50", Double(At.day(0, 14))))
            let recentMemberUCap = try await h.zset("recent:member:u-cap")
            #expect(recentMemberUCap == expected)
            let recentGuestGCap = try await h.zset("recent:guest:g-cap-0123456789")
            #expect(recentGuestGCap == expected)
            let newestFirst = try await h.redis.command(["ZREVRANGE", "recent:member:u-cap", "0", "1"]).array?.compactMap(\.string)
            #expect(newestFirst == ["p-50", "p-101"])

            let recentMemberUOld = try await h.zset("recent:member:u-old")
            #expect(recentMemberUOld == [Pair("p-new", Double(At.day(30, 9, 1)))])
            let recentGuestGOld = try await h.zset("recent:guest:g-old-0123456789")
            #expect(recentGuestGOld == [Pair("p-new", Double(At.day(30, 9, 1)))])
            for key in ["recent:member:u-cap", "recent:guest:g-cap-0123456789"] {
                let ttl = try await h.pttl(key)
                #expect(ttl > 29 * 86_400_000 && ttl <= 30 * 86_400_000, "\(key) TTL \(ttl)")
            }
        }

        @Test("Login merge: the later time wins, the guest key is gone, and a view after the login starts a new guest list")
        func loginMerge() async throws {
            let h = try ShopHarness()
            let guest = "g-7f3a9c2e5b1d4e8f"
            // Guest views and the login share the guestId key (here: partition 1 of both topics). The
            // member's views are on partition 1 too: the merge (from logins[1]) and the member views
            // (from user_events[1]) meet in the repartition topic with overlapping input offsets.
            try await h.produce(E.userEventsTopic, [
                Self.view("p-A", member: "u-7", At.day(0, 10), partition: 1),
                Self.view("p-B", member: "u-7", At.day(0, 10, 5), partition: 1),
                Self.view("p-A", guest: guest, At.day(0, 9), partition: 1),
                Self.view("p-B", guest: guest, At.day(0, 10, 30), partition: 1),
                Self.view("p-C", guest: guest, At.day(0, 10, 35), partition: 1),
                // Another guest who never logs in keeps their list.
                Self.view("p-Z", guest: "g-other-000000000", At.day(0, 10), partition: 1),
            ])
            let config = try h.config("recently-viewed")
            try await h.runToEnd(config)
            let guestBefore = try await h.zset("recent:guest:\(guest)")
            #expect(guestBefore == [Pair("p-A", Double(At.day(0, 9))), Pair("p-B", Double(At.day(0, 10, 30))), Pair("p-C", Double(At.day(0, 10, 35)))])

            // The login, consumed after the views.
            try await h.produce(E.loginsTopic, [(guest, E.login(member: "u-7", guest: guest, at: At.day(0, 11)), 1)])
            try await h.runToEnd(config)

            let recentMemberU7 = try await h.zset("recent:member:u-7")
            #expect(recentMemberU7 == [
                Pair("p-A", Double(At.day(0, 10))),  // the member's 10:00 beats the guest's 09:00
                Pair("p-B", Double(At.day(0, 10, 30))),  // the guest's 10:30 beats the member's 10:05
                Pair("p-C", Double(At.day(0, 10, 35))),
            ])
            let guestKeyExists = try await h.exists("recent:guest:\(guest)")
            #expect(guestKeyExists == false)
            let otherGuestList = try await h.zset("recent:guest:g-other-000000000")
            #expect(otherGuestList == [Pair("p-Z", Double(At.day(0, 10)))])

            // Later, the same browser (guestId) views again without logging in: a new guest list.
            try await h.produce(E.userEventsTopic, [Self.view("p-D", guest: guest, At.day(0, 12), partition: 1)])
            try await h.runToEnd(config)
            let newGuestList = try await h.zset("recent:guest:\(guest)")
            #expect(newGuestList == [Pair("p-D", Double(At.day(0, 12)))])
            let recentMemberU7Members = try await h.zset("recent:member:u-7").map(\.member)
            #expect(recentMemberU7Members == ["p-A", "p-B", "p-C"])
            let recentAllKeys = try await h.keys("recent:*")
            // recent:guest:{g}:merged: the login time of the merge, which keeps merged views from coming back.
            #expect(recentAllKeys == ["recent:guest:\(guest)", "recent:guest:\(guest):merged", "recent:guest:g-other-000000000", "recent:member:u-7"])
        }

        @Test("A login processed before the guest's earlier views still merges them; re-viewed after the login, a product stays with the guest")
        func loginBeforeViews() async throws {
            let h = try ShopHarness()
            let guest = "g-0a1b2c3d4e5f6a7b"
            // The login is produced (and so consumed) first; the views it covers happened before it.
            try await h.produce(E.loginsTopic, [(guest, E.login(member: "u-8", guest: guest, at: At.day(0, 11)), 2)])
            let config = try h.config("recently-viewed")
            try await h.runToEnd(config)
            try await h.produce(E.userEventsTopic, [
                Self.view("p-A", guest: guest, At.day(0, 10), partition: 2),
                Self.view("p-B", guest: guest, At.day(0, 10, 30), partition: 2),
                Self.view("p-B", guest: guest, At.day(0, 11, 30), partition: 2),
            ])
            try await h.runToEnd(config)
            let recentMemberU8 = try await h.zset("recent:member:u-8")
            #expect(recentMemberU8 == [Pair("p-A", Double(At.day(0, 10))), Pair("p-B", Double(At.day(0, 10, 30)))])
            let guestList = try await h.zset("recent:guest:\(guest)")
            #expect(guestList == [Pair("p-B", Double(At.day(0, 11, 30)))])
        }
    }
}
