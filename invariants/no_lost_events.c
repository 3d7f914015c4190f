/*
 * no_lost_events.c - every event the platform acknowledged (202 receipt or
 * 200 duplicate receipt) has a decision. Jepsen's "lost": an acked write
 * that never shows up. Events whose send was indeterminate (timeout, 5xx)
 * are not required to be decided; those that were are "recovered" and
 * reported in the detail.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[2048], acked[512];
	struct fp_rows *rows;
	long long lost, judged, recovered;
	int rc;

	snprintf(acked, sizeof acked,
		 "SELECT DISTINCT event_id FROM %s WHERE outcome IN ('ok','dup')",
		 ctx->ledger);
	snprintf(sql, sizeof sql,
		 "WITH acked AS (%s) SELECT "
		 "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM %s d WHERE "
		 "d.platform_run_id = $1 AND d.event_class = $2 AND "
		 "d.event_id = a.event_id)), count(*) FROM acked a",
		 acked, ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	lost = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	fp_rows_free(rows);

	snprintf(sql, sizeof sql,
		 "SELECT count(DISTINCT l.event_id) FROM %s l WHERE "
		 "l.outcome = 'info' AND NOT EXISTS (SELECT 1 FROM %s x WHERE "
		 "x.event_id = l.event_id AND x.outcome IN ('ok','dup')) AND "
		 "EXISTS (SELECT 1 FROM %s d WHERE d.platform_run_id = $1 AND "
		 "d.event_class = $2 AND d.event_id = l.event_id)",
		 ctx->ledger, ctx->ledger, ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	recovered = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	fp_rows_free(rows);
	snprintf(res->detail, sizeof res->detail,
		 "%lld indeterminate sends were decided (recovered, allowed)",
		 recovered);

	fp_check_judge(res, lost, judged, "acknowledged events without a decision",
		       "acknowledged events");
	if (lost == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "WITH acked AS (%s) SELECT a.event_id FROM acked a WHERE NOT "
		 "EXISTS (SELECT 1 FROM %s d WHERE d.platform_run_id = $1 AND "
		 "d.event_class = $2 AND d.event_id = a.event_id) ORDER BY 1 "
		 "LIMIT 32",
		 acked, ctx->decision_log);
	return fp_check_examples(ctx, res, sql, 2, params, err);
}

const struct fp_invariant fp_invariant_no_lost_events = {
	.name = "no_lost_events",
	.summary = "every acknowledged event has a decision",
	.check = check,
};
