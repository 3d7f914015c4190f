/*
 * loadgen.c - the open-model load generator, over HTTP or straight to Kafka.
 *
 * The events of a phase are dealt to N sender threads ("shards"): shard i
 * sends the events k = i, i + N, i + 2N, ... of the one seeded schedule, so
 * the traffic is the same for any N. Each shard owns its transport (HTTP: a
 * libcurl multi handle and a fixed pool of easy handles, its share of the
 * allowed in-flight requests, so connections are kept alive and reused,
 * driven through curl's socket API from the shard's own epoll set;
 * Kafka: one shard only, with an idempotent librdkafka producer whose
 * delivery reports are served on that thread), its body builder and its
 * ledger stream; rows meet in one COPY-able file (ledger.c). One thread
 * tops out near 25k HTTP requests/s in libcurl, hence several for HTTP.
 *
 * The k-th original event of a phase is due at phase_start + the
 * schedule's time of k (sched.c: k/rate for a constant rate, shaped by
 * ramps and bursts) whatever the target does: when the target is slow
 * and a shard's share of the concurrency cap is used up, sends wait and
 * are counted late, and latency is measured from the intended time
 * (corrected for coordinated omission) as well as from the actual send
 * (service time). Originals that could not be sent before the phase window
 * closed are ledgered as dropped, never silently forgotten, so a missed
 * rate is visible in the stats.
 *
 * Memory is constant in the number of events: every slot keeps one event
 * and reuses its body buffer, except for events chosen for a retry, whose
 * exact bytes move to the re-send queue until the re-send, and
 * hash_conflict events, whose conflicting body is built when it is re-sent.
 */
#include "harness/load/fp_load.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "harness/backend/fp_kafka.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_hash.h"
#include "harness/core/fp_log.h"
#include "harness/load/fp_load_int.h"

#define RESP_MAX 4096                          /* receipts are ~300 bytes */
#define LATE_NS (10 * FP_NS_PER_MS)
#define DRAIN_SLACK_NS (5 * FP_NS_PER_S)
#define MAX_POLL_MS 100                        /* Kafka: notice stop() */
/* HTTP: bound of one epoll wait, a backstop only: due times, curl's
 * timeouts and the window's end are all in the wait's deadline, and stop()
 * writes to the eventfd in the set. */
#define HTTP_MAX_WAIT_MS 1000
#define MAX_EVENTS 64                          /* epoll events per wake-up */
#define MAX_SENDERS 16
#define SERVE_EVERY 1000                       /* sends between harvests */
#define HTTP_TIMER_SLACK_NS 1000UL
#define KAFKA_TIMER_SLACK_NS 50000UL           /* Linux's default */
/* Auto sender count (HTTP): one thread per this many planned events/s.
 * One libcurl thread tops out near 25k/s; below 12k/s a single thread
 * also keeps the wake-ups, and so the lateness, in one place. */
#define RATE_PER_SENDER 12000.0

enum kind { KIND_ORIGINAL, KIND_RETRY, KIND_CONFLICT };

static const char *const kind_names[] = {"original", "retry", "conflict"};

enum outcome { O_OK, O_DUP, O_CONFLICT, O_REJ, O_THROTTLED, O_INFO };

static const char *const outcome_names[] = {"ok",       "dup",
					    "conflict", "rejected",
					    "throttled", "info"};

/* Kafka record headers of the platform contract (section 2), in its
 * order (kafka_hdr_names). */
enum {
	H_TRACEPARENT, H_PLATFORM_RUN, H_SCENARIO_RUN, H_PHASE, H_EVENT_ID,
	H_LANE, H_CLASS, H_PAYLOAD_HASH, H_SCHEMA, H_COUNT
};

/* One in-flight request: an easy handle (HTTP) or a produced record whose
 * delivery report is pending (Kafka). The event and its body buffer stay
 * with the slot and are rebuilt in place for the next send. */
struct slot {
	CURL *easy;
	struct curl_slist *hdrs; /* built once; two values patched per send */
	char *tp_val;            /* traceparent value inside hdrs (55 chars) */
	char *id_val;            /* X-Event-Id value inside hdrs (22 chars) */
	uint64_t token;      /* Kafka: identifies this send in its report */
	int busy;
	struct fp_event ev;
	enum kind kind;
	int64_t intended_ns; /* absolute, monotonic */
	int64_t sent_ns;
	size_t resp_len;
	/* HTTP only (a Kafka slot stays small): RESP_MAX + 1 bytes of
	 * response, then CURL_ERROR_SIZE of error text. */
	char *resp;
	char *errbuf;
};

/* A re-send waiting for its due time. Due times are completion + a
 * constant delay and a shard harvests completions in time order, so a FIFO
 * is already sorted. */
struct pending {
	struct pending *next;
	struct fp_event ev;  /* owns its body */
	enum kind kind;      /* KIND_RETRY or KIND_CONFLICT */
	int64_t due_ns;
};

/* What the epoll set holds for one fd. A connection curl puts back in its
 * cache is REMOVEd and, on the next request, added again with the same
 * events: for sockets opened through open_socket that pair is kept out
 * of the kernel (want only changes here), since close_socket tells when
 * the fd dies. Other fds (a resolver's socket pair) get every epoll_ctl. */
struct fdstate {
	uint8_t ours; /* opened by open_socket, not yet closed */
	uint8_t reg;  /* epoll events registered (EPOLLIN|EPOLLOUT), 0 = none */
	uint8_t want; /* curl wants it watched */
};

struct fp_loadgen;

/* One sender thread and everything it touches without a lock. */
struct shard {
	struct fp_loadgen *g;
	int id;
	pthread_t thread;
	CURLM *multi;
	/* HTTP: one epoll set holds curl's sockets (socket callback), the
	 * timer fd armed at the next due time, and the eventfd stop() writes
	 * to, so a wake-up serves only the sockets that are ready. */
	int ep_fd;
	int timer_fd;
	int wake_fd;
	int64_t timer_armed;  /* absolute due time armed, INT64_MAX if none */
	int64_t curl_due;     /* curl's own timeout, absolute; INT64_MAX none */
	/* Per fd: the connection sockets this shard opened (curl's open /
	 * close callbacks), what the epoll set holds for them and whether
	 * curl still wants them watched. Indexed by fd, grown on open. */
	struct fdstate *fds;
	int nfds;
	uint64_t next_token;
	int delivered;        /* reports served by the last rd_kafka_poll */
	struct slot *slots;
	int nslots;
	int *free_idx;        /* stack of free slot indexes */
	int nfree;
	struct pending *rq_head, *rq_tail;
	struct fp_rng trace_rng;
	struct fp_ledger_stream *ledger;
	struct fp_event_builder *builder; /* this phase's ids */
	int64_t next_k;       /* next original of this shard (k = id mod N) */
	int window_open;
	int64_t drain_deadline;

	/* Counters and histograms, shared with fp_loadgen_stats(). Per
	 * shard, so the senders never contend for one lock. */
	pthread_mutex_t mu;
	struct fp_hist *lat; /* done - intended */
	struct fp_hist *svc; /* done - sent */
	int64_t sent, retries_sent, accepted, duplicates, conflicts, rejected,
		throttled, failed, late, dropped, in_flight;
	int64_t sent_by_kind[FP_EVENT_KIND_COUNT];
};

struct fp_loadgen {
	struct fp_load_conf conf;
	struct fp_load_spec spec;
	struct fp_event_mix mix;
	int64_t mono0, wall0; /* creation: ledger time origin, occurred_at */
	uint64_t trace_seed;

