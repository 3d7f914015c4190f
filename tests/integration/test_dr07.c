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

#include "it_util.h"

struct drill_run {
	int exit_code;
	char bundle[4096];
	json_t *report;
};

static void sh(const char *cmd)
{
	int st = system(cmd);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "command failed: %s",
		  cmd);
}

static void platform_mode(const char *defect)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd,
		 "cd '%s' && envs/local/stack platform --defect %s >&2",
		 getenv("FPDRILL_SOURCE_DIR"), defect);
	sh(cmd);
}

static struct drill_run run_dr07(void)
{
	struct drill_run r = {0};
	char cmd[8192], line[4096], rpath[4200];
	json_error_t jerr;
	FILE *p;
	int st;

	snprintf(cmd, sizeof cmd,
		 "cd '%s' && '%s/harness/cli/fpdrill' run "
		 "scenarios/dr-07-cost-guardrail.yaml --env envs/local.yaml "
		 "--no-upload --out '%s/it-out'",
		 getenv("FPDRILL_SOURCE_DIR"), getenv("FPDRILL_BINARY_DIR"),
		 getenv("FPDRILL_BINARY_DIR"));
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof line, p)) {
		fputs(line, stderr);
		if (strncmp(line, "bundle: ", 8) == 0) {
			snprintf(r.bundle, sizeof r.bundle, "%s", line + 8);
			r.bundle[strcspn(r.bundle, "\n")] = '\0';
		}
	}
	st = pclose(p);
	cr_assert(WIFEXITED(st), "fpdrill did not exit normally");
	r.exit_code = WEXITSTATUS(st);
	cr_assert(r.bundle[0] && strcmp(r.bundle, "(none)") != 0,
		  "no bundle (exit %d)", r.exit_code);
	snprintf(rpath, sizeof rpath, "%s/report.json", r.bundle);
	r.report = json_load_file(rpath, 0, &jerr);
	cr_assert_not_null(r.report, "%s: %s", rpath, jerr.text);
	return r;
}

static json_t *named(json_t *report, const char *key, const char *name)
{
	json_t *arr = json_object_get(report, key), *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")),
			   name) == 0)
			return v;
	cr_assert_fail("report has no %s entry %s", key, name);
	return NULL;
}

static const char *status_of(json_t *report, const char *name)
{
	return json_string_value(
		json_object_get(named(report, "invariants", name), "status"));
}

static void restore_clean(void)
{
	platform_mode("none");
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
