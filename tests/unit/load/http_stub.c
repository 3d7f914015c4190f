/*
 * http_stub.c - the in-process ingress stand-in (see http_stub.h).
 *
 * Deliberately minimal: it understands exactly what libcurl sends for a
 * POST with Content-Length (no chunked bodies, no pipelining: curl keeps
 * one request per HTTP/1.1 connection in flight). Responses are parked per
 * connection until their due time, which is how delays and stalls are made
 * without extra threads.
 */
#include "tests/unit/load/http_stub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_hash.h"

#define MAX_CONNS 512
#define IN_MAX 65536
#define BODY_LIMIT (1024u * 1024u)  /* the contract's 1 MiB */

struct stub_conn {
	int fd;
	size_t inlen;
	char in[IN_MAX];
	char out[1024];
	size_t outlen, outoff;
	int64_t due; /* response parked until then */
	int parked;
	size_t skip; /* bytes of an oversize body still to discard */
	size_t skip_hlen, skip_blen; /* its headers (kept in in) and size */
	int reset;   /* answer with a TCP reset (conf.reset_mod) */
};

/* Insert seq (with the hash of its first body) into the set; @returns 0
 * when new, 1 when seen with the same hash, 2 when seen with another. */
static int seen_add(struct stub *s, uint64_t seq, uint64_t hash)
{
	size_t i;

	if (s->seen_cap == 0 || (s->total + 1) * 2 > (int64_t)s->seen_cap) {
		size_t ncap = s->seen_cap ? s->seen_cap * 2 : 1024;
		uint64_t *n = calloc(ncap, sizeof *n);
		uint64_t *nh = calloc(ncap, sizeof *nh);

		if (!n || !nh)
			abort();
		for (size_t j = 0; j < s->seen_cap; j++) {
			uint64_t v = s->seen[j];

			if (!v)
				continue;
			for (i = (size_t)(v * 0x9e3779b97f4a7c15u) & (ncap - 1); n[i];
			     i = (i + 1) & (ncap - 1))
				;
			n[i] = v;
			nh[i] = s->seen_hash[j];
		}
		free(s->seen);
		free(s->seen_hash);
		s->seen = n;
		s->seen_hash = nh;
		s->seen_cap = ncap;
	}
	for (i = (size_t)(seq * 0x9e3779b97f4a7c15u) & (s->seen_cap - 1);
	     s->seen[i]; i = (i + 1) & (s->seen_cap - 1))
		if (s->seen[i] == seq)
			return s->seen_hash[i] == hash ? 1 : 2;
	s->seen[i] = seq;
	s->seen_hash[i] = hash;
	return 0;
}

static const char *find_header(const char *hdrs, size_t len, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i + nl < len; i++)
		if ((i == 0 || hdrs[i - 1] == '\n') &&
		    strncasecmp(hdrs + i, name, nl) == 0 && hdrs[i + nl] == ':') {
			const char *v = hdrs + i + nl + 1;

			while (*v == ' ')
				v++;
			return v;
		}
	return NULL;
}

/* Copy header name's value (up to the line end) into out. */
static void header_value(const char *hdrs, size_t len, const char *name,
			 char *out, size_t outsz)
{
	const char *v = find_header(hdrs, len, name);
	size_t n = v ? strcspn(v, "\r\n") : 0;

	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, v ? v : "", n);
	out[n] = '\0';
}

/* Answer the request whose headers are hdrs[0, hlen) and whose body is
 * body[0, blen); an oversize body (blen > BODY_LIMIT) was discarded and
 * body is NULL. */
