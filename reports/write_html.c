/*
 * write_html.c - report.html: the human report as one self-contained HTML5
 * file (inline CSS, charts as inline SVG drawn here, no script, no external
 * URL), so it opens offline from an S3 download or a CI artifact and a
 * Content-Security-Policy of default-src 'none' can forbid every fetch.
 *
 * Sections mirror report.md (docs/report-schema.md "report.html"), plus three
 * charts that share one x axis, seconds since the run start:
 *   1. rate     - originals and re-sends (retries, hash_conflict re-sends)
 *                 sent per second (ledger.tsv sent_ns);
 *   2. latency  - per-bucket p50 / p99 of done - intended (corrected for
 *                 coordinated omission) and of done - sent (service), in ms,
 *                 on a log scale so a 30 s stall does not flatten 5 ms;
 *   3. lag      - decision_group_lag from samples.tsv (maximum per 100 ms
 *                 bucket, so a short spike survives aggregation).
 * Every chart carries the phase bands and the fault / revert / stop markers
 * of the timeline.
 *
 * Memory is constant in the ledger size: the ledger is streamed once, line
 * by line, into at most HTML_MAX_BUCKETS time buckets, each holding counts
 * and two log-linear histograms (16 sub-buckets per power of two, so a
 * percentile is off by at most ~3 %). A run longer than HTML_MAX_BUCKETS
 * buckets (1024 s of ledger) doubles the bucket width (merging neighbours
 * exactly) until it fits, so a 10 M-row soak costs the same ~4 MB as a
 * 10-row smoke test.
 *
 * Time alignment: ledger times are monotonic ns since the load generator
 * was created (within about a second of the run start), the timeline's are
 * monotonic ns since the run start. The first event of a load phase is due
 * exactly when that phase's generator window opens, right after the
 * timeline's "phase <id> start" entry; so the offset that maps the smallest
 * intended_ns onto the start entry of its phase aligns the whole ledger
 * (both clocks are the same monotonic clock, one offset is enough). Without
 * such an entry the ledger is drawn unshifted and the caption says so.
 *
 * Everything that came from a spec, a backend or a file is escaped
 * (& < > " ' and invalid UTF-8 / control bytes), so a drill title holding
 * "<script>" stays text.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "reports/report_internal.h"

/* ---- constant-memory time buckets -------------------------------------- */

#define HTML_MAX_BUCKETS 1024
/* Histogram of one bucket: bin 0 holds < 2^10 ns (1 us); then 16 linear
 * sub-bins per power of two up to 2^38 ns (~275 s); larger values share the
 * top bin. */
#define HB_SUB_BITS 4
#define HB_SUB (1 << HB_SUB_BITS)
#define HB_MIN_EXP 10
#define HB_MAX_EXP 38
#define HB_BINS (1 + (HB_MAX_EXP - HB_MIN_EXP) * HB_SUB)
/* A timestamp past this is garbage (it would coarsen every bucket). */
#define T_MAX_NS (INT64_C(100) * 86400 * FP_NS_PER_S)

struct lhist {
	uint32_t c[HB_BINS];
};

struct lbucket {
	uint32_t orig, retry;    /* attempts sent in this bucket */
	struct lhist corr, svc;  /* latency of attempts intended in it */
};

struct sbucket {
	double max;
	int has;
};

/* Buckets of width width_ns starting at t = 0, at most HTML_MAX_BUCKETS. */
struct tbuckets {
	unsigned char *v;
	size_t n, cap, elem;
	int64_t width_ns;
	void (*merge)(void *dst, const void *src);
};

static void sat_add(uint32_t *d, uint32_t s)
{
	*d = UINT32_MAX - *d < s ? UINT32_MAX : *d + s;
}

static void lbucket_merge(void *dst, const void *src)
{
	struct lbucket *d = dst;
	const struct lbucket *s = src;

	sat_add(&d->orig, s->orig);
	sat_add(&d->retry, s->retry);
	for (size_t i = 0; i < HB_BINS; i++) {
		sat_add(&d->corr.c[i], s->corr.c[i]);
		sat_add(&d->svc.c[i], s->svc.c[i]);
	}
}

static void sbucket_merge(void *dst, const void *src)
{
	struct sbucket *d = dst;
	const struct sbucket *s = src;

	if (s->has && (!d->has || s->max > d->max)) {
		d->max = s->max;
		d->has = 1;
	}
}

static void tb_init(struct tbuckets *t, size_t elem, int64_t width_ns,
		    void (*merge)(void *, const void *))
{
	memset(t, 0, sizeof *t);
	t->elem = elem;
	t->width_ns = width_ns;
	t->merge = merge;
}

/* Halve the number of buckets by merging neighbours (exact for counts,
 * histograms and maxima), doubling the width. */
static void tb_coarsen(struct tbuckets *t)
{
	size_t half = (t->n + 1) / 2;

	if (!t->n) {
		/* Nothing stored yet (the first time is far out). */
		t->width_ns *= 2;
		return;
	}
	for (size_t i = 0; i < half; i++) {
		unsigned char *d = t->v + i * t->elem;

		if (i > 0)
			memcpy(d, t->v + 2 * i * t->elem, t->elem);
		if (2 * i + 1 < t->n)
			t->merge(d, t->v + (2 * i + 1) * t->elem);
	}
	memset(t->v + half * t->elem, 0, (t->n - half) * t->elem);
	t->n = half;
	t->width_ns *= 2;
}

/* @returns the bucket holding t_ns (0 <= t_ns < T_MAX_NS), or NULL when out
 *          of memory. */
static void *tb_at(struct tbuckets *t, int64_t t_ns)
{
	size_t idx = (size_t)(t_ns / t->width_ns);

	while (idx >= HTML_MAX_BUCKETS) {
		tb_coarsen(t);
		idx = (size_t)(t_ns / t->width_ns);
	}
	if (idx >= t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		unsigned char *nv;

		while (ncap <= idx)
			ncap *= 2;
		if (ncap > HTML_MAX_BUCKETS)
			ncap = HTML_MAX_BUCKETS;
		nv = realloc(t->v, ncap * t->elem);
		if (!nv)
			return NULL;
		memset(nv + t->cap * t->elem, 0, (ncap - t->cap) * t->elem);
		t->v = nv;
		t->cap = ncap;
	}
	if (idx >= t->n)
		t->n = idx + 1;
	return t->v + idx * t->elem;
}

