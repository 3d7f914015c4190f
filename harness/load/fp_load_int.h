/*
 * fp_load_int.h - internals of the load module shared by its sources and its
 * unit tests: the deterministic PRNG, the arrival schedule, the event
 * builder and the ledger writer. Not part of the public interface
 * (harness/load/fp_load.h).
 */
#ifndef FP_LOAD_INT_H
#define FP_LOAD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

/* ---- PRNG: xoshiro256** seeded through splitmix64 ----------------------- */

/* Small, fast and reproducible across platforms, so that (seed, seq) names
 * one event forever; not for anything secret. */
struct fp_rng {
	uint64_t s[4];
};

uint64_t fp_splitmix64(uint64_t *state);
/* @brief Seed one independent stream per (seed, stream) pair. */
void fp_rng_seed(struct fp_rng *r, uint64_t seed, uint64_t stream);
uint64_t fp_rng_next(struct fp_rng *r);
double fp_rng_double(struct fp_rng *r);             /* uniform in [0,1) */
uint64_t fp_rng_below(struct fp_rng *r, uint64_t n); /* uniform in [0,n) */

/* ---- decimal formatting ------------------------------------------------- */

/*
 * @brief The decimal digits of v, zero-padded to at least width (at most
 *        20), as "%0*" PRIu64 writes them, two digits per division:
 *        integers are a visible share of the per-event cost (event ids,
 *        bodies, ledger rows). @returns the end (no NUL is written).
 */
