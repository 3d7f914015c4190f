/* rp-decider: the reference platform's decision service (contract sections 2-4 and 8). It
 * consumes the traffic topic in group fp-decision, scores each event with the model the registry
 * says is active (platform.active_model, re-read every 500 ms) over event features plus the
 * online feature from Redis, and walks the degrade ladder when the feature store is slow, down
 * or serves values outside the model's feature contract, or when fp:ctl:degrade orders it. It
 * writes one decision per dedupe tuple and at most one case per event, each record in one
 * PostgreSQL transaction, and commits the Kafka offset only after that transaction committed, so
 * origin_offset is the evidence boundary a drill can trust. A small HTTP server serves /health,
 * /metrics and the pause/resume controls. Each planted defect removes exactly one safeguard so
 * the drill that claims to catch it can be seen to fail. */
#include "rp_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RP_CONTROL_WAIT_S 15
/* "at least once a second" for the active model and fp:ctl:degrade; twice gives margin. */
#define RP_REFRESH_MS 500
#define RP_LAG_EVERY_S 1.0
#define RP_SLOW_DRAIN_MS 20 /* the slow-drain defect's per-record sleep */
/* The lag alert (contract §8): rp_lag_alert turns 1, and a posture_events row kind 'lag'
 * action 'enter' is written, once rp_consumer_lag has stayed above RP_LAG_ALERT_RECORDS for
 * RP_LAG_ALERT_FOR_S; it clears (action 'exit') at the first measurement at or below it. */
#define RP_LAG_ALERT_RECORDS 250
#define RP_LAG_ALERT_FOR_S 3.0
/* After a failed feature-store connect, answer from that failure for this long instead of
 * paying a connect attempt per decision while the store is away. */
#define RP_FEAT_RECONNECT_MS 250
#define RP_PG_CONNECT_BUDGET_S 30
#define RP_STATS_EVERY_S 10
#define RP_SCHEMA_LOCK_KEY 74551201 /* pg_advisory_lock key: serialises concurrent DDL */

/* Error kinds of rp_errors_total; fixed so the metric's label set is stable. */
typedef enum {
  ERR_DB_WRITE,          /* a decision transaction failed (it is retried) */
  ERR_DECISION_DROPPED,  /* commit-before-write: a failed write was given up */
  ERR_FEATURES_TIMEOUT,
  ERR_FEATURES_UNAVAILABLE,
  ERR_UNDECIDABLE,       /* a record that is not a valid event */
  ERR_MODEL_REFRESH,     /* the active model could not be read or parsed */
  ERR_OFFSET_COMMIT,
  ERR_KAFKA,             /* consumer errors reported by poll */
  ERR_COUNT
} err_kind;
static const char *const err_names[ERR_COUNT] = {
    "db_write", "decision_dropped", "features_timeout", "features_unavailable",
    "undecidable", "model_refresh", "offset_commit", "kafka"};

static const char *const outcome_names[3] = {"approve", "review", "decline"};

static struct {
  const char *pg_conninfo;
  const char *kafka;
  char redis_host[256];
  int redis_port;
  double feature_budget_ms;
  rp_defect defect;
  sigset_t sigs;
  PGconn *pg; /* owned by the consumer thread after startup */

  pthread_mutex_t mu; /* guards the control state below */
  pthread_cond_t cv;
  bool want_paused, paused, subscribed, stopping;
  unsigned long long processed;
  atomic_bool slow_drain; /* slow-drain defect: set by the first resume */

  /* What the refresher last read; guarded by model_mu, copied per decision. */
  pthread_mutex_t model_mu;
  rp_model model;
  char ctl_degrade[128]; /* fp:ctl:degrade, "" when unset */

  /* Metrics; guarded by met_mu. */
  pthread_mutex_t met_mu;
  rp_hist latency;
  unsigned long long decisions[3], degraded_decisions, errors[ERR_COUNT];
  long long consumer_lag;
  int lag_alert; /* 1 while the lag alert is raised */
  int degraded_gauge; /* 1 while the last decision was flagged degraded */

  /* consumer thread only */
  char posture[128]; /* flagged degrade reason in force, "" = normal */
  redisContext *feat;
  double feat_fail_at;
  rp_feat_status feat_fail_status;
  unsigned long long new_decisions, guard_hits, cases_opened, case_guard_hits, undecidable;
  rd_kafka_t *lag_probe; /* group-less handle that measures the lag while paused */
  double lag_over_since; /* rp_mono_s() when the lag first exceeded the threshold, 0 = not */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .model_mu = PTHREAD_MUTEX_INITIALIZER,
       .met_mu = PTHREAD_MUTEX_INITIALIZER,
       .feature_budget_ms = 20};

