import Foundation
import KafkaClient
import Logging
import MariaDBClient
import RedisClient
import StreamEngine
import ThreadExecutors

/// Options of `stream-engine demo`.
public struct DemoOptions: Sendable {
    /// Generated records.
    public var events: Int
    public var seed: UInt64
    public var spike: Bool
    /// `topologies.yaml`.
    public var configPath: String
    /// An existing Redis; nil starts a `redis-server` on a free port for the demo.
    public var redisURL: RedisURL?
    /// Where store snapshots go; nil means a temporary directory removed at the end.
    public var stateDir: String?
    /// An existing MySQL/MariaDB for the `sql` steps; nil starts a private `mariadbd`.
    public var sqlURL: MariaDBURL?
    /// Event time the generated records span (epoch ms); default 72 hours.
    public var span: Int64 = GeneratorOptions(events: 1).span

    public init(events: Int = 50_000, seed: UInt64 = 42, spike: Bool = false, configPath: String = "topologies.yaml",
                redisURL: RedisURL? = nil, stateDir: String? = nil, sqlURL: MariaDBURL? = nil) {
        self.sqlURL = sqlURL
        self.events = events
        self.seed = seed
        self.spike = spike
        self.configPath = configPath
        self.redisURL = redisURL
        self.stateDir = stateDir
    }
}

