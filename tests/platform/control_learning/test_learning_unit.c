/* Unit tests of the learning lane's and drift monitor's pure logic (control/lane.h): PSI against
 * hand-computed values, equal-width binning at its edges, feature statistics, logistic
 * regression convergence and determinism, the dataset fingerprint, the leakage rules, the
 * canonical weights and the derived feature contract. These are the numbers the leakage and
 * drift drills stand on, so they are pinned here without any server. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lane.h"

/* ---- PSI and binning ---------------------------------------------------------------- */

Test(psi, identical_distributions_are_zero) {
  uint64_t e[RP_PSI_BINS] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
  cr_assert_float_eq(rp_psi(e, e, RP_PSI_BINS), 0.0, 1e-12);
  /* Same shares at another volume: still no shift. */
  uint64_t a[RP_PSI_BINS];
  for (int i = 0; i < RP_PSI_BINS; i++) a[i] = 3 * e[i];
  cr_assert_float_eq(rp_psi(e, a, RP_PSI_BINS), 0.0, 1e-12);
  cr_assert_str_eq(rp_psi_severity(0.0), "none");
}

Test(psi, shifted_case_matches_hand_computation) {
  /* Shares 0.5/0.5 -> 0.9/0.1: 0.4 ln 1.8 - 0.4 ln 0.2 = 0.4 ln 9; the eight bins empty on
   * both sides contribute (eps - eps) ln 1 = 0. */
  uint64_t e[RP_PSI_BINS] = {50, 50}, a[RP_PSI_BINS] = {90, 10};
  double psi = rp_psi(e, a, RP_PSI_BINS);
  cr_assert_float_eq(psi, 0.4 * log(9.0), 1e-12);
  cr_assert_float_eq(psi, 0.8788898309344878, 1e-6);
  cr_assert_str_eq(rp_psi_severity(psi), "critical");
}

Test(psi, empty_bins_take_epsilon) {
  /* Actual empties two populated expected bins: each contributes (1e-4 - 0.25) ln(1e-4/0.25);
   * the two doubled bins 0.25 ln 2 each. */
  uint64_t e[RP_PSI_BINS] = {25, 25, 25, 25}, a[RP_PSI_BINS] = {50, 50};
  double want = 0.5 * log(2.0) + 2 * (1e-4 - 0.25) * log(1e-4 / 0.25);
  cr_assert_float_eq(rp_psi(e, a, RP_PSI_BINS), want, 1e-12);
  cr_assert_float_eq(rp_psi(e, a, RP_PSI_BINS), 4.257031786505947, 1e-6);
  /* All mass moved from the first to the last bin. */
  uint64_t e2[RP_PSI_BINS] = {100}, a2[RP_PSI_BINS] = {0};
  a2[9] = 100;
  cr_assert_float_eq(rp_psi(e2, a2, RP_PSI_BINS), 18.41883867587797, 1e-6);
}

Test(psi, no_observations_is_no_judgment) {
  uint64_t e[RP_PSI_BINS] = {1}, z[RP_PSI_BINS] = {0};
  cr_assert_lt(rp_psi(e, z, RP_PSI_BINS), 0.0);
  cr_assert_lt(rp_psi(z, e, RP_PSI_BINS), 0.0);
}

Test(psi, thresholds_are_inclusive) {
  cr_assert_str_eq(rp_psi_severity(0.1999999), "none");
  cr_assert_str_eq(rp_psi_severity(0.2), "warn");
  cr_assert_str_eq(rp_psi_severity(0.4999999), "warn");
  cr_assert_str_eq(rp_psi_severity(0.5), "critical");
  cr_assert_eq(rp_psi_level(0.5), 2);
}

Test(psi, binning_edges) {
  cr_assert_eq(rp_psi_bin(0.0, 0.0, 10.0, 10), 0);
  cr_assert_eq(rp_psi_bin(0.999, 0.0, 10.0, 10), 0);
  cr_assert_eq(rp_psi_bin(1.0, 0.0, 10.0, 10), 1);
  cr_assert_eq(rp_psi_bin(9.999, 0.0, 10.0, 10), 9);
  cr_assert_eq(rp_psi_bin(10.0, 0.0, 10.0, 10), 9);   /* max goes to the last bin */
  cr_assert_eq(rp_psi_bin(-5.0, 0.0, 10.0, 10), 0);   /* below the training range */
  cr_assert_eq(rp_psi_bin(1e9, 0.0, 10.0, 10), 9);    /* above it */
  cr_assert_eq(rp_psi_bin(NAN, 0.0, 10.0, 10), 0);
  /* A 0/1 feature over [0, 1]. */
  cr_assert_eq(rp_psi_bin(0.0, 0.0, 1.0, 10), 0);
  cr_assert_eq(rp_psi_bin(1.0, 0.0, 1.0, 10), 9);
  /* A constant training feature: equal stays put, anything above is a shift. */
  cr_assert_eq(rp_psi_bin(3.0, 3.0, 3.0, 10), 0);
  cr_assert_eq(rp_psi_bin(3.5, 3.0, 3.0, 10), 9);
}

