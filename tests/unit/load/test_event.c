/*
 * test_event.c - event bodies: deterministic in (seed, seq), the contract's
 * envelope, the payload hash (canonical, key-order independent, known
 * digest), the traffic mix (high-value share, ranges) and the event kinds
 * (proportions, and each kind's body parsed back).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/load/fp_load.h"
#include "harness/load/fp_load_int.h"

static const struct fp_event_ids ids = {
	.platform_run_id = "fpd-20261123T182200Z-5f2c",
	.scenario_run_id = "20261123T182200Z-5f2c",
	.phase_id = "load",
	.runtime_lane = "drill",
	.event_class = "transaction",
};

static const struct fp_event_mix mix = {
	.seed = 7, .accounts = 1000, .high_value_share = 0.1, .retry_share = 0.05,
};

#define WALL INT64_C(1795458121123000000) /* 2026-11-23T18:22:01.123Z */

Test(event, deterministic_in_seed_and_seq)
{
	struct fp_event a, b, c;
	struct fp_err err = {0};

	cr_assert_eq(fp_event_build(&ids, &mix, 42, WALL, &a, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_event_build(&ids, &mix, 42, WALL, &b, &err), FP_OK);
	cr_assert_str_eq(a.body, b.body);
	cr_assert_str_eq(a.payload_hash, b.payload_hash);
	cr_assert_str_eq(a.event_id, "e-00000000000000000042");
	cr_assert_eq(a.body_len, strlen(a.body));

	cr_assert_eq(fp_event_build(&ids, &mix, 43, WALL, &c, &err), FP_OK);
	cr_assert_str_neq(c.event_id, a.event_id);
	cr_assert_str_neq(c.body, a.body);
	fp_event_release(&c);

	/* Another seed: another event with the same number. */
	{
		struct fp_event_mix m2 = mix;
		struct fp_event d;

		m2.seed = 8;
		cr_assert_eq(fp_event_build(&ids, &m2, 42, WALL, &d, &err), FP_OK);
		cr_assert_str_neq(d.payload_hash, a.payload_hash);
		fp_event_release(&d);
	}
	fp_event_release(&a);
	fp_event_release(&b);
}

Test(event, envelope_matches_contract)
{
	struct fp_event ev;
	struct fp_err err = {0};
	json_t *j, *p;
	const char *key;
	json_t *val;
	static const char *const order[] = {
		"schema_version", "platform_run_id", "scenario_run_id", "phase_id",
		"runtime_lane", "event_class", "event_id", "occurred_at", "payload",
	};
	size_t i = 0;
	char hash[65];

	cr_assert_eq(fp_event_build(&ids, &mix, 5, WALL, &ev, &err), FP_OK);
	/* Compact: no whitespace between tokens. */
	cr_assert_null(strstr(ev.body, ": "));
	cr_assert_null(strstr(ev.body, ", "));
	j = json_loads(ev.body, 0, NULL);
	cr_assert_not_null(j);
	json_object_foreach(j, key, val) {
		cr_assert_lt(i, sizeof order / sizeof order[0]);
		cr_assert_str_eq(key, order[i], "member %zu is %s", i, key);
		i++;
	}
	cr_assert_eq(i, 9);
	cr_assert_str_eq(json_string_value(json_object_get(j, "schema_version")), "1.0");
	cr_assert_str_eq(json_string_value(json_object_get(j, "occurred_at")),
			 "2026-11-23T18:22:01.123Z");
	cr_assert_str_eq(json_string_value(json_object_get(j, "event_id")), ev.event_id);
	p = json_object_get(j, "payload");
	cr_assert(json_is_object(p));
	cr_assert_str_eq(json_string_value(json_object_get(p, "currency")), "EUR");
	cr_assert_str_eq(json_string_value(json_object_get(p, "account_id")), ev.account_id);
	cr_assert_eq(json_integer_value(json_object_get(p, "amount_minor")), ev.amount_minor);
	cr_assert_eq(json_object_size(p), 6);
	fp_payload_hash(p, hash);
	cr_assert_str_eq(hash, ev.payload_hash);
	json_decref(j);
	fp_event_release(&ev);

	/* Optional identity fields left out when absent. */
	{
		struct fp_event_ids min = {.platform_run_id = "r", .event_class = "c"};

		cr_assert_eq(fp_event_build(&min, &mix, 5, WALL, &ev, &err), FP_OK);
		j = json_loads(ev.body, 0, NULL);
		cr_assert_eq(json_object_size(j), 6);
		cr_assert_null(json_object_get(j, "phase_id"));
		json_decref(j);
		fp_event_release(&ev);
	}
}

Test(event, payload_hash_known_and_key_order_independent)
{
	json_t *a = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}",
			      "account_id", "acct-000017", "amount_minor", (json_int_t)12345,
			      "currency", "EUR", "merchant_id", "m-0003",
			      "channel", "ecom", "country", "DE");
	json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}",
			      "country", "DE", "channel", "ecom",
			      "merchant_id", "m-0003", "currency", "EUR",
			      "amount_minor", (json_int_t)12345,
			      "account_id", "acct-000017");
	char ha[65], hb[65];

	cr_assert(a && b);
	fp_payload_hash(a, ha);
	fp_payload_hash(b, hb);
	/* sha256 of {"account_id":"acct-000017","amount_minor":12345,
	 * "channel":"ecom","country":"DE","currency":"EUR","merchant_id":"m-0003"}
	 * (sha256sum of the compact, key-sorted text). */
	cr_assert_str_eq(ha, "a2b953bd9cd75b414ef458ad6ef1c4c6014e510d80a23f8ff4ab959d5c7407d9");
	cr_assert_str_eq(ha, hb);
	json_decref(a);
	json_decref(b);
}

