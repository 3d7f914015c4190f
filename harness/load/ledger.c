/*
 * ledger.c - the per-attempt ledger, streamed as PostgreSQL COPY text.
 *
 * The ledger is loaded into the harness schema with COPY and checked there
 * with set algebra, so the file is written in exactly the form COPY reads:
 * one row per line, columns in FP_LEDGER_COLUMNS order separated by tabs,
 * \N for NULL and backslash escapes for the characters that would break
 * the framing.
 *
 * Each sender thread formats its rows into a stream of its own (a 256 KiB
 * buffer, integers formatted by hand: stdio was a visible share of the
 * per-event cost). Full buffers go to one writer thread that write()s them
 * to the file, so no sender ever waits for the disk unless the disk falls
 * a whole buffer pool (LEDGER_MAX_BUFS) behind; then the sender blocks, which
 * is honest backpressure rather than unbounded memory. Rows of different
 * streams interleave in buffer-sized runs: COPY does not care about order.
 * The data is made durable (fsync) at phase ends, not per row.
 */
#include "harness/load/fp_load_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEDGER_BUF_BYTES (256u * 1024u)
/* Longest row without its text fields: 8 integers of 20 digits + sign,
 * 19 separators. Text fields are checked one by one. */
#define ROW_INTS_MAX (8 * 21 + 19 + 1)
#define LEDGER_MAX_BUFS 64 /* 16 MiB of rows waiting for the disk at most */

struct lbuf {
	struct lbuf *next;
	size_t len;
	char data[LEDGER_BUF_BYTES];
};

struct fp_ledger_stream {
	struct fp_ledger *l;
	struct lbuf *cur;
	int64_t rows; /* rows in cur, added to l->rows when cur is handed over */
};

struct fp_ledger {
	int fd;
	char *path;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work;  /* writer: a buffer is queued, or stop */
	pthread_cond_t cv_space; /* streams: a buffer is free, or all written */
	struct lbuf *q_head, *q_tail; /* full buffers, oldest first */
	struct lbuf *free_bufs;
	int nbufs;                /* allocated */
	int writing;              /* the writer holds a buffer */
	int stop;
	int io_errno;             /* first write failure, 0 if none */
	atomic_llong rows;
	struct fp_ledger_stream *dflt; /* fp_ledger_write() */
};

static struct lbuf *lbuf_get(struct fp_ledger *l)
{
	struct lbuf *b;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		if (l->free_bufs) {
			b = l->free_bufs;
			l->free_bufs = b->next;
			break;
		}
		if (l->nbufs < LEDGER_MAX_BUFS) {
			b = malloc(sizeof *b);
			if (b) {
				l->nbufs++;
				break;
			}
			if (l->nbufs == 0) /* nothing will ever come back */
				break;
		}
		pthread_cond_wait(&l->cv_space, &l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	if (b) {
		b->next = NULL;
		b->len = 0;
	}
	return b;
}

static void *writer_main(void *arg)
{
	struct fp_ledger *l = arg;
	int failed;

	pthread_setname_np(pthread_self(), "fp-ledger");
	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct lbuf *b = l->q_head;

		if (!b) {
			if (l->stop)
				break;
			pthread_cond_wait(&l->cv_work, &l->mu);
			continue;
		}
		l->q_head = b->next;
		if (!l->q_head)
			l->q_tail = NULL;
		l->writing = 1;
		failed = l->io_errno;
		pthread_mutex_unlock(&l->mu);
		if (!failed) {
			const char *p = b->data;
			size_t left = b->len;

			while (left > 0) {
				ssize_t n = write(l->fd, p, left);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					failed = n < 0 ? errno : EIO;
					break;
				}
				p += n;
				left -= (size_t)n;
			}
		}
		pthread_mutex_lock(&l->mu);
		if (failed && !l->io_errno)
			l->io_errno = failed; /* later buffers are not written */
		l->writing = 0;
		b->next = l->free_bufs;
		l->free_bufs = b;
		pthread_cond_broadcast(&l->cv_space);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Queue the stream's buffer for the writer (if it holds anything). */
static void stream_submit(struct fp_ledger_stream *s)
{
	struct fp_ledger *l = s->l;
	struct lbuf *b = s->cur;

	if (!b || b->len == 0)
		return;
	s->cur = NULL;
	atomic_fetch_add_explicit(&l->rows, s->rows, memory_order_relaxed);
	s->rows = 0;
	pthread_mutex_lock(&l->mu);
	if (l->q_tail)
		l->q_tail->next = b;
	else
		l->q_head = b;
	l->q_tail = b;
	pthread_cond_signal(&l->cv_work);
	pthread_mutex_unlock(&l->mu);
}

int fp_ledger_open(const char *path, struct fp_ledger **out,
		   struct fp_err *err)
{
	struct fp_ledger *l;
	int rc;

