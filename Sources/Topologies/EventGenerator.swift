import Foundation
import KafkaClient
import StreamEngine

/// What `stream-engine generate` and the demo produce.
public struct GeneratorOptions: Sendable {
    /// Number of records, malformed ones included.
    public var events: Int
    /// Same seed, same records (keys, values, order).
    public var seed: UInt64
    /// A promotion in the middle 20% of the records: 5× denser in event time,
    /// twice the purchases, and 5× the send rate when a rate is set.
    public var spike: Bool
    /// Event time of the first record (epoch ms); default 2024-12-14T00:00:00Z.
    public var start: Int64
    /// Event time the records span (before the spike compresses part of it); default 72h.
    public var span: Int64
    /// Share of malformed records (bad JSON, missing fields, wrong types, unknown types).
    public var malformedShare: Double

    public init(events: Int, seed: UInt64 = 42, spike: Bool = false, start: Int64 = 1_734_134_400_000,
                span: Int64 = 72 * 3_600_000, malformedShare: Double = 0.005) {
        self.events = events
        self.seed = seed
        self.spike = spike
        self.start = start
        self.span = span
        self.malformedShare = malformedShare
    }
}

/// One generated record.
public struct GeneratedRecord: Sendable {
    public var topic: String
    public var key: String
    public var value: [UInt8]
    /// Whether it was made malformed on purpose (it should land in the dead-letter topic).
    public var malformed: Bool
    /// Inside the spike.
    public var inSpike: Bool

    /// The record for `KafkaProducer.send`.
    public var producerRecord: ProducerRecord { ProducerRecord(topic: topic, key: Array(key.utf8), value: value) }
}

/// A guest logging in, as generated.
public struct GeneratedLogin: Sendable, Hashable {
    /// Position of the login record in the generated sequence.
    public var index: Int
    public var guestId: String
    public var memberId: String
    /// Event time of the login (epoch ms).
    public var at: Int64
    /// Views the guest made before logging in.
    public var guestViews: Int
    /// Whether the guest viewed anything (as a guest) after this login.
    public var guestViewsAfter: Bool
}

/// A seeded, realistic mix of shop events on the four input topics.
///
/// - Products: a catalogue with Zipf-skewed popularity, each in one of 12
///   categories and sold on 3–8 of ~300 platforms.
/// - `product_prices` (~30%): random-walk price updates per product and
///   platform; ~4% arrive out of order (up to 3 hours late), ~0.5% are stale
///   (25–30 hours old on arrival: always ignored).
/// - `user_events` and `purchases`: a pool of concurrent visitors, members
///   and guests (guestIds are 18 characters, longer than member ids), each
///   with favourite categories; they view, click, search, add to the cart and
///   (members) buy; they pause for 40 minutes to 3 hours now and then, so their
///   activity forms sessions.
/// - `logins`: about a third of the guests log in after browsing, half of
///   them as members who browsed before (and share some of their products);
///   some members log out again and browse under the same guestId.
/// - A small share of malformed records, and a spike (`GeneratorOptions.spike`).
///
/// Deterministic for a seed: the same options give the same records in the same order.
public struct EventGenerator: Sequence, IteratorProtocol {
    public let options: GeneratorOptions
    private var rng: SplitMix64
    private let catalogue: Catalogue
    private var clock: Int64
    private var produced = 0
    private var slots: [Visitor] = []
    private var nextMember = 1
    private var prices: [String: Double] = [:]
    private var memberViews: [String: [Int]] = [:]
    private var counter = 0
    /// The logins generated so far.
    public private(set) var logins: [GeneratedLogin] = []
    private var loginOfGuest: [String: Int] = [:]

    public init(_ options: GeneratorOptions) {
        self.options = options
        var rng = SplitMix64(seed: options.seed)
        catalogue = Catalogue(products: Swift.max(50, Swift.min(5000, options.events / 25)), rng: &rng)
        self.rng = rng
        clock = options.start
        let slotCount = Swift.max(8, Swift.min(200, options.events / 400))
        for _ in 0..<slotCount { slots.append(newVisitor()) }
    }

    /// Generates every record (and the logins) at once.
    public static func generate(_ options: GeneratorOptions) -> (records: [GeneratedRecord], logins: [GeneratedLogin]) {
        var g = EventGenerator(options)
        var records: [GeneratedRecord] = []
        records.reserveCapacity(options.events)
        while let r = g.next() { records.append(r) }
        return (records, g.logins)
    }

    /// Whether record `index` falls in the spike.
    public func inSpike(_ index: Int) -> Bool {
        options.spike && index >= options.events * 2 / 5 && index < options.events * 3 / 5
    }

