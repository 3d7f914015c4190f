/* Integration tests of rp-control's learning lane and drift monitor against the local stack's
 * PostgreSQL and Redis (found through FPDRILL_STATE/endpoints.env). Each test starts its own
 * rp-control (the binary of this build tree) on a free port, clean or with the planted defect it
 * needs, so the drills DR-08 (leakage fail-closed) and DR-09 (drift -> mitigation) are each seen
 * to pass on the clean platform and to fail on their defect. Synthetic decisions go into the
 * real platform.decision_log (created by rp-decider) under fresh platform_run_ids, dated a few
 * minutes back so the default 60 s window of any other running drift monitor never sees them.
 * A missing server or binary is a failure, never a skip. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/it_util.h"

/* ---- plumbing ------------------------------------------------------------------------- */

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

/* status 0 means the server could not be reached. */
static http_resp http(const char *method, const char *url, const char *body) {
  http_resp r = {0};
  CURL *c = curl_easy_init();
  cr_assert_not_null(c);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (!r.body) r.body = strdup("");
  return r;
}

/* POST a JSON document built by json_pack; returns the parsed reply (or null). */
static json_t *post(const char *base, const char *path, json_t *doc, long *status) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", base, path);
  char *txt = doc ? json_dumps(doc, JSON_COMPACT) : strdup("");
  json_decref(doc);
  http_resp r = http("POST", url, txt);
  free(txt);
  *status = r.status;
  json_t *j = json_loads(r.body, 0, NULL);
  free(r.body);
  return j ? j : json_null();
}

static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static void rand_hex(char *out, size_t nbytes) {
  unsigned char b[16];
  cr_assert(nbytes <= sizeof b);
  cr_assert_eq(getrandom(b, nbytes, 0), (ssize_t)nbytes);
  for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* ---- PostgreSQL and Redis ------------------------------------------------------------- */

static PGconn *pg(void) {
  char ci[512], *pw = NULL;
  it_pg_conninfo(ci, sizeof ci, &pw);
  const char *k[] = {"dbname", "password", "connect_timeout", NULL};
  const char *v[] = {ci, pw, "5", NULL};
  PGconn *c = PQconnectdbParams(k, v, 1);
  free(pw);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "PostgreSQL unreachable: %s", PQerrorMessage(c));
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  return c;
}

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *p) {
  PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  cr_assert(s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK, "SQL failed: %s\n%s",
            PQresultErrorMessage(r), sql);
  return r;
}

static long long count(PGconn *c, const char *sql, int n, const char *const *p) {
  PGresult *r = q(c, sql, n, p);
  long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return v;
}

static redisContext *redis(void) {
  char *h = it_endpoint("FPD_REDIS_HOST"), *p = it_endpoint("FPD_REDIS_PORT");
  struct timeval tv = {3, 0};
  redisContext *r = redisConnectWithTimeout(h, atoi(p), tv);
  free(h);
  free(p);
  cr_assert(r && !r->err, "Redis unreachable: %s", r ? r->errstr : "alloc");
  return r;
}

/* GET key; "" when absent. */
static void redis_get(redisContext *r, const char *key, char *out, size_t outsz) {
  redisReply *rep = redisCommand(r, "GET %s", key);
  cr_assert_not_null(rep);
  snprintf(out, outsz, "%s", rep->type == REDIS_REPLY_STRING ? rep->str : "");
  freeReplyObject(rep);
}

/* ---- an rp-control of our own ---------------------------------------------------------- */

typedef struct {
  pid_t pid;
  char url[64];
} control;

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  cr_assert(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(s, (struct sockaddr *)&a, &len) == 0);
  close(s);
  return ntohs(a.sin_port);
}

