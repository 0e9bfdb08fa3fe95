#!/usr/bin/env python3
"""Pathway peer of `stream-engine-bench --peers`: the two-stage job.

The same two stateful stages as the engine's two-stage benchmark job, on the
same purchase events: the sum of `quantity` per userId, and the count of
events per category (a groupby on another column than the message key, which
Pathway exchanges between its workers as the engine repartitions through a
topic; with one worker the exchange is local). Pathway's Kafka reader (its
Rust engine, librdkafka through rdkafka-rust) reads the topic in "static"
mode: everything the topic holds when the run starts, then the run ends
(the engine's `--stop-at-end`). Persistence: Pathway's input persistence to
a local directory (its default mode), so that a restart resumes.

The results are collected with `pw.io.subscribe` (each output change, as
Pathway's engine emits it) and written to --results as JSON
{"users": {userId: items}, "categories": {category: count}} after the run.

Prints one JSON line on stdout at the end:
{"seconds", "processed", "pathway", "threads"}.
"""
import argparse
import json
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--count", type=int, required=True, help="records the topic holds (checked against what was read)")
    p.add_argument("--state-dir", required=True, help="Pathway's persistence directory")
    p.add_argument("--results", required=True, help="where the final per-user sums and per-category counts go (JSON)")
    p.add_argument("--commit-interval", type=float, default=1.0, help="seconds (the reader's autocommit_duration_ms)")
    args = p.parse_args()

    import pathway as pw

    # Timed from here, as the Quix script times from building its Application (imports excluded).
    started = time.monotonic()

    class Purchase(pw.Schema):
        orderId: str
        userId: str
        productId: str
        category: str
        price: float
        quantity: int
        timestamp: str

    purchases = pw.io.kafka.read(
        rdkafka_settings={
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": "6000",
        },
        topic=args.topic,
        schema=Purchase,
        format="json",
        mode="static",
        autocommit_duration_ms=max(1, int(args.commit_interval * 1000)),
        name="purchases",
    )
    users = purchases.groupby(pw.this.userId).reduce(pw.this.userId, items=pw.reducers.sum(pw.this.quantity))
    categories = purchases.groupby(pw.this.category).reduce(pw.this.category, count=pw.reducers.count())

    user_items: dict[str, int] = {}
    category_counts: dict[str, int] = {}

    def on_user(key, row, time, is_addition):
        if is_addition:
            user_items[row["userId"]] = row["items"]
        elif user_items.get(row["userId"]) == row["items"]:
            del user_items[row["userId"]]

    def on_category(key, row, time, is_addition):
        if is_addition:
            category_counts[row["category"]] = row["count"]
        elif category_counts.get(row["category"]) == row["count"]:
            del category_counts[row["category"]]

    pw.io.subscribe(users, on_change=on_user)
    pw.io.subscribe(categories, on_change=on_category)
    pw.run(
        monitoring_level=pw.MonitoringLevel.NONE,
        persistence_config=pw.persistence.Config(pw.persistence.Backend.filesystem(args.state_dir)),
    )
    ended = time.monotonic()
    with open(args.results, "w") as f:
        json.dump({"users": user_items, "categories": category_counts}, f)
    processed = sum(category_counts.values())
    print(
        json.dumps(
            {
                "seconds": ended - started,
                "processed": processed,
                "pathway": pw.__version__,
                "threads": os.environ.get("PATHWAY_THREADS", "1"),
            }
        ),
        flush=True,
    )
    return 0 if processed == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
