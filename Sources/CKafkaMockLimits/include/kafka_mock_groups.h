#ifndef KAFKA_MOCK_GROUPS_H
#define KAFKA_MOCK_GROUPS_H

#include <stdint.h>

/*
 * librdkafka 2.0.2's mock group coordinator (rdkafka_mock_cgrp.c) completes a
 * JoinGroup round only when its rebalance timer fires: 3 s after the first
 * member joins an empty group (the broker default of
 * group.initial.rebalance.delay.ms, hard-coded), and session.timeout.ms − 1 s
 * after any later rebalance starts, even when every member has rejoined long
 * before. A real coordinator completes the round as soon as every member has
 * rejoined, and Kafka's own development configuration (config/server.properties)
 * sets group.initial.rebalance.delay.ms=0.
 *
 * kafka_mock_group_coordinator_install() adds a periodic timer to the mock
 * cluster's own timer list (under the list's lock, laid out exactly as in
 * 2.0.2's rdkafka_timer.h / rdkafka_mock_int.h). Its callback runs on the mock
 * thread, like every other mock timer, so it reads the groups without racing
 * the coordinator. At every tick it runs each group's session check (the
 * coordinator's own callback, every 1 s as shipped: a member whose
 * session.timeout.ms passed now leaves within a tick, as on a real broker, not
 * up to 1 s later). For each group in the joining state whose members all have a
 * JoinGroup request waiting, it fires the group's rebalance timer callback at
 * once (the coordinator's own "timed out waiting for members" path: elect a
 * leader, answer the JoinGroups), once `initial_delay_ms` has passed for an
 * empty group's first round, at once for any later round. A member that has
 * not rejoined (a killed process, until its session times out) keeps the
 * coordinator's own timing.
 *
 * It is defensive: it returns NULL with *rc set and changes nothing unless
 * rd_kafka_version() is exactly 2.0.2 and the cluster's timer list checks out
 * (its rd_kafka_t and wake-up queue are the cluster's own, its bootstrap
 * string is the one rd_kafka_mock_cluster_bootstraps() returns). The callback
 * stops acting (for good) if a group it walks does not check out.
 *
 * `initial_delay_ms`: 0 to 3000 (the mock's own timer fires at 3000 anyway).
 * `tick_ms`: how often the timer runs, 1 to 1000.
 *
 * The returned context must outlive the cluster: free it with
 * kafka_mock_group_coordinator_free() only after rd_kafka_mock_cluster_destroy()
 * returned.
 *
 * *rc: -1 wrong librdkafka version, -3 layout check failed, -4 bad argument.
 */
typedef struct kafka_mock_group_coordinator kafka_mock_group_coordinator;

kafka_mock_group_coordinator *
kafka_mock_group_coordinator_install(void *mcluster, const char *bootstraps,
                                     int initial_delay_ms, int tick_ms, int *rc);

/* JoinGroup rounds completed early so far (read from any thread). */
int64_t kafka_mock_group_coordinator_completed_rounds(
    const kafka_mock_group_coordinator *coordinator);

/* Whether the callback met a group it could not check and stopped acting. */
int kafka_mock_group_coordinator_disabled(
    const kafka_mock_group_coordinator *coordinator);

void kafka_mock_group_coordinator_free(kafka_mock_group_coordinator *coordinator);

#endif
