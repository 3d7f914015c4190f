/* rp-ingress: the reference platform's admission service (contract sections 1 and 7). It rate
 * limits (token bucket, lowered at run time through Redis fp:ctl:ingress_rate_limit),
 * validates an event, quarantines what is invalid or oversize in PostgreSQL before answering,
 * claims the dedupe tuple in Redis, publishes to the traffic topic and only then hands out a
 * receipt carrying the record's Kafka coordinates, so every 202 names exactly one origin
 * offset; the receipt is also appended to platform.admission_receipts. A payload-hash conflict
 * is answered 409 and recorded in platform.anomalies. It fails closed: no idempotency record, no
 * publication; no durable quarantine row, no 400. The dedupe-off and quarantine-drop defects
 * each remove exactly one of these safeguards. */
#include "rp_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* 72 h for receipts, from the contract. A claim that is still "pending" expires much sooner:
 * if the ingress dies between claiming a tuple and writing its receipt, a client retry must be
 * able to take the tuple over instead of getting in_flight for three days. The produce wait is
 * bounded well below it, so a live request never loses its claim. */
#define RP_RECEIPT_TTL_S 259200
#define RP_PENDING_TTL_S 60
#define RP_DR_WAIT_S 10
/* Below RP_DR_WAIT_S so librdkafka always reports the fate of a message before we give up. */
#define RP_MSG_TIMEOUT_MS "8000"
#define RP_SCHEMA_LOCK_KEY 74551201 /* the decider's key too: all platform DDL is serialised */
#define RP_PG_CONNECT_BUDGET_S 30
/* A handful of connections is plenty: only quarantine and anomaly rows are written on request
 * threads, and they are the rare path. Receipts go through the writer's own connection. */
#define RP_PG_POOL 8
#define RP_PG_WAIT_S 5
#define RP_RECEIPT_QUEUE_MAX 200000
#define RP_RECEIPT_BATCH 256
#define RP_RATE_REFRESH_MS 500 /* fp:ctl:ingress_rate_limit: "at least once a second" */

/* HTTP statuses counted by rp_ingress_requests_total; anything else counts as "other". */
static const unsigned statuses[] = {200, 202, 400, 404, 405, 409, 413, 429, 503};
#define N_STATUS (sizeof statuses / sizeof statuses[0])

typedef struct receipt_item {
  struct receipt_item *next;
  char *v[9]; /* receipt_id, run, class, event, hash, topic, partition, offset, admitted_at */
} receipt_item;

static struct {
  rd_kafka_t *rk;
  char redis_host[256];
  int redis_port;
  const char *pg_conninfo;
  rp_defect defect;
  atomic_bool stop;
  pthread_key_t redis_key;
  sigset_t sigs;

  /* token bucket; guarded by rate_mu */
  pthread_mutex_t rate_mu;
  rp_bucket bucket;
  double flag_rate, flag_burst, eff_rate;
  long long override; /* -1: fp:ctl:ingress_rate_limit absent */

  /* PostgreSQL pool for request threads; guarded by pool_mu */
  pthread_mutex_t pool_mu;
  pthread_cond_t pool_cv;
  PGconn *pool_free[RP_PG_POOL];
  int pool_nfree, pool_total;

  /* receipts waiting for the writer; guarded by rq_mu */
  pthread_mutex_t rq_mu;
  pthread_cond_t rq_cv;
  receipt_item *rq_head, *rq_tail;
  size_t rq_len;
  bool rq_stop;

  /* metrics; guarded by met_mu */
  pthread_mutex_t met_mu;
  unsigned long long requests[N_STATUS + 1], quarantined[RP_REASON_COUNT];
  unsigned long long receipts_dropped;
} g = {.rate_mu = PTHREAD_MUTEX_INITIALIZER,
       .pool_mu = PTHREAD_MUTEX_INITIALIZER,
       .pool_cv = PTHREAD_COND_INITIALIZER,
       .rq_mu = PTHREAD_MUTEX_INITIALIZER,
       .rq_cv = PTHREAD_COND_INITIALIZER,
       .met_mu = PTHREAD_MUTEX_INITIALIZER,
       .flag_rate = 200,
       .flag_burst = 400,
       .override = -1};

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- delivery reports ----------------------------------------------------------------- */

/* Shared between the request thread and the delivery callback; the last one out frees it, so a
 * request that gave up waiting never leaves the callback writing into freed memory. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  bool done;
  rd_kafka_resp_err_t err;
  rd_kafka_msg_status_t status;
  int32_t partition;
  int64_t offset;
} rp_dr_wait;

static void dr_release(rp_dr_wait *w) {
  pthread_mutex_lock(&w->mu);
  int left = --w->refs;
  pthread_mutex_unlock(&w->mu);
  if (left == 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
  }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  rp_dr_wait *w = m->_private;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->err = m->err;
  w->status = rd_kafka_message_status(m);
  w->partition = m->partition;
  w->offset = m->offset;
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  dr_release(w);
}

static void *poll_thread(void *arg) {
  while (!atomic_load(&g.stop)) rd_kafka_poll(g.rk, 100);
  return NULL;
}

/* ---- redis: one context per MHD connection thread ------------------------------------- */

static void redis_free_cb(void *p) { redisFree(p); }

static redisContext *redis_get(void) {
  redisContext *c = pthread_getspecific(g.redis_key);
  if (c && c->err) { /* a context is dead after any I/O error (hiredis 0.14) */
    redisFree(c);
    c = NULL;
    pthread_setspecific(g.redis_key, NULL);
  }
  if (c) return c;
  struct timeval ct = {1, 0}, rt = {2, 0};
  c = redisConnectWithTimeout(g.redis_host, g.redis_port, ct);
  if (!c || c->err) {
    rp_log("warn", "msg=redis_connect_failed err=\"%s\"", c ? c->errstr : "alloc");
    if (c) redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, rt);
  pthread_setspecific(g.redis_key, c);
  return c;
}

static void redis_drop(void) {
  redisContext *c = pthread_getspecific(g.redis_key);
  if (c) redisFree(c);
  pthread_setspecific(g.redis_key, NULL);
}

