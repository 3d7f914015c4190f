/*
 * test_proxy.c - the fault proxy (harness/proxy) in-process, on loopback
 * only: an echo server on a thread behind one route, a client in the test.
 * Every fault type is checked by what a client can observe (time, chunk
 * sizes, errno), on new and on existing connections, plus the lease, the
 * HTTP control API (through libcurl) and the tcp.fault injector's
 * validate/apply/revert against this proxy. Timing bounds are wide enough
 * for ASan and valgrind on a 2-core machine, tight enough to tell a fault
 * from its absence.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/proxy/fp_proxy.h"
#include "injectors/fp_injector.h"

/* ---- echo server ---------------------------------------------------------- */

#define ECHO_MAX_CONNS 16

struct echo {
	int lfd, port;
	volatile int stop;
	pthread_t thr;
	pthread_t conns[ECHO_MAX_CONNS];
	int nconns;
};

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0), off = 0;

		if (n <= 0)
			break;
		while (off < n) {
			ssize_t w = send(fd, buf + off, (size_t)(n - off),
					 MSG_NOSIGNAL);

			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	return NULL;
}

static void *echo_main(void *arg)
{
	struct echo *e = arg;

	while (!e->stop) {
		struct pollfd pfd = {e->lfd, POLLIN, 0};
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept(e->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (e->nconns == ECHO_MAX_CONNS) {
			close(fd);
			continue;
		}
		pthread_create(&e->conns[e->nconns++], NULL, echo_conn,
			       (void *)(intptr_t)fd);
	}
	return NULL;
}

static int listen_any(int *port)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	cr_assert(listen(fd, 16) == 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

static void echo_start(struct echo *e)
{
	memset(e, 0, sizeof *e);
	e->lfd = listen_any(&e->port);
	pthread_create(&e->thr, NULL, echo_main, e);
}

/* Connection threads end when their client (the proxy) closes: stop the
 * proxy first. */
static void echo_stop(struct echo *e)
{
	e->stop = 1;
	pthread_join(e->thr, NULL);
	for (int i = 0; i < e->nconns; i++)
		pthread_join(e->conns[i], NULL);
	close(e->lfd);
}

/* ---- fixture: echo + proxy with route "echo" ------------------------------- */

struct fx {
	struct echo echo;
	struct fp_proxy *p;
	int port; /* the route's listen port */
};

static void fx_start(struct fx *f, int control)
{
	struct fp_err err = {0};
	char up[64];

	echo_start(&f->echo);
	snprintf(up, sizeof up, "127.0.0.1:%d", f->echo.port);
	cr_assert_eq(fp_proxy_new(control ? "127.0.0.1:0" : NULL, &f->p, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(fp_proxy_add_route(f->p, "echo", "127.0.0.1:0", up, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(fp_proxy_start(f->p, &err), FP_OK, "%s", err.msg);
	f->port = fp_proxy_route_port(f->p, "echo");
	cr_assert_gt(f->port, 0);
}

static void fx_stop(struct fx *f)
{
	fp_proxy_free(f->p);
	echo_stop(&f->echo);
}

static int dial(int port)
{
	struct sockaddr_in a = {0};
	struct timeval tv = {5, 0};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void set_rcvtimeo_ms(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static void send_all(int fd, const void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t w = send(fd, (const char *)buf + off, n - off,
				 MSG_NOSIGNAL);

		cr_assert_gt(w, 0, "send: %s", strerror(errno));
		off += (size_t)w;
	}
}

static void recv_all(int fd, void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = recv(fd, (char *)buf + off, n - off, 0);

		cr_assert_gt(r, 0, "recv after %zu of %zu bytes: %s", off, n,
			     r ? strerror(errno) : "EOF");
		off += (size_t)r;
	}
}

/* One small request/response through the echo; @returns elapsed ms. */
static double rtt_ms(int fd)
{
	char out[8] = "ping-01", in[8];
	int64_t t0 = fp_mono_ns();

	send_all(fd, out, sizeof out);
	recv_all(fd, in, sizeof in);
	cr_assert(memcmp(in, out, sizeof in) == 0);
	return (double)(fp_mono_ns() - t0) / 1e6;
}

static char *add(struct fx *f, enum fp_proxy_fault_type t, unsigned dirs,
		 int64_t ms, int64_t jitter, int64_t kbps, int64_t bytes,
		 int64_t delay, int64_t ttl_ms)
{
	static char id[FP_PROXY_ID_LEN];
	struct fp_err err = {0};
	struct fp_proxy_fault fl = {"echo", t, dirs, ms, jitter, kbps,
				    bytes, delay, ttl_ms};

	cr_assert_eq(fp_proxy_add_fault(f->p, &fl, id, &err), FP_OK, "%s",
		     err.msg);
	return id;
}

/* ---- data path --------------------------------------------------------------- */

Test(proxy, passthrough_keeps_every_byte_in_order)
{
	struct fx f;
	static unsigned char out[256 * 1024], in[sizeof out];
	int fd;

	fx_start(&f, 0);
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (unsigned char)(i * 131 + (i >> 9));
	fd = dial(f.port);
	cr_assert_geq(fd, 0);
	for (size_t off = 0; off < sizeof out; off += 16384) {
		send_all(fd, out + off, 16384);
		recv_all(fd, in + off, 16384);
	}
	cr_assert(memcmp(in, out, sizeof out) == 0);
	cr_expect_lt(rtt_ms(fd), 50.0);
	cr_expect_eq(fp_proxy_route_conns(f.p, "echo"), 1);
	close(fd);
	fx_stop(&f);
}

Test(proxy, latency_per_direction_and_jitter_bounds)
{
	struct fx f;
	char *id;
	double t;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	/* upstream only: the request waits, the answer does not */
	id = add(&f, FP_PFAULT_LATENCY, FP_PDIR_UP, 100, 0, 0, 0, 0, 60000);
	t = rtt_ms(fd);
	cr_expect(t >= 100.0 && t < 180.0, "upstream 100 ms: rtt %.1f", t);
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	/* downstream only */
	id = add(&f, FP_PFAULT_LATENCY, FP_PDIR_DOWN, 100, 0, 0, 0, 0, 60000);
	t = rtt_ms(fd);
	cr_expect(t >= 100.0 && t < 180.0, "downstream 100 ms: rtt %.1f", t);
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	/* both: each way, so the round trip pays twice */
	id = add(&f, FP_PFAULT_LATENCY, FP_PDIR_BOTH, 60, 0, 0, 0, 0, 60000);
	t = rtt_ms(fd);
	cr_expect(t >= 120.0 && t < 200.0, "both 60 ms: rtt %.1f", t);
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	/* jitter: every sample in [ms - j, ms + j] (+ scheduling slack) */
	id = add(&f, FP_PFAULT_LATENCY, FP_PDIR_UP, 80, 40, 0, 0, 0, 60000);
	{
		double lo = 1e9, hi = 0;

		for (int i = 0; i < 12; i++) {
			t = rtt_ms(fd);
			lo = t < lo ? t : lo;
			hi = t > hi ? t : hi;
		}
		cr_expect(lo >= 40.0, "jitter: min rtt %.1f < 40", lo);
		cr_expect(hi < 150.0, "jitter: max rtt %.1f >= 150", hi);
		cr_expect(hi - lo > 5.0, "jitter: no spread (%.1f..%.1f)", lo,
			  hi);
	}
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	t = rtt_ms(fd);
	cr_expect_lt(t, 40.0, "after revert: rtt %.1f", t);
	close(fd);
	fx_stop(&f);
}

Test(proxy, fault_hits_an_existing_connection)
{
	struct fx f;
	double t;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	rtt_ms(fd); /* the first round trip also waits for the upstream */
	t = rtt_ms(fd);
	cr_expect_lt(t, 100.0);
	add(&f, FP_PFAULT_LATENCY, FP_PDIR_UP, 150, 0, 0, 0, 0, 60000);
	t = rtt_ms(fd); /* same connection, opened before the fault */
	cr_expect(t >= 150.0, "existing connection escaped: rtt %.1f", t);
	close(fd);
	fx_stop(&f);
}

Test(proxy, bandwidth_within_20_percent)
{
	static unsigned char out[150000], in[sizeof out];
	struct fx f;
	double secs, rate;
	int64_t t0;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	memset(out, 'b', sizeof out);
	/* 800 kbit/s = 100 000 bytes/s on the answers only */
	add(&f, FP_PFAULT_BANDWIDTH, FP_PDIR_DOWN, 0, 0, 800, 0, 0, 60000);
	t0 = fp_mono_ns();
	send_all(fd, out, sizeof out);
	recv_all(fd, in, sizeof in);
	secs = (double)(fp_mono_ns() - t0) / 1e9;
	rate = (double)sizeof out / secs;
	cr_expect(rate > 80000.0 && rate < 120000.0,
		  "bandwidth 100000 B/s: measured %.0f B/s over %.2f s", rate,
		  secs);
	cr_expect(memcmp(in, out, sizeof in) == 0);
	close(fd);
	fx_stop(&f);
}

Test(proxy, blackhole_drops_bytes_and_keeps_the_connection)
{
	struct fx f;
	char buf[16], *id;
	ssize_t r;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	rtt_ms(fd);
	id = add(&f, FP_PFAULT_BLACKHOLE, FP_PDIR_BOTH, 0, 0, 0, 0, 0, 60000);
	send_all(fd, "lost", 4);
	set_rcvtimeo_ms(fd, 400);
	r = recv(fd, buf, sizeof buf, 0);
	cr_expect_eq(r, -1, "blackhole let %zd bytes through", r);
	cr_expect(errno == EAGAIN || errno == EWOULDBLOCK, "errno %d", errno);
	cr_expect_eq(fp_proxy_route_conns(f.p, "echo"), 1,
		     "the connection must stay open");
	/* a new connection is accepted too, and also gets nothing */
	{
		int fd2 = dial(f.port);

		cr_assert_geq(fd2, 0);
		send_all(fd2, "x", 1);
		set_rcvtimeo_ms(fd2, 200);
		cr_expect_eq(recv(fd2, buf, sizeof buf, 0), -1);
		close(fd2);
	}
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	set_rcvtimeo_ms(fd, 5000);
	cr_expect_lt(rtt_ms(fd), 100.0); /* same connection works again */
	close(fd);
	fx_stop(&f);
}

Test(proxy, reset_existing_and_new_connections)
{
	struct fx f;
	char buf[8], *id;
	ssize_t r;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	rtt_ms(fd);
	id = add(&f, FP_PFAULT_RESET, FP_PDIR_BOTH, 0, 0, 0, 0, 0, 60000);
	r = recv(fd, buf, sizeof buf, 0);
	cr_expect(r == -1 && errno == ECONNRESET,
		  "existing connection: recv %zd errno %d (want ECONNRESET)", r,
		  errno);
	close(fd);
	fd = dial(f.port); /* the kernel completes the handshake ... */
	cr_assert_geq(fd, 0);
	r = recv(fd, buf, sizeof buf, 0); /* ... then the proxy resets */
	cr_expect(r == -1 && errno == ECONNRESET,
		  "new connection: recv %zd errno %d (want ECONNRESET)", r,
		  errno);
	close(fd);
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	fd = dial(f.port);
	cr_expect_lt(rtt_ms(fd), 100.0);
	close(fd);
	fx_stop(&f);
}

Test(proxy, slicer_delivers_small_paced_chunks)
{
	static char out[1000], in[sizeof out];
	struct fx f;
	size_t got = 0, max = 0;
	int64_t t0;
	int fd, reads = 0;

	fx_start(&f, 0);
	fd = dial(f.port);
	memset(out, 's', sizeof out);
	add(&f, FP_PFAULT_SLICER, FP_PDIR_DOWN, 0, 0, 0, 100, 20, 60000);
	t0 = fp_mono_ns();
	send_all(fd, out, sizeof out);
	while (got < sizeof in) {
		ssize_t r = recv(fd, in + got, sizeof in - got, 0);

		cr_assert_gt(r, 0);
		got += (size_t)r;
		max = (size_t)r > max ? (size_t)r : max;
		reads++;
	}
	cr_expect_leq(max, 100, "a read got %zu bytes (slice is 100)", max);
	cr_expect_geq(reads, 10);
	cr_expect_geq((fp_mono_ns() - t0) / FP_NS_PER_MS, 9 * 20,
		      "slices were not paced");
	close(fd);
	fx_stop(&f);
}

/* Time from our FIN to the proxy's FIN (the echo closes at once). */
static double close_ms(int port)
{
	char buf[8];
	int64_t t0;
	int fd = dial(port);

	rtt_ms(fd);
	t0 = fp_mono_ns();
	shutdown(fd, SHUT_WR);
	cr_assert_eq(recv(fd, buf, sizeof buf, 0), 0);
	close(fd);
	return (double)(fp_mono_ns() - t0) / 1e6;
}

Test(proxy, slow_close_delays_the_fin)
{
	struct fx f;
	double t;

	fx_start(&f, 0);
	t = close_ms(f.port);
	cr_expect_lt(t, 100.0, "plain close took %.1f ms", t);
	add(&f, FP_PFAULT_SLOW_CLOSE, FP_PDIR_DOWN, 300, 0, 0, 0, 0, 60000);
	t = close_ms(f.port);
	cr_expect(t >= 300.0 && t < 500.0, "slow_close 300 ms: %.1f ms", t);
	fx_stop(&f);
}

Test(proxy, down_refuses_and_revert_reopens)
{
	struct fx f;
	char buf[8], *id;
	ssize_t r;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	rtt_ms(fd);
	id = add(&f, FP_PFAULT_DOWN, FP_PDIR_BOTH, 0, 0, 0, 0, 0, 60000);
	r = recv(fd, buf, sizeof buf, 0);
	cr_expect(r == 0 || (r == -1 && errno == ECONNRESET),
		  "existing connection not closed: recv %zd", r);
	close(fd);
	cr_expect_eq(dial(f.port), -1);
	cr_expect_eq(errno, ECONNREFUSED);
	cr_expect_eq(fp_proxy_route_conns(f.p, "echo"), 0);
	cr_assert_eq(fp_proxy_remove_fault(f.p, id, NULL), FP_OK);
	fd = dial(f.port); /* same port again */
	cr_assert_geq(fd, 0, "not reopened: %s", strerror(errno));
	cr_expect_lt(rtt_ms(fd), 100.0);
	close(fd);
	fx_stop(&f);
}

Test(proxy, lease_expires_by_itself)
{
	struct fx f;
	struct fp_err err = {0};
	char *id;
	int fd;

	fx_start(&f, 0);
	fd = dial(f.port);
	id = add(&f, FP_PFAULT_LATENCY, FP_PDIR_UP, 100, 0, 0, 0, 0, 300);
	cr_expect_eq(fp_proxy_fault_count(f.p), 1);
	cr_expect_geq(rtt_ms(fd), 100.0);
	usleep(400 * 1000);
	cr_expect_eq(fp_proxy_fault_count(f.p), 0);
	cr_expect_lt(rtt_ms(fd), 50.0);
	/* the harness's late revert: 404 semantics */
	cr_expect_eq(fp_proxy_remove_fault(f.p, id, &err), FP_ENOTFOUND);
	close(fd);
	fx_stop(&f);
}

Test(proxy, fault_check_rejects_bad_faults)
{
	struct fp_err err = {0};
	struct fp_proxy_fault ok = {"r", FP_PFAULT_LATENCY, FP_PDIR_UP, 10, 5,
				    0, 0, 0, 1000};
	struct fp_proxy_fault b;

	cr_expect_eq(fp_proxy_fault_check(&ok, &err), FP_OK, "%s", err.msg);
	b = ok, b.ttl_ms = 0;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_EINVAL);
	b = ok, b.ttl_ms = FP_PROXY_TTL_MAX_MS + 1;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_EINVAL);
	b = ok, b.jitter_ms = 11;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_EINVAL);
	b = ok, b.kbps = 5;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_EINVAL);
	b = ok, b.type = FP_PFAULT_RESET, b.ms = b.jitter_ms = 0;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_EINVAL, "reset up");
	b.dirs = FP_PDIR_BOTH;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_OK, "%s", err.msg);
	b = ok, b.type = FP_PFAULT_SLICER, b.ms = b.jitter_ms = 0;
	cr_expect_eq(fp_proxy_fault_check(&b, &err), FP_EINVAL, "no bytes");
}

