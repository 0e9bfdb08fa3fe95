#include "kafka_mock_limits.h"
#include "mock_mirrors.h"
#include <librdkafka/rdkafka.h>
#include <string.h>

/* Mirrors of librdkafka 2.0.2's private structures (rdkafka_mock_int.h,
 * rdlist.h, queue.h). Only the prefixes that are read are declared, except for
 * the partition, whose full size is needed to step through the array. */

#define LIMITS_DEFAULT_MAX_SIZE ((size_t)1024 * 1024 * 5)
#define LIMITS_DEFAULT_MAX_CNT ((size_t)100000)

struct mirror_topic;

struct mirror_partition {
        struct tailq_entry leader_link;
        int32_t id;
        int64_t start_offset;
        int64_t end_offset;
        int64_t follower_start_offset;
        int64_t follower_end_offset;
        int update_follower_start_offset;
        int update_follower_end_offset;
        struct tailq_head msgsets;
        size_t size;
        size_t cnt;
        size_t max_size;
        size_t max_cnt;
        struct tailq_head committed_offsets;
        void *leader;
        void **replicas;
        int replica_cnt;
        struct mirror_list pidstates;
        int32_t follower_id;
        struct mirror_topic *topic;
};

struct mirror_topic {
        struct tailq_entry link;
        char *name;
        struct mirror_partition *partitions;
        int partition_cnt;
        int err;
        void *cluster;
};

static int limit_ok(size_t value, size_t def, size_t lifted) {
        return value == def || value == lifted;
}

/* The topic named `topic_name` after checking the cluster and the topic's
 * partitions, or NULL with *rc set (-1 version, -2 not found, -3 layout). */
static struct mirror_topic *find_topic(void *mcluster, const char *topic_name, int *rc) {
        if (rd_kafka_version() != 0x020002ff) {
                *rc = -1;
                return NULL;
        }
        struct mirror_cluster *cluster = (struct mirror_cluster *)mcluster;
        if (cluster->topic_cnt < 0 || cluster->topic_cnt > 1000000) {
                *rc = -3;
                return NULL;
        }
        int seen = 0;
        for (struct mirror_topic *t = (struct mirror_topic *)cluster->topics.first;
             t != NULL && seen <= cluster->topic_cnt;
             t = (struct mirror_topic *)t->link.next, seen++) {
                if (t->cluster != mcluster) {
                        *rc = -3;
                        return NULL;
                }
                if (t->name == NULL || strcmp(t->name, topic_name) != 0)
                        continue;
                if (t->partition_cnt <= 0 || t->partitions == NULL) {
                        *rc = -3;
                        return NULL;
                }
                for (int i = 0; i < t->partition_cnt; i++) {
                        struct mirror_partition *p = &t->partitions[i];
                        if (p->id != i || p->topic != t) {
                                *rc = -3;
                                return NULL;
                        }
                }
                return t;
        }
        *rc = -2;
        return NULL;
}

int64_t kafka_mock_partition_log_bytes(void *mcluster, const char *topic_name,
                                       int32_t partition) {
        int rc = 0;
        struct mirror_topic *t = find_topic(mcluster, topic_name, &rc);
        if (t == NULL)
                return rc;
        if (partition < 0 || partition >= t->partition_cnt)
                return -2;
        return (int64_t)t->partitions[partition].size;
}

int kafka_mock_lift_partition_limits(void *mcluster, const char *topic_name,
                                     size_t max_bytes, size_t max_msgsets) {
        int rc = 0;
        struct mirror_topic *t = find_topic(mcluster, topic_name, &rc);
        if (t == NULL)
                return rc;
        /* Check every partition before writing any. */
        for (int i = 0; i < t->partition_cnt; i++) {
                struct mirror_partition *p = &t->partitions[i];
                if (!limit_ok(p->max_size, LIMITS_DEFAULT_MAX_SIZE, max_bytes) ||
                    !limit_ok(p->max_cnt, LIMITS_DEFAULT_MAX_CNT, max_msgsets))
                        return -3;
        }
        for (int i = 0; i < t->partition_cnt; i++) {
                t->partitions[i].max_size = max_bytes;
                t->partitions[i].max_cnt = max_msgsets;
        }
        return t->partition_cnt;
}
