/*
 * fp_act.h - run an action an env profile binds: an HTTP call (libcurl) or a
 * command (fork/exec, its own process group, killed on timeout). Actions are
 * how a portable scenario changes a concrete platform ("pause_decisions").
 */
#ifndef FP_ACT_H
#define FP_ACT_H

#include <stdint.h>

#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

struct fp_act_result {
	long http_status;    /* HTTP actions; 0 otherwise */
	int exit_code;       /* command actions; -1 when killed */
	int64_t elapsed_ns;
	char output[512];    /* start of the response body / command output */
};

/*
 * @brief Run an action and check its outcome: an HTTP status other than the
 *        expected one, or a non-zero command exit, is FP_EBACKEND; a
 *        connection failure is FP_EUNREACHABLE; a timeout FP_ETIMEOUT.
 * @param res may be NULL.
 */
int fp_action_run(const struct fp_action *a, struct fp_act_result *res,
		  struct fp_err *err);

#endif
