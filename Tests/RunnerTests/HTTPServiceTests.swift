import Foundation
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import Testing
import Topologies

/// `stream-engine run --http` and `stream-engine serve`, started as a user
/// starts them, in processes of their own, with a real redis-server and Kafka
/// (the embedded cluster, or a `dev-broker`).
@Suite("HTTP service", .serialized)
struct HTTPServiceTests {
    static let purchase = #"{"orderId":"o-http-1","userId":"u-http-1","productId":"p-1","category":"music","price":19.99,"quantity":2,"timestamp":"2024-12-16T10:00:00Z"}"#

    @Test("run --http on the shipped topologies.yaml: every route with good and bad input, metrics move, the dashboard renders in headless Chromium")
    func routesMetricsDashboard() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let server = try await HTTPInstance.start(["run", "--http", "127.0.0.1:0", "--state-dir", dir.file("state")])
        defer { server.process.terminate() }
        let base = server.url
        let bootstrap = try #require(server.bootstrap)
        let redisURL = try #require(server.redisURL)

        // Input as the README makes it: the generator, to the job's cluster.
        let gen = try await cli(["generate", "--events", "1500", "--seed", "7", "--bootstrap-servers", bootstrap], timeout: .seconds(120))
        #expect(gen.status == 0, "\(gen)")

        #expect(try await HTTP.get("\(base)/health").status == 200)
        let ready = try await HTTP.poll("\(base)/ready") { $0.status == 200 }
        #expect(try ready.status == 200 && (try ready.json()["ready"] as? Bool) == true, "\(ready)")

        // Lowest price: the sorted set price:{productId}, ascending.
        let price = try await HTTP.poll("\(base)/price-comparison/p-1") { $0.status == 200 }
        let doc = try price.json()
        let platforms = try #require(doc["platforms"] as? [[String: Any]])
        let prices = platforms.compactMap { $0["price"] as? Double }
        #expect(doc["productId"] as? String == "p-1" && !platforms.isEmpty && prices == prices.sorted(), "\(doc)")
        let lowest = try #require(doc["lowest"] as? [String: Any])
        #expect(lowest["platform"] as? String == platforms.first?["platform"] as? String && lowest["price"] as? Double == prices.first)
        #expect(doc["updatedAt"] is String)
        // The route answers what the sorted set holds. The generated events are still being
        // processed, so a commit may land between the two reads: read both again until they
        // agree (a route that does not follow the set never does).
        let redis = RedisConnection(url: try RedisURL(redisURL))
        var routed = platforms.compactMap { $0["platform"] as? String }
        var zrange: [String] = []
        for attempt in 0..<50 {
            if attempt > 0 {
                try await Task.sleep(for: .milliseconds(100))
                let again = try await HTTP.get("\(base)/price-comparison/p-1").json()
                routed = (again["platforms"] as? [[String: Any]] ?? []).compactMap { $0["platform"] as? String }
            }
            zrange = try await redis.command(["ZRANGE", "price:p-1", "0", "-1"]).array?.compactMap(\.string) ?? []
            if routed == zrange { break }
        }
        #expect(routed == zrange)
        try await HTTP.get("\(base)/price-comparison/no-such-product").expectProblem(404)

