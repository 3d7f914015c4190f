/* Integration tests of the running reference platform (rp-ingress, rp-decider) against the real
 * local stack, found through the stack's endpoints.env (FPDRILL_STATE). They check the contract
 * end to end: receipts carry the origin offset and land in admission_receipts, retries are
 * duplicates, a changed payload is a conflict with an anomaly row, every invalid or oversize
 * event has its quarantine row, the rate limit and its Redis override, one decision per admitted
 * event carrying its features and latency, the degrade ladder's control key with its posture
 * events, /metrics, and pause really taking the consumer out of its group. A missing server is
 * a failure, never a skip: a drill suite that silently skips its platform checks proves nothing.
 * Every Redis key a test sets is restored by the test. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "rp_core.h"
#include "tests/integration/it_util.h"

#define TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* ---- plumbing ------------------------------------------------------------------------- */

/* "<ingress url><path>" / "<decider url><path>" from endpoints.env; static storage per call site
 * is not needed: callers use the result immediately. */
static char *url_of(const char *key, const char *path) {
  static char buf[4][512];
  static int next;
  char *base = it_endpoint(key);
  char *out = buf[next++ % 4];
  snprintf(out, sizeof buf[0], "%s%s", base, path);
  free(base);
  return out;
}
#define INGRESS(path) url_of("FPD_INGRESS_URL", path)
#define DECIDER(path) url_of("FPD_DECIDER_URL", path)

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

typedef struct {
  char *retry_after;
} http_hdrs;

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  http_hdrs *h = ud;
  size_t len = sz * n;
  if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
    free(h->retry_after);
    h->retry_after = strndup(p + 12, len - 12);
    char *e = h->retry_after + strcspn(h->retry_after, "\r\n");
    *e = '\0';
  }
  return len;
}

/* status 0 means the server could not be reached. `tuple` (run, class, event) sets the X-*
 * headers the harness sends on every event. */
static http_resp http_ex(const char *method, const char *url, const char *body,
                         const char *const *tuple, http_hdrs *hdrs) {
  http_resp r = {0};
  CURL *c = curl_easy_init();
  cr_assert_not_null(c);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "traceparent: " TRACEPARENT);
  if (tuple) {
    char line[512];
    snprintf(line, sizeof line, "X-Platform-Run-Id: %s", tuple[0]);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-Event-Class: %s", tuple[1]);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-Event-Id: %s", tuple[2]);
    h = curl_slist_append(h, line);
  }
  if (hdrs) {
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hdrs);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  CURLcode e = curl_easy_perform(c);
  if (e == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  else cr_log_error("%s %s: %s", method, url, curl_easy_strerror(e));
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (!r.body) r.body = strdup("");
  return r;
}

static http_resp http(const char *method, const char *url, const char *body) {
  return http_ex(method, url, body, NULL, NULL);
}

static json_t *resp_json(const http_resp *r) {
  json_t *j = json_loads(r->body, 0, NULL);
  cr_assert_not_null(j, "response is not JSON (status %ld): %s", r->status, r->body);
  return j;
}

