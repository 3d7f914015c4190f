/*
 * degraded_decision_latency.c - the degraded SLO: the p99 of
 * decision_latency_ms (the decider's own time from taking the record to the
 * decision, contract §8) over the run's degraded or fallback decisions stays
 * within with: max_p99_ms. Degrade must keep the decision path fast: a
 * fallback that waits out every dead dependency is not a safe decision path.
 * The load's latency is end-to-end ingress latency and says nothing about
 * this, hence a check over the decision log itself.
 *
 * Unknown when the run has no degraded or fallback decision.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define DEGRADED "(degraded OR model_version LIKE '%%+fallback')"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	static const char *const keys[] = {"max_p99_ms", NULL};
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[2048], lim[64];
	struct fp_rows *rows;
	double max_p99, p99, p50, mx;
	long long n, over;
	int rc;

	if ((rc = fp__with_only(with, "degraded_decision_latency", keys, err)) ||
	    (rc = fp__with_number(with, "max_p99_ms", -1, &max_p99, err)))
		return rc;
	snprintf(lim, sizeof lim, "%.17g", max_p99);
	snprintf(sql, sizeof sql,
		 "SELECT count(*), coalesce(percentile_cont(0.99) WITHIN GROUP "
		 "(ORDER BY decision_latency_ms), 0), coalesce(percentile_cont"
		 "(0.5) WITHIN GROUP (ORDER BY decision_latency_ms), 0), "
		 "coalesce(max(decision_latency_ms), 0), count(*) FILTER (WHERE "
		 "decision_latency_ms > %s) FROM %s WHERE platform_run_id = $1 "
		 "AND event_class = $2 AND " DEGRADED,
		 lim, ctx->decision_log);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	n = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	p99 = strtod(fp_rows_get(rows, 0, 1), NULL);
	p50 = strtod(fp_rows_get(rows, 0, 2), NULL);
	mx = strtod(fp_rows_get(rows, 0, 3), NULL);
	over = strtoll(fp_rows_get(rows, 0, 4), NULL, 10);
	fp_rows_free(rows);

	res->count = p99 > max_p99 ? over : 0;
	res->status = n == 0 ? FP_CHECK_UNKNOWN
		      : p99 > max_p99 ? FP_CHECK_FAIL
				      : FP_CHECK_PASS;
	snprintf(res->observed, sizeof res->observed,
		 "p99 %.1f ms (p50 %.1f, max %.1f) over %lld degraded "
		 "decisions; %lld above %g ms",
		 p99, p50, mx, n, over, max_p99);
	snprintf(res->expected, sizeof res->expected,
		 "p99 of degraded decision latency <= %g ms", max_p99);
	if (n == 0)
		snprintf(res->detail, sizeof res->detail,
			 "nothing to judge: no degraded or fallback decision");
	if (res->status != FP_CHECK_FAIL)
		return FP_OK;
	/* the slowest degraded decisions, the ones that broke the SLO */
	snprintf(sql, sizeof sql,
		 "SELECT event_id || ': ' || round(decision_latency_ms::numeric,"
		 " 1) || ' ms (' || coalesce(degrade_reason, 'no reason') || ')'"
		 " FROM %s WHERE platform_run_id = $1 AND event_class = $2 AND "
		 DEGRADED " AND decision_latency_ms > %s ORDER BY "
		 "decision_latency_ms DESC, event_id LIMIT 32",
		 ctx->decision_log, lim);
	return fp_check_examples(ctx, res, sql, 2, params, err);
}

const struct fp_invariant fp_invariant_degraded_decision_latency = {
	.name = "degraded_decision_latency",
	.summary = "p99 decision latency of degraded decisions is within "
		   "max_p99_ms",
	.check = check,
};
