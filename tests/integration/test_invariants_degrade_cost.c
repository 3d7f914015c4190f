/*
 * test_invariants_degrade_cost.c - the DR-05 / DR-07 invariants
 * (degrade_flagged, degraded_decision_latency, cost_guard_tripped,
 * idle_safe) against the real PostgreSQL of the local stack, on synthetic
 * ledger / decision log / posture / receipt / envelope tables in a scratch
 * schema: each passes on clean rows, FAILS with examples on the planted rows
 * it exists to catch, and is unknown when there is nothing to judge.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/load/fp_load.h"
#include "inv_scratch.h"

static char ledger[128], dlog[128], posture[128], receipts[128],
	envelopes[128];
static struct fp_check_ctx ctx;

static void setup(void)
{
	char sql[4096];

	scratch_open("itdc");
	scratch_table(ledger, sizeof ledger, "ledger");
	scratch_table(dlog, sizeof dlog, "decision_log");
	snprintf(posture, sizeof posture, "%s.posture_events", schema);
	snprintf(receipts, sizeof receipts, "%s.cost_receipts", schema);
	snprintf(envelopes, sizeof envelopes, "%s.cost_envelopes", schema);
	/* the columns the invariants read, as in contract §3 / §10 */
	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (%s);"
		 "CREATE TABLE %s (decision_id bigserial, platform_run_id text,"
		 " event_class text, event_id text, phase_id text,"
		 " model_version text, degraded boolean NOT NULL DEFAULT false,"
		 " degrade_reason text, decision_latency_ms double precision,"
		 " decided_at timestamptz);"
		 "CREATE TABLE %s.posture_events (posture_id bigserial, kind text,"
		 " severity text, reason text, action text, at timestamptz);"
		 "CREATE TABLE %s.cost_receipts (receipt_id bigserial,"
		 " envelope_id bigint, window_start timestamptz, window_end"
		 " timestamptz, envelope_units double precision, spend_units"
		 " double precision, events_decided bigint, retrains bigint,"
		 " outcome text, at timestamptz);"
		 "CREATE TABLE %s.cost_envelopes (envelope_id bigint,"
		 " unit_cost_event double precision, unit_cost_retrain double"
		 " precision);",
		 ledger, FP_LEDGER_SQL_COLUMNS, dlog, schema,
		 schema, schema);
	exec_ok(sql);
	scratch_ctx(&ctx);
	ctx.ledger = ledger;
	ctx.decision_log = dlog;
}

static void teardown(void)
{
	scratch_close();
}

static struct fp_check_result run_with(const char *name, size_t n,
				       const char *const *kv)
{
	const struct fp_invariant *inv = fp_invariant_find(name);
	struct fp_kv items[8];
	struct fp_kvlist with = {items, n};
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(items, 0, sizeof items);
	for (size_t i = 0; i < n; i++) {
		items[i].key = (char *)kv[2 * i];
		items[i].value = (char *)kv[2 * i + 1];
	}
	memset(&res, 0, sizeof res);
	cr_assert_not_null(inv, "no invariant %s", name);
	cr_assert_eq(inv->check(&ctx, &with, &res, &err), FP_OK, "%s: %s",
		     name, err.msg);
	return res;
}

/* ---- degrade ------------------------------------------------------------ */

static struct fp_check_result degrade(void)
{
	const char *kv[] = {"phases", "slow,down", "posture", posture};

	return run_with("degrade_flagged", 2, kv);
}

/* A run that was normal, degraded while the feature store was slow and
 * down (entering, switching reason), and normal again (exit). */
