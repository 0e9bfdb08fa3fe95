import ChildProcess
import CLISupport
import Foundation
import KafkaClient
import Logging
import StreamEngine

/// One failover: SIGKILL of the instance owning half the store, until the
/// survivor's first commit of one of the moved tasks.
struct FailoverSample: Sendable {
    var standby: Bool
    /// `session.timeout.ms` of both engine processes.
    var sessionTimeoutMs: Int
    /// Keys of the store in the moved partitions.
    var movedKeys: Int
    /// SIGKILL → the survivor's log shows the new assignment (group detection + rebalance).
    var killToAssigned: Double
    /// SIGKILL → the survivor's first commit of a moved task.
    var killToFirstCommit: Double
    /// Records the survivor restored from the changelog for the moved partitions.
    var restoredRecords: Int
}

/// Failover results, with and without standby replicas.
struct FailoverResults: Sendable {
    var keys: Int
    var sessionTimeoutMs: Int
    /// A shorter session timeout also measured (with a standby), if any.
    var shortSessionTimeoutMs: Int?
    var samples: [FailoverSample] = []
    var checks: [String] = []
}

/// Two `stream-engine run` processes (instance ids a and b) in one group on the
/// bench's mock cluster, on a store of `keys` keys (`purchase_stats` per user,
/// one event per key, 4 partitions): a builds it alone, b joins and takes two
/// partitions — with `--standby-replicas 1` b also keeps warm copies of a's two —
/// then a is killed with SIGKILL while a trickle of events keeps every partition
/// busy, and the time until b's first commit of a moved task is measured from
/// b's log (read every 10 ms). Run with and without standbys on the same data layout.
struct FailoverBench {
    let cluster: EmbeddedKafkaCluster
    let workDir: String
    let keys: Int
    let runs: Int
    let producerConfig: [String: String]
    let clientCPU: Int?
    let logger: Logger
    let progress: @Sendable (String) -> Void
    /// `session.timeout.ms` of the engine processes (3,000: the engine's default on a mock cluster).
    var sessionTimeoutMs = 3000
    /// Also measured with a standby at this shorter `session.timeout.ms`, if set.
    var shortSessionTimeoutMs: Int?

    func run() async throws -> FailoverResults {
        var results = FailoverResults(keys: keys, sessionTimeoutMs: sessionTimeoutMs, shortSessionTimeoutMs: shortSessionTimeoutMs)
        var passes = [(true, sessionTimeoutMs), (false, sessionTimeoutMs)]
        if let short = shortSessionTimeoutMs { passes.append((true, short)) }
        for run in 1...runs {
            for (standby, session) in passes {
                progress("failover run \(run)/\(runs), \(standby ? "with a standby" : "without standbys"), session.timeout.ms \(session): \(BenchFormat.int(keys)) keys")
                let s = try await once(standby: standby, index: run, sessionTimeoutMs: session)
                progress("  SIGKILL → assignment on the survivor \(BenchFormat.seconds(s.killToAssigned)), → first commit of a moved task \(BenchFormat.seconds(s.killToFirstCommit)); \(BenchFormat.int(s.restoredRecords)) changelog records restored, \(BenchFormat.int(s.movedKeys)) keys moved")
                results.samples.append(s)
            }
        }
        results.checks.append("failover: in every run the survivor restored the moved partitions to \(BenchFormat.int(keys / 2))±\(BenchFormat.int(keys / 50)) keys (their share of \(BenchFormat.int(keys)))")
        return results
    }

