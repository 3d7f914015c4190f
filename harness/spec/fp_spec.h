/*
 * fp_spec.h - scenario spec v1 and env profile v1: the in-memory model and
 * the loaders.
 *
 * A scenario names abstract actions ("pause_decisions") and observables
 * ("decision_group"); an env profile binds them to concrete HTTP calls,
 * commands, topics, groups and tables. Loading validates everything that can
 * be checked without touching the target: unknown keys, wrong types, bad
 * durations, dangling references and unbound actions are FP_ESPEC errors
 * whose message starts with "file:line:col: " and says what was expected.
 * The reference of every key, type and default is docs/spec-reference.md.
 *
 * Ownership: every pointer inside struct fp_env / struct fp_scenario is owned
 * by that struct and freed by fp_env_free() / fp_scenario_free(). Secret
 * fields hold the env:/file: reference, never the value.
 */
#ifndef FP_SPEC_H
#define FP_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "harness/core/fp_error.h"

/* Where a value came from, for messages; file is borrowed from the owner. */
struct fp_mark {
	const char *file;
	int line; /* 1-based; 0 when unknown (e.g. from --set) */
	int col;
};

/* A string-to-string entry: params, with: arguments, observables, headers. */
struct fp_kv {
	char *key;
	char *value;
	struct fp_mark mark;
};

struct fp_kvlist {
	struct fp_kv *items;
	size_t n;
};

/* @returns the value for key or NULL; borrowed from the list. */
const char *fp_kv_get(const struct fp_kvlist *l, const char *key);
const struct fp_kv *fp_kv_find(const struct fp_kvlist *l, const char *key);

/* ---- env profile (fpdrill: env/v1) ------------------------------------ */

enum fp_env_class {
	FP_ENV_LOCAL,
	FP_ENV_DEV,
	FP_ENV_STAGING,
	FP_ENV_PRODUCTION,
};

enum fp_action_kind {
	FP_ACTION_HTTP,
	FP_ACTION_COMMAND,
};

struct fp_action {
	char *name;
	enum fp_action_kind kind;
	/* http */
	char *method;            /* default "POST" */
	char *url;
	char *body;              /* may be NULL */
	struct fp_kvlist headers;
	int expect_status;       /* default 200; any 2xx when 0 */
	/* command */
	char **argv;             /* NULL-terminated */
	size_t argc;
	/* both */
	int64_t timeout_ns;      /* default 30s */
	struct fp_mark mark;
};

/*
 * A sampler turns something observable into a number every sample period:
 *   kafka_lag  : {group, topic}            total lag of a consumer group
 *   sql        : {query}                   one number; $1 = platform_run_id,
 *                                          $2 = event_class (both optional)
 *   http       : {url, expect, timeout}    1 when the status matches, else 0
 *                                          (its latency is a second series
 *                                          "<name>.latency_ms")
 *   prometheus : {url, metric}             value of one sample; metric is a
 *                                          name with optional {label="v",...}
 *                                          matcher; summed over matches
 * The implicit sampler "decision_group_lag" (kafka_lag over the
 * decision_group and traffic_topic observables) always exists.
 */
enum fp_sampler_kind {
	FP_SAMPLER_KAFKA_LAG,
	FP_SAMPLER_SQL,
	FP_SAMPLER_HTTP,
	FP_SAMPLER_PROMETHEUS,
};

struct fp_sampler {
	char *name;
	enum fp_sampler_kind kind;
	char *group;          /* kafka_lag */
	char *topic;          /* kafka_lag */
	char *query;          /* sql */
	char *url;            /* http, prometheus */
	char *metric;         /* prometheus */
	int expect_status;    /* http, default 200 */
	int64_t timeout_ns;   /* http, prometheus; default 2s */
	struct fp_mark mark;
};

/* Blast-radius limits and the production guard (env profile "safety:"). */
struct fp_safety {
	char **allow_scenarios;      /* scenario ids allowed on this profile */
	size_t n_allow_scenarios;
	double max_rate;             /* events/s incl. bursts; 0 = no limit */
	int64_t max_duration_ns;     /* whole run; 0 = no limit */
	double max_partition_share;  /* (0,1]; 0 = no limit */
	double max_instance_share;   /* (0,1]; 0 = no limit */
};

/*
 * target.kafka.aws_msk_iam reaches every librdkafka handle as properties:
 * security.protocol SASL_SSL (unless set), sasl.mechanism OAUTHBEARER and
 * sasl.oauthbearer.config = FP_MSK_IAM_TAG " region=R access_key_id=REF
 * secret_access_key=REF session_token=REF" (env:/file: references, file:
 * paths absolute), which fp_kafka_conf_apply (harness/backend) turns into a
 * token refresh callback.
 */
#define FP_MSK_IAM_TAG "fpdrill:aws_msk_iam"

/* Most PostgreSQL connections a run's checks judge on at once. */
#define FP_JUDGE_MAX_CONNECTIONS 8

