/*
 * test_injectors.c - the runner-core injectors without a server: every
 * validate() accepts good arguments and rejects bad ones with a message that
 * names the problem, the shared parsers (argv, signals, keys, durations)
 * behave, and the injectors that only need the local machine (command.run,
 * process.* error paths) write the state JSON the journal expects.
 * The same injectors against real servers: tests/integration/injectors/.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "injectors/fp_injector.h"
#include "injectors/inj_util.h"

#define P(k, v) {(char *)(k), (char *)(v), {0}}
#define KV(...)                                                         \
	((struct fp_kvlist){(struct fp_kv[]){__VA_ARGS__},                 \
			    sizeof((struct fp_kv[]){__VA_ARGS__}) /         \
				    sizeof(struct fp_kv)})
static const struct fp_kvlist empty = {NULL, 0};

static const struct fp_injector *inj(const char *name)
{
	const struct fp_injector *i = fp_injector_find(name);

	cr_assert_not_null(i, "injector %s is not registered", name);
	cr_assert_not_null(i->validate, "%s has no validate", name);
	return i;
}

/* validate() must succeed. */
static void ok(const char *name, struct fp_kvlist with)
{
	struct fp_err err = {0};
	int rc = inj(name)->validate(&with, &err);

	cr_expect_eq(rc, FP_OK, "%s: expected OK, got %s: %s", name,
		     fp_rc_name(rc), err.msg);
}

/* validate() must fail with FP_ESPEC and a message containing want. */
static void bad(const char *name, struct fp_kvlist with, const char *want)
{
	struct fp_err err = {0};
	int rc = inj(name)->validate(&with, &err);

	cr_expect_eq(rc, FP_ESPEC, "%s: expected FP_ESPEC (%s), got %s", name,
		     want, fp_rc_name(rc));
	cr_expect(strstr(err.msg, want) != NULL,
		  "%s: message \"%s\" lacks \"%s\"", name, err.msg, want);
	cr_expect(strncmp(err.msg, name, strlen(name)) == 0,
		  "%s: message \"%s\" does not name the injector", name,
		  err.msg);
}

Test(registry, runner_core_injectors_are_registered)
{
	static const char *const names[] = {
		"process.stop",	   "process.kill",
		"process.restart", "redis.pause",
		"redis.sleep",	   "pg.terminate_backends",
		"pg.lock_table",   "http.call",
		"command.run",	   "toxiproxy.toxic"};
	static const int revertible[] = {1, 0, 0, 1, 0, 0, 1, 1, 1, 1};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct fp_injector *x = inj(names[i]);
		const char *dot = strchr(names[i], '.');

		cr_expect(dot && dot > names[i] && dot[1], "%s: <backend>.<verb>",
			  names[i]);
		cr_expect_eq(x->revert != NULL, revertible[i],
			     "%s: revert presence", names[i]);
	}
}

Test(validate, process_stop)
{
	ok("process.stop", KV(P("pid_file", "/run/x.pid")));
	ok("process.stop", KV(P("match", "^sleep 60$"), P("signal", "TSTP")));
	ok("process.stop", KV(P("match", "worker"), P("all", "true")));
	bad("process.stop", empty, "needs pid_file");
	bad("process.stop", KV(P("pid_file", "a"), P("match", "b")), "not both");
	bad("process.stop", KV(P("match", "(")), "not an extended regex");
	bad("process.stop", KV(P("match", "")), "every process");
	bad("process.stop", KV(P("match", "x"), P("signal", "KILL")),
	    "STOP or TSTP");
	bad("process.stop", KV(P("pid_file", "x"), P("all", "true")),
	    "only applies to match");
	bad("process.stop", KV(P("match", "x"), P("all", "maybe")),
	    "true or false");
	bad("process.stop", KV(P("pidfile", "x")), "unknown argument 'pidfile'");
}

Test(validate, process_kill)
{
	ok("process.kill", KV(P("match", "sleep")));
	ok("process.kill", KV(P("match", "sleep"), P("signal", "SIGTERM"),
			      P("wait", "2s")));
	ok("process.kill", KV(P("pid_file", "/x"), P("signal", "9")));
	bad("process.kill", KV(P("match", "x"), P("signal", "STOP")),
	    "process.stop");
	bad("process.kill", KV(P("match", "x"), P("signal", "NOPE")),
	    "signal must name");
	bad("process.kill", KV(P("match", "x"), P("signal", "0")),
	    "signal must name");
	bad("process.kill", KV(P("match", "x"), P("wait", "5")), "duration");
	bad("process.kill", KV(P("command", "x")), "unknown argument");
}

