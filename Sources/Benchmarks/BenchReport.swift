import CLISupport
import Foundation

/// Everything one `stream-engine-bench` run measured, and its Markdown.
struct BenchReport: Sendable {
    var date: Date
    var commandLine: String
    var machine: MachineInfo
    var versions: [(String, String)] = []
    var events: Int
    var users: Int
    var runs: Int
    var fullEvents: Int?
    var commitIntervalMs: Int
    var producerSettings: [String: String]
    var pollBatchSize: Int
    var pinning: String
    var gitCommit: String?
    var loadAtStart = ""
    var loadAtEnd = ""

    var rawPoll: [RawConsumeRun] = []
    var rawBatch: [RawConsumeRun] = []
    var engineALOS: [EngineRun] = []
    var engineEOS: [EngineRun] = []
    var full: [EngineRun] = []
    var quix: [QuixPeer.Run] = []
    var quixPeer: QuixPeer?
    var latency: [LatencyResult] = []
    var latencySeconds: Double?
    var restore: RestoreResults?
    var failover: FailoverResults?
    var checks: [String] = []
    var skipped: [String] = []

    // MARK: Derived

    /// Per run i: engine ÷ raw batch, from the same run.
    var ratioRawBatch: Spread { Spread(zip(engineALOS, rawBatch).map { $0.rate / $1.rate }) }
    var ratioRawBatchEOS: Spread { Spread(zip(engineEOS, rawBatch).map { $0.rate / $1.rate }) }
    var ratioQuix: Spread { Spread(zip(engineALOS, quix).map { $0.rate / $1.rate }) }
    var ratioQuixSteady: Spread { Spread(zip(engineALOS, quix).map { $0.steadyRate / $1.steadyRate }) }
    var ratioRawBatchSteady: Spread { Spread(zip(engineALOS, rawBatch).map { $0.steadyRate / $1.rate }) }

    private var dateText: String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    private func rates(_ runs: [EngineRun]) -> Spread { Spread(runs.map(\.rate)) }

    // MARK: Markdown

