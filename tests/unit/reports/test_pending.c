/*
 * test_pending.c - unit tests of fp_s3_upload_pending() without an S3
 * server: which directories count as pending bundles, what happens when the
 * upload fails (the marker stays, with the new error, and the counters and
 * the report line say so), and the argument / output-root errors. The
 * successful upload against a real MinIO is tests/integration/
 * test_upload_pending.c.
 *
 * "Failing" here means a loopback port nobody listens on: a refused
 * connect comes back at once, so the test needs no network and no timeout.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/core/fp_fs.h"
#include "reports/fp_report.h"

/* 2026-11-23T18:23:40.551Z */
#define T0 INT64_C(1795458220551000000)

static char root[64];

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void setup(void)
{
	snprintf(root, sizeof root, "/tmp/fp-pending-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(pending, .init = setup, .fini = teardown);

/* A port that refuses connections: bound, never listened on, kept open
 * for the test so nobody else takes it. */
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

static void make_bundle(const char *run_id, char *dir, size_t dirsz)
{
	struct fp_report *r = fp_report_new();
	struct fp_err err = {0};

	fp_report_set(&r->run_id, run_id);
	fp_report_set(&r->drill_id, "DR-02");
	fp_report_set(&r->drill_title, "pending test");
	r->started_wall_ns = T0;
	r->ended_wall_ns = T0 + 1000000000;
	cr_assert_eq(fp_bundle_dir(root, "DR-02", T0, run_id, dir, dirsz, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(fp_bundle_write(r, dir, NULL, &err), FP_OK, "%s", err.msg);
	fp_report_free(r);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	cr_assert_eq(fp_write_file_atomic(path, text, strlen(text), NULL),
		     FP_OK);
}

Test(pending, failed_upload_keeps_marker_with_new_error)
{
	char a[512], b[512], ep[64], path[600], *text = NULL, *out = NULL;
	struct fp_err err = {0};
	size_t len, outlen = 0;
	int fd, port = closed_port(&fd), up = -1, bad = -1, rc;
	struct fp_s3_conf c = {.endpoint = ep, .bucket = "bkt",
			       .region = "us-east-1", .prefix = "p",
			       .max_attempts = 1};
	FILE *rep = open_memstream(&out, &outlen);

	snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
	make_bundle("r-pend-a", a, sizeof a);
	make_bundle("r-pend-b", b, sizeof b); /* no marker: not pending */
	put(a, FP_BUNDLE_UPLOAD_PENDING, "HTTP 503");

	rc = fp_s3_upload_pending(&c, root, &up, &bad, rep, &err);
	fclose(rep);
	close(fd);
	cr_assert_eq(rc, FP_EUNREACHABLE, "rc %d: %s", rc, err.msg);
	cr_assert_eq(up, 0);
	cr_assert_eq(bad, 1);
	cr_assert_not_null(strstr(err.msg, "1 of 1 pending bundles failed"),
			   "%s", err.msg);
	/* One line, naming the bundle. */
	cr_assert_not_null(strstr(out, "FAILED   DR-02/20261123T182340Z-r-pend-a:"),
			   "%s", out);
	cr_assert_null(strstr(out, "r-pend-b"), "%s", out);
	cr_assert_eq(strchr(out, '\n') - out + 1, (long)strlen(out), "%s", out);
	free(out);
	/* The marker is still there and now says why the retry failed. */
	snprintf(path, sizeof path, "%s/%s", a, FP_BUNDLE_UPLOAD_PENDING);
	cr_assert_eq(fp_read_file(path, 4096, &text, &len, NULL), FP_OK);
	cr_assert_not_null(strstr(text, "s3://bkt/p/drills/DR-02/2026/11/23/"
					"20261123T182340Z-r-pend-a/"),
			   "%s", text);
	free(text);
}

Test(pending, nothing_pending_is_ok)
{
	char a[512];
	struct fp_err err = {0};
	struct fp_s3_conf c = {.endpoint = "http://127.0.0.1:9", .bucket = "b"};
	int up = -1, bad = -1;

	make_bundle("r-done", a, sizeof a);
	/* Files at the wrong depth and dot directories are not bundles. */
	put(root, "stray.txt", "x");
	snprintf(a, sizeof a, "%s/.trash", root);
	cr_assert_eq(mkdir(a, 0755), 0);
	cr_assert_eq(fp_s3_upload_pending(&c, root, &up, &bad, NULL, &err),
		     FP_OK, "%s", err.msg);
	cr_assert_eq(up, 0);
	cr_assert_eq(bad, 0);
}

Test(pending, bad_report_json_is_a_failure_not_a_crash)
{
	char a[512];
	struct fp_err err = {0};
	struct fp_s3_conf c = {.endpoint = "http://127.0.0.1:9", .bucket = "b"};
	int up = -1, bad = -1;

	make_bundle("r-broken", a, sizeof a);
	put(a, "report.json", "{\"run_id\": \"r-broken\"}");
	put(a, FP_BUNDLE_UPLOAD_PENDING, "x");
	cr_assert_eq(fp_s3_upload_pending(&c, root, &up, &bad, NULL, &err),
		     FP_EINVAL);
	cr_assert_not_null(strstr(err.msg, "lacks drill.id"), "%s", err.msg);
	cr_assert_eq(bad, 1);
	cr_assert_eq(up, 0);
}

Test(pending, argument_and_root_errors)
{
	struct fp_err err = {0};
	struct fp_s3_conf c = {.endpoint = "http://127.0.0.1:9", .bucket = "b"};
	char missing[128];
	int up = 7, bad = 7;

	cr_assert_eq(fp_s3_upload_pending(NULL, root, &up, &bad, NULL, &err),
		     FP_EINVAL);
	cr_assert_eq(up, 0);
	cr_assert_eq(bad, 0);
	cr_assert_eq(fp_s3_upload_pending(&c, "", NULL, NULL, NULL, &err),
		     FP_EINVAL);
	snprintf(missing, sizeof missing, "%s/does-not-exist", root);
	cr_assert_eq(fp_s3_upload_pending(&c, missing, NULL, NULL, NULL, &err),
		     FP_ENOTFOUND);
	cr_assert_not_null(strstr(err.msg, "does-not-exist"), "%s", err.msg);
}
