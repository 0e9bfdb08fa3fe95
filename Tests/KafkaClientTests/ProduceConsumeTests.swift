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

    @Test("pollBatch skips the headers of the topics it is told to and of values starting with the byte it is told, and only theirs; keys and values stay whole")
    func skippingHeaders() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        for t in ["read", "skipped"] { try cluster.createTopic(t, partitions: 2) }
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        let perTopic = 300
        for i in 0..<perTopic {
            for t in ["read", "skipped"] {
                try await producer.send(ProducerRecord(topic: t, key: bytes("k\(i)"), value: bytes("\(t)-\(i)"), headers: [KafkaHeader("seq", "\(i)")]))
            }
            // A value starting with the tag byte: its headers are skipped on any topic.
            try await producer.send(ProducerRecord(topic: "read", key: bytes("t\(i)"), value: [0] + bytes("tagged-\(i)"), headers: [KafkaHeader("seq", "\(i)")]))
        }
        try await producer.flush(timeout: .seconds(30))
        await producer.close()

        let consumer = try KafkaConsumer(config: cluster.clientConfig.merging(["group.id": "skip"]) { $1 }, logger: testLogger)
        try consumer.subscribe(["read", "skipped"])
        let messages = try await onThread { () throws -> [KafkaMessage] in
            var all: [KafkaMessage] = []
            let deadline = ContinuousClock.now + .seconds(60)
            while all.count < 3 * perTopic, ContinuousClock.now < deadline {
                all += try consumer.pollBatch(maxMessages: 100, timeoutMs: 100, skippingHeadersOf: ["skipped"], skippingHeadersOfValuesStartingWith: 0).messages
            }
            return all
        }
        await consumer.close()
        let read = messages.filter { $0.topic == "read" && $0.value?.first != 0 }
        let tagged = messages.filter { $0.topic == "read" && $0.value?.first == 0 }
        let skipped = messages.filter { $0.topic == "skipped" }
        #expect(read.count == perTopic && skipped.count == perTopic && tagged.count == perTopic)
        #expect(tagged.allSatisfy { $0.headers.isEmpty })
        #expect(Set(tagged.compactMap { m in m.value.map { text(Array($0.dropFirst())) } }) == Set((0..<perTopic).map { "tagged-\($0)" }))
        #expect(read.allSatisfy { m in m.header("seq")?.stringValue.map { text(m.value) == "read-\($0)" && text(m.key) == "k\($0)" } == true })
        #expect(skipped.allSatisfy { $0.headers.isEmpty })
        #expect(Set(skipped.compactMap { text($0.value) }) == Set((0..<perTopic).map { "skipped-\($0)" }))
        #expect(skipped.allSatisfy { m in text(m.value).map { "k" + $0.dropFirst("skipped-".count) } == text(m.key) })
    }

    @Test("configureTopic gives one topic its own codec; the others keep the producer's, and the records read back whole")
    func perTopicCompression() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        for t in ["plain", "fast", "default"] { try cluster.createTopic(t, partitions: 1) }
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)  // zstd by default
        try producer.configureTopic("plain", ["compression.type": "none"])
        try producer.configureTopic("fast", ["compression.type": "lz4"])
        #expect(throws: KafkaError.self) { try producer.configureTopic("fast", ["compression.type": "none"]) }
        #expect(throws: KafkaError.self) { try producer.configureTopic("other", ["compression.type": "brotli"]) }
        let payload = [UInt8](repeating: 0x61, count: 1000)
        let total = 200  // 200 KB of one repeated byte: any codec shrinks it far below that
        for t in ["plain", "fast", "default"] {
            for i in 0..<total { try await producer.send(ProducerRecord(topic: t, partition: 0, key: bytes("\(i)"), value: payload)) }
        }
        try await producer.flush()
        let plain = try #require(cluster.logBytes("plain", partition: 0))
        let fast = try #require(cluster.logBytes("fast", partition: 0))
        let zstd = try #require(cluster.logBytes("default", partition: 0))
        #expect(plain > Int64(total * payload.count), "uncompressed: \(plain) bytes")
        #expect(fast < Int64(total * payload.count) / 10, "lz4: \(fast) bytes")
        #expect(zstd < Int64(total * payload.count) / 10, "zstd: \(zstd) bytes")
        #expect(fast != zstd, "lz4 and zstd write different batches")
        await producer.close()

        let consumer = try KafkaConsumer(config: cluster.clientConfig.merging(["group.id": "codecs"]) { $1 }, logger: testLogger)
        try consumer.subscribe(["plain", "fast", "default"])
        let messages = try await pollUntil(consumer) { all, _ in all.count >= 3 * total }
        await consumer.close()
        #expect(messages.count == 3 * total)
        #expect(messages.allSatisfy { $0.value == payload })
    }

    @Test("prepare(topics:) loads the topics a producer will write: a configured topic keeps its codec, every record is delivered, and an unreachable cluster is reported, not thrown")
    func prepareKeepsConfiguredTopics() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 3, logger: testLogger)
        for t in ["fast", "default"] { try cluster.createTopic(t, partitions: 4) }
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)  // zstd by default
        try producer.configureTopic("fast", ["compression.type": "lz4"])
        let missed = try await producer.prepare(topics: ["fast", "default"])
        #expect(missed.isEmpty, "metadata of every existing topic loads: \(missed)")
        // A prepared topic has its handle, with the producer's configuration: it can no longer be configured.
        #expect(throws: KafkaError.self) { try producer.configureTopic("default", ["compression.type": "none"]) }
        let payload = [UInt8](repeating: 0x61, count: 1000)
        let total = 200
        for t in ["fast", "default"] {
            for i in 0..<total { try await producer.send(ProducerRecord(topic: t, partition: Int32(i % 4), key: bytes("\(i)"), value: payload)) }
        }
        try await producer.flush()
        #expect(producer.deliveryCounts.delivered == Int64(2 * total))
        let fast = (0..<Int32(4)).compactMap { cluster.logBytes("fast", partition: $0) }.reduce(0, +)
        let zstd = (0..<Int32(4)).compactMap { cluster.logBytes("default", partition: $0) }.reduce(0, +)
        #expect(fast > 0 && fast < Int64(total * payload.count) / 10, "lz4: \(fast) bytes")
        #expect(zstd > 0 && zstd < Int64(total * payload.count) / 10, "zstd: \(zstd) bytes")
        #expect(fast != zstd, "the configured topic kept lz4 after prepare")

        await producer.close()

        // With the cluster unreachable the warm-up reports the topic and does not throw: its
        // records would wait for librdkafka's own refresh, as without prepare. (Nothing listens on
        // loopback port 1; taking the mock's brokers down instead makes librdkafka 2.0.2's mock
        // re-bind their ports, which can abort the process when the kernel refuses the bind.)
        let stranded = try KafkaProducer(config: ["bootstrap.servers": "127.0.0.1:1"], logger: testLogger)
        let unreachable = try await stranded.prepare(topics: ["later"], timeout: .milliseconds(500))
        #expect(unreachable.keys.sorted() == ["later"], "\(unreachable)")
        await stranded.close()
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

    @Test("pollBatch(forEach:) shows in place what pollBatch copies: keys, values, tombstones, last header of a name, ends")
    func inPlaceBatchMatchesCopies() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("views", partitions: 2)
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        let total = 600
        for i in 0..<total {
            try await producer.send(ProducerRecord(
                topic: "views", partition: Int32(i % 2), key: i % 5 == 0 ? nil : bytes("k\(i)"), value: i % 7 == 0 ? nil : bytes("v\(i)"),
                headers: [KafkaHeader("tag", "first-\(i)"), KafkaHeader("tag", "last-\(i)"), KafkaHeader("none", nil)]))
        }
        try await producer.flush(timeout: .seconds(30))
        let config = cluster.clientConfig.merging(["enable.partition.eof": "true"]) { $1 }
        let start = [TopicPartitionOffset("views", 0, 0), TopicPartitionOffset("views", 1, 0)]
        let copying = try KafkaConsumer(config: config, logger: testLogger)
        try copying.assign(start)
        let copies = try await pollUntil(copying) { all, _ in all.count >= total }
        await copying.close()

        struct Seen: Sendable, Equatable { var partition: Int32; var offset: Int64; var key: [UInt8]?; var value: [UInt8]?; var tag: [UInt8]?; var none: Bool }
        let viewing = try KafkaConsumer(config: config, logger: testLogger)
        try viewing.assign(start)
        let (seen, ends) = try await onThread { () throws -> ([Seen], Set<Int32>) in
            var seen: [Seen] = []
            var ends: Set<Int32> = []
            let deadline = ContinuousClock.now + .seconds(60)
            while ends.count < 2 && ContinuousClock.now < deadline {
                let summary = try viewing.pollBatch(maxMessages: 100, timeoutMs: 100) { m in
                    seen.append(Seen(partition: m.partition, offset: m.offset, key: m.key.map { Array($0) }, value: m.value.map { Array($0) },
                                     tag: m.header("tag").map { Array($0) }, none: m.header("none") == nil && m.header("absent") == nil))
                    return true
                }
                #expect(summary.messages <= 100)
                for eof in summary.partitionEOFs where eof.offset >= Int64(total / 2) { ends.insert(eof.partition) }
            }
            return (seen, ends)
        }
        await viewing.close()
        #expect(ends == [0, 1])
        let expected = copies.map { Seen(partition: $0.partition, offset: $0.offset, key: $0.key, value: $0.value, tag: $0.header("tag")?.value, none: true) }
        func order(_ a: Seen, _ b: Seen) -> Bool { (a.partition, a.offset) < (b.partition, b.offset) }
        #expect(seen.count == total)
        #expect(seen.sorted(by: order) == expected.sorted(by: order))
        #expect(seen.filter { $0.value == nil }.count == (0..<total).filter { $0 % 7 == 0 }.count)
        #expect(seen.allSatisfy { $0.tag.map { String(decoding: $0, as: UTF8.self).hasPrefix("last-") } == true })

        // Returning false stops the batch: the rest is released unread.
        let stopping = try KafkaConsumer(config: config, logger: testLogger)
        try stopping.assign([TopicPartitionOffset("views", 0, 0)])
        let handed = try await onThread { () throws -> Int in
            var handed = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while handed == 0 && ContinuousClock.now < deadline {
                let summary = try stopping.pollBatch(maxMessages: 50, timeoutMs: 200) { _ in
                    handed += 1
                    return false
                }
                #expect(summary.messages == handed)
            }
            return handed
        }
        await stopping.close()
        #expect(handed == 1)
    }
}