static void tb_free(struct tbuckets *t)
{
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

static size_t hist_bin(int64_t v)
{
	int k;

	if (v < (INT64_C(1) << HB_MIN_EXP))
		return 0;
	k = 63 - __builtin_clzll((unsigned long long)v);
	if (k >= HB_MAX_EXP)
		return HB_BINS - 1;
	return 1 + (size_t)(k - HB_MIN_EXP) * HB_SUB +
	       (size_t)((v >> (k - HB_SUB_BITS)) & (HB_SUB - 1));
}

/* Midpoint of a bin, in ns: the value a percentile reports. */
static double hist_bin_mid(size_t bin)
{
	size_t k, sub;

	if (bin == 0)
		return (double)(1 << HB_MIN_EXP) / 2.0;
	k = (bin - 1) / HB_SUB + HB_MIN_EXP;
	sub = (bin - 1) % HB_SUB;
	return ((double)(HB_SUB + sub) + 0.5) *
	       ldexp(1.0, (int)k - HB_SUB_BITS);
}

static void hist_record(struct lhist *h, int64_t v)
{
	size_t b = hist_bin(v);

	if (h->c[b] < UINT32_MAX)
		h->c[b]++;
}

/* @returns the q-th percentile in ms, or NAN for an empty histogram. */
static double hist_q_ms(const struct lhist *h, double q)
{
	uint64_t total = 0, rank, seen = 0;

	for (size_t i = 0; i < HB_BINS; i++)
		total += h->c[i];
	if (!total)
		return NAN;
	rank = (uint64_t)ceil(q / 100.0 * (double)total);
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < HB_BINS; i++) {
		seen += h->c[i];
		if (seen >= rank)
			return hist_bin_mid(i) / 1e6;
	}
	return hist_bin_mid(HB_BINS - 1) / 1e6;
}

/* ---- ledger.tsv and samples.tsv ----------------------------------------- */

/* Leading columns of FP_LEDGER_COLUMNS this file reads, by index; anything
 * after the last one (a column appended later) is ignored. */
enum {
	COL_KIND = 2,
	COL_PHASE = 4,
	COL_INTENDED = 8,
	COL_SENT = 9,
	COL_DONE = 10,
	COL_NEED = 11,
};

struct ledger_acc {
	struct tbuckets tb;
	long long rows, bad, sent;
	int present;              /* ledger.tsv exists and was opened */
	int64_t min_intended;     /* INT64_MAX until a row has one */
	char first_phase[128];    /* phase_id of that row */
	char error[160];          /* why the file could not be read, or "" */
};

struct samples_acc {
	struct tbuckets tb;
	long long points;
	char error[160];
};

/* 1 = value, 0 = NULL (\N), -1 = malformed. */
static int parse_i64(const char *s, int64_t *v)
{
	char *end;
	long long x;

	if (strcmp(s, "\\N") == 0)
		return 0;
	if (!*s)
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*v = (int64_t)x;
	return 1;
}

/* COPY text unescaping of one field (only \\ \t \n \r matter for ids). */
static void copy_unescaped(char *out, size_t outsz, const char *in)
{
	size_t o = 0;

	for (; *in && o + 1 < outsz; in++) {
		if (*in == '\\' && in[1]) {
			in++;
			out[o++] = *in == 't' ? '\t'
				   : *in == 'n' ? '\n'
				   : *in == 'r' ? '\r'
						: *in;
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static int t_ok(int64_t t)
{
	return t >= 0 && t < T_MAX_NS;
}

/* One ledger row. @returns 0, 1 for a malformed row, -1 out of memory. */
static int ledger_row(struct ledger_acc *a, char *line)
{
	char *f[COL_NEED];
	size_t nf = 0;
	int64_t in = 0, sent = 0, done = 0;
	int has_in, has_sent, has_done;
	struct lbucket *b;

	line[strcspn(line, "\r\n")] = '\0';
	for (char *p = line; nf < COL_NEED;) {
		f[nf++] = p;
		p = strchr(p, '\t');
		if (!p)
			break;
		*p++ = '\0';
	}
	if (nf < COL_NEED)
		return 1;
	has_in = parse_i64(f[COL_INTENDED], &in);
	has_sent = parse_i64(f[COL_SENT], &sent);
	has_done = parse_i64(f[COL_DONE], &done);
	if (has_in < 0 || has_sent < 0 || has_done < 0 ||
	    (has_in && !t_ok(in)) || (has_sent && !t_ok(sent)) ||
	    (has_done && !t_ok(done)))
		return 1;
	if (has_in && in < a->min_intended) {
		a->min_intended = in;
		copy_unescaped(a->first_phase, sizeof a->first_phase,
			       f[COL_PHASE]);
	}
	if (has_sent) {
		b = tb_at(&a->tb, sent);
		if (!b)
			return -1;
		/* Anything but a first send (retry, the conflicting re-send
		 * of a hash_conflict event, a kind added later) is a re-send:
		 * the originals line must match the planned rate. */
		if (strcmp(f[COL_KIND], "original") == 0)
			sat_add(&b->orig, 1);
		else
			sat_add(&b->retry, 1);
		a->sent++;
	}
	if (!has_done || (!has_in && !has_sent))
		return 0;
	/* Latency is filed under the time the event was due: a stall then
	 * shows where it happened, not when the backlog drained. */
	b = tb_at(&a->tb, has_in ? in : sent);
	if (!b)
		return -1;
	if (has_in && done >= in)
		hist_record(&b->corr, done - in);
	if (has_sent && done >= sent)
		hist_record(&b->svc, done - sent);
	return 0;
}

static int is_missing(int e)
{
	return e == ENOENT || e == ENOTDIR;
}

static int read_ledger(const char *dir, struct ledger_acc *a,
		       struct fp_err *err)
{
	char path[4096], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int rc = FP_OK;

	tb_init(&a->tb, sizeof(struct lbucket), FP_NS_PER_S, lbucket_merge);
	a->min_intended = INT64_MAX;
	if (fp_path_join(path, sizeof path, dir, "ledger.tsv"))
		return FP_OK;
	f = fopen(path, "r");
	if (!f) {
		/* No ledger is normal for a drill without load; an unreadable
		 * one is said in the caption rather than losing the report. */
		if (!is_missing(errno))
			snprintf(a->error, sizeof a->error, "%s",
				 strerror(errno));
		return FP_OK;
	}
	a->present = 1;
	while (getline(&line, &cap, f) > 0) {
		int x;

		/* A header line, if a tool added one, is not data. */
		if (a->rows == 0 && a->bad == 0 && strncmp(line, "seq\t", 4) == 0)
			continue;
		x = ledger_row(a, line);
		if (x < 0) {
			rc = fp_err_set(err, FP_ENOMEM,
					"report.html: out of memory");
			break;
		}
		if (x)
			a->bad++;
		else
			a->rows++;
	}
	if (ferror(f) && !a->error[0])
		snprintf(a->error, sizeof a->error, "read error");
	free(line);
	fclose(f);
	return rc;
}

static int read_samples(const char *dir, struct samples_acc *a,
			struct fp_err *err)
{
	char path[4096], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int rc = FP_OK;

	/* Samples come every few hundred ms; 100 ms buckets keep a lag
	 * spike where it happened relative to the fault markers (a 1 s
	 * bucket drawn at its centre could show it before its cause). */
	tb_init(&a->tb, sizeof(struct sbucket), 100 * FP_NS_PER_MS,
		sbucket_merge);
	if (fp_path_join(path, sizeof path, dir, "samples.tsv"))
		return FP_OK;
	f = fopen(path, "r");
	if (!f) {
		if (!is_missing(errno))
			snprintf(a->error, sizeof a->error, "%s",
				 strerror(errno));
		return FP_OK;
	}
	while (getline(&line, &cap, f) > 0) {
		char *t1 = strchr(line, '\t'), *t2, *end;
		double t, v;
		int64_t tns;
		struct sbucket *b;

		if (!t1 || !(t2 = strchr(t1 + 1, '\t')))
			continue;
		*t1 = *t2 = '\0';
		/* Only the decision group's total lag: the per-partition
		 * series (decision_group_lag.p0 ...) share the prefix. */
		if (strcmp(t1 + 1, "decision_group_lag") != 0)
			continue;
		t = strtod(line, &end);
		if (end == line || *end)
			continue;
		v = strtod(t2 + 1, &end);
		if (end == t2 + 1 || (*end && *end != '\n' && *end != '\r') ||
		    !isfinite(v) || !isfinite(t))
			continue;
		tns = (int64_t)llround(t * 1e9);
		if (!t_ok(tns))
			continue;
		b = tb_at(&a->tb, tns);
		if (!b) {
			rc = fp_err_set(err, FP_ENOMEM,
					"report.html: out of memory");
			break;
		}
		if (!b->has || v > b->max)
			b->max = v;
		b->has = 1;
		a->points++;
	}
	free(line);
	fclose(f);
	return rc;
}

/* ---- output helpers ------------------------------------------------------ */

static void out(struct fp_buf *b, const char *s, int *bad)
{
	if (fp_buf_puts(b, s))
		*bad = 1;
}

/* Length of a valid UTF-8 sequence at p, or 0 (overlong forms, surrogates
 * and code points past U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];

	if (c >= 0xC2 && c <= 0xDF)
		return (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
		    (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
		    (p[3] & 0xC0) != 0x80 || (c == 0xF0 && p[1] < 0x90) ||
		    (c == 0xF4 && p[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

/* Text or attribute value: the five HTML specials become entities; bytes
 * that are not valid UTF-8 and control characters become U+FFFD, so a raw
 * backend row cannot break the document either. */
static void esc(struct fp_buf *b, const char *s, int *bad)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s)
		return;
	while (*p) {
		const unsigned char *q = p;
		const char *ent = NULL;
		size_t n;

		while (*q >= 0x20 && *q < 0x7f && *q != '&' && *q != '<' &&
		       *q != '>' && *q != '"' && *q != '\'')
			q++;
		if (q > p && fp_buf_append(b, p, (size_t)(q - p)))
			*bad = 1;
		p = q;
		if (!*p)
			break;
		switch (*p) {
		case '&': ent = "&amp;"; break;
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '"': ent = "&quot;"; break;
		case '\'': ent = "&#39;"; break;
		case '\n': ent = "\n"; break;
		case '\t': case '\r': ent = " "; break;
		default: break;
		}
		if (ent) {
			out(b, ent, bad);
			p++;
			continue;
		}
		n = *p >= 0x80 ? utf8_len(p) : 0;
		if (n) {
			if (fp_buf_append(b, p, n))
				*bad = 1;
			p += n;
		} else {
			out(b, "&#xFFFD;", bad);
			p++;
		}
	}
}

static void esc_or(struct fp_buf *b, const char *s, const char *none, int *bad)
{
	if (s && *s) {
		esc(b, s, bad);
	} else {
		out(b, "<span class=\"none\">", bad);
		esc(b, none, bad);
		out(b, "</span>", bad);
	}
}

/* <tag>escaped text</tag> */
static void elem(struct fp_buf *b, const char *tag, const char *s, int *bad)
{
	if (fp_buf_printf(b, "<%s>", tag))
		*bad = 1;
	esc_or(b, s, "-", bad);
	if (fp_buf_printf(b, "</%s>", tag))
		*bad = 1;
}

static void iso_or_dash(int64_t wall_ns, char *o, size_t osz)
{
	if (wall_ns > 0)
		fp_fmt_iso8601(wall_ns, o, osz);
	else
		snprintf(o, osz, "-");
}

/* A JSON value as text: strings bare, everything else compact JSON. */
static void value_cell(struct fp_buf *b, json_t *v, int *bad)
{
	char *t;

	out(b, "<td>", bad);
	if (!v) {
		out(b, "-</td>", bad);
		return;
	}
	t = json_is_string(v)
		    ? strdup(json_string_value(v))
		    : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
					    JSON_PRESERVE_ORDER |
					    JSON_REAL_PRECISION(15));
	if (!t)
		*bad = 1;
	esc(b, t, bad);
	free(t);
	out(b, "</td>", bad);
}

