/*
 * test_invariants_dr.c - the invariants of DR-03 and DR-04 against the real
 * PostgreSQL of the local stack, on synthetic ledger / decision log /
 * quarantine tables in a scratch schema: each passes on clean data, fails
 * with examples on the planted rows it exists to catch, and is unknown when
 * there is nothing to judge.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/load/fp_load.h"
#include "inv_scratch.h"

static char ledger[128], dlog[128], quar[128], quar_arg[128];
static struct fp_check_ctx ctx;
static struct fp_kv with_kv = {.key = "table"};
static struct fp_kvlist with = {.items = &with_kv, .n = 1};

static void setup(void)
{
	char sql[2048];

	scratch_open("itdr");
	scratch_table(ledger, sizeof ledger, "ledger");
	scratch_table(dlog, sizeof dlog, "decision_log");
	scratch_table(quar, sizeof quar, "quarantine");
	/* the check gets the table as the env profile names it, unquoted */
	snprintf(quar_arg, sizeof quar_arg, "%s.quarantine", schema);
	with_kv.value = quar_arg;
	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (%s);"
		 "CREATE TABLE %s (decision_id bigserial, platform_run_id text,"
		 " event_class text, event_id text, origin_topic text,"
		 " origin_partition int, origin_offset bigint);"
		 "CREATE TABLE %s (quarantine_id bigserial, platform_run_id text,"
		 " event_class text, event_id text, reason text, detail text,"
		 " payload_hash text, received_at timestamptz DEFAULT now());",
		 ledger, FP_LEDGER_SQL_COLUMNS, dlog, quar);
	exec_ok(sql);
	scratch_ctx(&ctx);
	ctx.ledger = ledger;
	ctx.decision_log = dlog;
	ctx.cases = NULL;
}

static void teardown(void)
{
	scratch_close();
}

/* Admitted: e-1 (valid) t[0]@10, e-2 (compatible) t[0]@11, e-3 t[1]@5, each
 * decided once. Invalid: e-4 missing_field (400, quarantined twice: a retry;
 * sets, not counts), e-5 malformed_json and e-6 oversize quarantined; e-7
 * wrong_type throttled and e-8 unsupported_version indeterminate, neither
 * quarantined (neither is required). Another run's quarantine row and
 * decision must be ignored. */
static void load_clean(void)
{
	char sql[4096];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (seq, event_id, kind, attempt, outcome, topic,"
		 " partition, kafka_offset, expect) VALUES"
		 " (1,'e-1','original',1,'ok','t',0,10,'valid'),"
		 " (2,'e-2','original',1,'ok','t',0,11,'compatible'),"
		 " (3,'e-3','original',1,'ok','t',1,5,'valid'),"
		 " (4,'e-4','original',1,'rejected',NULL,NULL,NULL,'missing_field'),"
		 " (4,'e-4','retry',2,'rejected',NULL,NULL,NULL,'missing_field'),"
		 " (5,'e-5','original',1,'rejected',NULL,NULL,NULL,'malformed_json'),"
		 " (6,'e-6','original',1,'rejected',NULL,NULL,NULL,'oversize'),"
		 " (7,'e-7','original',1,'throttled',NULL,NULL,NULL,'wrong_type'),"
		 " (8,'e-8','original',1,'info',NULL,NULL,NULL,'unsupported_version');"
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-1','t',0,10),"
		 " ('run-1','transaction','e-2','t',0,11),"
		 " ('run-1','transaction','e-3','t',1,5),"
		 " ('other-run','transaction','e-9','t',1,6);"
		 "INSERT INTO %s (platform_run_id, event_class, event_id, reason)"
		 " VALUES ('run-1','transaction','e-4','missing_field'),"
		 " ('run-1','transaction','e-4','missing_field'),"
		 " ('run-1','transaction','e-5','malformed_json'),"
		 " ('run-1','transaction','e-6','oversize'),"
		 " ('other-run','transaction','e-9','wrong_type');",
		 ledger, dlog, quar);
	exec_ok(sql);
}

static struct fp_check_result run_check(const char *name)
{
	const struct fp_invariant *inv = fp_invariant_find(name);
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_assert_not_null(inv, "no invariant %s", name);
	cr_assert_eq(inv->check(&ctx, &with, &res, &err), FP_OK, "%s: %s",
		     name, err.msg);
	return res;
}

static int has_example(const struct fp_check_result *res, const char *ex)
{
	for (size_t i = 0; i < res->n_examples; i++)
		if (strcmp(res->examples[i], ex) == 0)
			return 1;
	return 0;
}

TestSuite(invariants_dr, .init = setup, .fini = teardown, .timeout = 60);

Test(invariants_dr, all_pass_on_clean_data)
{
	const char *names[] = {"decided_offsets_gapless",
			       "quarantine_matches_invalid",
			       "invalid_never_decided"};

	load_clean();
	for (size_t i = 0; i < 3; i++) {
		struct fp_check_result res = run_check(names[i]);

		cr_expect_eq(res.status, FP_CHECK_PASS, "%s: %s", names[i],
			     res.observed);
		cr_expect_eq(res.count, 0);
		cr_expect_eq(res.n_examples, 0);
	}
}

