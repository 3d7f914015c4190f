/* Unit tests of rp_core, the reference platform's pure logic: the rejection taxonomy, the payload
 * hash canonical form, the scoring thresholds a load generator relies on, and traceparent
 * parsing. If any of these drift, drills would pass or fail for the wrong reason. */
#include <criterion/criterion.h>
#include <math.h>
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

Test(validate, schema_1_1_device_id) {
  char d[256];
  rp_event ev;
  const char *b11 = mutate("\"1.0\"", "\"1.1\"");
  char body[2048];
  snprintf(body, sizeof body, "%s", b11);
  cr_assert_eq(parse(body, d), RP_OK, "1.1 without device_id: %s", d);
  char *p = strstr(body, "\"account_id\"");
  char with[2048];
  snprintf(with, sizeof with, "%.*s\"device_id\":\"dev-9\",%s", (int)(p - body), body, p);
  cr_assert_eq(rp_event_parse(with, strlen(with), &ev, d, sizeof d), RP_OK, "%s", d);
  cr_assert_str_eq(ev.device_id, "dev-9");
  cr_assert_str_eq(ev.schema_version, "1.1");
  rp_event_free(&ev);
  snprintf(with, sizeof with, "%.*s\"device_id\":9,%s", (int)(p - body), body, p);
  cr_assert_eq(parse(with, d), RP_WRONG_TYPE);
  cr_assert(strstr(d, "device_id"), "detail: %s", d);
  /* 1.0 carries unknown fields through untouched, whatever their type */
  const char *b10 = mutate("\"account_id\"", "\"device_id\":9,\"account_id\"");
  cr_assert_eq(parse(b10, d), RP_OK, "%s", d);
  cr_assert_eq(parse(mutate("\"1.0\"", "\"2.1\""), d), RP_UNSUPPORTED_VERSION);
}

Test(validate, quarantine_tuple) {
  rp_tuple t;
  rp_tuple_peek(valid, strlen(valid), "h-run", "h-class", "h-e", &t);
  cr_assert_str_eq(t.platform_run_id, "fpd-1");
  cr_assert_str_eq(t.event_class, "transaction");
  cr_assert_str_eq(t.event_id, "e-42");
  rp_tuple_free(&t);
  const char *cut = "{\"platform_run_id\":";
  rp_tuple_peek(cut, strlen(cut), "h-run", "h-class", "h-e", &t);
  cr_assert_str_eq(t.platform_run_id, "h-run", "malformed body: the headers' tuple");
  cr_assert_str_eq(t.event_id, "h-e");
  rp_tuple_free(&t);
  const char *odd = "{\"platform_run_id\":\"r\",\"event_id\":7}";
  rp_tuple_peek(odd, strlen(odd), NULL, NULL, NULL, &t);
  cr_assert_str_eq(t.platform_run_id, "r");
  cr_assert_null(t.event_class);
  cr_assert_null(t.event_id, "a non-string id is not a tuple member");
  rp_tuple_free(&t);
}

Test(validate, reason_names_match_the_taxonomy) {
  cr_assert_str_eq(rp_reason_name(RP_OVERSIZE), "oversize");
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
  rp_model_builtin(&m);
  json_t *p = json_pack("{s:s,s:I,s:s}", "account_id", "a", "amount_minor", (json_int_t)amount,
                        "currency", "EUR");
  if (channel) json_object_set_new(p, "channel", json_string(channel));
  if (country) json_object_set_new(p, "country", json_string(country));
  if (merchant) json_object_set_new(p, "merchant_id", json_string(merchant));
  rp_features f;
  rp_features_from_payload(p, &f);
  double s = rp_model_score(&m, &f, false);
  json_decref(p);
  return s;
}

Test(model, builtin_and_digest_is_sha256_of_weights) {
  rp_model m;
  char h[65];
  rp_model_builtin(&m);
  cr_assert_str_eq(m.version, "m-fixed-2026.11.0");
  rp_sha256_hex(rp_model_builtin_weights, strlen(rp_model_builtin_weights), h);
  cr_assert_str_eq(m.bundle_digest, h);
  cr_assert_float_eq(m.bias, -7.4, 1e-12);
  cr_assert_float_eq(m.w[RP_F_AMOUNT], 2.0, 1e-12);
  cr_assert_float_eq(m.w[RP_F_ECOM], 1.5, 1e-12);
  cr_assert_float_eq(m.w[RP_F_FOREIGN], 0.6, 1e-12);
  cr_assert_float_eq(m.w[RP_F_MERCHANT_RISK], 0.4, 1e-12);
  cr_assert_float_eq(m.w[RP_F_TXN_COUNT_24H], 0.0, 1e-12);
  cr_assert_eq(m.extra_latency_ms, 0);
  cr_assert_eq(m.n_contract, 0);
}

