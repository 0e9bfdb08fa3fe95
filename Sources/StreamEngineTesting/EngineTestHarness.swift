import Foundation
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import ThreadExecutors

/// The real parts for one end-to-end test: an embedded Kafka cluster (librdkafka's mock,
/// the real protocol on loopback) and a real `redis-server`, with helpers to produce
/// input, run the engine and read results back. For logic alone, ``TopologyTestDriver``
/// needs neither.
///
/// `ENGINE_TEST_LOG=debug` (or another level) shows the engine's and librdkafka's logs.
public final class EngineTestHarness: Sendable {
    public let kafka: EmbeddedKafkaCluster
    public let redisServer: LocalRedisServer
    public let redis: RedisConnection
    public let stateDir: String
    public let logger: Logger
    /// The operators runs and configurations use unless told otherwise.
    public let registry: OperatorRegistry

    /// - Parameter groupInitialRebalanceDelayMs: how long an empty consumer group's first
    ///   round waits for more members (`EmbeddedKafkaCluster`): a test whose instances must
    ///   all be in the first assignment sets it, since a first member alone takes every
    ///   partition and, being fast, may be done before the next one joins.
    public init(brokers: Int = 1, registry: OperatorRegistry = OperatorRegistry(), label: String = "engine-test", groupInitialRebalanceDelayMs: Int = 0) throws {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["ENGINE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        self.logger = logger
        self.registry = registry
        kafka = try EmbeddedKafkaCluster(brokers: brokers, groupInitialRebalanceDelayMs: groupInitialRebalanceDelayMs, logger: logger)
        redisServer = try LocalRedisServer()
        redis = RedisConnection(url: redisServer.url, logger: logger)
        stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("se-state-\(UUID().uuidString)").path
    }

    deinit {
        redisServer.stop()
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    /// Loads YAML text with the harness's operators.
    public func config(_ yaml: String) throws -> StreamConfig {
        try ConfigLoader.load(yaml: yaml, file: "test.yaml", registry: registry.names, environment: [:])
    }

    public func createTopic(_ name: String, partitions: Int) throws {
        try kafka.createTopic(name, partitions: partitions)
    }

    /// Produces text values (keyed), all to `partition` or by the producer's partitioner, and waits for delivery.
    public func produce(_ topic: String, _ records: [(key: String?, value: String)], partition: Int32? = nil) async throws {
        try await produce(records.map { ProducerRecord(topic: topic, partition: partition, key: $0.key.map { Array($0.utf8) }, value: Array($0.value.utf8)) })
    }

    /// Produces JSON values, each to the given partition, and waits for delivery.
    public func produce(_ topic: String, _ records: [(key: String, value: JSONValue, partition: Int32)]) async throws {
        try await produce(records.map { ProducerRecord(topic: topic, partition: $0.partition, key: Array($0.key.utf8), value: $0.value.serialized()) })
    }

    /// Produces records and waits for delivery.
    public func produce(_ records: [ProducerRecord]) async throws {
        let producer = try KafkaProducer(config: kafka.clientConfig, logger: logger)
        for r in records { try await producer.send(r) }
        try await producer.flush()
    }

    /// A runtime on the harness's cluster and Redis.
    public func runtime(_ config: StreamConfig, registry: OperatorRegistry? = nil, stopAtEnd: Bool = true, stateDir: String? = nil,
                        batchSize: Int = 5000, fault: FaultInjection? = nil) -> StreamRuntime {
        StreamRuntime(
            config: config, registry: registry ?? self.registry, kafka: .embedded(kafka), redisURL: redisServer.url,
            options: RuntimeOptions(stateDir: stateDir ?? self.stateDir, stopAtEnd: stopAtEnd, pollBatchSize: batchSize, faultInjection: fault),
            logger: logger)
    }

    /// Runs to the end of the input (with a time limit).
    @discardableResult
    public func runToEnd(_ config: StreamConfig, registry: OperatorRegistry? = nil, stateDir: String? = nil, batchSize: Int = 5000,
                         fault: FaultInjection? = nil, timeout: Duration = .seconds(90)) async throws -> StreamRuntime {
        let rt = runtime(config, registry: registry, stateDir: stateDir, batchSize: batchSize, fault: fault)
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

    /// Reads every record of a topic (all partitions) up to its current end.
    public func readAll(_ topic: String) async throws -> [KafkaMessage] {
        let n = try await kafka.partitionCount(topic: topic) ?? 0
        var out: [KafkaMessage] = []
        for p in 0..<Int32(n) {
            let end = try await kafka.watermarks(TopicPartition(topic, p)).high
            if end == 0 { continue }
            let consumer = try KafkaConsumer(config: kafka.clientConfig, logger: logger)
            try consumer.assign([TopicPartitionOffset(topic, p, KafkaOffset.beginning)])
            let msgs = try await consumer.withExecutor { consumer in
                var got: [KafkaMessage] = []
                let deadline = ContinuousClock.now + .seconds(30)
                while (got.last?.offset ?? -1) < end - 1, ContinuousClock.now < deadline {
                    got += try consumer.pollBatch(maxMessages: 1000, timeoutMs: 100).messages
                }
                return got
            }
            await consumer.close()
            out += msgs
        }
        return out
    }

    /// Parses every record of a topic as a JSON object.
    public func readJSON(_ topic: String) async throws -> [(key: String, value: JSONObject, message: KafkaMessage)] {
        try await readAll(topic).map { m in
            (String(decoding: m.key ?? [], as: UTF8.self), try JSONValue.parse(m.value ?? []).objectValue ?? [:], m)
        }
    }

    /// `HGETALL key`.
    public func hgetall(_ key: String) async throws -> [String: String] {
        let reply = try await redis.command(["HGETALL", key])
        var out: [String: String] = [:]
        let items = reply.array ?? []
        for i in stride(from: 0, to: items.count - 1, by: 2) { out[items[i].string ?? ""] = items[i + 1].string ?? "" }
        return out
    }

    /// `ZRANGE key 0 -1 WITHSCORES`.
    public func zrangeWithScores(_ key: String) async throws -> [(member: String, score: Double)] {
        let reply = try await redis.command(["ZRANGE", key, "0", "-1", "WITHSCORES"])
        let items = reply.array ?? []
        return stride(from: 0, to: items.count - 1, by: 2).map { (items[$0].string ?? "", Double(items[$0 + 1].string ?? "") ?? .nan) }
    }

    /// `GET key`.
    public func get(_ key: String) async throws -> String? {
        try await redis.command(["GET", key]).string
    }
}
