/*
 * no_duplicate_decisions.c - at most one decision per dedupe tuple
 * (platform_run_id, event_class, event_id), whatever was retried or
 * replayed. A second decision is a double side effect (seed 000 FM-IG-01).
 */
#include "invariants/dup_common.h"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	return fp__check_at_most_one(ctx, ctx->decision_log, "decision", res,
				     err);
}

const struct fp_invariant fp_invariant_no_duplicate_decisions = {
	.name = "no_duplicate_decisions",
	.summary = "at most one decision per dedupe tuple",
	.check = check,
};