	*out = NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return fp_err_set(err, FP_ENOMEM, "ledger: out of memory");
	l->fd = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv_work, NULL);
	pthread_cond_init(&l->cv_space, NULL);
	atomic_init(&l->rows, 0);
	l->path = strdup(path);
	if (!l->path) {
		fp_ledger_close(l, NULL);
		return fp_err_set(err, FP_ENOMEM, "ledger: out of memory");
	}
	l->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (l->fd < 0) {
		int e = errno;

		fp_ledger_close(l, NULL);
		return fp_err_set(err, FP_EIO, "cannot create ledger '%s': %s",
				  path, strerror(e));
	}
	rc = pthread_create(&l->writer, NULL, writer_main, l);
	if (rc != 0) {
		fp_ledger_close(l, NULL);
		return fp_err_set(err, FP_EINTERNAL,
				  "ledger: cannot start the writer thread: %s",
				  strerror(rc));
	}
	l->writer_started = 1;
	if (fp_ledger_stream_new(l, &l->dflt) != 0) {
		fp_ledger_close(l, NULL);
		return fp_err_set(err, FP_ENOMEM, "ledger: out of memory");
	}
	*out = l;
	return FP_OK;
}

int fp_ledger_stream_new(struct fp_ledger *l, struct fp_ledger_stream **out)
{
	struct fp_ledger_stream *s = calloc(1, sizeof *s);

	*out = s;
	if (!s)
		return -1;
	s->l = l;
	return 0;
}

void fp_ledger_stream_flush(struct fp_ledger_stream *s)
{
	if (s)
		stream_submit(s);
}

void fp_ledger_stream_free(struct fp_ledger_stream *s)
{
	if (!s)
		return;
	stream_submit(s);
	if (s->cur) { /* empty: back to the pool */
		pthread_mutex_lock(&s->l->mu);
		s->cur->next = s->l->free_bufs;
		s->l->free_bufs = s->cur;
		pthread_cond_broadcast(&s->l->cv_space);
		pthread_mutex_unlock(&s->l->mu);
	}
	free(s);
}

/* 1 when one of the n bytes at s is a backslash or below 0x0E (tab,
 * newline and carriage return are; the rest are false alarms that only
 * take the slow path), tested 8 bytes at a time. */
static int maybe_special(const char *s, size_t n)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t highs = UINT64_C(0x8080808080808080);
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w, bs;

		memcpy(&w, s + i, 8);
		bs = w ^ (ones * '\\');
		/* has a zero byte (backslash) or a byte < 0x0E */
		if (((bs - ones) & ~bs & highs) |
		    ((w - ones * 0x0E) & ~w & highs))
			return 1;
	}
	for (; i < n; i++)
		if (s[i] == '\\' || (unsigned char)s[i] < 0x0E)
			return 1;
	return 0;
}

/* s (n bytes) as a COPY text field; NULL as \N. */
static char *put_text(char *p, const char *s, size_t n)
{
	if (!s) {
		*p++ = '\\';
		*p++ = 'N';
		return p;
	}
	if (!maybe_special(s, n)) {
		memcpy(p, s, n);
		return p + n;
	}
	for (; *s; s++) {
		switch (*s) {
		case '\\': *p++ = '\\'; *p++ = '\\'; break;
		case '\t': *p++ = '\\'; *p++ = 't'; break;
		case '\n': *p++ = '\\'; *p++ = 'n'; break;
		case '\r': *p++ = '\\'; *p++ = 'r'; break;
		default: *p++ = *s; break;
		}
	}
	return p;
}

static char *put_int(char *p, int64_t v)
{
	if (v == FP_LEDGER_NULL) {
		*p++ = '\\';
		*p++ = 'N';
		return p;
	}
	if (v < 0) {
		*p++ = '-';
		return fp_put_u64(p, (uint64_t)0 - (uint64_t)v, 1);
	}
	return fp_put_u64(p, (uint64_t)v, 1);
}