static void respond(struct stub *s, struct stub_conn *c, const char *hdrs,
		    size_t hlen, const char *body, size_t blen, int64_t now)
{
	static const char key[] = "\"event_id\":\"e-";
	const char *p = body ? memmem(body, blen, key, sizeof key - 1) : NULL;
	const char *tp = find_header(hdrs, hlen, "traceparent");
	uint64_t seq = p ? strtoull(p + sizeof key - 1, NULL, 10) : 0;
	int status, dup = 0, n;
	const char *text, *rstat;
	char rb[512], xid[32], xrun[64], xclass[64], bh[65], prefix[17];
	int64_t due, rel = now - s->t0;

	header_value(hdrs, hlen, "x-event-id", xid, sizeof xid);
	header_value(hdrs, hlen, "x-platform-run-id", xrun, sizeof xrun);
	header_value(hdrs, hlen, "x-event-class", xclass, sizeof xclass);
	/* The header wins: an oversize body is never read and a truncated
	 * (malformed) one may hold a cut-off event id. */
	if (strncmp(xid, "e-", 2) == 0)
		seq = strtoull(xid + 2, NULL, 10);
	if (s->conf.reset_mod > 0 && seq &&
	    seq % (uint64_t)s->conf.reset_mod == 0) {
		/* No answer: the connection is reset (SO_LINGER 0 turns the
		 * caller's close into an RST) and the request is not seen. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		c->reset = 1;
		pthread_mutex_lock(&s->mu);
		s->resets++;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	/* Hashing costs (much, under valgrind): only when a check needs it. */
	bh[0] = '\0';
	if (body && (s->conf.record || s->conf.conflict_on_mismatch))
		fp_sha256_hex(body, blen, bh);
	memcpy(prefix, bh, 16);
	prefix[16] = '\0';

	pthread_mutex_lock(&s->mu);
	if (body)
		dup = seen_add(s, seq ? seq : UINT64_MAX,
			       strtoull(prefix, NULL, 16));
	if (!body) {
		status = 413;
		text = "Payload Too Large";
		rstat = "rejected";
	} else if (s->conf.status) {
		status = s->conf.status;
		text = "Status";
		rstat = status < 500 ? "rejected" : "unavailable";
	} else if (dup == 2 && s->conf.conflict_on_mismatch) {
		status = 409;
		text = "Conflict";
		rstat = "conflict";
	} else if (dup && s->conf.dup_on_repeat) {
		status = 200;
		text = "OK";
		rstat = "duplicate";
	} else {
		status = 202;
		text = "Accepted";
		rstat = "accepted";
	}
	if (s->conf.record) {
		struct stub_req *r;

		if (s->nreqs == s->capreqs) {
			size_t ncap = s->capreqs ? s->capreqs * 2 : 1024;

			r = realloc(s->reqs, ncap * sizeof *r);
			if (!r)
				abort();
			s->reqs = r;
			s->capreqs = ncap;
		}
		r = &s->reqs[s->nreqs++];
		memset(r, 0, sizeof *r);
		r->seq = seq;
		memcpy(r->body_hash, bh, sizeof r->body_hash);
		r->status = status;
		r->body_len = blen;
		snprintf(r->x_event_id, sizeof r->x_event_id, "%s", xid);
		r->x_ids = xrun[0] && xclass[0];
		/* "00-" trace(32) "-" span(16) "-01" */
		if (tp && strlen(tp) >= 55) {
			memcpy(r->trace_id, tp + 3, 32);
			memcpy(r->span_id, tp + 36, 16);
		}
	}
	s->total++;
	pthread_mutex_unlock(&s->mu);

	n = snprintf(rb, sizeof rb,
		     "{\"status\":\"%s\",\"reason\":\"stub\",\"event_id\":\"e-%020llu\","
		     "\"topic\":\"fp.bus.traffic.fraud.v1\",\"partition\":%d,"
		     "\"offset\":%lld}",
		     rstat, (unsigned long long)seq, (int)(seq % 6),
		     (long long)(seq / 6));
	c->outlen = (size_t)snprintf(c->out, sizeof c->out,
				     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
				     "Content-Length: %d\r\n\r\n%s",
				     status, text, n, rb);
	c->outoff = 0;
	due = now + s->conf.delay_ns;
	if (s->conf.stall_ns > 0 && rel >= s->conf.stall_at_ns &&
	    rel < s->conf.stall_at_ns + s->conf.stall_ns) {
		int64_t end = s->t0 + s->conf.stall_at_ns + s->conf.stall_ns;

		if (end > due)
			due = end;
	}
	c->due = due;
	c->parked = 1;
}

/* The oversize body has been read: answer it. */
static void skip_done(struct stub *s, struct stub_conn *c, int64_t now)
{
	respond(s, c, c->in, c->skip_hlen, NULL, c->skip_blen, now);
	c->inlen = 0;
}

/* Try to complete one request from the input buffer. */
static void parse(struct stub *s, struct stub_conn *c, int64_t now)
{
	const char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	const char *cl;
	size_t hlen, blen, total;

	if (!end)
		return;
	hlen = (size_t)(end - c->in) + 4;
	cl = find_header(c->in, hlen, "content-length");
	blen = cl ? (size_t)strtoul(cl, NULL, 10) : 0;
	total = hlen + blen;
	if (blen > BODY_LIMIT) {
		/* Keep the headers (the identity is there), discard the body
		 * as it arrives, answer 413 once it is all in. */
		size_t have = c->inlen - hlen < blen ? c->inlen - hlen : blen;

		c->skip_hlen = hlen;
		c->skip_blen = blen;
		c->skip = blen - have;
		c->inlen = hlen;
		if (c->skip == 0)
			skip_done(s, c, now);
		return;
	}
	if (c->inlen < total)
		return;
	respond(s, c, c->in, hlen, c->in + hlen, blen, now);
	memmove(c->in, c->in + total, c->inlen - total);
	c->inlen -= total;
}

static void close_conn(struct stub *s, size_t i)
{
	close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->nconns];
}