Test(event, traffic_mix)
{
	enum { N = 10000 };
	int high = 0, risky = 0, retry = 0, ecom_low = 0, low = 0;

	for (uint64_t seq = 1; seq <= N; seq++) {
		struct fp_event ev;
		long acct;

		fp_event_draw(&mix, seq, &ev);
		acct = strtol(ev.account_id + 5, NULL, 10);
		cr_assert(strncmp(ev.account_id, "acct-", 5) == 0 && strlen(ev.account_id) == 11);
		cr_assert(acct >= 0 && acct < mix.accounts);
		cr_assert(strlen(ev.merchant_id) == 6 && strtol(ev.merchant_id + 2, NULL, 10) < 500);
		if (ev.high_value) {
			high++;
			cr_assert(ev.amount_minor >= 500000 && ev.amount_minor < 2000000);
			cr_assert_str_eq(ev.channel, "ecom");
		} else {
			low++;
			cr_assert(ev.amount_minor >= 100 && ev.amount_minor < 20000);
			ecom_low += strcmp(ev.channel, "ecom") == 0;
		}
		risky += !strcmp(ev.country, "BR") || !strcmp(ev.country, "NG") ||
			 !strcmp(ev.country, "IN");
		retry += ev.retry;
	}
	/* Binomial standard deviations: 0.3 % (10 %), 0.2 % (5 %); allow ~3.5. */
	cr_assert(high > 0.09 * N && high < 0.11 * N, "high=%d", high);
	cr_assert(risky > 0.09 * N && risky < 0.11 * N, "risky=%d", risky);
	cr_assert(retry > 0.043 * N && retry < 0.057 * N, "retry=%d", retry);
	cr_assert(ecom_low > 0.27 * low && ecom_low < 0.33 * low, "ecom=%d/%d", ecom_low, low);
}

Test(event, trace_context)
{
	struct fp_event ev;
	struct fp_rng rng;
	char tp[FP_TRACEPARENT_MAX], trace[33];

	memset(&ev, 0, sizeof ev);
	fp_rng_seed(&rng, 1, 2);
	fp_event_new_trace(&ev, &rng);
	fp_event_traceparent(&ev, tp);
	cr_assert_eq(strlen(tp), 55);
	cr_assert(strncmp(tp, "00-", 3) == 0 && tp[35] == '-' && strcmp(tp + 52, "-01") == 0);
	cr_assert_eq(strspn(tp + 3, "0123456789abcdef"), 32);
	cr_assert_eq(strspn(tp + 36, "0123456789abcdef"), 16);
	memcpy(trace, ev.trace_id, sizeof trace);
	{
		char span[17];

		memcpy(span, ev.span_id, sizeof span);
		fp_event_new_span(&ev, &rng);
		cr_assert_str_eq(ev.trace_id, trace);
		cr_assert_str_neq(ev.span_id, span);
	}
}

