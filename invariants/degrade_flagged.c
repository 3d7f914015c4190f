/*
 * degrade_flagged.c - explicit degrade (seed 004 §7, contract §8): every
 * decision of the run scored with a fallback model (model_version ending in
 * "+fallback") is flagged degraded with a reason, no decision is flagged
 * degraded without the fallback, and the posture log records the degrade
 * (a 'degrade' event 'enter' in the run's window, and an 'exit' when the run
 * ended non-degraded). A silent fallback is exactly what a dependency outage
 * drill exists to expose: decisions that look normal but were taken blind.
 *
 * Unknown when no decision taken while the fault was in place (the phases in
 * with: phases) used the fallback or was flagged: the fault never took effect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define FALLBACK "model_version LIKE '%%+fallback'"
#define UNFLAGGED                                                           \
	"(" FALLBACK " AND (NOT degraded OR coalesce(degrade_reason,'') = ''))"
#define FLAG_ONLY "(degraded AND NOT " FALLBACK ")"
/* $3: comma-separated phase ids of the fault window, '' = every phase */
#define IN_FAULT "($3 = '' OR phase_id = ANY (string_to_array($3, ',')))"

static long long num(const struct fp_rows *rows, size_t col)
{
	const char *v = fp_rows_get(rows, 0, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

static void add_example(struct fp_check_result *res, const char *text)
{
	if (res->n_examples < FP_CHECK_MAX_EXAMPLES)
		snprintf(res->examples[res->n_examples++],
			 sizeof res->examples[0], "%s", text);
}

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	static const char *const keys[] = {"phases", "posture", NULL};
	const char *phases = fp__with_get(with, "phases");
	const char *params[3];
	char posture[256], sql[4096];
	struct fp_rows *rows;
	long long unflagged, flag_only, population, in_fault, enters, exits;
	long long violations;
	int last_degraded, rc;

	if ((rc = fp__with_only(with, "degrade_flagged", keys, err)) ||
	    (rc = fp__with_table(with, "posture", "platform.posture_events",
				 posture, sizeof posture, err)))
		return rc;
	params[0] = ctx->platform_run_id;
	params[1] = ctx->event_class;
	params[2] = phases ? phases : "";

	/* One pass over the run's decisions; the posture events are counted
	 * in the run's window (the table has no run id: the degrade of this
	 * platform in the time this run's decisions were taken). A posture
	 * row rides in the transaction of the first decision in the new
	 * state, so it lies within a second of that decision. */
	snprintf(sql, sizeof sql,
		 "WITH d AS (SELECT * FROM %s WHERE platform_run_id = $1 AND "
		 "event_class = $2), w AS (SELECT min(decided_at) - interval "
		 "'1 second' AS t0, max(decided_at) + interval '1 second' AS t1 "
		 "FROM d), last AS (SELECT degraded FROM d ORDER BY decided_at "
		 "DESC, decision_id DESC LIMIT 1) SELECT "
		 "(SELECT count(*) FROM d WHERE " UNFLAGGED "), "
		 "(SELECT count(*) FROM d WHERE " FLAG_ONLY "), "
		 "(SELECT count(*) FROM d WHERE " FALLBACK " OR degraded), "
		 "(SELECT count(*) FROM d WHERE (" FALLBACK " OR degraded) AND "
		 IN_FAULT "), "
		 "(SELECT count(*) FROM %s p, w WHERE p.kind = 'degrade' AND "
		 "p.action = 'enter' AND p.at BETWEEN w.t0 AND w.t1), "
		 "(SELECT count(*) FROM %s p, w WHERE p.kind = 'degrade' AND "
		 "p.action = 'exit' AND p.at BETWEEN w.t0 AND w.t1), "
		 "coalesce((SELECT degraded::int FROM last), 0)",
		 ctx->decision_log, posture, posture);
	rc = fp_pg_query(ctx->pg, sql, 3, params, &rows, err);
	if (rc)
		return rc;
	unflagged = num(rows, 0);
	flag_only = num(rows, 1);
	population = num(rows, 2);
	in_fault = num(rows, 3);
	enters = num(rows, 4);
	exits = num(rows, 5);
	last_degraded = (int)num(rows, 6);
	fp_rows_free(rows);

	violations = unflagged + flag_only;
	/* The posture log must agree with the decision log: a degrade that
	 * was flagged on decisions but never entered, or left without an
	 * exit although the run ended on normal decisions. */
	if (population - unflagged > 0 && enters == 0) {
		violations++;
		add_example(res, "posture: flagged degraded decisions but no "
				 "degrade 'enter' event in the run's window");
	}
	if (population - unflagged > 0 && !last_degraded && exits == 0) {
		violations++;
		add_example(res, "posture: the run ended non-degraded but no "
				 "degrade 'exit' event in the run's window");
	}
	fp_check_judge(res, violations, in_fault,
		       "fallback decisions not flagged degraded (or flags "
		       "without fallback, or posture gaps)",
		       "fallback or degraded decisions in the fault window");
	snprintf(res->expected, sizeof res->expected,
		 "every +fallback decision degraded=true with a reason; "
		 "degrade posture enter (and exit) in the window");
	snprintf(res->detail, sizeof res->detail,
		 "%lld unflagged fallback, %lld degraded without fallback; "
		 "%lld fallback/degraded decisions in the run (%lld in phases "
		 "%s); posture degrade events: %lld enter, %lld exit",
		 unflagged, flag_only, population, in_fault,
		 phases && *phases ? phases : "(all)", enters, exits);
	if (res->status == FP_CHECK_UNKNOWN)
		snprintf(res->detail + strlen(res->detail),
			 sizeof res->detail - strlen(res->detail),
			 "; no decision in the fault window used the fallback "
			 "or was flagged: the fault never took effect");
	if (unflagged + flag_only == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "SELECT event_id || ': ' || model_version || ' degraded=' || "
		 "degraded::text || ' reason=' || coalesce(degrade_reason, "
		 "'null') FROM %s WHERE platform_run_id = $1 AND event_class = "
		 "$2 AND (" UNFLAGGED " OR " FLAG_ONLY ") ORDER BY decided_at, "
		 "decision_id LIMIT 32",
		 ctx->decision_log);
	return fp_check_examples(ctx, res, sql, 2, params, err);
}

const struct fp_invariant fp_invariant_degrade_flagged = {
	.name = "degrade_flagged",
	.summary = "every fallback decision is flagged degraded with a reason, "
		   "and the degrade is in the posture log",
	.check = check,
};
