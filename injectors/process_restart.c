/*
 * process_restart.c - restart a process: stop the identified target (signal,
 * default SIGTERM, then SIGKILL after a grace period) and run the command
 * that starts it again, waiting for that command; or, without a target, just
 * run the restart command (e.g. an env profile's bound action that calls
 * `systemctl restart`). A one-shot: the process runs again afterwards.
 *
 * A command that starts a long-running server in the foreground would never
 * return, so `detach: true` starts it in its own session with its output in
 * `log` (default /dev/null), double-forked so the harness leaves no zombie,
 * and reports the new pid. An exec failure is still caught (a close-on-exec
 * pipe carries errno back).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/backend/fp_act.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "process.restart"

static const char *const keys[] = {
	"pid_file", "match",  "all",     "signal", "grace", "command",
	"command_json", "action", "timeout", "detach", "log", NULL};

struct args {
	int sig;
	int64_t grace_ns, timeout_ns;
	int detach;
};

static int parse(const struct fp_kvlist *with, struct args *a,
		 struct fp_err *err)
{
	const char *s = fp_kv_get(with, "signal");
	int ncmd = !!fp_kv_get(with, "command") +
		   !!fp_kv_get(with, "command_json") +
		   !!fp_kv_get(with, "action");
	int rc;

	a->sig = SIGTERM;
	if (s && (fp_inj_signal_parse(s, &a->sig) || a->sig == SIGSTOP ||
		  a->sig == SIGCONT || a->sig == SIGTSTP))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": signal must be one that ends a "
				       "process (TERM, INT, KILL, ...), got "
				       "\"%s\"",
				  s);
	if (ncmd != 1)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": give exactly one of command (argv, "
				       "split on whitespace), command_json "
				       "([\"prog\",\"arg\"]) and action (a "
				       "bound action)");
	rc = fp_inj_duration(with, "grace", 10 * FP_NS_PER_S, 0,
			     600 * FP_NS_PER_S, &a->grace_ns, NAME, err);
	if (!rc)
		rc = fp_inj_duration(with, "timeout", 60 * FP_NS_PER_S,
				     FP_NS_PER_MS, 3600 * FP_NS_PER_S,
				     &a->timeout_ns, NAME, err);
	if (!rc)
		rc = fp_inj_bool(with, "detach", 0, &a->detach, NAME, err);
	if (!rc && fp_kv_get(with, "action") &&
	    (a->detach || fp_kv_get(with, "log")))
		rc = fp_err_set(err, FP_ESPEC,
				NAME ": detach and log apply to command, not "
				     "to a bound action");
	if (!rc && fp_kv_get(with, "log") && !a->detach)
		rc = fp_err_set(err, FP_ESPEC,
				NAME ": log needs detach: true (a waited-for "
				     "command's output goes to the report)");
	return rc;
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	struct args a;
	char **argv = NULL;
	size_t argc;
	int rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = fp_inj_proc_validate(with, NAME, 0, err);
	if (!rc)
		rc = parse(with, &a, err);
	if (!rc && !fp_kv_get(with, "action"))
		rc = fp_inj_argv(fp_kv_get(with, "command"),
				 fp_kv_get(with, "command_json"), &argv, &argc,
				 NAME, "command", err);
	fp_inj_argv_free(argv);
	return rc;
}

/* Messages from the two children over one close-on-exec pipe (two ints:
 * no padding bytes go over the pipe). */
struct msg {
	int tag; /* 'p': the grandchild's pid, 'e': its exec errno */
	int val;
};

static void write_msg(int fd, int tag, int val)
{
	struct msg m = {tag, val};
	ssize_t w = write(fd, &m, sizeof m);

	(void)w; /* the parent sees a missing message as a failure */
}

static int spawn_detached(char **argv, const char *log, int *pid_out,
			  struct fp_err *err)
{
	int pfd[2], status, exec_errno = 0;
	struct msg m;
	pid_t child;

	*pid_out = 0;
	if (pipe2(pfd, O_CLOEXEC))
		return fp_err_set(err, FP_EIO, "pipe: %s", strerror(errno));
	child = fork();
	if (child < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return fp_err_set(err, FP_EIO, "fork: %s", strerror(errno));
	}
	if (child == 0) {
		pid_t gc;

		/* Own session: not in the harness's process group, so a
		 * Ctrl-C to the harness does not reach the restarted
		 * server. Only async-signal-safe calls until exec. */
		setsid();
		gc = fork();
		if (gc == 0) {
			int in = open("/dev/null", O_RDONLY);
			int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

			if (in < 0 || out < 0) {
				write_msg(pfd[1], 'e', errno);
				_exit(127);
			}
			dup2(in, 0);
			dup2(out, 1);
			dup2(out, 2);
			execvp(argv[0], argv);
			write_msg(pfd[1], 'e', errno);
			_exit(127);
		}
		write_msg(pfd[1], 'p', (int)gc);
		_exit(gc < 0 ? 1 : 0);
	}
	close(pfd[1]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	/* EOF comes once the child exited and the grandchild exec'd (the
	 * close-on-exec pipe closes) or failed and exited. */
	for (;;) {
		ssize_t r = read(pfd[0], &m, sizeof m);

		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof m)
			break;
		if (m.tag == 'p')
			*pid_out = m.val;
		else if (m.tag == 'e')
			exec_errno = m.val;
	}
	close(pfd[0]);
	if (*pid_out <= 0)
		return fp_err_set(err, FP_EIO, NAME ": cannot fork the command");
	if (exec_errno) {
		*pid_out = 0;
		return fp_err_set(err, FP_EBACKEND, NAME ": cannot start '%s': %s",
				  argv[0], strerror(exec_errno));
	}
	return FP_OK;
}

