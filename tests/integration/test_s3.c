/*
 * test_s3.c - fp_reports' S3 upload against the real MinIO of the local
 * stack (envs/local/stack writes envs/local/.state/endpoints.env; the
 * directory can be overridden with FPDRILL_STATE).
 *
 * MinIO verifies SigV4, so a wrong secret must come back 403
 * SignatureDoesNotMatch and an anonymous PUT 403 AccessDenied: together with
 * a byte-identical round trip that is the proof the uploads are really
 * signed (s3rver would accept all three). A missing endpoints file or a
 * server that does not answer FAILS these tests, never skips them: a green
 * run must mean the upload was exercised.
 *
 * The retry / ordering cases use a scripted HTTP server on a loopback port
 * inside this process, because MinIO cannot be told to answer 503.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/core/fp_buf.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_hash.h"
#include "reports/fp_report.h"

/* ------------------------------------------------------------ stack config */

struct s3env {
	char endpoint[256], bucket[128], region[64];
	char *access, *secret;
};

static struct s3env env;

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

static char *read_trimmed(const char *path)
{
	char *data = NULL;
	size_t len;
	struct fp_err err = {0};

	cr_assert_eq(fp_read_file(path, 4096, &data, &len, &err), FP_OK,
		     "credential file: %s", err.msg);
	trim(data);
	return data;
}

static void load_env(void)
{
	const char *state = getenv("FPDRILL_STATE"), *src;
	char path[1024], line[1024], akf[512] = "", skf[512] = "";
	FILE *f;

	memset(&env, 0, sizeof env);
	if (state && *state) {
		snprintf(path, sizeof path, "%s/endpoints.env", state);
	} else {
		src = getenv("FPDRILL_SOURCE_DIR");
		cr_assert_not_null(src, "FPDRILL_SOURCE_DIR is not set (run "
					"through ctest) and FPDRILL_STATE is "
					"not set either");
		snprintf(path, sizeof path, "%s/envs/local/.state/endpoints.env",
			 src);
	}
	f = fopen(path, "r");
	cr_assert_not_null(f,
			   "cannot open %s (%s): start the local stack with "
			   "envs/local/stack up",
			   path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq = '\0';
		trim(eq + 1);
		if (strcmp(line, "FPD_S3_ENDPOINT") == 0)
			snprintf(env.endpoint, sizeof env.endpoint, "%s", eq + 1);
		else if (strcmp(line, "FPD_S3_BUCKET") == 0)
			snprintf(env.bucket, sizeof env.bucket, "%s", eq + 1);
		else if (strcmp(line, "FPD_S3_REGION") == 0)
			snprintf(env.region, sizeof env.region, "%s", eq + 1);
		else if (strcmp(line, "FPD_S3_ACCESS_KEY_FILE") == 0)
			snprintf(akf, sizeof akf, "%s", eq + 1);
		else if (strcmp(line, "FPD_S3_SECRET_KEY_FILE") == 0)
			snprintf(skf, sizeof skf, "%s", eq + 1);
	}
	fclose(f);
	cr_assert(env.endpoint[0] && env.bucket[0] && akf[0] && skf[0],
		  "%s lacks FPD_S3_* entries", path);
	if (!env.region[0])
		snprintf(env.region, sizeof env.region, "us-east-1");
	env.access = read_trimmed(akf);
	env.secret = read_trimmed(skf);
}

static void free_env(void)
{
	free(env.access);
	free(env.secret);
	env.access = env.secret = NULL;
}

static struct fp_s3_conf conf(void)
{
	struct fp_s3_conf c = {
		.endpoint = env.endpoint,
		.bucket = env.bucket,
		.region = env.region,
		.prefix = "fpdrill-test",
		.access_key = env.access,
		.secret_key = env.secret,
		.max_attempts = 2,
	};
	return c;
}

/* A signed GET done here, with libcurl directly, so the round trip does not
 * rely on the code under test for the read side. */