static control control_start(const char *defect) {
  const char *bin_dir = getenv("FPDRILL_BINARY_DIR");
  cr_assert(bin_dir && *bin_dir, "FPDRILL_BINARY_DIR is not set (run through ctest)");
  char bin[1024];
  snprintf(bin, sizeof bin, "%s/envs/local/platform/control/rp-control", bin_dir);
  cr_assert_eq(access(bin, X_OK), 0, "rp-control is not built: %s", bin);

  char *kafka = it_endpoint("FPD_KAFKA_BOOTSTRAP"), *pgpass = it_endpoint("FPD_PGPASSFILE");
  char *rh = it_endpoint("FPD_REDIS_HOST"), *rp = it_endpoint("FPD_REDIS_PORT");
  char *ph = it_endpoint("FPD_PG_HOST"), *pp = it_endpoint("FPD_PG_PORT");
  char *pd = it_endpoint("FPD_PG_DB"), *pu = it_endpoint("FPD_PG_USER");
  char listen[64], redis_addr[128], conninfo[512], log[1100];
  control c = {0};
  int port = free_port();
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(c.url, sizeof c.url, "http://127.0.0.1:%d", port);
  snprintf(redis_addr, sizeof redis_addr, "%s:%s", rh, rp);
  snprintf(conninfo, sizeof conninfo, "host=%s port=%s dbname=%s user=%s", ph, pp, pd, pu);
  snprintf(log, sizeof log, "%s/Testing/rp-control-learning-%s-%d.log", bin_dir, defect, port);
  char logdir[1100];
  snprintf(logdir, sizeof logdir, "%s/Testing", bin_dir);
  mkdir(logdir, 0755);

  c.pid = fork();
  cr_assert(c.pid >= 0);
  if (c.pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("PGPASSFILE", pgpass, 1);
    execl(bin, bin, "--listen", listen, "--kafka", kafka, "--redis", redis_addr, "--pg", conninfo,
          "--defect", defect, (char *)NULL);
    _exit(127);
  }
  free(kafka), free(pgpass), free(rh), free(rp), free(ph), free(pp), free(pd), free(pu);

  char health[128];
  snprintf(health, sizeof health, "%s/health", c.url);
  for (int i = 0; i < 300; i++) {
    int st;
    cr_assert_eq(waitpid(c.pid, &st, WNOHANG), 0, "rp-control --defect %s exited at startup"
                 " (see %s)", defect, log);
    http_resp r = http("GET", health, NULL);
    free(r.body);
    if (r.status == 200) return c;
    usleep(100 * 1000);
  }
  kill(c.pid, SIGKILL);
  waitpid(c.pid, NULL, 0);
  cr_assert_fail("rp-control --defect %s not healthy within 30 s (see %s)", defect, log);
  return c;
}

static void control_stop(control *c) {
  if (c->pid <= 0) return;
  kill(c->pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
      c->pid = 0;
      return;
    }
    usleep(100 * 1000);
  }
  kill(c->pid, SIGKILL);
  waitpid(c->pid, NULL, 0);
  c->pid = 0;
}

/* ---- synthetic decisions ---------------------------------------------------------------- */

/*
 * n decisions for run, decided between ago_s and ago_s - n*0.01 seconds before now, with served
 * features derived from the row number g: amount 1.0..3.9 ("normal") or 6.0..7.9 (shifted),
 * ecom g%2, foreign g%5==0, merchant_risk g%7==0, txn_count_24h g%20. Requires the decider's
 * features column: without it the learning lane has nothing to learn from.
 */
static void insert_decisions(PGconn *c, const char *run, int n, double ago_s, int shifted) {
  char ns[16], ago[32], sh[4];
  snprintf(ns, sizeof ns, "%d", n);
  snprintf(ago, sizeof ago, "%.3f", ago_s);
  snprintf(sh, sizeof sh, "%d", shifted);
  const char *p[] = {run, ns, ago, sh};
  PQclear(q(c,
            "INSERT INTO platform.decision_log (platform_run_id, event_class, event_id,"
            " payload_hash, origin_topic, origin_partition, origin_offset, model_version,"
            " bundle_digest, degraded, score, outcome, decided_at, features)"
            " SELECT $1, 'transaction', 'e-' || lpad(g::text, 6, '0'), repeat('0', 64),"
            " 'test.control_learning', 0, g, 'synthetic', 'synthetic', false, 0.1, 'approve',"
            " clock_timestamp() - make_interval(secs => $3::double precision)"
            "   + make_interval(secs => g * 0.01),"
            " jsonb_build_object("
            "   'amount', CASE WHEN $4::int = 1 THEN 6.0 + (g % 20) / 10.0"
            "                  ELSE 1.0 + (g % 30) / 10.0 END,"
            "   'ecom', g % 2, 'foreign', (g % 5 = 0)::int, 'merchant_risk', (g % 7 = 0)::int,"
            "   'txn_count_24h', g % 20)"
            " FROM generate_series(1, $2::int) g",
            4, p));
}

/* Labels for events 1..n of run: fraud when amount > 2.5 (g%30 >= 15), all mature at
 * mature_at, except event `immature` (if > 0) which matures a day from now. */
