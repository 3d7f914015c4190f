/*
 * pg_lock_table.c - hold a table lock (default ACCESS EXCLUSIVE) in an open
 * transaction on a session of the injector's own; the revert rolls back and
 * closes it. Every statement on the table, reads included for ACCESS
 * EXCLUSIVE, queues behind the lock: the fault a long migration or a
 * forgotten open transaction produces.
 *
 * The session must live from apply() to revert(), and the injector interface
 * carries no per-fault object, so it stays in a small static registry here,
 * keyed by a token written into the state. A revert in another process
 * (`fpdrill cleanup` after a crash) does not find the token; it then ends the
 * recorded backend (pid + backend_start, so never a reused pid) with
 * pg_terminate_backend, if it is still there at all.
 *
 * Three things release the lock without the revert: the server rolls back
 * the moment the connection drops (the harness died: the kernel closes its
 * socket), and idle_in_transaction_session_timeout = max_hold (a lease set on
 * the session) ends it if the harness is alive but never reverts.
 */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "pg.lock_table"
#define MAX_HELD 16

static const char *const keys[] = {"table",    "mode",     "lock_timeout",
				   "max_hold", "conninfo", "password",
				   NULL};

static const char *const modes[] = {
	"ACCESS SHARE",	 "ROW SHARE",		"ROW EXCLUSIVE",
	"SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
	"EXCLUSIVE",	 "ACCESS EXCLUSIVE", NULL};

static struct held {
	char token[64];
	struct fp_pg *pg;
} held[MAX_HELD];
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long held_seq;

/* "access_exclusive", "Access Exclusive" -> "ACCESS EXCLUSIVE". */
static const char *parse_mode(const char *m)
{
	char up[32];
	size_t i;

	if (!m)
		return "ACCESS EXCLUSIVE";
	for (i = 0; m[i] && i + 1 < sizeof up; i++)
		up[i] = m[i] == '_' ? ' ' : (char)toupper((unsigned char)m[i]);
	up[i] = '\0';
	for (size_t j = 0; modes[j]; j++)
		if (!m[i] && strcmp(up, modes[j]) == 0)
			return modes[j];
	return NULL;
}

static int parse(const struct fp_kvlist *with, const char **mode,
		 int64_t *lock_ns, int64_t *hold_ns, struct fp_err *err)
{
	const char *t = fp_kv_get(with, "table");
	char q[256];
	int rc;

	if (!t || !*t)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": needs table (optionally "
				       "schema-qualified)");
	if (fp_pg_quote_ident(t, q, sizeof q))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": table \"%s\" is not a valid name", t);
	*mode = parse_mode(fp_kv_get(with, "mode"));
	if (!*mode)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": mode must be a table lock mode such "
				       "as ACCESS EXCLUSIVE, EXCLUSIVE or "
				       "SHARE, got \"%s\"",
				  fp_kv_get(with, "mode"));
	rc = fp_inj_duration(with, "lock_timeout", 5 * FP_NS_PER_S,
			     FP_NS_PER_MS, 600 * FP_NS_PER_S, lock_ns, NAME,
			     err);
	if (!rc)
		rc = fp_inj_duration(with, "max_hold", 600 * FP_NS_PER_S,
				     FP_NS_PER_S, 24 * 3600 * FP_NS_PER_S,
				     hold_ns, NAME, err);
	return rc;
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	const char *mode;
	int64_t a, b;
	int rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = parse(with, &mode, &a, &b, err);
	if (!rc)
		rc = fp_inj_pg_validate(with, NAME, err);
	return rc;
}

static int hold(const char *token, struct fp_pg *pg)
{
	int ok = -1;

	pthread_mutex_lock(&held_mu);
	for (size_t i = 0; i < MAX_HELD && ok; i++)
		if (!held[i].pg) {
			snprintf(held[i].token, sizeof held[i].token, "%s",
				 token);
			held[i].pg = pg;
			ok = 0;
		}
	pthread_mutex_unlock(&held_mu);
	return ok;
}

static struct fp_pg *release(const char *token)
{
	struct fp_pg *pg = NULL;

