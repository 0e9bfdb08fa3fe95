#!/usr/bin/env python3
"""Quix Streams peer of `stream-engine bench --peers`.

The same per-user purchase aggregation as the engine's benchmark pipeline
(`purchase_stats` keyed by userId): for each purchase event, the user's orders
(events), items (sum of quantity), cents (sum of price x quantity, rounded to the
cent per event as the engine rounds it), latest event time and spend per
category, kept in Quix's RocksDB state with its changelog topic, and the totals
written to Redis through Quix's RedisSink (`<prefix>:user:<userId>`, JSON).

librdkafka's mock cluster has neither DescribeConfigs nor CreateTopics, which
Quix's TopicAdmin uses to inspect every topic and create missing ones (no
setting skips it). `install_topic_admin_shim` replaces exactly those two methods,
TopicAdmin.inspect_topics and TopicAdmin.create_topics, with answers built from
Metadata; everything else (consume, produce, commit, RocksDB state, changelogs,
the Redis sink) runs unmodified.

With --job two-stage, the engine's two-stage job instead, no Redis: the sum of
quantity per userId (state keyed by the message key) and, on a branch of the
same dataframe, `group_by("category")` (Quix's repartition topic) and the count
of events per category, both stateful with changelogs. The last value each
stage emitted per key is kept in a dict and written to --results as JSON
{"users": {userId: items}, "categories": {category: count}} after the run.

Prints one JSON line on stdout at the end:
{"seconds", "steady_seconds", "processed", "changelogs", "repartitions", "quixstreams"}.
"""
import argparse
import json
import logging
import math
import sys
import time
from datetime import datetime

# Kafka's broker defaults for a topic's configs (what DescribeConfigs would
# answer for a topic created without overrides); Quix reads retention.ms,
# retention.bytes and cleanup.policy from them.
KAFKA_DEFAULT_TOPIC_CONFIG = {
    "cleanup.policy": "delete",
    "retention.ms": "604800000",
    "retention.bytes": "-1",
    "min.insync.replicas": "1",
    "max.message.bytes": "1048588",
}


