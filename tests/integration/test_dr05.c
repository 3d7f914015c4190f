/*
 * test_dr05.c - DR-05 end to end on the real local stack: the drill passes
 * on the clean reference platform and FAILS, naming the invariant and giving
 * example ids, on each planted defect it claims to catch: degrade-unflagged
 * (fallback decisions written as normal ones: degrade_flagged) and
 * commit-before-write (offsets committed before the decision-log write, the
 * decision dropped while PostgreSQL is away: no_lost_events and
 * committed_records_decided_once, against the group's committed offsets in
 * Kafka).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drill_util.h"

static struct drill_run run_dr05(void)
{
	return run_drill_args("scenarios/dr-05-dependency-outage.yaml", "--no-upload");
}

Test(dr05, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;
	const char *names[] = {"degrade_flagged", "degraded_decision_latency",
			       "no_lost_events", "no_duplicate_decisions",
			       "origin_offsets_reconcile",
			       "decided_offsets_gapless",
			       "committed_offsets_monotonic",
			       "committed_records_decided_once"};

	platform_mode("none");
	r = run_dr05();
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		cr_expect_str_eq(status_of(r.report, names[i]), "pass", "%s",
				 names[i]);
	cr_expect(json_is_true(json_object_get(
			  named(r.report, "bounds", "degrade_recovery"), "met")));
	json_decref(r.report);
}

Test(dr05, fails_on_degrade_unflagged, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("degrade-unflagged");
	r = run_dr05();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "fail");
	inv = named(r.report, "invariants", "degrade_flagged");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	/* the decision log is otherwise whole: the defect is the flag */
	cr_expect_str_eq(status_of(r.report, "no_lost_events"), "pass");
	json_decref(r.report);
}

Test(dr05, fails_on_commit_before_write, .timeout = 600,
     .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("commit-before-write");
	r = run_dr05();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	inv = named(r.report, "invariants", "no_lost_events");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	/* the offsets check names the same records as committed by the group
	 * in Kafka without a decision */
	inv = named(r.report, "invariants", "committed_records_decided_once");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	cr_expect_eq(json_integer_value(json_object_get(inv, "count")),
		     json_integer_value(json_object_get(
			     named(r.report, "invariants", "no_lost_events"),
			     "count")));
	/* ... and nothing was decided twice, nor did the commits go back:
	 * the loss is the commit order */
	cr_expect_str_eq(status_of(r.report, "no_duplicate_decisions"), "pass");
	cr_expect_str_eq(status_of(r.report, "committed_offsets_monotonic"),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "degrade_flagged"), "pass");
	json_decref(r.report);
}
