/*
 * test_ledger.c - the ledger writes exactly what PostgreSQL COPY (text
 * format) reads back: tabs between columns, \N for NULL, backslash escapes
 * for backslash, tab, newline and carriage return.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/core/fp_fs.h"
#include "harness/load/fp_load.h"
#include "harness/load/fp_load_int.h"

static char *read_all(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	struct fp_err err = {0};

	cr_assert_eq(fp_read_file(path, 1 << 20, &data, &len, &err), FP_OK, "%s",
		     err.msg);
	return data;
}

Test(ledger, escaping_and_nulls)
{
	char path[] = "/tmp/fp-ledger-XXXXXX";
	int fd = mkstemp(path);
	struct fp_ledger *l;
	struct fp_err err = {0};
	struct fp_ledger_row r = {
		.seq = 42,
		.event_id = "e-00000000000000000042",
		.kind = "original",
		.attempt = 1,
		.phase_id = "load\tphase",
		.account_id = "acct-000017",
		.amount_minor = 12345,
		.payload_hash = NULL,
		.intended_ns = 1000,
		.sent_ns = 1500,
		.done_ns = FP_LEDGER_NULL,
		.http_status = 503,
		.outcome = "info",
		.receipt_status = NULL,
		.topic = "t",
		.partition = FP_LEDGER_NULL,
		.kafka_offset = -1,
		.error = "a\\b\tc\nd\re",
		.expect = "hash_conflict",
	};
	char *got;

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fp_ledger_open(path, &l, &err), FP_OK, "%s", err.msg);
	fp_ledger_write(l, &r);
	r.seq = 43;
	r.error = "";
	r.kind = NULL;
	r.expect = NULL;
	fp_ledger_write(l, &r);
	cr_assert_eq(fp_ledger_rows(l), 2);
	cr_assert_eq(fp_ledger_close(l, &err), FP_OK, "%s", err.msg);

	got = read_all(path);
	cr_assert_str_eq(got,
		"42\te-00000000000000000042\toriginal\t1\tload\\tphase\tacct-000017\t"
		"12345\t\\N\t1000\t1500\t\\N\t503\tinfo\t\\N\tt\t\\N\t-1\t"
		"a\\\\b\\tc\\nd\\re\thash_conflict\n"
		"43\te-00000000000000000042\t\\N\t1\tload\\tphase\tacct-000017\t"
		"12345\t\\N\t1000\t1500\t\\N\t503\tinfo\t\\N\tt\t\\N\t-1\t\t\\N\n");
	free(got);
	unlink(path);
}

/* fp_put_u64 (ledger integers, event ids and bodies) writes what printf
 * writes, at every digit count and padding. */
Test(ledger, integers_match_printf)
{
	uint64_t vals[200];
	size_t n = 0;
	uint64_t x = 0x9e3779b97f4a7c15u;

	vals[n++] = 0;
	vals[n++] = UINT64_MAX;
	vals[n++] = (uint64_t)INT64_MAX;
	vals[n++] = (uint64_t)INT64_MAX + 1;
	for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
		vals[n++] = p - 1;
		vals[n++] = p;
		vals[n++] = p + 1;
		vals[n++] = p * 10 - 1;
	}
	while (n < sizeof vals / sizeof vals[0]) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		vals[n++] = x >> (x % 64);
	}
	for (size_t i = 0; i < n; i++)
		for (int w = 1; w <= 20; w++) {
			char want[32], got[32];

			snprintf(want, sizeof want, "%0*" PRIu64, w, vals[i]);
			memset(got, '#', sizeof got);
			*fp_put_u64(got, vals[i], w) = '\0';
			cr_assert_str_eq(got, want, "value %" PRIu64 " width %d",
					 vals[i], w);
		}
}

Test(ledger, integer_columns_extremes)
{
	char path[] = "/tmp/fp-ledger-XXXXXX";
	int fd = mkstemp(path);
	struct fp_ledger *l;
	struct fp_err err = {0};
	struct fp_ledger_row r = {
		.seq = 0,
		.attempt = 9,
		.amount_minor = -1,
		.intended_ns = INT64_MAX,
		.sent_ns = INT64_MIN + 1,
		.done_ns = 10,
		.http_status = 99,
		.partition = 100,
		.kafka_offset = -1234567890123,
	};
	char *got;

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fp_ledger_open(path, &l, &err), FP_OK, "%s", err.msg);
	fp_ledger_write(l, &r);
	cr_assert_eq(fp_ledger_close(l, &err), FP_OK, "%s", err.msg);
	got = read_all(path);
	cr_assert_str_eq(got,
		"0\t\\N\t\\N\t9\t\\N\t\\N\t-1\t\\N\t9223372036854775807\t"
		"-9223372036854775807\t10\t99\t\\N\t\\N\t\\N\t100\t"
		"-1234567890123\t\\N\t\\N\n");
	free(got);
	unlink(path);
}

