#!/usr/bin/env python3
"""Native profile of the engine processes of one `stream-engine-bench` run, from `perf record -a -g`.

Callgrind counts instructions; this shows where the engine's core spends its time natively
(cache misses, atomics, page faults, the kernel), which callgrind does not count.

    perf record -a -g -F 1999 -e cpu-clock -o /tmp/perf.data -- \\
        .build/release/stream-engine-bench --events 1000000 --runs 1 --skip raw --skip full \\
        --skip latency --skip restore --skip failover --out /tmp/bench.md
    perf script -i /tmp/perf.data -F comm,pid,tid,time,ip,sym,dso > /tmp/perf.txt
    Benchmarks/profiling/perf_engine.py /tmp/perf.txt                 # the engine processes, in order
    Benchmarks/profiling/perf_engine.py /tmp/perf.txt --pid 1234      # one process: threads, self and inclusive tops
    Benchmarks/profiling/perf_engine.py /tmp/perf.txt --pid 1234 --callers swift_retain

The engine processes are the `stream-engine` children of the benchmark, one per measured run
(the order of the benchmark's log: per layout, at_least_once, exactly_once, two-stage).
"""
import argparse
import collections
import subprocess


def samples(path):
    """Yields (pid, thread name, time, [(symbol, dso)] leaf first) per sample."""
    head, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if head:
                    yield (*head, stack)
                head, stack = None, []
            elif not line.startswith("\t"):
                parts = line.split()
                i = next(k for k, p in enumerate(parts) if "/" in p and p.split("/")[0].isdigit())
                head = (parts[i].split("/")[0], " ".join(parts[:i]), float(parts[i + 1].rstrip(":")))
            else:
                fields = line.strip().split(" ", 1)
                symbol, _, dso = (fields[1] if len(fields) > 1 else "").rpartition(" (")
                stack.append((symbol, dso.rstrip(")").rsplit("/", 1)[-1]))
    if head:
        yield (*head, stack)


def demangle(names):
    out = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names), capture_output=True, text=True).stdout
    return out.split("\n")[: len(names)]


def top(counter, total, n, label):
    rows = counter.most_common(n)
    for (name, count), shown in zip(rows, demangle([r[0] for r in rows])):
        print(f"  {label} {count * 100 / total:5.1f}%  {shown[:150]}")


RUNTIME_HELPERS = ("swift_retain", "swift_release", "swift_bridgeObject", "outlined ", "swift_arrayInit",
                   "swift_arrayDestroy", "_swift_release_dealloc", "doDecrementSlow")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("script", help="perf script -F comm,pid,tid,time,ip,sym,dso output")
    ap.add_argument("--pid", help="one process: its profile")
    ap.add_argument("--callers", help="with --pid: the first non-helper callers of this leaf symbol")
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()

    if not a.pid:
        procs = {}
        for pid, comm, t, _ in samples(a.script):
            p = procs.setdefault(pid, {"n": 0, "start": t, "end": t, "names": collections.Counter()})
            p["n"] += 1
            p["end"] = t
            p["names"][comm] += 1
        print("pid      samples  seconds  samples/s  main threads")
        for pid, p in sorted(procs.items(), key=lambda kv: kv[1]["start"]):
            if pid == "0" or p["n"] < 500:
                continue
            span = max(p["end"] - p["start"], 1e-9)
            names = ", ".join(f"{k} {v}" for k, v in p["names"].most_common(3))
            print(f"{pid:8} {p['n']:8} {span:8.2f} {p['n'] / span:10.0f}  {names}")
        return

    leaf, incl, threads, dsos, callers = (collections.Counter() for _ in range(5))
    total = 0
    for pid, comm, _, stack in samples(a.script):
        if pid != a.pid or not stack:
            continue
        total += 1
        threads[comm] += 1
        leaf[stack[0][0]] += 1
        dsos[stack[0][1]] += 1
        for s in {s for s, _ in stack}:
            incl[s] += 1
        if a.callers and a.callers in stack[0][0]:
            caller = next((s for s, _ in stack[1:] if not any(h in s for h in RUNTIME_HELPERS)), "?")
            callers[caller] += 1
    if not total:
        raise SystemExit(f"no samples of pid {a.pid}")
    print(f"pid {a.pid}: {total} samples")
    print("threads: " + ", ".join(f"{k} {v * 100 / total:.1f}%" for k, v in threads.most_common(10)))
    print("leaf DSOs: " + ", ".join(f"{k} {v * 100 / total:.1f}%" for k, v in dsos.most_common(8)))
    if a.callers:
        print(f"callers of {a.callers} ({sum(callers.values()) * 100 / total:.1f}% of the samples):")
        top(callers, total, a.top, "")
        return
    top(leaf, total, a.top, "self")
    top(incl, total, a.top, "incl")


if __name__ == "__main__":
    main()
