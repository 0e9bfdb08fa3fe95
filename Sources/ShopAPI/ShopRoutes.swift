import Foundation
import HTTPTypes
import Hummingbird
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import StreamEngineHTTP
import Synchronization
import Topologies

/// The shop's HTTP API over what the pipelines of `topologies.yaml` write to
/// Redis (see README "What the demo computes"), and its write path into Kafka:
///
/// - `GET /price-comparison/{productId}` — `price:{productId}`
/// - `GET /recommendation/{userId}` — `rec:{userId}`, else the best sellers of `popular:*`
/// - `GET /recently-viewed/{viewerId}` — `recent:member:{id}`, else `recent:guest:{id}`
/// - `POST /purchase-event` → `purchases`, `POST /product-view` → `user_events`,
///   `POST /login` → `logins`: 202 with the record's topic, partition and offset once
///   Kafka acknowledged it (the login merge itself runs in the pipelines, never here).
public final class ShopAPI: Sendable {
    /// The cookie a browser's guest id travels in.
    public static let guestCookie = "non-login-id"
    /// Largest price and quantity of one purchase: their product stays within `Cents.maxPerPurchase`.
    static let maxPrice = 10_000_000.0, maxQuantity = 10_000.0

    let config: StreamConfig
    let redis: RedisPool
    let producer: KafkaProducer
    let logger: Logger
    /// Required fields and types of `purchases` records, from the pipelines that read the topic.
    let purchaseSchema: [(field: String, type: FieldType)]
    private let fallbackCache = Mutex<(at: ContinuousClock.Instant, items: [JSONValue])?>(nil)

    /// - Parameters:
    ///   - config: `topologies.yaml` (Kafka settings; the purchases schema).
    ///   - redisURL: where the pipelines write.
    ///   - deliveryTimeout: how long a POST waits for Kafka before answering 503.
    public init(config: StreamConfig, redisURL: RedisURL, deliveryTimeout: Duration = .seconds(5), redisConnections: Int = 4, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.redis = RedisPool(url: redisURL, size: redisConnections, logger: logger)
        var pc = config.kafka
        pc["message.timeout.ms"] = String(deliveryTimeout.components.seconds * 1000)
        pc["acks"] = "all"
        pc["linger.ms"] = pc["linger.ms"] ?? "1"
        self.producer = try KafkaProducer(config: pc, logger: logger)
        var schema: [(field: String, type: FieldType)] = []
        for p in config.pipelines where p.source.topics.contains("purchases") {
            for r in p.source.required where !schema.contains(where: { $0.field == r.field }) { schema.append(r) }
        }
        self.purchaseSchema = schema
    }

    /// Flushes and closes the producer and the Redis connections.
    public func close() async {
        await producer.close()
        await redis.close()
    }

    /// The routes, for ``EngineHTTPService``.
    public var routes: RouteRegistration {
        { [self] router in
            router.get("/price-comparison/:productId") { _, context in
                try await self.priceComparison(productId: try context.parameters.require("productId"))
            }
            router.get("/recommendation/:userId") { _, context in
                try await self.recommendation(userId: try context.parameters.require("userId"))
            }
            router.get("/recently-viewed/:viewerId") { _, context in
                try await self.recentlyViewed(viewerId: try context.parameters.require("viewerId"))
            }
            router.post("/purchase-event") { request, _ in try await self.purchaseEvent(request) }
            router.post("/product-view") { request, _ in try await self.productView(request) }
            router.post("/login") { request, _ in try await self.login(request) }
        }
    }

    // MARK: Reads

