/* registry.c - the invariant table and the helpers every invariant shares. */
#include <stdio.h>
#include <string.h>

#include "invariants/fp_invariant.h"

const struct fp_invariant *const fp_invariants[] = {
#define FP_INVARIANT(sym) &fp_invariant_##sym,
#include "invariants/invariants.def"
#undef FP_INVARIANT
};

const size_t fp_invariants_count =
	sizeof fp_invariants / sizeof fp_invariants[0];

const struct fp_invariant *fp_invariant_find(const char *name)
{
	for (size_t i = 0; i < fp_invariants_count; i++)
		if (strcmp(fp_invariants[i]->name, name) == 0)
			return fp_invariants[i];
	return NULL;
}

int fp_invariant_exists(const char *name)
{
	return fp_invariant_find(name) != NULL;
}

void fp_check_judge(struct fp_check_result *res, long long violations,
		    long long judged, const char *what,
		    const char *population)
{
	res->count = violations;
	if (violations > 0)
		res->status = FP_CHECK_FAIL;
	else if (judged <= 0)
		res->status = FP_CHECK_UNKNOWN;
	else
		res->status = FP_CHECK_PASS;
	snprintf(res->observed, sizeof res->observed, "%lld %s among %lld %s",
		 violations, what, judged, population);
	snprintf(res->expected, sizeof res->expected, "0 %s", what);
	if (res->status == FP_CHECK_UNKNOWN && !res->detail[0])
		snprintf(res->detail, sizeof res->detail,
			 "nothing to judge: no %s", population);
}

void fp_check_take_examples(struct fp_check_result *res,
			    const struct fp_rows *rows, size_t col)
{
	for (size_t i = 0; i < fp_rows_count(rows) &&
			   res->n_examples < FP_CHECK_MAX_EXAMPLES;
	     i++) {
		const char *v = fp_rows_get(rows, i, col);

		if (v)
			snprintf(res->examples[res->n_examples++],
				 sizeof res->examples[0], "%s", v);
	}
}

int fp_check_examples(const struct fp_check_ctx *ctx,
		      struct fp_check_result *res, const char *sql,
		      int nparams, const char *const *params,
		      struct fp_err *err)
{
	struct fp_rows *rows;
	int rc = fp_pg_query(ctx->pg, sql, nparams, params, &rows, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < fp_rows_count(rows) &&
			   res->n_examples < FP_CHECK_MAX_EXAMPLES;
	     i++) {
		const char *v = fp_rows_get(rows, i, 0);

		snprintf(res->examples[res->n_examples++],
			 sizeof res->examples[0], "%s", v ? v : "(null)");
	}
	fp_rows_free(rows);
	return FP_OK;
}
