/*
 * fp_proxy_int.h - private to harness/proxy: the proxy's state, shared by the
 * data path (proxy.c) and the HTTP control server (control.c), which reads
 * routes and faults under the same mutex to render GET /routes.
 */
#ifndef FP_PROXY_INT_H
#define FP_PROXY_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "harness/proxy/fp_proxy.h"

struct MHD_Daemon;

/* What an epoll event points at; conns and routes embed these so one
 * pointer in epoll_event.data says both the object and the fd's role. */
enum fp_ptag_kind { FP_TAG_WAKE, FP_TAG_LISTEN, FP_TAG_CLIENT, FP_TAG_UPSTREAM };

struct fp_ptag {
	enum fp_ptag_kind kind;
	void *obj;
};

/* Bytes read from one side and not yet written to the other. */
struct fp_pchunk {
	struct fp_pchunk *next;
	int64_t release_ns; /* latency: not sent before this */
	size_t len, off;
	unsigned char data[];
};

/* The faults in force on one direction of a route, combined: latencies
 * add up, the lowest bandwidth and the smallest slice win, the longest
 * slow_close wins. Recomputed by the data thread every loop turn. */
struct fp_peff {
	int blackhole;
	int64_t lat_ms, jitter_ms;
	int64_t bytes_per_s; /* 0: unlimited */
	int64_t slice_bytes, slice_delay_ms;
	int64_t slow_close_ms;
};

struct fp_proute {
	char name[FP_PROXY_NAME_MAX];
	char listen_s[128], upstream_s[128];
	struct sockaddr_storage laddr, uaddr;
	socklen_t llen, ulen;
	int lfd;  /* -1 while down */
	int port; /* the bound port, kept so a revert of down rebinds it */
	int nconns;
	int64_t rebind_at;
	int rebind_warned;
	int down, reset; /* route-wide faults in force */
	struct fp_peff eff[2]; /* [0] upstream, [1] downstream */
	struct fp_ptag tag;
};

struct fp_pfault {
	struct fp_pfault *next;
	char id[FP_PROXY_ID_LEN];
	struct fp_proute *route;
	struct fp_proxy_fault f; /* f.route points at route->name */
	int64_t created_ns, expires_ns;
};

struct fp_proxy {
	pthread_mutex_t mu;
	pthread_cond_t applied_cv;
	struct fp_proute **routes;
	size_t nroutes;
	struct fp_pfault *faults;
	struct fp_pconn *conns;
	int epfd, wakefd;
	pthread_t thr;
	int running, stopping;
	uint64_t gen, applied_gen; /* fault changes made / seen by the loop */
	uint64_t rng;
	struct fp_ptag wake_tag;
	/* control API */
	int ctl_fd, ctl_port;
	char ctl_addr[128];
	struct MHD_Daemon *mhd;
};

/* @brief "HOST:PORT" / "[V6]:PORT" to a socket address (numeric or
 *        resolvable host; port 0..65535). */
int fp_proxy_parse_addr(const char *s, struct sockaddr_storage *ss,
			socklen_t *len, struct fp_err *err);

/* @brief Bind and listen (SO_REUSEADDR, non-blocking, close-on-exec).
 * @param port receives the bound port. @returns the fd or -1 (errno). */
int fp_proxy_listen_fd(const struct sockaddr_storage *ss, socklen_t len,
		       int *port);

/* Control server (control.c); called by fp_proxy_start()/stop(). */
int fp_proxy_ctl_start(struct fp_proxy *p, struct fp_err *err);
void fp_proxy_ctl_stop(struct fp_proxy *p);

#endif