    func priceComparison(productId: String) async throws -> Response {
        let key = "price:\(productId)"
        let replies = try await redis.pipeline([["ZRANGE", key, "0", "-1", "WITHSCORES"], ["PTTL", key]])
        let pairs = Self.scoredMembers(replies[0])
        guard let lowest = pairs.first else {
            throw Problem.notFound("no prices for product '\(productId)' (unknown product, or none in the last 24 h)")
        }
        // price:{p} expires 24 h after its last update: the remaining TTL dates that update.
        var updatedAt: JSONValue = .null
        if let pttl = replies[1].int, pttl > 0 {
            let millis = Int64(Date().timeIntervalSince1970 * 1000) - (24 * 3_600_000 - pttl)
            updatedAt = .string(EventTime.formatISO8601(millis))
        }
        func entry(_ p: (member: String, score: Double)) -> JSONValue { .object(["platform": .string(p.member), "price": .number(p.score)]) }
        return JSONResponse.make(.object([
            "productId": .string(productId), "lowest": entry(lowest), "platforms": .array(pairs.map(entry)), "updatedAt": updatedAt,
        ]))
    }

    func recommendation(userId: String) async throws -> Response {
        let reply = try await redis.command(["ZREVRANGE", "rec:\(userId)", "0", "19", "WITHSCORES"])
        let pairs = Self.scoredMembers(reply)
        if !pairs.isEmpty {
            let items: [JSONValue] = pairs.map { p in
                .object(["productId": .string(p.member), "score": .number(p.score), "reason": .string(RecommendationReason(score: p.score).code)])
            }
            return JSONResponse.make(.object(["userId": .string(userId), "items": .array(items), "source": "personal"]))
        }
        return JSONResponse.make(.object(["userId": .string(userId), "items": .array(try await popularFallback()), "source": "popular"]))
    }

    /// A user without recommendations gets the 20 best sellers over all categories
    /// (`popular:{category}`, units sold), scored relative to the best one; cached for 5 s.
    func popularFallback() async throws -> [JSONValue] {
        if let c = fallbackCache.withLock({ $0 }), ContinuousClock.now - c.at < .seconds(5) { return c.items }
        var keys: [String] = []
        var cursor = "0"
        repeat {
            let r = try await redis.command(["SCAN", cursor, "MATCH", "popular:*", "COUNT", "1000"])
            guard let parts = r.array, parts.count == 2 else { break }
            cursor = parts[0].string ?? "0"
            keys += (parts[1].array ?? []).compactMap(\.string)
        } while cursor != "0" && keys.count < 10_000
        var units: [String: Double] = [:]
        if !keys.isEmpty {
            let replies = try await redis.pipeline(keys.map { ["ZREVRANGE", $0, "0", "19", "WITHSCORES"] })
            for r in replies { for p in Self.scoredMembers(r) { units[p.member, default: 0] += p.score } }
        }
        let top = units.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(20)
        let best = top.first?.value ?? 1
        let items: [JSONValue] = top.map { p in
            .object(["productId": .string(p.key), "score": .number((p.value / best * 10_000).rounded() / 10_000), "reason": "popular"])
        }
        fallbackCache.withLock { $0 = (ContinuousClock.now, items) }
        return items
    }

    func recentlyViewed(viewerId: String) async throws -> Response {
        let replies = try await redis.pipeline([
            ["ZREVRANGE", "recent:member:\(viewerId)", "0", "99", "WITHSCORES"],
            ["ZREVRANGE", "recent:guest:\(viewerId)", "0", "99", "WITHSCORES"],
        ])
        let member = Self.scoredMembers(replies[0]), guest = Self.scoredMembers(replies[1])
        let (kind, list): (JSONValue, [(member: String, score: Double)]) = !member.isEmpty ? ("member", member) : !guest.isEmpty ? ("guest", guest) : (.null, [])
        let items: [JSONValue] = list.map { p in
            .object(["productId": .string(p.member), "viewedAt": .string(EventTime.formatISO8601(Int64(p.score)))])
        }
        return JSONResponse.make(.object(["viewerId": .string(viewerId), "kind": kind, "items": .array(items)]))
    }

    // MARK: Writes