static void post_labels(const char *base, const char *run, int n, const char *mature_at,
                        int immature) {
  json_t *items = json_array();
  for (int g = 1; g <= n; g++) {
    char eid[32];
    snprintf(eid, sizeof eid, "e-%06d", g);
    char later[40];
    time_t t = time(NULL) + 86400;
    strftime(later, sizeof later, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:i,s:s}", "event_id", eid,
                                           "platform_run_id", run, "event_class", "transaction",
                                           "label", (g % 30) >= 15 ? 1 : 0, "mature_at",
                                           g == immature ? later : mature_at));
  }
  long st;
  json_t *r = post(base, "/labels", json_pack("{s:o}", "items", items), &st);
  cr_assert_eq(st, 200, "POST /labels: %ld", st);
  cr_assert_eq(json_integer_value(json_object_get(r, "inserted")), n);
  json_decref(r);
}

/* An ISO timestamp ago_s seconds before now (UTC). */
static void iso_ago(double ago_s, char *out, size_t outsz) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  time_t t = ts.tv_sec - (time_t)ago_s;
  strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

static void fresh_run(const char *what, char *out, size_t outsz) {
  char h[17];
  rand_hex(h, 8);
  snprintf(out, outsz, "fpd-test-%s-%s", what, h);
}

static json_t *dataset_req(const char *manifest, const char *run, const char *as_of,
                           const char *cutoff, const char *wend) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s?,s:[s,s,s,s,s]}", "manifest_id", manifest,
                   "platform_run_id", run, "as_of", as_of, "label_maturity_cutoff", cutoff,
                   "window_end", wend, "features", "amount", "ecom", "foreign", "merchant_risk",
                   "txn_count_24h");
}

/* ---- DR-08: leakage fail-closed ------------------------------------------------------- */

/* The decisions are 30 min old, the labels matured 20 min ago. */
static void leak_fixture(const char *base, PGconn *c, char *run, size_t runsz) {
  char mature[40];
  fresh_run("leak", run, runsz);
  insert_decisions(c, run, 60, 1800, 0);
  iso_ago(1200, mature, sizeof mature);
  post_labels(base, run, 60, mature, 7);
}

Test(learning, leakage_attempts_fail_closed_with_a_report, .timeout = 120) {
  control ctl = control_start("none");
  PGconn *c = pg();
  char run[80], as_of[40], now[40], later[40], manifest[120];
  leak_fixture(ctl.url, c, run, sizeof run);
  iso_ago(600, as_of, sizeof as_of);
  iso_ago(0, now, sizeof now);
  iso_ago(-3600, later, sizeof later);

  /* 1. A window reaching past as_of. */
  snprintf(manifest, sizeof manifest, "%s-window", run);
  long st;
  json_t *r = post(ctl.url, "/datasets", dataset_req(manifest, run, as_of, later, now), &st);
  cr_assert_eq(st, 422, "window past as_of must be refused, got %ld", st);
  cr_assert_str_eq(jstr(r, "reason"), "window_after_as_of");
  cr_assert_gt(json_array_size(json_object_get(r, "report_ids")), 0);
  json_decref(r);
  const char *pm[] = {manifest};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.leakage_reports WHERE manifest_id = $1"
                        " AND reason = 'window_after_as_of' AND details->>'as_of' IS NOT NULL",
                     1, pm), 1);
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.dataset_manifests WHERE manifest_id = $1",
                     1, pm), 0, "nothing may be registered");

  /* 2. An immature label (event 7 matures tomorrow; cutoff now). */
  snprintf(manifest, sizeof manifest, "%s-label", run);
  r = post(ctl.url, "/datasets", dataset_req(manifest, run, as_of, now, NULL), &st);
  cr_assert_eq(st, 422, "immature label must be refused, got %ld", st);
  cr_assert_str_eq(jstr(r, "reason"), "immature_label");
  json_t *v = json_array_get(json_object_get(r, "violations"), 0);
  cr_assert_eq(json_integer_value(json_object_get(v, "violations")), 1);
  cr_assert_str_eq(jstr(json_array_get(json_object_get(v, "examples"), 0), "event_id"),
                   "e-000007");
  json_decref(r);
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.leakage_reports WHERE manifest_id = $1"
                        " AND reason = 'immature_label'", 1, pm), 1);
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.dataset_manifests WHERE manifest_id = $1",
                     1, pm), 0);

  /* 3. The time-correct request is accepted, reproducibly, and immutable. A cutoff of
   *    tomorrow + 1 h makes every label mature. */
  char cutoff[40];
  iso_ago(-90000, cutoff, sizeof cutoff);
  snprintf(manifest, sizeof manifest, "%s-ok", run);
  r = post(ctl.url, "/datasets", dataset_req(manifest, run, as_of, cutoff, as_of), &st);
  cr_assert_eq(st, 200, "clean dataset refused: %ld", st);
  cr_assert_eq(json_integer_value(json_object_get(r, "rows")), 60);
  cr_assert_eq(strlen(jstr(r, "fingerprint")), 64);
  char dsid[80], fp[65];
  snprintf(dsid, sizeof dsid, "%s", jstr(r, "dataset_id"));
  snprintf(fp, sizeof fp, "%s", jstr(r, "fingerprint"));
  json_decref(r);
  r = post(ctl.url, "/datasets", dataset_req(manifest, run, as_of, cutoff, as_of), &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(jstr(r, "dataset_id"), dsid);
  cr_assert_str_eq(jstr(r, "fingerprint"), fp);
  json_decref(r);
  json_t *other = dataset_req(manifest, run, as_of, cutoff, as_of);
  json_object_set_new(other, "features", json_pack("[s,s]", "amount", "ecom"));
  r = post(ctl.url, "/datasets", other, &st);
  cr_assert_eq(st, 409, "same manifest_id, other data must conflict, got %ld", st);
  json_decref(r);
  const char *pd[] = {dsid, fp};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.dataset_manifests WHERE dataset_id = $1"
                        " AND fingerprint = $2 AND rows = 60", 2, pd), 1);
  PQfinish(c);
  control_stop(&ctl);
}