/* ---- PostgreSQL ----------------------------------------------------------------------- */

static void on_pg_notice(void *arg, const char *message) {
  size_t n = strlen(message);
  rp_log("warn", "msg=pg_notice detail=\"%.*s\"", (int)(n && message[n - 1] == '\n' ? n - 1 : n),
         message);
}

/* expand_dbname: --pg is a full conninfo; the keywords after it bound a dead server to seconds.
 * The password comes from PGPASSFILE, never from the command line. */
static PGconn *pg_open(const char *app) {
  const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
  const char *vals[] = {g.pg_conninfo, app, "3", "-c statement_timeout=5000", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(c) != CONNECTION_OK) {
    char *m = PQerrorMessage(c);
    rp_log("warn", "msg=pg_connect_failed app=%s err=\"%.*s\"", app, (int)strcspn(m, "\n"), m);
    PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, on_pg_notice, NULL);
  PGresult *r = PQexec(c, "SET client_min_messages = warning");
  PQclear(r);
  return c;
}

static bool pg_ok(PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Runs one statement; logs and returns false on failure. */
static bool pg_run(PGconn *c, const char *what, const char *sql, int n, const char *const *p) {
  PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
  bool ok = pg_ok(r);
  if (!ok) {
    const char *m = PQresultErrorMessage(r);
    rp_log("error", "msg=pg_error step=%s err=\"%.*s\"", what, (int)strcspn(m, "\n"), m);
  }
  PQclear(r);
  return ok;
}

/* A connection for a request thread, waiting at most RP_PG_WAIT_S for one to be free. */
static PGconn *pool_get(void) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += RP_PG_WAIT_S;
  pthread_mutex_lock(&g.pool_mu);
  while (g.pool_nfree == 0 && g.pool_total >= RP_PG_POOL) {
    if (pthread_cond_timedwait(&g.pool_cv, &g.pool_mu, &dl) == ETIMEDOUT) {
      pthread_mutex_unlock(&g.pool_mu);
      return NULL;
    }
  }
  if (g.pool_nfree > 0) {
    PGconn *c = g.pool_free[--g.pool_nfree];
    pthread_mutex_unlock(&g.pool_mu);
    if (PQstatus(c) == CONNECTION_OK) return c;
    PQreset(c); /* a server restart leaves pooled connections dead */
    if (PQstatus(c) == CONNECTION_OK) return c;
    PQfinish(c);
    pthread_mutex_lock(&g.pool_mu);
    g.pool_total--;
    pthread_cond_signal(&g.pool_cv);
    pthread_mutex_unlock(&g.pool_mu);
    return NULL;
  }
  g.pool_total++; /* reserve the slot, connect outside the lock */
  pthread_mutex_unlock(&g.pool_mu);
  PGconn *c = pg_open("rp-ingress");
  if (!c) {
    pthread_mutex_lock(&g.pool_mu);
    g.pool_total--;
    pthread_cond_signal(&g.pool_cv);
    pthread_mutex_unlock(&g.pool_mu);
  }
  return c;
}

static void pool_put(PGconn *c) {
  pthread_mutex_lock(&g.pool_mu);
  if (PQstatus(c) == CONNECTION_OK && g.pool_nfree < RP_PG_POOL) {
    g.pool_free[g.pool_nfree++] = c;
  } else {
    PQfinish(c);
    g.pool_total--;
  }
  pthread_cond_signal(&g.pool_cv);
  pthread_mutex_unlock(&g.pool_mu);
}

static void pool_close(void) {
  pthread_mutex_lock(&g.pool_mu);
  while (g.pool_nfree > 0) PQfinish(g.pool_free[--g.pool_nfree]);
  pthread_mutex_unlock(&g.pool_mu);
}

/* The ingress's three tables. None has a constraint on the dedupe tuple: quarantine may see the
 * same invalid event twice (a client retry), and that is a fact worth keeping. All three are
 * append-only, enforced by the same trigger function the decider installs. */
static const char *const schema_sql[] = {
    "CREATE SCHEMA IF NOT EXISTS platform",
    "CREATE TABLE IF NOT EXISTS platform.quarantine ("
    " quarantine_id bigserial PRIMARY KEY,"
    " platform_run_id text, event_class text, event_id text,"
    " reason text NOT NULL, detail text, payload_hash text,"
    " received_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX IF NOT EXISTS quarantine_run_idx ON platform.quarantine (platform_run_id)",
    "CREATE TABLE IF NOT EXISTS platform.anomalies ("
    " anomaly_id bigserial PRIMARY KEY,"
    " platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
    " kind text NOT NULL, original_hash text, conflicting_hash text,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX IF NOT EXISTS anomalies_run_idx ON platform.anomalies (platform_run_id)",
    "CREATE TABLE IF NOT EXISTS platform.admission_receipts ("
    " receipt_id text PRIMARY KEY,"
    " platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
    " payload_hash text NOT NULL, topic text NOT NULL, partition integer NOT NULL,"
    " \"offset\" bigint NOT NULL, admitted_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS admission_receipts_run_idx"
    " ON platform.admission_receipts (platform_run_id)",
    "CREATE OR REPLACE FUNCTION platform.rp_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END$$",
    "CREATE OR REPLACE TRIGGER quarantine_append_only BEFORE UPDATE OR DELETE"
    " ON platform.quarantine FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    "CREATE OR REPLACE TRIGGER anomalies_append_only BEFORE UPDATE OR DELETE"
    " ON platform.anomalies FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    "CREATE OR REPLACE TRIGGER admission_receipts_append_only BEFORE UPDATE OR DELETE"
    " ON platform.admission_receipts FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
};

static bool ensure_schema(void) {
  PGconn *c = pg_open("rp-ingress-schema");
  if (!c) return false;
  char lock[96];
  snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", RP_SCHEMA_LOCK_KEY);
  bool ok = pg_run(c, "schema_lock", lock, 0, NULL);
  for (size_t i = 0; ok && i < sizeof schema_sql / sizeof schema_sql[0]; i++)
    ok = pg_run(c, "schema", schema_sql[i], 0, NULL);
  PQfinish(c); /* ends the session and with it the advisory lock */
  return ok;
}

