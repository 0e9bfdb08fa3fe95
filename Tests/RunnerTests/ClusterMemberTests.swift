import Foundation
import KafkaClient
import Logging
import RedisClient
import Synchronization
import Testing

/// The runtime as a cluster member, the way a user runs it: a
/// `stream-engine dev-broker` started with only the input topic, separate
/// `stream-engine run` processes joining, leaving, killed; results in Redis
/// compared with totals the test computes itself.
@Suite("stream-engine run as a cluster member on a dev-broker", .serialized)
struct ClusterMemberTests {
    static let yaml = """
        application.id: scale-app
        defaults:
          processing.guarantee: exactly_once
          commit.interval.ms: 100
        topologies:
          - name: totals
            source:
              topics: [orders]
              key: user
              timestamp: ts
              required: { user: string, amount: number, ts: string }
            steps:
              - rekey: { field: user }
              - aggregate: { store: totals-by-user, aggregator: sum, params: { field: amount } }
              - redis: { key: "total:{key}", mode: hash }
        """

    static let users = 60

    /// Order `i` and its amount.
    static func order(_ i: Int) -> (user: String, amount: Int, record: ProducerRecord) {
        let user = "u\((i * 7) % users)"
        let amount = 1 + (i * 37) % 11
        let value = #"{"user":"\#(user)","amount":\#(amount),"ts":"2024-12-14T12:00:00Z"}"#
        return (user, amount, ProducerRecord(topic: "orders", key: Array("k\(i % 97)".utf8), value: Array(value.utf8)))
    }

    static func totals(upTo n: Int) -> [String: Int] {
        var t: [String: Int] = [:]
        for i in 0..<n { let o = order(i); t[o.user, default: 0] += o.amount }
        return t
    }

    /// A dev-broker, a redis-server and a config file for one test.
    final class Cluster: Sendable {
        let dir: TemporaryDirectory
        let broker: CLIProcess
        let bootstrap: String
        let redisServer: LocalRedisServer
        let redis: RedisConnection
        let config: String
        let logger: Logger

