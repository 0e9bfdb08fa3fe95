#!/usr/bin/env python3
"""Attributes a `stream-engine run` callgrind profile to processing phases (issue #13).

usage: callgrind_phases.py --events N [--out FILE] RUN_DIR...
  RUN_DIR: a directory with callgrind.out-NN files (valgrind --separate-threads=yes) and
  meta.json, as callgrind-phases.sh writes them. Prints the markdown report and writes it to --out.

Method (every instruction counted once, so the rows add up to the total):

1. Each thread's file is read on its own (callgrind's raw format: self cost per function, and per
   call edge the inclusive cost of the calls). Function names are demangled with
   `swift demangle --simplified`; callgrind's recursion suffix ('2) is dropped, so a function's
   async partial functions (its resumptions after each `await`) count as the function.
2. Threads that librdkafka started (the routine their start_thread runs is in librdkafka: the main
   and broker threads of each client handle) are taken whole, as librdkafka's internal functions
   have no symbols in Debian's package (and such a thread may run the engine's log callback too).
   A thread goes to one bucket, told by what it does: one that decompresses (ZSTD_decompress*,
   LZ4*_decompress*) is a consumer's fetch thread -> "consume" (decoding fetched message sets); one
   that compresses (ZSTD_compress*, LZ4*_compress*) is the producer's broker thread -> the produced records' phase ("changelog",
   or with a repartition topic split between "changelog" and "repartition produce" in proportion
   to the bytes of the records each topic received); any other (rdk:main, idle brokers of the
   admin and offset-reader handles, heartbeats, metadata) -> "runtime/other". With a repartition
   topic, fetch threads are split between "consume" and "repartition consume" by the bytes of the
   input and repartition topics (key, value and headers as kcat prints them).
3. In Swift threads, functions whose name matches a phase pattern (PHASES below, first match wins)
   are phase entry points: their own instructions go to that phase, and the phase is handed down to
   what they call. A function that matches no pattern (swift_retain, malloc, Dictionary lookups,
   JSON parsing helpers...) takes the phases of its callers, in proportion to the inclusive cost of
   each caller's calls to it (gprof's assumption: a call costs the same whatever the caller), and
   hands that mix down in turn. So the innermost phase entry wins: KeyValueStore.put called from an
   aggregate step is "store", not "steps", and nothing is counted twice. The Swift concurrency
   runtime and the executors (swift_task_switch, swift_job_run, libdispatch, DedicatedThreadExecutor)
   are entry points of "runtime/other": an async function resumed by the executor is not made part
   of whatever ran before it on that thread. Functions reached from no entry point take the thread's
   default: "start-up & shutdown" on the process's main thread (dynamic loading, argument parsing,
   configuration), "runtime/other" elsewhere.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys

CONSUME, PARSE, STEPS, STORE, CHANGELOG = "consume", "parse", "steps", "store", "changelog"
REP_OUT, REP_IN, SINK, COMMIT = "repartition produce", "repartition consume", "sink", "commit"
SNAPSHOT, STARTUP, OTHER = "snapshots", "start-up & shutdown", "runtime/other"
ORDER = [CONSUME, PARSE, STEPS, STORE, CHANGELOG, REP_OUT, REP_IN, SINK, COMMIT, SNAPSHOT, STARTUP, OTHER]
WHAT = {
    CONSUME: "librdkafka fetch threads (decompress, parse message sets), rd_kafka_consume_batch_queue, KafkaConsumer.pollBatch / convert (KafkaMessage wrapping)",
    PARSE: "TaskManager.parseShared (a value several tasks read, parsed once), StreamTask.enqueue / decode: JSONValue.parse of every record a task reads, required-field checks, key, ISO-8601 event time",
    STEPS: "StreamTask.process / run, StepEvaluation, aggregators (add, result), deferred aggregate results",
    STORE: "KeyValueStore get / put / flush / expire, StoreEntry (JSONCompact encoding)",
    CHANGELOG: "StreamTask.prepareCommit: takeChanges, ChangelogCodec.record, producing the records (rd_kafka_producev); the producer's broker threads",
    REP_OUT: "StreamTask.produceRepartition / positionHeaders / sendProgressMarkers (+ their rd_kafka_producev); share of the producer's broker threads",
    REP_IN: "UpstreamMerge, markers, upstream positions; share of the fetch threads (decoding the repartition records' JSON is under parse)",
    SINK: "RedisSinkStep.write, RedisWriteBatch, RedisFence arguments, RedisConnection / hiredis (the commit's fenced EVAL carrying the writes)",
    COMMIT: "TaskManager.commit: producer flush, offset commit (rd_kafka_commit), commit tags and metadata",
    SNAPSHOT: "TaskManager.snapshot, StreamTask.writeSnapshots, StoreSnapshot (every 5 s of wall clock and at close)",
    STARTUP: "process start, configuration, topic set-up, client creation, group join, task start and restore, close",
    OTHER: "poll loop, scheduling (TaskManager.process/drainBuffered, StreamTask.drain, PartitionGroup, InputScheduler), Swift concurrency, executors, --stop-at-end checks, logging, librdkafka main/idle threads",
}

# (phase, regular expression on the demangled, simplified name), first match wins.
PHASES = [
    # Snapshots and start-up/shutdown first: they call store and changelog code of their own.
    (SNAPSHOT, r"TaskManager\.snapshot\(|StreamTask\.writeSnapshots|StoreSnapshot\b|StreamTask\.snapshotDue"),
    (STARTUP, r"^main$|^__libc_start|^_dl_|^dl_main|^_dl_start|StreamEngineCommand|RunCommand|JobConfigOptions|ConfigLoader|ConfigValidator|"
              r"\bYams\.|TopicSetup|ClusterKind\.detect|StreamRuntime\.runEngine|StreamRuntime\.run\(|StreamRuntime\.connectRedis|"
              r"StreamRuntime\.consumerConfig|TopologyPlan\.init|TaskManager\.handle\(|TaskManager\.startTasks|TaskManager\.revoked|"
              r"TaskManager\.closeAll|StreamTask\.restore|StoreRestorer|StreamTask\.init|StreamTask\.compile|KafkaConsumer\.applyAssignment|"
              r"KafkaConsumer\.applyRevocation|KafkaConsumer\.close|KafkaConsumer\.subscribe|KafkaProducer\.close|KafkaHandle\.destroy|"
              r"KafkaHandle\.init|KafkaProducer\.init|KafkaConsumer\.init|RedisConnection\.close|GlobalTables\.|MockClusterTopicRequester|"
              r"^rd_kafka_new$|^rd_kafka_destroy|^rd_kafka_consumer_close|LocalRedisServer|registerShopOperators|OperatorRegistry|"
              r"ParsableCommand|CommandParser|ArgumentSet|ArgumentDefinition|ParsableArguments|runWithExitCodes|LoggingOptions|"
              r"LoggingSystem\.bootstrap"),
    # Redis sink, including the fenced EVAL that carries its writes at the commit.
    (SINK, r"RedisSinkStep|RedisWriteBatch|RedisFence|RedisConnection\.|HiredisContext|RedisReply|^redis[A-Z]|^sds|^__redis"),
    (REP_OUT, r"StreamTask\.produceRepartition|StreamTask\.positionHeaders|StreamTask\.sendProgressMarkers"),
    (REP_IN, r"UpstreamMerge|StreamTask\.upstreamPosition|PartitionGroup\.marker|PartitionGroup\.restoreProgress|StreamTask\.noteMergeWait|"
             r"PartitionGroup\.takeChangedProgress"),
    (STORE, r"KeyValueStore\.|StoreEntry\."),
    (CHANGELOG, r"ChangelogCodec|StreamTask\.prepareCommit|KeyValueStore\.takeChanges"),
    (COMMIT, r"TaskManager\.commit\(|TaskManager\.commitPendingOffsets|TaskManager\.groupOffsets|TaskManager\.retrying|"
             r"KafkaProducer\.flush|^rd_kafka_flush|KafkaConsumer\.commit\(|^rd_kafka_commit\b|StreamTask\.markCommitted|CommitTag|StreamTimeMetadata|"
             r"StreamTask\.releaseHeldRedisWrites"),
    (PARSE, r"StreamTask\.enqueue|StreamTask\.decode|StreamTask\.matches|TaskManager\.parseShared"),
    (STEPS, r"StreamTask\.process\(|StreamTask\.run\(|StreamTask\.emitDeferredResults|StreamTask\.markDirty|StreamTask\.DirtyKeys|"
            r"StreamTask\.closeWindows|StreamTask\.punctuate|StreamTask\.runPunctuated|StepEvaluation|Aggregator\b|Aggregator\.|"
            r"WindowOperator|ProcessorContext"),
    (CONSUME, r"KafkaConsumer\.poll|KafkaConsumer\.pollBatch|KafkaConsumer\.consumeQueue|KafkaConsumer\.convert|KafkaConsumer\.Batch|"
              r"^rd_kafka_consume|^rd_kafka_message_|^rd_kafka_header_get|^rd_kafka_topic_name|^rd_kafka_queue_poll|^rd_kafka_consumer_poll"),
    (OTHER, r"^swift_task_switch|^swift_job_run|swift::runJobInEstablishedExecutorContext|^__swift_run_job|^jobInvoke|^_dispatch_|^dispatch_|"
            r"DedicatedThreadExecutor|PollLoop|TaskManager\.process\(|TaskManager\.drainBuffered|StreamTask\.drain\(|PartitionGroup|InputScheduler|"
            r"^swift_task_enqueue|^swift_taskGroup|^swift_continuation|future_adapter|task_group_wait_resume_adapter"),
]
COMPILED = [(p, re.compile(r)) for p, r in PHASES]


class ThreadProfile:
    def __init__(self, path):
        self.path = path
        self.self_cost = collections.Counter()   # raw fn name -> Ir
        self.calls = collections.Counter()        # (caller, callee) -> inclusive Ir of the calls
        self.objects = {}                         # raw fn name -> object file
        self.thread = 0
        self.total = 0
        self._read()

    def _read(self):
        names = {}        # fn id -> name
        files = {}        # ob id -> object
        ob = ""
        fn = None
        cfn = None
        cob = None
        pending_call = False
        positions = 1
        with open(self.path, errors="replace") as f:
            for line in f:
                if not line or line == "\n":
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    parts = line.split()
                    cost = int(parts[positions]) if len(parts) > positions else 0
                    if pending_call:
                        self.calls[(fn, cfn)] += cost
                        pending_call = False
                        cob = None
                    else:
                        self.self_cost[fn] += cost
                    continue
                key, _, value = line.rstrip("\n").partition("=")
                if key in ("fn", "cfn", "ob", "cob"):
                    m = re.match(r"\((\d+)\)(?: (.*))?$", value)
                    if m:
                        ident, name = m.group(1), m.group(2)
                        table = files if key in ("ob", "cob") else names
                        if name is not None:
                            table[ident] = name
                        value = table.get(ident, ident)
                    if key == "fn":
                        fn = self._name(value, ob)
                        cob = None
                    elif key == "cfn":
                        cfn = self._name(value, cob or ob)
                    elif key == "ob":
                        ob = value
                    else:
                        cob = value
                elif key == "calls":
                    pending_call = True
                elif line.startswith("positions:"):
                    positions = len(line.split(":", 1)[1].split())
                elif line.startswith("thread:"):
                    self.thread = int(line.split(":", 1)[1])
                elif line.startswith("summary:") or line.startswith("totals:"):
                    self.total = int(line.split(":", 1)[1].split()[0])
        # Self-edges of a recursion (f -> f'2 once the suffix is gone) carry no information.
        for k in [k for k in self.calls if k[0] == k[1]]:
            del self.calls[k]

    def _name(self, value, obj):
        """A function's name without callgrind's recursion suffix ('2); one without a symbol (an
        offset, 0x…) gets its library's name, so equal offsets in two libraries stay apart."""
        name = re.sub(r"'\d+$", "", value)
        if name.startswith("0x"):
            name = f"{name} ({os.path.basename(obj)})"
        self.objects.setdefault(name, obj)
        return name

    def is_librdkafka(self):
        """Whether the thread was started by librdkafka: the function its start_thread runs (the costliest
        callee) is in librdkafka. (Such a thread may still run Swift code: the engine's log callback.)"""
        starts = [(c, b) for (a, b), c in self.calls.items() if a == "start_thread"]
        if not starts:
            return False
        return "librdkafka" in self.objects.get(max(starts)[1], "")

    def has(self, pattern):
        r = re.compile(pattern)
        return sum(c for (a, b), c in self.calls.items() if r.search(b)) + sum(c for f, c in self.self_cost.items() if r.search(f))


