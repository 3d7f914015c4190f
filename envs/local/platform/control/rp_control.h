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


/* ---- Additions (main.c, registry.c, cost.c) ------------------------------------------------
 * Everything below extends the interface above without changing it. */

#include <jansson.h>

/* @brief With pg_lock held: make sure c->pg is connected, reconnecting when the
 *        session died (a reconnect re-applies the session settings).
 * @returns 0, or -1 when PostgreSQL cannot be reached (logged). */
int rp_ctl_pg_ensure(struct rp_ctl *c);
/* @brief With pg_lock held: run one parameterised statement (text params,
 *        NULL = SQL NULL). @returns the result, or NULL on error (logged with
 *        `what`); the caller PQclear()s it. */
PGresult *rp_ctl_query(struct rp_ctl *c, const char *what, const char *sql, int nparams,
		       const char *const *params);
/* @brief Set rs to the JSON text of body (the reference is stolen). */
void rp_ctl_reply_json(struct rp_resp *rs, int status, json_t *body);
/* @brief Run one Redis command under redis_lock, (re)connecting first when the
 *        context is missing or dead. @returns the reply (freeReplyObject), or
 *        NULL when Redis is unreachable or the command failed on the wire. */
redisReply *rp_ctl_redis(struct rp_ctl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* @brief Append printf-formatted Prometheus text to a metrics buffer; output
 *        that does not fit is dropped whole (never a torn line). */
void rp_ctl_metric(char *buf, size_t bufsz, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* @brief Append s to a metrics buffer escaped as a Prometheus label value. */
void rp_ctl_metric_label(char *buf, size_t bufsz, size_t *len, const char *s);

/*
 * @brief Register a model version (POST /models, registry.c). req carries the
 *        §9 fields; the latency-regression defect applies here, so every
 *        registration path shows it. @returns the HTTP status (201, 400, 409,
 *        503) with a reason in err for anything but 201.
 */
int rp_registry_register(struct rp_ctl *c, const json_t *req, char *err, size_t errsz);

/* ---- Pure logic (no I/O), unit-tested in tests/platform/control -------------------------- */

/* Promotion gates (registry.c). A set bit is a failed gate. */
#define RP_GATE_REGISTERED 0x01   /* the version is in model_registry */
#define RP_GATE_APPROVAL 0x02     /* request.approval is a non-empty string */
#define RP_GATE_EVAL_REPORT 0x04  /* evidence.evaluation_report is a non-empty string */
#define RP_GATE_ARTIFACT 0x08     /* evidence.artifact_sha256 == registered artifact_sha256 */
#define RP_GATE_LINEAGE 0x10      /* run -> manifest -> code/config digests all present */
#define RP_GATE_COUNT 5

struct rp_gate_input {
	const char *registered_sha;     /* registry artifact_sha256; NULL = not registered */
	const char *approval;
	const char *evaluation_report;
	const char *evidence_sha;
	int lineage_claim;              /* evidence.lineage_complete: -1 absent, 0 false, 1 true */
	const char *training_run_id;    /* from the registry row */
	int training_run_found;         /* training_runs row exists */
	int manifest_found;             /* its dataset_manifests row exists */
	const char *code_digest, *config_digest;
	int skip_lineage;               /* the lineage-missing defect */
};
/* @returns the RP_GATE_* bits that failed (0 = every gate passed). */
unsigned rp_promotion_gates(const struct rp_gate_input *in);
/* @returns the name of one RP_GATE_* bit ("approval", "lineage", ...). */
const char *rp_gate_name(unsigned bit);

/* One non-refused promotion_ledger row, in ledger order. */
struct rp_ledger_entry {
	const char *action;   /* "promote" or "rollback" */
	const char *version;
};
/*
 * @brief Replay the ledger as a stack of active versions: a promote pushes
 *        (unless it re-promotes the top), a rollback pops back to the version
 *        it names. current = the top (what active_model shows), lkg = the entry
 *        below it (the version active before the current one was promoted),
 *        NULL when there is none. The pointers borrow from rows.
 * @returns 0, or -1 on allocation failure.
 */
int rp_ledger_lkg(const struct rp_ledger_entry *rows, size_t n, const char **current,
		  const char **lkg);

/* Cost arithmetic (cost.c), seed 004 §5.2.1: spend is measured in envelope units. */
double rp_cost_spend(long long events, long long retrains, double unit_cost_event,
		     double unit_cost_retrain);
/* @returns 1 when spend breaches the envelope (strictly greater). */
int rp_cost_breached(double spend, double envelope_units);
/* @returns how many whole windows of window_us lie in [start_us, now_us) (0 when
 *          now_us < start_us or window_us <= 0). Times are epoch microseconds so a window
 *          boundary written to PostgreSQL is exact. */
long long rp_cost_closed_windows(long long start_us, long long window_us, long long now_us);

/* The training run / dataset id of the registry's bootstrap lineage (registry.c). It is not a
 * retrain, so the cost guard does not charge for it. */
#define RP_BOOTSTRAP_ID "bootstrap"

#endif
