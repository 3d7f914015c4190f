/* rp_core: the pure, network-free logic of the reference platform (event validation, payload
 * hashing, features, the scoring model and its feature contract, the degrade ladder, the
 * ingress token bucket, Prometheus text rendering, traceparent parsing, logging, defect names).
 * The services keep their I/O in ingress.c / decider.c and their decisions here. It lives in
 * its own library so the unit tests exercise exactly the code both executables run. Nothing
 * here may include harness headers: the platform shares only the contract with the harness. */
#ifndef RP_CORE_H
#define RP_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define RP_TOPIC "fp.bus.traffic.fraud.v1"
#define RP_TOPIC_PARTITIONS 6
#define RP_GROUP "fp-decision"
#define RP_MAX_BODY (1024u * 1024u)

/* ---- defects ---------------------------------------------------------------------------- */
/* Every name of the contract's defect table (section 12). A process acts only on the ones that
 * concern it and ignores the others, so one --defect flag can be passed to all three. */
typedef enum {
  RP_DEFECT_NONE = 0,
  RP_DEFECT_DEDUPE_OFF,          /* ingress + decider */
  RP_DEFECT_CASE_DUP,            /* decider */
  RP_DEFECT_COMMIT_BEFORE_WRITE, /* decider */
  RP_DEFECT_QUARANTINE_DROP,     /* ingress */
  RP_DEFECT_DEGRADE_UNFLAGGED,   /* decider */
  RP_DEFECT_SLOW_DRAIN,          /* decider */
  RP_DEFECT_SKEW_SILENT,         /* decider */
  RP_DEFECT_ROLLBACK_NOOP,       /* rp-control */
  RP_DEFECT_LINEAGE_MISSING,     /* rp-control */
  RP_DEFECT_GUARD_NEVER_TRIPS,   /* rp-control */
  RP_DEFECT_LEAK_ACCEPTED,       /* rp-control */
  RP_DEFECT_DRIFT_BLIND,         /* rp-control */
  RP_DEFECT_LATENCY_REGRESSION,  /* rp-control */
  RP_DEFECT_COUNT
} rp_defect;
/* Returns false for a name the platform does not know (callers exit 2). */
bool rp_defect_parse(const char *name, rp_defect *out);
const char *rp_defect_name(rp_defect d);

/* ---- event validation ------------------------------------------------------------------- */
typedef enum {
  RP_OK = 0,
  RP_MALFORMED_JSON,
  RP_MISSING_FIELD,
  RP_WRONG_TYPE,
  RP_UNSUPPORTED_VERSION,
  RP_OVERSIZE, /* never returned by rp_event_parse: the ingress refuses the body before parsing */
  RP_REASON_COUNT
} rp_reason;
const char *rp_reason_name(rp_reason r);

/* A validated event. The string pointers borrow from `root`; rp_event_free releases it. */
typedef struct {
  json_t *root;
  json_t *payload;
  const char *schema_version, *platform_run_id, *event_class, *event_id;
  const char *scenario_run_id, *phase_id, *runtime_lane; /* NULL when absent */
  const char *account_id;
  const char *device_id; /* schema 1.1 and later; NULL when absent */
  long long amount_minor;
  char payload_hash[65];
} rp_event;

/* Parses and validates one event body against the contract (schema 1.x). On failure `ev` is
 * left empty and `detail` names the offending field. */
rp_reason rp_event_parse(const char *body, size_t len, rp_event *ev, char *detail, size_t dsz);
void rp_event_free(rp_event *ev);

/* The dedupe tuple of a body that may be invalid, for its quarantine row: each member is taken
 * from the body when it is a string there, else from the matching fallback (the X-* request
 * headers), else NULL. payload_hash is set ("" otherwise) when the body has an object payload.
 * Members are malloc'd; rp_tuple_free releases them. */
typedef struct {
  char *platform_run_id, *event_class, *event_id;
  char payload_hash[65];
} rp_tuple;
void rp_tuple_peek(const char *body, size_t len, const char *fb_run, const char *fb_class,
                   const char *fb_event, rp_tuple *t);
void rp_tuple_free(rp_tuple *t);

/* ---- hashing ---------------------------------------------------------------------------- */
void rp_sha256_hex(const void *data, size_t len, char out[65]);
/* SHA-256 of the payload dumped with JSON_COMPACT|JSON_SORT_KEYS; false on allocation failure. */
bool rp_payload_hash(const json_t *payload, char out[65]);

/* ---- features (contract section 8.1) ---------------------------------------------------- */
typedef enum {
  RP_F_AMOUNT = 0,
  RP_F_ECOM,
  RP_F_FOREIGN,
  RP_F_MERCHANT_RISK,
  RP_F_TXN_COUNT_24H, /* the only online feature: Redis fp:feat:<account_id> */
  RP_NFEAT
} rp_feature;
extern const char *const rp_feature_names[RP_NFEAT];
/* True for the features served by the feature store; the fallback model zeroes their weights. */
bool rp_feature_is_online(rp_feature f);

typedef struct {
  double x[RP_NFEAT];
  bool present[RP_NFEAT]; /* an absent feature is not served: weight irrelevant, not logged */
} rp_features;

/* Fills the event features from the payload; the online ones are left absent. */
void rp_features_from_payload(const json_t *payload, rp_features *f);
/* {"amount":...,...} with absent features omitted; NULL on allocation failure. */
json_t *rp_features_json(const rp_features *f);

