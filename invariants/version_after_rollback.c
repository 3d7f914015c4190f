/*
 * version_after_rollback.c - after a rollback, the data path serves the last
 * known good version again (seed B.4 DR-01: "version headers confirm restored
 * LKG"; FM-MS-01 / FM-PR-02). Pure SQL over the promotion ledger and the
 * decision log, no run timeline needed:
 *
 *   R   = the newest rollback row written inside the run's decision window
 *         (first to last decided_at of the run), optionally of one actor;
 *   P   = the newest promote row before R: the promotion being undone;
 *   LKG = P.previous_version, the version P replaced. It is taken from P and
 *         never from R's own columns, so a rollback row that names the wrong
 *         version (rollback-noop writes the current version there) cannot
 *         vouch for itself;
 *
 * and every decision of the run decided later than R.at + grace (the data
 * path re-reads the active model at least once a second, contract §8) must
 * carry LKG (a "+fallback" suffix is stripped). R itself naming another
 * version than LKG is one more violation. Unknown when there is no rollback
 * in the window, nothing to roll back to, no decision after the grace, or
 * when P's version never scored a decision of the run (the drill did not
 * exercise a rollback at all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariants/corridor_common.h"
#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

/* $1 run id, $2 event class, $3 grace (an interval), $4 actor or ''. */
#define HEAD_SQL                                                             \
	"WITH run AS (SELECT min(decided_at) AS t0, max(decided_at) AS t1 "   \
	"FROM %s WHERE platform_run_id = $1 AND event_class = $2), "          \
	"r AS (SELECT l.promotion_id, l.version, l.at FROM %s l, run WHERE "  \
	"l.action = 'rollback' AND l.at BETWEEN run.t0 AND run.t1 AND "       \
	"($4 = '' OR l.actor = $4) ORDER BY l.promotion_id DESC LIMIT 1), "   \
	"p AS (SELECT l.promotion_id, l.version, l.previous_version, l.at "   \
	"FROM %s l, r WHERE l.action = 'promote' AND l.promotion_id < "       \
	"r.promotion_id ORDER BY l.promotion_id DESC LIMIT 1), "              \
	"d AS (SELECT x.decision_id, x.event_id, x.decided_at, "              \
	"split_part(x.model_version, '+', 1) AS v FROM %s x WHERE "           \
	"x.platform_run_id = $1 AND x.event_class = $2), "                    \
	"after AS (SELECT d.* FROM d, r WHERE d.decided_at > r.at + "         \
	"$3::interval) "

static const char *const allowed[] = {"promotion_ledger", "grace", "actor", NULL};

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	char pl[256], head[2048], sql[4096], grace[64];
	const char *actor = fp__with_get(with, "actor");
	const char *params[4];
	struct fp_rows *rows;
	long long grace_ms, n_after, wrong, served, ledger_wrong;
	char r_id[32], r_ver[128], r_at[64], p_id[32], p_ver[128], lkg[128];
	int rc;

	rc = fp__with_only(with, "version_after_rollback", allowed, err);
	if (rc)
		return rc;
	rc = fp__with_table(with, "promotion_ledger",
			       "platform.promotion_ledger", pl, sizeof pl, err);
	if (rc == FP_OK)
		rc = fp_corridor_duration_ms(with, "grace", 2000, &grace_ms,
					     err);
	if (rc)
		return rc;
	snprintf(grace, sizeof grace, "%lld milliseconds", grace_ms);
	params[0] = ctx->platform_run_id;
	params[1] = ctx->event_class;
	params[2] = grace;
	params[3] = actor ? actor : "";
	snprintf(head, sizeof head, HEAD_SQL, ctx->decision_log, pl, pl,
		 ctx->decision_log);
	snprintf(sql, sizeof sql,
		 "%s SELECT r.promotion_id, r.version, r.at, p.promotion_id, "
		 "p.version, p.previous_version, "
		 "(SELECT count(*) FROM after), "
		 "(SELECT count(*) FROM after WHERE after.v IS DISTINCT FROM "
		 "p.previous_version), "
		 "(SELECT count(*) FROM d WHERE d.v = p.version AND "
		 "d.decided_at BETWEEN p.at AND r.at) "
		 "FROM r LEFT JOIN p ON true",
		 head);
	rc = fp_pg_query(ctx->pg, sql, 4, params, &rows, err);
	if (rc)
		return rc;
	if (fp_rows_count(rows) == 0) {
		fp_rows_free(rows);
		fp_check_judge(res, 0, 0, "decisions off the last known good",
			       "rollback in the run's decision window");
		snprintf(res->detail, sizeof res->detail,
			 "no rollback row%s%s in %s between the run's first "
			 "and last decision",
			 actor ? " of actor " : "", actor ? actor : "", pl);
		return FP_OK;
	}
