/*
 * main.c - the fpdrill command line.
 *
 *   fpdrill validate FILE... [--env PROFILE]
 *   fpdrill plan SCENARIO --env PROFILE [--set k=v]...
 *   fpdrill run SCENARIO --env PROFILE [--set k=v]... [--out DIR] [--no-upload]
 *   fpdrill cleanup [--env PROFILE] [--out DIR] [--force]
 *   fpdrill list [--dir DIR]
 *   fpdrill --version | --help | VERB --help
 *
 * Logs go to stderr as key=value lines (on a terminal, under a live status
 * line); the result goes to stdout, and the last two lines of `run` are the
 * local bundle path and the S3 location, so a CI job can pick them up with
 * `tail -n 2` (or use --json).
 */
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "harness/core/fp_secret.h"
#include "harness/run/fp_run.h"
#include "harness/spec/fp_spec.h"
#include "reports/fp_report.h"

#define FPDRILL_VERSION "0.1.0"

static const char usage_main[] =
	"usage: fpdrill <verb> [options]\n"
	"\n"
	"verbs:\n"
	"  validate FILE... [--env PROFILE]   check scenario specs and env profiles\n"
	"  plan SCENARIO --env PROFILE        print the resolved timeline, touch nothing\n"
	"  run SCENARIO --env PROFILE         run one drill against a target\n"
	"  run --suite NAME --env PROFILE     run a suite of drills (scenarios/suites)\n"
	"  preflight --env PROFILE --release ID  release gate: the per-release suite\n"
	"  upload --pending [--env PROFILE]   upload bundles whose upload failed\n"
	"  cleanup [--env PROFILE]            revert faults a crashed run left in place\n"
	"  list [--dir DIR]                   list the drills and suites\n"
	"  verify BUNDLE [--env P | --key REF] check a bundle's manifest and signature\n"
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
	"       fpdrill run --suite NAME --env PROFILE [options]\n"
	"\n"
	"Run one drill: drive load, inject and revert faults, check invariants\n"
	"and bounds, write the report bundle and upload it.\n"
	"\n"
	"options:\n"
	"  --env PROFILE    env profile (required), e.g. envs/local.yaml\n"
	"  --suite NAME     run every drill of scenarios/suites/NAME.yaml (or a path)\n"
	"  --set KEY=VALUE  override a scenario parameter (repeatable)\n"
	"  --out DIR        local bundle root (default: the profile's reports.out)\n"
	"  --no-upload      keep the bundle local only\n"
	"  --release ID     record the release this run gates (release.txt in the bundle)\n"
	"  --allow-production  required to run on a profile of class production\n"
	"  --json           print the outcome as one JSON object on stdout\n"
	"  --quiet          only warnings and errors on stderr\n"
	"  --verbose        debug logging\n"
	"\n"
	"On a terminal a live status line shows the phase, elapsed time, achieved\n"
	"rate, lag and faults in place; Ctrl-C reverts every fault and exits 4.\n"
	"The last two lines on stdout are `bundle: PATH` and `s3: URI`.\n";

static const char usage_plan[] =
	"usage: fpdrill plan SCENARIO --env PROFILE [--set KEY=VALUE]...\n"
	"\n"
	"Validate, bind and guard a drill, then print its resolved timeline\n"
	"(phases, load, faults, checks, bounds, bindings) without touching the\n"
	"target. Exit 2 when the drill would be refused.\n";

static const char usage_cleanup[] =
	"usage: fpdrill cleanup [--env PROFILE] [--out DIR] [--force]\n"
	"\n"
	"Revert whatever the fault journals under DIR/.journal say may still be\n"
	"in place after a crash (kill -9, power loss). DIR defaults to the\n"
	"profile's reports.out, else fpdrill-out. Runs that are still alive are\n"
	"left alone unless --force. Exit 0 when nothing is left in place, 6 when\n"
	"a revert failed.\n";

static const char usage_verify[] =
	"usage: fpdrill verify BUNDLE_DIR [--env PROFILE | --key REF]\n"
	"\n"
	"Check that every file manifest.json lists is present with the same\n"
	"sha256, and, with a key (the profile's reports.signing_key, or --key\n"
	"env:NAME / file:PATH), that the manifest's HMAC signature matches.\n"
	"Exit 0 when the bundle is intact, 1 when it is not, 2 on usage errors.\n";

