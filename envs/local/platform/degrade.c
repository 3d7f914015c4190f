/* The degrade ladder of contract section 8 and the ingress token bucket, as pure functions of
 * their inputs. The services do the I/O (Redis reads, clocks) and ask these functions what to
 * do, so the policy - which outage degrades, which reason wins, when a posture event is due,
 * what the planted defects suppress - is unit-tested without any server. */
#include "rp_core.h"

#include <string.h>

#define REASON_TIMEOUT "features_timeout"
#define REASON_UNAVAILABLE "features_unavailable"
#define REASON_CONTRACT "feature_contract_violation"

/* Precedence: an operator's (or rp-control's) fp:ctl:degrade is a standing order and names its
 * own reason; then the feature store's health, because without the online features the contract
 * cannot even be checked for them; the contract violation comes last. A missing key is an
 * answer (a new account has no history), so it is txn_count_24h = 0 and not a degrade. */
rp_degrade_out rp_degrade_decide(const rp_degrade_in *in) {
  rp_degrade_out o = {false, false, NULL};
  if (in->ctl_reason && *in->ctl_reason) o.reason = in->ctl_reason;
  else if (in->feat == RP_FEAT_TIMEOUT) o.reason = REASON_TIMEOUT;
  else if (in->feat == RP_FEAT_UNAVAILABLE) o.reason = REASON_UNAVAILABLE;
  else if ((in->feat == RP_FEAT_OK || in->feat == RP_FEAT_MISSING) && in->feat_ms > in->budget_ms)
    o.reason = REASON_TIMEOUT; /* it answered, but too late to be used within the budget */
  else if (in->contract_violation && in->defect != RP_DEFECT_SKEW_SILENT)
    o.reason = REASON_CONTRACT; /* skew-silent: the violation is scored as if it were fine */
  if (!o.reason) return o;
  o.fallback = true;
  o.flagged = true;
  if (in->defect == RP_DEFECT_DEGRADE_UNFLAGGED) { /* planted: the fallback is hidden */
    o.flagged = false;
    o.reason = NULL;
  }
  return o;
}

static const char *kind_of(const char *reason) {
  return strcmp(reason, REASON_CONTRACT) == 0 ? "skew" : "degrade";
}

bool rp_posture_change(const char *prev, const char *next, const char **kind,
                       const char **action) {
  if (!prev && !next) return false;
  if (prev && next && strcmp(prev, next) == 0) return false;
  if (next) { /* entering degrade, or moving from one reason to another */
    *kind = kind_of(next);
    *action = "enter";
  } else {
    *kind = kind_of(prev);
    *action = "exit";
  }
  return true;
}

void rp_bucket_init(rp_bucket *b, double rate, double cap, double now) {
  b->rate = rate;
  b->cap = cap;
  b->tokens = cap; /* start full: a fresh ingress admits its burst */
  b->last = now;
}

static void refill(rp_bucket *b, double now) {
  if (now > b->last) {
    b->tokens += (now - b->last) * b->rate;
    if (b->tokens > b->cap) b->tokens = b->cap;
  }
  b->last = now;
}

void rp_bucket_set(rp_bucket *b, double rate, double cap, double now) {
  refill(b, now);
  b->rate = rate;
  b->cap = cap;
  if (b->tokens > cap) b->tokens = cap;
}

bool rp_bucket_take(rp_bucket *b, double now) {
  refill(b, now);
  /* tolerance: 0.1 s at 10/s must earn a whole token despite binary rounding */
  if (b->tokens < 1.0 - 1e-9) return false;
  b->tokens = b->tokens > 1.0 ? b->tokens - 1.0 : 0.0;
  return true;
}