Test(validate, process_restart)
{
	ok("process.restart", KV(P("command", "systemctl restart x")));
	ok("process.restart", KV(P("action", "restart_decider")));
	ok("process.restart",
	   KV(P("pid_file", "/p"), P("command_json", "[\"sleep\",\"60\"]"),
	      P("detach", "true"), P("log", "/tmp/x.log"), P("grace", "2s")));
	bad("process.restart", KV(P("match", "x")), "exactly one of command");
	bad("process.restart",
	    KV(P("command", "a"), P("action", "b")), "exactly one of command");
	bad("process.restart", KV(P("command_json", "{\"a\":1}")),
	    "JSON array");
	bad("process.restart", KV(P("command_json", "[\"a\",1]")),
	    "not a string");
	bad("process.restart", KV(P("command", "   ")), "is empty");
	bad("process.restart", KV(P("command", "a"), P("log", "/x")),
	    "log needs detach");
	bad("process.restart",
	    KV(P("action", "a"), P("detach", "true")), "not to a bound action");
	bad("process.restart", KV(P("command", "a"), P("signal", "STOP")),
	    "ends a process");
	bad("process.restart", KV(P("command", "a"), P("timeout", "0s")),
	    "timeout");
}

Test(validate, redis_pause)
{
	ok("redis.pause", KV(P("port", "6379"), P("ms", "500")));
	ok("redis.pause", KV(P("host", "10.0.0.1"), P("port", "6379"),
			     P("ms", "500"), P("mode", "write"),
			     P("password", "env:REDIS_PW"), P("user", "drill")));
	bad("redis.pause", KV(P("ms", "500")), "needs port");
	bad("redis.pause", KV(P("port", "0"), P("ms", "5")), "port");
	bad("redis.pause", KV(P("port", "6379")), "needs ms");
	bad("redis.pause", KV(P("port", "6379"), P("ms", "600001")), "ms must");
	bad("redis.pause", KV(P("port", "6379"), P("ms", "5"), P("mode", "READ")),
	    "ALL or WRITE");
	bad("redis.pause",
	    KV(P("port", "6379"), P("ms", "5"), P("password", "hunter2")),
	    "secret reference");
	bad("redis.pause",
	    KV(P("port", "6379"), P("ms", "5"), P("user", "u")),
	    "user needs password");
}

Test(validate, redis_sleep)
{
	ok("redis.sleep", KV(P("port", "6379"), P("seconds", "0.5")));
	ok("redis.sleep", KV(P("port", "6379"), P("seconds", "2"),
			     P("wait", "true")));
	bad("redis.sleep", KV(P("port", "6379")), "needs seconds");
	bad("redis.sleep", KV(P("port", "6379"), P("seconds", "0")),
	    "seconds must");
	bad("redis.sleep", KV(P("port", "6379"), P("seconds", "301")),
	    "seconds must");
	bad("redis.sleep", KV(P("port", "6379"), P("seconds", "1s")),
	    "seconds must");
	bad("redis.sleep", KV(P("port", "x"), P("seconds", "1")), "port");
}

Test(validate, pg_terminate_backends)
{
	ok("pg.terminate_backends", KV(P("application_name", "rp-decider")));
	ok("pg.terminate_backends",
	   KV(P("usename", "fraud"), P("datname", "fraud"), P("min", "0"),
	      P("wait", "0s"), P("conninfo", "host=h dbname=d"),
	      P("password", "file:pw")));
	bad("pg.terminate_backends", empty, "at least one of");
	bad("pg.terminate_backends",
	    KV(P("datname", "d"), P("min", "-1")), "min must");
	bad("pg.terminate_backends",
	    KV(P("datname", "d"), P("conninfo", "host=h password=x")),
	    "must not carry a password");
	bad("pg.terminate_backends",
	    KV(P("datname", "d"), P("password", "env:X")), "needs conninfo");
	bad("pg.terminate_backends",
	    KV(P("datname", "d"), P("conninfo", "h"), P("password", "pw")),
	    "secret reference");
}

