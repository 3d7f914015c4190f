/*
 * event.c - the synthetic traffic: deterministic event bodies, the payload
 * hash of the platform contract and W3C trace context ids.
 *
 * Every field of event number seq is drawn from a PRNG stream seeded by
 * (seed, seq) alone, so a run can be reproduced, an event can be rebuilt
 * from the ledger, and two runs with the same seed offer the platform the
 * same traffic. Only occurred_at (the intended send time) and the trace
 * context (which must be unique per request) vary between runs.
 */
#include "harness/load/fp_load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_hash.h"
#include "harness/load/fp_load_int.h"

/* ---- PRNG -------------------------------------------------------------- */

uint64_t fp_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void fp_rng_seed(struct fp_rng *r, uint64_t seed, uint64_t stream)
{
	/* Mix the stream number through splitmix64 first so that neighbouring
	 * (seed, seq) pairs give unrelated states. */
	uint64_t st = stream;
	uint64_t mixed = fp_splitmix64(&st);

	st = seed ^ mixed;
	for (int i = 0; i < 4; i++)
		r->s[i] = fp_splitmix64(&st);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t fp_rng_next(struct fp_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double fp_rng_double(struct fp_rng *r)
{
	return (double)(fp_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t fp_rng_below(struct fp_rng *r, uint64_t n)
{
	/* Floor of a uniform double times n: unbiased enough for n far below
	 * 2^53, which holds for every range used here. */
	uint64_t v = (uint64_t)(fp_rng_double(r) * (double)n);

	return v < n ? v : n - 1;
}

/* ---- event fields -------------------------------------------------------- */

static const char *const countries_main[] = {"DE", "FR", "NL", "GB", "US"};
static const char *const countries_risky[] = {"BR", "NG", "IN"};

/* The kind whose cumulative share first exceeds u * total. */
static enum fp_event_kind draw_kind(const struct fp_event_mix *mix, double u)
{
	double total = 0, acc = 0;
	int last = -1;

	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++) {
		if (mix->kinds[k] > 0) {
			total += mix->kinds[k];
			last = k;
		}
	}
	if (last < 0)
		return FP_EVENT_VALID;
	u *= total;
	for (int k = 0; k < last; k++) {
		acc += mix->kinds[k] > 0 ? mix->kinds[k] : 0;
		if (u < acc)
			return (enum fp_event_kind)k;
	}
	return (enum fp_event_kind)last; /* rounding lands here, never beyond */
}

void fp_event_draw(const struct fp_event_mix *mix, uint64_t seq,
		   struct fp_event *ev)
{
	struct fp_rng rng;
	uint64_t acct;
	double u;

	memset(ev, 0, sizeof *ev);
	fp_rng_seed(&rng, mix->seed, seq);
	ev->seq = seq;
	/* Hand-formatted ("e-%020" PRIu64 and the like below): snprintf
	 * was a visible share of the per-event cost. */
	memcpy(ev->event_id, "e-", 2);
	*fp_put_u64(ev->event_id + 2, seq, 20) = '\0';
	/* The draw order is part of the format: changing it changes every
	 * event of every seed. Every draw is always taken, so changing one
	 * knob (e.g. retry_share) does not shift the others. */
	acct = fp_rng_below(&rng, (uint64_t)(mix->accounts > 0 ? mix->accounts : 1));
	memcpy(ev->account_id, "acct-", 5);
	*fp_put_u64(ev->account_id + 5, acct, 6) = '\0';
	ev->high_value = fp_rng_double(&rng) < mix->high_value_share;
	if (ev->high_value)
		ev->amount_minor = 500000 + (int64_t)fp_rng_below(&rng, 1500000);
	else
		ev->amount_minor = 100 + (int64_t)fp_rng_below(&rng, 19900);
	u = fp_rng_double(&rng);
	if (ev->high_value || u < 0.30)
		ev->channel = "ecom";
	else if (u < 0.65)
		ev->channel = "card_present";
	else
		ev->channel = "contactless";
	memcpy(ev->merchant_id, "m-", 2);
	*fp_put_u64(ev->merchant_id + 2, fp_rng_below(&rng, 500), 4) = '\0';
	u = fp_rng_double(&rng);
	if (u < 0.10)
		ev->country = countries_risky[fp_rng_below(&rng, 3)];
	else
		ev->country = countries_main[fp_rng_below(&rng, 5)];
	ev->retry = fp_rng_double(&rng) < mix->retry_share;
	/* The kind is the last draw, so the fields above are the same for
	 * every mix. */
	u = fp_rng_double(&rng);
	ev->kind = draw_kind(mix, u);
	if (ev->kind == FP_EVENT_HASH_CONFLICT)
		ev->retry = 0;
	ev->schema_version = ev->kind == FP_EVENT_COMPATIBLE ? "1.1"
			     : ev->kind == FP_EVENT_UNSUPPORTED_VERSION ? "2.0"
								      : "1.0";
	if (ev->kind == FP_EVENT_MISSING_FIELD)
		ev->dropped_field = seq % 2 ? "currency" : "amount_minor";
}

const char *fp_event_expect(const struct fp_event *ev)
{
	if (ev->kind == FP_EVENT_HASH_CONFLICT && !ev->conflict)
		return fp_event_kind_name(FP_EVENT_VALID);
	return fp_event_kind_name(ev->kind);
}

void fp_payload_hash(json_t *payload, char out[65])
{
	char stack[1024];
	size_t n;

	/* The canonical form of the contract: compact, keys sorted. Most
	 * payloads fit the stack buffer, so hashing does not allocate. */
	n = json_dumpb(payload, stack, sizeof stack, JSON_COMPACT | JSON_SORT_KEYS);
	if (n == 0) {
		out[0] = '\0';
		return;
	}
	if (n <= sizeof stack) {
		fp_sha256_hex(stack, n, out);
		return;
	}
	{
		char *s = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);

		if (!s) {
			out[0] = '\0';
			return;
		}
		fp_sha256_hex(s, strlen(s), out);
		free(s);
	}
}

/* ---- direct formatting ----------------------------------------------------
 *
 * Bodies are formatted straight into a reusable buffer instead of through a
 * jansson tree: the tree cost a dozen allocations and two dumps per event.
 * The bytes must stay exactly what jansson produced (JSON_COMPACT, members in
 * insertion order; the payload hash over JSON_COMPACT | JSON_SORT_KEYS), which
 * tests/unit/load/test_event.c checks against a jansson-built oracle. */

struct fp_event_builder {
	char *ids;          /* ,"platform_run_id":"..",...,"event_class":".." */
	size_t ids_len;
	EVP_MD *md;         /* SHA-256, fetched once */
	EVP_MD_CTX *mdctx;  /* reused for every payload hash */
	int64_t day_s;      /* occurred_at cache: the day of day_txt */
	char day_txt[16];   /* "YYYY-MM-DDT" */
};

static char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

static char *put_str(char *p, const char *s)
{
	return put_mem(p, s, strlen(s));
}

static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return fp_put_u64(p, (uint64_t)0 - (uint64_t)v, 1);
	}
	return fp_put_u64(p, (uint64_t)v, 1);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), as jansson's json_string() demands;
 * 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	cp = c & (n == 2 ? 0x1Fu : n == 3 ? 0x0Fu : 0x07u);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3Fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* s as a JSON string the way jansson dumps it without flags: '"' and '\\'
 * escaped, control characters as \b \f \n \r \t or \u00XX, everything else
 * (UTF-8 included) verbatim. out needs 6 * strlen(s) + 2 bytes.
 * @returns the end, or NULL when s is not valid UTF-8. */
