import Foundation
import Testing
@testable import StreamEngine
import StreamEngineTesting

/// The periodic commit runs behind the tasks once the changelog is acknowledged
/// (`TaskManager.commit(overlapping:)`): what it fails with must still end the run.
@Suite("Engine: a commit that runs behind the tasks")
struct CommitOverlapTests {
    @Test("Redis refusing a commit's writes (a key of another type) ends the run with Redis's error, soon, and commits no offsets past it")
    func redisErrorEndsTheRun() async throws {
        let h = try EngineTestHarness()
        try h.createTopic("orders", partitions: 4)
        // 4,000 orders of 40 users; the sum per user goes to the hash `total:<user>`.
        let (records, totals) = RecoveryTests.orders()
        try await h.produce("orders", records)
        // The sink writes a hash; a string under one of its keys makes the script fail.
        _ = try await h.redis.command(["SET", "total:u7", "not a hash"])
        let config = try h.config(RecoveryTests.yaml("at_least_once"))
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
        for (user, total) in totals {
            #expect(try await h.hgetall("total:\(user)")["sum"] == String(total), "user \(user)")
        }
    }
}
