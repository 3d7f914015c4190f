/*
 * test_injectors_it.c - the runner-core injectors against real things: the
 * local stack's Redis and PostgreSQL (envs/local/stack up), a
 * toxiproxy-server started here on a free port, and processes spawned here.
 * Each test checks the effect on the target, not just the return code, and
 * that the revert really undoes it. A missing server fails a test; nothing
 * is skipped.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "injectors/fp_injector.h"
#include "tests/integration/it_util.h"

#define P(k, v) {(char *)(k), (char *)(v), {0}}
#define KV(...)                                                         \
	((struct fp_kvlist){(struct fp_kv[]){__VA_ARGS__},                 \
			    sizeof((struct fp_kv[]){__VA_ARGS__}) /         \
				    sizeof(struct fp_kv)})

static const struct fp_injector *inj(const char *name)
{
	const struct fp_injector *i = fp_injector_find(name);

	cr_assert_not_null(i, "injector %s is not registered", name);
	return i;
}

static json_t *state_of(const struct fp_inject_ctx *ctx)
{
	json_t *o = json_loads(ctx->state, 0, NULL);

	cr_assert(json_is_object(o), "state is not a JSON object: '%s'",
		  ctx->state);
	return o;
}

static int64_t ms_since(int64_t t0)
{
	return (fp_mono_ns() - t0) / FP_NS_PER_MS;
}

/* ---- processes ---------------------------------------------------------- */

/* A `sleep` with a unique command line, so a match finds only it. */
static pid_t spawn_sleep(const char *secs)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		execlp("sleep", "sleep", secs, (char *)NULL);
		_exit(127);
	}
	/* Until exec, the child's command line is ours; wait for sleep's. */
	for (int i = 0; i < 200; i++) {
		char path[64], buf[64] = "";
		FILE *f;

		snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = '\0';
			fclose(f);
		}
		if (strncmp(buf, "sleep", 5) == 0)
			return pid;
		usleep(5000);
	}
	cr_assert_fail("spawned sleep never exec'd");
	return -1;
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p ? p[2] : 0;
}

