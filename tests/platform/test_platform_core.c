/* Unit tests of rp_core, the reference platform's pure logic: the rejection taxonomy, the payload
 * hash canonical form, the scoring thresholds a load generator relies on, and traceparent
 * parsing. If any of these drift, drills would pass or fail for the wrong reason. */
#include <criterion/criterion.h>
#include <string.h>

#include "rp_core.h"

static const char *valid =
    "{\"schema_version\":\"1.0\",\"platform_run_id\":\"fpd-1\",\"scenario_run_id\":\"s-1\","
    "\"phase_id\":\"load\",\"runtime_lane\":\"drill\",\"event_class\":\"transaction\","
    "\"event_id\":\"e-42\",\"occurred_at\":\"2026-11-23T18:22:01.123Z\",\"payload\":{"
    "\"account_id\":\"acct-0017\",\"amount_minor\":12345,\"currency\":\"EUR\","
    "\"merchant_id\":\"m-003\",\"channel\":\"ecom\",\"country\":\"DE\"}}";

static rp_reason parse(const char *body, char *detail) {
  rp_event ev;
  rp_reason r = rp_event_parse(body, strlen(body), &ev, detail, 256);
  rp_event_free(&ev);
  return r;
}

/* Replaces the first occurrence of `from` in the valid event by `to`. */
static char *mutate(const char *from, const char *to) {
  static char buf[2048];
  const char *p = strstr(valid, from);
  cr_assert_not_null(p, "fixture lacks %s", from);
  snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - valid), valid, to, p + strlen(from));
  return buf;
}

Test(validate, accepts_the_contract_example) {
  rp_event ev;
  char d[256];
  cr_assert_eq(rp_event_parse(valid, strlen(valid), &ev, d, sizeof d), RP_OK, "%s", d);
  cr_assert_str_eq(ev.platform_run_id, "fpd-1");
  cr_assert_str_eq(ev.event_id, "e-42");
  cr_assert_str_eq(ev.account_id, "acct-0017");
  cr_assert_eq(ev.amount_minor, 12345);
  cr_assert_str_eq(ev.phase_id, "load");
  cr_assert_eq(strlen(ev.payload_hash), 64);
  rp_event_free(&ev);
}

Test(validate, schema_version_major_one_variants) {
  char d[256];
  cr_assert_eq(parse(mutate("\"1.0\"", "\"1\""), d), RP_OK, "%s", d);
  cr_assert_eq(parse(mutate("\"1.0\"", "\"1.7\""), d), RP_OK, "%s", d);
  cr_assert_eq(parse(mutate("\"1.0\"", "\"2.0\""), d), RP_UNSUPPORTED_VERSION);
  cr_assert_eq(parse(mutate("\"1.0\"", "\"10.0\""), d), RP_UNSUPPORTED_VERSION);
  cr_assert_eq(parse(mutate("\"1.0\"", "1.0"), d), RP_WRONG_TYPE);
}

Test(validate, malformed_json) {
  char d[256];
  cr_assert_eq(parse("{\"schema_version\":", d), RP_MALFORMED_JSON);
  cr_assert_eq(parse("", d), RP_MALFORMED_JSON);
  cr_assert_eq(parse("{\"a\":1,\"a\":2}", d), RP_MALFORMED_JSON, "duplicate keys");
  cr_assert_eq(parse("[1,2]", d), RP_WRONG_TYPE, "array body");
}

