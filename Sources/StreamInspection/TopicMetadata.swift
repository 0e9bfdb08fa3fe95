import KafkaClient
import Logging
import StreamEngine

/// Partition counts of every topic of a cluster, from one Metadata request for
/// all topics.
///
/// Why not `KafkaConsumer.partitionCount(topic:)` on a topic name: a Metadata
/// request naming the topic makes librdkafka 2.0.2's mock cluster (the embedded
/// cluster and `stream-engine dev-broker`) create a missing topic — with 4
/// partitions — even when the client sets `allow.auto.create.topics=false` (the
/// mock announces a Metadata version too old to carry that flag). An inspection
/// tool must never create topics, so it asks for all topics, which creates
/// nothing, and asks about a single topic (watermarks) only once it knows the
/// topic exists.
public enum TopicMetadata {
    /// Every topic's partition count. Blocking: call from a dedicated thread.
    /// - Parameters:
    ///   - config: librdkafka configuration with `bootstrap.servers`.
    ///   - timeoutMs: how long to wait for the answer.
    /// - Throws: `KafkaError` when the cluster does not answer.
    public static func partitionCounts(config: [String: String], logger: Logger, timeoutMs: Int32 = 10_000) throws -> [String: Int] {
        // A consumer that joins no group and commits nothing: it only asks for metadata.
        let consumer = try KafkaConsumer(config: config.merging(["enable.auto.commit": "false"]) { $1 }, logger: logger)
        defer { consumer.closeBlocking() }
        return try consumer.topicPartitionCounts(timeoutMs: timeoutMs)
    }
}
