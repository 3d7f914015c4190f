/*
 * quarantine_matches_invalid.c - the quarantine holds exactly the invalid
 * events the harness sent, each with the reason of its kind. The set of
 * (event_id, reason) rows of the run in the quarantine table (with: table,
 * e.g. ${obs.quarantine}) must equal the set of (event_id, expect) of the
 * ledgered attempts of an invalid kind that got a definite answer. Sets, not
 * counts: a dropped row hidden by an extra one, or a right count with wrong
 * reasons, still fails. Invalid attempts whose fate is unknown (timeout,
 * 5xx) may be quarantined but need not be; throttled (429) and never-sent
 * attempts need not be either, since the rate limit answers before
 * validation.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

/* The ledger's invalid kinds; their names are the contract's §7 reasons. */
#define INVALID_KINDS                                                       \
	"('missing_field','wrong_type','unsupported_version',"               \
	"'malformed_json','oversize')"

#define SETS_SQL                                                            \
	"WITH q AS (SELECT DISTINCT event_id, reason FROM %s WHERE "         \
	"platform_run_id = $1), "                                            \
	"s AS (SELECT event_id, expect, bool_or(outcome NOT IN "              \
	"('throttled','dropped','info')) AS definite FROM %s WHERE expect IN " \
	INVALID_KINDS " GROUP BY 1,2), "                                     \
	"want AS (SELECT event_id, expect AS reason FROM s WHERE definite), " \
	"allowed AS (SELECT event_id, expect AS reason FROM s), "            \
	"missing AS (SELECT * FROM want EXCEPT SELECT * FROM q), "           \
	"unexpected AS (SELECT * FROM q EXCEPT SELECT * FROM allowed) "

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *params[1] = {ctx->platform_run_id};
	const char *table = fp_kv_get(with, "table");
	char qt[256], sql[4096], head[2048];
	struct fp_rows *rows;
	long long missing, unexpected, want, quarantined, judged;
	int rc;

	static const char *const allowed[] = {"table", NULL};

	/* a misspelt key must not leave the table unset without a word */
	rc = fp__with_only(with, "quarantine_matches_invalid", allowed, err);
	if (rc)
		return rc;
	if (!table || !table[0])
		return fp_err_set(err, FP_EINVAL,
				  "quarantine_matches_invalid needs with: "
				  "{table: <the quarantine table>}, e.g. "
				  "${obs.quarantine}");
	if (fp_pg_quote_ident(table, qt, sizeof qt))
		return fp_err_set(err, FP_EINVAL,
				  "quarantine table name '%s' is too long",
				  table);
	snprintf(head, sizeof head, SETS_SQL, qt, ctx->ledger);
	snprintf(sql, sizeof sql,
		 "%s SELECT (SELECT count(*) FROM missing), (SELECT count(*) "
		 "FROM unexpected), (SELECT count(*) FROM want), (SELECT "
		 "count(*) FROM q), (SELECT count(*) FROM (SELECT * FROM want "
		 "UNION SELECT * FROM q) u)",
		 head);
	rc = fp_pg_query(ctx->pg, sql, 1, params, &rows, err);
	if (rc)
		return rc;
	missing = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	unexpected = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	want = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	quarantined = strtoll(fp_rows_get(rows, 0, 3), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 4), NULL, 10);
	fp_rows_free(rows);
	fp_check_judge(res, missing + unexpected, judged,
		       "(event, reason) pairs in only one of the sets",
		       "invalid or quarantined events");
	snprintf(res->detail, sizeof res->detail,
		 "%lld invalid events answered (expected set), %lld quarantined "
		 "(event, reason) pairs; %lld missing from the quarantine, "
		 "%lld unexpected in it",
		 want, quarantined, missing, unexpected);
	if (missing + unexpected == 0)
		return FP_OK;
	/* Half the examples for each side, so one kind of error never hides
	 * the other. */
	snprintf(sql, sizeof sql,
		 "%s SELECT 'missing: ' || event_id || ' (' || reason || ')' "
		 "FROM missing ORDER BY event_id LIMIT %d",
		 head, FP_CHECK_MAX_EXAMPLES / 2);
	rc = fp_check_examples(ctx, res, sql, 1, params, err);
	if (rc)
		return rc;
	snprintf(sql, sizeof sql,
		 "%s SELECT 'unexpected: ' || coalesce(event_id, '(no event_id)')"
		 " || ' (' || coalesce(reason, '(no reason)') || ')' FROM "
		 "unexpected ORDER BY event_id LIMIT %d",
		 head, FP_CHECK_MAX_EXAMPLES / 2);
	return fp_check_examples(ctx, res, sql, 1, params, err);
}

const struct fp_invariant fp_invariant_quarantine_matches_invalid = {
	.name = "quarantine_matches_invalid",
	.summary = "the quarantined (event, reason) set equals the invalid "
		   "events sent",
	.needs_ledger = 1,
	.check = check,
};
