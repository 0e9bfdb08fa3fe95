import StreamEngine

/// `platform_prices`: per product, each platform's latest price by event time.
///
/// - An older price of a platform (by event time) never overwrites a newer one;
///   for equal times the later arrival wins.
/// - A platform's price is dropped when it is more than `max_age` (default 24h)
///   older than the newest price event of the product; a price event that old on
///   arrival is ignored.
///
/// State: `{"newest": ms, "platforms": {platform: {"price": x, "t": ms}}}`.
/// Result: `{"prices": {platform: price}, "newest": ms}` — `prices` is what the
/// `redis` sorted-set step writes (member = platform, score = price).
///
/// Params: `platform` (field, default `platform`), `price` (field, default
/// `price`), `max_age` (default `24h`).
public struct PlatformPricesAggregator: Aggregator {
    public let platformField: String
    public let priceField: String
    public let maxAgeMillis: Int64

    public init(platformField: String = "platform", priceField: String = "price", maxAgeMillis: Int64) {
        self.platformField = platformField
        self.priceField = priceField
        self.maxAgeMillis = maxAgeMillis
    }

    static func make(_ p: JSONObject) throws -> any Aggregator {
        PlatformPricesAggregator(
            platformField: p.string("platform", default: "platform"), priceField: p.string("price", default: "price"),
            maxAgeMillis: try p.duration("max_age", default: "24h", for: "platform_prices"))
    }

    public func initial() -> JSONValue { ["newest": .null, "platforms": .object([:])] }

    public func add(_ state: JSONValue, _ record: StreamRecord) throws(RecordError) -> JSONValue {
        let platform = try record.requiredString(platformField)
        let price = try record.nonNegativeNumber(priceField)
        let t = record.timestamp
        var platforms = state["platforms"]?.objectValue ?? [:]
        let newest = max(state["newest"]?.intValue ?? t, t)
        if newest - t <= maxAgeMillis, (platforms[platform]?["t"]?.intValue ?? .min) <= t {
            platforms[platform] = ["price": .number(price), "t": .millis(t)]
        }
        return ["newest": .millis(newest), "platforms": .object(pruned(platforms, newest: newest))]
    }

    public func merge(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        var platforms = a["platforms"]?.objectValue ?? [:]
        for (name, entry) in b["platforms"]?.objectValue ?? [:]
        where (platforms[name]?["t"]?.intValue ?? .min) <= (entry["t"]?.intValue ?? .min) {
            platforms[name] = entry
        }
        let newest = [a["newest"]?.intValue, b["newest"]?.intValue].compactMap { $0 }.max()
        guard let newest else { return initial() }
        return ["newest": .millis(newest), "platforms": .object(pruned(platforms, newest: newest))]
    }

    public func result(_ state: JSONValue) -> JSONObject {
        var prices = JSONObject()
        for (name, entry) in state["platforms"]?.objectValue ?? [:] { prices[name] = entry["price"] ?? .null }
        return ["prices": .object(prices), "newest": state["newest"] ?? .null]
    }

    private func pruned(_ platforms: JSONObject, newest: Int64) -> JSONObject {
        JSONObject(platforms.filter { entry in
            guard let t = entry.value["t"]?.intValue else { return false }
            return newest - t <= maxAgeMillis
        })
    }
}