	/* Phase state: written by start() while no sender runs, read-only
	 * for the senders (pthread_create/join order the accesses). */
	int kafka;            /* channel kafka: rk instead of multi */
	rd_kafka_t *rk;
	const char *kafka_hdr_val[H_COUNT]; /* the phase's constant values */
	size_t kafka_hdr_len[H_COUNT];
	int closing;          /* free(): reports are no longer ledgered */
	struct shard *shards;
	int nshards;
	struct fp_ledger *ledger;
	uint64_t next_seq;
	char *phase_id;
	uint64_t seq_base;
	int64_t n_planned;
	struct fp_sched *sched; /* this phase's; swapped under mu */
	int64_t phase_start, phase_end;

	int running; /* threads created and not yet joined */
	atomic_int stop;
	atomic_llong stop_end; /* window end of a stopped phase, 0 = none */

	/* Phase-level figures, shared with fp_loadgen_stats(). */
	pthread_mutex_t mu;
	int64_t planned;
	double peak_rate;
	int64_t active_done_ns;    /* closed phase windows */
	int64_t planned_done;      /* originals intended within them */
	int open_windows;          /* shards whose window is still open */
	int64_t phase_dropped;
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

/* "Name: value" as one header line; @returns the list head or NULL. */
static struct curl_slist *hdr_add(struct curl_slist *h, const char *name,
				  const char *val, int *bad)
{
	size_t nl = strlen(name), vl = strlen(val);
	char *line = malloc(nl + vl + 3);
	struct curl_slist *r;

	if (!line) {
		*bad = 1;
		return h;
	}
	memcpy(line, name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, val, vl + 1);
	r = curl_slist_append(h, line);
	free(line);
	if (!r)
		*bad = 1;
	return r ? r : h;
}

/* The value part of the last header line of h (after "Name: "). */
static char *last_value(struct curl_slist *h, size_t name_len)
{
	while (h && h->next)
		h = h->next;
	return h ? h->data + name_len + 2 : NULL;
}

/* Whether curl's proxy detection could find something (the variables it
 * reads for http and https URLs, or to exclude hosts). */
static int no_proxy_env(void)
{
	static const char *const vars[] = {"http_proxy",  "https_proxy",
					   "HTTPS_PROXY", "all_proxy",
					   "ALL_PROXY",   "no_proxy",
					   "NO_PROXY"};

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (getenv(vars[i]))
			return 1;
	return 0;
}

static int setup_slot(struct fp_loadgen *g, struct slot *s)
{
	long tmo_ms = (long)(g->spec.timeout_ns / FP_NS_PER_MS);
	int bad = 0;

	if (tmo_ms < 1)
		tmo_ms = 1;
	s->resp = malloc(RESP_MAX + 1 + CURL_ERROR_SIZE);
	s->easy = curl_easy_init();
	if (!s->resp || !s->easy)
		return -1;
	s->errbuf = s->resp + RESP_MAX + 1;
	s->errbuf[0] = '\0';
	/* The header list is built once per slot: the identity headers are
	 * constant and traceparent / X-Event-Id have fixed lengths, so each
	 * send patches their values in place instead of rebuilding the list.
	 * The identity rides in headers too: the ingress records an oversize
	 * body (413) in quarantine without reading it. "Expect:" stops curl
	 * from waiting for 100-continue on larger bodies, which would add a
	 * round trip to the service time. */
	s->hdrs = hdr_add(NULL, "Content-Type", "application/json", &bad);
	s->hdrs = hdr_add(s->hdrs, "traceparent",
			  "00-00000000000000000000000000000000-0000000000000000-01",
			  &bad);
	s->tp_val = last_value(s->hdrs, strlen("traceparent"));
	if (!bad && !curl_slist_append(s->hdrs, "Expect:"))
		bad = 1;
	s->hdrs = hdr_add(s->hdrs, "X-Platform-Run-Id", g->conf.platform_run_id,
			  &bad);
	s->hdrs = hdr_add(s->hdrs, "X-Event-Class", g->conf.event_class, &bad);
	s->hdrs = hdr_add(s->hdrs, "X-Event-Id", "e-00000000000000000000", &bad);
	s->id_val = last_value(s->hdrs, strlen("X-Event-Id"));
	if (bad)
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
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
	/* Without proxy variables in the environment curl would look for
	 * them (five getenv + strdup) on every request, to find none; an
	 * empty proxy and no-proxy list say "none" once. With any of them
	 * set, curl keeps reading them as before. */
	if (!no_proxy_env()) {
		curl_easy_setopt(s->easy, CURLOPT_PROXY, "");
		curl_easy_setopt(s->easy, CURLOPT_NOPROXY, "");
	}
	return 0;
}

/* ---- receipts -------------------------------------------------------------- */

/* What a receipt tells the ledger; strings point into the response buffer
 * or into the jansson tree (json). */
struct receipt {
	const char *status, *topic, *reason;
	int64_t partition, offset;
	json_t *json;
};

/*
 * Fast path for the common receipt, a flat JSON object of plain strings and
 * integers: fields are NUL-terminated in place. @returns 0, or -1 when the
 * text is anything else (escapes, non-ASCII, nesting, literals, reals, big
 * integers, trailing bytes), which jansson then parses, so both paths read
 * every receipt the same way.
 */
static int scan_receipt(char *p, char *end, struct receipt *r)
{
	char *ends[16];
	int nends = 0;

#define WS() while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++
	WS();
	if (p >= end || *p++ != '{')
		return -1;
	WS();
	if (p < end && *p == '}') {
		p++;
		goto done;
	}
	for (;;) {
		char *key, *val = NULL;
		size_t klen;
		int64_t num = 0;
		int is_num = 0;

		if (p >= end || *p++ != '"')
			return -1;
		key = p;
		while (p < end && *p != '"') {
			if (*p == '\\' || (unsigned char)*p < 0x20 ||
			    (unsigned char)*p >= 0x80)
				return -1;
			p++;
		}
		if (p >= end)
			return -1;
		klen = (size_t)(p - key);
		p++;
		WS();
		if (p >= end || *p++ != ':')
			return -1;
		WS();
		if (p < end && *p == '"') {
			val = ++p;
			while (p < end && *p != '"') {
				if (*p == '\\' || (unsigned char)*p < 0x20 ||
				    (unsigned char)*p >= 0x80)
					return -1;
				p++;
			}
			if (p >= end || nends == 16)
				return -1;
			ends[nends++] = p++;
		} else {
			int neg = 0, digits = 0;

			if (p < end && *p == '-') {
				neg = 1;
				p++;
			}
			if (p < end && *p == '0' && p + 1 < end &&
			    p[1] >= '0' && p[1] <= '9')
				return -1; /* leading zero: not JSON */
			while (p < end && *p >= '0' && *p <= '9') {
				num = num * 10 + (*p++ - '0');
				if (++digits > 18)
					return -1;
			}
			if (digits == 0 || (p < end && (*p == '.' || *p == 'e' ||
							*p == 'E')))
				return -1;
			num = neg ? -num : num;
			is_num = 1;
		}
		/* A later duplicate wins, as in jansson. */
#define KEY(lit) (klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)
		if (KEY("status")) {
			r->status = val;
		} else if (KEY("topic")) {
			r->topic = val;
		} else if (KEY("reason")) {
			r->reason = val;
		} else if (KEY("partition")) {
			r->partition = is_num ? num : FP_LEDGER_NULL;
		} else if (KEY("offset")) {
			r->offset = is_num ? num : FP_LEDGER_NULL;
		}
#undef KEY
		WS();
		if (p < end && *p == ',') {
			p++;
			WS();
			continue;
		}
		if (p < end && *p == '}') {
			p++;
			break;
		}
		return -1;
	}
done:
	WS();
#undef WS
	if (p != end)
		return -1;
	for (int i = 0; i < nends; i++)
		*ends[i] = '\0';
	return 0;
}

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

/* @returns 1 when the response was a JSON object (r filled), else 0. */
static int parse_receipt(char *text, size_t len, struct receipt *r)
{
	memset(r, 0, sizeof *r);
	r->partition = r->offset = FP_LEDGER_NULL;
	if (len == 0)
		return 0;
	if (scan_receipt(text, text + len, r) == 0)
		return 1;
	memset(r, 0, sizeof *r);
	r->partition = r->offset = FP_LEDGER_NULL;
	r->json = json_loadb(text, len, 0, NULL);
	if (!json_is_object(r->json))
		return 0;
	r->status = jstr(r->json, "status");
	r->topic = jstr(r->json, "topic");
	r->reason = jstr(r->json, "reason");
	r->partition = jint(r->json, "partition");
	r->offset = jint(r->json, "offset");
	return 1;
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

/* An attempt that was never sent: a row, no request. */
static void ledger_dropped(struct shard *sh, const struct fp_event *ev,
			   enum kind kind, int64_t intended, const char *why)
{
	struct fp_ledger_row r;

	row_base(sh->g, ev, kind, &r);
	r.intended_ns = rel(sh->g, intended);
	r.outcome = "dropped";
	r.error = why;
	fp_ledger_stream_write(sh->ledger, &r);
}

/* ---- sending ------------------------------------------------------------- */

static int64_t intended_of(const struct fp_loadgen *g, int64_t k)
{
	return g->phase_start + fp_sched_time_of(g->sched, k);
}

static void complete(struct shard *sh, struct slot *s, struct fp_ledger_row *r,
		     enum outcome o, int64_t done);
static void finish_http(struct shard *sh, struct slot *s, CURLcode res,
			const char *why, int64_t done);

/* HTTP: patch the per-send headers, set the body, add to the multi.
 * @returns 0 or -1 with why set. */
static int start_http(struct shard *sh, struct slot *s, const char **why)
{
	const struct fp_event *ev = &s->ev;
	char tp[FP_TRACEPARENT_MAX];

	fp_event_traceparent(ev, tp);
	memcpy(s->tp_val, tp, FP_TRACEPARENT_MAX - 1);
	memcpy(s->id_val, ev->event_id, FP_EVENT_ID_MAX - 1);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)ev->body_len);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, ev->body);
	if (curl_multi_add_handle(sh->multi, s->easy) != CURLM_OK) {
		*why = "curl_multi_add_handle failed";
		return -1;
	}
	return 0;
}