/* Writes the quarantine row and only then lets the caller answer: the drill compares the set
 * of quarantined events with the set it sent invalid, so a 400 must mean a durable row. */
static bool quarantine(rp_reason why, const char *detail, const rp_tuple *t) {
  if (g.defect == RP_DEFECT_QUARANTINE_DROP) return true; /* planted: the row is never written */
  PGconn *c = pool_get();
  if (!c) return false;
  const char *p[] = {t->platform_run_id, t->event_class, t->event_id, rp_reason_name(why), detail,
                     t->payload_hash[0] ? t->payload_hash : NULL};
  bool ok = pg_run(c, "quarantine",
                   "INSERT INTO platform.quarantine (platform_run_id, event_class, event_id,"
                   " reason, detail, payload_hash, received_at) VALUES ($1, $2, $3, $4, $5, $6,"
                   " clock_timestamp())",
                   6, p);
  pool_put(c);
  if (ok) {
    pthread_mutex_lock(&g.met_mu);
    g.quarantined[why]++;
    pthread_mutex_unlock(&g.met_mu);
  }
  return ok;
}

/* The 409 does not depend on this row (Redis decided the conflict), so a failed write is
 * logged and the answer still goes out. */
static void record_anomaly(const rp_event *ev, const char *original_hash) {
  PGconn *c = pool_get();
  const char *p[] = {ev->platform_run_id, ev->event_class, ev->event_id, "payload_hash_mismatch",
                     original_hash, ev->payload_hash};
  if (!c || !pg_run(c, "anomaly",
                    "INSERT INTO platform.anomalies (platform_run_id, event_class, event_id, kind,"
                    " original_hash, conflicting_hash, at) VALUES ($1, $2, $3, $4, $5, $6,"
                    " clock_timestamp())",
                    6, p))
    rp_log("error", "msg=anomaly_write_failed event_id=%s", ev->event_id);
  if (c) pool_put(c);
}

/* ---- admission receipts: a writer thread off the hot path ------------------------------ */

/* The receipt's source of truth for the client is the reply and Redis; the table is the
 * platform's append-only record of it. Writing it on the request thread would put a database
 * round trip into every admission, so requests queue it and one writer batches the rows in a
 * transaction, retrying (with ON CONFLICT DO NOTHING) until PostgreSQL takes them. */
static void receipt_free(receipt_item *it) {
  for (int i = 0; i < 9; i++) free(it->v[i]);
  free(it);
}

static void receipt_enqueue(const json_t *rc) {
  receipt_item *it = calloc(1, sizeof *it);
  if (!it) return;
  static const char *const keys[] = {"receipt_id", "platform_run_id", "event_class", "event_id",
                                     "payload_hash", "topic"};
  for (int i = 0; i < 6; i++) it->v[i] = strdup(json_string_value(json_object_get(rc, keys[i])));
  if (asprintf(&it->v[6], "%lld", (long long)json_integer_value(json_object_get(rc, "partition"))) < 0)
    it->v[6] = NULL;
  if (asprintf(&it->v[7], "%lld", (long long)json_integer_value(json_object_get(rc, "offset"))) < 0)
    it->v[7] = NULL;
  it->v[8] = strdup(json_string_value(json_object_get(rc, "admitted_at")));
  for (int i = 0; i < 9; i++)
    if (!it->v[i]) {
      receipt_free(it);
      return;
    }
  pthread_mutex_lock(&g.rq_mu);
  if (g.rq_len >= RP_RECEIPT_QUEUE_MAX) { /* a long outage: bound memory, count the loss */
    pthread_mutex_unlock(&g.rq_mu);
    receipt_free(it);
    pthread_mutex_lock(&g.met_mu);
    if (g.receipts_dropped++ % 1000 == 0)
      rp_log("error", "msg=receipt_queue_full max=%d", RP_RECEIPT_QUEUE_MAX);
    pthread_mutex_unlock(&g.met_mu);
    return;
  }
  if (g.rq_tail) g.rq_tail->next = it;
  else g.rq_head = it;
  g.rq_tail = it;
  g.rq_len++;
  pthread_cond_signal(&g.rq_cv);
  pthread_mutex_unlock(&g.rq_mu);
}

static bool receipts_write(PGconn *c, receipt_item *batch) {
  if (!pg_run(c, "receipts_begin", "BEGIN", 0, NULL)) return false;
  for (receipt_item *it = batch; it; it = it->next) {
    if (!pg_run(c, "receipt",
                "INSERT INTO platform.admission_receipts (receipt_id, platform_run_id,"
                " event_class, event_id, payload_hash, topic, partition, \"offset\", admitted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7::integer, $8::bigint, $9::timestamptz)"
                " ON CONFLICT (receipt_id) DO NOTHING",
                9, (const char *const *)it->v)) {
      PGresult *r = PQexec(c, "ROLLBACK");
      PQclear(r);
      return false;
    }
  }
  return pg_run(c, "receipts_commit", "COMMIT", 0, NULL);
}

