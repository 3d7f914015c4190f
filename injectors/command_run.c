/*
 * command_run.c - a fault a platform exposes as a command (a CLI, a script,
 * `tc qdisc ...`): apply runs one argv, the revert, when revert_argv is
 * given, runs a second one that undoes it. Without it the revert does
 * nothing (the command was a one-shot).
 *
 * No shell is involved: argv is split on whitespace (no quoting, globbing or
 * $VAR), or given exactly as a JSON array in argv_json. A command runs in
 * its own process group and is killed with it at its timeout (fp_action_run
 * in harness/backend/fp_act.h); a non-zero exit is a failed step.
 */
#include <jansson.h>
#include <string.h>

#include "harness/backend/fp_act.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "command.run"

static const char *const keys[] = {"argv",	  "argv_json",
				   "timeout",	  "revert_argv",
				   "revert_argv_json", "revert_timeout",
				   NULL};

static int check(const struct fp_kvlist *with, const char *pre,
		 struct fp_err *err)
{
	char k[32], kj[32], kt[32];
	char **argv = NULL;
	size_t argc;
	int64_t t;
	int rc;

	snprintf(k, sizeof k, "%sargv", pre);
	snprintf(kj, sizeof kj, "%sargv_json", pre);
	snprintf(kt, sizeof kt, "%stimeout", pre);
	if (*pre && !fp_kv_get(with, k) && !fp_kv_get(with, kj))
		return fp_kv_get(with, kt)
			       ? fp_err_set(err, FP_ESPEC,
					    NAME ": revert_timeout needs "
						 "revert_argv")
			       : FP_OK;
	rc = fp_inj_argv(fp_kv_get(with, k), fp_kv_get(with, kj), &argv,
			 &argc, NAME, k, err);
	fp_inj_argv_free(argv);
	if (!rc)
		rc = fp_inj_duration(with, kt, 30 * FP_NS_PER_S, FP_NS_PER_MS,
				     3600 * FP_NS_PER_S, &t, NAME, err);
	return rc;
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	int rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = check(with, "", err);
	if (!rc)
		rc = check(with, "revert_", err);
	return rc;
}

static int run(const struct fp_kvlist *with, const char *pre,
	       struct fp_act_result *res, char *argv0, size_t argv0sz,
	       struct fp_err *err)
{
	char k[32], kj[32], kt[32];
	struct fp_action a;
	char **argv = NULL;
	size_t argc;
	int64_t t;
	int rc;

	snprintf(k, sizeof k, "%sargv", pre);
	snprintf(kj, sizeof kj, "%sargv_json", pre);
	snprintf(kt, sizeof kt, "%stimeout", pre);
	rc = fp_inj_argv(fp_kv_get(with, k), fp_kv_get(with, kj), &argv,
			 &argc, NAME, k, err);
	if (rc)
		return rc;
	fp_inj_duration(with, kt, 30 * FP_NS_PER_S, FP_NS_PER_MS,
			3600 * FP_NS_PER_S, &t, NAME, NULL);
	memset(&a, 0, sizeof a);
	a.name = (char *)(*pre ? NAME " (revert)" : NAME);
	a.kind = FP_ACTION_COMMAND;
	a.argv = argv;
	a.argc = argc;
	a.timeout_ns = t;
	snprintf(argv0, argv0sz, "%s", argv[0]);
	rc = fp_action_run(&a, res, err);
	fp_inj_argv_free(argv);
	return rc;
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	struct fp_act_result res;
	char argv0[256] = "", out[301];
	size_t i;
	int rc, rc2;

	ctx->state[0] = '\0';
	memset(&res, 0, sizeof res);
	rc = validate(with, err);
	if (rc)
		return rc;
	rc = run(with, "", &res, argv0, sizeof argv0, err);
	/* The start of the output goes to the report: it is usually what
	 * explains a failure. Cut bytes could split a UTF-8 sequence, which
	 * JSON refuses, so anything outside printable ASCII becomes '?'. */
	for (i = 0; res.output[i] && i + 1 < sizeof out; i++)
		out[i] = (res.output[i] >= 0x20 && res.output[i] < 0x7f) ||
				 res.output[i] == '\n'
			       ? res.output[i]
			       : '?';
	out[i] = '\0';
	rc2 = fp_inj_state_set(
		ctx,
		json_pack("{s:s,s:i,s:I,s:s,s:b}", "argv0", argv0, "exit_code",
			  res.exit_code, "elapsed_ms",
			  (json_int_t)(res.elapsed_ns / FP_NS_PER_MS),
			  "output", out, "revertible",
			  fp_kv_get(with, "revert_argv") ||
				  fp_kv_get(with, "revert_argv_json")),
		rc ? NULL : err);
	return rc ? rc : rc2;
}

static int revert(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		  struct fp_err *err)
{
	struct fp_act_result res;
	char argv0[256];

	if (!fp_kv_get(with, "revert_argv") &&
	    !fp_kv_get(with, "revert_argv_json"))
		return FP_OK;
	return run(with, "revert_", &res, argv0, sizeof argv0, err);
}

const struct fp_injector fp_injector_command_run = {
	.name = NAME,
	.summary = "run a command (argv, no shell, with a timeout); revert "
		   "runs the optional revert_argv",
	.validate = validate,
	.apply = apply,
	.revert = revert,
};
