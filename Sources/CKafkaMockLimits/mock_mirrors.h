#ifndef KAFKA_MOCK_MIRRORS_H
#define KAFKA_MOCK_MIRRORS_H

/* Mirrors of librdkafka 2.0.2's private structures shared by this target's
 * readers: queue.h TAILQ links, rdlist.h's rd_list_t, rdkafka_timer.h's
 * timers, and rdkafka_mock_int.h's rd_kafka_mock_cluster_s up to .timers.
 * mtx_t and cnd_t are glibc's pthread types (tinycthread's typedefs, or C11
 * <threads.h> unions of the same size over the same implementation); thrd_t is
 * a pthread_t; rd_socket_t and rd_bool_t are ints; rd_ts_t an int64_t of
 * CLOCK_MONOTONIC microseconds. */

#include <pthread.h>
#include <stdint.h>

struct tailq_entry { void *next; void **prev; };
struct tailq_head { void *first; void **last; };

struct mirror_list {
        int rl_size;
        int rl_cnt;
        void **rl_elems;
        void (*rl_free_cb)(void *);
        int rl_flags;
        int rl_elemsize;
        void *rl_p;
};

struct mirror_timer {
        struct tailq_entry link;
        int64_t next;
        int64_t interval;
        int oneshot;
        void (*callback)(void *rkts, void *arg);
        void *arg;
};

struct mirror_timers {
        struct tailq_head timers;
        void *rk;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        void *wakeq;
        int enabled;
};

struct mirror_api_handler {
        int16_t min_version;
        int16_t max_version;
        int16_t flex_version;
        int (*cb)(void *mconn, void *rkbuf);
};

#define MIRROR_RD_KAFKAP__NUM 59 /* rdkafka_protocol.h, 2.0.2 */

struct mirror_cluster {
        char id[32];
        void *rk;
        int32_t controller_id;
        struct tailq_head brokers;
        int broker_cnt;
        struct tailq_head topics;
        int topic_cnt;
        struct tailq_head cgrps;
        struct tailq_head coords;
        struct mirror_list pids;
        char *bootstraps;
        pthread_t thread;
        void *ops;
        int wakeup_fds[2];
        int run;
        int fd_cnt;
        int fd_size;
        void *fds;
        void *dummy_rkb;
        struct {
                int partition_cnt;
                int replication_factor;
        } defaults;
        void *handlers;
        struct tailq_head errstacks;
        struct mirror_api_handler api_handlers[MIRROR_RD_KAFKAP__NUM];
        pthread_mutex_t lock;
        struct mirror_timers timers;
};

#endif