Test(validate, pg_lock_table)
{
	ok("pg.lock_table", KV(P("table", "decisions")));
	ok("pg.lock_table", KV(P("table", "public.cases"), P("mode", "share"),
			       P("lock_timeout", "2s"), P("max_hold", "1m")));
	ok("pg.lock_table",
	   KV(P("table", "t"), P("mode", "share_row_exclusive")));
	bad("pg.lock_table", empty, "needs table");
	bad("pg.lock_table", KV(P("table", "t"), P("mode", "total")),
	    "lock mode");
	bad("pg.lock_table", KV(P("table", "t"), P("max_hold", "100ms")),
	    "max_hold");
	bad("pg.lock_table", KV(P("table", "t"), P("lock_timeout", "x")),
	    "lock_timeout");
}

Test(validate, http_call)
{
	ok("http.call", KV(P("url", "http://127.0.0.1:1/x")));
	ok("http.call",
	   KV(P("method", "PUT"), P("url", "https://h/flags/x"),
	      P("body", "{}"), P("expect", "204"), P("timeout", "3s"),
	      P("header.Authorization", "env:TOKEN"),
	      P("revert_method", "DELETE"), P("revert_url", "https://h/f"),
	      P("revert_expect", "204")));
	bad("http.call", empty, "needs url");
	bad("http.call", KV(P("url", "ftp://x")), "http:// or https://");
	bad("http.call", KV(P("url", "http://x"), P("method", "get")),
	    "upper-case");
	bad("http.call", KV(P("url", "http://x"), P("expect", "42")), "expect");
	bad("http.call", KV(P("url", "http://x"), P("revert_body", "{}")),
	    "need revert_url");
	bad("http.call", KV(P("url", "http://x"), P("revert_url", "x")),
	    "revert_url must be");
	bad("http.call", KV(P("url", "http://x"), P("header.", "v")),
	    "unknown argument");
}

Test(validate, command_run)
{
	ok("command.run", KV(P("argv", "true")));
	ok("command.run", KV(P("argv_json", "[\"sh\",\"-c\",\"exit 0\"]"),
			     P("revert_argv", "true"),
			     P("revert_timeout", "5s"), P("timeout", "1m")));
	bad("command.run", empty, "exactly one of argv and argv_json");
	bad("command.run", KV(P("argv", "a"), P("argv_json", "[\"a\"]")),
	    "exactly one");
	bad("command.run", KV(P("argv_json", "[]")), "is empty");
	bad("command.run", KV(P("argv_json", "not json")), "JSON array");
	bad("command.run", KV(P("argv", "a"), P("revert_timeout", "1s")),
	    "revert_timeout needs revert_argv");
	bad("command.run", KV(P("argv", "a"), P("timeout", "2h")), "timeout");
}

Test(validate, toxiproxy_toxic)
{
	ok("toxiproxy.toxic", KV(P("proxy", "redis"), P("type", "latency"),
				 P("attr.latency", "200"),
				 P("attr.jitter", "20")));
	ok("toxiproxy.toxic",
	   KV(P("api", "http://127.0.0.1:8474"), P("proxy", "pg"),
	      P("type", "timeout"), P("stream", "upstream"),
	      P("toxicity", "0.5"), P("name", "t1")));
	ok("toxiproxy.toxic", KV(P("proxy", "kafka"), P("type", "down")));
	bad("toxiproxy.toxic", KV(P("type", "latency")), "needs proxy");
	bad("toxiproxy.toxic", KV(P("proxy", "a/b"), P("type", "down")),
	    "needs proxy");
	bad("toxiproxy.toxic", KV(P("proxy", "p"), P("type", "loss")),
	    "type must be");
	bad("toxiproxy.toxic", KV(P("proxy", "p"), P("type", "latency")),
	    "needs attr.latency");
	bad("toxiproxy.toxic",
	    KV(P("proxy", "p"), P("type", "latency"), P("attr.rate", "1")),
	    "not an attribute of a latency");
	bad("toxiproxy.toxic",
	    KV(P("proxy", "p"), P("type", "bandwidth"), P("attr.rate", "-1")),
	    "attr.rate must be");
	bad("toxiproxy.toxic",
	    KV(P("proxy", "p"), P("type", "timeout"), P("toxicity", "2")),
	    "toxicity");
	bad("toxiproxy.toxic",
	    KV(P("proxy", "p"), P("type", "timeout"), P("stream", "both")),
	    "upstream or downstream");
	bad("toxiproxy.toxic",
	    KV(P("proxy", "p"), P("type", "down"), P("stream", "upstream")),
	    "do not apply");
	bad("toxiproxy.toxic",
	    KV(P("proxy", "p"), P("type", "down"), P("api", "127.0.0.1:8474")),
	    "api must be");
}

