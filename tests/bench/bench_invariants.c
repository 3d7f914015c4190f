/*
 * bench_invariants.c - benchmark 5: invariant checking at scale. Writes a
 * synthetic N-row ledger.tsv (default 10 M, every event acknowledged with a
 * Kafka origin) and a matching decision log and cases table, loads the
 * latter two into a scratch schema of the local PostgreSQL (untimed setup,
 * with the platform's tuple indexes), then times, --repeat times: the
 * harness's ledger load (the same statements as harness/run/run.c
 * load_ledger: CREATE UNLOGGED TABLE, COPY, two indexes, ANALYZE) and each
 * of the four invariants through fp_invariant_find(name)->check().
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
	int64_t lost, dup_decisions, dup_cases, unexpected;
};

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
 * "expect" came later) as a COPY suffix: "valid" for expect, else \N. */
static void extra_columns(char *out, size_t outsz)
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
						 ? "valid" : "\\N");
		if (used >= outsz)
			break;
		p += len;
	}
}

static int write_files(const char *dir, int64_t n, const struct plant *p,
		       char *lpath, char *dpath, char *cpath, size_t sz)
{
	FILE *l, *d, *c;
	int64_t dec = 0;
	char extra[512];
	static char lbuf[1 << 20], dbuf[1 << 20], cbuf[1 << 20];

	snprintf(lpath, sz, "%s/ledger.tsv", dir);
	snprintf(dpath, sz, "%s/decision_log.tsv", dir);
	snprintf(cpath, sz, "%s/cases.tsv", dir);
	l = fopen(lpath, "w");
	d = fopen(dpath, "w");
	c = fopen(cpath, "w");
	if (!l || !d || !c)
		return -1;
	setvbuf(l, lbuf, _IOFBF, sizeof lbuf);
	setvbuf(d, dbuf, _IOFBF, sizeof dbuf);
	setvbuf(c, cbuf, _IOFBF, sizeof cbuf);
	extra_columns(extra, sizeof extra);
	for (int64_t i = 1; i <= n; i++) {
		int part = (int)(i % PARTS);
		int64_t off = i / PARTS, t = i * 50000;
		uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15u;

		/* FP_LEDGER_COLUMNS order. */
		fprintf(l,
			"%" PRId64 "\te-%020" PRId64 "\toriginal\t1\tload\t"
			"acct-%06d\t%d\t%016" PRIx64 "%016" PRIx64 "%016" PRIx64
			"%016" PRIx64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
			"\t202\tok\taccepted\t" TOPIC "\t%d\t%" PRId64 "\t\\N%s\n",
			i, i, (int)(i % 1000), (int)(i % 100000), h, ~h, h ^ 0x5555,
			h + 1, t, t + 1000, t + 900000, part, off, extra);
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
	/* Decisions of records nobody sent: offsets past every partition's end. */
	for (int64_t u = 0; u < p->unexpected; u++)
		fprintf(d, RUN_ID "\t" CLASS "\tx-%020" PRId64 "\t" TOPIC
			   "\t%d\t%" PRId64 "\t%" PRId64 "\n",
			u, (int)(u % PARTS), n + u, ++dec);
	if (fclose(l) || fclose(d) || fclose(c))
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

static int setup_scratch(struct fp_pg *pg, const char *dpath,
			 const char *cpath)
{
	struct fp_err err = {0};
	int64_t rows = 0;
	int64_t t0 = fp_mono_ns();

	if (exec(pg, "CREATE SCHEMA IF NOT EXISTS bench; "
		     "DROP TABLE IF EXISTS bench.decision_log, bench.cases; "
		     "CREATE TABLE bench.decision_log (platform_run_id text NOT NULL, "
		     "event_class text NOT NULL, event_id text NOT NULL, "
		     "origin_topic text NOT NULL, origin_partition int NOT NULL, "
		     "origin_offset bigint NOT NULL, decision_id bigint PRIMARY KEY); "
		     "CREATE TABLE bench.cases (platform_run_id text NOT NULL, "
		     "event_class text NOT NULL, event_id text NOT NULL)"))
		return -1;
	if (fp_pg_copy_in(pg, "COPY bench.decision_log (platform_run_id, "
			      "event_class, event_id, origin_topic, origin_partition, "
			      "origin_offset, decision_id) FROM STDIN",
			  dpath, &rows, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: copy decisions: %s\n", err.msg);
		return -1;
	}
	printf("setup decision_log_rows=%" PRId64 "\n", rows);
	if (fp_pg_copy_in(pg, "COPY bench.cases (platform_run_id, event_class, "
			      "event_id) FROM STDIN",
			  cpath, &rows, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: copy cases: %s\n", err.msg);
		return -1;
	}
	printf("setup cases_rows=%" PRId64 "\n", rows);
	/* The reference platform's indexes on its two contract tables. */
	if (exec(pg, "CREATE INDEX ON bench.decision_log (platform_run_id); "
		     "CREATE INDEX ON bench.decision_log (platform_run_id, event_class, event_id); "
		     "CREATE INDEX ON bench.cases (platform_run_id); "
		     "CREATE INDEX ON bench.cases (platform_run_id, event_class, event_id)") ||
	    exec(pg, "VACUUM ANALYZE bench.decision_log") ||
	    exec(pg, "VACUUM ANALYZE bench.cases"))
		return -1;
	printf("setup scratch_s=%.1f\n", secs_since(t0));
	return 0;
}

static const char *const names[] = {
	"no_lost_events", "no_duplicate_decisions", "no_duplicate_cases",
	"origin_offsets_reconcile",
};

static int one_round(struct fp_pg *pg, const char *lpath, int round,
		     const struct plant *p, int *all_found)
{
	const int64_t want[4] = {p->lost, p->dup_decisions, p->dup_cases,
				 p->unexpected};
	struct fp_check_ctx ctx = {
		.pg = pg, .ledger = LEDGER_TABLE,
		.decision_log = "\"bench\".\"decision_log\"",
		.cases = "\"bench\".\"cases\"", .platform_run_id = RUN_ID,
		.event_class = CLASS, .traffic_topic = TOPIC,
	};
	struct fp_kvlist with = {NULL, 0};
	struct fp_err err = {0};
	char sql[1024];
	int64_t rows = 0, t0, tall = fp_mono_ns();
	double t_create, t_copy, t_index, t_inv[4], total;

	/* As load_ledger in harness/run/run.c. */
	t0 = fp_mono_ns();
	snprintf(sql, sizeof sql,
		 "CREATE SCHEMA IF NOT EXISTS fpdrill; DROP TABLE IF EXISTS %s; "
		 "CREATE UNLOGGED TABLE %s (%s)",
		 LEDGER_TABLE, LEDGER_TABLE, FP_LEDGER_SQL_COLUMNS);
	if (exec(pg, sql))
		return -1;
	t_create = secs_since(t0);
	t0 = fp_mono_ns();
	snprintf(sql, sizeof sql, "COPY %s (%s) FROM STDIN", LEDGER_TABLE,
		 FP_LEDGER_COLUMNS);
	if (fp_pg_copy_in(pg, sql, lpath, &rows, &err) != FP_OK) {
		fprintf(stderr, "bench_invariants: copy ledger: %s\n", err.msg);
		return -1;
	}
	t_copy = secs_since(t0);
	t0 = fp_mono_ns();
	snprintf(sql, sizeof sql,
		 "CREATE INDEX ON %s (event_id); "
		 "CREATE INDEX ON %s (topic, partition, kafka_offset); ANALYZE %s",
		 LEDGER_TABLE, LEDGER_TABLE, LEDGER_TABLE);
	if (exec(pg, sql))
		return -1;
	t_index = secs_since(t0);
	for (int k = 0; k < 4; k++) {
		const struct fp_invariant *inv = fp_invariant_find(names[k]);
		struct fp_check_result *res = calloc(1, sizeof *res);

		if (!inv || !res) {
			free(res);
			return -1;
		}
		t0 = fp_mono_ns();
		if (inv->check(&ctx, &with, res, &err) != FP_OK) {
			fprintf(stderr, "bench_invariants: %s: %s\n", names[k], err.msg);
			free(res);
			return -1;
		}
		t_inv[k] = secs_since(t0);
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
		free(res);
	}
	total = secs_since(tall);
	printf("fpdrill_invariants round=%d rows=%" PRId64 " create_s=%.2f copy_s=%.2f"
	       " index_analyze_s=%.2f lost_s=%.2f dupdec_s=%.2f dupcase_s=%.2f"
	       " offsets_s=%.2f total_s=%.2f loadavg=%.2f\n",
	       round, rows, t_create, t_copy, t_index, t_inv[0], t_inv[1],
	       t_inv[2], t_inv[3], total, bench_loadavg1());
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
	const char *work_mem = bench_opt(argc, argv, "work-mem", NULL);
	struct plant p = {5, 5, 3, 2};
	char lpath[4096], dpath[4096], cpath[4096], pw[256] = "", sql[128];
	struct fp_pg *pg = NULL;
	struct fp_err err = {0};
	FILE *f;
	int all_found = 1;
	int64_t t0 = fp_mono_ns();

	if (write_files(dir, n, &p, lpath, dpath, cpath, sizeof lpath) != 0) {
		perror("bench_invariants: writing the TSV files");
		return 1;
	}
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
	if (work_mem) {
		snprintf(sql, sizeof sql, "SET work_mem = '%s'", work_mem);
		if (exec(pg, sql))
			return 1;
	}
	if (!bench_flag(argc, argv, "skip-setup") &&
	    setup_scratch(pg, dpath, cpath) != 0) {
		fp_pg_close(pg);
		return 1;
	}
	for (int r = 1; r <= repeat; r++)
		if (one_round(pg, lpath, r, &p, &all_found) != 0) {
			fp_pg_close(pg);
			return 1;
		}
	printf("fpdrill_invariants planted_found=%s work_mem=%s\n",
	       all_found ? "yes" : "NO", work_mem ? work_mem : "server default");
	if (bench_flag(argc, argv, "cleanup")) {
		exec(pg, "DROP TABLE IF EXISTS " LEDGER_TABLE
			 ", bench.decision_log, bench.cases; DROP SCHEMA IF EXISTS bench");
		remove(lpath);
		remove(dpath);
		remove(cpath);
	}
	fp_pg_close(pg);
	return all_found ? 0 : 3;
}
