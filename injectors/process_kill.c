/*
 * process_kill.c - send one signal (default SIGKILL) to a process: a crash,
 * an OOM kill, or with TERM/HUP a graceful stop or reload. A one-shot: the
 * platform's supervisor (or a later process.restart) brings the process
 * back; the harness has nothing to undo.
 *
 * With SIGKILL it waits (default 5s) until the process is gone, so the step
 * reports a kill that happened rather than a signal that was sent.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "process.kill"

static const char *const keys[] = {"pid_file", "match", "all", "signal",
				   "wait", NULL};

static int parse(const struct fp_kvlist *with, int *sig, int64_t *wait_ns,
		 struct fp_err *err)
{
	const char *s = fp_kv_get(with, "signal");

	*sig = SIGKILL;
	if (s && (fp_inj_signal_parse(s, sig) || *sig == SIGSTOP ||
		  *sig == SIGCONT || *sig == SIGTSTP))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": signal must name a signal such as "
				       "KILL, TERM, INT, HUP or 9, got \"%s\" "
				       "(STOP/CONT belong to process.stop)",
				  s);
	/* Only SIGKILL is sure to end a process; waiting after HUP (a
	 * reload) would always time out. */
	return fp_inj_duration(with, "wait",
			       *sig == SIGKILL ? 5 * FP_NS_PER_S : 0, 0,
			       300 * FP_NS_PER_S, wait_ns, NAME, err);
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	int64_t w;
	int sig, rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = fp_inj_proc_validate(with, NAME, 1, err);
	if (!rc)
		rc = parse(with, &sig, &w, err);
	return rc;
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	struct fp_inj_proc p[FP_INJ_MAX_PROCS];
	size_t n = 0, sent = 0;
	int64_t wait_ns, t0;
	int sig, rc, gone = -1;
	json_t *st;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (!rc)
		rc = fp_inj_proc_find(with, NAME, p, FP_INJ_MAX_PROCS, &n, err);
	if (rc)
		return rc;
	parse(with, &sig, &wait_ns, NULL);
	for (size_t i = 0; i < n; i++)
		if (kill(p[i].pid, 0))
			return fp_err_set(err, FP_EBACKEND,
					  NAME ": cannot signal pid %d: %s",
					  p[i].pid, strerror(errno));
	t0 = fp_mono_ns();
	for (size_t i = 0; i < n; i++) {
		if (kill(p[i].pid, sig)) {
			/* Only a process that exited since the check gets
			 * here (ESRCH): it is gone, which is the goal. */
			if (errno != ESRCH)
				rc = fp_err_set(err, FP_EBACKEND,
						NAME ": %s to pid %d: %s",
						fp_inj_signal_name(sig),
						p[i].pid, strerror(errno));
			continue;
		}
		sent++;
	}
	if (!rc && wait_ns > 0) {
		gone = fp_inj_proc_wait_gone(p, n, wait_ns) == 0;
		if (!gone)
			rc = fp_err_set(err, FP_ETIMEOUT,
					NAME ": %s sent, but a target is still "
					     "running after the wait",
					fp_inj_signal_name(sig));
	}
	st = json_pack("{s:s,s:i}", "signal", fp_inj_signal_name(sig), "sent",
		       (int)sent);
	fp_inj_proc_to_json(st, "procs", p, n);
	if (gone >= 0) {
		json_object_set_new(st, "gone", json_boolean(gone));
		json_object_set_new(st, "gone_ms",
				    json_integer((fp_mono_ns() - t0) /
						 FP_NS_PER_MS));
	}
	if (fp_inj_state_set(ctx, st, rc ? NULL : err) && !rc)
		rc = FP_EINTERNAL;
	if (!rc)
		FP_INFO("event=inject injector=" NAME " signal=%s procs=%zu",
			fp_inj_signal_name(sig), n);
	return rc;
}

const struct fp_injector fp_injector_process_kill = {
	.name = NAME,
	.summary = "send one signal (default SIGKILL) to a process identified "
		   "by pid_file or an unambiguous match (one-shot)",
	.validate = validate,
	.apply = apply,
	.revert = NULL,
};