Test(ledger, column_list_matches_row)
{
	/* 19 columns in the public list, 19 in the SQL definitions; expect
	 * is the last one in both. */
	int cols = 1, sqlcols = 1;

	for (const char *p = FP_LEDGER_COLUMNS; *p; p++)
		cols += *p == ',';
	for (const char *p = FP_LEDGER_SQL_COLUMNS; *p; p++)
		sqlcols += *p == ',';
	cr_assert_eq(cols, 19);
	cr_assert_eq(sqlcols, 19);
	cr_assert(strstr(FP_LEDGER_COLUMNS, ", expect") + strlen(", expect") ==
		  FP_LEDGER_COLUMNS + strlen(FP_LEDGER_COLUMNS));
	cr_assert(strstr(FP_LEDGER_SQL_COLUMNS, ", expect text") +
			  strlen(", expect text") ==
		  FP_LEDGER_SQL_COLUMNS + strlen(FP_LEDGER_SQL_COLUMNS));
}

Test(ledger, open_failure_is_reported)
{
	struct fp_ledger *l = NULL;
	struct fp_err err = {0};

	cr_assert_eq(fp_ledger_open("/nonexistent-dir/x/ledger.tsv", &l, &err), FP_EIO);
	cr_assert_null(l);
	cr_assert(strstr(err.msg, "ledger"));
}

/* The escaping fast path tests 8 bytes at a time: every special byte at
 * every offset of strings up to 20 bytes, plus bytes that only look
 * special to the word test (other control characters, kept verbatim). */
Test(ledger, escapes_at_every_offset)
{
	static const char specials[] = {'\\', '\t', '\n', '\r', '\x01', '\x0b', 'x'};
	char path[] = "/tmp/fp-ledger-XXXXXX";
	int fd = mkstemp(path);
	struct fp_ledger *l;
	struct fp_err err = {0};
	char *want = calloc(1, 1 << 20), *w = want, *got;
	size_t nrows = 0;

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(fp_ledger_open(path, &l, &err), FP_OK, "%s", err.msg);
	for (size_t len = 1; len <= 20; len++)
		for (size_t at = 0; at < len; at++)
			for (size_t k = 0; k < sizeof specials; k++) {
				char text[24];
				struct fp_ledger_row r = {
					.seq = 1, .attempt = 1,
					.amount_minor = FP_LEDGER_NULL,
					.intended_ns = FP_LEDGER_NULL,
					.sent_ns = FP_LEDGER_NULL,
					.done_ns = FP_LEDGER_NULL,
					.http_status = FP_LEDGER_NULL,
					.partition = FP_LEDGER_NULL,
					.kafka_offset = FP_LEDGER_NULL,
				};

				memset(text, 'a' + (int)(len % 26), len);
				text[at] = specials[k];
				text[len] = '\0';
				r.error = text;
				fp_ledger_write(l, &r);
				nrows++;
				w += sprintf(w, "1\t\\N\t\\N\t1\t\\N\t\\N\t\\N\t\\N\t\\N\t"
					     "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t");
				for (size_t i = 0; i < len; i++) {
					switch (text[i]) {
					case '\\': w += sprintf(w, "\\\\"); break;
					case '\t': w += sprintf(w, "\\t"); break;
					case '\n': w += sprintf(w, "\\n"); break;
					case '\r': w += sprintf(w, "\\r"); break;
					default: *w++ = text[i];
					}
				}
				w += sprintf(w, "\t\\N\n");
			}
	cr_assert_eq(fp_ledger_rows(l), (int64_t)nrows);
	cr_assert_eq(fp_ledger_close(l, &err), FP_OK, "%s", err.msg);
	got = read_all(path);
	cr_assert_str_eq(got, want);
	free(got);
	free(want);
	unlink(path);
}