static const char *jstr(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static void unique_id(char *out, size_t n, const char *prefix) {
  unsigned char b[6];
  cr_assert_eq(getrandom(b, sizeof b, 0), (ssize_t)sizeof b);
  snprintf(out, n, "%s-%ld-%02x%02x%02x%02x%02x%02x", prefix, (long)time(NULL), b[0], b[1], b[2],
           b[3], b[4], b[5]);
}

static char *event_body_acct(const char *run, const char *eid, long long amount,
                             const char *channel, const char *account) {
  char *s = NULL;
  cr_assert(asprintf(&s,
                     "{\"schema_version\":\"1.0\",\"platform_run_id\":\"%s\",\"scenario_run_id\":"
                     "\"it\",\"phase_id\":\"test\",\"runtime_lane\":\"drill\",\"event_class\":"
                     "\"transaction\",\"event_id\":\"%s\",\"occurred_at\":"
                     "\"2026-11-23T18:22:01.123Z\",\"payload\":{\"account_id\":\"%s\","
                     "\"amount_minor\":%lld,\"currency\":\"EUR\",\"merchant_id\":\"m-003\","
                     "\"channel\":\"%s\",\"country\":\"DE\"}}",
                     run, eid, account, amount, channel) > 0);
  return s;
}

static char *event_body(const char *run, const char *eid, long long amount, const char *channel) {
  char *s = NULL;
  cr_assert(asprintf(&s,
                     "{\"schema_version\":\"1.0\",\"platform_run_id\":\"%s\",\"scenario_run_id\":"
                     "\"it\",\"phase_id\":\"test\",\"runtime_lane\":\"drill\",\"event_class\":"
                     "\"transaction\",\"event_id\":\"%s\",\"occurred_at\":"
                     "\"2026-11-23T18:22:01.123Z\",\"payload\":{\"account_id\":\"acct-it\","
                     "\"amount_minor\":%lld,\"currency\":\"EUR\",\"merchant_id\":\"m-003\","
                     "\"channel\":\"%s\",\"country\":\"DE\"}}",
                     run, eid, amount, channel) > 0);
  return s;
}

static PGconn *pg(void) {
  char conninfo[1024], *password = NULL;
  it_pg_conninfo(conninfo, sizeof conninfo, &password);
  const char *keys[] = {"dbname", "password", "connect_timeout", NULL};
  const char *vals[] = {conninfo, password, "5", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  free(password);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
  return c;
}

static redisContext *redis(void) {
  char *h = it_endpoint("FPD_REDIS_HOST"), *p = it_endpoint("FPD_REDIS_PORT");
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout(h, atoi(p), tv);
  cr_assert(c && !c->err, "Redis %s:%s: %s", h, p, c ? c->errstr : "alloc");
  free(h);
  free(p);
  return c;
}

/* Runs a Redis command that must succeed (SET / DEL / HSET). */
static void redis_do(const char *fmt, const char *a, const char *b) {
  redisContext *c = redis();
  redisReply *r = redisCommand(c, fmt, a, b);
  cr_assert(r && r->type != REDIS_REPLY_ERROR, "redis %s: %s", fmt, r ? r->str : c->errstr);
  freeReplyObject(r);
  redisFree(c);
}

static long count_rows(PGconn *c, const char *table, const char *run, const char *eid) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM platform.%s WHERE platform_run_id = $1 AND event_id = $2", table);
  const char *p[] = {run, eid};
  PGresult *r = PQexecParams(c, sql, 2, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  long n = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  return n;
}

/* Polls until `table` has at least one row for the event or `secs` passed; returns the count. */
static long wait_rows(PGconn *c, const char *table, const char *run, const char *eid, int secs) {
  long n = 0;
  for (int i = 0; i < secs * 10 && (n = count_rows(c, table, run, eid)) == 0; i++) usleep(100000);
  return n;
}

static json_t *admit_ok(const char *body, long want_status) {
  http_resp r = http("POST", INGRESS("/v1/events"), body);
  cr_assert_eq(r.status, want_status, "POST /v1/events: %ld %s", r.status, r.body);
  json_t *j = resp_json(&r);
  free(r.body);
  return j;
}

/* ---- tests ---------------------------------------------------------------------------- */

Test(stack, servers_are_up) {
  http_resp r = http("GET", INGRESS("/health"), NULL);
  cr_assert_eq(r.status, 200, "rp-ingress /health: %ld %s", r.status, r.body);
  json_t *j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "status"), "ok");
  json_decref(j);
  free(r.body);
  r = http("GET", DECIDER("/health"), NULL);
  cr_assert_eq(r.status, 200, "rp-decider /health: %ld %s", r.status, r.body);
  j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "running", "decider left paused? %s", r.body);
  cr_assert_not_null(jstr(j, "model_version"), "%s", r.body);
  json_decref(j);
  free(r.body);
  PQfinish(pg());
}

