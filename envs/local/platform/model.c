/* The decider's scoring model: a logistic regression over the features of features.c whose
 * weights come from the registry (platform.active_model) as JSON, or from the built-in model
 * below when no model was promoted. A drill must be able to predict which events become cases
 * under the built-in model, so its weights are a constant string and the sha256 of that string
 * is its bundle_digest: change a weight and the digest changes with it.
 *
 *   score = 1 / (1 + exp(-(bias + Σ w_i * x_i)))   over the features that are present
 *
 * The built-in model gives txn_count_24h the weight 0, so its decisions do not depend on the
 * feature store at all (and its fallback scores equal its normal ones).
 *
 * With bias -7.4 and w_amount 2.0 the logit crosses 0 (score 0.5) at about 5,000 major units
 * when no other feature is set, so card_present traffic at home stays below 0.5 up to 5,000.00
 * (and up to ~1,580.00 even when foreign with a risky merchant). ecom adds 1.5, so ecom at
 * amount_minor >= 500000 gives logit >= 1.498, score >= 0.817 >= 0.8, while ecom at home stays
 * below 0.8 up to ~4,390.00 (400000 minor scores 0.786). A load generator therefore controls the
 * case share with the share of ecom events >= 5,000.00 it sends at home (country in the home
 * set, merchant digit 0..6) and keeps everything else below 4,000.00. ecom + foreign + risky
 * merchant reaches 0.8 from ~1,390.00 upward. */
#include "rp_core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char rp_model_builtin_weights[] =
    "{\"bias\":-7.4,\"amount\":2.0,\"ecom\":1.5,\"foreign\":0.6,\"merchant_risk\":0.4,"
    "\"txn_count_24h\":0}";

void rp_model_builtin(rp_model *m) {
  char err[128];
  /* The constant is known-good (unit-tested); a failure here would be a build defect. */
  if (!rp_model_from_json(RP_MODEL_BUILTIN_VERSION, rp_model_builtin_weights, NULL, 0, m, err,
                          sizeof err))
    rp_log("error", "msg=builtin_model_invalid err=\"%s\"", err);
}

bool rp_model_from_json(const char *version, const char *weights_json, const char *bundle_digest,
                        int extra_latency_ms, rp_model *m, char *err, size_t esz) {
  memset(m, 0, sizeof *m);
  if (!version || !*version || strlen(version) >= sizeof m->version) {
    snprintf(err, esz, "version missing or longer than %zu", sizeof m->version - 1);
    return false;
  }
  json_error_t je;
  json_t *w = weights_json ? json_loads(weights_json, 0, &je) : NULL;
  if (!json_is_object(w)) {
    snprintf(err, esz, "weights are not a JSON object");
    json_decref(w);
    return false;
  }
  json_t *b = json_object_get(w, "bias");
  if (!json_is_number(b)) {
    snprintf(err, esz, "weights.bias missing or not a number");
    json_decref(w);
    return false;
  }
  m->bias = json_number_value(b);
  for (int i = 0; i < RP_NFEAT; i++) {
    json_t *v = json_object_get(w, rp_feature_names[i]);
    if (!v || json_is_null(v)) continue; /* a model that does not use a feature */
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
      snprintf(err, esz, "weights.%s is not a finite number", rp_feature_names[i]);
      json_decref(w);
      return false;
    }
    m->w[i] = json_number_value(v);
  }
  json_decref(w);
  if (!isfinite(m->bias)) {
    snprintf(err, esz, "weights.bias is not finite");
    return false;
  }
  snprintf(m->version, sizeof m->version, "%s", version);
  if (bundle_digest && *bundle_digest)
    snprintf(m->bundle_digest, sizeof m->bundle_digest, "%s", bundle_digest);
  else
    rp_sha256_hex(weights_json, strlen(weights_json), m->bundle_digest);
  m->extra_latency_ms = extra_latency_ms > 0 ? extra_latency_ms : 0;
  return true;
}

static double bound(json_t *v, double dflt) {
  return json_is_number(v) ? json_number_value(v) : dflt;
}

bool rp_model_set_contract(rp_model *m, const char *contract_json, char *err, size_t esz) {
  m->n_contract = 0;
  if (!contract_json || !*contract_json) return true;
  json_t *a = json_loads(contract_json, JSON_DECODE_ANY, NULL);
  if (!a || json_is_null(a)) {
    json_decref(a);
    if (a) return true;
    snprintf(err, esz, "feature_contract is not JSON");
    return false;
  }
  if (!json_is_array(a)) {
    snprintf(err, esz, "feature_contract is not a JSON array");
    json_decref(a);
    return false;
  }
  size_t i;
  json_t *it;
  json_array_foreach(a, i, it) {
    const char *name = json_string_value(json_object_get(it, "name"));
    if (!name || strlen(name) >= sizeof m->contract[0].name) {
      snprintf(err, esz, "feature_contract[%zu].name missing or too long", i);
      json_decref(a);
      m->n_contract = 0;
      return false;
    }
    if (m->n_contract == RP_CONTRACT_MAX) {
      snprintf(err, esz, "feature_contract has more than %d entries", RP_CONTRACT_MAX);
      json_decref(a);
      m->n_contract = 0;
      return false;
    }
    rp_contract_item *c = &m->contract[m->n_contract++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->min = bound(json_object_get(it, "min"), -INFINITY);
    c->max = bound(json_object_get(it, "max"), INFINITY);
  }
  json_decref(a);
  return true;
}

int rp_contract_check(const rp_model *m, const rp_features *f) {
  for (size_t i = 0; i < m->n_contract; i++) {
    const rp_contract_item *c = &m->contract[i];
    for (int k = 0; k < RP_NFEAT; k++) {
      if (strcmp(c->name, rp_feature_names[k]) != 0 || !f->present[k]) continue;
      /* NaN compares false both ways; a NaN served value is out of any range */
      if (!(f->x[k] >= c->min && f->x[k] <= c->max)) return k;
    }
  }
  return -1;
}

double rp_model_score(const rp_model *m, const rp_features *f, bool fallback) {
  double z = m->bias;
  for (int i = 0; i < RP_NFEAT; i++) {
    if (!f->present[i]) continue;
    if (fallback && rp_feature_is_online((rp_feature)i)) continue;
    z += m->w[i] * f->x[i];
  }
  return 1.0 / (1.0 + exp(-z));
}

const char *rp_model_outcome(double score) {
  if (score < 0.5) return "approve";
  if (score < RP_CASE_THRESHOLD) return "review";
  return "decline";
}