/* ---- event kinds -------------------------------------------------------- */

static const double full_mix[FP_EVENT_KIND_COUNT] = {
	[FP_EVENT_VALID] = 0.5,          [FP_EVENT_COMPATIBLE] = 0.1,
	[FP_EVENT_MISSING_FIELD] = 0.1,  [FP_EVENT_WRONG_TYPE] = 0.1,
	[FP_EVENT_UNSUPPORTED_VERSION] = 0.05, [FP_EVENT_MALFORMED_JSON] = 0.05,
	[FP_EVENT_OVERSIZE] = 0.05,      [FP_EVENT_HASH_CONFLICT] = 0.05,
};

Test(event, kind_mix_proportions_over_20k)
{
	struct fp_event_mix m = mix;
	int64_t count[FP_EVENT_KIND_COUNT] = {0};
	const int n = 20000;

	memcpy(m.kinds, full_mix, sizeof m.kinds);
	for (int i = 1; i <= n; i++) {
		struct fp_event ev, plain;

		fp_event_draw(&m, (uint64_t)i, &ev);
		count[ev.kind]++;
		/* The kind draw comes last: the other fields do not move. */
		fp_event_draw(&mix, (uint64_t)i, &plain);
		cr_assert_str_eq(ev.account_id, plain.account_id);
		cr_assert_eq(ev.amount_minor, plain.amount_minor);
		cr_assert_eq(plain.kind, FP_EVENT_VALID);
		if (ev.kind == FP_EVENT_HASH_CONFLICT)
			cr_assert_eq(ev.retry, 0);
		else
			cr_assert_eq(ev.retry, plain.retry);
	}
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++) {
		double p = full_mix[k], want = p * n;
		double sd = sqrt(n * p * (1 - p));

		/* 4.5 sigma: a fixed seed either passes forever or never. */
		cr_assert(fabs((double)count[k] - want) < 4.5 * sd,
			  "%s: %lld of %d, want %.0f +- %.0f",
			  fp_event_kind_name((enum fp_event_kind)k),
			  (long long)count[k], n, want, 4.5 * sd);
	}
	/* Shares need not add up to 1; only a kind with no share is never
	 * drawn. */
	memset(m.kinds, 0, sizeof m.kinds);
	m.kinds[FP_EVENT_WRONG_TYPE] = 3;
	for (int i = 1; i <= 100; i++) {
		struct fp_event ev;

		fp_event_draw(&m, (uint64_t)i, &ev);
		cr_assert_eq(ev.kind, FP_EVENT_WRONG_TYPE);
	}
}

/* Build the first event of kind k (scanning seqs) and parse it back. */
static json_t *build_kind(enum fp_event_kind k, struct fp_event *ev)
{
	struct fp_event_mix m = mix;
	struct fp_err err = {0};
	json_error_t jerr;
	json_t *j;

	m.kinds[k] = 1;
	cr_assert_eq(fp_event_build(&ids, &m, 42, WALL, ev, &err), FP_OK, "%s",
		     err.msg);
	cr_assert_eq(ev->kind, k);
	cr_assert_eq(ev->body_len, strlen(ev->body));
	j = json_loadb(ev->body, ev->body_len, 0, &jerr);
	if (k == FP_EVENT_MALFORMED_JSON) {
		cr_assert_null(j, "malformed body parsed: %s", ev->body);
		return NULL;
	}
	cr_assert_not_null(j, "%s: %s", fp_event_kind_name(k), jerr.text);
	return j;
}

static const char *sv(json_t *j)
{
	return json_string_value(json_object_get(j, "schema_version"));
}

