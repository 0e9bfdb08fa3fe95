#!/usr/bin/env bash
# Instructions per input record by phase (issue #13), from callgrind.
#
#   Benchmarks/profiling/callgrind-phases.sh [--events N] [--users U] [--jobs a,b] [--runs R]
#       [--commit-interval-ms MS] [--out FILE] [--work-dir DIR] [--keep]
#   SE_BIN=path/to/stream-engine   use this release binary instead of building one
#   SE_RUN_ARGS="--kafka k=v ..."   extra arguments for `stream-engine run` (for A/B runs)
#   CALLGRIND_ARGS="--dump-instr=yes"  extra valgrind options (per-instruction costs, to read with objdump)
#
# From the repository root. Builds a release `stream-engine` (swift build -c release), profiles
# a copy without debug info (valgrind 3.19 stops at Swift's DWARF 5; see README.md here), and:
#   1. starts `stream-engine dev-broker` with the input topic only (the engine has the
#      dev-broker create its changelog, repartition and dead-letter topics, as a user's run
#      would) and a redis-server, both on free loopback ports, stopped at exit;
#   2. loads N purchase events (the benchmark's records: purchases.py, produced with kcat and
#      stream-engine-bench's producer settings: zstd, linger.ms 5, batch.num.messages 10000,
#      idempotence), keyed by userId, 10,000 users;
#   3. runs each job with `stream-engine run --stop-at-end` under
#      `valgrind --tool=callgrind --separate-threads=yes`:
#        a  the benchmark's per-user aggregation (BenchPipeline.yaml: purchase_stats into a store
#           with a changelog, a Redis hash per user);
#        b  a two-stage job: job a's pipeline plus a second pipeline on the same input that
#           rekeys by category (the engine's repartition topic) and counts per category;
#        c  the benchmark's two-stage job (BenchTwoStage): the sum of quantity per user and,
#           through a repartition by category, the count per category; no sink;
#   4. attributes every instruction to a phase (callgrind_phases.py: function-name patterns,
#      innermost phase wins, unmarked callees split over their callers in proportion to the
#      calls' inclusive cost; see its docstring) and writes the markdown table to --out
#      (default /tmp/callgrind-phases.md), with the raw callgrind files and annotated listings
#      (callgrind_annotate --inclusive=yes | swift demangle --simplified) in the work directory.
#
# The jobs' commit.interval.ms is 3600000 by default: commits then come only from the poll loop
# finding the input drained and from the final commit, the same every run, close to a native
# run's cadence (at ~73k records/s and the benchmark's 1000 ms, one commit per ~73,000 records).
# Valgrind slows the records ~50x but not the clock: with --commit-interval-ms 1000 a run of
# 100,000 records commits ~20 times, and the per-commit work (changelog, deferred aggregate
# results, Redis writes: once per changed key per commit) grows accordingly and varies by run.
#
# The engine's consumer runs with session.timeout.ms 30000 (the engine's default on a mock cluster
# is 3000): under valgrind librdkafka's threads can miss a 3 s session and the group takes the
# partitions away mid-run (seen once in job b: every record replayed).
#
# Sanity checks it makes: the engine's summary line says N records processed (job b: N plus the
# repartition topic's records and progress markers, read back from the broker), nothing
# dead-lettered, no partition lost or revoked during the run, the phase rows add
# up to the total, and with --runs 2 the totals of the two runs of one job (printed) agree.
set -euo pipefail

events=100000
users=10000
jobs="a,b"
runs=1
# Commits only when the input runs dry and at the end (see --help): data-driven, not wall-clock driven.
commit_ms=3600000
out=/tmp/callgrind-phases.md
work=""
keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --events) events="$2"; shift 2 ;;
        --users) users="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --commit-interval-ms) commit_ms="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --work-dir) work="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "callgrind-phases: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

[[ -f Package.swift && -d Benchmarks/profiling ]] || { echo "callgrind-phases: run it from the repository root" >&2; exit 2; }
for tool in valgrind callgrind_annotate kcat redis-server python3 cc strip swift; do
    command -v "$tool" >/dev/null || { echo "callgrind-phases: $tool not found (valgrind: apt-get install -y valgrind; kcat: apt-get install -y kcat)" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "$work" ]]; then work=$(mktemp -d /tmp/callgrind-phases.XXXXXX); else mkdir -p "$work"; fi
log() { echo "callgrind-phases: $*" >&2; }
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ $keep == 0 ]]; then rm -rf "$work"/state-* "$work"/purchases.tsv; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The binary: a copy without debug info, and the sigsuspend shim.
if [[ -n "${SE_BIN:-}" ]]; then
    bin="$SE_BIN"
else
    log "building the release binary (swift build -c release --product stream-engine)"
    nice -n 10 swift build -c release --product stream-engine >&2
    bin="$(swift build -c release --show-bin-path)/stream-engine"
