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

    /// The throughput results of each batch layout (the first: small batches, the headline figures).
    var layouts: [LayoutResults] = []
    var full: [EngineRun] = []
    var quixPeer: QuixPeer?
    var nativePeer: PathwayPeer?
    var latency: [LatencyResult] = []
    var latencySeconds: Double?
    /// The benchmark process's resident set (KiB) before and after the throughput phases'
    /// cluster was stopped (nil: not stopped, those phases and the later ones share it).
    var throughputClusterStopped: (before: Int?, after: Int?)?
    var restore: RestoreResults?
    var failover: FailoverResults?
    var checks: [String] = []
    var skipped: [String] = []
    /// Phases that failed (name: error); the run's other figures stand.
    var failed: [String] = []

    // MARK: Derived


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
            `stream-engine-bench --help` lists the options.\(failed.isEmpty ? "" : " **\(failed.count) phase\(failed.count == 1 ? "" : "s") failed in this run** (listed under Verification); the others' figures stand.")

            ## Set-up

            | | |
            |---|---|
            | machine | \(machine.cores) cores (\(machine.cpuModel)), \(BenchFormat.int(machine.memTotalKiB / 1024)) MiB memory (/proc/meminfo), \(machine.os), Linux \(machine.kernel) |
            | load average (1, 5, 15 min) | \(loadAtStart) at the start, \(loadAtEnd) at the end (above 0 before the start: other processes shared the cores) |

            """
        for (k, v) in versions { md += "| \(k) | \(v) |\n" }
        md += """
            | broker | librdkafka's mock cluster in the benchmark process (`EmbeddedKafkaCluster`), 3 brokers; topics created through it (retention limit lifted), 4 partitions, replication factor 3; the latency, restore and failover phases on a second such cluster, started after the throughput phases, so that the records those left (millions) are not in the broker they measure\(throughputClusterStopped.map { "; the first cluster stopped before it started and the freed heap trimmed (the benchmark process's resident set \($0.before.map(BenchFormat.mib) ?? "?") → \($0.after.map(BenchFormat.mib) ?? "?")), so those phases run in a process of the size they make" } ?? ""); consumer groups: a JoinGroup round ends as soon as every member has rejoined, `group.initial.rebalance.delay.ms` 0 as in Kafka's development `server.properties` (the engine's timer on the mock thread, `kafka_mock_groups.h`; the mock as shipped waits 3 s on a group's first join, which the whole-process figures of the engine and of Quix Streams, both group members, included in the runs before this setting) |
            | Redis | one `redis-server` on a free loopback port (`LocalRedisServer`), no persistence |
            | CPU pinning | \(pinning) |
            | input | N = \(BenchFormat.int(events)) purchase events (the `purchases` schema of topologies.yaml, ~140-byte JSON), keyed by userId, \(BenchFormat.int(users)) users drawn uniformly, loaded once |
            | engine | release build; the throughput runs of the per-user aggregation and the two-stage job as `stream-engine run --stop-at-end` processes of their own (pinned like the peers), the full topologies.yaml in the benchmark process; poll batches of \(pollBatchSize) records; `commit.interval.ms` \(commitIntervalMs) (throughput runs); the engine's producer defaults: changelogs zstd level 1, repartition records lz4 (`defaults.repartition.compression.type`); `--stop-at-end` semantics, a fresh `application.id` per run (starts at offset 0) |

            """
        for l in layouts {
            md += "| producer, layout \"\(l.layout.title)\" (`\(l.layout.topic)`) | `KafkaProducer`: \(l.layout.producerSettings.sorted { $0.key < $1.key }.map { "`\($0.key)=\($0.value)`" }.joined(separator: ", ")) — \(l.layout.description)\(l.layout.loadSeconds.map { "; loaded in \(BenchFormat.seconds($0))" } ?? "")\(l.layout.fetchSummary.map { "; read back: \($0)" } ?? "") |\n"
        }
        md += "| producer, other loads | `KafkaProducer`: \(producerSettings.sorted { $0.key < $1.key }.map { "`\($0.key)=\($0.value)`" }.joined(separator: ", ")) (the full run's generated mix, latency, restore, failover) |\n"
        md += """

            ## Throughput

            The same N purchase events are loaded once into one topic per batch layout. librdkafka's mock answers a Fetch with \
            one producer batch per partition, so the layout sets how many records each fetch brings and changes every figure: \
            each layout has its own table, and every ratio is taken against raw `pollBatch` of the same layout in the same run. \
            The two-stage job: the sum of `quantity` per user (state keyed by the producer's key) and, through a repartition by \
            category, the count of events per category — two stateful stages with changelogs, no sink (`at_least_once`). \
            The engine combines before the repartition (`defaults.combine.before.repartition`, on by default since 636968a): \
            each upstream task sends one partial count per category and commit, so the repartition topic carries a few hundred \
            records, not one per input record; Quix Streams' `group_by` sends every record through its repartition topic.

            """
        func row(_ name: String, _ rates: Spread, _ seconds: Spread, _ note: String) {
            md += "| \(name) | \(rates.text(BenchFormat.rate)) | \(seconds.isEmpty ? "–" : BenchFormat.seconds(seconds.median)) | \(note) |\n"
        }
        for l in layouts {
            md += "\n### \(l.layout.title.prefix(1).uppercased() + l.layout.title.dropFirst()) (`\(l.layout.topic)`)\n\nProducer `linger.ms=\(l.layout.producerSettings["linger.ms"] ?? "?")`, `batch.num.messages=\(l.layout.producerSettings["batch.num.messages"] ?? "?")`: \(l.layout.description)\(l.layout.fetchSummary.map { ". Read back one fetch at a time: \($0)" } ?? "").\n\n"
            md += "| measurement | records/s (min / median / max) | seconds (median) | notes |\n|---|---|---|---|\n"
            if !l.rawPoll.isEmpty {
                row("raw consume, one-message `poll`", Spread(l.rawPoll.map(\.rate)), Spread(l.rawPoll.map(\.seconds)),
                    "`KafkaConsumer.poll` (rd_kafka_consumer_poll), assigned partitions, no processing; per run the fastest of \(BenchCommand.rawPasses) passes, timed first record → last")
                row("raw consume, `pollBatch`", Spread(l.rawBatch.map(\.rate)), Spread(l.rawBatch.map(\.seconds)),
                    "`KafkaConsumer.pollBatch` (rd_kafka_consume_batch_queue, \(pollBatchSize) per call) — the physical limit; the fastest of \(BenchCommand.rawPasses) passes per run")
            }
            if !l.engineALOS.isEmpty {
                row("engine, per-user aggregation + Redis, `at_least_once`", rates(l.engineALOS), Spread(l.engineALOS.map(\.seconds)),
                    "a `stream-engine run --stop-at-end` process, spawned → exited: start-up, topic checks, group join, processing, commits, final snapshots")
                row("  — the same, after the assignment", Spread(l.engineALOS.map(\.steadyRate)), Spread(l.engineALOS.map(\.steadySeconds)),
                    "from the process's log line of the assignment (read every 2 ms) to its exit (start-up and group join excluded)")
            }
            if !l.engineEOS.isEmpty {
                row("engine, per-user aggregation + Redis, `exactly_once`", rates(l.engineEOS), Spread(l.engineEOS.map(\.seconds)), "start → return")
                row("  — the same, after the assignment", Spread(l.engineEOS.map(\.steadyRate)), Spread(l.engineEOS.map(\.steadySeconds)), "")
            }
            if !l.quix.isEmpty {
                row("Quix Streams \(quixPeer?.quixstreams ?? ""), the same aggregation", Spread(l.quix.map(\.rate)), Spread(l.quix.map(\.seconds)),
                    "Application built → `app.run()` returned (RocksDB state, changelog on, RedisSink); Python process: \(Spread(l.quix.map(\.processSeconds)).text(BenchFormat.seconds))")
                row("  — the same, after the first record", Spread(l.quix.map(\.steadyRate)), Spread(l.quix.map(\.steadySeconds)), "")
            }
            if !l.twoStage.isEmpty {
                row("engine, two-stage job, `at_least_once`", rates(l.twoStage), Spread(l.twoStage.map(\.seconds)),
                    "input records/s, a `stream-engine run --stop-at-end` process, spawned → exited (group join, both stages, the repartition topic, commits, final snapshots)")
                row("  — the same, after the assignment", Spread(l.twoStage.map(\.steadyRate)), Spread(l.twoStage.map(\.steadySeconds)),
                    "records/s processed (the process's count over all tasks: input and repartition records) from its log line of the assignment to its exit")
            }
            if !l.quixTwoStage.isEmpty {
                row("Quix Streams \(quixPeer?.quixstreams ?? ""), two-stage job", Spread(l.quixTwoStage.map(\.rate)), Spread(l.quixTwoStage.map(\.seconds)),
                    "input records/s, Application built → `app.run()` returned (RocksDB state, changelogs, `group_by` repartition topic); Python process: \(Spread(l.quixTwoStage.map(\.processSeconds)).text(BenchFormat.seconds))")
            }
            if !l.native.isEmpty {
                row("Pathway \(nativePeer?.pathway ?? ""), two-stage job", Spread(l.native.map(\.rate)), Spread(l.native.map(\.seconds)),
                    "input records/s, dataflow built (after `import pathway`) → `pw.run()` returned (1 worker thread, input persistence to local disk); Python process: \(Spread(l.native.map(\.processSeconds)).text(BenchFormat.seconds))")
            }
            md += "\n| ratio (\(l.layout.title)) | min / median / max | goal |\n|---|---|---|\n"
            if !l.rawBatch.isEmpty {
                if !l.engineALOS.isEmpty {
                    md += "| engine per-user aggregation `at_least_once` ÷ raw `pollBatch` | \(l.ratioRawBatch.text(BenchFormat.percent)) | ≥ 35 % (issue 13) |\n"
                    md += "| engine per-user aggregation `exactly_once` ÷ raw `pollBatch` | \(l.ratioRawBatchEOS.text(BenchFormat.percent)) | |\n"
                    md += "| engine per-user aggregation after the assignment ÷ raw `pollBatch` | \(l.ratioRawBatchSteady.text(BenchFormat.percent)) | |\n"
                }
                if !l.twoStage.isEmpty {
                    md += "| engine two-stage job ÷ raw `pollBatch` | \(l.ratioTwoStageRawBatch.text(BenchFormat.percent)) | ≥ 25 % (issue 13) |\n"
                }
            }
            if !l.quix.isEmpty, !l.engineALOS.isEmpty {
                md += "| engine per-user aggregation `at_least_once` ÷ Quix Streams | \(l.ratioQuix.text(BenchFormat.ratio)) | ≥ 50× (issue 6) |\n"
                md += "| the same, both after their first record | \(l.ratioQuixSteady.text(BenchFormat.ratio)) | |\n"
            }
            if !l.quixTwoStage.isEmpty, !l.twoStage.isEmpty {
                md += "| engine two-stage ÷ Quix Streams two-stage | \(l.ratioTwoStageQuix.text(BenchFormat.ratio)) | |\n"
            }
            if !l.native.isEmpty, !l.twoStage.isEmpty {
                md += "| engine two-stage ÷ Pathway two-stage | \(l.ratioTwoStageNative.text(BenchFormat.ratio)) | |\n"
            }
            if l.quix.isEmpty && l.quixTwoStage.isEmpty { md += "| engine ÷ Quix Streams, ÷ Pathway | not measured (run with `--peers`) | |\n" }
            md += "\nPer run (records/s; two-stage: input records/s):\n\n"
            md += "| run | raw poll | raw pollBatch | engine ALOS | engine EOS | Quix | engine two-stage | Quix two-stage | Pathway two-stage | ALOS ÷ pollBatch | two-stage ÷ pollBatch | ALOS ÷ Quix | two-stage ÷ Quix | two-stage ÷ Pathway |\n"
            md += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            for i in 0..<runs {
                func at<T>(_ a: [T], _ f: (T) -> Double) -> Double { i < a.count ? f(a[i]) : .nan }
                let e = at(l.engineALOS, \.rate)
                let t = at(l.twoStage, \.rate)
                let raw = at(l.rawBatch, \.rate)
                md += "| \(i + 1) | \(BenchFormat.rate(at(l.rawPoll, \.rate))) | \(BenchFormat.rate(raw)) | \(BenchFormat.rate(e)) | "
                    + "\(BenchFormat.rate(at(l.engineEOS, \.rate))) | \(BenchFormat.rate(at(l.quix, \.rate))) | \(BenchFormat.rate(t)) | "
                    + "\(BenchFormat.rate(at(l.quixTwoStage, \.rate))) | \(BenchFormat.rate(at(l.native, \.rate))) | "
                    + "\(BenchFormat.percent(e / raw)) | \(BenchFormat.percent(t / raw)) | \(BenchFormat.ratio(e / at(l.quix, \.rate))) | "
                    + "\(BenchFormat.ratio(t / at(l.quixTwoStage, \.rate))) | \(BenchFormat.ratio(t / at(l.native, \.rate))) |\n"
            }
        }
        if !full.isEmpty, let fullEvents {
            md += "\n### The full topologies.yaml\n\n| measurement | records/s (min / median / max) | seconds (median) | notes |\n|---|---|---|---|\n"
            row("engine, full topologies.yaml on the generator's mix", rates(full), Spread(full.map(\.seconds)),
                "\(BenchFormat.int(fullEvents)) generated events on 4 topics (small-batch producer settings), every pipeline of the file (repartitions, windows, global table); input events/s, start → return")
            row("  — the same, after the first batch", Spread(full.map(\.steadyRate)), Spread(full.map(\.steadySeconds)),
                "records/s (input and repartition records) from the end of the first processed batch")
        }

        if !latency.isEmpty {
            md += """

                ## Latency

                Producer send → the value visible in Redis. The engine runs the same per-user aggregation (`at_least_once`, \
                `commit.interval.ms` \(LatencySettings.commitIntervalMs)) on a topic of its own, once per consumer `fetch.wait.max.ms` of \
                \(LatencySettings.fetchWaitsMs.map(String.init).joined(separator: " and ")) ms at every rate: the mock answers an empty fetch only after that long, \
                and records produced meanwhile wait for the answer (a real broker answers as soon as a record arrives), so a short wait cuts the latency at low \
                rates and costs the mock's broker thread more empty fetches at high rates. The summary takes, per rate, the wait with the lower p99; the producer (`linger.ms=\(LatencySettings.producer["linger.ms"] ?? "?")`, \
                as for the load: the mock returns one produced batch per partition per Fetch, so one-record batches at 2,000/s would outrun any consumer) \
                sends at a fixed rate for \(BenchFormat.seconds(latencySeconds ?? 0)), round-robin over \(LatencySettings.users) users, and remembers when it sent \
                each user's k-th event. A poller reads every user's `orders` field with one pipelined `HGET` round about every millisecond; event k of a user \
                is visible at the first poll that shows `orders` ≥ k. The same poller reads the producer's count of delivery reports, which gives \
                send → broker acknowledgement (the producer's and the broker's share of the latency). One measurement per rate (each a distribution of \
                every event sent).

                | rate (events/s) | fetch wait ms | sent | achieved rate | broker ack p50 / p99 ms | Redis p50 ms | Redis p99 ms | Redis max ms | p50 first third → last third | drain after last send | poll interval | goal |
                |---|---|---|---|---|---|---|---|---|---|---|---|

                """
            for l in latency {
                let goal = l.rate == 2000 ? "p99 ≤ 20 ms" : l.rate == 20000 ? "p99 ≤ 50 ms" : ""
                md += "| \(BenchFormat.int(l.rate)) | \(l.fetchWaitMs) | \(BenchFormat.int(l.sent)) | \(BenchFormat.int(Int(l.achievedRate.rounded()))) | "
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
                replayed by its own consumer on its own executor, at once), the 4 partitions one after the other, each as a task restoring alone does \
                (seconds: the sum of the 4 restores, making the consumers included), until every key is ready; and from the changelog alone with the 4 \
                partitions at once, as a starting instance restores its tasks (`TaskManager`: the tasks at once, 4 consumers in all, here one a partition; \
                seconds: wall time including making and closing the consumers).

                | restore | seconds (min / median / max) | records/s (median) | keys | goal |
                |---|---|---|---|---|
                | from the first snapshots + the changelog tail | \(snap.text(BenchFormat.seconds)) | \(BenchFormat.rate(Spread(r.fromSnapshot.map(\.keyRate)).median)) keys/s (\(BenchFormat.int(r.fromSnapshot.first?.changelogRecords ?? 0)) tail records) | \(BenchFormat.int(r.fromSnapshot.first?.keys ?? 0)) | ≤ 2 s for 1M keys |
                | from the changelog alone (snapshots removed) | \(log.text(BenchFormat.seconds)) | \(BenchFormat.rate(Spread(r.fromChangelog.map(\.changelogRate)).median)) records/s | \(BenchFormat.int(r.fromChangelog.first?.keys ?? 0)) | ≥ 500,000 records/s |
                | from the changelog alone, the 4 partitions at once (a starting instance) | \(Spread(r.fromChangelogConcurrently.map(\.seconds)).text(BenchFormat.seconds)) | \(BenchFormat.rate(Spread(r.fromChangelogConcurrently.map(\.changelogRate)).median)) records/s | \(BenchFormat.int(r.fromChangelogConcurrently.first?.keys ?? 0)) | ≥ 500,000 records/s |

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

        if quixPeer != nil {
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
                Quix asked for, instead of CreateTopics. The benchmark creates Quix's internal topics on the cluster before each run so that \
                the mock's retention limit is lifted for them, 4 partitions each; the shim then finds them: the changelog \
                (`changelog__<group>--<topic>--default`), and for the two-stage job also the repartition topic of `group_by("category")` \
                (`repartition__<group>--<topic>--category`) and the changelog of the grouped dataframe's store \
                (`changelog__<group>--repartition.<topic>.category--default`). After each run the benchmark checks that the topics \
                Quix reports using are exactly these.

                Nothing else is changed: consuming, producing, committing, RocksDB state, the changelogs, the repartition and `RedisSink` are Quix's own. \
                Quix's settings: `processing_guarantee="at-least-once"`, `commit_interval` \(Double(commitIntervalMs) / 1000) s (as the engine's), \
                `auto_offset_reset="earliest"`, a fresh consumer group per run, `app.run(count=N)` (the two-stage job: `count=2N`, one output \
                per record on each of its two branches). The two-stage job (`--job two-stage`) is two branches of one dataframe: \
                `apply(user_sum, stateful=True)` and `group_by("category").apply(category_count, stateful=True)`; each callback also keeps the \
                value it computed per key in a Python dict, written to a JSON file after `app.run()` returned, which the benchmark checks.

                """
        }
        if let native = nativePeer {
            md += """

                ## Pathway: what it needed

                Pathway \(native.pathway) (Python \(native.python)) runs `Benchmarks/peers/pathway_two_stage.py` in `.venv-bench-native`, made by \
                the benchmark (`python3 -m venv .venv-bench-native && .venv-bench-native/bin/pip install -r Benchmarks/peers/pathway-requirements.txt`), \
                with `PATHWAY_THREADS=1` (one worker) under `taskset -c 1`. No shim: Pathway's Kafka reader (`pw.io.kafka.read`, rdkafka-rust over \
                librdkafka) only consumes, and the job needs no topic of its own — Pathway keeps its state in its own engine and exchanges records \
                between workers in memory (with one worker the `groupby` by category is local), so nothing is created on the mock. \
                The job: `pw.io.kafka.read(..., format="json", schema=Purchase, mode="static", autocommit_duration_ms=\(commitIntervalMs))` — \
                "static" reads what the topic holds when the run starts and then ends the run, the counterpart of the engine's `--stop-at-end` — \
                then `groupby(userId).reduce(sum(quantity))` and `groupby(category).reduce(count())`, with `pw.persistence.Config` on a local \
                directory (Pathway's default persistence mode: the input is persisted so that a restart resumes). The results come out through \
                `pw.io.subscribe` into Python dicts (one callback per output change), written to a JSON file after `pw.run()` returned, which the benchmark \
                checks. Timed as Quix is, from building the job (after the imports) to `pw.run()` returning; the whole process's time is given too.

                """
        }

        md += "\n## Verification\n\n"
        for f in failed { md += "- **FAILED**: \(f)\n" }
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

            measures, on one embedded 3-broker cluster (4 partitions) and one local `redis-server`, on the same purchase events \
            loaded in two batch layouts (small producer batches, and 1,000-record batches): raw consume through the \
            project's bindings (`poll` and `pollBatch`), the engine's per-user purchase aggregation end to end (`at_least_once` \
            and `exactly_once`), a two-stage job (per-user sum, repartition by category, count per category), the full \
            `topologies.yaml` on the generator's mix, Quix Streams and Pathway on the same data (`--peers`, in virtual \
            environments the benchmark makes, `.venv-bench` and `.venv-bench-native`), latency at 200 / 2,000 / 20,000 events/s, restore \
            from snapshot and from the changelog, and peak RSS per million keys; it verifies every count and writes \
            [`\(outPath)`](\(outPath)). Latest run (\(machine.cores) cores, N = \(BenchFormat.int(events)), min / median / max over \(runs) \(runs == 1 ? "run" : "runs")):

            | | |
            |---|---|

            """
        for l in layouts {
            let t = "(\(l.layout.title))"
            if !l.rawBatch.isEmpty { s += "| raw `pollBatch` consume \(t) | \(Spread(l.rawBatch.map(\.rate)).text(BenchFormat.rate)) records/s |\n" }
            if !l.engineALOS.isEmpty {
                s += "| engine, per-user aggregation + Redis (`at_least_once`) \(t) | \(rates(l.engineALOS).text(BenchFormat.rate)) records/s |\n"
                s += "| engine ÷ raw `pollBatch` \(t) | \(l.ratioRawBatch.text(BenchFormat.percent)) (goal ≥ 35 %) |\n"
            }
            if !l.twoStage.isEmpty {
                s += "| engine, two-stage job (`at_least_once`) \(t) | \(rates(l.twoStage).text(BenchFormat.rate)) input records/s |\n"
                s += "| engine two-stage ÷ raw `pollBatch` \(t) | \(l.ratioTwoStageRawBatch.text(BenchFormat.percent)) (goal ≥ 25 %) |\n"
            }
            if !l.quix.isEmpty {
                s += "| Quix Streams \(quixPeer?.quixstreams ?? "") \(t) | \(Spread(l.quix.map(\.rate)).text(BenchFormat.rate)) records/s |\n"
                s += "| engine ÷ Quix Streams \(t) | \(l.ratioQuix.text(BenchFormat.ratio)) (goal ≥ 50×) |\n"
            }
            if !l.quixTwoStage.isEmpty, !l.twoStage.isEmpty { s += "| engine two-stage ÷ Quix Streams two-stage \(t) | \(l.ratioTwoStageQuix.text(BenchFormat.ratio)) |\n" }
            if !l.native.isEmpty, !l.twoStage.isEmpty { s += "| engine two-stage ÷ Pathway \(nativePeer?.pathway ?? "") two-stage \(t) | \(l.ratioTwoStageNative.text(BenchFormat.ratio)) |\n" }
        }
        for (rate, goal) in [(2000, 20.0), (20000, 50.0)] {
            guard let l = latency.filter({ $0.rate == rate }).min(by: { $0.p99 < $1.p99 }) else { continue }
            s += "| latency at \(BenchFormat.int(rate)) events/s (fetch wait \(l.fetchWaitMs) ms) | p50 \(BenchFormat.millis(l.p50)) ms, p99 \(BenchFormat.millis(l.p99)) ms (goal p99 ≤ \(Int(goal)) ms) |\n"
        }
        if let r = restore {
            s += "| restore \(BenchFormat.int(r.keys)) keys from the changelog | \(BenchFormat.rate(Spread(r.fromChangelog.map(\.changelogRate)).median)) records/s partition after partition, \(BenchFormat.rate(Spread(r.fromChangelogConcurrently.map(\.changelogRate)).median)) records/s the 4 at once as a starting instance does (goal ≥ 500,000) |\n"
            s += "| restore from snapshot + tail | \(BenchFormat.seconds(Spread(r.fromSnapshot.map(\.seconds)).median)) (goal ≤ 2 s for 1M keys) |\n"
            if let m = r.rssPerMillionKeysKiB { s += "| peak RSS per million keys | \(BenchFormat.mib(Int(m))) |\n" }
        }
        if let f = failover, !f.samples.isEmpty {
            let main = f.samples.filter { $0.sessionTimeoutMs == f.sessionTimeoutMs }
            let with = Spread(main.filter(\.standby).map(\.killToFirstCommit)).median
            let without = Spread(main.filter { !$0.standby }.map(\.killToFirstCommit)).median
            var short = ""
            if let ms = f.shortSessionTimeoutMs {
                let v = Spread(f.samples.filter { $0.sessionTimeoutMs == ms }.map(\.killToFirstCommit)).median
                short = "; \(BenchFormat.seconds(v)) with a standby at session.timeout.ms \(BenchFormat.int(ms))"
            }
            s += "| failover, SIGKILL → first commit, \(BenchFormat.int(f.keys)) keys | \(BenchFormat.seconds(with)) with a standby, \(BenchFormat.seconds(without)) without, session.timeout.ms \(BenchFormat.int(f.sessionTimeoutMs))\(short) (goal ≤ 2 s) |\n"
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

/// One batch layout of the purchase events: its topic and producer settings.
struct BenchLayout: Sendable {
    var key: String
    var title: String
    var topic: String
    var producerSettings: [String: String]
    var description: String
    /// Records every producer batch but a partition's last must hold (checked when the topic is read back).
    var fullBatchRecords: Int?
    var loadSeconds: Double?
    /// Records per fetch, as a consumer reading one fetch at a time saw them.
    var fetchSummary: String?
}

/// The throughput measurements of one layout, run by run.
struct LayoutResults: Sendable {
    var layout: BenchLayout
    var rawPoll: [RawConsumeRun] = []
    var rawBatch: [RawConsumeRun] = []
    var engineALOS: [EngineRun] = []
    var engineEOS: [EngineRun] = []
    var quix: [QuixPeer.Run] = []
    var twoStage: [EngineRun] = []
    var quixTwoStage: [QuixPeer.Run] = []
    var native: [QuixPeer.Run] = []

    /// Per run i: engine ÷ raw batch of this layout, from the same run.
    var ratioRawBatch: Spread { Spread(zip(engineALOS, rawBatch).map { $0.rate / $1.rate }) }
    var ratioRawBatchEOS: Spread { Spread(zip(engineEOS, rawBatch).map { $0.rate / $1.rate }) }
    var ratioRawBatchSteady: Spread { Spread(zip(engineALOS, rawBatch).map { $0.steadyRate / $1.rate }) }
    var ratioQuix: Spread { Spread(zip(engineALOS, quix).map { $0.rate / $1.rate }) }
    var ratioQuixSteady: Spread { Spread(zip(engineALOS, quix).map { $0.steadyRate / $1.steadyRate }) }
    var ratioTwoStageRawBatch: Spread { Spread(zip(twoStage, rawBatch).map { $0.rate / $1.rate }) }
    var ratioTwoStageQuix: Spread { Spread(zip(twoStage, quixTwoStage).map { $0.rate / $1.rate }) }
    var ratioTwoStageNative: Spread { Spread(zip(twoStage, native).map { $0.rate / $1.rate }) }
}
