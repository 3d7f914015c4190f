/*
 * test_invariants_corridor.c - the promotion-corridor invariants
 * (version_after_rollback, promotion_recorded, provenance_complete) against
 * the real PostgreSQL of the local stack, on synthetic decision log, ledger,
 * registry and lineage tables in a scratch schema: each passes on a clean
 * promote-then-rollback history, fails with examples on the rows of the
 * defect it exists to catch, and is unknown when there is nothing to judge.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inv_scratch.h"

static char dlog[128], t_pl[128], t_mr[128], t_tr[128], t_dm[128];
static struct fp_check_ctx ctx;

/* Run-1 decides e-1 on m-old, e-2 on m-new (promoted at +10 s), e-3 and
 * e-4 (degraded) after the rollback at +20 s; another run's decision on
 * m-new after the rollback must be ignored. Lineage: both versions trained
 * in r-1 on ds-1. */
static void setup(void)
{
	char sql[8192];

	scratch_open("itcor");
	scratch_table(dlog, sizeof dlog, "decision_log");
	/* the checks get the tables as an env profile names them, unquoted */
	snprintf(t_pl, sizeof t_pl, "%s.promotion_ledger", schema);
	snprintf(t_mr, sizeof t_mr, "%s.model_registry", schema);
	snprintf(t_tr, sizeof t_tr, "%s.training_runs", schema);
	snprintf(t_dm, sizeof t_dm, "%s.dataset_manifests", schema);
	snprintf(sql, sizeof sql,
		 "SET search_path = %s;"
		 "CREATE TABLE decision_log (decision_id bigserial,"
		 " platform_run_id text, event_class text, event_id text,"
		 " model_version text, decided_at timestamptz);"
		 "CREATE TABLE promotion_ledger (promotion_id bigint, action text,"
		 " version text, previous_version text, actor text, reason text,"
		 " evidence jsonb, approval text, at timestamptz);"
		 "CREATE TABLE model_registry (version text, training_run_id text);"
		 "CREATE TABLE training_runs (training_run_id text, dataset_id"
		 " text, code_digest text, config_digest text);"
		 "CREATE TABLE dataset_manifests (dataset_id text, fingerprint"
		 " text);"
		 "INSERT INTO decision_log (platform_run_id, event_class, event_id,"
		 " model_version, decided_at) VALUES"
		 " ('run-1','transaction','e-1','m-old','2026-01-01 00:00:00+00'),"
		 " ('run-1','transaction','e-2','m-new','2026-01-01 00:00:15+00'),"
		 " ('run-1','transaction','e-3','m-old','2026-01-01 00:00:25+00'),"
		 " ('run-1','transaction','e-4','m-old+fallback',"
		 "  '2026-01-01 00:00:30+00'),"
		 " ('run-2','transaction','e-9','m-new','2026-01-01 00:00:28+00');"
		 "INSERT INTO promotion_ledger VALUES"
		 " (1,'promote','m-old',NULL,'boot','bootstrap','{\"e\":1}',"
		 "  'bootstrap','2025-12-31 23:00:00+00'),"
		 " (2,'promote','m-new','m-old','fpdrill','canary','{\"e\":1}',"
		 "  'cab-1','2026-01-01 00:00:10+00');"
		 "INSERT INTO model_registry VALUES ('m-old','r-1'),('m-new','r-1');"
		 "INSERT INTO training_runs VALUES ('r-1','ds-1','c','k');"
		 "INSERT INTO dataset_manifests VALUES ('ds-1','fp-1');"
		 "RESET search_path;",
		 schema);
	exec_ok(sql);
	scratch_ctx(&ctx);
	ctx.ledger = dlog; /* unused by these checks */
	ctx.decision_log = dlog;
	ctx.cases = NULL;
}

static void teardown(void)
{
	scratch_close();
}

/* The rollback row: version is what it claims to restore. */
static void add_rollback(const char *version, const char *previous)
{
	char sql[1024];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s VALUES (3,'rollback','%s','%s','fpdrill',"
		 "'criteria tripped','{\"e\":1}',NULL,'2026-01-01 00:00:20+00')",
		 t_pl, version, previous);
	exec_ok(sql);
}

static struct fp_check_result check_with(const char *name, struct fp_kv *kv,
					 size_t n)
{
	const struct fp_invariant *inv = fp_invariant_find(name);
	struct fp_kvlist with = {.items = kv, .n = n};
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_assert_not_null(inv, "no invariant %s", name);
	cr_assert_eq(inv->check(&ctx, &with, &res, &err), FP_OK, "%s: %s",
		     name, err.msg);
	return res;
}

static struct fp_check_result var(void)
{
	struct fp_kv kv[] = {{.key = "promotion_ledger", .value = t_pl},
			     {.key = "grace", .value = "2s"}};

	return check_with("version_after_rollback", kv, 2);
}

static struct fp_check_result recorded(void)
{
	struct fp_kv kv[] = {{.key = "promotion_ledger", .value = t_pl},
			     {.key = "actor", .value = "fpdrill"}};

	return check_with("promotion_recorded", kv, 2);
}

static struct fp_check_result provenance(const char *bound)
{
	char max_response[32];

