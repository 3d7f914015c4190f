/*
 * proxy.c - the fault proxy's engine: routes, leased faults and the epoll
 * data path that applies them.
 *
 * One data thread owns every socket. It holds the proxy mutex while it
 * works and drops it only inside epoll_wait(), so the API (called from the
 * control server's thread or from a test) sees a consistent state and
 * wakes the loop through an eventfd after each change. The effect of the
 * faults is recomputed from the fault list on every loop turn and applied
 * to every connection, old or new: that is what makes "no connection
 * escapes a fault" true by construction rather than by bookkeeping.
 *
 * Per connection, each direction (client->upstream, upstream->client) is a
 * queue of chunks. Latency and blackhole act when bytes are read (a chunk
 * gets its release time; a blackholed one is dropped); bandwidth and the
 * slicer act when they are written, so they bite immediately on queued data
 * too. Every socket is TCP_NODELAY, so slices and delayed chunks leave when
 * the proxy says, not when Nagle's algorithm would.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "harness/proxy/fp_proxy_int.h"

#define CHUNK_MAX 16384
#define QUEUE_CAP (256u * 1024u) /* per direction; beyond it we stop reading */
#define REBIND_RETRY_NS (250 * FP_NS_PER_MS)
#define APPLY_WAIT_NS (2 * FP_NS_PER_S)

struct fp_pdir {
	struct fp_pchunk *head, *tail;
	size_t queued;
	int eof;         /* the source sent FIN */
	int64_t eof_at;  /* slow_close: propagate it not before this */
	int shut;        /* the FIN was passed on to the destination */
	int blocked;     /* the destination's send buffer is full */
	int64_t last_release;
	int bw_on;
	double tokens;
	int64_t bw_last;
	int64_t slice_next;
};

struct fp_pconn {
	struct fp_pconn *next;
	struct fp_proute *route;
	int cfd, ufd;
	int connecting;
	int dead; /* closed; freed at the end of the loop turn */
	/* An fd that is done both ways (read EOF, FIN sent) leaves epoll:
	 * it would report EPOLLHUP for ever while the other direction is
	 * still draining (slow_close, latency). */
	int cgone, ugone;
	struct fp_pdir d[2];
	uint32_t cmask, umask;
	struct fp_ptag tc, tu;
};

/* ---- names and checks ---------------------------------------------------- */

static const char *const type_names[FP_PFAULT_COUNT] = {
	"latency", "bandwidth", "blackhole", "reset",
	"slow_close", "slicer", "down",
};

const char *fp_proxy_fault_type_name(enum fp_proxy_fault_type t)
{
	return (unsigned)t < FP_PFAULT_COUNT ? type_names[t] : NULL;
}

int fp_proxy_fault_type_parse(const char *s, enum fp_proxy_fault_type *t)
{
	for (int i = 0; s && i < FP_PFAULT_COUNT; i++)
		if (strcmp(s, type_names[i]) == 0) {
			*t = (enum fp_proxy_fault_type)i;
			return 0;
		}
	return -1;
}

const char *fp_proxy_dir_name(unsigned dirs)
{
	return dirs == FP_PDIR_UP ? "upstream"
	       : dirs == FP_PDIR_DOWN ? "downstream"
				      : "both";
}

int fp_proxy_dir_parse(const char *s, unsigned *dirs)
{
	if (!s)
		return -1;
	if (!strcmp(s, "upstream"))
		*dirs = FP_PDIR_UP;
	else if (!strcmp(s, "downstream"))
		*dirs = FP_PDIR_DOWN;
	else if (!strcmp(s, "both"))
		*dirs = FP_PDIR_BOTH;
	else
		return -1;
	return 0;
}

static int range(int64_t v, int64_t lo, int64_t hi, const char *type,
		 const char *key, struct fp_err *err)
{
	if (v < lo || v > hi)
		return fp_err_set(err, FP_EINVAL,
				  "%s: %s must be in [%" PRId64 ", %" PRId64
				  "], got %" PRId64,
				  type, key, lo, hi, v);
	return FP_OK;
}

