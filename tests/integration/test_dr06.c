/*
 * test_dr06.c - DR-06 (audit) end to end on the real local stack: the drill
 * passes on the clean reference platform (the unlineaged candidate is
 * refused) and fails on lineage-missing, naming provenance_complete with the
 * decisions whose chain lacks its training run.
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

#define DR06 "scenarios/dr-06-audit.yaml"

/* The unlineaged candidate is refused fail-closed: every decision stays on
 * a fully traced version. */
Test(dr06, passes_on_clean_platform, .timeout = 600)
{
	struct drill_run r;

	platform_mode("none");
	r = run_drill(DR06);
	cr_expect_eq(r.exit_code, 0, "exit %d", r.exit_code);
	cr_expect_str_eq(json_string_value(json_object_get(r.report, "verdict")),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "provenance_complete"), "pass");
	json_decref(r.report);
}

/* The corridor skips its lineage gate: the candidate goes live and its
 * decisions have no training run. */
Test(dr06, fails_on_lineage_missing, .timeout = 600, .fini = restore_clean)
{
	struct drill_run r;
	json_t *inv;

	platform_mode("lineage-missing");
	r = run_drill(DR06);
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	inv = invariant(r.report, "provenance_complete");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	cr_expect_geq(json_array_size(json_object_get(inv, "examples")), 1);
	cr_expect(strstr(json_string_value(json_array_get(
				 json_object_get(inv, "examples"), 0)),
			 "no run ref") != NULL);
	json_decref(r.report);
}
