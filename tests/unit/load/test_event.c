/*
 * test_event.c - event bodies: deterministic in (seed, seq), the contract's
 * envelope, the payload hash (canonical, key-order independent, known
 * digest) and the traffic mix (high-value share, ranges).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