/// The demo: embedded Kafka (3 brokers), a local redis-server, generated
/// events, every pipeline of `topologies.yaml` run to the end, and a summary
/// read back from Redis.
///
/// The input is produced in two parts, split just before a showcase guest
/// logs in, and the engine runs to the end of each part (the second run
/// restores its state from the first one's snapshots), so the summary can show
/// that guest's list before and after the login.
public enum ShopDemo {
    /// Runs the demo; progress goes to `progress` (stderr in the CLI); returns the summary text.
    public static func run(_ options: DemoOptions, logger: Logger, progress: @escaping @Sendable (String) -> Void) async throws -> String {
        let wall = ContinuousClock.now
        let registry = shopOperatorRegistry()
        var config: StreamConfig
        do {
            config = try ConfigLoader.load(path: options.configPath, registry: registry.names)
        } catch {
            throw StreamEngineError("\(options.configPath) is not valid:\n\(error)")
        }
        // mariadb-install-db takes seconds: start it while Kafka and Redis start.
        let needsSQL = !config.sqlSinks.isEmpty
        let givenSQL = options.sqlURL
        async let localMariaDB: LocalMariaDBServer? = needsSQL && givenSQL == nil ? runOnDedicatedThread("local-mariadb") { try LocalMariaDBServer(database: "shop") } : nil
        progress("starting embedded Kafka (3 brokers)")
        // Both block while they start: off the cooperative pool.
        let kafka = try await runOnDedicatedThread("embedded-kafka") { try EmbeddedKafkaCluster(brokers: 3, logger: logger) }
        var localRedis: LocalRedisServer?
        let redisURL: RedisURL
        if let url = options.redisURL {
            redisURL = url
            // A run of its own: fresh fence keys and topic names next to whatever that Redis holds.
            config.applicationId += "-demo-\(Int(Date().timeIntervalSince1970))"
        } else {
            let server = try await runOnDedicatedThread("local-redis") { try LocalRedisServer() }
            localRedis = server
            redisURL = server.url
        }
        defer { localRedis?.stop() }  // SIGTERM and a short wait
        progress("redis at \(redisURL.address)")
        let mariadb = try await localMariaDB
        defer { mariadb?.close() }
        let sqlURL = givenSQL ?? mariadb?.url
        if let sqlURL {
            config.sqlURL = sqlURL.urlString
            progress("MariaDB at \(sqlURL)")
            if givenSQL != nil, options.redisURL == nil { config.applicationId += "-demo-\(Int(Date().timeIntervalSince1970))" }
        }
        let stateDir = options.stateDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("shop-demo-\(UUID().uuidString)").path
        defer { if options.stateDir == nil { try? FileManager.default.removeItem(atPath: stateDir) } }
        for topic in config.inputTopics { try kafka.createTopic(topic, partitions: config.defaultPartitions, replicationFactor: 3) }

        let genStart = ContinuousClock.now
        let generated = EventGenerator.generate(GeneratorOptions(events: options.events, seed: options.seed, spike: options.spike, span: options.span))
        let showcase = pickShowcase(generated.logins, events: options.events)
        let split = showcase?.index ?? generated.records.count
        progress("generated \(grouped(options.events)) events (seed \(options.seed)) in \(format(ContinuousClock.now - genStart))")

        let producer = try KafkaProducer(config: kafka.clientConfig, logger: logger)
        let redis = RedisConnection(url: redisURL, logger: logger)
        var before: (guest: [(String, Int64)], member: [(String, Int64)])?
        var engineTime = Duration.zero
        var processed = 0
        var deadLettered = 0
        for (part, range) in [(1, 0..<split), (2, split..<generated.records.count)] where !range.isEmpty {
            progress("part \(part): producing \(grouped(range.count)) events")
            try await EventGenerator.produce(Array(generated.records[range]), with: producer)
            progress("part \(part): running \(config.pipelines.count) pipelines to the end of the input")
            let runStart = ContinuousClock.now
            let stats = try await runToEnd(config, registry: registry, kafka: kafka, redisURL: redisURL, stateDir: stateDir, logger: logger, progress: progress)
            engineTime += ContinuousClock.now - runStart
            processed += stats.processed
            deadLettered += stats.deadLettered
            if part == 1, let showcase {
                before = (try await recentList(redis, "recent:guest:\(showcase.guestId)"), try await recentList(redis, "recent:member:\(showcase.memberId)"))
            }
        }
        await producer.close()

        let dlq = try await deadLetterReasons(kafka: kafka, topic: config.dlqTopic, logger: logger)
        var s = Summary(redis: redis)
        s.line("StreamEngine demo: \(grouped(options.events)) generated events (seed \(options.seed)\(options.spike ? ", with a spike" : "")), "
            + "\(config.pipelines.count) pipelines of \(options.configPath)")
        let eventsPerSecond = Double(options.events) / max(engineTime.seconds, 0.001)
        s.line("  engine: \(format(engineTime)) for \(grouped(options.events)) input events = \(grouped(Int(eventsPerSecond))) events/s "
            + "(\(grouped(processed)) records processed, repartition topics included); whole demo \(format(ContinuousClock.now - wall))")
        s.line("  dead-letter topic \(config.dlqTopic): \(grouped(dlq.values.reduce(0, +))) records (the runs counted \(grouped(deadLettered)))"
            + (dlq.isEmpty ? "" : ": " + dlq.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")))
        let late = dlq.filter { $0.key.hasPrefix("late in") }.values.reduce(0, +)
        if late > 0 {
            s.line("  (late: purchases more than the 5-minute grace older than what came before them in their own partition;")
            s.line("   in-order input is never late: the tasks feeding the repartition topic are aligned in event time)")
        }
        try await s.categories()
        try await s.cheapest()
        try await s.related()
        try await s.user()
        if let showcase, let before { try await s.login(showcase, before: before) }
        if let sqlURL {
            let validPurchases = generated.records.filter { $0.topic == ShopEvents.purchasesTopic && !$0.malformed }
            let db = MariaDBConnection(url: sqlURL, logger: logger)
            try await s.purchases(db, tables: config.sqlSinks.map(\.table), produced: validPurchases.count)
            await db.close()
        }
        await redis.close()
        return s.text
    }

    /// A login in the middle of the stream by a guest who viewed a few products
    /// first and none afterwards (so "after" shows the merge alone); preferably
    /// as a member who had viewed products before.
    static func pickShowcase(_ logins: [GeneratedLogin], events: Int) -> GeneratedLogin? {
        let candidates = logins.filter { $0.index > events * 3 / 10 && $0.index < events * 7 / 10 && $0.guestViews >= 3 && !$0.guestViewsAfter }
        return candidates.max { ($0.guestViews, -$0.index) < ($1.guestViews, -$1.index) }
    }

    private static func runToEnd(
        _ config: StreamConfig, registry: OperatorRegistry, kafka: EmbeddedKafkaCluster, redisURL: RedisURL, stateDir: String,
        logger: Logger, progress: @escaping @Sendable (String) -> Void
    ) async throws -> RuntimeStats {
        let rt = StreamRuntime(
            config: config, registry: registry, kafka: .embedded(kafka), redisURL: redisURL,
            options: RuntimeOptions(stateDir: stateDir, stopAtEnd: true), logger: logger)
        let start = ContinuousClock.now
        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                if Task.isCancelled { break }
                let st = rt.stats
                progress("  \(format(ContinuousClock.now - start)): \(grouped(st.processed)) records processed, \(grouped(st.deadLettered)) dead-lettered, \(grouped(st.commits)) commits")
            }
        }
        defer { reporter.cancel() }
        try await rt.run()
        let st = rt.stats
        progress("  done in \(format(ContinuousClock.now - start)): \(grouped(st.processed)) records processed, \(grouped(st.deadLettered)) dead-lettered")
        return st
    }

