import Foundation
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import StreamEngineTesting
import Testing
import Topologies

/// The tests that run pipelines: one at a time (nested suites included), since
/// each starts its own Kafka cluster, redis-server and engine.
@Suite("Shop pipelines on embedded Kafka and a real Redis", .serialized)
struct ShopPipelineTests {}

/// The shared ``EngineTestHarness`` (embedded Kafka, a real redis-server) set up for the
/// repository's `topologies.yaml`: the shop operators and its input topics; its properties
/// (`kafka`, `redis`, `stateDir`, …) are the harness's.
@dynamicMemberLookup
final class ShopHarness: Sendable {
    let engine: EngineTestHarness

    /// The repository's `topologies.yaml`.
    static let topologiesPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topologies.yaml").path

    /// The input topics of `topologies.yaml`, created with 4 partitions as its `defaults.partitions` says.
    static let inputTopics = ["product_prices", "purchases", "user_events", "logins"]

    init() throws {
        engine = try EngineTestHarness(registry: shopOperatorRegistry(), label: "topologies-test")
        for topic in Self.inputTopics { try engine.createTopic(topic, partitions: 4) }
    }

    subscript<T>(dynamicMember keyPath: KeyPath<EngineTestHarness, T>) -> T { engine[keyPath: keyPath] }

    /// `topologies.yaml` reduced to the named pipelines.
    func config(_ pipelines: String...) throws -> StreamConfig {
        try Self.config(pipelines, registry: engine.registry)
    }

    /// `topologies.yaml` reduced to the named pipelines (also for the TopologyTestDriver).
    static func config(_ pipelines: [String], registry: OperatorRegistry = shopOperatorRegistry()) throws -> StreamConfig {
        var config = try ConfigLoader.load(path: topologiesPath, registry: registry.names, environment: [:])
        let unknown = Set(pipelines).subtracting(config.pipelines.map(\.name))
        precondition(unknown.isEmpty, "no pipelines \(unknown) in topologies.yaml")
        config.pipelines = config.pipelines.filter { pipelines.contains($0.name) }
        return config
    }

    /// Produces JSON values, each to the given partition (tests choose partitions
    /// unlike the engine's partitioner on purpose), and waits for delivery.
    func produce(_ topic: String, _ records: [(key: String, value: JSONValue, partition: Int32)]) async throws {
        try await engine.produce(topic, records)
    }

    /// Produces raw (possibly malformed) values.
    func produceRaw(_ topic: String, _ values: [String], partition: Int32 = 0) async throws {
        try await engine.produce(topic, values.map { (key: Optional("bad"), value: $0) }, partition: partition)
    }

    /// Runs the configuration to the end of its input (with a time limit); returns the runtime for its stats.
    @discardableResult
    func runToEnd(_ config: StreamConfig, timeout: Duration = .seconds(120)) async throws -> StreamRuntime {
        try await engine.runToEnd(config, timeout: timeout)
    }

    // MARK: Redis

    /// A sorted set, lowest score first, as `[member: score]` pairs in Redis order.
    func zset(_ key: String) async throws -> [Pair] {
        try await engine.zrangeWithScores(key).map { Pair($0.member, $0.score) }
    }

    /// A hash.
    func hash(_ key: String) async throws -> [String: String] {
        try await engine.hgetall(key)
    }

    func exists(_ key: String) async throws -> Bool {
        try await engine.redis.command(["EXISTS", key]).int == 1
    }

    /// Milliseconds to live (-1 without expiry, -2 when the key does not exist).
    func pttl(_ key: String) async throws -> Int64 {
        try await engine.redis.command(["PTTL", key]).int ?? -3
    }

    /// Every key matching a pattern, sorted.
    func keys(_ pattern: String) async throws -> [String] {
        (try await engine.redis.command(["KEYS", pattern]).array ?? []).compactMap(\.string).sorted()
    }
}

/// A sorted-set member and its score (Equatable, for `#expect`).
struct Pair: Equatable, CustomStringConvertible {
    var member: String
    var score: Double
    init(_ member: String, _ score: Double) {
        self.member = member
        self.score = score
    }
    var description: String { "\(member)=\(score)" }
}

/// Event times of the tests.
enum At {
    /// 2024-12-14T00:00:00Z plus an offset.
    static func day(_ d: Int64 = 0, _ h: Int64 = 0, _ m: Int64 = 0, _ s: Int64 = 0) -> Int64 {
        1_734_134_400_000 + ((d * 24 + h) * 60 + m) * 60_000 + s * 1000
    }

    /// The ISO-8601 text of `day(...)`.
    static func iso(_ d: Int64 = 0, _ h: Int64 = 0, _ m: Int64 = 0, _ s: Int64 = 0) -> JSONValue {
        .string(EventTime.formatISO8601(day(d, h, m, s)))
    }
}