struct fp_env {
	char *path;                  /* as given */
	char *dir;                   /* directory of path; base for relative paths */
	char *name;
	enum fp_env_class env_class;
	/* identity stamped on every event; may contain ${run.id} */
	char *platform_run_id;       /* default "fpd-${run.id}" */
	char *event_class;           /* default "transaction" */
	char *runtime_lane;          /* default "drill" */
	/* target */
	char *ingress_url;           /* full URL of POST /v1/events */
	char *kafka_bootstrap;
	struct fp_kvlist kafka_props;  /* extra librdkafka properties */
	char *pg_conninfo;           /* libpq conninfo without password */
	char *pg_password_ref;       /* env:/file: reference or NULL */
	/* connections the checks judge on at once, 1..8, default 2 */
	int pg_judge_connections;
	/* observables: traffic_topic, decision_group, decision_log, cases, ... */
	struct fp_kvlist observables;
	struct fp_action *actions;
	size_t n_actions;
	/* reports */
	char *out_dir;               /* default "fpdrill-out", relative to cwd */
	int s3_enabled;
	char *s3_endpoint;           /* http(s)://host:port */
	char *s3_bucket;
	char *s3_region;             /* default "us-east-1" */
	char *s3_prefix;             /* default "fpdrill" */
	char *s3_access_key_ref;
	char *s3_secret_key_ref;
	char *signing_key_ref;       /* HMAC key for manifest.json; may be NULL */
	/* KEY=VALUE pairs read from env_file (empty without one). They supply
	 * ${env:KEY} here and in scenarios loaded against this profile; the
	 * process environment overrides them. */
	struct fp_kvlist env_vars;
	/* samplers: named time series sampled during every run (v1.1) */
	struct fp_sampler *samplers;
	size_t n_samplers;
	int64_t sample_every_ns;     /* samplers.every, default 250ms, 50ms..10s */
	struct fp_safety safety;
};

/* @returns the action bound to name, or NULL; borrowed from env. */
const struct fp_action *fp_env_action(const struct fp_env *env,
				      const char *name);
const char *fp_env_class_name(enum fp_env_class c);

/* ---- scenario (fpdrill: scenario/v1) ---------------------------------- */

enum fp_channel {
	FP_CHANNEL_HTTP,
	FP_CHANNEL_KAFKA,
};

/* Kinds of events a load can send; the ledger's "expect" column names them. */
#define FP_EVENT_KIND_MAP(XX)                                             \
	XX(VALID, "valid")                   /* schema 1.0, decided */       \
	XX(COMPATIBLE, "compatible")         /* schema 1.1 + optional field, decided */ \
	XX(MISSING_FIELD, "missing_field")   /* quarantined */               \
	XX(WRONG_TYPE, "wrong_type")         /* quarantined */               \
	XX(UNSUPPORTED_VERSION, "unsupported_version") /* quarantined */     \
	XX(MALFORMED_JSON, "malformed_json") /* quarantined */               \
	XX(OVERSIZE, "oversize")             /* > 1 MiB body: 413 */         \
	XX(HASH_CONFLICT, "hash_conflict")   /* same identity, other payload: 409 */

enum fp_event_kind {
#define FP_EVENT_KIND_ENUM(sym, name) FP_EVENT_##sym,
	FP_EVENT_KIND_MAP(FP_EVENT_KIND_ENUM)
#undef FP_EVENT_KIND_ENUM
	FP_EVENT_KIND_COUNT
};

/* @returns "valid", "missing_field", ... */
const char *fp_event_kind_name(enum fp_event_kind k);

/* A burst multiplies the arrival rate for a while (seed 000 A.3.2). */
struct fp_burst {
	int64_t at_ns;            /* offset from the load phase start */
	int64_t duration_ns;
	double multiplier;        /* > 0 */
	int ramp;                 /* 0 step, 1 linear ramp up and down */
	int64_t ramp_ns;          /* ramp time when ramp (default duration/4) */
};

struct fp_load_spec {
	int enabled;              /* a load: block was given */
	enum fp_channel channel;  /* default http */
	double rate;              /* events per second, > 0 */
	uint64_t seed;            /* default 1 */
	int concurrency;          /* max in-flight requests, default 64 */
	int accounts;             /* distinct account ids, default 1000 */
	double retry_share;       /* share of events re-sent with the same identity, [0,1] */
	int64_t retry_delay_ns;   /* delay of the re-send after the original completed, default 200ms */
	double high_value_share;  /* share of events with high amounts (cases), default 0.1 */
	int64_t timeout_ns;       /* per-request timeout, default 10s */
	/* ramp: linear arrival rate from ramp_from to ramp_to over
	 * ramp_over_ns from each load phase's start, then ramp_to (v1.1);
	 * ramp_over_ns == 0 means no ramp (constant rate). */
	double ramp_from;
	double ramp_to;
	int64_t ramp_over_ns;
	struct fp_burst *bursts;
	size_t n_bursts;
	/* event mix: shares per kind, normalised to sum 1 by the loader;
	 * default {valid: 1} */
	double mix[FP_EVENT_KIND_COUNT];
	char *kafka_topic;        /* channel kafka: topic to produce to */
};