Test(model, json_weights) {
  rp_model m;
  char err[128];
  cr_assert(rp_model_from_json("m-2", "{\"bias\":-1,\"txn_count_24h\":0.01,\"amount\":0.5}",
                               "digest-x", 50, &m, err, sizeof err), "%s", err);
  cr_assert_str_eq(m.version, "m-2");
  cr_assert_str_eq(m.bundle_digest, "digest-x");
  cr_assert_eq(m.extra_latency_ms, 50);
  cr_assert_float_eq(m.w[RP_F_ECOM], 0.0, 1e-12, "a missing weight is 0");
  rp_features f;
  json_t *p = json_pack("{s:s,s:I,s:s}", "account_id", "a", "amount_minor", (json_int_t)99900,
                        "currency", "EUR");
  rp_features_from_payload(p, &f);
  json_decref(p);
  cr_assert_float_eq(f.x[RP_F_AMOUNT], 3.0, 1e-12, "log10(1 + 999)");
  cr_assert_not(f.present[RP_F_TXN_COUNT_24H], "online feature absent until fetched");
  /* without the online feature: bias + 0.5 * 3 = 0.5 */
  cr_assert_float_eq(rp_model_score(&m, &f, false), 1.0 / (1.0 + exp(-0.5)), 1e-12);
  f.x[RP_F_TXN_COUNT_24H] = 100;
  f.present[RP_F_TXN_COUNT_24H] = true;
  cr_assert_float_eq(rp_model_score(&m, &f, false), 1.0 / (1.0 + exp(-1.5)), 1e-12);
  /* the fallback model zeroes the feature-store weights */
  cr_assert_float_eq(rp_model_score(&m, &f, true), 1.0 / (1.0 + exp(-0.5)), 1e-12);
  json_t *fj = rp_features_json(&f);
  cr_assert_float_eq(json_real_value(json_object_get(fj, "txn_count_24h")), 100.0, 1e-12);
  cr_assert_eq(json_object_size(fj), 5);
  json_decref(fj);

  cr_assert(rp_model_from_json("m-3", "{\"bias\":0}", NULL, 0, &m, err, sizeof err));
  char h[65];
  rp_sha256_hex("{\"bias\":0}", 10, h);
  cr_assert_str_eq(m.bundle_digest, h, "no digest given: sha256 of the weights");
  cr_assert_not(rp_model_from_json("m-4", "{\"amount\":1}", NULL, 0, &m, err, sizeof err));
  cr_assert_not(rp_model_from_json("m-4", "{\"bias\":0,\"ecom\":\"x\"}", NULL, 0, &m, err,
                                   sizeof err));
  cr_assert_not(rp_model_from_json("m-4", "[1]", NULL, 0, &m, err, sizeof err));
  cr_assert_not(rp_model_from_json("", "{\"bias\":0}", NULL, 0, &m, err, sizeof err));
}

Test(model, feature_contract) {
  rp_model m;
  char err[128];
  rp_model_builtin(&m);
  cr_assert(rp_model_set_contract(&m,
                                  "[{\"name\":\"amount\",\"type\":\"float\",\"min\":0,\"max\":8,"
                                  "\"scale\":1},{\"name\":\"txn_count_24h\",\"type\":\"float\","
                                  "\"min\":0,\"max\":1000,\"scale\":1}]",
                                  err, sizeof err), "%s", err);
  cr_assert_eq(m.n_contract, 2);
  rp_features f;
  json_t *p = json_pack("{s:s,s:I,s:s}", "account_id", "a", "amount_minor", (json_int_t)100,
                        "currency", "EUR");
  rp_features_from_payload(p, &f);
  json_decref(p);
  cr_assert_eq(rp_contract_check(&m, &f), -1, "absent online feature is not checked");
  f.x[RP_F_TXN_COUNT_24H] = 1000;
  f.present[RP_F_TXN_COUNT_24H] = true;
  cr_assert_eq(rp_contract_check(&m, &f), -1, "bounds are inclusive");
  f.x[RP_F_TXN_COUNT_24H] = 5000;
  cr_assert_eq(rp_contract_check(&m, &f), RP_F_TXN_COUNT_24H);
  f.x[RP_F_TXN_COUNT_24H] = -1;
  cr_assert_eq(rp_contract_check(&m, &f), RP_F_TXN_COUNT_24H);
  f.x[RP_F_TXN_COUNT_24H] = NAN;
  cr_assert_eq(rp_contract_check(&m, &f), RP_F_TXN_COUNT_24H, "NaN is outside any range");
  cr_assert(rp_model_set_contract(&m, "null", err, sizeof err));
  cr_assert_eq(m.n_contract, 0);
  cr_assert(rp_model_set_contract(&m, "[{\"name\":\"ecom\",\"max\":0.5}]", err, sizeof err));
  f.x[RP_F_ECOM] = 1;
  cr_assert_eq(rp_contract_check(&m, &f), RP_F_ECOM, "open min, closed max");
  cr_assert_not(rp_model_set_contract(&m, "{\"name\":\"x\"}", err, sizeof err));
  cr_assert_not(rp_model_set_contract(&m, "[{\"min\":0}]", err, sizeof err));
  cr_assert_not(rp_model_set_contract(&m, "[oops", err, sizeof err));
}

