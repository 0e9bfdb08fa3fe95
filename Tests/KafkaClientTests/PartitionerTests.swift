import Testing
@testable import KafkaClient

@Suite("KafkaPartitioner")
struct PartitionerTests {
    @Test("gives every key the partition librdkafka's producer picks, for the default and the murmur2 partitioner")
    func matchesTheProducer() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        for (topic, partitioner) in [("keys-default", nil), ("keys-murmur2", "murmur2_random")] as [(String, String?)] {
            try cluster.createTopic(topic, partitions: 7)
            var config = cluster.clientConfig
            if let partitioner { config["partitioner"] = partitioner }
            let producer = try KafkaProducer(config: config, logger: testLogger)
            for i in 0..<60 {
                let key = "user-\(i)"
                let report = try await producer.sendAndWait(ProducerRecord(topic: topic, key: bytes(key), value: bytes("v")))
                let expected = KafkaPartitioner.partition(key: bytes(key), count: 7, partitioner: partitioner ?? "consistent_random")
                #expect(report.partition == expected, "\(key) with \(partitioner ?? "the default partitioner")")
            }
            await producer.close()
        }
        #expect(KafkaPartitioner.partition(key: [], count: 4) == nil)
        #expect(KafkaPartitioner.partition(key: bytes("k"), count: 4, partitioner: "no-such") == nil)
    }
}
