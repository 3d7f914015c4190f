/*
 * origin_offsets_reconcile.c - every decision's origin record (topic,
 * partition, offset) maps to exactly one ledgered event, and it is the same
 * event the decision names. The ledger knows each admitted event's
 * coordinates from its admission receipt, so a decision of a record nobody
 * sent ("unexpected"), or of a record that carried another event, breaks
 * the evidence boundary of seed 004 §7.3. Decisions of events whose send was
 * indeterminate (no receipt) cannot be placed and are counted apart.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"

#define MATCHED_SQL                                                         \
	"WITH d AS (SELECT decision_id, event_id, origin_topic, "           \
	"origin_partition, origin_offset FROM %s WHERE platform_run_id = $1 " \
	"AND event_class = $2), "                                           \
	"l AS (SELECT DISTINCT event_id, topic, partition, kafka_offset "   \
	"FROM %s WHERE outcome IN ('ok','dup') AND kafka_offset IS NOT NULL), " \
	"ind AS (SELECT DISTINCT event_id FROM %s WHERE outcome = 'info'), " \
	"m AS (SELECT d.decision_id, d.event_id, d.origin_topic, "          \
	"d.origin_partition, d.origin_offset, count(l.event_id) AS n, "     \
	"bool_and(l.event_id = d.event_id) AS same, "                        \
	"bool_or(ind.event_id IS NOT NULL) AS indeterminate "                \
	"FROM d LEFT JOIN l ON l.topic = d.origin_topic AND "               \
	"l.partition = d.origin_partition AND l.kafka_offset = d.origin_offset " \
	"LEFT JOIN ind ON ind.event_id = d.event_id "                        \
	"GROUP BY 1,2,3,4,5), "                                              \
	"v AS (SELECT *, (n = 0 AND indeterminate) AS unplaced, "           \
	"NOT (n = 1 AND same) AND NOT (n = 0 AND indeterminate) AS bad FROM m) "

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[4096], head[2048];
	struct fp_rows *rows;
	long long bad, judged, unplaced;
	int rc;

	snprintf(head, sizeof head, MATCHED_SQL, ctx->decision_log,
		 ctx->ledger, ctx->ledger);
	snprintf(sql, sizeof sql,
		 "%s SELECT count(*) FILTER (WHERE bad), count(*), "
		 "count(*) FILTER (WHERE unplaced) FROM v",
		 head);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	bad = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	unplaced = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	fp_rows_free(rows);
	snprintf(res->detail, sizeof res->detail,
		 "%lld decisions of indeterminate sends could not be placed "
		 "(no receipt)",
		 unplaced);
	fp_check_judge(res, bad, judged,
		       "decisions whose origin offset does not map to exactly "
		       "one ledgered event",
		       "decisions");
	if (bad == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "%s SELECT event_id || ' @ ' || origin_topic || '[' || "
		 "origin_partition || ']@' || origin_offset || ': ' || "
		 "CASE WHEN n = 0 THEN 'no ledgered event' WHEN n > 1 THEN n || "
		 "' ledgered events' ELSE 'ledgered as another event' END "
		 "FROM v WHERE bad ORDER BY origin_partition, origin_offset "
		 "LIMIT 32",
		 head);
	return fp_check_examples(ctx, res, sql, 2, params, err);
}

const struct fp_invariant fp_invariant_origin_offsets_reconcile = {
	.name = "origin_offsets_reconcile",
	.summary = "each decision's origin offset maps to exactly one "
		   "ledgered event",
	.check = check,
};
