/*
 * fp_run.h - run one drill end to end: load and validate the scenario and
 * env profile, connect to the target, walk the phases on a monotonic clock
 * (load, actions, injections, waits, until-conditions), revert every fault
 * LIFO on every exit path, judge the invariants and bounds, write the bundle
 * and upload it.
 *
 * The outcome is a verdict plus the documented exit code (DESIGN.md):
 * 0 pass, 1 fail, 2 spec/usage, 3 unknown, 4 aborted, 5 unreachable,
 * 6 cleanup failed.
 */
#ifndef FP_RUN_H
#define FP_RUN_H

#include <stddef.h>
#include <stdio.h>

#include "harness/core/fp_error.h"

enum fp_exit {
	FP_EXIT_PASS = 0,
	FP_EXIT_FAIL = 1,
	FP_EXIT_USAGE = 2,
	FP_EXIT_UNKNOWN = 3,
	FP_EXIT_ABORTED = 4,
	FP_EXIT_UNREACHABLE = 5,
	FP_EXIT_CLEANUP = 6,
};

struct fp_run_opts {
	const char *scenario_path;
	const char *env_path;
	const char *const *sets;   /* "key=value" overrides, borrowed */
	size_t nsets;
	const char *out_dir;       /* overrides the profile's reports.out, may be NULL */
	int no_upload;
	int allow_production;      /* --allow-production: needed for class production */
	const char *release_id;    /* release this run gates (preflight), may be NULL */
};

struct fp_run_outcome {
	int exit_code;
	char verdict[16];          /* pass / fail / unknown / aborted, "" if none */
	char run_id[32];
	char bundle_dir[4096];     /* "" when no bundle was written */
	char s3_uri[2048];         /* "" when not uploaded */
	char upload_error[512];    /* why not, when an upload was attempted */
};

/* @brief Ask a running drill to stop (async-signal-safe). */
void fp_run_request_stop(void);

/*
 * @brief Run a drill. Errors that stop the drill from being judged map to
 *        exit codes (spec errors 2, unreachable target 5); err says why.
 * @returns the exit code (also in out->exit_code).
 */
int fp_run_drill(const struct fp_run_opts *o, struct fp_run_outcome *out,
		 struct fp_err *err);

/* A snapshot of a running drill, for a live status line. */
struct fp_run_status {
	int active;
	char drill[32];
	char phase[64];
	double elapsed_s;
	double achieved_rate;      /* events/s so far */
	long long sent;
	double lag;                /* latest decision_group_lag, -1 unknown */
	int faults_in_place;
};

void fp_run_status_get(struct fp_run_status *st);

/*
 * @brief `fpdrill cleanup`: revert whatever the fault journals under
 *        <out_root>/.journal say may still be in place (after a crash).
 * @param env_path profile whose actions undo the faults; NULL = the one each
 *        journal recorded.
 * @param force also clean journals of runs that still look alive.
 * @returns FP_EXIT_PASS when nothing is left in place, FP_EXIT_CLEANUP when
 *          a revert failed (err says which).
 */
int fp_cleanup(const char *out_root, const char *env_path, int force,
	       FILE *report, struct fp_err *err);

/*
 * @brief `fpdrill plan`: load, validate and guard a drill, then print its
 *        resolved timeline without touching the target.
 * @returns an exit code (0, or 2 with err set).
 */
int fp_run_plan(const struct fp_run_opts *o, FILE *out, struct fp_err *err);

/*
 * @brief Run every drill of a suite (a name under scenarios/suites/ or a
 *        path), one after another with the same options, and fold the exit
 *        codes: cleanup failed > spec error > unreachable > fail > aborted >
 *        unknown > pass. Stops after a drill that could not clean up.
 */
int fp_run_suite(const struct fp_run_opts *base, const char *suite,
		 FILE *out, struct fp_err *err);
/* @brief scenarios/suites/<name>.yaml, or the argument when it is a path. */
int fp_suite_path(const char *name_or_path, char *out, size_t outsz);

/* Names of every injector / invariant, for spec validation. */
int fp_run_has_injector(const char *name);
int fp_run_has_invariant(const char *name);

#endif