	snprintf(max_response, sizeof max_response, "%s", bound);
	struct fp_kv kv[] = {{.key = "promotion_ledger", .value = t_pl},
			     {.key = "model_registry", .value = t_mr},
			     {.key = "training_runs", .value = t_tr},
			     {.key = "dataset_manifests", .value = t_dm},
			     {.key = "sample", .value = "all"},
			     {.key = "max_response", .value = max_response}};

	return check_with("provenance_complete", kv, 6);
}

static int has_example_prefix(const struct fp_check_result *res,
			      const char *prefix)
{
	for (size_t i = 0; i < res->n_examples; i++)
		if (strncmp(res->examples[i], prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

TestSuite(invariants_corridor, .init = setup, .fini = teardown,
	  .timeout = 60);

Test(invariants_corridor, all_pass_on_clean_rollback)
{
	struct fp_check_result res;

	add_rollback("m-old", "m-new");
	res = var();
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s | %s", res.observed,
		     res.detail);
	res = recorded();
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s | %s", res.observed,
		     res.detail);
	res = provenance("2s");
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s | %s", res.observed,
		     res.detail);
	cr_expect(strstr(res.observed, "4 of 4 sampled") != NULL, "%s",
		  res.observed);
}

/* rollback-noop: the row names the current version as restored, and the
 * data path goes on serving it. The row cannot vouch for itself: the last
 * known good comes from the promote row. */
Test(invariants_corridor, version_after_rollback_fails_on_swapped_rollback)
{
	struct fp_check_result res;

	add_rollback("m-new", "m-old");
	{
		char sql[512];

		snprintf(sql, sizeof sql,
			 "UPDATE %s SET model_version = 'm-new' WHERE "
			 "event_id IN ('e-3','e-4')",
			 dlog);
		exec_ok(sql);
	}
	res = var();
	cr_expect_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 3, "2 decisions + the ledger row: %lld",
		     res.count);
	cr_expect(has_example_prefix(&res, "ledger: rollback #3 names m-new"),
		  "no ledger example");
	cr_expect(has_example_prefix(&res, "decision 3 (e-3)"),
		  "no decision example");
	/* the ledger still records both actions: that is a different claim */
	res = recorded();
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
}

Test(invariants_corridor, version_after_rollback_unknown_without_rollback)
{
	struct fp_check_result res = var();

	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
}

/* A candidate that never served: the drill did not exercise a rollback. */
Test(invariants_corridor, version_after_rollback_unknown_when_never_served)
{
	struct fp_check_result res;
	char sql[512];

	add_rollback("m-old", "m-new");
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET model_version = 'm-old' WHERE event_id = 'e-2'",
		 dlog);
	exec_ok(sql);
	res = var();
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
}

Test(invariants_corridor, promotion_recorded_fails_without_rollback_row)
{
	struct fp_check_result res = recorded();

	cr_expect_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_expect(has_example_prefix(&res, "no 'rollback' row after ledger "
					   "row #2"),
		  "%s", res.n_examples ? res.examples[0] : "(none)");
}

/* lineage-missing: a version without a training run went live. */
Test(invariants_corridor, provenance_complete_fails_on_missing_training_run)
{
	struct fp_check_result res;
	char sql[512];

	add_rollback("m-old", "m-new");
	snprintf(sql, sizeof sql,
		 "DELETE FROM %s WHERE version = 'm-new'; INSERT INTO %s VALUES"
		 " ('m-new', NULL)",
		 t_mr, t_mr);
	exec_ok(sql);
	res = provenance("2s");
	cr_expect_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_expect_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0],
			 "decision 2 (e-2) model m-new: no run ref, training "
			 "run, digests, manifest");
	cr_expect(strstr(res.observed, "3 of 4 sampled") != NULL, "%s",
		  res.observed);
}

/* A decision whose version was never promoted (no promote row at or before
 * it) and a promotion without approval both break the chain. */
Test(invariants_corridor, provenance_complete_fails_without_approved_promotion)
{
	struct fp_check_result res;
	char sql[512];

	snprintf(sql, sizeof sql,
		 "UPDATE %s SET approval = '' WHERE promotion_id = 2", t_pl);
	exec_ok(sql);
	res = provenance("2s");
	cr_expect_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_str_eq(res.examples[0],
			 "decision 2 (e-2) model m-new: no approval");
}

/* The response-time bound is part of the verdict: both numbers stated. */
Test(invariants_corridor, provenance_complete_fails_when_slow)
{
	struct fp_check_result res = provenance("0ms");

	cr_expect_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect(strstr(res.detail, "bound 0 ms, EXCEEDED") != NULL, "%s",
		  res.detail);
	cr_expect(strstr(res.observed, "audit query") != NULL, "%s",
		  res.observed);
}

Test(invariants_corridor, unknown_when_run_decided_nothing)
{
	ctx.platform_run_id = "run-none";
	cr_expect_eq(provenance("2s").status, FP_CHECK_UNKNOWN);
	cr_expect_eq(recorded().status, FP_CHECK_UNKNOWN);
	cr_expect_eq(var().status, FP_CHECK_UNKNOWN);
}

Test(invariants_corridor, unknown_with_key_is_an_error)
{
	const struct fp_invariant *inv =
		fp_invariant_find("provenance_complete");
	struct fp_kv kv[] = {{.key = "max_respons", .value = "2s"}};
	struct fp_kvlist with = {.items = kv, .n = 1};
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_expect_eq(inv->check(&ctx, &with, &res, &err), FP_EINVAL);
}