static void count_error(err_kind k) {
  pthread_mutex_lock(&g.met_mu);
  g.errors[k]++;
  pthread_mutex_unlock(&g.met_mu);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- PostgreSQL ----------------------------------------------------------------------- */

static void on_pg_notice(void *arg, const char *message) {
  size_t n = strlen(message);
  rp_log("warn", "msg=pg_notice detail=\"%.*s\"", (int)(n && message[n - 1] == '\n' ? n - 1 : n),
         message);
}

static bool pg_ok_cmd(PGresult *r) {
  ExecStatusType s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static bool pg_exec(const char *sql) {
  PGresult *r = PQexec(g.pg, sql);
  bool ok = pg_ok_cmd(r);
  if (!ok) {
    const char *m = PQresultErrorMessage(r);
    rp_log("error", "msg=pg_error sql=\"%.60s\" err=\"%.*s\"", sql, (int)strcspn(m, "\n"), m);
  }
  PQclear(r);
  return ok;
}

static bool pg_connect(void) {
  if (g.pg && PQstatus(g.pg) == CONNECTION_OK) return true;
  if (g.pg) PQfinish(g.pg);
  /* expand_dbname: the --pg string is a full conninfo; the keywords after it add defaults that
   * make a dead server fail within seconds instead of hanging the consumer. The password comes
   * from PGPASSFILE, never from the command line. */
  const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
  const char *vals[] = {g.pg_conninfo, "rp-decider", "5", NULL};
  g.pg = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(g.pg) != CONNECTION_OK) {
    char *m = PQerrorMessage(g.pg);
    size_t n = strcspn(m, "\n");
    rp_log("warn", "msg=pg_connect_failed err=\"%.*s\"", (int)n, m);
    PQfinish(g.pg);
    g.pg = NULL;
    return false;
  }
  PQsetNoticeProcessor(g.pg, on_pg_notice, NULL);
  /* CREATE ... IF NOT EXISTS and friends raise NOTICEs; they are not events worth a line. */
  if (!pg_exec("SET client_min_messages = warning")) {
    PQfinish(g.pg);
    g.pg = NULL;
    return false;
  }
  return true;
}

static void pg_drop(void) {
  if (g.pg) PQfinish(g.pg);
  g.pg = NULL;
}

/* The contract's two tables carry no uniqueness on the tuple: uniqueness is the platform's job
 * and the harness checks it, which is what lets a planted defect show up as duplicate rows.
 * The guard tables are the platform's own mechanism. decision_log and cases are append-only,
 * enforced by a trigger, because the drills treat them as truths. */
static const char *const schema_sql[] = {
    "CREATE SCHEMA IF NOT EXISTS platform",
    "CREATE TABLE IF NOT EXISTS platform.decision_log ("
    " decision_id bigserial PRIMARY KEY,"
    " platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
    " payload_hash text NOT NULL,"
    " origin_topic text NOT NULL, origin_partition integer NOT NULL, origin_offset bigint NOT NULL,"
    " model_version text NOT NULL, bundle_digest text NOT NULL,"
    " degraded boolean NOT NULL DEFAULT false, degrade_reason text,"
    " score double precision NOT NULL, outcome text NOT NULL,"
    " decided_at timestamptz NOT NULL,"
    " trace_id text, scenario_run_id text, phase_id text, runtime_lane text)",
    "CREATE INDEX IF NOT EXISTS decision_log_run_idx ON platform.decision_log (platform_run_id)",
    "CREATE INDEX IF NOT EXISTS decision_log_tuple_idx"
    " ON platform.decision_log (platform_run_id, event_class, event_id)",
    "CREATE TABLE IF NOT EXISTS platform.cases ("
    " case_id bigserial PRIMARY KEY,"
    " platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
    " decision_id bigint, reason text, opened_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cases_run_idx ON platform.cases (platform_run_id)",
    "CREATE INDEX IF NOT EXISTS cases_tuple_idx"
    " ON platform.cases (platform_run_id, event_class, event_id)",
    "CREATE TABLE IF NOT EXISTS platform.decision_guard ("
    " platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
    " payload_hash text NOT NULL, decision_id bigint,"
    " PRIMARY KEY (platform_run_id, event_class, event_id))",
    "CREATE TABLE IF NOT EXISTS platform.case_guard ("
    " platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
    " case_id bigint,"
    " PRIMARY KEY (platform_run_id, event_class, event_id))",
    "CREATE OR REPLACE FUNCTION platform.rp_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END$$",
    "CREATE OR REPLACE TRIGGER decision_log_append_only BEFORE UPDATE OR DELETE"
    " ON platform.decision_log FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    "CREATE OR REPLACE TRIGGER cases_append_only BEFORE UPDATE OR DELETE"
    " ON platform.cases FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    /* Part 2 columns; ADD ... IF NOT EXISTS upgrades a database created by an older decider. */
    "ALTER TABLE platform.decision_log ADD COLUMN IF NOT EXISTS features jsonb",
    "ALTER TABLE platform.decision_log ADD COLUMN IF NOT EXISTS decision_latency_ms"
    " double precision",
    /* Shared with rp-control: the DDL is the contract's, character for character. */
    "CREATE TABLE IF NOT EXISTS platform.posture_events (posture_id bigserial PRIMARY KEY,"
    " kind text NOT NULL, severity text NOT NULL, reason text, action text, model_version text,"
    " details jsonb, at timestamptz NOT NULL DEFAULT clock_timestamp())",
};

static bool ensure_schema(void) {
  char lock[96];
  snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", RP_SCHEMA_LOCK_KEY);
  if (!pg_exec(lock)) return false;
  bool ok = true;
  for (size_t i = 0; ok && i < sizeof schema_sql / sizeof schema_sql[0]; i++)
    ok = pg_exec(schema_sql[i]);
  snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", RP_SCHEMA_LOCK_KEY);
  pg_exec(lock); /* the lock dies with the session anyway */
  return ok;
}

/* ---- one record ----------------------------------------------------------------------- */

typedef struct {
  const char *topic;
  int32_t partition;
  int64_t offset;
  rp_event ev;
  char *payload_hash, *traceparent, *scenario_run_id, *phase_id, *runtime_lane;
  char trace_id[33];
  bool has_trace;
  /* the decision, fixed once so every retry writes the same row */
  double score, latency_ms;
  char model_version[160], bundle_digest[80];
  rp_degrade_out dg;
  char reason[128]; /* copy of dg.reason: the control key's value may change meanwhile */
  char *features_json;
  /* the posture row this decision carries, if its state differs from the one in force */
  bool posture_due;
  const char *posture_kind, *posture_action;
  char posture_prev[128];
} rp_record;

static char *hdr_dup(rd_kafka_headers_t *h, const char *name) {
  const void *v = NULL;
  size_t n = 0;
  if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
    return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, v, n);
  s[n] = '\0';
  return s;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void record_free(rp_record *r) {
  rp_event_free(&r->ev);
  free(r->payload_hash);
  free(r->traceparent);
  free(r->scenario_run_id);
  free(r->phase_id);
  free(r->runtime_lane);
  free(r->features_json);
}

/* Correlation comes from the record headers (what the ingress stamped), falling back to the
 * body for records produced straight onto the topic. */
static bool record_load(const rd_kafka_message_t *m, rp_record *r) {
  memset(r, 0, sizeof *r);
  r->topic = rd_kafka_topic_name(m->rkt);
  r->partition = m->partition;
  r->offset = m->offset;
  char detail[256];
  rp_reason why = rp_event_parse(m->payload ? m->payload : "", m->len, &r->ev, detail, sizeof detail);
  if (why != RP_OK) {
    rp_log("warn", "msg=undecidable_record partition=%d offset=%lld reason=%s detail=\"%s\"",
           (int)m->partition, (long long)m->offset, rp_reason_name(why), detail);
    return false;
  }
  rd_kafka_headers_t *h = NULL;
  if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) h = NULL;
  r->payload_hash = hdr_dup(h, "payload_hash");
  if (!r->payload_hash) r->payload_hash = strdup(r->ev.payload_hash);
  else if (strcmp(r->payload_hash, r->ev.payload_hash) != 0)
    rp_log("warn", "msg=payload_hash_header_mismatch partition=%d offset=%lld header=%s body=%s",
           (int)m->partition, (long long)m->offset, r->payload_hash, r->ev.payload_hash);
  r->traceparent = hdr_dup(h, "traceparent");
  r->has_trace = rp_traceparent_parse(r->traceparent, r->trace_id, NULL);
  if (!(r->scenario_run_id = hdr_dup(h, "scenario_run_id")))
    r->scenario_run_id = dup_or_null(r->ev.scenario_run_id);
  if (!(r->phase_id = hdr_dup(h, "phase_id"))) r->phase_id = dup_or_null(r->ev.phase_id);
  if (!(r->runtime_lane = hdr_dup(h, "runtime_lane")))
    r->runtime_lane = dup_or_null(r->ev.runtime_lane);
  return true;
}

/* ---- online features ------------------------------------------------------------------ */

static void feat_drop(void) {
  if (g.feat) redisFree(g.feat);
  g.feat = NULL;
}

/* A hiredis I/O error after its socket timeout (SO_RCVTIMEO = the budget) surfaces as EAGAIN;
 * a connect that ran out of time as ETIMEDOUT or EINPROGRESS. Elapsed time settles the rest. */
static rp_feat_status classify_io(int err, double elapsed_ms) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT || err == EINPROGRESS ||
      elapsed_ms >= g.feature_budget_ms)
    return RP_FEAT_TIMEOUT;
  return RP_FEAT_UNAVAILABLE;
}

/* Reads fp:feat:<account> txn_count_24h within the budget. The connection and the reply wait
 * share one budget: the socket timeouts are the budget itself, and whatever answers later than
 * it is reported as a timeout by the caller's elapsed-time check. */
