/* cost.c (rp_module_cost): the cost envelope, the cost guard and cost-to-outcome receipts
 * (contract §9 POST /budget; seed T0.6, DR-07, and seed 004 §5.2.1: every window declares an
 * envelope, every window closes with a receipt, a breach is acted on at once).
 *
 * Spend is measured from first-class records, not estimated: events decided in the window
 * (decision_log rows by decided_at) times unit_cost_event, plus retrains finished in the window
 * (training_runs by finished_at) times unit_cost_retrain. Windows are consecutive, half-open
 * [start, start + window_s), anchored at the envelope's set time and re-anchored by a reset,
 * so every decision is charged to exactly one receipt. On a breach the guard raises a
 * cost_guard posture event and sets fp:ctl:ingress_rate_limit = 0: the ingress admits nothing,
 * the decision consumer drains what is in flight and the platform comes to rest (idle-safe)
 * without anyone stopping a process. It stays tripped until POST /budget/reset.
 *
 * The trip state lives in the records, not in process memory: the newest cost_guard posture
 * event decides (action 'throttle' = tripped, 'release' = not). A restarted rp-control keeps
 * holding a throttle nobody released, and a reset is seen by every process at its next tick,
 * so no process can keep re-asserting a throttle another one released. The envelope is the
 * process's own (the newest one when it starts, then whatever it is sent).
 *
 * Planted defect guard-never-trips: spend is measured and receipts are written (outcome
 * 'breached' included), but the trip branch is skipped: no throttle, no posture event.
 *
 * Lock order: cost state mutex, then pg_lock, then redis_lock. */
#include "rp_control.h"
#include "rp_core.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_KEY "fp:ctl:ingress_rate_limit"
#define MAX_WINDOW_S (31LL * 86400)
#define CATCH_UP_PER_TICK 100 /* closed windows receipted per tick after a long stop */
#define US 1000000LL

/* ---- pure logic ----------------------------------------------------------------------- */

double rp_cost_spend(long long events, long long retrains, double unit_cost_event,
                     double unit_cost_retrain) {
  return (double)events * unit_cost_event + (double)retrains * unit_cost_retrain;
}

int rp_cost_breached(double spend, double envelope_units) { return spend > envelope_units; }

long long rp_cost_closed_windows(long long start_us, long long window_us, long long now_us) {
  if (window_us <= 0 || now_us < start_us) return 0;
  return (now_us - start_us) / window_us;
}

/* ---- state ---------------------------------------------------------------------------- */

struct spend {
  long long events, retrains;
  double units;
};

static struct {
  pthread_mutex_t mu;
  bool have; /* an envelope is active */
  long long envelope_id, window_us, start_us; /* start_us: the open window's start */
  double envelope_units, unit_event, unit_retrain;
  bool tripped;
  struct spend cur; /* the open window, as of the last tick */
  unsigned long long receipts_within, receipts_breached, trips;
} cs = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- measurement (pg_lock taken inside) ----------------------------------------------- */

static bool pg_now_us(struct rp_ctl *c, long long *now) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(c, "cost_now",
                             "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
                             0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  if (!r) return false;
  *now = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  return true;
}

/* Charges [start, end) (epoch microseconds). A table that does not exist yet (the decider or
 * the learning lane never ran) contributes nothing rather than failing the guard. */
