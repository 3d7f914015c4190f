/*
 * loadgen.c - the open-model HTTP load generator.
 *
 * One sender thread owns a libcurl multi handle, a fixed pool of easy
 * handles (one per allowed in-flight request, so connections are kept alive
 * and reused) and the ledger. The k-th original event of a phase is due at
 * phase_start + k/rate whatever the target does: when the target is slow
 * and the concurrency cap is reached, sends wait and are counted late, and
 * latency is measured from the intended time (corrected for coordinated
 * omission) as well as from the actual send (service time). Originals that
 * could not be sent before the phase window closed are ledgered as dropped,
 * never silently forgotten, so a missed rate is visible in the stats.
 *
 * Memory is constant in the number of events: bodies are built just before
 * they are sent and freed when the response arrives, except for events
 * chosen for a retry, whose exact bytes are kept until the re-send.
 */
#include "harness/load/fp_load.h"

#include <curl/curl.h>
#include <inttypes.h>
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

enum kind { KIND_ORIGINAL, KIND_RETRY };

/* One easy handle and the request it carries. */
struct slot {
	CURL *easy;
	struct curl_slist *hdrs;
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
	int64_t due_ns;
};

struct fp_loadgen {
	struct fp_load_conf conf;
	struct fp_load_spec spec;
	struct fp_event_mix mix;
	int64_t mono0, wall0; /* creation: ledger time origin, occurred_at */

	/* Sender-thread state (touched by the caller only while no thread
	 * runs; pthread_create/join order the accesses). */
	CURLM *multi;
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
	int64_t planned, sent, retries_sent, accepted, duplicates, rejected,
		failed, late, dropped, in_flight;
	int64_t active_done_ns;    /* closed phase windows */
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
	r->kind = kind == KIND_RETRY ? "retry" : "original";
	r->attempt = kind == KIND_RETRY ? 2 : 1;
	r->phase_id = g->phase_id;
	r->account_id = ev->account_id;
	r->amount_minor = ev->amount_minor;
	r->payload_hash = ev->payload_hash[0] ? ev->payload_hash : NULL;
	r->intended_ns = r->sent_ns = r->done_ns = FP_LEDGER_NULL;
	r->http_status = r->partition = r->kafka_offset = FP_LEDGER_NULL;
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
	return g->phase_start + (int64_t)((double)k * 1e9 / g->spec.rate);
}

static void finish(struct fp_loadgen *g, struct slot *s, CURLcode res,
		   const char *why, int64_t done);

static void start_request(struct fp_loadgen *g, struct fp_event *ev,
			  enum kind kind, int64_t intended)
{
	struct slot *s = &g->slots[g->free_idx[--g->nfree]];
	char tp[FP_TRACEPARENT_MAX + 16];
	struct curl_slist *h;
	int64_t now;
	int late, ok;

	s->ev = ev;
	s->kind = kind;
	s->intended_ns = intended;
	s->resp_len = 0;
	s->resp[0] = '\0';
	s->errbuf[0] = '\0';
	memcpy(tp, "traceparent: ", 13);
	fp_event_traceparent(ev, tp + 13);
	/* "Expect:" stops curl from waiting for 100-continue on larger
	 * bodies, which would add a round trip to the service time.
	 * curl_slist_append returns the head, or NULL leaving the list as
	 * it was. */
	h = curl_slist_append(NULL, "Content-Type: application/json");
	ok = h && curl_slist_append(h, tp) && curl_slist_append(h, "Expect:");
	s->hdrs = h;
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)ev->body_len);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, ev->body);

	now = fp_mono_ns();
	s->sent_ns = now;
	late = kind == KIND_ORIGINAL && now - intended > LATE_NS;
	pthread_mutex_lock(&g->mu);
	g->in_flight++;
	if (kind == KIND_ORIGINAL)
		g->sent++;
	else
		g->retries_sent++;
	g->late += late;
	pthread_mutex_unlock(&g->mu);

	if (!ok) {
		finish(g, s, CURLE_OUT_OF_MEMORY, "cannot build request headers",
		       fp_mono_ns());
		return;
	}
	if (curl_multi_add_handle(g->multi, s->easy) != CURLM_OK)
		finish(g, s, CURLE_FAILED_INIT, "curl_multi_add_handle failed",
		       fp_mono_ns());
}