def demangle(names, simplified=True):
    names = sorted(names)
    if not names:
        return {}
    out = subprocess.run(["swift", "demangle"] + (["--simplified"] if simplified else []), input="\n".join(names) + "\n",
                         capture_output=True, text=True, check=True).stdout.split("\n")
    if len(out) < len(names):
        return {n: n for n in names}
    return dict(zip(names, out))


def async_functions(names, dem):
    """Simplified names of Swift async functions and their partial functions (resumptions)."""
    full = demangle([n for n in names if n.startswith("$s")], simplified=False)
    return {dem.get(n, n) for n, d in full.items() if " async" in d or "partial function for" in d}


def phase_of(name):
    for p, r in COMPILED:
        if r.search(name):
            return p
    return None


def attribute(t, dem, default):
    """For one Swift thread: phase -> Ir; per phase the top functions by attributed self cost and the
    top entry points (the matched function each instruction was attributed through); per function
    its phase mix."""
    funcs = set(t.self_cost) | {a for a, _ in t.calls} | {b for _, b in t.calls}
    marked = {f: phase_of(dem.get(f, f)) for f in funcs}
    callers = collections.defaultdict(list)
    for (a, b), c in t.calls.items():
        if c > 0:
            callers[b].append((a, c))
    # Mixes over entry points (the matched function's name); each entry point has one phase.
    root = f"(reached from no entry point: {default})"
    phase_of_label = {root: default}
    for f in funcs:
        if marked[f]:
            phase_of_label[dem.get(f, f)] = marked[f]
    mix = {f: ({dem.get(f, f): 1.0} if marked[f] else {root: 1.0}) for f in funcs}
    for _ in range(60):
        changed = 0.0
        for f in funcs:
            if marked[f] or not callers[f]:
                continue
            total = sum(c for _, c in callers[f])
            new = collections.defaultdict(float)
            for a, c in callers[f]:
                for p, w in mix[a].items():
                    new[p] += w * c / total
            old = mix[f]
            changed = max(changed, max(abs(new.get(p, 0) - old.get(p, 0)) for p in set(new) | set(old)))
            mix[f] = dict(new)
        if changed < 1e-6:
            break
    result = collections.Counter()
    top = collections.defaultdict(collections.Counter)
    entries = collections.defaultdict(collections.Counter)
    phase_mix = {}
    for f in funcs:
        pm = collections.Counter()
        for label, w in mix[f].items():
            pm[phase_of_label[label]] += w
        phase_mix[f] = pm
    for f, c in t.self_cost.items():
        for label, w in mix[f].items():
            p = phase_of_label[label]
            result[p] += c * w
            top[p][dem.get(f, f)] += c * w
            entries[p][label] += c * w
    return result, top, phase_mix, entries


