/*
 * test_dr07.c - DR-07 end to end on the real local stack: the drill passes
 * on the clean reference platform (the guard trips, the ingress throttles,
 * the platform comes to rest, receipts add up) and FAILS on the planted
 * defect guard-never-trips (the breach is receipted but nobody acts:
 * cost_guard_tripped and idle_safe). Either way the drill's teardown relaxes
 * the envelope and resets the guard, which the last assertion of each test
 * checks: the stack must admit events again afterwards.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drill_util.h"

static struct drill_run run_dr07(void)
{
	return run_drill_args("scenarios/dr-07-cost-guardrail.yaml", "--no-upload");
}

static void expect_stack_released(void)
{
	char *url = it_endpoint("FPD_CONTROL_URL"), cmd[4096];
	FILE *p;
	char out[512] = "";

	/* the guard is not tripped and the envelope no longer the drill's */
	snprintf(cmd, sizeof cmd, "curl -fsS -m 5 '%s/budget'", url);
	free(url);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(out, sizeof out, p))
		out[0] = '\0';
	pclose(p);
	cr_expect(strstr(out, "\"tripped\":false") != NULL, "%s", out);
	cr_expect(strstr(out, "\"window_s\":3600") != NULL, "%s", out);
}

Test(dr07, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;

	platform_mode("none");
	r = run_dr07();
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "cost_guard_tripped"), "pass");
	cr_expect_str_eq(status_of(r.report, "idle_safe"), "pass");
	cr_expect_str_eq(status_of(r.report, "no_lost_events"), "pass");
	cr_expect(json_is_true(json_object_get(
			  named(r.report, "bounds", "guard_trip"), "met")));
	cr_expect(json_is_true(json_object_get(
			  named(r.report, "bounds", "idle_lag"), "met")));
	json_decref(r.report);
	expect_stack_released();
}

Test(dr07, fails_on_guard_never_trips, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("guard-never-trips");
	r = run_dr07();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "fail");
	inv = named(r.report, "invariants", "cost_guard_tripped");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	inv = named(r.report, "invariants", "idle_safe");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	json_decref(r.report);
	expect_stack_released();
}
