/*
 * committed_offsets_monotonic.c - per partition, the decision group's
 * committed offset in Kafka never goes back between two consecutive samples,
 * except across a reset the run made on purpose (kafka.replay_window) of that
 * partition, and then not below the reset's target. A committed offset that
 * goes back on its own makes the platform decide records again that it had
 * already handed over (a stale or reordered commit, a consumer restarting
 * from an old position, offsets lost and auto.offset.reset=earliest): the
 * idempotency guard is then all that stands between a replay nobody asked
 * for and duplicate decisions, and the lag the alerts watch is wrong.
 *
 * Evidence: offsets.tsv as loaded into ctx->offsets (the sampler's rows and
 * the final snapshot; t_ms is when the answer came back) and
 * offset_resets.tsv as ctx->offset_resets (the window of each reset, from
 * just before the admin call until the run heard back). A decrease between
 * rows j and k of a partition is a replay when a reset of that partition
 * started at or before t_k and ended at or after the time of the row before
 * j (row j's query was sent after that row was written). Rows without a
 * committed offset are not compared.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define NAME "committed_offsets_monotonic"

/* r.* matches the reset windows that can explain row k of v. */
#define RESET_WINDOW                                                        \
	"r.consumer_group = v.consumer_group AND r.topic = v.topic AND "    \
	"r.partition = v.partition AND r.t_start_ms <= v.t_ms AND "         \
	"(v.prev_before IS NULL OR r.t_end_ms >= v.prev_before)"

#define MONOTONIC_SQL                                                       \
	"WITH a AS (SELECT seq, t_ms, consumer_group, topic, partition, "   \
	"committed, lag(t_ms) OVER w AS t_before FROM %s "                  \
	"WINDOW w AS (PARTITION BY consumer_group, topic, partition "       \
	"ORDER BY seq)), "                                                  \
	"k AS (SELECT *, lag(committed) OVER w AS prev, lag(t_before) OVER " \
	"w AS prev_before, lag(seq) OVER w AS prev_seq FROM a WHERE "      \
	"committed IS NOT NULL WINDOW w AS (PARTITION BY consumer_group, "  \
	"topic, partition ORDER BY seq)), "                                 \
	"v AS (SELECT * FROM k WHERE prev_seq IS NOT NULL), "               \
	"x AS (SELECT v.*, v.committed < v.prev AS dec, EXISTS (SELECT 1 "  \
	"FROM %s r WHERE " RESET_WINDOW " AND v.committed >= r.to_offset) " \
	"AS replay, (SELECT min(r.to_offset) FROM %s r WHERE "              \
	RESET_WINDOW ") AS target FROM v) "

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	static const char *const none[] = {NULL};
	char head[3072], sql[4096];
	struct fp_rows *rows;
	long long bad, replays, pairs, parts, resets;
	int rc;

	rc = fp__with_only(with, NAME, none, err);
	if (rc)
		return rc;
	if (!ctx->offsets || !ctx->offset_resets) {
		fp_check_judge(res, 0, 0, "decreases of a committed offset "
					  "outside a replay",
			       "consecutive samples of a committed offset");
		snprintf(res->detail, sizeof res->detail,
			 "no committed-offset evidence for this run");
		return FP_OK;
	}
	snprintf(head, sizeof head, MONOTONIC_SQL, ctx->offsets,
		 ctx->offset_resets, ctx->offset_resets);
	snprintf(sql, sizeof sql,
		 "%s SELECT count(*) FILTER (WHERE dec AND NOT replay), "
		 "count(*) FILTER (WHERE dec AND replay), count(*), "
		 "count(DISTINCT (consumer_group, topic, partition)), "
		 "(SELECT count(*) FROM %s) FROM x",
		 head, ctx->offset_resets);
	rc = fp_pg_query(ctx->pg, sql, 0, NULL, &rows, err);
	if (rc)
		return rc;
	bad = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	replays = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	pairs = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	parts = strtoll(fp_rows_get(rows, 0, 3), NULL, 10);
	resets = strtoll(fp_rows_get(rows, 0, 4), NULL, 10);
	fp_rows_free(rows);
	snprintf(res->detail, sizeof res->detail,
		 "%lld partitions; %lld decreases across a replay reset "
		 "(allowed) of %lld partition resets the run made",
		 parts, replays, resets);
	fp_check_judge(res, bad, pairs,
		       "decreases of a committed offset outside a replay",
		       "consecutive samples of a committed offset");
	if (bad == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "%s SELECT topic || '[' || partition || '] at ' || "
		 "to_char(t_ms / 1000.0, 'FM9999999990.000') || ' s: ' || prev "
		 "|| ' -> ' || committed || CASE WHEN target IS NULL THEN "
		 "' (no replay reset in between)' ELSE ' (below the replay "
		 "target ' || target || ')' END FROM x WHERE dec AND NOT replay "
		 "ORDER BY t_ms, partition LIMIT 32",
		 head);
	return fp_check_examples(ctx, res, sql, 0, NULL, err);
}

const struct fp_invariant fp_invariant_committed_offsets_monotonic = {
	.name = NAME,
	.summary = "the decision group's committed offsets never go back, "
		   "except across the run's own replay resets",
	.check = check,
};