static char *put_json_string(char *p, const char *s)
{
	static const char hx[] = "0123456789ABCDEF";
	const unsigned char *u = (const unsigned char *)s;

	*p++ = '"';
	while (*u) {
		size_t n = utf8_len(u);

		if (n == 0)
			return NULL;
		if (n > 1) {
			p = put_mem(p, (const char *)u, n);
			u += n;
			continue;
		}
		switch (*u) {
		case '"': p = PUT_LIT(p, "\\\""); break;
		case '\\': p = PUT_LIT(p, "\\\\"); break;
		case '\b': p = PUT_LIT(p, "\\b"); break;
		case '\f': p = PUT_LIT(p, "\\f"); break;
		case '\n': p = PUT_LIT(p, "\\n"); break;
		case '\r': p = PUT_LIT(p, "\\r"); break;
		case '\t': p = PUT_LIT(p, "\\t"); break;
		default:
			if (*u < 0x20) {
				p = PUT_LIT(p, "\\u00");
				*p++ = hx[*u >> 4];
				*p++ = hx[*u & 15];
			} else {
				*p++ = (char)*u;
			}
		}
		u++;
	}
	*p++ = '"';
	return p;
}

int fp_event_builder_new(const struct fp_event_ids *ids,
			 struct fp_event_builder **out, struct fp_err *err)
{
	const char *names[] = {"platform_run_id", "scenario_run_id", "phase_id",
			       "runtime_lane", "event_class"};
	const char *vals[] = {ids->platform_run_id, ids->scenario_run_id,
			      ids->phase_id, ids->runtime_lane,
			      ids->event_class};
	struct fp_event_builder *b;
	size_t cap = 1;
	char *p;