static void *receipt_writer(void *arg) {
  PGconn *c = NULL;
  long backoff = 200;
  for (;;) {
    pthread_mutex_lock(&g.rq_mu);
    while (!g.rq_head && !g.rq_stop) pthread_cond_wait(&g.rq_cv, &g.rq_mu);
    if (!g.rq_head) { /* stopping and drained */
      pthread_mutex_unlock(&g.rq_mu);
      break;
    }
    bool stopping = g.rq_stop;
    receipt_item *batch = g.rq_head, *last = batch;
    size_t n = 1;
    while (last->next && n < RP_RECEIPT_BATCH) {
      last = last->next;
      n++;
    }
    g.rq_head = last->next;
    if (!g.rq_head) g.rq_tail = NULL;
    g.rq_len -= n;
    last->next = NULL;
    pthread_mutex_unlock(&g.rq_mu);

    if (!c || PQstatus(c) != CONNECTION_OK) {
      if (c) PQfinish(c);
      c = pg_open("rp-ingress-receipts");
    }
    if (c && receipts_write(c, batch)) {
      backoff = 200;
      while (batch) {
        receipt_item *nx = batch->next;
        receipt_free(batch);
        batch = nx;
      }
      continue;
    }
    /* put the batch back at the head, in order, and retry after a pause */
    pthread_mutex_lock(&g.rq_mu);
    last->next = g.rq_head;
    g.rq_head = batch;
    if (!g.rq_tail) g.rq_tail = last;
    g.rq_len += n;
    size_t pending = g.rq_len;
    pthread_mutex_unlock(&g.rq_mu);
    if (stopping) {
      rp_log("error", "msg=receipts_unwritten count=%zu why=stopping_while_pg_unavailable",
             pending);
      break;
    }
    rp_log("warn", "msg=receipt_write_retry pending=%zu backoff_ms=%ld", pending, backoff);
    sleep_ms(backoff);
    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
  }
  if (c) PQfinish(c);
  pthread_mutex_lock(&g.rq_mu);
  while (g.rq_head) {
    receipt_item *nx = g.rq_head->next;
    receipt_free(g.rq_head);
    g.rq_head = nx;
  }
  g.rq_tail = NULL;
  pthread_mutex_unlock(&g.rq_mu);
  return NULL;
}

/* ---- rate limit ----------------------------------------------------------------------- */

/* The override lowers (or raises) the rate; the burst shrinks with it to at most one second
 * of the new rate, so a throttle takes effect within a second instead of after a full bucket
 * of the old burst. 0 admits nothing. */
static void rate_apply(long long override) {
  double now = rp_mono_s();
  pthread_mutex_lock(&g.rate_mu);
  if (override != g.override) {
    double rate = override < 0 ? g.flag_rate : (double)override;
    double cap = override < 0 ? g.flag_burst : override == 0 ? 0 :
                 (double)override < g.flag_burst ? (double)override : g.flag_burst;
    rp_bucket_set(&g.bucket, rate, cap, now);
    g.eff_rate = rate;
    rp_log("info", "msg=rate_limit rate=%g burst=%g source=%s", rate, cap,
           override < 0 ? "flag" : "fp:ctl:ingress_rate_limit");
    g.override = override;
  }
  pthread_mutex_unlock(&g.rate_mu);
}

static bool rate_take(void) {
  pthread_mutex_lock(&g.rate_mu);
  bool ok = rp_bucket_take(&g.bucket, rp_mono_s());
  pthread_mutex_unlock(&g.rate_mu);
  return ok;
}

/* Re-reads fp:ctl:ingress_rate_limit; a Redis outage keeps the limit in force. */
static void *rate_refresher(void *arg) {
  redisContext *c = NULL;
  while (!atomic_load(&g.stop)) {
    if (c && c->err) {
      redisFree(c);
      c = NULL;
    }
    if (!c) {
      struct timeval tv = {1, 0};
      c = redisConnectWithTimeout(g.redis_host, g.redis_port, tv);
      if (c && !c->err) redisSetTimeout(c, tv);
    }
    redisReply *r = c && !c->err ? redisCommand(c, "GET fp:ctl:ingress_rate_limit") : NULL;
    if (r && r->type == REDIS_REPLY_NIL) {
      rate_apply(-1);
    } else if (r && r->type == REDIS_REPLY_STRING) {
      char *end;
      long long v = strtoll(r->str, &end, 10);
      if (end != r->str && *end == '\0' && v >= 0) rate_apply(v);
      else rp_log("warn", "msg=bad_rate_limit_override value=\"%.40s\"", r->str);
    }
    if (r) freeReplyObject(r);
    sleep_ms(RP_RATE_REFRESH_MS);
  }
  if (c) redisFree(c);
  return NULL;
}

/* ---- HTTP helpers --------------------------------------------------------------------- */

static void count_status(unsigned status) {
  size_t i = 0;
  while (i < N_STATUS && statuses[i] != status) i++;
  pthread_mutex_lock(&g.met_mu);
  g.requests[i]++; /* i == N_STATUS: "other" */
  pthread_mutex_unlock(&g.met_mu);
}

/* Every reply goes through here, so rp_ingress_requests_total sees every status. */
static enum MHD_Result reply_hdr(struct MHD_Connection *c, unsigned status, const char *body,
                                 const char *hname, const char *hval) {
  count_status(status);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (hname) MHD_add_response_header(r, hname, hval);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_raw(struct MHD_Connection *c, unsigned status, const char *body) {
  return reply_hdr(c, status, body, NULL, NULL);
}

/* Takes ownership of `obj`. */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *obj) {
  char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  enum MHD_Result ret = reply_raw(c, status, s ? s : "{\"status\":\"error\"}");
  free(s);
  return ret;
}

static enum MHD_Result reply_unavailable(struct MHD_Connection *c, const char *reason) {
  return reply_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                    json_pack("{s:s,s:s}", "status", "unavailable", "reason", reason));
}

/* ---- admission ------------------------------------------------------------------------ */

typedef struct {
  char *buf;
  size_t len, cap;
  bool too_large;
} rp_upload;

static void add_hdr(rd_kafka_headers_t *h, const char *name, const char *v) {
  if (v) rd_kafka_header_add(h, name, -1, v, -1);
}

/* Publishes the body and waits for its delivery report. Returns true with the coordinates only
 * when the broker acknowledged the record (acks=all, idempotent producer). */