static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	return fp_buf_append(ud, p, sz * n) ? 0 : sz * n;
}

static long s3_get(const char *key, struct fp_buf *out)
{
	char url[2048], ekey[1536], sigv4[128], user[512];
	/* sha256 of the empty body: a GET has none, and curl 7.88 does not
	 * add the header that MinIO requires. */
	const char *hdr = "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb"
			  "92427ae41e4649b934ca495991b7852b855";
	struct curl_slist *hl = curl_slist_append(NULL, hdr);
	CURL *h = curl_easy_init();
	long code = 0;

	cr_assert_eq(fp_s3_uri_encode(key, ekey, sizeof ekey), 0);
	snprintf(url, sizeof url, "%s/%s/%s", env.endpoint, env.bucket, ekey);
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", env.region);
	snprintf(user, sizeof user, "%s:%s", env.access, env.secret);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, user);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	cr_assert_eq(curl_easy_perform(h), CURLE_OK, "GET %s failed", key);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	memset(user, 0, sizeof user);
	return code;
}

/* -------------------------------------------------------------- temp dirs */

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void mk_tmp(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/fp-s3-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	cr_assert_eq(fp_write_file_atomic(path, text, strlen(text), NULL),
		     FP_OK);
}

static struct fp_report *small_report(const char *run_id, int64_t t0)
{
	struct fp_report *r = fp_report_new();
	struct fp_inv_result *v;

	fp_report_set(&r->run_id, run_id);
	fp_report_set(&r->drill_id, "DR-02");
	fp_report_set(&r->drill_title, "Replay");
	r->started_wall_ns = t0;
	r->ended_wall_ns = t0 + 5 * FP_NS_PER_S;
	r->verdict = FP_VERDICT_PASS;
	r->exit_code = 0;
	v = fp_report_add_invariant(r, "no_lost_events");
	v->status = FP_STATUS_PASS;
	fp_report_add_timeline(r, 0, t0, "phase", "load", NULL);
	return r;
}

/* ---------------------------------------------------------- MinIO cases */

TestSuite(s3, .init = load_env, .fini = free_env, .timeout = 300);

Test(s3, bundle_round_trip_is_byte_identical)
{
	struct fp_s3_conf c = conf();
	struct fp_err err = {0};
	char dir[64], back[64], run_id[17], prefix[512];
	int64_t t0 = fp_wall_ns();
	struct fp_report *r;
	static const char *const names[] = {
		"faults.jsonl", "junit.xml",   "ledger.tsv",
		"manifest.json", "report.html", "report.json", "report.md",
		"samples.tsv",  "weird name=1+2&x.txt"};

	cr_assert_eq(fp_random_hex(run_id, 8, NULL), FP_OK);
	mk_tmp(dir, sizeof dir);
	mk_tmp(back, sizeof back);
	put_file(dir, "ledger.tsv", "evt-1\tDR-02\n");
	put_file(dir, "faults.jsonl", "{\"f\":1}\n");
	/* A name that needs UriEncode proves the signed path is encoded. */
	put_file(dir, "weird name=1+2&x.txt", "odd key\n");
	{
		/* Over 1 MiB: libcurl then adds "Expect: 100-continue" on its
		 * own, which must not break the signature. */
		size_t big = (size_t)3 << 20;
		char *text = malloc(big + 1);

		cr_assert_not_null(text);
		for (size_t i = 0; i < big; i++)
			text[i] = (char)('a' + (i * 7 + i / 13) % 26);
		text[big - 1] = '\n';
		text[big] = '\0';
		put_file(dir, "samples.tsv", text);
		free(text);
	}
	r = small_report(run_id, t0);
	cr_assert_eq(fp_bundle_write(r, dir, "test-key", &err), FP_OK, "%s",
		     err.msg);
	fp_report_free(r);

	cr_assert_eq(fp_s3_bundle_key(&c, "DR-02", t0, run_id, prefix,
				      sizeof prefix),
		     FP_OK);
	cr_assert_eq(fp_s3_upload_bundle(&c, dir, prefix, &err), FP_OK,
		     "upload failed (is MinIO up? endpoint %s): %s",
		     env.endpoint, err.msg);

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct fp_buf got = FP_BUF_INIT((size_t)16 << 20);
		char key[1024], path[512], *want = NULL;
		size_t wlen = 0;
		long code;

		snprintf(key, sizeof key, "%s/%s", prefix, names[i]);
		code = s3_get(key, &got);
		cr_assert_eq(code, 200, "GET %s: HTTP %ld: %s", key, code,
			     fp_buf_cstr(&got));
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		cr_assert_eq(fp_read_file(path, (size_t)16 << 20, &want, &wlen,
					  NULL),
			     FP_OK);
		cr_assert_eq(got.len, wlen, "%s: %zu bytes back, %zu sent",
			     names[i], got.len, wlen);
		cr_assert(memcmp(got.data ? got.data : "", want, wlen) == 0,
			  "%s differs", names[i]);
		/* The downloaded copy must verify on its own. */
		snprintf(path, sizeof path, "%s/%s", back, names[i]);
		cr_assert_eq(fp_write_file_atomic(path, fp_buf_cstr(&got),
						  got.len, NULL),
			     FP_OK);
		free(want);
		fp_buf_release(&got);
	}
	cr_assert_eq(fp_bundle_verify(back, "test-key", &err), FP_OK, "%s",
		     err.msg);
	rm_tmp(dir);
	rm_tmp(back);
}

