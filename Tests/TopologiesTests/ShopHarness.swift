import Foundation
import KafkaClient
import Logging
import MariaDBClient
import RedisClient
import Synchronization
import StreamEngine
import Testing
import Topologies

/// The tests that run pipelines: one at a time (nested suites included), since
/// each starts its own Kafka cluster, redis-server and engine.
@Suite("Shop pipelines on embedded Kafka and a real Redis", .serialized)
struct ShopPipelineTests {}

/// An embedded Kafka cluster and a real redis-server for one test, running
/// pipelines of the repository's `topologies.yaml` with the shop operators.
/// (Adapted from the engine tests' `EngineHarness`, which is not importable.)
final class ShopHarness: Sendable {
    let kafka: EmbeddedKafkaCluster
    let redisServer: LocalRedisServer
    let redis: RedisConnection
    let stateDir: String
    let logger: Logger
    let registry: OperatorRegistry
    /// A private mariadbd, started by the first run of a configuration with `sql` steps.
    private let sqlServer = Mutex<LocalMariaDBServer?>(nil)

    /// The repository's `topologies.yaml`.
    static let topologiesPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topologies.yaml").path

    /// The input topics of `topologies.yaml`, created with 4 partitions as its `defaults.partitions` says.
    static let inputTopics = ["product_prices", "purchases", "user_events", "logins"]

    init() throws {
        var logger = Logger(label: "topologies-test")
        logger.logLevel = ProcessInfo.processInfo.environment["ENGINE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        self.logger = logger
        kafka = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        redisServer = try LocalRedisServer()
        redis = RedisConnection(url: redisServer.url, logger: logger)
        stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("shop-state-\(UUID().uuidString)").path
        registry = shopOperatorRegistry()
        for topic in Self.inputTopics { try kafka.createTopic(topic, partitions: 4) }
    }

    deinit {
        redisServer.stop()
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    /// `topologies.yaml` reduced to the named pipelines.
    func config(_ pipelines: String...) throws -> StreamConfig {
        var config = try ConfigLoader.load(path: Self.topologiesPath, registry: registry.names, environment: [:])
        let unknown = Set(pipelines).subtracting(config.pipelines.map(\.name))
        precondition(unknown.isEmpty, "no pipelines \(unknown) in topologies.yaml")
        config.pipelines = config.pipelines.filter { pipelines.contains($0.name) }
        return config
    }

    /// Produces JSON values, each to the given partition (tests choose partitions
    /// unlike the engine's partitioner on purpose), and waits for delivery.
    func produce(_ topic: String, _ records: [(key: String, value: JSONValue, partition: Int32)]) async throws {
        let producer = try KafkaProducer(config: kafka.clientConfig, logger: logger)
        for r in records {
            try producer.send(ProducerRecord(topic: topic, partition: r.partition, key: Array(r.key.utf8), value: r.value.serialized()))
        }
        try await producer.flush()
    }

    /// Produces raw (possibly malformed) values.
    func produceRaw(_ topic: String, _ values: [String], partition: Int32 = 0) async throws {
        let producer = try KafkaProducer(config: kafka.clientConfig, logger: logger)
        for v in values { try producer.send(ProducerRecord(topic: topic, partition: partition, key: Array("bad".utf8), value: Array(v.utf8))) }
        try await producer.flush()
    }

    /// Runs the configuration to the end of its input (with a time limit); returns the runtime for its stats.
    @discardableResult
    func runToEnd(_ config: StreamConfig, timeout: Duration = .seconds(120)) async throws -> StreamRuntime {
        var config = config
        if !config.sqlSinks.isEmpty, config.sqlURL == nil {
            config.sqlURL = try await sqlURL().urlString
        }
        let rt = StreamRuntime(
            config: config, registry: registry, kafka: .embedded(kafka), redisURL: redisServer.url,
            options: RuntimeOptions(stateDir: stateDir, stopAtEnd: true), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await rt.run() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw StreamEngineError("engine did not reach the end of its input within \(timeout)")
            }
            try await group.next()
            group.cancelAll()
        }
        return rt
    }

    /// The URL of this harness's mariadbd, started on first use.
    func sqlURL() async throws -> MariaDBURL {
        if let server = sqlServer.withLock({ $0 }) { return server.url }
        let server = try await LocalMariaDBServer.start(database: "shop")
        sqlServer.withLock { $0 = server }
        return server.url
    }

    // MARK: Redis

    /// A sorted set, lowest score first, as `[member: score]` pairs in Redis order.
    func zset(_ key: String) async throws -> [Pair] {
        let items = try await redis.command(["ZRANGE", key, "0", "-1", "WITHSCORES"]).array ?? []
        return stride(from: 0, to: items.count - 1, by: 2).map { Pair(items[$0].string ?? "", Double(items[$0 + 1].string ?? "") ?? .nan) }
    }

    /// A hash.
    func hash(_ key: String) async throws -> [String: String] {
        let items = try await redis.command(["HGETALL", key]).array ?? []
        var out: [String: String] = [:]
        for i in stride(from: 0, to: items.count - 1, by: 2) { out[items[i].string ?? ""] = items[i + 1].string ?? "" }
        return out
    }

    func exists(_ key: String) async throws -> Bool {
        try await redis.command(["EXISTS", key]).int == 1
    }

    /// Milliseconds to live (-1 without expiry, -2 when the key does not exist).
    func pttl(_ key: String) async throws -> Int64 {
        try await redis.command(["PTTL", key]).int ?? -3
    }

    /// Every key matching a pattern, sorted.
    func keys(_ pattern: String) async throws -> [String] {
        (try await redis.command(["KEYS", pattern]).array ?? []).compactMap(\.string).sorted()
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