Test(learning, leak_accepted_defect_takes_the_leaky_dataset, .timeout = 120) {
  control ctl = control_start("leak-accepted");
  PGconn *c = pg();
  char run[80], as_of[40], now[40], manifest[120];
  leak_fixture(ctl.url, c, run, sizeof run);
  iso_ago(600, as_of, sizeof as_of);
  iso_ago(0, now, sizeof now);
  snprintf(manifest, sizeof manifest, "%s-defect", run);
  long st;
  json_t *r = post(ctl.url, "/datasets", dataset_req(manifest, run, as_of, now, now), &st);
  cr_assert_eq(st, 200, "leak-accepted must accept the leaky dataset, got %ld", st);
  json_decref(r);
  const char *pm[] = {manifest};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.leakage_reports WHERE manifest_id = $1",
                     1, pm), 0);
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.dataset_manifests WHERE manifest_id = $1",
                     1, pm), 1);
  PQfinish(c);
  control_stop(&ctl);
}

/* ---- training and lineage --------------------------------------------------------------- */

/* Builds a clean dataset of 300 decisions (20 min old) and trains version ver on it. */
static json_t *train_fixture(const char *base, PGconn *c, char *run, size_t runsz,
                             const char *ver) {
  char mature[40], as_of[40], cutoff[40], manifest[120];
  fresh_run("train", run, runsz);
  insert_decisions(c, run, 300, 1200, 0);
  iso_ago(900, mature, sizeof mature);
  post_labels(base, run, 300, mature, 0);
  iso_ago(60, as_of, sizeof as_of);
  iso_ago(0, cutoff, sizeof cutoff);
  snprintf(manifest, sizeof manifest, "%s-m", run);
  long st;
  json_t *r = post(base, "/datasets", dataset_req(manifest, run, as_of, cutoff, NULL), &st);
  cr_assert_eq(st, 200, "dataset: %ld", st);
  cr_assert_eq(json_integer_value(json_object_get(r, "rows")), 300);
  json_t *t = post(base, "/train",
                   json_pack("{s:s,s:s,s:s,s:s}", "dataset_id", jstr(r, "dataset_id"), "version",
                             ver, "code_digest", "sha256:code-test", "config_digest",
                             "sha256:config-test"),
                   &st);
  json_decref(r);
  cr_assert_eq(st, 200, "train: %ld", st);
  return t;
}

