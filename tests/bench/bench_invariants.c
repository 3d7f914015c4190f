/*
 * bench_invariants.c - benchmark 5: invariant checking at scale. Writes a
 * synthetic N-row ledger.tsv (default 10 M, every event acknowledged with a
 * Kafka origin) and a matching decision log and cases table, loads the
 * latter two into a scratch schema of the local PostgreSQL (untimed setup,
 * with the platform's tuple indexes), then times, --repeat times,
 * fp_judge_run (what harness/run/run.c run_checks calls): the ledger load
 * and the goal's four checks on --lanes connections (default 2, a profile's
 * default judge_connections), then the four other checks one at a time on
 * one connection.
 *
 * A few defects are planted so the checks have something to find at that
 * size: lost events (acknowledged, no decision), duplicate decisions,
 * duplicate cases and decisions with an origin offset no ledgered event
 * has. The program verifies each check reports exactly what was planted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "harness/load/fp_load.h"
#include "invariants/fp_invariant.h"
#include "tests/bench/bench_common.h"

#define RUN_ID "bench-run-0005"
#define CLASS "fraud.v1"
#define TOPIC "fp.bus.traffic.fraud.v1"
#define PARTS 6
#define LEDGER_TABLE "\"fpdrill\".\"ledger_bench_h4\""

struct plant {
	int64_t lost, dup_decisions, dup_cases, unexpected, invalid;
};

/* Event i is sent invalid (missing_field) for the first p->invalid steps;
 * the first of them is nonetheless decided, the second is not quarantined. */
static int invalid_rank(int64_t i, int64_t n, const struct plant *p)
{
	int64_t step = n / (p->invalid + 1);

	if (p->invalid > 0 && i % step == 3 && i / step >= 1 &&
	    i / step <= p->invalid)
		return (int)(i / step);
	return 0;
}

/* Event i (1-based) is lost when i % lost_every == 7 for the first few. */
static int is_lost(int64_t i, int64_t n, const struct plant *p)
{
	int64_t step = n / (p->lost + 1);

	return p->lost > 0 && i % step == 7 && i / step >= 1 &&
	       i / step <= p->lost;
}

static int is_dup(int64_t i, int64_t n, int64_t k)
{
	int64_t step = n / (k + 1);

	return k > 0 && i % step == 11 && i / step >= 1 && i / step <= k;
}

/* The ledger's columns past the 18 this generator knows (the format grows:
 * "expect" came later) as a COPY suffix: the given expect, else \N. */
static void extra_columns(char *out, size_t outsz, const char *expect)
{
	const char *cols = FP_LEDGER_COLUMNS;
	int idx = 0;
	size_t used = 0;

	out[0] = '\0';
	for (const char *p = cols; *p;) {
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		len = strcspn(p, ", ");
		if (len == 0)
			break;
		if (idx++ >= 18)
			used += (size_t)snprintf(out + used, outsz - used, "\t%s",
						 len == 6 && strncmp(p, "expect", 6) == 0
						 ? expect : "\\N");
		if (used >= outsz)
			break;
		p += len;
	}
}

struct paths {
	char ledger[4096], dlog[4096], cases[4096], quar[4096];
};

static int write_files(const char *dir, int64_t n, const struct plant *p,
		       struct paths *ps)
{
	FILE *l, *d, *c, *q;
	int64_t dec = 0, next_off[PARTS] = {0};
	char extra[512], extra_invalid[512];
	static char lbuf[1 << 20], dbuf[1 << 20], cbuf[1 << 20];

