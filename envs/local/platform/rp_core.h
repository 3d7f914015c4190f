/* rp_core: the pure, network-free logic of the reference platform (event validation, payload
 * hashing, the scoring model, traceparent parsing, logging, defect names). It lives in its own
 * library so the unit tests exercise exactly the code both executables run. Nothing here may
 * include harness headers: the platform shares only the contract with the harness. */
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
typedef enum { RP_DEFECT_NONE = 0, RP_DEFECT_DEDUPE_OFF, RP_DEFECT_CASE_DUP } rp_defect;
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
} rp_reason;
const char *rp_reason_name(rp_reason r);

/* A validated event. The string pointers borrow from `root`; rp_event_free releases it. */
typedef struct {
  json_t *root;
  json_t *payload;
  const char *schema_version, *platform_run_id, *event_class, *event_id;
  const char *scenario_run_id, *phase_id, *runtime_lane; /* NULL when absent */
  const char *account_id;
  long long amount_minor;
  char payload_hash[65];
} rp_event;

/* Parses and validates one event body against the contract (schema 1.x). On failure `ev` is
 * left empty and `detail` names the offending field. */
rp_reason rp_event_parse(const char *body, size_t len, rp_event *ev, char *detail, size_t dsz);
void rp_event_free(rp_event *ev);

/* ---- hashing ---------------------------------------------------------------------------- */
void rp_sha256_hex(const void *data, size_t len, char out[65]);
/* SHA-256 of the payload dumped with JSON_COMPACT|JSON_SORT_KEYS; false on allocation failure. */
bool rp_payload_hash(const json_t *payload, char out[65]);

/* ---- scoring model ---------------------------------------------------------------------- */
typedef struct {
  char version[64];
  double bias, w_amount, w_ecom, w_foreign, w_merchant;
  char bundle_digest[65]; /* sha256 of the spec string the weights were parsed from */
} rp_model;

extern const char rp_model_spec[];
/* Parses a weight spec; false when a weight is missing or malformed. */
bool rp_model_load(const char *spec, rp_model *m);
double rp_model_score(const rp_model *m, const json_t *payload);
const char *rp_model_outcome(double score);
#define RP_CASE_THRESHOLD 0.8

/* ---- W3C traceparent -------------------------------------------------------------------- */
/* Extracts the trace id (32 lowercase hex) from a traceparent; false if it is invalid. */
bool rp_traceparent_parse(const char *tp, char trace_id[33], char parent_id[17]);

/* ---- misc ------------------------------------------------------------------------------- */
/* UTC ISO-8601 with milliseconds, e.g. 2026-11-23T18:22:01.130Z */
void rp_now_iso8601(char out[32]);
/* Logfmt line on stderr: ts=... level=LEVEL followed by the formatted fields (msg=...). */
void rp_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "host:port" -> parts; false on a malformed address. */
bool rp_split_hostport(const char *s, char *host, size_t hsz, int *port);

#endif
