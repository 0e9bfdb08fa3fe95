#ifndef KAFKA_MOCK_MIRRORS_H
#define KAFKA_MOCK_MIRRORS_H

/* Mirrors of librdkafka 2.0.2's queue.h TAILQ links and rdlist.h's rd_list_t,
 * shared by the mock cluster's private-structure readers of this target. */

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

#endif