static const char usage_preflight[] =
	"usage: fpdrill preflight --env PROFILE --release ID [--suite NAME] [options]\n"
	"\n"
	"Release gate: run the per-release suite (DR-01 rollback, DR-06 audit;\n"
	"--suite to choose another) against the profile and exit non-zero when a\n"
	"required drill does not pass. The release id is printed with the result\n"
	"and recorded in each drill's bundle directory as release.txt. Options as\n"
	"for `run`.\n";

static const char usage_upload[] =
	"usage: fpdrill upload --pending [--env PROFILE] [--out DIR]\n"
	"\n"
	"Upload every bundle under DIR (default: the profile's reports.out) whose\n"
	"earlier upload failed (it carries a .upload-pending marker), with the\n"
	"profile's S3 settings. Exit 0 when nothing is left pending, 1 otherwise.\n";

static const char usage_list[] =
	"usage: fpdrill list [--dir DIR]\n"
	"\n"
	"List the drills (DIR/*.yaml) and suites (DIR/suites/*.yaml);\n"
	"DIR defaults to scenarios.\n";

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

/* ---- live status line (a terminal only) -------------------------------- */

static pthread_mutex_t tty_mu = PTHREAD_MUTEX_INITIALIZER;
static int tty_on;
static volatile int tty_stop;
static char tty_line[256];

/* Logs are printed above the status line: clear it, print, let the ticker
 * redraw it. */
static void tty_sink(enum fp_log_level level, const char *line, void *opaque)
{
	pthread_mutex_lock(&tty_mu);
	fprintf(stderr, "\r\033[K%s\n%s", line, tty_line);
	fflush(stderr);
	pthread_mutex_unlock(&tty_mu);
}

static void *tty_main(void *arg)
{
	while (!tty_stop) {
		struct fp_run_status st;

		fp_run_status_get(&st);
		pthread_mutex_lock(&tty_mu);
		if (st.active) {
			char lag[32];

			if (st.lag < 0)
				snprintf(lag, sizeof lag, "?");
			else
				snprintf(lag, sizeof lag, "%.0f", st.lag);
			snprintf(tty_line, sizeof tty_line,
				 "[%s] phase=%s t=%.1fs rate=%.1f/s sent=%lld "
				 "lag=%s faults=%d",
				 st.drill, st.phase, st.elapsed_s,
				 st.achieved_rate, st.sent, lag,
				 st.faults_in_place);
			fprintf(stderr, "\r\033[K%s", tty_line);
			fflush(stderr);
		}
		pthread_mutex_unlock(&tty_mu);
		usleep(250000);
	}
	pthread_mutex_lock(&tty_mu);
	fprintf(stderr, "\r\033[K");
	tty_line[0] = '\0';
	pthread_mutex_unlock(&tty_mu);
	return NULL;
}

static int want_tty(void)
{
	const char *ci = getenv("CI");

	return isatty(2) && !(ci && *ci) && fp_log_level_current <= FP_LOG_INFO;
}

/* ---- plan / cleanup / list --------------------------------------------- */

static int cmd_plan(int argc, char **argv)
{
	struct fp_run_opts o = {0};
	struct fp_err err = {0};
	const char **sets = calloc((size_t)argc + 1, sizeof *sets);
	int code;

	if (!sets)
		return FP_EXIT_USAGE;
	for (int i = 0; i < argc; i++) {
		int has_val = i + 1 < argc;

		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_plan, stdout);
			free(sets);
			return 0;
		} else if (strcmp(argv[i], "--env") == 0 && has_val) {
			o.env_path = argv[++i];
		} else if (strcmp(argv[i], "--set") == 0 && has_val) {
			sets[o.nsets++] = argv[++i];
		} else if (strcmp(argv[i], "--allow-production") == 0) {
			o.allow_production = 1;
		} else if (argv[i][0] == '-' || o.scenario_path) {
			fprintf(stderr, "fpdrill plan: unexpected argument '%s'\n\n%s",
				argv[i], usage_plan);
			free(sets);
			return FP_EXIT_USAGE;
		} else {
			o.scenario_path = argv[i];
		}
	}
	if (!o.scenario_path || !o.env_path) {
		fprintf(stderr, "fpdrill plan: a scenario and --env are required\n\n%s",
			usage_plan);
		free(sets);
		return FP_EXIT_USAGE;
	}
	o.sets = sets;
	code = fp_run_plan(&o, stdout, &err);
	if (code)
		fprintf(stderr, "%s\n", err.msg);
	free(sets);
	return code;
}

