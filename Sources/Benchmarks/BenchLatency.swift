import CLISupport
import Foundation
import KafkaClient
import Logging
import RedisClient
import StreamEngine
import Synchronization
import ThreadExecutors
import Topologies

/// End-to-end latency at one fixed input rate.
struct LatencyResult: Sendable {
    var rate: Int
    /// The engine consumer's `fetch.wait.max.ms` in this run.
    var fetchWaitMs: Int
    var seconds: Double
    var sent: Int
    var visible: Int
    /// Producer send → the broker's acknowledgement (delivery report), milliseconds.
    var ackP50: Double
    var ackP99: Double
    /// Producer send → value visible in Redis, milliseconds.
    var p50: Double
    var p99: Double
    var max: Double
    /// p50 of the first and the last third of the sends (by send time): growing lag shows as a rising p50.
    var p50FirstThird: Double
    var p50LastThird: Double
    /// Sends per second actually achieved.
    var achievedRate: Double
    /// From the last send until every event was visible.
    var drainSeconds: Double
    /// Mean time between two Redis polls (the resolution of the measurement), milliseconds.
    var pollIntervalMs: Double
}

/// Settings of the latency runs, stated in the report.
enum LatencySettings {
    // The producer batches as for the throughput load (linger.ms=5): the mock returns one produced batch per
    // partition per Fetch, so a producer sending one-record batches (linger.ms 0 or 1) at 2,000/s outruns any consumer.
    static let users = 64
    static let commitIntervalMs = 5
    // The mock holds an empty fetch for fetch.wait.max.ms even when records arrive meanwhile (a real broker answers at
    // once): a short wait cuts latency at low rates, and costs the mock's broker thread more empty fetches at high rates.
    // Every rate runs with each of these waits (BENCH_LATENCY_FETCH_WAIT_MS: a comma-separated list).
    static let fetchWaitsMs: [Int] = {
        let given = ProcessInfo.processInfo.environment["BENCH_LATENCY_FETCH_WAIT_MS"]?.split(separator: ",").compactMap { Int($0) } ?? []
        return given.isEmpty ? [2, 5] : given
    }()
    /// The rates measured (BENCH_LATENCY_RATES: a comma-separated list, for a look at one of them).
    static let rates: [Int] = {
        let given = ProcessInfo.processInfo.environment["BENCH_LATENCY_RATES"]?.split(separator: ",").compactMap { Int($0) } ?? []
        return given.isEmpty ? [200, 2000, 20000] : given
    }()
    static func kafka(fetchWaitMs: Int) -> [String: String] { ["fetch.wait.max.ms": String(fetchWaitMs)] }
    static let producer = ["linger.ms": ProcessInfo.processInfo.environment["BENCH_LATENCY_LINGER_MS"] ?? "5"]
}

