/*
 * inj_util.h - helpers shared by the injectors in this directory (not part
 * of the injector interface): strict `with:` argument parsing with FP_ESPEC
 * messages, the state JSON every apply() writes, argv splitting, signal
 * names, identifying processes unambiguously, and connecting to Redis and
 * PostgreSQL with secrets that arrive as env:/file: references.
 *
 * Every parser takes the injector's name so its message says which step is
 * wrong ("process.stop: signal must be ..."). None of them touches a target.
 */
#ifndef FP_INJ_UTIL_H
#define FP_INJ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "injectors/fp_injector.h"

struct fp_pg;
struct redisContext;
typedef struct json_t json_t;

/* ---- arguments ------------------------------------------------------------ */

/*
 * @brief Reject keys a step's with: list does not know (a typo such as
 *        "pidfile" would otherwise be silently ignored).
 * @param allowed NULL-terminated exact keys.
 * @param prefixes NULL-terminated key prefixes ("attr."), may be NULL.
 */
int fp_inj_check_keys(const struct fp_kvlist *with, const char *inj,
		      const char *const *allowed, const char *const *prefixes,
		      struct fp_err *err);

/* @brief Integer argument in [lo, hi]; def when absent. */
int fp_inj_i64(const struct fp_kvlist *with, const char *key, int64_t def,
	       int64_t lo, int64_t hi, int64_t *out, const char *inj,
	       struct fp_err *err);
/* @brief true/false/yes/no/1/0; def when absent. */
int fp_inj_bool(const struct fp_kvlist *with, const char *key, int def,
		int *out, const char *inj, struct fp_err *err);
/* @brief Duration ("250ms", "10s") in [lo_ns, hi_ns]; def_ns when absent. */
int fp_inj_duration(const struct fp_kvlist *with, const char *key,
		    int64_t def_ns, int64_t lo_ns, int64_t hi_ns, int64_t *out,
		    const char *inj, struct fp_err *err);
/* @brief A secret argument, when present, must be an env:/file: reference. */
int fp_inj_secret_arg(const struct fp_kvlist *with, const char *key,
		      const char *inj, struct fp_err *err);

/*
 * @brief Build an argv from a shell-free whitespace split of text, or from a
 *        JSON array of strings (json_text). Exactly one of them must be
 *        non-NULL. No quoting, globbing or variable expansion happens.
 * @param argv set to a NULL-terminated array; free with fp_inj_argv_free().
 */
int fp_inj_argv(const char *text, const char *json_text, char ***argv,
		size_t *argc, const char *inj, const char *key,
		struct fp_err *err);
void fp_inj_argv_free(char **argv);

/* @brief "KILL", "SIGKILL", "kill" or "9"; @returns 0 or -1. */
int fp_inj_signal_parse(const char *s, int *sig);
/* @returns "SIGKILL" style name ("SIG<n>" for unnamed ones, static). */
const char *fp_inj_signal_name(int sig);

/* ---- state JSON ----------------------------------------------------------- */

/*
 * @brief Write obj (a reference is stolen) compactly into ctx->state.
 * @returns FP_EINTERNAL when it does not fit: callers size their state so
 *          that this cannot happen after they acted.
 */
int fp_inj_state_set(struct fp_inject_ctx *ctx, json_t *obj,
		     struct fp_err *err);
/*
 * @brief Record {"applied":false}: the run loop calls revert() even after a
 *        failed apply(), and this tells it that nothing is in place (an
 *        empty state instead means a crash before "applied", where a revert
 *        must assume the worst).
 */
void fp_inj_state_not_applied(struct fp_inject_ctx *ctx);
/* @returns 1 when the state says apply() left nothing in place. */
int fp_inj_state_is_not_applied(const struct fp_inject_ctx *ctx);
/* @returns the parsed state object (new reference) or NULL when the state
 *          is empty or not a JSON object (a crash before "applied"). */
json_t *fp_inj_state_get(const struct fp_inject_ctx *ctx);

/* ---- processes ------------------------------------------------------------ */

/* A process as identified at apply time: the pid alone could be reused by
 * the time a revert (or a cleanup after a crash) runs, so the kernel's start
 * time (clock ticks since boot, /proc/PID/stat field 22) goes with it. */
struct fp_inj_proc {
	int pid;
	unsigned long long start;
};

#define FP_INJ_MAX_PROCS 32 /* so the pids always fit the state */

/*
 * @brief Resolve the target of a process.* step: pid_file (one pid) or match
 *        (an extended regex over the command line with arguments joined by
 *        spaces, as `pgrep -f`; the harness itself never matches). Finding no
 *        process is an error; finding more than one is an error unless all
 *        is true. Zombies are not candidates.
 */
int fp_inj_proc_find(const struct fp_kvlist *with, const char *inj,
		     struct fp_inj_proc *out, size_t max, size_t *n,
		     struct fp_err *err);
/* @returns 1 when pid still runs with the recorded start time (not a
 *          zombie), else 0. */
int fp_inj_proc_alive(const struct fp_inj_proc *p);
/* @returns the one-letter state from /proc/PID/stat, or 0 when gone. */
char fp_inj_proc_state(int pid);
/* @brief Wait until none of the processes is alive; @returns 0 or -1 on
 *        timeout. */
int fp_inj_proc_wait_gone(const struct fp_inj_proc *p, size_t n,
			  int64_t timeout_ns);
/* @brief Validate the pid_file / match / all arguments offline. */
int fp_inj_proc_validate(const struct fp_kvlist *with, const char *inj,
			 int required, struct fp_err *err);
/* @brief Append [{"pid":N,"start":T},...] under key to obj. */
void fp_inj_proc_to_json(json_t *obj, const char *key,
			 const struct fp_inj_proc *p, size_t n);
/* @brief Read them back; @returns the number read (at most max). */
size_t fp_inj_proc_from_json(json_t *obj, const char *key,
			     struct fp_inj_proc *p, size_t max);

/* ---- Redis ---------------------------------------------------------------- */

/* @brief Validate host / port / password / user offline. */
int fp_inj_redis_validate(const struct fp_kvlist *with, const char *inj,
			  struct fp_err *err);
/*
 * @brief Connect (3 s connect timeout), set the per-command socket timeout
 *        and AUTH when password (a secret reference) is given.
 * @param out caller frees with redisFree().
 */
int fp_inj_redis_connect(const struct fp_kvlist *with,
			 const struct fp_inject_ctx *ctx, int64_t cmd_timeout_ns,
			 struct redisContext **out, const char *inj,
			 struct fp_err *err);
/* @brief Set the per-command socket timeout of an open context. */
void fp_inj_redis_timeout(struct redisContext *c, int64_t timeout_ns);

/* ---- PostgreSQL ----------------------------------------------------------- */

/* @brief Validate conninfo / password offline. */
int fp_inj_pg_validate(const struct fp_kvlist *with, const char *inj,
		       struct fp_err *err);
/*
 * @brief Connect with with.conninfo + with.password, or fall back to the env
 *        profile's target.postgres (ctx->env). app_name tags the session in
 *        pg_stat_activity so an operator sees what holds it.
 */
int fp_inj_pg_connect(const struct fp_kvlist *with,
		      const struct fp_inject_ctx *ctx, const char *app_name,
		      struct fp_pg **out, const char *inj, struct fp_err *err);

#endif
