/*
 * dup_common.h - private to invariants/: "at most one row per event" over a
 * platform table (decisions, cases), shared by the two duplicate checks.
 */
#ifndef FP_INVARIANTS_DUP_COMMON_H
#define FP_INVARIANTS_DUP_COMMON_H

#include "invariants/fp_invariant.h"

int fp__check_at_most_one(const struct fp_check_ctx *ctx, const char *table,
			  const char *noun, struct fp_check_result *res,
			  struct fp_err *err);

#endif
