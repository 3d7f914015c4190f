/*
 * no_duplicate_cases.c - at most one case per event: a case is the side
 * effect a replay or a retry must never repeat. Unknown when the run opened
 * no case at all (nothing to judge).
 */
#include "invariants/dup_common.h"

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	if (!ctx->cases)
		return fp_err_set(err, FP_ESPEC,
				  "no_duplicate_cases needs the 'cases' "
				  "observable bound in the env profile");
	return fp__check_at_most_one(ctx, ctx->cases, "case", res, err);
}

const struct fp_invariant fp_invariant_no_duplicate_cases = {
	.name = "no_duplicate_cases",
	.summary = "at most one case per event",
	.check = check,
};
