/*
 * fp_kafka.h - the harness's thin wrapper of librdkafka for observing and
 * steering consumer groups: partition watermarks, a group's committed
 * offsets and lag, the group's state, and resetting its committed offsets
 * (the replay window). Every call has a bounded timeout; broker errors become
 * fp_err messages, so no other harness file includes librdkafka.
 *
 * Ownership: struct fp_kafka is opaque (fp_kafka_new / fp_kafka_free).
 * Arrays returned through out-parameters are allocated and the caller frees
 * them with free().
 */
#ifndef FP_KAFKA_H
#define FP_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

#define FP_KAFKA_NO_OFFSET (-1001) /* no committed offset (librdkafka's INVALID) */

struct fp_kafka;

/* One partition's offsets; committed is FP_KAFKA_NO_OFFSET when none. */
struct fp_part_offsets {
	int32_t partition;
	int64_t low;
	int64_t high;
	int64_t committed;
};

/*
 * @brief Connect for metadata and admin calls.
 * @param props extra librdkafka properties, may be NULL.
 * @returns FP_EUNREACHABLE when no broker answers within timeout_ms.
 */
int fp_kafka_new(const char *bootstrap, const struct fp_kvlist *props,
		 int timeout_ms, struct fp_kafka **out, struct fp_err *err);
void fp_kafka_free(struct fp_kafka *k);

/* @brief Low/high watermarks of every partition of topic, sorted by
 *        partition; committed is left FP_KAFKA_NO_OFFSET. */
int fp_kafka_watermarks(struct fp_kafka *k, const char *topic,
			struct fp_part_offsets **out, size_t *n,
			struct fp_err *err);

/* @brief Watermarks plus the group's committed offsets, and the total lag
 *        (high - committed, or high - low where nothing is committed). */
int fp_kafka_group_lag(struct fp_kafka *k, const char *group,
		       const char *topic, struct fp_part_offsets **out,
		       size_t *n, int64_t *total_lag, struct fp_err *err);

/* @brief The group's state name ("Stable", "Empty", "Dead", ...) and its
 *        member count. */
int fp_kafka_group_state(struct fp_kafka *k, const char *group, char *state,
			 size_t statesz, int *members, struct fp_err *err);

/*
 * @brief Set the group's committed offsets (Admin AlterConsumerGroupOffsets).
 *        The group must have no active member: the broker refuses otherwise,
 *        and that refusal is returned as FP_EBACKEND.
 * @param to partitions and the offset to commit (the committed field).
 */
int fp_kafka_group_reset(struct fp_kafka *k, const char *group,
			 const char *topic, const struct fp_part_offsets *to,
			 size_t n, struct fp_err *err);

#endif
