/*
 * loadgen.c - the open-model load generator, over HTTP or straight to Kafka.
 *
 * One sender thread owns the transport (HTTP: a libcurl multi handle and a
 * fixed pool of easy handles, one per allowed in-flight request, so
 * connections are kept alive and reused; Kafka: an idempotent librdkafka
 * producer whose delivery reports are served on this thread) and the
 * ledger. The k-th original event of a phase is due at phase_start + the
 * schedule's time of k (sched.c: k/rate for a constant rate, shaped by
 * ramps and bursts) whatever the target does: when the target is slow
 * and the concurrency cap is reached, sends wait and are counted late, and
 * latency is measured from the intended time (corrected for coordinated
 * omission) as well as from the actual send (service time). Originals that
 * could not be sent before the phase window closed are ledgered as dropped,
 * never silently forgotten, so a missed rate is visible in the stats.
 *
 * Memory is constant in the number of events: bodies are built just before
 * they are sent and freed when the response arrives, except for events
 * chosen for a retry, whose exact bytes are kept until the re-send, and
 * hash_conflict events, whose conflicting body is built when it is re-sent.
 */
#include "harness/load/fp_load.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_hash.h"
#include "harness/core/fp_log.h"
#include "harness/load/fp_load_int.h"

#define RESP_MAX 4096                          /* receipts are ~300 bytes */
#define LATE_NS (10 * FP_NS_PER_MS)
#define DRAIN_SLACK_NS (5 * FP_NS_PER_S)
#define MAX_POLL_MS 100                        /* notice stop() promptly */

enum kind { KIND_ORIGINAL, KIND_RETRY, KIND_CONFLICT };

static const char *const kind_names[] = {"original", "retry", "conflict"};

enum outcome { O_OK, O_DUP, O_CONFLICT, O_REJ, O_THROTTLED, O_INFO };

static const char *const outcome_names[] = {"ok",       "dup",
					    "conflict", "rejected",
					    "throttled", "info"};

/* One in-flight request: an easy handle (HTTP) or a produced record whose
 * delivery report is pending (Kafka). */
struct slot {
	CURL *easy;
	struct curl_slist *hdrs;
	uint64_t token;      /* Kafka: identifies this send in its report */
	struct fp_event *ev; /* owned while busy */
	enum kind kind;
	int64_t intended_ns; /* absolute, monotonic */
	int64_t sent_ns;
	size_t resp_len;
	char resp[RESP_MAX + 1];
	char errbuf[CURL_ERROR_SIZE];
};

/* A re-send waiting for its due time. Due times are completion + a
 * constant delay and completions are harvested in time order, so a FIFO
 * is already sorted. */
struct pending {
	struct pending *next;
	struct fp_event *ev;
	enum kind kind;      /* KIND_RETRY or KIND_CONFLICT */
	int64_t due_ns;
};

struct fp_loadgen {
	struct fp_load_conf conf;
	struct fp_load_spec spec;
	struct fp_event_mix mix;
	int64_t mono0, wall0; /* creation: ledger time origin, occurred_at */

	/* Sender-thread state (touched by the caller only while no thread
	 * runs; pthread_create/join order the accesses). */
	int kafka;            /* channel kafka: rk instead of multi */
	CURLM *multi;
	rd_kafka_t *rk;
	uint64_t next_token;
	int delivered;        /* reports served by the last rd_kafka_poll */
	int closing;          /* free(): reports are no longer ledgered */
	struct slot *slots;
	int nslots;
	int *free_idx; /* stack of free slot indexes */
	int nfree;
	struct pending *rq_head, *rq_tail;
	struct fp_rng trace_rng;
	struct fp_ledger *ledger;
	uint64_t next_seq;
	char *phase_id;
	uint64_t seq_base;
	int64_t n_planned, next_k;
	struct fp_sched *sched; /* this phase's; swapped under mu */
	int64_t phase_start, phase_end;
	int window_open;
	int64_t drain_deadline;

	pthread_t thread;
	int running; /* thread created and not yet joined */
	atomic_int stop;

	/* Shared with fp_loadgen_stats(). */
	pthread_mutex_t mu;
	struct fp_hist *lat; /* done - intended */
	struct fp_hist *svc; /* done - sent */
	int64_t planned, sent, retries_sent, accepted, duplicates, conflicts,
		rejected, throttled, failed, late, dropped, in_flight;
	int64_t sent_by_kind[FP_EVENT_KIND_COUNT];
	double peak_rate;
	int64_t active_done_ns;    /* closed phase windows */
	int64_t planned_done;      /* originals intended within them */
	int cur_active;
	int64_t cur_start, cur_end;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t rel(const struct fp_loadgen *g, int64_t t)
{
	return t - g->mono0;
}

static size_t on_body(char *p, size_t size, size_t n, void *opaque)
{
	struct slot *s = opaque;
	size_t len = size * n, room = RESP_MAX - s->resp_len;

	/* Keep the head of an oversized answer and swallow the rest: the
	 * request still completes with its status. */
	if (len < room)
		room = len;
	memcpy(s->resp + s->resp_len, p, room);
	s->resp_len += room;
	s->resp[s->resp_len] = '\0';
	return len;
}

static int setup_slot(struct fp_loadgen *g, struct slot *s)
{
	long tmo_ms = (long)(g->spec.timeout_ns / FP_NS_PER_MS);

	if (tmo_ms < 1)
		tmo_ms = 1;
	s->easy = curl_easy_init();
	if (!s->easy)
		return -1;
	if (curl_easy_setopt(s->easy, CURLOPT_URL, g->conf.url) != CURLE_OK)
		return -1;
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, tmo_ms);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
	return 0;
}

/* ---- ledger rows ----------------------------------------------------------- */