static bool produce_and_wait(const rp_event *ev, const char *body, size_t len,
                             const char *traceparent, int32_t *part, int64_t *off) {
  rd_kafka_headers_t *h = rd_kafka_headers_new(9);
  add_hdr(h, "traceparent", traceparent);
  add_hdr(h, "platform_run_id", ev->platform_run_id);
  add_hdr(h, "scenario_run_id", ev->scenario_run_id);
  add_hdr(h, "phase_id", ev->phase_id);
  add_hdr(h, "event_id", ev->event_id);
  add_hdr(h, "runtime_lane", ev->runtime_lane);
  add_hdr(h, "event_class", ev->event_class);
  add_hdr(h, "payload_hash", ev->payload_hash);
  add_hdr(h, "schema_version", ev->schema_version);

  rp_dr_wait *w = calloc(1, sizeof *w);
  if (!w) {
    rd_kafka_headers_destroy(h);
    return false;
  }
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->refs = 2;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      g.rk, RD_KAFKA_V_TOPIC(RP_TOPIC),
      RD_KAFKA_V_KEY(ev->account_id, strlen(ev->account_id)),
      RD_KAFKA_V_VALUE((void *)body, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
  if (err) {
    rd_kafka_headers_destroy(h); /* ownership passes to librdkafka only on success */
    w->refs = 1;
    dr_release(w);
    rp_log("error", "msg=produce_failed event_id=%s err=%s", ev->event_id, rd_kafka_err2name(err));
    return false;
  }
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += RP_DR_WAIT_S;
  pthread_mutex_lock(&w->mu);
  while (!w->done) {
    if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) == ETIMEDOUT) break;
  }
  bool done = w->done, ok = w->done && w->err == RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_resp_err_t derr = w->err;
  rd_kafka_msg_status_t st = w->status;
  *part = w->partition;
  *off = w->offset;
  pthread_mutex_unlock(&w->mu);
  dr_release(w);
  if (!done)
    rp_log("error", "msg=delivery_report_timeout event_id=%s wait_s=%d", ev->event_id,
           RP_DR_WAIT_S);
  else if (!ok)
    /* POSSIBLY_PERSISTED means the record may still surface on the topic; the decider's guard
     * is what keeps a client's retry of it from being decided twice. */
    rp_log("error", "msg=delivery_failed event_id=%s err=%s persisted=%s", ev->event_id,
           rd_kafka_err2name(derr),
           st == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED ? "possibly" : "no");
  return ok;
}

static json_t *make_receipt(const rp_event *ev, int32_t part, int64_t off) {
  unsigned char rnd[16];
  char rid[33], ts[32];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
    /* getrandom on Linux >= 3.17 only fails for tiny/odd reasons; a time-based id still works */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    memcpy(rnd, &t, sizeof t < sizeof rnd ? sizeof t : sizeof rnd);
  }
  for (int i = 0; i < 16; i++) snprintf(rid + 2 * i, 3, "%02x", rnd[i]);
  rp_now_iso8601(ts);
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:s}", "status", "accepted",
                   "receipt_id", rid, "platform_run_id", ev->platform_run_id, "event_class",
                   ev->event_class, "event_id", ev->event_id, "payload_hash", ev->payload_hash,
                   "topic", RP_TOPIC, "partition", (int)part, "offset", (json_int_t)off,
                   "admitted_at", ts);
}

/* Answers a request whose tuple is already claimed, from what the claim holds. */
static enum MHD_Result answer_existing(struct MHD_Connection *c, const rp_event *ev,
                                       const char *stored) {
  if (strncmp(stored, "pending|", 8) == 0)
    return reply_json(c, MHD_HTTP_CONFLICT, json_pack("{s:s}", "status", "in_flight"));
  json_t *rc = json_loads(stored, 0, NULL);
  const char *h = rc ? json_string_value(json_object_get(rc, "payload_hash")) : NULL;
  if (!h) {
    json_decref(rc);
    rp_log("error", "msg=idempotency_record_corrupt event_id=%s", ev->event_id);
    return reply_unavailable(c, "idempotency_record_corrupt");
  }
  if (strcmp(h, ev->payload_hash) != 0) {
    rp_log("warn",
           "msg=payload_hash_mismatch platform_run_id=%s event_class=%s event_id=%s "
           "admitted_hash=%s new_hash=%s",
           ev->platform_run_id, ev->event_class, ev->event_id, h, ev->payload_hash);
    record_anomaly(ev, h);
    json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "status", "conflict", "reason",
                             "payload_hash_mismatch", "admitted_payload_hash", h,
                             "payload_hash", ev->payload_hash);
    json_decref(rc);
    return reply_json(c, MHD_HTTP_CONFLICT, body);
  }
  json_object_set_new(rc, "status", json_string("duplicate"));
  rp_log("info", "msg=duplicate event_id=%s", ev->event_id);
  return reply_json(c, MHD_HTTP_OK, rc);
}