        init(topics: [String], yaml: String = ClusterMemberTests.yaml) async throws {
            var logger = Logger(label: "cluster-test")
            logger.logLevel = .error
            self.logger = logger
            dir = try TemporaryDirectory()
            let file = dir.file("bootstrap")
            broker = try CLIProcess(["dev-broker", "--bootstrap-file", file] + topics.flatMap { ["--topic", $0] })
            let deadline = ContinuousClock.now + .seconds(30)
            while !FileManager.default.fileExists(atPath: file) {
                guard broker.isRunning, ContinuousClock.now < deadline else {
                    throw CLIError("dev-broker did not start: \(broker.outputSoFar)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            bootstrap = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            redisServer = try LocalRedisServer()
            redis = RedisConnection(url: redisServer.url, logger: logger)
            config = try dir.write("topologies.yaml", yaml)
        }

        /// `stream-engine run` as instance `name` (its own state directory and group.instance.id).
        func instance(_ name: String, _ extra: [String] = []) throws -> CLIProcess {
            try CLIProcess([
                "run", "--config", config, "--bootstrap-servers", bootstrap, "--redis-url", redisServer.url.description,
                "--state-dir", dir.file("state-\(name)"), "--instance-id", name,
            ] + extra)
        }

        func producer() throws -> KafkaProducer {
            try KafkaProducer(config: ["bootstrap.servers": bootstrap], logger: logger)
        }

        /// Per-user sums in Redis.
        func redisTotals() async throws -> [String: Int] {
            var out: [String: Int] = [:]
            for u in 0..<ClusterMemberTests.users {
                let reply = try await redis.command(["HGET", "total:u\(u)", "sum"])
                if let s = reply.string, let v = Int(s) { out["u\(u)"] = v }
            }
            return out
        }

        func stop() {
            broker.signal(SIGTERM)
            redisServer.stop()
            dir.cleanup()
        }
    }

    /// Waits until `condition` holds, checking every 100 ms; false after `timeout`.
    static func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    static func firstCommits(_ p: CLIProcess) -> Int {
        p.outputSoFar.stderr.components(separatedBy: "first commit since it started here").count - 1
    }

    /// How many times `p` logged the first commit of one of `tasks`.
    static func firstCommits(_ p: CLIProcess, of tasks: Set<String>) -> Int {
        tasks.reduce(0) { $0 + p.outputSoFar.stderr.components(separatedBy: "task \($1): first commit since it started here").count - 1 }
    }

    /// How many rebalance events `p` logged so far.
    static func rebalances(_ p: CLIProcess) -> Int {
        p.outputSoFar.stderr.components(separatedBy: "] rebalance: ").count - 1
    }

    /// The tasks `p` runs now, from its log ("task X started" / "task X closed" / "dropped").
    static func ownedTasks(_ p: CLIProcess) -> Set<String> {
        var owned: Set<String> = []
        for line in p.outputSoFar.stderr.split(separator: "\n") {
            guard let r = line.range(of: "] task ") else { continue }
            let rest = line[r.upperBound...]
            let id = String(rest.prefix { $0 != " " && $0 != ":" })
            if rest.contains(" started") { owned.insert(id) }
            if rest.contains(" closed") || rest.contains(" dropped") { owned.remove(id) }
        }
        return owned
    }

    /// Writes orders 0..<total at ~2,000 records/s (through every membership change).
    static func pacedWriter(_ producer: KafkaProducer, total: Int) -> Task<Void, any Error> {
        Task {
            for i in 0..<total {
                try await producer.send(Self.order(i).record)
                if i % 100 == 99 { try await Task.sleep(for: .milliseconds(50)) }
            }
            try await producer.flush()
        }
    }

    /// Writes the instances' logs to files under the temporary directory (kept after the test) and says where.
    static func saveLogs(_ instances: [String: CLIProcess], bootstrap: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-member-logs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, p) in instances { try? p.outputSoFar.stderr.write(to: dir.appendingPathComponent("\(name).log"), atomically: true, encoding: .utf8) }
        // The topics with headers, where kcat is installed (a developer's machine).
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/kcat") {
            for topic in ["orders", "scale-app-totals-repartition", "scale-app-totals-by-user-changelog", "scale-app-totals-dedupe-changelog"] {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
                p.arguments = ["-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%p %o %T %k [%h] %s\\n"]
                p.standardOutput = try? FileHandle(forWritingTo: { let u = dir.appendingPathComponent("\(topic).txt"); _ = FileManager.default.createFile(atPath: u.path, contents: nil); return u }())
                try? p.run()
                p.waitUntilExit()
            }
        }
        return "instance logs in \(dir.path)"
    }

    /// Waits until every member owns tasks and none logged a rebalance for 3 s.
    static func settled(_ members: [CLIProcess]) async throws -> Bool {
        try await eventually(.seconds(60)) {
            let before = members.map(rebalances)
            try await Task.sleep(for: .seconds(3))
            return members.map(rebalances) == before && members.allSatisfy { !ownedTasks($0).isEmpty }
        }
    }

    @Test("1 → 3 → 1 instances while a producer writes, one SIGKILLed and one SIGTERMed: internal topics created by run, Redis exact")
    func scaleOutKillScaleIn() async throws {
        let c = try await Cluster(topics: ["orders:4"])
        defer { c.stop() }
        let total = 24_000
        let producer = try c.producer()
        let writer = Self.pacedWriter(producer, total: total)

        let a = try c.instance("a")
        defer { a.terminate() }
        #expect(try await Self.eventually(.seconds(60)) { Self.firstCommits(a) > 0 }, "instance a commits: \(a.outputSoFar.stderr)")

        let b = try c.instance("b")
        defer { b.terminate() }
        let cc = try c.instance("c")
        defer { cc.terminate() }
        #expect(try await Self.eventually(.seconds(60)) { Self.firstCommits(b) > 0 && Self.firstCommits(cc) > 0 },
                "b and c take partitions and commit:\nb: \(b.outputSoFar.stderr)\nc: \(cc.outputSoFar.stderr)")