static void row_base(const struct fp_loadgen *g, const struct fp_event *ev,
		     enum kind kind, struct fp_ledger_row *r)
{
	memset(r, 0, sizeof *r);
	r->seq = (int64_t)ev->seq;
	r->event_id = ev->event_id;
	r->kind = kind_names[kind];
	r->attempt = kind == KIND_ORIGINAL ? 1 : 2;
	r->phase_id = g->phase_id;
	r->account_id = ev->account_id;
	r->amount_minor = ev->dropped_field &&
				  strcmp(ev->dropped_field, "amount_minor") == 0
			  ? FP_LEDGER_NULL
			  : ev->amount_minor;
	r->payload_hash = ev->payload_hash[0] ? ev->payload_hash : NULL;
	r->intended_ns = r->sent_ns = r->done_ns = FP_LEDGER_NULL;
	r->http_status = r->partition = r->kafka_offset = FP_LEDGER_NULL;
	r->expect = kind == KIND_CONFLICT
			    ? fp_event_kind_name(FP_EVENT_HASH_CONFLICT)
			    : fp_event_expect(ev);
}

/* An attempt that was never sent: a row, a counter, no request. */
static void ledger_dropped(struct fp_loadgen *g, const struct fp_event *ev,
			   enum kind kind, int64_t intended, const char *why)
{
	struct fp_ledger_row r;

	row_base(g, ev, kind, &r);
	r.intended_ns = rel(g, intended);
	r.outcome = "dropped";
	r.error = why;
	fp_ledger_write(g->ledger, &r);
}

/* ---- sending ------------------------------------------------------------- */

static int64_t intended_of(const struct fp_loadgen *g, int64_t k)
{
	return g->phase_start + fp_sched_time_of(g->sched, k);
}

static void ids_of(const struct fp_loadgen *g, struct fp_event_ids *ids)
{
	ids->platform_run_id = g->conf.platform_run_id;
	ids->scenario_run_id = g->conf.scenario_run_id;
	ids->phase_id = g->phase_id;
	ids->runtime_lane = g->conf.runtime_lane;
	ids->event_class = g->conf.event_class;
}

static void complete(struct fp_loadgen *g, struct slot *s,
		     struct fp_ledger_row *r, enum outcome o, int64_t done);
static void finish_http(struct fp_loadgen *g, struct slot *s, CURLcode res,
			const char *why, int64_t done);

/* HTTP: headers, body, add to the multi. @returns 0 or -1 with why set. */
static int start_http(struct fp_loadgen *g, struct slot *s, const char **why)
{
	const struct fp_event *ev = s->ev;
	char tp[FP_TRACEPARENT_MAX + 16], h_run[512], h_class[256], h_id[64];
	struct curl_slist *h;
	int ok;

	memcpy(tp, "traceparent: ", 13);
	fp_event_traceparent(ev, tp + 13);
	/* The identity rides in headers too: the ingress records an oversize
	 * body (413) in quarantine without reading it. */
	snprintf(h_run, sizeof h_run, "X-Platform-Run-Id: %s",
		 g->conf.platform_run_id);
	snprintf(h_class, sizeof h_class, "X-Event-Class: %s",
		 g->conf.event_class);
	snprintf(h_id, sizeof h_id, "X-Event-Id: %s", ev->event_id);
	/* "Expect:" stops curl from waiting for 100-continue on larger
	 * bodies, which would add a round trip to the service time.
	 * curl_slist_append returns the head, or NULL leaving the list as
	 * it was. */
	h = curl_slist_append(NULL, "Content-Type: application/json");
	ok = h && curl_slist_append(h, tp) && curl_slist_append(h, "Expect:") &&
	     curl_slist_append(h, h_run) && curl_slist_append(h, h_class) &&
	     curl_slist_append(h, h_id);
	s->hdrs = h;
	if (!ok) {
		*why = "cannot build request headers";
		return -1;
	}
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)ev->body_len);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, ev->body);
	if (curl_multi_add_handle(g->multi, s->easy) != CURLM_OK) {
		*why = "curl_multi_add_handle failed";
		return -1;
	}
	return 0;
}

/* Kafka: the contract's record headers (section 2), key = account_id,
 * value = the envelope bytes (copied: a report may outlive the slot). */
static rd_kafka_resp_err_t start_kafka(struct fp_loadgen *g, struct slot *s)
{
	const struct fp_event *ev = s->ev;
	char tp[FP_TRACEPARENT_MAX];
	const char *hv[][2] = {
		{"traceparent", tp},
		{"platform_run_id", g->conf.platform_run_id},
		{"scenario_run_id", g->conf.scenario_run_id},
		{"phase_id", g->phase_id},
		{"event_id", ev->event_id},
		{"runtime_lane", g->conf.runtime_lane},
		{"event_class", g->conf.event_class},
		{"payload_hash", ev->payload_hash[0] ? ev->payload_hash : NULL},
		{"schema_version", ev->schema_version},
	};
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(sizeof hv / sizeof hv[0]);
	rd_kafka_resp_err_t e;

	if (!hdrs)
		return RD_KAFKA_RESP_ERR__FAIL;
	fp_event_traceparent(ev, tp);
	for (size_t i = 0; i < sizeof hv / sizeof hv[0]; i++)
		if (hv[i][1])
			rd_kafka_header_add(hdrs, hv[i][0], -1, hv[i][1], -1);
	s->token = g->next_token++ * (uint64_t)g->nslots +
		   (uint64_t)(s - g->slots);
	e = rd_kafka_producev(
		g->rk, RD_KAFKA_V_TOPIC(g->spec.kafka_topic),
		RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_KEY(ev->account_id, strlen(ev->account_id)),
		RD_KAFKA_V_VALUE(ev->body, ev->body_len),
		RD_KAFKA_V_HEADERS(hdrs),
		RD_KAFKA_V_OPAQUE((void *)(uintptr_t)s->token), RD_KAFKA_V_END);
	if (e)
		rd_kafka_headers_destroy(hdrs); /* ours again on failure */
	return e;
}