Test(proxy, route_errors)
{
	struct fp_proxy *p;
	struct fp_err err = {0};
	struct fp_proxy_fault fl = {"nope", FP_PFAULT_BLACKHOLE, FP_PDIR_BOTH,
				    0, 0, 0, 0, 0, 1000};
	char id[FP_PROXY_ID_LEN];

	cr_assert_eq(fp_proxy_new(NULL, &p, &err), FP_OK);
	cr_expect_eq(fp_proxy_add_route(p, "bad name", "127.0.0.1:0",
					"127.0.0.1:1", &err),
		     FP_EINVAL);
	cr_expect_eq(fp_proxy_add_route(p, "r", "127.0.0.1", "127.0.0.1:1",
					&err),
		     FP_EINVAL);
	cr_expect_eq(fp_proxy_add_route(p, "r", "127.0.0.1:0", "127.0.0.1:1",
					&err),
		     FP_OK, "%s", err.msg);
	cr_expect_eq(fp_proxy_add_route(p, "r", "127.0.0.1:0", "127.0.0.1:1",
					&err),
		     FP_EINVAL, "duplicate route");
	cr_expect_eq(fp_proxy_add_fault(p, &fl, id, &err), FP_ENOTFOUND);
	fp_proxy_free(p);
}

/* ---- control API through libcurl ---------------------------------------------- */