/* Header names with their lengths. The identity values are the same for
 * every record of a phase, so their lengths are taken once per phase
 * (kafka_hdr_consts), not by strlen per record and header. */
static const struct {
	const char *name;
	size_t len;
} kafka_hdr_names[H_COUNT] = {
#define H(n) {n, sizeof(n) - 1}
	H("traceparent"), H("platform_run_id"), H("scenario_run_id"),
	H("phase_id"), H("event_id"), H("runtime_lane"), H("event_class"),
	H("payload_hash"), H("schema_version"),
#undef H
};

/* The phase's constant header values and their lengths (NULL: the header
 * is left out). Called by start() while no sender runs. */
static void kafka_hdr_consts(struct fp_loadgen *g)
{
	const char *v[H_COUNT] = {0};

	v[H_PLATFORM_RUN] = g->conf.platform_run_id;
	v[H_SCENARIO_RUN] = g->conf.scenario_run_id;
	v[H_PHASE] = g->phase_id;
	v[H_LANE] = g->conf.runtime_lane;
	v[H_CLASS] = g->conf.event_class;
	for (int i = 0; i < H_COUNT; i++) {
		g->kafka_hdr_val[i] = v[i];
		g->kafka_hdr_len[i] = v[i] ? strlen(v[i]) : 0;
	}
}

/* Kafka: the record headers, key = account_id, value = the envelope
 * bytes. The value is not copied: the slot keeps the body until the
 * delivery report, after which librdkafka no longer reads it, and free()
 * destroys the producer before the slots. */
static rd_kafka_resp_err_t start_kafka(struct shard *sh, struct slot *s)
{
	struct fp_loadgen *g = sh->g;
	const struct fp_event *ev = &s->ev;
	char tp[FP_TRACEPARENT_MAX];
	const char *val[H_COUNT];
	size_t len[H_COUNT];
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(H_COUNT);
	rd_kafka_resp_err_t e;

	if (!hdrs)
		return RD_KAFKA_RESP_ERR__FAIL;
	fp_event_traceparent(ev, tp);
	memcpy(val, g->kafka_hdr_val, sizeof val);
	memcpy(len, g->kafka_hdr_len, sizeof len);
	val[H_TRACEPARENT] = tp;
	len[H_TRACEPARENT] = FP_TRACEPARENT_MAX - 1;
	val[H_EVENT_ID] = ev->event_id;
	len[H_EVENT_ID] = strlen(ev->event_id);
	val[H_PAYLOAD_HASH] = ev->payload_hash[0] ? ev->payload_hash : NULL;
	len[H_PAYLOAD_HASH] = 64;
	val[H_SCHEMA] = ev->schema_version;
	len[H_SCHEMA] = strlen(ev->schema_version);
	for (int i = 0; i < H_COUNT; i++)
		if (val[i])
			rd_kafka_header_add(hdrs, kafka_hdr_names[i].name,
					    (ssize_t)kafka_hdr_names[i].len,
					    val[i], (ssize_t)len[i]);
	s->token = sh->next_token++ * (uint64_t)sh->nslots +
		   (uint64_t)(s - sh->slots);
	e = rd_kafka_producev(
		g->rk, RD_KAFKA_V_TOPIC(g->spec.kafka_topic),
		RD_KAFKA_V_MSGFLAGS(0),
		RD_KAFKA_V_KEY(ev->account_id, strlen(ev->account_id)),
		RD_KAFKA_V_VALUE(ev->body, ev->body_len),
		RD_KAFKA_V_HEADERS(hdrs),
		RD_KAFKA_V_OPAQUE((void *)(uintptr_t)s->token), RD_KAFKA_V_END);
	if (e)
		rd_kafka_headers_destroy(hdrs); /* ours again on failure */
	return e;
}

/* Send the event the slot holds. */
static void start_request(struct shard *sh, struct slot *s, enum kind kind,
			  int64_t intended)
{
	struct fp_loadgen *g = sh->g;
	const char *why = NULL;
	int64_t now;
	int late;

	s->busy = 1;
	s->kind = kind;
	s->intended_ns = intended;
	s->resp_len = 0;
	if (s->resp) {
		s->resp[0] = '\0';
		s->errbuf[0] = '\0';
	}

	now = fp_mono_ns();
	s->sent_ns = now;
	late = kind == KIND_ORIGINAL && now - intended > LATE_NS;
	pthread_mutex_lock(&sh->mu);
	sh->in_flight++;
	if (kind == KIND_ORIGINAL) {
		sh->sent++;
		sh->sent_by_kind[s->ev.kind]++;
	} else {
		sh->retries_sent++;
	}
	sh->late += late;
	pthread_mutex_unlock(&sh->mu);

	if (g->kafka) {
		rd_kafka_resp_err_t e = start_kafka(sh, s);
		struct fp_ledger_row r;
		char errtxt[256];

		if (!e)
			return;
		/* Refused before it left the process (too large, queue
		 * full, unknown topic): certainly not on the bus. */
		row_base(g, &s->ev, kind, &r);
		r.intended_ns = rel(g, intended);
		r.sent_ns = rel(g, now);
		snprintf(errtxt, sizeof errtxt, "produce: %s",
			 rd_kafka_err2str(e));
		r.error = errtxt;
		complete(sh, s, &r, O_REJ, fp_mono_ns());
		return;
	}
	if (start_http(sh, s, &why) != 0)
		finish_http(sh, s, CURLE_FAILED_INIT, why, fp_mono_ns());
}