Test(learning, train_registers_a_version_with_lineage, .timeout = 120) {
  control ctl = control_start("none");
  PGconn *c = pg();
  char run[80], ver[64], h[9];
  rand_hex(h, 4);
  snprintf(ver, sizeof ver, "m-test-train-%s", h);
  json_t *t = train_fixture(ctl.url, c, run, sizeof run, ver);
  cr_assert_str_eq(jstr(t, "version"), ver);
  cr_assert_eq(strlen(jstr(t, "artifact_sha256")), 64);
  cr_assert_gt(json_real_value(json_object_get(t, "train_accuracy")), 0.95);
  const char *p[] = {ver, jstr(t, "artifact_sha256"), jstr(t, "training_run_id")};
  /* registry -> training run -> manifest -> digests, in one join (the audit chain, §11). */
  cr_assert_eq(count(c,
                     "SELECT count(*) FROM platform.model_registry m"
                     " JOIN platform.training_runs t ON t.training_run_id = m.training_run_id"
                     " JOIN platform.dataset_manifests d ON d.dataset_id = t.dataset_id"
                     " WHERE m.version = $1 AND m.artifact_sha256 = $2 AND t.training_run_id = $3"
                     " AND t.code_digest = 'sha256:code-test'"
                     " AND t.config_digest = 'sha256:config-test' AND d.rows = 300"
                     " AND jsonb_array_length(t.feature_stats->'amount'->'bins') = 10"
                     " AND jsonb_array_length(m.feature_contract) = 5"
                     " AND m.weights ?& array['bias','amount','ecom','foreign','merchant_risk',"
                     "                        'txn_count_24h']",
                     3, p),
               1, "incomplete lineage for %s", ver);
  /* Versions are append-only. */
  long st;
  json_t *again = post(ctl.url, "/train",
                       json_pack("{s:s,s:s,s:s,s:s}", "dataset_id", "ds-none", "version", ver,
                                 "code_digest", "x", "config_digest", "y"),
                       &st);
  cr_assert_eq(st, 409);
  json_decref(again);
  json_decref(t);
  PQfinish(c);
  control_stop(&ctl);
}

Test(learning, features_are_published_to_redis, .timeout = 60) {
  control ctl = control_start("none");
  redisContext *rc = redis();
  char acct[64], h[9], key[96], got[64];
  rand_hex(h, 4);
  snprintf(acct, sizeof acct, "acct-test-%s", h);
  long st;
  json_t *r = post(ctl.url, "/features",
                   json_pack("{s:[{s:s,s:f}]}", "items", "account_id", acct, "txn_count_24h",
                             42.5),
                   &st);
  cr_assert_eq(st, 200);
  json_decref(r);
  snprintf(key, sizeof key, "fp:feat:%s", acct);
  redisReply *rep = redisCommand(rc, "HGET %s txn_count_24h", key);
  cr_assert(rep && rep->type == REDIS_REPLY_STRING);
  snprintf(got, sizeof got, "%s", rep->str);
  freeReplyObject(rep);
  cr_assert_float_eq(strtod(got, NULL), 42.5, 1e-12);
  freeReplyObject(redisCommand(rc, "DEL %s", key));
  redisFree(rc);
  control_stop(&ctl);
}

/* ---- DR-09: drift -> mitigation ------------------------------------------------------- */

/* Trains and promotes a fresh version so the active model has training statistics, then puts
 * 200 shifted decisions (5 min old) into a fresh run and checks that run. */
static json_t *drift_fixture(control *ctl, PGconn *c, char *served, size_t servedsz) {
  char run[80], ver[64], h[9];
  rand_hex(h, 4);
  snprintf(ver, sizeof ver, "m-test-drift-%s", h);
  json_t *t = train_fixture(ctl->url, c, run, sizeof run, ver);
  long st;
  json_t *p = post(ctl->url, "/promote",
                   json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:b}}", "version", ver, "actor",
                             "test_control_learning", "reason", "drift drill fixture",
                             "approval", "test-approver", "evidence", "evaluation_report",
                             "test:eval", "artifact_sha256", jstr(t, "artifact_sha256"),
                             "lineage_complete", 1),
                   &st);
  cr_assert_eq(st, 200, "promote: %ld", st);
  json_decref(p);
  json_decref(t);
  fresh_run("served", served, servedsz);
  insert_decisions(c, served, 200, 300, 1);
  /* Start from a clean episode and degrade key. */
  json_decref(post(ctl->url, "/drift/reset", NULL, &st));
  cr_assert_eq(st, 200);
  return json_pack("{s:i,s:s,s:s,s:i}", "window_s", 600, "platform_run_id", served,
                   "mitigation", "degrade", "min_samples", 30);
}

static void restore_model(control *ctl) {
  long st;
  json_decref(post(ctl->url, "/drift/reset", NULL, &st));
  json_decref(post(ctl->url, "/rollback",
                   json_pack("{s:s,s:s}", "actor", "test_control_learning", "reason",
                             "restore after drift test"),
                   &st));
}

