/*
 * test_invariants_offsets.c - the committed-offset invariants against the
 * real PostgreSQL of the local stack, on synthetic ledger / decision log /
 * offsets / offset-reset tables in a scratch schema (the shapes run.c loads
 * offsets.tsv and offset_resets.tsv into): each passes on clean data, fails
 * with examples on the planted rows it exists to catch, and is unknown when
 * there is nothing to judge.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/load/fp_load.h"
#include "inv_scratch.h"

static char ledger[128], dlog[128], offsets[128], resets[128];
static struct fp_check_ctx ctx;

static void setup(void)
{
	char sql[2048];

	scratch_open("itoff");
	scratch_table(ledger, sizeof ledger, "ledger");
	scratch_table(dlog, sizeof dlog, "decision_log");
	scratch_table(offsets, sizeof offsets, "offsets");
	scratch_table(resets, sizeof resets, "offset_resets");
	/* the offsets tables exactly as run.c's load_offsets creates them */
	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (%s);"
		 "CREATE TABLE %s (decision_id bigserial, platform_run_id text,"
		 " event_class text, event_id text, origin_topic text,"
		 " origin_partition int, origin_offset bigint);"
		 "CREATE TABLE %s (seq bigserial, t_ms bigint, kind text,"
		 " consumer_group text, topic text, partition int,"
		 " committed bigint, high bigint);"
		 "CREATE TABLE %s (t_start_ms bigint, t_end_ms bigint,"
		 " source text, consumer_group text, topic text, partition int,"
		 " from_offset bigint, to_offset bigint);",
		 ledger, FP_LEDGER_SQL_COLUMNS, dlog, offsets,
		 resets);
	exec_ok(sql);
	scratch_ctx(&ctx);
	ctx.ledger = ledger;
	ctx.decision_log = dlog;
	ctx.cases = NULL;
	ctx.offsets = offsets;
	ctx.offset_resets = resets;
}

static void teardown(void)
{
	scratch_close();
}

/* Rows of partition p of topic t, group g, in file order: "t_ms:committed"
 * pairs, committed "-" for none; the last one kind 'final' when final. */
static void offsets_rows(int p, int final, const char *pairs)
{
	char sql[4096], buf[1024], *save = NULL, *tok, *toks[64];
	size_t len, n = 0;

	snprintf(buf, sizeof buf, "%s", pairs);
	for (tok = strtok_r(buf, " ", &save); tok && n < 64;
	     tok = strtok_r(NULL, " ", &save))
		toks[n++] = tok;
	len = (size_t)snprintf(sql, sizeof sql,
			       "INSERT INTO %s (t_ms, kind, consumer_group, "
			       "topic, partition, committed, high) VALUES ",
			       offsets);
	for (size_t i = 0; i < n; i++) {
		const char *c = strchr(toks[i], ':') + 1;

		len += (size_t)snprintf(sql + len, sizeof sql - len,
					"%s(%lld,'%s','g','t',%d,%s,100)",
					i ? "," : "",
					strtoll(toks[i], NULL, 10),
					final && i + 1 == n ? "final" : "sample",
					p, strcmp(c, "-") == 0 ? "NULL" : c);
	}
	exec_ok(sql);
}

static void reset_row(long long t0, long long t1, int p, long long from,
		      long long to)
{
	char sql[512];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s VALUES (%lld,%lld,'replay','g','t',%d,%lld,"
		 "%lld)",
		 resets, t0, t1, p, from, to);
	exec_ok(sql);
}

static struct fp_check_result run_check(const char *name)
{
	const struct fp_invariant *inv = fp_invariant_find(name);
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_assert_not_null(inv, "no invariant %s", name);
	cr_assert_eq(inv->check(&ctx, NULL, &res, &err), FP_OK, "%s: %s",
		     name, err.msg);
	return res;
}

TestSuite(invariants_offsets, .init = setup, .fini = teardown, .timeout = 60);

/* ---- committed_offsets_monotonic --------------------------------------- */

#define MONO "committed_offsets_monotonic"

Test(invariants_offsets, monotonic_passes_on_increasing_offsets)
{
	struct fp_check_result res;

	/* partition 0 has no committed offset at first and one sample the
	 * broker did not answer for: neither is compared */
	offsets_rows(0, 1, "0:- 250:- 500:10 750:10 1000:- 1250:14 1500:20");
	offsets_rows(1, 1, "0:3 250:3 500:4 750:9 1000:9 1250:9 1500:9");
	res = run_check(MONO);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	cr_expect_eq(res.count, 0);
	/* pairs: p0 10-10, 10-14, 14-20; p1 six */
	cr_expect(strstr(res.observed, "among 9 consecutive") != NULL, "%s",
		  res.observed);
}

