import CLISupport
import Foundation
import KafkaClient
import Logging
import StreamEngine
import ThreadExecutors

/// One restore of every partition of the store (as the runtime restores a
/// starting instance's tasks: one partition after the other).
struct RestoreSample: Sendable {
    var seconds: Double
    var keys: Int
    var snapshotKeys: Int
    var changelogRecords: Int
    /// Changelog records applied per second.
    var changelogRate: Double { Double(changelogRecords) / seconds }
    /// Keys ready per second.
    var keyRate: Double { Double(keys) / seconds }
}

/// An engine process that built or restored a store: wall time and peak RSS.
struct EngineProcessRun: Sendable {
    var what: String
    var keys: Int
    var inputEvents: Int
    var seconds: Double
    var maxRSSKiB: Int
}

/// Restore and memory results.
struct RestoreResults: Sendable {
    var keys: Int
    var tailEvents: Int
    var changelogRecords: Int
    var tailChangelogRecords: Int
    var fromSnapshot: [RestoreSample] = []
    var fromChangelog: [RestoreSample] = []
    /// From the changelog alone, the 4 partitions restored at once.
    var fromChangelogConcurrently: [RestoreSample] = []
    var processes: [EngineProcessRun] = []
    var checks: [String] = []

    /// Peak RSS per million keys: the difference between the build with `keys`
    /// keys and the build over as many events with few keys, scaled.
    var rssPerMillionKeysKiB: Double? {
        guard let big = processes.first(where: { $0.what == "build" }), let base = processes.first(where: { $0.what == "baseline" }),
              big.keys > base.keys, big.maxRSSKiB > base.maxRSSKiB else { return nil }
        return Double(big.maxRSSKiB - base.maxRSSKiB) / Double(big.keys - base.keys) * 1_000_000
    }
}

/// Builds a store of `keys` keys with an engine process of its own (the
/// `stream-engine run --stop-at-end` of this executable, pinned when asked),
/// adds a changelog tail with a second run, and restores it repeatedly with
/// `StoreRestorer`'s async `restore` (as a task does) — from snapshot + tail, and from the
/// changelog alone, the partitions one after the other and all at once.
/// The processes' peak RSS gives the memory per million keys.
struct RestoreBench {
    let cluster: EmbeddedKafkaCluster
    let workDir: String
    let keys: Int
    let runs: Int
    let producerConfig: [String: String]
    let clientCPU: Int?
    let logger: Logger
    let progress: @Sendable (String) -> Void