    /// Counts the dead-letter topic's records by their `error.kind` and `pipeline` headers ("late in trending").
    static func deadLetterReasons(kafka: EmbeddedKafkaCluster, topic: String, logger: Logger) async throws -> [String: Int] {
        guard let n = try await kafka.partitionCount(topic: topic) else { return [:] }
        var ends: [TopicPartition: Int64] = [:]
        for p in 0..<Int32(n) { ends[TopicPartition(topic, p)] = try await kafka.watermarks(TopicPartition(topic, p)).high }
        let targets = ends.filter { $0.value > 0 }
        if targets.isEmpty { return [:] }
        let consumer = try KafkaConsumer(config: kafka.clientConfig, logger: logger)
        try consumer.assign(targets.keys.map { TopicPartitionOffset($0, KafkaOffset.beginning) })
        let counts = try await consumer.withExecutor { consumer in
            var counts: [String: Int] = [:]
            var positions: [TopicPartition: Int64] = [:]
            let deadline = ContinuousClock.now + .seconds(30)
            while targets.contains(where: { positions[$0.key, default: 0] < $0.value }), ContinuousClock.now < deadline {
                for m in try consumer.pollBatch(maxMessages: 1000, timeoutMs: 100).messages {
                    positions[m.topicPartition] = m.offset + 1
                    let pipeline = m.header("pipeline")?.stringValue ?? "?"
                    counts["\(m.header("error.kind")?.stringValue ?? "unknown") in \(pipeline)", default: 0] += 1
                }
            }
            return counts
        }
        await consumer.close()
        return counts
    }

    /// The first `count` members (all when nil) with scores; highest first when `reverse`.
    static func zrange(_ redis: RedisConnection, _ key: String, count: Int? = nil, reverse: Bool = false) async throws -> [(String, Double)] {
        let stop = count.map { String($0 - 1) } ?? "-1"
        let items = try await redis.command([reverse ? "ZREVRANGE" : "ZRANGE", key, "0", stop, "WITHSCORES"]).array ?? []
        return stride(from: 0, to: items.count - 1, by: 2).map { (items[$0].string ?? "", Double(items[$0 + 1].string ?? "") ?? 0) }
    }

    /// A recently-viewed list, newest first, with epoch-millisecond times.
    static func recentList(_ redis: RedisConnection, _ key: String) async throws -> [(String, Int64)] {
        try await zrange(redis, key, reverse: true).map { ($0.0, Int64($0.1)) }
    }

    static func format(_ d: Duration) -> String {
        String(format: "%.1f s", d.seconds)
    }

    static func format(hours millis: Int64) -> String {
        "\(millis / 3_600_000) hours"
    }
}


/// The readable summary, read back from Redis.
struct Summary {
    let redis: RedisConnection
    var text = ""
    /// Categories by units sold, best first, with their best sellers.
    private var ranked: [(category: String, units: Double, best: [(String, Double)])] = []

    init(redis: RedisConnection) { self.redis = redis }

    mutating func line(_ s: String = "") { text += s + "\n" }

    private func zrevrangeScores(_ key: String, _ count: Int? = nil) async throws -> [(String, Double)] {
        try await ShopDemo.zrange(redis, key, count: count, reverse: true)
    }

    private func money(_ d: Double) -> String { String(format: "%.2f", d) }

    private func units(_ d: Double) -> String { grouped(Int(d)) }

