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
        let python = "\(venv)/bin/python"
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("stream-engine-bench-venv-\(getpid()).log").path
        defer { try? FileManager.default.removeItem(atPath: log); try? FileManager.default.removeItem(atPath: log + ".err") }
        func step(_ argv: [String], _ what: String) async throws {
            progress("peers: \(what)")
            let r = try await runChild(argv, stdoutPath: log, stderrPath: log + ".err")
            guard r.succeeded else { throw CLIFailure("peers: \(what) failed (\(r.status)):\n\(r.stderrTail)") }
        }
        if !FileManager.default.fileExists(atPath: python) {
            try await step(["python3", "-m", "venv", venv], "python3 -m venv \(venv)")
        }
        let probe = """
            import json, platform, quixstreams, confluent_kafka, redis
            ck = confluent_kafka.version()
            print(json.dumps({'quixstreams': quixstreams.__version__, 'confluent_kafka': ck if isinstance(ck, str) else ck[0],
                              'librdkafka': confluent_kafka.libversion()[0], 'python': platform.python_version()}))
            """
        var versions = try await runChild([python, "-c", probe], stdoutPath: log, stderrPath: log + ".err")
        if !versions.succeeded {
            try await step(["\(venv)/bin/pip", "install", "--disable-pip-version-check", "-q", "-r", requirements], "pip install -r \(requirements) into \(venv)")
            versions = try await runChild([python, "-c", probe], stdoutPath: log, stderrPath: log + ".err")
            guard versions.succeeded else { throw CLIFailure("peers: \(venv) cannot import quixstreams after installing:\n\(versions.stderrTail)") }
        }
        let v = (try? JSONValue.parse(versions.stdout.trimmingCharacters(in: .whitespacesAndNewlines))) ?? .null
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
        var rate: Double { Double(processed) / seconds }
        var steadyRate: Double { Double(processed) / Swift.max(steadySeconds, 1e-9) }
    }

    /// The changelog topic Quix Streams 3 names for the default store of a one-topic dataframe.
    static func changelogTopic(group: String, topic: String) -> String { "changelog__\(group)--\(topic)--default" }

    /// Runs the peer script to the end of `topic` (it stops after `count`
    /// records); its changelog topic is created on the cluster beforehand so
    /// that the mock's retention limit is lifted for it.
    func run(
        cluster: EmbeddedKafkaCluster, topic: String, group: String, count: Int, redisPort: Int, prefix: String, workDir: String,
        commitIntervalMs: Int, cpu: Int?
    ) async throws -> Run {
        try cluster.createTopic(Self.changelogTopic(group: group, topic: topic), partitions: 4, replicationFactor: 3)
        var argv = [pythonPath, script, "--bootstrap", cluster.bootstrapServers, "--topic", topic, "--group", group,
                    "--count", String(count), "--redis-port", String(redisPort), "--prefix", prefix,
                    "--state-dir", "\(workDir)/quix-state-\(group)", "--commit-interval", String(Double(commitIntervalMs) / 1000)]
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
            changelogs: v["changelogs"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
