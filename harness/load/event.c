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
	snprintf(ev->event_id, sizeof ev->event_id, "e-%020" PRIu64, seq);
	/* The draw order is part of the format: changing it changes every
	 * event of every seed. Every draw is always taken, so changing one
	 * knob (e.g. retry_share) does not shift the others. */
	acct = fp_rng_below(&rng, (uint64_t)(mix->accounts > 0 ? mix->accounts : 1));
	snprintf(ev->account_id, sizeof ev->account_id, "acct-%06" PRIu64, acct);
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
	snprintf(ev->merchant_id, sizeof ev->merchant_id, "m-%04" PRIu64,
		 fp_rng_below(&rng, 500));
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

/* json_object_set_new() that remembers a failure instead of checking each. */
static void put(json_t *obj, const char *key, json_t *v, int *bad)
{
	if (!v || json_object_set_new(obj, key, v) != 0)
		*bad = 1;
}

/* The payload object of ev as its kind shapes it; NULL when out of memory. */
static json_t *build_payload(struct fp_event *ev, uint64_t seq)
{
	json_t *payload = json_object();
	int bad = !payload;

	if (bad)
		return NULL;
	put(payload, "account_id", json_string(ev->account_id), &bad);
	if (ev->kind == FP_EVENT_WRONG_TYPE) {
		char amt[24];

		snprintf(amt, sizeof amt, "%" PRId64, ev->amount_minor);
		put(payload, "amount_minor", json_string(amt), &bad);
	} else if (!ev->dropped_field ||
		   strcmp(ev->dropped_field, "amount_minor") != 0) {
		put(payload, "amount_minor", json_integer(ev->amount_minor), &bad);
	}
	if (!ev->dropped_field || strcmp(ev->dropped_field, "currency") != 0)
		put(payload, "currency", json_string("EUR"), &bad);
	put(payload, "merchant_id", json_string(ev->merchant_id), &bad);
	put(payload, "channel", json_string(ev->channel), &bad);
	put(payload, "country", json_string(ev->country), &bad);
	if (ev->kind == FP_EVENT_COMPATIBLE) {
		char dev[24];

		snprintf(dev, sizeof dev, "dev-%06" PRIu64, seq % 1000000);
		put(payload, "device_id", json_string(dev), &bad);
	}
	if (ev->kind == FP_EVENT_OVERSIZE && !bad) {
		/* The note alone is over the limit, so the body is too. */
		size_t n = FP_EVENT_OVERSIZE_MIN + 1;
		char *note = malloc(n + 1);

		if (note) {
			memset(note, 'x', n);
			note[n] = '\0';
			put(payload, "note", json_stringn_nocheck(note, n), &bad);
			free(note);
		} else {
			bad = 1;
		}
	}
	if (bad) {
		json_decref(payload);
		return NULL;
	}
	return payload;
}

/* Build ev->body and ev->payload_hash from ev's fields and kind. */
static int build_body(const struct fp_event_ids *ids, struct fp_event *ev,
		      struct fp_err *err)
{
	json_t *env, *payload;
	char when[40];
	int bad = 0;

	free(ev->body);
	ev->body = NULL;
	ev->body_len = 0;
	fp_fmt_iso8601(ev->occurred_wall_ns, when, sizeof when);
	payload = build_payload(ev, ev->seq);
	env = json_object();
	if (!payload || !env) {
		json_decref(payload);
		json_decref(env);
		return fp_err_set(err, FP_ENOMEM, "event: out of memory");
	}
	fp_payload_hash(payload, ev->payload_hash);

	/* Envelope members in the contract's order (jansson keeps insertion
	 * order), so a captured body reads like the documentation. */
	put(env, "schema_version", json_string(ev->schema_version), &bad);
	put(env, "platform_run_id", json_string(ids->platform_run_id), &bad);
	if (ids->scenario_run_id)
		put(env, "scenario_run_id", json_string(ids->scenario_run_id), &bad);
	if (ids->phase_id)
		put(env, "phase_id", json_string(ids->phase_id), &bad);
	if (ids->runtime_lane)
		put(env, "runtime_lane", json_string(ids->runtime_lane), &bad);
	put(env, "event_class", json_string(ids->event_class), &bad);
	put(env, "event_id", json_string(ev->event_id), &bad);
	put(env, "occurred_at", json_string(when), &bad);
	put(env, "payload", payload, &bad); /* steals payload */
	if (!bad && ev->payload_hash[0])
		ev->body = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	if (bad || !ev->body) {
		free(ev->body);
		ev->body = NULL;
		return fp_err_set(err, FP_ENOMEM, "event %s: cannot build body",
				  ev->event_id);
	}
	ev->body_len = strlen(ev->body);
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

int fp_event_build(const struct fp_event_ids *ids,
		   const struct fp_event_mix *mix, uint64_t seq,
		   int64_t occurred_wall_ns, struct fp_event *ev,
		   struct fp_err *err)
{
	fp_event_draw(mix, seq, ev);
	ev->occurred_wall_ns = occurred_wall_ns;
	return build_body(ids, ev, err);
}

int fp_event_make_conflict(const struct fp_event_ids *ids,
			   struct fp_event *ev, struct fp_err *err)
{
	ev->conflict = 1;
	ev->amount_minor += 1;
	return build_body(ids, ev, err);
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
	snprintf(out, FP_TRACEPARENT_MAX, "00-%s-%s-01", ev->trace_id,
		 ev->span_id);
}

void fp_event_release(struct fp_event *ev)
{
	free(ev->body);
	ev->body = NULL;
	ev->body_len = 0;
}