Test(invariants_offsets, monotonic_decrease_without_replay_fails)
{
	struct fp_check_result res;

	offsets_rows(0, 1, "0:10 250:20 500:15 750:25");
	offsets_rows(1, 1, "0:3 250:4 500:5 750:6");
	res = run_check(MONO);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0],
			 "t[0] at 0.500 s: 20 -> 15 (no replay reset in between)");
}

Test(invariants_offsets, monotonic_decrease_across_replay_passes)
{
	struct fp_check_result res;

	/* the reset ran from 300 to 320 ms, between the samples at 250 and
	 * 500: 20 -> 12 is the replay (target 10, the consumer already moved
	 * on by 2) */
	offsets_rows(0, 1, "0:10 250:20 500:12 750:25");
	reset_row(300, 320, 0, 20, 10);
	res = run_check(MONO);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	cr_expect(strstr(res.detail, "1 decreases across a replay reset") !=
			  NULL,
		  "%s", res.detail);
}

Test(invariants_offsets, monotonic_replay_window_edges)
{
	struct fp_check_result res;

	/* The row at 500 was answered at 500; the row at 250 was asked after
	 * the row at 0 was written, so it may have read before a reset that
	 * ran from 100 to 200 and the drop shows only at 500. A reset that
	 * began at 500 may show at 500 too. */
	offsets_rows(0, 0, "0:20 250:20 500:10");
	reset_row(100, 200, 0, 20, 10);
	offsets_rows(1, 0, "0:20 250:20 500:10");
	reset_row(500, 530, 1, 20, 10);
	res = run_check(MONO);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	/* ... but not a reset that was over before the row at 0 was written
	 * (the row at 250 would show it), nor one that began after the row
	 * at 500 came back */
	offsets_rows(2, 0, "0:20 250:20 500:10");
	reset_row(-20, -1, 2, 20, 10);
	offsets_rows(3, 0, "0:20 250:20 500:10");
	reset_row(501, 530, 3, 20, 10);
	res = run_check(MONO);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 2);
	cr_expect_str_eq(res.examples[0],
			 "t[2] at 0.500 s: 20 -> 10 (no replay reset in between)");
}

Test(invariants_offsets, monotonic_replay_of_another_partition_fails)
{
	struct fp_check_result res;

	offsets_rows(0, 1, "0:10 250:20 500:12");
	offsets_rows(1, 1, "0:10 250:20 500:12");
	reset_row(300, 320, 1, 20, 10);
	res = run_check(MONO);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_expect_str_eq(res.examples[0],
			 "t[0] at 0.500 s: 20 -> 12 (no replay reset in between)");
}

Test(invariants_offsets, monotonic_below_replay_target_fails)
{
	struct fp_check_result res;

	offsets_rows(0, 1, "0:10 250:20 500:7 750:12");
	reset_row(300, 320, 0, 20, 10);
	res = run_check(MONO);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_str_eq(res.examples[0],
			 "t[0] at 0.500 s: 20 -> 7 (below the replay target 10)");
}

Test(invariants_offsets, monotonic_second_rewind_after_replay_fails)
{
	struct fp_check_result res;

	/* the replay is allowed once; the same drop a second later is not */
	offsets_rows(0, 1, "0:10 250:20 500:12 750:20 1000:25 1250:12");
	reset_row(300, 320, 0, 20, 10);
	res = run_check(MONO);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_expect_str_eq(res.examples[0],
			 "t[0] at 1.250 s: 25 -> 12 (no replay reset in between)");
}

Test(invariants_offsets, monotonic_unknown_without_evidence)
{
	struct fp_check_result res;

	res = run_check(MONO);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	/* one sample per partition is no pair either */
	offsets_rows(0, 1, "0:10");
	res = run_check(MONO);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	ctx.offsets = NULL;
	res = run_check(MONO);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	cr_expect(strstr(res.detail, "no committed-offset evidence") != NULL);
}

Test(invariants_offsets, offset_checks_refuse_with_keys)
{
	struct fp_kv kv = {.key = "tabel", .value = "x"};
	struct fp_kvlist typo = {.items = &kv, .n = 1};
	const char *names[] = {MONO, "committed_records_decided_once"};

	for (size_t i = 0; i < 2; i++) {
		struct fp_check_result res;
		struct fp_err err = {0};

		memset(&res, 0, sizeof res);
		cr_expect_neq(fp_invariant_find(names[i])->check(&ctx, &typo,
								 &res, &err),
			      FP_OK);
		cr_expect(strstr(err.msg, "tabel") != NULL, "%s", err.msg);
	}
}

