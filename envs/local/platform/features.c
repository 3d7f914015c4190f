/* The decision features of contract section 8.1. Event features are derived here from the
 * payload, in one place, so the served values, the logged `features` column and the feature
 * contract check all see the same numbers. The online feature (txn_count_24h) is fetched by the
 * decider from Redis and only stored into rp_features by it.
 *
 *   amount        = log10(1 + amount_minor / 100)          amount in major units, log-scaled
 *   ecom          = 1 if payload.channel == "ecom"
 *   foreign       = 1 if payload.country is present and not one of DE, FR, NL, GB, US
 *                   (a missing country counts as home)
 *   merchant_risk = 1 if the last character of payload.merchant_id is a digit 7..9
 *   txn_count_24h = Redis hash fp:feat:<account_id>, field txn_count_24h */
#include "rp_core.h"

#include <math.h>
#include <string.h>

const char *const rp_feature_names[RP_NFEAT] = {
    [RP_F_AMOUNT] = "amount",
    [RP_F_ECOM] = "ecom",
    [RP_F_FOREIGN] = "foreign",
    [RP_F_MERCHANT_RISK] = "merchant_risk",
    [RP_F_TXN_COUNT_24H] = "txn_count_24h",
};

bool rp_feature_is_online(rp_feature f) { return f == RP_F_TXN_COUNT_24H; }

static const char *str_field(const json_t *payload, const char *key) {
  json_t *v = json_object_get(payload, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

void rp_features_from_payload(const json_t *payload, rp_features *f) {
  memset(f, 0, sizeof *f);
  json_t *amt = json_object_get(payload, "amount_minor");
  double amount = json_is_integer(amt) ? (double)json_integer_value(amt) : 0.0;
  if (amount < 0) amount = 0;
  f->x[RP_F_AMOUNT] = log10(1.0 + amount / 100.0);

  const char *channel = str_field(payload, "channel");
  f->x[RP_F_ECOM] = channel && strcmp(channel, "ecom") == 0 ? 1.0 : 0.0;

  static const char *const home[] = {"DE", "FR", "NL", "GB", "US"};
  const char *country = str_field(payload, "country");
  if (country) {
    f->x[RP_F_FOREIGN] = 1.0;
    for (size_t i = 0; i < sizeof home / sizeof home[0]; i++)
      if (strcmp(country, home[i]) == 0) f->x[RP_F_FOREIGN] = 0.0;
  }

  const char *merchant = str_field(payload, "merchant_id");
  if (merchant && *merchant) {
    char last = merchant[strlen(merchant) - 1];
    f->x[RP_F_MERCHANT_RISK] = last >= '7' && last <= '9' ? 1.0 : 0.0;
  }
  for (int i = 0; i < RP_NFEAT; i++) f->present[i] = !rp_feature_is_online((rp_feature)i);
}

json_t *rp_features_json(const rp_features *f) {
  json_t *o = json_object();
  if (!o) return NULL;
  for (int i = 0; i < RP_NFEAT; i++)
    if (f->present[i] && json_object_set_new(o, rp_feature_names[i], json_real(f->x[i])) != 0) {
      json_decref(o);
      return NULL;
    }
  return o;
}
