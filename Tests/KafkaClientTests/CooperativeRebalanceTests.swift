import Foundation
import Synchronization
import Testing
@testable import KafkaClient

/// The consumer API the runtime uses: batches as an async sequence, the
/// rebalance callback only records events, the owner applies them.
@Suite("Cooperative rebalancing with events applied by the consumer's owner")
struct CooperativeRebalanceTests {
    /// A group member driven the way the runtime drives its consumer.
    final class Member: Sendable {
        let consumer: KafkaConsumer
        let owned = Mutex<Set<TopicPartition>>([])
        let revoked = Mutex<[TopicPartition]>([])
        let consumed = Mutex<[TopicPartition: Int]>([:])
        /// End-of-partition events seen (with `enable.partition.eof=true`): partition → offset.
        let ends = Mutex<[TopicPartition: Int64]>([:])
        let running = Atomic<Bool>(true)
        /// Assigned partitions start at `startWithoutCommittedOffset` (the group has none
        /// committed in these tests), as the runtime assigns them; else at `KafkaOffset.invalid`.
        let startByResetPolicy: Bool

        init(_ config: [String: String], topic: String = "coop", startByResetPolicy: Bool = false) throws {
            consumer = try KafkaConsumer(config: config, logger: testLogger, manualRebalance: true)
            self.startByResetPolicy = startByResetPolicy
            try consumer.subscribe([topic])
        }

        func run() async throws {
            for try await batch in consumer.batches(maxMessages: 500, timeoutMs: 50) {
                consumed.withLock { c in for m in batch.messages { c[m.topicPartition, default: 0] += 1 } }
                ends.withLock { e in for eof in batch.partitionEOFs { e[eof.topicPartition] = eof.offset } }
                for event in batch.rebalanceEvents {
                    switch event {
                    case .assigned(let tps):
                        let start = startByResetPolicy ? consumer.startWithoutCommittedOffset : KafkaOffset.invalid
                        try await consumer.applyAssignment(tps.map { TopicPartitionOffset($0, start) })
                        owned.withLock { $0.formUnion(tps) }
                    case .revoked(let tps, _):
                        revoked.withLock { $0 += tps }
                        try await consumer.applyRevocation(tps)
                        owned.withLock { $0.subtract(tps) }
                    }
                }
                if !running.load(ordering: .acquiring) { break }
            }
        }
    }

    @Test("cooperative-sticky: a second member takes half the partitions; the first gives up only those and keeps consuming the rest")
    func secondMemberTakesHalf() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("coop", partitions: 4)
        let config = cluster.clientConfig.merging([
            "group.id": "coop-group", "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": "3000", "heartbeat.interval.ms": "250",
        ]) { $1 }
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        let a = try Member(config)
        let runA = Task { try await a.run() }
        let deadline = ContinuousClock.now + .seconds(60)
        while a.owned.withLock({ $0.count }) < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(a.owned.withLock { $0.count } == 4, "the first member owns every partition")

        let b = try Member(config)
        let runB = Task { try await b.run() }
        while b.owned.withLock({ $0.count }) < 2 || a.owned.withLock({ $0.count }) > 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let aOwned = a.owned.withLock { $0 }, bOwned = b.owned.withLock { $0 }
        #expect(aOwned.count == 2 && bOwned.count == 2 && aOwned.isDisjoint(with: bOwned), "a: \(aOwned), b: \(bOwned)")
        #expect(Set(a.revoked.withLock { $0 }) == bOwned, "a was revoked exactly what b got (incremental), nothing else")

        // The partitions a kept still flow to a.
        let before = a.consumed.withLock { c in aOwned.reduce(0) { $0 + c[$1, default: 0] } }
        for tp in aOwned {
            for i in 0..<50 { try await producer.send(ProducerRecord(topic: "coop", partition: tp.partition, value: bytes("\(i)"))) }
        }
        try await producer.flush()
        while a.consumed.withLock({ c in aOwned.reduce(0) { $0 + c[$1, default: 0] } }) < before + 100, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(a.consumed.withLock { c in aOwned.reduce(0) { $0 + c[$1, default: 0] } } == before + 100)

        a.running.store(false, ordering: .releasing)
        b.running.store(false, ordering: .releasing)
        try await runA.value
        try await runB.value
        await a.consumer.close()
        await b.consumer.close()
        await producer.close()
    }

    @Test("a partition without a committed offset, assigned at startWithoutCommittedOffset, starts where auto.offset.reset says", arguments: ["earliest", "latest"])
    func startsByResetPolicy(policy: String) async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        try cluster.createTopic("reset", partitions: 2)
        let producer = try KafkaProducer(config: cluster.clientConfig, logger: testLogger)
        for p in Int32(0)..<2 {
            for i in 0..<10 { try await producer.send(ProducerRecord(topic: "reset", partition: p, value: bytes("old-\(i)"))) }
        }
        try await producer.flush()
        let member = try Member(cluster.clientConfig.merging([
            "group.id": "reset-\(policy)", "partition.assignment.strategy": "cooperative-sticky", "auto.offset.reset": policy,
            "enable.partition.eof": "true",
        ]) { $1 }, topic: "reset", startByResetPolicy: true)
        #expect(member.consumer.startWithoutCommittedOffset == (policy == "earliest" ? KafkaOffset.beginning : KafkaOffset.end))
        let run = Task { try await member.run() }
        let deadline = ContinuousClock.now + .seconds(60)
        while member.owned.withLock({ $0.count }) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(member.owned.withLock { $0.count } == 2)
        // Both partitions fetched to their end (10, whatever the start) before the next records
        // go out: "latest" must have looked its start up before them.
        while member.ends.withLock({ $0.values.filter { $0 == 10 }.count }) < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        for p in Int32(0)..<2 {
            for i in 0..<5 { try await producer.send(ProducerRecord(topic: "reset", partition: p, value: bytes("new-\(i)"))) }
        }
        try await producer.flush()
        let expected = policy == "earliest" ? 30 : 10
        while member.consumed.withLock({ $0.values.reduce(0, +) }) < expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(300))  // nothing more than expected arrives
        #expect(member.consumed.withLock { $0.values.reduce(0, +) } == expected)
        member.running.store(false, ordering: .releasing)
        try await run.value
        await member.consumer.close()
        await producer.close()
    }
}
