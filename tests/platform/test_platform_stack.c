/* Integration tests of the running reference platform (rp-ingress on 18080, rp-decider on 18081)
 * against the real local stack (Kafka 19092, PostgreSQL 15432, Redis 16379). They check the
 * contract end to end: receipts carry the origin offset, retries are duplicates, a changed
 * payload is a conflict, the decision log has exactly one row per admitted event, and pause
 * really takes the consumer out of its group. A missing server is a failure, never a skip:
 * a drill suite that silently skips its platform checks proves nothing. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "rp_core.h"

#define INGRESS "http://127.0.0.1:18080"
#define DECIDER "http://127.0.0.1:18081"
#define KAFKA "127.0.0.1:19092"
#define PG_DSN "host=127.0.0.1 port=15432 dbname=fraud user=fraud connect_timeout=5"
#define TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

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
  h = curl_slist_append(h, "traceparent: " TRACEPARENT);
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

/* PGPASSFILE from the environment, else from the stack's endpoints file. */
static void ensure_pgpassfile(void) {
  if (getenv("PGPASSFILE")) return;
  const char *src = getenv("FPDRILL_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/envs/local/.state/endpoints.env", src ? src : ".");
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "PGPASSFILE unset and %s unreadable: is the local stack up?", path);
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    if (strncmp(p, "export ", 7) == 0) p += 7;
    if (strncmp(p, "FPD_PGPASSFILE=", 15) != 0) continue;
    p += 15;
    p[strcspn(p, "\r\n")] = '\0';
    size_t n = strlen(p);
    if (n >= 2 && (p[0] == '"' || p[0] == '\'') && p[n - 1] == p[0]) {
      p[n - 1] = '\0';
      p++;
    }
    setenv("PGPASSFILE", p, 1);
  }
  fclose(f);
  cr_assert_not_null(getenv("PGPASSFILE"), "no FPD_PGPASSFILE in %s", path);
}

static PGconn *pg(void) {
  ensure_pgpassfile();
  PGconn *c = PQconnectdb(PG_DSN);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
  return c;
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
  http_resp r = http("POST", INGRESS "/v1/events", body);
  cr_assert_eq(r.status, want_status, "POST /v1/events: %ld %s", r.status, r.body);
  json_t *j = resp_json(&r);
  free(r.body);
  return j;
}

/* ---- tests ---------------------------------------------------------------------------- */

Test(stack, servers_are_up) {
  http_resp r = http("GET", INGRESS "/health", NULL);
  cr_assert_eq(r.status, 200, "rp-ingress /health: %ld %s", r.status, r.body);
  json_t *j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "status"), "ok");
  json_decref(j);
  free(r.body);
  r = http("GET", DECIDER "/health", NULL);
  cr_assert_eq(r.status, 200, "rp-decider /health: %ld %s", r.status, r.body);
  j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "running", "decider left paused? %s", r.body);
  cr_assert_str_eq(jstr(j, "model_version"), "m-fixed-2026.11.0");
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

static void expect_reject(const char *body, const char *reason) {
  http_resp r = http("POST", INGRESS "/v1/events", body);
  cr_assert_eq(r.status, 400, "%s: %ld %s", reason, r.status, r.body);
  json_t *j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "status"), "rejected");
  cr_assert_str_eq(jstr(j, "reason"), reason, "body %s", r.body);
  cr_assert_not_null(jstr(j, "detail"));
  json_decref(j);
  free(r.body);
}

Test(ingress, rejections) {
  expect_reject("{\"schema_version\":\"1.0\",", "malformed_json");
  expect_reject("{\"schema_version\":\"1.0\",\"platform_run_id\":\"r\",\"event_class\":\"c\","
                "\"payload\":{\"account_id\":\"a\",\"amount_minor\":1,\"currency\":\"EUR\"}}",
                "missing_field");
  expect_reject("{\"schema_version\":\"1.0\",\"platform_run_id\":\"r\",\"event_class\":\"c\","
                "\"event_id\":\"e\",\"payload\":{\"account_id\":\"a\",\"amount_minor\":\"1\","
                "\"currency\":\"EUR\"}}",
                "wrong_type");
  expect_reject("{\"schema_version\":\"2.0\",\"platform_run_id\":\"r\",\"event_class\":\"c\","
                "\"event_id\":\"e\",\"payload\":{\"account_id\":\"a\",\"amount_minor\":1,"
                "\"currency\":\"EUR\"}}",
                "unsupported_version");
  size_t big = RP_MAX_BODY + 16;
  char *b = malloc(big + 1);
  memset(b, ' ', big);
  b[big] = '\0';
  http_resp r = http("POST", INGRESS "/v1/events", b);
  cr_assert_eq(r.status, 413, "oversize body: %ld", r.status);
  free(r.body);
  free(b);
  r = http("GET", INGRESS "/v1/events", NULL);
  cr_assert_eq(r.status, 405);
  free(r.body);
  r = http("GET", INGRESS "/nope", NULL);
  cr_assert_eq(r.status, 404);
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
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", KAFKA, err, sizeof err),
               RD_KAFKA_CONF_OK);
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
  http_resp r = http("POST", DECIDER "/control/resume", NULL);
  free(r.body);
}

Test(decider, pause_leaves_the_group_and_resume_catches_up, .fini = resume_decider) {
  http_resp r = http("POST", DECIDER "/control/pause", NULL);
  cr_assert_eq(r.status, 200, "pause: %ld %s", r.status, r.body);
  json_t *j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "paused");
  json_decref(j);
  free(r.body);
  r = http("POST", DECIDER "/control/pause", NULL);
  cr_assert_eq(r.status, 200, "pause is idempotent: %ld", r.status);
  free(r.body);
  r = http("GET", DECIDER "/health", NULL);
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

  r = http("POST", DECIDER "/control/resume", NULL);
  cr_assert_eq(r.status, 200, "resume: %ld %s", r.status, r.body);
  j = resp_json(&r);
  cr_assert_str_eq(jstr(j, "state"), "running");
  json_decref(j);
  free(r.body);
  r = http("POST", DECIDER "/control/resume", NULL);
  cr_assert_eq(r.status, 200, "resume is idempotent: %ld", r.status);
  free(r.body);
  cr_assert_eq(wait_rows(c, "decision_log", run, eid, 15), 1, "not decided within 15 s of resume");
  PQfinish(c);
  json_decref(rc);
  free(body);
}

Test(decider, control_routes) {
  http_resp r = http("GET", DECIDER "/control/pause", NULL);
  cr_assert_eq(r.status, 405);
  free(r.body);
  r = http("GET", DECIDER "/nope", NULL);
  cr_assert_eq(r.status, 404);
  free(r.body);
}