static rp_degrade_out ladder(const char *ctl, rp_feat_status fs, double ms, bool viol,
                             rp_defect d) {
  rp_degrade_in in = {ctl, fs, ms, 20.0, viol, d};
  return rp_degrade_decide(&in);
}

Test(degrade, ladder) {
  rp_degrade_out o = ladder(NULL, RP_FEAT_OK, 1, false, RP_DEFECT_NONE);
  cr_assert(!o.fallback && !o.flagged && !o.reason);
  o = ladder(NULL, RP_FEAT_MISSING, 1, false, RP_DEFECT_NONE);
  cr_assert(!o.fallback && !o.flagged, "a missing key is an answer, not a degrade");
  o = ladder(NULL, RP_FEAT_TIMEOUT, 20, false, RP_DEFECT_NONE);
  cr_assert(o.fallback && o.flagged);
  cr_assert_str_eq(o.reason, "features_timeout");
  o = ladder(NULL, RP_FEAT_OK, 25, false, RP_DEFECT_NONE);
  cr_assert_str_eq(o.reason, "features_timeout", "a late answer is over budget");
  o = ladder(NULL, RP_FEAT_UNAVAILABLE, 0.1, false, RP_DEFECT_NONE);
  cr_assert_str_eq(o.reason, "features_unavailable");
  o = ladder(NULL, RP_FEAT_OK, 1, true, RP_DEFECT_NONE);
  cr_assert(o.fallback && o.flagged);
  cr_assert_str_eq(o.reason, "feature_contract_violation");
  o = ladder("drift_mitigation", RP_FEAT_UNAVAILABLE, 1, true, RP_DEFECT_NONE);
  cr_assert_str_eq(o.reason, "drift_mitigation", "the control key wins");
  o = ladder("", RP_FEAT_OK, 1, false, RP_DEFECT_NONE);
  cr_assert(!o.fallback, "an empty control value is unset");
}

Test(degrade, planted_defects) {
  rp_degrade_out o = ladder(NULL, RP_FEAT_TIMEOUT, 20, false, RP_DEFECT_DEGRADE_UNFLAGGED);
  cr_assert(o.fallback && !o.flagged && !o.reason, "degrade-unflagged hides the fallback");
  o = ladder(NULL, RP_FEAT_OK, 1, true, RP_DEFECT_SKEW_SILENT);
  cr_assert(!o.fallback && !o.flagged, "skew-silent scores a violation as normal");
  o = ladder(NULL, RP_FEAT_UNAVAILABLE, 1, true, RP_DEFECT_SKEW_SILENT);
  cr_assert_str_eq(o.reason, "features_unavailable", "skew-silent breaks only the skew path");
  o = ladder(NULL, RP_FEAT_OK, 1, true, RP_DEFECT_CASE_DUP);
  cr_assert_str_eq(o.reason, "feature_contract_violation");
}