static void send_original(struct shard *sh)
{
	struct fp_loadgen *g = sh->g;
	int64_t k = sh->next_k;
	int64_t intended = intended_of(g, k);
	struct slot *s = &sh->slots[sh->free_idx[--sh->nfree]];
	struct fp_err err = {0};

	sh->next_k += g->nshards;
	if (fp_event_build_with(sh->builder, &g->mix, g->seq_base + (uint64_t)k,
				g->wall0 + (intended - g->mono0), &s->ev,
				&err) != FP_OK) {
		struct fp_event tmp;

		fp_event_draw(&g->mix, g->seq_base + (uint64_t)k, &tmp);
		ledger_dropped(sh, &tmp, KIND_ORIGINAL, intended,
			       "out of memory building the event");
		pthread_mutex_lock(&sh->mu);
		sh->dropped++;
		pthread_mutex_unlock(&sh->mu);
		sh->free_idx[sh->nfree++] = (int)(s - sh->slots);
		return;
	}
	fp_event_new_trace(&s->ev, &sh->trace_rng);
	start_request(sh, s, KIND_ORIGINAL, intended);
}

static void free_pending(struct pending *p)
{
	fp_event_release(&p->ev);
	free(p);
}

static void send_pending(struct shard *sh)
{
	struct pending *p = sh->rq_head;
	struct slot *s;
	struct fp_err err = {0};
	enum kind kind;
	int64_t due;

	sh->rq_head = p->next;
	if (!sh->rq_head)
		sh->rq_tail = NULL;
	/* Same identity, same trace; a new span marks the second attempt.
	 * A retry re-sends the same bytes; a conflict, other bytes. */
	fp_event_new_span(&p->ev, &sh->trace_rng);
	if (p->kind == KIND_CONFLICT &&
	    fp_event_conflict_with(sh->builder, &p->ev, &err) != FP_OK) {
		ledger_dropped(sh, &p->ev, KIND_CONFLICT, p->due_ns, err.msg);
		free_pending(p);
		return;
	}
	/* The event moves into the slot, whose own buffer goes. */
	s = &sh->slots[sh->free_idx[--sh->nfree]];
	fp_event_release(&s->ev);
	s->ev = p->ev;
	kind = p->kind;
	due = p->due_ns;
	free(p);
	start_request(sh, s, kind, due);
}

/* ---- completion ---------------------------------------------------------- */

/* Queue the second attempt of the slot's event: a retry (same bytes) or
 * the conflicting re-send of a hash_conflict event. The event moves out
 * of the slot. @returns 1 when queued. */
static int queue_second(struct shard *sh, struct slot *s, enum kind kind,
			int64_t done)
{
	struct pending *p = malloc(sizeof *p);

	if (!p) {
		ledger_dropped(sh, &s->ev, kind, done + sh->g->spec.retry_delay_ns,
			       "out of memory scheduling the re-send");
		return 0;
	}
	p->next = NULL;
	p->ev = s->ev;
	s->ev.body = NULL; /* now the pending's */
	s->ev.body_cap = 0;
	s->ev.body_len = 0;
	p->kind = kind;
	p->due_ns = done + sh->g->spec.retry_delay_ns;
	if (sh->rq_tail)
		sh->rq_tail->next = p;
	else
		sh->rq_head = p;
	sh->rq_tail = p;
	return 1;
}

/* Common end of every sent attempt: ledger row, counters, histograms,
 * slot back to the pool, and the event's second attempt if it has one. */
static void complete(struct shard *sh, struct slot *s, struct fp_ledger_row *r,
		     enum outcome o, int64_t done)
{
	enum kind kind = s->kind;

	r->done_ns = rel(sh->g, done);
	r->outcome = outcome_names[o];
	fp_ledger_stream_write(sh->ledger, r);

	pthread_mutex_lock(&sh->mu);
	sh->in_flight--;
	switch (o) {
	case O_OK: sh->accepted++; break;
	case O_DUP: sh->duplicates++; break;
	case O_CONFLICT: sh->conflicts++; break;
	case O_REJ: sh->rejected++; break;
	case O_THROTTLED: sh->throttled++; break;
	case O_INFO: sh->failed++; break;
	}
	fp_hist_record(sh->lat, done - s->intended_ns);
	fp_hist_record(sh->svc, done - s->sent_ns);
	pthread_mutex_unlock(&sh->mu);

	s->busy = 0;
	sh->free_idx[sh->nfree++] = (int)(s - sh->slots);

	if (kind == KIND_ORIGINAL && s->ev.retry)
		queue_second(sh, s, KIND_RETRY, done);
	else if (kind == KIND_ORIGINAL && s->ev.kind == FP_EVENT_HASH_CONFLICT)
		queue_second(sh, s, KIND_CONFLICT, done);
}

static void finish_http(struct shard *sh, struct slot *s, CURLcode res,
			const char *why, int64_t done)
{
	struct fp_loadgen *g = sh->g;
	struct fp_ledger_row r;
	struct receipt rc = {0};
	char errtxt[CURL_ERROR_SIZE + 64];
	long code = 0;
	enum outcome o;

	if (res == CURLE_OK)
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	row_base(g, &s->ev, s->kind, &r);
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
		if (parse_receipt(s->resp, s->resp_len, &rc)) {
			r.receipt_status = rc.status;
			r.topic = rc.topic;
			r.partition = rc.partition;
			r.kafka_offset = rc.offset;
		}
		if (o != O_OK && o != O_DUP)
			snprintf(errtxt, sizeof errtxt, "http %ld%s%s", code,
				 rc.reason ? ": " : "",
				 rc.reason ? rc.reason : "");
	}
	r.error = errtxt[0] ? errtxt : NULL;
	/* The handle leaves the multi before the row is complete: the slot
	 * may be reused by the re-send queued in complete(). */
	curl_multi_remove_handle(sh->multi, s->easy);
	complete(sh, s, &r, o, done);
	json_decref(rc.json); /* after the row: it borrows its strings */
}

static int harvest_http(struct shard *sh)
{
	CURLMsg *m;
	int left, n = 0;

	while ((m = curl_multi_info_read(sh->multi, &left))) {
		char *priv = NULL;
		CURLcode res;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		/* m points into the multi and dies with remove_handle: the
		 * result is read before finish_http() removes the handle. */
		res = m->data.result;
		finish_http(sh, (struct slot *)(void *)priv, res, NULL,
			    fp_mono_ns());
		n++;
	}
	return n;
}