/// Produces purchases at `rate` events/s for `seconds` while the engine runs
/// (per-user aggregation, Redis hash sink), and measures for every event the
/// time from its send to the first Redis poll that shows it: each of
/// `LatencySettings.users` users gets its events in sequence, so user u's
/// k-th event is visible once the `orders` field of its hash reaches k.
func measureLatency(
    rate: Int, fetchWaitMs: Int, seconds: Double, cluster: EmbeddedKafkaCluster, redisURL: RedisURL, stateDir: String, logger: Logger
) async throws -> LatencyResult {
    // The latency configuration's consumer setting also reaches the engine's producer, which warns about it once.
    var logger = logger
    logger.logLevel = Swift.max(logger.logLevel, .error)
    let tag = String(UUID().uuidString.prefix(8)).lowercased()
    let topic = "bench-latency-\(rate)-w\(fetchWaitMs)-\(tag)"
    try cluster.createTopic(topic, partitions: 4, replicationFactor: 3)
    let prefix = "lat-\(rate)-\(tag)"
    let registry = makeRegistry()
    let config = try benchConfig(
        BenchPipeline.yaml(
            appId: "bench-lat-\(rate)-\(tag)", topic: topic, guarantee: "at_least_once", commitIntervalMs: LatencySettings.commitIntervalMs,
            redisPrefix: prefix, kafka: LatencySettings.kafka(fetchWaitMs: fetchWaitMs)),
        name: "bench-latency.yaml", registry: registry)
    let rt = StreamRuntime(
        config: config, registry: registry, kafka: .embedded(cluster), redisURL: redisURL,
        options: RuntimeOptions(stateDir: stateDir, stopAtEnd: false), logger: logger)
    let engine = Task { try await rt.run() }
    defer { rt.stop() }

    let producer = try KafkaProducer(config: cluster.clientConfig.merging(LatencySettings.producer) { $1 }, logger: logger)
    let redis = RedisConnection(url: redisURL, logger: logger)
    let users = (0..<LatencySettings.users).map { "lu-\($0 + 1)" }
    var rng = SplitMix64(seed: UInt64(rate))

    // Warm-up: the engine is up, assigned and writing once an event of every warm-up user is visible.
    let warm = (0..<16).map { "lw-\($0 + 1)" }
    for (i, u) in warm.enumerated() {
        var r = PurchaseWorkload.event(index: i, user: u, rng: &rng).record
        r.topic = topic
        try await producer.send(r)
    }
    try await producer.flush()
    let warmDeadline = ContinuousClock.now + .seconds(120)
    while true {
        let replies = try await redis.pipeline(warm.map { ["HGET", "\(prefix):user:\($0)", "orders"] })
        if replies.allSatisfy({ $0.int == 1 }) { break }
        if ContinuousClock.now > warmDeadline { throw CLIFailure("latency \(rate)/s: the engine did not write the warm-up events within 120 s") }
        try await Task.sleep(for: .milliseconds(20))
    }

    // The poller: one pipelined HGET of every user's `orders` per round.
    let origin = ContinuousClock.now
    let total = Int((Double(rate) * seconds).rounded())
    let finalCounts = (0..<users.count).map { u in (total - u + users.count - 1) / users.count }
    let sendingDone = Atomic<Bool>(false)
    let poller = Task { () throws -> (observations: [[(count: Int, at: Double)]], acks: [(count: Int, at: Double)], polls: Int, span: Double) in
        var observed = [[(count: Int, at: Double)]](repeating: [], count: users.count)
        var acks: [(count: Int, at: Double)] = []
        let acked0 = Int(producer.deliveryCounts.delivered)
        var last = [Int](repeating: 0, count: users.count)
        var polls = 0
        let commands = users.map { ["HGET", "\(prefix):user:\($0)", "orders"] }
        var drainDeadline: ContinuousClock.Instant?
        while true {
            let acked = Int(producer.deliveryCounts.delivered) - acked0
            if acked > (acks.last?.count ?? 0) { acks.append((acked, (ContinuousClock.now - origin).seconds)) }
            let replies = try await redis.pipeline(commands)
            let now = (ContinuousClock.now - origin).seconds
            polls += 1
            for (u, r) in replies.enumerated() {
                let c = Int(r.int ?? 0)
                if c > last[u] {
                    observed[u].append((c, now))
                    last[u] = c
                }
            }
            if sendingDone.load(ordering: .acquiring) {
                if last == finalCounts { break }
                if drainDeadline == nil { drainDeadline = ContinuousClock.now + .seconds(120) }
                if ContinuousClock.now > drainDeadline! { break }
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        return (observed, acks, polls, (ContinuousClock.now - origin).seconds)
    }

    // The sender, on a thread of its own: every millisecond, whatever is due at `rate`.
    let sendTimes: [[Double]] = try await runOnDedicatedThread("bench-latency-sender") {
        var times = [[Double]](repeating: [], count: users.count)
        var rng = SplitMix64(seed: UInt64(rate) &* 31)
        var sent = 0
        while sent < total {
            let elapsed = (ContinuousClock.now - origin).seconds
            let due = Swift.min(total, Int(elapsed * Double(rate)) + 1)
            while sent < due {
                let u = sent % users.count
                var r = PurchaseWorkload.event(index: sent, user: users[u], rng: &rng).record
                r.topic = topic
                times[u].append((ContinuousClock.now - origin).seconds)
                while try !producer.trySend(r) { usleep(200) }  // this thread is the sender's own
                sent += 1
            }
            usleep(500)
        }
        return times
    }
    let lastSend = sendTimes.compactMap(\.last).max() ?? 0
    sendingDone.store(true, ordering: .releasing)
    let (observations, acks, polls, span) = try await poller.value
    try await producer.flush()
    await producer.close()
    await redis.close()
    rt.stop()
    try await engine.value

    // Event k (1-based) of user u became visible at the first observation with count >= k.
    var samples: [(sentAt: Double, latency: Double)] = []
    var lastVisible = 0.0
    for u in 0..<users.count {
        var obs = observations[u][...]
        for (k, sentAt) in sendTimes[u].enumerated() {
            while let o = obs.first, o.count < k + 1 { obs = obs.dropFirst() }
            guard let o = obs.first else { break }
            samples.append((sentAt, (o.at - sentAt) * 1000))
            lastVisible = Swift.max(lastVisible, o.at)
        }
    }
    let sent = sendTimes.reduce(0) { $0 + $1.count }
    // Acknowledgements: the i-th event sent (in send order) counts as acknowledged once `i + 1` deliveries were reported.
    var inSendOrder = [Double](repeating: 0, count: sent)
    for (u, times) in sendTimes.enumerated() { for (k, t) in times.enumerated() { inSendOrder[k * users.count + u] = t } }
    var ackLatencies: [Double] = []
    var ackIndex = acks[...]
    for (i, sentAt) in inSendOrder.enumerated() {
        while let a = ackIndex.first, a.count < i + 1 { ackIndex = ackIndex.dropFirst() }
        guard let a = ackIndex.first else { break }
        ackLatencies.append((a.at - sentAt) * 1000)
    }
    guard samples.count == sent else {
        throw CLIFailure("latency \(rate)/s: only \(samples.count) of \(sent) events became visible in Redis within 120 s of the last send")
    }
    if let dump = ProcessInfo.processInfo.environment["BENCH_LATENCY_DUMP"] {
        let lines = samples.sorted { $0.sentAt < $1.sentAt }.map { String(format: "%.4f %.2f", $0.sentAt, $0.latency) }
        try? (lines.joined(separator: "\n") + "\n").write(toFile: "\(dump)-\(rate).txt", atomically: true, encoding: .utf8)
    }
    let visible = LatencyHistogram(millis: samples.map(\.latency))
    let acknowledged = LatencyHistogram(millis: ackLatencies)
    let bySend = samples.sorted { $0.sentAt < $1.sentAt }
    let third = Swift.max(1, bySend.count / 3)
    let firstThird = LatencyHistogram(millis: bySend.prefix(third).map(\.latency))
    let lastThird = LatencyHistogram(millis: bySend.suffix(third).map(\.latency))
    let firstSend = bySend.first?.sentAt ?? 0
    return LatencyResult(
        rate: rate, fetchWaitMs: fetchWaitMs, seconds: seconds, sent: sent, visible: samples.count,
        ackP50: acknowledged.percentile(50), ackP99: acknowledged.percentile(99),
        p50: visible.percentile(50), p99: visible.percentile(99), max: samples.map(\.latency).max() ?? .nan,
        p50FirstThird: firstThird.percentile(50), p50LastThird: lastThird.percentile(50),
        achievedRate: Double(sent) / Swift.max(lastSend - firstSend, 1e-9),
        drainSeconds: Swift.max(0, lastVisible - lastSend), pollIntervalMs: span / Double(Swift.max(polls, 1)) * 1000)
}