Test(ingress, admit_duplicate_conflict_and_one_decision) {
  char run[64], eid[64];
  unique_id(run, sizeof run, "it-run");
  unique_id(eid, sizeof eid, "e");
  char *body = event_body(run, eid, 1234, "card_present");
  rp_event ev;
  char d[256];
  cr_assert_eq(rp_event_parse(body, strlen(body), &ev, d, sizeof d), RP_OK);

  json_t *rc = admit_ok(body, 202);
  cr_assert_str_eq(jstr(rc, "status"), "accepted");
  cr_assert_str_eq(jstr(rc, "topic"), RP_TOPIC);
  cr_assert_str_eq(jstr(rc, "payload_hash"), ev.payload_hash);
  cr_assert_str_eq(jstr(rc, "event_id"), eid);
  json_int_t part = json_integer_value(json_object_get(rc, "partition"));
  json_int_t off = json_integer_value(json_object_get(rc, "offset"));
  cr_assert(json_is_integer(json_object_get(rc, "offset")) && off >= 0, "offset missing");
  cr_assert(part >= 0 && part < RP_TOPIC_PARTITIONS, "partition %lld", (long long)part);
  cr_assert_eq(strlen(jstr(rc, "admitted_at")), 24, "admitted_at %s", jstr(rc, "admitted_at"));

  json_t *dup = admit_ok(body, 200);
  cr_assert_str_eq(jstr(dup, "status"), "duplicate");
  cr_assert_str_eq(jstr(dup, "receipt_id"), jstr(rc, "receipt_id"));
  cr_assert_eq(json_integer_value(json_object_get(dup, "offset")), off);
  cr_assert_eq(json_integer_value(json_object_get(dup, "partition")), part);

  char *changed = event_body(run, eid, 1235, "card_present");
  json_t *cf = admit_ok(changed, 409);
  cr_assert_str_eq(jstr(cf, "status"), "conflict");
  cr_assert_str_eq(jstr(cf, "reason"), "payload_hash_mismatch");

  PGconn *c = pg();
  long n = wait_rows(c, "decision_log", run, eid, 15);
  cr_assert_eq(n, 1, "decision rows for %s/%s after <=15 s: %ld", run, eid, n);
  usleep(500000); /* a late duplicate would land within this margin */
  const char *p[] = {run, eid};
  PGresult *r = PQexecParams(c,
                             "SELECT origin_topic, origin_partition, origin_offset, payload_hash,"
                             " outcome, trace_id, phase_id, degraded::text, bundle_digest FROM"
                             " platform.decision_log WHERE platform_run_id = $1 AND event_id = $2",
                             2, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  cr_assert_eq(PQntuples(r), 1, "exactly one decision, got %d", PQntuples(r));
  cr_assert_str_eq(PQgetvalue(r, 0, 0), RP_TOPIC);
  cr_assert_eq(atoll(PQgetvalue(r, 0, 1)), part);
  cr_assert_eq(atoll(PQgetvalue(r, 0, 2)), off);
  cr_assert_str_eq(PQgetvalue(r, 0, 3), ev.payload_hash);
  cr_assert_str_eq(PQgetvalue(r, 0, 4), "approve");
  cr_assert_str_eq(PQgetvalue(r, 0, 5), "0af7651916cd43dd8448eb211c80319c");
  cr_assert_str_eq(PQgetvalue(r, 0, 6), "test");
  cr_assert_str_eq(PQgetvalue(r, 0, 7), "false");
  cr_assert_eq(strlen(PQgetvalue(r, 0, 8)), 64);
  PQclear(r);
  cr_assert_eq(count_rows(c, "cases", run, eid), 0, "a low score must not open a case");
  PQfinish(c);
  json_decref(rc);
  json_decref(dup);
  json_decref(cf);
  rp_event_free(&ev);
  free(body);
  free(changed);
}

/* Rows of platform.quarantine for the tuple, as "reason|event_id|payload_hash?" lines. */
static long quarantine_rows(PGconn *c, const char *run, const char *eid, const char *reason) {
  const char *p[] = {run, eid, reason};
  PGresult *r = PQexecParams(c,
                             "SELECT count(*) FROM platform.quarantine WHERE platform_run_id = $1"
                             " AND event_id IS NOT DISTINCT FROM $2 AND reason = $3",
                             3, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  long n = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  return n;
}

/* Posts an invalid body carrying the X-* tuple; expects `status` with `reason` and exactly one
 * quarantine row for it, written before the reply. */
static void expect_quarantined(PGconn *c, const char *run, const char *eid, const char *body,
                               long status, const char *reason) {
  const char *tuple[] = {run, "transaction", eid};
  http_resp r = http_ex("POST", INGRESS("/v1/events"), body, tuple, NULL);
  cr_assert_eq(r.status, status, "%s: %ld %s", reason, r.status, r.body);
  json_t *j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "status"), "rejected");
  cr_assert_str_eq(jstr(j, "reason"), reason, "body %s", r.body);
  cr_assert_not_null(jstr(j, "detail"));
  json_decref(j);
  free(r.body);
  /* no polling: the row must be durable before the reply */
  cr_assert_eq(quarantine_rows(c, run, eid, reason), 1, "quarantine row for %s/%s", eid, reason);
}

