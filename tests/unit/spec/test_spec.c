/*
 * test_spec.c - unit tests of the env profile and scenario loaders.
 *
 * Each error class is pinned with its exact "file:line:col: " prefix: the
 * marks are the product here (a user fixes a spec from the message alone),
 * so a test that only checked the return code would let them drift. Tests
 * chdir into fixtures/ so messages carry short, stable file names.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/spec/fp_spec.h"

#ifndef FP_SPEC_FIXTURES
#define FP_SPEC_FIXTURES "tests/unit/spec/fixtures"
#endif

/* Variables the fixtures use; cleared so the caller's shell cannot leak in. */
static const char *const test_vars[] = {
	"FPDT_INGRESS_URL", "FPDT_KAFKA_BOOTSTRAP", "FPDT_PG_PORT",
	"FPDT_PG_PASSWORD_FILE", "FPDT_ADMIN_URL", "FPDT_S3_PORT",
	"FPDT_NOT_SET", "FPDT_SURELY_UNSET", NULL};

static void enter_fixtures(void)
{
	const char *src = getenv("FPDRILL_SOURCE_DIR");
	char dir[4096];

	/* ctest sets FPDRILL_SOURCE_DIR; a direct run uses the build-time
	 * path compiled in by CMakeLists.txt. */
	if (src)
		snprintf(dir, sizeof dir, "%s/tests/unit/spec/fixtures", src);
	else
		snprintf(dir, sizeof dir, "%s", FP_SPEC_FIXTURES);
	cr_assert(chdir(dir) == 0, "cannot chdir to %s", dir);
	for (size_t i = 0; test_vars[i]; i++)
		unsetenv(test_vars[i]);
}

TestSuite(env, .init = enter_fixtures);
TestSuite(scenario, .init = enter_fixtures);

/* ---- helpers ---------------------------------------------------------- */

static int known_injector(const char *name)
{
	return strcmp(name, "kafka.replay_window") == 0 ||
	       strcmp(name, "kafka.pause_consumer") == 0;
}

static int known_invariant(const char *name)
{
	return strcmp(name, "no_duplicate_decisions") == 0 ||
	       strcmp(name, "at_most_one_case") == 0;
}

static int no_injector(const char *name)
{
	(void)name;
	return 0;
}

static const struct fp_spec_names names = {known_injector, known_invariant};

/* Load an env profile that must fail; returns the rc, message in err. */
static int env_fails(const char *path, struct fp_err *err)
{
	struct fp_env *env = (struct fp_env *)1;
	int rc;

	fp_err_clear(err);
	rc = fp_env_load(path, &env, err);
	cr_assert_neq(rc, FP_OK, "%s loaded but should fail", path);
	cr_assert_null(env, "out must be NULL on failure");
	return rc;
}

static int sc_fails(const char *path, const struct fp_env *env,
		    const char *const *sets, size_t nsets,
		    const struct fp_spec_names *nm, struct fp_err *err)
{
	struct fp_scenario *sc = (struct fp_scenario *)1;
	int rc;

	fp_err_clear(err);
	rc = fp_scenario_load(path, env, sets, nsets, nm, &sc, err);
	cr_assert_neq(rc, FP_OK, "%s loaded but should fail", path);
	cr_assert_null(sc, "out must be NULL on failure");
	return rc;
}

static struct fp_env *env_ok(const char *path)
{
	struct fp_env *env = NULL;
	struct fp_err err;
	int rc = fp_env_load(path, &env, &err);

	cr_assert_eq(rc, FP_OK, "%s: %s", path, err.msg);
	return env;
}

#define assert_msg(err, want)                                             \
	cr_assert_str_eq((err).msg, (want), "\n got: %s\nwant: %s",       \
			 (err).msg, (want))

#define assert_prefix(err, want)                                          \
	cr_assert(strncmp((err).msg, (want), strlen(want)) == 0,          \
		  "\n got: %s\nwant prefix: %s", (err).msg, (want))

/* ---- env: success ----------------------------------------------------- */