int fp_proxy_fault_check(const struct fp_proxy_fault *f, struct fp_err *err)
{
	const char *tn = fp_proxy_fault_type_name(f->type);
	/* Which parameters each type takes; the others must stay 0 so a
	 * parameter sent to the wrong type is an error, not a silent no-op. */
	int uses_ms = f->type == FP_PFAULT_LATENCY ||
		      f->type == FP_PFAULT_SLOW_CLOSE;
	int rc;

	if (!tn)
		return fp_err_set(err, FP_EINVAL, "unknown fault type %d",
				  (int)f->type);
	if (f->dirs == 0 || (f->dirs & ~FP_PDIR_BOTH))
		return fp_err_set(err, FP_EINVAL, "%s: bad direction", tn);
	if ((f->type == FP_PFAULT_RESET || f->type == FP_PFAULT_DOWN) &&
	    f->dirs != FP_PDIR_BOTH)
		return fp_err_set(err, FP_EINVAL,
				  "%s: acts on whole connections, so its "
				  "direction must be both",
				  tn);
	if ((!uses_ms && f->ms) ||
	    (f->type != FP_PFAULT_LATENCY && f->jitter_ms) ||
	    (f->type != FP_PFAULT_BANDWIDTH && f->kbps) ||
	    (f->type != FP_PFAULT_SLICER && (f->bytes || f->delay_ms)))
		return fp_err_set(err, FP_EINVAL,
				  "%s: a parameter was given that this type "
				  "does not take",
				  tn);
	rc = range(f->ttl_ms, 1, FP_PROXY_TTL_MAX_MS, tn, "ttl_ms", err);
	if (rc)
		return rc;
	switch (f->type) {
	case FP_PFAULT_LATENCY:
		rc = range(f->ms, 1, FP_PROXY_MS_MAX, tn, "ms", err);
		if (!rc)
			rc = range(f->jitter_ms, 0, f->ms, tn,
				   "jitter_ms (at most ms)", err);
		return rc;
	case FP_PFAULT_SLOW_CLOSE:
		return range(f->ms, 1, FP_PROXY_MS_MAX, tn, "ms", err);
	case FP_PFAULT_BANDWIDTH:
		return range(f->kbps, 1, FP_PROXY_KBPS_MAX, tn, "kbps", err);
	case FP_PFAULT_SLICER:
		rc = range(f->bytes, 1, FP_PROXY_BYTES_MAX, tn, "bytes", err);
		if (!rc)
			rc = range(f->delay_ms, 0, FP_PROXY_MS_MAX, tn,
				   "delay_ms", err);
		return rc;
	default:
		return FP_OK;
	}
}

static int valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n < FP_PROXY_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == n;
}

/* ---- sockets --------------------------------------------------------------- */

int fp_proxy_parse_addr(const char *s, struct sockaddr_storage *ss,
			socklen_t *len, struct fp_err *err)
{
	char host[128];
	const char *colon, *port;
	struct addrinfo hints, *res = NULL;
	size_t hl;
	char *end;
	long pv;
	int g;

	if (!s || !*s)
		return fp_err_set(err, FP_EINVAL, "empty address");
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return fp_err_set(err, FP_EINVAL,
					  "bad address '%s' (want [V6]:PORT)", s);
		hl = (size_t)(rb - s - 1);
		colon = rb + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return fp_err_set(err, FP_EINVAL,
					  "bad address '%s' (want HOST:PORT)", s);
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof host)
		return fp_err_set(err, FP_EINVAL, "bad host in address '%s'", s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	port = colon + 1;
	errno = 0;
	pv = strtol(port, &end, 10);
	if (!*port || *end || errno || pv < 0 || pv > 65535)
		return fp_err_set(err, FP_EINVAL, "bad port in address '%s'", s);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	g = getaddrinfo(host, port, &hints, &res);
	if (g || !res)
		return fp_err_set(err, FP_EINVAL, "cannot resolve '%s': %s",
				  host, gai_strerror(g));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return FP_OK;
}

static int sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int fp_proxy_listen_fd(const struct sockaddr_storage *ss, socklen_t len,
		       int *port)
{
	int one = 1, fd, e;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -1;
	/* A revert of `down` rebinds the same port at once, while the
	 * closed connections still sit in TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 128)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*port = sock_port(fd);
	return fd;
}

/* Close with SO_LINGER 0: the peer gets an RST, not a FIN. */
static void rst_close(int fd)
{
	struct linger l = {1, 0};

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* ---- randomness ------------------------------------------------------------ */

static uint64_t rng_next(struct fp_proxy *p)
{
	/* xorshift64*: jitter needs speed and spread, not secrecy. */
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * UINT64_C(2685821657736338717);
}

static void make_id(struct fp_proxy *p, char id[FP_PROXY_ID_LEN])
{
	uint64_t r;

	/* Random ids, so an id kept by a crashed harness can never name a
	 * different fault of a later proxy incarnation. */
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = rng_next(p) ^ (uint64_t)fp_wall_ns();
	snprintf(id, FP_PROXY_ID_LEN, "f-%016" PRIx64, r);
}

/* ---- lifecycle ------------------------------------------------------------- */

int fp_proxy_new(const char *control, struct fp_proxy **out,
		 struct fp_err *err)
{
	struct fp_proxy *p = calloc(1, sizeof *p);
	struct epoll_event ev;
	uint64_t seed = 0;
	int rc;

	*out = NULL;
	if (!p)
		return fp_err_set(err, FP_ENOMEM, "proxy");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->applied_cv, NULL);
	p->ctl_fd = p->ctl_port = -1;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
		seed = (uint64_t)fp_wall_ns();
	p->rng = seed | 1;
	if (p->epfd < 0 || p->wakefd < 0) {
		rc = fp_err_set(err, FP_EIO, "epoll/eventfd: %s",
				strerror(errno));
		fp_proxy_free(p);
		return rc;
	}
	p->wake_tag.kind = FP_TAG_WAKE;
	p->wake_tag.obj = p;
	ev.events = EPOLLIN;
	ev.data.ptr = &p->wake_tag;
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev);
	if (control) {
		struct sockaddr_storage ss;
		socklen_t len;

		snprintf(p->ctl_addr, sizeof p->ctl_addr, "%s", control);
		rc = fp_proxy_parse_addr(control, &ss, &len, err);
		if (!rc) {
			p->ctl_fd = fp_proxy_listen_fd(&ss, len, &p->ctl_port);
			if (p->ctl_fd < 0)
				rc = fp_err_set(err, FP_EIO,
						"control %s: %s", control,
						strerror(errno));
		}
		if (rc) {
			fp_err_prefix(err, "control: ");
			fp_proxy_free(p);
			return rc;
		}
	}
	*out = p;
	return FP_OK;
}