/* Delivery report, served by rd_kafka_poll() on the sender thread (shard
 * 0, the only one on channel kafka) or during free, when g->closing drops
 * it. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *opaque)
{
	struct fp_loadgen *g = opaque;
	struct shard *sh = &g->shards[0];
	uint64_t token = (uint64_t)(uintptr_t)m->_private;
	struct slot *s = &sh->slots[token % (uint64_t)sh->nslots];
	struct fp_ledger_row r;
	char errtxt[256];
	int64_t done = fp_mono_ns();

	(void)rk;
	if (g->closing || !s->busy || s->token != token)
		return; /* aborted already: its row is written */
	sh->delivered++;
	row_base(g, &s->ev, s->kind, &r);
	r.intended_ns = rel(g, s->intended_ns);
	r.sent_ns = rel(g, s->sent_ns);
	if (m->err) {
		/* Timed out or failed in flight: it may have been written,
		 * so indeterminate, like an HTTP transport error. */
		snprintf(errtxt, sizeof errtxt, "delivery: %s",
			 rd_kafka_err2str(m->err));
		r.error = errtxt;
		complete(sh, s, &r, O_INFO, done);
		return;
	}
	r.topic = g->spec.kafka_topic;
	r.partition = m->partition;
	r.kafka_offset = m->offset >= 0 ? m->offset : FP_LEDGER_NULL;
	complete(sh, s, &r, O_OK, done);
}

/* curl's open-socket callback (every slot's easy): a connection socket
 * this shard will track, see struct fdstate. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose,
				 struct curl_sockaddr *a)
{
	struct shard *sh = clientp;
	int fd;

	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	if (fd >= sh->nfds) {
		int n = fd + 64;
		struct fdstate *f = realloc(sh->fds, (size_t)n * sizeof *f);

		if (!f) {
			close(fd);
			return CURL_SOCKET_BAD;
		}
		memset(f + sh->nfds, 0, (size_t)(n - sh->nfds) * sizeof *f);
		sh->fds = f;
		sh->nfds = n;
	}
	sh->fds[fd] = (struct fdstate){.ours = 1};
	return fd;
}

/* curl's close-socket callback: closing drops the fd from the epoll set. */
static int close_socket(void *clientp, curl_socket_t fd)
{
	struct shard *sh = clientp;

	if (fd >= 0 && fd < sh->nfds)
		sh->fds[fd] = (struct fdstate){0};
	return close(fd);
}

static int epoll_set(struct shard *sh, int fd, uint32_t events, int in_set)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.fd = fd;
	if (epoll_ctl(sh->ep_fd, in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
		      &ev) == 0)
		return 0;
	/* In doubt about the set (an fd closed and reused behind our back):
	 * the other operation. */
	if ((errno == ENOENT || errno == EEXIST) &&
	    epoll_ctl(sh->ep_fd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
		      fd, &ev) == 0)
		return 0;
	FP_WARN("event=load_epoll_ctl fd=%d errno=%d", fd, errno);
	return -1;
}

/*
 * libcurl's socket callback: keep the shard's epoll set in step with the
 * sockets curl wants watched. A REMOVE of a tracked connection socket only
 * clears want (an event on it then takes it out of the set for real, in
 * wait_until); re-adding it with the events it already has costs nothing.
 * socketp marks an untracked fd that is in the set (curl_multi_assign).
 */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
		     void *socketp)
{
	struct shard *sh = userp;
	struct fdstate *f = fd >= 0 && fd < sh->nfds && sh->fds[fd].ours
				    ? &sh->fds[fd]
				    : NULL;
	uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
			  (what & CURL_POLL_OUT ? EPOLLOUT : 0u);

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (f)
			f->want = 0;
		else if (socketp)
			epoll_ctl(sh->ep_fd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	if (f) {
		f->want = 1;
		if (f->reg == events)
			return 0;
		if (epoll_set(sh, fd, events, f->reg != 0) != 0)
			return -1; /* curl fails the transfers on it */
		f->reg = (uint8_t)events;
		return 0;
	}
	if (epoll_set(sh, fd, events, socketp != NULL) != 0)
		return -1;
	if (!socketp)
		curl_multi_assign(sh->multi, fd, sh);
	return 0;
}

/* libcurl's timer callback: when to call it back with CURL_SOCKET_TIMEOUT.
 * 0 (a handle was just added) means at once; no clock read for it. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct shard *sh = userp;

	(void)multi;
	sh->curl_due = timeout_ms < 0    ? INT64_MAX
		       : timeout_ms == 0 ? 0
					 : fp_mono_ns() +
					       (int64_t)timeout_ms * FP_NS_PER_MS;
	return 0;
}

/* Serve what has completed; @returns how many requests finished. HTTP:
 * curl's timeout first if due (it also starts the transfers of handles
 * just added), then the finished transfers. */
static int harvest(struct shard *sh, int64_t now)
{
	int still;

	if (!sh->g->kafka) {
		if (sh->curl_due <= now)
			curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0,
						 &still);
		return harvest_http(sh);
	}
	sh->delivered = 0;
	rd_kafka_poll(sh->g->rk, 0);
	return sh->delivered;
}

