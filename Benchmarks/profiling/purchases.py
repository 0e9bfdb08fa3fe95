#!/usr/bin/env python3
"""Writes the benchmark's purchase events as `key<TAB>value` lines (for `kcat -P -K$'\\t'`).

The same records as `PurchaseWorkload.produce` in Sources/Benchmarks/BenchData.swift
(stream-engine-bench's loader): SplitMix64 with the same seed, users `u-1`…`u-<users>` drawn
uniformly, the `purchases` schema of topologies.yaml (orderId, userId, productId, category, price,
quantity, timestamp), keyed by userId, serialised as the engine's JSONSerializer does (insertion
order, shortest round-trip numbers, ISO-8601 UTC with milliseconds only when non-zero).

usage: purchases.py COUNT [--users 10000] [--seed 42] [--user-prefix u-]
"""
import argparse
import sys

CATEGORIES = ["shoes", "books", "electronics", "toys", "beauty", "garden", "sports", "kitchen",
              "fashion", "grocery", "music", "games"]
START_MS = 1_734_134_400_000  # 2024-12-14T00:00:00Z
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def int(self, n):
        return self.next() % max(1, n)


def iso(ms):
    import datetime
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = ms % 1000
    if frac:
        s += ".%03d" % frac
    return s + "Z"


def number(d):
    if d == int(d):
        return str(int(d))
    return repr(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("count", type=int)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--user-prefix", default="u-")
    a = ap.parse_args()
    rng = SplitMix64(a.seed)
    out = sys.stdout
    lines = []
    for i in range(a.count):
        user = "%s%d" % (a.user_prefix, rng.int(a.users) + 1)
        category = CATEGORIES[rng.int(len(CATEGORIES))]
        price = (100 + rng.int(29_900)) / 100
        r = rng.int(10)
        quantity = 1 if r < 7 else 2 if r < 9 else 3 + rng.int(3)
        product = "p-%d" % (1 + rng.int(5000))  # evaluated after quantity, as the Swift call's arguments are
        value = ('{"orderId":"o-%d","userId":"%s","productId":"%s","category":"%s","price":%s,"quantity":%d,"timestamp":"%s"}'
                 % (i + 1, user, product, category, number(price), quantity, iso(START_MS + i * 100)))
        lines.append("%s\t%s\n" % (user, value))
        if len(lines) >= 10_000:
            out.write("".join(lines))
            lines = []
    out.write("".join(lines))


if __name__ == "__main__":
    main()