/* ---- the chart frame: x range, phase bands, markers ---------------------- */

struct band {
	double x0, x1;
	const char *name;
};

struct marker {
	double x;
	const struct fp_timeline_entry *e;
};

struct frame {
	double xmax;             /* x axis runs 0 .. xmax seconds */
	struct band *bands;
	size_t n_bands;
	struct marker *marks;
	size_t n_marks;
};

static double t_s(int64_t t_ns)
{
	return (double)t_ns / 1e9;
}

static int is_kind(const struct fp_timeline_entry *e, const char *k)
{
	return e->kind && strcmp(e->kind, k) == 0;
}

static int build_frame(const struct fp_report *r, double data_xmax,
		       struct frame *fr)
{
	size_t n = r->n_timeline ? r->n_timeline : 1;

	memset(fr, 0, sizeof *fr);
	fr->bands = calloc(n, sizeof *fr->bands);
	fr->marks = calloc(n, sizeof *fr->marks);
	if (!fr->bands || !fr->marks)
		return -1;
	fr->xmax = data_xmax;
	if (fp_report_duration_s(r) > fr->xmax)
		fr->xmax = fp_report_duration_s(r);
	for (size_t i = 0; i < r->n_timeline; i++)
		if (t_s(r->timeline[i].t_ns) > fr->xmax)
			fr->xmax = t_s(r->timeline[i].t_ns);
	if (fr->xmax <= 0)
		fr->xmax = 1;
	for (size_t i = 0; i < r->n_timeline; i++) {
		const struct fp_timeline_entry *e = &r->timeline[i];
		double x = t_s(e->t_ns);

		if (is_kind(e, "phase") && e->detail && e->name) {
			if (strcmp(e->detail, "start") == 0) {
				fr->bands[fr->n_bands++] =
					(struct band){x, -1, e->name};
			} else if (strcmp(e->detail, "end") == 0) {
				/* Close the latest open band of that phase. */
				for (size_t j = fr->n_bands; j-- > 0;) {
					struct band *bd = &fr->bands[j];

					if (bd->x1 < 0 &&
					    strcmp(bd->name, e->name) == 0) {
						bd->x1 = x;
						break;
					}
				}
			}
		} else if (is_kind(e, "fault") || is_kind(e, "revert") ||
			   is_kind(e, "stop")) {
			fr->marks[fr->n_marks++] = (struct marker){x, e};
		}
	}
	/* A phase cut short (stop, abort) runs to the end of the axis. */
	for (size_t j = 0; j < fr->n_bands; j++)
		if (fr->bands[j].x1 < 0)
			fr->bands[j].x1 = fr->xmax;
	return 0;
}

static void free_frame(struct frame *fr)
{
	free(fr->bands);
	free(fr->marks);
}

/* ---- one chart --------------------------------------------------------- */