static bool measure(struct rp_ctl *c, long long start_us, long long end_us, struct spend *out) {
  char s[24], e[24];
  snprintf(s, sizeof s, "%lld", start_us);
  snprintf(e, sizeof e, "%lld", end_us);
  const char *p[] = {s, e, RP_BOOTSTRAP_ID};
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&c->pg_lock);
  PGresult *x = rp_ctl_query(c, "cost_tables",
                             "SELECT to_regclass('platform.decision_log') IS NOT NULL,"
                             " to_regclass('platform.training_runs') IS NOT NULL",
                             0, NULL);
  bool ok = x != NULL, dl = ok && PQgetvalue(x, 0, 0)[0] == 't',
       tr = ok && PQgetvalue(x, 0, 1)[0] == 't';
  PQclear(x);
  if (ok && dl) {
    PGresult *r = rp_ctl_query(c, "cost_events",
                               "SELECT count(*) FROM platform.decision_log WHERE"
                               " decided_at >= 'epoch'::timestamptz + $1::bigint * interval '1 microsecond'"
                               " AND decided_at < 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'",
                               2, p);
    ok = r != NULL;
    if (r) out->events = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  if (ok && tr) {
    PGresult *r = rp_ctl_query(c, "cost_retrains",
                               "SELECT count(*) FROM platform.training_runs WHERE"
                               " finished_at >= 'epoch'::timestamptz + $1::bigint * interval '1 microsecond'"
                               " AND finished_at < 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'"
                               " AND training_run_id <> $3",
                               3, p);
    ok = r != NULL;
    if (r) out->retrains = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  pthread_mutex_unlock(&c->pg_lock);
  out->units = rp_cost_spend(out->events, out->retrains, cs.unit_event, cs.unit_retrain);
  return ok;
}

/* ---- guard ---------------------------------------------------------------------------- */

/* The shared trip state: 1 throttle, 0 released (or never tripped), -1 unknown (database). */
static int shared_tripped(struct rp_ctl *c) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(c, "cost_guard_state",
                             "SELECT action FROM platform.posture_events WHERE kind = 'cost_guard'"
                             " AND action IN ('throttle', 'release')"
                             " ORDER BY posture_id DESC LIMIT 1",
                             0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  if (!r) return -1;
  int st = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "throttle") == 0;
  PQclear(r);
  return st;
}

/* cs.mu held. Sets the throttle; the posture event is written once per trip (cs.tripped
 * mirrors the shared state, so a trip another process recorded is not recorded again). */
static void trip(struct rp_ctl *c, long long ws, long long we, const struct spend *sp) {
  if (rp_ctl_defect(c, "guard-never-trips")) return; /* the planted defect: breach ignored */
  redisReply *r = rp_ctl_redis(c, "SET %s 0", RATE_KEY);
  bool set = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  if (cs.tripped) return;
  cs.tripped = true;
  cs.trips++;
  char details[512], reason[160];
  snprintf(details, sizeof details,
           "{\"envelope_id\":%lld,\"envelope_units\":%.17g,\"spend_units\":%.17g,"
           "\"events_decided\":%lld,\"retrains\":%lld,\"window_start_us\":%lld,"
           "\"window_end_us\":%lld,\"throttle_key\":\"" RATE_KEY "\",\"throttle_set\":%s}",
           cs.envelope_id, cs.envelope_units, sp->units, sp->events, sp->retrains, ws, we,
           set ? "true" : "false");
  snprintf(reason, sizeof reason, "spend %.6g exceeds envelope %.6g units", sp->units,
           cs.envelope_units);
  rp_ctl_posture(c, "cost_guard", "critical", reason, "throttle", NULL, details);
  rp_log("warn", "msg=cost_guard_tripped envelope_id=%lld spend=%.6g envelope=%.6g throttle_set=%d",
         cs.envelope_id, sp->units, cs.envelope_units, set);
}

/* cs.mu held. Writes the receipt of [ws, we) for the active envelope; idempotent on
 * (envelope_id, window_start), so two processes ticking the same envelope write it once. */