static int cmd_cleanup(int argc, char **argv)
{
	const char *env_path = NULL, *out = NULL;
	struct fp_env *env = NULL;
	struct fp_err err = {0};
	int force = 0, code;
	char root[4096];

	for (int i = 0; i < argc; i++) {
		int has_val = i + 1 < argc;

		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_cleanup, stdout);
			return 0;
		} else if (strcmp(argv[i], "--env") == 0 && has_val) {
			env_path = argv[++i];
		} else if (strcmp(argv[i], "--out") == 0 && has_val) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--force") == 0) {
			force = 1;
		} else {
			fprintf(stderr, "fpdrill cleanup: unexpected argument "
					"'%s'\n\n%s",
				argv[i], usage_cleanup);
			return FP_EXIT_USAGE;
		}
	}
	if (env_path && fp_env_load(env_path, &env, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return FP_EXIT_USAGE;
	}
	snprintf(root, sizeof root, "%s",
		 out ? out : env ? env->out_dir : "fpdrill-out");
	fp_env_free(env);
	code = fp_cleanup(root, env_path, force, stdout, &err);
	if (code == FP_EXIT_CLEANUP)
		fprintf(stderr,
			"\n*** fpdrill cleanup: %s ***\n*** FAULTS MAY STILL BE IN "
			"PLACE. ***\n\n",
			err.msg);
	return code;
}

static int cmd_verify(int argc, char **argv)
{
	const char *dir = NULL, *env_path = NULL, *key_ref = NULL;
	struct fp_env *env = NULL;
	struct fp_err err = {0};
	char *key = NULL;
	int rc;

	for (int i = 0; i < argc; i++) {
		int has_val = i + 1 < argc;

		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_verify, stdout);
			return 0;
		} else if (strcmp(argv[i], "--env") == 0 && has_val) {
			env_path = argv[++i];
		} else if (strcmp(argv[i], "--key") == 0 && has_val) {
			key_ref = argv[++i];
		} else if (argv[i][0] == '-' || dir) {
			fprintf(stderr, "fpdrill verify: unexpected argument "
					"'%s'\n\n%s",
				argv[i], usage_verify);
			return FP_EXIT_USAGE;
		} else {
			dir = argv[i];
		}
	}
	if (!dir) {
		fputs(usage_verify, stderr);
		return FP_EXIT_USAGE;
	}
	if (env_path) {
		if (fp_env_load(env_path, &env, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return FP_EXIT_USAGE;
		}
		key_ref = env->signing_key_ref;
	}
	if (key_ref && fp_secret_resolve(key_ref, env ? env->dir : NULL, &key,
					 &err)) {
		fprintf(stderr, "fpdrill verify: %s\n", err.msg);
		fp_env_free(env);
		return FP_EXIT_USAGE;
	}
	rc = fp_bundle_verify(dir, key, &err);
	fp_secret_free(key);
	fp_env_free(env);
	if (rc) {
		printf("verify: %s: NOT INTACT: %s\n", dir, err.msg);
		return FP_EXIT_FAIL;
	}
	printf("verify: %s: intact%s\n", dir,
	       key_ref ? ", signature valid" : " (signature not checked)");
	return 0;
}

static int cmd_run(int argc, char **argv);

static int cmd_preflight(int argc, char **argv)
{
	const char *release = NULL, *suite = "per-release";
	char **args = calloc((size_t)argc + 5, sizeof *args);
	int n = 0, code;

	if (!args)
		return FP_EXIT_USAGE;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_preflight, stdout);
			free(args);
			return 0;
		} else if (strcmp(argv[i], "--release") == 0 && i + 1 < argc) {
			release = argv[++i];
		} else if (strcmp(argv[i], "--suite") == 0 && i + 1 < argc) {
			suite = argv[++i];
		} else {
			args[n++] = argv[i];
		}
	}
	if (!release || !*release) {
		fprintf(stderr, "fpdrill preflight: --release ID is required\n\n%s",
			usage_preflight);
		free(args);
		return FP_EXIT_USAGE;
	}
	args[n++] = "--suite";
	args[n++] = (char *)suite;
	args[n++] = "--release";
	args[n++] = (char *)release;
	printf("preflight for release %s: suite %s\n", release, suite);
	fflush(stdout);
	code = cmd_run(n, args);
	printf("preflight for release %s: %s (exit %d)\n", release,
	       code == 0 ? "GO" : "NO-GO", code);
	free(args);
	return code;
}

