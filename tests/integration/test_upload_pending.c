/*
 * test_upload_pending.c - fp_s3_upload_pending() against the real MinIO of
 * the local stack (endpoints from $FPDRILL_STATE/endpoints.env or
 * envs/local/.state/endpoints.env, see it_util.h).
 *
 * The story of a failed upload, end to end: two bundles are written; their
 * upload fails because S3 is down - simulated by an endpoint on a loopback
 * port nobody listens on, which is what a dead MinIO looks like (connection
 * refused) without stopping the stack other tests share, and fast, where a
 * frozen (SIGSTOPped) server would hold every PUT for its 60 s timeout -
 * and the marker is written exactly as the run loop writes it. Nothing is
 * on S3 yet. Then fp_s3_upload_pending() with the real endpoint uploads
 * both under the keys their report.json implies, removes the markers, and
 * every object GETs back byte-identical (the downloaded copy verifies
 * against its signed manifest). A second pass finds nothing to do.
 * A missing endpoints file or server FAILS the test, never skips it.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
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
#include "it_util.h"

#define SIGNING_KEY "pending-test-key"

struct s3env {
	char *endpoint, *bucket, *access, *secret;
	char region[64];
};

static struct s3env env;
static char root[64], back[64];

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

/* FPD_S3_REGION is optional in endpoints.env (us-east-1 by default). */
static void read_region(void)
{
	char path[4096], line[512];
	FILE *f;

	snprintf(env.region, sizeof env.region, "us-east-1");
	it_endpoints_path(path, sizeof path);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "FPD_S3_REGION=", 14) == 0) {
			line[strcspn(line, "\r\n")] = '\0';
			if (line[14])
				snprintf(env.region, sizeof env.region, "%s",
					 line + 14);
		}
	fclose(f);
}