Test(env, full_profile_decodes_every_field)
{
	struct fp_env *env = env_ok("env_full.yaml");
	const struct fp_action *a;

	cr_assert_str_eq(env->path, "env_full.yaml");
	cr_assert_str_eq(env->dir, ".");
	cr_assert_str_eq(env->name, "local");
	cr_assert_eq(env->env_class, FP_ENV_STAGING);
	cr_assert_str_eq(env->platform_run_id, "fpd-${run.id}-x");
	cr_assert_str_eq(env->event_class, "payment");
	cr_assert_str_eq(env->runtime_lane, "drill-b");
	cr_assert_str_eq(env->ingress_url, "http://127.0.0.1:8080/v1/events");
	cr_assert_str_eq(env->kafka_bootstrap, "127.0.0.1:9092");
	cr_assert_eq(env->kafka_props.n, 2);
	cr_assert_str_eq(fp_kv_get(&env->kafka_props, "security.protocol"),
			 "PLAINTEXT");
	cr_assert_str_eq(fp_kv_get(&env->kafka_props, "linger.ms"), "5");
	cr_assert_str_eq(env->pg_conninfo,
			 "host=127.0.0.1 port=5433 dbname=fp user=fp");
	cr_assert_str_eq(env->pg_password_ref, "file:.state/pg.pw");
	cr_assert_eq(env->observables.n, 4);
	cr_assert_str_eq(fp_kv_get(&env->observables, "decision_group"),
			 "fp-decider");
	cr_assert_eq(fp_kv_find(&env->observables, "cases")->mark.line, 22);
	cr_assert_eq(fp_kv_find(&env->observables, "cases")->mark.col, 10);
	cr_assert_null(fp_kv_get(&env->observables, "nope"));

	cr_assert_eq(env->n_actions, 3);
	a = fp_env_action(env, "pause_decisions");
	cr_assert_not_null(a);
	cr_assert_eq(a->kind, FP_ACTION_HTTP);
	cr_assert_str_eq(a->method, "PUT");
	cr_assert_str_eq(a->url, "http://127.0.0.1:8081/admin/pause");
	cr_assert_str_eq(a->body, "{\"paused\":true}");
	cr_assert_str_eq(fp_kv_get(&a->headers, "X-Token"), "abc");
	cr_assert_eq(a->expect_status, 204);
	cr_assert_eq(a->timeout_ns, 20 * FP_NS_PER_S);
	cr_assert_eq(a->mark.line, 25);
	a = fp_env_action(env, "resume_decisions");
	cr_assert_str_eq(a->method, "POST");
	cr_assert_null(a->body);
	cr_assert_eq(a->headers.n, 0);
	cr_assert_eq(a->expect_status, 0);
	cr_assert_eq(a->timeout_ns, 30 * FP_NS_PER_S);
	a = fp_env_action(env, "restart_platform");
	cr_assert_eq(a->kind, FP_ACTION_COMMAND);
	cr_assert_eq(a->argc, 4);
	cr_assert_str_eq(a->argv[0], "envs/local/stack");
	cr_assert_str_eq(a->argv[3], "none");
	cr_assert_null(a->argv[4]);
	cr_assert_eq(a->timeout_ns, 60 * FP_NS_PER_S);
	cr_assert_null(fp_env_action(env, "nope"));

	cr_assert_str_eq(env->out_dir, "out-dir");
	cr_assert_str_eq(env->signing_key_ref, "env:FPDRILL_SIGNING_KEY");
	cr_assert_eq(env->s3_enabled, 1);
	cr_assert_str_eq(env->s3_endpoint, "http://127.0.0.1:9000");
	cr_assert_str_eq(env->s3_bucket, "drills");
	cr_assert_str_eq(env->s3_region, "us-east-1");
	/* $${ escapes; ${env:X:-d} falls back to its default. */
	cr_assert_str_eq(env->s3_prefix, "${literal}-dflt");
	cr_assert_str_eq(env->s3_access_key_ref, "file:secrets/ak");
	cr_assert_str_eq(env->s3_secret_key_ref, "env:FPDT_SK");
	cr_assert_eq(env->env_vars.n, 6);
	fp_env_free(env);
}

Test(env, minimal_profile_takes_defaults)
{
	struct fp_env *env = env_ok("env_min.yaml");

	cr_assert_eq(env->env_class, FP_ENV_LOCAL);
	cr_assert_str_eq(env->platform_run_id, "fpd-${run.id}");
	cr_assert_str_eq(env->event_class, "transaction");
	cr_assert_str_eq(env->runtime_lane, "drill");
	cr_assert_eq(env->kafka_props.n, 0);
	cr_assert_null(env->pg_password_ref);
	cr_assert_str_eq(env->out_dir, "fpdrill-out");
	cr_assert_eq(env->s3_enabled, 0);
	cr_assert_str_eq(env->s3_region, "us-east-1");
	cr_assert_str_eq(env->s3_prefix, "fpdrill");
	cr_assert_null(env->signing_key_ref);
	cr_assert_eq(env->env_vars.n, 0);
	cr_assert_eq(env->n_actions, 2);
	cr_assert_eq(env->pg_judge_connections, 2);
	fp_env_free(env);
}

Test(env, judge_connections)
{
	struct fp_env *env = env_ok("env_judge.yaml");
	struct fp_err err;

	cr_assert_eq(env->pg_judge_connections, 4);
	fp_env_free(env);
	env_fails("env_judge_bad.yaml", &err);
	assert_prefix(err, "env_judge_bad.yaml:9:24: expected an integer from "
			   "1 to 8, got \"9\"");
}

Test(env, process_env_overrides_env_file)
{
	struct fp_env *env;

	setenv("FPDT_KAFKA_BOOTSTRAP", "10.0.0.7:9093", 1);
	setenv("FPDT_NOT_SET", "given", 1);
	env = env_ok("env_full.yaml");
	cr_assert_str_eq(env->kafka_bootstrap, "10.0.0.7:9093");
	cr_assert_str_eq(env->s3_prefix, "${literal}-given");
	/* Untouched variables still come from the file. */
	cr_assert_str_eq(env->ingress_url, "http://127.0.0.1:8080/v1/events");
	fp_env_free(env);
}

Test(env, class_names)
{
	cr_assert_str_eq(fp_env_class_name(FP_ENV_LOCAL), "local");
	cr_assert_str_eq(fp_env_class_name(FP_ENV_DEV), "dev");
	cr_assert_str_eq(fp_env_class_name(FP_ENV_STAGING), "staging");
	cr_assert_str_eq(fp_env_class_name(FP_ENV_PRODUCTION), "production");
}

/* ---- env: errors ------------------------------------------------------ */

Test(env, unknown_key)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_unknown_key.yaml", &err), FP_ESPEC);
	assert_msg(err, "env_unknown_key.yaml:3:1: unknown key \"targte\" in "
			"env profile (expected one of: fpdrill, name, class, "
			"env_file, identity, target, observables, actions, "
			"reports, samplers, safety)");
}

Test(env, inline_secret_rejected_without_echo)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_inline_secret.yaml", &err), FP_ESPEC);
	assert_msg(err, "env_inline_secret.yaml:8:15: expected an env:NAME or "
			"file:PATH reference (secrets must be env:NAME or "
			"file:PATH references, never inline), got an inline "
			"value");
	cr_assert_null(strstr(err.msg, "hunter2"), "secret echoed: %s",
		       err.msg);
}

Test(env, missing_required_key_points_at_parent_map)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_missing_key.yaml", &err), FP_ESPEC);
	assert_msg(err, "env_missing_key.yaml:5:10: missing required key "
			"\"bootstrap\" in target.kafka");
}

Test(env, missing_env_file_suggests_stack_up)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_missing_env_file.yaml", &err), FP_ESPEC);
	assert_prefix(err, "env_missing_env_file.yaml:3:11: expected env_file "
			   "\"local/.state/endpoints.env\" to exist");
	cr_assert_not_null(strstr(err.msg, "envs/local/stack up"), "%s",
			   err.msg);
}

