/*
 * test_invariants.c - every invariant against the real PostgreSQL of the
 * local stack, on synthetic ledger / decision log / case tables in a scratch
 * schema: each one passes on clean data, fails with examples on the planted
 * violation it exists to catch, and is unknown when there is nothing to judge.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/load/fp_load.h"
#include "inv_scratch.h"

static char ledger[128], dlog[128], cases[128];
static struct fp_check_ctx ctx;

static void setup(void)
{
	char sql[2048];

	scratch_open("it");
	scratch_table(ledger, sizeof ledger, "ledger");
	scratch_table(dlog, sizeof dlog, "decision_log");
	scratch_table(cases, sizeof cases, "cases");
	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (%s);"
		 "CREATE TABLE %s (decision_id bigserial, platform_run_id text,"
		 " event_class text, event_id text, origin_topic text,"
		 " origin_partition int, origin_offset bigint);"
		 "CREATE TABLE %s (case_id bigserial, platform_run_id text,"
		 " event_class text, event_id text);",
		 ledger, FP_LEDGER_SQL_COLUMNS, dlog, cases);
	exec_ok(sql);
	scratch_ctx(&ctx);
	ctx.ledger = ledger;
	ctx.decision_log = dlog;
	ctx.cases = cases;
}

static void teardown(void)
{
	scratch_close();
}

/* Three acked events at t[0]@10,11 and t[1]@5, each decided once; e-3 has a
 * case. A retry of e-1 got the duplicate receipt (same offset). */
static void load_clean(void)
{
	char sql[2048];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (seq, event_id, kind, attempt, outcome, topic,"
		 " partition, kafka_offset) VALUES"
		 " (1,'e-1','original',1,'ok','t',0,10),"
		 " (2,'e-2','original',1,'ok','t',0,11),"
		 " (3,'e-3','original',1,'ok','t',1,5),"
		 " (1,'e-1','retry',2,'dup','t',0,10);"
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-1','t',0,10),"
		 " ('run-1','transaction','e-2','t',0,11),"
		 " ('run-1','transaction','e-3','t',1,5),"
		 " ('other-run','transaction','e-9','t',1,6);"
		 "INSERT INTO %s (platform_run_id, event_class, event_id)"
		 " VALUES ('run-1','transaction','e-3');",
		 ledger, dlog, cases);
	exec_ok(sql);
}

static struct fp_check_result run_check(const char *name)
{
	const struct fp_invariant *inv = fp_invariant_find(name);
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_assert_not_null(inv, "no invariant %s", name);
	cr_assert_eq(inv->check(&ctx, NULL, &res, &err), FP_OK, "%s: %s", name,
		     err.msg);
	return res;
}

TestSuite(invariants, .init = setup, .fini = teardown, .timeout = 60);

Test(invariants, all_pass_on_clean_data)
{
	const char *names[] = {"no_lost_events", "no_duplicate_decisions",
			       "no_duplicate_cases", "origin_offsets_reconcile"};

	load_clean();
	for (size_t i = 0; i < 4; i++) {
		struct fp_check_result res = run_check(names[i]);

		cr_expect_eq(res.status, FP_CHECK_PASS, "%s: %s", names[i],
			     res.observed);
		cr_expect_eq(res.count, 0);
		cr_expect_eq(res.n_examples, 0);
	}
}

Test(invariants, unknown_when_nothing_to_judge)
{
	cr_expect_eq(run_check("no_lost_events").status, FP_CHECK_UNKNOWN);
	cr_expect_eq(run_check("no_duplicate_decisions").status,
		     FP_CHECK_UNKNOWN);
	cr_expect_eq(run_check("no_duplicate_cases").status, FP_CHECK_UNKNOWN);
	cr_expect_eq(run_check("origin_offsets_reconcile").status,
		     FP_CHECK_UNKNOWN);
}

Test(invariants, lost_event_fails_with_its_id)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	snprintf(sql, sizeof sql,
		 "DELETE FROM %s WHERE event_id = 'e-2'", dlog);
	exec_ok(sql);
	res = run_check("no_lost_events");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0], "e-2");
}

Test(invariants, duplicate_decision_fails_with_example)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* the same tuple decided again from a replayed record */
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-2','t',0,11)",
		 dlog);
	exec_ok(sql);
	res = run_check("no_duplicate_decisions");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0], "e-2 (2 decisions)");
	/* other invariants are not fooled into failing */
	cr_expect_eq(run_check("origin_offsets_reconcile").status,
		     FP_CHECK_PASS);
	cr_expect_eq(run_check("no_lost_events").status, FP_CHECK_PASS);
}