/* The payload hash recomputed from the parsed body. */
static void assert_hash_matches(json_t *j, const struct fp_event *ev)
{
	char h[65];

	fp_payload_hash(json_object_get(j, "payload"), h);
	cr_assert_str_eq(h, ev->payload_hash);
}

Test(event, kind_bodies_have_their_shape)
{
	struct fp_event ev;
	json_t *j, *p;

	j = build_kind(FP_EVENT_VALID, &ev);
	cr_assert_str_eq(sv(j), "1.0");
	cr_assert(json_is_integer(json_object_get(json_object_get(j, "payload"),
						  "amount_minor")));
	cr_assert_str_eq(fp_event_expect(&ev), "valid");
	json_decref(j);
	fp_event_release(&ev);

	j = build_kind(FP_EVENT_COMPATIBLE, &ev);
	p = json_object_get(j, "payload");
	cr_assert_str_eq(sv(j), "1.1");
	cr_assert(json_is_string(json_object_get(p, "device_id")));
	cr_assert_str_eq(ev.schema_version, "1.1");
	assert_hash_matches(j, &ev);
	json_decref(j);
	fp_event_release(&ev);

	j = build_kind(FP_EVENT_MISSING_FIELD, &ev); /* seq 42: even */
	p = json_object_get(j, "payload");
	cr_assert_null(json_object_get(p, "amount_minor"));
	cr_assert_not_null(json_object_get(p, "currency"));
	cr_assert_str_eq(ev.dropped_field, "amount_minor");
	cr_assert_str_eq(fp_event_expect(&ev), "missing_field");
	assert_hash_matches(j, &ev);
	json_decref(j);
	fp_event_release(&ev);

	j = build_kind(FP_EVENT_WRONG_TYPE, &ev);
	p = json_object_get(j, "payload");
	cr_assert(json_is_string(json_object_get(p, "amount_minor")));
	cr_assert_eq(strtoll(json_string_value(json_object_get(p, "amount_minor")),
			     NULL, 10),
		     ev.amount_minor);
	json_decref(j);
	fp_event_release(&ev);

	j = build_kind(FP_EVENT_UNSUPPORTED_VERSION, &ev);
	cr_assert_str_eq(sv(j), "2.0");
	json_decref(j);
	fp_event_release(&ev);

	build_kind(FP_EVENT_MALFORMED_JSON, &ev);
	cr_assert_eq(ev.payload_hash[0], '\0');
	cr_assert(strncmp(ev.body, "{\"schema_version\":\"1.0\"", 23) == 0);
	fp_event_release(&ev);

	j = build_kind(FP_EVENT_OVERSIZE, &ev);
	cr_assert_gt(ev.body_len, FP_EVENT_OVERSIZE_MIN);
	cr_assert_gt(ev.body_len, 1024u * 1024u + 1024u);
	cr_assert_str_eq(sv(j), "1.0");
	cr_assert(json_is_string(json_object_get(json_object_get(j, "payload"),
						  "note")));
	cr_assert_str_eq(json_string_value(json_object_get(j, "event_id")),
			 ev.event_id);
	assert_hash_matches(j, &ev);
	json_decref(j);
	fp_event_release(&ev);

	/* hash_conflict: a valid first send, then the same identity with
	 * amount + 1, so another payload hash. */
	{
		char first_hash[65];
		int64_t amount;

		j = build_kind(FP_EVENT_HASH_CONFLICT, &ev);
		cr_assert_str_eq(sv(j), "1.0");
		cr_assert_str_eq(fp_event_expect(&ev), "valid");
		memcpy(first_hash, ev.payload_hash, sizeof first_hash);
		amount = ev.amount_minor;
		json_decref(j);
		cr_assert_eq(fp_event_make_conflict(&ids, &ev, NULL), FP_OK);
		j = json_loads(ev.body, 0, NULL);
		cr_assert_not_null(j);
		p = json_object_get(j, "payload");
		cr_assert_eq(json_integer_value(json_object_get(p, "amount_minor")),
			     amount + 1);
		cr_assert_str_eq(json_string_value(json_object_get(j, "event_id")),
				 "e-00000000000000000042");
		cr_assert_str_eq(json_string_value(json_object_get(j, "occurred_at")),
				 "2026-11-23T18:22:01.123Z");
		cr_assert_str_neq(ev.payload_hash, first_hash);
		assert_hash_matches(j, &ev);
		cr_assert_str_eq(fp_event_expect(&ev), "hash_conflict");
		json_decref(j);
		fp_event_release(&ev);
	}

	/* seq 43 (odd) drops currency instead. */
	{
		struct fp_event_mix m = mix;
		struct fp_err err = {0};

		m.kinds[FP_EVENT_MISSING_FIELD] = 1;
		cr_assert_eq(fp_event_build(&ids, &m, 43, WALL, &ev, &err), FP_OK);
		j = json_loads(ev.body, 0, NULL);
		p = json_object_get(j, "payload");
		cr_assert_null(json_object_get(p, "currency"));
		cr_assert_not_null(json_object_get(p, "amount_minor"));
		json_decref(j);
		fp_event_release(&ev);
	}
}