static void wake(struct fp_proxy *p)
{
	uint64_t one = 1;
	ssize_t w = write(p->wakefd, &one, sizeof one);

	(void)w; /* a full counter already means "wake up" */
}

static int route_listen(struct fp_proxy *p, struct fp_proute *r)
{
	struct epoll_event ev;

	r->lfd = fp_proxy_listen_fd(&r->laddr, r->llen, &r->port);
	if (r->lfd < 0)
		return -1;
	/* Port 0 was resolved once; a rebind after `down` keeps the port. */
	set_port(&r->laddr, r->port);
	ev.events = EPOLLIN;
	ev.data.ptr = &r->tag;
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, r->lfd, &ev);
	return 0;
}

int fp_proxy_add_route(struct fp_proxy *p, const char *name,
		       const char *listen, const char *upstream,
		       struct fp_err *err)
{
	struct fp_proute *r, **grown;
	int rc;

	if (!valid_name(name))
		return fp_err_set(err, FP_EINVAL,
				  "route name '%s' must be 1-%d characters of "
				  "[A-Za-z0-9._-]",
				  name ? name : "", FP_PROXY_NAME_MAX - 1);
	r = calloc(1, sizeof *r);
	if (!r)
		return fp_err_set(err, FP_ENOMEM, "route");
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->listen_s, sizeof r->listen_s, "%s", listen);
	snprintf(r->upstream_s, sizeof r->upstream_s, "%s", upstream);
	r->tag.kind = FP_TAG_LISTEN;
	r->tag.obj = r;
	r->lfd = -1;
	rc = fp_proxy_parse_addr(listen, &r->laddr, &r->llen, err);
	if (!rc)
		rc = fp_proxy_parse_addr(upstream, &r->uaddr, &r->ulen, err);
	if (rc) {
		free(r);
		return fp_err_prefix(err, "route %s: ", name);
	}
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->nroutes; i++)
		if (!strcmp(p->routes[i]->name, name)) {
			pthread_mutex_unlock(&p->mu);
			free(r);
			return fp_err_set(err, FP_EINVAL,
					  "route %s: defined twice", name);
		}
	grown = realloc(p->routes, (p->nroutes + 1) * sizeof *grown);
	if (!grown || route_listen(p, r)) {
		int e = errno;

		pthread_mutex_unlock(&p->mu);
		if (grown)
			p->routes = grown;
		free(r);
		return grown ? fp_err_set(err, FP_EIO,
					  "route %s: cannot listen on %s: %s",
					  name, listen, strerror(e))
			     : fp_err_set(err, FP_ENOMEM, "route");
	}
	p->routes = grown;
	p->routes[p->nroutes++] = r;
	pthread_mutex_unlock(&p->mu);
	FP_INFO("event=proxy_route route=%s listen=%s port=%d upstream=%s",
		name, listen, r->port, upstream);
	return FP_OK;
}

static struct fp_proute *find_route(struct fp_proxy *p, const char *name)
{
	for (size_t i = 0; name && i < p->nroutes; i++)
		if (!strcmp(p->routes[i]->name, name))
			return p->routes[i];
	return NULL;
}

/* ---- connections ----------------------------------------------------------- */

static void dir_clear(struct fp_pdir *d)
{
	while (d->head) {
		struct fp_pchunk *c = d->head;

		d->head = c->next;
		free(c);
	}
	d->tail = NULL;
	d->queued = 0;
}