static int cmd_upload(int argc, char **argv)
{
	const char *env_path = NULL, *out = NULL;
	struct fp_env *env = NULL;
	struct fp_err err = {0};
	struct fp_s3_conf c = {0};
	char *ak = NULL, *sk = NULL;
	int pending = 0, uploaded = 0, failed = 0, rc;

	for (int i = 0; i < argc; i++) {
		int has_val = i + 1 < argc;

		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_upload, stdout);
			return 0;
		} else if (strcmp(argv[i], "--pending") == 0) {
			pending = 1;
		} else if (strcmp(argv[i], "--env") == 0 && has_val) {
			env_path = argv[++i];
		} else if (strcmp(argv[i], "--out") == 0 && has_val) {
			out = argv[++i];
		} else {
			fprintf(stderr, "fpdrill upload: unexpected argument '%s'\n\n%s",
				argv[i], usage_upload);
			return FP_EXIT_USAGE;
		}
	}
	if (!pending || !env_path) {
		fprintf(stderr, "fpdrill upload: --pending and --env are required\n\n%s",
			usage_upload);
		return FP_EXIT_USAGE;
	}
	if (fp_env_load(env_path, &env, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return FP_EXIT_USAGE;
	}
	if (!env->s3_enabled) {
		fprintf(stderr, "fpdrill upload: %s has no reports.s3 settings\n",
			env_path);
		fp_env_free(env);
		return FP_EXIT_USAGE;
	}
	rc = fp_secret_resolve(env->s3_access_key_ref, env->dir, &ak, &err);
	if (rc == FP_OK)
		rc = fp_secret_resolve(env->s3_secret_key_ref, env->dir, &sk, &err);
	if (rc == FP_OK) {
		c.endpoint = env->s3_endpoint;
		c.bucket = env->s3_bucket;
		c.region = env->s3_region;
		c.prefix = env->s3_prefix;
		c.access_key = ak;
		c.secret_key = sk;
		rc = fp_s3_upload_pending(&c, out ? out : env->out_dir, &uploaded,
					  &failed, stdout, &err);
	}
	fp_secret_free(ak);
	fp_secret_free(sk);
	fp_env_free(env);
	printf("upload: %d uploaded, %d still pending\n", uploaded, failed);
	if (rc == FP_ENOTFOUND)
		return 0;
	if (rc) {
		fprintf(stderr, "fpdrill upload: %s\n", err.msg);
		return FP_EXIT_FAIL;
	}
	return 0;
}

static int ends_with_yaml(const char *n)
{
	size_t l = strlen(n);

	return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
	       (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *dir, int suites)
{
	char *names[512];
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)) && n < 512)
		if (ends_with_yaml(de->d_name))
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[4200];

		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (suites) {
			printf("suite  %-28s %s\n", names[i], path);
		} else {
			struct fp_spec_names nm = {fp_run_has_injector,
						   fp_run_has_invariant};
			struct fp_scenario *sc = NULL;
			struct fp_err err = {0};

			if (fp_scenario_load(path, NULL, NULL, 0, &nm, &sc,
					     &err) == FP_OK)
				printf("drill  %-8s %-40s %s\n", sc->id,
				       sc->title, path);
			else
				printf("drill  %-8s %-40s %s\n", "?",
				       "(invalid: run fpdrill validate)", path);
			fp_scenario_free(sc);
		}
		free(names[i]);
	}
}

static int cmd_list(int argc, char **argv)
{
	const char *dir = "scenarios";
	char suites[4200];

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_list, stdout);
			return 0;
		} else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "fpdrill list: unexpected argument '%s'\n",
				argv[i]);
			return FP_EXIT_USAGE;
		}
	}
	list_dir(dir, 0);
	snprintf(suites, sizeof suites, "%s/suites", dir);
	list_dir(suites, 1);
	return 0;
}

