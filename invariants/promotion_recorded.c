/*
 * promotion_recorded.c - the append-only promotion ledger records the
 * corridor actions a drill performed (seed T0.1 / FM-PR-01: every promotion
 * and rollback leaves an auditable row). with: actions (default
 * "promote,rollback") lists the actions expected in that order inside the
 * run's decision window (first to last decided_at of the run), optionally of
 * one actor; each must be found after the previous one, with a version, an
 * actor and a reason, and a promote row also with its approval and gate
 * evidence. A missing or incomplete row is a violation; unknown when the run
 * decided nothing (no window to look in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariants/corridor_common.h"
#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define MAX_ACTIONS 8

static const char *const allowed[] = {"promotion_ledger", "actions", "actor", NULL};

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	const char *list = fp__with_get(with, "actions");
	const char *actor = fp__with_get(with, "actor");
	char pl[256], sql[2048], buf[256], after[32] = "0", *save = NULL, *tok;
	const char *params[5];
	struct fp_rows *rows;
	long long violations = 0, expected = 0;
	int rc;

	rc = fp__with_only(with, "promotion_recorded", allowed, err);
	if (rc)
		return rc;
	rc = fp__with_table(with, "promotion_ledger",
			       "platform.promotion_ledger", pl, sizeof pl, err);
	if (rc)
		return rc;
	snprintf(buf, sizeof buf, "%s", list ? list : "promote,rollback");
	params[0] = ctx->platform_run_id;
	params[1] = ctx->event_class;
	params[3] = actor ? actor : "";
	/* The run's window; an empty run has none and nothing is judged. */
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM %s WHERE platform_run_id = $1 AND "
		 "event_class = $2",
		 ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	if (strtoll(fp_rows_get(rows, 0, 0), NULL, 10) == 0) {
		fp_rows_free(rows);
		fp_check_judge(res, 0, 0, "expected ledger rows missing",
			       "decisions of the run (no window)");
		return FP_OK;
	}
	fp_rows_free(rows);
	/* $3 action, $4 actor or '', $5 the promotion_id it must follow. The
	 * newest row of the action in the window after the previous one. */
	snprintf(sql, sizeof sql,
		 "WITH run AS (SELECT min(decided_at) AS t0, max(decided_at) "
		 "AS t1 FROM %s WHERE platform_run_id = $1 AND event_class = "
		 "$2) SELECT l.promotion_id, coalesce(l.version, ''), "
		 "coalesce(l.actor, '') <> '' AND coalesce(l.reason, '') <> '' "
		 "AND l.version IS NOT NULL, coalesce(l.approval, '') <> '' AND "
		 "l.evidence IS NOT NULL AND l.evidence <> '{}'::jsonb, l.at "
		 "FROM %s l, run WHERE l.action = $3 AND l.at BETWEEN run.t0 "
		 "AND run.t1 AND ($4 = '' OR l.actor = $4) AND l.promotion_id "
		 "> $5::bigint ORDER BY l.promotion_id LIMIT 1",
		 ctx->decision_log, pl);
	for (tok = strtok_r(buf, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		char ex[160];
		int bad = 0;

		if (++expected > MAX_ACTIONS)
			return fp_err_set(err, FP_EINVAL,
					  "with: actions lists more than %d "
					  "actions",
					  MAX_ACTIONS);
		params[2] = tok;
		params[4] = after;
		rc = fp_pg_query(ctx->pg, sql, 5, params, &rows, err);
		if (rc)
			return rc;
		if (fp_rows_count(rows) == 0) {
			bad = 1;
			snprintf(ex, sizeof ex,
				 "no '%s' row after ledger row #%s in the "
				 "run's window",
				 tok, after);
		} else {
			int complete = strcmp(fp_rows_get(rows, 0, 2), "t") == 0;
			int gated = strcmp(tok, "promote") != 0 ||
				    strcmp(fp_rows_get(rows, 0, 3), "t") == 0;

			snprintf(after, sizeof after, "%s",
				 fp_rows_get(rows, 0, 0));
			if (!complete || !gated) {
				bad = 1;
				snprintf(ex, sizeof ex,
					 "'%s' row #%s (%s) lacks %s", tok,
					 after, fp_rows_get(rows, 0, 1),
					 !complete ? "version, actor or reason"
						   : "approval or evidence");
			}
		}
		fp_rows_free(rows);
		if (bad) {
			violations++;
			if (res->n_examples < FP_CHECK_MAX_EXAMPLES)
				snprintf(res->examples[res->n_examples++],
					 sizeof res->examples[0], "%s", ex);
		}
	}
	if (expected == 0)
		return fp_err_set(err, FP_EINVAL,
				  "with: actions is empty (e.g. "
				  "\"promote,rollback\")");
	fp_check_judge(res, violations, expected,
		       "expected ledger actions missing or incomplete",
		       "expected ledger actions");
	snprintf(res->expected, sizeof res->expected,
		 "ledger rows '%s' in this order in the run's window",
		 list ? list : "promote,rollback");
	snprintf(res->detail, sizeof res->detail,
		 "looked in %s%s%s; last matching row #%s", pl,
		 actor ? " for actor " : "", actor ? actor : "", after);
	return FP_OK;
}

const struct fp_invariant fp_invariant_promotion_recorded = {
	.name = "promotion_recorded",
	.summary = "the promotion ledger records the drill's promote and "
		   "rollback, in order",
	.check = check,
};
