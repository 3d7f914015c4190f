/*
 * main.c - the fpdrill command line.
 *
 *   fpdrill validate FILE... [--env PROFILE]
 *   fpdrill run SCENARIO --env PROFILE [--set k=v]... [--out DIR] [--no-upload]
 *   fpdrill --version | --help | VERB --help
 *
 * Logs go to stderr as key=value lines; the result goes to stdout, and the
 * last two lines of `run` are the local bundle path and the S3 location, so
 * a CI job can pick them up with `tail -n 2`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "harness/run/fp_run.h"
#include "harness/spec/fp_spec.h"

#define FPDRILL_VERSION "0.1.0"

static const char usage_main[] =
	"usage: fpdrill <verb> [options]\n"
	"\n"
	"verbs:\n"
	"  validate FILE... [--env PROFILE]   check scenario specs and env profiles\n"
	"  run SCENARIO --env PROFILE         run one drill against a target\n"
	"\n"
	"options:\n"
	"  --version        print the version\n"
	"  --help           this text; `fpdrill VERB --help` for a verb\n"
	"\n"
	"exit codes: 0 pass, 1 fail, 2 usage/spec error, 3 unknown, 4 aborted,\n"
	"            5 target unreachable, 6 cleanup failed (faults may remain)\n";

static const char usage_validate[] =
	"usage: fpdrill validate FILE... [--env PROFILE]\n"
	"\n"
	"Validate scenario specs (fpdrill: scenario/v1) and env profiles\n"
	"(fpdrill: env/v1) without touching any target. With --env, scenarios\n"
	"are also checked against the profile's actions and observables.\n"
	"Errors are printed as file:line:col: message; exit 2 on any error.\n";

static const char usage_run[] =
	"usage: fpdrill run SCENARIO --env PROFILE [options]\n"
	"\n"
	"Run one drill: drive load, inject and revert faults, check invariants\n"
	"and bounds, write the report bundle and upload it.\n"
	"\n"
	"options:\n"
	"  --env PROFILE    env profile (required), e.g. envs/local.yaml\n"
	"  --set KEY=VALUE  override a scenario parameter (repeatable)\n"
	"  --out DIR        local bundle root (default: the profile's reports.out)\n"
	"  --no-upload      keep the bundle local only\n"
	"  --quiet          only warnings and errors on stderr\n"
	"  --verbose        debug logging\n"
	"\n"
	"The last two lines on stdout are `bundle: PATH` and `s3: URI`.\n";

static int is_env_profile(const char *path)
{
	char *text = NULL;
	int yes = 0;

	if (fp_read_file(path, 4 << 20, &text, NULL, NULL) == FP_OK)
		yes = strstr(text, "env/v1") != NULL &&
		      strstr(text, "scenario/v1") == NULL;
	free(text);
	return yes;
}

static int cmd_validate(int argc, char **argv)
{
	struct fp_spec_names names = {fp_run_has_injector, fp_run_has_invariant};
	const char *env_path = NULL;
	struct fp_env *env = NULL;
	int bad = 0, nfiles = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_validate, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--env") == 0) {
			if (i + 1 >= argc) {
				fputs(usage_validate, stderr);
				return FP_EXIT_USAGE;
			}
			env_path = argv[++i];
		}
	}
	if (env_path) {
		struct fp_err err = {0};

		if (fp_env_load(env_path, &env, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return FP_EXIT_USAGE;
		}
	}
	for (int i = 0; i < argc; i++) {
		struct fp_err err = {0};
		int rc;

		if (strcmp(argv[i], "--env") == 0) {
			i++;
			continue;
		}
		nfiles++;
		if (is_env_profile(argv[i])) {
			struct fp_env *e = NULL;

			rc = fp_env_load(argv[i], &e, &err);
			fp_env_free(e);
		} else {
			struct fp_scenario *sc = NULL;

			rc = fp_scenario_load(argv[i], env, NULL, 0, &names, &sc,
					      &err);
			fp_scenario_free(sc);
		}
		if (rc) {
			fprintf(stderr, "%s\n", err.msg);
			bad++;
		} else {
			printf("ok %s\n", argv[i]);
		}
	}
	fp_env_free(env);
	if (nfiles == 0) {
		fputs(usage_validate, stderr);
		return FP_EXIT_USAGE;
	}
	return bad ? FP_EXIT_USAGE : 0;
}

static int cmd_run(int argc, char **argv)
{
	struct fp_run_opts o = {0};
	struct fp_run_outcome out;
	struct fp_err err = {0};
	const char **sets = calloc((size_t)argc + 1, sizeof *sets);
	int code;

	if (!sets)
		return FP_EXIT_USAGE;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int has_val = i + 1 < argc;

		if (strcmp(a, "--help") == 0) {
			fputs(usage_run, stdout);
			free(sets);
			return 0;
		} else if (strcmp(a, "--env") == 0 && has_val) {
			o.env_path = argv[++i];
		} else if (strcmp(a, "--set") == 0 && has_val) {
			sets[o.nsets++] = argv[++i];
		} else if (strcmp(a, "--out") == 0 && has_val) {
			o.out_dir = argv[++i];
		} else if (strcmp(a, "--no-upload") == 0) {
			o.no_upload = 1;
		} else if (strcmp(a, "--quiet") == 0) {
			fp_log_set_level(FP_LOG_WARN);
		} else if (strcmp(a, "--verbose") == 0) {
			fp_log_set_level(FP_LOG_DEBUG);
		} else if (a[0] == '-' || o.scenario_path) {
			fprintf(stderr, "fpdrill run: unexpected argument '%s'\n\n%s",
				a, usage_run);
			free(sets);
			return FP_EXIT_USAGE;
		} else {
			o.scenario_path = a;
		}
	}
	if (!o.scenario_path || !o.env_path) {
		fprintf(stderr, "fpdrill run: a scenario and --env are required\n\n%s",
			usage_run);
		free(sets);
		return FP_EXIT_USAGE;
	}
	o.sets = sets;
	code = fp_run_drill(&o, &out, &err);
	free(sets);
	if (out.verdict[0]) {
		printf("verdict: %s (exit %d)%s%s\n", out.verdict, code,
		       err.msg[0] ? ": " : "", err.msg);
	} else {
		fprintf(stderr, "fpdrill: %s\n", err.msg);
		printf("verdict: none (exit %d)\n", code);
	}
	if (code == FP_EXIT_CLEANUP)
		fprintf(stderr,
			"\n*** fpdrill: A FAULT COULD NOT BE REVERTED AND MAY STILL "
			"BE IN PLACE. ***\n*** See faults.jsonl in the bundle. ***\n\n");
	printf("bundle: %s\n", out.bundle_dir[0] ? out.bundle_dir : "(none)");
	if (out.s3_uri[0])
		printf("s3: %s\n", out.s3_uri);
	else if (out.upload_error[0])
		printf("s3: not uploaded (%s); the bundle is kept locally\n",
		       out.upload_error);
	else
		printf("s3: not uploaded (upload disabled)\n");
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return FP_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("fpdrill %s\n", FPDRILL_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(argv[1], "validate") == 0)
		return cmd_validate(argc - 2, argv + 2);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	fprintf(stderr, "fpdrill: unknown verb '%s'\n\n%s", argv[1], usage_main);
	return FP_EXIT_USAGE;
}
