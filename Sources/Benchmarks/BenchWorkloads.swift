import CLISupport
import Foundation
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import Synchronization
import ThreadExecutors

// The measured workloads of `stream-engine-bench`: raw consume, the engine
// end to end, and reading results back from Redis.

// MARK: - Raw consume

/// One raw consume of a whole topic: records, bytes and seconds.
struct RawConsumeRun: Sendable {
    var records: Int
    var bytes: Int
    /// First record to last.
    var seconds: Double
    /// `assign` to the first record.
    var startSeconds: Double
    var rate: Double { Double(records) / seconds }
}

/// Reads every record of `topic` (assigned from the beginning, no group
/// rebalance, nothing processed) through the project's `KafkaConsumer`:
/// `poll` one message at a time, or `pollBatch` (rd_kafka_consume_batch_queue).
/// Timed from the first record to the last (connection set-up excluded: the
/// rate is the limit the broker and the bindings allow), on a thread of its own.
func rawConsume(cluster: EmbeddedKafkaCluster, topic: String, expected: Int, batch: Bool, batchSize: Int, logger: Logger) async throws -> RawConsumeRun {
    guard let n = try await cluster.partitionCount(topic: topic) else { throw CLIFailure("topic \(topic) does not exist") }
    var config = cluster.clientConfig
    config["group.id"] = "bench-raw-\(UUID().uuidString)"
    // One shared queue without the count bound: else the reader stops fetching up to a second
    // at a time whenever 100,000 records wait (see `sharedQueuePrefetchDefaults`).
    config.merge(StreamRuntime.sharedQueuePrefetchDefaults) { current, _ in current }
    // Nor the byte bound (librdkafka's 64 MiB): N records of ~150 bytes exceed it whenever the
    // fetches run ahead of the reader, and librdkafka 2.0.2 then looks at the paused partitions
    // again only at its broker thread's next wake-up (up to 1 s; the engine's group member has
    // `FetchWaker` for this). One pass in three ran at 158k–243k records/s instead of ~1M in the
    // run at 67cacb6: a baseline that stalls would flatter every ratio to it.
    config["queued.max.messages.kbytes"] = config["queued.max.messages.kbytes"] ?? "2097151"
    let consumer = try KafkaConsumer(config: config, logger: logger)
    return try await runOnDedicatedThread("bench-raw-consume") {
        defer { consumer.closeBlocking() }
        let started = ContinuousClock.now
        try consumer.assign((0..<Int32(n)).map { TopicPartitionOffset(topic, $0, KafkaOffset.beginning) })
        var records = 0
        var bytes = 0
        var firstRecord: ContinuousClock.Instant?
        var lastRecord = started
        let deadline = started + .seconds(600)
        while records < expected {
            if ContinuousClock.now > deadline { throw CLIFailure("raw consume of \(topic): \(records) of \(expected) records after 600 s") }
            if batch {
                let b = try consumer.pollBatch(maxMessages: batchSize, timeoutMs: 100)
                if b.messages.isEmpty { continue }
                if firstRecord == nil { firstRecord = ContinuousClock.now }
                for m in b.messages { bytes += (m.value?.count ?? 0) + (m.key?.count ?? 0) }
                records += b.messages.count
            } else {
                guard let m = try consumer.poll(timeoutMs: 100) else { continue }
                if firstRecord == nil { firstRecord = ContinuousClock.now }
                bytes += (m.value?.count ?? 0) + (m.key?.count ?? 0)
                records += 1
            }
            lastRecord = ContinuousClock.now
        }
        if records != expected { throw CLIFailure("raw consume of \(topic): \(records) records, expected \(expected)") }
        return RawConsumeRun(records: records, bytes: bytes, seconds: (lastRecord - (firstRecord ?? started)).seconds,
                             startSeconds: ((firstRecord ?? started) - started).seconds)
    }
}

// MARK: - The batch layout, as a consumer sees it

