/* rp-control: the reference platform's control plane process (contract part 2, §6 and §9).
 * It owns what the modules share: the flags, one PostgreSQL session and one Redis context
 * (each behind its mutex), the HTTP server that dispatches over the module table, a 1 s
 * ticker that drives the modules' background work (cost guard, drift monitor), and the
 * process-wide /health and /metrics. The modules (registry.c, audit.c, cost.c, learning.c,
 * drift.c) only contribute routes, DDL, ticks and metric lines, so one process can host a
 * control plane whose parts are written and tested independently. */
#include "rp_control.h"
#include "rp_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RP_PG_CONNECT_BUDGET_S 30
#define RP_SCHEMA_LOCK_KEY 74551201 /* same key as rp-decider: all platform DDL is serialised */
#define RP_METRICS_BUF (256u * 1024u)
#define RP_REDIS_CONNECT_MS 1000
#define RP_REDIS_IO_MS 2000

/* The learning lane and the drift monitor are written concurrently with this file; weak
 * references let the binary link (and run without those modules) until their files exist,
 * and pick them up unchanged once they do. A missing module is a NULL entry, skipped. */
extern const struct rp_module rp_module_learning __attribute__((weak));
extern const struct rp_module rp_module_drift __attribute__((weak));

/* Init order matters: the learning lane creates training_runs / dataset_manifests, which the
 * registry's bootstrap lineage and the audit chain refer to. */
static const struct rp_module *const modules[] = {
    &rp_module_learning, &rp_module_drift, &rp_module_registry, &rp_module_audit,
    &rp_module_cost,
};
#define RP_NMODULES (sizeof modules / sizeof modules[0])

static struct {
  struct rp_ctl ctl;
  const char *pg_conninfo;
  sigset_t sigs;
  pthread_mutex_t tick_mu;
  pthread_cond_t tick_cv;
  bool stopping;
} g = {.tick_mu = PTHREAD_MUTEX_INITIALIZER, .tick_cv = PTHREAD_COND_INITIALIZER};

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

static void log_pg_error(const char *what, const char *m) {
  rp_log("error", "msg=pg_error step=%s err=\"%.*s\"", what, (int)strcspn(m, "\n"), m);
}

int rp_ctl_pg_ensure(struct rp_ctl *c) {
  if (c->pg && PQstatus(c->pg) == CONNECTION_OK) return 0;
  if (c->pg) PQfinish(c->pg);
  /* expand_dbname: --pg is a full conninfo; the keywords after it add defaults so a dead
   * server fails within seconds instead of hanging a request. The password comes from
   * PGPASSFILE only. */
  const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
  const char *vals[] = {g.pg_conninfo, "rp-control", "5", NULL};
  c->pg = PQconnectdbParams(keys, vals, 1);
  if (PQstatus(c->pg) != CONNECTION_OK) {
    char *m = PQerrorMessage(c->pg);
    rp_log("warn", "msg=pg_connect_failed err=\"%.*s\"", (int)strcspn(m, "\n"), m);
    /* The failed PGconn stays in c->pg (not NULL): a module that calls libpq on it without
     * checking gets an ordinary error result, never a NULL dereference. */
    return -1;
  }
  PQsetNoticeProcessor(c->pg, on_pg_notice, NULL);
  /* CREATE ... IF NOT EXISTS raises NOTICEs that are not events worth a log line. */
  PGresult *r = PQexec(c->pg, "SET client_min_messages = warning");
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) log_pg_error("session_setup", PQresultErrorMessage(r));
  PQclear(r);
  if (ok) rp_log("info", "msg=pg_connected");
  return ok ? 0 : -1;
}

PGresult *rp_ctl_query(struct rp_ctl *c, const char *what, const char *sql, int nparams,
                       const char *const *params) {
  if (rp_ctl_pg_ensure(c) != 0) return NULL;
  PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    log_pg_error(what, PQresultErrorMessage(r));
    PQclear(r);
    return NULL;
  }
  return r;
}

int rp_ctl_exec(struct rp_ctl *c, const char *sql) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(c, "exec", sql, 0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  if (!r) {
    rp_log("error", "msg=exec_failed sql=\"%.80s\"", sql);
    return -1;
  }
  PQclear(r);
  return 0;
}