/* Stop the current instance: signal, grace, then SIGKILL. */
static int stop_target(const struct fp_kvlist *with, const struct args *a,
		       struct fp_inj_proc *p, size_t *n, int *escalated,
		       struct fp_err *err)
{
	int rc;

	*n = 0;
	*escalated = 0;
	if (!fp_kv_get(with, "pid_file") && !fp_kv_get(with, "match"))
		return FP_OK;
	rc = fp_inj_proc_find(with, NAME, p, FP_INJ_MAX_PROCS, n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < *n; i++)
		if (kill(p[i].pid, 0))
			return fp_err_set(err, FP_EBACKEND,
					  NAME ": cannot signal pid %d: %s",
					  p[i].pid, strerror(errno));
	for (size_t i = 0; i < *n; i++)
		kill(p[i].pid, a->sig);
	if (fp_inj_proc_wait_gone(p, *n, a->grace_ns) == 0)
		return FP_OK;
	*escalated = 1;
	for (size_t i = 0; i < *n; i++)
		if (fp_inj_proc_alive(&p[i]))
			kill(p[i].pid, SIGKILL);
	if (fp_inj_proc_wait_gone(p, *n, 5 * FP_NS_PER_S))
		return fp_err_set(err, FP_ETIMEOUT,
				  NAME ": a target survived SIGKILL for 5s "
				       "(uninterruptible sleep?); the restart "
				       "command was not run");
	return FP_OK;
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	const char *action = fp_kv_get(with, "action");
	const char *log = fp_kv_get(with, "log");
	struct fp_inj_proc p[FP_INJ_MAX_PROCS];
	struct fp_act_result res = {0};
	struct args a;
	char **argv = NULL;
	size_t n = 0, argc = 0;
	int escalated = 0, started = 0, rc, rc2;
	json_t *st;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (rc)
		return rc;
	parse(with, &a, NULL);
	if (action) {
		if (!ctx->env || !fp_env_action(ctx->env, action))
			return fp_err_set(err, FP_ESPEC,
					  NAME ": action '%s' is not bound in "
					       "the env profile",
					  action);
	} else if (fp_inj_argv(fp_kv_get(with, "command"),
			       fp_kv_get(with, "command_json"), &argv, &argc,
			       NAME, "command", err)) {
		return FP_ESPEC;
	}
	rc = stop_target(with, &a, p, &n, &escalated, err);
	if (rc == FP_OK) {
		if (action) {
			rc = fp_action_run(fp_env_action(ctx->env, action),
					   &res, err);
		} else if (a.detach) {
			rc = spawn_detached(argv, log ? log : "/dev/null",
					    &started, err);
		} else {
			struct fp_action act;

			memset(&act, 0, sizeof act);
			act.name = (char *)NAME;
			act.kind = FP_ACTION_COMMAND;
			act.argv = argv;
			act.argc = argc;
			act.timeout_ns = a.timeout_ns;
			rc = fp_action_run(&act, &res, err);
		}
	}
	/* The state says what happened even when a step failed: the old
	 * instance may be gone while the new one did not start. */
	st = json_pack("{s:s,s:b,s:s}", "signal", fp_inj_signal_name(a.sig),
		       "escalated", escalated, "command",
		       action ? action : argv[0]);
	fp_inj_proc_to_json(st, "stopped", p, n);
	if (a.detach) {
		json_object_set_new(st, "started_pid", json_integer(started));
	} else {
		json_object_set_new(st, "exit_code",
				    json_integer(res.exit_code));
		json_object_set_new(st, "elapsed_ms",
				    json_integer(res.elapsed_ns /
						 FP_NS_PER_MS));
	}
	json_object_set_new(st, "ok", json_boolean(rc == FP_OK));
	rc2 = fp_inj_state_set(ctx, st, rc ? NULL : err);
	fp_inj_argv_free(argv);
	if (rc)
		return rc;
	FP_INFO("event=inject injector=" NAME " stopped=%zu escalated=%d "
		"started_pid=%d",
		n, escalated, started);
	return rc2;
}

const struct fp_injector fp_injector_process_restart = {
	.name = NAME,
	.summary = "stop a process (signal, grace, SIGKILL) and run the "
		   "command that starts it again, waiting for it (one-shot)",
	.validate = validate,
	.apply = apply,
	.revert = NULL,
};
