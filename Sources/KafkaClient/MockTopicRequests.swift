import Foundation
import Logging

/// Topic creation on librdkafka's mock cluster when it runs in another process
/// (`stream-engine dev-broker`).
///
/// librdkafka 2.0.2's mock answers no CreateTopics request, and a topic it
/// auto-creates (on a Metadata or Produce request) gets a default partition
/// count and the mock's 5 MiB/partition retention. The engine therefore asks
/// the process that owns the mock, through Kafka itself: it produces one
/// request record per topic to `MockTopicRequests.topic` (key = topic name,
/// headers = partitions, replication factor and `config.<name>` settings).
/// The dev-broker follows that topic, creates each topic with
/// `rd_kafka_mock_topic_create` and lifts its retention limits; the engine
/// waits until the cluster's metadata shows the topic. No protocol besides
/// Kafka's, no other socket.
public enum MockTopicRequests {
    /// The request topic a dev-broker creates at start and follows.
    public static let topic = "__stream_engine_topic_requests"

    static let partitionsHeader = "partitions"
    static let replicationHeader = "replication.factor"
    static let configPrefix = "config."

    /// The request record for a topic.
    public static func record(for t: NewTopic) -> ProducerRecord {
        var headers = [KafkaHeader(partitionsHeader, String(t.partitions)), KafkaHeader(replicationHeader, String(t.replicationFactor))]
        for (k, v) in t.configs.sorted(by: { $0.key < $1.key }) { headers.append(KafkaHeader(configPrefix + k, v)) }
        return ProducerRecord(topic: topic, partition: 0, key: Array(t.name.utf8), value: Array("create".utf8), headers: headers)
    }

    /// The topic a request record asks for, `nil` if the record is not a valid request.
    public static func decode(_ m: KafkaMessage) -> NewTopic? {
        guard let key = m.key, !key.isEmpty,
              let n = m.header(partitionsHeader)?.stringValue.flatMap(Int.init), n >= 1 else { return nil }
        let rf = m.header(replicationHeader)?.stringValue.flatMap(Int.init) ?? -1
        var configs: [String: String] = [:]
        for h in m.headers where h.name.hasPrefix(configPrefix) { configs[String(h.name.dropFirst(configPrefix.count))] = h.stringValue ?? "" }
        return NewTopic(name: String(decoding: key, as: UTF8.self), partitions: n, replicationFactor: rf, configs: configs)
    }
}

/// Topic administration of a mock cluster in another process: creation goes
/// through `MockTopicRequests` to the dev-broker that owns it.
public final class MockClusterTopicRequester: TopicAdministrator {
    private let admin: KafkaAdmin
    private let config: [String: String]
    private let logger: Logger
    /// How long to wait for a requested topic to show in the metadata.
    public let timeout: Duration

    public init(config: [String: String], logger: Logger, timeout: Duration = .seconds(30)) throws(KafkaError) {
        self.admin = try KafkaAdmin(config: config, logger: logger, timeout: .seconds(10))
        self.config = config
        self.logger = logger
        self.timeout = timeout
    }

    public func partitionCount(topic: String) async throws -> Int? { try await admin.partitionCount(topic: topic) }
    public func watermarks(_ tp: TopicPartition) async throws -> Watermarks { try await admin.watermarks(tp) }
    public func topicPartitionCounts() async throws -> [String: Int] { try await admin.topicPartitionCounts() }

    public func createTopics(_ topics: [NewTopic]) async throws {
        guard !topics.isEmpty else { return }
        let existing = try await admin.topicPartitionCounts()
        guard existing[MockTopicRequests.topic] != nil else {
            throw KafkaError.client("""
                the cluster at \(config["bootstrap.servers"] ?? "?") is librdkafka's mock cluster, which cannot create topics, \
                and no stream-engine dev-broker serves topic requests on it (no topic \(MockTopicRequests.topic)): \
                start it with `stream-engine dev-broker`, or create \(topics.map(\.name).joined(separator: ", ")) on it yourself
                """)
        }
        let producer = try KafkaProducer(config: config.merging(["enable.idempotence": "false", "linger.ms": "0"]) { $1 }, logger: logger)
        for t in topics { _ = try await producer.sendAndWait(MockTopicRequests.record(for: t)) }
        await producer.close()
        logger.info("asked the dev-broker to create \(topics.count) topics: \(topics.map { "\($0.name) (\($0.partitions))" }.joined(separator: ", "))")
        let started = ContinuousClock.now
        var lastLog = started
        while true {
            let counts = try await admin.topicPartitionCounts()
            let missing = topics.filter { counts[$0.name] == nil }
            if missing.isEmpty { return }
            let waited = ContinuousClock.now - started
            if waited > timeout {
                throw KafkaError.client("the dev-broker did not create \(missing.map(\.name).joined(separator: ", ")) within \(timeout) (is it a stream-engine dev-broker of this version?)")
            }
            if ContinuousClock.now - lastLog >= .seconds(5) {
                lastLog = ContinuousClock.now
                logger.info("waiting \(waited) for the dev-broker to create \(missing.map(\.name).joined(separator: ", "))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

extension EmbeddedKafkaCluster {
    /// Serves `MockTopicRequests` until the task is cancelled: creates the
    /// request topic, then every requested topic (lifting its retention limits).
    /// A topic that exists already is left as it is (the requester checks its
    /// partition count).
    public func serveTopicRequests(logger: Logger) async throws {
        try createTopic(MockTopicRequests.topic, partitions: 1)
        let consumer = try KafkaConsumer(config: clientConfig.merging(["group.id": "stream-engine-dev-broker"]) { $1 }, logger: logger)
        try consumer.assign([TopicPartitionOffset(MockTopicRequests.topic, 0, KafkaOffset.beginning)])
        do {
            for try await batch in consumer.batches(maxMessages: 100, timeoutMs: 200) {
                for m in batch.messages {
                    guard let t = MockTopicRequests.decode(m) else {
                        logger.warning("ignoring a malformed topic request at \(m.topicPartition)@\(m.offset)")
                        continue
                    }
                    if let n = try await partitionCount(topic: t.name) {
                        if n != t.partitions { logger.warning("topic request for \(t.name) with \(t.partitions) partitions: it exists with \(n); left as it is") }
                        continue
                    }
                    try createTopic(t.name, partitions: t.partitions, replicationFactor: t.replicationFactor < 1 ? min(3, brokerCount) : t.replicationFactor)
                    logger.info("created topic \(t.name) with \(t.partitions) partitions (requested by an engine)")
                }
            }
        } catch is CancellationError {}
        await consumer.close()
    }
}
