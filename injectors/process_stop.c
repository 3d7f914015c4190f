/*
 * process_stop.c - freeze a process with SIGSTOP (or SIGTSTP); the revert
 * sends SIGCONT.
 *
 * A stopped process keeps its sockets open and answers nothing: the shape of
 * a GC pause, a hung VM or a process stuck on a lock, which is harder on
 * peers than a crash. The target must be identified unambiguously (see
 * fp_inj_proc_find). The state records every pid with its start time, so a
 * revert after a harness crash continues exactly the processes it stopped
 * and never a process that later reused a pid.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "process.stop"

static const char *const keys[] = {"pid_file", "match", "all", "signal",
				   NULL};

static int parse_signal(const struct fp_kvlist *with, int *sig,
			struct fp_err *err)
{
	const char *s = fp_kv_get(with, "signal");

	*sig = SIGSTOP;
	if (!s)
		return FP_OK;
	if (fp_inj_signal_parse(s, sig) || (*sig != SIGSTOP && *sig != SIGTSTP))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": signal must be STOP or TSTP, got "
				       "\"%s\" (use process.kill for others)",
				  s);
	return FP_OK;
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	int sig, rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = fp_inj_proc_validate(with, NAME, 1, err);
	if (!rc)
		rc = parse_signal(with, &sig, err);
	return rc;
}

static void cont_all(const struct fp_inj_proc *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fp_inj_proc_alive(&p[i]))
			kill(p[i].pid, SIGCONT);
}

/* SIGSTOP is delivered asynchronously; a stop is only reported once the
 * kernel shows the process as stopped ('T'). */
static int wait_stopped(const struct fp_inj_proc *p, size_t n)
{
	int64_t deadline = fp_mono_ns() + 2 * FP_NS_PER_S;

	for (;;) {
		size_t stopped = 0;

		for (size_t i = 0; i < n; i++)
			stopped += fp_inj_proc_state(p[i].pid) == 'T';
		if (stopped == n)
			return 0;
		if (fp_mono_ns() >= deadline)
			return -1;
		fp_sleep_ns(5 * FP_NS_PER_MS, NULL);
	}
}

static int do_apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		    struct fp_err *err)
{
	struct fp_inj_proc p[FP_INJ_MAX_PROCS];
	size_t n = 0;
	json_t *st;
	int sig, rc;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (!rc)
		rc = fp_inj_proc_find(with, NAME, p, FP_INJ_MAX_PROCS, &n, err);
	if (rc)
		return rc;
	parse_signal(with, &sig, NULL);
	/* Check permission for every target before stopping any, so a
	 * partial stop is rare; a failure below still continues what it
	 * stopped. */
	for (size_t i = 0; i < n; i++)
		if (kill(p[i].pid, 0))
			return fp_err_set(err, FP_EBACKEND,
					  NAME ": cannot signal pid %d: %s",
					  p[i].pid, strerror(errno));
	st = json_pack("{s:s,s:s}", "signal", fp_inj_signal_name(sig),
		       "target",
		       fp_kv_get(with, "pid_file") ? "pid_file" : "match");
	fp_inj_proc_to_json(st, "procs", p, n);
	/* Written before the signals: if a stop fails half-way, revert
	 * (which the run loop calls even then) knows every candidate. */
	rc = fp_inj_state_set(ctx, st, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (kill(p[i].pid, sig)) {
			rc = fp_err_set(err, FP_EBACKEND,
					NAME ": %s to pid %d: %s",
					fp_inj_signal_name(sig), p[i].pid,
					strerror(errno));
			cont_all(p, i);
			fp_inj_state_not_applied(ctx);
			return rc;
		}
	}
	if (wait_stopped(p, n)) {
		cont_all(p, n);
		fp_inj_state_not_applied(ctx);
		return fp_err_set(err, FP_ETIMEOUT,
				  NAME ": %zu process(es) not stopped within "
				       "2s after %s; continued them again",
				  n, fp_inj_signal_name(sig));
	}
	FP_INFO("event=inject injector=" NAME " procs=%zu first_pid=%d", n,
		p[0].pid);
	return FP_OK;
}

/* A failed apply leaves nothing in place; say so for the revert. */
static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	int rc = do_apply(with, ctx, err);

	if (rc && !ctx->state[0])
		fp_inj_state_not_applied(ctx);
	return rc;
}

static int revert(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		  struct fp_err *err)
{
	struct fp_inj_proc p[FP_INJ_MAX_PROCS];
	json_t *st = fp_inj_state_get(ctx);
	size_t n = 0, cont = 0;
	int rc = FP_OK;

	if (fp_inj_state_is_not_applied(ctx)) {
		json_decref(st);
		return FP_OK;
	}
	if (st) {
		n = fp_inj_proc_from_json(st, "procs", p, FP_INJ_MAX_PROCS);
		json_decref(st);
	} else if (fp_inj_proc_find(with, NAME, p, FP_INJ_MAX_PROCS, &n,
				    NULL)) {
		/* No state: the harness died between the journal's "apply"
		 * and "applied". Continuing whatever the target resolves to
		 * now is harmless; finding nothing means nothing to do. */
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		/* A process gone, or a pid reused by another process, needs
		 * nothing: only the recorded one was stopped. */
		if (!fp_inj_proc_alive(&p[i]))
			continue;
		if (kill(p[i].pid, SIGCONT))
			rc = fp_err_set(err, FP_EBACKEND,
					NAME ": SIGCONT to pid %d: %s",
					p[i].pid, strerror(errno));
		else
			cont++;
	}
	FP_INFO("event=revert injector=" NAME " continued=%zu of=%zu", cont,
		n);
	return rc;
}

const struct fp_injector fp_injector_process_stop = {
	.name = NAME,
	.summary = "freeze a process with SIGSTOP (pid_file or an unambiguous "
		   "match); revert continues it with SIGCONT",
	.validate = validate,
	.apply = apply,
	.revert = revert,
};
