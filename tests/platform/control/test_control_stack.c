/* Integration tests of rp-control against a real local stack (PostgreSQL + Redis): the
 * governed promotion corridor (refusal leaves a ledger row and no state change; promote and
 * rollback move platform.active_model), the audit chain of a decision, the cost guard's
 * throttle and receipts, and each planted control-plane defect changing exactly the behaviour
 * it claims. The clean instance is the one the stack runs (FPD_PORT_CONTROL, default 18082, or
 * RP_CONTROL_URL); each defect runs in an rp-control this test starts from the build tree on a
 * spare port against the same servers. A missing server or binary is a failure, never a skip.
 *
 * The stack may be shared: every version, run and event id is unique to this run, decisions
 * are inserted under their own platform_run_id, every promotion is rolled back, and the cost
 * guard is left with an envelope it cannot breach and no throttle. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RATE_KEY "fp:ctl:ingress_rate_limit"
#define BUILTIN "m-fixed-2026.11.0"
#define W_JSON                                                                                    \
  "{\"bias\":-7.4,\"amount\":2.0,\"ecom\":1.5,\"foreign\":0.6,\"merchant_risk\":0.4,"           \
  "\"txn_count_24h\":0}"

/* ---- configuration (the stack's endpoints.env) ---------------------------------------- */

static struct {
  char pg_host[128], pg_port[16], pg_db[64], pg_user[64], redis_host[128], kafka[128];
  int redis_port, control_port;
  char control_url[160];
} cfg;

static void env_value(const char *line, const char *key, char *out, size_t n) {
  size_t k = strlen(key);
  if (strncmp(line, key, k) != 0 || line[k] != '=') return;
  snprintf(out, n, "%s", line + k + 1);
  out[strcspn(out, "\r\n")] = '\0';
}

static void load_cfg(void) {
  const char *state = getenv("FPDRILL_STATE");
  const char *src = getenv("FPDRILL_SOURCE_DIR");
  char path[4096];
  if (state) snprintf(path, sizeof path, "%s/endpoints.env", state);
  else snprintf(path, sizeof path, "%s/envs/local/.state/endpoints.env", src ? src : ".");
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s unreadable: is the local stack up (FPDRILL_STATE)?", path);
  char line[4096], pgpass[4096] = "", rport[16] = "", kafka[128] = "";
  while (fgets(line, sizeof line, f)) {
    char *p = strncmp(line, "export ", 7) == 0 ? line + 7 : line;
    env_value(p, "FPD_PG_HOST", cfg.pg_host, sizeof cfg.pg_host);
    env_value(p, "FPD_PG_PORT", cfg.pg_port, sizeof cfg.pg_port);
    env_value(p, "FPD_PG_DB", cfg.pg_db, sizeof cfg.pg_db);
    env_value(p, "FPD_PG_USER", cfg.pg_user, sizeof cfg.pg_user);
    env_value(p, "FPD_PGPASSFILE", pgpass, sizeof pgpass);
    env_value(p, "FPD_REDIS_HOST", cfg.redis_host, sizeof cfg.redis_host);
    env_value(p, "FPD_REDIS_PORT", rport, sizeof rport);
    env_value(p, "FPD_KAFKA_BOOTSTRAP", kafka, sizeof kafka);
    env_value(p, "FPD_CONTROL_URL", cfg.control_url, sizeof cfg.control_url);
  }
  fclose(f);
  cr_assert(cfg.pg_host[0] && cfg.pg_port[0] && pgpass[0] && rport[0],
            "%s lacks the PostgreSQL or Redis endpoints", path);
  if (!getenv("PGPASSFILE")) setenv("PGPASSFILE", pgpass, 1);
  cfg.redis_port = atoi(rport);
  snprintf(cfg.kafka, sizeof cfg.kafka, "%s", kafka[0] ? kafka : "127.0.0.1:19092");
  const char *port = getenv("FPD_PORT_CONTROL");
  cfg.control_port = port ? atoi(port) : 18082;
  if (getenv("RP_CONTROL_URL"))
    snprintf(cfg.control_url, sizeof cfg.control_url, "%s", getenv("RP_CONTROL_URL"));
  else if (!cfg.control_url[0])
    snprintf(cfg.control_url, sizeof cfg.control_url, "http://127.0.0.1:%d", cfg.control_port);
}

/* ---- HTTP ----------------------------------------------------------------------------- */

typedef struct {
  long status;
  char *body;
  size_t len;
} http_resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  http_resp *r = ud;
  char *nb = realloc(r->body, r->len + sz * n + 1);
  if (!nb) return 0;
  memcpy(nb + r->len, p, sz * n);
  r->body = nb;
  r->len += sz * n;
  r->body[r->len] = '\0';
  return sz * n;
}