int rp_ctl_posture(struct rp_ctl *c, const char *kind, const char *severity, const char *reason,
                   const char *action, const char *model_version, const char *details_json) {
  const char *p[] = {kind, severity, reason, action, model_version, details_json};
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(c, "posture_event",
                             "INSERT INTO platform.posture_events (kind, severity, reason, action,"
                             " model_version, details) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                             6, p);
  pthread_mutex_unlock(&c->pg_lock);
  rp_log(r ? "info" : "error", "msg=posture_event kind=%s severity=%s action=%s reason=\"%s\"%s",
         kind, severity, action ? action : "", reason ? reason : "", r ? "" : " written=false");
  if (!r) return -1;
  PQclear(r);
  return 0;
}

/* ---- Redis ---------------------------------------------------------------------------- */

/* redis_lock held. hiredis 0.14: a context is unusable after any I/O error, so a dead one is
 * replaced rather than retried. */
static bool redis_ready(struct rp_ctl *c) {
  if (c->redis && !c->redis->err) return true;
  if (c->redis) redisFree(c->redis);
  struct timeval ct = {0, RP_REDIS_CONNECT_MS * 1000}, io = {RP_REDIS_IO_MS / 1000, 0};
  c->redis = redisConnectWithTimeout(c->redis_host, c->redis_port, ct);
  if (!c->redis || c->redis->err) {
    rp_log("warn", "msg=redis_connect_failed err=\"%s\"", c->redis ? c->redis->errstr : "alloc");
    if (c->redis) redisFree(c->redis);
    c->redis = NULL;
    return false;
  }
  redisSetTimeout(c->redis, io);
  return true;
}

redisReply *rp_ctl_redis(struct rp_ctl *c, const char *fmt, ...) {
  pthread_mutex_lock(&c->redis_lock);
  redisReply *r = NULL;
  if (redis_ready(c)) {
    va_list ap;
    va_start(ap, fmt);
    r = redisvCommand(c->redis, fmt, ap);
    va_end(ap);
    if (!r) {
      rp_log("warn", "msg=redis_error err=\"%s\"", c->redis->errstr);
      redisFree(c->redis);
      c->redis = NULL;
    }
  }
  pthread_mutex_unlock(&c->redis_lock);
  return r;
}

/* ---- replies and metrics -------------------------------------------------------------- */

void rp_ctl_reply(struct rp_resp *rs, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  free(rs->body);
  rs->status = s ? status : 500;
  rs->body = s ? s : strdup("{\"status\":\"error\",\"reason\":\"out_of_memory\"}");
}

void rp_ctl_reply_json(struct rp_resp *rs, int status, json_t *body) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  free(rs->body);
  rs->status = s ? status : 500;
  rs->body = s ? s : strdup("{\"status\":\"error\",\"reason\":\"out_of_memory\"}");
}

int rp_ctl_defect(const struct rp_ctl *c, const char *name) {
  return c->defect && name && strcmp(c->defect, name) == 0;
}

void rp_ctl_metric(char *buf, size_t bufsz, size_t *len, const char *fmt, ...) {
  if (*len >= bufsz) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, bufsz - *len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= bufsz - *len) buf[*len] = '\0'; /* drop the torn line */
  else *len += (size_t)n;
}

void rp_ctl_metric_label(char *buf, size_t bufsz, size_t *len, const char *s) {
  for (; s && *s; s++) {
    if (*s == '\\') rp_ctl_metric(buf, bufsz, len, "\\\\");
    else if (*s == '"') rp_ctl_metric(buf, bufsz, len, "\\\"");
    else if (*s == '\n') rp_ctl_metric(buf, bufsz, len, "\\n");
    else rp_ctl_metric(buf, bufsz, len, "%c", *s);
  }
}

/* ---- schema --------------------------------------------------------------------------- */

/* The shared pieces: posture_events (identical DDL in every process, contract §10) and the
 * append-only trigger function (the same body rp-decider creates, so whichever process starts
 * first defines it identically). */
