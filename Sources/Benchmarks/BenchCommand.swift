import CLISupport
import ArgumentParser
import Foundation
import KafkaClient
import Logging
import MariaDBClient
import RedisClient
import StreamEngine
import Topologies

/// `stream-engine-bench`: throughput against raw consume and Quix Streams,
/// latency, restore and memory, on one embedded cluster and one redis-server;
/// writes BENCHMARKS.md.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-engine-bench",
        abstract: "Benchmark the engine against raw consume, Quix Streams and Pathway; latency, restore, memory. Writes BENCHMARKS.md.",
        discussion: """
            Starts an embedded 3-broker Kafka cluster and a redis-server, loads N purchase events (4 partitions) once per \
            batch layout (small producer batches, and 1,000-record batches; --skip large-batches leaves the second out) and \
            measures on each, each over --runs runs (min / median / max): raw consume through the project's bindings (one-message \
            poll and pollBatch), the engine's per-user purchase aggregation end to end (at_least_once and exactly_once, \
            --stop-at-end semantics, a fresh application.id per run), the two-stage job (per-user sum of quantity, rekey by \
            category, count per category; --skip two-stage), and with --peers Quix Streams doing both jobs (installed into \
            .venv-bench by this command) and Pathway doing the two-stage job (installed into .venv-bench-native; --skip native). \
            The full topologies file runs on the generator's mix once per run. Then latency \
            at 200, 2,000 and 20,000 events/s, restore of a store of --restore-keys keys from snapshot + changelog tail and \
            from the changelog alone, and the engine's peak RSS per million keys. Every count is verified (records consumed, \
            per-user totals in Redis, the two-stage job's stores and the peers' results against what was produced). With at least 2 cores, the broker and Redis are pinned to \
            CPU 0 and the clients (consumers, engine, Quix) to CPU 1; --no-pin turns that off. Run it from the repository \
            root on a release build (swift build -c release). BENCH_LATENCY_DUMP=PREFIX writes every latency sample \
            (send time, latency in ms) to PREFIX-<rate>.txt.
            """)

    enum Phase: String, ExpressibleByArgument, CaseIterable, Sendable {
        case raw, engine, full, peers, latency, restore, failover
        /// The engine's two-stage job (per-user sum, rekey by category, count per category).
        case twoStage = "two-stage"
        /// The native-core peer (Pathway) of `--peers`.
        case native
        /// The second batch layout (1,000-record producer batches).
        case largeBatches = "large-batches"
    }

    @Option(help: "Purchase events loaded for the throughput runs (default 1,000,000; 50,000 with --quick).")
    var events: Int?

    @Option(help: "Runs of each throughput and restore measurement.")
    var runs = 3

    @Flag(help: "Also run the peers on the same data and broker: Quix Streams (PyPI quixstreams, installed into --venv) and Pathway (PyPI pathway, installed into --native-venv).")
    var peers = false

    @Option(help: "Where the report goes.")
    var out = "BENCHMARKS.md"

    @Flag(help: "A short run: 50,000 events, 100,000 restore keys, 5 s per latency rate (unless given).")
    var quick = false

    @Option(help: "Seconds of sending per latency rate (default 30; 5 with --quick).")
    var latencySeconds: Double?

    @Option(help: "Keys of the restore and memory store (default 1,000,000; 100,000 with --quick).")
    var restoreKeys: Int?

    @Option(help: "Distinct users of the purchase events.")
    var users = 10_000

    @Option(help: "Generated events for the full topologies run (default: --events).")
    var fullEvents: Int?

    @Option(help: "The topologies file of the full run.")
    var topologies = "topologies.yaml"

    @Option(help: "commit.interval.ms of the engine (and Quix's commit_interval) in the throughput runs.")
    var commitIntervalMs = 1000

    @Option(parsing: .upToNextOption, help: "Phases to leave out: raw, engine, two-stage, full, peers (both), native (Pathway only), large-batches (the second layout), latency, restore, failover.")
    var skip: [Phase] = []

    @Flag(inversion: .prefixedNo, help: "Pin the broker and Redis to CPU 0 and the clients to CPU 1 (needs 2 cores).")
    var pin = true

    @Option(help: "The Quix Streams virtual environment.")
    var venv = ".venv-bench"

    @Option(help: "The Quix Streams peer script.")
    var peerScript = "Benchmarks/peers/quix_user_totals.py"

    @Option(help: "The Pathway (native-core peer) virtual environment.")
    var nativeVenv = ".venv-bench-native"

    @Option(help: "The Pathway peer script (its requirements: pathway-requirements.txt next to it).")
    var nativeScript = "Benchmarks/peers/pathway_two_stage.py"

    @Option(help: "Also replace the `## Benchmarks` section of this README with the headline figures.")
    var readme: String?

    @Option(help: "session.timeout.ms of the engine processes in the failover phase (the engine's default on a mock cluster: 3000; at least 1500: a JoinGroup round with a member missing lasts up to session.timeout.ms − 1 s on the mock).")
    var failoverSessionTimeoutMs = 3000

    @Flag(help: "Run the embedded clusters' group coordinator as librdkafka ships it (3 s on a first join, session.timeout.ms − 1 s on later rounds), to compare.")
    var mockCoordinatorAsShipped = false

    @Option(help: "Also measure failover with a standby at this shorter session.timeout.ms (at least 1500).")
    var failoverShortSessionMs: Int?

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var http: HTTPBenchOptions

    static let producerSettings = ["linger.ms": "5", "batch.num.messages": "10000", "compression.type": "zstd", "enable.idempotence": "true"]
    /// The second layout of the same events: every producer batch holds 1,000 records of one partition.
    static let largeBatchProducerSettings = producerSettings.merging(["linger.ms": "1000", "batch.num.messages": "1000"]) { $1 }
    static let pollBatchSize = RuntimeOptions().pollBatchSize
    /// Passes of each raw consume per run; the fastest counts.
    static let rawPasses = 3

    /// Parses and runs the benchmark with the tools' exit codes (see ``CLISupport``).
    static func main() async {
        await runWithExitCodes(tool: "stream-engine-bench")
    }

    func validate() throws {
        if let events, events < 1000 { throw ValidationError("--events must be at least 1,000") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if let restoreKeys, restoreKeys < 1000 { throw ValidationError("--restore-keys must be at least 1,000") }
        if let latencySeconds, !(latencySeconds > 0) { throw ValidationError("--latency-seconds must be positive") }
        guard users >= 1 else { throw ValidationError("--users must be at least 1") }
        guard commitIntervalMs >= 1 else { throw ValidationError("--commit-interval-ms must be at least 1") }
        // A round with a member missing (the killed one, until its session ends) lasts up to
        // session.timeout.ms − 1 s on the mock, or the whole session below 1 s: members waiting in it
        // must not time out meanwhile.
        guard failoverSessionTimeoutMs >= 1500 else {
            throw ValidationError("--failover-session-timeout-ms must be at least 1500: on librdkafka 2.0.2's mock a JoinGroup round with a member missing lasts up to session.timeout.ms − 1 s, and the members waiting in it must not time out meanwhile")
        }
        if let short = failoverShortSessionMs, short < 1500 || short >= failoverSessionTimeoutMs {
            throw ValidationError("--failover-short-session-ms must be at least 1500 and below --failover-session-timeout-ms")
        }
    }

    /// The embedded clusters' `group.initial.rebalance.delay.ms` (nil: the mock's coordinator as shipped).
    var coordinatorDelay: Int? { mockCoordinatorAsShipped ? nil : 0 }

    func run() async throws {
        let logger = logging.bootstrap(defaultLevel: .warning)
        if http.enabled { return try await http.run(config: topologies, out: out) }
        let n = events ?? (quick ? 50_000 : 1_000_000)
        let restoreN = restoreKeys ?? (quick ? 100_000 : 1_000_000)
        let latencyT = latencySeconds ?? (quick ? 5 : 30)
        let fullN = fullEvents ?? n
        let skipped = Set(skip)
        let machine = MachineInfo.current()
        let pinning = pin && machine.cores >= 2
        let serverCPU: Int? = pinning ? 0 : nil
        let clientCPU: Int? = pinning ? 1 : nil
        let progress: @Sendable (String) -> Void = { printError("bench: \($0)") }
        let workDir = FileManager.default.temporaryDirectory.appendingPathComponent("stream-engine-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workDir) }

        var report = BenchReport(
            date: Date(), commandLine: (["stream-engine-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " "), machine: machine,
            events: n, users: users, runs: runs, fullEvents: skipped.contains(.full) ? nil : fullN, commitIntervalMs: commitIntervalMs,
            producerSettings: Self.producerSettings, pollBatchSize: Self.pollBatchSize, pinning: "off", gitCommit: commandFirstLine(["git", "rev-parse", "--short", "HEAD"]))

        report.loadAtStart = loadAverage()
        // Servers on CPU 0 (threads and processes started from a pinned thread inherit its CPU), clients on CPU 1.
        if let clientCPU, !CPUPinning.pinAllThreads(cpu: clientCPU) { progress("warning: could not pin this process's threads to CPU \(clientCPU)") }
        progress("starting the embedded Kafka cluster (3 brokers) and redis-server")
        let coordinatorDelay = self.coordinatorDelay
        let (cluster, redisServer) = try await CPUPinning.onPinnedThread(cpu: serverCPU) {
            (try EmbeddedKafkaCluster(brokers: 3, groupInitialRebalanceDelayMs: coordinatorDelay, logger: logger), try LocalRedisServer())
        }
        defer { redisServer.stop() }
        let redis = RedisConnection(url: redisServer.url, logger: logger)
        let redisPid = Int32(try await redis.command(["INFO", "server"]).string?.split(separator: "\r\n")
            .first { $0.hasPrefix("process_id:") }?.dropFirst("process_id:".count) ?? "") ?? 0
        if pinning {
            report.pinning = "on: the mock brokers' thread and `redis-server` (pid \(redisPid), Cpus_allowed_list \(CPUPinning.allowedList(pid: redisPid))) on CPU 0; "
                + "this process's other threads (consumers, engine, producer, Redis poller) on CPU 1 (`sched_setaffinity`), "
                + "child processes (engine processes, Quix Streams) started with `taskset -c 1`"
        } else {
            report.pinning = pin ? "off (fewer than 2 cores)" : "off (--no-pin)"
        }
        let redisVersion = try await redis.command(["INFO", "server"]).string?.split(separator: "\r\n")
            .first { $0.hasPrefix("redis_version:") }.map { String($0.dropFirst("redis_version:".count)) } ?? "?"
        report.versions = [
            ("librdkafka", "\(librdkafkaVersion) (the project's bindings and the mock cluster)"),
            ("redis-server", redisVersion),
            ("Swift", commandFirstLine(["swift", "--version"]) ?? "6 (swift not on PATH at run time)"),
        ]

        var peer: QuixPeer?
        var native: PathwayPeer?
        if peers && !skipped.contains(.peers) {
            let requirements = (peerScript as NSString).deletingLastPathComponent + "/requirements.txt"
            peer = try await QuixPeer.setUp(venv: venv, requirements: requirements, script: peerScript, progress: progress)
            report.quixPeer = peer
            report.versions.append(("Quix Streams", "\(peer!.quixstreams) (confluent-kafka \(peer!.confluentKafka), librdkafka \(peer!.librdkafka), Python \(peer!.python))"))
            if !skipped.contains(.native) {
                let nativeRequirements = (nativeScript as NSString).deletingLastPathComponent + "/pathway-requirements.txt"
                native = try await PathwayPeer.setUp(venv: nativeVenv, requirements: nativeRequirements, script: nativeScript, progress: progress)
                report.nativePeer = native
                report.versions.append(("Pathway", "\(native!.pathway) (Python \(native!.python); its Kafka reader: rdkafka-rust over its own librdkafka)"))
            } else {
                report.skipped.append("Pathway (`--skip native`)")
            }
        } else {
            report.skipped.append("Quix Streams and Pathway (run with `--peers`)")
        }

        // The purchase events, loaded once per layout (the same events, seed 42).
        var layouts = [BenchLayout(
            key: "small", title: "small batches", topic: "bench-purchases", producerSettings: Self.producerSettings,
            description: "a partition's batch holds what the producer queued for it within 5 ms")]
        if !skipped.contains(.largeBatches) {
            layouts.append(BenchLayout(
                key: "b1000", title: "1,000-record batches", topic: "bench-purchases-b1000", producerSettings: Self.largeBatchProducerSettings,
                description: "a batch is sent when it holds 1,000 records of one partition (or at the final flush)", fullBatchRecords: 1000))
        } else {
            report.skipped.append("the second batch layout, 1,000-record batches (`--skip large-batches`)")
        }
        let workload = PurchaseWorkload(userPrefix: "u-", users: users, seed: 42)
        var expected: PurchaseLoad?
        for i in layouts.indices {
            let layout = layouts[i]
            try cluster.createTopic(layout.topic, partitions: 4, replicationFactor: 3)
            progress("loading \(BenchFormat.int(n)) purchase events into \(layout.topic) (\(layout.title))")
            let loadStart = ContinuousClock.now
            let loader = try KafkaProducer(config: cluster.clientConfig.merging(layout.producerSettings) { $1 }, logger: logger)
            let load = try await workload.produceLoad(count: n, to: layout.topic, producer: loader) { progress("  \(BenchFormat.int($0)) sent") }
            await loader.close()
            let loadSeconds = (ContinuousClock.now - loadStart).seconds
            if let expected, expected != load { throw CLIFailure("the layouts' loads differ: the same events were expected") }
            expected = load
            layouts[i].loadSeconds = loadSeconds
            report.checks.append(try await verifyTopicCount(cluster, topic: layout.topic, expected: n)
                + " (\(layout.title); loaded in \(BenchFormat.seconds(loadSeconds)))")
            // The layout as a consumer sees it: records per fetch (= per producer batch on the mock), partition by partition.
            var fetches: [Int] = []
            var lastOfPartition: [Int] = []
            for p in 0..<Int32(4) {
                let (sizes, complete) = try await recordsPerFetch(cluster: cluster, topic: layout.topic, partition: p, logger: logger)
                fetches += complete ? sizes.dropLast() : sizes[...]
                if complete { lastOfPartition += sizes.suffix(1) }
            }
            let histogram = Dictionary(grouping: fetches, by: { $0 }).mapValues(\.count).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let spread = Spread(fetches.map(Double.init))
            layouts[i].fetchSummary = "\(BenchFormat.int(fetches.count + lastOfPartition.count)) fetches read (the first 10 of each partition, or all it has); records per fetch, a partition's last fetch left out: "
                + (fetches.isEmpty ? "–" : "min \(BenchFormat.int(Int(spread.min))), median \(BenchFormat.int(Int(spread.median))), max \(BenchFormat.int(Int(spread.max)))")
                + "; most frequent: " + histogram.prefix(3).map { "\(BenchFormat.int($0.key)) × \(BenchFormat.int($0.value))" }.joined(separator: ", ")
                + (lastOfPartition.isEmpty ? "" : "; the partitions' last fetches: " + lastOfPartition.map { BenchFormat.int($0) }.joined(separator: ", "))
            report.checks.append("\(layout.topic) read partition by partition, one fetch at a time (`queued.min.messages=1`, each fetch's records taken at once): \(layouts[i].fetchSummary!)")
            // The large-batch layout must be what it says: every fetch but a partition's last holds batch.num.messages records.
            if let max = layout.fullBatchRecords {
                guard fetches.allSatisfy({ $0 == max }), lastOfPartition.allSatisfy({ $0 <= max }) else {
                    throw CLIFailure("layout \(layout.title): fetches of \(layout.topic) hold \(histogram.prefix(5).map { "\($0.key) × \($0.value)" }.joined(separator: ", ")) records, not \(max) each")
                }
            }
        }
        let expectedLoad = expected!
        report.layouts = layouts.map { LayoutResults(layout: $0) }
        let producerConfig = cluster.clientConfig.merging(Self.producerSettings) { $1 }
        // The generator's mix for the full topologies run, loaded once.
        var fullConfig: StreamConfig?
        var localMariaDB: LocalMariaDBServer?
        defer { localMariaDB?.close() }
        let shopRegistry = makeRegistry()
        if !skipped.contains(.full) {
            fullConfig = try loadConfig(topologies, registry: shopRegistry)
            for t in fullConfig!.inputTopics { try cluster.createTopic(t, partitions: 4, replicationFactor: 3) }
            if !fullConfig!.sqlSinks.isEmpty, fullConfig!.sqlURL == nil {
                // The sql steps (table purchases) write to a private mariadbd, as `run` does.
                progress("starting a private mariadbd for the sql steps of \(topologies)")
                let server = try await LocalMariaDBServer.start(database: "shop")
                localMariaDB = server
                fullConfig!.sqlURL = server.url.urlString
                report.checks.append("full run: the sql steps write to a private mariadbd (\(server.url))")
            }
            progress("loading \(BenchFormat.int(fullN)) generated shop events (seed 42) for the full \(topologies) run")
            let p = try KafkaProducer(config: producerConfig, logger: logger)
            let generated = EventGenerator.generate(GeneratorOptions(events: fullN, seed: 42)).records
            try await EventGenerator.produce(generated, with: p)
            await p.close()
            let malformed = generated.count { $0.malformed }
            let perTopic = Dictionary(grouping: generated, by: \.topic).mapValues(\.count)
            for (t, c) in perTopic.sorted(by: { $0.key < $1.key }) { _ = try await verifyTopicCount(cluster, topic: t, expected: c) }
            report.checks.append("full run input: " + perTopic.sorted { $0.key < $1.key }.map { "\($0.key) \(BenchFormat.int($0.value))" }.joined(separator: ", ")
                + " (\(BenchFormat.int(malformed)) malformed on purpose), every topic complete from offset 0")
        } else {
            report.skipped.append("the full topologies.yaml run (`--skip full`)")
        }

        let registry = makeRegistry()
        let stateRoot = "\(workDir)/state"
        var engineChecks: [String] = []
        var twoStageChecks: [String] = []
        var quixChecks: [String] = []
        var fullChecks: [String] = []
        for run in 1...runs {
            progress("run \(run)/\(runs)")
            for li in layouts.indices {
                let layout = layouts[li]
                let topic = layout.topic
                let lt = layout.key
                progress(" layout: \(layout.title) (\(topic))")
                if !skipped.contains(.raw) {
                    // The limit is the fastest of a few passes: other load on the machine only ever slows a pass down.
                    for batch in [false, true] {
                        var passes: [RawConsumeRun] = []
                        for _ in 0..<Self.rawPasses {
                            passes.append(try await rawConsume(cluster: cluster, topic: topic, expected: n, batch: batch, batchSize: Self.pollBatchSize, logger: logger))
                        }
                        let best = passes.max { $0.rate < $1.rate }!
                        if batch { report.layouts[li].rawBatch.append(best) } else { report.layouts[li].rawPoll.append(best) }
                        progress("  raw \(batch ? "pollBatch" : "poll"): \(BenchFormat.rate(best.rate)) records/s, the best of "
                            + passes.map { BenchFormat.rate($0.rate) }.joined(separator: ", "))
                    }
                }
                var engineTotals: [UserTotals?]?
                if !skipped.contains(.engine) {
                    for guarantee in ["at_least_once", "exactly_once"] {
                        let tag = "r\(run)-\(lt)-\(guarantee == "at_least_once" ? "alos" : "eos")"
                        let appId = "bench-\(tag)-\(UUID().uuidString.prefix(6).lowercased())"
                        let yaml = BenchPipeline.yaml(appId: appId, topic: topic, guarantee: guarantee, commitIntervalMs: commitIntervalMs, redisPrefix: appId)
                        let config = try benchConfig(yaml, name: "bench-\(tag).yaml", registry: registry)
                        let r = try await runEngineProcess(yaml: yaml, config: config, cluster: cluster, redisURL: redisServer.url,
                                                           stateDir: "\(stateRoot)/\(tag)", input: n, workDir: workDir, name: "bench-\(tag)", cpu: clientCPU, logger: logger)
                        progress("  engine \(guarantee): \(BenchFormat.rate(r.rate)) records/s (\(BenchFormat.seconds(r.seconds)); "
                            + "after the assignment \(BenchFormat.rate(r.steadyRate))/s), \(r.commits) commits")
                        guard r.processed == n, r.deadLettered == 0 else {
                            throw CLIFailure("engine \(guarantee) run \(run) (\(layout.title)): processed \(r.processed) records (expected \(n)), \(r.deadLettered) dead-lettered")
                        }
                        let got = try await RedisTotals.readEngine(redis, prefix: appId, workload: workload)
                        let check = TotalsCheck(got, expectedLoad.totals, name: workload.user)
                        guard check.ok else { throw CLIFailure("engine \(guarantee) run \(run) (\(layout.title)): Redis totals differ from the input: \(check)") }
                        let changelog = "\(appId)-\(BenchPipeline.store)-changelog"
                        let truncated = try await cluster.truncatedPartitions(topic: changelog)
                        guard truncated.isEmpty, cluster.hasLiftedLimits(changelog) else {
                            throw CLIFailure("engine \(guarantee) run \(run): changelog \(changelog) lost records: \(truncated)")
                        }
                        let (records, offsets, _) = try await recordsAndOffsets(cluster: cluster, topic: changelog, logger: logger)
                        let markers = offsets > records
                            ? "\(BenchFormat.int(offsets - records)) offsets taken by transaction markers (transactional producer)"
                            : "no transaction markers (no transactional producer)"
                        engineChecks.append("\(layout.title), \(guarantee) run \(run): \(BenchFormat.int(r.processed)) processed, 0 dead-lettered, Redis \(check); "
                            + "changelog complete from offset 0, \(BenchFormat.int(records)) records over \(BenchFormat.int(offsets)) offsets: \(markers)")
                        if guarantee == "at_least_once" { report.layouts[li].engineALOS.append(r); engineTotals = got } else { report.layouts[li].engineEOS.append(r) }
                    }
                }
                if let peer {
                    let group = "quix-r\(run)-\(lt)-\(UUID().uuidString.prefix(6).lowercased())"
                    let q = try await peer.run(
                        cluster: cluster, topic: topic, group: group, count: n, redisPort: redisServer.port, prefix: group, workDir: workDir,
                        commitIntervalMs: commitIntervalMs, cpu: clientCPU)
                    progress("  Quix Streams: \(BenchFormat.rate(q.rate)) records/s (\(BenchFormat.seconds(q.seconds)); after the first record \(BenchFormat.rate(q.steadyRate))/s)")
                    guard q.processed == n else { throw CLIFailure("Quix Streams run \(run) (\(layout.title)): processed \(q.processed) records, expected \(n)") }
                    let got = try await RedisTotals.readQuix(redis, prefix: group, workload: workload)
                    let check = TotalsCheck(got, expectedLoad.totals, name: workload.user)
                    guard check.ok else { throw CLIFailure("Quix Streams run \(run) (\(layout.title)): Redis totals differ from the input: \(check)") }
                    var same = "not compared (engine skipped)"
                    if let engineTotals {
                        let differing = zip(engineTotals, got).filter { $0 != $1 }.count
                        guard differing == 0 else { throw CLIFailure("run \(run) (\(layout.title)): engine and Quix Streams disagree on \(differing) users") }
                        same = "identical to the engine's for every user"
                    }
                    var lost: [String] = []
                    for c in q.changelogs where try await !cluster.truncatedPartitions(topic: c).isEmpty { lost.append(c) }
                    guard lost.isEmpty else { throw CLIFailure("Quix Streams run \(run): changelog \(lost) lost records on the mock") }
                    quixChecks.append("\(layout.title), Quix run \(run): \(BenchFormat.int(q.processed)) processed, Redis \(check), \(same); changelog \(q.changelogs.joined(separator: ", ")) complete")
                    report.layouts[li].quix.append(q)
                }
                _ = try await redis.command(["FLUSHDB"])

                // The two-stage job: the engine, then the peers, each checked against the input and the engine's results.
                var engineTwoStage: (users: [String: Int64], categories: [String: Int64])?
                if !skipped.contains(.twoStage) {
                    let tag = "r\(run)-\(lt)-two-stage"
                    let appId = "bench-\(tag)-\(UUID().uuidString.prefix(6).lowercased())"
                    let yaml = BenchTwoStage.yaml(appId: appId, topic: topic, commitIntervalMs: commitIntervalMs)
                    let config = try benchConfig(yaml, name: "bench-\(tag).yaml", registry: registry)
                    let stateDir = "\(stateRoot)/\(tag)"
                    let r = try await runEngineProcess(yaml: yaml, config: config, cluster: cluster, redisURL: nil, stateDir: stateDir, input: n,
                                                       workDir: workDir, name: "bench-\(tag)", cpu: clientCPU, logger: logger)
                    progress("  engine two-stage: \(BenchFormat.rate(r.rate)) input records/s (\(BenchFormat.seconds(r.seconds)); "
                        + "after the assignment \(BenchFormat.rate(r.steadyRate)) records/s), \(BenchFormat.int(r.processed)) records processed, \(r.commits) commits")
                    guard r.deadLettered == 0 else { throw CLIFailure("engine two-stage run \(run) (\(layout.title)): \(r.deadLettered) records dead-lettered") }
                    let stores = try await BenchTwoStage.readStores(config: config, stateDir: stateDir, cluster: cluster, logger: logger)
                    let check = TwoStageCheck(users: stores.users, categories: stores.categories, expected: expectedLoad, workload: workload)
                    guard check.ok else { throw CLIFailure("engine two-stage run \(run) (\(layout.title)): the stores differ from the input: \(check)") }
                    // The engine-owned topics: created through the embedded cluster before the engine process started (retention limit lifted), nothing truncated.
                    let repartition = config.repartitionTopic(pipeline: BenchTwoStage.categoryPipeline)
                    let internalTopics = [repartition, config.changelogTopic(store: BenchTwoStage.userStore), config.changelogTopic(store: BenchTwoStage.categoryStore)]
                    for t in internalTopics {
                        let truncated = try await cluster.truncatedPartitions(topic: t)
                        guard truncated.isEmpty, cluster.hasLiftedLimits(t) else { throw CLIFailure("engine two-stage run \(run): \(t) lost records or kept the mock's retention limit: \(truncated)") }
                    }
                    // Besides the records, the repartition topic holds the upstream tasks' progress markers (no key, no value).
                    // The upstream tasks combine (`count` after the rekey): one partial per category and commit, not one record per input record.
                    let (records, offsets, markers) = try await recordsAndOffsets(cluster: cluster, topic: repartition, logger: logger)
                    guard records - markers > 0, records - markers <= n, records == offsets else {
                        throw CLIFailure("engine two-stage run \(run): the repartition topic holds \(records - markers) records and \(markers) progress markers over \(offsets) offsets, expected 1 to \(n) partials")
                    }
                    twoStageChecks.append("\(layout.title), engine two-stage run \(run): \(BenchFormat.int(r.processed)) records processed (the runtime's count over all tasks, input and repartition topic), 0 dead-lettered; "
                        + "stores read back (\(stores.fromSnapshots) partitions from their final snapshot + \(BenchFormat.int(stores.changelogRecords)) changelog records after it): \(check); "
                        + "repartition topic: \(BenchFormat.int(records - markers)) partials (one per category, upstream task and commit) for \(BenchFormat.int(n)) input records + \(markers) progress markers, complete from offset 0; \(internalTopics.joined(separator: ", ")) created by the engine through the embedded cluster, none truncated")
                    report.layouts[li].twoStage.append(r)
                    engineTwoStage = (stores.users, stores.categories)
                }
                /// A peer's two-stage run: all N records, results equal to the input's and to the engine's.
                func checkPeer(_ name: String, _ q: QuixPeer.Run) throws -> String {
                    guard q.processed == n else { throw CLIFailure("\(name) two-stage run \(run) (\(layout.title)): \(q.processed) records, expected \(n)") }
                    let got = try readTwoStageResults(q.results!)
                    let check = TwoStageCheck(users: got.users, categories: got.categories, expected: expectedLoad, workload: workload)
                    guard check.ok else { throw CLIFailure("\(name) two-stage run \(run) (\(layout.title)): results differ from the input: \(check)") }
                    guard let engineTwoStage else { return "\(check), not compared with the engine's (engine skipped)" }
                    guard got.users == engineTwoStage.users, got.categories == engineTwoStage.categories else {
                        throw CLIFailure("run \(run) (\(layout.title)): \(name) and the engine disagree on the two-stage results")
                    }
                    return "\(check), identical to the engine's stores"
                }
                if let peer {
                    let group = "quix2-r\(run)-\(lt)-\(UUID().uuidString.prefix(6).lowercased())"
                    let q = try await peer.run(cluster: cluster, topic: topic, group: group, count: n, job: .twoStage, redisPort: nil, prefix: nil,
                                               workDir: workDir, commitIntervalMs: commitIntervalMs, cpu: clientCPU)
                    progress("  Quix Streams two-stage: \(BenchFormat.rate(q.rate)) input records/s (\(BenchFormat.seconds(q.seconds)))")
                    let same = try checkPeer("Quix Streams", q)
                    let planned = Set(QuixPeer.internalTopics(job: .twoStage, group: group, topic: topic))
                    guard Set(q.changelogs + q.repartitions) == planned else {
                        throw CLIFailure("Quix Streams two-stage run \(run): it used \((q.changelogs + q.repartitions).sorted()), the benchmark created \(planned.sorted())")
                    }
                    for t in planned where try await !cluster.truncatedPartitions(topic: t).isEmpty {
                        throw CLIFailure("Quix Streams two-stage run \(run): \(t) lost records on the mock")
                    }
                    quixChecks.append("\(layout.title), Quix two-stage run \(run): \(BenchFormat.int(q.processed)) records through both stages, \(same); "
                        + "\(planned.sorted().joined(separator: ", ")) created by the benchmark, complete")
                    report.layouts[li].quixTwoStage.append(q)
                }
                if let native {
                    let group = "pathway-r\(run)-\(lt)-\(UUID().uuidString.prefix(6).lowercased())"
                    let q = try await native.run(cluster: cluster, topic: topic, group: group, count: n, workDir: workDir, commitIntervalMs: commitIntervalMs, cpu: clientCPU)
                    progress("  Pathway two-stage: \(BenchFormat.rate(q.rate)) input records/s (\(BenchFormat.seconds(q.seconds)); process \(BenchFormat.seconds(q.processSeconds)))")
                    let same = try checkPeer("Pathway", q)
                    quixChecks.append("\(layout.title), Pathway two-stage run \(run): per-category counts add up to \(BenchFormat.int(q.processed)), \(same)")
                    report.layouts[li].native.append(q)
                }
            }
            if let base = fullConfig {
                var config = base
                config.applicationId = "shop-bench-r\(run)-\(UUID().uuidString.prefix(6).lowercased())"
                let r = try await runEngineToEnd(config, registry: shopRegistry, cluster: cluster, redisURL: redisServer.url,
                                                 stateDir: "\(stateRoot)/full-\(run)", input: fullN, logger: logger)
                progress("  full \(topologies): \(BenchFormat.rate(r.rate)) input events/s (\(BenchFormat.seconds(r.seconds))), "
                    + "\(BenchFormat.int(r.processed)) records processed, \(BenchFormat.int(r.deadLettered)) dead-lettered")
                guard r.processed >= fullN else { throw CLIFailure("full run \(run): processed \(r.processed) records, fewer than the \(fullN) input events") }
                fullChecks.append("full run \(run): \(BenchFormat.int(r.processed)) records processed (input \(BenchFormat.int(fullN)) + repartitioned), \(BenchFormat.int(r.deadLettered)) dead-lettered (malformed, late or stale records; one per pipeline that rejects them)")
                report.full.append(r)
                _ = try await redis.command(["FLUSHDB"])
            }
            try? FileManager.default.removeItem(atPath: stateRoot)
        }
        report.checks += engineChecks + twoStageChecks + quixChecks + fullChecks
        if !skipped.contains(.raw) { report.checks.append("raw consume: every run read exactly \(BenchFormat.int(n)) records of each layout's topic") }
        if skipped.contains(.raw) { report.skipped.append("raw consume (`--skip raw`)") }
        if skipped.contains(.engine) { report.skipped.append("the engine's per-user aggregation (`--skip engine`)") }
        if skipped.contains(.twoStage) { report.skipped.append("the engine's two-stage job (`--skip two-stage`)") }

        // The phases after the throughput runs each stand alone: one that fails is reported as
        // failed and the others still run, so a long run keeps what it measured (exit status 1).
        func phase(_ name: String, _ body: () async throws -> Void) async {
            do {
                try await body()
            } catch {
                progress("\(name) FAILED: \(error)")
                report.failed.append("\(name): \(error)")
            }
        }

        // Latency, restore and failover on a cluster of their own, holding only what each phase
        // writes: the throughput phases leave millions of records (inputs, changelogs, the peers'
        // topics) in the first one. After them, the latency phase's broker acknowledgements had a
        // p99 of 25 ms at 2,000 events/s; on a cluster without them, 8 ms (b63a717, one run each).
        let phaseCluster: EmbeddedKafkaCluster
        if skipped.isSuperset(of: [.latency, .restore, .failover]) {
            phaseCluster = cluster
        } else {
            // The throughput phases' cluster is done with: stopped, its records freed and the heap
            // trimmed, so that the phases after it run in a process of the size they make (after a
            // complete run the in-process mock held 3.7 GB, and restores and latency measured in
            // that process ran slower than in runs of those phases alone).
            let rssBefore = residentSetKiB()
            await cluster.close()
            returnFreedMemory()
            let rssAfter = residentSetKiB()
            report.throughputClusterStopped = (rssBefore, rssAfter)
            progress("stopped the throughput phases' cluster: resident set \(rssBefore.map(BenchFormat.mib) ?? "?") → \(rssAfter.map(BenchFormat.mib) ?? "?")")
            progress("starting a second embedded Kafka cluster (3 brokers) for the latency, restore and failover phases")
            phaseCluster = try await CPUPinning.onPinnedThread(cpu: serverCPU) { try EmbeddedKafkaCluster(brokers: 3, groupInitialRebalanceDelayMs: coordinatorDelay, logger: logger) }
        }
        let phaseProducerConfig = phaseCluster.clientConfig.merging(Self.producerSettings) { $1 }

        if !skipped.contains(.latency) { await phase("latency") {
            report.latencySeconds = latencyT
            let runs = LatencySettings.rates.flatMap { rate in LatencySettings.fetchWaitsMs.map { (rate: rate, wait: $0) } }
            for (rate, wait) in runs {
                progress("latency at \(BenchFormat.int(rate)) events/s for \(BenchFormat.seconds(latencyT)), fetch.wait.max.ms \(wait)")
                let l = try await measureLatency(rate: rate, fetchWaitMs: wait, seconds: latencyT, cluster: phaseCluster, redisURL: redisServer.url,
                                                 stateDir: "\(workDir)/latency-\(rate)-w\(wait)", logger: logger)
                progress("  broker ack p50 \(BenchFormat.millis(l.ackP50)) ms, p99 \(BenchFormat.millis(l.ackP99)) ms; Redis p50 \(BenchFormat.millis(l.p50)) ms, p99 \(BenchFormat.millis(l.p99)) ms, max \(BenchFormat.millis(l.max)) ms; "
                    + "p50 \(BenchFormat.millis(l.p50FirstThird)) → \(BenchFormat.millis(l.p50LastThird)) ms; drained \(BenchFormat.seconds(l.drainSeconds)) after the last send")
                report.latency.append(l)
                report.checks.append("latency \(BenchFormat.int(rate))/s, fetch wait \(wait) ms: all \(BenchFormat.int(l.sent)) events sent became visible in Redis")
                _ = try await redis.command(["FLUSHDB"])
            }
        } } else {
            report.skipped.append("latency (`--skip latency`)")
        }

        if !skipped.contains(.restore) { await phase("restore and memory") {
            let r = try await RestoreBench(
                cluster: phaseCluster, workDir: workDir, keys: restoreN, runs: runs, producerConfig: phaseProducerConfig, clientCPU: clientCPU,
                logger: logger, progress: progress
            ).run()
            report.restore = r
            report.checks += r.checks
        } } else {
            report.skipped.append("restore and memory (`--skip restore`)")
        }
        if !skipped.contains(.failover) { await phase("failover") {
            let f = try await FailoverBench(
                cluster: phaseCluster, workDir: workDir, keys: restoreN, runs: runs, producerConfig: phaseProducerConfig, clientCPU: clientCPU,
                logger: logger, progress: progress, sessionTimeoutMs: failoverSessionTimeoutMs,
                shortSessionTimeoutMs: failoverShortSessionMs
            ).run()
            report.failover = f
            report.checks += f.checks
        } } else {
            report.skipped.append("failover (`--skip failover`)")
        }
        await redis.close()

        report.loadAtEnd = loadAverage()
        // The HTTP service section comes from another command (`--http`): it stays.
        let httpSection = HTTPBenchOptions.existingSection(in: out)
        try report.markdown.write(toFile: out, atomically: true, encoding: .utf8)
        if let httpSection { try HTTPBenchOptions.replaceSection(in: out, section: httpSection) }
        progress("wrote \(out)")
        if let readme {
            try replaceReadmeSection(path: readme, section: report.readmeSection(outPath: out))
            progress("updated the ## Benchmarks section of \(readme)")
        }
        printLine(report.readmeSection(outPath: out))
        withExtendedLifetime(cluster) {}
        withExtendedLifetime(phaseCluster) {}
        if !report.failed.isEmpty {
            throw CLIFailure("\(report.failed.count) phase\(report.failed.count == 1 ? "" : "s") failed (the report says which): \(report.failed.joined(separator: "; "))")
        }
    }
}
