/*
 * origin_offsets_reconcile.c - every decision's origin record (topic,
 * partition, offset) maps to exactly one ledgered event, and it is the same
 * event the decision names. The ledger knows each admitted event's
 * coordinates from its admission receipt, so a decision of a record nobody
 * sent ("unexpected"), or of a record that carried another event, breaks
 * the evidence boundary of seed 004 §7.3. Decisions of events whose send was
 * indeterminate (no receipt) cannot be placed and are counted apart.
 *
 * One pass, without grouping 10 M decisions (docs/performance.md §5): the
 * decision log is joined to the acknowledged ledger rows on the coordinates,
 * and a decision is right exactly when every ledger row at its coordinates
 * names its own event and there is at least one. So only the joined rows
 * with no ledger row, or with another event, are kept ("odd", few on a
 * healthy run); they are the wrong decisions, less those of indeterminate
 * sends with no ledger row. A decision without an event_id is odd too, and
 * right only when exactly one event sits at its coordinates (as the
 * grouped form of this check had it).
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"

#define ACKED_AT(l, d)                                                      \
	l ".topic = " d ".origin_topic AND " l ".partition = " d               \
	".origin_partition AND " l ".kafka_offset = " d ".origin_offset AND "  \
	l ".outcome IN ('ok','dup') AND " l ".event_id IS NOT NULL"

/* Wrong decisions, all decisions, unplaced ones, then up to 32 examples in
 * (partition, offset) order (one row each; NULL when there is none). */
#define RECONCILE_SQL                                                       \
	"WITH odd AS MATERIALIZED (SELECT DISTINCT d.decision_id, d.event_id, " \
	"d.origin_topic, d.origin_partition, d.origin_offset, l.event_id IS " \
	"NULL AS none FROM %s d LEFT JOIN %s l ON " ACKED_AT("l", "d")       \
	" WHERE d.platform_run_id = $1 AND d.event_class = $2 AND "          \
	"(l.event_id IS NULL OR l.event_id <> d.event_id OR d.event_id IS "  \
	"NULL)), "                                                           \
	"one AS (SELECT o.decision_id FROM odd o JOIN %s l ON "              \
	ACKED_AT("l", "o") " WHERE o.event_id IS NULL GROUP BY 1 HAVING "     \
	"count(DISTINCT l.event_id) = 1), "                                  \
	"v AS MATERIALIZED (SELECT *, none AND coalesce(event_id IN (SELECT " \
	"event_id FROM %s WHERE outcome = 'info'), false) AS unplaced FROM "  \
	"odd WHERE NOT (event_id IS NULL AND coalesce(decision_id IN (SELECT " \
	"decision_id FROM one), false))), "                                  \
	"ex AS MATERIALIZED (SELECT * FROM v WHERE NOT unplaced ORDER BY "    \
	"origin_partition, origin_offset LIMIT 32), "                        \
	"n AS (SELECT e.decision_id, count(DISTINCT l.event_id) AS n FROM ex " \
	"e JOIN %s l ON " ACKED_AT("l", "e") " GROUP BY 1), "                 \
	"c AS (SELECT (SELECT count(*) FROM v WHERE NOT unplaced) AS bad, "   \
	"(SELECT count(*) FROM %s WHERE platform_run_id = $1 AND event_class " \
	"= $2) AS judged, (SELECT count(*) FROM v WHERE unplaced) AS "        \
	"unplaced) "                                                         \
	"SELECT c.bad, c.judged, c.unplaced, x.t FROM c LEFT JOIN (SELECT "   \
	"e.origin_partition AS p, e.origin_offset AS o, coalesce(e.event_id, " \
	"'(null)') || ' @ ' "                                                 \
	"|| e.origin_topic || '[' || e.origin_partition || ']@' || "          \
	"e.origin_offset || ': ' || CASE WHEN coalesce(n.n, 0) = 0 THEN 'no " \
	"ledgered event' WHEN n.n > 1 THEN n.n || ' ledgered events' ELSE "   \
	"'ledgered as another event' END AS t FROM ex e LEFT JOIN n USING "   \
	"(decision_id)) x ON true ORDER BY x.p, x.o"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[4096];
	struct fp_rows *rows;
	long long bad, judged, unplaced;
	int rc;

	(void)with;
	snprintf(sql, sizeof sql, RECONCILE_SQL, ctx->decision_log,
		 ctx->ledger, ctx->ledger, ctx->ledger, ctx->ledger,
		 ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	bad = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	unplaced = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	snprintf(res->detail, sizeof res->detail,
		 "%lld decisions of indeterminate sends could not be placed "
		 "(no receipt)",
		 unplaced);
	fp_check_judge(res, bad, judged,
		       "decisions whose origin offset does not map to exactly "
		       "one ledgered event",
		       "decisions");
	fp_check_take_examples(res, rows, 3);
	fp_rows_free(rows);
	return FP_OK;
}

const struct fp_invariant fp_invariant_origin_offsets_reconcile = {
	.name = "origin_offsets_reconcile",
	.summary = "each decision's origin offset maps to exactly one "
		   "ledgered event",
	.needs_ledger = 1,
	.check = check,
};