/* ---- the direct formatter against a jansson oracle ----------------------- */

/* The jansson builder the generator used before bodies were formatted
 * directly: the bytes and hashes must not have moved. */
static json_t *oracle_payload(const struct fp_event *ev)
{
	json_t *p = json_object();
	char tmp[32];

	json_object_set_new(p, "account_id", json_string(ev->account_id));
	if (ev->kind == FP_EVENT_WRONG_TYPE) {
		snprintf(tmp, sizeof tmp, "%lld", (long long)ev->amount_minor);
		json_object_set_new(p, "amount_minor", json_string(tmp));
	} else if (!ev->dropped_field || strcmp(ev->dropped_field, "amount_minor")) {
		json_object_set_new(p, "amount_minor", json_integer(ev->amount_minor));
	}
	if (!ev->dropped_field || strcmp(ev->dropped_field, "currency"))
		json_object_set_new(p, "currency", json_string("EUR"));
	json_object_set_new(p, "merchant_id", json_string(ev->merchant_id));
	json_object_set_new(p, "channel", json_string(ev->channel));
	json_object_set_new(p, "country", json_string(ev->country));
	if (ev->kind == FP_EVENT_COMPATIBLE) {
		snprintf(tmp, sizeof tmp, "dev-%06llu",
			 (unsigned long long)(ev->seq % 1000000));
		json_object_set_new(p, "device_id", json_string(tmp));
	}
	if (ev->kind == FP_EVENT_OVERSIZE) {
		size_t n = FP_EVENT_OVERSIZE_MIN + 1;
		char *note = malloc(n);

		memset(note, 'x', n);
		json_object_set_new(p, "note", json_stringn(note, n));
		free(note);
	}
	return p;
}

/* @returns the body jansson would have made (caller frees), its hash. */
static char *oracle_body(const struct fp_event_ids *id, const struct fp_event *ev,
			 char hash[65], size_t *len)
{
	json_t *env = json_object(), *p = oracle_payload(ev);
	char when[40], *s;

	fp_payload_hash(p, hash);
	fp_fmt_iso8601(ev->occurred_wall_ns, when, sizeof when);
	json_object_set_new(env, "schema_version", json_string(ev->schema_version));
	json_object_set_new(env, "platform_run_id", json_string(id->platform_run_id));
	if (id->scenario_run_id)
		json_object_set_new(env, "scenario_run_id", json_string(id->scenario_run_id));
	if (id->phase_id)
		json_object_set_new(env, "phase_id", json_string(id->phase_id));
	if (id->runtime_lane)
		json_object_set_new(env, "runtime_lane", json_string(id->runtime_lane));
	json_object_set_new(env, "event_class", json_string(id->event_class));
	json_object_set_new(env, "event_id", json_string(ev->event_id));
	json_object_set_new(env, "occurred_at", json_string(when));
	json_object_set_new(env, "payload", p);
	s = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	cr_assert_not_null(s);
	*len = strlen(s);
	if (ev->kind == FP_EVENT_MALFORMED_JSON) {
		*len /= 2;
		s[*len] = '\0';
		hash[0] = '\0';
	}
	return s;
}