static void *stub_main(void *arg)
{
	struct stub *s = arg;
	struct pollfd *pfd = calloc(MAX_CONNS + 2, sizeof *pfd);

	if (!pfd)
		abort();

	for (;;) {
		int64_t now = fp_mono_ns(), next = INT64_MAX;
		int tmo;
		size_t np = 2;

		pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		for (size_t i = 0; i < s->nconns; i++) {
			struct stub_conn *c = &s->conns[i];
			short ev = 0;

			if (c->parked && c->due > now) {
				if (c->due < next)
					next = c->due;
			} else if (c->parked) {
				ev = POLLOUT;
			} else {
				ev = POLLIN;
			}
			pfd[np++] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		tmo = next == INT64_MAX ? 100
			: (int)((next - now + FP_NS_PER_MS - 1) / FP_NS_PER_MS);
		if (poll(pfd, np, tmo) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		now = fp_mono_ns();
		/* Walk backwards so close_conn()'s swap-with-last is safe. */
		for (size_t k = np; k-- > 2;) {
			size_t i = k - 2;
			struct stub_conn *c = &s->conns[i];

			if (c->parked && c->due <= now) {
				ssize_t w = write(c->fd, c->out + c->outoff,
						  c->outlen - c->outoff);

				if (w < 0 && errno != EAGAIN) {
					close_conn(s, i);
					continue;
				}
				if (w > 0)
					c->outoff += (size_t)w;
				if (c->outoff == c->outlen) {
					c->parked = 0;
					parse(s, c, now); /* pipelined rest, if any */
					if (c->reset)
						close_conn(s, i);
				}
				continue;
			}
			if (!c->parked && c->skip > 0 &&
			    (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
				char scratch[65536];
				ssize_t r = read(c->fd, scratch,
						 c->skip < sizeof scratch
							 ? c->skip
							 : sizeof scratch);

				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					close_conn(s, i);
					continue;
				}
				c->skip -= (size_t)r;
				if (c->skip == 0)
					skip_done(s, c, now);
				continue;
			}
			if (!c->parked && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
				ssize_t r = read(c->fd, c->in + c->inlen,
						 IN_MAX - c->inlen);

				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					close_conn(s, i);
					continue;
				}
				c->inlen += (size_t)r;
				parse(s, c, now);
				if (c->reset) {
					close_conn(s, i);
					continue;
				}
				if (!c->parked && c->inlen == IN_MAX)
					close_conn(s, i); /* oversized request */
			}
		}
		if (pfd[1].revents & POLLIN) {
			int fd = accept(s->lfd, NULL, NULL);

			if (fd >= 0) {
				int one = 1;

				if (s->nconns == MAX_CONNS) {
					close(fd);
					continue;
				}
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				memset(&s->conns[s->nconns], 0, sizeof s->conns[0]);
				s->conns[s->nconns++].fd = fd;
				pthread_mutex_lock(&s->mu);
				if ((int64_t)s->nconns > s->max_conns)
					s->max_conns = (int64_t)s->nconns;
				pthread_mutex_unlock(&s->mu);
			}
		}
	}
	free(pfd);
	return NULL;
}

int stub_start(struct stub *s, const struct stub_conf *conf)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof a;
	int one = 1;

	memset(s, 0, sizeof *s);
	s->conf = *conf;
	pthread_mutex_init(&s->mu, NULL);
	s->conns = calloc(MAX_CONNS, sizeof *s->conns);
	if (!s->conns || pipe(s->wake) != 0)
		return -1;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->lfd < 0)
		return -1;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(s->lfd, 512) != 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	s->port = ntohs(a.sin_port);
	snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/v1/events", s->port);
	s->t0 = fp_mono_ns();
	if (pthread_create(&s->th, NULL, stub_main, s) != 0)
		return -1;
	return 0;
}

void stub_stop(struct stub *s)
{
	if (write(s->wake[1], "x", 1) != 1)
		abort();
	pthread_join(s->th, NULL);
	while (s->nconns)
		close_conn(s, 0);
	close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s->conns);
	s->conns = NULL;
}

void stub_free(struct stub *s)
{
	free(s->reqs);
	free(s->seen);
	free(s->seen_hash);
	s->reqs = NULL;
	s->seen = NULL;
	s->seen_hash = NULL;
	pthread_mutex_destroy(&s->mu);
}