/* Close a connection; rst: make both peers see a reset. */
static void conn_close(struct fp_pconn *c, int rst)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (rst) {
		rst_close(c->cfd);
		rst_close(c->ufd);
	} else {
		close(c->cfd);
		close(c->ufd);
	}
	c->cfd = c->ufd = -1;
	dir_clear(&c->d[0]);
	dir_clear(&c->d[1]);
	c->route->nconns--;
}

static void set_mask(struct fp_proxy *p, int fd, struct fp_ptag *tag,
		     uint32_t *cur, uint32_t want, int gone)
{
	struct epoll_event ev;

	if (gone || *cur == want)
		return;
	ev.events = want;
	ev.data.ptr = tag;
	epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
	*cur = want;
}

static void accept_one(struct fp_proxy *p, struct fp_proute *r, int cfd)
{
	struct fp_pconn *c;
	struct epoll_event ev;
	int one = 1, ufd;

	if (r->reset) {
		rst_close(cfd);
		return;
	}
	ufd = socket(r->uaddr.ss_family,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c = calloc(1, sizeof *c);
	if (ufd < 0 || !c ||
	    (connect(ufd, (struct sockaddr *)&r->uaddr, r->ulen) &&
	     errno != EINPROGRESS)) {
		FP_WARN("event=proxy_upstream_failed route=%s upstream=%s "
			"error=\"%s\"",
			r->name, r->upstream_s, strerror(errno));
		free(c);
		if (ufd >= 0)
			close(ufd);
		rst_close(cfd); /* the client sees what a dead server gives */
		return;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->route = r;
	c->cfd = cfd;
	c->ufd = ufd;
	c->connecting = 1;
	c->tc.kind = FP_TAG_CLIENT;
	c->tc.obj = c;
	c->tu.kind = FP_TAG_UPSTREAM;
	c->tu.obj = c;
	c->cmask = EPOLLIN;
	c->umask = EPOLLOUT;
	ev.events = c->cmask;
	ev.data.ptr = &c->tc;
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, cfd, &ev);
	ev.events = c->umask;
	ev.data.ptr = &c->tu;
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, ufd, &ev);
	c->next = p->conns;
	p->conns = c;
	r->nconns++;
}

static void on_listen(struct fp_proxy *p, struct fp_proute *r)
{
	/* Bounded per event so one busy route cannot starve the others. */
	for (int i = 0; i < 64 && r->lfd >= 0; i++) {
		int cfd = accept4(r->lfd, NULL, NULL,
				  SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				FP_WARN("event=proxy_accept_failed route=%s "
					"error=\"%s\"",
					r->name, strerror(errno));
			return;
		}
		accept_one(p, r, cfd);
	}
}

static int64_t release_time(struct fp_proxy *p, const struct fp_peff *e,
			    struct fp_pdir *d, int64_t now)
{
	int64_t delay = e->lat_ms * FP_NS_PER_MS, rel;

	if (e->jitter_ms > 0) {
		uint64_t span = (uint64_t)(2 * e->jitter_ms * FP_NS_PER_MS + 1);

		delay += (int64_t)(rng_next(p) % span) -
			 e->jitter_ms * FP_NS_PER_MS;
	}
	rel = now + (delay > 0 ? delay : 0);
	/* In order: a chunk never overtakes the one read before it. */
	if (rel < d->last_release)
		rel = d->last_release;
	d->last_release = rel;
	return rel;
}

/* Read what the source of direction i has; @returns -1 when the
 * connection was closed. */
static int do_read(struct fp_proxy *p, struct fp_pconn *c, int i, int force,
		   int64_t now)
{
	struct fp_pdir *d = &c->d[i];
	const struct fp_peff *e = &c->route->eff[i];
	int src = i == 0 ? c->cfd : c->ufd;

	for (int n = 0; n < 8 && !d->eof; n++) {
		unsigned char buf[CHUNK_MAX];
		struct fp_pchunk *ch;
		ssize_t r;

		if (!force && !e->blackhole && d->queued >= QUEUE_CAP)
			return 0;
		r = recv(src, buf, sizeof buf, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_close(c, 1); /* pass the reset on */
			return -1;
		}
		if (r == 0) {
			d->eof = 1;
			d->eof_at = now + e->slow_close_ms * FP_NS_PER_MS;
			return 0;
		}
		if (e->blackhole)
			continue; /* read and dropped */
		ch = malloc(sizeof *ch + (size_t)r);
		if (!ch) {
			conn_close(c, 1);
			return -1;
		}
		ch->next = NULL;
		ch->len = (size_t)r;
		ch->off = 0;
		ch->release_ns = release_time(p, e, d, now);
		memcpy(ch->data, buf, (size_t)r);
		if (d->tail)
			d->tail->next = ch;
		else
			d->head = ch;
		d->tail = ch;
		d->queued += (size_t)r;
	}
	return 0;
}