        // A purchase: 202 after Kafka acknowledged it, then visible in state and Redis.
        let posted = try await HTTP.post("\(base)/purchase-event", Self.purchase)
        #expect(posted.status == 202, "\(posted)")
        let ack = try posted.json()
        #expect(ack["topic"] as? String == "purchases" && (0..<4).contains(ack["partition"] as? Int ?? -1) && (ack["offset"] as? Int ?? -1) >= 0, "\(ack)")
        let stats = try await HTTP.poll("\(base)/stores/user-purchases/u-http-1") { $0.status == 200 }
        #expect(((try stats.json()["value"] as? [String: Any])?["orders"] as? Int) == 1, "\(stats)")
        var orders: String?
        for _ in 0..<100 where orders != "1" {  // Redis is written at the next commit
            orders = try await redis.command(["HGET", "user:u-http-1:stats", "orders"]).string
            if orders != "1" { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(orders == "1", "user:u-http-1:stats orders in Redis")

        // Bad purchases: 400 naming the field, nothing produced.
        try await HTTP.post("\(base)/purchase-event", #"{"orderId":"x","#).expectProblem(400)
        try await HTTP.post("\(base)/purchase-event", "[1,2]").expectProblem(400)
        try await HTTP.post("\(base)/purchase-event", Self.purchase.replacingOccurrences(of: #""price":19.99,"#, with: "")).expectProblem(400, field: "price")
        try await HTTP.post("\(base)/purchase-event", Self.purchase.replacingOccurrences(of: #""quantity":2"#, with: #""quantity":"two""#)).expectProblem(400, field: "quantity")
        try await HTTP.post("\(base)/purchase-event", Self.purchase.replacingOccurrences(of: #""quantity":2"#, with: #""quantity":2.5"#)).expectProblem(400, field: "quantity")
        try await HTTP.post("\(base)/purchase-event", Self.purchase.replacingOccurrences(of: "2024-12-16T10:00:00Z", with: "yesterday")).expectProblem(400, field: "timestamp")
        try await HTTP.post("\(base)/purchase-event", Self.purchase.replacingOccurrences(of: #""userId":"u-http-1""#, with: #""userId":7"#)).expectProblem(400, field: "userId")

        // Recommendations: the user's own, and the documented fallback for a user without data.
        let rec = try await HTTP.get("\(base)/recommendation/u-http-1")
        #expect(try rec.status == 200 && (try rec.json()["userId"] as? String) == "u-http-1", "\(rec)")
        let none = try await HTTP.get("\(base)/recommendation/nobody-at-all")
        let noneDoc = try none.json()
        let fallback = noneDoc["items"] as? [[String: Any]] ?? []
        #expect(none.status == 200 && noneDoc["source"] as? String == "popular" && !fallback.isEmpty, "\(none)")
        #expect(fallback.allSatisfy { $0["reason"] as? String == "popular" && $0["productId"] is String && $0["score"] is Double })
        // The generated events are processed while the test runs: u-1's own recommendations come
        // once the recommendation pipelines have committed them (until then, the popular fallback).
        func reasons(_ a: HTTPAnswer) -> Set<String> {
            Set(((try? a.json()["items"] as? [[String: Any]]) ?? []).compactMap { $0["reason"] as? String })
        }
        let personal = try await HTTP.poll("\(base)/recommendation/u-1") { !reasons($0).isEmpty && !reasons($0).contains("popular") }
        let reasons = reasons(personal)
        #expect(!reasons.isEmpty && reasons.isSubset(of: ["viewed-and-in-cart", "in-cart", "viewed", "popular-in-your-categories", "related"]), "\(personal)")

        // Recently viewed: a guest (cookie) views, logs in; the merge runs in the pipelines.
        let guest = "guest-http-0123456789"
        let view = try await HTTP.post("\(base)/product-view", #"{"productId":"p-42","category":"music","timestamp":"2024-12-16T09:00:00Z"}"#,
                                       headers: ["Cookie": "non-login-id=\(guest)"])
        #expect(try view.status == 202 && (try view.json()["topic"] as? String) == "user_events", "\(view)")
        let guestList = try await HTTP.poll("\(base)/recently-viewed/\(guest)") { ((try? $0.json()["items"] as? [Any]) ?? []).count == 1 }
        #expect((try guestList.json()["kind"] as? String) == "guest", "\(guestList)")
        try await HTTP.post("\(base)/product-view", #"{"guestId":7,"productId":"p-1"}"#).expectProblem(400, field: "guestId")
        try await HTTP.post("\(base)/product-view", #"{"productId":"p-1"}"#).expectProblem(400, field: "memberId")
        try await HTTP.post("\(base)/product-view", #"{"memberId":"u-http-2"}"#).expectProblem(400, field: "productId")
        let login = try await HTTP.post("\(base)/login", #"{"memberId":"u-http-2","timestamp":"2024-12-16T09:30:00Z"}"#, headers: ["Cookie": "non-login-id=\(guest)"])
        #expect(try login.status == 202 && (try login.json()["topic"] as? String) == "logins", "\(login)")
        let member = try await HTTP.poll("\(base)/recently-viewed/u-http-2") { ((try? $0.json()["items"] as? [[String: Any]]) ?? []).count == 1 }
        #expect(((try member.json()["items"] as? [[String: Any]])?.first?["productId"] as? String) == "p-42", "\(member)")
        let emptied = try await HTTP.poll("\(base)/recently-viewed/\(guest)") { ((try? $0.json()["items"] as? [Any]) ?? [1]).isEmpty }
        #expect(((try emptied.json()["items"] as? [Any]) ?? [1]).isEmpty, "the guest list is gone after the merge: \(emptied)")
        try await HTTP.post("\(base)/login", #"{"memberId":"u-http-2"}"#).expectProblem(400, field: "guestId")
        try await HTTP.post("\(base)/login", #"{"guestId":"g"}"#).expectProblem(400, field: "memberId")

        // Interactive queries.
        let stores = try await HTTP.get("\(base)/stores").json()["stores"] as? [[String: Any]] ?? []
        #expect(stores.compactMap { $0["name"] as? String }.contains("user-purchases") && stores.allSatisfy { $0["partitions"] as? Int == 4 }, "\(stores)")
        let scan = try await HTTP.get("\(base)/stores/user-purchases?prefix=u-http&limit=5").json()
        #expect((scan["entries"] as? [[String: Any]])?.compactMap { $0["key"] as? String } == ["u-http-1"], "\(scan)")
        #expect((scan["partitions"] as? [String: Any])?["missing"] as? [Int] == [], "\(scan)")
        let page = try await HTTP.get("\(base)/stores/user-purchases?limit=3").json()
        #expect((page["entries"] as? [Any])?.count == 3 && page["more"] as? Bool == true, "\(page)")
        try await HTTP.get("\(base)/stores/user-purchases?limit=0").expectProblem(400, field: "limit")
        try await HTTP.get("\(base)/stores/user-purchases/no-such-user").expectProblem(404)
        let typo = try await HTTP.get("\(base)/stores/user-purchase/u-1")
        try typo.expectProblem(404)
        #expect(typo.text.contains("did you mean 'user-purchases'"), "\(typo)")

        // Errors everywhere are problem documents; a known path with another method is 405.
        try await HTTP.get("\(base)/no/such/route").expectProblem(404)
        let wrongMethod = try await HTTP.request("DELETE", "\(base)/health")
        try wrongMethod.expectProblem(405)
        #expect(wrongMethod.header("Allow") == "GET")

        // The OpenAPI document names every route.
        let paths = (try await HTTP.get("\(base)/openapi.json").json()["paths"] as? [String: Any] ?? [:]).keys
        for p in ["/health", "/ready", "/metrics", "/stores", "/stores/{store}", "/stores/{store}/{key}", "/price-comparison/{productId}",
                  "/recommendation/{userId}", "/purchase-event", "/recently-viewed/{viewerId}", "/product-view", "/login", "/"] {
            #expect(paths.contains(p), "\(p) missing from /openapi.json")
        }

        // Metrics: Prometheus text; a purchase moves the user-stats counter.
        let before = try await HTTP.get("\(base)/metrics")
        #expect(before.header("Content-Type")?.hasPrefix("text/plain") == true)
        let counted = try #require(metricValue(before.text, "stream_engine_records_processed", ["pipeline": "user-stats"]))
        for name in ["stream_engine_records_out", "stream_engine_records_dead_lettered", "stream_engine_consumer_lag", "stream_engine_store_keys",
                     "stream_engine_commit_duration_seconds_count", "stream_engine_redis_write_seconds_count", "stream_engine_tasks_running"] {
            #expect(metricValue(before.text, name) != nil, "\(name) missing from /metrics")
        }
        #expect((metricValue(before.text, "stream_engine_records_dead_lettered") ?? 0) > 0, "the generator's malformed records were dead-lettered")
        #expect(try await HTTP.post("\(base)/purchase-event", Self.purchase.replacingOccurrences(of: "o-http-1", with: "o-http-2")).status == 202)
        let after = try await HTTP.poll("\(base)/metrics") {
            (metricValue($0.text, "stream_engine_records_processed", ["pipeline": "user-stats"]) ?? 0) > counted
        }
        #expect((metricValue(after.text, "stream_engine_records_processed", ["pipeline": "user-stats"]) ?? 0) > counted)
        #expect((metricValue(after.text, "stream_engine_store_keys", ["store": "user-purchases"]) ?? 0) > 0)

        // The dashboard, in a real browser.
        try await Self.checkDashboard(base)

        // Every route against the OpenAPI document (schemathesis, property-based).
        try await Self.schemathesis(base)

        let end = try await server.stop()
        #expect(end.status == 0, "\(end)")
    }

    /// Headless Chromium loads `/`, runs its script for a few (virtual) seconds; the
    /// rendered DOM shows every pipeline with live figures. A screenshot is kept.
    static func checkDashboard(_ base: String) async throws {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let browser = try #require(chromium, "headless Chromium is needed (scripts/setup.sh installs Debian's chromium)")
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=5000"]
        let dom = try await runTool(browser, flags + ["--dump-dom", "\(base)/"], timeout: .seconds(90))
        #expect(dom.status == 0, "\(dom.stderr.suffix(2000))")
        let html = dom.stdout
        for p in ["lowest-price", "user-stats", "category-popularity", "trending", "behaviour", "recently-viewed", "recommendations"] {
            #expect(html.contains("data-pipeline=\"\(p)\""), "pipeline \(p) missing from the rendered dashboard")
        }
        #expect(html.contains("ready</span>") || html.contains(">ready<"), "readiness shown")
        // The processed count of user-stats is rendered and non-zero (the page read /metrics).
        let card = html.components(separatedBy: "data-pipeline=\"user-stats\"").dropFirst().first ?? ""
        let processed = card.components(separatedBy: "class=\"stat processed\"><b class=\"v nonzero\">").dropFirst().first?.prefix { $0 != "<" } ?? ""
        #expect(Int(processed.replacingOccurrences(of: ",", with: "")) ?? 0 > 0, "user-stats processed count rendered: '\(processed)'")
        // It updates itself: several refreshes ran within the virtual time budget.
        let updates = html.components(separatedBy: "data-updates=\"").dropFirst().first?.prefix { $0 != "\"" } ?? ""
        #expect((Int(updates) ?? 0) >= 2, "the page refreshed itself (\(updates) updates)")
        #expect(html.contains("rekey: by field userId"), "the topology picture (from the Mermaid of describe) is drawn")

        let shot = (testArtifactsDirectory as NSString).appendingPathComponent("dashboard.png")
        try? FileManager.default.removeItem(atPath: shot)
        let s = try await runTool(browser, flags + ["--window-size=1400,1800", "--screenshot=\(shot)", "\(base)/"], timeout: .seconds(90))
        #expect(s.status == 0, "\(s.stderr.suffix(2000))")
        let size = (try? FileManager.default.attributesOfItem(atPath: shot)[.size] as? Int) ?? 0
        #expect(size > 20_000, "screenshot \(shot) written (\(size) bytes)")
    }

    /// schemathesis (from PyPI, in `.venv-api`, made by scripts/setup.sh) checks every
    /// operation of `/openapi.json` against the live server: status codes, content
    /// types, response schemas, valid bodies accepted and invalid ones rejected.
    static func schemathesis(_ base: String) async throws {
        let st = (repositoryRoot as NSString).appendingPathComponent(".venv-api/bin/schemathesis")
        try #require(FileManager.default.isExecutableFile(atPath: st), "\(st) is missing: run scripts/setup.sh (it makes the .venv-api virtual environment)")
        // One worker: with two, hypothesis describes filter lambdas with `ast.parse` from two
        // threads at once, which CPython 3.11 does not survive ("SystemError: AST constructor
        // recursion depth mismatch", seen under load): an error of the tool, not of the API.
        func run(seed: Int) async throws -> (status: Int32, stdout: String) {
            let r = try await runTool(st, ["run", "\(base)/openapi.json", "--checks", "all", "--max-examples", "25", "--workers", "1", "--seed", String(seed)],
                                      timeout: .seconds(300))
            return (r.status, r.stdout)
        }
        var r = try await run(seed: 1)
        // Hypothesis's optimiser (the target phase, which schemathesis's fuzzing always runs) can
        // crash inside itself ("IndexError: tuple index out of range" in conjecture/optimiser.py,
        // seen once in about ten runs, every generated case passing): an error of the tool, not a
        // finding about the API. Such a run is repeated once with another seed; a failed check is not.
        if r.status != 0, r.stdout.contains("/hypothesis/internal/"), !r.stdout.contains("FAILURES") {
            print("schemathesis crashed inside hypothesis (not a failed check); running it once more:\n\(r.stdout.suffix(1500))")
            r = try await run(seed: 2)
        }
        #expect(r.status == 0, "schemathesis found problems:\n\(r.stdout.suffix(6000))")
    }

    @Test("POST answers 503 within the delivery timeout when Kafka cannot be reached; Redis reads still answer")
    func kafkaUnreachable() async throws {
        let redis = try LocalRedisServer()
        defer { redis.stop() }
        let server = try await HTTPInstance.start([
            "serve", "--bootstrap-servers", "127.0.0.1:9", "--redis-url", redis.url.description, "--http", "127.0.0.1:0", "--log-level", "error",
        ])
        defer { server.process.terminate() }
        let started = ContinuousClock.now
        let r = try await HTTP.post("\(server.url)/purchase-event", Self.purchase)
        let took = ContinuousClock.now - started
        try r.expectProblem(503)
        #expect(r.header("Retry-After") != nil)
        #expect(took < .seconds(10), "503 after \(took)")
        try await HTTP.get("\(server.url)/price-comparison/p-1").expectProblem(404)
        #expect(try await HTTP.get("\(server.url)/health").status == 200)
        let end = try await server.stop()
        #expect(end.status == 0, "\(end)")
    }

    @Test("two instances on a dev-broker: a store query for a key the other instance holds is forwarded to it and answered")
    func forwardedQueries() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let config = try dir.write("fwd.yaml", """
            application.id: fwd
            defaults: { partitions: 4, commit.interval.ms: 100 }
            topologies:
              - name: user-stats
                source:
                  topics: [purchases]
                  timestamp: timestamp
                  required: { userId: string, price: number, quantity: integer, timestamp: string }
                steps:
                  - rekey: { field: userId }
                  - aggregate: { store: user-purchases, aggregator: purchase_stats }
            """)
        // Only the input topic, as a user starts it: the instances ask the dev-broker for the engine's topics.
        let topics = ["purchases"]
        let bootstrapFile = dir.file("bootstrap")
        // The group's first round waits 3 s for more members (a real broker's default), so that both
        // instances are in it: cooperative-sticky then splits both topics between them. (An instance
        // that joins a running group may be given all partitions of one topic: the sticky assignor
        // balances partition counts, not each topic, and this test is about forwarding.)
        let broker = try CLIProcess(["dev-broker", "--brokers", "1", "--bootstrap-file", bootstrapFile, "--group-initial-rebalance-delay-ms", "3000"]
            + topics.flatMap { ["--topic", "\($0):4"] })
        defer { broker.terminate() }
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: bootstrapFile), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let bootstrap = try String(contentsOfFile: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        let producer = try KafkaProducer(config: ["bootstrap.servers": bootstrap], logger: Logger(label: "test"))
        let users = (0..<40).map { "u-\($0)" }
        for u in users {
            let v = #"{"orderId":"o-\#(u)","userId":"\#(u)","productId":"p-1","category":"music","price":10,"quantity":1,"timestamp":"2024-12-16T10:00:00Z"}"#
            try await producer.send(ProducerRecord(topic: "purchases", key: Array(u.utf8), value: Array(v.utf8)))
        }
        try await producer.flush(timeout: .seconds(30))
        await producer.close()

        func instance(_ name: String) async throws -> HTTPInstance {
            try await HTTPInstance.start([
                "run", "--config", config, "--bootstrap-servers", bootstrap, "--state-dir", dir.file("state-\(name)"), "--http", "127.0.0.1:0",
                "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500", "--log-level", "warning",
            ])
        }
        let a = try await instance("a")
        defer { a.process.terminate() }
        let b = try await instance("b")
        defer { b.process.terminate() }

        // Both announced, the store's partitions split between them, both ready.
        let split = try await HTTP.poll("\(a.url)/instances", timeout: .seconds(90)) { answer in
            let list = (try? answer.json()["instances"] as? [[String: Any]]) ?? []
            let held = list.map { (($0["stores"] as? [String: [Int]])?["user-purchases"] ?? []) }
            return list.count == 2 && held.allSatisfy { !$0.isEmpty } && Set(held.flatMap { $0 }) == [0, 1, 2, 3]
                && held.flatMap { $0 }.count == 4 && list.allSatisfy { $0["ready"] as? Bool == true }
        }
        let instances = try split.json()["instances"] as? [[String: Any]] ?? []
        #expect(instances.count == 2, "\(split)")
        let bHolds = Set(instances.first { $0["url"] as? String == b.url }.flatMap { ($0["stores"] as? [String: [Int]])?["user-purchases"] } ?? [])
        #expect(!bHolds.isEmpty, "\(split)")

        // Every key answered by A; those in B's partitions forwarded to B.
        var forwarded = 0
        for u in users {
            let r = try await HTTP.poll("\(a.url)/stores/user-purchases/\(u)", timeout: .seconds(30)) { $0.status == 200 }
            #expect(r.status == 200, "\(u): \(r)")
            let doc = try r.json()
            #expect(((doc["value"] as? [String: Any])?["orders"] as? Int) == 1, "\(u): \(doc)")
            let partition = doc["partition"] as? Int ?? -1
            if bHolds.contains(partition) {
                #expect(doc["servedBy"] as? String == b.url && r.header("X-StreamEngine-Forwarded-To") == b.url, "\(u) in B's partition \(partition): \(doc)")
                forwarded += 1
            } else {
                #expect(doc["servedBy"] as? String == a.url, "\(u): \(doc)")
            }
        }
        #expect(forwarded > 0, "some keys are held by B")
        // A scan on A merges both instances' partitions.
        let scan = try await HTTP.get("\(a.url)/stores/user-purchases?limit=100").json()
        #expect((scan["entries"] as? [[String: Any]])?.count == users.count, "\(scan)")
        #expect((scan["partitions"] as? [String: Any])?["missing"] as? [Int] == [], "\(scan)")

        for i in [b, a] {
            let end = try await i.stop()
            #expect(end.status == 0, "\(end)")
        }
        broker.signal(SIGTERM)
        _ = try? await broker.wait(timeout: .seconds(30))
    }
}