    var markdown: String {
        var md = """
            # StreamEngine benchmarks

            Made by `\(commandLine)` on \(dateText)\(gitCommit.map { " at commit `\($0)`" } ?? ""). \
            Every figure is min / median / max over \(runs) run\(runs == 1 ? "" : "s") unless said otherwise; \
            ratios are taken run by run (each run's engine figure over the same run's raw or Quix figure), \
            since absolute numbers drift on a shared 2-core machine and ratios hold. Rerun it with the same command; \
            `stream-engine-bench --help` lists the options.

            ## Set-up

            | | |
            |---|---|
            | machine | \(machine.cores) cores (\(machine.cpuModel)), \(BenchFormat.int(machine.memTotalKiB / 1024)) MiB memory (/proc/meminfo), \(machine.os), Linux \(machine.kernel) |
            | load average (1, 5, 15 min) | \(loadAtStart) at the start, \(loadAtEnd) at the end (above 0 before the start: other processes shared the cores) |

            """
        for (k, v) in versions { md += "| \(k) | \(v) |\n" }
        md += """
            | broker | librdkafka's mock cluster in the benchmark process (`EmbeddedKafkaCluster`), 3 brokers; topics created through it (retention limit lifted), 4 partitions, replication factor 3 |
            | Redis | one `redis-server` on a free loopback port (`LocalRedisServer`), no persistence |
            | CPU pinning | \(pinning) |
            | input | N = \(BenchFormat.int(events)) purchase events (the `purchases` schema of topologies.yaml, ~140-byte JSON), keyed by userId, \(BenchFormat.int(users)) users drawn uniformly, loaded once |
            | producer | `KafkaProducer`: \(producerSettings.sorted { $0.key < $1.key }.map { "`\($0.key)=\($0.value)`" }.joined(separator: ", ")) — the same for every load |
            | engine | release build; `RuntimeOptions.pollBatchSize` \(pollBatchSize); `commit.interval.ms` \(commitIntervalMs) (throughput runs); `--stop-at-end` semantics, a fresh `application.id` per run (starts at offset 0) |

            ## Throughput

            | measurement | records/s (min / median / max) | seconds (median) | notes |
            |---|---|---|---|

            """
        func row(_ name: String, _ rates: Spread, _ seconds: Spread, _ note: String) {
            md += "| \(name) | \(rates.text(BenchFormat.rate)) | \(seconds.isEmpty ? "–" : BenchFormat.seconds(seconds.median)) | \(note) |\n"
        }
        if !rawPoll.isEmpty {
            row("raw consume, one-message `poll`", Spread(rawPoll.map(\.rate)), Spread(rawPoll.map(\.seconds)),
                "`KafkaConsumer.poll` (rd_kafka_consumer_poll), assigned partitions, no processing; per run the fastest of \(BenchCommand.rawPasses) passes, timed first record → last")
            row("raw consume, `pollBatch`", Spread(rawBatch.map(\.rate)), Spread(rawBatch.map(\.seconds)),
                "`KafkaConsumer.pollBatch` (rd_kafka_consume_batch_queue, \(pollBatchSize) per call) — the physical limit; the fastest of \(BenchCommand.rawPasses) passes per run")
        }
        if !engineALOS.isEmpty {
            row("engine, per-user aggregation, `at_least_once`", rates(engineALOS), Spread(engineALOS.map(\.seconds)),
                "start → return: topic checks, group join, processing, commits, final snapshots")
            row("  — the same, after the first batch", Spread(engineALOS.map(\.steadyRate)), Spread(engineALOS.map(\.steadySeconds)),
                "from the end of the first processed batch to the return (group join and start-up excluded)")
        }
        if !engineEOS.isEmpty {
            row("engine, per-user aggregation, `exactly_once`", rates(engineEOS), Spread(engineEOS.map(\.seconds)), "start → return")
            row("  — the same, after the first batch", Spread(engineEOS.map(\.steadyRate)), Spread(engineEOS.map(\.steadySeconds)), "")
        }
        if !quix.isEmpty {
            row("Quix Streams \(quixPeer?.quixstreams ?? ""), the same aggregation", Spread(quix.map(\.rate)), Spread(quix.map(\.seconds)),
                "Application built → `app.run()` returned (RocksDB state, changelog on, RedisSink); Python process: \(Spread(quix.map(\.processSeconds)).text(BenchFormat.seconds))")
            row("  — the same, after the first record", Spread(quix.map(\.steadyRate)), Spread(quix.map(\.steadySeconds)), "")
        }
        if !full.isEmpty, let fullEvents {
            row("engine, full topologies.yaml on the generator's mix", rates(full), Spread(full.map(\.seconds)),
                "\(BenchFormat.int(fullEvents)) generated events on 4 topics, every pipeline of the file (repartitions, windows, global table); input events/s, start → return")
            row("  — the same, after the first batch", Spread(full.map(\.steadyRate)), Spread(full.map(\.steadySeconds)),
                "records/s (input and repartition records) from the end of the first processed batch")
        }
        md += "\n### Ratios\n\n| ratio | min / median / max | goal (issue 6) |\n|---|---|---|\n"
        if !engineALOS.isEmpty, !rawBatch.isEmpty {
            md += "| engine `at_least_once` ÷ raw `pollBatch` | \(ratioRawBatch.text(BenchFormat.percent)) | ≥ 25 % |\n"
            md += "| engine `exactly_once` ÷ raw `pollBatch` | \(ratioRawBatchEOS.text(BenchFormat.percent)) | ≥ 25 % |\n"
            md += "| engine after the first batch ÷ raw `pollBatch` | \(ratioRawBatchSteady.text(BenchFormat.percent)) | |\n"
        }
        if !quix.isEmpty {
            md += "| engine `at_least_once` ÷ Quix Streams | \(ratioQuix.text(BenchFormat.ratio)) | ≥ 50× |\n"
            md += "| the same, both after their first record | \(ratioQuixSteady.text(BenchFormat.ratio)) | |\n"
        } else {
            md += "| engine ÷ Quix Streams | not measured (run with `--peers`) | ≥ 50× |\n"
        }
        md += "\nPer run:\n\n| run | raw poll | raw pollBatch | engine ALOS | engine EOS | Quix | engine ALOS ÷ pollBatch | engine ALOS ÷ Quix |\n|---|---|---|---|---|---|---|---|\n"
        for i in 0..<runs {
            func at<T>(_ a: [T], _ f: (T) -> Double) -> Double { i < a.count ? f(a[i]) : .nan }
            let e = at(engineALOS, \.rate)
            md += "| \(i + 1) | \(BenchFormat.rate(at(rawPoll, \.rate))) | \(BenchFormat.rate(at(rawBatch, \.rate))) | \(BenchFormat.rate(e)) | "
                + "\(BenchFormat.rate(at(engineEOS, \.rate))) | \(BenchFormat.rate(at(quix, \.rate))) | "
                + "\(BenchFormat.percent(e / at(rawBatch, \.rate))) | \(BenchFormat.ratio(e / at(quix, \.rate))) |\n"
        }

        if !latency.isEmpty {
            md += """

                ## Latency

                Producer send → the value visible in Redis. The engine runs the same per-user aggregation (`at_least_once`, \
                `commit.interval.ms` \(LatencySettings.commitIntervalMs), consumer `fetch.wait.max.ms` \(LatencySettings.kafka["fetch.wait.max.ms"] ?? "?"): \
                the mock answers an empty fetch only after that long) on a topic of its own; the producer (`linger.ms=\(LatencySettings.producer["linger.ms"] ?? "?")`, \
                as for the load: the mock returns one produced batch per partition per Fetch, so one-record batches at 2,000/s would outrun any consumer) \
                sends at a fixed rate for \(BenchFormat.seconds(latencySeconds ?? 0)), round-robin over \(LatencySettings.users) users, and remembers when it sent \
                each user's k-th event. A poller reads every user's `orders` field with one pipelined `HGET` round about every millisecond; event k of a user \
                is visible at the first poll that shows `orders` ≥ k. The same poller reads the producer's count of delivery reports, which gives \
                send → broker acknowledgement (the producer's and the broker's share of the latency). One measurement per rate (each a distribution of \
                every event sent).

                | rate (events/s) | sent | achieved rate | broker ack p50 / p99 ms | Redis p50 ms | Redis p99 ms | Redis max ms | p50 first third → last third | drain after last send | poll interval | goal |
                |---|---|---|---|---|---|---|---|---|---|---|

                """
            for l in latency {
                let goal = l.rate == 2000 ? "p99 ≤ 20 ms" : l.rate == 20000 ? "no growth of lag" : ""
                md += "| \(BenchFormat.int(l.rate)) | \(BenchFormat.int(l.sent)) | \(BenchFormat.int(Int(l.achievedRate.rounded()))) | "
                    + "\(BenchFormat.millis(l.ackP50)) / \(BenchFormat.millis(l.ackP99)) | \(BenchFormat.millis(l.p50)) | "
                    + "\(BenchFormat.millis(l.p99)) | \(BenchFormat.millis(l.max)) | \(BenchFormat.millis(l.p50FirstThird)) → \(BenchFormat.millis(l.p50LastThird)) | "
                    + "\(BenchFormat.seconds(l.drainSeconds)) | \(BenchFormat.millis(l.pollIntervalMs)) ms | \(goal) |\n"
            }
        }

        if let r = restore {
            let snap = Spread(r.fromSnapshot.map(\.seconds))
            let log = Spread(r.fromChangelog.map(\.seconds))
            md += """

                ## Restore

                A store of \(BenchFormat.int(r.keys)) keys (`purchase_stats` per user, one event per key) built by an engine process \
                (`stream-engine run --stop-at-end`), which wrote snapshots when it stopped; then \(BenchFormat.int(r.tailEvents)) updates of existing keys \
                processed by a second engine process, leaving a changelog tail of \(BenchFormat.int(r.tailChangelogRecords)) records behind the first snapshots \
                (changelog: \(BenchFormat.int(r.changelogRecords + r.tailChangelogRecords)) records in all). Restored with the runtime's `StoreRestorer` \
                (its async `restore`, as a task calls it: the changelog range is split into up to 4 ranges of at least 50,000 records, each \
                replayed by its own consumer on its own executor, at once), the 4 partitions one after the other as a starting instance restores its tasks (seconds: the sum of the \
                4 restores, making the consumers included), until every key is ready; and from the changelog alone with the 4 partitions at once \
                (the 4 restores in a task group; seconds: wall time including making and closing the consumers).

                | restore | seconds (min / median / max) | records/s (median) | keys | goal |
                |---|---|---|---|---|
                | from the first snapshots + the changelog tail | \(snap.text(BenchFormat.seconds)) | \(BenchFormat.rate(Spread(r.fromSnapshot.map(\.keyRate)).median)) keys/s (\(BenchFormat.int(r.fromSnapshot.first?.changelogRecords ?? 0)) tail records) | \(BenchFormat.int(r.fromSnapshot.first?.keys ?? 0)) | ≤ 2 s for 1M keys |
                | from the changelog alone (snapshots removed) | \(log.text(BenchFormat.seconds)) | \(BenchFormat.rate(Spread(r.fromChangelog.map(\.changelogRate)).median)) records/s | \(BenchFormat.int(r.fromChangelog.first?.keys ?? 0)) | ≥ 500,000 records/s |
                | from the changelog alone, the 4 partitions at once | \(Spread(r.fromChangelogConcurrently.map(\.seconds)).text(BenchFormat.seconds)) | \(BenchFormat.rate(Spread(r.fromChangelogConcurrently.map(\.changelogRate)).median)) records/s | \(BenchFormat.int(r.fromChangelogConcurrently.first?.keys ?? 0)) | ≥ 500,000 records/s |

                ## Memory

                Peak RSS of engine processes (`stream-engine run --stop-at-end`, one process per line), measured by GNU time \
                (`/usr/bin/time -f %M`, which forks the process from its own small one).

                | process | keys held | input events | seconds | peak RSS |
                |---|---|---|---|---|

                """
            for p in r.processes {
                md += "| \(p.what) | \(BenchFormat.int(p.keys)) | \(BenchFormat.int(p.inputEvents)) | \(BenchFormat.seconds(p.seconds)) | \(BenchFormat.mib(p.maxRSSKiB)) |\n"
            }
            if let perMillion = r.rssPerMillionKeysKiB {
                md += "\nPeak RSS per million keys held: **\(BenchFormat.mib(Int(perMillion)))** (build minus baseline — the same number of events over 1,000 keys — scaled to 10⁶ keys).\n"
            } else {
                md += "\nPeak RSS per million keys: not measurable at this store size (the build's peak is not above the baseline's).\n"
            }
        }

        if let f = failover {
            md += "\n" + f.markdown
        }

        if !quix.isEmpty {
            md += """

                ## Quix Streams: what was shimmed

                Quix Streams \(quixPeer?.quixstreams ?? "") (confluent-kafka \(quixPeer?.confluentKafka ?? ""), bundled librdkafka \(quixPeer?.librdkafka ?? ""), \
                Python \(quixPeer?.python ?? "")) runs `Benchmarks/peers/quix_user_totals.py` in `.venv-bench`, made by the benchmark \
                (`python3 -m venv .venv-bench && .venv-bench/bin/pip install -r Benchmarks/peers/requirements.txt`). The mock broker has no \
                DescribeConfigs and no CreateTopics, which Quix's `TopicAdmin` calls for every topic. The script replaces exactly two methods:

                - `TopicAdmin.inspect_topics`: partition and replica counts from a Metadata request (`list_topics`), configs = Kafka's broker defaults \
                (`cleanup.policy=delete`, `retention.ms=604800000`, `retention.bytes=-1`, `min.insync.replicas=1`, `max.message.bytes=1048588`) \
                instead of DescribeConfigs.
                - `TopicAdmin.create_topics`: a Metadata request naming the topic with auto-creation allowed, checked to have the partition count \
                Quix asked for, instead of CreateTopics. The benchmark creates Quix's changelog topic (`changelog__<group>--<topic>--default`, \
                4 partitions) on the cluster before each run so that the mock's retention limit is lifted for it; the shim then finds it.

                Nothing else is changed: consuming, producing, committing, RocksDB state, the changelog and `RedisSink` are Quix's own. \
                Quix's settings: `processing_guarantee="at-least-once"`, `commit_interval` \(Double(commitIntervalMs) / 1000) s (as the engine's), \
                `auto_offset_reset="earliest"`, a fresh consumer group per run, `app.run(count=N)`.

                """
        }

        md += "\n## Verification\n\n"
        for c in checks { md += "- \(c)\n" }
        if !skipped.isEmpty {
            md += "\n## Not measured in this run\n\n"
            for s in skipped { md += "- \(s)\n" }
        }
        return md
    }