Test(env, yaml_syntax_error_uses_problem_mark)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_syntax.yaml", &err), FP_ESPEC);
	assert_msg(err, "env_syntax.yaml:5:12: expected valid YAML, got a "
			"syntax error: did not find expected ',' or ']' "
			"(while parsing a flow sequence that started at "
			"4:16)");
}

Test(env, unset_env_variable)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_unset_var.yaml", &err), FP_ESPEC);
	assert_prefix(err, "env_unset_var.yaml:4:16: expected environment "
			   "variable FPDT_SURELY_UNSET to be set");
}

Test(env, action_needs_exactly_one_kind)
{
	struct fp_err err;

	cr_assert_eq(env_fails("env_bad_action.yaml", &err), FP_ESPEC);
	assert_msg(err, "env_bad_action.yaml:10:5: expected exactly one of "
			"http or command in action \"pause\", got both");
}

Test(env, missing_file_is_eio)
{
	struct fp_err err;

	cr_assert_eq(env_fails("no_such_file.yaml", &err), FP_EIO);
	cr_assert_not_null(strstr(err.msg, "no_such_file.yaml"), "%s",
			   err.msg);
}

Test(env, scenario_given_as_env)
{
	struct fp_err err;

	cr_assert_eq(env_fails("sc_min.yaml", &err), FP_ESPEC);
	assert_msg(err, "sc_min.yaml:1:10: expected fpdrill: env/v1, got "
			"\"scenario/v1\"");
}

/* ---- scenario: success ------------------------------------------------ */

Test(scenario, dr02_decodes_every_field)
{
	struct fp_env *env = env_ok("env_min.yaml");
	struct fp_scenario *sc = NULL;
	const struct fp_phase *p;
	const struct fp_step *st;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_dr02.yaml", env, NULL, 0, &names, &sc, &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_str_eq(sc->path, "sc_dr02.yaml");
	cr_assert_str_eq(sc->id, "DR-02");
	cr_assert_str_eq(sc->title, "Replay / backfill integrity");
	cr_assert_str_eq(sc->description, "Replay a window of the traffic "
					  "topic into the decision consumer "
					  "group.\n");
	cr_assert_str_eq(sc->expected, "No duplicate decisions; at most one "
				       "case per event.\n");
	cr_assert_eq(sc->n_claims, 2);
	cr_assert_str_eq(sc->claims[1], "T0.5");
	cr_assert_eq(sc->n_covers, 1);
	cr_assert_str_eq(sc->covers[0], "FM-IG-01");
	cr_assert_eq(sc->params.n, 3);
	cr_assert_str_eq(fp_kv_get(&sc->params, "rate"), "100");
	cr_assert_eq(fp_kv_find(&sc->params, "rate")->mark.line, 11);

	cr_assert_eq(sc->load.enabled, 1);
	cr_assert_eq(sc->load.channel, FP_CHANNEL_KAFKA);
	cr_assert_float_eq(sc->load.rate, 100.0, 1e-9);
	cr_assert_eq(sc->load.seed, 42);
	cr_assert_eq(sc->load.concurrency, 32);
	cr_assert_eq(sc->load.accounts, 500);
	cr_assert_float_eq(sc->load.high_value_share, 0.25, 1e-9);
	cr_assert_eq(sc->load.timeout_ns, 5 * FP_NS_PER_S);
	cr_assert_float_eq(sc->load.retry_share, 0.1, 1e-9);
	cr_assert_eq(sc->load.retry_delay_ns, 300 * FP_NS_PER_MS);
	cr_assert_str_eq(sc->load.kafka_topic, "fp.traffic");

	cr_assert_eq(sc->n_phases, 3);
	p = &sc->phases[0];
	cr_assert_str_eq(p->id, "load");
	cr_assert_eq(p->duration_ns, 20 * FP_NS_PER_S);
	cr_assert_eq(p->load, 1);
	cr_assert_str_eq(p->mark, "window_start");
	cr_assert_eq(p->where.line, 25);
	cr_assert_eq(p->where.col, 5);
	cr_assert_eq(p->n_steps, 2);
	st = &p->steps[0];
	cr_assert_eq(st->kind, FP_STEP_ACTION);
	cr_assert_str_eq(st->action, "pause_decisions");
	cr_assert_str_eq(st->revert_action, "resume_decisions");
	cr_assert_str_eq(st->as, "paused");
	cr_assert_eq(st->mark.line, 30);
	cr_assert_eq(p->steps[1].kind, FP_STEP_WAIT);
	cr_assert_eq(p->steps[1].wait_ns, 2 * FP_NS_PER_S);
	cr_assert_eq(p->has_until, 0);

	p = &sc->phases[1];
	cr_assert_eq(p->duration_ns, 0);
	cr_assert_eq(p->load, 0);
	cr_assert_null(p->mark);
	st = &p->steps[0];
	cr_assert_eq(st->kind, FP_STEP_INJECT);
	cr_assert_str_eq(st->injector, "kafka.replay_window");
	cr_assert_str_eq(fp_kv_get(&st->with, "group"), "fp-decider");
	cr_assert_str_eq(fp_kv_get(&st->with, "to"), "mark:window_start");
	/* An escaped run variable stays escaped until the run loop. */
	cr_assert_str_eq(fp_kv_get(&st->with, "note"), "$${run.id}");
	cr_assert_str_eq(st->as, "replay");
	st = &p->steps[1];
	cr_assert_eq(st->kind, FP_STEP_REVERT);
	cr_assert_str_eq(st->revert_ref, "paused");

	p = &sc->phases[2];
	cr_assert_eq(p->n_steps, 0);
	cr_assert_eq(p->has_until, 1);
	cr_assert_str_eq(p->until.observable, "decision_group_lag");
	cr_assert_eq(p->until.op, FP_CMP_LE);
	cr_assert_float_eq(p->until.value, 0.0, 1e-12);
	cr_assert_eq(p->until.hold_ns, 3 * FP_NS_PER_S);
	cr_assert_eq(p->until.timeout_ns, 60 * FP_NS_PER_S);

	cr_assert_eq(sc->n_checks, 2);
	cr_assert_str_eq(sc->checks[0].invariant, "no_duplicate_decisions");
	cr_assert_eq(sc->checks[0].with.n, 0);
	cr_assert_str_eq(fp_kv_get(&sc->checks[1].with, "run"), "${run.id}");
	cr_assert_eq(sc->checks[1].mark.line, 49);
	cr_assert_eq(sc->n_bounds, 1);
	cr_assert_str_eq(sc->bounds[0].name, "replay_completion");
	cr_assert_str_eq(sc->bounds[0].measure, "phase_duration:drain");
	cr_assert_eq(sc->bounds[0].limit_ns, 60 * FP_NS_PER_S);
	cr_assert_eq(sc->n_followups, 1);
	fp_scenario_free(sc);
	fp_env_free(env);
}

