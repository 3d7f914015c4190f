/*
 * drill_util.h - shared by the drill tests (test_drNN.c): run the fpdrill
 * binary on a scenario against the real local stack, read its report.json,
 * and switch the reference platform's planted defect. A drill test proves
 * two things with these: the drill passes on the clean platform, and it
 * fails, naming the invariant, on the defect it claims to catch.
 */
#ifndef FP_DRILL_UTIL_H
#define FP_DRILL_UTIL_H

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
	json_t *report;   /* caller json_decref()s */
};

static inline void sh(const char *cmd)
{
	int st = system(cmd);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "command failed: %s",
		  cmd);
}

/* Restart the platform with a planted defect ("none" for the clean one). */
static inline void platform_mode(const char *defect)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd,
		 "cd '%s' && envs/local/stack platform --defect %s >&2",
		 getenv("FPDRILL_SOURCE_DIR"), defect);
	sh(cmd);
}

static inline void restore_clean(void)
{
	platform_mode("none");
}

/*
 * @brief `fpdrill run SCENARIO --env envs/local.yaml EXTRA --out <build>/it-out`
 *        from the source dir; echoes its output to stderr and loads the
 *        bundle's report.json. Fails the test when there is no bundle.
 */
static inline struct drill_run run_drill_args(const char *scenario,
					      const char *extra)
{
	struct drill_run r = {0};
	char cmd[8192], line[4096], rpath[4200];
	json_error_t jerr;
	FILE *p;
	int st;

	snprintf(cmd, sizeof cmd,
		 "cd '%s' && '%s/harness/cli/fpdrill' run %s --env "
		 "envs/local.yaml %s --out '%s/it-out'",
		 getenv("FPDRILL_SOURCE_DIR"), getenv("FPDRILL_BINARY_DIR"),
		 scenario, extra ? extra : "", getenv("FPDRILL_BINARY_DIR"));
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

/* The entry of report[key] (invariants or bounds) with this name. */
static inline json_t *named(json_t *report, const char *key, const char *name)
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

static inline json_t *invariant(json_t *report, const char *name)
{
	return named(report, "invariants", name);
}

static inline const char *status_of(json_t *report, const char *name)
{
	return json_string_value(
		json_object_get(invariant(report, name), "status"));
}

#endif
