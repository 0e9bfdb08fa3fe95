import Foundation
import KafkaClient
import Logging
import RedisClient
import Testing

/// The bar of the cluster-member issue, run the way a user runs it: a
/// `stream-engine dev-broker` holding only the input topics, the seeded
/// generator's events, the shipped `topologies.yaml`; once with one instance,
/// once with three that join one after the other, one of them killed with
/// SIGKILL mid-run, the rest stopped and a fourth finishing with
/// `--stop-at-end`. Both must leave exactly the same Redis.
@Suite("The shipped topologies as one instance or as three with a SIGKILL: the same Redis", .serialized)
struct ShippedTopologiesClusterTests {
    static let events = 20_000

    /// A dev-broker loaded with the generator's events, and a redis-server.
    final class Shop: Sendable {
        let dir: TemporaryDirectory
        let broker: CLIProcess
        let bootstrap: String
        let redisServer: LocalRedisServer
        let redis: RedisConnection

        init() async throws {
            dir = try TemporaryDirectory()
            let file = dir.file("bootstrap")
            broker = try CLIProcess(["dev-broker", "--bootstrap-file", file]
                + ["product_prices:4", "purchases:4", "user_events:4", "logins:4"].flatMap { ["--topic", $0] })
            let deadline = ContinuousClock.now + .seconds(30)
            while !FileManager.default.fileExists(atPath: file) {
                guard broker.isRunning, ContinuousClock.now < deadline else { throw CLIError("dev-broker did not start: \(broker.outputSoFar)") }
                try await Task.sleep(for: .milliseconds(50))
            }
            bootstrap = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            redisServer = try LocalRedisServer()
            var logger = Logger(label: "shop-cluster-test")
            logger.logLevel = .error
            redis = RedisConnection(url: redisServer.url, logger: logger)
            let generated = try await cli(["generate", "--events", String(ShippedTopologiesClusterTests.events), "--seed", "7", "--bootstrap-servers", bootstrap], timeout: .seconds(120))
            #expect(generated.status == 0, "\(generated)")
        }

        func instance(_ name: String, _ extra: [String] = [], config: String = "\(repositoryRoot)/topologies.yaml") throws -> CLIProcess {
            try CLIProcess([
                "run", "--config", config, "--bootstrap-servers", bootstrap,
                "--redis-url", redisServer.url.description, "--state-dir", dir.file("state-\(name)"), "--instance-id", name,
            ] + extra)
        }

        /// Every key but the engine's fences, with its type and contents.
        func dump() async throws -> [String: String] {
            var out: [String: String] = [:]
            var cursor = "0"
            repeat {
                let reply = try await redis.command(["SCAN", cursor, "COUNT", "1000"])
                let parts = reply.array ?? []
                cursor = parts.first?.string ?? "0"
                for k in parts.dropFirst().first?.array ?? [] {
                    guard let key = k.string, !key.hasPrefix("se:") else { continue }
                    let type = try await redis.command(["TYPE", key]).string ?? "?"
                    let value: RedisReply
                    switch type {
                    case "zset": value = try await redis.command(["ZRANGE", key, "0", "-1", "WITHSCORES"])
                    case "hash": value = try await redis.command(["HGETALL", key])
                    case "string": value = try await redis.command(["GET", key])
                    default: value = .status(type)
                    }
                    out[key] = "\(type) \(Self.text(value, sorted: type == "hash"))"
                }
            } while cursor != "0"
            return out
        }

        private static func text(_ r: RedisReply, sorted: Bool) -> String {
            guard let items = r.array else { return r.string ?? "nil" }
            var parts = items.map { $0.string ?? "nil" }
            if sorted {
                // HGETALL pairs in field order.
                parts = stride(from: 0, to: parts.count - 1, by: 2).map { "\(parts[$0])=\(parts[$0 + 1])" }.sorted()
            }
            return parts.joined(separator: ",")
        }

        func stop() {
            broker.signal(SIGTERM)
            redisServer.stop()
            dir.cleanup()
        }
    }

