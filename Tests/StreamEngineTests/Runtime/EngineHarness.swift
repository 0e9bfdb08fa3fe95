import Foundation
import KafkaClient
import Logging
import RedisClient
@testable import StreamEngine

/// An embedded Kafka cluster and a real redis-server for one test, with helpers
/// to produce input, run the engine and read results.
final class EngineHarness: Sendable {
    let kafka: EmbeddedKafkaCluster
    let redisServer: LocalRedisServer
    let redis: RedisConnection
    let stateDir: String
    let logger: Logger

    init(brokers: Int = 1) throws {
        var logger = Logger(label: "engine-test")
        logger.logLevel = ProcessInfo.processInfo.environment["ENGINE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        self.logger = logger
        kafka = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        redisServer = try LocalRedisServer()
        redis = RedisConnection(url: redisServer.url, logger: logger)
        stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("se-state-\(UUID().uuidString)").path
    }

    deinit {
        redisServer.stop()
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    func config(_ yaml: String, registry: OperatorRegistry = OperatorRegistry()) throws -> StreamConfig {
        try ConfigLoader.load(yaml: yaml, file: "test.yaml", registry: registry.names, environment: [:])
    }

    func createTopic(_ name: String, partitions: Int) throws {
        try kafka.createTopic(name, partitions: partitions)
    }

    /// Produces JSON values (keyed) and waits for delivery.
    func produce(_ topic: String, _ records: [(key: String?, value: String)], partition: Int32? = nil) async throws {
        let producer = try KafkaProducer(config: kafka.clientConfig, logger: logger)
        for r in records {
            try await producer.send(ProducerRecord(topic: topic, partition: partition, key: r.key.map { Array($0.utf8) }, value: Array(r.value.utf8)))
        }
        try await producer.flush()
    }

    func runtime(_ config: StreamConfig, registry: OperatorRegistry = OperatorRegistry(), stopAtEnd: Bool = true, stateDir: String? = nil,
                 batchSize: Int = 5000, fault: FaultInjection? = nil) -> StreamRuntime {
        StreamRuntime(
            config: config, registry: registry, kafka: .embedded(kafka), redisURL: redisServer.url,
            options: RuntimeOptions(stateDir: stateDir ?? self.stateDir, stopAtEnd: stopAtEnd, pollBatchSize: batchSize, faultInjection: fault),
            logger: logger)
    }

    /// Runs to the end of the input (with a time limit).
    @discardableResult
    func runToEnd(_ config: StreamConfig, registry: OperatorRegistry = OperatorRegistry(), stateDir: String? = nil, batchSize: Int = 5000,
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
    func readAll(_ topic: String) async throws -> [KafkaMessage] {
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
    func readJSON(_ topic: String) async throws -> [(key: String, value: JSONObject, message: KafkaMessage)] {
        try await readAll(topic).map { m in
            (String(decoding: m.key ?? [], as: UTF8.self), try JSONValue.parse(m.value ?? []).objectValue ?? [:], m)
        }
    }

    func hgetall(_ key: String) async throws -> [String: String] {
        let reply = try await redis.command(["HGETALL", key])
        var out: [String: String] = [:]
        let items = reply.array ?? []
        for i in stride(from: 0, to: items.count - 1, by: 2) { out[items[i].string ?? ""] = items[i + 1].string ?? "" }
        return out
    }

    func zrangeWithScores(_ key: String) async throws -> [(member: String, score: Double)] {
        let reply = try await redis.command(["ZRANGE", key, "0", "-1", "WITHSCORES"])
        let items = reply.array ?? []
        return stride(from: 0, to: items.count - 1, by: 2).map { (items[$0].string ?? "", Double(items[$0 + 1].string ?? "") ?? .nan) }
    }

    func get(_ key: String) async throws -> String? {
        try await redis.command(["GET", key]).string
    }
}
