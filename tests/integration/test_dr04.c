/*
 * test_dr04.c - DR-04 end to end on the real local stack: with a mix of
 * valid, compatible and invalid events the drill passes on the clean
 * reference platform (the quarantine is exactly the invalid set, compatible
 * events are decided, nothing invalid is decided) and fails on
 * quarantine-drop, naming the missing (event, reason) pairs. The proof that
 * the quarantine check is not a check every platform passes.
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

static struct drill_run run_dr04(void)
{
	struct drill_run r = {0};
	char cmd[8192], line[4096], rpath[4200];
	json_error_t jerr;
	FILE *p;
	int st;

	snprintf(cmd, sizeof cmd,
		 "cd '%s' && '%s/harness/cli/fpdrill' run "
		 "scenarios/dr-04-schema-evolution.yaml --env envs/local.yaml "
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

static json_t *named(json_t *report, const char *list, const char *name)
{
	json_t *arr = json_object_get(report, list), *v;
	size_t i;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")),
			   name) == 0)
			return v;
	cr_assert_fail("report has no %s entry %s", list, name);
	return NULL;
}

static const char *status_of(json_t *report, const char *name)
{
	return json_string_value(
		json_object_get(named(report, "invariants", name), "status"));
}

static const char *const invariants[] = {
	"no_lost_events", "no_duplicate_decisions", "origin_offsets_reconcile",
	"quarantine_matches_invalid", "invalid_never_decided"};

static void restore_clean(void)
{
	platform_mode("none");
}

Test(dr04, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;
	json_t *q;

	platform_mode("none");
	r = run_dr04();
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	for (size_t i = 0; i < sizeof invariants / sizeof invariants[0]; i++)
		cr_expect_str_eq(status_of(r.report, invariants[i]), "pass",
				 "%s", invariants[i]);
	/* the mix really sent invalid events: a pass over nothing proves
	 * nothing (that would be unknown, but say it plainly) */
	q = named(r.report, "invariants", "quarantine_matches_invalid");
	cr_expect(strstr(json_string_value(json_object_get(q, "observed")),
			 " among 0 ") == NULL,
		  "%s", json_string_value(json_object_get(q, "observed")));
	json_decref(r.report);
}

Test(dr04, fails_on_quarantine_drop, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv, *ex;

	platform_mode("quarantine-drop");
	r = run_dr04();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "fail");
	inv = named(r.report, "invariants", "quarantine_matches_invalid");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	ex = json_object_get(inv, "examples");
	cr_assert_geq(json_array_size(ex), 1);
	cr_expect(strncmp(json_string_value(json_array_get(ex, 0)), "missing: ",
			  9) == 0,
		  "%s", json_string_value(json_array_get(ex, 0)));
	/* the decision side stayed clean: the defect is the quarantine write */
	cr_expect_str_eq(status_of(r.report, "invalid_never_decided"), "pass");
	cr_expect_str_eq(status_of(r.report, "no_lost_events"), "pass");
	json_decref(r.report);
}