Test(ingress, quarantine_row_per_invalid_kind) {
  char run[64];
  unique_id(run, sizeof run, "it-q");
  PGconn *c = pg();
  expect_quarantined(c, run, "q-malformed", "{\"schema_version\":\"1.0\",", 400,
                     "malformed_json");
  char *b = NULL;
  cr_assert(asprintf(&b, "{\"schema_version\":\"1.0\",\"platform_run_id\":\"%s\",\"event_class\":"
                         "\"transaction\",\"event_id\":\"q-missing\",\"payload\":{\"account_id\":"
                         "\"a\",\"currency\":\"EUR\"}}", run) > 0);
  expect_quarantined(c, run, "q-missing", b, 400, "missing_field");
  free(b);
  cr_assert(asprintf(&b, "{\"schema_version\":\"1.0\",\"platform_run_id\":\"%s\",\"event_class\":"
                         "\"transaction\",\"event_id\":\"q-type\",\"payload\":{\"account_id\":"
                         "\"a\",\"amount_minor\":\"1\",\"currency\":\"EUR\"}}", run) > 0);
  expect_quarantined(c, run, "q-type", b, 400, "wrong_type");
  free(b);
  cr_assert(asprintf(&b, "{\"schema_version\":\"1.1\",\"platform_run_id\":\"%s\",\"event_class\":"
                         "\"transaction\",\"event_id\":\"q-device\",\"payload\":{\"account_id\":"
                         "\"a\",\"amount_minor\":1,\"currency\":\"EUR\",\"device_id\":5}}", run) > 0);
  expect_quarantined(c, run, "q-device", b, 400, "wrong_type");
  free(b);
  cr_assert(asprintf(&b, "{\"schema_version\":\"2.0\",\"platform_run_id\":\"%s\",\"event_class\":"
                         "\"transaction\",\"event_id\":\"q-version\",\"payload\":{\"account_id\":"
                         "\"a\",\"amount_minor\":1,\"currency\":\"EUR\"}}", run) > 0);
  expect_quarantined(c, run, "q-version", b, 400, "unsupported_version");
  free(b);

  size_t big = RP_MAX_BODY + 16;
  b = malloc(big + 1);
  memset(b, ' ', big);
  b[big] = '\0';
  expect_quarantined(c, run, "q-oversize", b, 413, "oversize");
  free(b);

  /* a valid 1.1 event with a device_id is admitted and quarantined nowhere */
  cr_assert(asprintf(&b, "{\"schema_version\":\"1.1\",\"platform_run_id\":\"%s\",\"event_class\":"
                         "\"transaction\",\"event_id\":\"q-valid\",\"payload\":{\"account_id\":"
                         "\"acct-q\",\"amount_minor\":100,\"currency\":\"EUR\",\"device_id\":"
                         "\"dev-1\"}}", run) > 0);
  json_t *rc = admit_ok(b, 202);
  free(b);
  const char *p[] = {run};
  PGresult *r = PQexecParams(c,
                             "SELECT count(*), count(*) FILTER (WHERE event_id = 'q-valid'),"
                             " count(DISTINCT reason) FROM platform.quarantine WHERE"
                             " platform_run_id = $1", 1, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  cr_assert_eq(atol(PQgetvalue(r, 0, 0)), 6, "one row per invalid event");
  cr_assert_eq(atol(PQgetvalue(r, 0, 1)), 0, "a valid event is never quarantined");
  cr_assert_eq(atol(PQgetvalue(r, 0, 2)), 5, "all five reasons");
  PQclear(r);
  /* the receipt of the valid event reaches admission_receipts (written off the hot path) */
  const char *rp[] = {jstr(rc, "receipt_id")};
  long n = 0;
  for (int i = 0; i < 50 && n == 0; i++) {
    r = PQexecParams(c, "SELECT count(*) FROM platform.admission_receipts WHERE receipt_id = $1",
                     1, NULL, rp, NULL, NULL, 0);
    n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!n) usleep(100000);
  }
  cr_assert_eq(n, 1, "admission receipt row within 5 s");
  json_decref(rc);

  http_resp h = http("GET", INGRESS("/v1/events"), NULL);
  cr_assert_eq(h.status, 405);
  free(h.body);
  h = http("GET", INGRESS("/nope"), NULL);
  cr_assert_eq(h.status, 404);
  free(h.body);
  PQfinish(c);
}