static const char *hdr(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Quarantines an event refused before or during validation, then answers: `status` (400 or 413)
 * once the row is durable, 503 when it could not be written (the client retries; an invalid
 * event is never answered as if it had been recorded). */
static enum MHD_Result refuse(struct MHD_Connection *c, unsigned status, rp_reason why,
                              const char *detail, const char *body, size_t len) {
  rp_tuple t;
  rp_tuple_peek(body, len, hdr(c, "X-Platform-Run-Id"), hdr(c, "X-Event-Class"),
                hdr(c, "X-Event-Id"), &t);
  bool ok = quarantine(why, detail, &t);
  rp_log(ok ? "info" : "error", "msg=%s reason=%s platform_run_id=%s event_id=%s detail=\"%s\"",
         ok ? "rejected" : "quarantine_write_failed", rp_reason_name(why),
         t.platform_run_id ? t.platform_run_id : "-", t.event_id ? t.event_id : "-", detail);
  rp_tuple_free(&t);
  if (!ok) return reply_unavailable(c, "quarantine_unavailable");
  return reply_json(c, status,
                    json_pack("{s:s,s:s,s:s}", "status", "rejected", "reason",
                              rp_reason_name(why), "detail", detail));
}

static enum MHD_Result admit(struct MHD_Connection *c, const char *body, size_t len) {
  /* The bucket is checked before any work, so an overload costs no parsing and no I/O. */
  if (!rate_take())
    return reply_hdr(c, MHD_HTTP_TOO_MANY_REQUESTS,
                     "{\"status\":\"rate_limited\",\"retry_after_s\":1}", "Retry-After", "1");
  rp_event ev;
  char detail[256];
  rp_reason why = rp_event_parse(body, len, &ev, detail, sizeof detail);
  if (why != RP_OK) return refuse(c, MHD_HTTP_BAD_REQUEST, why, detail, body, len);
  const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
  enum MHD_Result ret;
  int32_t part = -1;
  int64_t off = -1;

  if (g.defect == RP_DEFECT_DEDUPE_OFF) { /* planted defect: no idempotency at all */
    if (!produce_and_wait(&ev, body, len, tp, &part, &off)) {
      ret = reply_unavailable(c, "bus_unavailable");
    } else {
      json_t *receipt = make_receipt(&ev, part, off);
      receipt_enqueue(receipt);
      ret = reply_json(c, MHD_HTTP_ACCEPTED, receipt);
    }
    rp_event_free(&ev);
    return ret;
  }

  char *key = NULL;
  if (asprintf(&key, "fp:idem:%s|%s|%s", ev.platform_run_id, ev.event_class, ev.event_id) < 0) {
    rp_event_free(&ev);
    return reply_unavailable(c, "out_of_memory");
  }
  ret = MHD_NO;
  bool answered = false;
  /* A claim can expire between a failed NX and the GET; then we simply try to claim again. */
  for (int attempt = 0; attempt < 3 && !answered; attempt++) {
    redisContext *rc = redis_get();
    if (!rc) {
      ret = reply_unavailable(c, "idempotency_store_unavailable");
      answered = true;
      break;
    }
    redisReply *r = redisCommand(rc, "SET %s pending|%s NX EX %d", key, ev.payload_hash,
                                 RP_PENDING_TTL_S);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      rp_log("error", "msg=redis_error op=set_nx err=\"%s\"",
             r ? r->str : (rc->errstr[0] ? rc->errstr : "io"));
      if (r) freeReplyObject(r);
      redis_drop();
      ret = reply_unavailable(c, "idempotency_store_unavailable");
      answered = true;
      break;
    }
    bool claimed = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (claimed) {
      if (!produce_and_wait(&ev, body, len, tp, &part, &off)) {
        redisReply *d = redisCommand(rc, "DEL %s", key);
        if (!d) redis_drop();
        else freeReplyObject(d);
        ret = reply_unavailable(c, "bus_unavailable");
        answered = true;
        break;
      }
      json_t *receipt = make_receipt(&ev, part, off);
      char *rs = json_dumps(receipt, JSON_COMPACT);
      redisReply *s = rs ? redisCommand(rc, "SET %s %s EX %d", key, rs, RP_RECEIPT_TTL_S) : NULL;
      if (!s || s->type == REDIS_REPLY_ERROR) {
        /* The record is on the bus, so it is admitted; the pending claim expires on its own and
         * a later retry may publish again, which the decider's guard absorbs. */
        rp_log("error", "msg=receipt_store_failed event_id=%s partition=%d offset=%lld",
               ev.event_id, (int)part, (long long)off);
        if (!s) redis_drop();
      }
      if (s) freeReplyObject(s);
      free(rs);
      receipt_enqueue(receipt);
      ret = reply_json(c, MHD_HTTP_ACCEPTED, receipt);
      answered = true;
      break;
    }
    r = redisCommand(rc, "GET %s", key);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      if (r) freeReplyObject(r);
      else redis_drop();
      ret = reply_unavailable(c, "idempotency_store_unavailable");
      answered = true;
      break;
    }
    if (r->type == REDIS_REPLY_STRING) {
      ret = answer_existing(c, &ev, r->str);
      answered = true;
    }
    freeReplyObject(r);
  }
  if (!answered) ret = reply_unavailable(c, "idempotency_claim_contended");
  free(key);
  rp_event_free(&ev);
  return ret;
}

