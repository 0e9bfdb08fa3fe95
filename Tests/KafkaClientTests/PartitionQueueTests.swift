import Foundation
import Synchronization
import Testing
@testable import KafkaClient

/// A consumer that reads each assigned partition from a queue of its own
/// (`queuePerPartition`): a backlog on one partition neither stops nor delays the others,
/// and back-pressure holds one partition without losing or repeating a record.
@Suite("A queue per partition")
struct PartitionQueueTests {
    /// Subscribes with manual rebalancing and applies the first assignment; returns the consumer.
    func assignedConsumer(_ cluster: EmbeddedKafkaCluster, topic: String, partitions: Int) async throws -> KafkaConsumer {
        let config = cluster.clientConfig.merging([
            "group.id": "pq-\(UUID().uuidString)", "session.timeout.ms": "3000", "heartbeat.interval.ms": "250",
            "queued.min.messages": "1000",
        ]) { $1 }
        let consumer = try KafkaConsumer(config: config, logger: testLogger, manualRebalance: true, queuePerPartition: true)
        try consumer.subscribe([topic])
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 1, timeoutMs: 100)
            #expect(batch.messages.isEmpty, "nothing comes before the assignment is applied")
            for case .assigned(let tps) in batch.rebalanceEvents {
                try await consumer.applyAssignment(tps.map { TopicPartitionOffset($0, KafkaOffset.invalid) })
                if tps.count == partitions { return consumer }
            }
        }
        struct NoAssignment: Error {}
        throw NoAssignment()
    }

    @Test("every full poll takes from every partition that has records, however large another's backlog; a held partition is left alone and continues after its last record when released")
    func fairAndHeld() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("pq", partitions: 2)
        let producer = try KafkaProducer(config: cluster.clientConfig.merging(["linger.ms": "50"]) { $1 }, logger: testLogger)
        for i in 0..<6000 { try await producer.send(ProducerRecord(topic: "pq", partition: 0, value: bytes("a\(i)"))) }
        for i in 0..<300 { try await producer.send(ProducerRecord(topic: "pq", partition: 1, value: bytes("b\(i)"))) }
        try await producer.flush()
        let consumer = try await assignedConsumer(cluster, topic: "pq", partitions: 2)
        let p0 = TopicPartition("pq", 0), p1 = TopicPartition("pq", 1)

        // Wait until both partitions have records waiting, then take one full batch.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, consumer.queuedPerPartition[p0, default: 0] < 500 || consumer.queuedPerPartition[p1, default: 0] < 100 {
            try await Task.sleep(for: .milliseconds(20))
        }
        var offsets: [TopicPartition: [Int64]] = [:]
        let first = try await consumer.poll(maxMessages: 400, timeoutMs: 1000)
        for m in first.messages { offsets[m.topicPartition, default: []].append(m.offset) }
        #expect(first.messages.count == 400)
        #expect(offsets[p1, default: []].count >= 100, "partition 1 gets its share of the first batch: \(offsets.mapValues(\.count))")

        // Hold partition 0: only partition 1 comes, all of it; then nothing more.
        try consumer.pauseTaking([p0])
        var held: [KafkaMessage] = []
        while ContinuousClock.now < deadline, offsets[p1, default: []].count + held.count < 300 {
            held += try await consumer.poll(maxMessages: 100, timeoutMs: 200).messages
        }
        for _ in 0..<3 { held += try await consumer.poll(maxMessages: 100, timeoutMs: 200).messages }
        #expect(held.allSatisfy { $0.topicPartition == p1 }, "nothing of the held partition is taken")
        for m in held { offsets[m.topicPartition, default: []].append(m.offset) }
        #expect(offsets[p1] == Array(0..<300))
        #expect(consumer.queuedPerPartition[p0, default: 0] > 0, "the held partition's fetched records stay queued")

        // Released: partition 0 goes on from where it stopped, every record once.
        try consumer.resumeTaking([p0])
        while ContinuousClock.now < deadline, offsets[p0, default: []].count < 6000 {
            for m in try await consumer.poll(maxMessages: 1000, timeoutMs: 200).messages { offsets[m.topicPartition, default: []].append(m.offset) }
        }
        #expect(offsets[p0] == Array(0..<6000))
        await consumer.close()
        await producer.close()
    }

    @Test("a poll that finds every queue empty waits for the next record and returns when it comes, not at its timeout")
    func waitsForTheNextRecord() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("pq-wait", partitions: 2)
        let consumer = try await assignedConsumer(cluster, topic: "pq-wait", partitions: 2)
        // Drain the partition EOF events.
        while try await !consumer.poll(maxMessages: 10, timeoutMs: 300).partitionEOFs.isEmpty {}
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        let send = Task {
            try await Task.sleep(for: .milliseconds(500))
            try await producer.send(ProducerRecord(topic: "pq-wait", partition: 1, value: bytes("late")))
            try await producer.flush()
        }
        let started = ContinuousClock.now
        var got: [KafkaMessage] = []
        while got.isEmpty, ContinuousClock.now - started < .seconds(30) {
            got = try await consumer.poll(maxMessages: 10, timeoutMs: 20_000).messages
        }
        let waited = ContinuousClock.now - started
        try await send.value
        #expect(got.map { text($0.value) } == ["late"])
        #expect(waited < .seconds(10), "woken by the record, not by the 20 s timeout (waited \(waited))")
        await consumer.close()
        await producer.close()
    }

    @Test("a partition drained from its prefetch bound is fetched again at once, not at librdkafka's next one-second wake-up of the broker thread")
    func drainedPartitionIsFetchedAgain() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("pq-bound", partitions: 1)
        // Batches of 1,000 records: the mock answers a fetch with one batch, so every fetch
        // fills the queue to the consumer's bound (queued.min.messages 1000) and fetching stops.
        let producer = try KafkaProducer(config: cluster.clientConfig.merging(["linger.ms": "100", "batch.num.messages": "1000"]) { $1 }, logger: testLogger)
        let records = 20_000
        for i in 0..<records { try await producer.send(ProducerRecord(topic: "pq-bound", partition: 0, value: bytes("r\(i)"))) }
        try await producer.flush()
        let consumer = try await assignedConsumer(cluster, topic: "pq-bound", partitions: 1)
        var offsets: [Int64] = []
        offsets.reserveCapacity(records)
        let started = ContinuousClock.now
        while offsets.count < records, ContinuousClock.now - started < .seconds(60) {
            for m in try await consumer.poll(maxMessages: 200, timeoutMs: 100).messages { offsets.append(m.offset) }
        }
        let took = ContinuousClock.now - started
        #expect(offsets == (0..<Int64(records)).map { $0 }, "every record once, in order")
        // 20 times at the bound: waiting for the broker thread's own wake-up costs up to a
        // second each time (about 10 s in all); fetched again at once, well under a second when
        // the machine is idle (0.35–1.4 s), 7.3 s once in CI's full suite on 2 busy cores. The
        // waker's count below is the check that it happened; the bound only catches a stall.
        #expect(took < .seconds(15), "read \(records) records in \(took)")
        if FetchWaker.needed {
            #expect((consumer.partitionQueues?.waker?.requested ?? 0) >= 10, "the leader was woken each time the queue drained from its bound")
        }
        await consumer.close()
        await producer.close()
    }
}
