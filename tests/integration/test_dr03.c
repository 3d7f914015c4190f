/*
 * test_dr03.c - DR-03 end to end on the real local stack: the drill passes on
 * the clean reference platform (the lag alert fires while paused, the lag
 * recovers after the resume, nothing lost, duplicated or skipped) and fails
 * on slow-drain by missing its lag recovery bound. The proof that the
 * recovery bound is not a bound every platform meets.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drill_util.h"

static struct drill_run run_dr03(void)
{
	return run_drill_args("scenarios/dr-03-lag-spike.yaml", "--no-upload");
}

static int bound_met(json_t *report, const char *name)
{
	return json_is_true(json_object_get(named(report, "bounds", name),
					    "met"));
}

static const char *const invariants[] = {
	"no_lost_events", "no_duplicate_decisions", "origin_offsets_reconcile",
	"decided_offsets_gapless", "committed_offsets_monotonic",
	"committed_records_decided_once"};

Test(dr03, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;

	platform_mode("none");
	r = run_dr03();
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	for (size_t i = 0; i < sizeof invariants / sizeof invariants[0]; i++)
		cr_expect_str_eq(status_of(r.report, invariants[i]), "pass",
				 "%s", invariants[i]);
	cr_expect(bound_met(r.report, "detection"), "the lag alert never fired");
	cr_expect(bound_met(r.report, "lag_recovery"));
	cr_expect(bound_met(r.report, "alert_cleared"));
	json_decref(r.report);
}

Test(dr03, fails_on_slow_drain, .timeout = 900, .fini = restore_clean)
{
	struct drill_run r;

	platform_mode("slow-drain");
	r = run_dr03();
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "fail");
	/* It fails for the stated reason: the backlog drains too slowly. The
	 * alert still fires, and once drained nothing was lost or skipped. */
	cr_expect_not(bound_met(r.report, "lag_recovery"),
		      "slow-drain met the lag recovery bound");
	cr_expect(bound_met(r.report, "detection"));
	for (size_t i = 0; i < sizeof invariants / sizeof invariants[0]; i++)
		cr_expect_str_eq(status_of(r.report, invariants[i]), "pass",
				 "%s", invariants[i]);
	json_decref(r.report);
}