Test(invariants, duplicate_case_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id)"
		 " VALUES ('run-1','transaction','e-3')",
		 cases);
	exec_ok(sql);
	res = run_check("no_duplicate_cases");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_str_eq(res.examples[0], "e-3 (2 cases)");
}

Test(invariants, origin_offset_of_unsent_record_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* a decision of a record no ledgered event was admitted at */
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET origin_offset = 99 WHERE event_id = 'e-3'",
		 dlog);
	exec_ok(sql);
	res = run_check("origin_offsets_reconcile");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 1);
	cr_expect_str_eq(res.examples[0], "e-3 @ t[1]@99: no ledgered event");
}

Test(invariants, origin_offset_carrying_another_event_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET origin_offset = 11 WHERE event_id = 'e-1'",
		 dlog);
	exec_ok(sql);
	res = run_check("origin_offsets_reconcile");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_str_eq(res.examples[0],
			 "e-1 @ t[0]@11: ledgered as another event");
}

Test(invariants, indeterminate_send_is_recovered_not_lost)
{
	char sql[1024];
	struct fp_check_result res;

	load_clean();
	/* e-4 timed out at the client (no receipt) but was decided */
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (seq, event_id, kind, attempt, outcome) VALUES"
		 " (4,'e-4','original',1,'info');"
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-4','t',1,7)",
		 ledger, dlog);
	exec_ok(sql);
	res = run_check("no_lost_events");
	cr_expect_eq(res.status, FP_CHECK_PASS);
	cr_expect(strstr(res.detail, "1 indeterminate") != NULL, "%s",
		  res.detail);
	res = run_check("origin_offsets_reconcile");
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
}

Test(invariants, origin_offset_shared_by_two_ledgered_events_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* e-5 got a receipt for e-2's record: two events at t[0]@11, so the
	 * decision of e-2 there, though it names its own event, is wrong. */
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (seq, event_id, kind, attempt, outcome, topic,"
		 " partition, kafka_offset) VALUES"
		 " (5,'e-5','original',1,'ok','t',0,11)",
		 ledger);
	exec_ok(sql);
	res = run_check("origin_offsets_reconcile");
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0], "e-2 @ t[0]@11: 2 ledgered events");
}

/* fp_invariant_load_ledger: a ledger file in FP_LEDGER_COLUMNS order becomes
 * the judged columns, escapes kept; a torn line is refused, not loaded. */
Test(invariants, ledger_load_projects_the_judged_columns)
{
	char path[256], table[160], sql[512];
	int64_t rows = -1, n = 0;
	struct fp_err err = {0};
	FILE *f;

	snprintf(path, sizeof path, "/tmp/fp-it-ledger-%ld.tsv", (long)getpid());
	scratch_table(table, sizeof table, "ledger_loaded");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	/* Every column "\N" except the judged ones; an escaped tab inside
	 * the topic. */
	scratch_ledger_line(f, "e-1", "ok", "t\\tx", 3, 40);
	scratch_ledger_line(f, "e-2", "ok", "t\\tx", 3, 41);
	fclose(f);
	cr_assert_eq(fp_invariant_load_ledger(pg, path, table, &rows, &err),
		     FP_OK, "%s", err.msg);
	cr_expect_eq(rows, 2);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM %s WHERE topic = E't\\tx' AND partition "
		 "= 3 AND kafka_offset IN (40, 41) AND outcome = 'ok' AND "
		 "expect IS NULL",
		 table);
	cr_assert_eq(fp_pg_query_i64(pg, sql, 0, NULL, &n, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_eq(n, 2);

	/* A line cut short (a crash mid-write) is an error, and the previous
	 * table is left as it was: the load is one transaction. */
	f = fopen(path, "a");
	cr_assert_not_null(f);
	fprintf(f, "3\te-3\n");
	fclose(f);
	cr_expect_eq(fp_invariant_load_ledger(pg, path, table, &rows, &err),
		     FP_EINVAL);
	cr_expect(strstr(err.msg, "line 3") != NULL, "%s", err.msg);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
	cr_assert_eq(fp_pg_query_i64(pg, sql, 0, NULL, &n, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_eq(n, 2);
	remove(path);

	/* No file: an empty table (a drill without load). */
	cr_assert_eq(fp_invariant_load_ledger(pg, NULL, table, &rows, &err),
		     FP_OK, "%s", err.msg);
	cr_expect_eq(rows, 0);
}
