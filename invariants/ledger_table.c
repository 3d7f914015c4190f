/*
 * ledger_table.c - loads a bundle's ledger.tsv into the harness's own
 * schema for the invariants, and tunes the judging session.
 *
 * Only the columns the invariants' SQL reads (FP_JUDGE_LEDGER_SQL_COLUMNS)
 * go into the table. The file keeps every column, but COPY costs about in
 * proportion to the bytes the server parses: at 10 M rows the full 19
 * columns took 23 s here and these six take 8 s (docs/performance.md §5).
 * The projection is done while the file streams: fields are cut on raw tabs,
 * which is safe because the ledger writer escapes tabs and newlines inside
 * values, and are passed on still COPY-escaped.
 *
 * The table is created and filled in one transaction with COPY FREEZE, so
 * its rows are born frozen and all-visible: the first scans do not rewrite
 * every page to set hint bits. It gets no index. The checks join the
 * ledger as a whole (hash joins, aggregates), where an index only costs its
 * build (about 25 s for the two at 10 M rows).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/load/fp_load.h"
#include "invariants/fp_invariant.h"

#define CHUNK (1u << 20)
#define MAX_COLS 64

/* Position in FP_LEDGER_COLUMNS of each judged column, in judged order. */
static int judged_positions(int *pos, int *npos, int *nfile,
			    struct fp_err *err)
{
	char file_cols[MAX_COLS][32], name[32];
	const char *p;
	int n = 0, k = 0;

	for (p = FP_LEDGER_COLUMNS; *p && n < MAX_COLS;) {
		size_t len;

		p += strspn(p, ", ");
		len = strcspn(p, ", ");
		if (len == 0)
			break;
		snprintf(file_cols[n++], sizeof file_cols[0], "%.*s", (int)len,
			 p);
		p += len;
	}
	/* The SQL list is "name type, name type, ...": take each name. */
	for (p = FP_JUDGE_LEDGER_SQL_COLUMNS; *p;) {
		size_t len;
		int found = -1;

		p += strspn(p, ", ");
		len = strcspn(p, " ,");
		if (len == 0)
			break;
		snprintf(name, sizeof name, "%.*s", (int)len, p);
		for (int i = 0; i < n; i++)
			if (strcmp(file_cols[i], name) == 0)
				found = i;
		if (found < 0 || k >= MAX_COLS)
			return fp_err_set(err, FP_EINVAL,
					  "judged ledger column '%s' is not a "
					  "ledger column", name);
		pos[k++] = found;
		p += strcspn(p, ",");
	}
	*npos = k;
	*nfile = n;
	return FP_OK;
}

struct projector {
	int pos[MAX_COLS], npos, nfile;
	char *out;
	size_t used;
	long long line;
};

/*
 * Appends the judged fields of one line (without its newline) to the output
 * buffer; the caller makes room for the whole line plus its newline.
 */
static int project_line(struct projector *pj, const char *s, size_t len,
			struct fp_err *err)
{
	const char *start[MAX_COLS];
	size_t flen[MAX_COLS];
	int n = 0;
	const char *p = s, *end = s + len;

	pj->line++;
	for (;;) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		const char *fe = tab ? tab : end;

		if (n == MAX_COLS)
			break;
		start[n] = p;
		flen[n++] = (size_t)(fe - p);
		if (!tab)
			break;
		p = tab + 1;
	}
	if (n != pj->nfile)
		return fp_err_set(err, FP_EINVAL,
				  "ledger line %lld has %d columns, expected %d",
				  pj->line, n, pj->nfile);
	for (int k = 0; k < pj->npos; k++) {
		int c = pj->pos[k];

		memcpy(pj->out + pj->used, start[c], flen[c]);
		pj->used += flen[c];
		pj->out[pj->used++] = k + 1 < pj->npos ? '\t' : '\n';
	}
	return FP_OK;
}

/* Streams the projected file into a COPY already begun. */
static int stream_projected(struct fp_pg *pg, FILE *f, int64_t *lines,
			    struct fp_err *err)
{
	struct projector pj = {.line = 0};
	size_t cap = 2 * CHUNK, have = 0;
	char *in = malloc(cap);
	int rc = judged_positions(pj.pos, &pj.npos, &pj.nfile, err);