static void start_request(struct fp_loadgen *g, struct fp_event *ev,
			  enum kind kind, int64_t intended)
{
	struct slot *s = &g->slots[g->free_idx[--g->nfree]];
	const char *why = NULL;
	int64_t now;
	int late;

	s->ev = ev;
	s->kind = kind;
	s->intended_ns = intended;
	s->resp_len = 0;
	s->resp[0] = '\0';
	s->errbuf[0] = '\0';

	now = fp_mono_ns();
	s->sent_ns = now;
	late = kind == KIND_ORIGINAL && now - intended > LATE_NS;
	pthread_mutex_lock(&g->mu);
	g->in_flight++;
	if (kind == KIND_ORIGINAL) {
		g->sent++;
		g->sent_by_kind[ev->kind]++;
	} else {
		g->retries_sent++;
	}
	g->late += late;
	pthread_mutex_unlock(&g->mu);

	if (g->kafka) {
		rd_kafka_resp_err_t e = start_kafka(g, s);
		struct fp_ledger_row r;
		char errtxt[256];

		if (!e)
			return;
		/* Refused before it left the process (too large, queue
		 * full, unknown topic): certainly not on the bus. */
		row_base(g, ev, kind, &r);
		r.intended_ns = rel(g, intended);
		r.sent_ns = rel(g, now);
		snprintf(errtxt, sizeof errtxt, "produce: %s",
			 rd_kafka_err2str(e));
		r.error = errtxt;
		complete(g, s, &r, O_REJ, fp_mono_ns());
		return;
	}
	if (start_http(g, s, &why) != 0)
		finish_http(g, s, CURLE_FAILED_INIT, why, fp_mono_ns());
}

static void send_original(struct fp_loadgen *g)
{
	int64_t k = g->next_k++;
	int64_t intended = intended_of(g, k);
	struct fp_event_ids ids;
	struct fp_event *ev = malloc(sizeof *ev);
	struct fp_err err = {0};

	ids_of(g, &ids);
	if (!ev || fp_event_build(&ids, &g->mix, g->seq_base + (uint64_t)k,
				  g->wall0 + (intended - g->mono0), ev,
				  &err) != FP_OK) {
		struct fp_event tmp;

		fp_event_draw(&g->mix, g->seq_base + (uint64_t)k, &tmp);
		ledger_dropped(g, &tmp, KIND_ORIGINAL, intended,
			       "out of memory building the event");
		pthread_mutex_lock(&g->mu);
		g->dropped++;
		pthread_mutex_unlock(&g->mu);
		free(ev);
		return;
	}
	fp_event_new_trace(ev, &g->trace_rng);
	start_request(g, ev, KIND_ORIGINAL, intended);
}

static void send_pending(struct fp_loadgen *g)
{
	struct pending *p = g->rq_head;
	struct fp_event_ids ids;
	struct fp_err err = {0};

	g->rq_head = p->next;
	if (!g->rq_head)
		g->rq_tail = NULL;
	/* Same identity, same trace; a new span marks the second attempt.
	 * A retry re-sends the same bytes; a conflict, other bytes. */
	fp_event_new_span(p->ev, &g->trace_rng);
	ids_of(g, &ids);
	if (p->kind == KIND_CONFLICT &&
	    fp_event_make_conflict(&ids, p->ev, &err) != FP_OK) {
		ledger_dropped(g, p->ev, KIND_CONFLICT, p->due_ns, err.msg);
		fp_event_release(p->ev);
		free(p->ev);
		free(p);
		return;
	}
	start_request(g, p->ev, p->kind, p->due_ns);
	free(p);
}

/* ---- completion ---------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v)
				  : FP_LEDGER_NULL;
}

/* Queue the second attempt of an event: a retry (same bytes) or the
 * conflicting re-send of a hash_conflict event. @returns 1 when queued. */
static int queue_second(struct fp_loadgen *g, struct fp_event *ev,
			enum kind kind, int64_t done)
{
	struct pending *p = malloc(sizeof *p);

	if (!p) {
		ledger_dropped(g, ev, kind, done + g->spec.retry_delay_ns,
			       "out of memory scheduling the re-send");
		return 0;
	}
	p->next = NULL;
	p->ev = ev;
	p->kind = kind;
	p->due_ns = done + g->spec.retry_delay_ns;
	if (g->rq_tail)
		g->rq_tail->next = p;
	else
		g->rq_head = p;
	g->rq_tail = p;
	return 1;
}

/* Common end of every sent attempt: ledger row, counters, histograms,
 * slot back to the pool, and the event's second attempt if it has one. */
static void complete(struct fp_loadgen *g, struct slot *s,
		     struct fp_ledger_row *r, enum outcome o, int64_t done)
{
	struct fp_event *ev = s->ev;
	enum kind kind = s->kind;

	r->done_ns = rel(g, done);
	r->outcome = outcome_names[o];
	fp_ledger_write(g->ledger, r);

	pthread_mutex_lock(&g->mu);
	g->in_flight--;
	switch (o) {
	case O_OK: g->accepted++; break;
	case O_DUP: g->duplicates++; break;
	case O_CONFLICT: g->conflicts++; break;
	case O_REJ: g->rejected++; break;
	case O_THROTTLED: g->throttled++; break;
	case O_INFO: g->failed++; break;
	}
	fp_hist_record(g->lat, done - s->intended_ns);
	fp_hist_record(g->svc, done - s->sent_ns);
	pthread_mutex_unlock(&g->mu);