static bool kafka_ok(void) {
  const struct rd_kafka_metadata *md = NULL;
  if (rd_kafka_metadata(g.rk, 0, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  bool ok = md->broker_cnt > 0;
  rd_kafka_metadata_destroy(md);
  return ok;
}

static bool redis_ok(void) {
  redisContext *rc = redis_get();
  if (!rc) return false;
  redisReply *r = redisCommand(rc, "PING");
  bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
  if (r) freeReplyObject(r);
  else redis_drop();
  return ok;
}

static bool pg_alive(void) {
  PGconn *c = pool_get();
  if (!c) return false;
  PGresult *r = PQexec(c, "SELECT 1");
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  pool_put(c);
  return ok;
}

/* Prometheus text format 0.0.4. */
static enum MHD_Result metrics(struct MHD_Connection *c) {
  rp_buf b = {0};
  pthread_mutex_lock(&g.met_mu);
  rp_buf_printf(&b, "# HELP rp_ingress_requests_total Replies by HTTP status.\n"
                    "# TYPE rp_ingress_requests_total counter\n");
  for (size_t i = 0; i <= N_STATUS; i++) {
    if (i < N_STATUS)
      rp_buf_printf(&b, "rp_ingress_requests_total{status=\"%u\"} %llu\n", statuses[i],
                    g.requests[i]);
    else
      rp_buf_printf(&b, "rp_ingress_requests_total{status=\"other\"} %llu\n", g.requests[i]);
  }
  rp_buf_printf(&b, "# HELP rp_quarantine_total Quarantine rows written, by reason.\n"
                    "# TYPE rp_quarantine_total counter\n");
  for (int i = RP_MALFORMED_JSON; i < RP_REASON_COUNT; i++)
    rp_buf_printf(&b, "rp_quarantine_total{reason=\"%s\"} %llu\n", rp_reason_name((rp_reason)i),
                  g.quarantined[i]);
  rp_buf_printf(&b, "# HELP rp_receipts_dropped_total Receipts not logged: queue full.\n"
                    "# TYPE rp_receipts_dropped_total counter\nrp_receipts_dropped_total %llu\n",
                g.receipts_dropped);
  pthread_mutex_unlock(&g.met_mu);
  pthread_mutex_lock(&g.rate_mu);
  double rate = g.eff_rate;
  pthread_mutex_unlock(&g.rate_mu);
  pthread_mutex_lock(&g.rq_mu);
  size_t pending = g.rq_len;
  pthread_mutex_unlock(&g.rq_mu);
  rp_buf_printf(&b, "# HELP rp_ingress_rate_limit Admissions per second in force.\n"
                    "# TYPE rp_ingress_rate_limit gauge\nrp_ingress_rate_limit %g\n", rate);
  rp_buf_printf(&b, "# HELP rp_receipts_pending Receipts queued for the receipt log.\n"
                    "# TYPE rp_receipts_pending gauge\nrp_receipts_pending %zu\n", pending);
  if (b.oom) {
    rp_buf_free(&b);
    return MHD_NO;
  }
  count_status(MHD_HTTP_OK);
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
  bool is_events = strcmp(url, "/v1/events") == 0, is_health = strcmp(url, "/health") == 0,
       is_metrics = strcmp(url, "/metrics") == 0;
  if (!is_events && !is_health && !is_metrics)
    return reply_raw(c, MHD_HTTP_NOT_FOUND, "{\"status\":\"not_found\"}");
  if (is_health || is_metrics) {
    if (strcmp(method, "GET") != 0)
      return reply_raw(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"status\":\"method_not_allowed\"}");
    if (is_metrics) return metrics(c);
    /* Admission needs Kafka and Redis; PostgreSQL only backs quarantine and the receipt log, so
     * it is reported but does not make the admission path unhealthy. */
    bool k = kafka_ok(), r = redis_ok(), p = pg_alive();
    return reply_json(c, k && r ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack("{s:s,s:b,s:b,s:b}", "status", k && r ? "ok" : "unavailable",
                                "kafka", k, "redis", r, "pg", p));
  }
  if (strcmp(method, "POST") != 0)
    return reply_raw(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"status\":\"method_not_allowed\"}");

  rp_upload *up = *con_cls;
  if (!up) {
    /* Refuse an announced oversize body before reading it. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > RP_MAX_BODY) {
      char d[96];
      snprintf(d, sizeof d, "body of %s bytes exceeds %u", cl, RP_MAX_BODY);
      return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, RP_OVERSIZE, d, NULL, 0);
    }
    up = calloc(1, sizeof *up);
    if (!up) return MHD_NO;
    *con_cls = up;
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (up->too_large || up->len + n > RP_MAX_BODY) { /* chunked bodies: count and discard */
      up->too_large = true;
      return MHD_YES;
    }
    if (up->len + n > up->cap) {
      size_t cap = up->cap ? up->cap : 4096;
      while (cap < up->len + n) cap *= 2;
      char *nb = realloc(up->buf, cap);
      if (!nb) return MHD_NO;
      up->buf = nb;
      up->cap = cap;
    }
    memcpy(up->buf + up->len, upload_data, n);
    up->len += n;
    return MHD_YES;
  }
  if (up->too_large) {
    char d[96];
    snprintf(d, sizeof d, "chunked body exceeds %u", RP_MAX_BODY);
    return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, RP_OVERSIZE, d, NULL, 0);
  }
  return admit(c, up->buf ? up->buf : "", up->len);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  rp_upload *up = *con_cls;
  if (up) {
    free(up->buf);
    free(up);
    *con_cls = NULL;
  }
}

/* ---- startup -------------------------------------------------------------------------- */

/* The topic is created explicitly because a broker's auto-create would give it the wrong
 * partition count, and partitions are part of the contract. */