	pj.out = malloc(cap + 1);
	if (!rc && (!in || !pj.out))
		rc = fp_err_set(err, FP_ENOMEM, "ledger load: out of memory");
	while (!rc) {
		size_t r = fread(in + have, 1, cap - have, f), done = 0;
		int eof = r == 0;

		if (eof && ferror(f)) {
			rc = fp_err_set(err, FP_EIO, "reading the ledger: %s",
					strerror(errno));
			break;
		}
		have += r;
		for (;;) {
			char *nl = memchr(in + done, '\n', have - done);
			size_t len;

			if (!nl && !(eof && have > done))
				break;
			/* COPY also takes a last line without its newline. */
			len = nl ? (size_t)(nl - (in + done)) : have - done;
			if (pj.used && pj.used + len + 1 > cap) {
				rc = fp_pg_copy_put(pg, pj.out, pj.used, err);
				pj.used = 0;
				if (rc)
					break;
			}
			rc = project_line(&pj, in + done, len, err);
			if (rc)
				break;
			done += len + (nl ? 1 : 0);
			if (pj.used >= CHUNK) {
				rc = fp_pg_copy_put(pg, pj.out, pj.used, err);
				pj.used = 0;
				if (rc)
					break;
			}
		}
		if (rc || eof)
			break;
		memmove(in, in + done, have - done);
		have -= done;
		if (have == cap) {
			/* A line longer than the buffer: grow both. */
			char *bigger = realloc(in, cap * 2), *o2;

			if (bigger)
				in = bigger;
			o2 = bigger ? realloc(pj.out, cap * 2 + 1) : NULL;
			if (!o2) {
				rc = fp_err_set(err, FP_ENOMEM,
						"ledger load: out of memory");
				break;
			}
			pj.out = o2;
			cap *= 2;
		}
	}
	if (!rc && pj.used)
		rc = fp_pg_copy_put(pg, pj.out, pj.used, err);
	*lines = pj.line;
	free(in);
	free(pj.out);
	return rc;
}

int fp_invariant_load_ledger(struct fp_pg *pg, const char *tsv_path,
			     const char *table, int64_t *rows,
			     struct fp_err *err)
{
	char sql[1024];
	FILE *f = NULL;
	int64_t lines = 0, copied = 0;
	int rc;

	*rows = 0;
	if (tsv_path) {
		f = fopen(tsv_path, "rb");
		if (!f)
			return fp_err_set(err, FP_EIO, "cannot open '%s': %s",
					  tsv_path, strerror(errno));
	}
	/* FREEZE needs the table created (or truncated) in the transaction
	 * that copies into it. */
	snprintf(sql, sizeof sql,
		 "BEGIN; CREATE SCHEMA IF NOT EXISTS fpdrill; "
		 "DROP TABLE IF EXISTS %s; CREATE UNLOGGED TABLE %s (%s)",
		 table, table, FP_JUDGE_LEDGER_SQL_COLUMNS);
	rc = fp_pg_exec(pg, sql, err);
	if (!rc && f) {
		snprintf(sql, sizeof sql,
			 "COPY %s FROM STDIN WITH (FREEZE)", table);
		rc = fp_pg_copy_begin(pg, sql, err);
		if (!rc) {
			rc = stream_projected(pg, f, &lines, err);
			if (rc) {
				struct fp_err e2 = {0};

				fp_pg_copy_end(pg, err->msg, NULL, &e2);
			} else {
				rc = fp_pg_copy_end(pg, NULL, &copied, err);
			}
		}
	}
	if (f)
		fclose(f);
	if (rc) {
		struct fp_err e2 = {0};

		fp_pg_exec(pg, "ROLLBACK", &e2);
		return rc;
	}
	rc = fp_pg_exec(pg, "COMMIT", err);
	if (rc)
		return rc;
	if (copied != lines)
		return fp_err_set(err, FP_EBACKEND,
				  "ledger load: %lld lines read, %lld rows "
				  "copied", (long long)lines,
				  (long long)copied);
	/* Row counts and distinct estimates for the planner: without them it
	 * guesses from the page count and picks worse joins. */
	snprintf(sql, sizeof sql, "ANALYZE %s", table);
	rc = fp_pg_exec(pg, sql, err);
	*rows = copied;
	return rc;
}

int fp_invariant_tune_session(struct fp_pg *pg, int on, struct fp_err *err)
{
	/* Session settings only (the target may be a managed database whose
	 * server settings are not ours).
	 *
	 * work_mem stays small on purpose: the joins and aggregates over 10 M
	 * keys ran faster in many cache-sized batches than in one hash table of
	 * a gigabyte, whose every probe misses the cache. Backend CPU seconds
	 * at 10 M rows, the anti-join of no_lost_events: 1 MB 11.0, 4 MB 12.0,
	 * 64 MB 12.8, 1 GB 16.2; a 10 M-group hash aggregate: 1 MB 10.5, 4 MB
	 * 12.5, 64 MB 14.7 (docs/performance.md §5). Sorts did not care.
	 *
	 * No parallel workers: on grouping 10 M distinct keys the planner picks
	 * per-worker partial aggregates that reduce nothing and are then sorted
	 * and merged (one such plan took 128 s, 67 s serial); the judge runs
	 * checks on several connections instead (judge.c). No JIT: it compiles
	 * per query and, in the one A/B made, a 10 M-group aggregate took 20 s
	 * with it and 14 s without. */
	return fp_pg_exec(pg,
			  on ? "SET work_mem = '4MB'; "
			       "SET hash_mem_multiplier = 2; "
			       "SET max_parallel_workers_per_gather = 0; "
			       "SET jit = off"
			     : "RESET work_mem; RESET hash_mem_multiplier; "
			       "RESET max_parallel_workers_per_gather; "
			       "RESET jit",
			  err);
}