	s->ev = NULL;
	g->free_idx[g->nfree++] = (int)(s - g->slots);

	if (kind == KIND_ORIGINAL && ev->retry &&
	    queue_second(g, ev, KIND_RETRY, done))
		return;
	if (kind == KIND_ORIGINAL && ev->kind == FP_EVENT_HASH_CONFLICT &&
	    queue_second(g, ev, KIND_CONFLICT, done))
		return;
	fp_event_release(ev);
	free(ev);
}

static void finish_http(struct fp_loadgen *g, struct slot *s, CURLcode res,
			const char *why, int64_t done)
{
	struct fp_ledger_row r;
	json_t *receipt = NULL;
	char errtxt[CURL_ERROR_SIZE + 64];
	long code = 0;
	enum outcome o;

	if (res == CURLE_OK)
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	row_base(g, s->ev, s->kind, &r);
	r.intended_ns = rel(g, s->intended_ns);
	r.sent_ns = rel(g, s->sent_ns);
	errtxt[0] = '\0';
	if (res != CURLE_OK) {
		/* Transport error or timeout: the platform may or may not have
		 * admitted the event, so the outcome is indeterminate. */
		o = O_INFO;
		snprintf(errtxt, sizeof errtxt, "%s",
			 why ? why : s->errbuf[0] ? s->errbuf
						  : curl_easy_strerror(res));
	} else {
		r.http_status = code;
		if (code == 202)
			o = O_OK;
		else if (code == 200)
			o = O_DUP;
		else if (code == 409)
			o = O_CONFLICT;
		else if (code == 429)
			o = O_THROTTLED;
		else if (code >= 400 && code < 500)
			o = O_REJ;
		else
			o = O_INFO;
		if (s->resp_len > 0)
			receipt = json_loadb(s->resp, s->resp_len, 0, NULL);
		if (json_is_object(receipt)) {
			r.receipt_status = jstr(receipt, "status");
			r.topic = jstr(receipt, "topic");
			r.partition = jint(receipt, "partition");
			r.kafka_offset = jint(receipt, "offset");
		}
		if (o != O_OK && o != O_DUP) {
			const char *reason = receipt ? jstr(receipt, "reason") : NULL;

			snprintf(errtxt, sizeof errtxt, "http %ld%s%s", code,
				 reason ? ": " : "", reason ? reason : "");
		}
	}
	r.error = errtxt[0] ? errtxt : NULL;
	/* The handle leaves the multi before the row is complete: the slot
	 * may be reused by the re-send queued in complete(). */
	curl_multi_remove_handle(g->multi, s->easy);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	complete(g, s, &r, o, done);
	json_decref(receipt); /* after the row: it borrows its strings */
}

static int harvest_http(struct fp_loadgen *g)
{
	CURLMsg *m;
	int left, n = 0;

	while ((m = curl_multi_info_read(g->multi, &left))) {
		char *priv = NULL;
		CURLcode res;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		/* m points into the multi and dies with remove_handle: the
		 * result is read before finish_http() removes the handle. */
		res = m->data.result;
		finish_http(g, (struct slot *)(void *)priv, res, NULL,
			    fp_mono_ns());
		n++;
	}
	return n;
}

/* Delivery report, served by rd_kafka_poll() on the sender thread (or
 * during free, when g->closing drops it). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	struct fp_loadgen *g = opaque;
	uint64_t token = (uint64_t)(uintptr_t)m->_private;
	struct slot *s = &g->slots[token % (uint64_t)g->nslots];
	struct fp_ledger_row r;
	char errtxt[256];
	int64_t done = fp_mono_ns();

	(void)rk;
	if (g->closing || !s->ev || s->token != token)
		return; /* aborted already: its row is written */
	g->delivered++;
	row_base(g, s->ev, s->kind, &r);
	r.intended_ns = rel(g, s->intended_ns);
	r.sent_ns = rel(g, s->sent_ns);
	if (m->err) {
		/* Timed out or failed in flight: it may have been written,
		 * so indeterminate, like an HTTP transport error. */
		snprintf(errtxt, sizeof errtxt, "delivery: %s",
			 rd_kafka_err2str(m->err));
		r.error = errtxt;
		complete(g, s, &r, O_INFO, done);
		return;
	}
	r.topic = g->spec.kafka_topic;
	r.partition = m->partition;
	r.kafka_offset = m->offset >= 0 ? m->offset : FP_LEDGER_NULL;
	complete(g, s, &r, O_OK, done);
}

/* Serve what has completed; @returns how many requests finished. */
static int harvest(struct fp_loadgen *g)
{
	int still;

	if (!g->kafka) {
		curl_multi_perform(g->multi, &still);
		return harvest_http(g);
	}
	g->delivered = 0;
	rd_kafka_poll(g->rk, 0);
	return g->delivered;
}

/* Block until something may have completed or ms have passed. */
static void wait_io(struct fp_loadgen *g, int ms)
{
	if (g->kafka)
		rd_kafka_poll(g->rk, ms);
	else
		curl_multi_poll(g->multi, NULL, 0, ms, NULL);
}

/* ---- the sender thread ----------------------------------------------------- */