Test(scenario, minimal_takes_defaults)
{
	struct fp_scenario *sc = NULL;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_min.yaml", NULL, NULL, 0, NULL, &sc, &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_str_eq(sc->id, "smoke.test_1");
	cr_assert_eq(sc->n_claims, 0);
	cr_assert_null(sc->claims);
	cr_assert_eq(sc->params.n, 0);
	cr_assert_eq(sc->load.channel, FP_CHANNEL_HTTP);
	cr_assert_float_eq(sc->load.rate, 5.0, 1e-9);
	cr_assert_eq(sc->load.seed, 1);
	cr_assert_eq(sc->load.concurrency, 64);
	cr_assert_eq(sc->load.accounts, 1000);
	cr_assert_float_eq(sc->load.high_value_share, 0.1, 1e-9);
	cr_assert_eq(sc->load.timeout_ns, 10 * FP_NS_PER_S);
	cr_assert_float_eq(sc->load.retry_share, 0.0, 1e-12);
	cr_assert_eq(sc->load.retry_delay_ns, 200 * FP_NS_PER_MS);
	cr_assert_eq(sc->n_phases, 1);
	cr_assert_eq(sc->phases[0].load, 1);
	cr_assert_eq(sc->n_checks + sc->n_bounds + sc->n_followups, 0);
	fp_scenario_free(sc);
}

Test(scenario, without_env_obs_stays_literal_and_actions_unchecked)
{
	struct fp_scenario *sc = NULL;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_dr02.yaml", NULL, NULL, 0, NULL, &sc, &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_str_eq(fp_kv_get(&sc->phases[1].steps[0].with, "group"),
			 "${obs.decision_group}");
	fp_scenario_free(sc);
}

Test(scenario, set_overrides_params)
{
	const char *sets[] = {"rate=250", "load_duration=45s"};
	struct fp_scenario *sc = NULL;
	const struct fp_kv *kv;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_dr02.yaml", NULL, sets, 2, NULL, &sc, &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_float_eq(sc->load.rate, 250.0, 1e-9);
	cr_assert_eq(sc->phases[0].duration_ns, 45 * FP_NS_PER_S);
	kv = fp_kv_find(&sc->params, "rate");
	cr_assert_str_eq(kv->value, "250");
	cr_assert_str_eq(kv->mark.file, "--set");
	cr_assert_eq(kv->mark.line, 0);
	/* Untouched params keep their file mark. */
	cr_assert_str_eq(fp_kv_find(&sc->params, "drain_limit")->mark.file,
			 "sc_dr02.yaml");
	fp_scenario_free(sc);
}

/* ---- scenario: errors ------------------------------------------------- */

Test(scenario, set_unknown_param)
{
	const char *sets[] = {"rate=1", "nope=1"};
	struct fp_err err;

	cr_assert_eq(sc_fails("sc_dr02.yaml", NULL, sets, 2, NULL, &err),
		     FP_ESPEC);
	assert_msg(err, "--set: unknown parameter 'nope' (known: rate, "
			"load_duration, drain_limit)");
}

Test(scenario, set_malformed_is_usage)
{
	const char *sets[] = {"rate"};
	struct fp_err err;

	cr_assert_eq(sc_fails("sc_dr02.yaml", NULL, sets, 1, NULL, &err),
		     FP_EUSAGE);
	assert_prefix(err, "--set: expected key=value");
}

Test(scenario, set_value_is_typed_where_used)
{
	const char *sets[] = {"load_duration=10"};
	struct fp_err err;

	cr_assert_eq(sc_fails("sc_dr02.yaml", NULL, sets, 1, NULL, &err),
		     FP_ESPEC);
	assert_msg(err, "sc_dr02.yaml:26:15: expected a duration like 250ms, "
			"10s, 2m, got \"10\" (from "
			"\"${params.load_duration}\")");
}

Test(scenario, bad_duration)
{
	struct fp_err err;

	cr_assert_eq(sc_fails("sc_bad_duration.yaml", NULL, NULL, 0, NULL,
			      &err),
		     FP_ESPEC);
	assert_msg(err, "sc_bad_duration.yaml:10:15: expected a duration like "
			"250ms, 10s, 2m, got \"10\"");
}

Test(scenario, wrong_type)
{
	struct fp_err err;

	sc_fails("sc_wrong_type.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_wrong_type.yaml:3:8: expected a non-empty string, "
			"got a map");
}

Test(scenario, bad_bool)
{
	struct fp_err err;

	sc_fails("sc_bad_bool.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_bad_bool.yaml:9:11: expected true or false, got "
			"\"yes\"");
}

Test(scenario, load_phase_needs_load_block)
{
	struct fp_err err;

	sc_fails("sc_load_missing.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_load_missing.yaml:8:11: expected a top-level load: "
			"block for a phase with load: true, got none");
}