static void send_original(struct fp_loadgen *g)
{
	int64_t k = g->next_k++;
	int64_t intended = intended_of(g, k);
	struct fp_event_ids ids = {
		g->conf.platform_run_id, g->conf.scenario_run_id, g->phase_id,
		g->conf.runtime_lane, g->conf.event_class,
	};
	struct fp_event *ev = malloc(sizeof *ev);
	struct fp_err err = {0};

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

static void send_retry(struct fp_loadgen *g)
{
	struct pending *p = g->rq_head;

	g->rq_head = p->next;
	if (!g->rq_head)
		g->rq_tail = NULL;
	/* Same body bytes, same event id, same trace; a new span marks the
	 * second attempt. */
	fp_event_new_span(p->ev, &g->trace_rng);
	start_request(g, p->ev, KIND_RETRY, p->due_ns);
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

static void finish(struct fp_loadgen *g, struct slot *s, CURLcode res,
		   const char *why, int64_t done)
{
	struct fp_event *ev = s->ev;
	struct fp_ledger_row r;
	json_t *receipt = NULL;
	char errtxt[CURL_ERROR_SIZE + 64];
	long code = 0;
	enum { O_OK, O_DUP, O_REJ, O_INFO } o;

	if (res == CURLE_OK)
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	row_base(g, ev, s->kind, &r);
	r.intended_ns = rel(g, s->intended_ns);
	r.sent_ns = rel(g, s->sent_ns);
	r.done_ns = rel(g, done);
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
		if (o == O_REJ || o == O_INFO) {
			const char *reason = receipt ? jstr(receipt, "reason") : NULL;

			snprintf(errtxt, sizeof errtxt, "http %ld%s%s", code,
				 reason ? ": " : "", reason ? reason : "");
		}
	}
	r.outcome = o == O_OK ? "ok" : o == O_DUP ? "dup"
				: o == O_REJ ? "rejected" : "info";
	r.error = errtxt[0] ? errtxt : NULL;
	fp_ledger_write(g->ledger, &r);
	json_decref(receipt);

	pthread_mutex_lock(&g->mu);
	g->in_flight--;
	switch (o) {
	case O_OK: g->accepted++; break;
	case O_DUP: g->duplicates++; break;
	case O_REJ: g->rejected++; break;
	case O_INFO: g->failed++; break;
	}
	fp_hist_record(g->lat, done - s->intended_ns);
	fp_hist_record(g->svc, done - s->sent_ns);
	pthread_mutex_unlock(&g->mu);

	curl_multi_remove_handle(g->multi, s->easy);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	s->ev = NULL;
	g->free_idx[g->nfree++] = (int)(s - g->slots);

	if (s->kind == KIND_ORIGINAL && ev->retry) {
		struct pending *p = malloc(sizeof *p);

		if (p) {
			p->next = NULL;
			p->ev = ev;
			p->due_ns = done + g->spec.retry_delay_ns;
			if (g->rq_tail)
				g->rq_tail->next = p;
			else
				g->rq_head = p;
			g->rq_tail = p;
			return;
		}
		ledger_dropped(g, ev, KIND_RETRY, done + g->spec.retry_delay_ns,
			       "out of memory scheduling the retry");
	}
	fp_event_release(ev);
	free(ev);
}

static int harvest(struct fp_loadgen *g)
{
	CURLMsg *m;
	int left, n = 0;

	while ((m = curl_multi_info_read(g->multi, &left))) {
		char *priv = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		/* m points into the multi and dies with remove_handle: the
		 * result is read before finish() removes the handle. */
		finish(g, (struct slot *)(void *)priv, m->data.result, NULL,
		       fp_mono_ns());
		n++;
	}
	return n;
}

/* ---- the sender thread ----------------------------------------------------- */

/* Close the phase window at `end`: the originals not yet sent are dropped. */
static void close_window(struct fp_loadgen *g, int64_t end, const char *why)
{
	int64_t ndrop = g->n_planned - g->next_k;

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

	for (int i = 0; i < g->nslots; i++)
		if (g->slots[i].ev)
			finish(g, &g->slots[i], CURLE_OPERATION_TIMEDOUT,
			       "aborted: drain deadline passed", now);
	while (g->rq_head) {
		struct pending *p = g->rq_head;

		g->rq_head = p->next;
		ledger_dropped(g, p->ev, KIND_RETRY, p->due_ns,
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
		int still;

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
				send_retry(g);
			else
				send_original(g);
		}
		curl_multi_perform(g->multi, &still);
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
			/* curl waits in whole milliseconds; below that, sleep
			 * when nothing can arrive, else poll without blocking,
			 * so sends keep sub-millisecond accuracy. */
			if (g->nfree == g->nslots)
				fp_sleep_ns(wait_ns, NULL);
			else
				curl_multi_poll(g->multi, NULL, 0, 0, NULL);
			continue;
		}
		{
			int64_t ms = wait_ns / FP_NS_PER_MS;

			if (ms > MAX_POLL_MS)
				ms = MAX_POLL_MS;
			curl_multi_poll(g->multi, NULL, 0, (int)ms, NULL);
		}
	}
	FP_INFO("event=load_phase_done phase=%s planned=%" PRId64, g->phase_id,
		g->n_planned);
	return NULL;
}