/* Close the phase window at `end`: the originals not yet sent are dropped. */
static void close_window(struct fp_loadgen *g, int64_t end, const char *why)
{
	int64_t ndrop = g->n_planned - g->next_k;
	int64_t in_window = fp_sched_planned_before(g->sched, end - g->phase_start);

	for (int64_t k = g->next_k; k < g->n_planned; k++) {
		struct fp_event ev;

		fp_event_draw(&g->mix, g->seq_base + (uint64_t)k, &ev);
		ledger_dropped(g, &ev, KIND_ORIGINAL, intended_of(g, k), why);
	}
	g->next_k = g->n_planned;
	g->window_open = 0;
	g->drain_deadline = end + g->spec.timeout_ns + g->spec.retry_delay_ns +
			    DRAIN_SLACK_NS;
	pthread_mutex_lock(&g->mu);
	g->dropped += ndrop;
	g->active_done_ns += end - g->phase_start;
	g->planned_done += in_window;
	g->cur_active = 0;
	pthread_mutex_unlock(&g->mu);
	if (ndrop > 0)
		FP_WARN("event=load_dropped phase=%s dropped=%" PRId64 " reason=%s",
			g->phase_id, ndrop, why);
}

/* Past the drain deadline: abort what is left so wait() stays bounded. */
static void abort_all(struct fp_loadgen *g)
{
	int64_t now = fp_mono_ns();

	if (g->kafka) {
		/* Purged records report at once with a purge error (info);
		 * a short poll serves those reports. */
		rd_kafka_purge(g->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
		for (int i = 0; i < 20 && g->nfree < g->nslots; i++)
			rd_kafka_poll(g->rk, 50);
	}
	for (int i = 0; i < g->nslots; i++) {
		struct slot *s = &g->slots[i];
		struct fp_ledger_row r;

		if (!s->ev)
			continue;
		if (!g->kafka) {
			finish_http(g, s, CURLE_OPERATION_TIMEDOUT,
				    "aborted: drain deadline passed", now);
			continue;
		}
		row_base(g, s->ev, s->kind, &r);
		r.intended_ns = rel(g, s->intended_ns);
		r.sent_ns = rel(g, s->sent_ns);
		r.error = "aborted: drain deadline passed";
		complete(g, s, &r, O_INFO, now);
	}
	while (g->rq_head) {
		struct pending *p = g->rq_head;

		g->rq_head = p->next;
		ledger_dropped(g, p->ev, p->kind, p->due_ns,
			       "drain deadline passed");
		fp_event_release(p->ev);
		free(p->ev);
		free(p);
	}
	g->rq_tail = NULL;
	FP_WARN("event=load_drain_aborted phase=%s", g->phase_id);
}

static int64_t next_due(const struct fp_loadgen *g)
{
	int64_t t = INT64_MAX;

	if (g->window_open && g->next_k < g->n_planned)
		t = intended_of(g, g->next_k);
	if (g->rq_head && g->rq_head->due_ns < t)
		t = g->rq_head->due_ns;
	return t;
}

static void *sender_main(void *arg)
{
	struct fp_loadgen *g = arg;

	for (;;) {
		int64_t now = fp_mono_ns(), t, wait_ns;

		if (g->window_open) {
			if (atomic_load(&g->stop))
				close_window(g, now < g->phase_end ? now : g->phase_end,
					     "stopped");
			else if (now >= g->phase_end)
				close_window(g, g->phase_end, "phase window ended");
		}
		/* Everything due goes out now, oldest intended time first. */
		while (g->nfree > 0 && (t = next_due(g)) <= now) {
			if (g->rq_head && g->rq_head->due_ns == t)
				send_pending(g);
			else
				send_original(g);
		}
		if (harvest(g) > 0)
			continue; /* slots freed: late sends may go now */

		if (!g->window_open && g->nfree == g->nslots && !g->rq_head)
			break;
		if (!g->window_open && now >= g->drain_deadline) {
			abort_all(g);
			break;
		}

		t = g->nfree > 0 ? next_due(g) : INT64_MAX;
		if (g->window_open && g->phase_end < t)
			t = g->phase_end;
		if (!g->window_open && g->drain_deadline < t)
			t = g->drain_deadline;
		now = fp_mono_ns();
		wait_ns = t - now;
		if (wait_ns <= 0)
			continue;
		if (wait_ns < FP_NS_PER_MS) {
			/* Both transports wait in whole milliseconds; below
			 * that, sleep when nothing can arrive, else poll
			 * without blocking, so sends keep sub-millisecond
			 * accuracy. */
			if (g->nfree == g->nslots)
				fp_sleep_ns(wait_ns, NULL);
			else
				wait_io(g, 0);
			continue;
		}
		{
			int64_t ms = wait_ns / FP_NS_PER_MS;

			if (ms > MAX_POLL_MS)
				ms = MAX_POLL_MS;
			wait_io(g, (int)ms);
		}
	}
	FP_INFO("event=load_phase_done phase=%s planned=%" PRId64, g->phase_id,
		g->n_planned);
	return NULL;
}

/* ---- set-up ---------------------------------------------------------------- */

/* librdkafka logs through the harness log, never straight to stderr. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
			 const char *buf)
{
	(void)rk;
	if (level <= 3)
		FP_WARN("event=load_kafka_log facility=%s msg=\"%s\"", fac, buf);
	else
		FP_DEBUG("event=load_kafka_log facility=%s msg=\"%s\"", fac, buf);
}

static int kafka_set(rd_kafka_conf_t *kc, const char *k, const char *v,
		     struct fp_err *err)
{
	char e[512];

	if (rd_kafka_conf_set(kc, k, v, e, sizeof e) == RD_KAFKA_CONF_OK)
		return FP_OK;
	return fp_err_set(err, FP_EINVAL, "load: kafka property %s: %s", k, e);
}

/* Connect now and make sure the topic exists, so the first phase neither
 * pays the connection set-up in its latencies nor produces into a topic
 * that is not there. All-topics metadata: asking for the topic by name
 * would auto-create it on brokers that allow that. */
static int kafka_check_topic(struct fp_loadgen *g, struct fp_err *err)
{
	const struct rd_kafka_metadata *md = NULL;
	int64_t ms = g->spec.timeout_ns / FP_NS_PER_MS;
	rd_kafka_resp_err_t e;
	int found = 0;

	e = rd_kafka_metadata(g->rk, 1, NULL, &md,
			      (int)(ms < 1000 ? 1000 : ms > 30000 ? 30000 : ms));
	if (e)
		return fp_err_set(err, FP_EUNREACHABLE,
				  "load: kafka %s: metadata: %s",
				  g->conf.kafka_bootstrap, rd_kafka_err2str(e));
	for (int i = 0; i < md->topic_cnt; i++)
		found |= strcmp(md->topics[i].topic, g->spec.kafka_topic) == 0 &&
			 md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
	rd_kafka_metadata_destroy(md);
	if (!found)
		return fp_err_set(err, FP_EINVAL,
				  "load: kafka topic '%s' does not exist on %s",
				  g->spec.kafka_topic, g->conf.kafka_bootstrap);
	return FP_OK;
}

/* The producer: harness defaults, then the profile's properties, then what
 * the open model and the contract require (idempotence, acks=all, the
 * request timeout as the delivery timeout). */
static int kafka_setup(struct fp_loadgen *g, struct fp_err *err)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	char tmo[32], e[512];
	int64_t ms = g->spec.timeout_ns / FP_NS_PER_MS;

	if (!kc)
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	snprintf(tmo, sizeof tmo, "%" PRId64, ms > 0 ? ms : 1);
	if (kafka_set(kc, "bootstrap.servers", g->conf.kafka_bootstrap, err) ||
	    kafka_set(kc, "linger.ms", "1", err) ||
	    kafka_set(kc, "client.id", "fpdrill-load", err))
		goto fail;
	for (size_t i = 0; g->conf.kafka_props && i < g->conf.kafka_props->n; i++)
		if (kafka_set(kc, g->conf.kafka_props->items[i].key,
			      g->conf.kafka_props->items[i].value, err))
			goto fail;
	if (kafka_set(kc, "enable.idempotence", "true", err) ||
	    kafka_set(kc, "acks", "all", err) ||
	    kafka_set(kc, "message.timeout.ms", tmo, err))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
	rd_kafka_conf_set_log_cb(kc, on_kafka_log);
	rd_kafka_conf_set_opaque(kc, g);
	g->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, e, sizeof e);
	if (!g->rk) {
		rd_kafka_conf_destroy(kc);
		return fp_err_set(err, FP_EINVAL, "load: kafka producer: %s", e);
	}
	return kafka_check_topic(g, err);
