/*
 * pg_terminate_backends.c - end PostgreSQL client sessions with
 * pg_terminate_backend(): every client backend matching the given
 * application_name / usename / datname (all that are given must match),
 * never the injector's own session. Clients see "terminating connection due
 * to administrator command" and must reconnect - the fault a failover, a
 * pooler restart or an operator's cleanup produces. A one-shot.
 *
 * The matching backends are listed first and terminated one per statement,
 * so the report can say exactly how many ended even if the server refuses
 * one (permissions). On PostgreSQL >= 14 each termination waits (bounded)
 * until the backend has really exited. Fewer matches than `min` (default 1)
 * is an error before anything is terminated: a drill that ends nobody's
 * session tests nothing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "pg.terminate_backends"
#define MAX_PIDS_IN_STATE 64

static const char *const keys[] = {"application_name", "usename", "datname",
				   "min", "wait", "conninfo", "password",
				   NULL};

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	int64_t x;
	int rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc && !fp_kv_get(with, "application_name") &&
	    !fp_kv_get(with, "usename") && !fp_kv_get(with, "datname"))
		rc = fp_err_set(err, FP_ESPEC,
				NAME ": needs at least one of "
				     "application_name, usename and datname "
				     "(terminating every session is not a "
				     "drill)");
	if (!rc)
		rc = fp_inj_i64(with, "min", 1, 0, 100000, &x, NAME, err);
	if (!rc)
		rc = fp_inj_duration(with, "wait", 5 * FP_NS_PER_S, 0,
				     60 * FP_NS_PER_S, &x, NAME, err);
	if (!rc)
		rc = fp_inj_pg_validate(with, NAME, err);
	return rc;
}

static const char list_sql[] =
	"SELECT pid, current_setting('server_version_num')::int "
	"FROM pg_stat_activity "
	"WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
	"AND ($1::text IS NULL OR application_name = $1) "
	"AND ($2::text IS NULL OR usename = $2) "
	"AND ($3::text IS NULL OR datname = $3) ORDER BY pid";

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	const char *params[3] = {fp_kv_get(with, "application_name"),
				 fp_kv_get(with, "usename"),
				 fp_kv_get(with, "datname")};
	struct fp_pg *pg = NULL;
	struct fp_rows *rows = NULL;
	int64_t min, wait_ns, terminated = 0;
	size_t n;
	json_t *st, *pids, *filter;
	char wait_ms[32];
	int rc, rc2;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (rc)
		return rc;
	fp_inj_i64(with, "min", 1, 0, 100000, &min, NAME, NULL);
	fp_inj_duration(with, "wait", 5 * FP_NS_PER_S, 0, 60 * FP_NS_PER_S,
			&wait_ns, NAME, NULL);
	snprintf(wait_ms, sizeof wait_ms, "%lld",
		 (long long)(wait_ns / FP_NS_PER_MS));
	rc = fp_inj_pg_connect(with, ctx, "fpdrill-inject", &pg, NAME, err);
	if (rc)
		return rc;
	rc = fp_pg_query(pg, list_sql, 3, params, &rows, err);
	if (rc) {
		fp_pg_close(pg);
		return fp_err_prefix(err, NAME ": ");
	}
	n = fp_rows_count(rows);
	if ((int64_t)n < min) {
		fp_rows_free(rows);
		fp_pg_close(pg);
		return fp_err_set(err, FP_ENOTFOUND,
				  NAME ": %zu session(s) match, fewer than "
				       "min %lld; nothing was terminated",
				  n, (long long)min);
	}
	filter = json_object();
	for (size_t i = 0; i < 3; i++)
		if (params[i])
			json_object_set_new(filter,
					    i == 0   ? "application_name"
					    : i == 1 ? "usename"
						     : "datname",
					    json_string(params[i]));
	pids = json_array();
	for (size_t i = 0; i < n && rc == FP_OK; i++) {
		const char *pid = fp_rows_get(rows, i, 0);
		const char *ver = fp_rows_get(rows, i, 1);
		const char *p2[2] = {pid, wait_ms};
		int64_t ok = 0;

		/* The timeout form (PostgreSQL 14+) returns once the backend
		 * has exited, so "terminated" means gone, not signalled. */
		rc = fp_pg_query_i64(
			pg,
			ver && atoi(ver) >= 140000
				? "SELECT pg_terminate_backend($1::int, "
				  "$2::bigint)::int"
				: "SELECT pg_terminate_backend($1::int)::int",
			ver && atoi(ver) >= 140000 ? 2 : 1, p2, &ok, err);
		/* false: it ended on its own in between, or did not exit
		 * within wait (a warning on the server side). */
		if (rc == FP_OK && ok) {
			terminated++;
			if (json_array_size(pids) < MAX_PIDS_IN_STATE)
				json_array_append_new(pids,
						      json_integer(atoll(pid)));
		}
	}
	fp_rows_free(rows);
	fp_pg_close(pg);
	st = json_pack("{s:o,s:I,s:I,s:o}", "filter", filter, "matched",
		       (json_int_t)n, "terminated", (json_int_t)terminated,
		       "pids", pids);
	rc2 = fp_inj_state_set(ctx, st, rc ? NULL : err);
	if (rc)
		return fp_err_prefix(err, NAME ": terminated %lld of %zu, then: ",
				     (long long)terminated, n);
	FP_INFO("event=inject injector=" NAME " matched=%zu terminated=%lld", n,
		(long long)terminated);
	return rc2;
}

const struct fp_injector fp_injector_pg_terminate_backends = {
	.name = NAME,
	.summary = "terminate the PostgreSQL client sessions matching "
		   "application_name / usename / datname, never our own "
		   "(one-shot; reports how many)",
	.validate = validate,
	.apply = apply,
	.revert = NULL,
};