void fp_ledger_stream_write(struct fp_ledger_stream *s,
			    const struct fp_ledger_row *r)
{
	enum { EVENT_ID, KIND, PHASE, ACCOUNT, HASH, OUTCOME, RECEIPT, TOPIC,
	       ERROR, EXPECT, NTEXT };
	const char *t[NTEXT] = {r->event_id, r->kind, r->phase_id,
				r->account_id, r->payload_hash, r->outcome,
				r->receipt_status, r->topic, r->error,
				r->expect};
	size_t len[NTEXT];
	size_t need = ROW_INTS_MAX;
	struct lbuf *b;
	char *p;

	/* Worst case: every byte escaped, \N for NULL. */
	for (int i = 0; i < NTEXT; i++) {
		len[i] = t[i] ? strlen(t[i]) : 0;
		need += t[i] ? 2 * len[i] : 2;
	}
	if (need > LEDGER_BUF_BYTES) {
		/* A row larger than a buffer (a huge error text) is cut to fit
		 * rather than lost. */
		struct fp_ledger_row cut = *r;
		static const char note[] = "[ledger: error text cut]";

		if (r->error == note) { /* too large even so: reported */
			pthread_mutex_lock(&s->l->mu);
			if (!s->l->io_errno)
				s->l->io_errno = EOVERFLOW;
			pthread_mutex_unlock(&s->l->mu);
			return;
		}
		cut.error = note;
		fp_ledger_stream_write(s, &cut);
		return;
	}
	if (s->cur && LEDGER_BUF_BYTES - s->cur->len < need)
		stream_submit(s);
	if (!s->cur) {
		s->cur = lbuf_get(s->l);
		if (!s->cur) { /* the row is lost: sync reports it */
			pthread_mutex_lock(&s->l->mu);
			s->l->io_errno = ENOMEM;
			pthread_mutex_unlock(&s->l->mu);
			return;
		}
	}
	b = s->cur;
	p = b->data + b->len;
	p = put_int(p, r->seq);
	*p++ = '\t';
	p = put_text(p, t[EVENT_ID], len[EVENT_ID]);
	*p++ = '\t';
	p = put_text(p, t[KIND], len[KIND]);
	*p++ = '\t';
	p = put_int(p, r->attempt);
	*p++ = '\t';
	p = put_text(p, t[PHASE], len[PHASE]);
	*p++ = '\t';
	p = put_text(p, t[ACCOUNT], len[ACCOUNT]);
	*p++ = '\t';
	p = put_int(p, r->amount_minor);
	*p++ = '\t';
	p = put_text(p, t[HASH], len[HASH]);
	*p++ = '\t';
	p = put_int(p, r->intended_ns);
	*p++ = '\t';
	p = put_int(p, r->sent_ns);
	*p++ = '\t';
	p = put_int(p, r->done_ns);
	*p++ = '\t';
	p = put_int(p, r->http_status);
	*p++ = '\t';
	p = put_text(p, t[OUTCOME], len[OUTCOME]);
	*p++ = '\t';
	p = put_text(p, t[RECEIPT], len[RECEIPT]);
	*p++ = '\t';
	p = put_text(p, t[TOPIC], len[TOPIC]);
	*p++ = '\t';
	p = put_int(p, r->partition);
	*p++ = '\t';
	p = put_int(p, r->kafka_offset);
	*p++ = '\t';
	p = put_text(p, t[ERROR], len[ERROR]);
	*p++ = '\t';
	p = put_text(p, t[EXPECT], len[EXPECT]);
	*p++ = '\n';
	b->len = (size_t)(p - b->data);
	s->rows++;
}

void fp_ledger_write(struct fp_ledger *l, const struct fp_ledger_row *r)
{
	fp_ledger_stream_write(l->dflt, r);
}

int64_t fp_ledger_rows(const struct fp_ledger *l)
{
	return (int64_t)atomic_load(&l->rows) + (l->dflt ? l->dflt->rows : 0);
}

int fp_ledger_sync(struct fp_ledger *l, struct fp_err *err)
{
	int e;

	stream_submit(l->dflt);
	/* Everything queued so far reaches the file before the fsync. */
	pthread_mutex_lock(&l->mu);
	while (l->q_head || l->writing)
		pthread_cond_wait(&l->cv_space, &l->mu);
	e = l->io_errno;
	pthread_mutex_unlock(&l->mu);
	if (e)
		return fp_err_set(err, FP_EIO, "writing ledger '%s' failed: %s",
				  l->path, strerror(e));
	if (fsync(l->fd) != 0)
		return fp_err_set(err, FP_EIO, "fsync of ledger '%s' failed: %s",
				  l->path, strerror(errno));
	return FP_OK;
}

int fp_ledger_close(struct fp_ledger *l, struct fp_err *err)
{
	int rc = FP_OK;

	if (!l)
		return FP_OK;
	if (l->writer_started && l->fd >= 0)
		rc = fp_ledger_sync(l, err);
	fp_ledger_stream_free(l->dflt);
	if (l->writer_started) {
		pthread_mutex_lock(&l->mu);
		l->stop = 1;
		pthread_cond_signal(&l->cv_work);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->writer, NULL);
	}
	if (l->fd >= 0 && close(l->fd) != 0 && rc == FP_OK)
		rc = fp_err_set(err, FP_EIO, "closing ledger '%s' failed: %s",
				l->path, strerror(errno));
	while (l->free_bufs) {
		struct lbuf *b = l->free_bufs;

		l->free_bufs = b->next;
		free(b);
	}
	while (l->q_head) { /* only if the writer never ran */
		struct lbuf *b = l->q_head;

		l->q_head = b->next;
		free(b);
	}
	pthread_cond_destroy(&l->cv_work);
	pthread_cond_destroy(&l->cv_space);
	pthread_mutex_destroy(&l->mu);
	free(l->path);
	free(l);
	return rc;
}