/* ---- scoring model ---------------------------------------------------------------------- */
#define RP_MODEL_BUILTIN_VERSION "m-fixed-2026.11.0"
#define RP_CONTRACT_MAX 16
typedef struct {
  char name[48];
  double min, max; /* -inf / +inf when the contract leaves a side open */
} rp_contract_item;

typedef struct {
  char version[128];
  char bundle_digest[80];
  double bias, w[RP_NFEAT];
  int extra_latency_ms;
  size_t n_contract;
  rp_contract_item contract[RP_CONTRACT_MAX];
} rp_model;

/* The built-in model's weights, in the same JSON form the registry stores. */
extern const char rp_model_builtin_weights[];
/* The model used when platform.active_model does not exist or is empty; its bundle_digest is
 * the sha256 of rp_model_builtin_weights. */
void rp_model_builtin(rp_model *m);
/* Builds a model from registry weights JSON ({"bias":b,"amount":w1,...}). `bias` is required,
 * a missing feature weight is 0, a non-numeric one is an error. bundle_digest NULL or empty
 * means the sha256 of the weights text. False (with err) on a malformed spec. */
bool rp_model_from_json(const char *version, const char *weights_json, const char *bundle_digest,
                        int extra_latency_ms, rp_model *m, char *err, size_t esz);
/* Replaces the model's feature contract from the registry's JSON array of
 * {name,type,min,max,scale}; NULL or "null" clears it. False (with err) when malformed. */
bool rp_model_set_contract(rp_model *m, const char *contract_json, char *err, size_t esz);
/* Index of the first served feature outside its contract range, or -1. */
int rp_contract_check(const rp_model *m, const rp_features *f);
/* sigmoid(bias + sum w_i x_i) over the present features; with `fallback` the online features'
 * weights count as 0 (the fallback model of the degrade ladder). */
double rp_model_score(const rp_model *m, const rp_features *f, bool fallback);
const char *rp_model_outcome(double score);
#define RP_CASE_THRESHOLD 0.8

/* ---- degrade ladder (contract section 8) ------------------------------------------------ */
typedef enum {
  RP_FEAT_OK = 0,       /* Redis answered with the value */
  RP_FEAT_MISSING,      /* Redis answered: no key or no field; counts as txn_count_24h = 0 */
  RP_FEAT_TIMEOUT,      /* no answer within the budget */
  RP_FEAT_UNAVAILABLE,  /* connection refused, reset or a Redis error */
} rp_feat_status;

typedef struct {
  const char *ctl_reason; /* value of fp:ctl:degrade, NULL when unset */
  rp_feat_status feat;
  double feat_ms, budget_ms; /* an answer later than the budget is a timeout too */
  bool contract_violation;
  rp_defect defect;
} rp_degrade_in;

typedef struct {
  bool fallback;          /* score with the fallback model */
  bool flagged;           /* degraded = true on the decision row */
  const char *reason;     /* degrade_reason; NULL when not flagged */
} rp_degrade_out;

rp_degrade_out rp_degrade_decide(const rp_degrade_in *in);
/* Whether moving from the flagged reason `prev` to `next` (NULL = normal) is a posture change,
 * and the row to write: kind "skew" for feature_contract_violation else "degrade", action
 * "enter" or "exit". */
bool rp_posture_change(const char *prev, const char *next, const char **kind,
                       const char **action);

/* ---- rate limit ------------------------------------------------------------------------- */
/* Token bucket; not locked (the ingress holds a mutex around it). Times are seconds. */
typedef struct {
  double tokens, rate, cap, last;
} rp_bucket;
void rp_bucket_init(rp_bucket *b, double rate, double cap, double now);
/* Changes rate and capacity, keeping the tokens already earned (clamped to the new cap). */
void rp_bucket_set(rp_bucket *b, double rate, double cap, double now);
bool rp_bucket_take(rp_bucket *b, double now);

/* ---- Prometheus text exposition --------------------------------------------------------- */
typedef struct {
  char *s;
  size_t len, cap;
  bool oom;
} rp_buf;
void rp_buf_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `v` escaped as a label value (backslash, quote, newline). */
void rp_buf_label(rp_buf *b, const char *v);
void rp_buf_free(rp_buf *b);

#define RP_LAT_NBUCKETS 11
extern const double rp_latency_buckets[RP_LAT_NBUCKETS];
typedef struct {
  unsigned long long le[RP_LAT_NBUCKETS]; /* non-cumulative counts per bucket */
  unsigned long long count;
  double sum;
} rp_hist;
void rp_hist_observe(rp_hist *h, double seconds);
void rp_hist_render(rp_buf *b, const char *name, const char *help, const rp_hist *h);

/* ---- W3C traceparent -------------------------------------------------------------------- */
/* Extracts the trace id (32 lowercase hex) from a traceparent; false if it is invalid. */
bool rp_traceparent_parse(const char *tp, char trace_id[33], char parent_id[17]);

/* ---- misc ------------------------------------------------------------------------------- */
/* CLOCK_MONOTONIC in seconds, for budgets and rates. */
double rp_mono_s(void);
/* UTC ISO-8601 with milliseconds, e.g. 2026-11-23T18:22:01.130Z */
void rp_now_iso8601(char out[32]);
/* Logfmt line on stderr: ts=... level=LEVEL followed by the formatted fields (msg=...). */
void rp_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "host:port" -> parts; false on a malformed address. */
bool rp_split_hostport(const char *s, char *host, size_t hsz, int *port);

#endif