#define COL(i) (fp_rows_get(rows, 0, (i)) ? fp_rows_get(rows, 0, (i)) : "")
	snprintf(r_id, sizeof r_id, "%s", COL(0));
	snprintf(r_ver, sizeof r_ver, "%s", COL(1));
	snprintf(r_at, sizeof r_at, "%s", COL(2));
	snprintf(p_id, sizeof p_id, "%s", COL(3));
	snprintf(p_ver, sizeof p_ver, "%s", COL(4));
	snprintf(lkg, sizeof lkg, "%s", COL(5));
#undef COL
	n_after = strtoll(fp_rows_get(rows, 0, 6), NULL, 10);
	wrong = strtoll(fp_rows_get(rows, 0, 7), NULL, 10);
	served = strtoll(fp_rows_get(rows, 0, 8), NULL, 10);
	fp_rows_free(rows);

	if (!p_id[0] || !lkg[0]) {
		fp_check_judge(res, 0, 0, "decisions off the last known good",
			       "last known good version to restore");
		snprintf(res->detail, sizeof res->detail,
			 "rollback #%s at %s has no earlier promotion that "
			 "replaced a version: nothing to restore",
			 r_id, r_at);
		return FP_OK;
	}
	if (served == 0 || n_after == 0) {
		fp_check_judge(res, 0, 0, "decisions off the last known good",
			       "decisions to judge");
		snprintf(res->detail, sizeof res->detail,
			 "rollback #%s at %s undoes promotion #%s of %s, but %s "
			 "(the drill must serve the candidate, then decide "
			 "after the rollback)",
			 r_id, r_at, p_id, p_ver,
			 served == 0 ? "the candidate scored no decision of "
				       "the run before the rollback"
				     : "no decision of the run came after the "
				       "rollback and its grace");
		return FP_OK;
	}
	ledger_wrong = strcmp(r_ver, lkg) != 0;
	fp_check_judge(res, wrong + ledger_wrong, n_after + 1,
		       "decisions (or ledger rows) off the last known good",
		       "decisions after the rollback plus its ledger row");
	snprintf(res->expected, sizeof res->expected,
		 "every decision after rollback #%s (+%lld ms) scored by %s",
		 r_id, grace_ms, lkg);
	snprintf(res->detail, sizeof res->detail,
		 "promotion #%s made %s active over %s and scored %lld "
		 "decisions of the run; rollback #%s at %s names %s; of %lld "
		 "decisions after it, %lld are not scored by %s",
		 p_id, p_ver, lkg, served, r_id, r_at, r_ver, n_after, wrong,
		 lkg);
	if (ledger_wrong && res->n_examples < FP_CHECK_MAX_EXAMPLES)
		snprintf(res->examples[res->n_examples++],
			 sizeof res->examples[0],
			 "ledger: rollback #%s names %s as restored, the last "
			 "known good is %s",
			 r_id, r_ver, lkg);
	if (wrong == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "%s SELECT 'decision ' || after.decision_id || ' (' || "
		 "after.event_id || ') at ' || after.decided_at || ' scored by "
		 "' || coalesce(after.v, '(null)') FROM after, p WHERE after.v "
		 "IS DISTINCT FROM p.previous_version ORDER BY "
		 "after.decision_id LIMIT %d",
		 head, FP_CHECK_MAX_EXAMPLES);
	return fp_check_examples(ctx, res, sql, 4, params, err);
}

const struct fp_invariant fp_invariant_version_after_rollback = {
	.name = "version_after_rollback",
	.summary = "decisions after a rollback carry the last known good "
		   "version",
	.check = check,
};
