/*
 * rp_control.h - shared by the modules of rp-control, the reference
 * platform's control plane (docs/platform-contract.md part 2, §9).
 *
 * main.c owns the process: flags, the HTTP server, the PostgreSQL and Redis
 * connections and a 1 s ticker. Each module (registry.c, cost.c, audit.c,
 * learning.c, drift.c, ...) contributes a NULL-terminated route table, an
 * init function that creates its tables, and optionally a tick function.
 * main.c lists the modules in one table, so adding a module is one file plus
 * one line there.
 */
#ifndef RP_CONTROL_H
#define RP_CONTROL_H

#include <hiredis.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

struct rp_ctl {
	PGconn *pg;              /* guarded by pg_lock */
	pthread_mutex_t pg_lock;
	redisContext *redis;     /* guarded by redis_lock; may need reconnect */
	pthread_mutex_t redis_lock;
	const char *redis_host;
	int redis_port;
	const char *defect;      /* "none" or a defect name (contract §12) */
};

struct rp_req {
	const char *method;      /* "GET", "POST" */
	const char *path;        /* "/promote", "/audit/decision/42" */
	const char *body;        /* NUL-terminated request body, "" if none */
	size_t body_len;
};

struct rp_resp {
	int status;              /* HTTP status */
	char *body;              /* malloc'd JSON text, freed by main.c */
};

typedef void (*rp_route_fn)(struct rp_ctl *c, const struct rp_req *rq,
			    struct rp_resp *rs);

struct rp_route {
	const char *method;
	const char *path;        /* exact path, or a prefix when it ends in '/' */
	rp_route_fn fn;
};

struct rp_module {
	const char *name;
	const struct rp_route *routes;           /* ends with {NULL, NULL, NULL} */
	int (*init)(struct rp_ctl *c);           /* create tables; 0 = ok */
	void (*tick)(struct rp_ctl *c);          /* every second, may be NULL */
	/* Append Prometheus text lines for /metrics, may be NULL. */
	void (*metrics)(struct rp_ctl *c, char *buf, size_t bufsz, size_t *len);
};

/* Helpers main.c provides. */
/* @brief Run SQL (no result) under pg_lock; returns 0 or -1 (logged). */
int rp_ctl_exec(struct rp_ctl *c, const char *sql);
/* @brief Set rs to a JSON reply built with printf formatting. */
void rp_ctl_reply(struct rp_resp *rs, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* @returns 1 when the process runs with the named defect. */
int rp_ctl_defect(const struct rp_ctl *c, const char *name);
/* @brief Append a posture_events row (kind, severity, reason, action). */
int rp_ctl_posture(struct rp_ctl *c, const char *kind, const char *severity,
		   const char *reason, const char *action,
		   const char *model_version, const char *details_json);

/*
 * @brief Make the last known good version active again (registry.c); used by
 *        POST /rollback and by the drift monitor's rollback mitigation.
 * @returns 0, or -1 with a reason in err.
 */
int rp_registry_rollback(struct rp_ctl *c, const char *actor,
			 const char *reason, char *err, size_t errsz);

/* The modules, defined in their own files. */
extern const struct rp_module rp_module_registry;  /* registry.c: models, promote, rollback */
extern const struct rp_module rp_module_audit;     /* audit.c */
extern const struct rp_module rp_module_cost;      /* cost.c: budget, guard, receipts */
extern const struct rp_module rp_module_learning;  /* learning.c: labels, datasets, train, features */
extern const struct rp_module rp_module_drift;     /* drift.c: PSI monitor */

#endif