Test(psi, stats_and_histogram) {
  double x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  struct rp_feat_stats st;
  rp_feat_stats_compute(x, 11, &st);
  cr_assert_eq(st.n, 11);
  cr_assert_float_eq(st.mean, 5.0, 1e-12);
  cr_assert_float_eq(st.std, sqrt(10.0), 1e-12);
  cr_assert_float_eq(st.min, 0.0, 0);
  cr_assert_float_eq(st.max, 10.0, 0);
  uint64_t want[RP_PSI_BINS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 2};
  cr_assert_arr_eq(st.bins, want, sizeof want);
  /* The JSON form round-trips (training_runs.feature_stats). */
  json_t *j = rp_feat_stats_json(&st);
  struct rp_feat_stats back;
  cr_assert_eq(rp_feat_stats_parse(j, &back), 0);
  cr_assert_arr_eq(back.bins, st.bins, sizeof st.bins);
  cr_assert_float_eq(back.max, 10.0, 0);
  cr_assert_eq(back.n, 11);
  json_decref(j);
  /* Not a stats object: no judgment rather than a made-up histogram. */
  json_t *bad = json_pack("{s:f,s:f,s:[i]}", "min", 0.0, "max", 1.0, "bins", 3);
  cr_assert_eq(rp_feat_stats_parse(bad, &back), -1);
  json_decref(bad);
  cr_assert_eq(rp_feat_stats_parse(NULL, &back), -1);
}

Test(psi, drift_episode_acts_once) {
  struct rp_drift_episode ep = {0};
  cr_assert_eq(rp_drift_episode_step(&ep, 0), 0u);           /* quiet, no episode */
  cr_assert_eq(rp_drift_episode_step(&ep, 1), (unsigned)RP_EP_RECORD);  /* warn: record */
  cr_assert_eq(rp_drift_episode_step(&ep, 1), 0u);           /* still warn: nothing new */
  cr_assert_eq(rp_drift_episode_step(&ep, 2), (unsigned)(RP_EP_RECORD | RP_EP_MITIGATE));
  /* The mitigation failed (caller did not set mitigated): it stays due, unrecorded. */
  cr_assert_eq(rp_drift_episode_step(&ep, 2), (unsigned)RP_EP_MITIGATE);
  ep.mitigated = 1;
  cr_assert_eq(rp_drift_episode_step(&ep, 2), 0u);           /* once per episode */
  cr_assert_eq(rp_drift_episode_step(&ep, 1), 0u);           /* easing off is not an end */
  cr_assert_eq(rp_drift_episode_step(&ep, 2), 0u);
  cr_assert_eq(rp_drift_episode_step(&ep, 0), (unsigned)RP_EP_ENDED);
  cr_assert_eq(ep.active, 0);
  /* A new episode acts again. */
  cr_assert_eq(rp_drift_episode_step(&ep, 2), (unsigned)(RP_EP_RECORD | RP_EP_MITIGATE));
}

/* ---- logistic regression ------------------------------------------------------------ */

/* A deterministic, linearly separable set: class 1 has amount in [4, 6] and mostly ecom, class
 * 0 amount in [0, 2.5]; txn_count_24h is noise on a large scale (tests standardisation). */
static void synth(double *X, int *y, size_t n) {
  uint32_t s = 12345;
  for (size_t i = 0; i < n; i++) {
    s = s * 1103515245u + 12345u;
    double u = (double)((s >> 8) & 0xffff) / 65535.0;
    s = s * 1103515245u + 12345u;
    double v = (double)((s >> 8) & 0xffff) / 65535.0;
    y[i] = (int)(i % 2);
    X[i * 3 + 0] = y[i] ? 4.0 + 2.0 * u : 2.5 * u;
    X[i * 3 + 1] = y[i] ? (v < 0.8) : (v < 0.3);
    X[i * 3 + 2] = 1000.0 * v;
  }
}

Test(lr, converges_on_separable_data) {
  enum { N = 400, D = 3 };
  double X[N * D], w[D], b;
  int y[N];
  synth(X, y, N);
  cr_assert_eq(rp_lr_train(X, y, N, D, &rp_lr_default_cfg, w, &b), 0);
  double acc = rp_lr_accuracy(X, y, N, D, w, b);
  cr_assert_gt(acc, 0.95, "accuracy %f", acc);
  cr_assert_gt(w[0], 0.0);     /* larger amounts are riskier */
  cr_assert(isfinite(b));
}

