/*
 * idle_safe.c - after a cost breach the platform comes to rest (seed 000
 * DR-07 "idle-safe returns"): no decision of the run is taken later than
 * with: grace_s (default 5) seconds after the guard acted - the first
 * critical cost_guard throttle posture event - while the load kept arriving
 * and was refused (ledger outcome 'throttled', HTTP 429). When the guard
 * never acted, the moment of the breach (the first breached cost receipt's
 * write time) is the reference instead, so a guard that sees the breach and
 * does nothing fails here too instead of escaping as "nothing to judge".
 *
 * Scope as in cost_guard_tripped: by time, from the run's first decision.
 * Unknown when nothing breached in that window, or when no event was
 * throttled and no decision came late (then the load had simply stopped
 * and rest proves nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define TRIP_SQL                                                            \
	"WITH w AS (SELECT min(decided_at) AS t0 FROM %s WHERE "              \
	"platform_run_id = $1 AND event_class = $2), "                        \
	"trip AS (SELECT least((SELECT min(q.at) FROM %s q, w WHERE q.kind = " \
	"'cost_guard' AND q.action = 'throttle' AND q.severity = 'critical' " \
	"AND q.at >= w.t0), (SELECT min(c.at) FROM %s c, w WHERE c.outcome = " \
	"'breached' AND c.window_end > w.t0 AND c.at >= w.t0)) AS t, "        \
	"EXISTS (SELECT 1 FROM %s q, w WHERE q.kind = 'cost_guard' AND "      \
	"q.action = 'throttle' AND q.severity = 'critical' AND q.at >= w.t0) " \
	"AS acted), "                                                          \
	"late AS (SELECT d.*, extract(epoch FROM d.decided_at - trip.t) AS s " \
	"FROM %s d, trip WHERE d.platform_run_id = $1 AND d.event_class = $2 " \
	"AND d.decided_at > trip.t + $3::double precision * interval "        \
	"'1 second') "

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	static const char *const keys[] = {"grace_s", "receipts", "posture",
					   NULL};
	const char *params[3] = {ctx->platform_run_id, ctx->event_class, NULL};
	char receipts[256], posture[256], grace_txt[64], head[4096];
	char sql[6144];
	struct fp_rows *rows;
	long long late, throttled, decided;
	int have_trip, acted, rc;
	double grace;

	if ((rc = fp__with_only(with, "idle_safe", keys, err)) ||
	    (rc = fp__with_number(with, "grace_s", 5, &grace, err)) ||
	    (rc = fp__with_table(with, "receipts", "platform.cost_receipts",
				 receipts, sizeof receipts, err)) ||
	    (rc = fp__with_table(with, "posture", "platform.posture_events",
				 posture, sizeof posture, err)))
		return rc;
	snprintf(grace_txt, sizeof grace_txt, "%.17g", grace);
	params[2] = grace_txt;
	snprintf(head, sizeof head, TRIP_SQL, ctx->decision_log, posture,
		 receipts, posture, ctx->decision_log);
	snprintf(sql, sizeof sql,
		 "%s SELECT (SELECT (t IS NOT NULL)::int FROM trip), "
		 "(SELECT acted::int FROM trip), (SELECT count(*) FROM late), "
		 "(SELECT count(*) FROM %s WHERE outcome = 'throttled'), "
		 "(SELECT count(*) FROM %s WHERE platform_run_id = $1 AND "
		 "event_class = $2)",
		 head, ctx->ledger, ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 3, params, &rows, err);
	if (rc)
		return rc;
	have_trip = atoi(fp_rows_get(rows, 0, 0));
	acted = atoi(fp_rows_get(rows, 0, 1));
	late = strtoll(fp_rows_get(rows, 0, 2), NULL, 10);
	throttled = strtoll(fp_rows_get(rows, 0, 3), NULL, 10);
	decided = strtoll(fp_rows_get(rows, 0, 4), NULL, 10);
	fp_rows_free(rows);

	res->count = late;
	res->status = !have_trip		 ? FP_CHECK_UNKNOWN
		      : late > 0		 ? FP_CHECK_FAIL
		      : throttled == 0		 ? FP_CHECK_UNKNOWN
						 : FP_CHECK_PASS;
	snprintf(res->observed, sizeof res->observed,
		 "%lld of %lld decisions later than %s + %gs; %lld events "
		 "throttled",
		 late, decided,
		 !have_trip ? "(no breach)"
		 : acted    ? "the throttle"
			    : "the breach (the guard never throttled)",
		 grace, throttled);
	snprintf(res->expected, sizeof res->expected,
		 "0 decisions later than the throttle + %gs while events are "
		 "throttled (429)",
		 grace);
	if (!have_trip)
		snprintf(res->detail, sizeof res->detail,
			 "nothing to judge: no cost_guard throttle and no "
			 "breached receipt in the run's window");
	else if (late == 0 && throttled == 0)
		snprintf(res->detail, sizeof res->detail,
			 "nothing to judge: no event was throttled, so rest "
			 "cannot be told from the load having stopped");
	if (late == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "%s SELECT event_id || ' decided ' || round(s::numeric, 3) || "
		 "' s after the %s' FROM late ORDER BY decided_at, decision_id "
		 "LIMIT 32",
		 head, acted ? "throttle" : "breach");
	return fp_check_examples(ctx, res, sql, 3, params, err);
}

const struct fp_invariant fp_invariant_idle_safe = {
	.name = "idle_safe",
	.summary = "no decision later than grace_s after the cost guard "
		   "throttled, while arrivals are refused",
	.needs_ledger = 1,
	.check = check,
};
