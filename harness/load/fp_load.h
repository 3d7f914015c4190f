/*
 * fp_load.h - the open-model load generator, its ledger and its latency
 * histogram.
 *
 * Events are sent on a fixed schedule whatever the target does: event k of
 * a phase is intended where the integral of the arrival rate r(t) (a
 * constant rate or a linear ramp, times any active bursts) reaches k, so a
 * stall shows up as latency measured from the intended send time (no
 * coordinated omission) and as late sends, never as a quietly lower rate.
 * Events go to the HTTP ingress (libcurl multi, one or more sender threads
 * sharing the schedule) or straight to the traffic topic (librdkafka,
 * idempotent producer). Every attempt is one row of the ledger, streamed
 * to disk as PostgreSQL COPY text (tab separated, \N for NULL) by a writer
 * thread, so memory stays constant in the number of events.
 *
 * Ownership: struct fp_loadgen is opaque; fp_loadgen_new() returns it and
 * fp_loadgen_free() releases it. Strings in struct fp_load_conf are borrowed
 * and must outlive the generator.
 */
#ifndef FP_LOAD_H
#define FP_LOAD_H

#include <jansson.h>
#include <stdint.h>

#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

/* ---- histogram --------------------------------------------------------- */

/* Log-linear histogram with HdrHistogram semantics: values from 1 us to
 * 100 s with <= 1 % relative error, constant memory. Not thread-safe. */
struct fp_hist;

struct fp_hist *fp_hist_new(void);
void fp_hist_free(struct fp_hist *h);
void fp_hist_record(struct fp_hist *h, int64_t value_ns);
void fp_hist_merge(struct fp_hist *dst, const struct fp_hist *src);
int64_t fp_hist_count(const struct fp_hist *h);
/* @param q in [0,100]; returns 0 for an empty histogram. */
int64_t fp_hist_percentile(const struct fp_hist *h, double q);
int64_t fp_hist_max(const struct fp_hist *h);
int64_t fp_hist_min(const struct fp_hist *h);
double fp_hist_mean(const struct fp_hist *h);

/* ---- ledger ------------------------------------------------------------ */

/* Column order of ledger.tsv (COPY text format); docs/report-schema.md.
 *   kind     original | retry (same bytes) | conflict (hash_conflict re-send:
 *            same identity, amount_minor + 1)
 *   outcome  ok (202 / Kafka delivery) | dup (200) | conflict (409) |
 *            rejected (400, 413, other 4xx; a local Kafka produce refusal) |
 *            throttled (429) | info (5xx, transport error, timeout, Kafka
 *            delivery error: indeterminate) | dropped (never sent)
 *   expect   the event kind (FP_EVENT_KIND_MAP name) the attempt carries:
 *            what the platform should do with it; "valid" for the first
 *            send of a hash_conflict event, "hash_conflict" for its
 *            conflicting re-send */
#define FP_LEDGER_COLUMNS                                                   \
	"seq, event_id, kind, attempt, phase_id, account_id, amount_minor, " \
	"payload_hash, intended_ns, sent_ns, done_ns, http_status, outcome, " \
	"receipt_status, topic, partition, kafka_offset, error, expect"

/* SQL column definitions matching FP_LEDGER_COLUMNS, for CREATE TABLE. */
#define FP_LEDGER_SQL_COLUMNS                                               \
	"seq bigint, event_id text, kind text, attempt int, phase_id text, "  \
	"account_id text, amount_minor bigint, payload_hash text, "           \
	"intended_ns bigint, sent_ns bigint, done_ns bigint, "                \
	"http_status int, outcome text, receipt_status text, topic text, "    \
	"partition int, kafka_offset bigint, error text, expect text"

/* ---- load generator ----------------------------------------------------- */

struct fp_load_conf {
	const struct fp_load_spec *spec;
	const char *url;              /* channel http: ingress URL (POST /v1/events) */
	/* channel kafka: bootstrap servers and extra librdkafka properties
	 * (env profile target.kafka; props may be NULL). The producer is
	 * always idempotent with acks=all and message.timeout.ms = the
	 * spec's timeout, whatever props say. */
	const char *kafka_bootstrap;
	const struct fp_kvlist *kafka_props;
	const char *platform_run_id;
	const char *scenario_run_id;
	const char *event_class;
	const char *runtime_lane;
	const char *ledger_path;      /* created/truncated */
	/* Sender threads (channel http): 0 = one per 12000 planned events/s,
	 * at most the CPUs online; each gets its share of the concurrency
	 * and every N-th event of the one schedule. Channel kafka always
	 * uses one. */
	int senders;
};

struct fp_load_stats {
	double planned_rate;      /* originals intended in the active windows
				   * / active seconds (events/s) */
	double achieved_rate;     /* originals sent / active seconds */
	double peak_rate;         /* highest planned arrival rate (events/s) */
	int64_t active_ns;        /* time spent in load phases */
	int64_t planned;          /* originals scheduled */
	int64_t sent;             /* originals sent */
	int64_t retries_sent;
	int64_t accepted;         /* 202 */
	int64_t duplicates;       /* 200 duplicate receipts */
	int64_t conflicts;        /* 409 */
	int64_t rejected;         /* 400, 413, other 4xx but 409/429 */
	int64_t throttled;        /* 429 */
	int64_t failed;           /* 5xx, transport errors, timeouts */
	int64_t late;             /* sent > 10 ms after their intended time */
	int64_t dropped;          /* scheduled but never sent (phase ended) */
	int64_t in_flight;
	int64_t sent_by_kind[FP_EVENT_KIND_COUNT]; /* originals sent, per kind */
	int64_t p50_ns, p95_ns, p99_ns, max_ns;   /* from intended send time */
	int64_t svc_p50_ns, svc_p95_ns, svc_p99_ns; /* service time (from actual send) */
};

struct fp_loadgen;

int fp_loadgen_new(const struct fp_load_conf *conf, struct fp_loadgen **out,
		   struct fp_err *err);

/*
 * @brief Start sending on a background thread for duration_ns, stamping
 *        phase_id on every event. The ramp and the bursts of the spec start
 *        over at every phase. Returns at once. Event numbering continues
 *        across calls, so a generator can serve several phases.
 */
int fp_loadgen_start(struct fp_loadgen *g, const char *phase_id,
		     int64_t duration_ns, struct fp_err *err);

/* @brief Ask the sender to stop early (safe from another thread). */
void fp_loadgen_stop(struct fp_loadgen *g);

/*
 * @brief Wait until the phase's schedule is over, then for every in-flight
 *        request and pending retry to finish (bounded by the request
 *        timeout), and flush the ledger to disk (fsync).
 */
int fp_loadgen_wait(struct fp_loadgen *g, struct fp_err *err);

/* @brief Snapshot of the counters; safe while running. */
void fp_loadgen_stats(struct fp_loadgen *g, struct fp_load_stats *st);

/* @returns a new JSON object with the stats (caller owns the reference). */
json_t *fp_loadgen_stats_json(const struct fp_load_stats *st);

void fp_loadgen_free(struct fp_loadgen *g);

/* ---- event body (shared with tests) ------------------------------------ */

/*
 * @brief Payload hash per docs/platform-contract.md: lowercase hex SHA-256 of
 *        the payload object dumped with JSON_COMPACT | JSON_SORT_KEYS.
 */
void fp_payload_hash(json_t *payload, char out[65]);

#endif