    public mutating func next() -> GeneratedRecord? {
        guard produced < options.events else { return nil }
        let spike = inSpike(produced)
        let meanStep = Double(options.span) / Double(options.events) / (spike ? 5 : 1)
        clock += Int64(rng.exponential(mean: meanStep))
        var record: GeneratedRecord
        if rng.chance(options.malformedShare) {
            record = malformed()
        } else if rng.chance(0.30) {
            record = priceUpdate()
        } else {
            record = visitorEvent(purchaseBoost: spike ? 2 : 1)
        }
        record.inSpike = spike
        produced += 1
        return record
    }

    // MARK: Prices

    private mutating func priceUpdate() -> GeneratedRecord {
        let p = catalogue.zipfProduct(&rng)
        let product = catalogue.products[p]
        let platform = product.platforms[rng.int(product.platforms.count)]
        // Each platform's list price wanders around the product's base price (mean-reverting);
        // now and then a platform runs a promotion for one update.
        let key = "\(product.id)|\(platform)"
        var list = prices[key] ?? product.basePrice * rng.uniform(0.9, 1.15)
        list += 0.2 * (product.basePrice - list) + product.basePrice * rng.uniform(-0.04, 0.04)
        prices[key] = list
        let promotion = rng.chance(0.1) ? rng.uniform(0.75, 0.9) : 1
        let price = Swift.max(0.5, (list * promotion * 100).rounded() / 100)
        var t = clock
        if rng.chance(0.005) {
            t -= Int64(rng.uniform(25, 30) * 3_600_000)
        } else if rng.chance(0.04) {
            t -= Int64(rng.uniform(1, 180) * 60_000)
        }
        return record(ShopEvents.pricesTopic, product.id, ShopEvents.price(product: product.id, platform: platform, price: price, at: t))
    }

    // MARK: Visitors

    private struct Visitor {
        var member: String?
        var guest: String?
        var favourites: [Int]
        var viewed: [Int] = []
        var cart: [Int] = []
        var guestViews = 0
        /// For a guest: log in after this many views, as this member (nil: new member).
        var loginAfter: Int?
        var loginAs: String?
        var idleUntil: Int64 = .min
        var eventsLeft: Int
    }

    private mutating func newVisitor() -> Visitor {
        let favourites = (0..<(1 + rng.int(3))).map { _ in rng.int(Catalogue.categories.count) }
        let eventsLeft = 5 + rng.int(40)
        if nextMember > 1, rng.chance(0.5) {
            // A returning member, logged in (some browsers carry a guest cookie too).
            let member = "u-\(1 + rng.int(nextMember - 1))"
            return Visitor(member: member, guest: rng.chance(0.3) ? newGuestId() : nil, favourites: favourites, eventsLeft: eventsLeft)
        }
        if rng.chance(0.15) {
            let member = "u-\(nextMember)"
            nextMember += 1
            return Visitor(member: member, guest: nil, favourites: favourites, eventsLeft: eventsLeft)
        }
        var v = Visitor(member: nil, guest: newGuestId(), favourites: favourites, eventsLeft: eventsLeft)
        if rng.chance(0.35) {
            v.loginAfter = 2 + rng.int(12)
            v.eventsLeft = Swift.max(v.eventsLeft, v.loginAfter! + 6)
            if nextMember > 1, rng.chance(0.5) {
                // A member who browsed before: share some of their products.
                let m = 1 + rng.int(nextMember - 1)
                v.loginAs = "u-\(m)"
                v.viewed = Array((memberViews["u-\(m)"] ?? []).suffix(3))
            }
        }
        return v
    }

    private mutating func newGuestId() -> String {
        "g-" + String(rng.next() & 0xFFFF_FFFF_FFFF_FFFF, radix: 16).leftPadded(to: 16)
    }

    private mutating func visitorEvent(purchaseBoost: Double) -> GeneratedRecord {
        // A random visitor who is not pausing (if all are, the first one tried).
        let first = rng.int(slots.count)
        var i = first
        while slots[i].idleUntil > clock {
            i = (i + 1) % slots.count
            if i == first { break }
        }
        var v = slots[i]
        let record: GeneratedRecord
        if v.member == nil, let after = v.loginAfter, v.guestViews >= after {
            record = login(&v)
        } else if v.member != nil, rng.chance(0.12 * purchaseBoost) {
            record = purchase(&v)
        } else {
            record = userEvent(&v)
        }
        v.eventsLeft -= 1
        if v.eventsLeft <= 0 {
            slots[i] = newVisitor()
        } else {
            if rng.chance(0.06) { v.idleUntil = clock + Int64(rng.uniform(40, 180) * 60_000) }
            if v.member != nil, v.guest != nil, rng.chance(0.02) {
                v.member = nil  // logged out: the same browser goes on as a guest
                v.loginAfter = nil
            }
            slots[i] = v
        }
        return record
    }