Test(ingress, conflict_writes_an_anomaly) {
  char run[64], eid[64];
  unique_id(run, sizeof run, "it-an");
  unique_id(eid, sizeof eid, "e");
  char *one = event_body(run, eid, 100, "card_present"), *two = event_body(run, eid, 101, "ecom");
  json_t *rc = admit_ok(one, 202);
  json_t *cf = admit_ok(two, 409);
  cr_assert_str_eq(jstr(cf, "reason"), "payload_hash_mismatch");
  PGconn *c = pg();
  const char *p[] = {run, eid};
  PGresult *r = PQexecParams(c,
                             "SELECT kind, original_hash, conflicting_hash FROM platform.anomalies"
                             " WHERE platform_run_id = $1 AND event_id = $2",
                             2, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  cr_assert_eq(PQntuples(r), 1, "one anomaly row");
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "payload_hash_mismatch");
  cr_assert_str_eq(PQgetvalue(r, 0, 1), jstr(rc, "payload_hash"));
  cr_assert_str_eq(PQgetvalue(r, 0, 2), jstr(cf, "payload_hash"));
  PQclear(r);
  PQfinish(c);
  json_decref(rc);
  json_decref(cf);
  free(one);
  free(two);
}

static void restore_rate_limit(void) { redis_do("DEL %s", "fp:ctl:ingress_rate_limit", NULL); }

/* Sends n events (fresh ids) as fast as possible; returns how many got 429, checking that every
 * 429 carries Retry-After: 1. */
static int burst(const char *run, int n) {
  int limited = 0;
  for (int i = 0; i < n; i++) {
    char eid[64];
    unique_id(eid, sizeof eid, "rl");
    char *b = event_body(run, eid, 100, "card_present");
    http_hdrs h = {0};
    http_resp r = http_ex("POST", INGRESS("/v1/events"), b, NULL, &h);
    cr_assert(r.status == 202 || r.status == 429, "status %ld %s", r.status, r.body);
    if (r.status == 429) {
      limited++;
      cr_assert_not_null(h.retry_after, "429 without Retry-After");
      cr_assert_eq(atoi(h.retry_after), 1, "Retry-After: %s", h.retry_after);
    }
    free(h.retry_after);
    free(r.body);
    free(b);
  }
  return limited;
}

Test(ingress, rate_limit_and_its_override, .fini = restore_rate_limit) {
  char run[64];
  unique_id(run, sizeof run, "it-rl");
  /* 3/s with a burst of at most 3: twenty back-to-back events must meet the bucket's edge */
  redis_do("SET %s %s", "fp:ctl:ingress_rate_limit", "3");
  usleep(1200000); /* re-read at least once a second */
  int limited = burst(run, 20);
  cr_assert_geq(limited, 10, "only %d of 20 over a 3/s bucket were limited", limited);
  redis_do("SET %s %s", "fp:ctl:ingress_rate_limit", "0");
  usleep(1200000);
  cr_assert_eq(burst(run, 5), 5, "a limit of 0 admits nothing");
  redis_do("DEL %s", "fp:ctl:ingress_rate_limit", NULL);
  usleep(1200000);
  cr_assert_eq(burst(run, 5), 0, "the flag's limit is back once the key is deleted");
  http_resp r = http("GET", INGRESS("/metrics"), NULL);
  cr_assert(strstr(r.body, "rp_ingress_requests_total{status=\"429\"}"), "%s", r.body);
  cr_assert(strstr(r.body, "\nrp_ingress_rate_limit "), "%s", r.body);
  free(r.body);
}