static bool receipt(struct rp_ctl *c, long long ws, long long we) {
  struct spend sp;
  if (!measure(c, ws, we, &sp)) return false;
  bool breached = rp_cost_breached(sp.units, cs.envelope_units);
  char id[24], s[24], e[24], env[40], spend[40], ev[24], rt[24];
  snprintf(id, sizeof id, "%lld", cs.envelope_id);
  snprintf(s, sizeof s, "%lld", ws);
  snprintf(e, sizeof e, "%lld", we);
  snprintf(env, sizeof env, "%.17g", cs.envelope_units);
  snprintf(spend, sizeof spend, "%.17g", sp.units);
  snprintf(ev, sizeof ev, "%lld", sp.events);
  snprintf(rt, sizeof rt, "%lld", sp.retrains);
  const char *p[] = {id, s, e, env, spend, ev, rt, breached ? "breached" : "within"};
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(
      c, "cost_receipt",
      "INSERT INTO platform.cost_receipts (envelope_id, window_start, window_end,"
      " envelope_units, spend_units, events_decided, retrains, outcome) VALUES ($1::bigint,"
      " 'epoch'::timestamptz + $2::bigint * interval '1 microsecond',"
      " 'epoch'::timestamptz + $3::bigint * interval '1 microsecond',"
      " $4::double precision, $5::double precision, $6::bigint, $7::bigint, $8)"
      " ON CONFLICT (envelope_id, window_start) DO NOTHING RETURNING receipt_id",
      8, p);
  pthread_mutex_unlock(&c->pg_lock);
  if (!r) return false;
  bool mine = PQntuples(r) == 1;
  PQclear(r);
  if (mine) {
    if (breached) cs.receipts_breached++;
    else cs.receipts_within++;
    rp_log("info", "msg=cost_receipt envelope_id=%lld spend=%.6g envelope=%.6g events=%lld "
                   "retrains=%lld outcome=%s",
           cs.envelope_id, sp.units, cs.envelope_units, sp.events, sp.retrains,
           breached ? "breached" : "within");
  }
  /* A breach that happened in the window's last second is still a breach. */
  if (breached) trip(c, ws, we, &sp);
  return true;
}

/* cs.mu held. Closes the open window early at now (a new envelope or a reset) so no spend
 * goes unreceipted, and opens the next one there. */
static bool close_window_at(struct rp_ctl *c, long long now) {
  if (!cs.have || now <= cs.start_us) return true;
  if (!receipt(c, cs.start_us, now)) return false;
  cs.start_us = now;
  return true;
}

static void cost_tick(struct rp_ctl *c) {
  pthread_mutex_lock(&cs.mu);
  int st = shared_tripped(c);
  if (st >= 0) cs.tripped = st; /* with the database away, keep the last known state */
  if (!rp_ctl_defect(c, "guard-never-trips")) {
    redisReply *r = NULL;
    if (cs.tripped) {
      /* Re-assert the throttle every second while tripped: a Redis restart must not quietly
       * lift it. */
      r = rp_ctl_redis(c, "SET %s 0", RATE_KEY);
    }
    /* Not tripped: the key is left alone. Operators and drills set it too (a manual throttle
     * is a legitimate action), so the guard never deletes a value it cannot prove it wrote;
     * only POST /budget/reset lifts the guard's own throttle. */
    if (r) freeReplyObject(r);
  }
  long long now;
  if (!cs.have || !pg_now_us(c, &now)) goto out;
  long long closed = rp_cost_closed_windows(cs.start_us, cs.window_us, now);
  if (closed > CATCH_UP_PER_TICK) {
    rp_log("warn", "msg=cost_receipts_behind windows=%lld", closed);
    closed = CATCH_UP_PER_TICK;
  }
  for (long long i = 0; i < closed; i++) {
    if (!receipt(c, cs.start_us, cs.start_us + cs.window_us)) goto out;
    cs.start_us += cs.window_us;
  }
  struct spend sp;
  if (!measure(c, cs.start_us, cs.start_us + cs.window_us, &sp)) goto out;
  cs.cur = sp;
  if (rp_cost_breached(sp.units, cs.envelope_units))
    trip(c, cs.start_us, cs.start_us + cs.window_us, &sp);
out:
  pthread_mutex_unlock(&cs.mu);
}

/* ---- schema and startup --------------------------------------------------------------- */