#define SVG_W 960.0
#define SVG_H 250.0
#define PL 66.0   /* plot area: left, right, top, bottom */
#define PR (SVG_W - 16.0)
#define PT 24.0
#define PB (SVG_H - 34.0)
#define MAX_SERIES 4

struct series {
	const char *label, *color, *dash;
	double *y;               /* n values, NAN = no data */
	int connect;             /* draw across NAN (sparse samples) */
};

struct chart {
	const char *id, *title, *ylabel, *desc;
	int ylog;
	size_t n;                /* points */
	double *x;               /* seconds since run start */
	struct series s[MAX_SERIES];
	size_t ns;
	char note[400];          /* caption text (precision, alignment) */
};

static double nice_step(double range, int target)
{
	double raw = range / target, p, f;

	if (!(raw > 0))
		return 1;
	p = pow(10, floor(log10(raw)));
	f = raw / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

struct axis {
	double lo, hi;           /* linear: values; log: log10 of values */
	int log;
};

static double ax_y(const struct axis *a, double v)
{
	double u = a->log ? log10(v) : v;

	if (a->hi <= a->lo)
		return PB;
	return PB - (u - a->lo) / (a->hi - a->lo) * (PB - PT);
}

static double ax_x(const struct frame *fr, double x)
{
	return PL + x / fr->xmax * (PR - PL);
}

static void num(char *o, size_t osz, double v)
{
	/* %g keeps tick labels short (0.01, 250, 1e+04). */
	snprintf(o, osz, "%g", fabs(v) < 1e-12 ? 0.0 : v);
}

static void y_axis(struct fp_buf *b, const struct chart *c, struct axis *a,
		   int *bad)
{
	double maxv = 0, minpos = INFINITY;

	for (size_t k = 0; k < c->ns; k++)
		for (size_t i = 0; i < c->n; i++) {
			double v = c->s[k].y[i];

			if (isnan(v))
				continue;
			if (v > maxv)
				maxv = v;
			if (v > 0 && v < minpos)
				minpos = v;
		}
	a->log = c->ylog;
	if (a->log) {
		if (!isfinite(minpos))
			minpos = maxv > 0 ? maxv : 1;
		a->lo = floor(log10(minpos));
		a->hi = ceil(log10(maxv > 0 ? maxv : minpos));
		if (a->hi <= a->lo)
			a->hi = a->lo + 1;
		for (double k = a->lo; k <= a->hi + 1e-9; k += 1) {
			char t[32];
			double y = PB - (k - a->lo) / (a->hi - a->lo) * (PB - PT);

			num(t, sizeof t, pow(10, k));
			if (fp_buf_printf(b,
					  "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" "
					  "x2=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" "
					  "x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
					  PL, y, PR, y, PL - 6, y + 4, t))
				*bad = 1;
		}
		return;
	}
	{
		double step = nice_step(maxv > 0 ? maxv : 1, 4);

		a->lo = 0;
		a->hi = ceil((maxv > 0 ? maxv : 1) / step) * step;
		for (double v = 0; v <= a->hi + step / 2; v += step) {
			char t[32];
			double y = ax_y(a, v);

			num(t, sizeof t, v);
			if (fp_buf_printf(b,
					  "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" "
					  "x2=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" "
					  "x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
					  PL, y, PR, y, PL - 6, y + 4, t))
				*bad = 1;
		}
	}
}

static void x_axis(struct fp_buf *b, const struct frame *fr, int *bad)
{
	double step = nice_step(fr->xmax, 8);

	for (double v = 0; v <= fr->xmax + step * 1e-9; v += step) {
		char t[32];
		double x = ax_x(fr, v);

		num(t, sizeof t, v);
		if (fp_buf_printf(b,
				  "<line class=\"xtick\" x1=\"%.1f\" y1=\"%.1f\" "
				  "x2=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" "
				  "x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
				  x, PB, x, PB + 4, x, PB + 16, t))
			*bad = 1;
	}
	if (fp_buf_printf(b,
			  "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" "
			  "text-anchor=\"middle\">seconds since run start</text>\n",
			  (PL + PR) / 2, SVG_H - 4))
		*bad = 1;
}

static void bands(struct fp_buf *b, const struct frame *fr, int *bad)
{
	out(b, "<g class=\"bands\">\n", bad);
	for (size_t i = 0; i < fr->n_bands; i++) {
		const struct band *bd = &fr->bands[i];
		double x0 = ax_x(fr, bd->x0), x1 = ax_x(fr, bd->x1);

		if (x1 < x0)
			x1 = x0;
		if (fp_buf_printf(b,
				  "<rect class=\"band\" fill=\"%s\" x=\"%.1f\" "
				  "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				  "data-phase=\"",
				  i % 2 ? "#e6eef8" : "#f3f1e6", x0, PT,
				  x1 - x0, PB - PT))
			*bad = 1;
		esc(b, bd->name, bad);
		out(b, "\"><title>phase ", bad);
		esc(b, bd->name, bad);
		if (fp_buf_printf(b, ": %.3f s to %.3f s</title></rect>\n",
				  bd->x0, bd->x1))
			*bad = 1;
		/* The label sits at the top of the band; alternate rows keep
		 * the labels of short neighbouring phases apart. */
		if (fp_buf_printf(b,
				  "<text class=\"band-label\" x=\"%.1f\" "
				  "y=\"%.1f\">",
				  x0 + 3, i % 2 ? PT - 3 : PT - 13))
			*bad = 1;
		esc(b, bd->name, bad);
		out(b, "</text>\n", bad);
	}
	out(b, "</g>\n", bad);
}

static void markers(struct fp_buf *b, const struct frame *fr, int *bad)
{
	double last_label = -1e9;

	out(b, "<g class=\"markers\">\n", bad);
	for (size_t i = 0; i < fr->n_marks; i++) {
		const struct marker *m = &fr->marks[i];
		double x = ax_x(fr, m->x), lx = x - 3;

		/* A fault and its revert are often milliseconds apart: set
		 * the (vertical, ~10 px wide) labels side by side instead of
		 * on top of each other. */
		if (lx < last_label + 11)
			lx = last_label + 11;
		last_label = lx;

		out(b, "<line class=\"marker ", bad);
		esc(b, m->e->kind, bad);
		if (fp_buf_printf(b,
				  "\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				  "y2=\"%.1f\"><title>",
				  x, PT, x, PB))
			*bad = 1;
		esc(b, m->e->kind, bad);
		out(b, " ", bad);
		esc(b, m->e->name, bad);
		if (fp_buf_printf(b, " at %.3f s", m->x))
			*bad = 1;
		if (m->e->detail && *m->e->detail) {
			out(b, ": ", bad);
			esc(b, m->e->detail, bad);
		}
		if (fp_buf_printf(b,
				  "</title></line>\n<text class=\"marker-label "
				  "%s\" transform=\"translate(%.1f %.1f) "
				  "rotate(-90)\">",
				  is_kind(m->e, "fault")    ? "fault"
				  : is_kind(m->e, "revert") ? "revert"
							    : "stop",
				  lx, PB - 4))
			*bad = 1;
		esc(b, m->e->kind, bad);
		out(b, " ", bad);
		esc(b, m->e->name, bad);
		out(b, "</text>\n", bad);
	}
	out(b, "</g>\n", bad);
}

static int chart_has_data(const struct chart *c)
{
	for (size_t k = 0; k < c->ns; k++)
		for (size_t i = 0; i < c->n; i++)
			if (!isnan(c->s[k].y[i]))
				return 1;
	return 0;
}

/* One series as a path; a gap (NAN) lifts the pen, and a lone point is
 * drawn as a round dot so it does not vanish. */
static void series_path(struct fp_buf *b, const struct chart *c,
			const struct series *s, const struct axis *a,
			const struct frame *fr, int *bad)
{
	int pen = 0, run = 0;

	if (fp_buf_printf(b,
			  "<path class=\"line\" fill=\"none\" stroke=\"%s\" "
			  "stroke-width=\"1.6\" stroke-linejoin=\"round\" "
			  "stroke-linecap=\"round\"%s%s%s d=\"",
			  s->color, s->dash ? " stroke-dasharray=\"" : "",
			  s->dash ? s->dash : "", s->dash ? "\"" : ""))
		*bad = 1;
	for (size_t i = 0; i < c->n; i++) {
		double v = s->y[i];

		if (isnan(v) || (a->log && v <= 0)) {
			/* Samples are points of a continuous quantity: an
			 * empty bucket between two of them is not a gap. */
			if (s->connect && isnan(v))
				continue;
			if (pen && run == 1)
				out(b, "h0.1", bad);
			pen = run = 0;
			continue;
		}
		if (fp_buf_printf(b, "%s%.1f %.1f", pen ? "L" : "M",
				  ax_x(fr, c->x[i]), ax_y(a, v)))
			*bad = 1;
		pen = 1;
		run++;
	}
	if (pen && run == 1)
		out(b, "h0.1", bad);
	out(b, "\"><title>", bad);
	esc(b, s->label, bad);
	out(b, "</title></path>\n", bad);
}

static void render_chart(struct fp_buf *b, const struct chart *c,
			 const struct frame *fr, int *bad)
{
	struct axis a = {0, 1, 0};
	int has = chart_has_data(c);

	if (fp_buf_printf(b,
			  "<figure class=\"chart-fig\">\n<svg class=\"chart\" "
			  "id=\"chart-%s\" role=\"img\" "
			  "aria-labelledby=\"chart-%s-title chart-%s-desc\" "
			  "viewBox=\"0 0 %.0f %.0f\" "
			  "xmlns=\"http://www.w3.org/2000/svg\">\n"
			  "<title id=\"chart-%s-title\">",
			  c->id, c->id, c->id, SVG_W, SVG_H, c->id))
		*bad = 1;
	esc(b, c->title, bad);
	if (fp_buf_printf(b, "</title>\n<desc id=\"chart-%s-desc\">", c->id))
		*bad = 1;
	esc(b, c->desc, bad);
	if (!has)
		out(b, " No data.", bad);
	if (fp_buf_printf(b,
			  "</desc>\n<defs><clipPath id=\"clip-%s\"><rect "
			  "x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			  "height=\"%.1f\"/></clipPath></defs>\n",
			  c->id, PL, PT - 1, PR - PL, PB - PT + 2))
		*bad = 1;
	bands(b, fr, bad);
	y_axis(b, c, &a, bad);
	x_axis(b, fr, bad);
	if (fp_buf_printf(b,
			  "<text class=\"axis-label\" transform=\"translate(14 "
			  "%.1f) rotate(-90)\" text-anchor=\"middle\">",
			  (PT + PB) / 2))
		*bad = 1;
	esc(b, c->ylabel, bad);
	out(b, "</text>\n", bad);
	if (has) {
		if (fp_buf_printf(b, "<g class=\"series\" "
				     "clip-path=\"url(#clip-%s)\">\n",
				  c->id))
			*bad = 1;
		for (size_t k = 0; k < c->ns; k++)
			series_path(b, c, &c->s[k], &a, fr, bad);
		out(b, "</g>\n", bad);
	} else if (fp_buf_printf(b,
				 "<text class=\"nodata\" x=\"%.1f\" y=\"%.1f\" "
				 "text-anchor=\"middle\">no data</text>\n",
				 (PL + PR) / 2, (PT + PB) / 2)) {
		*bad = 1;
	}
	markers(b, fr, bad);
	if (fp_buf_printf(b,
			  "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" "
			  "width=\"%.1f\" height=\"%.1f\"/>\n</svg>\n"
			  "<figcaption><strong>",
			  PL, PT, PR - PL, PB - PT))
		*bad = 1;
	esc(b, c->title, bad);
	out(b, "</strong>", bad);
	for (size_t k = 0; k < c->ns; k++) {
		if (fp_buf_printf(b,
				  " <span class=\"key\"><svg width=\"22\" "
				  "height=\"8\" aria-hidden=\"true\"><line x1=\"1\" "
				  "y1=\"4\" x2=\"21\" y2=\"4\" stroke=\"%s\" "
				  "stroke-width=\"2\"%s%s%s/></svg>",
				  c->s[k].color,
				  c->s[k].dash ? " stroke-dasharray=\"" : "",
				  c->s[k].dash ? c->s[k].dash : "",
				  c->s[k].dash ? "\"" : ""))
			*bad = 1;
		esc(b, c->s[k].label, bad);
		out(b, "</span>", bad);
	}
	out(b, "<br>", bad);
	esc(b, c->note, bad);
	out(b, "</figcaption>\n</figure>\n", bad);
}

/* ---- the three charts from the accumulated buckets ----------------------- */

static double *nan_array(size_t n)
{
	double *v = malloc((n ? n : 1) * sizeof *v);

	for (size_t i = 0; v && i < n; i++)
		v[i] = NAN;
	return v;
}

static void free_chart(struct chart *c)
{
	free(c->x);
	for (size_t k = 0; k < c->ns; k++)
		free(c->s[k].y);
}

static int alloc_chart(struct chart *c, size_t n, size_t ns)
{
	c->n = n;
	c->ns = ns;
	c->x = nan_array(n);
	if (!c->x)
		return -1;
	for (size_t k = 0; k < ns; k++) {
		c->s[k].y = nan_array(n);
		if (!c->s[k].y)
			return -1;
	}
	return 0;
}

/* The shift that maps ledger time onto run time (see the file comment).
 * @returns 1 when aligned on a timeline entry, 0 when left unshifted. */
static int ledger_offset(const struct fp_report *r, const struct ledger_acc *a,
			 int64_t *off)
{
	*off = 0;
	if (a->min_intended == INT64_MAX)
		return 0;
	for (size_t i = 0; i < r->n_timeline; i++) {
		const struct fp_timeline_entry *e = &r->timeline[i];

		if (is_kind(e, "phase") && e->name && e->detail &&
		    strcmp(e->detail, "start") == 0 &&
		    strcmp(e->name, a->first_phase) == 0) {
			*off = e->t_ns - a->min_intended;
			return 1;
		}
	}
	return 0;
}

static int ledger_charts(const struct fp_report *r, const struct ledger_acc *a,
			 struct chart *rate, struct chart *lat,
			 double *xmax)
{
	const struct lbucket *v = (const struct lbucket *)(const void *)a->tb.v;
	double w = t_s(a->tb.width_ns);
	size_t first = a->tb.n, last = 0;
	int64_t off;
	int aligned = ledger_offset(r, a, &off);
	char why[200] = "";

	if (alloc_chart(rate, a->tb.n, 2) || alloc_chart(lat, a->tb.n, 4))
		return -1;
	for (size_t i = 0; i < a->tb.n; i++) {
		double x = t_s((int64_t)i * a->tb.width_ns + off) + w / 2;

		rate->x[i] = lat->x[i] = x;
		if (v[i].orig || v[i].retry) {
			if (first == a->tb.n)
				first = i;
			last = i;
		}
		lat->s[0].y[i] = hist_q_ms(&v[i].corr, 50);
		lat->s[1].y[i] = hist_q_ms(&v[i].corr, 99);
		lat->s[2].y[i] = hist_q_ms(&v[i].svc, 50);
		lat->s[3].y[i] = hist_q_ms(&v[i].svc, 99);
		if (!isnan(lat->s[0].y[i]) || !isnan(lat->s[2].y[i]))
			if (x + w / 2 > *xmax)
				*xmax = x + w / 2;
	}
	/* Between the first and the last bucket with a send, an empty
	 * bucket is a real zero rate (a stalled sender), not missing data. */
	for (size_t i = first; a->sent && i <= last; i++) {
		rate->s[0].y[i] = v[i].orig / w;
		rate->s[1].y[i] = v[i].retry / w;
		if (rate->x[i] + w / 2 > *xmax)
			*xmax = rate->x[i] + w / 2;
	}
	if (a->error[0])
		snprintf(why, sizeof why, " ledger.tsv could not be read: %s.",
			 a->error);
	else if (a->bad)
		snprintf(why, sizeof why, " %lld malformed ledger rows skipped.",
			 a->bad);
	if (!a->sent)
		snprintf(rate->note, sizeof rate->note, "%s%s",
			 a->present    ? "ledger.tsv holds no sent attempt."
			 : a->error[0] ? ""
				       : "No ledger.tsv in the bundle (the "
					 "drill generated no load).",
			 why);
	else
		snprintf(rate->note, sizeof rate->note,
			 "From ledger.tsv (%lld rows, %lld attempts sent): "
			 "attempts per second by sent_ns, in %g s buckets. %s%s",
			 a->rows, a->sent, w,
			 aligned ? "Ledger time aligned on the start of the "
				   "first load phase."
				 : "Ledger time not aligned (no matching phase "
				   "start in the timeline): drawn from the "
				   "generator's start.",
			 why);
	snprintf(lat->note, sizeof lat->note,
		 "Per %g s bucket by intended send time; corrected = done_ns - "
		 "intended_ns (no coordinated omission), service = done_ns - "
		 "sent_ns. Percentiles from a log-linear histogram: within ~3 %% "
		 "(values under 1 us read as 0.0005 ms, over 275 s as 275 s). "
		 "Log scale.%s",
		 w, why);
	return 0;
}

static int lag_chart(const struct samples_acc *a, struct chart *c,
		     double *xmax)
{
	const struct sbucket *v = (const struct sbucket *)(const void *)a->tb.v;
	double w = t_s(a->tb.width_ns);

	if (alloc_chart(c, a->tb.n, 1))
		return -1;
	for (size_t i = 0; i < a->tb.n; i++) {
		c->x[i] = t_s((int64_t)i * a->tb.width_ns) + w / 2;
		if (v[i].has) {
			c->s[0].y[i] = v[i].max;
			if (c->x[i] + w / 2 > *xmax)
				*xmax = c->x[i] + w / 2;
		}
	}
	snprintf(c->note, sizeof c->note,
		 "From samples.tsv (%lld samples of decision_group_lag): the "
		 "maximum per %g s bucket.%s%s",
		 a->points, w, a->error[0] ? " samples.tsv could not be read: " : "",
		 a->error);
	return 0;
}

/* ---- the document ------------------------------------------------------ */

static const char CSS[] =
	"body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;"
	"margin:0 auto;max-width:1100px;padding:1em 1.5em;color:#1f2328;"
	"background:#fff;line-height:1.4}"
	"h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin-top:1.6em;"
	"border-bottom:1px solid #d0d7de;padding-bottom:.2em}"
	"table{border-collapse:collapse;margin:.5em 0;font-size:.92em}"
	"th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;"
	"vertical-align:top}th{background:#f6f8fa}"
	"td.num{text-align:right;font-variant-numeric:tabular-nums}"
	"code,.mono{font-family:'DejaVu Sans Mono',monospace;font-size:.9em}"
	".badge{display:inline-block;padding:.15em .6em;border-radius:.3em;"
	"color:#fff;font-weight:bold;letter-spacing:.05em;vertical-align:middle}"
	".v-pass{background:#1a7f37}.v-fail{background:#cf222e}"
	".v-unknown{background:#9a6700}.v-aborted{background:#6e40c9}"
	".st-pass{color:#1a7f37;font-weight:bold}"
	".st-fail{color:#cf222e;font-weight:bold}"
	".st-unknown{color:#9a6700;font-weight:bold}"
	".none{color:#6e7781;font-style:italic}"
	".reason{font-size:1.05em;padding:.5em .8em;background:#f6f8fa;"
	"border-left:4px solid #d0d7de}"
	"figure{margin:1em 0}figcaption{font-size:.85em;color:#57606a}"
	"svg.chart{width:100%;height:auto;display:block;background:#fff}"
	"svg.chart text{font-size:11px;fill:#57606a}"
	"svg.chart .band-label{font-size:10px;fill:#444}"
	"svg.chart .nodata{font-size:18px;fill:#8c959f}"
	"svg.chart .grid{stroke:#d8dee4;stroke-width:.6}"
	"svg.chart .xtick{stroke:#57606a}"
	"svg.chart .frame{fill:none;stroke:#8c959f}"
	"svg.chart .marker{stroke-width:1.4;stroke-dasharray:4 3}"
	"svg.chart .marker.fault{stroke:#cf222e}"
	"svg.chart .marker.revert{stroke:#1a7f37}"
	"svg.chart .marker.stop{stroke:#1f2328}"
	"svg.chart .marker-label{font-size:10px}"
	"svg.chart .marker-label.fault{fill:#cf222e}"
	"svg.chart .marker-label.revert{fill:#1a7f37}"
	".key{margin-left:1em;white-space:nowrap}"
	"footer{margin-top:2em;font-size:.8em;color:#6e7781}";

static void header(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	const char *v = fp_verdict_name(r->verdict);
	char t0[40], t1[40];
	double dur = fp_report_duration_s(r);

	iso_or_dash(r->started_wall_ns, t0, sizeof t0);
	iso_or_dash(r->ended_wall_ns, t1, sizeof t1);
	out(b, "<header>\n<h1>", bad);
	esc_or(b, r->drill_id, "-", bad);
	out(b, " ", bad);
	esc_or(b, r->drill_title, "(untitled)", bad);
	if (fp_buf_printf(b, " <span class=\"badge v-%s\">", v))
		*bad = 1;
	for (const char *p = v; *p; p++)
		if (fp_buf_printf(b, "%c", *p >= 'a' && *p <= 'z' ? *p - 32 : *p))
			*bad = 1;
	out(b, "</span></h1>\n<table class=\"summary\">\n<tr><th>Run id</th>",
	    bad);
	elem(b, "td", r->run_id, bad);
	out(b, "</tr>\n<tr><th>Environment</th><td>", bad);
	esc_or(b, r->env_name, "-", bad);
	out(b, " (", bad);
	esc_or(b, r->env_class, "-", bad);
	out(b, ")</td></tr>\n<tr><th>Scenario</th>", bad);
	elem(b, "td", r->scenario_path, bad);
	out(b, "</tr>\n<tr><th>Platform run id</th>", bad);
	elem(b, "td", r->platform_run_id, bad);
	if (fp_buf_printf(b,
			  "</tr>\n<tr><th>Started (UTC)</th><td>%s</td></tr>\n"
			  "<tr><th>Ended (UTC)</th><td>%s</td></tr>\n",
			  t0, t1))
		*bad = 1;
	if (dur >= 0 ? fp_buf_printf(b, "<tr><th>Duration</th><td>%.3f s"
					"</td></tr>\n",
				     dur)
		     : fp_buf_puts(b, "<tr><th>Duration</th><td>-</td></tr>\n"))
		*bad = 1;
	if (fp_buf_printf(b,
			  "<tr><th>Verdict</th><td>%s (exit code %d)</td></tr>\n"
			  "</table>\n<p class=\"reason\"><strong>Verdict "
			  "reason:</strong> ",
			  v, r->exit_code))
		*bad = 1;
	esc_or(b, r->verdict_reason, "(none given)", bad);
	out(b, "</p>\n</header>\n", bad);
}

static void scenario(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "<h2>Scenario and injection</h2>\n<p>", bad);
	esc_or(b, r->description, "(no description)", bad);
	out(b, "</p>\n", bad);
	if (r->n_claims) {
		out(b, "<p>Claims exercised:", bad);
		for (size_t i = 0; i < r->n_claims; i++) {
			out(b, " <code>", bad);
			esc(b, r->claims[i], bad);
			out(b, "</code>", bad);
		}
		out(b, "</p>\n", bad);
	}
	out(b, "<h2>Expected behaviour</h2>\n<p>", bad);
	esc_or(b, r->expected, "(not stated)", bad);
	out(b, "</p>\n", bad);
}