Test(scenario, dangling_revert)
{
	struct fp_err err;

	sc_fails("sc_dangling_revert.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_dangling_revert.yaml:14:17: expected the as: id of "
			"an earlier action or inject step (defined so far: "
			"paused), got \"pasued\" (dangling reference)");
}

Test(scenario, dangling_mark)
{
	struct fp_err err;

	sc_fails("sc_dangling_mark.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_dangling_mark.yaml:10:20: expected mark:<name> "
			"naming a mark of this or an earlier phase (defined so "
			"far: none), got \"mark:later\" (dangling reference)");
}

Test(scenario, dangling_bound_phase)
{
	struct fp_err err;

	sc_fails("sc_dangling_bound.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_dangling_bound.yaml:10:14: expected "
			"phase_duration:<phase id> naming a phase (phases: a), "
			"got \"phase_duration:drain\" (dangling reference)");
}

Test(scenario, unbound_action)
{
	struct fp_env *env = env_ok("env_min.yaml");
	struct fp_err err;

	sc_fails("sc_unbound_action.yaml", env, NULL, 0, NULL, &err);
	assert_msg(err, "sc_unbound_action.yaml:10:17: expected an action "
			"bound by env profile \"min\" (bound: pause_decisions, "
			"resume_decisions), got \"resume_decision\" (unbound "
			"action)");
	fp_env_free(env);
}

Test(scenario, unknown_injector)
{
	const struct fp_spec_names strict = {no_injector, known_invariant};
	struct fp_err err;

	sc_fails("sc_dr02.yaml", NULL, NULL, 0, &strict, &err);
	assert_msg(err, "sc_dr02.yaml:36:17: expected a known injector, got "
			"\"kafka.replay_window\" (unknown injector; see "
			"docs/injectors/)");
}

Test(scenario, unknown_invariant)
{
	const struct fp_spec_names strict = {known_injector, no_injector};
	struct fp_err err;

	sc_fails("sc_dr02.yaml", NULL, NULL, 0, &strict, &err);
	assert_msg(err, "sc_dr02.yaml:48:16: expected a known invariant, got "
			"\"no_duplicate_decisions\" (unknown invariant; see "
			"docs/invariants/)");
}

Test(scenario, unbound_observable)
{
	struct fp_env *env = env_ok("env_min.yaml");
	struct fp_err err;

	sc_fails("sc_obs.yaml", env, NULL, 0, &names, &err);
	assert_msg(err, "sc_obs.yaml:10:55: expected an observable bound by the "
			"env profile (bound: decision_group, traffic_topic), "
			"got \"${obs.no_such_observable}\" (unbound "
			"observable)");
	fp_env_free(env);
}

Test(scenario, anchors_rejected)
{
	struct fp_err err;

	sc_fails("sc_anchor.yaml", NULL, NULL, 0, NULL, &err);
	assert_prefix(err, "sc_anchor.yaml:3:8: expected plain values (anchors "
			   "and aliases are not supported");
}

Test(scenario, duplicate_key)
{
	struct fp_err err;

	sc_fails("sc_dup_key.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_dup_key.yaml:9:5: expected each key once in a map, "
			"got \"duration\" again (first at 8:5)");
}

Test(scenario, step_with_two_kinds)
{
	struct fp_err err;

	sc_fails("sc_step_kinds.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "sc_step_kinds.yaml:9:9: expected exactly one of "
			"action, inject, revert, wait in a step, got both "
			"action and wait");
}

Test(scenario, params_may_not_reference_params)
{
	struct fp_err err;

	sc_fails("sc_param_ref.yaml", NULL, NULL, 0, NULL, &err);
	assert_prefix(err, "sc_param_ref.yaml:8:6: expected a parameter value "
			   "without ${params.*}");
}

Test(scenario, unterminated_interpolation)
{
	struct fp_err err;

	sc_fails("sc_unterminated.yaml", NULL, NULL, 0, NULL, &err);
	assert_prefix(err, "sc_unterminated.yaml:3:8: expected \"}\" to close "
			   "\"${\"");
}

Test(scenario, unknown_run_variable)
{
	struct fp_err err;

	sc_fails("sc_run_var.yaml", NULL, NULL, 0, NULL, &err);
	assert_prefix(err, "sc_run_var.yaml:8:19: expected ${run.id} or "
			   "${run.platform_run_id}, got \"${run.ident}\"");
}

Test(env, platform_run_id_may_not_name_itself)
{
	struct fp_err err;

	env_fails("env_self_run_id.yaml", &err);
	assert_prefix(err, "env_self_run_id.yaml:5:20: expected a "
			   "platform_run_id that does not reference itself");
}

Test(scenario, env_given_as_scenario)
{
	struct fp_err err;

	sc_fails("env_min.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "env_min.yaml:2:10: expected fpdrill: scenario/v1, "
			"got \"env/v1\"");
}

/* ---- odd input -------------------------------------------------------- */

Test(scenario, env_file_vars_reach_scenarios)
{
	struct fp_env *env = env_ok("env_full.yaml");
	struct fp_scenario *sc = NULL;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_env_var.yaml", env, NULL, 0, NULL, &sc,
			      &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_str_eq(sc->title, "admin at http://127.0.0.1:8081/admin");
	cr_assert_str_eq(sc->description, "default none");
	fp_scenario_free(sc);
	fp_env_free(env);
}

Test(env, bad_utf8)
{
	struct fp_err err;

	cr_assert_eq(env_fails("bad_utf8.yaml", &err), FP_ESPEC);
	assert_prefix(err, "bad_utf8.yaml:2:");
	cr_assert_not_null(strstr(err.msg, "expected UTF-8 YAML text"), "%s",
			   err.msg);
}

Test(env, empty_file)
{
	struct fp_err err;

	cr_assert_eq(env_fails("empty.yaml", &err), FP_ESPEC);
	assert_msg(err, "empty.yaml:1:1: expected a map, got an empty file");
}

Test(scenario, several_documents)
{
	struct fp_err err;

	sc_fails("multi_doc.yaml", NULL, NULL, 0, NULL, &err);
	assert_msg(err, "multi_doc.yaml:2:1: expected a single YAML document, "
			"got more than one");
}

