#include "kafka_mock_groups.h"
#include "mock_mirrors.h"
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Mirrors of rdkafka_mock_int.h's consumer group and member (the cluster and
 * timers are in mock_mirrors.h). */

struct g_member {
        struct tailq_entry link;
        char *id;
        char *group_instance_id;
        int64_t ts_last_activity;
        void *protos;
        int proto_cnt;
        void *assignment;
        void *resp;
        void *conn;
};

enum { G_EMPTY = 0, G_JOINING = 1, G_SYNCING = 2, G_REBALANCING = 3, G_UP = 4 };

struct g_cgrp {
        struct tailq_entry link;
        struct mirror_cluster *cluster;
        void *conn;
        char *id;
        char *protocol_type;
        char *protocol_name;
        int32_t generation_id;
        int session_timeout_ms;
        int state;
        struct mirror_timer session_tmr;
        struct mirror_timer rebalance_tmr;
        struct tailq_head members;
        int member_cnt;
        int last_member_cnt;
        int assignment_cnt;
        void *leader;
};

/* What the callback remembers of a group between ticks (mock thread only). */
struct g_seen {
        const struct g_cgrp *cgrp;
        int last_state;
        int initial_round;      /* the current round started from an empty group */
        int64_t joining_since;  /* when a tick first saw the current round, 0: none */
};

struct kafka_mock_group_coordinator {
        struct mirror_timer timer; /* first: linked into the cluster's timer list */
        struct mirror_cluster *cluster;
        int64_t initial_delay_us;
        struct g_seen *seen; /* mock thread only */
        int seen_cnt;
        int seen_cap;
        atomic_llong completed_rounds;
        atomic_int disabled;
};

static int64_t g_clock_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct g_seen *g_seen_for(kafka_mock_group_coordinator *c, const struct g_cgrp *cgrp,
                                 int *is_new) {
        for (int i = 0; i < c->seen_cnt; i++)
                if (c->seen[i].cgrp == cgrp) {
                        *is_new = 0;
                        return &c->seen[i];
                }
        if (c->seen_cnt == c->seen_cap) {
                int cap = c->seen_cap ? c->seen_cap * 2 : 16;
                struct g_seen *grown = realloc(c->seen, (size_t)cap * sizeof(*grown));
                if (!grown)
                        return NULL;
                c->seen = grown;
                c->seen_cap = cap;
        }
        struct g_seen *s = &c->seen[c->seen_cnt++];
        memset(s, 0, sizeof(*s));
        s->cgrp = cgrp;
        s->last_state = G_EMPTY;
        *is_new = 1;
        return s;
}

/* Whether every member of the group checks out and has a JoinGroup waiting;
 * -1 when the member list does not check out. */
static int g_all_members_waiting(const struct g_cgrp *cgrp) {
        int n = 0, waiting = 1;
        for (const struct g_member *m = cgrp->members.first; m != NULL; m = m->link.next) {
                if (++n > cgrp->member_cnt)
                        return -1;
                if (m->resp == NULL || m->conn == NULL)
                        waiting = 0;
        }
        if (n != cgrp->member_cnt)
                return -1;
        return waiting;
}