static void invariants(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "<h2>Integrity checks (invariants)</h2>\n", bad);
	if (!r->n_invariants) {
		out(b, "<p class=\"none\">No invariant was evaluated.</p>\n", bad);
		return;
	}
	out(b, "<table class=\"invariants\">\n<tr><th>Invariant</th><th>Status"
	       "</th><th>Violations</th><th>Observed</th><th>Expected</th>"
	       "<th>Examples</th></tr>\n",
	    bad);
	for (size_t i = 0; i < r->n_invariants; i++) {
		const struct fp_inv_result *v = &r->invariants[i];
		const char *st = fp_status_name(v->status);

		out(b, "<tr>", bad);
		elem(b, "td", v->name, bad);
		if (fp_buf_printf(b, "<td class=\"st-%s\">%s</td><td class=\"num\">"
				     "%lld</td>",
				  st, st, v->count))
			*bad = 1;
		elem(b, "td", v->observed, bad);
		elem(b, "td", v->expected, bad);
		out(b, "<td>", bad);
		if (v->detail && *v->detail) {
			out(b, "<div>", bad);
			esc(b, v->detail, bad);
			out(b, "</div>", bad);
		}
		for (size_t j = 0; j < v->n_examples; j++) {
			out(b, j ? ", <code>" : "<code>", bad);
			esc(b, v->examples[j], bad);
			out(b, "</code>", bad);
		}
		if (v->count > (long long)v->n_examples && v->n_examples &&
		    fp_buf_printf(b, " (%zu of %lld)", v->n_examples, v->count))
			*bad = 1;
		if (!v->n_examples && !(v->detail && *v->detail))
			out(b, "-", bad);
		out(b, "</td></tr>\n", bad);
	}
	out(b, "</table>\n", bad);
}