static void at_most(int64_t *deadline, int64_t t)
{
	if (t < *deadline)
		*deadline = t;
}

/* Bucket size: 50 ms of traffic, at least 64 bytes, so the limit holds
 * over short windows and slow rates still move in sane writes. */
static double bucket_cap(int64_t bytes_per_s)
{
	double cap = (double)bytes_per_s / 20.0;

	return cap < 64.0 ? 64.0 : cap;
}

/* Write what direction i may send now; @returns -1 when the connection
 * was closed. */
static int pump(struct fp_pconn *c, int i, int64_t now, int64_t *deadline)
{
	struct fp_pdir *d = &c->d[i];
	const struct fp_peff *e = &c->route->eff[i];
	int dst = i == 0 ? c->ufd : c->cfd;

	if (c->connecting)
		return 0;
	if (e->blackhole) {
		dir_clear(d); /* forward nothing, not even later */
		return 0;
	}
	if (e->bytes_per_s > 0) {
		double cap = bucket_cap(e->bytes_per_s);

		if (!d->bw_on) {
			d->bw_on = 1;
			d->tokens = cap;
		} else {
			d->tokens += (double)(now - d->bw_last) *
				     (double)e->bytes_per_s / 1e9;
			if (d->tokens > cap)
				d->tokens = cap;
		}
		d->bw_last = now;
	} else {
		d->bw_on = 0;
	}
	while (d->head && !d->blocked) {
		struct fp_pchunk *h = d->head;
		size_t n = h->len - h->off;
		ssize_t w;

		if (h->release_ns > now) {
			at_most(deadline, h->release_ns);
			break;
		}
		if (e->slice_bytes > 0) {
			if (d->slice_next > now) {
				at_most(deadline, d->slice_next);
				break;
			}
			if (n > (size_t)e->slice_bytes)
				n = (size_t)e->slice_bytes;
		}
		if (d->bw_on) {
			double want = (double)n, cap = bucket_cap(e->bytes_per_s);

			if (want > cap)
				want = cap;
			if (d->tokens < want) {
				at_most(deadline,
					now + (int64_t)((want - d->tokens) *
							1e9 /
							(double)e->bytes_per_s) +
						1);
				break;
			}
			if ((double)n > d->tokens)
				n = (size_t)d->tokens;
		}
		w = send(dst, h->data + h->off, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				d->blocked = 1;
				break;
			}
			conn_close(c, 1);
			return -1;
		}
		h->off += (size_t)w;
		d->queued -= (size_t)w;
		if (d->bw_on)
			d->tokens -= (double)w;
		if (e->slice_bytes > 0)
			d->slice_next = now + e->slice_delay_ms * FP_NS_PER_MS;
		if (h->off == h->len) {
			d->head = h->next;
			if (!d->head)
				d->tail = NULL;
			free(h);
		}
		if ((size_t)w < n)
			d->blocked = 1; /* the send buffer is full */
	}
	if (!d->head && d->eof && !d->shut) {
		if (now >= d->eof_at) {
			shutdown(dst, SHUT_WR);
			d->shut = 1;
		} else {
			at_most(deadline, d->eof_at);
		}
	}
	return 0;
}

static void conn_update_mask(struct fp_proxy *p, struct fp_pconn *c)
{
	uint32_t cm = 0, um = 0;

	for (int i = 0; i < 2; i++) {
		const struct fp_pdir *d = &c->d[i];
		int readable = !d->eof && (c->route->eff[i].blackhole ||
					   d->queued < QUEUE_CAP);

		if (i == 0) {
			cm |= readable ? EPOLLIN : 0;
			um |= d->blocked ? EPOLLOUT : 0;
		} else {
			um |= readable && !c->connecting ? EPOLLIN : 0;
			cm |= d->blocked ? EPOLLOUT : 0;
		}
	}
	if (c->connecting)
		um = EPOLLOUT;
	set_mask(p, c->cfd, &c->tc, &c->cmask, cm, c->cgone);
	set_mask(p, c->ufd, &c->tu, &c->umask, um, c->ugone);
}