/* HTTP: the timer fd fires at t (absolute monotonic), INT64_MAX = never. */
static void arm_timer(struct shard *sh, int64_t t)
{
	struct itimerspec its;

	if (t == sh->timer_armed)
		return;
	memset(&its, 0, sizeof its);
	if (t != INT64_MAX) {
		its.it_value.tv_sec = (time_t)(t / FP_NS_PER_S);
		its.it_value.tv_nsec = (long)(t % FP_NS_PER_S);
	}
	if (timerfd_settime(sh->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		sh->timer_armed = t;
}

/* Empty a counter fd (timer or eventfd); it is non-blocking. */
static void drain_fd(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		FP_DEBUG("event=load_fd_read fd=%d errno=%d", fd, errno);
}

/*
 * Block until something may have completed or the absolute time t.
 * HTTP: epoll_wait on the shard's set; the timer fd, armed at t, ends the
 * wait on time to the microsecond (epoll's own timeout is in whole ms,
 * too coarse for sends due every 100 us, and spinning instead would take
 * a core from the target on a small machine). Every ready socket goes to
 * curl_multi_socket_action, which serves only the transfers on it.
 * Kafka: below a millisecond, sleep to t (reports wait at most that
 * long); the caller has just served the reports (harvest), so polling
 * again first would only cost a queue lock per wake-up.
 */
static void wait_until(struct shard *sh, int64_t t, int64_t now)
{
	int64_t wait_ns = t - now;
	int64_t cap = sh->g->kafka ? MAX_POLL_MS : HTTP_MAX_WAIT_MS;
	int ms = wait_ns >= cap * FP_NS_PER_MS ? (int)cap
					       : (int)(wait_ns / FP_NS_PER_MS);
	struct epoll_event evs[MAX_EVENTS];
	int n;

	if (sh->g->kafka) {
		if (ms >= 1) {
			rd_kafka_poll(sh->g->rk, ms);
		} else {
			struct timespec ts = {0, (long)wait_ns};

			nanosleep(&ts, NULL);
		}
		return;
	}
	if (wait_ns < cap * FP_NS_PER_MS) {
		arm_timer(sh, t);
		ms++; /* the timer fd ends the wait; this is a backstop */
	}
	n = epoll_wait(sh->ep_fd, evs, MAX_EVENTS, ms);
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd, still, mask = 0;
		uint32_t e = evs[i].events;

		if (fd == sh->timer_fd) {
			drain_fd(fd);
			sh->timer_armed = INT64_MAX;
			continue;
		}
		if (fd == sh->wake_fd) {
			drain_fd(fd);
			continue;
		}
		if (fd < sh->nfds && sh->fds[fd].ours && !sh->fds[fd].want) {
			/* An idle cached connection (the peer closed it, say):
			 * curl checks it before reuse; out of the set now. */
			epoll_ctl(sh->ep_fd, EPOLL_CTL_DEL, fd, NULL);
			sh->fds[fd].reg = 0;
			continue;
		}
		if (e & EPOLLIN)
			mask |= CURL_CSELECT_IN;
		if (e & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (e & (EPOLLERR | EPOLLHUP))
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(sh->multi, fd, mask, &still);
	}
}

/* ---- the sender threads ------------------------------------------------------ */

/* The window end of a stopped phase: the first shard to see the stop
 * fixes it, so every shard closes at the same instant. */
static int64_t stop_end(struct fp_loadgen *g, int64_t now)
{
	long long want = now < g->phase_end ? now : g->phase_end, none = 0;

	atomic_compare_exchange_strong(&g->stop_end, &none, want);
	return (int64_t)atomic_load(&g->stop_end);
}

/* Close this shard's window at `end`: its originals not yet sent are
 * dropped. The last shard to close books the phase window. */
static void close_window(struct shard *sh, int64_t end, const char *why)
{
	struct fp_loadgen *g = sh->g;
	int64_t ndrop = 0;

	for (int64_t k = sh->next_k; k < g->n_planned; k += g->nshards) {
		struct fp_event ev;

		fp_event_draw(&g->mix, g->seq_base + (uint64_t)k, &ev);
		ledger_dropped(sh, &ev, KIND_ORIGINAL, intended_of(g, k), why);
		ndrop++;
	}
	sh->next_k = g->n_planned;
	sh->window_open = 0;
	sh->drain_deadline = end + g->spec.timeout_ns + g->spec.retry_delay_ns +
			     DRAIN_SLACK_NS;
	pthread_mutex_lock(&sh->mu);
	sh->dropped += ndrop;
	pthread_mutex_unlock(&sh->mu);
	pthread_mutex_lock(&g->mu);
	g->phase_dropped += ndrop;
	if (--g->open_windows == 0) {
		g->active_done_ns += end - g->phase_start;
		g->planned_done += fp_sched_planned_before(g->sched,
							   end - g->phase_start);
		g->cur_active = 0;
		if (g->phase_dropped > 0)
			FP_WARN("event=load_dropped phase=%s dropped=%" PRId64
				" reason=%s",
				g->phase_id, g->phase_dropped, why);
	}
	pthread_mutex_unlock(&g->mu);
}

/* Past the drain deadline: abort what is left so wait() stays bounded. */
static void abort_all(struct shard *sh)
{
	struct fp_loadgen *g = sh->g;
	int64_t now = fp_mono_ns();

	if (g->kafka) {
		/* Purged records report at once with a purge error (info);
		 * a short poll serves those reports. */
		rd_kafka_purge(g->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
		for (int i = 0; i < 20 && sh->nfree < sh->nslots; i++)
			rd_kafka_poll(g->rk, 50);
	}
	for (int i = 0; i < sh->nslots; i++) {
		struct slot *s = &sh->slots[i];
		struct fp_ledger_row r;

		if (!s->busy)
			continue;
		if (!g->kafka) {
			finish_http(sh, s, CURLE_OPERATION_TIMEDOUT,
				    "aborted: drain deadline passed", now);
			continue;
		}
		row_base(g, &s->ev, s->kind, &r);
		r.intended_ns = rel(g, s->intended_ns);
		r.sent_ns = rel(g, s->sent_ns);
		r.error = "aborted: drain deadline passed";
		complete(sh, s, &r, O_INFO, now);
		/* librdkafka may still hold the value (it was not copied):
		 * the buffer leaks rather than being rewritten under it.
		 * Only after a broker hung past the drain deadline. */
		s->ev.body = NULL;
		s->ev.body_cap = 0;
		s->ev.body_len = 0;
	}
	while (sh->rq_head) {
		struct pending *p = sh->rq_head;

		sh->rq_head = p->next;
		ledger_dropped(sh, &p->ev, p->kind, p->due_ns,
			       "drain deadline passed");
		free_pending(p);
	}
	sh->rq_tail = NULL;
	FP_WARN("event=load_drain_aborted phase=%s shard=%d", g->phase_id, sh->id);
}

static int64_t next_due(const struct shard *sh)
{
	int64_t t = INT64_MAX;

	if (sh->window_open && sh->next_k < sh->g->n_planned)
		t = intended_of(sh->g, sh->next_k);
	if (sh->rq_head && sh->rq_head->due_ns < t)
		t = sh->rq_head->due_ns;
	return t;
}

/*
 * Ask the scheduler for a short time slice (EEVDF, Linux 6.12+: a task
 * with a shorter slice gets an earlier deadline, so it runs sooner when it
 * wakes, which is what an open-model sender needs on a busy machine; it
 * does not get more CPU). Unprivileged for SCHED_OTHER; on older kernels
 * the call fails or the value is ignored, and nothing else changes.
 */
static void short_slice(void)
{
#ifdef SYS_sched_setattr
	struct {
		uint32_t size, policy;
		uint64_t flags;
		int32_t nice;
		uint32_t priority;
		uint64_t runtime, deadline, period;
	} attr;

	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr;
	attr.policy = 0; /* SCHED_OTHER */
	attr.nice = getpriority(PRIO_PROCESS, 0);
	attr.runtime = 100 * 1000; /* ns: the shortest slice allowed */
	if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0)
		FP_DEBUG("event=load_sched_setattr errno=%d", errno);
#endif
}

static void *sender_main(void *arg)
{
	struct shard *sh = arg;
	struct fp_loadgen *g = sh->g;

	/* HTTP: sleeps end when asked to, not up to 50 us later (the
	 * default slack), which is half the gap between sends at 10k
	 * events/s. Kafka keeps the default: a produced record waits
	 * linger.ms (milliseconds) in librdkafka's queue before its batch
	 * leaves, so waking for every record to the microsecond changes
	 * nothing on the wire and costs one wake-up per record; a coarser
	 * wake sends the records due by then together. Lateness is still
	 * measured from the actual send. */
	prctl(PR_SET_TIMERSLACK,
	      g->kafka ? KAFKA_TIMER_SLACK_NS : HTTP_TIMER_SLACK_NS, 0UL, 0UL,
	      0UL);
	short_slice();
	{
		char name[16];

		snprintf(name, sizeof name, "fp-send-%d", sh->id);
		pthread_setname_np(pthread_self(), name);
	}
	for (;;) {
		int64_t now = fp_mono_ns(), t;

		if (sh->window_open) {
			if (atomic_load(&g->stop))
				close_window(sh, stop_end(g, now), "stopped");
			else if (now >= g->phase_end)
				close_window(sh, g->phase_end, "phase window ended");
		}
		/* Everything due goes out now, oldest intended time first, at
		 * most SERVE_EVERY sends at a time: a long run of late sends
		 * (Kafka: up to the whole concurrency) then stops to serve the
		 * completions, so finished records are freed while the run
		 * goes on rather than after it (bench_kafka's peak RSS fell
		 * from 120-134 MB to 65-118 MB), and the window end and stop()
		 * are checked again at the top of this loop, so a backlog
		 * overruns the window by at most one such run. */
		for (int n = 0; n < SERVE_EVERY && sh->nfree > 0 &&
				(t = next_due(sh)) <= now;
		     n++) {
			if (sh->rq_head && sh->rq_head->due_ns == t)
				send_pending(sh);
			else
				send_original(sh);
		}
		if (harvest(sh, now) > 0)
			continue; /* slots freed: late sends may go now */

		if (!sh->window_open && sh->nfree == sh->nslots && !sh->rq_head)
			break;
		if (!sh->window_open && now >= sh->drain_deadline) {
			abort_all(sh);
			break;
		}

		t = sh->nfree > 0 ? next_due(sh) : INT64_MAX;
		if (sh->window_open && g->phase_end < t)
			t = g->phase_end;
		if (!sh->window_open && sh->drain_deadline < t)
			t = sh->drain_deadline;
		if (!g->kafka && sh->curl_due < t)
			t = sh->curl_due;
		now = fp_mono_ns();
		if (t > now)
			wait_until(sh, t, now);
	}
	fp_ledger_stream_flush(sh->ledger);
	if (sh->id == 0)
		FP_INFO("event=load_phase_done phase=%s planned=%" PRId64,
			g->phase_id, g->n_planned);
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
	/* The profile's properties, and its MSK IAM token callback if any. */
	if (fp_kafka_conf_apply(kc, g->conf.kafka_props, e, sizeof e)) {
		fp_err_set(err, FP_EINVAL, "load: kafka property: %s", e);
		goto fail;
	}
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

/* The highest arrival rate the spec can plan: base rate (or the larger
 * ramp end) times every burst multiplier above 1 (bursts may overlap). */
static double peak_estimate(const struct fp_load_spec *sp)
{
	double r = sp->ramp_over_ns > 0
			   ? (sp->ramp_from > sp->ramp_to ? sp->ramp_from
							  : sp->ramp_to)
			   : sp->rate;

	for (size_t i = 0; i < sp->n_bursts; i++)
		if (sp->bursts[i].multiplier > 1)
			r *= sp->bursts[i].multiplier;
	return r;
}

/* Kafka: one (delivery reports are served by the polling thread, which
 * must own the slots). HTTP: conf->senders, or one per RATE_PER_SENDER
 * planned events/s up to the CPUs online; never more than the
 * concurrency, each shard needs a slot. */
static int shard_count(const struct fp_load_conf *conf)
{
	const struct fp_load_spec *sp = conf->spec;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int n;

	if (sp->channel == FP_CHANNEL_KAFKA)
		return 1;
	if (conf->senders > 0) {
		n = conf->senders;
	} else {
		double want = ceil(peak_estimate(sp) / RATE_PER_SENDER);

		n = want < 1 ? 1 : want > (double)MAX_SENDERS ? MAX_SENDERS
							       : (int)want;
		if (cpus > 0 && n > cpus)
			n = (int)cpus;
	}
	if (n > MAX_SENDERS)
		n = MAX_SENDERS;
	if (n > sp->concurrency)
		n = sp->concurrency;
	return n < 1 ? 1 : n;
}

/* HTTP: the epoll set with the timer fd and the stop eventfd in it. */
static int shard_fds(struct shard *sh)
{
	struct epoll_event ev;

	sh->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	sh->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	sh->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->ep_fd < 0 || sh->timer_fd < 0 || sh->wake_fd < 0)
		return -1;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.fd = sh->timer_fd;
	if (epoll_ctl(sh->ep_fd, EPOLL_CTL_ADD, sh->timer_fd, &ev) != 0)
		return -1;
	ev.data.fd = sh->wake_fd;
	return epoll_ctl(sh->ep_fd, EPOLL_CTL_ADD, sh->wake_fd, &ev);
}

static int shard_init(struct fp_loadgen *g, struct shard *sh, int id,
		      int nslots, struct fp_err *err)
{
	sh->g = g;
	sh->id = id;
	sh->ep_fd = sh->timer_fd = sh->wake_fd = -1;
	sh->timer_armed = INT64_MAX;
	sh->curl_due = INT64_MAX;
	pthread_mutex_init(&sh->mu, NULL);
	fp_rng_seed(&sh->trace_rng, g->trace_seed,
		    (uint64_t)g->wall0 + (uint64_t)id);
	sh->nslots = nslots;
	sh->slots = calloc((size_t)nslots, sizeof *sh->slots);
	sh->free_idx = calloc((size_t)nslots, sizeof *sh->free_idx);
	sh->lat = fp_hist_new();
	sh->svc = fp_hist_new();
	if (!sh->slots || !sh->free_idx || !sh->lat || !sh->svc ||
	    fp_ledger_stream_new(g->ledger, &sh->ledger) != 0)
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	if (!g->kafka) {
		sh->multi = curl_multi_init();
		if (!sh->multi)
			return fp_err_set(err, FP_ENOMEM, "load: out of memory");
		curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, (long)nslots);
		curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
		curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
		curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
		if (shard_fds(sh) != 0)
			return fp_err_set(err, FP_EINTERNAL,
					  "load: epoll / timerfd / eventfd: %s",
					  strerror(errno));
	}
	for (int i = 0; i < nslots; i++) {
		if (!g->kafka && setup_slot(g, &sh->slots[i]) != 0)
			return fp_err_set(err, FP_EINTERNAL,
					  "load: cannot set up curl handle for '%s'",
					  g->conf.url);
		if (!g->kafka) {
			CURL *e = sh->slots[i].easy;

			curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
			curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, sh);
			curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
			curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, sh);
		}
		sh->free_idx[sh->nfree++] = nslots - 1 - i;
	}
	return FP_OK;
}