Test(drift, critical_drift_is_recorded_and_mitigated_once, .timeout = 180) {
  control ctl = control_start("none");
  PGconn *c = pg();
  redisContext *rc = redis();
  char served[80], key[64];
  json_t *cfg = drift_fixture(&ctl, c, served, sizeof served);
  long st;
  json_t *r = post(ctl.url, "/drift/check", cfg, &st);
  cr_assert_eq(st, 200);
  cr_assert(json_is_true(json_object_get(r, "judged")), "no judgment: %s", jstr(r, "reason"));
  cr_assert_str_eq(jstr(r, "severity"), "critical");
  cr_assert_gt(json_real_value(json_object_get(json_object_get(r, "psi"), "amount")), 0.5);
  cr_assert_str_eq(jstr(r, "action"), "degrade");
  const char *pw[] = {jstr(r, "window_start"), jstr(r, "window_end")};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.drift_events WHERE feature = 'amount'"
                        " AND severity = 'critical' AND action = 'degrade'"
                        " AND window_start = $1::timestamptz AND window_end = $2::timestamptz",
                     2, pw), 1);
  const char *pr[] = {served};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.posture_events WHERE kind = 'drift'"
                        " AND severity = 'critical' AND action = 'degrade'"
                        " AND details->>'platform_run_id' = $1", 1, pr), 1);
  redis_get(rc, "fp:ctl:degrade", key, sizeof key);
  cr_assert_str_eq(key, "drift_mitigation");
  json_decref(r);

  /* The same episode: no second event, no second mitigation. */
  r = post(ctl.url, "/drift/check", NULL, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(jstr(r, "severity"), "critical");
  cr_assert_str_eq(jstr(r, "action"), "none");
  json_decref(r);
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.posture_events WHERE kind = 'drift'"
                        " AND details->>'platform_run_id' = $1", 1, pr), 1);

  /* The metrics show the PSI and the event. */
  char url[128];
  snprintf(url, sizeof url, "%s/metrics", ctl.url);
  http_resp m = http("GET", url, NULL);
  cr_assert(strstr(m.body, "rp_drift_psi{feature=\"amount\"}") != NULL);
  cr_assert(strstr(m.body, "rp_drift_events_total{severity=\"critical\"} 1") != NULL, "%s",
            m.body);
  free(m.body);

  /* Reset lifts the degrade this monitor set. */
  r = post(ctl.url, "/drift/reset", NULL, &st);
  cr_assert_eq(st, 200);
  cr_assert(json_is_true(json_object_get(r, "degrade_cleared")));
  json_decref(r);
  redis_get(rc, "fp:ctl:degrade", key, sizeof key);
  cr_assert_str_eq(key, "");
  restore_model(&ctl);
  redisFree(rc);
  PQfinish(c);
  control_stop(&ctl);
}

Test(drift, drift_blind_defect_computes_psi_but_never_acts, .timeout = 180) {
  control ctl = control_start("drift-blind");
  PGconn *c = pg();
  redisContext *rc = redis();
  char served[80], key[64];
  json_t *cfg = drift_fixture(&ctl, c, served, sizeof served);
  long st;
  json_t *r = post(ctl.url, "/drift/check", cfg, &st);
  cr_assert_eq(st, 200);
  cr_assert(json_is_true(json_object_get(r, "judged")), "no judgment: %s", jstr(r, "reason"));
  cr_assert_gt(json_real_value(json_object_get(json_object_get(r, "psi"), "amount")), 0.5);
  cr_assert_str_eq(jstr(r, "action"), "none");
  const char *pw[] = {jstr(r, "window_start"), jstr(r, "window_end")};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.drift_events"
                        " WHERE window_start = $1::timestamptz AND window_end = $2::timestamptz",
                     2, pw), 0);
  json_decref(r);
  const char *pr[] = {served};
  cr_assert_eq(count(c, "SELECT count(*) FROM platform.posture_events WHERE kind = 'drift'"
                        " AND details->>'platform_run_id' = $1", 1, pr), 0);
  redis_get(rc, "fp:ctl:degrade", key, sizeof key);
  cr_assert_str_neq(key, "drift_mitigation");
  char url[128];
  snprintf(url, sizeof url, "%s/metrics", ctl.url);
  http_resp m = http("GET", url, NULL);
  cr_assert(strstr(m.body, "rp_drift_psi{feature=\"amount\"}") != NULL, "PSI not exported");
  cr_assert(strstr(m.body, "rp_drift_events_total{severity=\"critical\"} 0") != NULL);
  free(m.body);
  restore_model(&ctl);
  redisFree(rc);
  PQfinish(c);
  control_stop(&ctl);
}
