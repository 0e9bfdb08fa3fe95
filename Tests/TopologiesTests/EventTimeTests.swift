import Foundation
import KafkaClient
import StreamEngine
import Testing
import Topologies

extension ShopPipelineTests {
    @Suite("Event time: input partitions in timestamp order, aligned replays, windows that close by themselves")
    struct EventTimeTests {
        typealias E = ShopEvents
        typealias Rec = (key: String, value: JSONValue, partition: Int32)

        /// Six guests on one partition: views as guests, a login, views as members, more guest
        /// views after the login (a new guest list), with event times interleaved across
        /// `user_events` and `logins`.
        static func guestTraffic() -> (views: [(Int64, Rec)], logins: [(Int64, Rec)]) {
            var views: [(Int64, Rec)] = []
            var logins: [(Int64, Rec)] = []
            for g in 0..<6 {
                let guest = "g-\(g)-0123456789abcdef"
                let member = "u-\(g)"
                var t = At.day(0, 9, Int64(g))
                func view(_ p: String, asMember: Bool) {
                    t += 60_000
                    let m: String? = asMember ? member : nil
                    views.append((t, (E.userEventKey(member: m, guest: guest),
                                      E.userEvent(id: "e-\(g)-\(t)", type: "view", member: m, guest: guest, product: p, category: "shoes", at: t), 1)))
                }
                for i in 0..<(3 + g) { view("p-\(g)-\(i)", asMember: false) }
                view("p-shared", asMember: true)  // a member view before the login
                t += 60_000
                logins.append((t, (guest, E.login(member: member, guest: guest, at: t), 1)))
                view("p-shared", asMember: false)  // the guest views it again after the login: a new guest list
                view("p-\(g)-after", asMember: true)
            }
            return (views, logins)
        }

        @Test("Views and logins produced topic by topic (logins first) give exactly the Redis state of one timestamp-ordered stream")
        func viewsAndLoginsInTimestampOrder() async throws {
            let (views, logins) = Self.guestTraffic()
            // Run 1: the small logins topic produced first, then every view — arrival order is not event time.
            let topicByTopic = try ShopHarness()
            try await topicByTopic.produce(E.loginsTopic, logins.map(\.1))
            try await topicByTopic.produce(E.userEventsTopic, views.map(\.1))
            try await topicByTopic.runToEnd(try topicByTopic.config("recently-viewed"))

            // Run 2: the same events produced one by one in event-time order, each delivered before the next.
            let ordered = try ShopHarness()
            for (_, r) in (views.map { ($0.0, ($0.1, E.userEventsTopic)) } + logins.map { ($0.0, ($0.1, E.loginsTopic)) }).sorted(by: { $0.0 < $1.0 }) {
                try await ordered.produce(r.1, [r.0])
            }
            try await ordered.runToEnd(try ordered.config("recently-viewed"))

            let allKeys = try await ordered.keys("recent:*")
            #expect(try await topicByTopic.keys("recent:*") == allKeys)
            // The login guards (strings: the merged login time) agree too; the rest are the lists.
            for key in allKeys where key.hasSuffix(":merged") {
                #expect(try await topicByTopic.engine.get(key) == ordered.engine.get(key), "\(key)")
            }
            let keys = allKeys.filter { !$0.hasSuffix(":merged") }
            for key in keys {
                let a = try await topicByTopic.zset(key)
                let b = try await ordered.zset(key)
                #expect(a == b, "\(key)")
            }
            // And the result is the login merge the seeds describe: for guest 2, its 5 guest views
            // and the member's views in the member list; the guest list holds only the view after the login.
            let member = try await ordered.zset("recent:member:u-2").map(\.member)
            #expect(Set(member) == Set((0..<5).map { "p-2-\($0)" } + ["p-shared", "p-2-after"]))
            #expect(try await ordered.zset("recent:guest:g-2-0123456789abcdef").map(\.member) == ["p-shared"])
        }