static void bounds_table(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "<h2>Recovery bounds</h2>\n", bad);
	if (!r->n_bounds) {
		out(b, "<p class=\"none\">No bound was set.</p>\n", bad);
		return;
	}
	out(b, "<table class=\"bounds\">\n<tr><th>Bound</th><th>Limit</th>"
	       "<th>Observed</th><th>Result</th></tr>\n",
	    bad);
	for (size_t i = 0; i < r->n_bounds; i++) {
		const struct fp_bound_result *x = &r->bounds[i];

		out(b, "<tr>", bad);
		elem(b, "td", x->name, bad);
		elem(b, "td", x->limit, bad);
		elem(b, "td", x->observed, bad);
		out(b, x->met > 0	     ? "<td class=\"st-pass\">met</td>"
		       : x->met == 0 ? "<td class=\"st-fail\">NOT MET</td>"
				     : "<td class=\"st-unknown\">unknown</td>",
		    bad);
		out(b, "</tr>\n", bad);
	}
	out(b, "</table>\n", bad);
}

static void timeline_table(struct fp_buf *b, const struct fp_report *r,
			   int *bad)
{
	out(b, "<h2>Timeline</h2>\n", bad);
	if (!r->n_timeline) {
		out(b, "<p class=\"none\">No event was recorded.</p>\n", bad);
		return;
	}
	out(b, "<table class=\"timeline\">\n<tr><th>t (s)</th><th>UTC</th>"
	       "<th>Kind</th><th>Name</th><th>Detail</th></tr>\n",
	    bad);
	for (size_t i = 0; i < r->n_timeline; i++) {
		const struct fp_timeline_entry *e = &r->timeline[i];
		char at[40];

		iso_or_dash(e->wall_ns, at, sizeof at);
		if (fp_buf_printf(b, "<tr><td class=\"num\">%.3f</td><td>%s</td>",
				  (double)llround((double)e->t_ns / 1e6) / 1000.0,
				  at))
			*bad = 1;
		elem(b, "td", e->kind, bad);
		elem(b, "td", e->name, bad);
		elem(b, "td", e->detail, bad);
		out(b, "</tr>\n", bad);
	}
	out(b, "</table>\n", bad);
}