static const char *const schema_sql[] = {
    /* The envelopes as declared, newest = active (append-only, so every envelope a run ever
     * declared stays inspectable next to its receipts). */
    "CREATE TABLE IF NOT EXISTS platform.cost_envelopes ("
    " envelope_id bigserial PRIMARY KEY, envelope_units double precision NOT NULL,"
    " window_s integer NOT NULL, unit_cost_event double precision NOT NULL,"
    " unit_cost_retrain double precision NOT NULL,"
    " set_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE TABLE IF NOT EXISTS platform.cost_receipts ("
    " receipt_id bigserial PRIMARY KEY, envelope_id bigint,"
    " window_start timestamptz NOT NULL, window_end timestamptz NOT NULL,"
    " envelope_units double precision NOT NULL, spend_units double precision NOT NULL,"
    " events_decided bigint NOT NULL, retrains bigint NOT NULL,"
    " outcome text NOT NULL CHECK (outcome IN ('within', 'breached')),"
    " at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE UNIQUE INDEX IF NOT EXISTS cost_receipts_window_idx"
    " ON platform.cost_receipts (envelope_id, window_start)",
    "CREATE OR REPLACE TRIGGER cost_envelopes_append_only BEFORE UPDATE OR DELETE"
    " ON platform.cost_envelopes FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    "CREATE OR REPLACE TRIGGER cost_receipts_append_only BEFORE UPDATE OR DELETE"
    " ON platform.cost_receipts FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
};

/* Resumes the newest envelope after a restart: its open window starts where its last receipt
 * ended (or at its set time), so windows missed while the process was down are receipted by
 * the next ticks instead of vanishing. */