static void write_pid_file(char *path, size_t pathsz, pid_t pid)
{
	FILE *f;

	snprintf(path, pathsz, "/tmp/fpdrill-it-%d-%d.pid", (int)getpid(),
		 (int)pid);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

Test(process, stop_by_pid_file_and_continue)
{
	pid_t pid = spawn_sleep("61");
	char pf[128];
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	json_t *st, *procs;

	write_pid_file(pf, sizeof pf, pid);
	struct fp_kvlist w = KV(P("pid_file", pf));

	cr_assert_eq(inj("process.stop")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_eq(proc_state(pid), 'T', "not stopped: %c", proc_state(pid));
	st = state_of(&ctx);
	procs = json_object_get(st, "procs");
	cr_assert_eq(json_array_size(procs), 1);
	cr_expect_eq(json_integer_value(json_object_get(
			     json_array_get(procs, 0), "pid")),
		     pid);
	cr_expect_str_eq(json_string_value(json_object_get(st, "signal")),
			 "SIGSTOP");
	json_decref(st);

	/* The revert as `fpdrill cleanup` runs it: a fresh ctx holding only
	 * the journaled state. */
	struct fp_inject_ctx later = {0};

	memcpy(later.state, ctx.state, sizeof later.state);
	cr_assert_eq(inj("process.stop")->revert(&w, &later, &err), FP_OK,
		     "%s", err.msg);
	for (int i = 0; i < 100 && proc_state(pid) == 'T'; i++)
		usleep(10000);
	cr_expect_neq(proc_state(pid), 'T', "still stopped after revert");
	cr_expect_neq(proc_state(pid), 0, "the process died");
	reap(pid);
	unlink(pf);
}

Test(process, match_must_be_unambiguous)
{
	char tag[64], pattern[96];
	pid_t a, b;
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};

	/* A unique duration makes a unique command line. */
	snprintf(tag, sizeof tag, "%d.%ld", 600 + getpid() % 1000,
		 (long)(fp_wall_ns() % 100000));
	snprintf(pattern, sizeof pattern, "^sleep %s$", tag);
	a = spawn_sleep(tag);
	b = spawn_sleep(tag);
	struct fp_kvlist one = KV(P("match", pattern));
	struct fp_kvlist all = KV(P("match", pattern), P("all", "true"));

	cr_expect_eq(inj("process.stop")->apply(&one, &ctx, &err), FP_EINVAL);
	cr_expect(strstr(err.msg, "finds 2 processes") != NULL, "%s", err.msg);
	cr_expect_neq(proc_state(a), 'T', "an ambiguous match stopped a");
	cr_expect_neq(proc_state(b), 'T', "an ambiguous match stopped b");

	memset(&ctx, 0, sizeof ctx);
	cr_assert_eq(inj("process.stop")->apply(&all, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_eq(proc_state(a), 'T');
	cr_expect_eq(proc_state(b), 'T');
	cr_assert_eq(inj("process.stop")->revert(&all, &ctx, &err), FP_OK);

	/* process.kill with all: both gone (zombies until reaped). */
	memset(&ctx, 0, sizeof ctx);
	cr_assert_eq(inj("process.kill")->apply(&all, &ctx, &err), FP_OK, "%s",
		     err.msg);
	{
		json_t *st = state_of(&ctx);

		cr_expect(json_is_true(json_object_get(st, "gone")), "%s",
			  ctx.state);
		cr_expect_eq(json_integer_value(json_object_get(st, "sent")), 2);
		json_decref(st);
	}
	cr_expect_eq(proc_state(a), 'Z');
	cr_expect_eq(proc_state(b), 'Z');
	reap(a);
	reap(b);
}

Test(process, revert_never_touches_a_reused_pid)
{
	pid_t pid = spawn_sleep("62");
	char pf[128];
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};

	write_pid_file(pf, sizeof pf, pid);
	struct fp_kvlist w = KV(P("pid_file", pf));

	cr_assert_eq(inj("process.stop")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	/* Forge the recorded start time: the revert must see "another
	 * process" behind the pid and leave it alone. */
	char *at = strstr(ctx.state, "\"start\":");

	cr_assert_not_null(at);
	at[8] = at[8] == '9' ? '1' : '9';
	cr_assert_eq(inj("process.stop")->revert(&w, &ctx, &err), FP_OK);
	usleep(50000);
	cr_expect_eq(proc_state(pid), 'T', "a pid with another start time "
					   "was continued");
	kill(pid, SIGCONT);
	reap(pid);
	unlink(pf);
}

Test(process, kill_term_by_match)
{
	pid_t pid = spawn_sleep("63.5");
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	struct fp_kvlist w = KV(P("match", "^sleep 63\\.5$"),
				P("signal", "TERM"), P("wait", "3s"));
	int status;

	cr_assert_eq(inj("process.kill")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	cr_expect(strstr(ctx.state, "\"signal\":\"SIGTERM\"") != NULL, "%s",
		  ctx.state);
}

Test(process, restart_stops_and_starts_detached)
{
	pid_t pid = spawn_sleep("64");
	char pf[128], log[128];
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	json_t *st;
	int started, status;

	write_pid_file(pf, sizeof pf, pid);
	snprintf(log, sizeof log, "/tmp/fpdrill-it-%d-restart.log",
		 (int)getpid());
	struct fp_kvlist w =
		KV(P("pid_file", pf), P("grace", "2s"),
		   P("command_json", "[\"sleep\",\"65\"]"), P("detach", "true"),
		   P("log", log));

	cr_assert_eq(inj("process.restart")->apply(&w, &ctx, &err), FP_OK,
		     "%s", err.msg);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	st = state_of(&ctx);
	started = (int)json_integer_value(json_object_get(st, "started_pid"));
	cr_expect(json_is_false(json_object_get(st, "escalated")));
	json_decref(st);
	cr_assert_gt(started, 1, "%s", ctx.state);
	cr_expect(proc_state(started) == 'S' || proc_state(started) == 'R',
		  "restarted process %d not running", started);
	/* Detached: in a session of its own, not ours. */
	cr_expect_neq(getsid(started), getsid(0));
	cr_expect_neq(getpgid(started), getpgid(0));
	kill(started, SIGKILL);
	unlink(pf);
	unlink(log);

	/* An exec failure is reported, not a "started" pid. */
	struct fp_kvlist bad =
		KV(P("command", "/nonexistent/fpdrill-binary"),
		   P("detach", "true"));

	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("process.restart")->apply(&bad, &ctx, &err),
		     FP_EBACKEND);
	cr_expect(strstr(err.msg, "No such file") != NULL, "%s", err.msg);
}

Test(process, restart_waits_for_the_command)
{
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	struct fp_kvlist w = KV(P("command", "sleep 0.3"));
	int64_t t0 = fp_mono_ns();

	cr_assert_eq(inj("process.restart")->apply(&w, &ctx, &err), FP_OK,
		     "%s", err.msg);
	cr_expect_geq(ms_since(t0), 290);
	cr_expect(strstr(ctx.state, "\"exit_code\":0") != NULL, "%s",
		  ctx.state);
}

/* ---- Redis -------------------------------------------------------------- */

static redisContext *redis(const char *host, int port)
{
	struct timeval tv = {10, 0};
	redisContext *c = redisConnectWithTimeout(host, port, tv);

	cr_assert(c && !c->err, "redis %s:%d: %s", host, port,
		  c ? c->errstr : "oom");
	redisSetTimeout(c, tv);
	return c;
}

/* Time one command on a fresh connection, in ms. */
static int64_t timed(const char *host, int port, const char *cmd)
{
	redisContext *c = redis(host, port);
	int64_t t0 = fp_mono_ns();
	redisReply *r = redisCommand(c, cmd);

	cr_assert_not_null(r, "%s: %s", cmd, c->errstr);
	freeReplyObject(r);
	redisFree(c);
	return ms_since(t0);
}

Test(redis, pause_write_then_unpause_early)
{
	char *host = it_endpoint("FPD_REDIS_HOST");
	char *port = it_endpoint("FPD_REDIS_PORT");
	struct fp_kvlist w = KV(P("host", host), P("port", port),
				P("ms", "5000"), P("mode", "WRITE"));
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	redisContext *c;
	redisReply *r;
	json_t *st;

	cr_assert_eq(inj("redis.pause")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	st = state_of(&ctx);
	cr_expect_str_eq(json_string_value(json_object_get(st, "mode")),
			 "WRITE");
	cr_expect_gt(json_integer_value(json_object_get(st, "until_ms")), 0);
	json_decref(st);
	/* Reads pass, a write waits. */
	cr_expect_lt(timed(host, atoi(port), "GET fpdrill-it-k"), 500);
	c = redis(host, atoi(port));
	{
		struct timeval tv = {0, 300000};

		redisSetTimeout(c, tv);
	}
	r = redisCommand(c, "SET fpdrill-it-k v");
	cr_expect_null(r, "a write went through a WRITE pause");
	freeReplyObject(r);
	redisFree(c);

	int64_t t0 = fp_mono_ns();

	cr_assert_eq(inj("redis.pause")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_lt(ms_since(t0), 2000, "WRITE mode unpauses at once");
	cr_expect_lt(timed(host, atoi(port), "SET fpdrill-it-k v"), 500);
	free(host);
	free(port);
}

Test(redis, pause_all_is_a_lease)
{
	char *host = it_endpoint("FPD_REDIS_HOST");
	char *port = it_endpoint("FPD_REDIS_PORT");
	struct fp_kvlist w =
		KV(P("host", host), P("port", port), P("ms", "700"));
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	int64_t took;

	cr_assert_eq(inj("redis.pause")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	took = timed(host, atoi(port), "GET fpdrill-it-k");
	cr_expect_geq(took, 400, "ALL pause did not delay a read (%lld ms)",
		      (long long)took);
	/* The lease ran out: the revert has nothing to do and says OK
	 * without touching Redis. */
	usleep(400000);
	cr_expect_eq(inj("redis.pause")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	free(host);
	free(port);
}

Test(redis, password_reference_is_resolved_and_used)
{
	char *host = it_endpoint("FPD_REDIS_HOST");
	char *port = it_endpoint("FPD_REDIS_PORT");
	struct fp_kvlist w =
		KV(P("host", host), P("port", port), P("ms", "100"),
		   P("password", "env:FPDRILL_IT_REDIS_PW"));
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};

	/* The stack's Redis has no password: AUTH fails, which proves the
	 * reference was resolved and sent, and the value is not echoed. */
	setenv("FPDRILL_IT_REDIS_PW", "it-secret-value", 1);
	cr_expect_eq(inj("redis.pause")->apply(&w, &ctx, &err), FP_EBACKEND);
	cr_expect(strstr(err.msg, "AUTH") != NULL, "%s", err.msg);
	cr_expect(strstr(err.msg, "it-secret-value") == NULL,
		  "secret leaked: %s", err.msg);
	cr_expect_eq(inj("redis.pause")->revert(&w, &ctx, &err), FP_OK,
		     "a failed apply leaves nothing to revert");
	unsetenv("FPDRILL_IT_REDIS_PW");
	cr_expect_eq(inj("redis.pause")->apply(&w, &ctx, &err), FP_ESPEC);
	cr_expect(strstr(err.msg, "not set") != NULL, "%s", err.msg);
	free(host);
	free(port);
}

Test(redis, sleep_waited_blocks_the_server)
{
	char *host = it_endpoint("FPD_REDIS_HOST");
	char *port = it_endpoint("FPD_REDIS_PORT");
	struct fp_kvlist w = KV(P("host", host), P("port", port),
				P("seconds", "0.4"), P("wait", "true"));
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	json_t *st;

	cr_assert_eq(inj("redis.sleep")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	st = state_of(&ctx);
	cr_expect_geq(json_integer_value(json_object_get(st, "blocked_ms")),
		      390, "%s", ctx.state);
	cr_expect(json_is_true(json_object_get(st, "waited")));
	json_decref(st);
	free(host);
	free(port);
}

Test(redis, sleep_detached_returns_while_redis_sleeps)
{
	char *host = it_endpoint("FPD_REDIS_HOST");
	char *port = it_endpoint("FPD_REDIS_PORT");
	struct fp_kvlist w =
		KV(P("host", host), P("port", port), P("seconds", "0.8"));
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	int64_t t0 = fp_mono_ns(), took;

	cr_assert_eq(inj("redis.sleep")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_lt(ms_since(t0), 300, "detached apply waited");
	took = timed(host, atoi(port), "PING");
	cr_expect_geq(took, 400, "PING during the sleep took %lld ms",
		      (long long)took);
	/* Let the detached thread read its reply and free its context. */
	usleep(500000);
	free(host);
	free(port);
}

/* ---- PostgreSQL --------------------------------------------------------- */

struct pgenv {
	char conninfo[512];
	char pwref[512];
};

static void pg_env(struct pgenv *e)
{
	char *h = it_endpoint("FPD_PG_HOST"), *p = it_endpoint("FPD_PG_PORT");
	char *d = it_endpoint("FPD_PG_DB"), *u = it_endpoint("FPD_PG_USER");
	char *pwf = it_endpoint("FPD_PG_PASSWORD_FILE");

	snprintf(e->conninfo, sizeof e->conninfo,
		 "host=%s port=%s dbname=%s user=%s", h, p, d, u);
	snprintf(e->pwref, sizeof e->pwref, "file:%s", pwf);
	free(h);
	free(p);
	free(d);
	free(u);
	free(pwf);
}

static struct fp_pg *pg_open(const char *app)
{
	char ci[600], *pw;
	struct fp_pg *pg = NULL;
	struct fp_err err = {0};

	it_pg_conninfo(ci, 512, &pw);
	if (app)
		snprintf(ci + strlen(ci), sizeof ci - strlen(ci),
			 " application_name=%s", app);
	cr_assert_eq(fp_pg_connect(ci, pw, &pg, &err), FP_OK, "%s", err.msg);
	free(pw);
	return pg;
}

Test(pg, terminate_backends_by_application_name)
{
	struct pgenv e;
	char app[64];
	struct fp_pg *v1, *v2, *other;
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	int64_t one;
	json_t *st;

	pg_env(&e);
	snprintf(app, sizeof app, "fpdrill-it-victim-%d", (int)getpid());
	v1 = pg_open(app);
	v2 = pg_open(app);
	other = pg_open("fpdrill-it-bystander");
	struct fp_kvlist w = KV(P("application_name", app),
				P("conninfo", e.conninfo),
				P("password", e.pwref));

	cr_assert_eq(inj("pg.terminate_backends")->apply(&w, &ctx, &err), FP_OK,
		     "%s", err.msg);
	st = state_of(&ctx);
	cr_expect_eq(json_integer_value(json_object_get(st, "matched")), 2);
	cr_expect_eq(json_integer_value(json_object_get(st, "terminated")), 2);
	cr_expect_eq(json_array_size(json_object_get(st, "pids")), 2);
	json_decref(st);
	cr_expect_neq(fp_pg_query_i64(v1, "SELECT 1", 0, NULL, &one, &err),
		      FP_OK, "victim 1 survived");
	cr_expect_neq(fp_pg_query_i64(v2, "SELECT 1", 0, NULL, &one, &err),
		      FP_OK, "victim 2 survived");
	cr_expect_eq(fp_pg_query_i64(other, "SELECT 1", 0, NULL, &one, &err),
		     FP_OK, "the bystander was terminated: %s", err.msg);

	/* Nobody left to match: min 1 refuses, terminating nothing. */
	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("pg.terminate_backends")->apply(&w, &ctx, &err),
		     FP_ENOTFOUND);
	cr_expect(strstr(err.msg, "fewer than min 1") != NULL, "%s", err.msg);
	fp_pg_close(v1);
	fp_pg_close(v2);
	fp_pg_close(other);
}

static void make_table(const char *table)
{
	struct fp_pg *pg = pg_open(NULL);
	struct fp_err err = {0};
	char sql[256];

	snprintf(sql, sizeof sql,
		 "CREATE TABLE IF NOT EXISTS %s (id int); "
		 "INSERT INTO %s VALUES (1)",
		 table, table);
	cr_assert_eq(fp_pg_exec(pg, sql, &err), FP_OK, "%s", err.msg);
	fp_pg_close(pg);
}

static void drop_table(const char *table)
{
	struct fp_pg *pg = pg_open(NULL);
	char sql[128];

	snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", table);
	fp_pg_exec(pg, sql, NULL);
	fp_pg_close(pg);
}

/* @returns FP_OK when a read of table gets through within 300 ms. */
static int can_read(const char *table)
{
	struct fp_pg *pg = pg_open("fpdrill-it-reader");
	struct fp_err err = {0};
	char sql[128];
	int64_t n;
	int rc;

	fp_pg_exec(pg, "SET lock_timeout = 300", NULL);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
	rc = fp_pg_query_i64(pg, sql, 0, NULL, &n, &err);
	fp_pg_close(pg);
	return rc;
}

Test(pg, lock_table_blocks_readers_until_revert)
{
	struct pgenv e;
	struct fp_env env;
	char table[64];
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	json_t *st;

	pg_env(&e);
	snprintf(table, sizeof table, "fpdrill_it_lock_%d", (int)getpid());
	make_table(table);
	/* No conninfo in with: the env profile's target.postgres is used. */
	memset(&env, 0, sizeof env);
	env.pg_conninfo = e.conninfo;
	env.pg_password_ref = e.pwref;
	ctx.env = &env;
	struct fp_kvlist w = KV(P("table", table), P("max_hold", "1m"));

	cr_assert_eq(can_read(table), FP_OK);
	cr_assert_eq(inj("pg.lock_table")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	st = state_of(&ctx);
	cr_expect_str_eq(json_string_value(json_object_get(st, "mode")),
			 "ACCESS EXCLUSIVE");
	cr_expect_gt(json_integer_value(json_object_get(st, "backend_pid")), 0);
	json_decref(st);
	cr_expect_neq(can_read(table), FP_OK, "a read got past the lock");

	cr_assert_eq(inj("pg.lock_table")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_eq(can_read(table), FP_OK, "the lock outlived the revert");
	/* A second revert (cleanup replaying the journal) is harmless. */
	cr_expect_eq(inj("pg.lock_table")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	drop_table(table);
}

/* Apply in a child process that then lingers (die == 0) or is killed
 * (die == 1); the parent gets the state through a pipe. */
static pid_t lock_in_child(const struct fp_kvlist *w, char *state,
			   size_t statesz)
{
	int pfd[2];
	pid_t pid;
	ssize_t n;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		struct fp_inject_ctx ctx = {0};
		struct fp_err err = {0};

		close(pfd[0]);
		if (inj("pg.lock_table")->apply(w, &ctx, &err) != FP_OK)
			_exit(3);
		if (write(pfd[1], ctx.state, strlen(ctx.state) + 1) < 0)
			_exit(4);
		close(pfd[1]);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], state, statesz - 1);
	close(pfd[0]);
	cr_assert_gt(n, 0, "the child could not take the lock");
	state[n] = '\0';
	return pid;
}

Test(pg, lock_released_when_the_harness_dies)
{
	struct pgenv e;
	char table[64], state[2048];
	pid_t child;
	int ok = 0;

	pg_env(&e);
	snprintf(table, sizeof table, "fpdrill_it_lockdie_%d", (int)getpid());
	make_table(table);
	struct fp_kvlist w = KV(P("table", table), P("conninfo", e.conninfo),
				P("password", e.pwref));

	child = lock_in_child(&w, state, sizeof state);
	cr_expect_neq(can_read(table), FP_OK, "the child holds no lock");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	/* The kernel closed the child's socket; the server rolls back. */
	for (int i = 0; i < 50 && !ok; i++)
		ok = can_read(table) == FP_OK;
	cr_expect(ok, "the lock outlived its session");

	/* cleanup's revert, in a process that never held the session. */
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};

	snprintf(ctx.state, sizeof ctx.state, "%s", state);
	cr_expect_eq(inj("pg.lock_table")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	drop_table(table);
}

Test(pg, cleanup_revert_ends_a_lingering_session)
{
	struct pgenv e;
	char table[64], state[2048];
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	pid_t child;

	pg_env(&e);
	snprintf(table, sizeof table, "fpdrill_it_lockcl_%d", (int)getpid());
	make_table(table);
	struct fp_kvlist w = KV(P("table", table), P("conninfo", e.conninfo),
				P("password", e.pwref));

	/* The child keeps its session (a hung harness); the revert runs in
	 * this process, which does not hold it: it must end the backend. */
	child = lock_in_child(&w, state, sizeof state);
	cr_expect_neq(can_read(table), FP_OK, "the child holds no lock");
	snprintf(ctx.state, sizeof ctx.state, "%s", state);
	cr_expect_eq(inj("pg.lock_table")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_eq(can_read(table), FP_OK, "lock still held after revert");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	drop_table(table);
}

Test(pg, lock_failure_leaves_nothing)
{
	struct pgenv e;
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};

	pg_env(&e);
	struct fp_kvlist w = KV(P("table", "fpdrill_it_no_such_table"),
				P("conninfo", e.conninfo),
				P("password", e.pwref));

	cr_expect_eq(inj("pg.lock_table")->apply(&w, &ctx, &err), FP_EBACKEND);
	cr_expect(strstr(err.msg, "does not exist") != NULL, "%s", err.msg);
	cr_expect_str_eq(ctx.state, "{\"applied\":false}");
	cr_expect_eq(inj("pg.lock_table")->revert(&w, &ctx, &err), FP_OK);
}

/* ---- Toxiproxy, HTTP ---------------------------------------------------- */

static int free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void toxiproxy_bin(char *out, size_t outsz)
{
	const char *bin = getenv("FPDRILL_TOXIPROXY_SERVER");
	const char *cache = getenv("FPDRILL_CACHE");

	if (bin && *bin)
		snprintf(out, outsz, "%s", bin);
	else if (cache && *cache)
		snprintf(out, outsz, "%s/bin/toxiproxy-server", cache);
	else
		snprintf(out, outsz, "%s/.cache/fpdrill/bin/toxiproxy-server",
			 getenv("HOME") ? getenv("HOME") : "/root");
	cr_assert_eq(access(out, X_OK), 0,
		     "toxiproxy-server not found at %s: run envs/local/install.sh "
		     "(or set FPDRILL_TOXIPROXY_SERVER)",
		     out);
}

static pid_t toxi_pid;
static char toxi_api[64];


static void toxiproxy_start(void)
{
	char bin[1024], port[16];
	int p = free_port();

	toxiproxy_bin(bin, sizeof bin);
	snprintf(port, sizeof port, "%d", p);
	snprintf(toxi_api, sizeof toxi_api, "http://127.0.0.1:%d", p);
	toxi_pid = fork();
	cr_assert(toxi_pid >= 0);
	if (toxi_pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl(bin, bin, "-host", "127.0.0.1", "-port", port,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in a = {0};
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)p);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
		close(fd);
		if (ok)
			return;
		cr_assert_eq(waitpid(toxi_pid, NULL, WNOHANG), 0,
			     "toxiproxy-server exited at start");
		usleep(25000);
	}
	cr_assert_fail("toxiproxy-server did not listen on %d", p);
}

static void toxiproxy_stop(void)
{
	if (toxi_pid > 0) {
		kill(toxi_pid, SIGTERM);
		waitpid(toxi_pid, NULL, 0);
		toxi_pid = 0;
	}
}

/* Create proxy "redis" in front of the stack's Redis with http.call, whose
 * revert deletes it again. @returns the proxy's listen port. */
static int proxy_redis(struct fp_inject_ctx *ctx, struct fp_kvlist **keep)
{
	static char url[128], rurl[128], body[256];
	static struct fp_kv items[6];
	static struct fp_kvlist w = {items, 6};
	char *host = it_endpoint("FPD_REDIS_HOST");
	char *port = it_endpoint("FPD_REDIS_PORT");
	struct fp_err err = {0};
	int lp = free_port();

	snprintf(url, sizeof url, "%s/proxies", toxi_api);
	snprintf(rurl, sizeof rurl, "%s/proxies/redis", toxi_api);
	snprintf(body, sizeof body,
		 "{\"name\":\"redis\",\"listen\":\"127.0.0.1:%d\","
		 "\"upstream\":\"%s:%s\",\"enabled\":true}",
		 lp, host, port);
	items[0] = (struct fp_kv)P("url", url);
	items[1] = (struct fp_kv)P("body", body);
	items[2] = (struct fp_kv)P("expect", "201");
	items[3] = (struct fp_kv)P("revert_url", rurl);
	items[4] = (struct fp_kv)P("revert_method", "DELETE");
	items[5] = (struct fp_kv)P("header.User-Agent", "fpdrill-it");
	cr_assert_eq(inj("http.call")->apply(&w, ctx, &err), FP_OK, "%s",
		     err.msg);
	*keep = &w;
	free(host);
	free(port);
	return lp;
}

/* A GET through http.call that must answer expect. */
static void get_expect(const char *path, int expect)
{
	char url[256], ex[8];
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};

	snprintf(url, sizeof url, "%s%s", toxi_api, path);
	snprintf(ex, sizeof ex, "%d", expect);
	struct fp_kvlist w =
		KV(P("method", "GET"), P("url", url), P("expect", ex),
		   P("header.User-Agent", "fpdrill-it"));

	cr_assert_eq(inj("http.call")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
}

TestSuite(toxiproxy, .init = toxiproxy_start, .fini = toxiproxy_stop);

Test(toxiproxy, latency_toxic_applied_and_removed)
{
	struct fp_inject_ctx pctx = {0}, ctx = {0};
	struct fp_kvlist *pw;
	struct fp_err err = {0};
	int lp = proxy_redis(&pctx, &pw);
	json_t *st;

	struct fp_kvlist w =
		KV(P("api", toxi_api), P("proxy", "redis"), P("type", "latency"),
		   P("attr.latency", "300"), P("stream", "downstream"));

	cr_expect_lt(timed("127.0.0.1", lp, "PING"), 250, "proxy is slow "
							  "without a toxic");
	cr_assert_eq(inj("toxiproxy.toxic")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	st = state_of(&ctx);
	cr_expect_str_eq(json_string_value(json_object_get(st, "name")),
			 "fpdrill_latency_downstream");
	cr_expect_eq(json_integer_value(json_object_get(
			     json_object_get(st, "attributes"), "latency")),
		     300);
	json_decref(st);
	cr_expect_geq(timed("127.0.0.1", lp, "PING"), 290, "no latency seen");

	/* Same toxic again: 409, reported, and nothing to revert for it. */
	struct fp_inject_ctx dup = {0};

	cr_expect_eq(inj("toxiproxy.toxic")->apply(&w, &dup, &err),
		     FP_EBACKEND);
	cr_expect(strstr(err.msg, "already has a toxic") != NULL, "%s",
		  err.msg);
	cr_expect_str_eq(dup.state, "{\"applied\":false}");
	cr_expect_eq(inj("toxiproxy.toxic")->revert(&w, &dup, &err), FP_OK);
	cr_expect_geq(timed("127.0.0.1", lp, "PING"), 290,
		      "the failed duplicate's revert removed the toxic");

	cr_assert_eq(inj("toxiproxy.toxic")->revert(&w, &ctx, &err), FP_OK,
		     "%s", err.msg);
	cr_expect_lt(timed("127.0.0.1", lp, "PING"), 250, "toxic still there");
	/* Reverting again (cleanup): 404 is "already gone". */
	cr_expect_eq(inj("toxiproxy.toxic")->revert(&w, &ctx, &err), FP_OK,
		     "%s", err.msg);
	/* http.call's revert deletes the proxy. */
	cr_assert_eq(inj("http.call")->revert(pw, &pctx, &err), FP_OK, "%s",
		     err.msg);
	get_expect("/proxies/redis", 404);
}

Test(toxiproxy, down_and_reenable)
{
	struct fp_inject_ctx pctx = {0}, ctx = {0};
	struct fp_kvlist *pw;
	struct fp_err err = {0};
	int lp = proxy_redis(&pctx, &pw);
	struct fp_kvlist w =
		KV(P("api", toxi_api), P("proxy", "redis"), P("type", "down"));
	struct timeval tv = {1, 0};
	redisContext *c;

	cr_assert_eq(inj("toxiproxy.toxic")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect(strstr(ctx.state, "\"was_enabled\":true") != NULL, "%s",
		  ctx.state);
	c = redisConnectWithTimeout("127.0.0.1", lp, tv);
	cr_expect(!c || c->err, "connected through a disabled proxy");
	redisFree(c);
	cr_assert_eq(inj("toxiproxy.toxic")->revert(&w, &ctx, &err), FP_OK,
		     "%s", err.msg);
	cr_expect_lt(timed("127.0.0.1", lp, "PING"), 500);
	inj("http.call")->revert(pw, &pctx, &err);
}

Test(toxiproxy, unknown_proxy_is_not_found)
{
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	struct fp_kvlist w = KV(P("api", toxi_api), P("proxy", "nope"),
				P("type", "timeout"), P("attr.timeout", "0"));

	cr_expect_eq(inj("toxiproxy.toxic")->apply(&w, &ctx, &err),
		     FP_ENOTFOUND);
	cr_expect(strstr(err.msg, "no proxy 'nope'") != NULL, "%s", err.msg);
	cr_expect_eq(inj("toxiproxy.toxic")->revert(&w, &ctx, &err), FP_OK);
}

Test(toxiproxy, http_call_unexpected_status)
{
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	char url[128];

	snprintf(url, sizeof url, "%s/proxies/nope", toxi_api);
	struct fp_kvlist w = KV(P("method", "GET"), P("url", url));

	cr_expect_eq(inj("http.call")->apply(&w, &ctx, &err), FP_EBACKEND);
	cr_expect(strstr(err.msg, "answered 404") != NULL, "%s", err.msg);
	cr_expect(strstr(ctx.state, "\"status\":404") != NULL, "%s",
		  ctx.state);
}

Test(http, unreachable_is_reported)
{
	struct fp_inject_ctx ctx = {0};
	struct fp_err err = {0};
	char url[64];
	int port = free_port();

	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
	struct fp_kvlist w = KV(P("url", url), P("timeout", "2s"));

	cr_expect_eq(inj("http.call")->apply(&w, &ctx, &err), FP_EUNREACHABLE);
	cr_expect(strstr(ctx.state, "\"status\":0") != NULL, "%s", ctx.state);
}
