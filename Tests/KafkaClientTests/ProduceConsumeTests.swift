import Foundation
import Synchronization
import Testing
@testable import KafkaClient

@Suite("Kafka produce and consume on the embedded cluster")
struct ProduceConsumeTests {
    @Test("10,000 keyed messages come back in order per partition with keys, values and headers")
    func roundTrip() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 3, logger: testLogger)
        try cluster.createTopic("orders", partitions: 4)
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        let total = 10_000
        for i in 0..<total {
            try await producer.send(ProducerRecord(
                topic: "orders", key: bytes("key-\(i % 97)"), value: bytes("value-\(i)"),
                headers: [KafkaHeader("seq", "\(i)"), KafkaHeader("empty", nil)]))
        }
        try await producer.flush(timeout: .seconds(30))
        #expect(producer.deliveryCounts.delivered == Int64(total))

        let consumer = try KafkaConsumer(config: cluster.clientConfig.merging(["group.id": "rt"]) { $1 }, logger: testLogger)
        try consumer.subscribe(["orders"])
        let messages = try await pollUntil(consumer) { all, _ in all.count >= total }
        await consumer.close()
        #expect(messages.count == total)

        var partitionsOfKey: [String: Set<Int32>] = [:]
        var lastSeqByPartition: [Int32: Int] = [:]
        var lastOffsetByPartition: [Int32: Int64] = [:]
        for m in messages {
            let key = try #require(text(m.key))
            let seq = try #require(Int(m.header("seq")?.stringValue ?? ""))
            #expect(text(m.value) == "value-\(seq)")
            #expect(key == "key-\(seq % 97)")
            #expect(m.header("empty") != nil && m.header("empty")?.value == nil)
            partitionsOfKey[key, default: []].insert(m.partition)
            // Produce order is kept within a partition.
            #expect(seq > lastSeqByPartition[m.partition, default: -1])
            #expect(m.offset == lastOffsetByPartition[m.partition, default: -1] + 1)
            lastSeqByPartition[m.partition] = seq
            lastOffsetByPartition[m.partition] = m.offset
        }
        #expect(Set(messages.map(\.partition)) == [0, 1, 2, 3])
        #expect(partitionsOfKey.values.allSatisfy { $0.count == 1 }, "one key, one partition")
        #expect(Set(messages.compactMap { Int($0.header("seq")?.stringValue ?? "") }).count == total)
    }

    @Test("More than 5 MiB in one partition all comes back (mock retention lifted)")
    func largePartitionKeepsEverything() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("big", partitions: 1)
        #expect(cluster.hasLiftedLimits("big"))
        let producer = try KafkaProducer(config: cluster.clientConfig.merging(["compression.type": "none", "batch.num.messages": "100"]) { $1 }, logger: testLogger)
        let payload = [UInt8](repeating: 0x61, count: 1000)
        let total = 8_000  // ~8 MB uncompressed, 80+ message sets
        for i in 0..<total {
            try await producer.send(ProducerRecord(topic: "big", partition: 0, key: bytes("\(i)"), value: payload))
        }
        try await producer.flush()
        let wm = try await cluster.watermarks(TopicPartition("big", 0))
        #expect(wm.low == 0)
        #expect(wm.high == Int64(total))
        #expect(try await cluster.truncatedPartitions(topic: "big").isEmpty)

        let consumer = try KafkaConsumer(config: cluster.clientConfig, logger: testLogger)
        try consumer.assign([TopicPartitionOffset("big", 0, KafkaOffset.beginning)])
        let messages = try await pollUntil(consumer) { all, _ in all.count >= total }
        #expect(messages.count == total)
        #expect(messages.map(\.offset) == (0..<Int64(total)).map { $0 })
        #expect(messages.allSatisfy { $0.value == payload })
    }

    @Test("An auto-created topic beyond the mock's limit is detected as truncated")
    func truncationIsDetected() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        // Not created through createTopic: the producer's metadata request auto-creates it
        // with the mock's 5 MiB retention.
        let producer = try KafkaProducer(config: cluster.clientConfig.merging(["compression.type": "none", "batch.num.messages": "100"]) { $1 }, logger: testLogger)
        let payload = [UInt8](repeating: 0x62, count: 1000)
        for i in 0..<7_000 {
            try await producer.send(ProducerRecord(topic: "auto", partition: 0, key: bytes("\(i)"), value: payload))
        }
        try await producer.flush()
        let truncated = try await cluster.truncatedPartitions(topic: "auto")
        #expect(truncated[TopicPartition("auto", 0), default: 0] > 0)
    }
}
