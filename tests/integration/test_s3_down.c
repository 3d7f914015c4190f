/*
 * test_s3_down.c - nothing is lost when S3 is down: with the stack's MinIO
 * stopped, a drill still writes its bundle locally, says it was not uploaded
 * and marks it pending; once MinIO is back, `fpdrill upload --pending`
 * uploads it and clears the mark. Uses the real MinIO of the local stack.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drill_util.h"

static char out_dir[512];

static void state_file(char *out, size_t outsz, const char *rel)
{
	const char *state = getenv("FPDRILL_STATE");

	if (state && *state)
		snprintf(out, outsz, "%s/%s", state, rel);
	else
		snprintf(out, outsz, "%s/envs/local/.state/%s",
			 getenv("FPDRILL_SOURCE_DIR"), rel);
}

static void stop_minio(void)
{
	char path[4096], *pid_s;
	pid_t pid;

	state_file(path, sizeof path, "run/minio.pid");
	pid_s = it_read_small_file(path);
	pid = (pid_t)strtol(pid_s, NULL, 10);
	free(pid_s);
	cr_assert_gt(pid, 1, "no MinIO pid in %s", path);
	cr_assert_eq(kill(pid, SIGTERM), 0, "cannot stop MinIO pid %d", pid);
	for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
		usleep(100000);
	cr_assert_neq(kill(pid, 0), 0, "MinIO did not stop");
}

/* `stack up` restarts only what is down: here MinIO. */
static void start_minio(void)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd, "cd '%s' && envs/local/stack up >&2",
		 getenv("FPDRILL_SOURCE_DIR"));
	if (system(cmd) != 0)
		fprintf(stderr, "stack up failed\n");
}

static int run_capture(const char *args, char *out, size_t outsz)
{
	char cmd[8192], line[1024];
	size_t len = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof cmd, "cd '%s' && '%s/harness/cli/fpdrill' %s",
		 getenv("FPDRILL_SOURCE_DIR"), getenv("FPDRILL_BINARY_DIR"),
		 args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	out[0] = '\0';
	while (fgets(line, sizeof line, p)) {
		fputs(line, stderr);
		len += (size_t)snprintf(out + len, outsz > len ? outsz - len : 0,
					"%s", line);
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(s3_down, bundle_kept_and_uploaded_later, .timeout = 300,
     .fini = start_minio)
{
	char args[2048], out[16384], marker[4700], bundle[4096] = "";
	const char *b;
	struct stat sb;
	int code;

	snprintf(out_dir, sizeof out_dir, "%s/s3-down-out-%ld",
		 getenv("FPDRILL_BINARY_DIR"), (long)getpid());
	stop_minio();
	snprintf(args, sizeof args,
		 "run tests/integration/fixtures/pause-wait.yaml --env "
		 "envs/local.yaml --set hold=1s --out '%s'",
		 out_dir);
	code = run_capture(args, out, sizeof out);
	cr_expect_eq(code, 0, "the verdict does not depend on S3 (exit %d)",
		     code);
	cr_assert(strstr(out, "s3: not uploaded"), "%s", out);
	b = strstr(out, "bundle: ");
	cr_assert_not_null(b);
	snprintf(bundle, sizeof bundle, "%s", b + 8);
	bundle[strcspn(bundle, "\n")] = '\0';
	snprintf(marker, sizeof marker, "%s/.upload-pending", bundle);
	cr_assert_eq(stat(marker, &sb), 0, "no pending mark in %s", bundle);
	snprintf(marker, sizeof marker, "%s/manifest.json", bundle);
	cr_assert_eq(stat(marker, &sb), 0, "the bundle was not kept locally");

	start_minio();
	snprintf(args, sizeof args,
		 "upload --pending --env envs/local.yaml --out '%s'", out_dir);
	code = run_capture(args, out, sizeof out);
	cr_expect_eq(code, 0, "upload --pending exit %d", code);
	cr_expect(strstr(out, "1 uploaded, 0 still pending"), "%s", out);
	snprintf(marker, sizeof marker, "%s/.upload-pending", bundle);
	cr_expect_neq(stat(marker, &sb), 0, "the pending mark is still there");
}