static rp_feat_status fetch_txn_count(const char *account, double *value) {
  double now = rp_mono_s();
  if (!g.feat && g.feat_fail_at > 0 && (now - g.feat_fail_at) * 1000.0 < RP_FEAT_RECONNECT_MS)
    return g.feat_fail_status;
  long budget_us = (long)(g.feature_budget_ms * 1000.0);
  struct timeval tv = {budget_us / 1000000, budget_us % 1000000};
  if (!g.feat) {
    double t0 = rp_mono_s();
    errno = 0;
    redisContext *c = redisConnectWithTimeout(g.redis_host, g.redis_port, tv);
    int e = errno;
    if (!c || c->err) {
      g.feat_fail_at = rp_mono_s();
      g.feat_fail_status = c ? classify_io(e, (g.feat_fail_at - t0) * 1000.0) : RP_FEAT_UNAVAILABLE;
      if (c) redisFree(c);
      return g.feat_fail_status;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
      redisFree(c);
      g.feat_fail_at = rp_mono_s();
      return g.feat_fail_status = RP_FEAT_UNAVAILABLE;
    }
    g.feat = c;
    g.feat_fail_at = 0;
  }
  double t0 = rp_mono_s();
  errno = 0;
  redisReply *r = redisCommand(g.feat, "HGET fp:feat:%s txn_count_24h", account);
  int e = errno;
  if (!r) { /* the context is dead after any I/O error (hiredis 0.14): reconnect next time */
    rp_feat_status st = classify_io(e, (rp_mono_s() - t0) * 1000.0);
    feat_drop();
    return st;
  }
  rp_feat_status st;
  if (r->type == REDIS_REPLY_NIL) {
    *value = 0;
    st = RP_FEAT_MISSING;
  } else if (r->type == REDIS_REPLY_STRING) {
    char *end;
    *value = strtod(r->str, &end);
    /* an unparsable value is a broken store, not a value to score */
    st = end != r->str && *end == '\0' && !isnan(*value) ? RP_FEAT_OK : RP_FEAT_UNAVAILABLE;
    if (st != RP_FEAT_OK) rp_log("warn", "msg=feature_unparsable account_id=%s", account);
  } else {
    st = RP_FEAT_UNAVAILABLE; /* an error reply (LOADING, OOM, ...) */
  }
  freeReplyObject(r);
  return st;
}

/* Takes the decision for a loaded record: features, ladder, model, score, posture change. It
 * runs once per record, before the first write attempt, so retries write the same decision. */
static void decide(rp_record *r, double t0) {
  rp_model m;
  char ctl[sizeof g.ctl_degrade];
  pthread_mutex_lock(&g.model_mu);
  m = g.model;
  memcpy(ctl, g.ctl_degrade, sizeof ctl);
  pthread_mutex_unlock(&g.model_mu);

  rp_features f;
  rp_features_from_payload(r->ev.payload, &f);
  double v = 0, ft0 = rp_mono_s();
  rp_feat_status fs = fetch_txn_count(r->ev.account_id, &v);
  double fms = (rp_mono_s() - ft0) * 1000.0;
  if (fs == RP_FEAT_OK || fs == RP_FEAT_MISSING) {
    f.x[RP_F_TXN_COUNT_24H] = v;
    f.present[RP_F_TXN_COUNT_24H] = fms <= g.feature_budget_ms; /* late: not served */
  }
  if (fs == RP_FEAT_TIMEOUT || (fs <= RP_FEAT_MISSING && fms > g.feature_budget_ms))
    count_error(ERR_FEATURES_TIMEOUT);
  else if (fs == RP_FEAT_UNAVAILABLE)
    count_error(ERR_FEATURES_UNAVAILABLE);
  int viol = rp_contract_check(&m, &f);
  rp_degrade_in in = {ctl[0] ? ctl : NULL, fs, fms, g.feature_budget_ms, viol >= 0, g.defect};
  r->dg = rp_degrade_decide(&in);
  if (viol >= 0 && r->dg.reason && strcmp(r->dg.reason, "feature_contract_violation") == 0)
    rp_log("warn", "msg=feature_contract_violation feature=%s value=%g model_version=%s "
           "partition=%d offset=%lld", rp_feature_names[viol], f.x[viol], m.version,
           (int)r->partition, (long long)r->offset);
  snprintf(r->reason, sizeof r->reason, "%s", r->dg.reason ? r->dg.reason : "");
  r->dg.reason = r->dg.reason ? r->reason : NULL;
  r->score = rp_model_score(&m, &f, r->dg.fallback);
  snprintf(r->model_version, sizeof r->model_version, "%s%s", m.version,
           r->dg.fallback ? "+fallback" : "");
  snprintf(r->bundle_digest, sizeof r->bundle_digest, "%s", m.bundle_digest);
  json_t *fj = rp_features_json(&f);
  r->features_json = fj ? json_dumps(fj, JSON_COMPACT) : NULL;
  json_decref(fj);
  /* extra_latency_ms is how a "slower model" is modelled: it costs every decision */
  if (m.extra_latency_ms > 0) sleep_ms(m.extra_latency_ms);
  r->latency_ms = (rp_mono_s() - t0) * 1000.0;

  const char *next = r->dg.flagged ? r->reason : NULL;
  r->posture_due = rp_posture_change(g.posture[0] ? g.posture : NULL, next, &r->posture_kind,
                                     &r->posture_action);
  snprintf(r->posture_prev, sizeof r->posture_prev, "%s", g.posture);
}

typedef struct {
  bool new_decision, new_case, case_guard_hit;
} rp_tx_outcome;

/* Runs one parameterised statement; on failure logs and returns NULL (caller rolls back). */
static PGresult *q(const char *what, const char *sql, int n, const char *const *params) {
  PGresult *res = PQexecParams(g.pg, sql, n, NULL, params, NULL, NULL, 0);
  if (!pg_ok_cmd(res)) {
    char *m = PQresultErrorMessage(res);
    rp_log("error", "msg=pg_error step=%s err=\"%.*s\"", what, (int)strcspn(m, "\n"), m);
    PQclear(res);
    return NULL;
  }
  return res;
}