static void load_degrade_clean(void)
{
	char sql[4096];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " phase_id, model_version, degraded, degrade_reason,"
		 " decision_latency_ms, decided_at) VALUES"
		 " ('run-1','transaction','e-1','base','m1',false,NULL,1,"
		 "  '2026-01-01 00:00:01+00'),"
		 " ('run-1','transaction','e-2','slow','m1+fallback',true,"
		 "  'features_timeout',21,'2026-01-01 00:00:02+00'),"
		 " ('run-1','transaction','e-3','slow','m1+fallback',true,"
		 "  'features_timeout',23,'2026-01-01 00:00:03+00'),"
		 " ('run-1','transaction','e-4','down','m1+fallback',true,"
		 "  'features_unavailable',0.2,'2026-01-01 00:00:04+00'),"
		 " ('run-1','transaction','e-5','back','m1',false,NULL,1,"
		 "  '2026-01-01 00:00:05+00'),"
		 " ('other','transaction','e-9','slow','m1+fallback',false,"
		 "  NULL,500,'2026-01-01 00:00:03+00');"
		 "INSERT INTO %s (kind, severity, reason, action, at) VALUES"
		 " ('degrade','warning','features_timeout','enter',"
		 "  '2026-01-01 00:00:02.001+00'),"
		 " ('degrade','warning','features_unavailable','enter',"
		 "  '2026-01-01 00:00:04.001+00'),"
		 " ('degrade','info','features_unavailable','exit',"
		 "  '2026-01-01 00:00:05.001+00');",
		 dlog, posture);
	exec_ok(sql);
}

TestSuite(degrade_cost_invariants, .init = setup, .fini = teardown,
	  .timeout = 60);

Test(degrade_cost_invariants, degrade_flagged_passes_on_clean_rows)
{
	struct fp_check_result res;

	load_degrade_clean();
	res = degrade();
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s / %s", res.observed,
		     res.detail);
	cr_expect_eq(res.count, 0);
	cr_expect_eq(res.n_examples, 0);
}

Test(degrade_cost_invariants, degrade_flagged_fails_on_unflagged_fallback)
{
	char sql[512];
	struct fp_check_result res;

	load_degrade_clean();
	/* degrade-unflagged: scored with the fallback, written as normal */
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET degraded = false, degrade_reason = NULL WHERE"
		 " event_id = 'e-3'",
		 dlog);
	exec_ok(sql);
	res = degrade();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0],
			 "e-3: m1+fallback degraded=false reason=null");
}

Test(degrade_cost_invariants, degrade_flagged_fails_on_flag_without_reason)
{
	char sql[512];
	struct fp_check_result res;

	load_degrade_clean();
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET degrade_reason = NULL WHERE event_id = 'e-4'",
		 dlog);
	exec_ok(sql);
	res = degrade();
	cr_assert_eq(res.status, FP_CHECK_FAIL);
	cr_expect_str_eq(res.examples[0],
			 "e-4: m1+fallback degraded=true reason=null");
}

Test(degrade_cost_invariants, degrade_flagged_fails_without_posture_event)
{
	char sql[512];
	struct fp_check_result res;

	load_degrade_clean();
	snprintf(sql, sizeof sql, "DELETE FROM %s WHERE action = 'enter'",
		 posture);
	exec_ok(sql);
	res = degrade();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_expect(strstr(res.examples[0], "no degrade 'enter'") != NULL, "%s",
		  res.examples[0]);
}

Test(degrade_cost_invariants, degrade_flagged_unknown_when_fault_never_hit)
{
	char sql[512];
	struct fp_check_result res;

	/* only normal decisions: the outage never reached the decider */
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " phase_id, model_version, decided_at) VALUES"
		 " ('run-1','transaction','e-1','slow','m1',now())",
		 dlog);
	exec_ok(sql);
	res = degrade();
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	cr_expect(strstr(res.detail, "never took effect") != NULL, "%s",
		  res.detail);
}