static void setup(void)
{
	char *akf, *skf;

	memset(&env, 0, sizeof env);
	env.endpoint = it_endpoint("FPD_S3_ENDPOINT");
	env.bucket = it_endpoint("FPD_S3_BUCKET");
	akf = it_endpoint("FPD_S3_ACCESS_KEY_FILE");
	skf = it_endpoint("FPD_S3_SECRET_KEY_FILE");
	env.access = it_read_small_file(akf);
	env.secret = it_read_small_file(skf);
	free(akf);
	free(skf);
	read_region();
	snprintf(root, sizeof root, "/tmp/fp-pending-it-XXXXXX");
	snprintf(back, sizeof back, "/tmp/fp-pending-back-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	cr_assert_not_null(mkdtemp(back));
}

static void teardown(void)
{
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	nftw(back, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(env.endpoint);
	free(env.bucket);
	free(env.access);
	free(env.secret);
}

TestSuite(upload_pending, .init = setup, .fini = teardown, .timeout = 120);

static struct fp_s3_conf conf(const char *endpoint)
{
	struct fp_s3_conf c = {
		.endpoint = endpoint,
		.bucket = env.bucket,
		.region = env.region,
		.prefix = "fpdrill-test",
		.access_key = env.access,
		.secret_key = env.secret,
		.max_attempts = 2,
	};
	return c;
}

/* A loopback port that refuses connections while fd stays open. */
static int closed_port(int *fd)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof a;

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(*fd, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* A signed GET with libcurl directly, so the read side does not rely on
 * the code under test. */
static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	return fp_buf_append(ud, p, sz * n) ? 0 : sz * n;
}

static long s3_get(const char *key, struct fp_buf *out)
{
	char url[2048], ekey[1536], sigv4[128];
	/* sha256 of the empty body: curl 7.88 does not add the header MinIO
	 * requires. */
	struct curl_slist *hl = curl_slist_append(
		NULL, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb"
		      "92427ae41e4649b934ca495991b7852b855");
	CURL *h = curl_easy_init();
	long code = 0;

	cr_assert_eq(fp_s3_uri_encode(key, ekey, sizeof ekey), 0);
	snprintf(url, sizeof url, "%s/%s/%s", env.endpoint, env.bucket, ekey);
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", env.region);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, env.access);
	curl_easy_setopt(h, CURLOPT_PASSWORD, env.secret);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	cr_assert_eq(curl_easy_perform(h), CURLE_OK,
		     "GET %s failed (is MinIO up at %s?)", key, env.endpoint);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	return code;
}

struct bundle {
	char drill[16], run_id[32], dir[512], key[1024];
	int64_t t0;
};

static void make_bundle(struct bundle *b, const char *drill)
{
	struct fp_report *r = fp_report_new();
	struct fp_err err = {0};
	char hex[17], path[600];
	FILE *f;

	cr_assert_eq(fp_random_hex(hex, 8, NULL), FP_OK);
	snprintf(b->drill, sizeof b->drill, "%s", drill);
	snprintf(b->run_id, sizeof b->run_id, "r-%s", hex);
	b->t0 = fp_wall_ns();
	cr_assert_eq(fp_bundle_dir(root, drill, b->t0, b->run_id, b->dir,
				   sizeof b->dir, &err),
		     FP_OK, "%s", err.msg);
	snprintf(path, sizeof path, "%s/ledger.tsv", b->dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 500; i++)
		fprintf(f,
			"%d\tevt-%d\toriginal\t1\tload\ta\t1\th\t%lld\t%lld\t%lld"
			"\t202\taccepted\t\\N\t\\N\t\\N\t\\N\t\\N\n",
			i, i, 1000000000LL + i * 10000000LL,
			1000000000LL + i * 10000000LL + 100000,
			1000000000LL + i * 10000000LL + 3000000);
	fclose(f);
	fp_report_set(&r->run_id, b->run_id);
	fp_report_set(&r->drill_id, drill);
	fp_report_set(&r->drill_title, "pending upload test");
	fp_report_set(&r->env_name, "local");
	r->started_wall_ns = b->t0;
	r->ended_wall_ns = b->t0 + 5 * INT64_C(1000000000);
	fp_report_add_timeline(r, 0, b->t0, "phase", "load", "start");
	fp_report_add_timeline(r, 5 * INT64_C(1000000000), 0, "phase", "load",
			       "end");
	cr_assert_eq(fp_bundle_write(r, b->dir, SIGNING_KEY, &err), FP_OK, "%s",
		     err.msg);
	fp_report_free(r);
	{
		struct fp_s3_conf c = conf(env.endpoint);

		cr_assert_eq(fp_s3_bundle_key(&c, drill, b->t0, b->run_id,
					      b->key, sizeof b->key),
			     FP_OK);
	}
}

static void marker_path(const struct bundle *b, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", b->dir, FP_BUNDLE_UPLOAD_PENDING);
}

/* Every file of the bundle (manifest included) is on S3 byte for byte,
 * and the downloaded copy verifies against the signed manifest. */
static void check_uploaded(const struct bundle *b)
{
	char dl[600];
	struct fp_err err = {0};
	struct stat st;
	json_t *m;
	json_t *files;
	char path[700];
	size_t n;

	snprintf(dl, sizeof dl, "%s/%s", back, b->run_id);
	cr_assert_eq(mkdir(dl, 0755), 0);
	snprintf(path, sizeof path, "%s/manifest.json", b->dir);
	m = json_load_file(path, 0, NULL);
	cr_assert_not_null(m);
	files = json_object_get(m, "files");
	n = json_array_size(files);
	cr_assert_geq(n, 5, "manifest lists %zu files", n);
	for (size_t i = 0; i <= n; i++) {
		const char *name =
			i < n ? json_string_value(json_object_get(
					json_array_get(files, i), "path"))
			      : "manifest.json";
		struct fp_buf got = FP_BUF_INIT((size_t)16 << 20);
		char key[1200], *want = NULL;
		size_t wlen = 0;
		long code;

		snprintf(key, sizeof key, "%s/%s", b->key, name);
		code = s3_get(key, &got);
		cr_assert_eq(code, 200, "GET %s: HTTP %ld: %s", key, code,
			     fp_buf_cstr(&got));
		snprintf(path, sizeof path, "%s/%s", b->dir, name);
		cr_assert_eq(fp_read_file(path, (size_t)16 << 20, &want, &wlen,
					  NULL),
			     FP_OK);
		cr_assert_eq(got.len, wlen, "%s: %zu bytes back, %zu sent", name,
			     got.len, wlen);
		cr_assert(memcmp(got.data ? got.data : "", want, wlen) == 0,
			  "%s differs", name);
		snprintf(path, sizeof path, "%s/%s", dl, name);
		cr_assert_eq(fp_write_file_atomic(path, fp_buf_cstr(&got),
						  got.len, NULL),
			     FP_OK);
		free(want);
		fp_buf_release(&got);
	}
	json_decref(m);
	cr_assert_eq(fp_bundle_verify(dl, SIGNING_KEY, &err), FP_OK, "%s",
		     err.msg);
	/* report.html went up with the rest. */
	snprintf(path, sizeof path, "%s/report.html", dl);
	cr_assert_eq(stat(path, &st), 0);
	/* The marker is state: it never reaches S3. */
	{
		struct fp_buf got = FP_BUF_INIT(1 << 16);
		char key[1200];

		snprintf(key, sizeof key, "%s/%s", b->key,
			 FP_BUNDLE_UPLOAD_PENDING);
		cr_assert_eq(s3_get(key, &got), 404);
		fp_buf_release(&got);
	}
}

Test(upload_pending, failed_upload_is_retried_and_marker_removed)
{
	struct bundle a, b;
	struct fp_err err = {0};
	char down[64], marker[600], *out = NULL, line[1400];
	size_t outlen = 0;
	int fd, up = -1, bad = -1, rc;
	struct fp_s3_conf c_down, c_up = conf(env.endpoint);
	FILE *rep;

	make_bundle(&a, "DR-02");
	make_bundle(&b, "DR-05");

	/* 1. S3 is down: the run loop's upload fails and leaves a marker. */
	snprintf(down, sizeof down, "http://127.0.0.1:%d", closed_port(&fd));
	c_down = conf(down);
	c_down.max_attempts = 1;
	for (struct bundle *x = &a; x; x = x == &a ? &b : NULL) {
		rc = fp_s3_upload_bundle(&c_down, x->dir, x->key, &err);
		cr_assert_eq(rc, FP_EUNREACHABLE, "rc %d: %s", rc, err.msg);
		marker_path(x, marker, sizeof marker);
		/* As harness/run/run.c upload() does. */
		cr_assert_eq(fp_write_file_atomic(marker, err.msg,
						  strlen(err.msg), NULL),
			     FP_OK);
	}
	close(fd);
	{
		struct fp_buf got = FP_BUF_INIT(1 << 16);
		char key[1200];

		snprintf(key, sizeof key, "%s/manifest.json", a.key);
		cr_assert_eq(s3_get(key, &got), 404, "uploaded while down?");
		fp_buf_release(&got);
	}

	/* 2. S3 is back: upload --pending. */
	rep = open_memstream(&out, &outlen);
	rc = fp_s3_upload_pending(&c_up, root, &up, &bad, rep, &err);
	fclose(rep);
	cr_assert_eq(rc, FP_OK, "upload --pending failed (MinIO at %s): %s",
		     env.endpoint, err.msg);
	cr_assert_eq(up, 2, "%s", out);
	cr_assert_eq(bad, 0, "%s", out);
	for (struct bundle *x = &a; x; x = x == &a ? &b : NULL) {
		struct stat st;
		const char *slash = strrchr(x->dir, '/');

		marker_path(x, marker, sizeof marker);
		cr_assert_neq(lstat(marker, &st), 0, "marker still in %s",
			      x->dir);
		snprintf(line, sizeof line, "uploaded %s%s -> s3://%s/%s/\n",
			 x->drill, slash, env.bucket, x->key);
		cr_assert_not_null(strstr(out, line), "want '%s' in:\n%s", line,
				   out);
		check_uploaded(x);
	}
	/* One line per bundle, oldest drill directory first. */
	{
		size_t lines = 0;

		for (const char *p = out; *p; p++)
			lines += *p == '\n';
		cr_assert_eq(lines, 2, "%s", out);
	}
	cr_assert(strstr(out, "DR-02") < strstr(out, "DR-05"), "%s", out);
	free(out);
	cr_assert(strstr(err.msg, env.secret) == NULL);

	/* 3. Nothing left to do. */
	cr_assert_eq(fp_s3_upload_pending(&c_up, root, &up, &bad, NULL, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(up, 0);
	cr_assert_eq(bad, 0);
}