fail:
	rd_kafka_conf_destroy(kc);
	return err ? err->rc : FP_EINVAL;
}

/* Checks of the spec that the loader makes too, repeated here because
 * a spec may be built in code (tests, the run loop's overrides). */
static int check_spec(const struct fp_load_conf *conf, struct fp_err *err)
{
	const struct fp_load_spec *sp = conf->spec;
	double mix_sum = 0;

	if (sp->channel == FP_CHANNEL_HTTP && !conf->url)
		return fp_err_set(err, FP_EINVAL, "load: channel http needs url");
	if (sp->channel == FP_CHANNEL_KAFKA &&
	    (!conf->kafka_bootstrap || !sp->kafka_topic))
		return fp_err_set(err, FP_EINVAL,
				  "load: channel kafka needs kafka_bootstrap "
				  "and the spec's kafka_topic");
	if (sp->channel != FP_CHANNEL_HTTP && sp->channel != FP_CHANNEL_KAFKA)
		return fp_err_set(err, FP_EINVAL, "load: unknown channel");
	if (sp->ramp_over_ns < 0 ||
	    (sp->ramp_over_ns > 0
		     ? !(sp->ramp_from >= 0 && sp->ramp_from <= 1e7 &&
			 sp->ramp_to > 0 && sp->ramp_to <= 1e7)
		     : !(sp->rate > 0 && sp->rate <= 1e7)))
		return fp_err_set(err, FP_EINVAL,
				  "load: rate (or ramp from/to) must be in "
				  "(0, 1e7], ramp time >= 0");
	for (size_t i = 0; i < sp->n_bursts; i++) {
		const struct fp_burst *b = &sp->bursts[i];

		if (b->at_ns < 0 || b->duration_ns <= 0 ||
		    !(b->multiplier > 0 && b->multiplier <= 1000) ||
		    (b->ramp && (b->ramp_ns < 0 ||
				 b->ramp_ns > b->duration_ns / 2)))
			return fp_err_set(err, FP_EINVAL,
					  "load: burst %zu: at >= 0, duration > "
					  "0, multiplier in (0, 1000], ramp in "
					  "[0, duration/2]",
					  i + 1);
	}
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++) {
		if (!(sp->mix[k] >= 0) || !isfinite(sp->mix[k]))
			return fp_err_set(err, FP_EINVAL,
					  "load: mix shares must be >= 0");
		mix_sum += sp->mix[k];
	}
	if (!isfinite(mix_sum))
		return fp_err_set(err, FP_EINVAL, "load: mix shares too large");
	if (sp->concurrency < 1 || sp->concurrency > 65536)
		return fp_err_set(err, FP_EINVAL,
				  "load: concurrency must be in [1, 65536]");
	if (sp->accounts < 1)
		return fp_err_set(err, FP_EINVAL, "load: accounts must be >= 1");
	if (!(sp->retry_share >= 0 && sp->retry_share <= 1) ||
	    !(sp->high_value_share >= 0 && sp->high_value_share <= 1))
		return fp_err_set(err, FP_EINVAL,
				  "load: shares must be in [0, 1]");
	if (sp->timeout_ns <= 0 || sp->retry_delay_ns < 0)
		return fp_err_set(err, FP_EINVAL,
				  "load: timeout must be > 0, retry delay >= 0");
	return FP_OK;
}

/* ---- public API ---------------------------------------------------------- */