/* ---- shared parsers --------------------------------------------------- */

Test(parse, argv_split_and_json)
{
	struct fp_err err = {0};
	char **argv = NULL;
	size_t argc = 0;

	cr_assert_eq(fp_inj_argv("  a  b\tc\n", NULL, &argv, &argc, "t", "argv",
				 &err),
		     FP_OK);
	cr_expect_eq(argc, 3);
	cr_expect_str_eq(argv[0], "a");
	cr_expect_str_eq(argv[2], "c");
	cr_expect_null(argv[3]);
	fp_inj_argv_free(argv);

	cr_assert_eq(fp_inj_argv(NULL, "[\"sh\",\"-c\",\"echo 'a b'\"]", &argv,
				 &argc, "t", "argv", &err),
		     FP_OK);
	cr_expect_eq(argc, 3);
	cr_expect_str_eq(argv[2], "echo 'a b'", "no shell splitting");
	fp_inj_argv_free(argv);

	cr_expect_eq(fp_inj_argv(NULL, NULL, &argv, &argc, "t", "argv", &err),
		     FP_ESPEC);
	cr_expect_null(argv);
}

Test(parse, signals)
{
	int s = 0;

	cr_expect_eq(fp_inj_signal_parse("KILL", &s), 0);
	cr_expect_eq(s, SIGKILL);
	cr_expect_eq(fp_inj_signal_parse("sigterm", &s), 0);
	cr_expect_eq(s, SIGTERM);
	cr_expect_eq(fp_inj_signal_parse("19", &s), 0);
	cr_expect_eq(s, 19);
	cr_expect_eq(fp_inj_signal_parse("0", &s), -1);
	cr_expect_eq(fp_inj_signal_parse("SIG", &s), -1);
	cr_expect_eq(fp_inj_signal_parse("SIGKILLX", &s), -1);
	cr_expect_eq(fp_inj_signal_parse("", &s), -1);
	cr_expect_str_eq(fp_inj_signal_name(SIGSTOP), "SIGSTOP");
	cr_expect_str_eq(fp_inj_signal_name(SIGCONT), "SIGCONT");
	cr_expect_str_eq(fp_inj_signal_name(64), "SIG?");
}

Test(parse, durations_ints_and_bools)
{
	struct fp_err err = {0};
	int64_t x;
	int b;

	cr_expect_eq(fp_inj_duration(&KV(P("t", "250ms")), "t", 0, 0,
				     INT64_MAX, &x, "t", &err),
		     FP_OK);
	cr_expect_eq(x, 250 * INT64_C(1000000));
	cr_expect_eq(fp_inj_duration(&empty, "t", 7, 0, 10, &x, "t", &err),
		     FP_OK);
	cr_expect_eq(x, 7, "default when absent");
	cr_expect_eq(fp_inj_i64(&KV(P("n", "12x")), "n", 0, 0, 100, &x, "t",
				&err),
		     FP_ESPEC);
	cr_expect_eq(fp_inj_bool(&KV(P("b", "yes")), "b", 0, &b, "t", &err),
		     FP_OK);
	cr_expect_eq(b, 1);
}

/* ---- state JSON ------------------------------------------------------- */

static json_t *state_of(const struct fp_inject_ctx *ctx)
{
	json_t *o = json_loads(ctx->state, 0, NULL);

	cr_assert(json_is_object(o), "state is not a JSON object: %s",
		  ctx->state);
	return o;
}