/// How many records each fetch of one partition brought, in order: librdkafka's mock answers a
/// Fetch with one producer batch per partition, so these are the producer's batch sizes. A
/// consumer assigned to the partition alone, with `queued.min.messages=1` (it fetches again
/// only once its queue is empty), takes each fetch's records from the queue without waiting
/// (`pollBatch` with a 0 ms timeout, on a thread of its own): a fetch's records enter the queue
/// together, so each non-empty poll holds one fetch. librdkafka 2.0.2 fetches again only at its
/// broker thread's next wake-up (about a second) once the queue has run dry, so this reads the
/// first `maxFetches` fetches of the partition; `complete` says whether that was all of it.
func recordsPerFetch(cluster: EmbeddedKafkaCluster, topic: String, partition: Int32, maxFetches: Int = 10, logger: Logger) async throws -> (sizes: [Int], complete: Bool) {
    let end = try await cluster.watermarks(TopicPartition(topic, partition)).high
    var config = cluster.clientConfig
    config["group.id"] = "bench-fetches-\(UUID().uuidString)"
    config["queued.min.messages"] = "1"
    let consumer = try KafkaConsumer(config: config, logger: logger)
    return try await runOnDedicatedThread("bench-fetches") {
        defer { consumer.closeBlocking() }
        try consumer.assign([TopicPartitionOffset(topic, partition, KafkaOffset.beginning)])
        var sizes: [Int] = []
        var read: Int64 = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while read < end && sizes.count < maxFetches {
            if ContinuousClock.now > deadline { throw CLIFailure("reading \(topic)[\(partition)] fetch by fetch: \(sizes.count) fetches, \(read) of \(end) records after 120 s") }
            let b = try consumer.pollBatch(maxMessages: 1_000_000, timeoutMs: 0)
            if b.messages.isEmpty { continue }
            sizes.append(b.messages.count)
            read += Int64(b.messages.count)
        }
        return (sizes, read >= end)
    }
}

// MARK: - The engine, end to end

/// One engine run to the end of its input.
struct EngineRun: Sendable {
    /// From creating the runtime to `run()` returning (topic checks, group join,
    /// restore, processing, final commit and snapshots).
    var seconds: Double
    /// From the end of the first processed batch to the return, and the records processed in it.
    var steadySeconds: Double
    var steadyRecords: Int
    var input: Int
    var processed: Int
    var deadLettered: Int
    var commits: Int

    /// Input records per second, start to return.
    var rate: Double { Double(input) / seconds }
    /// Records per second once the first batch is through (group join and start-up excluded).
    var steadyRate: Double { Double(steadyRecords) / Swift.max(steadySeconds, 1e-9) }
}

/// Loads a configuration given as YAML text, printing every diagnostic on failure.
func benchConfig(_ yaml: String, name: String, registry: OperatorRegistry) throws -> StreamConfig {
    do {
        return try ConfigLoader.load(yaml: yaml, file: name, registry: registry.names, environment: [:])
    } catch {
        for d in error.diagnostics { printError(d.description) }
        throw CLIFailure("the benchmark's own configuration \(name) is invalid")
    }
}