    mutating func categories() async throws {
        let keys = (try await redis.command(["KEYS", "popular:*"]).array ?? []).compactMap(\.string)
        for key in keys {
            let all = try await zrevrangeScores(key)
            ranked.append((String(key.dropFirst("popular:".count)), all.reduce(0) { $0 + $1.1 }, Array(all.prefix(3))))
        }
        ranked.sort { $0.units != $1.units ? $0.units > $1.units : $0.category < $1.category }
        line()
        line("Top categories (popular:{category}: units sold per product; trending:{category}: best sellers of the latest closed hour)")
        for (i, c) in ranked.prefix(5).enumerated() {
            let best = c.best.map { "\($0.0) (\(units($0.1)))" }.joined(separator: ", ")
            let trending = try await zrevrangeScores("trending:\(c.category)", 3).map { "\($0.0) (\(units($0.1)))" }.joined(separator: ", ")
            let head = "  \(i + 1). \(c.category.padding(toLength: 12, withPad: " ", startingAt: 0)) \(units(c.units).leftPadded(to: 6, with: " ")) units   "
            line(head + "best sellers: \(best)")
            line(String(repeating: " ", count: head.count) + "trending:     \(trending.isEmpty ? "(no closed window yet)" : trending)")
        }
    }

    mutating func cheapest() async throws {
        line()
        line("Cheapest platforms for popular products (price:{productId}, lowest first)")
        for c in ranked.prefix(4) {
            guard let product = c.best.first?.0 else { continue }
            let prices = try await zrangeScores("price:\(product)", 3)
            let count = try await redis.command(["ZCARD", "price:\(product)"]).int ?? 0
            let text = prices.isEmpty ? "(no current price)" : prices.map { "\($0.0) \(money($0.1))" }.joined(separator: " < ")
            line("  \(product.padding(toLength: 8, withPad: " ", startingAt: 0)) \("(\(c.category))".padding(toLength: 14, withPad: " ", startingAt: 0)) \(text)   [\(count) platforms]")
        }
    }