	pthread_mutex_lock(&held_mu);
	for (size_t i = 0; i < MAX_HELD && !pg; i++)
		if (held[i].pg && strcmp(held[i].token, token) == 0) {
			pg = held[i].pg;
			held[i].pg = NULL;
		}
	pthread_mutex_unlock(&held_mu);
	return pg;
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	const char *table = fp_kv_get(with, "table"), *mode;
	struct fp_pg *pg = NULL;
	struct fp_rows *rows = NULL;
	int64_t lock_ns, hold_ns, t0;
	char q[256], sql[512], token[64];
	json_t *st;
	int rc;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (rc)
		return rc;
	parse(with, &mode, &lock_ns, &hold_ns, NULL);
	fp_pg_quote_ident(table, q, sizeof q);
	rc = fp_inj_pg_connect(with, ctx, "fpdrill-lock", &pg, NAME, err);
	if (rc)
		return rc;
	/* lock_timeout bounds the wait for the lock (a queued ACCESS
	 * EXCLUSIVE request already blocks everyone behind it); the idle
	 * timeout is the lease. Both are session settings, so they outlive
	 * the BEGIN below. */
	snprintf(sql, sizeof sql,
		 "SET lock_timeout = %lld; "
		 "SET idle_in_transaction_session_timeout = %lld",
		 (long long)(lock_ns / FP_NS_PER_MS),
		 (long long)(hold_ns / FP_NS_PER_MS));
	rc = fp_pg_exec(pg, sql, err);
	t0 = fp_mono_ns();
	if (!rc) {
		snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s IN %s MODE", q,
			 mode);
		rc = fp_pg_exec(pg, sql, err);
	}
	if (!rc)
		rc = fp_pg_query(pg,
				 "SELECT pg_backend_pid(), backend_start::text "
				 "FROM pg_stat_activity WHERE pid = "
				 "pg_backend_pid()",
				 0, NULL, &rows, err);
	if (!rc && fp_rows_count(rows) != 1)
		rc = fp_err_set(err, FP_EBACKEND,
				"cannot read the session's own backend");
	if (!rc) {
		unsigned long seq;

		pthread_mutex_lock(&held_mu);
		seq = ++held_seq;
		pthread_mutex_unlock(&held_mu);
		snprintf(token, sizeof token, "%ld.%lu.%s", (long)getpid(), seq,
			 fp_rows_get(rows, 0, 0));
		st = json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:I}", "table", table,
			       "mode", mode, "token", token, "backend_pid",
			       (json_int_t)atoll(fp_rows_get(rows, 0, 0)),
			       "backend_start", fp_rows_get(rows, 0, 1),
			       "waited_ms",
			       (json_int_t)((fp_mono_ns() - t0) / FP_NS_PER_MS),
			       "max_hold_s", (json_int_t)(hold_ns / FP_NS_PER_S));
		rc = fp_inj_state_set(ctx, st, err);
		if (!rc && hold(token, pg))
			rc = fp_err_set(err, FP_EINVAL,
					"more than %d table locks held at once",
					MAX_HELD);
	}
	fp_rows_free(rows);
	if (rc) {
		/* Closing the session rolls the transaction back and frees
		 * the lock if it was granted: no half state. */
		fp_pg_close(pg);
		fp_inj_state_not_applied(ctx);
		return fp_err_prefix(err, NAME ": %s: ", table);
	}
	FP_INFO("event=inject injector=" NAME " table=%s mode=\"%s\"", table,
		mode);
	return FP_OK;
}

/* End the recorded backend if it still exists: the revert of a lock whose
 * session this process does not hold (cleanup after a crash) or lost. */
static int end_backend(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		       json_t *st, int64_t *ended, struct fp_err *err)
{
	char pid[32];
	const char *params[2] = {pid,
				 json_string_value(
					 json_object_get(st, "backend_start"))};
	struct fp_pg *pg = NULL;
	int rc;

	*ended = 0;
	snprintf(pid, sizeof pid, "%lld",
		 (long long)json_integer_value(
			 json_object_get(st, "backend_pid")));
	if (!params[1])
		return FP_OK;
	rc = fp_inj_pg_connect(with, ctx, "fpdrill-inject", &pg, NAME, err);
	if (rc)
		return rc;
	rc = fp_pg_query_i64(pg,
			     "SELECT count(*) FILTER (WHERE "
			     "pg_terminate_backend(pid)) FROM pg_stat_activity "
			     "WHERE pid = $1::int AND backend_start = "
			     "$2::timestamptz",
			     2, params, ended, err);
	fp_pg_close(pg);
	return rc;
}

static int revert(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		  struct fp_err *err)
{
	json_t *st = fp_inj_state_get(ctx);
	const char *token = json_string_value(json_object_get(st, "token"));
	struct fp_pg *pg = token ? release(token) : NULL;
	struct fp_err rb = {0};
	int64_t ended = 0;
	int rc = FP_OK;

	if (fp_inj_state_is_not_applied(ctx)) {
		json_decref(st);
		return FP_OK;
	}
	if (!st) {
		/* Crash before "applied": nothing identifies the session;
		 * the server dropped it with the harness's connection. */
		FP_INFO("event=revert injector=" NAME " state=none");
		return FP_OK;
	}
	if (pg) {
		rc = fp_pg_exec(pg, "ROLLBACK", &rb);
		fp_pg_close(pg);
		if (rc == FP_OK) {
			json_decref(st);
			FP_INFO("event=revert injector=" NAME " rolled_back=1");
			return FP_OK;
		}
		/* The session is gone (max_hold, or an operator ended it);
		 * make sure the server agrees before calling it reverted. */
		FP_WARN("event=revert injector=" NAME " rollback_failed=\"%s\"",
			rb.msg);
	}
	rc = end_backend(with, ctx, st, &ended, err);
	json_decref(st);
	if (rc == FP_OK)
		FP_INFO("event=revert injector=" NAME " terminated=%lld",
			(long long)ended);
	return rc;
}

const struct fp_injector fp_injector_pg_lock_table = {
	.name = NAME,
	.summary = "hold a table lock (default ACCESS EXCLUSIVE) in an open "
		   "transaction; revert rolls back; released by the server if "
		   "the harness dies",
	.validate = validate,
	.apply = apply,
	.revert = revert,
};