Test(lr, deterministic) {
  enum { N = 300, D = 3 };
  double X[N * D], w1[D], w2[D], b1, b2;
  int y[N];
  synth(X, y, N);
  cr_assert_eq(rp_lr_train(X, y, N, D, &rp_lr_default_cfg, w1, &b1), 0);
  cr_assert_eq(rp_lr_train(X, y, N, D, &rp_lr_default_cfg, w2, &b2), 0);
  cr_assert_eq(memcmp(w1, w2, sizeof w1), 0);
  cr_assert_eq(memcmp(&b1, &b2, sizeof b1), 0);
}

Test(lr, constant_feature_gets_zero_weight) {
  double X[] = {1, 7, 2, 7, 3, 7, 4, 7}, w[2], b;
  int y[] = {0, 0, 1, 1};
  cr_assert_eq(rp_lr_train(X, y, 4, 2, &rp_lr_default_cfg, w, &b), 0);
  cr_assert_float_eq(w[1], 0.0, 0);
  cr_assert_eq(rp_lr_accuracy(X, y, 4, 2, w, b), 1.0);
  cr_assert_eq(rp_lr_train(X, y, 0, 2, &rp_lr_default_cfg, w, &b), -1);
}

/* ---- datasets ----------------------------------------------------------------------- */

static struct rp_ds_row row(const char *eid, double a, double e, int label) {
  struct rp_ds_row r = {0};
  r.platform_run_id = (char *)"run-1";
  r.event_class = (char *)"transaction";
  r.event_id = (char *)eid;
  r.x[0] = a;
  r.x[1] = e;
  r.label = label;
  return r;
}

Test(dataset, fingerprint_is_order_independent_and_sensitive) {
  const char *names[] = {"amount", "ecom"};
  struct rp_ds_row a[3] = {row("e1", 1.5, 0, 0), row("e2", 3.25, 1, 1), row("e3", 0.1, 1, 0)};
  struct rp_ds_row b[3] = {a[2], a[0], a[1]};
  char fa[65], fb[65], fc[65];
  rp_ds_fingerprint(a, 3, names, 2, fa);
  rp_ds_fingerprint(b, 3, names, 2, fb);
  cr_assert_str_eq(fa, fb);
  cr_assert_eq(strlen(fa), 64);
  rp_ds_fingerprint(a, 3, names, 2, fc); /* stable across calls */
  cr_assert_str_eq(fa, fc);

  b[0].label = 1; /* a flipped label is another dataset */
  rp_ds_fingerprint(b, 3, names, 2, fb);
  cr_assert_str_neq(fa, fb);
  b[0].label = 0;
  b[1].x[0] = nextafter(b[1].x[0], 10.0); /* one ulp in one value */
  rp_ds_fingerprint(b, 3, names, 2, fb);
  cr_assert_str_neq(fa, fb);
  const char *other[] = {"amount", "foreign"}; /* same numbers, other meaning */
  rp_ds_fingerprint(a, 3, other, 2, fb);
  cr_assert_str_neq(fa, fb);
  rp_ds_fingerprint(a, 2, names, 2, fb); /* a dropped row */
  cr_assert_str_neq(fa, fb);
}

Test(dataset, leakage_rules) {
  double rows_ok[] = {100, 200, 300}, mat_ok[] = {400, 500};
  struct rp_leak_input in = {.as_of = 1000, .cutoff = 600, .window_end = 900,
                             .row_at = rows_ok, .nrows = 3, .label_mature = mat_ok, .nlabels = 2};
  struct rp_leak_result r;
  rp_leak_evaluate(&in, &r);
  cr_assert_eq(r.rules, 0u);

  in.window_end = 1000; /* ending exactly at as_of is allowed */
  rp_leak_evaluate(&in, &r);
  cr_assert_eq(r.rules, 0u);
  in.window_end = 1000.001;
  rp_leak_evaluate(&in, &r);
  cr_assert_eq(r.rules, (unsigned)RP_LEAK_WINDOW_AFTER_AS_OF);
  cr_assert_str_eq(rp_leak_reason(RP_LEAK_WINDOW_AFTER_AS_OF), "window_after_as_of");

  double rows_late[] = {100, 1001, 1002};
  in.window_end = 900;
  in.row_at = rows_late;
  rp_leak_evaluate(&in, &r);
  cr_assert_eq(r.rules, (unsigned)RP_LEAK_FEATURE_AFTER_AS_OF);
  cr_assert_eq(r.rows_after_as_of, 2);

  double mat_late[] = {600, 601};   /* mature exactly at the cutoff is mature */
  in.row_at = rows_ok;
  in.label_mature = mat_late;
  rp_leak_evaluate(&in, &r);
  cr_assert_eq(r.rules, (unsigned)RP_LEAK_IMMATURE_LABEL);
  cr_assert_eq(r.immature_labels, 1);
  cr_assert_str_eq(rp_leak_reason(RP_LEAK_IMMATURE_LABEL), "immature_label");

  /* Every violated rule is reported, not just the first. */
  in.window_end = 2000;
  in.row_at = rows_late;
  rp_leak_evaluate(&in, &r);
  cr_assert_eq(r.rules, (unsigned)(RP_LEAK_WINDOW_AFTER_AS_OF | RP_LEAK_FEATURE_AFTER_AS_OF |
                                   RP_LEAK_IMMATURE_LABEL));
}