    func run() async throws -> RestoreResults {
        let tag = String(UUID().uuidString.prefix(8)).lowercased()
        let topic = "bench-restore-\(tag)"
        let appId = "bench-restore-\(tag)"
        let stateDir = "\(workDir)/restore-state"
        let tail = Swift.max(1, keys / 10)
        try cluster.createTopic(topic, partitions: 4, replicationFactor: 3)
        for t in BenchPipeline.engineTopics(appId: appId) { try cluster.createTopic(t, partitions: 4, replicationFactor: 3) }
        let workload = PurchaseWorkload(userPrefix: "r-", users: keys, seed: 7)
        let producer = try KafkaProducer(config: producerConfig, logger: logger)
        progress("restore: producing \(BenchFormat.int(keys)) events, one per key")
        var expected = try await workload.produce(count: keys, to: topic, distinctUsers: true, producer: producer)
        var results = RestoreResults(keys: keys, tailEvents: tail, changelogRecords: 0, tailChangelogRecords: 0)

        progress("restore: building the store of \(BenchFormat.int(keys)) keys in an engine process")
        let build = try await engineProcess(appId: appId, topic: topic, stateDir: stateDir, name: "build")
        results.processes.append(EngineProcessRun(what: "build", keys: keys, inputEvents: keys, seconds: build.seconds, maxRSSKiB: build.rss))
        let changelog = "\(appId)-\(BenchPipeline.store)-changelog"
        results.changelogRecords = try await totalEnd(changelog)

        // Keep the first snapshots, then add a tail: updates of existing keys, processed by a second run.
        let snapshots = "\(workDir)/restore-snapshots"
        try? FileManager.default.removeItem(atPath: snapshots)
        try FileManager.default.copyItem(atPath: stateDir, toPath: snapshots)
        progress("restore: a tail of \(BenchFormat.int(tail)) updates, processed by a second engine process (restores from its snapshot)")
        expected.add(try await workload.produce(count: tail, to: topic, firstIndex: keys, producer: producer))
        await producer.close()
        let second = try await engineProcess(appId: appId, topic: topic, stateDir: stateDir, name: "tail")
        results.processes.append(EngineProcessRun(what: "restart: restore from snapshot, then the tail", keys: keys, inputEvents: tail, seconds: second.seconds, maxRSSKiB: second.rss))
        let end = try await totalEnd(changelog)
        results.tailChangelogRecords = end - results.changelogRecords
        results.checks.append(try await verifyTopicCount(cluster, topic: changelog, expected: end))

        let committed = try await committedOffsets(group: appId, topic: topic)
        let expectedOrders = expected.reduce(Int64(0)) { $0 + $1.orders }
        for run in 1...runs {
            progress("restore run \(run)/\(runs): from snapshot + tail")
            let a = try await restoreAll(changelog: changelog, snapshotDir: "\(snapshots)/\(appId)/\(BenchPipeline.store)", input: topic, committed: committed, expectedOrders: expectedOrders)
            results.fromSnapshot.append(a)
            progress("  \(BenchFormat.seconds(a.seconds)): \(BenchFormat.int(a.snapshotKeys)) keys from snapshots + \(BenchFormat.int(a.changelogRecords)) changelog records")
            progress("restore run \(run)/\(runs): from the changelog alone (snapshots removed)")
            let b = try await restoreAll(changelog: changelog, snapshotDir: nil, input: topic, committed: committed, expectedOrders: expectedOrders)
            results.fromChangelog.append(b)
            progress("  \(BenchFormat.seconds(b.seconds)): \(BenchFormat.int(b.changelogRecords)) changelog records = \(BenchFormat.rate(b.changelogRate)) records/s")
            progress("restore run \(run)/\(runs): from the changelog alone, the 4 partitions at once")
            let c = try await restoreAll(changelog: changelog, snapshotDir: nil, input: topic, committed: committed, expectedOrders: expectedOrders, concurrently: true)
            results.fromChangelogConcurrently.append(c)
            progress("  \(BenchFormat.seconds(c.seconds)): \(BenchFormat.int(c.changelogRecords)) changelog records = \(BenchFormat.rate(c.changelogRate)) records/s")
            guard a.keys == keys, b.keys == keys, c.keys == keys, b.changelogRecords == end, c.changelogRecords == end else {
                throw CLIFailure("restore: \(a.keys) / \(b.keys) / \(c.keys) keys restored (expected \(keys)), \(b.changelogRecords) / \(c.changelogRecords) of \(end) changelog records applied")
            }
        }
        results.checks.append("restore: every restore held \(BenchFormat.int(keys)) keys whose orders add up to \(BenchFormat.int(Int(expectedOrders))) (events produced); from the changelog alone all \(BenchFormat.int(end)) records were applied")

        // Memory baseline: the same number of events over 1,000 keys.
        let baseTag = "\(tag)-base"
        let baseTopic = "bench-restore-\(baseTag)"
        let baseApp = "bench-restore-\(baseTag)"
        try cluster.createTopic(baseTopic, partitions: 4, replicationFactor: 3)
        for t in BenchPipeline.engineTopics(appId: baseApp) { try cluster.createTopic(t, partitions: 4, replicationFactor: 3) }
        let baseKeys = Swift.min(1000, keys)
        let baseProducer = try KafkaProducer(config: producerConfig, logger: logger)
        progress("memory baseline: \(BenchFormat.int(keys)) events over \(baseKeys) keys in an engine process")
        _ = try await PurchaseWorkload(userPrefix: "m-", users: baseKeys, seed: 11).produce(count: keys, to: baseTopic, producer: baseProducer)
        await baseProducer.close()
        let base = try await engineProcess(appId: baseApp, topic: baseTopic, stateDir: "\(workDir)/restore-base-state", name: "baseline")
        results.processes.append(EngineProcessRun(what: "baseline", keys: baseKeys, inputEvents: keys, seconds: base.seconds, maxRSSKiB: base.rss))
        return results
    }

    /// `stream-engine run --stop-at-end` (the executable next to this one) on the cluster, as a child process; its peak RSS in KiB.
    private func engineProcess(appId: String, topic: String, stateDir: String, name: String) async throws -> (seconds: Double, rss: Int) {
        let configPath = "\(workDir)/\(appId).yaml"
        try BenchPipeline.yaml(appId: appId, topic: topic, guarantee: "at_least_once", commitIntervalMs: 1000, redisPrefix: nil)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        // As the runtime does for its embedded cluster: the mock completes a rebalance only after a
        // departed member's session timeout, so keep it short for the second process on the same group.
        let argv = try engineRunCommand(
            config: configPath, cluster: cluster, stateDir: stateDir, cpu: clientCPU,
            extra: ["--stop-at-end", "--log-level", "warning", "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500"])
        let rssFile = "\(workDir)/\(name).rss"
        let outcome = try await runChild(try peakRSSCommand(argv, rssFile: rssFile), stdoutPath: "\(workDir)/\(name).out", stderrPath: "\(workDir)/\(name).err")
        guard outcome.succeeded else {
            throw CLIFailure("restore: the engine process (\(name)) exited with \(outcome.status):\n\(outcome.stderrTail)")
        }
        guard let rss = readPeakRSS(rssFile) else { throw CLIFailure("restore: no peak RSS from /usr/bin/time for the engine process (\(name))") }
        progress("  \(name): \(outcome.stdout.split(separator: "\n").last ?? "") — peak RSS \(BenchFormat.mib(rss))")
        return (outcome.seconds, rss)
    }