        // SIGKILL b once the group settled (every member owns tasks and no rebalance for 3 s: c's join may
        // move partitions again after b's first commit): its tasks must be processing again on a or c within seconds.
        let settled = try await Self.settled([a, b, cc])
        #expect(settled, "the group settles with tasks on every member:\nb: \(b.outputSoFar.stderr)\nc: \(cc.outputSoFar.stderr)")
        let bTasks = Self.ownedTasks(b)
        #expect(!bTasks.isEmpty, "b runs tasks: \(b.outputSoFar.stderr)")
        let before = Self.firstCommits(a, of: bTasks) + Self.firstCommits(cc, of: bTasks)
        let killedAt = ContinuousClock.now
        b.signal(SIGKILL)
        let moved = try await Self.eventually(.seconds(60)) { Self.firstCommits(a, of: bTasks) + Self.firstCommits(cc, of: bTasks) > before }
        let failover = ContinuousClock.now - killedAt
        print("cluster-member test: SIGKILL of an instance -> first commit of one of its \(bTasks.count) tasks on a survivor: \(String(format: "%.2f", failover.seconds)) s")
        #expect(moved, "b's tasks move to a survivor:\na: \(a.outputSoFar.stderr)\nc: \(cc.outputSoFar.stderr)")
        #expect(failover < .seconds(20), "failover took \(failover)")

        // SIGTERM c: graceful, exit 0, its partitions go back to a.
        cc.signal(SIGTERM)
        let cResult = try await cc.wait(timeout: .seconds(60))
        #expect(cResult.status == 0, "\(cResult)")

        try await writer.value
        let expected = Self.totals(upTo: total)
        let exact = try await Self.eventually(.seconds(90)) { try await c.redisTotals() == expected }
        let got = try await c.redisTotals()
        // No reader of the repartition topic gave up waiting for an upstream task (30 s): each says idle when it is.
        let gaveUp = [a, b, cc].contains { $0.outputSoFar.stderr.contains("records it holds in merge order without it") }
        let saved = exact && !gaveUp ? "" : Self.saveLogs(["a": a, "b": b, "c": cc], bootstrap: c.bootstrap)
        #expect(!gaveUp, "a merged input gave up waiting for an upstream task; \(saved)")
        #expect(exact, "Redis totals differ: \(expected.filter { got[$0.key] != $0.value }.map { "\($0.key): expected \($0.value), got \(got[$0.key].map(String.init) ?? "none")" }.sorted().prefix(10)); \(saved)")
        // Nothing more arrives later (no double counting after the fact).
        try await Task.sleep(for: .seconds(1))
        #expect(try await c.redisTotals() == expected)
        a.signal(SIGTERM)
        let aResult = try await a.wait(timeout: .seconds(60))
        #expect(aResult.status == 0, "\(aResult)")
        #expect(aResult.stderr.contains("exactly_once on librdkafka's mock cluster"), "the mode is said once at start")
    }

    @Test("exactly_once on a dev-broker: SIGKILL mid-run, restart with --stop-at-end finishes and Redis is exact")
    func exactlyOnceKillRestart() async throws {
        let c = try await Cluster(topics: ["orders:4"])
        defer { c.stop() }
        let total = 20_000
        let producer = try c.producer()
        for i in 0..<total { try await producer.send(Self.order(i).record) }
        try await producer.flush()
        await producer.close()

        let first = try c.instance("x", ["--stop-at-end"])
        #expect(try await Self.eventually(.seconds(60)) { Self.firstCommits(first) >= 2 || !first.isRunning }, "\(first.outputSoFar.stderr)")
        first.signal(SIGKILL)
        _ = try? await first.wait(timeout: .seconds(10))
        let partial = try await c.redisTotals()
        #expect(partial != Self.totals(upTo: total), "the kill left the work unfinished")

        let second = try c.instance("x", ["--stop-at-end"])
        let result = try await second.wait(timeout: .seconds(120))
        #expect(result.status == 0, "\(result)")
        #expect(try await c.redisTotals() == Self.totals(upTo: total))
    }