fi
[[ -x "$bin" ]] || { echo "callgrind-phases: no binary at $bin" >&2; exit 2; }
cp "$bin" "$work/se"
strip --strip-debug "$work/se"
cc -shared -fPIC -O2 -o "$work/sigsuspend_shim.so" "$here/valgrind_sigsuspend_shim.c" -ldl
# The engine's sources: the last commit that changed them (this script's own commits do not count).
commit=$(git log -1 --format=%h -- Sources Package.swift Package.resolved 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no -- Sources Package.swift Package.resolved 2>/dev/null | grep -q . && echo " with uncommitted changes" || true)
[[ -n "${SE_BIN:-}" ]] && dirty="$dirty, binary SE_BIN=$SE_BIN"
log "binary $bin (commit $commit$dirty), work directory $work"

# 2. dev-broker (input topic only) and redis-server on free loopback ports.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
topic=cg-purchases
rm -f "$work/bootstrap"
nice -n 10 "$work/se" dev-broker --topic "$topic:4" --bootstrap-file "$work/bootstrap" --log-level warning \
    >"$work/dev-broker.out" 2>"$work/dev-broker.log" &
pids+=($!)
redis_port=$(free_port)
nice -n 10 redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [[ -s "$work/bootstrap" ]] && break; sleep 0.1; done
[[ -s "$work/bootstrap" ]] || { echo "callgrind-phases: the dev-broker did not start (see $work/dev-broker.log)" >&2; exit 1; }
bootstrap=$(head -1 "$work/bootstrap")
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
log "dev-broker at $bootstrap, redis-server at 127.0.0.1:$redis_port"

# End offset sum of a topic's partitions (kcat -Q with timestamp -1: the end offset).
topic_count() {
    local t=$1 n=$2 q=()
    for p in $(seq 0 $((n - 1))); do q+=(-t "$t:$p:-1"); done
    kcat -b "$bootstrap" -Q "${q[@]}" 2>/dev/null | awk '{ s += $NF } END { print s + 0 }'
}

# Bytes of a topic's records: key, value and headers as kcat prints them (for splitting librdkafka's threads).
topic_bytes() {
    kcat -C -b "$bootstrap" -t "$1" -o beginning -e -q -f '%K %S %h\n' 2>/dev/null \
        | awk '{ k = $1 < 0 ? 0 : $1; v = $2 < 0 ? 0 : $2; h = length($0) - length($1) - length($2) - 2; s += k + v + (h > 0 ? h : 0) } END { print s + 0 }'
}

# 3. The input: N purchase events keyed by userId.
log "loading $events purchase events ($users users) into $topic"
python3 "$here/purchases.py" "$events" --users "$users" >"$work/purchases.tsv"
nice -n 10 kcat -P -b "$bootstrap" -t "$topic" -K$'\t' \
    -X linger.ms=5 -X batch.num.messages=10000 -X compression.type=zstd -X enable.idempotence=true \
    <"$work/purchases.tsv"
loaded=$(topic_count "$topic" 4)
[[ "$loaded" == "$events" ]] || { echo "callgrind-phases: $topic holds $loaded records, expected $events" >&2; exit 1; }

source_block() {
    cat <<EOF
    source:
      topics: [$topic]
      key: userId
      timestamp: timestamp
      required: { orderId: string, userId: string, productId: string, category: string, price: number, quantity: integer, timestamp: string }
EOF
}
job_yaml() {  # job app-id
    cat <<EOF
application.id: $2
defaults:
  processing.guarantee: at_least_once
  commit.interval.ms: $commit_ms
  on_error: dlq
  partitions: 4
topologies:
EOF
    if [[ $1 == c ]]; then
        cat <<EOF
  - name: user-items
$(source_block)
    steps:
      - aggregate: { store: user-items, aggregator: sum, params: { field: quantity } }
EOF
    else
        cat <<EOF
  - name: user-totals
$(source_block)
    steps:
      - aggregate: { store: user-totals, aggregator: purchase_stats }
      - redis:
          key: "$2:user:{key}"
          mode: hash
          fields: { orders: orders, items: items, spent: spent, lastPurchaseAt: lastPurchaseAt }
EOF
    fi
    if [[ $1 == b || $1 == c ]]; then
        cat <<EOF
  - name: category-counts
$(source_block)
    steps:
      - rekey: { field: category }
      - aggregate: { store: category-counts, aggregator: count }
EOF
    fi
}