	snprintf(ps->ledger, sizeof ps->ledger, "%s/ledger.tsv", dir);
	snprintf(ps->dlog, sizeof ps->dlog, "%s/decision_log.tsv", dir);
	snprintf(ps->cases, sizeof ps->cases, "%s/cases.tsv", dir);
	snprintf(ps->quar, sizeof ps->quar, "%s/quarantine.tsv", dir);
	l = fopen(ps->ledger, "w");
	d = fopen(ps->dlog, "w");
	c = fopen(ps->cases, "w");
	q = fopen(ps->quar, "w");
	if (!l || !d || !c || !q)
		return -1;
	setvbuf(l, lbuf, _IOFBF, sizeof lbuf);
	setvbuf(d, dbuf, _IOFBF, sizeof dbuf);
	setvbuf(c, cbuf, _IOFBF, sizeof cbuf);
	extra_columns(extra_invalid, sizeof extra_invalid, "missing_field");
	extra_columns(extra, sizeof extra, "valid");
	for (int64_t b = 0; b * 64 < n; b++) {
	for (int64_t j = 0; j < 64; j++) {
		/* 37 is prime to 64: a fixed scramble of each block of 64. */
		int64_t i = b * 64 + (j * 37) % 64 + 1;
		uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15u;
		int part = (int)((h >> 17) % PARTS);
		int64_t t = i * 50000, off;
		int inv;

		if (i > n)
			continue;
		inv = invalid_rank(i, n, p);
		off = inv ? 0 : next_off[part]++;
		/* FP_LEDGER_COLUMNS order; an invalid event is rejected (400)
		 * and never reaches Kafka. */
		fprintf(l,
			"%" PRId64 "\te-%020" PRId64 "\toriginal\t1\tload\t"
			"acct-%06d\t%d\t%016" PRIx64 "%016" PRIx64 "%016" PRIx64
			"%016" PRIx64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64,
			i, i, (int)(i % 1000), (int)(i % 100000), h, ~h, h ^ 0x5555,
			h + 1, t, t + 1000, t + 900000);
		if (inv)
			fprintf(l, "\t400\trejected\t\\N\t\\N\t\\N\t\\N\t"
				   "\\N%s\n", extra_invalid);
		else
			fprintf(l, "\t202\tok\taccepted\t" TOPIC "\t%d\t%" PRId64
				   "\t\\N%s\n", part, off, extra);
		if (inv) {
			if (inv == 1)
				fprintf(d, RUN_ID "\t" CLASS "\te-%020" PRId64 "\t"
					   TOPIC "\t%d\t%" PRId64 "\t%" PRId64 "\n",
					i, part, n + 100 + i, ++dec);
			if (inv != 2)
				fprintf(q, RUN_ID "\t" CLASS "\te-%020" PRId64
					   "\tmissing_field\n", i);
			continue;
		}
		if (!is_lost(i, n, p)) {
			int reps = is_dup(i, n, p->dup_decisions) ? 2 : 1;

			for (int r = 0; r < reps; r++)
				fprintf(d,
					RUN_ID "\t" CLASS "\te-%020" PRId64 "\t" TOPIC
					"\t%d\t%" PRId64 "\t%" PRId64 "\n",
					i, part, off, ++dec);
		}
		/* Cases for the high-value tenth, with planted duplicates. */
		if (i % 10 == 0) {
			int reps = is_dup(i / 10, n / 10, p->dup_cases) ? 2 : 1;

			for (int r = 0; r < reps; r++)
				fprintf(c, RUN_ID "\t" CLASS "\te-%020" PRId64 "\n", i);
		}
	}
	}
	/* Decisions of records nobody sent: offsets past every partition's end. */
	for (int64_t u = 0; u < p->unexpected; u++)
		fprintf(d, RUN_ID "\t" CLASS "\tx-%020" PRId64 "\t" TOPIC
			   "\t%d\t%" PRId64 "\t%" PRId64 "\n",
			u, (int)(u % PARTS), n + u, ++dec);
	if (fclose(l) || fclose(d) || fclose(c) || fclose(q))
		return -1;
	return 0;
}

static double secs_since(int64_t t0)
{
	return (double)(fp_mono_ns() - t0) / 1e9;
}