Test(degrade_cost_invariants, degraded_latency_pass_fail_unknown)
{
	const char *ok[] = {"max_p99_ms", "60"};
	const char *tight[] = {"max_p99_ms", "10"};
	struct fp_check_result res;

	res = run_with("degraded_decision_latency", 1, ok);
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN);
	load_degrade_clean();
	res = run_with("degraded_decision_latency", 1, ok);
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s", res.observed);
	/* the other run's 500 ms fallback decision is not this run's */
	res = run_with("degraded_decision_latency", 1, tight);
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 2);
	cr_assert_eq(res.n_examples, 2);
	cr_expect_str_eq(res.examples[0], "e-3: 23.0 ms (features_timeout)");
}

/* ---- cost --------------------------------------------------------------- */

/* Envelope 1 (60 units / 5 s, 1 per event): the first window breached at
 * 00:00:10 and the guard throttled at 00:00:01.5; the run's decisions end
 * at 00:00:02, the next window is within. The ledger: 3 acked, 5 throttled.
 * An old breach of another envelope long before the run is out of scope. */
static void load_cost_clean(void)
{
	char sql[4096];

	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " model_version, decided_at) VALUES"
		 " ('run-1','transaction','e-1','m1','2026-01-01 00:00:00.5+00'),"
		 " ('run-1','transaction','e-2','m1','2026-01-01 00:00:01.6+00'),"
		 " ('run-1','transaction','e-3','m1','2026-01-01 00:00:02+00');"
		 "INSERT INTO %s (seq, event_id, kind, attempt, outcome) VALUES"
		 " (1,'e-1','original',1,'ok'),(2,'e-2','original',1,'ok'),"
		 " (3,'e-3','original',1,'ok'),"
		 " (4,'e-4','original',1,'throttled'),"
		 " (5,'e-5','original',1,'throttled'),"
		 " (6,'e-6','original',1,'throttled'),"
		 " (7,'e-7','original',1,'throttled'),"
		 " (8,'e-8','original',1,'throttled');"
		 "INSERT INTO %s.cost_envelopes VALUES (1, 1, 10), (0, 1, 10);"
		 "INSERT INTO %s.cost_receipts (envelope_id, window_start,"
		 " window_end, envelope_units, spend_units, events_decided,"
		 " retrains, outcome, at) VALUES"
		 " (0,'2025-12-31 00:00:00+00','2025-12-31 00:00:05+00',1,9,9,0,"
		 "  'breached','2025-12-31 00:00:05+00'),"
		 " (1,'2026-01-01 00:00:00+00','2026-01-01 00:00:05+00',60,73,"
		 "  73,0,'breached','2026-01-01 00:00:05.1+00'),"
		 " (1,'2026-01-01 00:00:05+00','2026-01-01 00:00:10+00',60,0,0,"
		 "  0,'within','2026-01-01 00:00:10.1+00');"
		 "INSERT INTO %s.posture_events (kind, severity, reason, action,"
		 " at) VALUES ('cost_guard','critical','spend 61 exceeds envelope"
		 " 60 units','throttle','2026-01-01 00:00:01.5+00');",
		 dlog, ledger, schema, schema, schema);
	exec_ok(sql);
}

static struct fp_check_result cost(void)
{
	const char *kv[] = {"receipts", receipts, "posture", posture,
			    "envelopes", envelopes};

	return run_with("cost_guard_tripped", 3, kv);
}

static struct fp_check_result idle(void)
{
	const char *kv[] = {"grace_s", "1", "receipts", receipts, "posture",
			    posture};

	return run_with("idle_safe", 3, kv);
}

Test(degrade_cost_invariants, cost_invariants_pass_on_clean_rows)
{
	struct fp_check_result res;

	load_cost_clean();
	res = cost();
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s / %s", res.observed,
		     res.detail);
	cr_expect_eq(res.n_examples, 0);
	res = idle();
	cr_expect_eq(res.status, FP_CHECK_PASS, "%s / %s", res.observed,
		     res.detail);
}