    private mutating func pickProduct(_ v: Visitor) -> Int {
        if !v.cart.isEmpty, rng.chance(0.1) { return v.cart[rng.int(v.cart.count)] }
        if !v.viewed.isEmpty, rng.chance(0.25) { return v.viewed[rng.int(v.viewed.count)] }
        if rng.chance(0.6) { return catalogue.zipfProduct(inCategory: v.favourites[rng.int(v.favourites.count)], &rng) }
        return catalogue.zipfProduct(&rng)
    }

    private mutating func userEvent(_ v: inout Visitor) -> GeneratedRecord {
        let r = rng.uniform(0, 1)
        let type = r < 0.58 ? "view" : r < 0.78 ? "click" : r < 0.90 ? "search" : "add_to_cart"
        let p = pickProduct(v)
        let product = catalogue.products[p]
        counter += 1
        var t = clock
        if rng.chance(0.02) { t -= Int64(rng.uniform(0, 120_000)) }
        switch type {
        case "view":
            v.viewed.append(p)
            if v.viewed.count > 30 { v.viewed.removeFirst() }
            if let m = v.member {
                memberViews[m, default: []].append(p)
                if memberViews[m]!.count > 10 { memberViews[m]!.removeFirst() }
            } else {
                v.guestViews += 1
                if let g = v.guest, let li = loginOfGuest[g] { logins[li].guestViewsAfter = true }
            }
        case "add_to_cart":
            v.cart.append(p)
        default: break
        }
        let value = ShopEvents.userEvent(
            id: "e-\(counter)", type: type, member: v.member, guest: v.guest,
            product: type == "search" ? nil : product.id, category: Catalogue.categories[product.category], at: t)
        return record(ShopEvents.userEventsTopic, ShopEvents.userEventKey(member: v.member, guest: v.guest), value)
    }

    private mutating func purchase(_ v: inout Visitor) -> GeneratedRecord {
        let p = v.cart.isEmpty ? pickProduct(v) : v.cart.removeFirst()
        let product = catalogue.products[p]
        let r = rng.uniform(0, 1)
        let quantity = r < 0.7 ? 1 : r < 0.9 ? 2 : 3 + rng.int(3)
        let price = (product.basePrice * rng.uniform(0.9, 1.1) * 100).rounded() / 100
        counter += 1
        let value = ShopEvents.purchase(
            order: "o-\(counter)", user: v.member!, product: product.id, category: Catalogue.categories[product.category],
            price: price, quantity: quantity, at: clock)
        return record(ShopEvents.purchasesTopic, v.member!, value)
    }

    private mutating func login(_ v: inout Visitor) -> GeneratedRecord {
        let guest = v.guest!
        let member: String
        if let m = v.loginAs {
            member = m
        } else {
            member = "u-\(nextMember)"
            nextMember += 1
        }
        logins.append(GeneratedLogin(index: produced, guestId: guest, memberId: member, at: clock, guestViews: v.guestViews, guestViewsAfter: false))
        loginOfGuest[guest] = logins.count - 1
        v.member = member
        v.loginAfter = nil
        v.guestViews = 0
        return record(ShopEvents.loginsTopic, guest, ShopEvents.login(member: member, guest: guest, at: clock))
    }

    // MARK: Malformed