Test(s3, wrong_secret_is_signature_mismatch)
{
	struct fp_s3_conf c = conf();
	struct fp_err err = {0};
	long status = 0;
	int64_t t0;

	c.secret_key = "definitely-not-the-secret";
	c.max_attempts = 4;
	t0 = fp_mono_ns();
	cr_assert_eq(fp_s3_put(&c, "fpdrill-test/wrong-secret.txt", "x", 1,
			       "text/plain", &status, &err),
		     FP_EBACKEND, "rc: %s", err.msg);
	cr_assert_eq(status, 403, "status %ld: %s", status, err.msg);
	cr_assert(strstr(err.msg, "SignatureDoesNotMatch") != NULL, "%s",
		  err.msg);
	cr_assert(strstr(err.msg, "definitely-not-the-secret") == NULL);
	cr_assert_eq(err.retriable, 0);
	/* 403 is not retried: three retries would sleep 250+500+1000 ms of
	 * backoff (the scripted-server test counts the requests exactly). */
	cr_assert_lt(fp_mono_ns() - t0, 1500 * FP_NS_PER_MS);
}

Test(s3, anonymous_put_is_denied)
{
	struct fp_s3_conf c = conf();
	struct fp_err err = {0};
	long status = 0;

	c.access_key = NULL;
	c.secret_key = NULL;
	cr_assert_eq(fp_s3_put(&c, "fpdrill-test/anonymous.txt", "x", 1, NULL,
			       &status, &err),
		     FP_EBACKEND, "rc: %s", err.msg);
	cr_assert_eq(status, 403, "status %ld: %s", status, err.msg);
	cr_assert(strstr(err.msg, "AccessDenied") != NULL, "%s", err.msg);
}

