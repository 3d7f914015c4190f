/*
 * invalid_never_decided.c - no event that was sent invalid, or that the
 * platform quarantined, has a decision. Quarantined events are never
 * published (contract §7), so a decision of one means the platform both
 * rejected and admitted it, or decided a record it should have refused. The
 * population is the union of the ledger's invalid-kind events and the
 * quarantine's events of the run (with: table, e.g. ${obs.quarantine}), so
 * the check still judges when the quarantine itself lost rows (that loss is
 * quarantine_matches_invalid's verdict).
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define INVALID_SQL                                                         \
	"WITH inv AS (SELECT event_id FROM %s WHERE expect IN "              \
	"('missing_field','wrong_type','unsupported_version',"               \
	"'malformed_json','oversize') UNION SELECT event_id FROM %s WHERE "  \
	"platform_run_id = $1 AND event_id IS NOT NULL), "                    \
	"v AS (SELECT inv.event_id, (SELECT count(*) FROM %s d WHERE "       \
	"d.platform_run_id = $1 AND d.event_class = $2 AND "                 \
	"d.event_id = inv.event_id) AS n FROM inv) "

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	const char *table = fp_kv_get(with, "table");
	char qt[256], sql[4096], head[2048];
	struct fp_rows *rows;
	long long bad, judged;
	int rc;

	static const char *const allowed[] = {"table", NULL};

	/* a misspelt key must not leave the table unset without a word */
	rc = fp__with_only(with, "invalid_never_decided", allowed, err);
	if (rc)
		return rc;
	if (!table || !table[0])
		return fp_err_set(err, FP_EINVAL,
				  "invalid_never_decided needs with: {table: "
				  "<the quarantine table>}, e.g. "
				  "${obs.quarantine}");
	if (fp_pg_quote_ident(table, qt, sizeof qt))
		return fp_err_set(err, FP_EINVAL,
				  "quarantine table name '%s' is too long",
				  table);
	snprintf(head, sizeof head, INVALID_SQL, ctx->ledger, qt,
		 ctx->decision_log);
	snprintf(sql, sizeof sql,
		 "%s SELECT count(*) FILTER (WHERE n > 0), count(*) FROM v",
		 head);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	bad = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	fp_rows_free(rows);
	fp_check_judge(res, bad, judged, "invalid or quarantined events with a "
		       "decision", "invalid or quarantined events");
	if (bad == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "%s SELECT event_id || ' (' || n || ' decisions)' FROM v WHERE "
		 "n > 0 ORDER BY event_id LIMIT 32",
		 head);
	return fp_check_examples(ctx, res, sql, 2, params, err);
}

const struct fp_invariant fp_invariant_invalid_never_decided = {
	.name = "invalid_never_decided",
	.summary = "no invalid or quarantined event has a decision",
	.needs_ledger = 1,
	.check = check,
};