    private mutating func malformed() -> GeneratedRecord {
        let t = EventTime.formatISO8601(clock)
        counter += 1
        let (topic, key, text): (String, String, String)
        switch rng.int(6) {
        case 0: (topic, key, text) = (ShopEvents.pricesTopic, "p-1", #"{"productId":"p-1","platform":"Amazon","price":"#)
        case 1: (topic, key, text) = (ShopEvents.pricesTopic, "p-1", #"{"productId":"p-1","platform":"Amazon","price":"12.50 EUR","timestamp":"\#(t)"}"#)
        case 2: (topic, key, text) = (ShopEvents.purchasesTopic, "u-1", #"{"orderId":"o-bad-\#(counter)","userId":"u-1","productId":"p-1","category":"shoes","quantity":1,"timestamp":"\#(t)"}"#)
        case 3: (topic, key, text) = (ShopEvents.purchasesTopic, "u-1", #"{"orderId":"o-bad-\#(counter)","userId":"u-1","productId":"p-1","category":"shoes","price":9.5,"quantity":"two","timestamp":"\#(t)"}"#)
        case 4: (topic, key, text) = (ShopEvents.userEventsTopic, "u-1", #"{"eventId":"e-bad-\#(counter)","type":"hover","memberId":"u-1","guestId":null,"productId":"p-1","category":"shoes","timestamp":"\#(t)"}"#)
        default: (topic, key, text) = (ShopEvents.userEventsTopic, "u-1", #"{"eventId":"e-bad-\#(counter)","type":"view","memberId":"u-1","guestId":null,"productId":"p-1","timestamp":"yesterday"}"#)
        }
        return GeneratedRecord(topic: topic, key: key, value: Array(text.utf8), malformed: true, inSpike: false)
    }

    private func record(_ topic: String, _ key: String, _ value: JSONValue) -> GeneratedRecord {
        GeneratedRecord(topic: topic, key: key, value: value.serialized(), malformed: false, inSpike: false)
    }
}

// MARK: - Producing

extension EventGenerator {
    /// Sends records through `producer` (in order), at most `rate` records per
    /// second when set (5× inside the spike), then flushes. `progress` is called
    /// every 5,000 records with the number sent. Returns the number sent.
    @discardableResult
    public static func produce(
        _ records: some Sequence<GeneratedRecord>, with producer: KafkaProducer, rate: Double? = nil,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> Int {
        let started = ContinuousClock.now
        var budget = 0.0  // seconds that sending the records so far should take at `rate`
        var sent = 0
        for r in records {
            try await producer.send(r.producerRecord)
            sent += 1
            if let rate, rate > 0 {
                budget += 1 / (r.inSpike ? rate * 5 : rate)
                let ahead = budget - (ContinuousClock.now - started).seconds
                if ahead > 0.01 { try await Task.sleep(for: .seconds(ahead)) }
            }
            if sent % 5000 == 0 { progress?(sent) }
        }
        try await producer.flush(timeout: .seconds(120))
        if sent % 5000 != 0 { progress?(sent) }
        return sent
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension String {
    /// The string with `pad` in front up to `n` characters.
    func leftPadded(to n: Int, with pad: Character = "0") -> String { count >= n ? self : String(repeating: pad, count: n - count) + self }
}

// MARK: - Catalogue and randomness

/// Products with categories, base prices, platforms and Zipf popularity.
struct Catalogue {
    static let categories = ["shoes", "books", "electronics", "toys", "beauty", "garden", "sports", "kitchen", "fashion", "grocery", "music", "games"]
    static let bigPlatforms = ["Amazon", "Coupang", "Gmarket", "11st", "eBay", "Walmart", "AliExpress", "Rakuten", "Target", "BestBuy", "SSG", "Auction"]

    struct Product {
        var id: String
        var category: Int
        var basePrice: Double
        var platforms: [String]
    }

    let products: [Product]
    private let cdf: [Double]
    private let byCategory: [[Int]]
    private let categoryCDF: [[Double]]

    init(products count: Int, rng: inout SplitMix64) {
        let platforms = Self.bigPlatforms + (1...288).map { "shop-\(String($0).leftPadded(to: 3))" }
        let platformCDF = Self.zipfCDF(platforms.count, s: 1.2)
        var products: [Product] = []
        for rank in 0..<count {
            let category = rng.int(Self.categories.count)
            let base = [40.0, 15, 250, 25, 20, 30, 45, 35, 50, 8, 18, 55][category] * rng.uniform(0.3, 3)
            var names: Set<String> = []
            let n = 3 + rng.int(6)
            while names.count < n { names.insert(platforms[Self.sample(platformCDF, &rng)]) }
            products.append(Product(id: "p-\(rank + 1)", category: category, basePrice: (base * 100).rounded() / 100, platforms: names.sorted()))
        }
        self.products = products
        cdf = Self.zipfCDF(count, s: 1.07)
        var byCategory = Array(repeating: [Int](), count: Self.categories.count)
        for (i, p) in products.enumerated() { byCategory[p.category].append(i) }
        self.byCategory = byCategory
        categoryCDF = byCategory.map { Self.zipfCDF(Swift.max(1, $0.count), s: 1.07) }
    }

    func zipfProduct(_ rng: inout SplitMix64) -> Int { Self.sample(cdf, &rng) }

    func zipfProduct(inCategory c: Int, _ rng: inout SplitMix64) -> Int {
        guard !byCategory[c].isEmpty else { return zipfProduct(&rng) }
        return byCategory[c][Self.sample(categoryCDF[c], &rng)]
    }

    static func zipfCDF(_ n: Int, s: Double) -> [Double] {
        var acc = 0.0
        var out: [Double] = []
        out.reserveCapacity(n)
        for k in 1...n {
            acc += 1 / pow(Double(k), s)
            out.append(acc)
        }
        return out.map { $0 / acc }
    }

    static func sample(_ cdf: [Double], _ rng: inout SplitMix64) -> Int {
        let u = rng.uniform(0, 1)
        var lo = 0, hi = cdf.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