static int exec(struct fp_pg *pg, const char *sql)
{
	struct fp_err err = {0};

	if (fp_pg_exec(pg, sql, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: %s\n  in: %.200s\n", err.msg, sql);
		return -1;
	}
	return 0;
}

static int setup_scratch(struct fp_pg *pg, const struct paths *ps)
{
	struct fp_err err = {0};
	int64_t rows = 0;
	int64_t t0 = fp_mono_ns();

	if (exec(pg, "CREATE SCHEMA IF NOT EXISTS bench; "
		     "DROP TABLE IF EXISTS bench.decision_log, bench.cases, "
		     "bench.quarantine; "
		     "CREATE TABLE bench.decision_log (platform_run_id text NOT NULL, "
		     "event_class text NOT NULL, event_id text NOT NULL, "
		     "origin_topic text NOT NULL, origin_partition int NOT NULL, "
		     "origin_offset bigint NOT NULL, decision_id bigint PRIMARY KEY); "
		     "CREATE TABLE bench.cases (platform_run_id text NOT NULL, "
		     "event_class text NOT NULL, event_id text NOT NULL); "
		     "CREATE TABLE bench.quarantine (platform_run_id text, "
		     "event_class text, event_id text, reason text NOT NULL)"))
		return -1;
	if (fp_pg_copy_in(pg, "COPY bench.decision_log (platform_run_id, "
			      "event_class, event_id, origin_topic, origin_partition, "
			      "origin_offset, decision_id) FROM STDIN",
			  ps->dlog, &rows, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: copy decisions: %s\n", err.msg);
		return -1;
	}
	printf("setup decision_log_rows=%" PRId64 "\n", rows);
	if (fp_pg_copy_in(pg, "COPY bench.cases (platform_run_id, event_class, "
			      "event_id) FROM STDIN",
			  ps->cases, &rows, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: copy cases: %s\n", err.msg);
		return -1;
	}
	printf("setup cases_rows=%" PRId64 "\n", rows);
	if (fp_pg_copy_in(pg, "COPY bench.quarantine (platform_run_id, "
			      "event_class, event_id, reason) FROM STDIN",
			  ps->quar, &rows, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: copy quarantine: %s\n", err.msg);
		return -1;
	}
	printf("setup quarantine_rows=%" PRId64 "\n", rows);
	/* The reference platform's indexes on its contract tables. */
	if (exec(pg, "CREATE INDEX ON bench.decision_log (platform_run_id); "
		     "CREATE INDEX ON bench.decision_log (platform_run_id, event_class, event_id); "
		     "CREATE INDEX ON bench.cases (platform_run_id); "
		     "CREATE INDEX ON bench.cases (platform_run_id, event_class, event_id); "
		     "CREATE INDEX ON bench.quarantine (platform_run_id)") ||
	    exec(pg, "VACUUM ANALYZE bench.decision_log") ||
	    exec(pg, "VACUUM ANALYZE bench.cases") ||
	    exec(pg, "VACUUM ANALYZE bench.quarantine"))
		return -1;
	printf("setup scratch_s=%.1f\n", secs_since(t0));
	return 0;
}

#define NCHECKS 8

static const char *const names[NCHECKS] = {
	"no_lost_events", "no_duplicate_decisions", "no_duplicate_cases",
	"origin_offsets_reconcile", "decided_offsets_gapless",
	"invalid_never_decided", "quarantine_matches_invalid",
	"committed_records_decided_once",
};

struct judge_opts {
	const char *conninfo, *password;
	int lanes;
};

static int one_round(struct fp_pg *pg, const struct judge_opts *jo,
		     const char *lpath, int round, const struct plant *p,
		     int *all_found)
{
	/* gapless: each lost event is a hole (no decision) and each duplicate
	 * decision a record decided twice, all below the decided offsets;
	 * reconcile: the unexpected decisions and the decided invalid event,
	 * whose record was never admitted. */
	const int64_t want[NCHECKS] = {
		p->lost, p->dup_decisions, p->dup_cases,
		p->unexpected + (p->invalid >= 1),
		p->lost + p->dup_decisions, p->invalid >= 1, p->invalid >= 2,
		p->lost + p->dup_decisions,
	};
	struct fp_check_ctx ctx = {
		.pg = pg, .ledger = LEDGER_TABLE,
		.decision_log = "\"bench\".\"decision_log\"",
		.cases = "\"bench\".\"cases\"", .platform_run_id = RUN_ID,
		.event_class = CLASS, .traffic_topic = TOPIC,
		.offsets = "\"bench\".\"offsets\"",
	};
	struct fp_kv quar = {.key = (char *)"table",
			     .value = (char *)"bench.quarantine"};
	struct fp_kvlist none = {NULL, 0}, with_quar = {&quar, 1};
	struct fp_judge_conf jc = {
		.lanes = jo->lanes, .conninfo = jo->conninfo,
		.password = jo->password, .load_ledger = 1, .ledger_tsv = lpath,
	};
	struct fp_judge_check jcs[NCHECKS];
	struct fp_judge_stats js;
	struct fp_err err = {0};
	int64_t tall = fp_mono_ns();
	double t_inv[NCHECKS], t_load, total, load0 = bench_loadavg1();
	int64_t rows;
	int lanes;

	memset(jcs, 0, sizeof jcs);
	for (int k = 0; k < NCHECKS; k++) {
		jcs[k].inv = fp_invariant_find(names[k]);
		jcs[k].with = (k == 5 || k == 6) ? &with_quar : &none;
		if (!jcs[k].inv)
			return -1;
	}
	/* The goal's scope, as a drill's run_checks does it: the ledger load
	 * and the first four checks, in one judgement. */
	if (fp_judge_run(pg, &jc, &ctx, jcs, 4, &js, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: load ledger: %s\n", err.msg);
		return -1;
	}
	total = (double)js.elapsed_ns / 1e9;
	t_load = (double)js.load_ns / 1e9;
	lanes = js.lanes;
	rows = js.ledger_rows;
	/* The group committed everything it read: a final snapshot one past
	 * each partition's last ledgered record (untimed; a run writes it from
	 * Kafka's answer). */
	if (exec(pg, "DROP TABLE IF EXISTS bench.offsets; CREATE UNLOGGED TABLE "
		     "bench.offsets (seq bigserial, t_ms bigint, kind text, "
		     "consumer_group text, topic text, partition int, committed "
		     "bigint, high bigint); INSERT INTO bench.offsets (t_ms, kind, "
		     "consumer_group, topic, partition, committed, high) SELECT 0, "
		     "'final', 'g', topic, partition, max(kafka_offset) + 1, "
		     "max(kafka_offset) + 1 FROM " LEDGER_TABLE " WHERE kafka_offset "
		     "IS NOT NULL GROUP BY topic, partition; ANALYZE bench.offsets"))
		return -1;
	/* The others, timed apart: one at a time on one connection. */
	jc.lanes = 1;
	jc.load_ledger = 0;
	for (int k = 4; k < NCHECKS; k++)
		if (fp_judge_run(pg, &jc, &ctx, &jcs[k], 1, &js, &err) != FP_OK) {
			fprintf(stderr, "bench_invariants: %s\n", err.msg);
			return -1;
		}
	for (int k = 0; k < NCHECKS; k++) {
		const struct fp_check_result *res = &jcs[k].res;

		if (jcs[k].rc) {
			fprintf(stderr, "bench_invariants: %s: %s\n", names[k],
				jcs[k].err.msg);
			return -1;
		}
		t_inv[k] = (double)jcs[k].elapsed_ns / 1e9;
		if (res->count != want[k] || res->status != (want[k] ? FP_CHECK_FAIL
								     : FP_CHECK_PASS))
			*all_found = 0;
		printf("round=%d invariant=%s seconds=%.2f status=%s count=%lld "
		       "planted=%" PRId64 " observed=\"%s\" example=\"%s\"\n",
		       round, names[k], t_inv[k],
		       res->status == FP_CHECK_PASS ? "pass"
		       : res->status == FP_CHECK_FAIL ? "fail" : "unknown",
		       res->count, want[k], res->observed,
		       res->n_examples ? res->examples[0] : "");
	}
	/* total_s is the goal's scope: the load and the first four checks,
	 * wall time on `lanes` connections (the per-check seconds overlap
	 * when lanes > 1). */
	printf("fpdrill_invariants round=%d rows=%" PRId64 " lanes=%d load_s=%.2f"
	       " lost_s=%.2f dupdec_s=%.2f dupcase_s=%.2f offsets_s=%.2f"
	       " total_s=%.2f gapless_s=%.2f invalid_s=%.2f quarantine_s=%.2f"
	       " committed_s=%.2f all_s=%.2f loadavg_start=%.2f loadavg=%.2f\n",
	       round, rows, lanes, t_load,
	       t_inv[0], t_inv[1], t_inv[2], t_inv[3], total, t_inv[4],
	       t_inv[5], t_inv[6], t_inv[7], secs_since(tall), load0,
	       bench_loadavg1());
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	int64_t n = strtoll(bench_opt(argc, argv, "rows", "10000000"), NULL, 10);
	int repeat = atoi(bench_opt(argc, argv, "repeat", "3"));
	const char *dir = bench_opt(argc, argv, "dir", "/tmp/h4-bench");
	const char *conninfo = bench_opt(argc, argv, "conninfo",
					 "host=127.0.0.1 port=27432 dbname=fraud user=fraud");
	const char *pwfile = bench_opt(argc, argv, "password-file",
				       "/tmp/h4-state/secrets/pg_password");
	struct plant p = {5, 5, 3, 2, 3};
	struct judge_opts jo;
	struct paths ps;
	char pw[256] = "";
	struct fp_pg *pg = NULL;
	struct fp_err err = {0};
	FILE *f;
	int all_found = 1;
	int64_t t0 = fp_mono_ns();

	if (!bench_flag(argc, argv, "skip-setup") &&
	    write_files(dir, n, &p, &ps) != 0) {
		perror("bench_invariants: writing the TSV files");
		return 1;
	}
	snprintf(ps.ledger, sizeof ps.ledger, "%s/ledger.tsv", dir);
	snprintf(ps.dlog, sizeof ps.dlog, "%s/decision_log.tsv", dir);
	snprintf(ps.cases, sizeof ps.cases, "%s/cases.tsv", dir);
	snprintf(ps.quar, sizeof ps.quar, "%s/quarantine.tsv", dir);
	printf("setup generate_s=%.1f rows=%" PRId64 "\n", secs_since(t0), n);
	f = fopen(pwfile, "r");
	if (f) {
		if (!fgets(pw, sizeof pw, f))
			pw[0] = '\0';
		pw[strcspn(pw, "\r\n")] = '\0';
		fclose(f);
	}
	if (fp_pg_connect(conninfo, pw[0] ? pw : NULL, &pg, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: %s\n", err.msg);
		return 1;
	}
	if (!bench_flag(argc, argv, "skip-setup") &&
	    setup_scratch(pg, &ps) != 0) {
		fp_pg_close(pg);
		return 1;
	}
	/* fp_judge_run tunes the sessions, as harness/run/run.c run_checks. */
	jo.conninfo = conninfo;
	jo.password = pw[0] ? pw : NULL;
	jo.lanes = atoi(bench_opt(argc, argv, "lanes", "2"));
	for (int r = 1; r <= repeat; r++)
		if (one_round(pg, &jo, ps.ledger, r, &p, &all_found) != 0) {
			fp_pg_close(pg);
			return 1;
		}
	printf("fpdrill_invariants planted_found=%s\n", all_found ? "yes" : "NO");
	if (bench_flag(argc, argv, "cleanup")) {
		exec(pg, "DROP TABLE IF EXISTS " LEDGER_TABLE
			 ", bench.decision_log, bench.cases, bench.quarantine; "
			 "DROP SCHEMA IF EXISTS bench");
		remove(ps.ledger);
		remove(ps.dlog);
		remove(ps.cases);
		remove(ps.quar);
	}
	fp_pg_close(pg);
	return all_found ? 0 : 3;
}