struct http {
	long status;
	char body[4096];
	size_t len;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http *h = ud;
	size_t n = size * nmemb, room = sizeof h->body - 1 - h->len;

	memcpy(h->body + h->len, ptr, n < room ? n : room);
	h->len += n < room ? n : room;
	h->body[h->len] = '\0';
	return n;
}

static struct http call(int port, const char *method, const char *path,
			const char *body)
{
	struct http h;
	struct curl_slist *hd = NULL;
	CURL *c = curl_easy_init();
	char url[256];

	memset(&h, 0, sizeof h);
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (body) {
		hd = curl_slist_append(hd, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "%s %s", method, path);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
	curl_slist_free_all(hd);
	curl_easy_cleanup(c);
	return h;
}

Test(proxy, control_api)
{
	struct fx f;
	struct http h;
	json_t *j;
	char id[64], path[96];
	int cp, fd;

	fx_start(&f, 1);
	cp = fp_proxy_control_port(f.p);
	cr_assert_gt(cp, 0);
	fd = dial(f.port);
	rtt_ms(fd);
	h = call(cp, "GET", "/health", NULL);
	cr_expect_eq(h.status, 200, "%s", h.body);
	h = call(cp, "POST", "/faults",
		 "{\"route\":\"echo\",\"type\":\"latency\",\"direction\":"
		 "\"upstream\",\"params\":{\"ms\":120},\"ttl_ms\":60000}");
	cr_assert_eq(h.status, 201, "%s", h.body);
	j = json_loads(h.body, 0, NULL);
	cr_assert_not_null(json_string_value(json_object_get(j, "id")));
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
	cr_expect_eq(json_integer_value(json_object_get(j, "expires_in_ms")),
		     60000);
	json_decref(j);
	cr_expect_geq(rtt_ms(fd), 120.0);
	h = call(cp, "GET", "/routes", NULL);
	cr_expect_eq(h.status, 200);
	cr_expect(strstr(h.body, id) && strstr(h.body, "\"connections\":1") &&
			  strstr(h.body, "\"name\":\"echo\""),
		  "routes: %s", h.body);
	snprintf(path, sizeof path, "/faults/%s", id);
	h = call(cp, "DELETE", path, NULL);
	cr_expect_eq(h.status, 200, "%s", h.body);
	h = call(cp, "DELETE", path, NULL);
	cr_expect_eq(h.status, 404, "second delete: %s", h.body);
	cr_expect_lt(rtt_ms(fd), 60.0);
	/* refusals */
	h = call(cp, "POST", "/faults",
		 "{\"route\":\"echo\",\"type\":\"blackhole\"}");
	cr_expect_eq(h.status, 400, "no ttl: %s", h.body);
	h = call(cp, "POST", "/faults",
		 "{\"route\":\"echo\",\"type\":\"blackhole\",\"ttl_ms\":"
		 "3600001}");
	cr_expect_eq(h.status, 400, "ttl over 1 h: %s", h.body);
	h = call(cp, "POST", "/faults",
		 "{\"route\":\"nope\",\"type\":\"blackhole\",\"ttl_ms\":1000}");
	cr_expect_eq(h.status, 404, "unknown route: %s", h.body);
	h = call(cp, "POST", "/faults",
		 "{\"route\":\"echo\",\"type\":\"latency\",\"params\":{\"msec\":"
		 "1},\"ttl_ms\":1000}");
	cr_expect_eq(h.status, 400, "unknown param: %s", h.body);
	h = call(cp, "POST", "/faults", "not json");
	cr_expect_eq(h.status, 400);
	h = call(cp, "POST", "/faults",
		 "{\"route\":\"echo\",\"type\":\"reset\",\"direction\":"
		 "\"upstream\",\"ttl_ms\":1000}");
	cr_expect_eq(h.status, 400, "reset upstream: %s", h.body);
	h = call(cp, "GET", "/nothing", NULL);
	cr_expect_eq(h.status, 404);
	/* POST /reset removes everything */
	call(cp, "POST", "/faults",
	     "{\"route\":\"echo\",\"type\":\"slow_close\",\"params\":{\"ms\":"
	     "10},\"ttl_ms\":60000}");
	call(cp, "POST", "/faults",
	     "{\"route\":\"echo\",\"type\":\"bandwidth\",\"params\":{\"kbps\":"
	     "100},\"ttl_ms\":60000}");
	h = call(cp, "POST", "/reset", "{}");
	cr_expect_eq(h.status, 200);
	cr_expect(strstr(h.body, "\"removed\":2") != NULL, "%s", h.body);
	cr_expect_eq(fp_proxy_fault_count(f.p), 0);
	close(fd);
	fx_stop(&f);
}

/* ---- the tcp.fault injector ---------------------------------------------------- */

#define P(k, v) {(char *)(k), (char *)(v), {0}}
#define KV(...)                                                         \
	((struct fp_kvlist){(struct fp_kv[]){__VA_ARGS__},                 \
			    sizeof((struct fp_kv[]){__VA_ARGS__}) /         \
				    sizeof(struct fp_kv)})

static const struct fp_injector *tcp_fault(void)
{
	const struct fp_injector *i = fp_injector_find("tcp.fault");

	cr_assert_not_null(i, "tcp.fault is not registered");
	return i;
}

static void bad(struct fp_kvlist with, const char *want)
{
	struct fp_err err = {0};
	int rc = tcp_fault()->validate(&with, &err);

	cr_expect_eq(rc, FP_ESPEC, "want FP_ESPEC (%s), got %s", want,
		     fp_rc_name(rc));
	cr_expect(strstr(err.msg, want) != NULL, "\"%s\" lacks \"%s\"",
		  err.msg, want);
}

static void good(struct fp_kvlist with)
{
	struct fp_err err = {0};

	cr_expect_eq(tcp_fault()->validate(&with, &err), FP_OK, "%s",
		     err.msg);
}

Test(tcp_fault, validate)
{
	good(KV(P("route", "redis"), P("type", "blackhole")));
	good(KV(P("proxy", "http://127.0.0.1:18090"), P("route", "redis"),
		P("type", "latency"), P("ms", "200"), P("jitter_ms", "50"),
		P("direction", "downstream"), P("ttl", "5m")));
	good(KV(P("route", "pg"), P("type", "bandwidth"), P("kbps", "64")));
	good(KV(P("route", "pg"), P("type", "slicer"), P("bytes", "10"),
		P("delay_ms", "5")));
	good(KV(P("route", "kafka"), P("type", "down"), P("ttl", "1h")));
	bad(KV(P("type", "blackhole")), "needs route");
	bad(KV(P("route", "a b"), P("type", "blackhole")), "needs route");
	bad(KV(P("route", "r"), P("type", "jam")), "type must be");
	bad(KV(P("route", "r"), P("type", "latency")), "needs ms");
	bad(KV(P("route", "r"), P("type", "latency"), P("ms", "10"),
	       P("jitter_ms", "11")),
	    "must not exceed ms");
	bad(KV(P("route", "r"), P("type", "latency"), P("ms", "abc")),
	    "ms must be an integer");
	bad(KV(P("route", "r"), P("type", "latency"), P("ms", "10"),
	       P("kbps", "1")),
	    "kbps is not a parameter");
	bad(KV(P("route", "r"), P("type", "bandwidth"), P("kbps", "0")),
	    "kbps must be an integer in [1,");
	bad(KV(P("route", "r"), P("type", "reset"), P("direction", "upstream")),
	    "direction must be both");
	bad(KV(P("route", "r"), P("type", "blackhole"), P("direction", "in")),
	    "direction must be upstream");
	bad(KV(P("route", "r"), P("type", "blackhole"), P("ttl", "2h")),
	    "ttl");
	bad(KV(P("route", "r"), P("type", "blackhole"), P("ttl", "10")),
	    "ttl");
	bad(KV(P("route", "r"), P("type", "blackhole"), P("lease", "1m")),
	    "unknown argument 'lease'");
	bad(KV(P("proxy", "127.0.0.1:18090"), P("route", "r"),
	       P("type", "blackhole")),
	    "proxy must be");
}

Test(tcp_fault, apply_and_revert_against_the_proxy)
{
	struct fx f;
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	char url[64], cp[16];
	json_t *st;
	double t;
	int fd;

	fx_start(&f, 1);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/",
		 fp_proxy_control_port(f.p));
	fd = dial(f.port);
	memset(&ctx, 0, sizeof ctx);
	{
		struct fp_kvlist with =
			KV(P("proxy", url), P("route", "echo"),
			   P("type", "latency"), P("ms", "120"),
			   P("direction", "upstream"), P("ttl", "30s"));

		cr_assert_eq(tcp_fault()->apply(&with, &ctx, &err), FP_OK,
			     "%s", err.msg);
		st = json_loads(ctx.state, 0, NULL);
		cr_assert_not_null(st, "state: %s", ctx.state);
		cr_expect_not_null(json_string_value(json_object_get(st, "id")));
		cr_expect_eq(json_integer_value(json_object_get(st, "ttl_ms")),
			     30000);
		json_decref(st);
		cr_expect_eq(fp_proxy_fault_count(f.p), 1);
		t = rtt_ms(fd);
		cr_expect_geq(t, 120.0, "rtt %.1f", t);
		cr_assert_eq(tcp_fault()->revert(&with, &ctx, &err), FP_OK,
			     "%s", err.msg);
		cr_expect_eq(fp_proxy_fault_count(f.p), 0);
		cr_expect_lt(rtt_ms(fd), 60.0);
		/* a second revert (cleanup after a crash): 404 = gone */
		cr_expect_eq(tcp_fault()->revert(&with, &ctx, &err), FP_OK,
			     "%s", err.msg);
	}
	{
		/* unknown route: nothing applied, and the state says so */
		struct fp_kvlist with = KV(P("proxy", url), P("route", "nope"),
					   P("type", "blackhole"));

		memset(&ctx, 0, sizeof ctx);
		cr_expect_eq(tcp_fault()->apply(&with, &ctx, &err),
			     FP_ENOTFOUND, "%s", err.msg);
		cr_expect(strstr(ctx.state, "\"applied\":false") != NULL,
			  "%s", ctx.state);
		cr_expect_eq(tcp_fault()->revert(&with, &ctx, &err), FP_OK);
	}
	{
		/* a crash before "applied": no id, the lease ends it */
		struct fp_kvlist with = KV(P("proxy", url), P("route", "echo"),
					   P("type", "blackhole"));

		memset(&ctx, 0, sizeof ctx);
		cr_expect_eq(tcp_fault()->revert(&with, &ctx, &err), FP_OK);
	}
	{
		/* the proxy is gone: revert cannot confirm, says so */
		struct fp_kvlist with = KV(P("route", "echo"),
					   P("type", "blackhole"));

		snprintf(cp, sizeof cp, "%d", 1);
		memset(&ctx, 0, sizeof ctx);
		snprintf(ctx.state, sizeof ctx.state,
			 "{\"proxy\":\"http://127.0.0.1:%s\",\"id\":"
			 "\"f-0000000000000001\"}",
			 cp);
		cr_expect_eq(tcp_fault()->revert(&with, &ctx, &err),
			     FP_EUNREACHABLE, "%s", err.msg);
	}
	close(fd);
	fx_stop(&f);
}