static bool decide_tx(const rp_record *r, rp_tx_outcome *out) {
  memset(out, 0, sizeof *out);
  const rp_event *e = &r->ev;
  char decision_id[32] = "";
  PGresult *res;
  if (!(res = q("begin", "BEGIN", 0, NULL))) return false;
  PQclear(res);

  bool is_new = true;
  if (g.defect != RP_DEFECT_DEDUPE_OFF) {
    const char *p[] = {e->platform_run_id, e->event_class, e->event_id, r->payload_hash};
    if (!(res = q("decision_guard",
                  "INSERT INTO platform.decision_guard (platform_run_id, event_class, event_id,"
                  " payload_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                  4, p)))
      goto fail;
    is_new = PQntuples(res) == 1;
    PQclear(res);
    if (!is_new) {
      if (!(res = q("decision_guard_read",
                    "SELECT coalesce(decision_id::text, ''), payload_hash FROM"
                    " platform.decision_guard WHERE platform_run_id = $1 AND event_class = $2"
                    " AND event_id = $3",
                    3, p)))
        goto fail;
      if (PQntuples(res) == 1) {
        snprintf(decision_id, sizeof decision_id, "%s", PQgetvalue(res, 0, 0));
        if (strcmp(PQgetvalue(res, 0, 1), r->payload_hash) != 0)
          rp_log("warn",
                 "msg=payload_hash_mismatch platform_run_id=%s event_class=%s event_id=%s "
                 "decided_hash=%s record_hash=%s partition=%d offset=%lld",
                 e->platform_run_id, e->event_class, e->event_id, PQgetvalue(res, 0, 1),
                 r->payload_hash, (int)r->partition, (long long)r->offset);
      }
      PQclear(res);
    }
  }
  if (is_new) {
    char part[16], off[24], score[40], lat[40];
    snprintf(part, sizeof part, "%d", (int)r->partition);
    snprintf(off, sizeof off, "%lld", (long long)r->offset);
    snprintf(score, sizeof score, "%.17g", r->score);
    snprintf(lat, sizeof lat, "%.6f", r->latency_ms);
    const char *p[] = {e->platform_run_id, e->event_class, e->event_id, r->payload_hash,
                       r->topic, part, off, r->model_version, r->bundle_digest, score,
                       rp_model_outcome(r->score), r->has_trace ? r->trace_id : NULL,
                       r->scenario_run_id, r->phase_id, r->runtime_lane,
                       r->dg.flagged ? "true" : "false", r->dg.reason, r->features_json, lat};
    if (!(res = q("decision_log",
                  "INSERT INTO platform.decision_log (platform_run_id, event_class, event_id,"
                  " payload_hash, origin_topic, origin_partition, origin_offset, model_version,"
                  " bundle_digest, degraded, degrade_reason, score, outcome, decided_at,"
                  " trace_id, scenario_run_id, phase_id, runtime_lane, features,"
                  " decision_latency_ms) VALUES ($1, $2, $3, $4, $5, $6::integer, $7::bigint,"
                  " $8, $9, $16::boolean, $17, $10::double precision, $11, clock_timestamp(),"
                  " $12, $13, $14, $15, $18::jsonb, $19::double precision) RETURNING decision_id",
                  19, p)))
      goto fail;
    snprintf(decision_id, sizeof decision_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    out->new_decision = true;
    if (g.defect != RP_DEFECT_DEDUPE_OFF) {
      const char *u[] = {e->platform_run_id, e->event_class, e->event_id, decision_id};
      if (!(res = q("decision_guard_link",
                    "UPDATE platform.decision_guard SET decision_id = $4::bigint WHERE"
                    " platform_run_id = $1 AND event_class = $2 AND event_id = $3",
                    4, u)))
        goto fail;
      PQclear(res);
    }
  }

  /* The case step runs for every high-score record, new decision or not: on a replay it is the
   * case guard, not the decision guard, that must keep the case single. */
  if (r->score >= RP_CASE_THRESHOLD) {
    bool open = true;
    const char *p[] = {e->platform_run_id, e->event_class, e->event_id};
    if (g.defect != RP_DEFECT_CASE_DUP) {
      if (!(res = q("case_guard",
                    "INSERT INTO platform.case_guard (platform_run_id, event_class, event_id)"
                    " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                    3, p)))
        goto fail;
      open = PQntuples(res) == 1;
      PQclear(res);
      out->case_guard_hit = !open;
    }
    if (open) {
      char reason[64];
      snprintf(reason, sizeof reason, "score %.4f >= %.2f", r->score, RP_CASE_THRESHOLD);
      const char *c[] = {e->platform_run_id, e->event_class, e->event_id,
                         decision_id[0] ? decision_id : NULL, reason};
      if (!(res = q("case_open",
                    "INSERT INTO platform.cases (platform_run_id, event_class, event_id,"
                    " decision_id, reason, opened_at) VALUES ($1, $2, $3, $4::bigint, $5,"
                    " clock_timestamp()) RETURNING case_id",
                    5, c)))
        goto fail;
      char case_id[32];
      snprintf(case_id, sizeof case_id, "%s", PQgetvalue(res, 0, 0));
      PQclear(res);
      out->new_case = true;
      if (g.defect != RP_DEFECT_CASE_DUP) {
        const char *u[] = {e->platform_run_id, e->event_class, e->event_id, case_id};
        if (!(res = q("case_guard_link",
                      "UPDATE platform.case_guard SET case_id = $4::bigint WHERE"
                      " platform_run_id = $1 AND event_class = $2 AND event_id = $3",
                      4, u)))
          goto fail;
        PQclear(res);
      }
    }
  }
  /* The posture change rides in the transaction of the first decision taken in the new state,
   * so the posture log and the decision log can never disagree about when it happened. */
  if (r->posture_due && out->new_decision) {
    json_t *d = json_pack("{s:s,s:s?,s:s?,s:s,s:i,s:I}", "transition", r->posture_action,
                          "previous_reason", r->posture_prev[0] ? r->posture_prev : NULL,
                          "reason", r->dg.reason, "model_version", r->model_version,
                          "origin_partition", (int)r->partition, "origin_offset",
                          (json_int_t)r->offset);
    char *ds = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    bool enter = strcmp(r->posture_action, "enter") == 0;
    const char *pp[] = {r->posture_kind, enter ? "warning" : "info",
                        enter ? r->dg.reason : r->posture_prev, r->posture_action,
                        r->model_version, ds};
    res = q("posture_event",
            "INSERT INTO platform.posture_events (kind, severity, reason, action, model_version,"
            " details) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            6, pp);
    free(ds);
    if (!res) goto fail;
    PQclear(res);
  }
  if (!(res = q("commit", "COMMIT", 0, NULL))) goto fail;
  PQclear(res);
  return true;
fail:
  if (PQstatus(g.pg) == CONNECTION_OK) {
    res = PQexec(g.pg, "ROLLBACK");
    PQclear(res);
  }
  return false;
}

/* ---- control state -------------------------------------------------------------------- */

static bool should_yield(void) {
  pthread_mutex_lock(&g.mu);
  bool y = g.stopping || g.want_paused;
  pthread_mutex_unlock(&g.mu);
  return y;
}

typedef enum { REC_DONE, REC_ABANDONED } rec_result;

static void commit_offset(rd_kafka_t *rk, const rd_kafka_message_t *m, bool sync) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
      m->offset + 1;
  rd_kafka_resp_err_t e = rd_kafka_offsets_store(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) rp_log("warn", "msg=offset_store_failed err=%s", rd_kafka_err2name(e));
  e = rd_kafka_commit_message(rk, m, sync ? 0 : 1);
  if (e) {
    rp_log("warn", "msg=offset_commit_failed err=%s", rd_kafka_err2name(e));
    count_error(ERR_OFFSET_COMMIT);
  }
}

/* Bookkeeping after a decision transaction committed: counters, the histogram, and the posture
 * state the next decision is compared with. */
static void account(const rp_record *r, const rp_tx_outcome *o) {
  g.new_decisions += o->new_decision;
  g.guard_hits += !o->new_decision;
  g.cases_opened += o->new_case;
  g.case_guard_hits += o->case_guard_hit;
  if (!o->new_decision) return;
  if (r->posture_due) {
    rp_log("info", "msg=posture_change kind=%s action=%s reason=%s previous=%s", r->posture_kind,
           r->posture_action, r->dg.reason ? r->dg.reason : "-",
           r->posture_prev[0] ? r->posture_prev : "-");
    snprintf(g.posture, sizeof g.posture, "%s", r->dg.flagged ? r->reason : "");
  }
  const char *oc = rp_model_outcome(r->score);
  pthread_mutex_lock(&g.met_mu);
  for (int i = 0; i < 3; i++)
    if (strcmp(oc, outcome_names[i]) == 0) g.decisions[i]++;
  g.degraded_decisions += r->dg.flagged;
  g.degraded_gauge = g.posture[0] != '\0';
  rp_hist_observe(&g.latency, r->latency_ms / 1000.0);
  pthread_mutex_unlock(&g.met_mu);
}

/* Fail closed: a record is retried until its transaction commits. Only a pause or shutdown
 * interrupts the retries, and then its offset stays uncommitted, so the record is read again.
 * The commit-before-write defect inverts this: the offset is committed first and a failed
 * write is dropped, which is exactly the loss a DB-outage drill must detect. */
static rec_result handle_record(rd_kafka_t *rk, rd_kafka_message_t *m) {
  double t0 = rp_mono_s();
  if (atomic_load(&g.slow_drain)) sleep_ms(RP_SLOW_DRAIN_MS); /* planted: slow-drain */
  rp_record r;
  bool decidable = record_load(m, &r);
  if (decidable) decide(&r, t0);
  else {
    g.undecidable++;
    count_error(ERR_UNDECIDABLE);
  }
  bool early = g.defect == RP_DEFECT_COMMIT_BEFORE_WRITE;
  if (early) commit_offset(rk, m, true);
  long backoff = 200;
  while (decidable) {
    rp_tx_outcome o;
    if (pg_connect() && decide_tx(&r, &o)) {
      account(&r, &o);
      break;
    }
    count_error(ERR_DB_WRITE);
    if (g.pg && PQstatus(g.pg) != CONNECTION_OK) pg_drop();
    if (early) {
      rp_log("error", "msg=decision_dropped partition=%d offset=%lld event_id=%s "
             "why=write_failed_after_commit", (int)m->partition, (long long)m->offset,
             r.ev.event_id);
      count_error(ERR_DECISION_DROPPED);
      break;
    }
    if (should_yield()) {
      rp_log("warn", "msg=record_abandoned partition=%d offset=%lld why=pause_or_stop",
             (int)m->partition, (long long)m->offset);
      record_free(&r);
      return REC_ABANDONED;
    }
    rp_log("warn", "msg=decide_retry partition=%d offset=%lld backoff_ms=%ld", (int)m->partition,
           (long long)m->offset, backoff);
    sleep_ms(backoff);
    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
  }
  if (decidable) record_free(&r);
  if (!early) commit_offset(rk, m, false);
  pthread_mutex_lock(&g.mu);
  g.processed++;
  pthread_mutex_unlock(&g.mu);
  return REC_DONE;
}

/* rp_consumer_lag: high watermark minus position, summed over the assigned partitions. The
 * high watermark comes from the fetcher's cache (no round trip); only a partition with no
 * cached value yet is asked for it, with a short timeout. A partition not consumed since the
 * assignment counts from its committed offset. */
static void lag_update(rd_kafka_t *rk) {
  rd_kafka_topic_partition_list_t *a = NULL;
  if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a) return;
  long long lag = 0;
  if (a->cnt > 0) {
    rd_kafka_position(rk, a);
    bool need_committed = false;
    for (int i = 0; i < a->cnt; i++) need_committed |= a->elems[i].offset < 0;
    rd_kafka_topic_partition_list_t *c = NULL;
    if (need_committed) {
      c = rd_kafka_topic_partition_list_copy(a);
      if (rd_kafka_committed(rk, c, 500) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(c);
        c = NULL;
      }
    }
    for (int i = 0; i < a->cnt; i++) {
      const rd_kafka_topic_partition_t *p = &a->elems[i];
      int64_t lo = -1, hi = -1;
      if (rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) ||
          hi < 0 || lo < 0)
        if (rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi, 200))
          continue;
      int64_t pos = p->offset;
      if (pos < 0 && c) pos = c->elems[i].offset;
      if (pos < 0) pos = lo; /* auto.offset.reset=earliest */
      if (hi > pos) lag += hi - pos;
    }
    if (c) rd_kafka_topic_partition_list_destroy(c);
  }
  rd_kafka_topic_partition_list_destroy(a);
  pthread_mutex_lock(&g.met_mu);
  g.consumer_lag = lag;
  pthread_mutex_unlock(&g.met_mu);
}

/* ---- consumer lifecycle --------------------------------------------------------------- */

static void log_parts(const char *what, const rd_kafka_topic_partition_list_t *p) {
  char buf[256] = "";
  size_t n = 0;
  for (int i = 0; p && i < p->cnt && n < sizeof buf - 8; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", i ? "," : "", (int)p->elems[i].partition);
  rp_log("info", "msg=%s partitions=%s", what, buf);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    log_parts("partitions_assigned", parts);
    rd_kafka_assign(rk, parts);
  } else {
    log_parts("partitions_revoked", parts);
    /* Stored offsets belong to records whose transactions committed; hand them over before
     * another member takes the partitions. */
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
      rp_log("warn", "msg=revoke_commit_failed err=%s", rd_kafka_err2name(e));
    rd_kafka_assign(rk, NULL);
  }
}

/* librdkafka logs through here so every stderr line stays in the same logfmt shape. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  rp_log(level <= 3 ? "error" : level <= 4 ? "warn" : "info", "msg=kafka_log facility=%s detail=\"%s\"",
         fac, buf);
}

static bool cset(rd_kafka_conf_t *c, const char *k, const char *v) {
  char err[256];
  if (rd_kafka_conf_set(c, k, v, err, sizeof err) == RD_KAFKA_CONF_OK) return true;
  rp_log("error", "msg=kafka_conf_failed key=%s err=\"%s\"", k, err);
  return false;
}

/* While paused there is no member and no assignment, yet a paused consumer is exactly when the
 * backlog grows, so the lag is measured from outside the group: the group's committed offsets
 * (OffsetFetch needs group.id, not membership: this handle never subscribes, so it never joins
 * or disturbs the group) against the high watermarks of every partition of the topic. */
static void lag_probe_paused(void) {
  if (!g.lag_probe) {
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!cset(c, "bootstrap.servers", g.kafka) || !cset(c, "group.id", RP_GROUP) ||
        !cset(c, "client.id", "rp-decider-lag-probe") || !cset(c, "enable.auto.commit", "false")) {
      rd_kafka_conf_destroy(c);
      return;
    }
    rd_kafka_conf_set_log_cb(c, on_kafka_log);
    if (!(g.lag_probe = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err))) {
      rp_log("warn", "msg=lag_probe_create_failed err=\"%s\"", err);
      return;
    }
  }
  rd_kafka_topic_t *t = rd_kafka_topic_new(g.lag_probe, RP_TOPIC, NULL);
  const struct rd_kafka_metadata *md = NULL;
  if (!t || rd_kafka_metadata(g.lag_probe, 0, t, &md, 1000) || md->topic_cnt != 1 ||
      md->topics[0].err) {
    if (md) rd_kafka_metadata_destroy(md);
    if (t) rd_kafka_topic_destroy(t);
    return; /* keep the last value: an unmeasured lag is not a zero lag */
  }
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
  for (int i = 0; i < md->topics[0].partition_cnt; i++)
    rd_kafka_topic_partition_list_add(l, RP_TOPIC, md->topics[0].partitions[i].id);
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(t);
  bool ok = rd_kafka_committed(g.lag_probe, l, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  long long lag = 0;
  for (int i = 0; ok && i < l->cnt; i++) {
    int64_t lo = -1, hi = -1;
    if (rd_kafka_query_watermark_offsets(g.lag_probe, RP_TOPIC, l->elems[i].partition, &lo, &hi,
                                         500)) {
      ok = false;
      break;
    }
    int64_t pos = l->elems[i].offset >= 0 ? l->elems[i].offset : lo; /* reset=earliest */
    if (hi > pos) lag += hi - pos;
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (!ok) return;
  pthread_mutex_lock(&g.met_mu);
  g.consumer_lag = lag;
  pthread_mutex_unlock(&g.met_mu);
}

/* Raises and clears the lag alert from the last measurement; the posture row is written by the
 * consumer thread, which owns g.pg. A failed row write is logged and retried at the next
 * evaluation (the gauge only changes once the row is durable, so the two never disagree). */
static void lag_alert_eval(void) {
  pthread_mutex_lock(&g.met_mu);
  long long lag = g.consumer_lag;
  int alert = g.lag_alert;
  pthread_mutex_unlock(&g.met_mu);
  double now = rp_mono_s();
  bool over = lag > RP_LAG_ALERT_RECORDS;
  if (!over) g.lag_over_since = 0;
  else if (g.lag_over_since == 0) g.lag_over_since = now;
  int want = over ? (alert || now - g.lag_over_since >= RP_LAG_ALERT_FOR_S) : 0;
  if (want == alert) return;
  char details[160], lag_s[24];
  snprintf(lag_s, sizeof lag_s, "%lld", lag);
  snprintf(details, sizeof details, "{\"lag\":%lld,\"threshold\":%d,\"for_s\":%g}", lag,
           RP_LAG_ALERT_RECORDS, RP_LAG_ALERT_FOR_S);
  const char *pp[] = {want ? "warning" : "info", want ? "enter" : "exit", details};
  PGresult *res = pg_connect() ? q("posture_lag",
                                   "INSERT INTO platform.posture_events (kind, severity, reason,"
                                   " action, details) VALUES ('lag', $1, 'consumer_lag', $2,"
                                   " $3::jsonb)",
                                   3, pp)
                               : NULL;
  if (!res) return;
  PQclear(res);
  rp_log(want ? "warn" : "info", "msg=lag_alert action=%s lag=%s threshold=%d", pp[1], lag_s,
         RP_LAG_ALERT_RECORDS);
  pthread_mutex_lock(&g.met_mu);
  g.lag_alert = want;
  pthread_mutex_unlock(&g.met_mu);
}

static rd_kafka_t *consumer_start(void) {
  char err[512];
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  /* Offsets are stored by hand after the DB commit; auto store would let a commit run ahead of
   * the decision log. No group.instance.id: a paused member must really leave the group. */
  if (!cset(c, "bootstrap.servers", g.kafka) || !cset(c, "group.id", RP_GROUP) ||
      !cset(c, "client.id", "rp-decider") || !cset(c, "enable.auto.commit", "false") ||
      !cset(c, "enable.auto.offset.store", "false") ||
      !cset(c, "auto.offset.reset", "earliest") || !cset(c, "session.timeout.ms", "6000") ||
      !cset(c, "heartbeat.interval.ms", "1000") || !cset(c, "enable.partition.eof", "false") ||
      /* The ingress creates the topic; if we start first, notice it in seconds, not 5 min. */
      !cset(c, "topic.metadata.refresh.interval.ms", "5000")) {
    rd_kafka_conf_destroy(c);
    return NULL;
  }
  rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
  rd_kafka_conf_set_log_cb(c, on_kafka_log);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
  if (!rk) {
    rp_log("error", "msg=consumer_create_failed err=\"%s\"", err);
    return NULL;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, RP_TOPIC, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  if (e) {
    rp_log("error", "msg=subscribe_failed err=%s", rd_kafka_err2name(e));
    rd_kafka_destroy(rk);
    return NULL;
  }
  rp_log("info", "msg=consumer_subscribed group=%s topic=%s", RP_GROUP, RP_TOPIC);
  return rk;
}

static void consumer_stop(rd_kafka_t *rk) {
  rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
  if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
    rp_log("warn", "msg=final_commit_failed err=%s", rd_kafka_err2name(e));
  e = rd_kafka_consumer_close(rk); /* sends LeaveGroup */
  if (e) rp_log("warn", "msg=consumer_close_failed err=%s", rd_kafka_err2name(e));
  rd_kafka_destroy(rk);
  rp_log("info", "msg=consumer_closed group=%s", RP_GROUP);
}

static void stats_maybe(time_t *last, unsigned long long *last_proc) {
  time_t now = time(NULL);
  if (now - *last < RP_STATS_EVERY_S) return;
  pthread_mutex_lock(&g.mu);
  unsigned long long p = g.processed;
  pthread_mutex_unlock(&g.mu);
  if (p != *last_proc)
    rp_log("info",
           "msg=stats processed=%llu rate_per_s=%.1f new_decisions=%llu guard_hits=%llu "
           "cases_opened=%llu case_guard_hits=%llu undecidable=%llu",
           p, (double)(p - *last_proc) / (double)(now - *last), g.new_decisions, g.guard_hits,
           g.cases_opened, g.case_guard_hits, g.undecidable);
  *last = now;
  *last_proc = p;
}

static void set_state(bool paused, bool subscribed) {
  pthread_mutex_lock(&g.mu);
  g.paused = paused;
  g.subscribed = subscribed;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
}

static void *consumer_main(void *arg) {
  rd_kafka_t *rk = NULL;
  double last_lag = 0;
  time_t last_stats = time(NULL);
  unsigned long long last_proc = 0;
  long err_logged = 0;
  for (;;) {
    pthread_mutex_lock(&g.mu);
    bool stop = g.stopping, want_pause = g.want_paused;
    if (!stop && want_pause && !rk) {
      struct timespec dl;
      clock_gettime(CLOCK_REALTIME, &dl);
      dl.tv_sec += 1;
      pthread_cond_timedwait(&g.cv, &g.mu, &dl);
      pthread_mutex_unlock(&g.mu);
      if (rp_mono_s() - last_lag >= RP_LAG_EVERY_S) {
        lag_probe_paused();
        lag_alert_eval();
        last_lag = rp_mono_s();
      }
      continue;
    }
    pthread_mutex_unlock(&g.mu);
    if (stop) break;
    if (want_pause) { /* rk != NULL here */
      consumer_stop(rk);
      rk = NULL;
      set_state(true, false);
      rp_log("info", "msg=paused processed=%llu", g.processed);
      continue;
    }
    if (!rk) {
      if (!(rk = consumer_start())) {
        sleep_ms(1000);
        continue;
      }
      set_state(false, true);
      continue;
    }
    stats_maybe(&last_stats, &last_proc);
    if (rp_mono_s() - last_lag >= RP_LAG_EVERY_S) {
      lag_update(rk);
      lag_alert_eval();
      last_lag = rp_mono_s();
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) continue;
    if (m->err) {
      count_error(ERR_KAFKA);
      /* Transient broker errors repeat every poll while the broker is away; log a sample. */
      if (err_logged++ % 50 == 0)
        rp_log("warn", "msg=consumer_error err=%s detail=\"%s\"", rd_kafka_err2name(m->err),
               rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    err_logged = 0;
    handle_record(rk, m);
    rd_kafka_message_destroy(m);
  }
  if (rk) consumer_stop(rk);
  if (g.lag_probe) rd_kafka_destroy(g.lag_probe);
  g.lag_probe = NULL;
  set_state(true, false);
  return NULL;
}

/* ---- refresher: the active model and the degrade control key ------------------------ */

/* Its own connections: a slow registry query or a Redis hiccup here must never stall the
 * decision path, and the decision path's connections are owned by the consumer thread. */
static PGconn *ref_pg;
static redisContext *ref_redis;

static PGconn *ref_pg_get(void) {
  if (ref_pg && PQstatus(ref_pg) == CONNECTION_OK) return ref_pg;
  if (ref_pg) PQfinish(ref_pg);
  const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
  const char *vals[] = {g.pg_conninfo, "rp-decider-refresh", "2", "-c statement_timeout=2000",
                        NULL};
  ref_pg = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(ref_pg) != CONNECTION_OK) {
    PQfinish(ref_pg);
    ref_pg = NULL;
    return NULL;
  }
  PQsetNoticeProcessor(ref_pg, on_pg_notice, NULL);
  return ref_pg;
}

static bool sqlstate_is(const PGresult *r, const char *code) {
  const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return st && strcmp(st, code) == 0;
}

/* Logs a refresh problem once per distinct message, not twice a second while it lasts. */
static void refresh_problem(const char *what, const char *detail) {
  static char last[256];
  char line[256];
  snprintf(line, sizeof line, "%s: %.*s", what, (int)strcspn(detail, "\n"), detail);
  if (strcmp(line, last) == 0) return;
  snprintf(last, sizeof last, "%s", line);
  rp_log("warn", "msg=model_refresh_problem detail=\"%s\"", line);
  count_error(ERR_MODEL_REFRESH);
}

/* Fills *m with the model to serve. False means PostgreSQL could not answer: keep the model in
 * force rather than flapping to the built-in one during a database outage. A registry that
 * does not exist yet (undefined_table) or has no active version is an answer: the built-in. */
static bool read_active_model(PGconn *c, rp_model *m) {
  PGresult *r = PQexec(c, "SELECT version, weights::text, bundle_digest,"
                          " coalesce(extra_latency_ms, 0)::integer FROM platform.active_model"
                          " LIMIT 1");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    bool missing = sqlstate_is(r, "42P01");
    if (!missing) refresh_problem("active_model", PQresultErrorMessage(r));
    PQclear(r);
    if (missing) rp_model_builtin(m);
    return missing;
  }
  if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
    PQclear(r);
    rp_model_builtin(m);
    return true;
  }
  char err[160];
  bool ok = rp_model_from_json(PQgetvalue(r, 0, 0), PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1),
                               PQgetisnull(r, 0, 2) ? NULL : PQgetvalue(r, 0, 2),
                               atoi(PQgetvalue(r, 0, 3)), m, err, sizeof err);
  if (!ok) {
    char what[200];
    snprintf(what, sizeof what, "weights of %s", PQgetvalue(r, 0, 0));
    refresh_problem(what, err);
  }
  PQclear(r);
  if (!ok) return false;
  /* The feature contract lives in the registry row; a registry without the column (older
   * rp-control) simply means no contract. */
  const char *p[] = {m->version};
  r = PQexecParams(c, "SELECT feature_contract::text FROM platform.model_registry WHERE"
                      " version = $1", 1, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    bool absent = sqlstate_is(r, "42P01") || sqlstate_is(r, "42703");
    if (!absent) refresh_problem("feature_contract", PQresultErrorMessage(r));
    PQclear(r);
    return absent;
  }
  if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
      !rp_model_set_contract(m, PQgetvalue(r, 0, 0), err, sizeof err)) {
    char what[200];
    snprintf(what, sizeof what, "feature_contract of %s", m->version);
    refresh_problem(what, err); /* served without a contract rather than not at all */
  }
  PQclear(r);
  return true;
}

/* GET fp:ctl:degrade; false when Redis did not answer (keep the value in force). */
static bool read_ctl_degrade(char *out, size_t osz) {
  if (ref_redis && ref_redis->err) {
    redisFree(ref_redis);
    ref_redis = NULL;
  }
  if (!ref_redis) {
    struct timeval tv = {1, 0};
    ref_redis = redisConnectWithTimeout(g.redis_host, g.redis_port, tv);
    if (!ref_redis || ref_redis->err) {
      if (ref_redis) redisFree(ref_redis);
      ref_redis = NULL;
      return false;
    }
    redisSetTimeout(ref_redis, tv);
  }
  redisReply *r = redisCommand(ref_redis, "GET fp:ctl:degrade");
  if (!r) return false; /* dead context: reconnect next round */
  bool ok = true;
  if (r->type == REDIS_REPLY_NIL) out[0] = '\0';
  else if (r->type == REDIS_REPLY_STRING) snprintf(out, osz, "%s", r->str);
  else ok = false;
  freeReplyObject(r);
  return ok;
}

static bool same_model(const rp_model *a, const rp_model *b) {
  return strcmp(a->version, b->version) == 0 && strcmp(a->bundle_digest, b->bundle_digest) == 0 &&
         a->extra_latency_ms == b->extra_latency_ms && a->n_contract == b->n_contract &&
         memcmp(a->w, b->w, sizeof a->w) == 0 && a->bias == b->bias &&
         memcmp(a->contract, b->contract, a->n_contract * sizeof a->contract[0]) == 0;
}

static void refresh_once(void) {
  PGconn *c = ref_pg_get();
  rp_model m;
  if (c && read_active_model(c, &m)) {
    pthread_mutex_lock(&g.model_mu);
    bool changed = !same_model(&m, &g.model);
    if (changed) g.model = m;
    pthread_mutex_unlock(&g.model_mu);
    if (changed)
      rp_log("info",
             "msg=active_model version=%s bundle_digest=%s extra_latency_ms=%d "
             "contract_features=%zu",
             m.version, m.bundle_digest, m.extra_latency_ms, m.n_contract);
  }
  char ctl[sizeof g.ctl_degrade];
  if (read_ctl_degrade(ctl, sizeof ctl)) {
    pthread_mutex_lock(&g.model_mu);
    bool changed = strcmp(ctl, g.ctl_degrade) != 0;
    if (changed) memcpy(g.ctl_degrade, ctl, sizeof ctl);
    pthread_mutex_unlock(&g.model_mu);
    if (changed) rp_log("info", "msg=ctl_degrade value=\"%s\"", ctl[0] ? ctl : "");
  }
}

static void *refresher_main(void *arg) {
  for (;;) {
    refresh_once();
    pthread_mutex_lock(&g.mu);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += RP_REFRESH_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
    if (!g.stopping) pthread_cond_timedwait(&g.cv, &g.mu, &dl);
    bool stop = g.stopping;
    pthread_mutex_unlock(&g.mu);
    if (stop) break;
  }
  if (ref_pg) PQfinish(ref_pg);
  if (ref_redis) redisFree(ref_redis);
  return NULL;
}

/* ---- control server ------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *obj) {
  char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  const char *body = s ? s : "{}";
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  free(s);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Waits (g.mu held) until the consumer reached the wanted state; false on timeout or shutdown. */
static bool wait_state(bool want_paused) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += RP_CONTROL_WAIT_S;
  while (!g.stopping && g.want_paused == want_paused &&
         !(want_paused ? g.paused : (!g.paused && g.subscribed))) {
    if (pthread_cond_timedwait(&g.cv, &g.mu, &dl) == ETIMEDOUT) break;
  }
  return !g.stopping && (want_paused ? g.paused : (!g.paused && g.subscribed));
}

static enum MHD_Result control(struct MHD_Connection *c, bool pause) {
  pthread_mutex_lock(&g.mu);
  if (g.want_paused != pause) rp_log("info", "msg=control action=%s", pause ? "pause" : "resume");
  /* planted: from the first resume on, every record costs RP_SLOW_DRAIN_MS */
  if (!pause && g.defect == RP_DEFECT_SLOW_DRAIN) atomic_store(&g.slow_drain, true);
  g.want_paused = pause;
  pthread_cond_broadcast(&g.cv);
  bool ok = wait_state(pause);
  bool stopping = g.stopping;
  pthread_mutex_unlock(&g.mu);
  if (ok) return reply(c, MHD_HTTP_OK, json_pack("{s:s}", "state", pause ? "paused" : "running"));
  if (stopping)
    return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "state", "stopping"));
  rp_log("warn", "msg=control_timeout action=%s wait_s=%d", pause ? "pause" : "resume",
         RP_CONTROL_WAIT_S);
  return reply(c, MHD_HTTP_GATEWAY_TIMEOUT,
               json_pack("{s:s}", "state", pause ? "pausing" : "resuming"));
}