static bool ensure_topic(void) {
  char err[256];
  for (int attempt = 0; attempt < 6; attempt++) {
    struct timespec zero = {0, 0};
    if (sigtimedwait(&g.sigs, NULL, &zero) > 0) return false; /* stopped while starting */
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(RP_TOPIC, RP_TOPIC_PARTITIONS, 1, err, sizeof err);
    if (!nt) {
      rp_log("error", "msg=new_topic_failed err=\"%s\"", err);
      return false;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(g.rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(g.rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opt, 5000, err, sizeof err);
    rd_kafka_CreateTopics(g.rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    const char *msg = "no result";
    if (ev) {
      e = rd_kafka_event_error(ev);
      msg = rd_kafka_event_error_string(ev);
      const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
      size_t n = 0;
      const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
      if (!e && n == 1) {
        e = rd_kafka_topic_result_error(tr[0]);
        msg = rd_kafka_topic_result_error_string(tr[0]);
      }
    }
    bool ok = e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
    if (ok)
      rp_log("info", "msg=topic_ready topic=%s result=%s", RP_TOPIC, rd_kafka_err2name(e));
    else
      rp_log("warn", "msg=create_topic_failed attempt=%d err=%s detail=\"%s\"", attempt + 1,
             rd_kafka_err2name(e), msg ? msg : "");
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    if (ok) {
      rd_kafka_topic_t *rkt = rd_kafka_topic_new(g.rk, RP_TOPIC, NULL);
      const struct rd_kafka_metadata *md = NULL;
      if (rkt && rd_kafka_metadata(g.rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].partition_cnt != RP_TOPIC_PARTITIONS)
          rp_log("warn", "msg=topic_partition_count topic=%s partitions=%d expected=%d", RP_TOPIC,
                 md->topics[0].partition_cnt, RP_TOPIC_PARTITIONS);
        rd_kafka_metadata_destroy(md);
      }
      if (rkt) rd_kafka_topic_destroy(rkt);
      return true;
    }
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
  }
  return false;
}

/* librdkafka logs through here so every stderr line stays in the same logfmt shape. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  rp_log(level <= 3 ? "error" : level <= 4 ? "warn" : "info", "msg=kafka_log facility=%s detail=\"%s\"",
         fac, buf);
}

static void usage(FILE *f) {
  fprintf(f, "usage: rp-ingress --listen HOST:PORT --kafka BOOTSTRAP --redis HOST:PORT "
             "--pg CONNINFO [--defect NAME] [--rate-limit 200] [--burst 400]\n"
             "NAME is none or a defect of the platform contract (section 12).\n"
             "The PostgreSQL password is read by libpq from PGPASSFILE.\n");
}

static bool conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[256];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof err) == RD_KAFKA_CONF_OK) return true;
  rp_log("error", "msg=kafka_conf_failed key=%s err=\"%s\"", k, err);
  return false;
}

int main(int argc, char **argv) {
  const char *listen = NULL, *kafka = NULL, *redis = NULL, *defect = "none";
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"kafka", required_argument, NULL, 'k'},
                                       {"redis", required_argument, NULL, 'r'},
                                       {"pg", required_argument, NULL, 'p'},
                                       {"defect", required_argument, NULL, 'd'},
                                       {"rate-limit", required_argument, NULL, 'R'},
                                       {"burst", required_argument, NULL, 'B'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int o;
  char *end;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'l': listen = optarg; break;
    case 'k': kafka = optarg; break;
    case 'r': redis = optarg; break;
    case 'p': g.pg_conninfo = optarg; break;
    case 'd': defect = optarg; break;
    case 'R':
    case 'B': {
      double v = strtod(optarg, &end);
      if (*end || !(v >= 0 && v <= 1e7)) {
        rp_log("error", "msg=bad_flag flag=%s value=%s", o == 'R' ? "rate-limit" : "burst", optarg);
        return 2;
      }
      *(o == 'R' ? &g.flag_rate : &g.flag_burst) = v;
      break;
    }
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  char lhost[64];
  int lport;
  if (optind != argc || !listen || !kafka || !redis || !g.pg_conninfo) {
    usage(stderr);
    return 2;
  }
  if (!rp_defect_parse(defect, &g.defect)) {
    rp_log("error", "msg=unknown_defect defect=%s", defect);
    return 2;
  }
  rp_bucket_init(&g.bucket, g.flag_rate, g.flag_burst, rp_mono_s());
  g.eff_rate = g.flag_rate;
  if (!rp_split_hostport(listen, lhost, sizeof lhost, &lport) ||
      !rp_split_hostport(redis, g.redis_host, sizeof g.redis_host, &g.redis_port)) {
    rp_log("error", "msg=bad_address listen=%s redis=%s", listen, redis);
    return 2;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
  if (inet_pton(AF_INET, lhost, &sa.sin_addr) != 1) {
    rp_log("error", "msg=bad_listen_address listen=%s", listen);
    return 2;
  }

  /* Signals are taken synchronously by main (sigwait); every thread inherits the mask. */
  sigemptyset(&g.sigs);
  sigaddset(&g.sigs, SIGINT);
  sigaddset(&g.sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &g.sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_key_create(&g.redis_key, redis_free_cb);

  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (!conf_set(conf, "bootstrap.servers", kafka) || !conf_set(conf, "enable.idempotence", "true") ||
      !conf_set(conf, "acks", "all") || !conf_set(conf, "linger.ms", "1") ||
      !conf_set(conf, "partitioner", "murmur2_random") ||
      !conf_set(conf, "message.timeout.ms", RP_MSG_TIMEOUT_MS) ||
      !conf_set(conf, "client.id", "rp-ingress")) {
    rd_kafka_conf_destroy(conf);
    return 1;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_log_cb(conf, on_kafka_log);
  g.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!g.rk) {
    rp_log("error", "msg=producer_create_failed err=\"%s\"", err);
    return 1;
  }
  pthread_t poller;
  pthread_create(&poller, NULL, poll_thread, NULL);

  int rc = 0;
  struct MHD_Daemon *d = NULL;
  pthread_t writer, limiter;
  bool threads = false;
  if (!ensure_topic()) {
    rp_log("error", "msg=topic_unavailable topic=%s kafka=%s", RP_TOPIC, kafka);
    rc = 1;
    goto out;
  }
  /* The stack may start us before PostgreSQL accepts connections; quarantine needs the tables
   * before the first invalid event arrives. */
  long backoff = 250;
  time_t deadline = time(NULL) + RP_PG_CONNECT_BUDGET_S;
  bool up;
  while (!(up = ensure_schema()) && time(NULL) < deadline) {
    struct timespec zero = {0, 0};
    if (sigtimedwait(&g.sigs, NULL, &zero) > 0) goto out;
    sleep_ms(backoff);
    backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
  }
  if (!up) {
    rp_log("error", "msg=pg_unavailable budget_s=%d", RP_PG_CONNECT_BUDGET_S);
    rc = 1;
    goto out;
  }
  rp_log("info", "msg=schema_ready schema=platform");
  pthread_create(&writer, NULL, receipt_writer, NULL);
  pthread_create(&limiter, NULL, rate_refresher, NULL);
  threads = true;
  d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                           MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
                       (uint16_t)lport, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                       (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                       MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED,
                       on_completed, NULL, MHD_OPTION_END);
  if (!d) {
    rp_log("error", "msg=listen_failed listen=%s", listen);
    rc = 1;
    goto out;
  }
  rp_log("info",
         "msg=started service=rp-ingress listen=%s kafka=%s redis=%s defect=%s rate_limit=%g "
         "burst=%g",
         listen, kafka, redis, rp_defect_name(g.defect), g.flag_rate, g.flag_burst);
  int sig = 0;
  sigwait(&g.sigs, &sig);
  rp_log("info", "msg=stopping signal=%d", sig);

out:
  if (d) MHD_stop_daemon(d); /* joins the connection threads: no request is mid-produce after */
  rd_kafka_resp_err_t fe = rd_kafka_flush(g.rk, 10000);
  if (fe) rp_log("warn", "msg=flush_incomplete err=%s", rd_kafka_err2name(fe));
  atomic_store(&g.stop, true);
  if (threads) {
    pthread_mutex_lock(&g.rq_mu); /* the writer drains what the last requests queued */
    g.rq_stop = true;
    pthread_cond_signal(&g.rq_cv);
    pthread_mutex_unlock(&g.rq_mu);
    pthread_join(writer, NULL);
    pthread_join(limiter, NULL);
  }
  pthread_join(poller, NULL);
  rd_kafka_destroy(g.rk);
  redis_drop();
  pool_close();
  rp_log("info", "msg=stopped service=rp-ingress rc=%d", rc);
  return rc;
}
