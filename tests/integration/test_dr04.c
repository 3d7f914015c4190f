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

#include "drill_util.h"

static struct drill_run run_dr04(void)
{
	return run_drill_args("scenarios/dr-04-schema-evolution.yaml", "--no-upload");
}

static const char *const invariants[] = {
	"no_lost_events", "no_duplicate_decisions", "origin_offsets_reconcile",
	"quarantine_matches_invalid", "invalid_never_decided"};

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