/* ---- v1.1: samplers, safety, ramps, bursts, mix, stop conditions ------- */

/* MSK IAM becomes librdkafka properties carrying references only; a
 * relative file: reference is made absolute against the profile. */
Test(env, aws_msk_iam_becomes_oauthbearer_properties)
{
	struct fp_env *env = env_ok("env_msk_iam.yaml");
	const char *cfg = fp_kv_get(&env->kafka_props, "sasl.oauthbearer.config");
	char want[4200];

	cr_expect_str_eq(fp_kv_get(&env->kafka_props, "security.protocol"),
			 "SASL_SSL");
	cr_expect_str_eq(fp_kv_get(&env->kafka_props, "sasl.mechanism"),
			 "OAUTHBEARER");
	cr_assert_not_null(cfg);
	snprintf(want, sizeof want,
		 FP_MSK_IAM_TAG " region=eu-west-2 access_key_id=env:"
		 "AWS_ACCESS_KEY_ID secret_access_key=file:%s/secrets/aws_secret "
		 "session_token=env:AWS_SESSION_TOKEN", env->dir);
	cr_expect_str_eq(cfg, want);
	fp_env_free(env);
}

Test(env, aws_msk_iam_errors)
{
	struct fp_err err;

	env_fails("env_msk_iam_conflict.yaml", &err);
	assert_prefix(err, "env_msk_iam_conflict.yaml:8:35: expected no "
			   "sasl.mechanisms in target.kafka.properties");
	env_fails("env_msk_iam_inline.yaml", &err);
	assert_prefix(err, "env_msk_iam_inline.yaml:8:57: expected an env:NAME "
			   "or file:PATH reference");
	cr_expect(strstr(err.msg, "wJalr") == NULL, "%s", err.msg);
}

Test(env, v11_samplers_and_safety_decode)
{
	struct fp_env *env = env_ok("env_v11.yaml");
	const struct fp_sampler *sp;

	cr_assert_eq(env->env_class, FP_ENV_PRODUCTION);
	cr_assert_eq(env->sample_every_ns, 500 * FP_NS_PER_MS);
	cr_assert_eq(env->n_samplers, 4);
	sp = &env->samplers[0];
	cr_assert_str_eq(sp->name, "decisions");
	cr_assert_eq(sp->kind, FP_SAMPLER_SQL);
	cr_assert_str_eq(sp->query, "SELECT count(*) FROM platform.decision_log "
				    "WHERE platform_run_id = $1");
	cr_assert_eq(sp->mark.line, 17);
	cr_assert_eq(sp->mark.col, 14);
	sp = &env->samplers[1];
	cr_assert_str_eq(sp->name, "ingress_up");
	cr_assert_eq(sp->kind, FP_SAMPLER_HTTP);
	cr_assert_str_eq(sp->url, "http://127.0.0.1:18080/health");
	cr_assert_eq(sp->expect_status, 204);
	cr_assert_eq(sp->timeout_ns, FP_NS_PER_S);
	sp = &env->samplers[2];
	cr_assert_eq(sp->kind, FP_SAMPLER_PROMETHEUS);
	cr_assert_str_eq(sp->metric, "rp_degraded{reason=\"model\",x=\"a\\\"b\"}");
	cr_assert_eq(sp->timeout_ns, 2 * FP_NS_PER_S);
	sp = &env->samplers[3];
	cr_assert_eq(sp->kind, FP_SAMPLER_KAFKA_LAG);
	cr_assert_str_eq(sp->group, "g");
	cr_assert_str_eq(sp->topic, "t");
	cr_assert_eq(env->safety.n_allow_scenarios, 3);
	cr_assert_str_eq(env->safety.allow_scenarios[1], "DR-06");
	cr_assert_float_eq(env->safety.max_rate, 500.0, 1e-9);
	cr_assert_eq(env->safety.max_duration_ns, 30 * 60 * FP_NS_PER_S);
	cr_assert_float_eq(env->safety.max_partition_share, 0.5, 1e-12);
	cr_assert_float_eq(env->safety.max_instance_share, 0.25, 1e-12);
	fp_env_free(env);
}

Test(env, v11_defaults_without_samplers_or_safety)
{
	struct fp_env *env = env_ok("env_min.yaml");

	cr_assert_eq(env->sample_every_ns, 250 * FP_NS_PER_MS);
	cr_assert_eq(env->n_samplers, 0);
	cr_assert_null(env->samplers);
	cr_assert_eq(env->safety.n_allow_scenarios, 0);
	cr_assert_float_eq(env->safety.max_rate, 0.0, 1e-12);
	cr_assert_eq(env->safety.max_duration_ns, 0);
	fp_env_free(env);
}

/* One error class per row, pinned with its exact place. */
struct want_err {
	const char *file;
	const char *msg;
};

Test(env, v11_errors)
{
	static const struct want_err cases[] = {
		{"env_sampler_reserved.yaml",
		 "env_sampler_reserved.yaml:9:3: expected a sampler name other "
		 "than \"decision_group_lag\" (reserved: the harness always "
		 "samples it from observables decision_group and "
		 "traffic_topic), got it"},
		{"env_sampler_name.yaml",
		 "env_sampler_name.yaml:10:3: expected a sampler name of a-z, "
		 "0-9, '_' and '.', got \"Decisions\""},
		{"env_sampler_kind.yaml",
		 "env_sampler_kind.yaml:9:9: expected exactly one of kafka_lag, "
		 "sql, http, prometheus in sampler \"both\", got both sql and "
		 "http"},
		{"env_sampler_every.yaml",
		 "env_sampler_every.yaml:9:10: expected a sample period from "
		 "50ms to 10s, got \"10ms\""},
		{"env_sampler_metric.yaml",
		 "env_sampler_metric.yaml:9:55: expected a Prometheus metric "
		 "name with an optional {label=\"value\",...} matcher, got "
		 "\"rp degraded\""},
		{"env_sampler_clash.yaml",
		 "env_sampler_clash.yaml:10:3: expected a sampler name that is "
		 "not the latency series of http sampler \"up\", got "
		 "\"up.latency_ms\""},
		{"env_prod_no_allow.yaml",
		 "env_prod_no_allow.yaml:3:8: expected a profile of class "
		 "production to list the drills it allows under "
		 "safety.allow_scenarios, got none"},
		{"env_safety_share.yaml",
		 "env_safety_share.yaml:10:24: expected a share above 0 and at "
		 "most 1, got \"1.5\""},
	};
	struct fp_err err;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_assert_eq(env_fails(cases[i].file, &err), FP_ESPEC, "%s",
			     cases[i].file);
		cr_expect_str_eq(err.msg, cases[i].msg, "\n got: %s\nwant: %s",
				 err.msg, cases[i].msg);
	}
}