    @Test("Three instances joining one after the other, one SIGKILLed mid-run, a fourth finishing: Redis equals one instance's")
    func threeWithAKillEqualOne() async throws {
        let one = try await Shop()
        defer { one.stop() }
        let single = try await one.instance("solo", ["--stop-at-end"]).wait(timeout: .seconds(300))
        #expect(single.status == 0, "\(single)")
        let reference = try await one.dump()
        #expect(reference.count > 1000, "the reference run wrote the shop's keys: \(reference.count)")

        let three = try await Shop()
        defer { three.stop() }
        let a = try three.instance("a")
        defer { a.terminate() }
        #expect(try await ClusterMemberTests.eventually(.seconds(120)) { ClusterMemberTests.firstCommits(a) > 0 }, "a commits: \(a.outputSoFar.stderr)")
        let b = try three.instance("b")
        defer { b.terminate() }
        try await Task.sleep(for: .seconds(2))
        let c = try three.instance("c")
        defer { c.terminate() }
        #expect(try await ClusterMemberTests.eventually(.seconds(120)) { ClusterMemberTests.firstCommits(c) > 0 }, "c commits: \(c.outputSoFar.stderr)")
        a.signal(SIGKILL)
        try await Task.sleep(for: .seconds(8))
        b.signal(SIGTERM)
        c.signal(SIGTERM)
        #expect(try await b.wait(timeout: .seconds(60)).status == 0)
        #expect(try await c.wait(timeout: .seconds(60)).status == 0)
        let finisher = try await three.instance("d", ["--stop-at-end"]).wait(timeout: .seconds(300))
        #expect(finisher.status == 0, "\(finisher)")
        let scaled = try await three.dump()

        let differing = Set(reference.keys).union(scaled.keys).filter { reference[$0] != scaled[$0] }.sorted()
        print("shipped topologies: \(reference.count) keys with one instance, \(scaled.count) with three and a SIGKILL, \(differing.count) differ")
        #expect(differing.isEmpty, "keys that differ: \(differing.prefix(10).map { "\($0): one \(reference[$0] ?? "none") / three \(scaled[$0] ?? "none")" })")
    }

    @Test("A finisher started while a stopped member is still in the group waits for its own assignment before --stop-at-end ends it, and recomputes what depends on the global tables (what a member stopped before its pending recomputes ran leaves stale)")
    func finisherWaitsForItsAssignment() async throws {
        let shop = try await Shop()
        defer { shop.stop() }
        // A static member (--instance-id) that stops stays in the group for its session: 10 s here.
        let config = shop.dir.file("long-session.yaml")
        let shipped = try String(contentsOfFile: "\(repositoryRoot)/topologies.yaml", encoding: .utf8)
        try (shipped + "\nkafka:\n  session.timeout.ms: \"10000\"\n").write(toFile: config, atomically: true, encoding: .utf8)
        let b = try await shop.instance("b", ["--stop-at-end"], config: config).wait(timeout: .seconds(300))
        #expect(b.status == 0, "\(b)")
        // Every input record is committed now. Recommendations computed from table rows that changed
        // later, whose recompute the stopped member had pending, look like this:
        let recs = try await shop.dump().keys.filter { $0.hasPrefix("rec:") }
        #expect(recs.count > 50, "the run wrote recommendations: \(recs.count)")
        for key in recs { _ = try await shop.redis.command(["ZADD", key, "1.5", "p-stale"]) }

        let d = try await shop.instance("d", ["--stop-at-end"], config: config).wait(timeout: .seconds(300))
        #expect(d.status == 0, "\(d)")
        #expect(d.stderr.contains("rebalance: assigned"), "the finisher stopped before it was assigned its partitions: \(d.stderr.suffix(3000))")
        let stale = try await shop.dump().filter { $0.key.hasPrefix("rec:") && $0.value.contains("p-stale") }.keys.sorted()
        #expect(stale.isEmpty, "\(stale.count) of \(recs.count) recommendations not recomputed: \(stale.prefix(5))")
    }
}