/* ---- public API ---------------------------------------------------------- */

int fp_loadgen_new(const struct fp_load_conf *conf, struct fp_loadgen **out,
		   struct fp_err *err)
{
	const struct fp_load_spec *sp = conf ? conf->spec : NULL;
	struct fp_loadgen *g;
	char seedhex[33];
	uint64_t seed = 0;

	*out = NULL;
	if (!conf || !sp || !conf->url || !conf->platform_run_id ||
	    !conf->event_class || !conf->ledger_path)
		return fp_err_set(err, FP_EINVAL,
				  "load: spec, url, platform_run_id, event_class "
				  "and ledger_path are required");
	if (sp->channel != FP_CHANNEL_HTTP)
		return fp_err_set(err, FP_EINVAL,
				  "load: this generator sends over HTTP only");
	if (!(sp->rate > 0) || !isfinite(sp->rate) || sp->rate > 1e7)
		return fp_err_set(err, FP_EINVAL, "load: rate must be in (0, 1e7]");
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
	g->mix.seed = sp->seed;
	g->mix.accounts = sp->accounts;
	g->mix.high_value_share = sp->high_value_share;
	g->mix.retry_share = sp->retry_share;
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
	g->multi = curl_multi_init();
	if (!g->slots || !g->free_idx || !g->lat || !g->svc || !g->multi) {
		fp_loadgen_free(g);
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	}
	curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long)g->nslots);
	for (int i = 0; i < g->nslots; i++) {
		if (setup_slot(g, &g->slots[i]) != 0) {
			fp_loadgen_free(g);
			return fp_err_set(err, FP_EINTERNAL,
					  "load: cannot set up curl handle for '%s'",
					  conf->url);
		}
		g->free_idx[g->nfree++] = g->nslots - 1 - i;
	}
	if (fp_ledger_open(conf->ledger_path, &g->ledger, err) != FP_OK) {
		int rc = err ? err->rc : FP_EIO;

		fp_loadgen_free(g);
		return rc;
	}
	*out = g;
	return FP_OK;
}