	*out = NULL;
	if (!ids->platform_run_id || !ids->event_class)
		return fp_err_set(err, FP_EINVAL,
				  "event: platform_run_id and event_class are required");
	for (size_t i = 0; i < 5; i++)
		if (vals[i])
			cap += strlen(names[i]) + 6 * strlen(vals[i]) + 6;
	b = calloc(1, sizeof *b);
	if (!b || !(b->ids = malloc(cap)) ||
	    !(b->md = EVP_MD_fetch(NULL, "SHA256", NULL)) ||
	    !(b->mdctx = EVP_MD_CTX_new())) {
		fp_event_builder_free(b);
		return fp_err_set(err, FP_ENOMEM, "event: out of memory");
	}
	b->day_s = INT64_MIN;
	p = b->ids;
	/* NULL optional members are left out, as the jansson builder did. */
	for (size_t i = 0; i < 5; i++) {
		if (!vals[i])
			continue;
		p = PUT_LIT(p, ",\"");
		p = put_str(p, names[i]);
		p = PUT_LIT(p, "\":");
		p = put_json_string(p, vals[i]);
		if (!p) {
			fp_event_builder_free(b);
			return fp_err_set(err, FP_EINVAL,
					  "event: %s is not valid UTF-8", names[i]);
		}
	}
	*p = '\0';
	b->ids_len = (size_t)(p - b->ids);
	*out = b;
	return FP_OK;
}

void fp_event_builder_free(struct fp_event_builder *b)
{
	if (!b)
		return;
	EVP_MD_CTX_free(b->mdctx);
	EVP_MD_free(b->md);
	free(b->ids);
	free(b);
}

