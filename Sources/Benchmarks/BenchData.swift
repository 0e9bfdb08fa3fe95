import CLISupport
import Foundation
import KafkaClient
import Logging
import StreamEngine
import Topologies

/// What each user should total after the input was aggregated, as
/// `purchase_stats` computes it: orders (events), items (Σ quantity) and
/// cents (Σ price × quantity, rounded to the cent per event).
struct UserTotals: Sendable, Hashable {
    var orders: Int64 = 0
    var items: Int64 = 0
    var cents: Int64 = 0

    /// `spent` as the engine writes it: "123.45".
    var spent: String { Cents.decimalString(cents) }
}

/// Purchase events of the benchmark (the `purchases` schema of topologies.yaml,
/// about 140 bytes of JSON each), keyed by userId, with the totals they should give.
struct PurchaseWorkload: Sendable {
    static let categories = ["shoes", "books", "electronics", "toys", "beauty", "garden", "sports", "kitchen", "fashion", "grocery", "music", "games"]
    static let start: Int64 = 1_734_134_400_000  // 2024-12-14T00:00:00Z

    /// Users are `<userPrefix>1` … `<userPrefix><users>`.
    var userPrefix: String
    var users: Int
    var seed: UInt64

    /// The user id of index `i` (0-based).
    func user(_ i: Int) -> String { "\(userPrefix)\(i + 1)" }

    /// Event `index` for user `u` (0-based), and what it adds to that user's totals.
    static func event(index: Int, user: String, rng: inout SplitMix64) -> (record: ProducerRecord, price: Double, quantity: Int, category: String) {
        let category = categories[rng.int(categories.count)]
        let price = Double(100 + rng.int(29_900)) / 100
        let r = rng.int(10)
        let quantity = r < 7 ? 1 : r < 9 ? 2 : 3 + rng.int(3)
        let value = ShopEvents.purchase(
            order: "o-\(index + 1)", user: user, product: "p-\(1 + rng.int(5000))", category: category,
            price: price, quantity: quantity, at: start + Int64(index) * 100)
        return (ProducerRecord(topic: "", key: Array(user.utf8), value: value.serialized()), price, quantity, category)
    }

    /// Produces `count` events to `topic` (users drawn uniformly, or each user
    /// once in order when `distinctUsers`), waits for every delivery, and
    /// returns the totals per user index.
    func produce(
        count: Int, to topic: String, firstIndex: Int = 0, distinctUsers: Bool = false, producer: KafkaProducer,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> [UserTotals] {
        try await produceLoad(count: count, to: topic, firstIndex: firstIndex, distinctUsers: distinctUsers, producer: producer, progress: progress).totals
    }

    /// `produce`, also counting the events per category (what the two-stage job's second stage should count).
    func produceLoad(
        count: Int, to topic: String, firstIndex: Int = 0, distinctUsers: Bool = false, producer: KafkaProducer,
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> PurchaseLoad {
        var rng = SplitMix64(seed: seed &+ UInt64(firstIndex))
        var totals = [UserTotals](repeating: UserTotals(), count: users)
        var categories: [String: Int] = [:]
        for i in 0..<count {
            let u = distinctUsers ? i % users : rng.int(users)
            let (record, price, quantity, category) = Self.event(index: firstIndex + i, user: user(u), rng: &rng)
            categories[category, default: 0] += 1
            var r = record
            r.topic = topic
            try await producer.send(r)
            totals[u].orders += 1
            totals[u].items += Int64(quantity)
            totals[u].cents += try Cents.of(price: price, quantity: Int64(quantity))
            if (i + 1) % 100_000 == 0 { progress?(i + 1) }
        }
        try await producer.flush(timeout: .seconds(300))
        return PurchaseLoad(totals: totals, categoryCounts: categories)
    }
}

/// What a load of purchase events should give: totals per user index and events per category.
struct PurchaseLoad: Sendable, Equatable {
    var totals: [UserTotals]
    var categoryCounts: [String: Int]
}

extension Array where Element == UserTotals {
    /// Adds another set of totals (same users).
    mutating func add(_ other: [UserTotals]) {
        for i in indices {
            self[i].orders += other[i].orders
            self[i].items += other[i].items
            self[i].cents += other[i].cents
        }
    }
}

/// Checks that a topic holds exactly `expected` records from offset 0 on (nothing dropped by the mock).
func verifyTopicCount(_ cluster: EmbeddedKafkaCluster, topic: String, expected: Int) async throws -> String {
    guard let n = try await cluster.partitionCount(topic: topic) else { throw CLIFailure("topic \(topic) does not exist") }
    var total: Int64 = 0
    var perPartition: [String] = []
    for p in 0..<Int32(n) {
        let wm = try await cluster.watermarks(TopicPartition(topic, p))
        if wm.low != 0 { throw CLIFailure("topic \(topic)[\(p)] lost records: its low watermark is \(wm.low) (the mock dropped old batches)") }
        total += wm.high
        perPartition.append(BenchFormat.int(Int(wm.high)))
    }
    guard total == Int64(expected) else {
        throw CLIFailure("topic \(topic) holds \(total) records, expected \(expected)")
    }
    return "\(topic): \(BenchFormat.int(Int(total))) records in \(n) partitions (\(perPartition.joined(separator: " + "))), low watermarks 0"
}
