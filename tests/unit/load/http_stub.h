/*
 * http_stub.h - a tiny in-process ingress stand-in for the load generator's
 * unit tests: HTTP/1.1 with keep-alive on 127.0.0.1, one poll() thread,
 * answers like the platform contract (202 + receipt, 200 duplicate for a
 * repeated event_id, 409 for a repeated event_id with other bytes when
 * asked, 413 for a body over 1 MiB, read and discarded) and can be made
 * slow or stalled on purpose, or reset chosen requests' connections.
 */
#ifndef HTTP_STUB_H
#define HTTP_STUB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct stub_conf {
	int64_t delay_ns;      /* every response is held this long */
	int64_t stall_at_ns;   /* requests received in [at, at + stall) after */
	int64_t stall_ns;      /* stub start are answered at at + stall */
	int dup_on_repeat;     /* 200 "duplicate" for an event_id seen before */
	int conflict_on_mismatch; /* 409 for a seen event_id with other bytes */
	int status;            /* answer this status to everything (0 = normal) */
	int record;            /* keep one struct stub_req per request */
	int reset_mod;         /* > 0: reset the connection instead of
				* answering a request whose seq % reset_mod
				* == 0 (not recorded, not seen) */
};

struct stub_req {
	uint64_t seq;          /* from event_id "e-<seq>" */
	char body_hash[65];    /* sha256 of the exact body bytes */
	char trace_id[33];
	char span_id[17];
	int status;            /* what the stub answered */
	size_t body_len;
	char x_event_id[32];   /* X-Event-Id header ("" when absent) */
	int x_ids;             /* X-Platform-Run-Id and X-Event-Class present */
};

struct stub_conn;

struct stub {
	struct stub_conf conf;
	int lfd;
	int wake[2];
	int port;
	char url[64];
	int64_t t0;
	pthread_t th;
	struct stub_conn *conns;
	size_t nconns;
	/* guarded by mu */
	pthread_mutex_t mu;
	struct stub_req *reqs;
	size_t nreqs, capreqs;
	int64_t total;         /* requests answered */
	int64_t max_conns;     /* most simultaneous connections seen */
	int64_t resets;        /* requests answered by a reset */
	uint64_t *seen;        /* open-addressing set of seqs (0 = empty) */
	uint64_t *seen_hash;   /* first body hash (64-bit prefix) per seq */
	size_t seen_cap;
};

/* @returns 0, or -1 when the socket or thread cannot be set up. */
int stub_start(struct stub *s, const struct stub_conf *conf);
/* @brief Stop the thread and close the sockets; records stay readable. */
void stub_stop(struct stub *s);
/* @brief Release the records (after stub_stop). */
void stub_free(struct stub *s);

#endif
