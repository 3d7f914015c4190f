/*
 * no_lost_events.c - every event the platform acknowledged (202 receipt or
 * 200 duplicate receipt) has a decision. Jepsen's "lost": an acked write
 * that never shows up. Events whose send was indeterminate (timeout, 5xx)
 * are not required to be decided; those that were are "recovered" and
 * reported in the detail.
 *
 * At 10 M events the shape of the SQL decides the cost (docs/performance.md
 * §5): the lost events come from one anti-join (NOT EXISTS at the top of
 * WHERE, so the planner hashes the decision log once instead of probing it
 * per event) and are kept, so the examples do not run it again.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"

/* Acknowledged events without a decision, the acknowledged sends, and up to
 * 32 lost event ids in order (one row each, NULL when none). The population
 * is counted in sends, not distinct events: it only sizes what was judged
 * (and makes an empty ledger unknown), and a distinct count of 10 M event
 * ids costs as much as the anti-join itself. */
#define LOST_SQL                                                            \
	"WITH lost AS MATERIALIZED (SELECT DISTINCT l.event_id FROM %s l "    \
	"WHERE l.outcome IN ('ok','dup') AND NOT EXISTS (SELECT 1 FROM %s d " \
	"WHERE d.platform_run_id = $1 AND d.event_class = $2 AND "           \
	"d.event_id = l.event_id)), "                                        \
	"c AS (SELECT (SELECT count(*) FROM lost) AS lost, (SELECT "          \
	"count(*) FROM %s WHERE outcome IN ('ok','dup')) AS judged) "         \
	"SELECT c.lost, coalesce(c.judged, 0), x.event_id FROM c LEFT JOIN "  \
	"(SELECT event_id FROM lost ORDER BY 1 LIMIT 32) x ON true "          \
	"ORDER BY x.event_id"

/* Indeterminate events (an 'info' row) never acknowledged, yet decided. The
 * info events are hashed once (an IN inside coalesce is not turned into a
 * join, so it cannot become a nested loop over the whole ledger). */
#define RECOVERED_SQL                                                       \
	"SELECT count(*) FROM (SELECT x.event_id FROM %s x WHERE "            \
	"coalesce(x.event_id IN (SELECT event_id FROM %s WHERE outcome = "    \
	"'info'), false) GROUP BY x.event_id HAVING NOT "                     \
	"coalesce(bool_or(x.outcome IN ('ok','dup')), false)) i WHERE EXISTS " \
	"(SELECT 1 FROM %s d WHERE d.platform_run_id = $1 AND "             \
	"d.event_class = $2 AND d.event_id = i.event_id)"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[2048];
	struct fp_rows *rows;
	long long lost, judged;
	int64_t recovered;
	int rc;

	(void)with;
	snprintf(sql, sizeof sql, LOST_SQL, ctx->ledger, ctx->decision_log,
		 ctx->ledger);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	lost = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	fp_check_judge(res, lost, judged,
		       "acknowledged events without a decision",
		       "acknowledged sends");
	for (size_t i = 0; i < fp_rows_count(rows) &&
			   res->n_examples < FP_CHECK_MAX_EXAMPLES;
	     i++) {
		const char *v = fp_rows_get(rows, i, 2);

		/* The lost set may hold the NULL event id: it is shown so. */
		if (v || lost > (long long)i)
			snprintf(res->examples[res->n_examples++],
				 sizeof res->examples[0], "%s",
				 v ? v : "(null)");
	}
	fp_rows_free(rows);

	snprintf(sql, sizeof sql, RECOVERED_SQL, ctx->ledger, ctx->ledger,
		 ctx->decision_log);
	rc = fp_pg_query_i64(ctx->pg, sql, 2, params, &recovered, err);
	if (rc)
		return rc;
	snprintf(res->detail, sizeof res->detail,
		 "%lld indeterminate sends were decided (recovered, allowed)",
		 (long long)recovered);
	return FP_OK;
}

const struct fp_invariant fp_invariant_no_lost_events = {
	.name = "no_lost_events",
	.summary = "every acknowledged event has a decision",
	.needs_ledger = 1,
	.check = check,
};
