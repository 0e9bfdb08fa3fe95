import CLISupport
import Foundation
import KafkaClient
import Logging
import StreamEngine

/// The Quix Streams peer: a virtual environment made by the benchmark's own
/// set-up, and `Benchmarks/peers/quix_user_totals.py` run against the same broker.
struct QuixPeer: Sendable {
    /// Versions reported by the environment.
    var quixstreams: String
    var confluentKafka: String
    var librdkafka: String
    var python: String
    let pythonPath: String
    let script: String

    /// Creates `venv` with `python3 -m venv` and installs `requirements` unless
    /// it already has them, then reads the versions.
    static func setUp(venv: String, requirements: String, script: String, progress: @Sendable (String) -> Void) async throws -> QuixPeer {
        guard FileManager.default.fileExists(atPath: script) else {
            throw CLIFailure("the Quix Streams peer script \(script) is missing (run the benchmark from the repository root, or pass --peer-script)")
        }
        let probe = """
            import json, platform, quixstreams, confluent_kafka, redis
            ck = confluent_kafka.version()
            print(json.dumps({'quixstreams': quixstreams.__version__, 'confluent_kafka': ck if isinstance(ck, str) else ck[0],
                              'librdkafka': confluent_kafka.libversion()[0], 'python': platform.python_version()}))
            """
        let (python, v) = try await setUpPeerVenv(venv: venv, requirements: requirements, probe: probe, module: "quixstreams", progress: progress)
        return QuixPeer(
            quixstreams: v["quixstreams"]?.stringValue ?? "?", confluentKafka: v["confluent_kafka"]?.stringValue ?? "?",
            librdkafka: v["librdkafka"]?.stringValue ?? "?", python: v["python"]?.stringValue ?? "?", pythonPath: python, script: script)
    }

    /// One Quix Streams run.
    struct Run: Sendable {
        /// From building the Application to `app.run()` returning (as measured by the script).
        var seconds: Double
        /// From the first processed record to the return.
        var steadySeconds: Double
        var processed: Int
        /// The whole Python process (interpreter start and imports included).
        var processSeconds: Double
        var changelogs: [String]
        /// Repartition topics (the two-stage job's `group_by`).
        var repartitions: [String] = []
        /// The two-stage job's results file (JSON `{"users": {id: items}, "categories": {category: count}}`).
        var results: String?
        var rate: Double { Double(processed) / seconds }
        var steadyRate: Double { Double(processed) / Swift.max(steadySeconds, 1e-9) }
    }

    /// The changelog topic Quix Streams 3 names for the default store of a one-topic dataframe.
    static func changelogTopic(group: String, topic: String) -> String { "changelog__\(group)--\(topic)--default" }

    /// The repartition topic of `group_by("category")` on a one-topic dataframe.
    static func repartitionTopic(group: String, topic: String) -> String { "repartition__\(group)--\(topic)--category" }

    /// The topics Quix Streams needs for a job that the mock cannot create with their settings:
    /// the changelogs (and for the two-stage job the repartition topic and its dataframe's changelog).
    static func internalTopics(job: Job, group: String, topic: String) -> [String] {
        switch job {
        case .userTotals: return [changelogTopic(group: group, topic: topic)]
        case .twoStage:
            let repartition = repartitionTopic(group: group, topic: topic)
            // Quix names a dataframe's changelog after its stream id, which for a group_by is `repartition.<topic>.<name>`.
            return [changelogTopic(group: group, topic: topic), repartition, changelogTopic(group: group, topic: "repartition.\(topic).category")]
        }
    }

    /// The peer script's jobs: the per-user purchase aggregation into Redis, or the two-stage job (no sink).
    enum Job: String, Sendable {
        case userTotals = "user-totals"
        case twoStage = "two-stage"
    }