enum fp_step_kind {
	FP_STEP_ACTION,   /* action: NAME [revert: NAME] [as: ID] */
	FP_STEP_INJECT,   /* inject: INJECTOR with: {...} [as: ID] */
	FP_STEP_REVERT,   /* revert: ID (undo an earlier step now) */
	FP_STEP_WAIT,     /* wait: DURATION */
};

struct fp_step {
	enum fp_step_kind kind;
	char *action;         /* ACTION: bound action name */
	char *revert_action;  /* ACTION: bound action that undoes it, or NULL */
	char *injector;       /* INJECT: injector name */
	struct fp_kvlist with;/* INJECT: arguments (strings, already resolved) */
	char *as;             /* ACTION/INJECT: id for a later revert, or NULL */
	char *revert_ref;     /* REVERT: id of the earlier step */
	int64_t wait_ns;      /* WAIT */
	struct fp_mark mark;
};

enum fp_cmp { FP_CMP_LT, FP_CMP_LE, FP_CMP_EQ, FP_CMP_GE, FP_CMP_GT };

/* Wait until an observable satisfies "op value" continuously for hold. */
struct fp_until {
	char *observable;     /* e.g. decision_group_lag */
	enum fp_cmp op;
	double value;
	int64_t hold_ns;      /* default 0 */
	int64_t timeout_ns;   /* required */
};

struct fp_phase {
	char *id;
	int64_t duration_ns;  /* 0 = as long as its steps / until take */
	int load;             /* run the load generator during this phase */
	char *mark;           /* record offsets etc. at phase start under this name, or NULL */
	struct fp_step *steps;
	size_t n_steps;
	int has_until;
	struct fp_until until;
	struct fp_mark where;
};

struct fp_check {
	char *invariant;      /* name in the invariant table */
	struct fp_kvlist with;
	struct fp_mark mark;
};

enum fp_bound_kind {
	FP_BOUND_MEASURE,     /* measure: "phase_duration:<phase>" */
	FP_BOUND_RECOVERY,    /* recovery: {observable, op, value, hold, after} */
	FP_BOUND_LATENCY,     /* latency: {percentile, of: corrected|service} */
};

struct fp_bound {
	char *name;
	enum fp_bound_kind kind;
	char *measure;        /* MEASURE: e.g. "phase_duration:drain" */
	/* RECOVERY: first time after "after" at which observable op value
	 * holds and keeps holding for hold; "after" is "phase:<id>" (that
	 * phase's start) or "revert:<as-id>" (when that fault was reverted) */
	struct fp_until recovery;   /* timeout_ns unused */
	char *after;
	/* LATENCY */
	double percentile;    /* (0,100] */
	int service_time;     /* 0 corrected (from intended), 1 service */
	int64_t limit_ns;
	struct fp_mark mark;
};

/* Abort, revert and exit 4 when observable op value holds for for_ns. */
struct fp_stop_condition {
	char *text;           /* as written, for the report */
	char *observable;
	enum fp_cmp op;
	double value;
	int64_t for_ns;       /* default 0: at the first sample */
	struct fp_mark mark;
};

struct fp_scenario {
	char *path;
	char *id;             /* "DR-02" */
	char *title;
	char *description;
	char *expected;       /* expected behaviour, prose */
	char **claims;        /* e.g. "T0.3" */
	size_t n_claims;
	char **covers;        /* failure modes, e.g. "FM-IG-01" */
	size_t n_covers;
	struct fp_kvlist params;  /* after --set overrides */
	struct fp_load_spec load;
	struct fp_phase *phases;
	size_t n_phases;
	struct fp_check *checks;
	size_t n_checks;
	struct fp_bound *bounds;
	size_t n_bounds;
	struct fp_stop_condition *stop_conditions;
	size_t n_stop_conditions;
	char **followups;
	size_t n_followups;
};

/* Names the loader accepts for inject: and invariant:; supplied by the
 * caller so the spec module does not depend on the plugin tables. */
struct fp_spec_names {
	int (*has_injector)(const char *name);
	int (*has_invariant)(const char *name);
};

/*
 * @brief Load and validate an env profile.
 * @param out set on success; caller frees with fp_env_free().
 * @returns FP_OK, FP_ESPEC (message "file:line:col: ..."), FP_EIO.
 */
int fp_env_load(const char *path, struct fp_env **out, struct fp_err *err);
void fp_env_free(struct fp_env *env);

/*
 * @brief Load and validate a scenario against an env profile.
 * @param env may be NULL (validate only: ${obs.*} and actions unchecked).
 * @param sets "key=value" overrides of params (from --set), may be NULL.
 * @param names plugin names for validation, may be NULL (not checked).
 * @param out set on success; caller frees with fp_scenario_free().
 */
int fp_scenario_load(const char *path, const struct fp_env *env,
		     const char *const *sets, size_t nsets,
		     const struct fp_spec_names *names,
		     struct fp_scenario **out, struct fp_err *err);
void fp_scenario_free(struct fp_scenario *sc);

#endif
