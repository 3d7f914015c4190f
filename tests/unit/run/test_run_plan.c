/*
 * test_run_plan.c - what the runner decides before it touches anything: the
 * production guard and blast-radius limits refuse a drill with a message that
 * names the limit, `plan` prints the resolved timeline, and the Prometheus
 * text parser the samplers use reads the right sample. No network.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/run/fp_run.h"
#include "harness/run/run_int.h"

int fp_prometheus_value(const char *text, const char *metric, double *out);

static char fixture[4096], dr02[4096];

static const char *fx(const char *name)
{
	snprintf(fixture, sizeof fixture, "%s/tests/unit/run/fixtures/%s",
		 getenv("FPDRILL_SOURCE_DIR"), name);
	snprintf(dr02, sizeof dr02, "%s/scenarios/dr-02-replay-integrity.yaml",
		 getenv("FPDRILL_SOURCE_DIR"));
	return fixture;
}

static int plan(const char *env, int allow_prod, char *msg, size_t msgsz,
		char **text)
{
	struct fp_run_opts o = {0};
	struct fp_err err = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int code;

	o.env_path = fx(env);
	o.scenario_path = dr02;
	o.allow_production = allow_prod;
	code = fp_run_plan(&o, f, &err);
	fclose(f);
	snprintf(msg, msgsz, "%s", err.msg);
	if (text)
		*text = buf;
	else
		free(buf);
	return code;
}

Test(guard, production_needs_the_flag_and_the_allowlist)
{
	char msg[512];

	cr_expect_eq(plan("env-prod-allow.yaml", 0, msg, sizeof msg, NULL), 2);
	cr_expect(strstr(msg, "--allow-production") != NULL, "%s", msg);
	cr_expect_eq(plan("env-prod-allow.yaml", 1, msg, sizeof msg, NULL), 0,
		     "%s", msg);
	cr_expect_eq(plan("env-prod-noallow.yaml", 1, msg, sizeof msg, NULL), 2);
	cr_expect(strstr(msg, "allow_scenarios") != NULL, "%s", msg);
}

Test(guard, blast_radius_limits_refuse_with_the_limit_named)
{
	char msg[512];

	cr_expect_eq(plan("env-rate.yaml", 0, msg, sizeof msg, NULL), 2);
	cr_expect(strstr(msg, "max_rate") != NULL, "%s", msg);
	cr_expect_eq(plan("env-share.yaml", 0, msg, sizeof msg, NULL), 2);
	cr_expect(strstr(msg, "kafka.replay_window touches 100% of the "
			      "partitions") != NULL,
		  "%s", msg);
	cr_expect_eq(plan("env-duration.yaml", 0, msg, sizeof msg, NULL), 2);
	cr_expect(strstr(msg, "max_duration") != NULL, "%s", msg);
}

Test(plan, prints_the_resolved_timeline)
{
	char msg[512], *text = NULL;

	cr_assert_eq(plan("env-ok.yaml", 0, msg, sizeof msg, &text), 0, "%s",
		     msg);
	cr_expect(strstr(text, "drill DR-02: Replay / backfill integrity"),
		  "%s", text);
	cr_expect(strstr(text, "action pause_decisions -> POST "
			       "http://127.0.0.1:1/p; revert resume_decisions "
			       "-> POST http://127.0.0.1:1/r as decisions_paused"),
		  "%s", text);
	cr_expect(strstr(text, "inject kafka.replay_window {group=g, topic=t, "
			       "to=mark:window_start, wait_empty=30s} "
			       "(one-shot)"),
		  "%s", text);
	cr_expect(strstr(text, "planned: ~2000 events, peak 100.0 events/s"),
		  "%s", text);
	cr_expect(strstr(text, "until decision_group_lag <= 0 held 3.00s "
			       "(timeout 120.00s)"),
		  "%s", text);
	free(text);
}

Test(prometheus, sums_matching_samples_and_ignores_others)
{
	const char *text =
		"# HELP rp_decisions_total decisions\n"
		"# TYPE rp_decisions_total counter\n"
		"rp_decisions_total{outcome=\"approve\"} 10\n"
		"rp_decisions_total{outcome=\"decline\"} 3\n"
		"rp_decisions_total_extra 99\n"
		"rp_degraded 1\n";
	double v = -1;

	cr_expect_eq(fp_prometheus_value(text, "rp_decisions_total", &v), 0);
	cr_expect_float_eq(v, 13.0, 1e-9);
	cr_expect_eq(fp_prometheus_value(
			     text, "rp_decisions_total{outcome=\"decline\"}", &v),
		     0);
	cr_expect_float_eq(v, 3.0, 1e-9);
	cr_expect_eq(fp_prometheus_value(text, "rp_degraded", &v), 0);
	cr_expect_float_eq(v, 1.0, 1e-9);
	cr_expect_eq(fp_prometheus_value(text, "rp_missing", &v), -1);
}

Test(cmp, every_operator)
{
	cr_expect(fp_cmp_holds(FP_CMP_LT, 1, 2));
	cr_expect(!fp_cmp_holds(FP_CMP_LT, 2, 2));
	cr_expect(fp_cmp_holds(FP_CMP_LE, 2, 2));
	cr_expect(fp_cmp_holds(FP_CMP_EQ, 0, 0));
	cr_expect(fp_cmp_holds(FP_CMP_GE, 2, 2));
	cr_expect(fp_cmp_holds(FP_CMP_GT, 3, 2));
	cr_expect_str_eq(fp_cmp_name(FP_CMP_LE), "<=");
}

/* ${run.id} and ${run.platform_run_id} reach every string handed to the
 * target, $${ stays a literal, and the env alone (cleanup's case) expands the
 * same way. */