    /// Runs the peer script to the end of `topic` (it stops after `count`
    /// records); its internal topics are created on the cluster beforehand so
    /// that the mock's retention limit is lifted for them.
    func run(
        cluster: EmbeddedKafkaCluster, topic: String, group: String, count: Int, job: Job = .userTotals, redisPort: Int?, prefix: String?,
        workDir: String, commitIntervalMs: Int, cpu: Int?
    ) async throws -> Run {
        for t in Self.internalTopics(job: job, group: group, topic: topic) { try cluster.createTopic(t, partitions: 4, replicationFactor: 3) }
        var argv = [pythonPath, script, "--job", job.rawValue, "--bootstrap", cluster.bootstrapServers, "--topic", topic, "--group", group,
                    "--count", String(count),
                    "--state-dir", "\(workDir)/quix-state-\(group)", "--commit-interval", String(Double(commitIntervalMs) / 1000)]
        if let redisPort, let prefix { argv += ["--redis-port", String(redisPort), "--prefix", prefix] }
        let results = "\(workDir)/\(group)-results.json"
        if job == .twoStage { argv += ["--results", results] }
        if let cpu { argv = ["taskset", "-c", String(cpu)] + argv }
        let r = try await runChild(argv, stdoutPath: "\(workDir)/\(group).out", stderrPath: "\(workDir)/\(group).err")
        guard r.succeeded else { throw CLIFailure("Quix Streams run \(group) exited with \(r.status):\n\(r.stderrTail)") }
        guard let line = r.stdout.split(separator: "\n").last, let v = try? JSONValue.parse(String(line)),
              let seconds = v["seconds"]?.doubleValue, let processed = v["processed"]?.intValue else {
            throw CLIFailure("Quix Streams run \(group): no result line on stdout:\n\(r.stdout.suffix(500))\n\(r.stderrTail)")
        }
        return Run(
            seconds: seconds, steadySeconds: v["steady_seconds"]?.doubleValue ?? seconds, processed: Int(processed),
            processSeconds: r.seconds,
            changelogs: v["changelogs"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            repartitions: v["repartitions"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            results: job == .twoStage ? results : nil)
    }
}

/// Creates a peer's virtual environment with `python3 -m venv` and installs `requirements` unless
/// `probe` (Python printing a JSON line of versions) already runs in it; returns its python and the probe's answer.
func setUpPeerVenv(venv: String, requirements: String, probe: String, module: String, progress: @Sendable (String) -> Void) async throws -> (python: String, versions: JSONValue) {
    let python = "\(venv)/bin/python"
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("stream-engine-bench-venv-\(getpid())-\(module).log").path
    defer { try? FileManager.default.removeItem(atPath: log); try? FileManager.default.removeItem(atPath: log + ".err") }
    func step(_ argv: [String], _ what: String) async throws {
        progress("peers: \(what)")
        let r = try await runChild(argv, stdoutPath: log, stderrPath: log + ".err")
        guard r.succeeded else { throw CLIFailure("peers: \(what) failed (\(r.status)):\n\(r.stderrTail)") }
    }
    if !FileManager.default.fileExists(atPath: python) {
        try await step(["python3", "-m", "venv", venv], "python3 -m venv \(venv)")
    }
    var versions = try await runChild([python, "-c", probe], stdoutPath: log, stderrPath: log + ".err")
    if !versions.succeeded {
        try await step(["\(venv)/bin/pip", "install", "--disable-pip-version-check", "-q", "-r", requirements], "pip install -r \(requirements) into \(venv)")
        versions = try await runChild([python, "-c", probe], stdoutPath: log, stderrPath: log + ".err")
        guard versions.succeeded else { throw CLIFailure("peers: \(venv) cannot import \(module) after installing:\n\(versions.stderrTail)") }
    }
    // The last line: a package may print warnings before it.
    let line = versions.stdout.split(separator: "\n").last.map(String.init) ?? ""
    return (python, (try? JSONValue.parse(line)) ?? .null)
}

/// A peer's two-stage results file: `{"users": {userId: items}, "categories": {category: count}}`.
func readTwoStageResults(_ path: String) throws -> (users: [String: Int64], categories: [String: Int64]) {
    guard let data = FileManager.default.contents(atPath: path), let v = try? JSONValue.parse(Array(data)),
          let users = v["users"]?.objectValue, let categories = v["categories"]?.objectValue else {
        throw CLIFailure("the peer's results file \(path) is missing or not the expected JSON")
    }
    func ints(_ o: JSONObject) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for (k, x) in o {
            guard let i = x.intValue else { throw CLIFailure("\(path): \(k) holds \(x.serializedString()), not a whole number") }
            out[k] = i
        }
        return out
    }
    return (try ints(users), try ints(categories))
}

/// The native-core peer: Pathway (a Rust dataflow engine with a Python API; its Kafka
/// reader is rdkafka-rust over librdkafka), in a virtual environment of its own made by
/// the benchmark, running `Benchmarks/peers/pathway_two_stage.py` with one worker thread.
struct PathwayPeer: Sendable {
    var pathway: String
    var python: String
    let pythonPath: String
    let script: String

    /// Creates `venv` and installs `requirements` unless it already has them, then reads the versions.
    static func setUp(venv: String, requirements: String, script: String, progress: @Sendable (String) -> Void) async throws -> PathwayPeer {
        guard FileManager.default.fileExists(atPath: script) else {
            throw CLIFailure("the Pathway peer script \(script) is missing (run the benchmark from the repository root, or pass --native-script)")
        }
        let probe = "import json, platform, pathway; print(json.dumps({'pathway': pathway.__version__, 'python': platform.python_version()}))"
        let (python, v) = try await setUpPeerVenv(venv: venv, requirements: requirements, probe: probe, module: "pathway", progress: progress)
        return PathwayPeer(pathway: v["pathway"]?.stringValue ?? "?", python: v["python"]?.stringValue ?? "?", pythonPath: python, script: script)
    }

    /// Runs the script to the end of `topic` (Pathway's static Kafka read: what the topic holds at the start).
    func run(cluster: EmbeddedKafkaCluster, topic: String, group: String, count: Int, workDir: String, commitIntervalMs: Int, cpu: Int?) async throws -> QuixPeer.Run {
        let results = "\(workDir)/\(group)-results.json"
        var argv = [pythonPath, script, "--bootstrap", cluster.bootstrapServers, "--topic", topic, "--group", group, "--count", String(count),
                    "--state-dir", "\(workDir)/pathway-state-\(group)", "--results", results,
                    "--commit-interval", String(Double(commitIntervalMs) / 1000)]
        if let cpu { argv = ["taskset", "-c", String(cpu)] + argv }
        var environment = ProcessInfo.processInfo.environment
        environment["PATHWAY_THREADS"] = "1"
        environment["PATHWAY_PROCESSES"] = "1"
        let r = try await runChild(argv, stdoutPath: "\(workDir)/\(group).out", stderrPath: "\(workDir)/\(group).err", environment: environment)
        guard r.succeeded else { throw CLIFailure("Pathway run \(group) exited with \(r.status):\n\(r.stdout.suffix(300))\n\(r.stderrTail)") }
        guard let line = r.stdout.split(separator: "\n").last, let v = try? JSONValue.parse(String(line)),
              let seconds = v["seconds"]?.doubleValue, let processed = v["processed"]?.intValue else {
            throw CLIFailure("Pathway run \(group): no result line on stdout:\n\(r.stdout.suffix(500))\n\(r.stderrTail)")
        }
        return QuixPeer.Run(
            seconds: seconds, steadySeconds: v["steady_seconds"]?.doubleValue ?? seconds, processed: Int(processed),
            processSeconds: r.seconds, changelogs: [], results: results)
    }
}
