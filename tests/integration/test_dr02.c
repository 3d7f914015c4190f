/*
 * test_dr02.c - DR-02 end to end on the real local stack: the drill passes
 * on the clean reference platform and fails, naming the invariant and giving
 * example ids, on each planted defect it claims to catch. This is the proof
 * that the drill is not a drill that always passes. The clean run also shows
 * that the replay's rewind of the committed offsets is recorded
 * (offset_resets.tsv) and accepted by committed_offsets_monotonic.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drill_util.h"

static long long count_lines(const char *bundle, const char *file)
{
	char path[4300], line[1024];
	long long n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", bundle, file);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s is missing", path);
	while (fgets(line, sizeof line, f))
		n++;
	fclose(f);
	return n;
}

static struct drill_run run_dr02(void)
{
	return run_drill_args("scenarios/dr-02-replay-integrity.yaml", "--set load_duration=8s --set rate=80");
}

Test(dr02, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;

	platform_mode("none");
	r = run_dr02();
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "no_lost_events"), "pass");
	cr_expect_str_eq(status_of(r.report, "no_duplicate_decisions"), "pass");
	cr_expect_str_eq(status_of(r.report, "no_duplicate_cases"), "pass");
	cr_expect_str_eq(status_of(r.report, "origin_offsets_reconcile"),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "committed_records_decided_once"),
			 "pass");
	/* The replay moved every partition's committed offset back, and the
	 * check saw those moves and accepted them as the run's own. */
	{
		json_t *inv = invariant(r.report, "committed_offsets_monotonic");
		const char *detail =
			json_string_value(json_object_get(inv, "detail"));
		long long parts = 0, replays = 0, resets = 0;

		cr_expect_str_eq(json_string_value(json_object_get(inv,
								   "status")),
				 "pass");
		cr_assert_not_null(detail);
		cr_assert_eq(sscanf(detail,
				    "%lld partitions; %lld decreases across a "
				    "replay reset (allowed) of %lld",
				    &parts, &replays, &resets),
			     3, "%s", detail);
		cr_expect_eq(resets, parts, "%s", detail);
		/* a partition the consumer re-read within one sample period
		 * shows no decrease at all; the group rejoins slower than
		 * that, so at least one does */
		cr_expect(replays >= 1 && replays <= parts, "%s", detail);
		cr_expect_eq(count_lines(r.bundle, "offset_resets.tsv"),
			     1 + resets);
		cr_expect_geq(count_lines(r.bundle, "offsets.tsv"),
			      1 + 2 * parts);
	}
	/* The bundle is signed with the profile's key and verifies. */
	{
		char cmd[8192];

		snprintf(cmd, sizeof cmd,
			 "cd '%s' && '%s/harness/cli/fpdrill' verify '%s' --env "
			 "envs/local.yaml >&2",
			 getenv("FPDRILL_SOURCE_DIR"),
			 getenv("FPDRILL_BINARY_DIR"), r.bundle);
		sh(cmd);
	}
	json_decref(r.report);
}

Test(dr02, fails_on_dedupe_off, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("dedupe-off");
	r = run_dr02();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "fail");
	inv = invariant(r.report, "no_duplicate_decisions");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	/* the replayed records are below the committed offsets with two
	 * decisions each; the rewind itself was the run's own */
	inv = invariant(r.report, "committed_records_decided_once");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	cr_expect_str_eq(status_of(r.report, "committed_offsets_monotonic"),
			 "pass");
	json_decref(r.report);
}

Test(dr02, fails_on_case_dup, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("case-dup");
	r = run_dr02();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	inv = invariant(r.report, "no_duplicate_cases");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	/* the decision log itself stayed clean: the defect is the case guard */
	cr_expect_str_eq(status_of(r.report, "no_duplicate_decisions"), "pass");
	json_decref(r.report);
}