static int cost_init(struct rp_ctl *c) {
  for (size_t i = 0; i < sizeof schema_sql / sizeof schema_sql[0]; i++)
    if (rp_ctl_exec(c, schema_sql[i]) != 0) return -1;
  pthread_mutex_lock(&cs.mu);
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(
      c, "cost_resume",
      "SELECT e.envelope_id, e.envelope_units, e.window_s, e.unit_cost_event,"
      " e.unit_cost_retrain, (extract(epoch FROM coalesce((SELECT max(window_end) FROM"
      " platform.cost_receipts x WHERE x.envelope_id = e.envelope_id), e.set_at)) * 1000000)::bigint"
      " FROM platform.cost_envelopes e ORDER BY e.envelope_id DESC LIMIT 1",
      0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  int rc = r ? 0 : -1;
  if (r && PQntuples(r) == 1) {
    cs.have = true;
    cs.envelope_id = atoll(PQgetvalue(r, 0, 0));
    cs.envelope_units = strtod(PQgetvalue(r, 0, 1), NULL);
    cs.window_us = atoll(PQgetvalue(r, 0, 2)) * US;
    cs.unit_event = strtod(PQgetvalue(r, 0, 3), NULL);
    cs.unit_retrain = strtod(PQgetvalue(r, 0, 4), NULL);
    cs.start_us = atoll(PQgetvalue(r, 0, 5));
    rp_log("info", "msg=cost_envelope_resumed envelope_id=%lld envelope=%.6g window_s=%lld",
           cs.envelope_id, cs.envelope_units, cs.window_us / US);
  }
  PQclear(r);
  int st = rc == 0 ? shared_tripped(c) : -1;
  if (st < 0) rc = -1;
  cs.tripped = st == 1; /* a throttle nobody released is still in force after a restart */
  pthread_mutex_unlock(&cs.mu);
  return rc;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static bool num_field(const json_t *o, const char *k, double *out) {
  json_t *v = json_object_get(o, k);
  if (!json_is_number(v)) return false;
  *out = json_number_value(v);
  return isfinite(*out) && *out >= 0;
}

static void post_budget(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  json_t *req = json_loadb(rq->body, rq->body_len, 0, NULL);
  double env, ue, ur;
  json_t *w = json_object_get(req, "window_s");
  if (!json_is_object(req) || !num_field(req, "envelope_units", &env) ||
      !num_field(req, "unit_cost_event", &ue) || !num_field(req, "unit_cost_retrain", &ur) ||
      !json_is_integer(w) || json_integer_value(w) < 1 || json_integer_value(w) > MAX_WINDOW_S) {
    json_decref(req);
    rp_ctl_reply(rs, 400, "{\"status\":\"rejected\",\"reason\":\"envelope_units, unit_cost_event "
                          "and unit_cost_retrain must be numbers >= 0, window_s an integer in "
                          "[1, %lld]\"}",
                 MAX_WINDOW_S);
    return;
  }
  long long window_s = json_integer_value(w);
  json_decref(req);
  char envs[40], ws[24], ues[40], urs[40];
  snprintf(envs, sizeof envs, "%.17g", env);
  snprintf(ws, sizeof ws, "%lld", window_s);
  snprintf(ues, sizeof ues, "%.17g", ue);
  snprintf(urs, sizeof urs, "%.17g", ur);
  const char *p[] = {envs, ws, ues, urs};

  pthread_mutex_lock(&cs.mu);
  long long now;
  bool ok = pg_now_us(c, &now) && close_window_at(c, now);
  PGresult *r = NULL;
  if (ok) {
    pthread_mutex_lock(&c->pg_lock);
    r = rp_ctl_query(c, "cost_envelope",
                     "INSERT INTO platform.cost_envelopes (envelope_units, window_s,"
                     " unit_cost_event, unit_cost_retrain) VALUES ($1::double precision,"
                     " $2::integer, $3::double precision, $4::double precision) RETURNING"
                     " envelope_id, (extract(epoch FROM set_at) * 1000000)::bigint",
                     4, p);
    pthread_mutex_unlock(&c->pg_lock);
  }
  if (r) {
    cs.have = true;
    cs.envelope_id = atoll(PQgetvalue(r, 0, 0));
    cs.start_us = atoll(PQgetvalue(r, 0, 1));
    cs.envelope_units = env;
    cs.window_us = window_s * US;
    cs.unit_event = ue;
    cs.unit_retrain = ur;
    memset(&cs.cur, 0, sizeof cs.cur);
    rp_log("info", "msg=cost_envelope_set envelope_id=%lld envelope=%.6g window_s=%lld "
                   "unit_cost_event=%.6g unit_cost_retrain=%.6g",
           cs.envelope_id, env, window_s, ue, ur);
    rp_ctl_reply(rs, 201, "{\"status\":\"set\",\"envelope_id\":%lld,\"envelope_units\":%.17g,"
                          "\"window_s\":%lld,\"unit_cost_event\":%.17g,\"unit_cost_retrain\":%.17g,"
                          "\"tripped\":%s}",
                 cs.envelope_id, env, window_s, ue, ur, cs.tripped ? "true" : "false");
  } else {
    rp_ctl_reply(rs, 503, "{\"status\":\"error\",\"reason\":\"cost_store_unavailable\"}");
  }
  PQclear(r);
  pthread_mutex_unlock(&cs.mu);
}

static void post_reset(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  pthread_mutex_lock(&cs.mu);
  /* A reset opens a fresh window: the spend that caused the trip stays on the receipt of the
   * window it happened in (written now, before the release, so that receipt's own breach
   * cannot re-trip the guard after it) and does not re-trip it a second later. */
  long long now;
  if (cs.have && pg_now_us(c, &now)) close_window_at(c, now);
  memset(&cs.cur, 0, sizeof cs.cur);
  /* The release is recorded before the key goes, so no process that reads the records after
   * the DEL re-asserts the throttle. */
  int st = shared_tripped(c);
  bool was = st == 1 || cs.tripped;
  if (st < 0 || (was && rp_ctl_posture(c, "cost_guard", "info", "budget reset", "release", NULL,
                                       NULL) != 0)) {
    pthread_mutex_unlock(&cs.mu);
    rp_ctl_reply(rs, 503, "{\"status\":\"error\",\"reason\":\"cost_store_unavailable\"}");
    return;
  }
  cs.tripped = false;
  redisReply *r = rp_ctl_redis(c, "DEL %s", RATE_KEY);
  bool deleted = r && r->type == REDIS_REPLY_INTEGER;
  if (r) freeReplyObject(r);
  if (!deleted) {
    /* Released in the records, but the key could not be deleted: say so. */
    pthread_mutex_unlock(&cs.mu);
    rp_ctl_reply(rs, 503, "{\"status\":\"error\",\"reason\":\"redis_unavailable\"}");
    return;
  }
  pthread_mutex_unlock(&cs.mu);
  rp_log("info", "msg=cost_guard_reset was_tripped=%d", was);
  rp_ctl_reply(rs, 200, "{\"status\":\"reset\",\"was_tripped\":%s}", was ? "true" : "false");
}

static void get_budget(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  pthread_mutex_lock(&cs.mu);
  if (!cs.have) {
    rp_ctl_reply(rs, 404, "{\"status\":\"no_envelope\",\"tripped\":%s}",
                 cs.tripped ? "true" : "false");
    pthread_mutex_unlock(&cs.mu);
    return;
  }
  /* Measured now rather than from the last tick, so a reply never lags the records. */
  int st = shared_tripped(c);
  if (st >= 0) cs.tripped = st;
  struct spend sp;
  if (measure(c, cs.start_us, cs.start_us + cs.window_us, &sp)) cs.cur = sp;
  else sp = cs.cur;
  rp_ctl_reply(rs, 200,
               "{\"envelope_id\":%lld,\"envelope_units\":%.17g,\"window_s\":%lld,"
               "\"unit_cost_event\":%.17g,\"unit_cost_retrain\":%.17g,"
               "\"window_start_us\":%lld,\"window_end_us\":%lld,\"spend_units\":%.17g,"
               "\"events_decided\":%lld,\"retrains\":%lld,\"breached\":%s,\"tripped\":%s}",
               cs.envelope_id, cs.envelope_units, cs.window_us / US, cs.unit_event,
               cs.unit_retrain, cs.start_us, cs.start_us + cs.window_us, sp.units, sp.events,
               sp.retrains, rp_cost_breached(sp.units, cs.envelope_units) ? "true" : "false",
               cs.tripped ? "true" : "false");
  pthread_mutex_unlock(&cs.mu);
}

static void cost_metrics(struct rp_ctl *c, char *buf, size_t bufsz, size_t *len) {
  pthread_mutex_lock(&cs.mu);
  rp_ctl_metric(buf, bufsz, len,
                "# HELP rp_cost_guard_tripped 1 while the cost guard throttles ingress.\n"
                "# TYPE rp_cost_guard_tripped gauge\nrp_cost_guard_tripped %d\n"
                "# HELP rp_cost_guard_trips_total Cost guard trips since start.\n"
                "# TYPE rp_cost_guard_trips_total counter\nrp_cost_guard_trips_total %llu\n",
                cs.tripped ? 1 : 0, cs.trips);
  if (cs.have)
    rp_ctl_metric(buf, bufsz, len,
                  "# HELP rp_cost_envelope_units The active envelope per window.\n"
                  "# TYPE rp_cost_envelope_units gauge\nrp_cost_envelope_units %.17g\n"
                  "# HELP rp_cost_spend_units Spend in the open window (last tick).\n"
                  "# TYPE rp_cost_spend_units gauge\nrp_cost_spend_units %.17g\n"
                  "# HELP rp_cost_window_events_decided Events decided in the open window.\n"
                  "# TYPE rp_cost_window_events_decided gauge\n"
                  "rp_cost_window_events_decided %lld\n",
                  cs.envelope_units, cs.cur.units, cs.cur.events);
  rp_ctl_metric(buf, bufsz, len,
                "# HELP rp_cost_receipts_total Receipts written by this process, by outcome.\n"
                "# TYPE rp_cost_receipts_total counter\n"
                "rp_cost_receipts_total{outcome=\"within\"} %llu\n"
                "rp_cost_receipts_total{outcome=\"breached\"} %llu\n",
                cs.receipts_within, cs.receipts_breached);
  pthread_mutex_unlock(&cs.mu);
}

static const struct rp_route cost_routes[] = {
    {"POST", "/budget", post_budget},
    {"GET", "/budget", get_budget},
    {"POST", "/budget/reset", post_reset},
    {NULL, NULL, NULL},
};

const struct rp_module rp_module_cost = {
    .name = "cost",
    .routes = cost_routes,
    .init = cost_init,
    .tick = cost_tick,
    .metrics = cost_metrics,
};