/* One row per metric name seen in any phase, before / during / after side
 * by side (same layout as report.md). */
static void metrics_table(struct fp_buf *b, const struct fp_report *r,
			  int *bad)
{
	json_t *ph[3], *seen = fp_report_metric_rows(r, ph), *v;
	const char *k;
	size_t rows = 0;

	out(b, "<h2>Metrics (before / during / after)</h2>\n", bad);
	if (!seen) {
		*bad = 1;
		return;
	}
	json_object_foreach(seen, k, v) {
		if (rows++ == 0)
			out(b, "<table class=\"metrics\">\n<tr><th>Metric</th>"
			       "<th>Before</th><th>During</th><th>After</th>"
			       "</tr>\n",
			    bad);
		out(b, "<tr>", bad);
		elem(b, "td", k, bad);
		for (size_t i = 0; i < 3; i++)
			value_cell(b,
				   json_is_object(ph[i]) ? json_object_get(ph[i], k)
							 : NULL,
				   bad);
		out(b, "</tr>\n", bad);
	}
	json_decref(seen);
	out(b, rows ? "</table>\n"
		    : "<p class=\"none\">No metric was collected.</p>\n",
	    bad);
}

static void load_table(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	const char *k;
	json_t *v;

	out(b, "<h2>Load</h2>\n", bad);
	if (!json_is_object(r->load) || json_object_size(r->load) == 0) {
		out(b, "<p class=\"none\">No load was generated.</p>\n", bad);
		return;
	}
	out(b, "<table class=\"load\">\n<tr><th>Measure</th><th>Value</th>"
	       "</tr>\n",
	    bad);
	json_object_foreach(r->load, k, v) {
		out(b, "<tr>", bad);
		elem(b, "td", k, bad);
		value_cell(b, v, bad);
		out(b, "</tr>\n", bad);
	}
	out(b, "</table>\n", bad);
}