Test(decider, high_score_opens_exactly_one_case) {
  char run[64], eid[64];
  unique_id(run, sizeof run, "it-run");
  unique_id(eid, sizeof eid, "e-big");
  char *body = event_body(run, eid, 900000, "ecom");
  json_t *rc = admit_ok(body, 202);
  json_t *dup = admit_ok(body, 200);
  PGconn *c = pg();
  cr_assert_eq(wait_rows(c, "cases", run, eid, 15), 1, "one case within 15 s");
  usleep(500000);
  cr_assert_eq(count_rows(c, "decision_log", run, eid), 1);
  cr_assert_eq(count_rows(c, "cases", run, eid), 1);
  const char *p[] = {run, eid};
  PGresult *r = PQexecParams(c,
                             "SELECT d.outcome, c.decision_id = d.decision_id FROM"
                             " platform.decision_log d JOIN platform.cases c USING"
                             " (platform_run_id, event_class, event_id) WHERE"
                             " d.platform_run_id = $1 AND d.event_id = $2",
                             2, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQntuples(r), 1);
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "decline");
  cr_assert_str_eq(PQgetvalue(r, 0, 1), "t", "case points at its decision");
  PQclear(r);
  PQfinish(c);
  json_decref(rc);
  json_decref(dup);
  free(body);
}

/* Asks the broker whether fp-decision has members: pausing must really leave the group so the
 * harness can reset the group's offsets. */
static int group_members(void) {
  char err[256];
  char *kafka = it_endpoint("FPD_KAFKA_BOOTSTRAP");
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", kafka, err, sizeof err),
               RD_KAFKA_CONF_OK);
  free(kafka);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  cr_assert_not_null(rk, "%s", err);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  const char *groups[] = {RP_GROUP};
  rd_kafka_DescribeConsumerGroups(rk, groups, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
  cr_assert_not_null(ev, "DescribeConsumerGroups timed out");
  cr_assert_eq(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR, "%s",
               rd_kafka_event_error_string(ev));
  size_t n = 0;
  const rd_kafka_ConsumerGroupDescription_t **g =
      rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
  cr_assert_eq(n, 1);
  cr_assert_null(rd_kafka_ConsumerGroupDescription_error(g[0]));
  int members = (int)rd_kafka_ConsumerGroupDescription_member_count(g[0]);
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  return members;
}

static void resume_decider(void) {
  http_resp r = http("POST", DECIDER("/control/resume"), NULL);
  free(r.body);
}

Test(decider, pause_leaves_the_group_and_resume_catches_up, .fini = resume_decider) {
  http_resp r = http("POST", DECIDER("/control/pause"), NULL);
  cr_assert_eq(r.status, 200, "pause: %ld %s", r.status, r.body);
  json_t *j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "paused");
  json_decref(j);
  free(r.body);
  r = http("POST", DECIDER("/control/pause"), NULL);
  cr_assert_eq(r.status, 200, "pause is idempotent: %ld", r.status);
  free(r.body);
  r = http("GET", DECIDER("/health"), NULL);
  j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "paused");
  json_decref(j);
  free(r.body);
  cr_assert_eq(group_members(), 0, "the paused decider is still a member of %s", RP_GROUP);

  char run[64], eid[64];
  unique_id(run, sizeof run, "it-run");
  unique_id(eid, sizeof eid, "e-paused");
  char *body = event_body(run, eid, 2500, "card_present");
  json_t *rc = admit_ok(body, 202);
  PGconn *c = pg();
  sleep(3);
  cr_assert_eq(count_rows(c, "decision_log", run, eid), 0, "decided while paused");

  r = http("POST", DECIDER("/control/resume"), NULL);
  cr_assert_eq(r.status, 200, "resume: %ld %s", r.status, r.body);
  j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "running");
  json_decref(j);
  free(r.body);
  r = http("POST", DECIDER("/control/resume"), NULL);
  cr_assert_eq(r.status, 200, "resume is idempotent: %ld", r.status);
  free(r.body);
  cr_assert_eq(wait_rows(c, "decision_log", run, eid, 15), 1, "not decided within 15 s of resume");
  PQfinish(c);
  json_decref(rc);
  free(body);
}