/// Runs the engine in this process with `--stop-at-end` semantics and times it.
func runEngineToEnd(
    _ config: StreamConfig, registry: OperatorRegistry, cluster: EmbeddedKafkaCluster, redisURL: RedisURL?, stateDir: String,
    input: Int, logger: Logger, timeout: Duration = .seconds(3600)
) async throws -> EngineRun {
    let started = ContinuousClock.now
    let rt = StreamRuntime(
        config: config, registry: registry, kafka: .embedded(cluster), redisURL: redisURL,
        options: RuntimeOptions(stateDir: stateDir, stopAtEnd: true), logger: logger)
    // The first batch's end: polled from the live stats (they change after each batch).
    let first = Mutex<(ContinuousClock.Instant, Int)?>(nil)
    let monitor = Task {
        while !Task.isCancelled {
            let processed = rt.stats.processed
            if processed > 0 {
                first.withLock { $0 = (ContinuousClock.now, processed) }
                return
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
    defer { monitor.cancel() }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await rt.run() }
        group.addTask {
            try await Task.sleep(for: timeout)
            rt.stop()
            throw CLIFailure("the engine did not reach the end of its input within \(timeout)")
        }
        try await group.next()
        group.cancelAll()
    }
    let ended = ContinuousClock.now
    let s = rt.stats
    let (firstAt, firstCount) = first.withLock { $0 } ?? (ended, s.processed)
    return EngineRun(
        seconds: (ended - started).seconds, steadySeconds: (ended - firstAt).seconds, steadyRecords: s.processed - firstCount,
        input: input, processed: s.processed, deadLettered: s.deadLettered, commits: s.commits)
}

/// Runs `stream-engine run --stop-at-end` (the executable next to this one) on the
/// cluster as a process of its own, as a user starts it and as the peers run: its
/// heap is its own, not the benchmark process's, which holds every record the
/// in-process mock has stored so far. The topics the configuration needs are
/// created first through the cluster (retention limit lifted), since a client of
/// the mock cannot create them. Timed from spawning the process to its exit; the
/// steady part from the moment its log says the partitions were assigned.
func runEngineProcess(
    yaml: String, config: StreamConfig, cluster: EmbeddedKafkaCluster, redisURL: RedisURL?, stateDir: String,
    input: Int, workDir: String, name: String, cpu: Int?, logger: Logger
) async throws -> EngineRun {
    _ = try await TopicSetup(config: config, admin: cluster, embedded: true, logger: logger).ensureTopics()
    let configPath = "\(workDir)/\(name).yaml"
    try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    let argv = try engineRunCommand(
        config: configPath, cluster: cluster, stateDir: stateDir, cpu: cpu,
        extra: ["--stop-at-end"] + (redisURL.map { ["--redis-url", $0.description] } ?? []))
    let logPath = "\(workDir)/\(name).log"
    // The assignment, read from the engine's log as it is written (every 2 ms until it shows).
    let assignedAt = Mutex<ContinuousClock.Instant?>(nil)
    let watcher = Task {
        while !Task.isCancelled {
            if let text = try? String(contentsOfFile: logPath, encoding: .utf8), text.contains("rebalance: assigned") {
                assignedAt.withLock { $0 = ContinuousClock.now }
                return
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
    defer { watcher.cancel() }
    let outcome = try await runChild(argv, stdoutPath: "\(workDir)/\(name).out", stderrPath: logPath)
    watcher.cancel()
    guard outcome.succeeded else { throw CLIFailure("the engine process \(name) exited with \(outcome.status):\n\(outcome.stderrTail)") }
    // "stream-engine: N records processed, D dead-lettered, C commits in S s"
    let summary = outcome.stdout.split(separator: "\n").last.map(String.init) ?? ""
    let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    guard summary.contains("records processed"), numbers.count >= 3 else {
        throw CLIFailure("the engine process \(name) printed no summary line: \(summary)")
    }
    let seconds = outcome.seconds
    let steady = assignedAt.withLock { $0 }.map { (ContinuousClock.now - $0).seconds } ?? seconds
    return EngineRun(
        seconds: seconds, steadySeconds: min(steady, seconds), steadyRecords: numbers[0],
        input: input, processed: numbers[0], deadLettered: numbers[1], commits: numbers[2])
}

/// The per-user purchase aggregation the benchmark measures: the `purchases`
/// source of topologies.yaml keyed by userId (the producer keys by userId, so
/// no repartition), `purchase_stats` into a store with a zstd changelog, and
/// a Redis hash per user.
enum BenchPipeline {
    static let store = "user-totals"

    static func yaml(appId: String, topic: String, guarantee: String, commitIntervalMs: Int, redisPrefix: String?, kafka: [String: String] = [:]) -> String {
        var y = "application.id: \(appId)\n"
        if !kafka.isEmpty {
            y += "kafka:\n"
            for (k, v) in kafka.sorted(by: { $0.key < $1.key }) { y += "  \(k): \"\(v)\"\n" }
        }
        y += """
            defaults:
              processing.guarantee: \(guarantee)
              commit.interval.ms: \(commitIntervalMs)
              on_error: dlq
              partitions: 4
            topologies:
              - name: user-totals
                source:
                  topics: [\(topic)]
                  key: userId
                  timestamp: timestamp
                  required: { orderId: string, userId: string, productId: string, category: string, price: number, quantity: integer, timestamp: string }
                steps:
                  - aggregate: { store: \(store), aggregator: purchase_stats }

            """
        if let redisPrefix {
            y += """
                      - redis:
                          key: "\(redisPrefix):user:{key}"
                          mode: hash
                          fields: { orders: orders, items: items, spent: spent, lastPurchaseAt: lastPurchaseAt }

                """
        }
        return y
    }

    /// The changelog and dead-letter topics a run of `appId` needs (for a child process on the mock, which cannot create them).
    static func engineTopics(appId: String) -> [String] {
        ["\(appId)-\(store)-changelog", "\(appId)-dlq"]
    }
}

/// The two-stage job: two stateful stages on the purchase events, changelogs on,
/// no sink. Stage 1 sums `quantity` per user (the producer keys by userId: no
/// repartition); stage 2 rekeys by category (a repartition through the
/// engine's internal topic) and counts the events per category. An aggregate
/// step passes on its result (`{"sum": …}`), not the event, so the category
/// count cannot follow the user sum in one chain: the two stages are two
/// pipelines of one application reading the same topic (one consumer, each
/// record through both), as Kafka Streams would build
/// `groupByKey().aggregate(...)` and `groupBy(category).count()` from one stream.
enum BenchTwoStage {
    static let userStore = "user-items"
    static let categoryStore = "category-counts"
    static let categoryPipeline = "category-counts"

    static func yaml(appId: String, topic: String, commitIntervalMs: Int) -> String {
        """
        application.id: \(appId)
        defaults:
          processing.guarantee: at_least_once
          commit.interval.ms: \(commitIntervalMs)
          on_error: dlq
          partitions: 4
        topologies:
          - name: user-items
            source: &purchases
              topics: [\(topic)]
              key: userId
              timestamp: timestamp
              required: { orderId: string, userId: string, productId: string, category: string, price: number, quantity: integer, timestamp: string }
            steps:
              - aggregate: { store: \(userStore), aggregator: sum, params: { field: quantity } }
          - name: \(categoryPipeline)
            source: *purchases
            steps:
              - rekey: { field: category }
              - aggregate: { store: \(categoryStore), aggregator: count }

        """
    }

    /// Both stores as the engine left them: each partition's snapshot (written when the run
    /// stopped) plus whatever its changelog holds after it, read with the runtime's
    /// `StoreRestorer` (what a restarting instance restores). Values: the `sum` / `count` state.
    static func readStores(
        config: StreamConfig, stateDir: String, cluster: EmbeddedKafkaCluster, logger: Logger
    ) async throws -> (users: [String: Int64], categories: [String: Int64], fromSnapshots: Int, changelogRecords: Int) {
        let restorer = StoreRestorer(kafkaConfig: cluster.clientConfig, logger: logger)
        var fromSnapshots = 0
        var changelogRecords = 0
        func read(_ store: String) async throws -> [String: Int64] {
            var out: [String: Int64] = [:]
            let changelog = config.changelogTopic(store: store)
            let partitions = try await cluster.partitionCount(topic: changelog) ?? 0
            for p in 0..<Int32(partitions) {
                let snapshot = StoreSnapshot.path(stateDir: stateDir, applicationId: config.applicationId, store: store, partition: p)
                let r = try await restorer.restore(
                    store: store, partition: p, changelogTopic: changelog,
                    snapshotPath: FileManager.default.fileExists(atPath: snapshot) ? snapshot : nil, committed: nil)
                if r.report.fromSnapshot { fromSnapshots += 1 }
                changelogRecords += r.report.changelogRecords
                for (k, e) in r.entries {
                    guard let d = e.value.doubleValue, d == d.rounded(), out[k] == nil else {
                        throw CLIFailure("store \(store): key \(k) holds \(e.value.serializedString()) in partition \(p) (a whole number, once, expected)")
                    }
                    out[k] = Int64(d)
                }
            }
            return out
        }
        let users = try await read(userStore)
        let categories = try await read(categoryStore)
        return (users, categories, fromSnapshots, changelogRecords)
    }
}

/// How per-user sums and per-category counts compare with what the input implies.
struct TwoStageCheck: Sendable, CustomStringConvertible {
    var usersMatched = 0
    var categoriesMatched = 0
    var problems: [String] = []
    var ok: Bool { problems.isEmpty }

    init(users: [String: Int64], categories: [String: Int64], expected: PurchaseLoad, workload: PurchaseWorkload) {
        var wanted: [String: Int64] = [:]
        for (i, t) in expected.totals.enumerated() where t.orders > 0 { wanted[workload.user(i)] = t.items }
        for (k, v) in wanted {
            if users[k] == v { usersMatched += 1 } else { problems.append("user \(k): \(users[k].map(String.init) ?? "missing") instead of \(v) items") }
        }
        for k in users.keys where wanted[k] == nil { problems.append("unexpected user \(k)") }
        for (k, v) in expected.categoryCounts {
            if categories[k] == Int64(v) { categoriesMatched += 1 } else { problems.append("category \(k): \(categories[k].map(String.init) ?? "missing") instead of \(v)") }
        }
        for k in categories.keys where expected.categoryCounts[k] == nil { problems.append("unexpected category \(k)") }
    }

    var description: String {
        ok ? "all \(BenchFormat.int(usersMatched)) per-user sums of quantity and all \(categoriesMatched) per-category counts match the input"
            : "\(problems.count) differences (first: \(problems.prefix(3).joined(separator: "; ")))"
    }
}

// MARK: - Results in Redis

/// How a set of per-user totals read from Redis compares with what was expected.
struct TotalsCheck: Sendable, CustomStringConvertible {
    var users: Int
    var matched = 0
    var mismatched = 0
    var missing = 0
    var unexpected = 0
    var firstProblem: String?

    var ok: Bool { mismatched == 0 && missing == 0 && unexpected == 0 }
    var description: String {
        ok ? "all \(BenchFormat.int(matched)) users match"
            : "\(matched) match, \(mismatched) differ, \(missing) missing, \(unexpected) unexpected (first: \(firstProblem ?? "?"))"
    }

    init(_ got: [UserTotals?], _ expected: [UserTotals], name: (Int) -> String) {
        users = expected.count
        for (i, e) in expected.enumerated() {
            switch (got[i], e.orders > 0) {
            case (nil, false): continue
            case (nil, true):
                missing += 1
                if firstProblem == nil { firstProblem = "\(name(i)) missing" }
            case (let g?, false):
                unexpected += 1
                if firstProblem == nil { firstProblem = "\(name(i)) present with \(g)" }
            case (let g?, true):
                if g == e { matched += 1 } else {
                    mismatched += 1
                    if firstProblem == nil { firstProblem = "\(name(i)): \(g) instead of \(e)" }
                }
            }
        }
    }
}

enum RedisTotals {
    /// `"123.45"` → 12345.
    static func cents(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let whole = Int64(parts[0]), parts[1].count == 2, let frac = Int64(parts[1]) else { return nil }
        return whole * 100 + (text.hasPrefix("-") ? -frac : frac)
    }

    /// The engine's hashes `<prefix>:user:<id>` (orders, items, spent), per user index.
    static func readEngine(_ redis: RedisConnection, prefix: String, workload: PurchaseWorkload) async throws -> [UserTotals?] {
        try await read(redis, workload: workload) { ["HMGET", "\(prefix):user:\($0)", "orders", "items", "spent"] } parse: { reply in
            guard let f = reply.array, f.count == 3, let o = f[0].int, let i = f[1].int, let s = f[2].string.flatMap(cents) else { return nil }
            return UserTotals(orders: o, items: i, cents: s)
        }
    }

    /// Quix Streams' values `<prefix>:user:<id>` (JSON with orders, items, cents), per user index.
    static func readQuix(_ redis: RedisConnection, prefix: String, workload: PurchaseWorkload) async throws -> [UserTotals?] {
        try await read(redis, workload: workload) { ["GET", "\(prefix):user:\($0)"] } parse: { reply in
            guard let bytes = reply.bytes, let v = try? JSONValue.parse(bytes),
                  let o = v["orders"]?.intValue, let i = v["items"]?.intValue, let c = v["cents"]?.intValue else { return nil }
            return UserTotals(orders: o, items: i, cents: c)
        }
    }

    private static func read(
        _ redis: RedisConnection, workload: PurchaseWorkload, command: (String) -> [String], parse: (RedisReply) -> UserTotals?
    ) async throws -> [UserTotals?] {
        var out: [UserTotals?] = []
        out.reserveCapacity(workload.users)
        var start = 0
        while start < workload.users {
            let end = Swift.min(start + 2000, workload.users)
            let replies = try await redis.pipeline((start..<end).map { command(workload.user($0)) })
            out += replies.map(parse)
            start = end
        }
        return out
    }
}

/// Records a topic holds (read to the end of every partition) against the
/// offsets it spans: transaction markers take offsets but are never delivered,
/// so `offsets > records` shows that its producer used transactions. `nullValues`: the records
/// without a value among them (a repartition topic's progress markers).
func recordsAndOffsets(cluster: EmbeddedKafkaCluster, topic: String, logger: Logger) async throws -> (records: Int, offsets: Int, nullValues: Int) {
    guard let n = try await cluster.partitionCount(topic: topic) else { return (0, 0, 0) }
    var ends: [TopicPartition: Int64] = [:]
    var offsets = 0
    for p in 0..<Int32(n) {
        let wm = try await cluster.watermarks(TopicPartition(topic, p))
        ends[TopicPartition(topic, p)] = wm.high
        offsets += Int(wm.high - wm.low)
    }
    var config = cluster.clientConfig
    config["group.id"] = "bench-count-\(UUID().uuidString)"
    config["enable.partition.eof"] = "true"
    let consumer = try KafkaConsumer(config: config, logger: logger)
    let targets = ends.filter { $0.value > 0 }
    let (records, nullValues) = try await runOnDedicatedThread("bench-count") { () throws -> (Int, Int) in
        defer { consumer.closeBlocking() }
        try consumer.assign(targets.keys.map { TopicPartitionOffset($0, KafkaOffset.beginning) })
        var count = 0
        var nullValues = 0
        var done: Set<TopicPartition> = []
        let deadline = ContinuousClock.now + .seconds(300)
        while done.count < targets.count, ContinuousClock.now < deadline {
            let b = try consumer.pollBatch(maxMessages: 10_000, timeoutMs: 100)
            count += b.messages.count
            nullValues += b.messages.count { $0.value == nil }
            for e in b.partitionEOFs where e.offset >= targets[e.topicPartition] ?? 0 { done.insert(e.topicPartition) }
        }
        guard done.count == targets.count else { throw CLIFailure("reading \(topic) to its end timed out") }
        return (count, nullValues)
    }
    return (records, offsets, nullValues)
}