static void print_json_outcome(int code, const struct fp_run_outcome *out,
			       const char *reason)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "verdict", out->verdict[0]
						 ? json_string(out->verdict)
						 : json_null());
	json_object_set_new(o, "exit_code", json_integer(code));
	json_object_set_new(o, "reason", json_string(reason));
	json_object_set_new(o, "run_id", json_string(out->run_id));
	json_object_set_new(o, "bundle", out->bundle_dir[0]
						? json_string(out->bundle_dir)
						: json_null());
	json_object_set_new(o, "s3", out->s3_uri[0] ? json_string(out->s3_uri)
						    : json_null());
	if (out->upload_error[0])
		json_object_set_new(o, "upload_error",
				    json_string(out->upload_error));
	s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2));
	printf("%s\n", s ? s : "{}");
	free(s);
	json_decref(o);
}

static int cmd_run(int argc, char **argv)
{
	struct fp_run_opts o = {0};
	struct fp_run_outcome out;
	struct fp_err err = {0};
	const char **sets = calloc((size_t)argc + 1, sizeof *sets);
	int code, json_out = 0;
	const char *suite = NULL;
	pthread_t tty;

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
		} else if (strcmp(a, "--suite") == 0 && has_val) {
			suite = argv[++i];
		} else if (strcmp(a, "--release") == 0 && has_val) {
			o.release_id = argv[++i];
		} else if (strcmp(a, "--set") == 0 && has_val) {
			sets[o.nsets++] = argv[++i];
		} else if (strcmp(a, "--out") == 0 && has_val) {
			o.out_dir = argv[++i];
		} else if (strcmp(a, "--no-upload") == 0) {
			o.no_upload = 1;
		} else if (strcmp(a, "--allow-production") == 0) {
			o.allow_production = 1;
		} else if (strcmp(a, "--json") == 0) {
			json_out = 1;
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
	if (!!o.scenario_path == !!suite || !o.env_path) {
		fprintf(stderr, "fpdrill run: a scenario (or --suite) and --env are "
				"required\n\n%s",
			usage_run);
		free(sets);
		return FP_EXIT_USAGE;
	}
	o.sets = sets;
	if (suite) {
		code = fp_run_suite(&o, suite, stdout, &err);
		if (code == FP_EXIT_USAGE && err.msg[0])
			fprintf(stderr, "%s\n", err.msg);
		free(sets);
		return code;
	}
	tty_on = want_tty() && pthread_create(&tty, NULL, tty_main, NULL) == 0;
	if (tty_on)
		fp_log_set_sink(tty_sink, NULL);
	code = fp_run_drill(&o, &out, &err);
	if (tty_on) {
		tty_stop = 1;
		pthread_join(tty, NULL);
		fp_log_set_sink(NULL, NULL);
	}
	free(sets);
	if (code == FP_EXIT_CLEANUP)
		fprintf(stderr,
			"\n*** fpdrill: A FAULT COULD NOT BE REVERTED AND MAY STILL "
			"BE IN PLACE. ***\n*** Run `fpdrill cleanup --env %s`. ***\n\n",
			o.env_path);
	if (json_out) {
		print_json_outcome(code, &out, err.msg);
		return code;
	}
	if (out.verdict[0]) {
		printf("verdict: %s (exit %d)%s%s\n", out.verdict, code,
		       err.msg[0] ? ": " : "", err.msg);
	} else {
		fprintf(stderr, "fpdrill: %s\n", err.msg);
		printf("verdict: none (exit %d)\n", code);
	}
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
	if (strcmp(argv[1], "plan") == 0)
		return cmd_plan(argc - 2, argv + 2);
	if (strcmp(argv[1], "cleanup") == 0)
		return cmd_cleanup(argc - 2, argv + 2);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(argc - 2, argv + 2);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 2, argv + 2);
	if (strcmp(argv[1], "preflight") == 0)
		return cmd_preflight(argc - 2, argv + 2);
	if (strcmp(argv[1], "upload") == 0)
		return cmd_upload(argc - 2, argv + 2);
	fprintf(stderr, "fpdrill: unknown verb '%s'\n\n%s", argv[1], usage_main);
	return FP_EXIT_USAGE;
}