static void on_conn_event(struct fp_proxy *p, struct fp_pconn *c, int is_up,
			  uint32_t ev, int64_t now)
{
	/* The direction this fd feeds, and the one it drains into. */
	int rd = is_up ? 1 : 0, wr = is_up ? 0 : 1;

	if (c->dead)
		return;
	if (is_up && c->connecting) {
		int e = 0;
		socklen_t l = sizeof e;

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &e, &l);
		if (e || (ev & (EPOLLERR | EPOLLHUP))) {
			FP_WARN("event=proxy_upstream_failed route=%s "
				"upstream=%s error=\"%s\"",
				c->route->name, c->route->upstream_s,
				strerror(e ? e : ECONNREFUSED));
			conn_close(c, 1);
			return;
		}
		c->connecting = 0;
		return;
	}
	if (ev & EPOLLOUT)
		c->d[wr].blocked = 0;
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* HUP/ERR are reported whatever the mask: read anyway (the
		 * socket holds a bounded amount) so the loop cannot spin. */
		int force = (ev & (EPOLLHUP | EPOLLERR)) != 0;

		if (c->d[rd].eof && force) {
			int *gone = is_up ? &c->ugone : &c->cgone;

			/* HUP after our FIN: this fd is finished, the other
			 * direction may not be. Anything else: broken. */
			if (!(ev & EPOLLERR) && c->d[wr].shut) {
				epoll_ctl(p->epfd, EPOLL_CTL_DEL,
					  is_up ? c->ufd : c->cfd, NULL);
				*gone = 1;
			} else {
				conn_close(c, 1);
			}
			return;
		}
		do_read(p, c, rd, force, now);
	}
}

/* ---- the loop -------------------------------------------------------------- */

static void log_fault(const char *event, const struct fp_pfault *f,
		      const char *reason)
{
	FP_INFO("event=%s id=%s route=%s type=%s direction=%s ms=%" PRId64
		" jitter_ms=%" PRId64 " kbps=%" PRId64 " bytes=%" PRId64
		" delay_ms=%" PRId64 " ttl_ms=%" PRId64 "%s%s",
		event, f->id, f->route->name,
		fp_proxy_fault_type_name(f->f.type),
		fp_proxy_dir_name(f->f.dirs), f->f.ms, f->f.jitter_ms,
		f->f.kbps, f->f.bytes, f->f.delay_ms, f->f.ttl_ms,
		reason ? " reason=" : "", reason ? reason : "");
}

static void expire_faults(struct fp_proxy *p, int64_t now, int64_t *deadline)
{
	struct fp_pfault **pp = &p->faults;

	while (*pp) {
		struct fp_pfault *f = *pp;

		if (f->expires_ns <= now) {
			*pp = f->next;
			log_fault("fault_expired", f, "lease");
			free(f);
			continue;
		}
		at_most(deadline, f->expires_ns);
		pp = &f->next;
	}
}

static void compute_effects(struct fp_proxy *p)
{
	for (size_t i = 0; i < p->nroutes; i++) {
		struct fp_proute *r = p->routes[i];

		memset(r->eff, 0, sizeof r->eff);
		r->down = r->reset = 0;
	}
	for (struct fp_pfault *f = p->faults; f; f = f->next) {
		struct fp_proute *r = f->route;

		if (f->f.type == FP_PFAULT_DOWN)
			r->down = 1;
		if (f->f.type == FP_PFAULT_RESET)
			r->reset = 1;
		for (int i = 0; i < 2; i++) {
			struct fp_peff *e = &r->eff[i];

			if (!(f->f.dirs & (i == 0 ? FP_PDIR_UP : FP_PDIR_DOWN)))
				continue;
			switch (f->f.type) {
			case FP_PFAULT_LATENCY:
				e->lat_ms += f->f.ms;
				e->jitter_ms += f->f.jitter_ms;
				break;
			case FP_PFAULT_BANDWIDTH: {
				int64_t bps = f->f.kbps * 1000 / 8;

				if (bps < 1)
					bps = 1;
				if (!e->bytes_per_s || bps < e->bytes_per_s)
					e->bytes_per_s = bps;
				break;
			}
			case FP_PFAULT_BLACKHOLE:
				e->blackhole = 1;
				break;
			case FP_PFAULT_SLOW_CLOSE:
				if (f->f.ms > e->slow_close_ms)
					e->slow_close_ms = f->f.ms;
				break;
			case FP_PFAULT_SLICER:
				if (!e->slice_bytes ||
				    f->f.bytes < e->slice_bytes)
					e->slice_bytes = f->f.bytes;
				if (f->f.delay_ms > e->slice_delay_ms)
					e->slice_delay_ms = f->f.delay_ms;
				break;
			default:
				break;
			}
		}
	}
}

/* Route-wide faults: down (listener closed, connections closed) and reset
 * (every connection reset), and the rebind once down is gone. */