Test(runvars, expanded_in_env_and_scenario)
{
	struct fp_spec_names names = {fp_run_has_injector,
				      fp_run_has_invariant};
	struct fp_env *env = NULL;
	struct fp_scenario *sc = NULL;
	struct fp_err err = {0};
	const struct fp_action *a;
	char path[4096];

	snprintf(path, sizeof path, "%s", fx("env-runvars.yaml"));
	cr_assert_eq(fp_env_load(path, &env, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_scenario_load(fx("sc-runvars.yaml"), env, NULL, 0,
				      &names, &sc, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(fp_run_vars_apply(env, sc, "ab12cd34", &err), FP_OK);
	cr_expect_str_eq(env->platform_run_id, "fpd-ab12cd34-x");
	a = fp_env_action(env, "promote");
	cr_expect_str_eq(a->url, "http://127.0.0.1:1/promote?run=ab12cd34");
	cr_expect_str_eq(a->body, "{\"actor\":\"fpdrill-ab12cd34\",\"prid\":"
				  "\"fpd-ab12cd34-x\",\"lit\":\"${run.id}\"}");
	cr_expect_str_eq(fp_kv_get(&a->headers, "X-Run"), "ab12cd34");
	a = fp_env_action(env, "restore");
	cr_expect_str_eq(a->argv[2], "fpdrill-ab12cd34");
	cr_expect_str_eq(env->samplers[0].query,
			 "SELECT count(*) FROM t WHERE actor = "
			 "'fpdrill-ab12cd34'");
	cr_expect_str_eq(fp_kv_get(&sc->phases[0].steps[1].with, "argv"),
			 "echo ab12cd34");
	cr_expect_str_eq(fp_kv_get(&sc->checks[0].with, "actor"),
			 "fpdrill-ab12cd34");
	fp_scenario_free(sc);
	fp_env_free(env);

	env = NULL;
	cr_assert_eq(fp_env_load(path, &env, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_run_vars_apply(env, NULL, "ffff0000", &err), FP_OK);
	cr_expect_str_eq(fp_env_action(env, "restore")->argv[2],
			 "fpdrill-ffff0000");
	fp_env_free(env);
}