Test(validate, missing_fields) {
  char d[256];
  cr_assert_eq(parse(mutate("\"event_id\":\"e-42\",", ""), d), RP_MISSING_FIELD);
  cr_assert(strstr(d, "event_id"), "detail: %s", d);
  cr_assert_eq(parse(mutate("\"event_id\":\"e-42\"", "\"event_id\":\"\""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse(mutate("\"platform_run_id\":\"fpd-1\",", ""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse(mutate("\"event_class\":\"transaction\",", ""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse(mutate("\"schema_version\":\"1.0\",", ""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse(mutate("\"account_id\":\"acct-0017\",", ""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse(mutate("\"amount_minor\":12345,", ""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse(mutate(",\"currency\":\"EUR\"", ""), d), RP_MISSING_FIELD);
  cr_assert_eq(parse("{\"schema_version\":\"1.0\",\"platform_run_id\":\"r\","
                     "\"event_class\":\"c\",\"event_id\":\"e\"}", d), RP_MISSING_FIELD);
  cr_assert(strstr(d, "payload"), "detail: %s", d);
}

Test(validate, wrong_types) {
  char d[256];
  cr_assert_eq(parse(mutate("\"e-42\"", "42"), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("12345", "\"12345\""), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("12345", "123.45"), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("12345", "-1"), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("\"EUR\"", "\"EURO\""), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("\"EUR\"", "\"E1R\""), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("\"acct-0017\"", "17"), d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("\"load\"", "7"), d), RP_WRONG_TYPE, "phase_id becomes a header");
  cr_assert_eq(parse("{\"schema_version\":\"1.0\",\"platform_run_id\":\"r\","
                     "\"event_class\":\"c\",\"event_id\":\"e\",\"payload\":[]}", d), RP_WRONG_TYPE);
  cr_assert_eq(parse(mutate("12345", "0"), d), RP_OK, "zero amount is allowed");
}

Test(validate, reason_names_match_the_taxonomy) {
  cr_assert_str_eq(rp_reason_name(RP_MALFORMED_JSON), "malformed_json");
  cr_assert_str_eq(rp_reason_name(RP_MISSING_FIELD), "missing_field");
  cr_assert_str_eq(rp_reason_name(RP_WRONG_TYPE), "wrong_type");
  cr_assert_str_eq(rp_reason_name(RP_UNSUPPORTED_VERSION), "unsupported_version");
}

Test(hash, sha256_known_vector) {
  char h[65];
  rp_sha256_hex("abc", 3, h);
  cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(hash, payload_hash_is_compact_sorted_json) {
  /* Expected values are sha256sum of the hand-written canonical strings:
   * {"account_id":"acct-0017","amount_minor":12345,"channel":"ecom","country":"DE",
   *  "currency":"EUR","merchant_id":"m-003"}  and  {"a":{"x":[1,2.5,"s"],"y":null},"b":true} */
  char h[65];
  json_t *p = json_loads("{ \"merchant_id\" : \"m-003\", \"currency\":\"EUR\", \"country\":\"DE\","
                         " \"channel\":\"ecom\", \"amount_minor\": 12345, \"account_id\":\"acct-0017\" }",
                         0, NULL);
  cr_assert(rp_payload_hash(p, h));
  cr_assert_str_eq(h, "5011e159ebdb46e005d8b9bc923869a1ccc764f47777eea2107b7c4a05c3de01");
  json_decref(p);
  p = json_loads("{\"b\":true,\"a\":{\"y\":null,\"x\":[1,2.5,\"s\"]}}", 0, NULL);
  cr_assert(rp_payload_hash(p, h));
  cr_assert_str_eq(h, "a1c0b18001534d6ea7a4b8e70acd9d1a9e9856b39c5445aabf0d779af3d2cbee");
  json_decref(p);
}

Test(hash, key_order_and_identity_fields_do_not_change_it) {
  rp_event a, b;
  char d[256];
  const char *other =
      "{\"payload\":{\"country\":\"DE\",\"channel\":\"ecom\",\"merchant_id\":\"m-003\","
      "\"currency\":\"EUR\",\"amount_minor\":12345,\"account_id\":\"acct-0017\"},"
      "\"event_id\":\"e-other\",\"event_class\":\"transaction\",\"platform_run_id\":\"fpd-2\","
      "\"schema_version\":\"1.0\"}";
  cr_assert_eq(rp_event_parse(valid, strlen(valid), &a, d, sizeof d), RP_OK);
  cr_assert_eq(rp_event_parse(other, strlen(other), &b, d, sizeof d), RP_OK);
  cr_assert_str_eq(a.payload_hash, b.payload_hash);
  cr_assert_str_eq(a.payload_hash, "5011e159ebdb46e005d8b9bc923869a1ccc764f47777eea2107b7c4a05c3de01");
  rp_event_free(&a);
  rp_event_free(&b);
  json_t *c = json_pack("{s:s,s:I,s:s}", "account_id", "acct-0017", "amount_minor",
                        (json_int_t)12346, "currency", "EUR");
  char h[65];
  cr_assert(rp_payload_hash(c, h));
  cr_assert_str_neq(h, "5011e159ebdb46e005d8b9bc923869a1ccc764f47777eea2107b7c4a05c3de01");
  json_decref(c);
}

static double score_of(long long amount, const char *channel, const char *country,
                       const char *merchant) {
  rp_model m;
  cr_assert(rp_model_load(rp_model_spec, &m));
  json_t *p = json_pack("{s:s,s:I,s:s}", "account_id", "a", "amount_minor", (json_int_t)amount,
                        "currency", "EUR");
  if (channel) json_object_set_new(p, "channel", json_string(channel));
  if (country) json_object_set_new(p, "country", json_string(country));
  if (merchant) json_object_set_new(p, "merchant_id", json_string(merchant));
  double s = rp_model_score(&m, p);
  json_decref(p);
  return s;
}

Test(model, spec_loads_and_digest_is_sha256_of_spec) {
  rp_model m;
  char h[65];
  cr_assert(rp_model_load(rp_model_spec, &m));
  cr_assert_str_eq(m.version, "m-fixed-2026.11.0");
  rp_sha256_hex(rp_model_spec, strlen(rp_model_spec), h);
  cr_assert_str_eq(m.bundle_digest, h);
  cr_assert_not(rp_model_load("model=x;bias=1", &m), "missing weights must be refused");
  cr_assert_not(rp_model_load("model=x;bias=oops;w_amount=1;w_ecom=1;w_foreign=1;w_merchant=1", &m));
}

Test(model, large_ecom_is_a_case) {
  for (long long a = 500000; a <= 100000000; a *= 10) {
    double s = score_of(a, "ecom", "DE", "m-003");
    cr_assert_geq(s, RP_CASE_THRESHOLD, "amount %lld score %f", a, s);
    cr_assert_str_eq(rp_model_outcome(s), "decline");
    cr_assert_geq(score_of(a, "ecom", NULL, NULL), RP_CASE_THRESHOLD, "amount %lld", a);
  }
}

Test(model, small_card_present_is_approved) {
  static const long long amounts[] = {0, 1, 999, 5000, 12345, 50000, 100000};
  static const char *const countries[] = {"DE", "US", "BR", NULL};
  static const char *const merchants[] = {"m-003", "m-009", NULL};
  for (size_t i = 0; i < sizeof amounts / sizeof *amounts; i++)
    for (size_t j = 0; j < 4; j++)
      for (size_t k = 0; k < 3; k++) {
        double s = score_of(amounts[i], "card_present", countries[j], merchants[k]);
        cr_assert_lt(s, 0.5, "amount %lld country %s merchant %s: %f", amounts[i],
                     countries[j] ? countries[j] : "-", merchants[k] ? merchants[k] : "-", s);
        cr_assert_str_eq(rp_model_outcome(s), "approve");
      }
}

Test(model, small_ecom_at_home_stays_below_case_threshold) {
  cr_assert_lt(score_of(400000, "ecom", "DE", "m-003"), RP_CASE_THRESHOLD);
  cr_assert_lt(score_of(400000, "ecom", NULL, "m-016"), RP_CASE_THRESHOLD);
  cr_assert_lt(score_of(12345, "ecom", "DE", "m-003"), 0.5);
  /* foreign and a risky merchant only ever raise the score */
  cr_assert_gt(score_of(100000, "ecom", "BR", "m-009"), score_of(100000, "ecom", "DE", "m-003"));
}

Test(model, outcome_bands) {
  cr_assert_str_eq(rp_model_outcome(0.0), "approve");
  cr_assert_str_eq(rp_model_outcome(0.4999), "approve");
  cr_assert_str_eq(rp_model_outcome(0.5), "review");
  cr_assert_str_eq(rp_model_outcome(0.7999), "review");
  cr_assert_str_eq(rp_model_outcome(0.8), "decline");
  cr_assert_str_eq(rp_model_outcome(1.0), "decline");
}

Test(traceparent, valid) {
  char t[33], p[17];
  cr_assert(rp_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, p));
  cr_assert_str_eq(t, "4bf92f3577b34da6a3ce929d0e0e4736");
  cr_assert_str_eq(p, "00f067aa0ba902b7");
  cr_assert(rp_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-xyz", t, NULL),
            "a future version may carry more fields");
}

Test(traceparent, invalid) {
  char t[33];
  static const char *const bad[] = {
      NULL,
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       /* no flags */
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    /* uppercase */
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    /* zero trace id */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    /* zero parent id */
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* version ff */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  /* v00 must be exact */
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* separator */
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    /* non-hex */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_not(rp_traceparent_parse(bad[i], t, NULL), "case %zu accepted", i);
}

Test(defect, names) {
  rp_defect d;
  cr_assert(rp_defect_parse("none", &d) && d == RP_DEFECT_NONE);
  cr_assert(rp_defect_parse("dedupe-off", &d) && d == RP_DEFECT_DEDUPE_OFF);
  cr_assert(rp_defect_parse("case-dup", &d) && d == RP_DEFECT_CASE_DUP);
  cr_assert_not(rp_defect_parse("dedupe_off", &d));
  cr_assert_not(rp_defect_parse(NULL, &d));
  cr_assert_str_eq(rp_defect_name(RP_DEFECT_CASE_DUP), "case-dup");
}