static void apply_route_faults(struct fp_proxy *p, int64_t now,
			       int64_t *deadline)
{
	for (size_t i = 0; i < p->nroutes; i++) {
		struct fp_proute *r = p->routes[i];

		if (r->down && r->lfd >= 0) {
			epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->lfd, NULL);
			close(r->lfd);
			r->lfd = -1;
			r->rebind_at = 0;
			r->rebind_warned = 0;
		} else if (!r->down && r->lfd < 0) {
			if (now >= r->rebind_at && route_listen(p, r) == 0) {
				FP_INFO("event=proxy_listening route=%s port=%d",
					r->name, r->port);
			} else {
				if (now >= r->rebind_at && !r->rebind_warned) {
					FP_WARN("event=proxy_rebind_failed "
						"route=%s port=%d error=\"%s\" "
						"retry=250ms",
						r->name, r->port,
						strerror(errno));
					r->rebind_warned = 1;
				}
				if (now >= r->rebind_at)
					r->rebind_at = now + REBIND_RETRY_NS;
				at_most(deadline, r->rebind_at);
			}
		}
	}
	for (struct fp_pconn *c = p->conns; c; c = c->next)
		if (!c->dead && (c->route->down || c->route->reset))
			conn_close(c, c->route->reset);
}

static void reap(struct fp_proxy *p)
{
	struct fp_pconn **pp = &p->conns;

	while (*pp) {
		struct fp_pconn *c = *pp;

		if (c->dead) {
			*pp = c->next;
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void *loop(void *arg)
{
	struct fp_proxy *p = arg;
	struct epoll_event evs[64];

	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		int64_t now = fp_mono_ns(), deadline = INT64_MAX;
		uint64_t seen = p->gen;
		int timeout, n;

		expire_faults(p, now, &deadline);
		compute_effects(p);
		apply_route_faults(p, now, &deadline);
		for (struct fp_pconn *c = p->conns; c; c = c->next) {
			if (c->dead)
				continue;
			if (pump(c, 0, now, &deadline) || pump(c, 1, now, &deadline))
				continue;
			if (c->d[0].shut && c->d[1].shut)
				conn_close(c, 0);
			else
				conn_update_mask(p, c);
		}
		reap(p);
		if (p->applied_gen != seen) {
			p->applied_gen = seen;
			pthread_cond_broadcast(&p->applied_cv);
		}
		if (deadline == INT64_MAX)
			timeout = -1;
		else if (deadline <= now)
			timeout = 0;
		else /* round up: waking early would only spin */
			timeout = (int)((deadline - now + FP_NS_PER_MS - 1) /
					FP_NS_PER_MS);
		pthread_mutex_unlock(&p->mu);
		n = epoll_wait(p->epfd, evs, 64, timeout);
		pthread_mutex_lock(&p->mu);
		now = fp_mono_ns();
		for (int i = 0; i < n; i++) {
			struct fp_ptag *t = evs[i].data.ptr;

			switch (t->kind) {
			case FP_TAG_WAKE: {
				uint64_t v;
				ssize_t r = read(p->wakefd, &v, sizeof v);

				(void)r;
				break;
			}
			case FP_TAG_LISTEN:
				on_listen(p, t->obj);
				break;
			case FP_TAG_CLIENT:
			case FP_TAG_UPSTREAM:
				on_conn_event(p, t->obj,
					      t->kind == FP_TAG_UPSTREAM,
					      evs[i].events, now);
				break;
			}
		}
	}
	for (struct fp_pconn *c = p->conns; c; c = c->next)
		conn_close(c, 0);
	reap(p);
	p->applied_gen = p->gen;
	pthread_cond_broadcast(&p->applied_cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int fp_proxy_start(struct fp_proxy *p, struct fp_err *err)
{
	int rc;

	if (p->running)
		return fp_err_set(err, FP_EINVAL, "proxy already started");
	p->stopping = 0;
	if (pthread_create(&p->thr, NULL, loop, p))
		return fp_err_set(err, FP_EINTERNAL, "cannot start the data "
						     "thread");
	p->running = 1;
	if (p->ctl_fd >= 0) {
		rc = fp_proxy_ctl_start(p, err);
		if (rc) {
			fp_proxy_stop(p);
			return rc;
		}
	}
	FP_INFO("event=proxy_started routes=%zu control=%s control_port=%d",
		p->nroutes, p->ctl_addr[0] ? p->ctl_addr : "-", p->ctl_port);
	return FP_OK;
}

void fp_proxy_stop(struct fp_proxy *p)
{
	if (!p)
		return;
	fp_proxy_ctl_stop(p);
	if (!p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_mutex_unlock(&p->mu);
	wake(p);
	pthread_join(p->thr, NULL);
	p->running = 0;
	FP_INFO("event=proxy_stopped");
}

void fp_proxy_free(struct fp_proxy *p)
{
	if (!p)
		return;
	fp_proxy_stop(p);
	while (p->faults) {
		struct fp_pfault *f = p->faults;

		p->faults = f->next;
		free(f);
	}
	for (struct fp_pconn *c = p->conns; c; c = c->next)
		conn_close(c, 0);
	reap(p);
	for (size_t i = 0; i < p->nroutes; i++) {
		if (p->routes[i]->lfd >= 0)
			close(p->routes[i]->lfd);
		free(p->routes[i]);
	}
	free(p->routes);
	if (p->ctl_fd >= 0)
		close(p->ctl_fd);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->wakefd >= 0)
		close(p->wakefd);
	pthread_cond_destroy(&p->applied_cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- faults ---------------------------------------------------------------- */

/* Wait (bounded, with p->mu held) until the loop has applied change gen,
 * so that when the API returns, the fault is in force on every existing
 * connection: the harness stamps the injection time right after. */
static void wait_applied(struct fp_proxy *p, uint64_t gen)
{
	struct timespec ts;

	if (!p->running)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += APPLY_WAIT_NS / FP_NS_PER_S;
	while (p->applied_gen < gen && !p->stopping)
		if (pthread_cond_timedwait(&p->applied_cv, &p->mu, &ts))
			break;
}

int fp_proxy_add_fault(struct fp_proxy *p, const struct fp_proxy_fault *f,
		       char id[FP_PROXY_ID_LEN], struct fp_err *err)
{
	struct fp_pfault *nf;
	struct fp_proute *r;
	uint64_t gen;
	int rc = fp_proxy_fault_check(f, err);

	if (rc)
		return rc;
	nf = calloc(1, sizeof *nf);
	if (!nf)
		return fp_err_set(err, FP_ENOMEM, "fault");
	pthread_mutex_lock(&p->mu);
	r = find_route(p, f->route);
	if (!r) {
		pthread_mutex_unlock(&p->mu);
		free(nf);
		return fp_err_set(err, FP_ENOTFOUND, "no route '%s'",
				  f->route ? f->route : "");
	}
	make_id(p, nf->id);
	nf->route = r;
	nf->f = *f;
	nf->f.route = r->name;
	nf->created_ns = fp_mono_ns();
	nf->expires_ns = nf->created_ns + f->ttl_ms * FP_NS_PER_MS;
	nf->next = p->faults;
	p->faults = nf;
	gen = ++p->gen;
	log_fault("fault_applied", nf, NULL);
	if (id)
		snprintf(id, FP_PROXY_ID_LEN, "%s", nf->id);
	wake(p);
	wait_applied(p, gen);
	pthread_mutex_unlock(&p->mu);
	return FP_OK;
}

int fp_proxy_remove_fault(struct fp_proxy *p, const char *id,
			  struct fp_err *err)
{
	struct fp_pfault **pp;
	uint64_t gen;

	pthread_mutex_lock(&p->mu);
	for (pp = &p->faults; *pp; pp = &(*pp)->next) {
		struct fp_pfault *f = *pp;

		if (id && !strcmp(f->id, id)) {
			*pp = f->next;
			log_fault("fault_removed", f, "delete");
			free(f);
			gen = ++p->gen;
			wake(p);
			wait_applied(p, gen);
			pthread_mutex_unlock(&p->mu);
			return FP_OK;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return fp_err_set(err, FP_ENOTFOUND,
			  "no active fault '%s' (removed or expired)",
			  id ? id : "");
}

size_t fp_proxy_reset(struct fp_proxy *p)
{
	size_t n = 0;
	uint64_t gen;

	pthread_mutex_lock(&p->mu);
	while (p->faults) {
		struct fp_pfault *f = p->faults;

		p->faults = f->next;
		log_fault("fault_removed", f, "reset");
		free(f);
		n++;
	}
	gen = ++p->gen;
	wake(p);
	wait_applied(p, gen);
	pthread_mutex_unlock(&p->mu);
	return n;
}

size_t fp_proxy_fault_count(struct fp_proxy *p)
{
	size_t n = 0;
	int64_t now = fp_mono_ns();

	pthread_mutex_lock(&p->mu);
	for (struct fp_pfault *f = p->faults; f; f = f->next)
		n += f->expires_ns > now;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int fp_proxy_route_port(struct fp_proxy *p, const char *route)
{
	struct fp_proute *r;
	int port;

	pthread_mutex_lock(&p->mu);
	r = find_route(p, route);
	port = r ? r->port : -1;
	pthread_mutex_unlock(&p->mu);
	return port;
}

int fp_proxy_route_conns(struct fp_proxy *p, const char *route)
{
	struct fp_proute *r;
	int n;

	pthread_mutex_lock(&p->mu);
	r = find_route(p, route);
	n = r ? r->nconns : -1;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int fp_proxy_control_port(const struct fp_proxy *p)
{
	return p->ctl_fd >= 0 ? p->ctl_port : -1;
}
