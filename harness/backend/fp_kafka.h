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

/* ---- configuration shared by every librdkafka handle ---------------------- */

struct rd_kafka_conf_s;

/*
 * @brief Set props on a librdkafka conf. When sasl.oauthbearer.config holds
 *        an MSK IAM block (FP_MSK_IAM_TAG; the env profile's
 *        target.kafka.aws_msk_iam), also install the token refresh callback
 *        that signs MSK IAM tokens. Every handle the harness creates goes
 *        through this, so MSK IAM works for admin, sampler and load alike.
 * @returns 0, or -1 with librdkafka's message in errstr.
 */
int fp_kafka_conf_apply(struct rd_kafka_conf_s *conf,
			const struct fp_kvlist *props, char *errstr,
			size_t errsz);

/* ---- Amazon MSK IAM (SASL OAUTHBEARER, SigV4-presigned token) ------------- */

/* Resolved credentials; borrowed. session_token may be NULL. */
struct fp_msk_iam_creds {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
};

/*
 * @brief The MSK IAM token at now_s (Unix seconds): base64url, no padding, of
 *        https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect
 *        presigned with SigV4 (service kafka-cluster, 900 s).
 * @param token set to a malloc'd string the caller frees.
 * @param expiry_ms set to (now_s + 900) * 1000.
 */
int fp_msk_iam_token(const char *region, const struct fp_msk_iam_creds *c,
		     int64_t now_s, char **token, int64_t *expiry_ms,
		     struct fp_err *err);

/*
 * @brief Resolve the references of an MSK IAM sasl.oauthbearer.config
 *        (FP_MSK_IAM_TAG, fp_spec.h) and make a token, as the refresh
 *        callback does. An unresolvable session_token means none.
 *        principal is set to the access key id.
 */
int fp_msk_iam_token_from_config(const char *cfg, int64_t now_s, char **token,
				 int64_t *expiry_ms, char *principal,
				 size_t principalsz, struct fp_err *err);

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