Test(scenario, v11_decodes_every_field)
{
	struct fp_env *env = env_ok("env_v11.yaml");
	const struct fp_load_spec *l;
	const struct fp_stop_condition *c;
	const struct fp_bound *b;
	struct fp_scenario *sc = NULL;
	struct fp_err err;
	double sum = 0;
	int rc;

	rc = fp_scenario_load("sc_v11.yaml", env, NULL, 0, &names, &sc, &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	l = &sc->load;
	cr_assert_eq(l->channel, FP_CHANNEL_KAFKA);
	cr_assert_str_eq(l->kafka_topic, "fp.bus.traffic.fraud.v1");
	cr_assert_float_eq(l->ramp_from, 50.0, 1e-12);
	cr_assert_float_eq(l->ramp_to, 500.0, 1e-12);
	cr_assert_float_eq(l->rate, 500.0, 1e-12);
	cr_assert_eq(l->ramp_over_ns, 30 * FP_NS_PER_S);
	cr_assert_eq(l->n_bursts, 3);
	cr_assert_eq(l->bursts[0].at_ns, 10 * FP_NS_PER_S);
	cr_assert_eq(l->bursts[0].duration_ns, 5 * FP_NS_PER_S);
	cr_assert_float_eq(l->bursts[0].multiplier, 3.0, 1e-12);
	cr_assert_eq(l->bursts[0].ramp, 0);
	cr_assert_eq(l->bursts[0].ramp_ns, 0);
	cr_assert_eq(l->bursts[1].ramp, 1);
	cr_assert_eq(l->bursts[1].ramp_ns, 2 * FP_NS_PER_S); /* duration/4 */
	cr_assert_float_eq(l->bursts[1].multiplier, 2.5, 1e-12);
	cr_assert_eq(l->bursts[2].ramp_ns, 2 * FP_NS_PER_S);
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
		sum += l->mix[k];
	cr_assert_float_eq(sum, 1.0, 1e-12);
	cr_assert_float_eq(l->mix[FP_EVENT_VALID], 0.9, 1e-12);
	cr_assert_float_eq(l->mix[FP_EVENT_MALFORMED_JSON], 0.01, 1e-12);
	cr_assert_float_eq(l->mix[FP_EVENT_HASH_CONFLICT], 0.005, 1e-12);
	cr_assert_str_eq(fp_event_kind_name(FP_EVENT_UNSUPPORTED_VERSION),
			 "unsupported_version");
	cr_assert_str_eq(fp_event_kind_name(FP_EVENT_KIND_COUNT), "unknown");

	cr_assert_eq(sc->n_stop_conditions, 4);
	c = &sc->stop_conditions[0];
	cr_assert_str_eq(c->text, "decision_group_lag > 50000 for 10s");
	cr_assert_str_eq(c->observable, "decision_group_lag");
	cr_assert_eq(c->op, FP_CMP_GT);
	cr_assert_float_eq(c->value, 50000.0, 1e-9);
	cr_assert_eq(c->for_ns, 10 * FP_NS_PER_S);
	cr_assert_eq(c->mark.line, 18);
	cr_assert_eq(c->mark.col, 5);
	c = &sc->stop_conditions[1];
	cr_assert_str_eq(c->text, "decisions < 1 for 5s");
	cr_assert_eq(c->op, FP_CMP_LT);
	cr_assert_eq(c->for_ns, 5 * FP_NS_PER_S);
	c = &sc->stop_conditions[2];
	cr_assert_str_eq(c->observable, "ingress_up.latency_ms");
	cr_assert_eq(c->op, FP_CMP_GE);
	cr_assert_float_eq(c->value, 1000.0, 1e-9);
	cr_assert_eq(c->for_ns, 0);
	c = &sc->stop_conditions[3];
	cr_assert_str_eq(c->text, "degraded == 1");
	cr_assert_eq(c->op, FP_CMP_EQ);

	cr_assert_str_eq(sc->phases[1].until.observable, "other_lag");
	cr_assert_eq(sc->n_bounds, 6);
	b = &sc->bounds[0];
	cr_assert_eq(b->kind, FP_BOUND_RECOVERY);
	cr_assert_str_eq(b->recovery.observable, "decision_group_lag");
	cr_assert_eq(b->recovery.op, FP_CMP_LE);
	cr_assert_float_eq(b->recovery.value, 100.0, 1e-9);
	cr_assert_eq(b->recovery.hold_ns, 5 * FP_NS_PER_S);
	cr_assert_str_eq(b->after, "revert:paused");
	cr_assert_eq(b->limit_ns, 60 * FP_NS_PER_S);
	cr_assert_null(b->measure);
	cr_assert_str_eq(sc->bounds[1].after, "phase:drain");
	b = &sc->bounds[2];
	cr_assert_eq(b->kind, FP_BOUND_LATENCY);
	cr_assert_float_eq(b->percentile, 99.0, 1e-12);
	cr_assert_eq(b->service_time, 0);
	cr_assert_eq(b->limit_ns, 250 * FP_NS_PER_MS);
	cr_assert_eq(sc->bounds[3].service_time, 1);
	cr_assert_eq(sc->bounds[4].service_time, 0);
	cr_assert_float_eq(sc->bounds[4].percentile, 99.9, 1e-12);
	cr_assert_eq(sc->bounds[5].kind, FP_BOUND_MEASURE);
	cr_assert_str_eq(sc->bounds[5].measure, "phase_duration:drain");
	fp_scenario_free(sc);
	fp_env_free(env);
}

Test(scenario, v11_defaults)
{
	struct fp_scenario *sc = NULL;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_min.yaml", NULL, NULL, 0, NULL, &sc, &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_float_eq(sc->load.mix[FP_EVENT_VALID], 1.0, 1e-12);
	for (int k = 1; k < FP_EVENT_KIND_COUNT; k++)
		cr_assert_float_eq(sc->load.mix[k], 0.0, 1e-12);
	cr_assert_eq(sc->load.ramp_over_ns, 0);
	cr_assert_eq(sc->load.n_bursts, 0);
	cr_assert_null(sc->load.kafka_topic);
	cr_assert_eq(sc->n_stop_conditions, 0);
	fp_scenario_free(sc);
}

/* Observables are free names without an env profile (they may be samplers
 * of whichever profile the drill runs against). */
Test(scenario, v11_observables_unchecked_without_env)
{
	struct fp_scenario *sc = NULL;
	struct fp_err err;
	int rc;

	rc = fp_scenario_load("sc_unknown_obs.yaml", NULL, NULL, 0, NULL, &sc,
			      &err);
	cr_assert_eq(rc, FP_OK, "%s", err.msg);
	cr_assert_eq(sc->n_stop_conditions, 3);
	cr_assert_str_eq(sc->stop_conditions[2].observable, "duplicates");
	fp_scenario_free(sc);
}

Test(scenario, v11_errors)
{
	static const struct want_err cases[] = {
		{"sc_rate_and_ramp.yaml",
		 "sc_rate_and_ramp.yaml:8:9: expected exactly one of rate or "
		 "ramp in load, got both"},
		{"sc_no_rate.yaml",
		 "sc_no_rate.yaml:7:3: missing required key \"rate\" (or "
		 "\"ramp\") in load"},
		{"sc_burst_ramp.yaml",
		 "sc_burst_ramp.yaml:10:64: expected a ramp time above 0 and at "
		 "most half the burst duration (up and down both fit), got "
		 "\"3s\""},
		{"sc_burst_step_ramp.yaml",
		 "sc_burst_step_ramp.yaml:8:56: expected ramp: only with shape: "
		 "ramp, got it with shape: step"},
		{"sc_mix_unknown.yaml",
		 "sc_mix_unknown.yaml:8:21: unknown key \"oversized\" in "
		 "load.mix (expected one of: valid, compatible, missing_field, "
		 "wrong_type, unsupported_version, malformed_json, oversize, "
		 "hash_conflict)"},
		{"sc_mix_zero.yaml",
		 "sc_mix_zero.yaml:8:8: expected load.mix shares that add up to "
		 "more than 0, got a sum of 0"},
		{"sc_kafka_topic.yaml",
		 "sc_kafka_topic.yaml:7:3: missing required key \"kafka\" in "
		 "load (channel: kafka produces to kafka.topic)"},
		{"sc_stop_bad.yaml",
		 "sc_stop_bad.yaml:9:5: expected \"<observable> <op> <number> "
		 "[for <duration>]\" with op one of <, <=, ==, >=, >, got "
		 "\">>\" in \"decision_group_lag >> 5\""},
		{"sc_bound_two.yaml",
		 "sc_bound_two.yaml:8:5: expected exactly one of measure, "
		 "recovery, latency in a bound, got both measure and latency"},
		{"sc_bound_none.yaml",
		 "sc_bound_none.yaml:8:5: expected exactly one of measure, "
		 "recovery, latency in a bound, got none"},
		{"sc_after_phase.yaml",
		 "sc_after_phase.yaml:9:75: expected after: phase:<id> naming a "
		 "phase (phases: load), got \"phase:lod\" (dangling "
		 "reference)"},
		{"sc_after_revert.yaml",
		 "sc_after_revert.yaml:9:75: expected after: revert:<id> naming "
		 "the as: id of an action or inject step (defined: none), got "
		 "\"revert:paused\" (dangling reference)"},
		{"sc_latency_pct.yaml",
		 "sc_latency_pct.yaml:8:37: expected a percentile above 0 and "
		 "at most 100, got \"0\""},
	};
	struct fp_err err;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_assert_eq(sc_fails(cases[i].file, NULL, NULL, 0, NULL, &err),
			     FP_ESPEC, "%s", cases[i].file);
		cr_expect_str_eq(err.msg, cases[i].msg, "\n got: %s\nwant: %s",
				 err.msg, cases[i].msg);
	}
}

/* With an env profile, an observable must be a series the run samples. */
Test(scenario, v11_unknown_observable_with_env)
{
	struct fp_env *env = env_ok("env_v11.yaml");
	struct fp_err err;

	sc_fails("sc_unknown_obs.yaml", env, NULL, 0, NULL, &err);
	assert_msg(err, "sc_unknown_obs.yaml:10:5: unknown observable "
			"\"duplicates\" (known: decision_group_lag, decisions, "
			"ingress_up, ingress_up.latency_ms, degraded, "
			"other_lag; samplers are declared under samplers: in "
			"env profile \"v11\")");
	/* until: and recovery: observables are checked the same way. */
	sc_fails("sc_until_obs.yaml", env, NULL, 0, NULL, &err);
	assert_prefix(err, "sc_until_obs.yaml:11:25: unknown observable "
			   "\"decision_lag\" (known: decision_group_lag, ");
	sc_fails("sc_recovery_obs.yaml", env, NULL, 0, NULL, &err);
	assert_prefix(err, "sc_recovery_obs.yaml:9:28: unknown observable "
			   "\"ingress_down\" (known: ");
	fp_env_free(env);
}
