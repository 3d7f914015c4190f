/*
 * committed_records_decided_once.c - per partition, every admitted record of
 * the run below the decision group's final committed offset in Kafka has
 * exactly one decision. A committed offset is the platform's statement "every
 * record before this one is done"; the consumer must commit only after the
 * decision is written (contract §2, §8 fail-closed writes). A record below it
 * with no decision was handed over undecided (commit-before-write, a seek
 * past a backlog); two decisions, a replay the platform did not absorb.
 *
 * The committed offsets are the ones the group really has in Kafka: the
 * final snapshot the run takes at judging time, after the drain (the last
 * sampled value when that snapshot failed, and the detail says so).
 * decided_offsets_gapless judges the same records against the highest
 * decided offset instead, a witness from the decision log alone; this check
 * also sees the tail a commit went past without any later decision.
 * Records at or above the committed offset are not judged (no_lost_events'
 * business after a drain) and are counted in the detail.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define NAME "committed_records_decided_once"

/* c: the latest committed offset of each partition (the final snapshot's
 * rows are the last ones); l: the run's admitted records (as in
 * decided_offsets_gapless); d: decisions per origin. Integer keys lead the
 * DISTINCT, GROUP BY and join so that, at 10 M rows, the planner hashes them
 * instead of sorting text (see docs/performance.md §5). */
#define DECIDED_ONCE_SQL                                                    \
	"WITH c AS (SELECT DISTINCT ON (topic, partition) topic, partition, " \
	"committed, kind FROM %s WHERE committed IS NOT NULL ORDER BY "      \
	"topic, partition, seq DESC), "                                      \
	"l AS (SELECT DISTINCT kafka_offset, partition, topic, event_id "    \
	"FROM %s WHERE outcome IN ('ok','dup') AND kafka_offset IS NOT "     \
	"NULL), "                                                            \
	"d AS (SELECT origin_offset, origin_partition, origin_topic, "       \
	"count(*) AS n FROM %s WHERE platform_run_id = $1 AND event_class "  \
	"= $2 GROUP BY origin_offset, origin_partition, origin_topic), "     \
	"j AS (SELECT l.event_id, l.topic, l.partition, l.kafka_offset, "    \
	"coalesce(d.n, 0) AS n, c.committed FROM l LEFT JOIN c ON "          \
	"c.topic = l.topic AND c.partition = l.partition LEFT JOIN d ON "    \
	"d.origin_offset = l.kafka_offset AND d.origin_partition = "         \
	"l.partition AND d.origin_topic = l.topic), "                        \
	"v AS (SELECT *, kafka_offset < committed AS judged, "               \
	"kafka_offset < committed AND n <> 1 AS bad FROM j)"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	static const char *const none[] = {NULL};
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	const char *what = "records below the committed offset without "
			   "exactly one decision";
	const char *population = "records below the committed offsets";
	char head[3072], sql[4096];
	struct fp_rows *rows;
	long long bad, judged, above, uncommitted, parts, final_parts;
	int rc;

	rc = fp__with_only(with, NAME, none, err);
	if (rc)
		return rc;
	if (!ctx->offsets) {
		fp_check_judge(res, 0, 0, what, population);
		snprintf(res->detail, sizeof res->detail,
			 "no committed-offset evidence for this run");
		return FP_OK;
	}
	snprintf(head, sizeof head, DECIDED_ONCE_SQL, ctx->offsets,
		 ctx->ledger, ctx->decision_log);
	/* One pass: the counts and the first 32 violations (one row per
	 * example, the counts repeated), so a failing 10 M-row run is not
	 * joined twice. */
	snprintf(sql, sizeof sql,
		 "%s, s AS (SELECT count(*) FILTER (WHERE bad) AS bad, "
		 "count(*) FILTER (WHERE judged) AS judged, count(*) FILTER "
		 "(WHERE NOT judged) AS above, count(*) FILTER (WHERE committed "
		 "IS NULL) AS uncommitted, (array_agg(event_id || ' @ ' || topic "
		 "|| '[' || partition || ']@' || kafka_offset || ': ' || n || ' "
		 "decisions, committed offset ' || committed ORDER BY partition, "
		 "kafka_offset) FILTER (WHERE bad))[1:32] AS ex FROM v) "
		 "SELECT s.bad, s.judged, s.above, s.uncommitted, (SELECT "
		 "count(*) FROM c), (SELECT count(*) FROM c WHERE kind = "
		 "'final'), x.t FROM s LEFT JOIN LATERAL unnest(s.ex) WITH "
		 "ORDINALITY AS x(t, i) ON true ORDER BY x.i",
		 head);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	bad = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	/* NOT judged is NULL, not true, where there is no committed offset */
	above = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	uncommitted = strtoll(fp_rows_get(rows, 0, 3), NULL, 10);
	parts = strtoll(fp_rows_get(rows, 0, 4), NULL, 10);
	final_parts = strtoll(fp_rows_get(rows, 0, 5), NULL, 10);
	fp_check_take_examples(res, rows, 6);
	fp_rows_free(rows);
	if (parts == 0)
		snprintf(res->detail, sizeof res->detail,
			 "the decision group has no committed offset");
	else
		snprintf(res->detail, sizeof res->detail,
			 "committed offsets of %lld partitions (%s); not "
			 "judged: %lld records at or above their partition's "
			 "committed offset, %lld in partitions without one "
			 "(see no_lost_events)",
			 parts,
			 final_parts == parts
				 ? "final snapshot after the drain"
				 : "final snapshot missing for some, last "
				   "sample instead",
			 above, uncommitted);
	fp_check_judge(res, bad, judged, what, population);
	return FP_OK;
}

const struct fp_invariant fp_invariant_committed_records_decided_once = {
	.name = NAME,
	.summary = "every admitted record below the decision group's final "
		   "committed offset has exactly one decision",
	.needs_ledger = 1,
	.check = check,
};