int fp_loadgen_start(struct fp_loadgen *g, const char *phase_id,
		     int64_t duration_ns, struct fp_err *err)
{
	double n;
	char *pid;
	int rc;

	if (g->running)
		return fp_err_set(err, FP_EINVAL,
				  "load: a phase is running; call fp_loadgen_wait first");
	if (duration_ns <= 0 || !phase_id)
		return fp_err_set(err, FP_EINVAL,
				  "load: phase id and a positive duration are required");
	/* Originals k = 0, 1, ... with k / rate < duration. */
	n = ceil((double)duration_ns / 1e9 * g->spec.rate - 1e-9);
	if (n < 0)
		n = 0;
	pid = strdup(phase_id);
	if (!pid)
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	free(g->phase_id);
	g->phase_id = pid;
	g->n_planned = (int64_t)n;
	g->next_k = 0;
	g->seq_base = g->next_seq;
	g->next_seq += (uint64_t)g->n_planned;
	g->window_open = 1;
	atomic_store(&g->stop, 0);
	g->phase_start = fp_mono_ns();
	g->phase_end = g->phase_start + duration_ns;

	pthread_mutex_lock(&g->mu);
	g->planned += g->n_planned;
	g->cur_active = 1;
	g->cur_start = g->phase_start;
	g->cur_end = g->phase_end;
	pthread_mutex_unlock(&g->mu);

	FP_INFO("event=load_phase_start phase=%s rate=%.3f planned=%" PRId64
		" concurrency=%d", phase_id, g->spec.rate, g->n_planned,
		g->nslots);
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
	/* Thread-safe by contract: interrupts curl_multi_poll at once. */
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
	int64_t now = fp_mono_ns();

	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&g->mu);
	st->planned_rate = g->spec.rate;
	st->active_ns = g->active_done_ns;
	if (g->cur_active)
		st->active_ns += (now < g->cur_end ? now : g->cur_end) - g->cur_start;
	st->planned = g->planned;
	st->sent = g->sent;
	st->retries_sent = g->retries_sent;
	st->accepted = g->accepted;
	st->duplicates = g->duplicates;
	st->rejected = g->rejected;
	st->failed = g->failed;
	st->late = g->late;
	st->dropped = g->dropped;
	st->in_flight = g->in_flight;
	st->p50_ns = fp_hist_percentile(g->lat, 50);
	st->p95_ns = fp_hist_percentile(g->lat, 95);
	st->p99_ns = fp_hist_percentile(g->lat, 99);
	st->max_ns = fp_hist_max(g->lat);
	st->svc_p50_ns = fp_hist_percentile(g->svc, 50);
	st->svc_p95_ns = fp_hist_percentile(g->svc, 95);
	st->svc_p99_ns = fp_hist_percentile(g->svc, 99);
	pthread_mutex_unlock(&g->mu);
	st->achieved_rate = st->active_ns > 0
		? (double)st->sent / ((double)st->active_ns / 1e9) : 0.0;
}

static json_t *ms(int64_t ns)
{
	return json_real((double)ns / 1e6);
}

json_t *fp_loadgen_stats_json(const struct fp_load_stats *st)
{
	return json_pack("{s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:{s:o, s:o, s:o, s:o}, s:{s:o, s:o, s:o}}",
			 "planned_rate", st->planned_rate,
			 "achieved_rate", st->achieved_rate,
			 "planned", (json_int_t)st->planned,
			 "sent", (json_int_t)st->sent,
			 "retries_sent", (json_int_t)st->retries_sent,
			 "accepted", (json_int_t)st->accepted,
			 "duplicates", (json_int_t)st->duplicates,
			 "rejected", (json_int_t)st->rejected,
			 "failed", (json_int_t)st->failed,
			 "late", (json_int_t)st->late,
			 "dropped", (json_int_t)st->dropped,
			 "latency_ms", "p50", ms(st->p50_ns), "p95", ms(st->p95_ns),
			 "p99", ms(st->p99_ns), "max", ms(st->max_ns),
			 "service_ms", "p50", ms(st->svc_p50_ns),
			 "p95", ms(st->svc_p95_ns), "p99", ms(st->svc_p99_ns));
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
	free(g->slots);
	free(g->free_idx);
	free(g->phase_id);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