/* ---- committed_records_decided_once ----------------------------------- */

#define ONCE "committed_records_decided_once"

/* Admitted: e-1 t[0]@10, e-2 t[0]@11 (with a duplicate receipt), e-3
 * t[1]@5, each decided once; e-4 rejected (no offset). The group's final
 * committed offsets: t[0] 12, t[1] 6 (everything handed over). Another
 * run's decision at t[1]@6 is ignored. */
static void load_clean(void)
{
	char sql[4096];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (seq, event_id, kind, attempt, outcome, topic,"
		 " partition, kafka_offset) VALUES"
		 " (1,'e-1','original',1,'ok','t',0,10),"
		 " (2,'e-2','original',1,'ok','t',0,11),"
		 " (2,'e-2','retry',2,'dup','t',0,11),"
		 " (3,'e-3','original',1,'ok','t',1,5),"
		 " (4,'e-4','original',1,'rejected',NULL,NULL,NULL);"
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset) VALUES"
		 " ('run-1','transaction','e-1','t',0,10),"
		 " ('run-1','transaction','e-2','t',0,11),"
		 " ('run-1','transaction','e-3','t',1,5),"
		 " ('other-run','transaction','e-9','t',1,6);",
		 ledger, dlog);
	exec_ok(sql);
	offsets_rows(0, 1, "0:8 250:10 500:12 900:12");
	offsets_rows(1, 1, "0:5 250:6 500:6 900:6");
}

Test(invariants_offsets, once_passes_on_clean_data)
{
	struct fp_check_result res;

	load_clean();
	res = run_check(ONCE);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	cr_expect(strstr(res.observed, "among 3 records") != NULL, "%s",
		  res.observed);
	cr_expect(strstr(res.detail, "final snapshot after the drain") != NULL,
		  "%s", res.detail);
}

Test(invariants_offsets, once_committed_tail_without_decision_fails)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* commit-before-write: the last record of partition 0 was committed
	 * (offset 12) but its decision was never written */
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE event_id = 'e-2'",
		 dlog);
	exec_ok(sql);
	res = run_check(ONCE);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0],
			 "e-2 @ t[0]@11: 0 decisions, committed offset 12");
	/* the decision log alone cannot see it: nothing was decided above
	 * offset 11, so the highest decided offset hides the hole */
	res = run_check("decided_offsets_gapless");
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
}

Test(invariants_offsets, once_second_decision_fails)
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
	res = run_check(ONCE);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_str_eq(res.examples[0],
			 "e-3 @ t[1]@5: 2 decisions, committed offset 6");
}

Test(invariants_offsets, once_judges_the_final_committed_offset)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	/* the group only committed up to 11 in partition 0 in the end: e-2
	 * (offset 11) is not handed over yet, so its missing decision is not
	 * this check's business (an earlier sample of 12 does not count) */
	offsets_rows(0, 1, "1000:11");
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE event_id = 'e-2'",
		 dlog);
	exec_ok(sql);
	res = run_check(ONCE);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	cr_expect(strstr(res.detail, "1 records at or above") != NULL, "%s",
		  res.detail);
}

Test(invariants_offsets, once_without_final_snapshot_uses_last_sample)
{
	char sql[512];
	struct fp_check_result res;

	load_clean();
	snprintf(sql, sizeof sql, "UPDATE %s SET kind = 'sample'", offsets);
	exec_ok(sql);
	res = run_check(ONCE);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	cr_expect(strstr(res.detail, "last sample instead") != NULL, "%s",
		  res.detail);
}

Test(invariants_offsets, once_unknown_without_offsets_or_records)
{
	char sql[512];
	struct fp_check_result res;

	/* records, but the group never committed anything */
	load_clean();
	snprintf(sql, sizeof sql, "UPDATE %s SET committed = NULL", offsets);
	exec_ok(sql);
	res = run_check(ONCE);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	cr_expect(strstr(res.detail, "no committed offset") != NULL, "%s",
		  res.detail);
	/* committed offsets, but no record of the run */
	snprintf(sql, sizeof sql,
		 "TRUNCATE %s; TRUNCATE %s; INSERT INTO %s (t_ms, kind, "
		 "consumer_group, topic, partition, committed, high) VALUES "
		 "(0,'final','g','t',0,12,12)",
		 ledger, offsets, offsets);
	exec_ok(sql);
	res = run_check(ONCE);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	ctx.offsets = NULL;
	res = run_check(ONCE);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
}
