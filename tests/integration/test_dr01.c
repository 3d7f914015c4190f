/*
 * test_dr01.c - DR-01 (rollback) end to end on the real local stack: the
 * drill passes on the clean reference platform and fails on rollback-noop,
 * naming version_after_rollback with examples and missing its rollback and
 * recovery bounds.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drill_util.h"

static struct drill_run run_drill(const char *scenario)
{
	return run_drill_args(scenario, "");
}

static const char *bound_met(json_t *report, const char *name)
{
	json_t *arr = json_object_get(report, "bounds"), *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")),
			   name) == 0)
			return json_is_true(json_object_get(v, "met")) ? "met"
								      : "missed";
	cr_assert_fail("report has no bound %s", name);
	return NULL;
}

#define DR01 "scenarios/dr-01-rollback.yaml"

Test(dr01, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;

	platform_mode("none");
	r = run_drill(DR01);
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "version_after_rollback"), "pass");
	cr_expect_str_eq(status_of(r.report, "promotion_recorded"), "pass");
	cr_expect_str_eq(status_of(r.report, "provenance_complete"), "pass");
	cr_expect_str_eq(bound_met(r.report, "regression_detected"), "met");
	cr_expect_str_eq(bound_met(r.report, "rollback_time"), "met");
	cr_expect_str_eq(bound_met(r.report, "latency_recovered"), "met");
	json_decref(r.report);
}

/* The ledger gets its rollback row but the active model does not change:
 * decisions after the rollback still carry the candidate. */
Test(dr01, fails_on_rollback_noop, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("rollback-noop");
	r = run_drill(DR01);
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "fail");
	inv = invariant(r.report, "version_after_rollback");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 2);
	cr_expect_str_eq(bound_met(r.report, "rollback_time"), "missed");
	cr_expect_str_eq(bound_met(r.report, "latency_recovered"), "missed");
	/* the ledger does record both actions: the defect is their effect */
	cr_expect_str_eq(status_of(r.report, "promotion_recorded"), "pass");
	json_decref(r.report);
}