/* The timer callback: runs on the mock thread, the timer list unlocked. */
static void g_tick(void *rkts, void *arg) {
        kafka_mock_group_coordinator *c = arg;
        if (atomic_load(&c->disabled))
                return;
        struct mirror_cluster *cluster = c->cluster;
        int64_t now = g_clock_us();
        int walked = 0;
        for (struct g_cgrp *cgrp = cluster->cgrps.first; cgrp != NULL; cgrp = cgrp->link.next) {
                if (++walked > 1000000 || cgrp->cluster != cluster || cgrp->state < G_EMPTY ||
                    cgrp->state > G_UP || cgrp->member_cnt < 0 || cgrp->session_tmr.arg != cgrp) {
                        atomic_store(&c->disabled, 1);
                        return;
                }
                /* The coordinator's own session check (every 1 s as shipped), at every tick: a
                 * member whose session.timeout.ms passed leaves now, not up to 1 s later. */
                if (cgrp->session_tmr.callback != NULL)
                        cgrp->session_tmr.callback(rkts, cgrp);
                int is_new = 0;
                struct g_seen *seen = g_seen_for(c, cgrp, &is_new);
                if (!seen)
                        return;
                int state = cgrp->state;
                if (state != G_JOINING) {
                        seen->joining_since = 0;
                        seen->last_state = state;
                        continue;
                }
                if (seen->joining_since == 0) {
                        seen->joining_since = now;
                        seen->initial_round = is_new || seen->last_state == G_EMPTY;
                }
                seen->last_state = state;
                if (cgrp->member_cnt == 0)
                        continue;
                int waiting = g_all_members_waiting(cgrp);
                if (waiting < 0) {
                        atomic_store(&c->disabled, 1);
                        return;
                }
                if (!waiting)
                        continue;
                if (seen->initial_round && now - seen->joining_since < c->initial_delay_us)
                        continue;
                /* The coordinator's rebalance timer is pending in this state; its callback is
                 * the coordinator's "timed out waiting for members" path (elect a leader,
                 * answer every JoinGroup, restart the timer for the sync round). */
                if (cgrp->rebalance_tmr.next == 0 || cgrp->rebalance_tmr.arg != cgrp ||
                    cgrp->rebalance_tmr.callback == NULL)
                        continue;
                seen->joining_since = 0;
                atomic_fetch_add(&c->completed_rounds, 1);
                cgrp->rebalance_tmr.callback(rkts, cgrp->rebalance_tmr.arg);
        }
}

kafka_mock_group_coordinator *
kafka_mock_group_coordinator_install(void *mcluster, const char *bootstraps,
                                     int initial_delay_ms, int tick_ms, int *rc) {
        if (rd_kafka_version() != 0x020002ff) {
                *rc = -1;
                return NULL;
        }
        if (mcluster == NULL || bootstraps == NULL || initial_delay_ms < 0 ||
            initial_delay_ms > 3000 || tick_ms < 1 || tick_ms > 1000) {
                *rc = -4;
                return NULL;
        }
        struct mirror_cluster *cluster = mcluster;
        struct mirror_timers *timers = &cluster->timers;
        if (cluster->bootstraps != bootstraps || timers->rk != cluster->rk ||
            timers->wakeq != cluster->ops || timers->enabled != 1 || cluster->rk == NULL) {
                *rc = -3;
                return NULL;
        }
        kafka_mock_group_coordinator *c = calloc(1, sizeof(*c));
        if (!c) {
                *rc = -4;
                return NULL;
        }
        c->cluster = cluster;
        c->initial_delay_us = (int64_t)initial_delay_ms * 1000;
        atomic_init(&c->completed_rounds, 0);
        atomic_init(&c->disabled, 0);
        c->timer.interval = (int64_t)tick_ms * 1000;
        c->timer.oneshot = 0;
        c->timer.callback = g_tick;
        c->timer.arg = c;

        /* rd_kafka_timer_schedule_next(): insert sorted by .next, under the list's lock.
         * The mock thread finds it at its next wake-up (within its 1 s poll at most). */
        pthread_mutex_lock(&timers->lock);
        c->timer.next = g_clock_us() + c->timer.interval;
        struct mirror_timer *before = timers->timers.first;
        while (before != NULL && before->next <= c->timer.next)
                before = before->link.next;
        if (before == NULL) { /* TAILQ_INSERT_TAIL */
                c->timer.link.next = NULL;
                c->timer.link.prev = timers->timers.last;
                *timers->timers.last = &c->timer;
                timers->timers.last = &c->timer.link.next;
        } else { /* TAILQ_INSERT_BEFORE */
                c->timer.link.prev = before->link.prev;
                c->timer.link.next = before;
                *before->link.prev = &c->timer;
                before->link.prev = &c->timer.link.next;
        }
        pthread_mutex_unlock(&timers->lock);
        *rc = 0;
        return c;
}

int64_t kafka_mock_group_coordinator_completed_rounds(
    const kafka_mock_group_coordinator *coordinator) {
        return atomic_load(&((kafka_mock_group_coordinator *)coordinator)->completed_rounds);
}

int kafka_mock_group_coordinator_disabled(const kafka_mock_group_coordinator *coordinator) {
        return atomic_load(&((kafka_mock_group_coordinator *)coordinator)->disabled);
}

void kafka_mock_group_coordinator_free(kafka_mock_group_coordinator *coordinator) {
        if (!coordinator)
                return;
        free(coordinator->seen);
        free(coordinator);
}