Test(dataset, canonical_weights_and_sha) {
  int idx[] = {0, 4};   /* amount, txn_count_24h */
  double w[] = {1.25, -0.5};
  char sha[65], sha2[65];
  char *t = rp_weights_canonical(idx, 2, w, -3.0, sha);
  cr_assert_not_null(t);
  /* Every §8 weight present, untrained ones 0, keys sorted, compact. */
  cr_assert_str_eq(t, "{\"amount\":1.25,\"bias\":-3.0,\"ecom\":0.0,\"foreign\":0.0,"
                      "\"merchant_risk\":0.0,\"txn_count_24h\":-0.5}");
  cr_assert_eq(strlen(sha), 64);
  char *t2 = rp_weights_canonical(idx, 2, w, -3.0, sha2);
  cr_assert_str_eq(sha, sha2);
  free(t);
  free(t2);
  w[0] = NAN;
  cr_assert_null(rp_weights_canonical(idx, 2, w, -3.0, sha));
}

Test(dataset, feature_contract_from_stats) {
  int idx[] = {0, 1, 4};
  struct rp_feat_stats st[3] = {0};
  st[0].n = st[1].n = st[2].n = 10;
  st[0].min = 1.0, st[0].max = 5.0;     /* margin 1.0 */
  st[1].min = 0.0, st[1].max = 1.0;
  st[2].min = 0.0, st[2].max = 0.0;     /* margin floor 0.5, clipped at 0 */
  json_t *c = rp_feature_contract(idx, 3, st);
  cr_assert_eq(json_array_size(c), RP_LANE_NFEAT);
  json_t *amount = json_array_get(c, 0), *ecom = json_array_get(c, 1);
  json_t *foreign = json_array_get(c, 2), *txn = json_array_get(c, 4);
  cr_assert_str_eq(json_string_value(json_object_get(amount, "name")), "amount");
  cr_assert_str_eq(json_string_value(json_object_get(amount, "type")), "float");
  cr_assert_float_eq(json_real_value(json_object_get(amount, "min")), 0.0, 1e-12);
  cr_assert_float_eq(json_real_value(json_object_get(amount, "max")), 6.0, 1e-12);
  cr_assert_float_eq(json_real_value(json_object_get(amount, "scale")), 1.0, 0);
  cr_assert_str_eq(json_string_value(json_object_get(ecom, "type")), "binary");
  cr_assert_float_eq(json_real_value(json_object_get(ecom, "max")), 1.0, 0);
  cr_assert_float_eq(json_real_value(json_object_get(foreign, "max")), 1.0, 0); /* untrained */
  cr_assert_float_eq(json_real_value(json_object_get(txn, "min")), 0.0, 0);
  cr_assert_float_eq(json_real_value(json_object_get(txn, "max")), 0.5, 1e-12);
  json_decref(c);
  /* Training data beyond the nominal range stays inside the contract. */
  st[2].min = 900.0, st[2].max = 1200.0;
  c = rp_feature_contract(idx, 3, st);
  txn = json_array_get(c, 4);
  cr_assert_float_eq(json_real_value(json_object_get(txn, "min")), 825.0, 1e-9);
  cr_assert_float_eq(json_real_value(json_object_get(txn, "max")), 1200.0, 1e-9);
  json_decref(c);
}

Test(features, names_and_ranges) {
  cr_assert_eq(rp_lane_feat_index("amount"), 0);
  cr_assert_eq(rp_lane_feat_index("txn_count_24h"), 4);
  cr_assert_eq(rp_lane_feat_index("score"), -1);
  cr_assert_eq(rp_lane_feat_index(NULL), -1);
  double lo, hi;
  rp_lane_feat_range(0, &lo, &hi);
  cr_assert_float_eq(hi, 8.0, 0);
  rp_lane_feat_range(4, &lo, &hi);
  cr_assert_float_eq(hi, 1000.0, 0);
  cr_assert(rp_lane_feat_binary(2));
  cr_assert(!rp_lane_feat_binary(4));
}