    private func once(standby: Bool, index: Int, sessionTimeoutMs: Int) async throws -> FailoverSample {
        let tag = "\(standby ? "s" : "n")\(index)-\(sessionTimeoutMs)-\(UUID().uuidString.prefix(6).lowercased())"
        let topic = "bench-failover-\(tag)"
        let appId = "bench-failover-\(tag)"
        try cluster.createTopic(topic, partitions: 4, replicationFactor: 3)
        for t in BenchPipeline.engineTopics(appId: appId) { try cluster.createTopic(t, partitions: 4, replicationFactor: 3) }
        let producer = try KafkaProducer(config: producerConfig, logger: logger)
        defer { Task { await producer.close() } }
        let workload = PurchaseWorkload(userPrefix: "f-", users: keys, seed: 5)
        _ = try await workload.produce(count: keys, to: topic, distinctUsers: true, producer: producer)

        let configPath = "\(workDir)/\(appId).yaml"
        try BenchPipeline.yaml(appId: appId, topic: topic, guarantee: "at_least_once", commitIntervalMs: 100, redisPrefix: nil)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let a = try EngineChild(name: "\(tag)-a", workDir: workDir, argv: engineArgs(config: configPath, instance: "a", standby: standby, sessionTimeoutMs: sessionTimeoutMs))
        defer { a.kill() }
        // a builds the whole store.
        try await waitFor("instance a to process all \(BenchFormat.int(keys)) events", timeout: .seconds(600), child: a) {
            try await committedTotal(group: appId, topic: topic) >= Int64(keys)
        }
        let b = try EngineChild(name: "\(tag)-b", workDir: workDir, argv: engineArgs(config: configPath, instance: "b", standby: standby, sessionTimeoutMs: sessionTimeoutMs))
        defer { b.kill() }
        // The trickle: a few events per partition every 100 ms, so that moved tasks have work to commit.
        let trickle = Task {
            var i = keys
            while !Task.isCancelled {
                for _ in 0..<8 {
                    _ = try await workload.produce(count: 1, to: topic, firstIndex: i, producer: producer)
                    i += 1
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { trickle.cancel() }
        try await waitFor("b to take partitions and the group to settle", timeout: .seconds(300), child: b) {
            let before = (a.rebalances, b.rebalances)
            try await Task.sleep(for: .seconds(3))
            return (a.rebalances, b.rebalances) == before && !a.ownedTasks.isEmpty && !b.ownedTasks.isEmpty
                && b.log.contains("first commit since it started here")
        }
        let moved = a.ownedTasks
        let partitions = moved.map { String($0.split(separator: "-").last!) }
        if standby {
            try await waitFor("b's warm copies of \(partitions) to be up to date", timeout: .seconds(300), child: b) {
                partitions.allSatisfy { b.log.contains("standby: warm copy of \(BenchPipeline.store)[\($0)] is up to date") }
            }
        }
        let assignedBefore = b.log.components(separatedBy: "rebalance: assigned").count
        let killedAt = ContinuousClock.now
        a.kill()
        var assignedAt: ContinuousClock.Instant?
        var committedAt: ContinuousClock.Instant?
        let deadline = killedAt + .seconds(120)
        while committedAt == nil, ContinuousClock.now < deadline {
            let log = b.log
            if assignedAt == nil, log.components(separatedBy: "rebalance: assigned").count > assignedBefore { assignedAt = .now }
            if moved.contains(where: { log.contains("task \($0): first commit since it started here") }) { committedAt = .now }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let committedAt else { throw CLIFailure("failover: no first commit of a's tasks \(moved.sorted()) on b within 120 s:\n\(b.tail)") }
        // What b restored for the moved partitions, from the last "restored user-totals[p]: N keys (… changelog R, …" line of each.
        var restored = 0
        var movedKeys = 0
        let lines = b.log.split(separator: "\n")
        for p in partitions {
            guard let line = lines.last(where: { $0.contains("restored \(BenchPipeline.store)[\(p)]:") }) else { continue }
            func number(after marker: String) -> Int {
                guard let r = line.range(of: marker) else { return 0 }
                return Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0
            }
            movedKeys += number(after: "]: ")
            restored += number(after: ", changelog ")
        }
        guard abs(movedKeys - keys / 2) <= keys / 50 else {
            throw CLIFailure("failover: the survivor holds \(movedKeys) keys of the moved partitions, expected about \(keys / 2):\n\(b.tail)")
        }
        if standby, !partitions.allSatisfy({ b.log.contains("standby: handing the warm copy of \(BenchPipeline.store)[\($0)]") }) {
            throw CLIFailure("failover: the moved tasks did not start from the warm copies:\n\(b.tail)")
        }
        trickle.cancel()
        b.terminate()
        return FailoverSample(
            standby: standby, sessionTimeoutMs: sessionTimeoutMs, movedKeys: movedKeys, killToAssigned: ((assignedAt ?? committedAt) - killedAt).seconds,
            killToFirstCommit: (committedAt - killedAt).seconds, restoredRecords: restored)
    }

    private func engineArgs(config: String, instance: String, standby: Bool, sessionTimeoutMs: Int) throws -> [String] {
        try engineRunCommand(
            config: config, cluster: cluster, stateDir: "\(workDir)/failover-state-\(UUID().uuidString.prefix(6))", cpu: clientCPU,
            extra: ["--instance-id", instance, "--standby-replicas", standby ? "1" : "0", "--log-level", "info",
                    "--kafka", "session.timeout.ms=\(sessionTimeoutMs)", "--kafka", "heartbeat.interval.ms=\(max(50, sessionTimeoutMs / 12))"])
    }

    private func committedTotal(group: String, topic: String) async throws -> Int64 {
        var config = cluster.clientConfig
        config["group.id"] = group
        let consumer = try KafkaConsumer(config: config, logger: logger)
        let offsets = try await consumer.committed((0..<Int32(4)).map { TopicPartition(topic, $0) })
        await consumer.close()
        return offsets.values.reduce(0) { $0 + max(0, $1) }
    }

    private func waitFor(_ what: String, timeout: Duration, child: EngineChild, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastReport = ContinuousClock.now
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            guard child.isRunning else { throw CLIFailure("failover: \(child.name) exited while waiting for \(what):\n\(child.tail)") }
            if ContinuousClock.now - lastReport > .seconds(15) {
                lastReport = .now
                progress("  waiting for \(what)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw CLIFailure("failover: timed out after \(timeout) waiting for \(what):\n\(child.tail)")
    }
}

/// A `stream-engine run` child process whose log (stderr) is read as it grows.
final class EngineChild: Sendable {
    let name: String
    let pid: pid_t
    let logPath: String

    init(name: String, workDir: String, argv: [String]) throws {
        self.name = name
        logPath = "\(workDir)/\(name).log"
        pid = try ChildProcess.spawn(argv, standardOutput: "\(workDir)/\(name).out", standardError: .file(logPath))
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var tail: String { log.split(separator: "\n").suffix(12).joined(separator: "\n") }
    var isRunning: Bool { !ChildProcess.hasExited(pid) }
    var rebalances: Int { log.components(separatedBy: "] rebalance: ").count - 1 }

    /// The tasks it runs now, from its log ("task X started" / "closed" / "dropped").
    var ownedTasks: Set<String> {
        var owned: Set<String> = []
        for line in log.split(separator: "\n") {
            guard let r = line.range(of: "] task ") else { continue }
            let rest = line[r.upperBound...]
            let id = String(rest.prefix { $0 != " " && $0 != ":" })
            if rest.contains(" started") { owned.insert(id) }
            if rest.contains(" closed") || rest.contains(" dropped") { owned.remove(id) }
        }
        return owned
    }

    func kill() {
        guard isRunning else { return }
        Glibc.kill(pid, SIGKILL)
        _ = try? ChildProcess.waitForExit(pid)
    }

    func terminate() { ChildProcess.terminate(pid) }
}

extension FailoverResults {
    /// The `## Failover` section of BENCHMARKS.md.
    var markdown: String {
        func row(_ standby: Bool, _ session: Int) -> String {
            let s = samples.filter { $0.standby == standby && $0.sessionTimeoutMs == session }
            guard !s.isEmpty else { return "" }
            let first = Spread(s.map(\.killToFirstCommit)), assigned = Spread(s.map(\.killToAssigned))
            let takeover = Spread(s.map { $0.killToFirstCommit - $0.killToAssigned })
            return "| \(standby ? "`--standby-replicas 1`" : "no standbys"), session \(BenchFormat.int(session)) ms | \(BenchFormat.int(s[0].movedKeys)) | \(BenchFormat.seconds(assigned.min)) / \(BenchFormat.seconds(assigned.median)) / \(BenchFormat.seconds(assigned.max)) | \(BenchFormat.seconds(takeover.min)) / \(BenchFormat.seconds(takeover.median)) / \(BenchFormat.seconds(takeover.max)) | **\(BenchFormat.seconds(first.min)) / \(BenchFormat.seconds(first.median)) / \(BenchFormat.seconds(first.max))** | \(BenchFormat.int(Int(Spread(s.map { Double($0.restoredRecords) }).median.rounded()))) |\n"
        }
        return """
            ## Failover (standby replicas)

            Two `stream-engine run` processes (instance ids a and b) in one consumer group on the benchmark's mock cluster, \
            on a `purchase_stats` store of \(BenchFormat.int(keys)) keys (one event per user, 4 partitions, \
            built by a alone; b then joins and takes two partitions). A trickle of 80 events/s keeps every partition busy. \
            a is killed with SIGKILL; the clock stops at b's first commit of one of a's tasks, read from b's log every 10 ms. \
            With `--standby-replicas 1` b keeps warm copies of a's partitions and was up to date before the kill. \
            Session timeout \(BenchFormat.int(sessionTimeoutMs)) ms (3,000 is the engine's default on a mock cluster; `--failover-session-timeout-ms`), \
            heartbeats every \(BenchFormat.int(max(50, sessionTimeoutMs / 12))) ms: the embedded cluster's coordinator (librdkafka's mock with the engine's timer on its thread, \
            `kafka_mock_groups.h`) removes a member when its session has passed (checked every 5 ms) and ends the rebalance \
            as soon as the survivor has rejoined (on its next heartbeat) — a floor of about the session timeout, \
            \(BenchFormat.seconds(Double(sessionTimeoutMs) / 1000)), before any member can take the partitions (the killed member's last \
            heartbeat came up to one interval before the kill, the survivor rejoins up to one interval after the expiry). \
            (As librdkafka ships it, the mock checks sessions once a second and waits `session.timeout.ms − 1 s` for the others \
            to rejoin: about \(BenchFormat.seconds(Double(sessionTimeoutMs * 2 - 1000) / 1000)) at this session timeout.) \
            On a real cluster the floor is the broker's `group.min.session.timeout.ms` (6 s by default) plus the rebalance. \
            The takeover column is what the engine controls.\(shortSessionTimeoutMs.map { short in """
             The last row: the same with a standby at `session.timeout.ms` \(BenchFormat.int(short)) (heartbeats every \(BenchFormat.int(max(50, short / 12))) ms), \
            a setting a user may choose on the mock (`--kafka session.timeout.ms=\(short)`); a real broker refuses sessions below its \
            `group.min.session.timeout.ms` (6 s by default) unless it is lowered.
            """ } ?? "")

            | run | keys moved | SIGKILL → assignment (group) min / median / max | assignment → first commit (takeover) | SIGKILL → first commit | changelog records restored (median) |
            |---|---|---|---|---|---|
            \(row(true, sessionTimeoutMs))\(row(false, sessionTimeoutMs))\(shortSessionTimeoutMs.map { row(true, $0) } ?? "")
            """
    }
}