    func purchaseEvent(_ request: Request) async throws -> Response {
        let body = try await JSONResponse.object(of: request)
        for (field, type) in purchaseSchema {
            guard let v = body[field], !v.isNull else { throw Problem.badRequest(field: field, "required field '\(field)' is missing") }
            guard Self.matches(v, type) else {
                throw Problem.badRequest(field: field, "field '\(field)' must be \(Self.article(type)), got \(v.serializedString())")
            }
        }
        if let ts = body["timestamp"]?.stringValue, EventTime.parseISO8601(ts) == nil {
            throw Problem.badRequest(field: "timestamp", "field 'timestamp' must be an ISO-8601 UTC time such as 2024-12-14T10:00:00Z, got \"\(ts)\"")
        }
        // Bounds (see the OpenAPI schema) keep price × quantity within what the aggregations sum exactly.
        if let price = body["price"]?.doubleValue, !(0...Self.maxPrice).contains(price) {
            throw Problem.badRequest(field: "price", "field 'price' must be from 0 to \(Int(Self.maxPrice)), got \(price)")
        }
        if let q = body["quantity"]?.doubleValue, !(1...Self.maxQuantity).contains(q) {
            throw Problem.badRequest(field: "quantity", "field 'quantity' must be from 1 to \(Int(Self.maxQuantity)), got \(q)")
        }
        guard let userId = body["userId"]?.stringValue, !userId.isEmpty else {
            throw Problem.badRequest(field: "userId", "field 'userId' must be a non-empty string")
        }
        return try await produce(topic: "purchases", key: userId, value: .object(body))
    }