    private func totalEnd(_ topic: String) async throws -> Int {
        var total: Int64 = 0
        for p in 0..<Int32(4) { total += try await cluster.watermarks(TopicPartition(topic, p)).high }
        return Int(total)
    }

    /// The group's committed input offsets per partition, read by a consumer that does not join the group.
    private func committedOffsets(group: String, topic: String) async throws -> [Int32: Int64] {
        var config = cluster.clientConfig
        config["group.id"] = group
        let consumer = try KafkaConsumer(config: config, logger: logger)
        let offsets = try await runOnDedicatedThread("bench-committed") { () throws -> [TopicPartition: Int64] in
            defer { consumer.closeBlocking() }
            return try consumer.committed((0..<Int32(4)).map { TopicPartition(topic, $0) })
        }
        var out: [Int32: Int64] = [:]
        for (tp, o) in offsets { out[tp.partition] = o }
        return out
    }

    /// Restores the 4 partitions with `StoreRestorer`'s async `restore`, as a task does: one
    /// after the other, each as a task restoring alone does (a long changelog range replayed by
    /// up to 4 consumers at once; the seconds are the sum of each restore's own, consumers'
    /// creation included), or `concurrently`, as a starting instance restores its 4 tasks
    /// (`TaskManager`: at once, `StoreRestorer.instanceConsumers` consumers in all, so one a
    /// partition; the seconds are wall time from before the first consumer is made to after
    /// the last is closed). Only records of completed commits count (the
    /// group's committed input offsets); checks that the restored `orders` add up to the
    /// events produced.
    private func restoreAll(changelog: String, snapshotDir: String?, input: String, committed: [Int32: Int64], expectedOrders: Int64, concurrently: Bool = false) async throws -> RestoreSample {
        let restorer = StoreRestorer(kafkaConfig: cluster.clientConfig, logger: logger)
        func one(_ p: Int32) -> (snapshotPath: String?, committed: [String: Int64]) {
            (snapshotDir.map { "\($0)/\(p).snapshot" }, committed[p].map { [input: $0] } ?? [:])
        }
        var results: [(entries: [String: StoreEntry], report: RestoreReport)] = []
        var sample = RestoreSample(seconds: 0, keys: 0, snapshotKeys: 0, changelogRecords: 0)
        if concurrently {
            let restorer = {
                var r = restorer
                r.maxRanges = max(1, StoreRestorer.instanceConsumers / 4)
                return r
            }()
            let started = ContinuousClock.now
            results = try await withThrowingTaskGroup(of: (entries: [String: StoreEntry], report: RestoreReport).self) { group in
                for p in 0..<Int32(4) {
                    let (snapshotPath, committedInput) = one(p)
                    group.addTask {
                        try await restorer.restore(store: BenchPipeline.store, partition: p, changelogTopic: changelog, snapshotPath: snapshotPath, committed: committedInput)
                    }
                }
                var all: [(entries: [String: StoreEntry], report: RestoreReport)] = []
                for try await r in group { all.append(r) }
                return all
            }
            sample.seconds = (ContinuousClock.now - started).seconds
        } else {
            for p in 0..<Int32(4) {
                let (snapshotPath, committedInput) = one(p)
                let r = try await restorer.restore(store: BenchPipeline.store, partition: p, changelogTopic: changelog, snapshotPath: snapshotPath, committed: committedInput)
                sample.seconds += r.report.seconds
                results.append(r)
            }
        }
        var orders: Int64 = 0
        for (entries, report) in results {
            sample.keys += report.keys
            sample.snapshotKeys += report.snapshotKeys
            sample.changelogRecords += report.changelogRecords
            for e in entries.values { orders += e.value["orders"]?.intValue ?? 0 }
        }
        guard orders == expectedOrders else {
            throw CLIFailure("restore: the restored store counts \(orders) orders, but \(expectedOrders) events were produced")
        }
        return sample
    }
}