Test(decider, control_routes) {
  http_resp r = http("GET", DECIDER("/control/pause"), NULL);
  cr_assert_eq(r.status, 405);
  free(r.body);
  r = http("GET", DECIDER("/nope"), NULL);
  cr_assert_eq(r.status, 404);
  free(r.body);
}

/* ---- decisions: features, latency, degrade ------------------------------------------------ */

/* Admits one event for `account` and returns its decision row (waits up to 15 s):
 * degraded, degrade_reason, model_version, features::text, decision_latency_ms. */
static PGresult *decide_one(PGconn *c, const char *run, const char *account, char *eid,
                            size_t eidsz) {
  unique_id(eid, eidsz, "e-dec");
  char *b = event_body_acct(run, eid, 12345, "ecom", account);
  json_t *rc = admit_ok(b, 202);
  json_decref(rc);
  free(b);
  cr_assert_eq(wait_rows(c, "decision_log", run, eid, 15), 1, "decision for %s within 15 s", eid);
  const char *p[] = {run, eid};
  PGresult *r = PQexecParams(c,
                             "SELECT degraded::text, coalesce(degrade_reason, ''), model_version,"
                             " features::text, decision_latency_ms FROM platform.decision_log"
                             " WHERE platform_run_id = $1 AND event_id = $2",
                             2, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  cr_assert_eq(PQntuples(r), 1);
  return r;
}

static char feat_key[128];
static void restore_feature(void) {
  if (feat_key[0]) redis_do("DEL %s", feat_key, NULL);
}

Test(decider, decision_carries_features_and_latency, .fini = restore_feature) {
  char run[64], acct[64], eid[64];
  unique_id(run, sizeof run, "it-feat");
  unique_id(acct, sizeof acct, "acct-f");
  snprintf(feat_key, sizeof feat_key, "fp:feat:%s", acct);
  redisContext *rc = redis();
  redisReply *rr = redisCommand(rc, "HSET %s txn_count_24h 7", feat_key);
  cr_assert(rr && rr->type == REDIS_REPLY_INTEGER);
  freeReplyObject(rr);
  redisFree(rc);
  PGconn *c = pg();
  PGresult *r = decide_one(c, run, acct, eid, sizeof eid);
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "false", "reason %s", PQgetvalue(r, 0, 1));
  json_t *f = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
  cr_assert_not_null(f, "features: %s", PQgetvalue(r, 0, 3));
  cr_assert_float_eq(json_number_value(json_object_get(f, "txn_count_24h")), 7.0, 1e-9);
  cr_assert_float_eq(json_number_value(json_object_get(f, "ecom")), 1.0, 1e-9);
  cr_assert_float_eq(json_number_value(json_object_get(f, "amount")), log10(1 + 123.45), 1e-9);
  cr_assert(json_is_number(json_object_get(f, "foreign")));
  cr_assert(json_is_number(json_object_get(f, "merchant_risk")));
  json_decref(f);
  double lat = atof(PQgetvalue(r, 0, 4));
  cr_assert(!PQgetisnull(r, 0, 4) && lat > 0 && lat < 5000, "decision_latency_ms %f", lat);
  PQclear(r);

  /* the key deleted: an answer without history is txn_count_24h = 0, not a degrade */
  redis_do("DEL %s", feat_key, NULL);
  r = decide_one(c, run, acct, eid, sizeof eid);
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "false", "a missing key degraded: %s",
                   PQgetvalue(r, 0, 1));
  cr_assert(strstr(PQgetvalue(r, 0, 3), "\"txn_count_24h\": 0") ||
                strstr(PQgetvalue(r, 0, 3), "\"txn_count_24h\":0"),
            "features %s", PQgetvalue(r, 0, 3));
  cr_assert_null(strstr(PQgetvalue(r, 0, 2), "+fallback"));
  PQclear(r);
  PQfinish(c);
}

static void restore_degrade(void) { redis_do("DEL %s", "fp:ctl:degrade", NULL); }