int fp_loadgen_new(const struct fp_load_conf *conf, struct fp_loadgen **out,
		   struct fp_err *err)
{
	const struct fp_load_spec *sp = conf ? conf->spec : NULL;
	struct fp_loadgen *g;
	char seedhex[33];
	uint64_t seed = 0;
	int rc;

	*out = NULL;
	if (!conf || !sp || !conf->platform_run_id || !conf->event_class ||
	    !conf->ledger_path)
		return fp_err_set(err, FP_EINVAL,
				  "load: spec, platform_run_id, event_class "
				  "and ledger_path are required");
	rc = check_spec(conf, err);
	if (rc)
		return rc;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return fp_err_set(err, FP_EINTERNAL, "curl_global_init: %s",
				  curl_easy_strerror(curl_init_rc));
	/* Trace ids must be unique across runs, so their stream is seeded
	 * from the kernel once; the hot path then never makes a syscall. */
	if (fp_random_hex(seedhex, 16, err) != FP_OK)
		return err ? err->rc : FP_EINTERNAL;

	g = calloc(1, sizeof *g);
	if (!g)
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	g->conf = *conf;
	g->spec = *sp;
	g->kafka = sp->channel == FP_CHANNEL_KAFKA;
	g->mix.seed = sp->seed;
	g->mix.accounts = sp->accounts;
	g->mix.high_value_share = sp->high_value_share;
	g->mix.retry_share = sp->retry_share;
	memcpy(g->mix.kinds, sp->mix, sizeof g->mix.kinds);
	g->mono0 = fp_mono_ns();
	g->wall0 = fp_wall_ns();
	g->next_seq = 1;
	atomic_init(&g->stop, 0);
	pthread_mutex_init(&g->mu, NULL);
	for (int i = 0; i < 16; i++) {
		int c = seedhex[i];

		seed = seed << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	fp_rng_seed(&g->trace_rng, seed, (uint64_t)g->wall0);

	g->nslots = sp->concurrency;
	g->slots = calloc((size_t)g->nslots, sizeof *g->slots);
	g->free_idx = calloc((size_t)g->nslots, sizeof *g->free_idx);
	g->lat = fp_hist_new();
	g->svc = fp_hist_new();
	if (!g->kafka)
		g->multi = curl_multi_init();
	if (!g->slots || !g->free_idx || !g->lat || !g->svc ||
	    (!g->kafka && !g->multi)) {
		fp_loadgen_free(g);
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	}
	if (g->kafka) {
		rc = kafka_setup(g, err);
		if (rc) {
			fp_loadgen_free(g);
			return rc;
		}
	} else {
		curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long)g->nslots);
	}
	for (int i = 0; i < g->nslots; i++) {
		if (!g->kafka && setup_slot(g, &g->slots[i]) != 0) {
			fp_loadgen_free(g);
			return fp_err_set(err, FP_EINTERNAL,
					  "load: cannot set up curl handle for '%s'",
					  conf->url);
		}
		g->free_idx[g->nfree++] = g->nslots - 1 - i;
	}
	if (fp_ledger_open(conf->ledger_path, &g->ledger, err) != FP_OK) {
		rc = err ? err->rc : FP_EIO;
		fp_loadgen_free(g);
		return rc;
	}
	*out = g;
	return FP_OK;
}

int fp_loadgen_start(struct fp_loadgen *g, const char *phase_id,
		     int64_t duration_ns, struct fp_err *err)
{
	struct fp_sched *sched, *old;
	char *pid;
	int rc;

	if (g->running)
		return fp_err_set(err, FP_EINVAL,
				  "load: a phase is running; call fp_loadgen_wait first");
	if (duration_ns <= 0 || !phase_id)
		return fp_err_set(err, FP_EINVAL,
				  "load: phase id and a positive duration are required");
	if (fp_sched_build(&g->spec, duration_ns, &sched) != 0)
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	pid = strdup(phase_id);
	if (!pid) {
		fp_sched_free(sched);
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	}
	free(g->phase_id);
	g->phase_id = pid;
	g->n_planned = fp_sched_planned(sched);
	g->next_k = 0;
	g->seq_base = g->next_seq;
	g->next_seq += (uint64_t)g->n_planned;
	g->window_open = 1;
	atomic_store(&g->stop, 0);
	g->phase_start = fp_mono_ns();
	g->phase_end = g->phase_start + duration_ns;

	pthread_mutex_lock(&g->mu);
	old = g->sched;
	g->sched = sched;
	g->planned += g->n_planned;
	if (fp_sched_peak(sched) > g->peak_rate)
		g->peak_rate = fp_sched_peak(sched);
	g->cur_active = 1;
	g->cur_start = g->phase_start;
	g->cur_end = g->phase_end;
	pthread_mutex_unlock(&g->mu);
	fp_sched_free(old);

	FP_INFO("event=load_phase_start phase=%s channel=%s planned=%" PRId64
		" peak_rate=%.3f concurrency=%d",
		phase_id, g->kafka ? "kafka" : "http", g->n_planned,
		fp_sched_peak(sched), g->nslots);
	rc = pthread_create(&g->thread, NULL, sender_main, g);
	if (rc != 0) {
		pthread_mutex_lock(&g->mu);
		g->planned -= g->n_planned;
		g->cur_active = 0;
		pthread_mutex_unlock(&g->mu);
		return fp_err_set(err, FP_EINTERNAL,
				  "load: cannot start the sender thread: %s",
				  strerror(rc));
	}
	g->running = 1;
	return FP_OK;
}

void fp_loadgen_stop(struct fp_loadgen *g)
{
	atomic_store(&g->stop, 1);
	/* Thread-safe by contract: interrupts curl_multi_poll at once. The
	 * Kafka sender notices within its poll bound (MAX_POLL_MS). */
	if (g->multi)
		curl_multi_wakeup(g->multi);
}

