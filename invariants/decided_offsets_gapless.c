/*
 * decided_offsets_gapless.c - per partition, every admitted record of the run
 * at or below the highest offset the platform decided in that partition has
 * exactly one decision. The decision consumer reads each partition in offset
 * order and commits only after the decision is written, so the decided
 * offsets of a partition must form a prefix without holes: a hole is a
 * record the consumer skipped or whose decision was dropped after its offset
 * moved on (commit-before-write, a seek past the backlog on resume), which
 * no_lost_events alone would only name as "lost" without saying that the
 * consumer went past it. The highest decided origin offset stands in for the
 * group's committed offsets (a commit follows the write), so this needs the
 * decision log alone; committed_records_decided_once judges against the
 * committed offsets in Kafka themselves and also sees a committed tail with
 * no later decision. This one stays as the Kafka-independent view, and for a
 * hole between the committed and the highest decided offset. Records above
 * it are not judged here (they are no_lost_events' business) and are counted
 * in the detail.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"

/*
 * At 10 M records the shape decides the cost (docs/performance.md §5): the
 * keys are written offset first, so whatever sorts or hashes them compares
 * integers before the topic text, the highest offsets come straight from
 * the decision log (a few groups) rather than from its 10 M-group count, and
 * the examples come out of the same pass as the counts.
 */
#define GAPLESS_SQL                                                          \
	"WITH l AS (SELECT DISTINCT kafka_offset, partition, topic, event_id " \
	"FROM %s WHERE outcome IN ('ok','dup') AND kafka_offset IS NOT NULL), " \
	"d AS (SELECT origin_offset, origin_partition, origin_topic, count(*) " \
	"AS n FROM %s WHERE platform_run_id = $1 AND event_class = $2 GROUP " \
	"BY origin_offset, origin_partition, origin_topic), "                \
	"hi AS (SELECT origin_topic, origin_partition, max(origin_offset) AS " \
	"hi FROM %s WHERE platform_run_id = $1 AND event_class = $2 GROUP BY " \
	"1,2), "                                                             \
	"j AS (SELECT l.event_id, l.topic, l.partition, l.kafka_offset, "    \
	"coalesce(d.n, 0) AS n, hi.hi FROM l LEFT JOIN d ON "                \
	"d.origin_offset = l.kafka_offset AND d.origin_partition = "          \
	"l.partition AND d.origin_topic = l.topic LEFT JOIN hi ON "          \
	"hi.origin_topic = l.topic AND hi.origin_partition = l.partition), " \
	"v AS (SELECT *, hi IS NOT NULL AND kafka_offset <= hi AS judged, "  \
	"hi IS NOT NULL AND kafka_offset <= hi AND n <> 1 AS bad FROM j), "  \
	"c AS (SELECT count(*) FILTER (WHERE bad) AS bad, count(*) FILTER "   \
	"(WHERE judged) AS judged, count(*) FILTER (WHERE hi IS NOT NULL AND " \
	"NOT judged) AS above, count(*) FILTER (WHERE hi IS NULL) AS "        \
	"undecided, (array_agg(event_id || ' @ ' || topic || '[' || "         \
	"partition || ']@' || kafka_offset || ': ' || n || ' decisions, "     \
	"highest decided offset ' || hi ORDER BY partition, kafka_offset) "   \
	"FILTER (WHERE bad))[1:32] AS ex FROM v) "                            \
	"SELECT c.bad, c.judged, c.above, c.undecided, x.t FROM c LEFT JOIN " \
	"LATERAL unnest(c.ex) WITH ORDINALITY AS x(t, i) ON true ORDER BY x.i"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[4096];
	struct fp_rows *rows;
	long long bad, judged, above, undecided_parts;
	int rc;

	(void)with;
	snprintf(sql, sizeof sql, GAPLESS_SQL, ctx->ledger, ctx->decision_log,
		 ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	bad = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	above = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	undecided_parts = strtoll(fp_rows_get(rows, 0, 3), NULL, 10);
	snprintf(res->detail, sizeof res->detail,
		 "not judged: %lld admitted records above their partition's "
		 "highest decided offset, %lld in partitions with no decision "
		 "(see no_lost_events)",
		 above, undecided_parts);
	fp_check_judge(res, bad, judged,
		       "admitted records below their partition's highest "
		       "decided offset without exactly one decision",
		       "admitted records below the decided offsets");
	fp_check_take_examples(res, rows, 4);
	fp_rows_free(rows);
	return FP_OK;
}

const struct fp_invariant fp_invariant_decided_offsets_gapless = {
	.name = "decided_offsets_gapless",
	.summary = "admitted records below each partition's highest decided "
		   "offset have exactly one decision",
	.needs_ledger = 1,
	.check = check,
};