static const char *const shared_sql[] = {
    "CREATE SCHEMA IF NOT EXISTS platform",
    "CREATE TABLE IF NOT EXISTS platform.posture_events (posture_id bigserial PRIMARY KEY, kind "
    "text NOT NULL, severity text NOT NULL, reason text, action text, model_version text, details "
    "jsonb, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE OR REPLACE FUNCTION platform.rp_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END$$",
};

/* Runs every module's init under the cluster-wide DDL lock, so a concurrent rp-decider (or a
 * second rp-control) never races a CREATE, and the registry bootstrap runs exactly once. */
static bool ensure_schema(struct rp_ctl *c) {
  char lock[96];
  snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", RP_SCHEMA_LOCK_KEY);
  if (rp_ctl_exec(c, lock) != 0) return false;
  bool ok = true;
  for (size_t i = 0; ok && i < sizeof shared_sql / sizeof shared_sql[0]; i++)
    ok = rp_ctl_exec(c, shared_sql[i]) == 0;
  for (size_t i = 0; ok && i < RP_NMODULES; i++) {
    if (!modules[i] || !modules[i]->init) continue;
    if (modules[i]->init(c) != 0) {
      rp_log("error", "msg=module_init_failed module=%s", modules[i]->name);
      ok = false;
    }
  }
  snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", RP_SCHEMA_LOCK_KEY);
  rp_ctl_exec(c, lock); /* the lock dies with the session anyway */
  return ok;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

struct conn_state {
  char *body;
  size_t len, cap;
  bool too_big;
};

static bool health(struct rp_ctl *c, bool *pg_ok, bool *redis_ok) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(c, "health", "SELECT 1", 0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  *pg_ok = r != NULL;
  PQclear(r);
  redisReply *rr = rp_ctl_redis(c, "PING");
  *redis_ok = rr && rr->type == REDIS_REPLY_STATUS;
  if (rr) freeReplyObject(rr);
  return *pg_ok && *redis_ok;
}

static void metrics(struct rp_ctl *c, struct rp_resp *rs) {
  char *buf = malloc(RP_METRICS_BUF);
  if (!buf) {
    rp_ctl_reply(rs, 500, "{\"status\":\"error\",\"reason\":\"out_of_memory\"}");
    return;
  }
  size_t len = 0;
  buf[0] = '\0';
  rp_ctl_metric(buf, RP_METRICS_BUF, &len,
                "# HELP rp_control_up 1 while rp-control serves requests.\n"
                "# TYPE rp_control_up gauge\nrp_control_up 1\n"
                "# HELP rp_control_module_info The control-plane modules this binary runs.\n"
                "# TYPE rp_control_module_info gauge\n");
  for (size_t i = 0; i < RP_NMODULES; i++)
    if (modules[i])
      rp_ctl_metric(buf, RP_METRICS_BUF, &len, "rp_control_module_info{module=\"%s\"} 1\n",
                    modules[i]->name);
  for (size_t i = 0; i < RP_NMODULES; i++)
    if (modules[i] && modules[i]->metrics) modules[i]->metrics(c, buf, RP_METRICS_BUF, &len);
  free(rs->body);
  rs->status = 200;
  rs->body = buf;
}

/* Exact path, or a prefix route ("/audit/decision/") that the request path extends. */
static bool route_matches(const struct rp_route *rt, const char *path) {
  size_t n = strlen(rt->path);
  if (n && rt->path[n - 1] == '/') return strncmp(path, rt->path, n) == 0 && path[n] != '\0';
  return strcmp(path, rt->path) == 0;
}

static void dispatch(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  bool get = strcmp(rq->method, "GET") == 0;
  if (strcmp(rq->path, "/health") == 0 || strcmp(rq->path, "/metrics") == 0) {
    if (!get) {
      rp_ctl_reply(rs, 405, "{\"status\":\"method_not_allowed\"}");
      return;
    }
    if (rq->path[1] == 'm') {
      metrics(c, rs);
      return;
    }
    bool pg_ok, redis_ok;
    if (health(c, &pg_ok, &redis_ok))
      rp_ctl_reply(rs, 200, "{\"status\":\"ok\",\"defect\":\"%s\"}", c->defect);
    else
      rp_ctl_reply(rs, 503, "{\"status\":\"unavailable\",\"pg\":%s,\"redis\":%s}",
                   pg_ok ? "true" : "false", redis_ok ? "true" : "false");
    return;
  }
  bool path_known = false;
  for (size_t i = 0; i < RP_NMODULES; i++) {
    if (!modules[i]) continue;
    for (const struct rp_route *rt = modules[i]->routes; rt && rt->path; rt++) {
      if (!route_matches(rt, rq->path)) continue;
      path_known = true;
      if (strcmp(rt->method, rq->method) != 0) continue;
      rt->fn(c, rq, rs);
      if (!rs->body) rp_ctl_reply(rs, rs->status ? rs->status : 500, "{}");
      return;
    }
  }
  if (path_known) rp_ctl_reply(rs, 405, "{\"status\":\"method_not_allowed\"}");
  else rp_ctl_reply(rs, 404, "{\"status\":\"not_found\"}");
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, int status, char *body,
                                 bool prometheus) {
  /* MUST_FREE hands our malloc'd body to MHD, which frees it after sending. */
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                          prometheus ? "text/plain; version=0.0.4; charset=utf-8"
                                     : "application/json");
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  struct conn_state *st = *con_cls;
  if (!st) {
    if (!(st = calloc(1, sizeof *st))) return MHD_NO;
    *con_cls = st;
    return MHD_YES;
  }
  if (*upload_data_size) {
    /* Keep draining an oversize body so the 413 goes out on a clean connection. */
    if (!st->too_big && st->len + *upload_data_size > RP_MAX_BODY) st->too_big = true;
    if (!st->too_big) {
      if (st->len + *upload_data_size + 1 > st->cap) {
        size_t nc = (st->len + *upload_data_size + 1) * 2;
        char *nb = realloc(st->body, nc);
        if (!nb) return MHD_NO;
        st->body = nb;
        st->cap = nc;
      }
      memcpy(st->body + st->len, upload_data, *upload_data_size);
      st->len += *upload_data_size;
      st->body[st->len] = '\0';
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  struct rp_ctl *c = cls;
  struct rp_resp rs = {0};
  if (st->too_big) {
    rp_ctl_reply(&rs, 413, "{\"status\":\"rejected\",\"reason\":\"oversize\"}");
  } else {
    struct rp_req rq = {.method = method, .path = url, .body = st->body ? st->body : "",
                        .body_len = st->len};
    dispatch(c, &rq, &rs);
  }
  if (!rs.body) return MHD_NO;
  return send_resp(conn, rs.status, rs.body, strcmp(url, "/metrics") == 0 && rs.status == 200);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct conn_state *st = *con_cls;
  if (st) {
    free(st->body);
    free(st);
  }
  *con_cls = NULL;
}

/* ---- ticker --------------------------------------------------------------------------- */

/* One thread runs every module's tick once a second, in module order, so ticks never race
 * each other; a slow tick delays the next one rather than piling up. */
static void *ticker_main(void *arg) {
  struct rp_ctl *c = arg;
  for (;;) {
    pthread_mutex_lock(&g.tick_mu);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 1;
    while (!g.stopping && pthread_cond_timedwait(&g.tick_cv, &g.tick_mu, &dl) != ETIMEDOUT) {
    }
    bool stop = g.stopping;
    pthread_mutex_unlock(&g.tick_mu);
    if (stop) break;
    for (size_t i = 0; i < RP_NMODULES; i++)
      if (modules[i] && modules[i]->tick) modules[i]->tick(c);
  }
  return NULL;
}

/* ---- main ----------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: rp-control --listen HOST:PORT --kafka HOST:PORT --redis HOST:PORT "
             "--pg CONNINFO [--defect NAME]\n"
             "The PostgreSQL password is read by libpq from PGPASSFILE.\n");
}

static bool signalled(void) {
  struct timespec zero = {0, 0};
  return sigtimedwait(&g.sigs, NULL, &zero) > 0;
}

#ifdef RP_CONTROL_NO_MAIN
/* The unit-test library links this file for its helpers; main() is renamed there so the test
 * runner's own main() stays the entry point. */
int rp_control_main(int argc, char **argv);
#define main rp_control_main
#endif

int main(int argc, char **argv) {
  const char *listen = NULL, *kafka = NULL, *redis = NULL, *defect = "none";
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"kafka", required_argument, NULL, 'k'},
                                       {"redis", required_argument, NULL, 'r'},
                                       {"pg", required_argument, NULL, 'p'},
                                       {"defect", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'l': listen = optarg; break;
    case 'k': kafka = optarg; break;
    case 'r': redis = optarg; break;
    case 'p': g.pg_conninfo = optarg; break;
    case 'd': defect = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc || !listen || !redis || !g.pg_conninfo) {
    usage(stderr);
    return 2;
  }
  rp_defect d;
  if (!rp_defect_parse(defect, &d)) {
    rp_log("error", "msg=unknown_defect defect=%s", defect);
    return 2;
  }
  char lhost[64], rhost[256];
  int lport, rport;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  if (!rp_split_hostport(listen, lhost, sizeof lhost, &lport) ||
      inet_pton(AF_INET, lhost, &sa.sin_addr) != 1) {
    rp_log("error", "msg=bad_listen_address listen=%s", listen);
    return 2;
  }
  sa.sin_port = htons((uint16_t)lport);
  if (!rp_split_hostport(redis, rhost, sizeof rhost, &rport)) {
    rp_log("error", "msg=bad_redis_address redis=%s", redis);
    return 2;
  }

  struct rp_ctl *c = &g.ctl;
  c->redis_host = rhost;
  c->redis_port = rport;
  c->defect = rp_defect_name(d);
  /* pg_lock is recursive: rp_ctl_exec/rp_ctl_posture take it themselves, and a module that
   * already holds it for a transaction may still call them. */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&c->pg_lock, &ma);
  pthread_mutexattr_destroy(&ma);
  pthread_mutex_init(&c->redis_lock, NULL);

  sigemptyset(&g.sigs);
  sigaddset(&g.sigs, SIGINT);
  sigaddset(&g.sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &g.sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* The stack may start us before PostgreSQL accepts connections. */
  long backoff = 250;
  time_t deadline = time(NULL) + RP_PG_CONNECT_BUDGET_S;
  bool up = false;
  while (!(up = ensure_schema(c)) && time(NULL) < deadline) {
    if (signalled()) return 0;
    sleep_ms(backoff);
    backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
  }
  if (!up) {
    rp_log("error", "msg=pg_unavailable budget_s=%d", RP_PG_CONNECT_BUDGET_S);
    PQfinish(c->pg);
    return 1;
  }
  char names[256] = "";
  size_t nl = 0;
  for (size_t i = 0; i < RP_NMODULES; i++)
    if (modules[i])
      nl += (size_t)snprintf(names + nl, sizeof names - nl, "%s%s", nl ? "," : "",
                             modules[i]->name);
  rp_log("info", "msg=schema_ready schema=platform modules=%s", names);
  redisReply *rr = rp_ctl_redis(c, "PING"); /* not fatal: /health reports it until it answers */
  if (rr) freeReplyObject(rr);

  struct MHD_Daemon *dmn = MHD_start_daemon(
      MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
          MHD_USE_ERROR_LOG,
      (uint16_t)lport, NULL, NULL, on_request, c, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
      NULL, MHD_OPTION_END);
  if (!dmn) {
    rp_log("error", "msg=listen_failed listen=%s", listen);
    PQfinish(c->pg);
    return 1;
  }
  pthread_t ticker;
  pthread_create(&ticker, NULL, ticker_main, c);
  rp_log("info", "msg=started service=rp-control listen=%s kafka=%s redis=%s defect=%s", listen,
         kafka ? kafka : "", redis, c->defect);

  int sig = 0;
  sigwait(&g.sigs, &sig);
  rp_log("info", "msg=stopping signal=%d", sig);
  MHD_stop_daemon(dmn); /* waits for in-flight requests */
  pthread_mutex_lock(&g.tick_mu);
  g.stopping = true;
  pthread_cond_broadcast(&g.tick_cv);
  pthread_mutex_unlock(&g.tick_mu);
  pthread_join(ticker, NULL);
  PQfinish(c->pg);
  if (c->redis) redisFree(c->redis);
  pthread_mutex_destroy(&c->pg_lock);
  pthread_mutex_destroy(&c->redis_lock);
  rp_log("info", "msg=stopped service=rp-control");
  return 0;
}