def thread_kind(t):
    if t.thread == 1:
        return "main thread"
    if not t.is_librdkafka():
        return "Swift threads (cooperative pool, executors)"
    if t.has(r"^(ZSTD_decompress|LZ4F?_decompress)") > 0:
        return "librdkafka fetch threads"
    if t.has(r"^(ZSTD_compress|LZ4F?_compress)") > 0:
        return "librdkafka produce threads"
    return "librdkafka other threads"


def inclusive_table(profiles, dem):
    """Inclusive and self Ir per demangled function over all threads (recursion edges dropped)."""
    self_ = collections.Counter()
    incl = collections.Counter()
    for t in profiles:
        for f, c in t.self_cost.items():
            self_[dem.get(f, f)] += c
        per = collections.Counter()
        for f, c in t.self_cost.items():
            per[f] += c
        for (a, b), c in t.calls.items():
            per[a] += c
        for f, c in per.items():
            incl[dem.get(f, f)] += c
    return incl, self_


def analyse(run_dir, rep_bytes):
    meta = json.load(open(os.path.join(run_dir, "meta.json")))
    files = sorted(f for f in glob.glob(os.path.join(run_dir, "callgrind.out-*")) if re.search(r"-\d+$", f))
    profiles = [ThreadProfile(f) for f in files]
    raw = {f for t in profiles for f in set(t.self_cost) | {b for _, b in t.calls} | {a for a, _ in t.calls}}
    dem = demangle(raw)
    asyncs = async_functions(raw, dem)
    phases = collections.Counter()
    tops = collections.defaultdict(collections.Counter)
    kinds = collections.Counter()
    mixes = collections.defaultdict(collections.Counter)
    entries = collections.defaultdict(collections.Counter)
    for t in profiles:
        kind = thread_kind(t)
        total = sum(t.self_cost.values())
        kinds[kind] += total
        # librdkafka's threads: (main phase, repartition phase, share key) by kind.
        split = {"librdkafka fetch threads": (CONSUME, REP_IN, "fetch_repartition_share"),
                 "librdkafka produce threads": (CHANGELOG, REP_OUT, "produce_repartition_share")}.get(kind)
        if split:
            main_phase, rep_phase, key = split
            share = rep_bytes.get(key, 0.0)
            for p, w in ((main_phase, 1 - share), (rep_phase, share)):
                phases[p] += total * w
                tops[p][f"({kind})"] += total * w
                entries[p][f"({kind})"] += total * w
        elif kind == "librdkafka other threads":
            phases[OTHER] += total
            tops[OTHER]["(librdkafka main and idle threads)"] += total
            entries[OTHER]["(librdkafka main and idle threads)"] += total
        else:
            r, top, mix, ent = attribute(t, dem, STARTUP if kind == "main thread" else OTHER)
            for p, c in ent.items():
                entries[p].update(c)
            for f, m in mix.items():
                for p, w in m.items():
                    mixes[dem.get(f, f)][p] += w * t.self_cost.get(f, 0)
            phases.update(r)
            for p, c in top.items():
                tops[p].update(c)
    incl, self_ = inclusive_table(profiles, dem)
    total = sum(sum(t.self_cost.values()) for t in profiles)
    return {"meta": meta, "phases": phases, "tops": tops, "kinds": kinds, "total": total,
            "summary_total": sum(t.total for t in profiles), "incl": incl, "self": self_, "threads": len(profiles),
            "async": asyncs, "mixes": mixes, "dem": dem, "entries": entries}