    /// The `## Benchmarks` section of the README: the headline figures, the same as in BENCHMARKS.md.
    func readmeSection(outPath: String) -> String {
        var s = """
            ## Benchmarks

            ```sh
            swift build -c release   # builds stream-engine and the benchmark, stream-engine-bench, next to it
            .build/release/stream-engine-bench [--events N] [--runs 3] [--peers] [--out BENCHMARKS.md] [--quick] [--latency-seconds 30] [--restore-keys N]
            ```

            measures, on one embedded 3-broker cluster (4 partitions) and one local `redis-server`: raw consume through the \
            project's bindings (`poll` and `pollBatch`), the engine's per-user purchase aggregation end to end (`at_least_once` \
            and `exactly_once`), the full `topologies.yaml` on the generator's mix, Quix Streams on the same data (`--peers`, \
            in a virtual environment the benchmark makes, `.venv-bench`), latency at 200 / 2,000 / 20,000 events/s, restore \
            from snapshot and from the changelog, and peak RSS per million keys; it verifies every count and writes \
            [`\(outPath)`](\(outPath)). Latest run (\(machine.cores) cores, N = \(BenchFormat.int(events)), min / median / max over \(runs) runs):

            | | |
            |---|---|

            """
        if !rawBatch.isEmpty { s += "| raw `pollBatch` consume | \(Spread(rawBatch.map(\.rate)).text(BenchFormat.rate)) records/s |\n" }
        if !engineALOS.isEmpty {
            s += "| engine, per-user aggregation (`at_least_once`) | \(rates(engineALOS).text(BenchFormat.rate)) records/s |\n"
            s += "| engine ÷ raw `pollBatch` | \(ratioRawBatch.text(BenchFormat.percent)) (goal ≥ 25 %) |\n"
        }
        if !quix.isEmpty {
            s += "| Quix Streams \(quixPeer?.quixstreams ?? "") | \(Spread(quix.map(\.rate)).text(BenchFormat.rate)) records/s |\n"
            s += "| engine ÷ Quix Streams | \(ratioQuix.text(BenchFormat.ratio)) (goal ≥ 50×) |\n"
        }
        if let l = latency.first(where: { $0.rate == 2000 }) {
            s += "| latency at 2,000 events/s | p50 \(BenchFormat.millis(l.p50)) ms, p99 \(BenchFormat.millis(l.p99)) ms (goal p99 ≤ 20 ms) |\n"
        }
        if let r = restore {
            s += "| restore \(BenchFormat.int(r.keys)) keys from the changelog | \(BenchFormat.rate(Spread(r.fromChangelog.map(\.changelogRate)).median)) records/s partition after partition, \(BenchFormat.rate(Spread(r.fromChangelogConcurrently.map(\.changelogRate)).median)) records/s the 4 at once (goal ≥ 500,000) |\n"
            s += "| restore from snapshot + tail | \(BenchFormat.seconds(Spread(r.fromSnapshot.map(\.seconds)).median)) (goal ≤ 2 s for 1M keys) |\n"
            if let m = r.rssPerMillionKeysKiB { s += "| peak RSS per million keys | \(BenchFormat.mib(Int(m))) |\n" }
        }
        if let f = failover, !f.samples.isEmpty {
            let with = Spread(f.samples.filter(\.standby).map(\.killToFirstCommit)).median
            let without = Spread(f.samples.filter { !$0.standby }.map(\.killToFirstCommit)).median
            s += "| failover, SIGKILL → first commit, \(BenchFormat.int(f.keys)) keys | \(BenchFormat.seconds(with)) with a standby, \(BenchFormat.seconds(without)) without (goal ≤ 2 s) |\n"
        }
        return s
    }
}

/// Replaces the `## Benchmarks` section of a README (up to the next `## ` heading or the end), or appends it.
func replaceReadmeSection(path: String, section: String) throws {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    var lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    var sectionLines = section.components(separatedBy: "\n")
    while sectionLines.last == "" { sectionLines.removeLast() }
    if let start = lines.firstIndex(of: "## Benchmarks") {
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") } ?? lines.count
        lines.replaceSubrange(start..<end, with: sectionLines + (end < lines.count ? [""] : []))
    } else {
        if lines.last != "" { lines.append("") }
        lines += sectionLines
    }
    try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
}