Test(degrade, posture_changes) {
  const char *k = NULL, *a = NULL;
  cr_assert_not(rp_posture_change(NULL, NULL, &k, &a));
  cr_assert_not(rp_posture_change("features_timeout", "features_timeout", &k, &a));
  cr_assert(rp_posture_change(NULL, "features_timeout", &k, &a));
  cr_assert_str_eq(k, "degrade");
  cr_assert_str_eq(a, "enter");
  cr_assert(rp_posture_change("features_timeout", NULL, &k, &a));
  cr_assert_str_eq(k, "degrade");
  cr_assert_str_eq(a, "exit");
  cr_assert(rp_posture_change(NULL, "feature_contract_violation", &k, &a));
  cr_assert_str_eq(k, "skew");
  cr_assert(rp_posture_change("feature_contract_violation", NULL, &k, &a));
  cr_assert_str_eq(k, "skew");
  cr_assert_str_eq(a, "exit");
  cr_assert(rp_posture_change("features_timeout", "drift_mitigation", &k, &a));
  cr_assert_str_eq(a, "enter");
}

Test(ratelimit, token_bucket) {
  rp_bucket b;
  rp_bucket_init(&b, 10, 5, 100.0);
  for (int i = 0; i < 5; i++) cr_assert(rp_bucket_take(&b, 100.0), "burst token %d", i);
  cr_assert_not(rp_bucket_take(&b, 100.0), "burst exhausted");
  cr_assert(rp_bucket_take(&b, 100.1), "one token after 0.1 s at 10/s");
  cr_assert_not(rp_bucket_take(&b, 100.1));
  cr_assert(rp_bucket_take(&b, 110.0));
  rp_bucket_set(&b, 0, 0, 110.0); /* fp:ctl:ingress_rate_limit = 0 */
  cr_assert_not(rp_bucket_take(&b, 120.0), "rate 0 admits nothing");
  rp_bucket_set(&b, 10, 5, 120.0);
  cr_assert_not(rp_bucket_take(&b, 120.0), "restored limit starts empty");
  cr_assert(rp_bucket_take(&b, 120.2));
}

Test(metrics, histogram_is_cumulative) {
  rp_hist h = {0};
  rp_hist_observe(&h, 0.0005);
  rp_hist_observe(&h, 0.003);
  rp_hist_observe(&h, 0.003);
  rp_hist_observe(&h, 7.0);
  rp_buf b = {0};
  rp_hist_render(&b, "rp_x_seconds", "help", &h);
  cr_assert_not(b.oom);
  cr_assert(strstr(b.s, "# TYPE rp_x_seconds histogram\n"), "%s", b.s);
  cr_assert(strstr(b.s, "rp_x_seconds_bucket{le=\"0.001\"} 1\n"), "%s", b.s);
  cr_assert(strstr(b.s, "rp_x_seconds_bucket{le=\"0.0025\"} 1\n"), "%s", b.s);
  cr_assert(strstr(b.s, "rp_x_seconds_bucket{le=\"0.005\"} 3\n"), "%s", b.s);
  cr_assert(strstr(b.s, "rp_x_seconds_bucket{le=\"2.5\"} 3\n"), "%s", b.s);
  cr_assert(strstr(b.s, "rp_x_seconds_bucket{le=\"+Inf\"} 4\n"), "%s", b.s);
  cr_assert(strstr(b.s, "rp_x_seconds_count 4\n"), "%s", b.s);
  rp_buf_free(&b);
  rp_buf_label(&b, "a\"b\\c\nd");
  cr_assert_str_eq(b.s, "a\\\"b\\\\c\\nd");
  rp_buf_free(&b);
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
  static const char *const all[] = {"none", "dedupe-off", "case-dup", "commit-before-write",
                                    "quarantine-drop", "degrade-unflagged", "slow-drain",
                                    "skew-silent", "rollback-noop", "lineage-missing",
                                    "guard-never-trips", "leak-accepted", "drift-blind",
                                    "latency-regression"};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    cr_assert(rp_defect_parse(all[i], &d), "%s is a contract defect", all[i]);
    cr_assert_str_eq(rp_defect_name(d), all[i]);
  }
  cr_assert(rp_defect_parse("skew-silent", &d) && d == RP_DEFECT_SKEW_SILENT);
  cr_assert_not(rp_defect_parse("bogus", &d));
  cr_assert(rp_defect_parse("none", &d) && d == RP_DEFECT_NONE);
  cr_assert(rp_defect_parse("dedupe-off", &d) && d == RP_DEFECT_DEDUPE_OFF);
  cr_assert(rp_defect_parse("case-dup", &d) && d == RP_DEFECT_CASE_DUP);
  cr_assert_not(rp_defect_parse("dedupe_off", &d));
  cr_assert_not(rp_defect_parse(NULL, &d));
  cr_assert_str_eq(rp_defect_name(RP_DEFECT_CASE_DUP), "case-dup");
}