Test(invariants_dr, unknown_when_nothing_to_judge)
{
	cr_expect_eq(run_check("decided_offsets_gapless").status,
		     FP_CHECK_UNKNOWN);
	cr_expect_eq(run_check("quarantine_matches_invalid").status,
		     FP_CHECK_UNKNOWN);
	cr_expect_eq(run_check("invalid_never_decided").status,
		     FP_CHECK_UNKNOWN);
}

Test(invariants_dr, quarantine_checks_need_the_table)
{
	const struct fp_invariant *inv =
		fp_invariant_find("quarantine_matches_invalid");
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_expect_neq(inv->check(&ctx, NULL, &res, &err), FP_OK);
	cr_expect(strstr(err.msg, "table") != NULL, "%s", err.msg);
	inv = fp_invariant_find("invalid_never_decided");
	cr_expect_neq(inv->check(&ctx, NULL, &res, &err), FP_OK);
}

Test(invariants_dr, quarantine_checks_refuse_unknown_keys)
{
	struct fp_kv kv[2] = {{.key = "table", .value = quar_arg},
			      {.key = "tabel", .value = quar_arg}};
	struct fp_kvlist typo = {.items = kv, .n = 2};
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_expect_neq(fp_invariant_find("quarantine_matches_invalid")
			      ->check(&ctx, &typo, &res, &err),
		      FP_OK);
	cr_expect(strstr(err.msg, "tabel") != NULL, "%s", err.msg);
}

Test(invariants_dr, gapless_hole_below_decided_offset_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* e-1 at t[0]@10 lost its decision while e-2 at @11 was decided: the
	 * consumer went past offset 10 */
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE event_id = 'e-1'",
		 dlog);
	exec_ok(sql);
	res = run_check("decided_offsets_gapless");
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0],
			 "e-1 @ t[0]@10: 0 decisions, highest decided offset 11");
}

Test(invariants_dr, gapless_undecided_tail_is_not_judged)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* the last record of partition 0 is not decided (yet): above the
	 * highest decided offset, so it is no_lost_events' verdict, not ours */
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE event_id = 'e-2'",
		 dlog);
	exec_ok(sql);
	res = run_check("decided_offsets_gapless");
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	cr_expect(strstr(res.detail, "1 admitted records above") != NULL, "%s",
		  res.detail);
}

Test(invariants_dr, gapless_second_decision_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-3','t',1,5)",
		 dlog);
	exec_ok(sql);
	res = run_check("decided_offsets_gapless");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_str_eq(res.examples[0],
			 "e-3 @ t[1]@5: 2 decisions, highest decided offset 5");
}

Test(invariants_dr, quarantine_missing_row_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* quarantine-drop: answered 400, no row */
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE event_id = 'e-5'",
		 quar);
	exec_ok(sql);
	res = run_check("quarantine_matches_invalid");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0], "missing: e-5 (malformed_json)");
	/* the decision side is untouched */
	cr_expect_eq(run_check("invalid_never_decided").status, FP_CHECK_PASS);
}

Test(invariants_dr, quarantine_wrong_reason_fails_both_ways)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* same count, wrong reason: a count comparison would pass */
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET reason = 'wrong_type' WHERE event_id = 'e-6'",
		 quar);
	exec_ok(sql);
	res = run_check("quarantine_matches_invalid");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 2);
	cr_expect(has_example(&res, "missing: e-6 (oversize)"));
	cr_expect(has_example(&res, "unexpected: e-6 (wrong_type)"));
}

Test(invariants_dr, quarantine_valid_event_is_unexpected)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* a compatible (1.1) event rejected as an unsupported version, and a
	 * row without any event id */
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id, reason)"
		 " VALUES ('run-1','transaction','e-2','unsupported_version'),"
		 " ('run-1','transaction',NULL,'malformed_json')",
		 quar);
	exec_ok(sql);
	res = run_check("quarantine_matches_invalid");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 2);
	cr_expect(has_example(&res, "unexpected: e-2 (unsupported_version)"));
	cr_expect(has_example(&res, "unexpected: (no event_id) (malformed_json)"));
}

Test(invariants_dr, quarantine_admitted_invalid_event_is_missing)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* the platform admitted a wrong_type event instead of refusing it */
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET outcome = 'ok' WHERE event_id = 'e-7'", ledger);
	exec_ok(sql);
	res = run_check("quarantine_matches_invalid");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_str_eq(res.examples[0], "missing: e-7 (wrong_type)");
}

Test(invariants_dr, invalid_event_decided_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-4','t',1,6)",
		 dlog);
	exec_ok(sql);
	res = run_check("invalid_never_decided");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0], "e-4 (1 decisions)");
}