static int sha256_hex(struct fp_event_builder *b, const char *s, size_t n,
		      char out[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	if (EVP_DigestInit_ex(b->mdctx, b->md, NULL) != 1 ||
	    EVP_DigestUpdate(b->mdctx, s, n) != 1 ||
	    EVP_DigestFinal_ex(b->mdctx, d, &dl) != 1 || dl != 32)
		return -1;
	fp_hex_encode(d, 32, out);
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" as fp_fmt_iso8601 writes it; gmtime only when
 * the day changes. */
static char *put_iso8601(struct fp_event_builder *b, char *p, int64_t wall_ns)
{
	int64_t s = wall_ns / FP_NS_PER_S, day = s / 86400, sod;
	int ms = (int)((wall_ns % FP_NS_PER_S) / FP_NS_PER_MS);

	if (wall_ns < 0 || ms < 0) {
		char when[40];

		fp_fmt_iso8601(wall_ns, when, sizeof when);
		return put_str(p, when);
	}
	if (day != b->day_s) {
		char when[40];

		fp_fmt_iso8601(day * 86400 * FP_NS_PER_S, when, sizeof when);
		if (strlen(when) != 24) /* a year beyond 9999: no cache */
			return put_str(p, (fp_fmt_iso8601(wall_ns, when,
							  sizeof when), when));
		memcpy(b->day_txt, when, 11);
		b->day_s = day;
	}
	sod = s - day * 86400;
	p = put_mem(p, b->day_txt, 11);
	p = fp_put_u64(p, (uint64_t)(sod / 3600), 2);
	*p++ = ':';
	p = fp_put_u64(p, (uint64_t)(sod / 60 % 60), 2);
	*p++ = ':';
	p = fp_put_u64(p, (uint64_t)(sod % 60), 2);
	*p++ = '.';
	p = fp_put_u64(p, (uint64_t)ms, 3);
	*p++ = 'Z';
	return p;
}

/* The payload members of ev as its kind shapes it. sorted = the canonical
 * key order of the payload hash; else the envelope's insertion order
 * (account_id, amount_minor, currency, merchant_id, channel, country,
 * device_id, note). */
static char *put_payload(char *p, const struct fp_event *ev, int sorted,
			 size_t note_len)
{
	int has_amount = !ev->dropped_field ||
			 strcmp(ev->dropped_field, "amount_minor") != 0;
	int has_currency = !ev->dropped_field ||
			   strcmp(ev->dropped_field, "currency") != 0;

	p = PUT_LIT(p, "{\"account_id\":\"");
	p = put_str(p, ev->account_id);
	*p++ = '"';
	if (ev->kind == FP_EVENT_WRONG_TYPE) {
		p = PUT_LIT(p, ",\"amount_minor\":\"");
		p = put_i64(p, ev->amount_minor);
		*p++ = '"';
	} else if (has_amount) {
		p = PUT_LIT(p, ",\"amount_minor\":");
		p = put_i64(p, ev->amount_minor);
	}
	if (!sorted) {
		if (has_currency)
			p = PUT_LIT(p, ",\"currency\":\"EUR\"");
		p = PUT_LIT(p, ",\"merchant_id\":\"");
		p = put_str(p, ev->merchant_id);
		*p++ = '"';
	}
	p = PUT_LIT(p, ",\"channel\":\"");
	p = put_str(p, ev->channel);
	p = PUT_LIT(p, "\",\"country\":\"");
	p = put_str(p, ev->country);
	*p++ = '"';
	if (sorted && has_currency)
		p = PUT_LIT(p, ",\"currency\":\"EUR\"");
	if (ev->kind == FP_EVENT_COMPATIBLE) {
		p = PUT_LIT(p, ",\"device_id\":\"dev-");
		p = fp_put_u64(p, ev->seq % 1000000, 6);
		*p++ = '"';
	}
	if (sorted) {
		p = PUT_LIT(p, ",\"merchant_id\":\"");
		p = put_str(p, ev->merchant_id);
		*p++ = '"';
	}
	if (note_len) {
		/* The note alone is over the limit, so the body is too. */
		p = PUT_LIT(p, ",\"note\":\"");
		memset(p, 'x', note_len);
		p += note_len;
		*p++ = '"';
	}
	*p++ = '}';
	return p;
}

/* Build ev->body and ev->payload_hash from ev's fields and kind, reusing
 * ev->body when it is large enough. */
static int build_body(struct fp_event_builder *b, struct fp_event *ev,
		      struct fp_err *err)
{
	size_t note_len = ev->kind == FP_EVENT_OVERSIZE
				  ? FP_EVENT_OVERSIZE_MIN + 1
				  : 0;
	/* Everything but the identity members and the note: at most 309
	 * bytes (20-digit account and amount, the longest channel,
	 * device_id), so 384 leaves a margin and keeps a slot's buffer
	 * small. */
	size_t need = b->ids_len + 384 + note_len;
	char *p;

	if (ev->body_cap < need) {
		char *nb = malloc(need);

		if (!nb) {
			fp_event_release(ev);
			return fp_err_set(err, FP_ENOMEM,
					  "event %s: cannot build body",
					  ev->event_id);
		}
		free(ev->body);
		ev->body = nb;
		ev->body_cap = need;
	}
	/* The hash first, over the canonical text written where the body
	 * goes; the body then overwrites it. */
	p = put_payload(ev->body, ev, 1, note_len);
	if (sha256_hex(b, ev->body, (size_t)(p - ev->body), ev->payload_hash)) {
		ev->payload_hash[0] = '\0';
		return fp_err_set(err, FP_EINTERNAL,
				  "event %s: SHA-256 failed", ev->event_id);
	}

	/* Envelope members in the contract's order, so a captured body reads
	 * like the documentation. */
	p = PUT_LIT(ev->body, "{\"schema_version\":\"");
	p = put_str(p, ev->schema_version);
	*p++ = '"';
	p = put_mem(p, b->ids, b->ids_len);
	p = PUT_LIT(p, ",\"event_id\":\"");
	p = put_str(p, ev->event_id);
	p = PUT_LIT(p, "\",\"occurred_at\":\"");
	p = put_iso8601(b, p, ev->occurred_wall_ns);
	p = PUT_LIT(p, "\",\"payload\":");
	p = put_payload(p, ev, 0, note_len);
	*p++ = '}';
	*p = '\0';
	ev->body_len = (size_t)(p - ev->body);
	if (ev->kind == FP_EVENT_MALFORMED_JSON) {
		/* Any proper prefix of a JSON object is not JSON; half keeps
		 * the identity members readable to a human. No payload was
		 * sent, so there is no payload hash either. */
		ev->body_len /= 2;
		ev->body[ev->body_len] = '\0';
		ev->payload_hash[0] = '\0';
	}
	return FP_OK;
}

int fp_event_build_with(struct fp_event_builder *b,
			const struct fp_event_mix *mix, uint64_t seq,
			int64_t occurred_wall_ns, struct fp_event *ev,
			struct fp_err *err)
{
	char *body = ev->body;
	size_t cap = ev->body_cap;

	/* The draw clears ev; the body buffer survives it for reuse. */
	fp_event_draw(mix, seq, ev);
	ev->body = body;
	ev->body_cap = cap;
	ev->occurred_wall_ns = occurred_wall_ns;
	return build_body(b, ev, err);
}

int fp_event_build(const struct fp_event_ids *ids,
		   const struct fp_event_mix *mix, uint64_t seq,
		   int64_t occurred_wall_ns, struct fp_event *ev,
		   struct fp_err *err)
{
	struct fp_event_builder *b;
	int rc;

	memset(ev, 0, sizeof *ev);
	rc = fp_event_builder_new(ids, &b, err);
	if (rc) {
		fp_event_draw(mix, seq, ev);
		return rc;
	}
	rc = fp_event_build_with(b, mix, seq, occurred_wall_ns, ev, err);
	fp_event_builder_free(b);
	return rc;
}

int fp_event_conflict_with(struct fp_event_builder *b, struct fp_event *ev,
			   struct fp_err *err)
{
	ev->conflict = 1;
	ev->amount_minor += 1;
	return build_body(b, ev, err);
}

int fp_event_make_conflict(const struct fp_event_ids *ids,
			   struct fp_event *ev, struct fp_err *err)
{
	struct fp_event_builder *b;
	int rc = fp_event_builder_new(ids, &b, err);

	if (rc)
		return rc;
	rc = fp_event_conflict_with(b, ev, err);
	fp_event_builder_free(b);
	return rc;
}

static void hex_u64(uint64_t v, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--) {
		out[i] = hx[v & 15];
		v >>= 4;
	}
}

void fp_event_new_trace(struct fp_event *ev, struct fp_rng *rng)
{
	uint64_t a, b;

	/* W3C forbids an all-zero trace id. */
	do {
		a = fp_rng_next(rng);
		b = fp_rng_next(rng);
	} while (a == 0 && b == 0);
	hex_u64(a, ev->trace_id);
	hex_u64(b, ev->trace_id + 16);
	ev->trace_id[32] = '\0';
	fp_event_new_span(ev, rng);
}

void fp_event_new_span(struct fp_event *ev, struct fp_rng *rng)
{
	uint64_t s;

	do
		s = fp_rng_next(rng);
	while (s == 0); /* all-zero span ids are invalid too */
	hex_u64(s, ev->span_id);
	ev->span_id[16] = '\0';
}

void fp_event_traceparent(const struct fp_event *ev,
			  char out[FP_TRACEPARENT_MAX])
{
	/* "00-<trace>-<span>-01"; both ids have a fixed length. */
	memcpy(out, "00-", 3);
	memcpy(out + 3, ev->trace_id, 32);
	out[35] = '-';
	memcpy(out + 36, ev->span_id, 16);
	memcpy(out + 52, "-01", 4);
}

void fp_event_release(struct fp_event *ev)
{
	free(ev->body);
	ev->body = NULL;
	ev->body_len = 0;
	ev->body_cap = 0;
}