    func productView(_ request: Request) async throws -> Response {
        var body = try await JSONResponse.object(of: request)
        let cookieGuest = Self.cookie(Self.guestCookie, in: request)
        try Self.optionalString(body, "memberId")
        try Self.optionalString(body, "guestId")
        if body["guestId"] == nil || body["guestId"]!.isNull, let g = cookieGuest { body["guestId"] = .string(g) }
        let memberId = body["memberId"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let guestId = body["guestId"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        guard let viewer = memberId ?? guestId else {
            throw Problem.badRequest(field: "memberId", "a view needs 'memberId' or 'guestId' (or the \(Self.guestCookie) cookie)")
        }
        guard let productId = body["productId"]?.stringValue, !productId.isEmpty else {
            throw Problem.badRequest(field: "productId", body["productId"] == nil ? "required field 'productId' is missing" : "field 'productId' must be a non-empty string")
        }
        try Self.optionalString(body, "category")
        if let e = body["eventId"], e.stringValue == nil { throw Problem.badRequest(field: "eventId", "field 'eventId' must be a string") }
        let timestamp = try Self.timestamp(body)
        let event: JSONObject = [
            "eventId": .string(body["eventId"]?.stringValue ?? UUID().uuidString.lowercased()), "type": "view",
            "memberId": memberId.map { .string($0) } ?? .null, "guestId": guestId.map { .string($0) } ?? .null,
            "productId": .string(productId), "category": body["category"] ?? .null, "timestamp": .string(timestamp),
        ]
        return try await produce(topic: "user_events", key: viewer, value: .object(event))
    }

    func login(_ request: Request) async throws -> Response {
        var body = try await JSONResponse.object(of: request)
        try Self.optionalString(body, "guestId")
        if body["guestId"] == nil || body["guestId"]!.isNull, let g = Self.cookie(Self.guestCookie, in: request) { body["guestId"] = .string(g) }
        guard let memberId = body["memberId"]?.stringValue, !memberId.isEmpty else {
            throw Problem.badRequest(field: "memberId", body["memberId"] == nil ? "required field 'memberId' is missing" : "field 'memberId' must be a non-empty string")
        }
        guard let guestId = body["guestId"]?.stringValue, !guestId.isEmpty else {
            throw Problem.badRequest(field: "guestId", "required field 'guestId' is missing (in the body or the \(Self.guestCookie) cookie)")
        }
        let timestamp = try Self.timestamp(body)
        var response = try await produce(topic: "logins", key: guestId,
                                         value: .object(["memberId": .string(memberId), "guestId": .string(guestId), "timestamp": .string(timestamp)]))
        // The browser is a member now: its guest id is done with.
        response.headers[.setCookie] = "\(Self.guestCookie)=; Path=/; Max-Age=0"
        return response
    }

    /// Produces and waits for Kafka's acknowledgement: 202 with where the record went,
    /// 503 when Kafka does not acknowledge within the delivery timeout.
    private func produce(topic: String, key: String, value: JSONValue) async throws -> Response {
        do {
            let report = try await producer.sendAndWait(ProducerRecord(topic: topic, key: Array(key.utf8), value: value.serialized()))
            return JSONResponse.make(.object([
                "topic": .string(report.topic), "partition": .number(Double(report.partition)), "offset": .number(Double(report.offset)),
            ]), status: .accepted)
        } catch {
            logger.warning("producing to \(topic) failed: \(error)")
            throw Problem.unavailable("Kafka did not acknowledge the record on \(topic): \(error)", retryAfter: 5)
        }
    }

    // MARK: Helpers

    static func scoredMembers(_ reply: RedisReply) -> [(member: String, score: Double)] {
        let a = reply.array ?? []
        return stride(from: 0, to: a.count - 1, by: 2).compactMap { i in
            guard let m = a[i].string, let s = a[i + 1].string.flatMap(Double.init) else { return nil }
            return (m, s)
        }
    }

    static func matches(_ v: JSONValue, _ type: FieldType) -> Bool {
        switch (type, v) {
        case (.any, _): true
        case (.string, .string), (.number, .number), (.boolean, .bool), (.object, .object), (.array, .array): true
        case (.integer, .number(let d)): d.rounded() == d
        default: false
        }
    }

    static func article(_ type: FieldType) -> String {
        switch type {
        case .integer: "an integer"
        case .object, .array, .any: "an \(type.rawValue)"
        default: "a \(type.rawValue)"
        }
    }

    static func optionalString(_ body: JSONObject, _ field: String) throws {
        if let v = body[field], !v.isNull, v.stringValue == nil { throw Problem.badRequest(field: field, "field '\(field)' must be a string") }
    }

    /// The body's ISO-8601 `timestamp`, or now.
    static func timestamp(_ body: JSONObject) throws -> String {
        guard let v = body["timestamp"] else { return EventTime.formatISO8601(Int64(Date().timeIntervalSince1970 * 1000)) }
        guard let s = v.stringValue, EventTime.parseISO8601(s) != nil else {
            throw Problem.badRequest(field: "timestamp", "field 'timestamp' must be an ISO-8601 UTC time such as 2024-12-14T10:00:00Z, got \(v.serializedString())")
        }
        return s
    }

    static func cookie(_ name: String, in request: Request) -> String? {
        guard let header = request.headers[.cookie] else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == name, !kv[1].isEmpty { return String(kv[1]) }
        }
        return nil
    }
}

/// A few Redis connections used in turn (each is one hiredis context on a thread of its own).
final class RedisPool: Sendable {
    private let connections: [RedisConnection]
    private let next = Atomic<Int>(0)

    init(url: RedisURL, size: Int, logger: Logger) {
        let policy = RedisConnection.ReconnectPolicy(maxAttempts: 2, initialDelay: .milliseconds(50), maxDelay: .milliseconds(200))
        connections = (0..<max(1, size)).map { _ in
            RedisConnection(url: url, connectTimeout: .seconds(1), commandTimeout: .seconds(2), reconnect: policy, logger: logger)
        }
    }

    private var connection: RedisConnection {
        connections[next.wrappingAdd(1, ordering: .relaxed).oldValue % connections.count]
    }

    func command(_ args: [String]) async throws -> RedisReply {
        do { return try await connection.command(args) } catch { throw Self.unavailable(error) }
    }

    func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        do { return try await connection.pipeline(commands) } catch { throw Self.unavailable(error) }
    }

    static func unavailable(_ error: any Error) -> Problem {
        Problem.unavailable("Redis cannot be reached: \(error)", retryAfter: 2)
    }

    func close() async {
        for c in connections { await c.close() }
    }
}
