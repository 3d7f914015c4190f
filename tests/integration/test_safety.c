/*
 * test_safety.c - the runner never leaves a fault behind, on the real local
 * stack: kill -9 at many points while a fault is being applied or held, then
 * `fpdrill cleanup` leaves nothing in place; Ctrl-C reverts within a second;
 * a stop condition aborts, reverts and exits 4.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "it_util.h"

static char out_dir[256];

static void mk_out(void)
{
	snprintf(out_dir, sizeof out_dir, "%s/safety-out-%ld",
		 getenv("FPDRILL_BINARY_DIR"), (long)getpid());
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start fpdrill run in the background; returns its pid. */
static pid_t start_run(const char *fixture, const char *extra)
{
	char cmd[8192];
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		snprintf(cmd, sizeof cmd,
			 "cd '%s' && exec '%s/harness/cli/fpdrill' run "
			 "tests/integration/fixtures/%s --env envs/local.yaml "
			 "--no-upload --out '%s' %s >/dev/null 2>&1",
			 getenv("FPDRILL_SOURCE_DIR"),
			 getenv("FPDRILL_BINARY_DIR"), fixture, out_dir, extra);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int run_cleanup(void)
{
	char cmd[8192];
	int st;

	snprintf(cmd, sizeof cmd,
		 "cd '%s' && '%s/harness/cli/fpdrill' cleanup --env "
		 "envs/local.yaml --out '%s' >&2",
		 getenv("FPDRILL_SOURCE_DIR"), getenv("FPDRILL_BINARY_DIR"),
		 out_dir);
	st = system(cmd);
	cr_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* "running" or "paused", from the decision service's health endpoint. */
static int decisions_paused(void)
{
	char cmd[1024], buf[512] = "";
	char *url = it_endpoint("FPD_DECIDER_URL");
	FILE *p;

	snprintf(cmd, sizeof cmd, "curl -s -m 5 '%s/health'", url);
	free(url);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(buf, sizeof buf, p))
		buf[0] = '\0';
	pclose(p);
	cr_assert(strstr(buf, "\"state\""), "no health answer: '%s'", buf);
	return strstr(buf, "paused") != NULL;
}

static void resume_anyway(void)
{
	char cmd[1024];
	char *url = it_endpoint("FPD_DECIDER_URL");

	snprintf(cmd, sizeof cmd, "curl -s -m 10 -X POST '%s/control/resume' "
				  ">/dev/null",
		 url);
	free(url);
	if (system(cmd) != 0)
		fprintf(stderr, "resume failed\n");
}

TestSuite(safety, .timeout = 300, .fini = resume_anyway);

Test(safety, kill_9_at_many_points_then_cleanup_leaves_nothing)
{
	/* From before the pause is journaled to deep inside the held fault. */
	const int delays_ms[] = {50, 150, 300, 450, 600, 900, 1300, 2000, 3000};

	mk_out();
	cr_assert_eq(decisions_paused(), 0, "decisions must start running");
	for (size_t i = 0; i < sizeof delays_ms / sizeof delays_ms[0]; i++) {
		pid_t pid = start_run("pause-wait.yaml", "--set hold=6s");
		int st;

		usleep((useconds_t)delays_ms[i] * 1000);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		/* fpdrill runs as sh's exec'd child, so SIGKILL hits it. */
		cr_assert(WIFSIGNALED(st), "run %zu was not killed", i);
		cr_assert_eq(run_cleanup(), 0, "cleanup failed after kill at %d ms",
			     delays_ms[i]);
		cr_expect_eq(decisions_paused(), 0,
			     "decisions still paused after kill at %d ms + "
			     "cleanup",
			     delays_ms[i]);
	}
	/* A second cleanup has nothing left to do. */
	cr_expect_eq(run_cleanup(), 0);
}

Test(safety, undisturbed_run_reverts_and_passes)
{
	pid_t pid;
	int st;

	mk_out();
	pid = start_run("pause-wait.yaml", "--set hold=1s");
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st));
	cr_expect_eq(WEXITSTATUS(st), 0, "exit %d", WEXITSTATUS(st));
	cr_expect_eq(decisions_paused(), 0);
	cr_expect_eq(run_cleanup(), 0, "a finished run leaves no open journal");
}

Test(safety, ctrl_c_reverts_within_a_second)
{
	pid_t pid;
	double t0;
	int st;

	mk_out();
	pid = start_run("pause-wait.yaml", "--set hold=20s");
	/* wait until the fault is in place */
	for (int i = 0; i < 100 && !decisions_paused(); i++)
		usleep(100000);
	cr_assert(decisions_paused(), "the pause never took effect");
	t0 = now_s();
	kill(pid, SIGINT);
	while (decisions_paused() && now_s() - t0 < 5)
		usleep(20000);
	cr_expect_lt(now_s() - t0, 1.0, "revert took %.2f s", now_s() - t0);
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st));
	cr_expect_eq(WEXITSTATUS(st), 4, "exit %d", WEXITSTATUS(st));
	cr_expect_eq(decisions_paused(), 0);
}

Test(safety, stop_condition_aborts_reverts_and_exits_4)
{
	pid_t pid;
	double t0 = now_s();
	int st;

	mk_out();
	pid = start_run("stop-on-lag.yaml", "");
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st));
	cr_expect_eq(WEXITSTATUS(st), 4, "exit %d", WEXITSTATUS(st));
	cr_expect_lt(now_s() - t0, 25.0, "the 30 s load phase was not cut short");
	cr_expect_eq(decisions_paused(), 0, "the pause was not reverted");
}
