/*
 * test_judge.c - fp_judge_run against the local stack's PostgreSQL: the
 * ledger is loaded from a file and the checks judge on two connections with
 * the same verdicts as on one, in the caller's order; a ledger that cannot
 * be loaded stops every check that reads it; an extra connection that
 * cannot be opened only means fewer connections.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/load/fp_load.h"
#include "inv_scratch.h"

static char ledger[128], dlog[128], cases[128], quar[128], path[256];
static char conninfo[512], *password;
static struct fp_check_ctx ctx;

/*
 * 200 acked events e-0..e-199 at t[i % 2]@i; the decision log misses e-7
 * (lost) and decides e-9 twice (duplicate); e-3 has two cases.
 */
static void setup(void)
{
	char sql[2048];
	FILE *f;

	scratch_open("judge");
	it_pg_conninfo(conninfo, sizeof conninfo, &password);
	scratch_table(ledger, sizeof ledger, "ledger");
	scratch_table(dlog, sizeof dlog, "decision_log");
	scratch_table(cases, sizeof cases, "cases");
	scratch_table(quar, sizeof quar, "quarantine");
	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (platform_run_id text, event_class text,"
		 " event_id text, reason text);"
		 "CREATE TABLE %s (decision_id bigserial, platform_run_id text,"
		 " event_class text, event_id text, origin_topic text,"
		 " origin_partition int, origin_offset bigint);"
		 "CREATE TABLE %s (case_id bigserial, platform_run_id text,"
		 " event_class text, event_id text);"
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " origin_topic, origin_partition, origin_offset)"
		 " SELECT 'run-1', 'transaction', 'e-' || i, 't', i %% 2, i"
		 " FROM generate_series(0, 199) i WHERE i <> 7"
		 " UNION ALL SELECT 'run-1', 'transaction', 'e-9', 't', 1, 9;"
		 "INSERT INTO %s (platform_run_id, event_class, event_id)"
		 " VALUES ('run-1','transaction','e-3'),"
		 " ('run-1','transaction','e-3'), ('run-1','transaction','e-4');",
		 quar, dlog, cases, dlog, cases);
	exec_ok(sql);
	snprintf(path, sizeof path, "/tmp/fp-it-judge-%ld.tsv", (long)getpid());
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 200; i++) {
		char id[16];

		snprintf(id, sizeof id, "e-%d", i);
		scratch_ledger_line(f, id, "ok", "t", i % 2, i);
	}
	fclose(f);
	scratch_ctx(&ctx);
	ctx.ledger = ledger;
	ctx.decision_log = dlog;
	ctx.cases = cases;
}

static void teardown(void)
{
	remove(path);
	free(password);
	scratch_close();
}

TestSuite(judge, .init = setup, .fini = teardown, .timeout = 60);

/* The ledger-free checks (duplicates) sit between the ledger ones, so a
 * judge that reported in finishing order would mix them up. */
static const char *const names[] = {
	"no_lost_events", "no_duplicate_decisions", "origin_offsets_reconcile",
	"no_duplicate_cases", "invalid_never_decided",
};
#define N (sizeof names / sizeof *names)

static char quar_name[128];
static struct fp_kv quar_kv = {.key = (char *)"table"};
static struct fp_kvlist quar_with = {&quar_kv, 1};

static void prepare(struct fp_judge_check *c)
{
	memset(c, 0, N * sizeof *c);
	/* with: takes the name unquoted, as a profile writes it */
	snprintf(quar_name, sizeof quar_name, "%s.quarantine", schema);
	quar_kv.value = quar_name;
	for (size_t i = 0; i < N; i++) {
		c[i].inv = fp_invariant_find(names[i]);
		cr_assert_not_null(c[i].inv, "%s", names[i]);
		if (strcmp(names[i], "invalid_never_decided") == 0)
			c[i].with = &quar_with;
	}
}

static void judge(int lanes, const char *tsv, const char *lane_conninfo,
		  struct fp_judge_check *c, struct fp_judge_stats *st,
		  int want_rc)
{
	struct fp_judge_conf jc = {
		.lanes = lanes, .conninfo = lane_conninfo,
		.password = password, .load_ledger = 1, .ledger_tsv = tsv,
	};
	struct fp_err err = {0};

	prepare(c);
	cr_assert_eq(fp_judge_run(pg, &jc, &ctx, c, N, st, &err), want_rc,
		     "%s", err.msg);
}

Test(judge, two_connections_judge_like_one_in_the_callers_order)
{
	struct fp_judge_check one[N], two[N];
	struct fp_judge_stats s1, s2;
	const long long want[N] = {1, 1, 0, 1, 0};

	judge(1, path, conninfo, one, &s1, FP_OK);
	judge(2, path, conninfo, two, &s2, FP_OK);
	cr_expect_eq(s1.lanes, 1);
	cr_expect_eq(s2.lanes, 2);
	cr_expect_eq(s1.ledger_rows, 200);
	cr_expect_eq(s2.ledger_rows, 200);
	for (size_t i = 0; i < N; i++) {
		cr_assert(one[i].ran && two[i].ran, "%s did not run", names[i]);
		cr_assert_eq(one[i].rc, FP_OK, "%s: %s", names[i],
			     one[i].err.msg);
		cr_assert_eq(two[i].rc, FP_OK, "%s: %s", names[i],
			     two[i].err.msg);
		cr_expect_eq(two[i].inv, fp_invariant_find(names[i]));
		cr_expect_eq(one[i].res.count, want[i], "%s: %s", names[i],
			     one[i].res.observed);
		cr_expect_eq(two[i].res.status, one[i].res.status, "%s",
			     names[i]);
		cr_expect_eq(two[i].res.count, one[i].res.count, "%s",
			     names[i]);
		cr_expect_str_eq(two[i].res.observed, one[i].res.observed);
		cr_expect_eq(two[i].res.n_examples, one[i].res.n_examples);
	}
	cr_expect_str_eq(two[0].res.examples[0], "e-7");
	cr_expect_str_eq(two[1].res.examples[0], "e-9 (2 decisions)");
	cr_expect_str_eq(two[3].res.examples[0], "e-3 (2 cases)");
	/* A run with no origin problems: the clean check passes. */
	cr_expect_eq(two[2].res.status, FP_CHECK_PASS, "%s",
		     two[2].res.observed);
}

Test(judge, a_ledger_that_cannot_load_stops_the_checks_that_read_it)
{
	struct fp_judge_check c[N];
	struct fp_judge_stats st;
	FILE *f = fopen(path, "a");

	cr_assert_not_null(f);
	fprintf(f, "torn\tline\n"); /* a crash mid-write */
	fclose(f);
	judge(2, path, conninfo, c, &st, FP_EINVAL);
	for (size_t i = 0; i < N; i++)
		if (c[i].inv->needs_ledger)
			cr_expect_eq(c[i].ran, 0, "%s ran without its ledger",
				     names[i]);
		else /* the second connection took them while the load ran */
			cr_expect(c[i].ran && c[i].rc == FP_OK, "%s", names[i]);
}

Test(judge, an_extra_connection_that_fails_leaves_one)
{
	struct fp_judge_check c[N];
	struct fp_judge_stats st;

	/* Nothing listens on port 1. */
	judge(3, path, "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2",
	      c, &st, FP_OK);
	cr_expect_eq(st.lanes, 1);
	for (size_t i = 0; i < N; i++)
		cr_expect(c[i].ran && c[i].rc == FP_OK, "%s: %s", names[i],
			  c[i].err.msg);
	cr_expect_eq(c[0].res.count, 1);
}