int fp_loadgen_wait(struct fp_loadgen *g, struct fp_err *err)
{
	if (g->running) {
		/* Bounded: the sender leaves by itself at the latest at the
		 * drain deadline (window end + timeout + retry delay + 5 s). */
		pthread_join(g->thread, NULL);
		g->running = 0;
	}
	return fp_ledger_sync(g->ledger, err);
}

void fp_loadgen_stats(struct fp_loadgen *g, struct fp_load_stats *st)
{
	int64_t now = fp_mono_ns(), planned_active;

	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&g->mu);
	st->active_ns = g->active_done_ns;
	planned_active = g->planned_done;
	if (g->cur_active) {
		int64_t end = now < g->cur_end ? now : g->cur_end;

		st->active_ns += end - g->cur_start;
		planned_active += fp_sched_planned_before(g->sched,
							  end - g->cur_start);
	}
	st->peak_rate = g->peak_rate;
	st->planned = g->planned;
	st->sent = g->sent;
	st->retries_sent = g->retries_sent;
	st->accepted = g->accepted;
	st->duplicates = g->duplicates;
	st->conflicts = g->conflicts;
	st->rejected = g->rejected;
	st->throttled = g->throttled;
	st->failed = g->failed;
	st->late = g->late;
	st->dropped = g->dropped;
	st->in_flight = g->in_flight;
	memcpy(st->sent_by_kind, g->sent_by_kind, sizeof st->sent_by_kind);
	st->p50_ns = fp_hist_percentile(g->lat, 50);
	st->p95_ns = fp_hist_percentile(g->lat, 95);
	st->p99_ns = fp_hist_percentile(g->lat, 99);
	st->max_ns = fp_hist_max(g->lat);
	st->svc_p50_ns = fp_hist_percentile(g->svc, 50);
	st->svc_p95_ns = fp_hist_percentile(g->svc, 95);
	st->svc_p99_ns = fp_hist_percentile(g->svc, 99);
	pthread_mutex_unlock(&g->mu);
	/* Rates over the time actually spent in load phases, so a stopped
	 * phase compares what was sent with what was due by then. */
	if (st->active_ns > 0) {
		st->planned_rate = (double)planned_active /
				   ((double)st->active_ns / 1e9);
		st->achieved_rate = (double)st->sent /
				    ((double)st->active_ns / 1e9);
	}
}

static json_t *ms(int64_t ns)
{
	return json_real((double)ns / 1e6);
}

json_t *fp_loadgen_stats_json(const struct fp_load_stats *st)
{
	json_t *by_kind = json_object(), *j;

	for (int k = 0; by_kind && k < FP_EVENT_KIND_COUNT; k++)
		json_object_set_new(by_kind,
				    fp_event_kind_name((enum fp_event_kind)k),
				    json_integer(st->sent_by_kind[k]));
	j = json_pack("{s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		      "s:I, s:I, s:I, s:o*, s:{s:o, s:o, s:o, s:o}, "
		      "s:{s:o, s:o, s:o}}",
		      "planned_rate", st->planned_rate,
		      "achieved_rate", st->achieved_rate,
		      "peak_planned_rate", st->peak_rate,
		      "planned", (json_int_t)st->planned,
		      "sent", (json_int_t)st->sent,
		      "retries_sent", (json_int_t)st->retries_sent,
		      "accepted", (json_int_t)st->accepted,
		      "duplicates", (json_int_t)st->duplicates,
		      "conflicts", (json_int_t)st->conflicts,
		      "rejected", (json_int_t)st->rejected,
		      "throttled", (json_int_t)st->throttled,
		      "failed", (json_int_t)st->failed,
		      "late", (json_int_t)st->late,
		      "dropped", (json_int_t)st->dropped,
		      "sent_by_kind", by_kind,
		      "latency_ms", "p50", ms(st->p50_ns), "p95", ms(st->p95_ns),
		      "p99", ms(st->p99_ns), "max", ms(st->max_ns),
		      "service_ms", "p50", ms(st->svc_p50_ns),
		      "p95", ms(st->svc_p95_ns), "p99", ms(st->svc_p99_ns));
	return j;
}

void fp_loadgen_free(struct fp_loadgen *g)
{
	if (!g)
		return;
	if (g->running) {
		fp_loadgen_stop(g);
		pthread_join(g->thread, NULL);
		g->running = 0;
	}
	while (g->rq_head) { /* only after an aborted drain; defensive */
		struct pending *p = g->rq_head;

		g->rq_head = p->next;
		fp_event_release(p->ev);
		free(p->ev);
		free(p);
	}
	if (g->rk) {
		/* Nothing is waited for: what is still queued is purged, its
		 * reports dropped (closing), and the handle destroyed. */
		g->closing = 1;
		rd_kafka_purge(g->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(g->rk, 1000);
		rd_kafka_destroy(g->rk);
	}
	if (g->slots) {
		for (int i = 0; i < g->nslots; i++) {
			struct slot *s = &g->slots[i];

			if (s->easy) {
				if (s->ev && g->multi)
					curl_multi_remove_handle(g->multi, s->easy);
				curl_easy_cleanup(s->easy);
			}
			curl_slist_free_all(s->hdrs);
			if (s->ev) {
				fp_event_release(s->ev);
				free(s->ev);
			}
		}
	}
	if (g->multi)
		curl_multi_cleanup(g->multi);
	fp_ledger_close(g->ledger, NULL);
	fp_hist_free(g->lat);
	fp_hist_free(g->svc);
	fp_sched_free(g->sched);
	free(g->slots);
	free(g->free_idx);
	free(g->phase_id);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
