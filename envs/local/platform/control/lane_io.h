/*
 * lane_io.h - the few I/O helpers learning.c and drift.c need beyond what
 * main.c provides in rp_control.h: a parameterised query that reports the
 * SQLSTATE (so a handler can tell bad input from a server fault), DDL lists
 * and JSON request/error plumbing.
 */
#ifndef RP_LANE_IO_H
#define RP_LANE_IO_H

#include <jansson.h>

#include "rp_control.h"

/*
 * @brief Run one parameterised statement (NULL param = SQL NULL); the caller
 *        holds pg_lock. Reconnects through rp_ctl_pg_ensure() first.
 * @returns the result when it succeeded (caller PQclear()s), else NULL with
 *          "[SQLSTATE] message" in err (when err is not NULL) and a log line.
 */
PGresult *lane_pg_locked(struct rp_ctl *c, const char *sql, int nparams,
			 const char *const *params, char *err, size_t errsz);
/* @brief lane_pg_locked() under pg_lock. */
PGresult *lane_pg(struct rp_ctl *c, const char *sql, int nparams,
		  const char *const *params, char *err, size_t errsz);
/* @returns 1 when err (from lane_pg*) names a client-side data error. */
int lane_pg_input_error(const char *err);
/* @brief Run a NULL-terminated DDL list (module init: main.c holds the
 *        schema advisory lock around it). @returns 0 or -1. */
int lane_pg_ddl(struct rp_ctl *c, const char *const *stmts);

/* @brief Reply {"status":"error","reason":reason,"detail":detail}. */
void lane_reply_error(struct rp_resp *rs, int status, const char *reason,
		      const char *detail);
/* @brief Parse the request body as a JSON object; replies 400 and returns NULL. */
json_t *lane_body(const struct rp_req *rq, struct rp_resp *rs);

#endif