Test(s3, empty_object_round_trip)
{
	struct fp_s3_conf c = conf();
	struct fp_buf got = FP_BUF_INIT(1024);
	struct fp_err err = {0};
	long status = 0;

	cr_assert_eq(fp_s3_put(&c, "fpdrill-test/empty.bin", NULL, 0, NULL,
			       &status, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(status, 200);
	cr_assert_eq(s3_get("fpdrill-test/empty.bin", &got), 200);
	cr_assert_eq(got.len, 0);
	fp_buf_release(&got);
}

/* ------------------------------------------ scripted server (retry, order) */

#define MAX_REQ 32

struct fake {
	int lfd, port;
	_Atomic int stop;
	int statuses[MAX_REQ]; /* scripted answers; 0 = 200 */
	int n_req;
	char paths[MAX_REQ][256];
	char headers[MAX_REQ][2048];
	pthread_t th;
};

static void serve_one(struct fake *f, int fd)
{
	char buf[65536], *hend, *cl;
	size_t got = 0, need;
	long blen = 0;
	int code, i = f->n_req;
	char resp[512];
	const char *body = "";

	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);

		if (n <= 0)
			return;
		got += (size_t)n;
		buf[got] = '\0';
		if ((hend = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl && cl < hend)
		blen = strtol(cl + 17, NULL, 10);
	need = (size_t)(hend + 4 - buf) + (size_t)blen;
	while (got < need && got < sizeof buf - 1) {
		ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (i < MAX_REQ) {
		char *sp = strchr(buf, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;

		if (sp && sp2)
			snprintf(f->paths[i], sizeof f->paths[i], "%.*s",
				 (int)(sp2 - sp - 1), sp + 1);
		snprintf(f->headers[i], sizeof f->headers[i], "%.*s",
			 (int)(hend - buf), buf);
	}
	code = i < MAX_REQ && f->statuses[i] ? f->statuses[i] : 200;
	f->n_req++;
	if (code == 403)
		body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"
		       "<Message>Access Denied.</Message></Error>";
	else if (code >= 500)
		body = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
		       "</Error>";
	snprintf(resp, sizeof resp,
		 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close"
		 "\r\n\r\n%s",
		 code, strlen(body), body);
	if (send(fd, resp, strlen(resp), MSG_NOSIGNAL) < 0)
		return;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!f->stop) {
		struct pollfd p = {.fd = f->lfd, .events = POLLIN};
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve_one(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof a;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(f->lfd, 0);
	cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(f->lfd, 16), 0);
	cr_assert_eq(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	f->stop = 1;
	pthread_join(f->th, NULL);
	close(f->lfd);
}

static struct fp_s3_conf fake_conf(const struct fake *f, char *ep, size_t n)
{
	struct fp_s3_conf c = {
		.endpoint = ep,
		.bucket = "b",
		.region = "us-east-1",
		.prefix = "p",
		.access_key = "AKIDEXAMPLE",
		.secret_key = "fake-secret",
		.max_attempts = 3,
	};

	snprintf(ep, n, "http://127.0.0.1:%d", f->port);
	return c;
}

TestSuite(s3_policy, .timeout = 60);

Test(s3_policy, retries_5xx_then_succeeds_with_backoff)
{
	static struct fake f = {.statuses = {503, 500}};
	struct fp_err err = {0};
	char ep[64], sha[FP_SHA256_HEX], want[128];
	struct fp_s3_conf c;
	long status = 0;
	int64_t t0;

	fake_start(&f);
	c = fake_conf(&f, ep, sizeof ep);
	t0 = fp_mono_ns();
	cr_assert_eq(fp_s3_put(&c, "a b/c=d", "hello", 5, "text/plain",
			       &status, &err),
		     FP_OK, "%s", err.msg);
	fake_stop(&f);
	cr_assert_eq(status, 200);
	cr_assert_eq(f.n_req, 3);
	/* 250 ms + 500 ms of backoff before the third attempt. */
	cr_assert_geq(fp_mono_ns() - t0, 750 * FP_NS_PER_MS);
	cr_assert_str_eq(f.paths[0], "/b/a%20b/c%3Dd");
	fp_sha256_hex("hello", 5, sha);
	snprintf(want, sizeof want, "x-amz-content-sha256: %s", sha);
	cr_assert(strcasestr(f.headers[0], want) != NULL, "%s", f.headers[0]);
	cr_assert(strstr(f.headers[0], "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
		  != NULL, "%s", f.headers[0]);
	cr_assert(strstr(f.headers[0], "/us-east-1/s3/aws4_request") != NULL);
	cr_assert(strstr(f.headers[0], "fake-secret") == NULL);
	cr_assert(strcasestr(f.headers[0], "expect:") == NULL);
	cr_assert(strncmp(f.headers[0], "PUT ", 4) == 0);
}

Test(s3_policy, forbidden_is_not_retried)
{
	static struct fake f = {.statuses = {403, 403, 403}};
	struct fp_err err = {0};
	struct fp_s3_conf c;
	char ep[64];
	long status = 0;

	fake_start(&f);
	c = fake_conf(&f, ep, sizeof ep);
	cr_assert_eq(fp_s3_put(&c, "k", "x", 1, NULL, &status, &err),
		     FP_EBACKEND);
	fake_stop(&f);
	cr_assert_eq(f.n_req, 1);
	cr_assert_eq(status, 403);
	cr_assert(strstr(err.msg, "AccessDenied") != NULL, "%s", err.msg);
}

Test(s3_policy, exhausted_5xx_is_backend_error)
{
	static struct fake f = {.statuses = {503, 503, 429}};
	struct fp_err err = {0};
	struct fp_s3_conf c;
	char ep[64];
	long status = 0;

	fake_start(&f);
	c = fake_conf(&f, ep, sizeof ep);
	cr_assert_eq(fp_s3_put(&c, "k", "x", 1, NULL, &status, &err),
		     FP_EBACKEND);
	fake_stop(&f);
	cr_assert_eq(f.n_req, 3);
	cr_assert_eq(status, 429);
	cr_assert_eq(err.retriable, 1);
}

Test(s3_policy, unreachable_after_retries)
{
	struct fake f = {0};
	struct fp_err err = {0};
	struct fp_s3_conf c;
	char ep[64];
	int64_t t0;

	/* Bind a port, then close it: nothing listens there now. */
	fake_start(&f);
	fake_stop(&f);
	c = fake_conf(&f, ep, sizeof ep);
	c.max_attempts = 2;
	t0 = fp_mono_ns();
	cr_assert_eq(fp_s3_put(&c, "k", "x", 1, NULL, NULL, &err),
		     FP_EUNREACHABLE, "%s", err.msg);
	cr_assert_geq(fp_mono_ns() - t0, 250 * FP_NS_PER_MS);
	cr_assert(strstr(err.msg, "after 2 attempts") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "fake-secret") == NULL);
	cr_assert_eq(err.retriable, 1);
}

Test(s3_policy, bundle_order_manifest_last)
{
	static struct fake f;
	struct fp_err err = {0};
	struct fp_s3_conf c;
	char ep[64], dir[64];
	struct fp_report *r;
	static const char *const want[] = {
		"/b/p/k/a-first.txt", "/b/p/k/junit.xml", "/b/p/k/report.html",
		"/b/p/k/report.json", "/b/p/k/report.md", "/b/p/k/z-last.txt",
		"/b/p/k/manifest.json"};

	mk_tmp(dir, sizeof dir);
	put_file(dir, "a-first.txt", "a");
	put_file(dir, "z-last.txt", "z");
	r = small_report("r1", fp_wall_ns());
	cr_assert_eq(fp_bundle_write(r, dir, NULL, &err), FP_OK, "%s", err.msg);
	fp_report_free(r);
	fake_start(&f);
	c = fake_conf(&f, ep, sizeof ep);
	cr_assert_eq(fp_s3_upload_bundle(&c, dir, "p/k/", &err), FP_OK, "%s",
		     err.msg);
	fake_stop(&f);
	rm_tmp(dir);
	cr_assert_eq(f.n_req, 7);
	for (int i = 0; i < 7; i++)
		cr_assert_str_eq(f.paths[i], want[i], "request %d", i);
}