def install_topic_admin_shim(bootstrap: str) -> None:
    """Replaces TopicAdmin.inspect_topics and TopicAdmin.create_topics (only those)."""
    from confluent_kafka import Producer
    from quixstreams.models.topics import admin as topic_admin
    from quixstreams.models.topics.exceptions import CreateTopicFailure
    from quixstreams.models.topics.topic import TopicConfig

    def inspect_topics(self, topic_names, timeout=30):
        # Metadata instead of DescribeConfigs: partitions and replicas from the
        # cluster, configs = Kafka's defaults.
        cluster_topics = self.list_topics(timeout=timeout)
        return {
            name: (
                TopicConfig(
                    num_partitions=len(cluster_topics[name].partitions),
                    replication_factor=len(cluster_topics[name].partitions[0].replicas),
                    extra_config=dict(KAFKA_DEFAULT_TOPIC_CONFIG),
                )
                if name in cluster_topics
                else None
            )
            for name in topic_names
        }

    def create_topics(self, topics, timeout=30, finalize_timeout=60):
        # Instead of CreateTopics: a Metadata request naming the topic with
        # auto-creation allowed (the mock creates it with its default partition
        # count); the partition count must be what Quix asked for, so that
        # changelogs stay co-partitioned with their input.
        existing = self.list_topics(timeout=timeout)
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return
        producer = Producer({"bootstrap.servers": bootstrap, "allow.auto.create.topics": True})
        for topic in missing:
            metadata = producer.list_topics(topic=topic.name, timeout=timeout)
            created = metadata.topics.get(topic.name)
            wanted = topic.create_config.num_partitions if topic.create_config else None
            if created is None or created.error is not None or not created.partitions:
                raise CreateTopicFailure(f'auto-creating "{topic.name}" through Metadata failed: {created and created.error}')
            if wanted is not None and len(created.partitions) != wanted:
                raise CreateTopicFailure(
                    f'"{topic.name}" was auto-created with {len(created.partitions)} partitions, {wanted} needed; '
                    "create it beforehand with the right count"
                )

    topic_admin.TopicAdmin.inspect_topics = inspect_topics
    topic_admin.TopicAdmin.create_topics = create_topics


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--count", type=int, required=True, help="stop after this many records")
    p.add_argument("--job", choices=["user-totals", "two-stage"], default="user-totals")
    p.add_argument("--redis-host", default="127.0.0.1")
    p.add_argument("--redis-port", type=int, help="user-totals: the Redis sink's port")
    p.add_argument("--prefix", help="user-totals: Redis keys are <prefix>:user:<userId>")
    p.add_argument("--results", help="two-stage: where the final per-user sums and per-category counts go (JSON)")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--commit-interval", type=float, default=1.0, help="seconds")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="stop when no record came for this long")
    args = p.parse_args()
    if args.job == "user-totals" and (args.redis_port is None or args.prefix is None):
        p.error("--job user-totals needs --redis-port and --prefix")
    if args.job == "two-stage" and args.results is None:
        p.error("--job two-stage needs --results")

    import quixstreams
    from quixstreams import Application
    from quixstreams.sinks.community.redis import RedisSink

    install_topic_admin_shim(args.bootstrap)
    started = time.monotonic()
    first = []
    processed = [0]

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        processing_guarantee="at-least-once",
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    sdf = app.dataframe(topic)

    def purchase_stats(value, state):
        if not first:
            first.append(time.monotonic())
        processed[0] += 1
        quantity = int(value["quantity"])
        cents = int(math.floor(float(value["price"]) * quantity * 100 + 0.5))
        at = int(datetime.fromisoformat(value["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)
        totals = state.get("totals") or {"orders": 0, "items": 0, "cents": 0, "last": at, "categories": {}}
        totals["orders"] += 1
        totals["items"] += quantity
        totals["cents"] += cents
        totals["last"] = max(totals["last"], at)
        category = value["category"]
        totals["categories"][category] = totals["categories"].get(category, 0) + cents
        state.set("totals", totals)
        return {
            "orders": totals["orders"],
            "items": totals["items"],
            "cents": totals["cents"],
            "spent": f'{totals["cents"] // 100}.{totals["cents"] % 100:02d}',
            "lastPurchaseAt": datetime.utcfromtimestamp(totals["last"] / 1000).isoformat(timespec="milliseconds") + "Z",
        }

    user_items = {}
    category_counts = {}
    categorised = [0]

    def user_sum(value, key, timestamp, headers, state):
        if not first:
            first.append(time.monotonic())
        processed[0] += 1
        items = (state.get("items") or 0) + int(value["quantity"])
        state.set("items", items)
        user_items[key] = items
        return items

    def category_count(value, key, timestamp, headers, state):
        categorised[0] += 1
        n = (state.get("count") or 0) + 1
        state.set("count", n)
        category_counts[key] = n
        return n

    if args.job == "user-totals":
        sdf = sdf.apply(purchase_stats, stateful=True)
        prefix = args.prefix
        sdf.sink(
            RedisSink(
                host=args.redis_host,
                port=args.redis_port,
                db=0,
                key_serializer=lambda key, value: f"{prefix}:user:{key}",
                value_serializer=json.dumps,
            )
        )
        outputs = args.count
    else:
        # Two branches of one dataframe: the per-user sum, and group_by -> count.
        sdf.apply(user_sum, stateful=True, metadata=True)
        sdf.group_by("category").apply(category_count, stateful=True, metadata=True)
        outputs = 2 * args.count  # one output per record on each branch
    app.run(count=outputs, timeout=args.idle_timeout, collect=False)
    ended = time.monotonic()
    changelogs = [t.name for t in app._topic_manager.changelog_topics_list]
    repartitions = list(app._topic_manager.repartition_topics)
    if args.job == "two-stage":
        with open(args.results, "w") as f:
            json.dump({"users": user_items, "categories": category_counts}, f)
        if categorised[0] != processed[0]:
            print(f"two-stage: {processed[0]} records summed per user, {categorised[0]} counted per category", file=sys.stderr)
            return 1
    print(
        json.dumps(
            {
                "seconds": ended - started,
                "steady_seconds": ended - (first[0] if first else started),
                "processed": processed[0],
                "changelogs": changelogs,
                "repartitions": repartitions,
                "quixstreams": quixstreams.__version__,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