# 4. The jobs under callgrind.
results=()
for run in $(seq 1 "$runs"); do
    for job in ${jobs//,/ }; do
        app="cg-$job-$run-$$"
        yaml="$work/job-$job.yaml"
        job_yaml "$job" "$app" >"$yaml"
        "$work/se" validate "$yaml" >/dev/null
        cg="$work/cg-$job-$run"
        rm -rf "$cg" "$work/state-$job-$run"; mkdir -p "$cg"
        log "job $job run $run: stream-engine run --stop-at-end under callgrind (application.id $app)"
        start=$(date +%s)
        LD_PRELOAD="$work/sigsuspend_shim.so" nice -n 10 valgrind --tool=callgrind --separate-threads=yes ${CALLGRIND_ARGS:-} \
            --callgrind-out-file="$cg/callgrind.out" \
            "$work/se" run --config "$yaml" --bootstrap-servers "$bootstrap" \
            --redis-url "redis://127.0.0.1:$redis_port" --state-dir "$work/state-$job-$run" --stop-at-end \
            --kafka session.timeout.ms=30000 --kafka heartbeat.interval.ms=1000 ${SE_RUN_ARGS:-} \
            >"$cg/run.out" 2>"$cg/run.log" || { tail -20 "$cg/run.log" >&2; echo "callgrind-phases: job $job failed" >&2; exit 1; }
        seconds=$(( $(date +%s) - start ))
        # One member from start to end: a lost or revoked assignment means records processed twice.
        if grep -qE 'rebalance: (lost|revoked)' "$cg/run.log"; then
            grep -E 'SESSTMOUT|rebalance: (lost|revoked)' "$cg/run.log" | head -3 >&2
            echo "callgrind-phases: job $job lost its partitions during the run (see $cg/run.log): the profile counts replayed records" >&2
            exit 1
        fi
        summary=$(grep -E '^stream-engine: [0-9]+ records processed' "$cg/run.out" "$cg/run.log" -h | tail -1)
        processed=$(sed -E 's/^stream-engine: ([0-9]+) records processed, ([0-9]+) dead-lettered, ([0-9]+) commits.*/\1/' <<<"$summary")
        deadlettered=$(sed -E 's/^stream-engine: ([0-9]+) records processed, ([0-9]+) dead-lettered, ([0-9]+) commits.*/\2/' <<<"$summary")
        commits=$(sed -E 's/^stream-engine: ([0-9]+) records processed, ([0-9]+) dead-lettered, ([0-9]+) commits.*/\3/' <<<"$summary")
        expected=$events
        repart=0
        if [[ $job == b || $job == c ]]; then
            repart=$(topic_count "$app-category-counts-repartition" 4)
            # The engine counts each polled message once: the input, then the repartition records
            # (the topic also holds progress markers, which are not counted). Since bfeb699 the
            # upstream tasks combine the count (one partial per category, task and commit), so the
            # topic holds a few hundred records: the engine's count lies between the input plus one
            # and the input plus the topic's records.
            (( repart >= 1 )) || { echo "callgrind-phases: the repartition topic holds no record" >&2; exit 1; }
            expected=$events
        fi
        changelog=0
        for store in user-totals user-items category-counts; do
            [[ $job == a && $store != user-totals ]] && continue
            [[ $job == b && $store == user-items ]] && continue
            [[ $job == c && $store == user-totals ]] && continue
            changelog=$((changelog + $(topic_count "$app-$store-changelog" 4)))
        done
        if [[ $job == b || $job == c ]] && (( processed > events && processed <= events + repart )); then expected=$processed; fi
        [[ "$processed" == "$expected" ]] || { echo "callgrind-phases: job $job processed $processed records, expected $expected ($summary)" >&2; exit 1; }
        [[ "$deadlettered" == 0 ]] || { echo "callgrind-phases: job $job dead-lettered $deadlettered records" >&2; exit 1; }
        log "job $job run $run: $summary (valgrind ${seconds}s); repartition records $repart, changelog records $changelog"
        # Annotated listings for people (inclusive and self), demangled.
        for f in "$cg"/callgrind.out*; do
            callgrind_annotate --inclusive=yes --threshold=99.9 "$f" 2>/dev/null | swift demangle --simplified >"$f.inclusive.txt" || true
        done
        # librdkafka's fetch and produce threads serve several topics: their shares by bytes.
        if [[ $job == b || $job == c ]]; then
            in_bytes=$(topic_bytes "$topic")
            rep_bytes=$(topic_bytes "$app-category-counts-repartition")
            cl_bytes=0
            for store in user-totals user-items category-counts; do cl_bytes=$((cl_bytes + $(topic_bytes "$app-$store-changelog"))); done
            python3 -c "import json,sys; i,r,c=map(int,sys.argv[1:4]); json.dump({'input_bytes':i,'repartition_bytes':r,'changelog_bytes':c,
                'fetch_repartition_share': r/(i+r), 'produce_repartition_share': r/(r+c)}, open(sys.argv[4],'w'))" \
                "$in_bytes" "$rep_bytes" "$cl_bytes" "$cg/shares.json"
            log "job $job: bytes input $in_bytes, repartition $rep_bytes, changelogs $cl_bytes (shares of librdkafka's threads: $cg/shares.json)"
        fi
        cat >"$cg/meta.json" <<EOF
{"job": "$job", "run": $run, "events": $events, "processed": $processed, "commits": $commits, "repartition_records": $repart,
 "changelog_records": $changelog, "valgrind_seconds": $seconds, "commit_interval_ms": $commit_ms, "commit": "$commit$dirty"}
EOF
        results+=("$cg")
        rm -rf "$work/state-$job-$run"
    done
done

# 5. The table.
python3 "$here/callgrind_phases.py" --out "$out" --events "$events" --users "$users" "${results[@]}"
log "table written to $out (callgrind files in $work)"
