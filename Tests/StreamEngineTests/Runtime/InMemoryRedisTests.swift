import Foundation
import RedisClient
import StreamEngine
import StreamEngineTesting
import Testing

/// The test driver's `InMemoryRedis` against a real `redis-server`: the same random command
/// sequences must leave the same keys, values and TTLs.
@Suite("InMemoryRedis agrees with a real redis-server", .serialized)
struct InMemoryRedisTests {
    @Test("SET, DEL, HSET, ZADD, ZREMRANGEBYRANK, ZREMRANGEBYSCORE and PEXPIRE leave the same state in memory and in Redis")
    func differential() async throws {
        let h = try EngineTestHarness()
        var memory = InMemoryRedis()
        var rng = SplitMix64(seed: 14)
        let keys = ["k1", "k2", "k3"]
        let members = ["a", "b", "c", "d", "e"]
        var applied: [String: Int] = [:]
        for _ in 0..<400 {
            let key = keys[rng.int(keys.count)]
            let command: [String]
            switch rng.int(7) {
            case 0: command = ["SET", key, "v\(rng.int(5))"]
            case 1: command = ["DEL", key]
            case 2: command = ["HSET", key, "f\(rng.int(3))", "\(rng.int(9))", "f\(rng.int(3))", "\(rng.int(9))"]
            case 3: command = ["ZADD", key, "\(rng.int(20))", members[rng.int(members.count)], "\(Double(rng.int(40)) / 2)", members[rng.int(members.count)]]
            case 4: command = ["ZREMRANGEBYRANK", key, "0", "\(rng.int(5) - 3)"]
            case 5: command = ["ZREMRANGEBYSCORE", key, ["-inf", "3", "(5"][rng.int(3)], ["(10", "12", "+inf"][rng.int(3)]]
            default: command = ["PEXPIRE", key, "600000"]
            }
            // Redis refuses commands against a key of another type; the engine never issues those.
            let type = try await h.redis.command(["TYPE", key]).string ?? "none"
            let fits = switch command[0] {
            case "HSET": type == "none" || type == "hash"
            case "ZADD", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE": type == "none" || type == "zset"
            default: true
            }
            guard fits else { continue }
            _ = try await h.redis.command(command)
            try memory.apply(command)
            applied[command[0], default: 0] += 1
        }
        #expect(applied.count == 7, "every command ran: \(applied)")
        for key in keys {
            let type = try await h.redis.command(["TYPE", key]).string ?? "none"
            switch type {
            case "string": #expect(memory.get(key) == (try await h.get(key)), "\(key)")
            case "hash": #expect(memory.hgetall(key) == (try await h.hgetall(key)), "\(key)")
            case "zset":
                let real = try await h.zrangeWithScores(key)
                #expect(memory.zrangeWithScores(key).map { "\($0.member)=\($0.score)" } == real.map { "\($0.member)=\($0.score)" }, "\(key)")
            default: #expect(!memory.keys.contains(key), "\(key) exists only in memory")
            }
            let pttl = try await h.redis.command(["PTTL", key]).int ?? -3
            #expect((memory.ttlMillis(key) != nil) == (pttl > 0), "\(key): TTL in memory \(String(describing: memory.ttlMillis(key))), in Redis \(pttl)")
        }
    }
}
