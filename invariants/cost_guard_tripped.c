/*
 * cost_guard_tripped.c - a cost envelope breach is acted on and explained
 * (seed 000 DR-07, seed 004 §5.2.1): every cost receipt of the run's window
 * with outcome 'breached' is matched by a cost_guard posture event
 * (severity critical, action throttle) raised no later than the receipt was
 * written; a throttle never stands without a breached receipt explaining
 * it; a receipt's outcome agrees with its numbers (breached iff spend >
 * envelope); and, given the envelopes table (with: envelopes), every
 * receipt's spend is its unit costs times its counts.
 *
 * Scope: receipts and posture events carry no platform_run_id, so the run is
 * placed in time by its own decisions: receipts whose window overlaps
 * [first, last decided_at] of the run, posture events at or after the first
 * decision. Another run breaching the same platform's budget at the same
 * time would be counted too (documented in docs/invariants).
 *
 * Unknown when the run has no decision or nothing in the window breached
 * (no breached receipt and no throttle): the guard was never put to test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define SCOPE_SQL                                                           \
	"WITH w AS (SELECT min(decided_at) AS t0, max(decided_at) AS t1 FROM " \
	"%s WHERE platform_run_id = $1 AND event_class = $2), "               \
	"r AS (SELECT c.* FROM %s c, w WHERE c.window_end > w.t0 AND "        \
	"c.window_start <= w.t1), "                                            \
	"p AS (SELECT q.* FROM %s q, w WHERE q.kind = 'cost_guard' AND "      \
	"q.action = 'throttle' AND q.severity = 'critical' AND q.at >= w.t0), " \
	"unacted AS (SELECT * FROM r WHERE outcome = 'breached' AND NOT "     \
	"EXISTS (SELECT 1 FROM p WHERE p.at <= r.at + interval '1 second')), " \
	"wrong AS (SELECT * FROM r WHERE (outcome = 'breached') <> "          \
	"(spend_units > envelope_units)) "

/* spend = events * unit_cost_event + retrains * unit_cost_retrain */
#define UNEXPLAINED_SQL                                                     \
	", unexpl AS (SELECT r.* FROM r LEFT JOIN %s e USING (envelope_id) "  \
	"WHERE e.envelope_id IS NULL OR abs(r.spend_units - (r.events_decided" \
	" * e.unit_cost_event + r.retrains * e.unit_cost_retrain)) > 1e-6 * "  \
	"greatest(1, abs(r.spend_units))) "

static long long num(const struct fp_rows *rows, size_t col)
{
	const char *v = fp_rows_get(rows, 0, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	static const char *const keys[] = {"receipts", "posture", "envelopes",
					   NULL};
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	const char *envs = fp__with_get(with, "envelopes");
	char receipts[256], posture[256], envelopes[256] = "";
	char head[4096], sql[6144];
	struct fp_rows *rows;
	long long in_scope, breached, unacted, throttles, wrong, unexpl;
	long long violations;
	int no_run, rc;

	if ((rc = fp__with_only(with, "cost_guard_tripped", keys, err)) ||
	    (rc = fp__with_table(with, "receipts", "platform.cost_receipts",
				 receipts, sizeof receipts, err)) ||
	    (rc = fp__with_table(with, "posture", "platform.posture_events",
				 posture, sizeof posture, err)))
		return rc;
	if (envs && *envs &&
	    (rc = fp__with_table(with, "envelopes", envs, envelopes,
				 sizeof envelopes, err)))
		return rc;
	snprintf(head, sizeof head, SCOPE_SQL, ctx->decision_log, receipts,
		 posture);
	if (envelopes[0])
		snprintf(head + strlen(head), sizeof head - strlen(head),
			 UNEXPLAINED_SQL, envelopes);
	snprintf(sql, sizeof sql,
		 "%s SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM r "
		 "WHERE outcome = 'breached'), (SELECT count(*) FROM unacted), "
		 "(SELECT count(*) FROM p), (SELECT count(*) FROM wrong), %s, "
		 "(SELECT (t0 IS NULL)::int FROM w)",
		 head, envelopes[0] ? "(SELECT count(*) FROM unexpl)" : "0");
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	in_scope = num(rows, 0);
	breached = num(rows, 1);
	unacted = num(rows, 2);
	throttles = num(rows, 3);
	wrong = num(rows, 4);
	unexpl = num(rows, 5);
	no_run = (int)num(rows, 6);
	fp_rows_free(rows);

	violations = unacted + wrong + unexpl;
	if (throttles > 0 && breached == 0) {
		violations++;
		snprintf(res->examples[res->n_examples++],
			 sizeof res->examples[0],
			 "%lld throttle posture events but no breached receipt "
			 "in the window explains them",
			 throttles);
	}
	fp_check_judge(res, violations,
		       no_run || (breached == 0 && throttles == 0) ? 0
								   : in_scope,
		       "breaches without a throttle, or receipts that do not "
		       "add up",
		       "cost receipts in the run's window");
	snprintf(res->expected, sizeof res->expected,
		 "every breached receipt has a critical cost_guard throttle "
		 "by its time; receipts add up");
	snprintf(res->detail, sizeof res->detail,
		 "%lld receipts in the window (%lld breached): %lld breaches "
		 "not acted on, %lld outcomes contradicting spend vs envelope, "
		 "%s; %lld critical throttle posture events%s",
		 in_scope, breached, unacted, wrong,
		 envelopes[0] ? "unit costs checked below"
			      : "unit costs not checked (no envelopes "
				"table given)",
		 throttles,
		 no_run ? "; nothing to judge: the run has no decision"
		 : breached == 0 && throttles == 0
			 ? "; nothing to judge: the envelope was never "
			   "breached in the run's window"
			 : "");
	if (envelopes[0])
		snprintf(res->detail + strlen(res->detail),
			 sizeof res->detail - strlen(res->detail),
			 "; %lld receipts whose spend is not units x unit cost",
			 unexpl);
	if (unacted + wrong + unexpl == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "%s SELECT 'receipt ' || receipt_id || ' [' || to_char("
		 "window_start AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') || ', ' || "
		 "to_char(window_end AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') || "
		 "'): spend ' || spend_units || ' / envelope ' || envelope_units "
		 "|| ', ' || outcome || ': ' || why FROM (SELECT *, 'no throttle "
		 "by its time' AS why FROM unacted UNION ALL SELECT *, 'outcome "
		 "contradicts its numbers' FROM wrong%s) x ORDER BY receipt_id "
		 "LIMIT 32",
		 head,
		 envelopes[0] ? " UNION ALL SELECT *, 'spend is not units x unit "
				"cost' FROM unexpl"
			      : "");
	return fp_check_examples(ctx, res, sql, 2, params, err);
}

const struct fp_invariant fp_invariant_cost_guard_tripped = {
	.name = "cost_guard_tripped",
	.summary = "every cost envelope breach in the run's window is acted "
		   "on by a critical cost_guard throttle, and receipts add up",
	.check = check,
};