        @Test("Three days of purchases replayed partition by partition through a rekey into a 1-hour window: no record is late, a really late one is")
        func alignedReplay() async throws {
            let h = try ShopHarness()
            // Each partition's three days produced in one go (as a backfill delivers them), partition after partition.
            var sent = 0
            for partition in Int32(0)..<4 {
                var records: [Rec] = []
                for minute in stride(from: Int64(partition), to: 3 * 24 * 60, by: 7) {
                    let n = sent + records.count
                    records.append(("u-\(n % 50)", E.purchase(order: "o-\(partition)-\(minute)", user: "u-\(n % 50)", product: "p-\(n % 9)",
                                                               category: ["books", "shoes", "toys"][n % 3], price: 10, quantity: 1,
                                                               at: At.day(0, 0, minute)), partition))
                }
                sent += records.count
                try await h.produce(E.purchasesTopic, records)
            }
            // One purchase really older than the window's 5-minute grace: 2 days behind the rest of its partition.
            try await h.produce(E.purchasesTopic, [("u-late", E.purchase(order: "o-late", user: "u-late", product: "p-1", category: "books",
                                                                          price: 10, quantity: 1, at: At.day(1, 0, 2)), 2)])
            let rt = try await h.runToEnd(try h.config("trending"))
            #expect(rt.stats.deadLettered == 1)
            let dlq = try await h.deadLetters()
            #expect(dlq.count == 1)
            #expect(dlq.first?.kind == "late")
            #expect(dlq.first?.order == "o-late")
            // The last closed hour of each category is in Redis.
            for category in ["books", "shoes", "toys"] { #expect(try await h.exists("trending:\(category)")) }
        }

        @Test("A window with close_idle_after closes and reaches Redis with no later record")
        func idleWindowCloses() async throws {
            let h = try ShopHarness()
            var config = try h.config("trending")
            guard case .window(var w, let loc) = config.pipelines[0].steps[1] else { Issue.record("trending has no window step"); return }
            w.closeIdleAfterMillis = 1000
            config.pipelines[0].steps[1] = .window(w, location: loc)
            try await h.produce(E.purchasesTopic, [("u-1", E.purchase(order: "o-1", user: "u-1", product: "p-7", category: "books", price: 10, quantity: 3, at: At.day(0, 10)), 0)])
            let rt = StreamRuntime(config: config, registry: h.registry, kafka: .embedded(h.kafka), redisURL: h.redisServer.url,
                                   options: RuntimeOptions(stateDir: h.stateDir), logger: h.logger)
            let run = Task { try await rt.run() }
            defer { rt.stop() }
            let deadline = ContinuousClock.now + .seconds(60)
            while try await !h.exists("trending:books"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
            #expect(try await h.zset("trending:books") == [Pair("p-7", 3)])
            rt.stop()
            try await run.value
        }

        @Test("Every buyer has recommendations after a run in which the recommendations pipeline ran before the popularity pipeline")
        func recommendationsForEveryBuyer() async throws {
            let h = try ShopHarness()
            var purchases: [Rec] = []
            for n in 0..<40 {
                let category = ["books", "shoes", "toys", "garden"][n % 4]
                purchases.append(("u-\(n)", E.purchase(order: "o-\(n)", user: "u-\(n)", product: "p-\(category)-\(n % 3)", category: category,
                                                        price: 10, quantity: 1 + n % 2, at: At.day(0, 9, Int64(n))), Int32(n % 4)))
            }
            try await h.produce(E.purchasesTopic, purchases)
            // Recommendations first, alone and live: it consumes every purchase while the category
            // table is still empty, so nobody gets a recommendation yet.
            let recommendations = StreamRuntime(
                config: try h.config("recommendations"), registry: h.registry, kafka: .embedded(h.kafka), redisURL: h.redisServer.url,
                options: RuntimeOptions(stateDir: h.stateDir), logger: h.logger)
            let live = Task { try await recommendations.run() }
            defer { recommendations.stop() }
            var deadline = ContinuousClock.now + .seconds(60)
            while recommendations.stats.processed < purchases.count || recommendations.stats.commits == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(recommendations.stats.processed >= purchases.count)
            #expect(try await h.keys("rec:*").isEmpty)
            // Then the popularity pipeline (another application) fills the category table: the live
            // recommendations pipeline has no new input, yet every buyer gets recommendations.
            var popularity = try h.config("category-popularity")
            popularity.applicationId = "shop-popularity"
            popularity.dlqTopic = "shop-popularity-dlq"
            try await h.runToEnd(popularity)
            deadline = ContinuousClock.now + .seconds(60)
            var recs: [String] = []
            while ContinuousClock.now < deadline {
                recs = try await h.keys("rec:*")
                if recs.count == purchases.count { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(recs == (0..<40).map { "rec:u-\($0)" }.sorted())
            // u-0 bought p-books-0 in books: the other books best sellers are recommended to it.
            let u0 = try await h.zset("rec:u-0").map(\.member)
            #expect(Set(u0) == ["p-books-1", "p-books-2"])
            recommendations.stop()
            try await live.value
        }
    }
}

extension ShopHarness {
    /// The dead-letter topic's records: `error.kind` header and the record's `orderId`.
    func deadLetters() async throws -> [(kind: String, order: String?)] {
        try await engine.readAll("shop-dlq").map { m in
            (m.header("error.kind")?.stringValue ?? "", m.value.flatMap { try? JSONValue.parse($0) }?["orderId"]?.stringValue)
        }
    }
}

extension ShopPipelineTests.EventTimeTests {
    @Test("Seeded shop traffic produced topic by topic (logins first) ends with exactly the Redis state of the same traffic produced in generator order")
    func seededReplayEqualsLiveOrder() async throws {
        let generated = EventGenerator.generate(GeneratorOptions(events: 3000, seed: 5))
        // Every pipeline but the SQL sink's (this test compares Redis).
        let config = { (h: ShopHarness) in
            var c = try ConfigLoader.load(path: ShopHarness.topologiesPath, registry: h.registry.names, environment: [:])
            c.pipelines.removeAll { $0.steps.contains { if case .sql = $0 { true } else { false } } }
            return c
        }

        let live = try ShopHarness()
        try await live.engine.produce(generated.records.map(\.producerRecord))
        try await live.runToEnd(try config(live), timeout: .seconds(300))

        let replay = try ShopHarness()
        for topic in [ShopEvents.loginsTopic, ShopEvents.pricesTopic, ShopEvents.purchasesTopic, ShopEvents.userEventsTopic] {
            try await replay.engine.produce(generated.records.filter { $0.topic == topic }.map(\.producerRecord))
        }
        try await replay.runToEnd(try config(replay), timeout: .seconds(300))

        let liveState = try await live.dump()
        let replayState = try await replay.dump()
        #expect(liveState.count > 200, "only \(liveState.count) keys")
        #expect(Set(liveState.keys) == Set(replayState.keys))
        let differing = liveState.keys.filter { liveState[$0] != replayState[$0] }.sorted()
        #expect(differing.isEmpty, "\(differing.count) keys differ, e.g. \(differing.prefix(3).map { "\($0): \(liveState[$0] ?? "-") vs \(replayState[$0] ?? "-")" })")
    }
}

extension ShopHarness {
    /// Every key but the engine's fences, with its value as text (sorted sets and hashes in Redis order).
    func dump() async throws -> [String: String] {
        var out: [String: String] = [:]
        for key in try await keys("*") where !key.hasPrefix("se:") {
            switch try await engine.redis.command(["TYPE", key]).string ?? "" {
            case "zset": out[key] = "\(try await zset(key))"
            case "hash": out[key] = "\(try await hash(key).sorted { $0.key < $1.key })"
            default: out[key] = try await engine.redis.command(["GET", key]).string ?? "?"
            }
        }
        return out
    }
}
