#ifndef KAFKA_MOCK_LIMITS_H
#define KAFKA_MOCK_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * librdkafka 2.0.2's mock cluster keeps at most 5 MiB or 100,000 message sets
 * per partition and silently drops older ones (rd_kafka_mock_partition_init in
 * rdkafka_mock.c). There is no public API to change that, so this function
 * walks the cluster's private structures -- laid out exactly as in 2.0.2's
 * rdkafka_mock_int.h -- and raises both limits for one topic.
 *
 * It is defensive: it returns a negative value and writes nothing unless
 * rd_kafka_version() is exactly 2.0.2 and every structure it reads checks out
 * (topic name, partition count, partition ids, back-pointers, and the current
 * limits equal to 2.0.2's defaults or to a value this function wrote). The
 * caller must then fall back to detecting truncation (low watermark > 0).
 *
 * Call it right after rd_kafka_mock_topic_create() returned (the mock thread
 * created the topic synchronously) and before producing to the topic.
 *
 * Returns the number of partitions updated, or:
 *   -1 wrong librdkafka version, -2 topic not found, -3 layout check failed.
 */
int kafka_mock_lift_partition_limits(void *mcluster, const char *topic,
                                     size_t max_bytes, size_t max_msgsets);

/*
 * The bytes of the message sets a partition of `topic` holds (the record
 * batches as produced: compressed when the producer compressed them), read
 * through the same mirrors and checks. Read it only when nothing is being
 * produced to the partition (after the producer's flush returned).
 *
 * Returns the byte count, or -1 wrong librdkafka version, -2 topic or
 * partition not found, -3 layout check failed.
 */
int64_t kafka_mock_partition_log_bytes(void *mcluster, const char *topic,
                                       int32_t partition);

#endif
