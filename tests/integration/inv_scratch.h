/*
 * inv_scratch.h - the scratch schema the invariant-level tests judge in: a
 * schema of their own (named after the test and its pid, so parallel runs
 * never meet) on the local stack's PostgreSQL, with the connection, the
 * statement helper and the check context's common identity. Each test file
 * creates its own tables in it; teardown drops it. Include once per test
 * binary: it defines the file's pg, schema and exec_ok.
 */
#ifndef FP_INV_SCRATCH_H
#define FP_INV_SCRATCH_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness/backend/fp_pg.h"
#include "harness/load/fp_load.h"
#include "invariants/fp_invariant.h"
#include "it_util.h"

static struct fp_pg *pg;
static char schema[64];

static void exec_ok(const char *sql)
{
	struct fp_err err = {0};

	cr_assert_eq(fp_pg_exec(pg, sql, &err), FP_OK, "%s: %s", sql, err.msg);
}

/* Connect and (re)create the schema fpdrill_<tag>_<pid>. */
static void scratch_open(const char *tag)
{
	char conninfo[512], sql[256], *pw;
	struct fp_err err = {0};

	it_pg_conninfo(conninfo, sizeof conninfo, &pw);
	cr_assert_eq(fp_pg_connect(conninfo, pw, &pg, &err), FP_OK, "%s",
		     err.msg);
	free(pw);
	snprintf(schema, sizeof schema, "fpdrill_%s_%ld", tag, (long)getpid());
	snprintf(sql, sizeof sql,
		 "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
		 schema);
	exec_ok(sql);
}

/* "schema"."table", as the run hands tables to the checks. */
static void scratch_table(char *out, size_t outsz, const char *table)
{
	snprintf(out, outsz, "\"%s\".\"%s\"", schema, table);
}

/* The identity every synthetic row of these tests carries. */
static void scratch_ctx(struct fp_check_ctx *ctx)
{
	ctx->pg = pg;
	ctx->platform_run_id = "run-1";
	ctx->event_class = "transaction";
	ctx->traffic_topic = "t";
}

/* One ledger.tsv line in FP_LEDGER_COLUMNS order: "\N" in every column but
 * the judged ones given here (values already COPY-escaped). */
static inline void scratch_ledger_line(FILE *f, const char *event_id,
				       const char *outcome, const char *topic,
				       int partition, long offset)
{
	int idx = 0;

	for (const char *p = FP_LEDGER_COLUMNS; *p; idx++) {
		char v[64] = "\\N";
		size_t len;

		p += strspn(p, ", ");
		len = strcspn(p, ", ");
		if (len == 8 && strncmp(p, "event_id", 8) == 0)
			snprintf(v, sizeof v, "%s", event_id);
		else if (len == 7 && strncmp(p, "outcome", 7) == 0)
			snprintf(v, sizeof v, "%s", outcome);
		else if (len == 5 && strncmp(p, "topic", 5) == 0)
			snprintf(v, sizeof v, "%s", topic);
		else if (len == 9 && strncmp(p, "partition", 9) == 0)
			snprintf(v, sizeof v, "%d", partition);
		else if (len == 12 && strncmp(p, "kafka_offset", 12) == 0)
			snprintf(v, sizeof v, "%ld", offset);
		fprintf(f, "%s%s", idx ? "\t" : "", v);
		p += len;
	}
	fputc('\n', f);
}

static void scratch_close(void)
{
	char sql[128];

	snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	exec_ok(sql);
	fp_pg_close(pg);
}

#endif
