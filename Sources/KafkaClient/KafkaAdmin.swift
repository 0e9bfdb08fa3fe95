import CRdKafka
import Foundation
import Logging

/// A topic to create.
public struct NewTopic: Sendable, Hashable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int
    /// Topic configs, e.g. `cleanup.policy=compact`.
    public var configs: [String: String]
    public init(name: String, partitions: Int, replicationFactor: Int = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// Topic administration the engine needs, implemented for a real cluster
/// (`KafkaAdmin`, admin API) and for the embedded one (`EmbeddedKafkaCluster`,
/// mock API: librdkafka 2.0.2's mock cluster has no controller and implements
/// neither CreateTopics nor DescribeConfigs).
public protocol TopicAdministrator: Sendable {
    /// Creates topics; a topic that already exists is not an error (check its
    /// partition count with `partitionCount(topic:)`).
    func createTopics(_ topics: [NewTopic]) async throws
    /// Partition count of a topic, `nil` if it does not exist.
    func partitionCount(topic: String) async throws -> Int?
    /// Low and high watermark of one partition.
    func watermarks(_ tp: TopicPartition) async throws -> Watermarks
    /// Partition count of every topic of the cluster (one Metadata request).
    func topicPartitionCounts() async throws -> [String: Int]
}

extension TopicAdministrator {
    /// End offsets (high watermarks) of every partition of a topic.
    public func endOffsets(topic: String) async throws -> [Int32: Int64] {
        guard let n = try await partitionCount(topic: topic) else {
            throw KafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "topic \(topic) does not exist")
        }
        var out: [Int32: Int64] = [:]
        for p in 0..<Int32(n) { out[p] = try await watermarks(TopicPartition(topic, p)).high }
        return out
    }
}

/// Topic administration against a real Kafka cluster through librdkafka's admin API.
public final class KafkaAdmin: TopicAdministrator {
    let handle: KafkaHandle
    let timeout: Duration

    public init(config: [String: String], logger: Logger, timeout: Duration = .seconds(30)) throws(KafkaError) {
        self.handle = try KafkaHandle(kind: RD_KAFKA_PRODUCER, config: config, logger: logger)
        self.timeout = timeout
    }

    /// Destroys the client handle (waiting for it on the handle's executor): its broker
    /// connections end. Calls after it fail; a second `close` does nothing.
    public func close() async {
        await handle.destroy()
    }

    public func createTopics(_ topics: [NewTopic]) async throws {
        guard !topics.isEmpty else { return }
        let handle = self.handle
        let ms = timeout.milliseconds
        try await handle.blocking {
            let rk = handle.pointer
            var errbuf = [CChar](repeating: 0, count: 512)
            var newTopics: [OpaquePointer?] = []
            defer { for t in newTopics { rd_kafka_NewTopic_destroy(t) } }
            for t in topics {
                guard let nt = rd_kafka_NewTopic_new(t.name, Int32(t.partitions), Int32(t.replicationFactor), &errbuf, errbuf.count) else {
                    throw KafkaError.client("topic \(t.name): \(cString(errbuf))")
                }
                newTopics.append(nt)
                for (k, v) in t.configs {
                    try KafkaError.check(rd_kafka_NewTopic_set_config(nt, k, v), "config \(k) of \(t.name)")
                }
            }
            let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
            defer { rd_kafka_AdminOptions_destroy(options) }
            rd_kafka_AdminOptions_set_operation_timeout(options, ms, &errbuf, errbuf.count)
            rd_kafka_AdminOptions_set_request_timeout(options, ms, &errbuf, errbuf.count)
            let queue = rd_kafka_queue_new(rk)
            defer { rd_kafka_queue_destroy(queue) }
            newTopics.withUnsafeMutableBufferPointer { buf in
                rd_kafka_CreateTopics(rk, buf.baseAddress, buf.count, options, queue)
            }
            guard let event = rd_kafka_queue_poll(queue, ms + 1000) else {
                throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, "CreateTopics timed out")
            }
            defer { rd_kafka_event_destroy(event) }
            let evErr = rd_kafka_event_error(event)
            if evErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(evErr, "CreateTopics: \(String(cString: rd_kafka_event_error_string(event)))")
            }
            let result = rd_kafka_event_CreateTopics_result(event)
            var cnt = 0
            guard let results = rd_kafka_CreateTopics_result_topics(result, &cnt) else { return }
            for i in 0..<cnt {
                let r = results[i]
                let err = rd_kafka_topic_result_error(r)
                if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { continue }
                let name = String(cString: rd_kafka_topic_result_name(r))
                let text = rd_kafka_topic_result_error_string(r).map { String(cString: $0) } ?? ""
                throw KafkaError(err, "create topic \(name): \(text)")
            }
        }
    }

    public func partitionCount(topic: String) async throws -> Int? {
        let handle = self.handle
        let ms = timeout.milliseconds
        return try await handle.blocking { try handle.partitionCount(topic: topic, timeoutMs: ms) }
    }

    /// Partition count of every topic of the cluster.
    public func topicPartitionCounts() async throws -> [String: Int] {
        let handle = self.handle
        let ms = timeout.milliseconds
        return try await handle.blocking { try handle.topicPartitionCounts(timeoutMs: ms) }
    }

    /// The cluster id the brokers report (`nil` if none answered within the timeout).
    public func clusterId() async throws -> String? {
        let handle = self.handle
        let ms = timeout.milliseconds
        return try await handle.blocking { handle.clusterId(timeoutMs: ms) }
    }

    /// Whether a cluster id is that of librdkafka's mock cluster (`mockCluster…`):
    /// an embedded cluster or a `stream-engine dev-broker`. Such a cluster has
    /// no CreateTopics, no transactional isolation and drops TxnOffsetCommit offsets.
    public static func isMockCluster(id: String?) -> Bool {
        id?.hasPrefix("mockCluster") ?? false
    }

    public func watermarks(_ tp: TopicPartition) async throws -> Watermarks {
        let handle = self.handle
        let ms = timeout.milliseconds
        return try await handle.blocking { try handle.queryWatermarks(tp, timeoutMs: ms) }
    }
}
