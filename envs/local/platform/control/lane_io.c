/*
 * lane_io.c - I/O helpers of the learning lane and drift monitor
 * (lane_io.h). Connection handling stays main.c's (rp_ctl_pg_ensure); this
 * adds what the handlers need on top: SQLSTATE-tagged errors and JSON
 * request parsing with uniform error replies.
 */
#include "lane_io.h"

#include <stdio.h>
#include <string.h>

#include "rp_core.h"

PGresult *lane_pg_locked(struct rp_ctl *c, const char *sql, int nparams,
			 const char *const *params, char *err, size_t errsz)
{
	if (err && errsz)
		err[0] = '\0';
	if (rp_ctl_pg_ensure(c) != 0) {
		if (err)
			snprintf(err, errsz, "[08006] PostgreSQL unreachable");
		return NULL;
	}
	PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char line[512];
	/* The SQLSTATE leads so callers can tell bad input (class 22/23)
	 * from a server fault without parsing prose. */
	snprintf(line, sizeof line, "[%s] %s", state ? state : "08006",
		 msg && *msg ? msg : "connection lost");
	line[strcspn(line, "\n")] = '\0';
	if (err)
		snprintf(err, errsz, "%s", line);
	rp_log("warn", "msg=lane_sql_failed err=\"%s\"", line);
	PQclear(r);
	return NULL;
}

PGresult *lane_pg(struct rp_ctl *c, const char *sql, int nparams,
		  const char *const *params, char *err, size_t errsz)
{
	pthread_mutex_lock(&c->pg_lock);
	PGresult *r = lane_pg_locked(c, sql, nparams, params, err, errsz);
	pthread_mutex_unlock(&c->pg_lock);
	return r;
}

int lane_pg_input_error(const char *err)
{
	return err && (strncmp(err, "[22", 3) == 0 || strncmp(err, "[23", 3) == 0);
}

int lane_pg_ddl(struct rp_ctl *c, const char *const *stmts)
{
	for (size_t i = 0; stmts[i]; i++)
		if (rp_ctl_exec(c, stmts[i]) != 0)
			return -1;
	return 0;
}

void lane_reply_error(struct rp_resp *rs, int status, const char *reason,
		      const char *detail)
{
	rp_ctl_reply_json(rs, status, json_pack("{s:s,s:s,s:s}", "status", "error",
						"reason", reason, "detail", detail ? detail : ""));
}

json_t *lane_body(const struct rp_req *rq, struct rp_resp *rs)
{
	json_error_t je;
	json_t *j = json_loadb(rq->body ? rq->body : "", rq->body_len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		lane_reply_error(rs, 400, "malformed_json", j ? "body is not an object" : je.text);
		return NULL;
	}
	return j;
}
