import Foundation
import KafkaClient
import StreamEngine
import StreamEngineTesting
import Testing

@Suite("Engine: count per key over embedded Kafka into Redis", .serialized)
struct CountPipelineTests {
    @Test("Counts per key in Redis equal the counts computed here")
    func countsPerKey() async throws {
        let h = try EngineTestHarness()
        try h.createTopic(CountPipelineFixture.topic, partitions: 4)
        let (records, expected) = CountPipelineFixture.clicks(count: 3000, users: 53, numbered: true)
        try await h.produce(CountPipelineFixture.topic, records.map { (key: Optional($0.key), value: $0.value) })
        let config = try h.config(CountPipelineFixture.yaml)
        let rt = try await h.runToEnd(config)
        #expect(rt.stats.processed == 3000)
        for (user, n) in expected {
            let hash = try await h.hgetall("clicks:\(user)")
            #expect(hash["count"] == String(n), "user \(user)")
        }
    }
}

@Suite("Count per key on the TopologyTestDriver")
struct CountPipelineDriverTests {
    @Test("Counts per key in the store, the changelog and Redis equal the counts computed here; nothing reaches Redis before a commit")
    func countsPerKeyInMemory() async throws {
        let driver = try TopologyTestDriver(yaml: CountPipelineFixture.yaml, partitions: 4)
        let (records, expected) = CountPipelineFixture.clicks(count: 3000, users: 53, numbered: true)
        for r in records { try await driver.pipeInput(topic: CountPipelineFixture.topic, key: r.key, value: r.value) }
        #expect(driver.redis.keys.isEmpty, "Redis is written at commits only")
        try await driver.advanceWallClockTime(by: .milliseconds(50))
        let store = await driver.storeValues(CountPipelineFixture.store)
        #expect(store.mapValues { $0.intValue.map(Int.init) } == expected.mapValues { Optional($0) })
        for (user, n) in expected { #expect(driver.redis.hgetall("clicks:\(user)")["count"] == String(n), "user \(user)") }
        // One changelog record per changed key per commit: 53 users, one commit.
        #expect(driver.changelog(store: CountPipelineFixture.store).count == expected.count)
        #expect(await driver.counts().processed == 3000)
    }

    @Test("A hash sink with a ttl writes each key's fields and its expiry, commit after commit")
    func hashWithTTL() async throws {
        let yaml = CountPipelineFixture.yaml.replacingOccurrences(
            of: #"fields: { count: count } }"#, with: #"fields: { count: count, total: count }, ttl: 1h }"#)
        #expect(yaml != CountPipelineFixture.yaml)
        let driver = try TopologyTestDriver(yaml: yaml, partitions: 1)
        let (records, expected) = CountPipelineFixture.clicks(count: 500, users: 7)
        for r in records.prefix(250) { try await driver.pipeInput(topic: CountPipelineFixture.topic, key: r.key, value: r.value) }
        try await driver.advanceWallClockTime(by: .milliseconds(50))
        for r in records.dropFirst(250) { try await driver.pipeInput(topic: CountPipelineFixture.topic, key: r.key, value: r.value) }
        try await driver.advanceWallClockTime(by: .milliseconds(50))
        for (user, n) in expected {
            #expect(driver.redis.hgetall("clicks:\(user)") == ["count": String(n), "total": String(n)], "user \(user)")
            #expect(driver.redis.ttlMillis("clicks:\(user)") == 3_600_000, "user \(user)")
        }
    }
}