static void shard_fini(struct shard *sh)
{
	if (!sh->g) /* never initialised */
		return;
	while (sh->rq_head) { /* only after an aborted drain; defensive */
		struct pending *p = sh->rq_head;

		sh->rq_head = p->next;
		free_pending(p);
	}
	if (sh->slots) {
		for (int i = 0; i < sh->nslots; i++) {
			struct slot *s = &sh->slots[i];

			if (s->easy) {
				if (s->busy && sh->multi)
					curl_multi_remove_handle(sh->multi, s->easy);
				curl_easy_cleanup(s->easy);
			}
			curl_slist_free_all(s->hdrs);
			fp_event_release(&s->ev);
			free(s->resp);
		}
	}
	/* The multi first: its clean-up may still call on_socket. */
	if (sh->multi)
		curl_multi_cleanup(sh->multi);
	if (sh->timer_fd >= 0)
		close(sh->timer_fd);
	if (sh->wake_fd >= 0)
		close(sh->wake_fd);
	if (sh->ep_fd >= 0)
		close(sh->ep_fd);
	free(sh->fds);
	fp_ledger_stream_free(sh->ledger);
	fp_event_builder_free(sh->builder);
	fp_hist_free(sh->lat);
	fp_hist_free(sh->svc);
	free(sh->slots);
	free(sh->free_idx);
	pthread_mutex_destroy(&sh->mu);
}

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
	if (conf->senders < 0 || conf->senders > MAX_SENDERS)
		return fp_err_set(err, FP_EINVAL,
				  "load: senders must be in [0, %d]", MAX_SENDERS);

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return fp_err_set(err, FP_EINTERNAL, "curl_global_init: %s",
				  curl_easy_strerror(curl_init_rc));
	/* Trace ids must be unique across runs, so their streams are seeded
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
	atomic_init(&g->stop_end, 0);
	pthread_mutex_init(&g->mu, NULL);
	for (int i = 0; i < 16; i++) {
		int c = seedhex[i];

		seed = seed << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	g->trace_seed = seed;

	if (fp_ledger_open(conf->ledger_path, &g->ledger, err) != FP_OK) {
		rc = err ? err->rc : FP_EIO;
		fp_loadgen_free(g);
		return rc;
	}
	if (g->kafka) {
		rc = kafka_setup(g, err);
		if (rc) {
			fp_loadgen_free(g);
			return rc;
		}
	}
	g->nshards = shard_count(conf);
	g->shards = calloc((size_t)g->nshards, sizeof *g->shards);
	if (!g->shards) {
		fp_loadgen_free(g);
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	}
	/* The concurrency cap is split across the shards. */
	for (int i = 0; i < g->nshards; i++) {
		int n = sp->concurrency / g->nshards +
			(i < sp->concurrency % g->nshards);

		rc = shard_init(g, &g->shards[i], i, n, err);
		if (rc) {
			fp_loadgen_free(g);
			return rc;
		}
	}
	*out = g;
	return FP_OK;
}