static void assert_same_as_oracle(const struct fp_event_ids *id,
				  const struct fp_event *ev)
{
	char hash[65];
	size_t len;
	char *want = oracle_body(id, ev, hash, &len);

	cr_assert_eq(ev->body_len, len, "seq %llu kind %s: length %zu, oracle %zu",
		     (unsigned long long)ev->seq, fp_event_kind_name(ev->kind),
		     ev->body_len, len);
	cr_assert(memcmp(ev->body, want, len) == 0, "seq %llu: body\n%.400s\noracle\n%.400s",
		  (unsigned long long)ev->seq, ev->body, want);
	cr_assert_eq(ev->body[len], '\0');
	cr_assert_str_eq(ev->payload_hash, hash, "seq %llu", (unsigned long long)ev->seq);
	free(want);
}

Test(event, direct_bytes_equal_jansson_oracle)
{
	/* Identity strings that need every escape jansson makes, UTF-8 kept
	 * verbatim, a slash (not escaped), DEL (not escaped). */
	static const struct fp_event_ids odd = {
		.platform_run_id = "run \"q\" \\ / \x01\x1f\x7f",
		.scenario_run_id = "tab\there\nnl\rcr\bbs\fff",
		.phase_id = "ph\xc3\xa4se-\xe2\x82\xac-\xf0\x9f\x98\x80",
		.runtime_lane = NULL,
		.event_class = "fraud.v1",
	};
	const struct fp_event_ids *sets[] = {&ids, &odd};
	struct fp_event_mix m = mix;
	/* Walls across a day boundary and with a zero millisecond part,
	 * so the builder's date cache is exercised. */
	const int64_t walls[] = {WALL, INT64_C(1795478399999000000),
				 INT64_C(1795478400000000000), INT64_C(0),
				 INT64_C(951782400000000000) /* 2000-02-29 */};

	memcpy(m.kinds, full_mix, sizeof m.kinds);
	for (size_t si = 0; si < 2; si++) {
		struct fp_event_builder *b;
		struct fp_event reused;
		struct fp_err err = {0};

		cr_assert_eq(fp_event_builder_new(sets[si], &b, &err), FP_OK, "%s", err.msg);
		memset(&reused, 0, sizeof reused);
		for (uint64_t seq = 1; seq <= 3000; seq++) {
			int64_t wall = walls[seq % 5] + (int64_t)seq * 1000003;
			struct fp_event fresh;

			/* The reused buffer and a fresh build agree. */
			cr_assert_eq(fp_event_build_with(b, &m, seq, wall, &reused, &err),
				     FP_OK, "%s", err.msg);
			assert_same_as_oracle(sets[si], &reused);
			if (seq % 97 == 0) {
				cr_assert_eq(fp_event_build(sets[si], &m, seq, wall, &fresh, &err),
					     FP_OK);
				cr_assert_str_eq(fresh.body, reused.body);
				fp_event_release(&fresh);
			}
			if (reused.kind == FP_EVENT_HASH_CONFLICT) {
				cr_assert_eq(fp_event_conflict_with(b, &reused, &err), FP_OK);
				assert_same_as_oracle(sets[si], &reused);
			}
		}
		fp_event_release(&reused);
		fp_event_builder_free(b);
	}
}

Test(event, builder_refuses_invalid_utf8)
{
	static const char *const bad[] = {
		"\xc0\xaf",             /* overlong '/' */
		"\xed\xa0\x80",         /* surrogate */
		"\xf4\x90\x80\x80",     /* above U+10FFFF */
		"a\x80",                /* stray continuation */
		"\xe2\x82",             /* truncated */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct fp_event_ids id = ids;
		struct fp_event_builder *b = (void *)1;
		struct fp_err err = {0};

		id.phase_id = bad[i];
		/* jansson refuses the same strings. */
		cr_assert_null(json_string(bad[i]));
		cr_assert_eq(fp_event_builder_new(&id, &b, &err), FP_EINVAL, "case %zu", i);
		cr_assert_null(b);
	}
}
