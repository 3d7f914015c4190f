/* rp-ingress: the reference platform's admission service (contract section 1). It validates an
 * event, claims its dedupe tuple in Redis, publishes it to the traffic topic and only then hands
 * out a receipt carrying the record's Kafka coordinates, so every 202 names exactly one origin
 * offset. It fails closed: no idempotency record, no publication (unless the dedupe-off defect
 * is planted on purpose). */
#include "rp_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis.h>
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

static struct {
  rd_kafka_t *rk;
  char redis_host[256];
  int redis_port;
  rp_defect defect;
  atomic_bool stop;
  pthread_key_t redis_key;
  sigset_t sigs;
} g;

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

/* ---- HTTP helpers --------------------------------------------------------------------- */

static enum MHD_Result reply_raw(struct MHD_Connection *c, unsigned status, const char *body) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
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

static enum MHD_Result admit(struct MHD_Connection *c, const char *body, size_t len) {
  rp_event ev;
  char detail[256];
  rp_reason why = rp_event_parse(body, len, &ev, detail, sizeof detail);
  if (why != RP_OK) {
    rp_log("info", "msg=rejected reason=%s detail=\"%s\"", rp_reason_name(why), detail);
    return reply_json(c, MHD_HTTP_BAD_REQUEST,
                      json_pack("{s:s,s:s,s:s}", "status", "rejected", "reason",
                                rp_reason_name(why), "detail", detail));
  }
  const char *tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
  enum MHD_Result ret;
  int32_t part = -1;
  int64_t off = -1;

  if (g.defect == RP_DEFECT_DEDUPE_OFF) { /* planted defect: no idempotency at all */
    if (!produce_and_wait(&ev, body, len, tp, &part, &off)) {
      ret = reply_unavailable(c, "bus_unavailable");
    } else {
      ret = reply_json(c, MHD_HTTP_ACCEPTED, make_receipt(&ev, part, off));
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  bool is_events = strcmp(url, "/v1/events") == 0, is_health = strcmp(url, "/health") == 0;
  if (!is_events && !is_health)
    return reply_raw(c, MHD_HTTP_NOT_FOUND, "{\"status\":\"not_found\"}");
  if (is_health) {
    if (strcmp(method, "GET") != 0)
      return reply_raw(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"status\":\"method_not_allowed\"}");
    bool k = kafka_ok(), r = redis_ok();
    if (k && r) return reply_raw(c, MHD_HTTP_OK, "{\"status\":\"ok\"}");
    return reply_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack("{s:s,s:b,s:b}", "status", "unavailable", "kafka", k, "redis", r));
  }
  if (strcmp(method, "POST") != 0)
    return reply_raw(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"status\":\"method_not_allowed\"}");

  rp_upload *up = *con_cls;
  if (!up) {
    /* Refuse an announced oversize body before reading it. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > RP_MAX_BODY)
      return reply_raw(c, MHD_HTTP_CONTENT_TOO_LARGE, "{\"status\":\"rejected\",\"reason\":\"too_large\"}");
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
  if (up->too_large)
    return reply_raw(c, MHD_HTTP_CONTENT_TOO_LARGE, "{\"status\":\"rejected\",\"reason\":\"too_large\"}");
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
             "[--defect none|dedupe-off|case-dup]\n");
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
                                       {"defect", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'l': listen = optarg; break;
    case 'k': kafka = optarg; break;
    case 'r': redis = optarg; break;
    case 'd': defect = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  char lhost[64];
  int lport;
  if (optind != argc || !listen || !kafka || !redis) {
    usage(stderr);
    return 2;
  }
  if (!rp_defect_parse(defect, &g.defect)) {
    rp_log("error", "msg=unknown_defect defect=%s known=none,dedupe-off,case-dup", defect);
    return 2;
  }
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
  if (!ensure_topic()) {
    rp_log("error", "msg=topic_unavailable topic=%s kafka=%s", RP_TOPIC, kafka);
    rc = 1;
    goto out;
  }
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
  rp_log("info", "msg=started service=rp-ingress listen=%s kafka=%s redis=%s defect=%s", listen,
         kafka, redis, rp_defect_name(g.defect));
  int sig = 0;
  sigwait(&g.sigs, &sig);
  rp_log("info", "msg=stopping signal=%d", sig);

out:
  if (d) MHD_stop_daemon(d); /* joins the connection threads: no request is mid-produce after */
  rd_kafka_resp_err_t fe = rd_kafka_flush(g.rk, 10000);
  if (fe) rp_log("warn", "msg=flush_incomplete err=%s", rd_kafka_err2name(fe));
  atomic_store(&g.stop, true);
  pthread_join(poller, NULL);
  rd_kafka_destroy(g.rk);
  redis_drop();
  rp_log("info", "msg=stopped service=rp-ingress rc=%d", rc);
  return rc;
}