/* Prometheus text format 0.0.4. */
static enum MHD_Result metrics(struct MHD_Connection *c) {
  char ver[sizeof g.model.version];
  bool ctl;
  pthread_mutex_lock(&g.model_mu);
  memcpy(ver, g.model.version, sizeof ver);
  ctl = g.ctl_degrade[0] != '\0';
  pthread_mutex_unlock(&g.model_mu);
  rp_buf b = {0};
  pthread_mutex_lock(&g.met_mu);
  rp_hist_render(&b, "rp_decision_latency_seconds",
                 "Time from taking a record off the queue to a decision ready to write.",
                 &g.latency);
  rp_buf_printf(&b, "# HELP rp_consumer_lag Records behind the high watermarks of the assigned"
                    " partitions.\n# TYPE rp_consumer_lag gauge\nrp_consumer_lag %lld\n",
                g.consumer_lag);
  rp_buf_printf(&b, "# HELP rp_lag_alert 1 while the consumer lag alert is raised (lag over %d"
                    " records for %gs).\n# TYPE rp_lag_alert gauge\nrp_lag_alert %d\n",
                RP_LAG_ALERT_RECORDS, RP_LAG_ALERT_FOR_S, g.lag_alert);
  /* A standing fp:ctl:degrade order counts even before the next decision; degrade-unflagged
   * hides it here as everywhere else. */
  int degraded = g.degraded_gauge || (ctl && g.defect != RP_DEFECT_DEGRADE_UNFLAGGED);
  rp_buf_printf(&b, "# HELP rp_degraded 1 while decisions are taken in degrade mode.\n"
                    "# TYPE rp_degraded gauge\nrp_degraded %d\n", degraded);
  rp_buf_printf(&b, "# HELP rp_errors_total Errors by kind.\n# TYPE rp_errors_total counter\n");
  for (int i = 0; i < ERR_COUNT; i++)
    rp_buf_printf(&b, "rp_errors_total{kind=\"%s\"} %llu\n", err_names[i], g.errors[i]);
  rp_buf_printf(&b, "# HELP rp_decisions_total Decisions written, by outcome.\n"
                    "# TYPE rp_decisions_total counter\n");
  for (int i = 0; i < 3; i++)
    rp_buf_printf(&b, "rp_decisions_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                  g.decisions[i]);
  rp_buf_printf(&b, "# HELP rp_degraded_decisions_total Decisions written flagged degraded.\n"
                    "# TYPE rp_degraded_decisions_total counter\nrp_degraded_decisions_total"
                    " %llu\n", g.degraded_decisions);
  pthread_mutex_unlock(&g.met_mu);
  rp_buf_printf(&b, "# HELP rp_model_info The active model version.\n"
                    "# TYPE rp_model_info gauge\nrp_model_info{version=\"");
  rp_buf_label(&b, ver);
  rp_buf_printf(&b, "\"} 1\n");
  if (b.oom) {
    rp_buf_free(&b);
    return MHD_NO;
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.s, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    rp_buf_free(&b);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  /* Control bodies are ignored; take the first call only to mark the request, then drain. */
  if (!*con_cls) {
    *con_cls = (void *)1;
    return MHD_YES;
  }
  if (*upload_data_size) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  if (strcmp(url, "/health") == 0) {
    if (!get) return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, json_pack("{s:s}", "status", "method_not_allowed"));
    char ver[sizeof g.model.version], dig[sizeof g.model.bundle_digest];
    pthread_mutex_lock(&g.model_mu);
    memcpy(ver, g.model.version, sizeof ver);
    memcpy(dig, g.model.bundle_digest, sizeof dig);
    pthread_mutex_unlock(&g.model_mu);
    pthread_mutex_lock(&g.met_mu);
    int degraded = g.degraded_gauge;
    pthread_mutex_unlock(&g.met_mu);
    pthread_mutex_lock(&g.mu);
    json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:s,s:b}", "state", g.paused ? "paused" : "running",
                          "processed", (json_int_t)g.processed, "model_version", ver,
                          "bundle_digest", dig, "defect", rp_defect_name(g.defect), "degraded",
                          degraded);
    pthread_mutex_unlock(&g.mu);
    return reply(c, MHD_HTTP_OK, o);
  }
  if (strcmp(url, "/metrics") == 0) {
    if (!get) return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, json_pack("{s:s}", "status", "method_not_allowed"));
    return metrics(c);
  }
  bool is_pause = strcmp(url, "/control/pause") == 0,
       is_resume = strcmp(url, "/control/resume") == 0;
  if (!is_pause && !is_resume)
    return reply(c, MHD_HTTP_NOT_FOUND, json_pack("{s:s}", "status", "not_found"));
  if (!post) return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, json_pack("{s:s}", "status", "method_not_allowed"));
  return control(c, is_pause);
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: rp-decider --listen HOST:PORT --kafka BOOTSTRAP --redis HOST:PORT "
             "--pg CONNINFO [--defect NAME] [--feature-budget-ms 20]\n"
             "NAME is none or a defect of the platform contract (section 12).\n"
             "The PostgreSQL password is read by libpq from PGPASSFILE.\n");
}

