import Foundation
import Testing
@testable import StreamEngine
import StreamEngineTesting

/// The periodic commit runs behind the tasks once the changelog is acknowledged
/// (`TaskManager.commit(overlapping:)`): what it fails with must still end the run.
@Suite("Engine: a commit that runs behind the tasks")
struct CommitOverlapTests {
    static let yaml = """
        application.id: overlap-app
        defaults:
          processing.guarantee: at_least_once
          commit.interval.ms: 10
        topologies:
          - name: totals
            source:
              topics: [orders]
              key: user
            steps:
              - aggregate: { store: totals-by-user, aggregator: sum, params: { field: amount } }
              - redis: { key: "total:{key}", mode: hash }
        """

    @Test("Redis refusing a commit's writes (a key of another type) ends the run with Redis's error, soon, and commits no offsets past it")
    func redisErrorEndsTheRun() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("orders", partitions: 4)
        var records: [(key: String?, value: String)] = []
        for i in 0..<4000 {
            let user = "u\(i % 40)"
            records.append((user, #"{"user":"\#(user)","amount":1}"#))
        }
        try await h.produce("orders", records)
        // The sink writes a hash; a string under one of its keys makes the script fail.
        _ = try await h.redis.command(["SET", "total:u7", "not a hash"])
        let config = try h.config(Self.yaml)
        let started = ContinuousClock.now
        var message = ""
        do {
            try await h.runToEnd(config, batchSize: 100, timeout: .seconds(60))
        } catch {
            message = "\(error)"
        }
        #expect(message.contains("Redis answered an error") && message.contains("WRONGTYPE"), "got: \(message)")
        #expect(ContinuousClock.now - started < .seconds(30))
        // The failed commit's offsets were never committed: a rerun (the key fixed) replays
        // its records and ends with every user's exact total.
        _ = try await h.redis.command(["DEL", "total:u7"])
        try await h.runToEnd(config, batchSize: 100)
        for u in 0..<40 {
            #expect(try await h.hgetall("total:u\(u)")["sum"] == "100", "user u\(u)")
        }
    }
}
