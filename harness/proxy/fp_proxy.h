/*
 * fp_proxy.h - the fault proxy: a TCP proxy with named routes
 * (name -> listen address -> upstream address) and leased network faults
 * per route and direction, so a drill can degrade the path between the
 * platform and one of its dependencies without touching either side.
 *
 * Three properties set it apart from Toxiproxy (research/peers-chaos.md):
 *   - every fault carries a TTL lease and expires by itself, so a harness
 *     that crashed never leaves a fault in place for more than the lease;
 *   - a fault applies to the connections that already exist as well as to
 *     new ones: no connection escapes it;
 *   - direction is explicit (upstream = client->server bytes, downstream =
 *     server->client, both), and a latency fault on `both` delays each way,
 *     so a request/response round trip gains 2 x ms.
 *
 * One data thread runs an epoll loop over every route; the optional control
 * server (HTTP/1.1 JSON, libmicrohttpd) runs on its own thread. Every
 * function here is thread-safe once fp_proxy_start() returned.
 */
#ifndef FP_PROXY_H
#define FP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "harness/core/fp_error.h"

struct fp_proxy;

enum fp_proxy_fault_type {
	FP_PFAULT_LATENCY,    /* ms, jitter_ms: each chunk delayed, in order */
	FP_PFAULT_BANDWIDTH,  /* kbps: token bucket per connection direction */
	FP_PFAULT_BLACKHOLE,  /* read and drop; connections stay open */
	FP_PFAULT_RESET,      /* RST existing connections and new ones */
	FP_PFAULT_SLOW_CLOSE, /* ms: delay propagating a close */
	FP_PFAULT_SLICER,     /* bytes, delay_ms: small slices, paced */
	FP_PFAULT_DOWN,       /* listener closed, connections closed */
	FP_PFAULT_COUNT
};

/* Direction bits: a fault applies to one or both. */
#define FP_PDIR_UP 1u   /* client -> upstream server */
#define FP_PDIR_DOWN 2u /* upstream server -> client */
#define FP_PDIR_BOTH (FP_PDIR_UP | FP_PDIR_DOWN)

/* Bounds shared by the proxy, its control API and the tcp.fault injector,
 * so that validate() offline refuses exactly what the proxy would. */
#define FP_PROXY_TTL_MAX_MS INT64_C(3600000) /* a lease is at most 1 h */
#define FP_PROXY_MS_MAX INT64_C(600000)      /* 10 min of delay */
#define FP_PROXY_KBPS_MAX INT64_C(10000000)  /* 10 Gbit/s */
#define FP_PROXY_BYTES_MAX INT64_C(1048576)

#define FP_PROXY_ID_LEN 24 /* "f-" + 16 hex digits + NUL, rounded up */
#define FP_PROXY_NAME_MAX 64

struct fp_proxy_fault {
	const char *route;
	enum fp_proxy_fault_type type;
	unsigned dirs;     /* FP_PDIR_* ; reset and down take FP_PDIR_BOTH */
	int64_t ms;        /* latency, slow_close */
	int64_t jitter_ms; /* latency; at most ms */
	int64_t kbps;      /* bandwidth, kilobits (1000 bit) per second */
	int64_t bytes;     /* slicer */
	int64_t delay_ms;  /* slicer */
	int64_t ttl_ms;    /* required: 1 .. FP_PROXY_TTL_MAX_MS */
};

/* @returns "latency" style name, or NULL when out of range. */
const char *fp_proxy_fault_type_name(enum fp_proxy_fault_type t);
/* @returns 0 and sets *t, or -1 for an unknown name. */
int fp_proxy_fault_type_parse(const char *s, enum fp_proxy_fault_type *t);
/* @returns "upstream" / "downstream" / "both". */
const char *fp_proxy_dir_name(unsigned dirs);
/* @returns 0 and sets *dirs, or -1 for an unknown name. */
int fp_proxy_dir_parse(const char *s, unsigned *dirs);
/*
 * @brief Check a fault's type, direction, parameters and TTL (not its
 *        route): the parameters a type does not use must be 0, the ones it
 *        needs must be in range. Pure; the injector calls it offline.
 */
int fp_proxy_fault_check(const struct fp_proxy_fault *f, struct fp_err *err);

/*
 * @brief Create a proxy (nothing runs yet).
 * @param control "HOST:PORT" for the HTTP control API (port 0 = any free
 *        one), or NULL for none (in-process use).
 */
int fp_proxy_new(const char *control, struct fp_proxy **out,
		 struct fp_err *err);

/*
 * @brief Add a route and bind its listener now (so a busy port fails here,
 *        and port 0 is resolved for fp_proxy_route_port()).
 * @param name [A-Za-z0-9._-], at most FP_PROXY_NAME_MAX - 1 characters.
 * @param listen, upstream "HOST:PORT" or "[V6]:PORT".
 */
int fp_proxy_add_route(struct fp_proxy *p, const char *name,
		       const char *listen, const char *upstream,
		       struct fp_err *err);

/* @brief Start the data thread and the control server. */
int fp_proxy_start(struct fp_proxy *p, struct fp_err *err);

/*
 * @brief Apply a fault to a route, to existing and new connections alike.
 * @param id receives the fault's id (for fp_proxy_remove_fault()).
 * @returns FP_ENOTFOUND for an unknown route, FP_EINVAL for a bad fault.
 */
int fp_proxy_add_fault(struct fp_proxy *p, const struct fp_proxy_fault *f,
		       char id[FP_PROXY_ID_LEN], struct fp_err *err);

/* @returns FP_OK, or FP_ENOTFOUND when no such fault is active (it was
 *          removed, or its lease expired). */
int fp_proxy_remove_fault(struct fp_proxy *p, const char *id,
			  struct fp_err *err);

/* @brief Remove every fault; @returns how many were active. */
size_t fp_proxy_reset(struct fp_proxy *p);

/* @returns the number of active faults (expired ones are never counted). */
size_t fp_proxy_fault_count(struct fp_proxy *p);
/* @returns the route's bound port, or -1 for an unknown route. */
int fp_proxy_route_port(struct fp_proxy *p, const char *route);
/* @returns the route's live connection count, or -1 for an unknown route. */
int fp_proxy_route_conns(struct fp_proxy *p, const char *route);
/* @returns the control API's bound port, or -1 when there is none. */
int fp_proxy_control_port(const struct fp_proxy *p);

/* @brief Stop both threads and close every connection (idempotent). */
void fp_proxy_stop(struct fp_proxy *p);
/* @brief Stop if needed and free everything. p may be NULL. */
void fp_proxy_free(struct fp_proxy *p);

#endif