static inline char *fp_put_u64(char *p, uint64_t v, int width)
{
	static const char pairs[201] =
		"00010203040506070809101112131415161718192021222324"
		"25262728293031323334353637383940414243444546474849"
		"50515253545556575859606162636465666768697071727374"
		"75767778798081828384858687888990919293949596979899";
	char tmp[24], *q = tmp + sizeof tmp;
	size_t n;

	while (v >= 100) {
		q -= 2;
		memcpy(q, pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		q -= 2;
		memcpy(q, pairs + 2 * v, 2);
	} else {
		*--q = (char)('0' + v);
	}
	while (tmp + sizeof tmp - q < width)
		*--q = '0';
	n = (size_t)(tmp + sizeof tmp - q);
	memcpy(p, q, n);
	return p + n;
}

/* ---- arrival schedule (sched.c) ------------------------------------------ */

/* The rate function of one load phase (ramp, bursts) and its integral
 * N(t); event k is intended where N reaches k. Immutable once built, so
 * any thread may read it. */
struct fp_sched;

/* @returns 0, or -1 when out of memory. The spec must be valid (rates >= 0,
 *          burst ramps at most half their burst). */
int fp_sched_build(const struct fp_load_spec *sp, int64_t duration_ns,
		   struct fp_sched **out);
void fp_sched_free(struct fp_sched *s);
/* @returns N(t): expected events in [0, t) (t clamped to the phase). */
double fp_sched_count(const struct fp_sched *s, int64_t t_ns);
/* @returns r(t) in events/s (0 outside the phase). */
double fp_sched_rate_at(const struct fp_sched *s, int64_t t_ns);
/* @returns the events of the phase: ceil(N(duration)). */
int64_t fp_sched_planned(const struct fp_sched *s);
/* @returns the events intended before offset t. */
int64_t fp_sched_planned_before(const struct fp_sched *s, int64_t t_ns);
/* @returns the highest r(t) of the phase. */
double fp_sched_peak(const struct fp_sched *s);
/* @returns the offset (ns) at which event k is intended. */
int64_t fp_sched_time_of(const struct fp_sched *s, int64_t k);

/* ---- events ------------------------------------------------------------ */

/* Identity stamped on every envelope; borrowed. NULL optional fields are
 * left out of the envelope. */
struct fp_event_ids {
	const char *platform_run_id;
	const char *scenario_run_id;
	const char *phase_id;
	const char *runtime_lane;
	const char *event_class;
};

/* The knobs of the traffic mix (from struct fp_load_spec). */
struct fp_event_mix {
	uint64_t seed;
	int accounts;
	double high_value_share;
	double retry_share;
	/* shares of each event kind, any scale; all 0 means all valid */
	double kinds[FP_EVENT_KIND_COUNT];
};

/* Bodies of oversize events are padded beyond this (1 MiB + 1 KiB), so
 * they exceed the ingress limit of 1 MiB whatever the envelope. */
#define FP_EVENT_OVERSIZE_MIN (1024u * 1024u + 1024u)

#define FP_EVENT_ID_MAX 24   /* "e-" + 20 digits + NUL */
#define FP_TRACE_ID_HEX 33   /* 32 hex + NUL */
#define FP_SPAN_ID_HEX 17    /* 16 hex + NUL */
#define FP_TRACEPARENT_MAX 56 /* "00-" 32 "-" 16 "-01" + NUL */

struct fp_event {
	uint64_t seq;
	enum fp_event_kind kind; /* drawn from mix->kinds */
	int retry;       /* selected for one re-send with the same identity
			  * (never for hash_conflict: its re-send is the
			  * conflicting one) */
	int conflict;    /* the body is the hash_conflict re-send */
	int high_value;
	char event_id[FP_EVENT_ID_MAX];
	char account_id[24];
	int64_t amount_minor;
	const char *channel;  /* static string */
	char merchant_id[16];
	const char *country;  /* static string */
	char payload_hash[65]; /* "" until fp_event_build() */
	char trace_id[FP_TRACE_ID_HEX];
	char span_id[FP_SPAN_ID_HEX];
	const char *schema_version;  /* static: "1.0", "1.1" or "2.0" */
	const char *dropped_field;   /* missing_field: "amount_minor" or
				      * "currency"; else NULL */
	int64_t occurred_wall_ns;    /* intended send time (occurred_at) */
	char *body;      /* owned request body (NUL-terminated) or NULL */
	size_t body_len;
	size_t body_cap; /* bytes allocated at body (reused by the next build) */
};

/* @brief Draw the event's fields from (mix->seed, seq) without building a
 *        body: cheap, used for dropped events too. */
void fp_event_draw(const struct fp_event_mix *mix, uint64_t seq,
		   struct fp_event *ev);

/*
 * @brief Draw the event and build its body and payload hash, shaped by its
 *        kind: valid (schema 1.0); compatible (1.1 + payload.device_id);
 *        missing_field (no payload.amount_minor, or no currency on odd
 *        seqs); wrong_type (amount_minor as a string); unsupported_version
 *        (2.0); malformed_json (the valid text cut in half; no hash);
 *        oversize (valid, payload.note pads it beyond
 *        FP_EVENT_OVERSIZE_MIN); hash_conflict (valid: the conflict is the
 *        re-send, fp_event_make_conflict()).
 * @param occurred_wall_ns wall-clock time of the intended send.
 * @returns FP_OK or FP_ENOMEM; on success ev->body is owned by ev.
 */
int fp_event_build(const struct fp_event_ids *ids,
		   const struct fp_event_mix *mix, uint64_t seq,
		   int64_t occurred_wall_ns, struct fp_event *ev,
		   struct fp_err *err);

/* A per-thread body builder: the identity members escaped once, a reused
 * SHA-256 context, the occurred_at day. Not thread-safe; build one per
 * sender thread and per phase (the phase id is part of the identity). */
struct fp_event_builder;

/* @returns FP_OK, FP_ENOMEM, or FP_EINVAL when an id is not valid UTF-8
 *          (or a required one is NULL). ids are copied. */
int fp_event_builder_new(const struct fp_event_ids *ids,
			 struct fp_event_builder **out, struct fp_err *err);
void fp_event_builder_free(struct fp_event_builder *b);

/*
 * @brief fp_event_build() with a builder, reusing ev->body when it is large
 *        enough: ev must be zeroed or hold an earlier build (its body is
 *        kept or replaced, never leaked). Same bytes as fp_event_build().
 */
int fp_event_build_with(struct fp_event_builder *b,
			const struct fp_event_mix *mix, uint64_t seq,
			int64_t occurred_wall_ns, struct fp_event *ev,
			struct fp_err *err);
/* @brief fp_event_make_conflict() with a builder of the same ids. */
int fp_event_conflict_with(struct fp_event_builder *b, struct fp_event *ev,
			   struct fp_err *err);

/*
 * @brief Turn a built hash_conflict event into its conflicting re-send: the
 *        same identity and occurred_at, amount_minor + 1, so a new payload
 *        hash. Replaces ev->body; sets ev->conflict.
 */
int fp_event_make_conflict(const struct fp_event_ids *ids,
			   struct fp_event *ev, struct fp_err *err);

/* @returns what the ledger's expect column says for this attempt: the kind
 *          name, "valid" for the first send of a hash_conflict event. */
const char *fp_event_expect(const struct fp_event *ev);

/* @brief Fresh random trace id and span id (the original attempt). */
void fp_event_new_trace(struct fp_event *ev, struct fp_rng *rng);
/* @brief Fresh span id, same trace id (a retry of the same event). */
void fp_event_new_span(struct fp_event *ev, struct fp_rng *rng);
void fp_event_traceparent(const struct fp_event *ev,
			  char out[FP_TRACEPARENT_MAX]);
/* @brief Free the body; the struct itself stays the caller's. */
void fp_event_release(struct fp_event *ev);

/* ---- ledger ------------------------------------------------------------ */

/* Integer fields equal to FP_LEDGER_NULL are written as \N. */
#define FP_LEDGER_NULL INT64_MIN

/* One attempt, in FP_LEDGER_COLUMNS order; NULL strings are written as \N. */
struct fp_ledger_row {
	int64_t seq;
	const char *event_id;
	const char *kind;          /* "original" | "retry" | "conflict" */
	int64_t attempt;
	const char *phase_id;
	const char *account_id;
	int64_t amount_minor;
	const char *payload_hash;
	int64_t intended_ns;
	int64_t sent_ns;
	int64_t done_ns;
	int64_t http_status;
	const char *outcome;       /* ok | dup | conflict | rejected |
				    * throttled | info | dropped */
	const char *receipt_status;
	const char *topic;
	int64_t partition;
	int64_t kafka_offset;
	const char *error;
	const char *expect;        /* event kind name (fp_event_expect) */
};

struct fp_ledger;

/* @brief Create/truncate path and start its writer thread. */
int fp_ledger_open(const char *path, struct fp_ledger **out,
		   struct fp_err *err);
/* @brief Append one row through the ledger's own stream (buffered; errors
 *        surface in fp_ledger_sync). Only one thread may use it. */
void fp_ledger_write(struct fp_ledger *l, const struct fp_ledger_row *r);
/* @brief Hand every row written so far to the disk, then fsync. The
 *        callers' streams must have been flushed first. */
int fp_ledger_sync(struct fp_ledger *l, struct fp_err *err);
/* @brief Sync and close; NULL is a no-op. Streams must be freed first. */
int fp_ledger_close(struct fp_ledger *l, struct fp_err *err);
/* @returns the rows handed to the writer plus those in the own stream. */
int64_t fp_ledger_rows(const struct fp_ledger *l);

/* One writer thread's row buffer: each sender thread owns one, so rows are
 * formatted without a lock; full buffers go to the ledger's writer. */
struct fp_ledger_stream;

/* @returns 0, or -1 when out of memory. */
int fp_ledger_stream_new(struct fp_ledger *l, struct fp_ledger_stream **out);
void fp_ledger_stream_write(struct fp_ledger_stream *s,
			    const struct fp_ledger_row *r);
/* @brief Hand the buffered rows to the writer (phase end). */
void fp_ledger_stream_flush(struct fp_ledger_stream *s);
/* @brief Flush and free; NULL is a no-op. */
void fp_ledger_stream_free(struct fp_ledger_stream *s);

/* ---- histogram internals (exposed for tests) ------------------------------ */

struct fp_hist;

#define FP_HIST_LOWEST_NS INT64_C(1000)           /* 1 us */
#define FP_HIST_HIGHEST_NS INT64_C(100000000000)  /* 100 s */

/* @returns how many recorded values were clamped into range. */
int64_t fp_hist_clamped(const struct fp_hist *h);

#endif