def fmt(x):
    return f"{x:,.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--out", default="/tmp/callgrind-phases.md")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--explain", help="print the phase mix of the functions matching this regular expression, and stop")
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    if a.explain:
        r = analyse(a.runs[0], {})
        rx = re.compile(a.explain)
        rows = [(n, m) for n, m in r["mixes"].items() if rx.search(n) and sum(m.values()) > 0]
        for n, m in sorted(rows, key=lambda x: -sum(x[1].values()))[:60]:
            print(f"{sum(m.values()) / a.events:10,.0f}  {n[:100]}  " + ", ".join(f"{p} {100 * w / sum(m.values()):.0f}%" for p, w in m.most_common(3)))
        return
    results = []
    for d in a.runs:
        shares = {}
        sp = os.path.join(d, "shares.json")
        if os.path.exists(sp):
            shares = json.load(open(sp))
        results.append(analyse(d, shares))
    # One column per job (the first run of each); further runs are the repeatability check.
    by_job = collections.OrderedDict()
    for r in results:
        by_job.setdefault(r["meta"]["job"], []).append(r)
    jobs = list(by_job)
    first = {j: by_job[j][0] for j in jobs}
    n = a.events
    meta0 = results[0]["meta"]
    label = {"a": "(a) per-user aggregation + Redis", "b": "(b) + rekey by category, count", "c": "(c) the benchmark's two-stage job"}
    lines = []
    lines.append(f"# Instructions per input record by phase (callgrind)\n")
    lines.append(f"Engine sources at commit {meta0['commit']}; {n:,} purchase events ({a.users:,} users, 4 partitions) on a `stream-engine dev-broker`, "
                 f"`stream-engine run --stop-at-end` under `valgrind --tool=callgrind --separate-threads=yes`, "
                 f"at_least_once, commit.interval.ms {meta0['commit_interval_ms']}"
                 + (" (commits only when the poll finds the input drained, and at the end)" if int(meta0['commit_interval_ms']) >= 600000 else "")
                 + ". "
                 f"Made by `Benchmarks/profiling/callgrind-phases.sh --events {n}"
                 + (f" --runs {max(len(v) for v in by_job.values())}" if max(len(v) for v in by_job.values()) > 1 else "")
                 + (f" --commit-interval-ms {meta0['commit_interval_ms']}" if int(meta0['commit_interval_ms']) != 3600000 else "")
                 + "`.\n")
    lines.append("| phase | " + " | ".join(f"Ir per input record, {label.get(j, j)}" for j in jobs) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in jobs) + " |")
    for p in ORDER:
        cells = []
        for j in jobs:
            v = first[j]["phases"].get(p, 0) / n
            cells.append(f"{v:,.0f} ({100 * first[j]['phases'].get(p, 0) / first[j]['total']:.1f}%)")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{first[j]['total'] / n:,.0f}**" for j in jobs) + " |")
    lines.append("| total Ir | " + " | ".join(fmt(first[j]["total"]) for j in jobs) + " |")
    lines.append("| input records | " + " | ".join(f"{n:,}" for j in jobs) + " |")
    lines.append("| records processed (engine's summary) | " + " | ".join(f"{first[j]['meta']['processed']:,}" for j in jobs) + " |")
    lines.append("| repartition records (incl. progress markers) | " + " | ".join(f"{first[j]['meta']['repartition_records']:,}" for j in jobs) + " |")
    lines.append("| changelog records | " + " | ".join(f"{first[j]['meta']['changelog_records']:,}" for j in jobs) + " |")
    lines.append("| commits | " + " | ".join(f"{first[j]['meta']['commits']:,}" for j in jobs) + " |")
    lines.append("| wall time under valgrind | " + " | ".join(f"{first[j]['meta']['valgrind_seconds']} s" for j in jobs) + " |")
    lines.append("")
    for j in jobs:
        r = first[j]
        diff = sum(r["phases"].values()) - r["total"]
        lines.append(f"Job {j}: the phase rows add up to {fmt(sum(r['phases'].values()))} Ir of {fmt(r['total'])} (difference {diff:,.0f}); "
                     f"callgrind's summary lines give {fmt(r['summary_total'])}; {r['threads']} threads, by kind: "
                     + ", ".join(f"{k} {100 * v / r['total']:.1f}%" for k, v in r["kinds"].most_common()) + ".")
    if "a" in first and "b" in first:
        pa, pb = first["a"]["phases"], first["b"]["phases"]
        est = (pb.get(PARSE, 0) - 2 * pa.get(PARSE, 0)) / n
        lines.append(f"\nJob b parses every input record twice (each pipeline's task decodes it) and every repartition record once; "
                     f"parse(b) − 2 × parse(a) ≈ {est:,.0f} Ir per record is the decoding of the repartition records, part of what "
                     f"repartition consume costs.")
    for j, rs in by_job.items():
        if len(rs) > 1:
            t = [r["total"] for r in rs]
            lines.append(f"\nRepeatability, job {j}: totals of {len(rs)} runs " + ", ".join(fmt(x) for x in t)
                         + f" (spread {100 * (max(t) - min(t)) / min(t):.2f}%); per phase, run 2 vs run 1: "
                         + ", ".join(f"{p} {100 * (rs[1]['phases'].get(p, 0) - rs[0]['phases'].get(p, 0)) / max(1, rs[0]['phases'].get(p, 0)):+.1f}%"
                                     for p in ORDER if rs[0]["phases"].get(p, 0) > 0.01 * rs[0]["total"]))
    lines.append("\n## What each phase holds\n")
    for p in ORDER:
        lines.append(f"- **{p}**: {WHAT[p]}")
    lines.append("")
    lines.append("Method: " + " ".join(__doc__.split("Method (every instruction counted once, so the rows add up to the total):", 1)[1].split()))
    lines.append("")
    lines.append("Wall-clock work (commits every commit.interval.ms, snapshots every 5 s at a commit, the --stop-at-end checks every "
                 "200 ms, the mock group's join) runs as often per second under valgrind as natively while records go ~50× slower: "
                 "with a short commit interval, the per-commit work (changelog, deferred aggregate results, Redis writes: once per "
                 "changed key per commit) is over-represented against a native run and varies from run to run. The changelog "
                 "records and commits above say how many there were.")
    for j in jobs:
        r = first[j]
        for title, key in (("entry points (the matched function through which the instructions were attributed)", "entries"),
                           ("functions (attributed self cost)", "tops")):
            lines.append(f"\n## Job {j}: each phase's top 6 {title}, Ir per input record\n")
            for p in ORDER:
                top = r[key].get(p)
                if not top or r["phases"].get(p, 0) < 0.005 * r["total"]:
                    continue
                lines.append(f"- {p}: " + "; ".join(f"`{name[:90]}` {c / n:,.0f}" for name, c in top.most_common(6)))
        lines.append(f"\n### Job {j}: top {a.top} functions, inclusive (Ir per input record, all threads)\n")
        lines.append("Synchronous functions only: callgrind sees an `await` resumption as a call from the callee's return path, so an "
                     "async function's inclusive cost also holds the callers it resumes (and executor plumbing is left out). As in "
                     "callgrind_annotate, a recursive function (the JSON parser) counts its recursion more than once.\n")
        lines.append("| function | inclusive | self |")
        lines.append("| --- | ---: | ---: |")
        skip = re.compile(r"^(0x[0-9a-f]+|clone|start_thread|partial apply for closure #1 in DedicatedThreadExecutor|_dispatch_|__swift_run_job|jobInvoke|swift_job_run|swift::runJob|swift_task_switch|"
                          r"DedicatedThreadExecutor|Thread\.main|@objc NSThreadStart|NSThreadStart|.*partial apply for thunk|.*thunk for @escaping|"
                          r"Result<>\.init\(catching:\)|.*closure #1 in closure #1 in DedicatedThreadExecutor|withUnsafeThrowingContinuation|withCheckedThrowingContinuation|"
                          r"ThrowingTaskGroup|TaskGroup|Task\.value|task_group_wait|future_adapter|swift_taskGroup|dispatch thunk of AsyncIteratorProtocol|"
                          r"protocol witness for AsyncIteratorProtocol|static Task<>\.sleep|_start|__libc_start|main$)")
        count = 0
        for name, c in r["incl"].most_common():
            if skip.search(name) or name in r["async"]:
                continue
            lines.append(f"| `{name[:110]}` | {c / n:,.0f} | {r['self'][name] / n:,.0f} |")
            count += 1
            if count >= a.top:
                break
        lines.append(f"\n### Job {j}: top {a.top} functions, self (Ir per input record, all threads)\n")
        lines.append("| function | self | inclusive |")
        lines.append("| --- | ---: | ---: |")
        for name, c in r["self"].most_common(a.top):
            lines.append(f"| `{name[:110]}` | {c / n:,.0f} | {r['incl'][name] / n:,.0f} |")
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