/* Posture rows of `kind` with `reason` and `action` written after `since` (a timestamptz). */
static long posture_rows(PGconn *c, const char *since, const char *kind, const char *reason,
                         const char *action) {
  const char *p[] = {since, kind, reason, action};
  PGresult *r = PQexecParams(c,
                             "SELECT count(*) FROM platform.posture_events WHERE at >= $1::timestamptz"
                             " AND kind = $2 AND reason = $3 AND action = $4",
                             4, NULL, p, NULL, NULL, 0);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
  long n = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  return n;
}

Test(decider, ctl_degrade_flags_decisions_and_posture, .fini = restore_degrade) {
  char run[64], acct[64], eid[64], reason[64], since[64];
  unique_id(run, sizeof run, "it-dg");
  unique_id(acct, sizeof acct, "acct-dg");
  unique_id(reason, sizeof reason, "it_degrade");
  PGconn *c = pg();
  PGresult *t = PQexec(c, "SELECT clock_timestamp()::text");
  snprintf(since, sizeof since, "%s", PQgetvalue(t, 0, 0));
  PQclear(t);
  redis_do("SET %s %s", "fp:ctl:degrade", reason);
  usleep(1200000); /* re-read at least once a second */
  PGresult *r = decide_one(c, run, acct, eid, sizeof eid);
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "true", "not degraded under fp:ctl:degrade");
  cr_assert_str_eq(PQgetvalue(r, 0, 1), reason);
  size_t vl = strlen(PQgetvalue(r, 0, 2));
  cr_assert(vl > 9 && strcmp(PQgetvalue(r, 0, 2) + vl - 9, "+fallback") == 0, "model_version %s",
            PQgetvalue(r, 0, 2));
  PQclear(r);
  cr_assert_eq(posture_rows(c, since, "degrade", reason, "enter"), 1, "one enter posture row");
  /* a second degraded decision is the same state: no new posture row */
  r = decide_one(c, run, acct, eid, sizeof eid);
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "true");
  PQclear(r);
  cr_assert_eq(posture_rows(c, since, "degrade", reason, "enter"), 1, "posture per change only");
  http_resp m = http("GET", DECIDER("/metrics"), NULL);
  cr_assert(strstr(m.body, "\nrp_degraded 1\n"), "%s", m.body);
  free(m.body);

  redis_do("DEL %s", "fp:ctl:degrade", NULL);
  usleep(1200000);
  r = decide_one(c, run, acct, eid, sizeof eid);
  cr_assert_str_eq(PQgetvalue(r, 0, 0), "false", "still degraded: %s", PQgetvalue(r, 0, 1));
  PQclear(r);
  cr_assert_eq(posture_rows(c, since, "degrade", reason, "exit"), 1, "one exit posture row");
  PQfinish(c);
}

static void expect_families(const char *url, const char *const *families) {
  http_resp r = http("GET", url, NULL);
  cr_assert_eq(r.status, 200, "%s: %ld", url, r.status);
  for (const char *const *f = families; *f; f++) {
    char want[160];
    snprintf(want, sizeof want, "# TYPE %s ", *f);
    cr_assert(strstr(r.body, want), "%s lacks %s:\n%s", url, *f, r.body);
  }
  free(r.body);
}

Test(metrics, both_processes_expose_the_contract_families) {
  static const char *const decider[] = {"rp_decision_latency_seconds", "rp_consumer_lag",
                                        "rp_degraded", "rp_errors_total", "rp_decisions_total",
                                        "rp_degraded_decisions_total", "rp_model_info", NULL};
  static const char *const ingress[] = {"rp_ingress_requests_total", "rp_ingress_rate_limit",
                                        "rp_quarantine_total", NULL};
  expect_families(DECIDER("/metrics"), decider);
  expect_families(INGRESS("/metrics"), ingress);
  http_resp r = http("GET", DECIDER("/metrics"), NULL);
  cr_assert(strstr(r.body, "rp_decision_latency_seconds_bucket{le=\"0.0025\"}"), "%s", r.body);
  cr_assert(strstr(r.body, "rp_decision_latency_seconds_bucket{le=\"+Inf\"}"), "%s", r.body);
  cr_assert(strstr(r.body, "rp_model_info{version=\""), "%s", r.body);
  free(r.body);
}