Test(degrade_cost_invariants, cost_guard_tripped_fails_when_guard_never_trips)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	/* guard-never-trips: the receipt says breached, nobody acted */
	snprintf(sql, sizeof sql, "DELETE FROM %s", posture);
	exec_ok(sql);
	res = cost();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect(strstr(res.examples[0], "spend 73 / envelope 60, breached: "
					  "no throttle by its time") != NULL,
		  "%s", res.examples[0]);
}

Test(degrade_cost_invariants, cost_guard_tripped_fails_on_unexplained_spend)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	/* 73 events at 1 unit each cannot cost 80 */
	snprintf(sql, sizeof sql,
		 "UPDATE %s SET spend_units = 80 WHERE spend_units = 73",
		 receipts);
	exec_ok(sql);
	res = cost();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect(strstr(res.examples[0], "spend is not units x unit cost") !=
			  NULL,
		  "%s", res.examples[0]);
}

Test(degrade_cost_invariants, cost_guard_tripped_fails_on_a_throttle_unexplained)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	snprintf(sql, sizeof sql,
		 "DELETE FROM %s WHERE outcome = 'breached'", receipts);
	exec_ok(sql);
	res = cost();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect(strstr(res.examples[0], "no breached receipt") != NULL, "%s",
		  res.examples[0]);
}

Test(degrade_cost_invariants, cost_invariants_unknown_without_breach)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	snprintf(sql, sizeof sql,
		 "DELETE FROM %s WHERE outcome = 'breached'; DELETE FROM %s",
		 receipts, posture);
	exec_ok(sql);
	res = cost();
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
	res = idle();
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
}

Test(degrade_cost_invariants, idle_safe_fails_on_decisions_after_the_throttle)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	/* the throttle did not stop the data path */
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (platform_run_id, event_class, event_id,"
		 " model_version, decided_at) VALUES ('run-1','transaction',"
		 "'e-4','m1','2026-01-01 00:00:04+00')",
		 dlog);
	exec_ok(sql);
	res = idle();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_eq(res.count, 1);
	cr_assert_eq(res.n_examples, 1);
	cr_expect_str_eq(res.examples[0],
			 "e-4 decided 2.500 s after the throttle");
}

Test(degrade_cost_invariants, idle_safe_judges_from_the_breach_when_unacted)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	/* no throttle: the breach (receipt at 00:00:05.1) is the reference,
	 * and a decision 2 s after it is not rest */
	snprintf(sql, sizeof sql,
		 "DELETE FROM %s; INSERT INTO %s (platform_run_id, event_class,"
		 " event_id, model_version, decided_at) VALUES ('run-1',"
		 "'transaction','e-4','m1','2026-01-01 00:00:07.1+00')",
		 posture, dlog);
	exec_ok(sql);
	res = idle();
	cr_assert_eq(res.status, FP_CHECK_FAIL, "%s", res.observed);
	cr_expect_str_eq(res.examples[0], "e-4 decided 2.000 s after the breach");
}

Test(degrade_cost_invariants, idle_safe_unknown_when_nothing_was_throttled)
{
	char sql[512];
	struct fp_check_result res;

	load_cost_clean();
	snprintf(sql, sizeof sql,
		 "DELETE FROM %s WHERE outcome = 'throttled'", ledger);
	exec_ok(sql);
	res = idle();
	cr_expect_eq(res.status, FP_CHECK_UNKNOWN, "%s", res.observed);
}

Test(degrade_cost_invariants, unknown_with_key_is_refused)
{
	const struct fp_invariant *inv = fp_invariant_find("idle_safe");
	struct fp_kv items[1] = {{.key = (char *)"grace", .value = (char *)"5"}};
	struct fp_kvlist with = {items, 1};
	struct fp_check_result res;
	struct fp_err err = {0};

	memset(&res, 0, sizeof res);
	cr_expect_neq(inv->check(&ctx, &with, &res, &err), FP_OK);
	cr_expect(strstr(err.msg, "unknown with: key 'grace'") != NULL, "%s",
		  err.msg);
}
