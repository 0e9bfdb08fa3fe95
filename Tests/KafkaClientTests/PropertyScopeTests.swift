import CRdKafka
import Logging
import Synchronization
import Testing
@testable import KafkaClient

/// Keeps every message logged through it.
private struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        lines.lines.withLock { $0.append("\(level): \(message)") }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

private final class LogLines: Sendable {
    let lines = Mutex<[String]>([])
    var logger: Logger { Logger(label: "scope-test") { _ in CapturingLogHandler(lines: self) } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite("One configuration for every client: each gets the properties of its kind")
struct PropertyScopeTests {
    @Test("the installed librdkafka's table: session.timeout.ms is a consumer property, linger.ms a producer one, bootstrap.servers both")
    func tableOfTheInstalledLibrary() {
        #expect(KafkaPropertyScopes.consumerOnly.contains("session.timeout.ms"))
        #expect(KafkaPropertyScopes.consumerOnly.contains("group.instance.id"))
        #expect(KafkaPropertyScopes.producerOnly.contains("linger.ms"))
        #expect(KafkaPropertyScopes.producerOnly.contains("enable.idempotence"))
        #expect(!KafkaPropertyScopes.consumerOnly.contains("bootstrap.servers"))
        #expect(!KafkaPropertyScopes.producerOnly.contains("bootstrap.servers"))
        let config = ["bootstrap.servers": "b:9092", "session.timeout.ms": "10000", "linger.ms": "5"]
        #expect(KafkaPropertyScopes.forClient(RD_KAFKA_PRODUCER, config) == ["bootstrap.servers": "b:9092", "linger.ms": "5"])
        #expect(KafkaPropertyScopes.forClient(RD_KAFKA_CONSUMER, config) == ["bootstrap.servers": "b:9092", "session.timeout.ms": "10000"])
    }

    @Test("one configuration with a consumer and a producer property: no client logs a CONFWARN, and they still produce and consume")
    func noWarningFromTheOtherKind() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("scoped", partitions: 1)
        let config = cluster.clientConfig.merging(["session.timeout.ms": "7000", "linger.ms": "1"]) { $1 }
        let log = LogLines()
        let producer = try KafkaProducer(config: config, logger: log.logger)
        let admin = try KafkaAdmin(config: config, logger: log.logger)
        try await producer.send(ProducerRecord(topic: "scoped", key: nil, value: bytes("v")))
        try await producer.flush(timeout: .seconds(30))
        let consumer = try KafkaConsumer(config: config.merging(["group.id": "scoped"]) { $1 }, logger: log.logger)
        try consumer.subscribe(["scoped"])
        let messages = try await pollUntil(consumer, timeout: .seconds(30)) { all, _ in !all.isEmpty }
        #expect(messages.count == 1)
        await consumer.close()
        await admin.close()
        await producer.close()
        let warnings = log.all.filter { $0.contains("CONFWARN") || $0.contains("will be ignored") }
        #expect(warnings.isEmpty, "\(warnings)")
    }
}