    /// Related products of the best sellers (the stand-in for the seed's Elasticsearch search).
    mutating func related() async throws {
        line()
        line("Related products (related:{productId}: viewed or bought in the same session, weight halving every 7 days)")
        for c in ranked.prefix(3) {
            guard let product = c.best.first?.0 else { continue }
            let related = try await zrevrangeScores("related:\(product)", 5)
            let count = try await redis.command(["ZCARD", "related:\(product)"]).int ?? 0
            let text = related.isEmpty ? "(none yet)" : related.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: ", ")
            line("  \(product.padding(toLength: 8, withPad: " ", startingAt: 0)) \(text)   [\(count) related]")
        }
    }

    private func zrangeScores(_ key: String, _ count: Int) async throws -> [(String, Double)] {
        try await ShopDemo.zrange(redis, key, count: count)
    }

    private func hash(_ key: String) async throws -> [String: String] {
        let items = try await redis.command(["HGETALL", key]).array ?? []
        var out: [String: String] = [:]
        for i in stride(from: 0, to: items.count - 1, by: 2) { out[items[i].string ?? ""] = items[i + 1].string ?? "" }
        return out
    }

    mutating func user() async throws {
        // The user with the most orders (ties: the smallest id).
        var best: (user: String, orders: Int)?
        for key in (try await redis.command(["KEYS", "user:*:stats"]).array ?? []).compactMap(\.string).sorted() {
            let orders = Int(try await hash(key)["orders"] ?? "") ?? 0
            if orders > (best?.orders ?? 0) { best = (String(key.dropFirst(5).dropLast(6)), orders) }
        }
        guard let user = best?.user else { return }
        let stats = try await hash("user:\(user):stats")
        let behaviour = try await hash("behaviour:\(user)")
        let categories = try await zrevrangeScores("user:\(user):categories", 5)
        let recs = try await zrevrangeScores("rec:\(user)", 8)
        line()
        line("User \(user), the most frequent buyer")
        line("  user:\(user):stats       orders \(stats["orders"] ?? "-"), items \(stats["items"] ?? "-"), spent \(stats["spent"] ?? "-"), last purchase \(stats["lastPurchaseAt"] ?? "-")")
        line("  user:\(user):categories  " + categories.map { "\($0.0) \(money($0.1))" }.joined(separator: ", "))
        line("  behaviour:\(user)        views \(behaviour["views"] ?? "-"), clicks \(behaviour["clicks"] ?? "-"), cart adds \(behaviour["addToCarts"] ?? "-"), "
            + "searches \(behaviour["searches"] ?? "-"), sessions \(behaviour["sessions"] ?? "-"), last seen \(behaviour["lastSeenAt"] ?? "-")")
        line("  rec:\(user) (score: 20+ in the cart, 10+ viewed, 1–2 related to what the user viewed or bought, ≤ 1 popularity in the user's top categories)")
        for (p, score) in recs {
            let why = RecommendationReason(score: score).rawValue
            line("      \(p.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(format: "%7.4f", score))  \(why)")
        }
    }

    /// The SQL tables the `sql` steps wrote: row counts and the latest rows.
    mutating func purchases(_ db: MariaDBConnection, tables: [String], produced: Int) async throws {
        line()
        line("MariaDB (\(db.url))")
        for table in Set(tables).sorted() {
            let isPurchases = table == "purchases"
            let counts = try await db.query(isPurchases
                ? "SELECT COUNT(*), COUNT(DISTINCT orderId), COALESCE(SUM(quantity), 0) FROM `purchases`"
                : "SELECT COUNT(*) FROM `\(table)`")
            let row = counts.rows.first ?? []
            func cell(_ i: Int) -> String { i < row.count ? row[i] ?? "0" : "0" }
            line("  table \(table): \(cell(0)) rows" + (isPurchases
                ? ", \(cell(1)) distinct orderId, \(cell(2)) units (the generator produced \(grouped(produced)) valid purchases)" : ""))
            let latest = try await db.query("SELECT * FROM `\(table)`" + (isPurchases ? " ORDER BY purchasedAt DESC, orderId" : "") + " LIMIT 3")
            line("    " + latest.columns.joined(separator: " | "))
            for r in latest.rows { line("    " + r.map { $0 ?? "NULL" }.joined(separator: " | ")) }
        }
        let fence = try await db.query("SELECT COUNT(*), COALESCE(SUM(next_offset), 0) FROM stream_engine_offsets")
        line("  stream_engine_offsets: \(fence.rows.first?[0] ?? "0") task/topic fences (the input offsets each task's last transaction applied)")
    }

    mutating func login(_ login: GeneratedLogin, before: (guest: [(String, Int64)], member: [(String, Int64)])) async throws {
        let guestKey = "recent:guest:\(login.guestId)", memberKey = "recent:member:\(login.memberId)"
        let guestAfter = try await ShopDemo.recentList(redis, guestKey)
        let memberAfter = try await ShopDemo.recentList(redis, memberKey)
        let width = max(guestKey.count, memberKey.count)
        func row(_ label: String, _ key: String, _ items: [(String, Int64)], gone: String) {
            let shown = items.prefix(8).map(\.0).joined(separator: ", ")
            let text = items.isEmpty ? gone : "\(items.count) products, newest first: \(shown)\(items.count > 8 ? ", …" : "")"
            line("  \(label.padding(toLength: 18, withPad: " ", startingAt: 0))\(key.padding(toLength: width + 2, withPad: " ", startingAt: 0))\(text)")
        }
        line()
        line("Guest \(login.guestId) logs in as \(login.memberId) at \(EventTime.formatISO8601(login.at)) (recently viewed, login merge)")
        row("before the login", guestKey, before.guest, gone: "(no key)")
        row("", memberKey, before.member, gone: "(no key)")
        row("at the end", guestKey, guestAfter, gone: "(no key: merged, and deleted in the same Redis script)")
        row("", memberKey, memberAfter, gone: "(no key)")
        let memberTimes = Dictionary(memberAfter, uniquingKeysWith: max)
        let kept = before.guest.filter { memberTimes[$0.0] == $0.1 }.count
        let later = before.guest.filter { (memberTimes[$0.0] ?? .min) > $0.1 }.count
        let missing = before.guest.count - kept - later
        line("  \(String(repeating: " ", count: 18))of the guest's \(before.guest.count) products: \(kept) with the guest's view time, \(later) viewed again later"
            + (missing > 0 ? ", \(missing) pushed out of the 100 most recent" : ""))
    }
}

/// `1234567` → `"1,234,567"`.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}