Test(state, command_run_records_exit_and_output)
{
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	struct fp_kvlist w = KV(P("argv_json", "[\"sh\",\"-c\",\"echo hi\"]"));
	struct fp_kvlist f =
		KV(P("argv_json", "[\"sh\",\"-c\",\"echo bad >&2; exit 3\"]"));
	json_t *o;

	memset(&ctx, 0, sizeof ctx);
	cr_assert_eq(inj("command.run")->apply(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	o = state_of(&ctx);
	cr_expect_eq(json_integer_value(json_object_get(o, "exit_code")), 0);
	cr_expect_str_eq(json_string_value(json_object_get(o, "argv0")), "sh");
	cr_expect_str_eq(json_string_value(json_object_get(o, "output")), "hi\n");
	cr_expect(json_is_false(json_object_get(o, "revertible")));
	json_decref(o);
	/* No revert_argv: the revert does nothing and succeeds. */
	cr_expect_eq(inj("command.run")->revert(&w, &ctx, &err), FP_OK);

	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("command.run")->apply(&f, &ctx, &err), FP_EBACKEND);
	cr_expect(strstr(err.msg, "exited 3") != NULL, "%s", err.msg);
	o = state_of(&ctx);
	cr_expect_eq(json_integer_value(json_object_get(o, "exit_code")), 3);
	cr_expect_str_eq(json_string_value(json_object_get(o, "output")),
			 "bad\n");
	json_decref(o);
}

Test(state, command_run_revert_runs_revert_argv)
{
	char path[] = "/tmp/fp-cmdrun-XXXXXX", argv[128];
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	close(fd);
	snprintf(argv, sizeof argv, "rm %s", path);
	struct fp_kvlist w = KV(P("argv", "true"), P("revert_argv", argv));

	memset(&ctx, 0, sizeof ctx);
	cr_assert_eq(inj("command.run")->apply(&w, &ctx, &err), FP_OK);
	cr_expect_eq(access(path, F_OK), 0, "apply must not run revert_argv");
	cr_assert_eq(inj("command.run")->revert(&w, &ctx, &err), FP_OK, "%s",
		     err.msg);
	cr_expect_neq(access(path, F_OK), 0, "revert_argv did not run");
}

Test(state, command_run_timeout_kills)
{
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	struct fp_kvlist w = KV(P("argv", "sleep 5"), P("timeout", "200ms"));

	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("command.run")->apply(&w, &ctx, &err), FP_ETIMEOUT);
	json_decref(state_of(&ctx));
}

Test(state, process_errors_leave_not_applied)
{
	char path[] = "/tmp/fp-pidfile-XXXXXX";
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	int fd = mkstemp(path);
	json_t *o;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "not-a-pid\n", 10), 10);
	close(fd);
	struct fp_kvlist w = KV(P("pid_file", path));
	struct fp_kvlist none =
		KV(P("match", "^no-such-process-fpdrill-[0-9]+$"));

	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("process.stop")->apply(&w, &ctx, &err), FP_EINVAL);
	cr_expect(strstr(err.msg, "does not hold one pid") != NULL, "%s",
		  err.msg);
	o = state_of(&ctx);
	cr_expect(json_is_false(json_object_get(o, "applied")));
	json_decref(o);
	/* The run loop reverts even a failed apply: nothing to do. */
	cr_expect_eq(inj("process.stop")->revert(&w, &ctx, &err), FP_OK);

	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("process.kill")->apply(&none, &ctx, &err),
		     FP_ENOTFOUND);
	cr_expect(strstr(err.msg, "finds no process") != NULL, "%s", err.msg);
	unlink(path);
}

Test(state, pid_file_naming_the_harness_is_refused)
{
	char path[] = "/tmp/fp-pidfile-XXXXXX", buf[32];
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	int fd = mkstemp(path), n;

	cr_assert(fd >= 0);
	n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
	cr_assert_eq(write(fd, buf, (size_t)n), n);
	close(fd);
	struct fp_kvlist w = KV(P("pid_file", path));

	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(inj("process.kill")->apply(&w, &ctx, &err), FP_EINVAL);
	cr_expect(strstr(err.msg, "harness itself") != NULL, "%s", err.msg);
	unlink(path);
}

Test(state, state_that_does_not_fit_is_an_error)
{
	struct fp_inject_ctx ctx;
	struct fp_err err = {0};
	char big[4096];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memset(&ctx, 0, sizeof ctx);
	cr_expect_eq(fp_inj_state_set(&ctx, json_pack("{s:s}", "k", big), &err),
		     FP_EINTERNAL);
	cr_expect_eq(fp_inj_state_set(&ctx, json_pack("{s:i}", "k", 1), &err),
		     FP_OK);
	cr_expect_str_eq(ctx.state, "{\"k\":1}");
	cr_expect_eq(fp_inj_state_is_not_applied(&ctx), 0);
	fp_inj_state_not_applied(&ctx);
	cr_expect_eq(fp_inj_state_is_not_applied(&ctx), 1);
}
