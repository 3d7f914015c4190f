/*
 * ledger.c - the per-attempt ledger, streamed as PostgreSQL COPY text.
 *
 * The ledger is loaded into the harness schema with COPY and checked there
 * with set algebra, so the file is written in exactly the form COPY reads:
 * one row per line, columns in FP_LEDGER_COLUMNS order separated by tabs,
 * \N for NULL and backslash escapes for the characters that would break
 * the framing. Rows go through a large stdio buffer and are written only by
 * the sender thread, so nothing on the hot path blocks on the disk; the
 * data is made durable (fsync) at phase ends, not per row.
 */
#include "harness/load/fp_load_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEDGER_BUF_BYTES (1u << 20)

struct fp_ledger {
	FILE *f;
	char *path;
	char *buf; /* stdio buffer; must outlive f */
	int64_t rows;
};

int fp_ledger_open(const char *path, struct fp_ledger **out,
		   struct fp_err *err)
{
	struct fp_ledger *l;

	*out = NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return fp_err_set(err, FP_ENOMEM, "ledger: out of memory");
	l->path = strdup(path);
	l->buf = malloc(LEDGER_BUF_BYTES);
	if (!l->path || !l->buf) {
		free(l->path);
		free(l->buf);
		free(l);
		return fp_err_set(err, FP_ENOMEM, "ledger: out of memory");
	}
	l->f = fopen(path, "w");
	if (!l->f) {
		int e = errno;

		free(l->path);
		free(l->buf);
		free(l);
		return fp_err_set(err, FP_EIO, "cannot create ledger '%s': %s",
				  path, strerror(e));
	}
	setvbuf(l->f, l->buf, _IOFBF, LEDGER_BUF_BYTES);
	*out = l;
	return FP_OK;
}

void fp_ledger_put_text(FILE *f, const char *s)
{
	if (!s) {
		fputs_unlocked("\\N", f);
		return;
	}
	for (; *s; s++) {
		switch (*s) {
		case '\\': fputs_unlocked("\\\\", f); break;
		case '\t': fputs_unlocked("\\t", f); break;
		case '\n': fputs_unlocked("\\n", f); break;
		case '\r': fputs_unlocked("\\r", f); break;
		default: putc_unlocked(*s, f); break;
		}
	}
}

static void put_int(FILE *f, int64_t v)
{
	char tmp[24];
	int n;

	if (v == FP_LEDGER_NULL) {
		fputs_unlocked("\\N", f);
		return;
	}
	n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
	fwrite_unlocked(tmp, 1, (size_t)n, f);
}

void fp_ledger_write(struct fp_ledger *l, const struct fp_ledger_row *r)
{
	FILE *f = l->f;

	/* One lock for the whole row: the file is private to the sender, the
	 * unlocked stdio calls inside avoid a lock per character. */
	flockfile(f);
	put_int(f, r->seq);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->event_id);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->kind);
	putc_unlocked('\t', f);
	put_int(f, r->attempt);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->phase_id);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->account_id);
	putc_unlocked('\t', f);
	put_int(f, r->amount_minor);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->payload_hash);
	putc_unlocked('\t', f);
	put_int(f, r->intended_ns);
	putc_unlocked('\t', f);
	put_int(f, r->sent_ns);
	putc_unlocked('\t', f);
	put_int(f, r->done_ns);
	putc_unlocked('\t', f);
	put_int(f, r->http_status);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->outcome);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->receipt_status);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->topic);
	putc_unlocked('\t', f);
	put_int(f, r->partition);
	putc_unlocked('\t', f);
	put_int(f, r->kafka_offset);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->error);
	putc_unlocked('\t', f);
	fp_ledger_put_text(f, r->expect);
	putc_unlocked('\n', f);
	funlockfile(f);
	l->rows++;
}

int64_t fp_ledger_rows(const struct fp_ledger *l)
{
	return l->rows;
}

int fp_ledger_sync(struct fp_ledger *l, struct fp_err *err)
{
	if (fflush(l->f) != 0 || ferror(l->f))
		return fp_err_set(err, FP_EIO, "writing ledger '%s' failed: %s",
				  l->path, strerror(errno));
	if (fsync(fileno(l->f)) != 0)
		return fp_err_set(err, FP_EIO, "fsync of ledger '%s' failed: %s",
				  l->path, strerror(errno));
	return FP_OK;
}

int fp_ledger_close(struct fp_ledger *l, struct fp_err *err)
{
	int rc;

	if (!l)
		return FP_OK;
	rc = fp_ledger_sync(l, err);
	if (fclose(l->f) != 0 && rc == FP_OK)
		rc = fp_err_set(err, FP_EIO, "closing ledger '%s' failed: %s",
				l->path, strerror(errno));
	free(l->buf);
	free(l->path);
	free(l);
	return rc;
}