static void *sender_main(void *arg);

int fp_loadgen_start(struct fp_loadgen *g, const char *phase_id,
		     int64_t duration_ns, struct fp_err *err)
{
	struct fp_sched *sched, *old;
	struct fp_event_ids ids;
	char *pid;
	int rc;

	if (g->running)
		return fp_err_set(err, FP_EINVAL,
				  "load: a phase is running; call fp_loadgen_wait first");
	if (duration_ns <= 0 || !phase_id)
		return fp_err_set(err, FP_EINVAL,
				  "load: phase id and a positive duration are required");
	ids = (struct fp_event_ids){
		.platform_run_id = g->conf.platform_run_id,
		.scenario_run_id = g->conf.scenario_run_id,
		.phase_id = phase_id,
		.runtime_lane = g->conf.runtime_lane,
		.event_class = g->conf.event_class,
	};
	for (int i = 0; i < g->nshards; i++) {
		struct fp_event_builder *b;

		rc = fp_event_builder_new(&ids, &b, err);
		if (rc)
			return rc;
		fp_event_builder_free(g->shards[i].builder);
		g->shards[i].builder = b;
	}
	if (fp_sched_build(&g->spec, duration_ns, &sched) != 0)
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	pid = strdup(phase_id);
	if (!pid) {
		fp_sched_free(sched);
		return fp_err_set(err, FP_ENOMEM, "load: out of memory");
	}
	free(g->phase_id);
	g->phase_id = pid;
	kafka_hdr_consts(g);
	g->n_planned = fp_sched_planned(sched);
	g->seq_base = g->next_seq;
	g->next_seq += (uint64_t)g->n_planned;
	atomic_store(&g->stop, 0);
	atomic_store(&g->stop_end, 0);
	g->phase_start = fp_mono_ns();
	g->phase_end = g->phase_start + duration_ns;
	for (int i = 0; i < g->nshards; i++) {
		g->shards[i].next_k = i;
		g->shards[i].window_open = 1;
	}

	pthread_mutex_lock(&g->mu);
	old = g->sched;
	g->sched = sched;
	g->planned += g->n_planned;
	if (fp_sched_peak(sched) > g->peak_rate)
		g->peak_rate = fp_sched_peak(sched);
	g->open_windows = g->nshards;
	g->phase_dropped = 0;
	g->cur_active = 1;
	g->cur_start = g->phase_start;
	g->cur_end = g->phase_end;
	pthread_mutex_unlock(&g->mu);
	fp_sched_free(old);

	FP_INFO("event=load_phase_start phase=%s channel=%s planned=%" PRId64
		" peak_rate=%.3f concurrency=%d senders=%d",
		phase_id, g->kafka ? "kafka" : "http", g->n_planned,
		fp_sched_peak(sched), g->spec.concurrency, g->nshards);
	for (int i = 0; i < g->nshards; i++) {
		rc = pthread_create(&g->shards[i].thread, NULL, sender_main,
				    &g->shards[i]);
		if (rc != 0) {
			/* The started ones stop at once and are joined; their
			 * unsent events are ledgered as dropped. */
			fp_loadgen_stop(g);
			for (int j = 0; j < i; j++)
				pthread_join(g->shards[j].thread, NULL);
			pthread_mutex_lock(&g->mu);
			g->cur_active = 0;
			pthread_mutex_unlock(&g->mu);
			return fp_err_set(err, FP_EINTERNAL,
					  "load: cannot start a sender thread: %s",
					  strerror(rc));
		}
	}
	g->running = 1;
	return FP_OK;
}

void fp_loadgen_stop(struct fp_loadgen *g)
{
	atomic_store(&g->stop, 1);
	/* The eventfd is in each HTTP sender's epoll set, so its wait ends at
	 * once (curl_multi_wakeup does not reach a wait outside curl). The
	 * Kafka sender notices within its poll bound (MAX_POLL_MS). */
	for (int i = 0; i < g->nshards; i++) {
		uint64_t one = 1;

		if (g->shards[i].wake_fd >= 0 &&
		    write(g->shards[i].wake_fd, &one, sizeof one) < 0 &&
		    errno != EAGAIN)
			FP_DEBUG("event=load_wake errno=%d", errno);
	}
}

static void join_all(struct fp_loadgen *g)
{
	if (!g->running)
		return;
	/* Bounded: a sender leaves by itself at the latest at its drain
	 * deadline (window end + timeout + retry delay + 5 s). */
	for (int i = 0; i < g->nshards; i++)
		pthread_join(g->shards[i].thread, NULL);
	g->running = 0;
}

int fp_loadgen_wait(struct fp_loadgen *g, struct fp_err *err)
{
	join_all(g);
	return fp_ledger_sync(g->ledger, err);
}

void fp_loadgen_stats(struct fp_loadgen *g, struct fp_load_stats *st)
{
	int64_t now = fp_mono_ns(), planned_active;
	struct fp_hist *lat = fp_hist_new(), *svc = fp_hist_new();

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
	pthread_mutex_unlock(&g->mu);
	for (int i = 0; i < g->nshards; i++) {
		struct shard *sh = &g->shards[i];

		pthread_mutex_lock(&sh->mu);
		st->sent += sh->sent;
		st->retries_sent += sh->retries_sent;
		st->accepted += sh->accepted;
		st->duplicates += sh->duplicates;
		st->conflicts += sh->conflicts;
		st->rejected += sh->rejected;
		st->throttled += sh->throttled;
		st->failed += sh->failed;
		st->late += sh->late;
		st->dropped += sh->dropped;
		st->in_flight += sh->in_flight;
		for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
			st->sent_by_kind[k] += sh->sent_by_kind[k];
		if (lat && svc) {
			fp_hist_merge(lat, sh->lat);
			fp_hist_merge(svc, sh->svc);
		}
		pthread_mutex_unlock(&sh->mu);
	}
	if (lat && svc) {
		st->p50_ns = fp_hist_percentile(lat, 50);
		st->p95_ns = fp_hist_percentile(lat, 95);
		st->p99_ns = fp_hist_percentile(lat, 99);
		st->max_ns = fp_hist_max(lat);
		st->svc_p50_ns = fp_hist_percentile(svc, 50);
		st->svc_p95_ns = fp_hist_percentile(svc, 95);
		st->svc_p99_ns = fp_hist_percentile(svc, 99);
	}
	fp_hist_free(lat);
	fp_hist_free(svc);
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
		join_all(g);
	}
	/* Order matters (a crash in rdk:main was once seen at teardown):
	 * the senders are joined above, so nothing else polls the producer;
	 * what is still queued is purged and its reports dropped (closing);
	 * the handle is destroyed while the slots, whose bodies librdkafka
	 * may still reference (values are not copied), and g, the report
	 * callback's opaque, are still alive. */
	if (g->rk) {
		g->closing = 1;
		rd_kafka_purge(g->rk, RD_KAFKA_PURGE_F_QUEUE |
					      RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(g->rk, 1000);
		rd_kafka_destroy(g->rk);
		g->rk = NULL;
	}
	for (int i = 0; g->shards && i < g->nshards; i++)
		shard_fini(&g->shards[i]);
	/* The shards' streams are flushed and freed: the ledger can close. */
	fp_ledger_close(g->ledger, NULL);
	fp_sched_free(g->sched);
	free(g->shards);
	free(g->phase_id);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