    @Test("num.standby.replicas 1: the survivor takes a SIGKILLed instance's tasks over from its warm copies (only the tail restored); Redis exact")
    func standbyFailover() async throws {
        let c = try await Cluster(topics: ["orders:4"])
        defer { c.stop() }
        let total = 12_000
        let producer = try c.producer()
        let writer = Self.pacedWriter(producer, total: total)
        let a = try c.instance("a", ["--standby-replicas", "1"])
        defer { a.terminate() }
        #expect(try await Self.eventually(.seconds(60)) { Self.firstCommits(a) > 0 }, "instance a commits: \(a.outputSoFar.stderr)")
        let b = try c.instance("b", ["--standby-replicas", "1"])
        defer { b.terminate() }
        let settled = try await Self.settled([a, b])
        #expect(settled, "the group settles with tasks on both:\na: \(a.outputSoFar.stderr)\nb: \(b.outputSoFar.stderr)")
        // a's stateful tasks (after the rekey) and the warm copies b keeps of their store.
        let aStateful = Self.ownedTasks(a).filter { $0.hasPrefix("totals.1-") }
        let partitions = aStateful.map { String($0.dropFirst("totals.1-".count)) }
        #expect(!partitions.isEmpty, "a runs stateful tasks: \(a.outputSoFar.stderr)")
        let warm = try await Self.eventually(.seconds(60)) {
            partitions.allSatisfy { b.outputSoFar.stderr.contains("standby: warm copy of totals-by-user[\($0)] is up to date") }
        }
        #expect(warm, "b keeps warm copies of a's partitions \(partitions): \(b.outputSoFar.stderr)")

        let killedAt = ContinuousClock.now
        a.signal(SIGKILL)
        let moved = try await Self.eventually(.seconds(60)) { Self.firstCommits(b, of: aStateful) > 0 }
        print("cluster-member test: SIGKILL with a standby -> first commit of one of a's tasks on b: \(String(format: "%.2f", (ContinuousClock.now - killedAt).seconds)) s")
        #expect(moved, "a's tasks move to b: \(b.outputSoFar.stderr)")
        for p in partitions {
            #expect(b.outputSoFar.stderr.contains("standby: handing the warm copy of totals-by-user[\(p)] to its task"), "\(b.outputSoFar.stderr)")
            #expect(b.outputSoFar.stderr.contains("restored totals-by-user[\(p)]:") && b.outputSoFar.stderr.contains("(warm copy "),
                    "the task restored from the warm copy: \(b.outputSoFar.stderr)")
        }

        try await writer.value
        let expected = Self.totals(upTo: total)
        let exact = try await Self.eventually(.seconds(90)) { try await c.redisTotals() == expected }
        let got = try await c.redisTotals()
        let saved = exact ? "" : Self.saveLogs(["a": a, "b": b], bootstrap: c.bootstrap)
        #expect(exact, "Redis totals differ: \(expected.filter { got[$0.key] != $0.value }.map { "\($0.key): expected \($0.value), got \(got[$0.key].map(String.init) ?? "none")" }.sorted().prefix(10)); \(saved)")
        b.signal(SIGTERM)
        let bResult = try await b.wait(timeout: .seconds(60))
        #expect(bResult.status == 0, "\(bResult)")
    }

    @Test("stream-engine topics prints every topic with its partition count and status; --create creates the missing ones on a dev-broker")
    func topicsCommand() async throws {
        let c = try await Cluster(topics: ["orders:3"])
        defer { c.stop() }
        let listed = try await cli(["topics", "--config", c.config, "--bootstrap-servers", c.bootstrap])
        #expect(listed.status == 0, "\(listed)")
        let names = ["orders", "scale-app-totals-repartition", "scale-app-totals-by-user-changelog", "scale-app-totals-dedupe-changelog", "scale-app-dlq"]
        for name in names { #expect(listed.stdout.contains(name + "\t"), "\(name) listed: \(listed.stdout)") }
        #expect(listed.stdout.contains("scale-app-totals-dedupe-changelog\tdedupe-changelog\t3\tmissing"), "\(listed.stdout)")
        let created = try await cli(["topics", "--config", c.config, "--bootstrap-servers", c.bootstrap, "--create"])
        #expect(created.status == 0, "\(created)")
        for name in names { #expect(created.stdout.contains(name + "\t"), "\(created.stdout)") }
        #expect(!created.stdout.contains("missing"), "\(created.stdout)")
        #expect(created.stdout.contains("scale-app-totals-by-user-changelog\tchangelog\t3\texists"), "\(created.stdout)")
    }

    @Test("An engine-owned topic that exists with the wrong partition count: run fails naming the topic, both counts and the way out")
    func wrongPartitionCount() async throws {
        let c = try await Cluster(topics: ["orders:4", "scale-app-totals-by-user-changelog:2"])
        defer { c.stop() }
        let result = try await c.instance("w").wait(timeout: .seconds(60))
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("scale-app-totals-by-user-changelog"), "\(result.stderr)")
        #expect(result.stderr.contains("exists with 2 partitions, expected 4"), "\(result.stderr)")
        #expect(result.stderr.contains("delete the topic"), "\(result.stderr)")
    }
}
