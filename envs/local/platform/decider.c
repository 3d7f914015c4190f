/* rp-decider: the reference platform's decision service (contract sections 2-4). It consumes
 * the traffic topic in group fp-decision, writes one decision per dedupe tuple and at most one
 * case per event, each record in one PostgreSQL transaction, and commits the Kafka offset only
 * after that transaction committed, so origin_offset is the evidence boundary a drill can trust.
 * A small control server lets a drill pause (leave the group) and resume the consumer. The
 * dedupe-off and case-dup defects remove exactly one guard each so drills can be seen to fail. */
#include "rp_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RP_CONTROL_WAIT_S 15
#define RP_PG_CONNECT_BUDGET_S 30
#define RP_STATS_EVERY_S 10
#define RP_SCHEMA_LOCK_KEY 74551201 /* pg_advisory_lock key: serialises concurrent DDL */

static struct {
  const char *pg_conninfo;
  const char *kafka;
  rp_defect defect;
  rp_model model;
  sigset_t sigs;
  PGconn *pg; /* owned by the consumer thread after startup */

  pthread_mutex_t mu; /* guards the control state below */
  pthread_cond_t cv;
  bool want_paused, paused, subscribed, stopping;
  unsigned long long processed;

  /* stats, consumer thread only */
  unsigned long long new_decisions, guard_hits, cases_opened, case_guard_hits, undecidable;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

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
  double score;
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
  r->score = rp_model_score(&g.model, r->ev.payload);
  return true;
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
    char part[16], off[24], score[40];
    snprintf(part, sizeof part, "%d", (int)r->partition);
    snprintf(off, sizeof off, "%lld", (long long)r->offset);
    snprintf(score, sizeof score, "%.17g", r->score);
    const char *p[] = {e->platform_run_id, e->event_class, e->event_id, r->payload_hash,
                       r->topic, part, off, g.model.version, g.model.bundle_digest, score,
                       rp_model_outcome(r->score), r->has_trace ? r->trace_id : NULL,
                       r->scenario_run_id, r->phase_id, r->runtime_lane};
    if (!(res = q("decision_log",
                  "INSERT INTO platform.decision_log (platform_run_id, event_class, event_id,"
                  " payload_hash, origin_topic, origin_partition, origin_offset, model_version,"
                  " bundle_digest, degraded, degrade_reason, score, outcome, decided_at,"
                  " trace_id, scenario_run_id, phase_id, runtime_lane) VALUES ($1, $2, $3, $4,"
                  " $5, $6::integer, $7::bigint, $8, $9, false, NULL, $10::double precision,"
                  " $11, clock_timestamp(), $12, $13, $14, $15) RETURNING decision_id",
                  15, p)))
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

/* Fail closed: a record is retried until its transaction commits. Only a pause or shutdown
 * interrupts the retries, and then its offset stays uncommitted, so the record is read again. */
static rec_result handle_record(rd_kafka_t *rk, rd_kafka_message_t *m) {
  rp_record r;
  bool decidable = record_load(m, &r);
  long backoff = 200;
  while (decidable) {
    rp_tx_outcome o;
    if (pg_connect() && decide_tx(&r, &o)) {
      g.new_decisions += o.new_decision;
      g.guard_hits += !o.new_decision;
      g.cases_opened += o.new_case;
      g.case_guard_hits += o.case_guard_hit;
      break;
    }
    if (g.pg && PQstatus(g.pg) != CONNECTION_OK) pg_drop();
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
  else g.undecidable++;

  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
      m->offset + 1;
  rd_kafka_resp_err_t e = rd_kafka_offsets_store(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (e) rp_log("warn", "msg=offset_store_failed err=%s", rd_kafka_err2name(e));
  e = rd_kafka_commit_message(rk, m, 1);
  if (e) rp_log("warn", "msg=offset_commit_failed err=%s", rd_kafka_err2name(e));
  pthread_mutex_lock(&g.mu);
  g.processed++;
  pthread_mutex_unlock(&g.mu);
  return REC_DONE;
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
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) continue;
    if (m->err) {
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
  set_state(true, false);
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
    pthread_mutex_lock(&g.mu);
    json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:s}", "state", g.paused ? "paused" : "running",
                          "processed", (json_int_t)g.processed, "model_version", g.model.version,
                          "bundle_digest", g.model.bundle_digest, "defect",
                          rp_defect_name(g.defect));
    pthread_mutex_unlock(&g.mu);
    return reply(c, MHD_HTTP_OK, o);
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
  fprintf(f, "usage: rp-decider --listen HOST:PORT --kafka BOOTSTRAP --pg CONNINFO "
             "[--defect none|dedupe-off|case-dup]\n"
             "The PostgreSQL password is read by libpq from PGPASSFILE.\n");
}

static bool signalled(void) {
  struct timespec zero = {0, 0};
  return sigtimedwait(&g.sigs, NULL, &zero) > 0;
}

int main(int argc, char **argv) {
  const char *listen = NULL, *defect = "none";
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"kafka", required_argument, NULL, 'k'},
                                       {"pg", required_argument, NULL, 'p'},
                                       {"defect", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'l': listen = optarg; break;
    case 'k': g.kafka = optarg; break;
    case 'p': g.pg_conninfo = optarg; break;
    case 'd': defect = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || !listen || !g.kafka || !g.pg_conninfo) {
    usage(stderr);
    return 2;
  }
  if (!rp_defect_parse(defect, &g.defect)) {
    rp_log("error", "msg=unknown_defect defect=%s known=none,dedupe-off,case-dup", defect);
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
  if (!rp_model_load(rp_model_spec, &g.model)) {
    rp_log("error", "msg=model_spec_invalid");
    return 1;
  }

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
  pthread_t consumer;
  pthread_create(&consumer, NULL, consumer_main, NULL);
  rp_log("info",
         "msg=started service=rp-decider listen=%s kafka=%s group=%s defect=%s model_version=%s "
         "bundle_digest=%s",
         listen, g.kafka, RP_GROUP, rp_defect_name(g.defect), g.model.version,
         g.model.bundle_digest);

  int sig = 0;
  sigwait(&g.sigs, &sig);
  rp_log("info", "msg=stopping signal=%d", sig);
  pthread_mutex_lock(&g.mu);
  g.stopping = true;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
  pthread_join(consumer, NULL); /* commits stored offsets and leaves the group */
  MHD_stop_daemon(d);
  pg_drop();
  rp_log("info", "msg=stopped service=rp-decider processed=%llu", g.processed);
  return 0;
}