static void followups(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "<h2>Follow-up actions</h2>\n", bad);
	if (!r->n_followups) {
		out(b, "<p class=\"none\">None.</p>\n", bad);
		return;
	}
	out(b, "<ul>\n", bad);
	for (size_t i = 0; i < r->n_followups; i++)
		elem(b, "li", r->followups[i], bad);
	out(b, "</ul>\n", bad);
}

static void artifacts(struct fp_buf *b, const struct fp_artifacts *a,
		      int *bad)
{
	out(b, "<h2>Artifacts</h2>\n<p>report.md, report.json and "
	       "manifest.json are written after this file; manifest.json holds "
	       "the sha256 of every file in the bundle, this one included.</p>\n",
	    bad);
	if (!a || !a->n)
		return;
	out(b, "<table class=\"artifacts\">\n<tr><th>File</th><th>Bytes</th>"
	       "<th>sha256</th></tr>\n",
	    bad);
	for (size_t i = 0; i < a->n; i++) {
		out(b, "<tr>", bad);
		elem(b, "td", a->v[i].name, bad);
		if (fp_buf_printf(b, "<td class=\"num\">%lld</td><td><code>%s"
				     "</code></td></tr>\n",
				  a->v[i].bytes, a->v[i].sha256))
			*bad = 1;
	}
	out(b, "</table>\n", bad);
}

static void charts(struct fp_buf *b, const struct fp_report *r,
		   const struct ledger_acc *la, const struct samples_acc *sa,
		   int *bad, int *oom)
{
	struct chart rate = {0}, lat = {0}, lag = {0};
	struct frame fr = {0};
	double xmax = 0;

	rate.id = "rate";
	rate.title = "Rate: attempts sent per second";
	rate.ylabel = "events/s";
	rate.desc = "Originals and retries sent per second, with the phases "
		    "as bands and faults, reverts and stops as vertical lines.";
	rate.s[0] = (struct series){"originals/s", "#0969da", NULL, NULL, 0};
	rate.s[1] = (struct series){"re-sends/s (retry, conflict)", "#bc4c00",
				    "5 3", NULL, 0};
	lat.id = "latency";
	lat.title = "Latency: p50 and p99 per second (ms)";
	lat.ylabel = "ms (log)";
	lat.ylog = 1;
	lat.desc = "Corrected latency (from the intended send time) and "
		   "service latency (from the actual send), p50 and p99.";
	lat.s[0] = (struct series){"corrected p50", "#0969da", NULL, NULL, 0};
	lat.s[1] = (struct series){"corrected p99", "#cf222e", NULL, NULL, 0};
	lat.s[2] = (struct series){"service p50", "#1a7f37", "5 3", NULL, 0};
	lat.s[3] = (struct series){"service p99", "#8250df", "5 3", NULL, 0};
	lag.id = "lag";
	lag.title = "Decision consumer group lag";
	lag.ylabel = "messages";
	lag.desc = "decision_group_lag sampled during the run.";
	lag.s[0] = (struct series){"decision_group_lag (max per bucket)",
				   "#8250df", NULL, NULL, 1};

	if (ledger_charts(r, la, &rate, &lat, &xmax) ||
	    lag_chart(sa, &lag, &xmax) || build_frame(r, xmax, &fr)) {
		*oom = 1;
	} else {
		out(b, "<h2>Charts</h2>\n", bad);
		render_chart(b, &rate, &fr, bad);
		render_chart(b, &lat, &fr, bad);
		render_chart(b, &lag, &fr, bad);
	}
	free_frame(&fr);
	free_chart(&rate);
	free_chart(&lat);
	free_chart(&lag);
}

int fp_render_html(const struct fp_report *r, const char *dir,
		   const struct fp_artifacts *arts, struct fp_buf *b,
		   struct fp_err *err)
{
	struct ledger_acc la;
	struct samples_acc sa;
	int bad = 0, oom = 0, rc;

	memset(&la, 0, sizeof la);
	memset(&sa, 0, sizeof sa);
	rc = read_ledger(dir, &la, err);
	if (!rc)
		rc = read_samples(dir, &sa, err);
	if (rc)
		goto out_free;

	out(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	       "<meta charset=\"utf-8\">\n"
	       /* Nothing may be fetched: the file must work offline, and a
		* string that slipped past escaping still cannot load or run
		* anything. */
	       "<meta http-equiv=\"Content-Security-Policy\" "
	       "content=\"default-src 'none'; style-src 'unsafe-inline'; "
	       "img-src data:\">\n"
	       "<meta name=\"viewport\" content=\"width=device-width, "
	       "initial-scale=1\">\n<meta name=\"generator\" content=\""
	       FP_REPORT_SCHEMA "\">\n<title>",
	    &bad);
	esc_or(b, r->drill_id, "-", &bad);
	out(b, " ", &bad);
	esc(b, r->drill_title, &bad);
	if (fp_buf_printf(b, ": %s</title>\n<style>%s</style>\n</head>\n<body>\n",
			  fp_verdict_name(r->verdict), CSS))
		bad = 1;
	header(b, r, &bad);
	scenario(b, r, &bad);
	invariants(b, r, &bad);
	bounds_table(b, r, &bad);
	charts(b, r, &la, &sa, &bad, &oom);
	timeline_table(b, r, &bad);
	metrics_table(b, r, &bad);
	load_table(b, r, &bad);
	followups(b, r, &bad);
	artifacts(b, arts, &bad);
	out(b, "<footer>Generated by fpdrill (" FP_REPORT_SCHEMA
	       "); the machine-readable report is report.json.</footer>\n"
	       "</body>\n</html>\n",
	    &bad);
	if (bad || oom)
		rc = fp_err_set(err, FP_ENOMEM, "report.html: out of memory");
out_free:
	tb_free(&la.tb);
	tb_free(&sa.tb);
	return rc;
}