/* status 0: unreachable. */
static http_resp http(const char *method, const char *base, const char *path, const char *body) {
  http_resp r = {0};
  char url[512];
  snprintf(url, sizeof url, "%s%s", base, path);
  CURL *c = curl_easy_init();
  cr_assert_not_null(c);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  if (body || strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (!r.body) r.body = strdup("");
  return r;
}

/* Sends and parses; asserts the status. Caller json_decref()s. */
static json_t *call(const char *method, const char *base, const char *path, const char *body,
                    long want) {
  http_resp r = http(method, base, path, body);
  cr_assert_eq(r.status, want, "%s %s%s: status %ld (want %ld): %s", method, base, path,
               r.status, want, r.body);
  json_t *j = json_loads(r.body, 0, NULL);
  cr_assert_not_null(j, "%s %s: not JSON: %s", method, path, r.body);
  free(r.body);
  return j;
}

static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* ---- PostgreSQL / Redis --------------------------------------------------------------- */

static PGconn *pg(void) {
  char dsn[512];
  snprintf(dsn, sizeof dsn, "host=%s port=%s dbname=%s user=%s connect_timeout=5", cfg.pg_host,
           cfg.pg_port, cfg.pg_db, cfg.pg_user);
  PGconn *c = PQconnectdb(dsn);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
  return c;
}

/* One-row, one-column query; returns a malloc'd value ("" for no row, "<null>" for NULL). */
static char *sql1(PGconn *c, const char *sql, int n, const char *const *p) {
  PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  cr_assert(s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK, "%s: %s", sql,
            PQresultErrorMessage(r));
  char *v = strdup(PQntuples(r) == 0          ? ""
                   : PQgetisnull(r, 0, 0)     ? "<null>"
                                              : PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

static void sql_ok(PGconn *c, const char *sql, int n, const char *const *p) {
  free(sql1(c, sql, n, p));
}

static redisContext *redis(void) {
  struct timeval tv = {2, 0};
  redisContext *r = redisConnectWithTimeout(cfg.redis_host, cfg.redis_port, tv);
  cr_assert(r && !r->err, "Redis %s:%d: %s", cfg.redis_host, cfg.redis_port,
            r ? r->errstr : "alloc");
  return r;
}

/* The value of the throttle key, or NULL when it is absent (malloc'd). */
static char *rate_key(void) {
  redisContext *rc = redis();
  redisReply *r = redisCommand(rc, "GET " RATE_KEY);
  cr_assert_not_null(r);
  char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
  freeReplyObject(r);
  redisFree(rc);
  return v;
}

/* ---- fixtures ------------------------------------------------------------------------- */

static void unique_id(char *out, size_t n, const char *prefix) {
  unsigned char b[4];
  cr_assert_eq(getrandom(b, sizeof b, 0), (ssize_t)sizeof b);
  snprintf(out, n, "%s-%ld-%02x%02x%02x%02x", prefix, (long)time(NULL), b[0], b[1], b[2], b[3]);
}

static void sha_of(const char *s, char out[65]) {
  /* Any 64-hex value works as an artifact checksum; derive it from the id so it is unique. */
  static const char hex[] = "0123456789abcdef";
  unsigned h = 2166136261u;
  for (const char *p = s; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  for (int i = 0; i < 64; i++) {
    h = h * 1103515245u + 12345u;
    out[i] = hex[(h >> 16) & 15];
  }
  out[64] = '\0';
}

/* A training run and its dataset manifest, as the learning lane records them. */
static void lineage(PGconn *c, const char *run_id) {
  const char *p[] = {run_id};
  sql_ok(c,
         "INSERT INTO platform.dataset_manifests (dataset_id, manifest_id, fingerprint, as_of,"
         " label_maturity_cutoff, features, rows) VALUES ($1 || '-ds', $1 || '-m', 'fp-' || $1,"
         " now() - interval '1 day', now() - interval '2 days', '[\"amount\"]', 10)",
         1, p);
  sql_ok(c,
         "INSERT INTO platform.training_runs (training_run_id, dataset_id, code_digest,"
         " config_digest, started_at, finished_at) VALUES ($1, $1 || '-ds', 'code-' || $1,"
         " 'conf-' || $1, now(), now())",
         1, p);
}

static void register_version(const char *base, const char *version, const char *run_id,
                             const char *sha, long want) {
  char body[1024];
  char run[160] = "null";
  if (run_id) snprintf(run, sizeof run, "\"%s\"", run_id);
  snprintf(body, sizeof body,
           "{\"version\":\"%s\",\"weights\":" W_JSON ",\"artifact_sha256\":\"%s\","
           "\"training_run_id\":%s,\"feature_contract\":null,\"extra_latency_ms\":0}",
           version, sha, run);
  json_decref(call("POST", base, "/models", body, want));
}

static char *promote_body(const char *version, const char *sha, bool evidence) {
  char *s = NULL;
  if (evidence)
    cr_assert(asprintf(&s,
                       "{\"version\":\"%s\",\"actor\":\"it\",\"reason\":\"integration test\","
                       "\"approval\":\"CAB-IT\",\"evidence\":{\"evaluation_report\":"
                       "\"s3://reports/%s/eval.json\",\"artifact_sha256\":\"%s\","
                       "\"lineage_complete\":true}}",
                       version, version, sha) > 0);
  else
    cr_assert(asprintf(&s,
                       "{\"version\":\"%s\",\"actor\":\"it\",\"reason\":\"integration test\"}",
                       version) > 0);
  return s;
}

static char *active_version(PGconn *c) {
  return sql1(c, "SELECT version FROM platform.active_model", 0, NULL);
}

/* A decision row scored by `version`, under this test's own platform_run_id. */
static char *insert_decision(PGconn *c, const char *run, const char *version) {
  char eid[96];
  unique_id(eid, sizeof eid, "e");
  const char *p[] = {run, eid, version};
  return sql1(c,
              "INSERT INTO platform.decision_log (platform_run_id, event_class, event_id,"
              " payload_hash, origin_topic, origin_partition, origin_offset, model_version,"
              " bundle_digest, degraded, score, outcome, decided_at) VALUES ($1, 'transaction',"
              " $2, repeat('0', 64), 'it-control', 0, 0, $3, 'it', false, 0.1, 'approve',"
              " clock_timestamp()) RETURNING decision_id",
              3, p);
}

/* The stack normally creates decision_log through rp-decider; a bare PostgreSQL has none. */
static void require_decision_log(PGconn *c) {
  char *t = sql1(c, "SELECT to_regclass('platform.decision_log') IS NOT NULL", 0, NULL);
  cr_assert_str_eq(t, "t", "platform.decision_log missing: is rp-decider part of the stack?");
  free(t);
}

static void rollback_via(const char *base) {
  json_decref(call("POST", base, "/rollback", "{\"actor\":\"it\",\"reason\":\"test cleanup\"}",
                   200));
}

/* Leaves the clean instance's guard with an envelope nothing can breach and no throttle. */
static void calm_budget(const char *base) {
  json_decref(call("POST", base, "/budget",
                   "{\"envelope_units\":1e15,\"window_s\":3600,\"unit_cost_event\":0,"
                   "\"unit_cost_retrain\":0}",
                   201));
  json_decref(call("POST", base, "/budget/reset", NULL, 200));
}

/* ---- a defect instance ---------------------------------------------------------------- */

typedef struct {
  pid_t pid;
  char url[64];
} instance;

static pid_t defect_pid; /* a defect instance still running when a test aborted */

static instance start_defect(const char *defect, int slot) {
  const char *bin_dir = getenv("FPDRILL_BINARY_DIR");
  cr_assert_not_null(bin_dir, "FPDRILL_BINARY_DIR unset (run through ctest)");
  char bin[4096], listen[64], redis_addr[160], conninfo[512], log[4096];
  snprintf(bin, sizeof bin, "%s/envs/local/platform/control/rp-control", bin_dir);
  cr_assert_eq(access(bin, X_OK), 0, "%s not built", bin);
  int port = cfg.control_port + 100 + slot;
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(redis_addr, sizeof redis_addr, "%s:%d", cfg.redis_host, cfg.redis_port);
  snprintf(conninfo, sizeof conninfo, "host=%s port=%s dbname=%s user=%s", cfg.pg_host,
           cfg.pg_port, cfg.pg_db, cfg.pg_user);
  snprintf(log, sizeof log, "%s/rp-control-%s.log", bin_dir, defect);
  instance in = {0};
  snprintf(in.url, sizeof in.url, "http://%s", listen);
  in.pid = fork();
  cr_assert_geq(in.pid, 0);
  if (in.pid == 0) {
    FILE *f = freopen(log, "w", stderr);
    (void)f;
    execl(bin, bin, "--listen", listen, "--kafka", cfg.kafka, "--redis", redis_addr, "--pg",
          conninfo, "--defect", defect, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    http_resp r = http("GET", in.url, "/health", NULL);
    free(r.body);
    if (r.status == 200) {
      defect_pid = in.pid;
      return in;
    }
    int st;
    cr_assert_eq(waitpid(in.pid, &st, WNOHANG), 0, "rp-control --defect %s exited (see %s)",
                 defect, log);
    usleep(100000);
  }
  kill(in.pid, SIGKILL);
  cr_assert_fail("rp-control --defect %s not healthy within 20 s (see %s)", defect, log);
  return in;
}

/* SIGTERM must end the process cleanly (exit 0) within 10 s. */
static void stop_defect(instance *in) {
  defect_pid = 0;
  cr_assert_eq(kill(in->pid, SIGTERM), 0);
  int st = 0;
  for (int i = 0; i < 100; i++) {
    pid_t w = waitpid(in->pid, &st, WNOHANG);
    if (w == in->pid) {
      cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rp-control did not exit 0 on SIGTERM");
      return;
    }
    usleep(100000);
  }
  kill(in->pid, SIGKILL);
  waitpid(in->pid, &st, 0);
  cr_expect_fail("rp-control ignored SIGTERM for 10 s");
}

/* The active version a test found, restored by the suite's fini even when an assertion
 * aborted the test half-way, so one failure does not leave a test version serving a shared
 * stack. Rollbacks (never promotions) get back there, at most a few steps. */
static char restore_version[256];

static void remember_active(PGconn *c) {
  char *v = active_version(c);
  snprintf(restore_version, sizeof restore_version, "%s", v);
  free(v);
}

static void teardown(void) {
  if (defect_pid > 0) {
    kill(defect_pid, SIGTERM);
    waitpid(defect_pid, NULL, 0);
  }
  if (!restore_version[0]) return;
  PGconn *c = pg();
  for (int i = 0; i < 4; i++) {
    char *v = active_version(c);
    bool done = strcmp(v, restore_version) == 0;
    free(v);
    if (done) break;
    http_resp r = http("POST", cfg.control_url, "/rollback",
                       "{\"actor\":\"it\",\"reason\":\"restore after a failed test\"}");
    free(r.body);
    if (r.status != 200) break;
  }
  PQfinish(c);
}

static void setup(void) {
  load_cfg();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  http_resp r = http("GET", cfg.control_url, "/health", NULL);
  cr_assert_eq(r.status, 200, "rp-control at %s not healthy (status %ld): %s", cfg.control_url,
               r.status, r.body);
  free(r.body);
}

TestSuite(control, .init = setup, .fini = teardown);

/* ---- clean behaviour ------------------------------------------------------------------ */

Test(control, health_metrics_and_bootstrap) {
  json_t *h = call("GET", cfg.control_url, "/health", NULL, 200);
  cr_expect_str_eq(jstr(h, "status"), "ok");
  json_decref(h);
  http_resp m = http("GET", cfg.control_url, "/metrics", NULL);
  cr_assert_eq(m.status, 200);
  cr_expect_not_null(strstr(m.body, "\nrp_control_up 1\n"), "%s", m.body);
  cr_expect_not_null(strstr(m.body, "rp_model_active_info{version=\""));
  cr_expect_not_null(strstr(m.body, "rp_promotions_total{action=\"refused\"}"));
  cr_expect_not_null(strstr(m.body, "rp_cost_guard_tripped "));
  free(m.body);
  /* The built-in model is registered and promoted with a complete lineage. */
  PGconn *c = pg();
  char *chain = sql1(c,
                     "SELECT r.training_run_id || '|' || t.dataset_id || '|' || m.fingerprint ||"
                     " '|' || l.approval FROM platform.model_registry r"
                     " JOIN platform.training_runs t USING (training_run_id)"
                     " JOIN platform.dataset_manifests m ON m.dataset_id = t.dataset_id"
                     " JOIN platform.promotion_ledger l ON l.version = r.version"
                     " AND l.action = 'promote' WHERE r.version = '" BUILTIN "'"
                     " ORDER BY l.promotion_id LIMIT 1",
                     0, NULL);
  cr_expect_str_eq(chain,
                   "bootstrap|bootstrap|"
                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855|bootstrap");
  free(chain);
  PQfinish(c);
}

Test(control, promote_without_evidence_is_refused_and_changes_nothing) {
  PGconn *c = pg();
  char v[96], run[96], sha[65];
  unique_id(v, sizeof v, "it-refuse");
  unique_id(run, sizeof run, "tr-refuse");
  sha_of(v, sha);
  lineage(c, run);
  register_version(cfg.control_url, v, run, sha, 201);
  register_version(cfg.control_url, v, run, sha, 409); /* append-only: no re-registration */
  char *before = active_version(c);
  remember_active(c);

  char *body = promote_body(v, sha, false);
  json_t *j = call("POST", cfg.control_url, "/promote", body, 409);
  free(body);
  cr_expect_str_eq(jstr(j, "status"), "refused");
  char *gates = json_dumps(json_object_get(j, "failed_gates"), JSON_COMPACT);
  cr_expect_str_eq(gates, "[\"approval\",\"evaluation_report\",\"artifact_sha256\"]");
  free(gates);
  json_decref(j);

  /* A checksum that does not match the registered artifact is refused too. */
  char bad[65];
  sha_of("other", bad);
  body = promote_body(v, bad, true);
  j = call("POST", cfg.control_url, "/promote", body, 409);
  free(body);
  cr_expect_str_eq(json_string_value(json_array_get(json_object_get(j, "failed_gates"), 0)),
                   "artifact_sha256");
  json_decref(j);

  const char *p[] = {v};
  char *rows = sql1(c,
                    "SELECT string_agg(action || ':' || coalesce(evidence->>'failed_gates', ''),"
                    " ';' ORDER BY promotion_id) FROM platform.promotion_ledger WHERE version = $1",
                    1, p);
  cr_expect_str_eq(rows, "refused:[\"approval\", \"evaluation_report\", \"artifact_sha256\"];"
                         "refused:[\"artifact_sha256\"]");
  free(rows);
  char *after = active_version(c);
  cr_expect_str_eq(after, before, "a refused promotion changed the active model");
  free(before);
  free(after);
  PQfinish(c);
}

Test(control, promote_then_rollback_restores_the_previous_version) {
  PGconn *c = pg();
  char v[96], run[96], sha[65];
  unique_id(v, sizeof v, "it-v2");
  unique_id(run, sizeof run, "tr-v2");
  sha_of(v, sha);
  lineage(c, run);
  register_version(cfg.control_url, v, run, sha, 201);
  char *before = active_version(c);
  remember_active(c);

  char *body = promote_body(v, sha, true);
  json_t *j = call("POST", cfg.control_url, "/promote", body, 200);
  free(body);
  cr_expect_str_eq(jstr(j, "previous_version"), before);
  json_decref(j);
  j = call("GET", cfg.control_url, "/models/active", NULL, 200);
  cr_expect_str_eq(jstr(j, "version"), v);
  cr_expect_eq(strlen(jstr(j, "bundle_digest")), 64u);
  json_decref(j);
  char *now = active_version(c);
  cr_expect_str_eq(now, v);
  free(now);

  j = call("POST", cfg.control_url, "/rollback", "{\"actor\":\"it\",\"reason\":\"drill\"}", 200);
  cr_expect_str_eq(jstr(j, "version"), before);
  cr_expect_str_eq(jstr(j, "previous_version"), v);
  json_decref(j);
  now = active_version(c);
  cr_expect_str_eq(now, before, "rollback did not restore the last known good version");
  free(now);
  const char *p[] = {v};
  char *last = sql1(c,
                    "SELECT action || ':' || version || ':' || previous_version FROM"
                    " platform.promotion_ledger WHERE previous_version = $1 ORDER BY promotion_id"
                    " DESC LIMIT 1",
                    1, p);
  char want[256];
  snprintf(want, sizeof want, "rollback:%s:%s", before, v);
  cr_expect_str_eq(last, want);
  free(last);
  free(before);
  PQfinish(c);
}

Test(control, audit_chain_of_a_decision) {
  PGconn *c = pg();
  require_decision_log(c);
  char v[96], run[96], sha[65], prun[96];
  unique_id(v, sizeof v, "it-audit");
  unique_id(run, sizeof run, "tr-audit");
  unique_id(prun, sizeof prun, "it-control");
  sha_of(v, sha);
  lineage(c, run);
  register_version(cfg.control_url, v, run, sha, 201);
  remember_active(c);
  char *body = promote_body(v, sha, true);
  json_decref(call("POST", cfg.control_url, "/promote", body, 200));
  free(body);
  char *did = insert_decision(c, prun, v);
  char *fallback_version = NULL;
  cr_assert(asprintf(&fallback_version, "%s+fallback", v) > 0);
  char *did_fb = insert_decision(c, prun, fallback_version);
  char *did_unknown = insert_decision(c, prun, "it-never-registered");
  rollback_via(cfg.control_url);

  char path[128];
  snprintf(path, sizeof path, "/audit/decision/%s", did);
  json_t *j = call("GET", cfg.control_url, path, NULL, 200);
  cr_expect(json_is_true(json_object_get(j, "complete")), "chain incomplete: %s",
            json_dumps(json_object_get(j, "missing"), 0));
  json_t *model = json_object_get(j, "model"), *promo = json_object_get(j, "promotion"),
         *tr = json_object_get(j, "training_run"), *ds = json_object_get(j, "dataset_manifest");
  cr_expect_str_eq(jstr(model, "version"), v);
  cr_expect_str_eq(jstr(model, "training_run_id"), run);
  cr_expect_str_eq(jstr(model, "artifact_sha256"), sha);
  cr_expect_str_eq(jstr(promo, "action"), "promote");
  cr_expect_str_eq(jstr(promo, "approval"), "CAB-IT");
  cr_expect_str_eq(jstr(promo, "actor"), "it");
  char code[128], fp[128];
  snprintf(code, sizeof code, "code-%s", run);
  cr_expect_str_eq(jstr(tr, "code_digest"), code);
  snprintf(fp, sizeof fp, "fp-%s", run);
  cr_expect_str_eq(jstr(ds, "fingerprint"), fp);
  cr_expect_str_eq(jstr(json_object_get(j, "decision"), "platform_run_id"), prun);
  json_decref(j);

  /* A fallback decision audits to the same registered version. */
  snprintf(path, sizeof path, "/audit/decision/%s", did_fb);
  j = call("GET", cfg.control_url, path, NULL, 200);
  cr_expect(json_is_true(json_object_get(j, "complete")));
  json_decref(j);

  /* A model the registry never saw is a broken chain, reported as such. */
  snprintf(path, sizeof path, "/audit/decision/%s", did_unknown);
  j = call("GET", cfg.control_url, path, NULL, 200);
  cr_expect(json_is_false(json_object_get(j, "complete")));
  cr_expect_str_eq(json_string_value(json_array_get(json_object_get(j, "missing"), 0)), "model");
  json_decref(j);

  snprintf(path, sizeof path, "/audit/decision/%lld", atoll(did) + 1000000000LL);
  json_decref(call("GET", cfg.control_url, path, NULL, 404));
  free(did);
  free(did_fb);
  free(did_unknown);
  free(fallback_version);
  PQfinish(c);
}

/* Waits up to `ms` for the throttle key to have value `want` (NULL = absent). */
static bool wait_rate_key(const char *want, int ms) {
  for (int t = 0; t <= ms; t += 100) {
    char *v = rate_key();
    bool ok = want ? v && strcmp(v, want) == 0 : v == NULL;
    free(v);
    if (ok) return true;
    usleep(100000);
  }
  return false;
}

Test(control, budget_breach_throttles_and_writes_receipts) {
  PGconn *c = pg();
  require_decision_log(c);
  char prun[96], run[96];
  unique_id(prun, sizeof prun, "it-control");
  unique_id(run, sizeof run, "tr-cost");
  calm_budget(cfg.control_url); /* start released, whatever an earlier run left */
  cr_assert(wait_rate_key(NULL, 2000), RATE_KEY " still set after a reset");
  json_t *b = call("POST", cfg.control_url, "/budget",
                   "{\"envelope_units\":2,\"window_s\":3,\"unit_cost_event\":1,"
                   "\"unit_cost_retrain\":10}",
                   201);
  json_int_t env_id = json_integer_value(json_object_get(b, "envelope_id"));
  json_decref(b);
  char *mark = sql1(c, "SELECT coalesce(max(posture_id), 0) FROM platform.posture_events", 0,
                    NULL);
  for (int i = 0; i < 3; i++) free(insert_decision(c, prun, BUILTIN));
  lineage(c, run); /* one retrain finished in the window */

  json_t *g = NULL;
  for (int t = 0; t < 40; t++) { /* the guard ticks once a second */
    json_decref(g);
    g = call("GET", cfg.control_url, "/budget", NULL, 200);
    if (json_is_true(json_object_get(g, "tripped"))) break;
    usleep(100000);
  }
  cr_expect(json_is_true(json_object_get(g, "tripped")), "the guard did not trip");
  cr_expect(wait_rate_key("0", 1500), "the guard did not set " RATE_KEY "=0");
  cr_expect_geq(json_integer_value(json_object_get(g, "events_decided")), 3);
  cr_expect_geq(json_integer_value(json_object_get(g, "retrains")), 1);
  cr_expect_geq(json_number_value(json_object_get(g, "spend_units")), 13.0);
  json_decref(g);
  const char *pm[] = {mark};
  char *pe = sql1(c,
                  "SELECT severity || ':' || action FROM platform.posture_events WHERE"
                  " posture_id > $1::bigint AND kind = 'cost_guard' ORDER BY posture_id LIMIT 1",
                  1, pm);
  cr_expect_str_eq(pe, "critical:throttle");
  free(pe);
  http_resp m = http("GET", cfg.control_url, "/metrics", NULL);
  cr_expect_not_null(strstr(m.body, "\nrp_cost_guard_tripped 1\n"));
  free(m.body);

  /* The window's receipt appears when it closes (3 s window + 1 s tick). */
  char id[32], *rc = NULL;
  snprintf(id, sizeof id, "%lld", (long long)env_id);
  const char *pr[] = {id};
  for (int t = 0; t < 60; t++) {
    free(rc);
    rc = sql1(c,
              "SELECT outcome || ':' || (events_decided >= 3) || ':' || (retrains >= 1) FROM"
              " platform.cost_receipts WHERE envelope_id = $1::bigint AND outcome = 'breached'"
              " LIMIT 1",
              1, pr);
    if (rc[0]) break;
    usleep(100000);
  }
  cr_expect_str_eq(rc, "breached:true:true");
  free(rc);

  /* A reset in the middle of a breached window releases the guard for good: that window is
   * receipted (breached) at the reset and the next one starts empty, so nothing re-trips. */
  for (int i = 0; i < 3; i++) free(insert_decision(c, prun, BUILTIN));
  json_decref(call("POST", cfg.control_url, "/budget/reset", NULL, 200));
  cr_expect(wait_rate_key(NULL, 1000), "reset did not delete " RATE_KEY);
  usleep(2500000); /* two ticks */
  char *key = rate_key();
  cr_expect_null(key, "the guard re-tripped after a reset");
  free(key);
  g = call("GET", cfg.control_url, "/budget", NULL, 200);
  cr_expect(json_is_false(json_object_get(g, "tripped")));
  json_decref(g);
  rc = sql1(c,
            "SELECT count(*) FROM platform.cost_receipts WHERE envelope_id = $1::bigint AND"
            " outcome = 'breached' AND events_decided >= 3",
            1, pr);
  cr_expect_str_eq(rc, "2", "the reset did not receipt the breached partial window");
  free(rc);

  calm_budget(cfg.control_url);
  cr_expect(wait_rate_key(NULL, 1000), "reset did not delete " RATE_KEY);
  free(mark);
  PQfinish(c);
}

Test(control, bad_requests) {
  json_decref(call("POST", cfg.control_url, "/models", "not json", 400));
  json_decref(call("POST", cfg.control_url, "/models",
                   "{\"version\":\"x\",\"weights\":{\"bias\":1},\"artifact_sha256\":\"00\"}", 400));
  json_decref(call("POST", cfg.control_url, "/promote", "{\"version\":\"x\"}", 400));
  json_decref(call("POST", cfg.control_url, "/budget", "{\"envelope_units\":-1}", 400));
  json_decref(call("GET", cfg.control_url, "/audit/decision/abc", NULL, 400));
  json_decref(call("GET", cfg.control_url, "/nope", NULL, 404));
  json_decref(call("DELETE", cfg.control_url, "/models", NULL, 405));
}

/* ---- planted defects ------------------------------------------------------------------ */

Test(control, defect_rollback_noop) {
  PGconn *c = pg();
  char v[96], run[96], sha[65];
  unique_id(v, sizeof v, "it-noop");
  unique_id(run, sizeof run, "tr-noop");
  sha_of(v, sha);
  lineage(c, run);
  register_version(cfg.control_url, v, run, sha, 201);
  char *before = active_version(c);
  remember_active(c);
  instance d = start_defect("rollback-noop", 1); /* before any state change */
  char *body = promote_body(v, sha, true);
  json_decref(call("POST", cfg.control_url, "/promote", body, 200));
  free(body);

  /* The defective rollback answers as if it worked and writes its ledger row... */
  json_t *j = call("POST", d.url, "/rollback", "{\"actor\":\"it\",\"reason\":\"drill\"}", 200);
  cr_expect_str_eq(jstr(j, "version"), before);
  json_decref(j);
  char *last = sql1(c,
                    "SELECT action FROM platform.promotion_ledger WHERE action <> 'refused'"
                    " ORDER BY promotion_id DESC LIMIT 1",
                    0, NULL);
  cr_expect_str_eq(last, "rollback");
  free(last);
  /* ...but the active model does not change. */
  char *now = active_version(c);
  cr_expect_str_eq(now, v, "rollback-noop changed the active model");
  free(now);
  /* Unaffected: its promotion gates still refuse missing evidence. */
  body = promote_body(v, sha, false);
  json_decref(call("POST", d.url, "/promote", body, 409));
  free(body);
  stop_defect(&d);

  rollback_via(cfg.control_url); /* the clean rollback does restore it */
  now = active_version(c);
  cr_expect_str_eq(now, before);
  free(now);
  free(before);
  PQfinish(c);
}

Test(control, defect_lineage_missing) {
  PGconn *c = pg();
  require_decision_log(c);
  char v[96], sha[65], prun[96];
  unique_id(v, sizeof v, "it-nolineage");
  unique_id(prun, sizeof prun, "it-control");
  sha_of(v, sha);
  register_version(cfg.control_url, v, NULL, sha, 201); /* no training run */
  char *before = active_version(c);
  remember_active(c);
  char *body = promote_body(v, sha, true);
  json_t *j = call("POST", cfg.control_url, "/promote", body, 409);
  cr_expect_str_eq(json_string_value(json_array_get(json_object_get(j, "failed_gates"), 0)),
                   "lineage");
  json_decref(j);

  instance d = start_defect("lineage-missing", 2);
  /* Unaffected: a checksum mismatch is still refused. */
  char bad[65], *badbody;
  sha_of("mismatch", bad);
  badbody = promote_body(v, bad, true);
  json_decref(call("POST", d.url, "/promote", badbody, 409));
  free(badbody);
  json_decref(call("POST", d.url, "/promote", body, 200)); /* the lineage gate is gone */
  free(body);
  stop_defect(&d);
  char *now = active_version(c);
  cr_expect_str_eq(now, v);
  free(now);

  char *did = insert_decision(c, prun, v);
  rollback_via(cfg.control_url);
  char path[128];
  snprintf(path, sizeof path, "/audit/decision/%s", did);
  j = call("GET", cfg.control_url, path, NULL, 200);
  cr_expect(json_is_false(json_object_get(j, "complete")), "the audit chain should be broken");
  char *miss = json_dumps(json_object_get(j, "missing"), JSON_COMPACT);
  cr_expect_str_eq(miss, "[\"model.training_run_id\",\"training_run\",\"dataset_manifest\"]");
  free(miss);
  json_decref(j);
  now = active_version(c);
  cr_expect_str_eq(now, before);
  free(now);
  free(before);
  free(did);
  PQfinish(c);
}

Test(control, defect_latency_regression) {
  PGconn *c = pg();
  char v1[96], v2[96], sha[65];
  unique_id(v1, sizeof v1, "it-lat-clean");
  unique_id(v2, sizeof v2, "it-lat-defect");
  sha_of(v1, sha);
  register_version(cfg.control_url, v1, NULL, sha, 201);
  instance d = start_defect("latency-regression", 3);
  register_version(d.url, v2, NULL, sha, 201);
  /* Unaffected: the gates still refuse a promotion without evidence. */
  char *body = promote_body(v2, sha, false);
  json_decref(call("POST", d.url, "/promote", body, 409));
  free(body);
  stop_defect(&d);
  const char *p1[] = {v1}, *p2[] = {v2};
  char *l1 = sql1(c, "SELECT extra_latency_ms FROM platform.model_registry WHERE version = $1", 1,
                  p1);
  char *l2 = sql1(c, "SELECT extra_latency_ms FROM platform.model_registry WHERE version = $1", 1,
                  p2);
  cr_expect_str_eq(l1, "0");
  cr_expect_str_eq(l2, "50");
  free(l1);
  free(l2);
  PQfinish(c);
}

Test(control, defect_guard_never_trips) {
  PGconn *c = pg();
  require_decision_log(c);
  calm_budget(cfg.control_url); /* the clean instance must not trip on this test's decisions */
  cr_assert(wait_rate_key(NULL, 1000));
  char prun[96];
  unique_id(prun, sizeof prun, "it-control");
  char *mark = sql1(c, "SELECT coalesce(max(posture_id), 0) FROM platform.posture_events", 0,
                    NULL);
  instance d = start_defect("guard-never-trips", 4);
  json_t *b = call("POST", d.url, "/budget",
                   "{\"envelope_units\":2,\"window_s\":2,\"unit_cost_event\":1,"
                   "\"unit_cost_retrain\":0}",
                   201);
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(b, "envelope_id")));
  json_decref(b);
  for (int i = 0; i < 3; i++) free(insert_decision(c, prun, BUILTIN));
  sleep(4); /* two ticks past the window's end */
  json_t *g = call("GET", d.url, "/budget", NULL, 200);
  cr_expect(json_is_false(json_object_get(g, "tripped")), "guard-never-trips tripped");
  json_decref(g);
  char *key = rate_key();
  cr_expect_null(key, "guard-never-trips set the throttle key");
  free(key);
  const char *pm[] = {mark};
  char *pe = sql1(c,
                  "SELECT count(*) FROM platform.posture_events WHERE posture_id > $1::bigint"
                  " AND kind = 'cost_guard'",
                  1, pm);
  cr_expect_str_eq(pe, "0");
  free(pe);
  /* Unaffected: spend is measured and the breach is on the receipt. */
  const char *pr[] = {id};
  char *rc = sql1(c,
                  "SELECT outcome FROM platform.cost_receipts WHERE envelope_id = $1::bigint"
                  " AND events_decided >= 3 LIMIT 1",
                  1, pr);
  cr_expect_str_eq(rc, "breached");
  free(rc);
  /* Leave the envelope the defect instance declared harmless for the next start. */
  calm_budget(d.url);
  stop_defect(&d);
  free(mark);
  PQfinish(c);
}