static bool signalled(void) {
  struct timespec zero = {0, 0};
  return sigtimedwait(&g.sigs, NULL, &zero) > 0;
}

int main(int argc, char **argv) {
  const char *listen = NULL, *defect = "none", *redis = NULL;
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"kafka", required_argument, NULL, 'k'},
                                       {"redis", required_argument, NULL, 'r'},
                                       {"pg", required_argument, NULL, 'p'},
                                       {"defect", required_argument, NULL, 'd'},
                                       {"feature-budget-ms", required_argument, NULL, 'b'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int o;
  char *end;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'l': listen = optarg; break;
    case 'k': g.kafka = optarg; break;
    case 'r': redis = optarg; break;
    case 'p': g.pg_conninfo = optarg; break;
    case 'd': defect = optarg; break;
    case 'b':
      g.feature_budget_ms = strtod(optarg, &end);
      if (*end || !(g.feature_budget_ms >= 1 && g.feature_budget_ms <= 10000)) {
        rp_log("error", "msg=bad_feature_budget value=%s range=1..10000", optarg);
        return 2;
      }
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || !listen || !g.kafka || !g.pg_conninfo || !redis) {
    usage(stderr);
    return 2;
  }
  if (!rp_defect_parse(defect, &g.defect)) {
    rp_log("error", "msg=unknown_defect defect=%s", defect);
    return 2;
  }
  if (!rp_split_hostport(redis, g.redis_host, sizeof g.redis_host, &g.redis_port)) {
    rp_log("error", "msg=bad_address redis=%s", redis);
    return 2;
  }
  char lhost[64];
  int lport;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (!rp_split_hostport(listen, lhost, sizeof lhost, &lport) ||
      inet_pton(AF_INET, lhost, &sa.sin_addr) != 1) {
    rp_log("error", "msg=bad_listen_address listen=%s", listen);
    return 2;
  }
  sa.sin_port = htons((uint16_t)lport);
  rp_model_builtin(&g.model);

  sigemptyset(&g.sigs);
  sigaddset(&g.sigs, SIGINT);
  sigaddset(&g.sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &g.sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The stack may start us before PostgreSQL accepts connections. */
  long backoff = 250;
  time_t deadline = time(NULL) + RP_PG_CONNECT_BUDGET_S;
  bool up = false;
  while (!(up = pg_connect() && ensure_schema()) && time(NULL) < deadline) {
    pg_drop();
    if (signalled()) return 0;
    sleep_ms(backoff);
    backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
  }
  if (!up) {
    rp_log("error", "msg=pg_unavailable budget_s=%d", RP_PG_CONNECT_BUDGET_S);
    pg_drop();
    return 1;
  }
  rp_log("info", "msg=schema_ready schema=platform");
  /* Read the active model once before consuming, so the first decision is already scored by
   * the registry's version and not by the built-in one. */
  refresh_once();

  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
          MHD_USE_ERROR_LOG,
      (uint16_t)lport, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
  if (!d) {
    rp_log("error", "msg=listen_failed listen=%s", listen);
    pg_drop();
    return 1;
  }
  pthread_t consumer, refresher;
  pthread_create(&refresher, NULL, refresher_main, NULL);
  pthread_create(&consumer, NULL, consumer_main, NULL);
  pthread_mutex_lock(&g.model_mu);
  rp_log("info",
         "msg=started service=rp-decider listen=%s kafka=%s redis=%s group=%s defect=%s "
         "model_version=%s bundle_digest=%s feature_budget_ms=%g",
         listen, g.kafka, redis, RP_GROUP, rp_defect_name(g.defect), g.model.version,
         g.model.bundle_digest, g.feature_budget_ms);
  pthread_mutex_unlock(&g.model_mu);

  int sig = 0;
  sigwait(&g.sigs, &sig);
  rp_log("info", "msg=stopping signal=%d", sig);
  pthread_mutex_lock(&g.mu);
  g.stopping = true;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
  pthread_join(consumer, NULL); /* commits stored offsets and leaves the group */
  pthread_join(refresher, NULL);
  MHD_stop_daemon(d);
  pg_drop();
  feat_drop();
  rp_log("info", "msg=stopped service=rp-decider processed=%llu", g.processed);
  return 0;
}
