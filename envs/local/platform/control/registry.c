/* registry.c (rp_module_registry): the model registry and the governed promotion corridor
 * (contract §9, §10; seed T0.1, FM-PR-01, DR-01). Versions are registered append-only; a
 * promotion passes fail-closed gates (approval, evaluation report, artifact checksum, complete
 * lineage) or is refused with a ledger row and no state change; a rollback restores the last
 * known good version. The promotion ledger is the single source of truth for what is active:
 * platform.active_model is a view over it, so the decider, the audit chain and a drill all read
 * the same answer, and there is no mutable "current" flag that could disagree with history.
 *
 * Planted defects (contract §12):
 *   rollback-noop       the rollback row is written with its two version columns swapped (the
 *                       current version as `version`, the restored one as `previous_version`),
 *                       an argument-order slip; the reply still names the restored version,
 *                       but the view follows `version`, so the active model never changes.
 *   lineage-missing     the promotion corridor skips its lineage gate, so a version without a
 *                       training run can go live and its decisions have no audit chain.
 *   latency-regression  registration stores extra_latency_ms = 50 for every new version.
 */
#include "rp_control.h"
#include "rp_core.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RP_REGRESSION_LATENCY_MS 50
#define RP_MAX_EXTRA_LATENCY_MS 10000

/* The weight names of contract §8, in the order the decider documents them. */
static const char *const weight_names[] = {"bias", "amount", "ecom", "foreign", "merchant_risk",
                                           "txn_count_24h"};
#define RP_NWEIGHTS (sizeof weight_names / sizeof weight_names[0])

/* ---- pure logic ----------------------------------------------------------------------- */

static bool nonempty(const char *s) { return s && *s; }

unsigned rp_promotion_gates(const struct rp_gate_input *in) {
  unsigned failed = 0;
  if (!in->registered_sha) failed |= RP_GATE_REGISTERED;
  if (!nonempty(in->approval)) failed |= RP_GATE_APPROVAL;
  if (!nonempty(in->evaluation_report)) failed |= RP_GATE_EVAL_REPORT;
  /* An unregistered version has no checksum to match: the gate fails rather than passes. */
  if (!nonempty(in->registered_sha) || !nonempty(in->evidence_sha) ||
      strcmp(in->registered_sha, in->evidence_sha) != 0)
    failed |= RP_GATE_ARTIFACT;
  if (!in->skip_lineage) {
    /* Every link must exist; a caller's own claim of incomplete lineage is honoured too, but
     * a claim of completeness is never taken on trust. */
    bool ok = nonempty(in->training_run_id) && in->training_run_found && in->manifest_found &&
              nonempty(in->code_digest) && nonempty(in->config_digest) && in->lineage_claim != 0;
    if (!ok) failed |= RP_GATE_LINEAGE;
  }
  return failed;
}

const char *rp_gate_name(unsigned bit) {
  switch (bit) {
  case RP_GATE_REGISTERED: return "registered";
  case RP_GATE_APPROVAL: return "approval";
  case RP_GATE_EVAL_REPORT: return "evaluation_report";
  case RP_GATE_ARTIFACT: return "artifact_sha256";
  case RP_GATE_LINEAGE: return "lineage";
  }
  return "unknown";
}

int rp_ledger_lkg(const struct rp_ledger_entry *rows, size_t n, const char **current,
                  const char **lkg) {
  *current = *lkg = NULL;
  const char **stack = malloc((n ? n : 1) * sizeof *stack);
  if (!stack) return -1;
  size_t top = 0;
  for (size_t i = 0; i < n; i++) {
    const char *v = rows[i].version;
    if (!v) continue;
    if (strcmp(rows[i].action, "promote") == 0) {
      if (top == 0 || strcmp(stack[top - 1], v) != 0) stack[top++] = v;
    } else if (strcmp(rows[i].action, "rollback") == 0) {
      /* A rollback row names the version it made active; pop back to it. A row naming the
       * top itself changed nothing (that is what the view shows too), and one naming a
       * version not on the stack restarts the stack from it, so the top always equals what
       * platform.active_model reports. */
      if (top && strcmp(stack[top - 1], v) == 0) continue;
      while (top && strcmp(stack[top - 1], v) != 0) top--;
      if (top == 0) stack[top++] = v;
    }
  }
  if (top >= 1) *current = stack[top - 1];
  if (top >= 2) *lkg = stack[top - 2];
  free(stack);
  return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static bool valid_version(const char *v) {
  size_t n = v ? strlen(v) : 0;
  if (n == 0 || n > 120) return false;
  /* No '+': the decider marks fallback decisions "<version>+fallback", and the audit chain
   * strips that suffix to find the registry row. */
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)v[i]) && !strchr("._:-", v[i])) return false;
  return true;
}

static bool valid_sha256(const char *s) {
  if (!s || strlen(s) != 64) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

/* Canonical text of the weights: compact with sorted keys, so the stored row (and the bundle
 * digest the view derives from it) does not depend on the order a client sent them in. */
static char *canonical(const json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS); }

static bool valid_weights(const json_t *w, char *err, size_t errsz) {
  if (!json_is_object(w)) {
    snprintf(err, errsz, "weights must be an object");
    return false;
  }
  for (size_t i = 0; i < RP_NWEIGHTS; i++) {
    json_t *v = json_object_get(w, weight_names[i]);
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
      snprintf(err, errsz, "weights.%s must be a finite number", weight_names[i]);
      return false;
    }
  }
  if (json_object_size(w) != RP_NWEIGHTS) {
    /* A weight the decider does not know would be silently ignored: refuse it instead. */
    snprintf(err, errsz, "weights may only carry bias, amount, ecom, foreign, merchant_risk, "
                         "txn_count_24h");
    return false;
  }
  return true;
}

static bool tx(struct rp_ctl *c, const char *sql) {
  PGresult *r = rp_ctl_query(c, sql, sql, 0, NULL);
  PQclear(r);
  return r != NULL;
}

static void rollback_tx(struct rp_ctl *c) {
  if (c->pg && PQstatus(c->pg) == CONNECTION_OK) PQclear(PQexec(c->pg, "ROLLBACK"));
}

/* Promotions and rollbacks serialise on the ledger: the gate reads, the "current" version and
 * the new row must come from one consistent snapshot even with two rp-control processes. */
static bool begin_ledger_tx(struct rp_ctl *c) {
  if (!tx(c, "BEGIN")) return false;
  if (!tx(c, "LOCK TABLE platform.promotion_ledger IN SHARE ROW EXCLUSIVE MODE")) {
    rollback_tx(c);
    return false;
  }
  return true;
}

/* pg_lock held, inside the ledger transaction. */
static bool current_version(struct rp_ctl *c, char *out, size_t outsz) {
  PGresult *r = rp_ctl_query(c, "current_version",
                             "SELECT version FROM platform.promotion_ledger WHERE action IN"
                             " ('promote', 'rollback') ORDER BY promotion_id DESC LIMIT 1",
                             0, NULL);
  if (!r) return false;
  snprintf(out, outsz, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  return true;
}

/* ---- schema and bootstrap ------------------------------------------------------------- */

static const char *const schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS platform.model_registry ("
    " version text PRIMARY KEY, weights jsonb NOT NULL, artifact_sha256 text NOT NULL,"
    " training_run_id text, feature_contract jsonb,"
    " extra_latency_ms integer NOT NULL DEFAULT 0,"
    " registered_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE TABLE IF NOT EXISTS platform.promotion_ledger ("
    " promotion_id bigserial PRIMARY KEY,"
    " action text NOT NULL CHECK (action IN ('promote', 'rollback', 'refused')),"
    " version text, previous_version text, actor text, reason text, evidence jsonb,"
    " approval text, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX IF NOT EXISTS promotion_ledger_version_idx"
    " ON platform.promotion_ledger (version, action, at)",
    "CREATE OR REPLACE TRIGGER model_registry_append_only BEFORE UPDATE OR DELETE"
    " ON platform.model_registry FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    "CREATE OR REPLACE TRIGGER promotion_ledger_append_only BEFORE UPDATE OR DELETE"
    " ON platform.promotion_ledger FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
    /* The lineage tables belong to the learning lane, which creates them first when it is
     * linked in; the registry needs them for its gate and its bootstrap lineage either way.
     * The columns are exactly the contract's (§10). */
    "CREATE TABLE IF NOT EXISTS platform.dataset_manifests ("
    " dataset_id text PRIMARY KEY, manifest_id text, fingerprint text,"
    " as_of timestamptz, label_maturity_cutoff timestamptz, features jsonb, rows bigint,"
    " created_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE TABLE IF NOT EXISTS platform.training_runs ("
    " training_run_id text PRIMARY KEY, dataset_id text, code_digest text, config_digest text,"
    " feature_stats jsonb, started_at timestamptz, finished_at timestamptz)",
    /* The newest non-refused ledger row decides; bundle_digest is the sha256 of the weights in
     * PostgreSQL's canonical jsonb text, computed here so every registration path (POST
     * /models, /train, bootstrap) gets the same digest and anyone can recompute it by SQL. */
    "CREATE OR REPLACE VIEW platform.active_model AS"
    " SELECT r.version, r.weights,"
    " encode(sha256(convert_to(r.weights::text, 'UTF8')), 'hex') AS bundle_digest,"
    " r.extra_latency_ms, r.feature_contract, r.artifact_sha256, r.training_run_id,"
    " l.promotion_id, l.action, l.at AS activated_at"
    " FROM (SELECT promotion_id, action, version, at FROM platform.promotion_ledger"
    "       WHERE action IN ('promote', 'rollback') ORDER BY promotion_id DESC LIMIT 1) l"
    " JOIN platform.model_registry r ON r.version = l.version",
};

/* The built-in model of model.c, registered and promoted once with a lineage of its own, so
 * that the first decision already has a complete audit chain (contract §11). Runs inside the
 * schema advisory lock (main.c), so two processes never both bootstrap. */
static int bootstrap(struct rp_ctl *c) {
  PGresult *r = rp_ctl_query(c, "registry_count",
                             "SELECT count(*) FROM platform.model_registry", 0, NULL);
  if (!r) return -1;
  bool empty = strcmp(PQgetvalue(r, 0, 0), "0") == 0;
  PQclear(r);
  if (!empty) return 0;

  json_t *w = json_loads(rp_model_builtin_weights, 0, NULL);
  char *wtext = w ? canonical(w) : NULL;
  json_decref(w);
  if (!wtext) return -1;
  char sha[65], code[65], empty_ds[65];
  rp_sha256_hex(wtext, strlen(wtext), sha);
  /* code = the built-in constant as written in model.c; the dataset is empty (nothing was
   * trained), so its fingerprint is the sha256 of no data. */
  rp_sha256_hex(rp_model_builtin_weights, strlen(rp_model_builtin_weights), code);
  rp_sha256_hex("", 0, empty_ds);
  char evidence[512];
  snprintf(evidence, sizeof evidence,
           "{\"evaluation_report\":\"builtin:envs/local/platform/model.c\","
           "\"artifact_sha256\":\"%s\",\"lineage_complete\":true}",
           sha);
  const char *pm[] = {RP_BOOTSTRAP_ID, empty_ds,
                      "[\"amount\",\"ecom\",\"foreign\",\"merchant_risk\",\"txn_count_24h\"]"};
  const char *pt[] = {RP_BOOTSTRAP_ID, code, sha};
  const char *pr[] = {RP_MODEL_BUILTIN_VERSION, wtext, sha, RP_BOOTSTRAP_ID};
  const char *pl[] = {RP_MODEL_BUILTIN_VERSION, evidence};
  bool ok = tx(c, "BEGIN") &&
            (r = rp_ctl_query(c, "bootstrap_manifest",
                              "INSERT INTO platform.dataset_manifests (dataset_id, manifest_id,"
                              " fingerprint, as_of, label_maturity_cutoff, features, rows)"
                              " VALUES ($1, $1, $2, clock_timestamp(), clock_timestamp(), $3, 0)"
                              " ON CONFLICT DO NOTHING",
                              3, pm)) != NULL;
  PQclear(r);
  ok = ok && (r = rp_ctl_query(c, "bootstrap_run",
                               "INSERT INTO platform.training_runs (training_run_id, dataset_id,"
                               " code_digest, config_digest, started_at, finished_at) VALUES"
                               " ($1, $1, $2, $3, clock_timestamp(), clock_timestamp())"
                               " ON CONFLICT DO NOTHING",
                               3, pt)) != NULL;
  PQclear(r);
  ok = ok && (r = rp_ctl_query(c, "bootstrap_register",
                               "INSERT INTO platform.model_registry (version, weights,"
                               " artifact_sha256, training_run_id, extra_latency_ms) VALUES"
                               " ($1, $2::jsonb, $3, $4, 0)",
                               4, pr)) != NULL;
  PQclear(r);
  ok = ok && (r = rp_ctl_query(c, "bootstrap_promote",
                               "INSERT INTO platform.promotion_ledger (action, version, actor,"
                               " reason, evidence, approval) VALUES ('promote', $1, 'rp-control',"
                               " 'bootstrap: built-in model', $2::jsonb, 'bootstrap')",
                               2, pl)) != NULL;
  PQclear(r);
  ok = ok && tx(c, "COMMIT");
  if (!ok) rollback_tx(c);
  free(wtext);
  rp_log(ok ? "info" : "error", "msg=registry_bootstrap version=%s artifact_sha256=%s ok=%d",
         RP_MODEL_BUILTIN_VERSION, sha, ok);
  return ok ? 0 : -1;
}

static int registry_init(struct rp_ctl *c) {
  for (size_t i = 0; i < sizeof schema_sql / sizeof schema_sql[0]; i++)
    if (rp_ctl_exec(c, schema_sql[i]) != 0) return -1;
  pthread_mutex_lock(&c->pg_lock);
  int rc = bootstrap(c);
  pthread_mutex_unlock(&c->pg_lock);
  return rc;
}

/* ---- POST /models --------------------------------------------------------------------- */

int rp_registry_register(struct rp_ctl *c, const json_t *req, char *err, size_t errsz) {
  const char *version = jstr(req, "version"), *sha = jstr(req, "artifact_sha256");
  json_t *weights = json_object_get(req, "weights"), *run = json_object_get(req, "training_run_id"),
         *contract = json_object_get(req, "feature_contract"),
         *lat = json_object_get(req, "extra_latency_ms");
  if (!valid_version(version)) {
    snprintf(err, errsz, "version must be 1-120 characters of [A-Za-z0-9._:-]");
    return 400;
  }
  if (!valid_weights(weights, err, errsz)) return 400;
  if (!valid_sha256(sha)) {
    snprintf(err, errsz, "artifact_sha256 must be 64 lowercase hex characters");
    return 400;
  }
  if (run && !json_is_null(run) && !json_is_string(run)) {
    snprintf(err, errsz, "training_run_id must be a string or null");
    return 400;
  }
  if (contract && !json_is_null(contract) && !json_is_array(contract)) {
    snprintf(err, errsz, "feature_contract must be an array of {name,type,min,max,scale}");
    return 400;
  }
  long long latency = 0;
  if (lat && !json_is_null(lat)) {
    if (!json_is_integer(lat) || json_integer_value(lat) < 0 ||
        json_integer_value(lat) > RP_MAX_EXTRA_LATENCY_MS) {
      snprintf(err, errsz, "extra_latency_ms must be an integer in [0, %d]",
               RP_MAX_EXTRA_LATENCY_MS);
      return 400;
    }
    latency = json_integer_value(lat);
  }
  if (rp_ctl_defect(c, "latency-regression")) latency = RP_REGRESSION_LATENCY_MS;

  char *wtext = canonical(weights);
  char *ctext = contract && !json_is_null(contract) ? canonical(contract) : NULL;
  char lat_s[24];
  snprintf(lat_s, sizeof lat_s, "%lld", latency);
  const char *p[] = {version, wtext, sha, json_is_string(run) ? json_string_value(run) : NULL,
                     ctext, lat_s};
  int status = 503;
  if (wtext) {
    pthread_mutex_lock(&c->pg_lock);
    PGresult *r = rp_ctl_query(c, "register",
                               "INSERT INTO platform.model_registry (version, weights,"
                               " artifact_sha256, training_run_id, feature_contract,"
                               " extra_latency_ms) VALUES ($1, $2::jsonb, $3, $4, $5::jsonb,"
                               " $6::integer) ON CONFLICT (version) DO NOTHING RETURNING 1",
                               6, p);
    pthread_mutex_unlock(&c->pg_lock);
    if (r) status = PQntuples(r) == 1 ? 201 : 409;
    PQclear(r);
  }
  free(wtext);
  free(ctext);
  if (status == 409) snprintf(err, errsz, "version_exists");
  else if (status == 503) snprintf(err, errsz, "registry_unavailable");
  else
    rp_log("info", "msg=model_registered version=%s artifact_sha256=%s extra_latency_ms=%lld",
           version, sha, latency);
  return status;
}

static json_t *parse_body(const struct rp_req *rq, struct rp_resp *rs) {
  json_error_t je;
  json_t *j = json_loadb(rq->body, rq->body_len, 0, &je);
  if (!json_is_object(j)) {
    json_decref(j);
    rp_ctl_reply_json(rs, 400, json_pack("{s:s,s:s}", "status", "rejected", "reason",
                                         "body must be a JSON object"));
    return NULL;
  }
  return j;
}

static void post_models(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  json_t *req = parse_body(rq, rs);
  if (!req) return;
  char err[256] = "";
  int status = rp_registry_register(c, req, err, sizeof err);
  if (status == 201) {
    json_t *lat = json_object_get(req, "extra_latency_ms");
    long long latency = rp_ctl_defect(c, "latency-regression") ? RP_REGRESSION_LATENCY_MS
                        : json_is_integer(lat)                  ? json_integer_value(lat)
                                                                : 0;
    rp_ctl_reply_json(rs, 201, json_pack("{s:s,s:s,s:I}", "status", "registered", "version",
                                         jstr(req, "version"), "extra_latency_ms",
                                         (json_int_t)latency));
  } else {
    rp_ctl_reply_json(rs, status,
                      json_pack("{s:s,s:s}", "status", status == 409 ? "conflict" : "rejected",
                                "reason", err));
  }
  json_decref(req);
}

/* ---- POST /promote -------------------------------------------------------------------- */

static json_t *gate_list(unsigned failed) {
  json_t *a = json_array();
  for (unsigned bit = 1; bit < (1u << RP_GATE_COUNT); bit <<= 1)
    if (failed & bit) json_array_append_new(a, json_string(rp_gate_name(bit)));
  return a;
}

static void post_promote(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  json_t *req = parse_body(rq, rs);
  if (!req) return;
  const char *version = jstr(req, "version"), *actor = jstr(req, "actor"),
             *reason = jstr(req, "reason");
  if (!nonempty(version) || !nonempty(actor) || !nonempty(reason)) {
    rp_ctl_reply_json(rs, 400, json_pack("{s:s,s:s}", "status", "rejected", "reason",
                                         "version, actor and reason are required strings"));
    json_decref(req);
    return;
  }
  json_t *ev = json_object_get(req, "evidence");
  json_t *lc = json_is_object(ev) ? json_object_get(ev, "lineage_complete") : NULL;
  struct rp_gate_input in = {
      .approval = jstr(req, "approval"),
      .evaluation_report = json_is_object(ev) ? jstr(ev, "evaluation_report") : NULL,
      .evidence_sha = json_is_object(ev) ? jstr(ev, "artifact_sha256") : NULL,
      .lineage_claim = json_is_boolean(lc) ? json_is_true(lc) : -1,
      .skip_lineage = rp_ctl_defect(c, "lineage-missing"),
  };

  pthread_mutex_lock(&c->pg_lock);
  char current[256] = "";
  PGresult *reg = NULL;
  bool ok = begin_ledger_tx(c);
  const char *pv[] = {version};
  ok = ok && current_version(c, current, sizeof current) &&
       (reg = rp_ctl_query(c, "promote_read",
                           "SELECT r.artifact_sha256, coalesce(r.training_run_id, ''),"
                           " t.training_run_id IS NOT NULL, m.dataset_id IS NOT NULL,"
                           " coalesce(t.code_digest, ''), coalesce(t.config_digest, '')"
                           " FROM platform.model_registry r"
                           " LEFT JOIN platform.training_runs t"
                           "   ON t.training_run_id = r.training_run_id"
                           " LEFT JOIN platform.dataset_manifests m ON m.dataset_id = t.dataset_id"
                           " WHERE r.version = $1",
                           1, pv)) != NULL;
  if (!ok) {
    rollback_tx(c);
    pthread_mutex_unlock(&c->pg_lock);
    rp_ctl_reply_json(rs, 503, json_pack("{s:s,s:s}", "status", "error", "reason",
                                         "registry_unavailable"));
    json_decref(req);
    return;
  }
  if (PQntuples(reg) == 1) {
    in.registered_sha = PQgetvalue(reg, 0, 0);
    in.training_run_id = PQgetvalue(reg, 0, 1);
    in.training_run_found = strcmp(PQgetvalue(reg, 0, 2), "t") == 0;
    in.manifest_found = strcmp(PQgetvalue(reg, 0, 3), "t") == 0;
    in.code_digest = PQgetvalue(reg, 0, 4);
    in.config_digest = PQgetvalue(reg, 0, 5);
  }
  unsigned failed = rp_promotion_gates(&in);
  if (!failed && strcmp(current, version) == 0) {
    /* Already live: nothing changes, so nothing is written to the ledger. */
    tx(c, "COMMIT");
    pthread_mutex_unlock(&c->pg_lock);
    PQclear(reg);
    rp_ctl_reply_json(rs, 200, json_pack("{s:s,s:s}", "status", "already_active", "version",
                                         version));
    json_decref(req);
    return;
  }
  /* A refusal keeps the submitted evidence and adds the gates it failed, so the ledger alone
   * shows why a promotion did not happen (seed FM-PR-01: gate logs). */
  json_t *stored = json_is_object(ev) ? json_deep_copy(ev) : json_object();
  if (failed) json_object_set_new(stored, "failed_gates", gate_list(failed));
  char *evtext = canonical(stored);
  json_decref(stored);
  const char *pl[] = {failed ? "refused" : "promote", version, current[0] ? current : NULL, actor,
                      reason, evtext, jstr(req, "approval")};
  PGresult *ins = evtext ? rp_ctl_query(c, "promote_write",
                                        "INSERT INTO platform.promotion_ledger (action, version,"
                                        " previous_version, actor, reason, evidence, approval)"
                                        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
                                        " RETURNING promotion_id",
                                        7, pl)
                         : NULL;
  long long pid = ins ? atoll(PQgetvalue(ins, 0, 0)) : 0;
  ok = ins && tx(c, "COMMIT");
  if (!ok) rollback_tx(c);
  pthread_mutex_unlock(&c->pg_lock);
  PQclear(ins);
  PQclear(reg);
  free(evtext);
  if (!ok) {
    rp_ctl_reply_json(rs, 503, json_pack("{s:s,s:s}", "status", "error", "reason",
                                         "registry_unavailable"));
  } else if (failed) {
    rp_log("warn", "msg=promotion_refused version=%s actor=%s failed_gates=0x%x promotion_id=%lld",
           version, actor, failed, pid);
    rp_ctl_reply_json(rs, 409, json_pack("{s:s,s:s,s:o,s:I,s:s?}", "status", "refused",
                                         "version", version, "failed_gates", gate_list(failed),
                                         "promotion_id", (json_int_t)pid, "active_version",
                                         current[0] ? current : NULL));
  } else {
    rp_log("info", "msg=promoted version=%s previous_version=%s actor=%s promotion_id=%lld%s",
           version, current, actor, pid, in.skip_lineage ? " lineage_gate=skipped" : "");
    rp_ctl_reply_json(rs, 200, json_pack("{s:s,s:s,s:s?,s:I}", "status", "promoted", "version",
                                         version, "previous_version",
                                         current[0] ? current : NULL, "promotion_id",
                                         (json_int_t)pid));
  }
  json_decref(req);
}

/* ---- rollback ------------------------------------------------------------------------- */

/* Returns 0 (restored and from filled), 1 (no last known good version) or -1 (database). */
static int rollback_do(struct rp_ctl *c, const char *actor, const char *reason,
                       const char *approval, char *restored, char *from, size_t vsz,
                       long long *pid) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = NULL;
  int rc = -1;
  if (!begin_ledger_tx(c)) goto out;
  r = rp_ctl_query(c, "ledger_read",
                   "SELECT action, version FROM platform.promotion_ledger WHERE action IN"
                   " ('promote', 'rollback') ORDER BY promotion_id",
                   0, NULL);
  if (!r) goto fail;
  size_t n = (size_t)PQntuples(r);
  struct rp_ledger_entry *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows) goto fail;
  for (size_t i = 0; i < n; i++) {
    rows[i].action = PQgetvalue(r, (int)i, 0);
    rows[i].version = PQgetisnull(r, (int)i, 1) ? NULL : PQgetvalue(r, (int)i, 1);
  }
  const char *cur = NULL, *lkg = NULL;
  int lr = rp_ledger_lkg(rows, n, &cur, &lkg);
  if (lr == 0 && lkg) {
    snprintf(restored, vsz, "%s", lkg);
    snprintf(from, vsz, "%s", cur);
  }
  free(rows);
  if (lr != 0) goto fail;
  if (!lkg) {
    rc = 1;
    goto fail;
  }
  json_t *ej = json_pack("{s:s,s:s}", "restored", restored, "rolled_back_from", from);
  char *evidence = ej ? canonical(ej) : NULL;
  json_decref(ej);
  if (!evidence) goto fail;
  /* rollback-noop: the two version parameters are passed in the wrong order, so the row
   * records the current version as the one made active. */
  bool noop = rp_ctl_defect(c, "rollback-noop");
  const char *p[] = {noop ? from : restored, noop ? restored : from, actor, reason, evidence,
                     approval};
  PQclear(r);
  r = rp_ctl_query(c, "rollback_write",
                   "INSERT INTO platform.promotion_ledger (action, version, previous_version,"
                   " actor, reason, evidence, approval) VALUES ('rollback', $1, $2, $3, $4,"
                   " $5::jsonb, $6) RETURNING promotion_id",
                   6, p);
  free(evidence);
  if (!r) goto fail;
  *pid = atoll(PQgetvalue(r, 0, 0));
  if (!tx(c, "COMMIT")) goto fail;
  rc = 0;
  goto out;
fail:
  rollback_tx(c);
out:
  PQclear(r);
  pthread_mutex_unlock(&c->pg_lock);
  if (rc == 0)
    rp_log("info", "msg=rolled_back restored=%s from=%s actor=%s promotion_id=%lld", restored,
           from, actor, *pid);
  return rc;
}

int rp_registry_rollback(struct rp_ctl *c, const char *actor, const char *reason, char *err,
                         size_t errsz) {
  char restored[256] = "", from[256] = "";
  long long pid = 0;
  int rc = rollback_do(c, actor, reason, NULL, restored, from, sizeof restored, &pid);
  if (rc == 1) snprintf(err, errsz, "no last known good version");
  else if (rc < 0) snprintf(err, errsz, "registry unavailable");
  return rc == 0 ? 0 : -1;
}

static void post_rollback(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  json_t *req = parse_body(rq, rs);
  if (!req) return;
  const char *actor = jstr(req, "actor"), *reason = jstr(req, "reason");
  if (!nonempty(actor) || !nonempty(reason)) {
    rp_ctl_reply_json(rs, 400, json_pack("{s:s,s:s}", "status", "rejected", "reason",
                                         "actor and reason are required strings"));
    json_decref(req);
    return;
  }
  char restored[256] = "", from[256] = "";
  long long pid = 0;
  int rc = rollback_do(c, actor, reason, jstr(req, "approval"), restored, from, sizeof restored,
                       &pid);
  if (rc == 0)
    rp_ctl_reply_json(rs, 200, json_pack("{s:s,s:s,s:s,s:I}", "status", "rolled_back", "version",
                                         restored, "previous_version", from, "promotion_id",
                                         (json_int_t)pid));
  else if (rc == 1)
    rp_ctl_reply_json(rs, 409, json_pack("{s:s,s:s}", "status", "refused", "reason",
                                         "no_last_known_good"));
  else
    rp_ctl_reply_json(rs, 503, json_pack("{s:s,s:s}", "status", "error", "reason",
                                         "registry_unavailable"));
  json_decref(req);
}

/* ---- reads ---------------------------------------------------------------------------- */

/* Runs a query whose single row/column is JSON text and replies with it, or 404 when the
 * query returns no row (or SQL NULL). */
static void reply_sql_json(struct rp_ctl *c, struct rp_resp *rs, const char *what,
                           const char *sql, const char *none) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *r = rp_ctl_query(c, what, sql, 0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  if (!r) {
    rp_ctl_reply(rs, 503, "{\"status\":\"error\",\"reason\":\"registry_unavailable\"}");
    return;
  }
  if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
    rp_ctl_reply(rs, 200, "%s", PQgetvalue(r, 0, 0));
  else
    rp_ctl_reply(rs, 404, "%s", none);
  PQclear(r);
}

static void get_active(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  reply_sql_json(c, rs, "active_read",
                 "SELECT jsonb_build_object('version', version, 'bundle_digest', bundle_digest,"
                 " 'extra_latency_ms', extra_latency_ms, 'artifact_sha256', artifact_sha256,"
                 " 'training_run_id', training_run_id, 'weights', weights, 'promotion_id',"
                 " promotion_id, 'action', action, 'activated_at', activated_at)::text"
                 " FROM platform.active_model",
                 "{\"status\":\"none\"}");
}

static void get_models(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  reply_sql_json(c, rs, "models_read",
                 "SELECT jsonb_build_object('active', (SELECT version FROM platform.active_model),"
                 " 'models', coalesce(jsonb_agg(jsonb_build_object('version', r.version,"
                 " 'artifact_sha256', r.artifact_sha256, 'training_run_id', r.training_run_id,"
                 " 'extra_latency_ms', r.extra_latency_ms, 'weights', r.weights,"
                 " 'feature_contract', r.feature_contract, 'registered_at', r.registered_at)"
                 " ORDER BY r.registered_at, r.version), '[]'::jsonb))::text"
                 " FROM platform.model_registry r",
                 "{\"models\":[]}");
}

/* ---- metrics -------------------------------------------------------------------------- */

static void registry_metrics(struct rp_ctl *c, char *buf, size_t bufsz, size_t *len) {
  pthread_mutex_lock(&c->pg_lock);
  PGresult *a = rp_ctl_query(c, "metrics_active", "SELECT version FROM platform.active_model",
                             0, NULL);
  PGresult *p = rp_ctl_query(c, "metrics_ledger",
                             "SELECT count(*) FILTER (WHERE action = 'promote'),"
                             " count(*) FILTER (WHERE action = 'rollback'),"
                             " count(*) FILTER (WHERE action = 'refused')"
                             " FROM platform.promotion_ledger",
                             0, NULL);
  pthread_mutex_unlock(&c->pg_lock);
  rp_ctl_metric(buf, bufsz, len,
                "# HELP rp_model_active_info The version platform.active_model serves.\n"
                "# TYPE rp_model_active_info gauge\n");
  if (a && PQntuples(a) == 1) {
    rp_ctl_metric(buf, bufsz, len, "rp_model_active_info{version=\"");
    rp_ctl_metric_label(buf, bufsz, len, PQgetvalue(a, 0, 0));
    rp_ctl_metric(buf, bufsz, len, "\"} 1\n");
  }
  if (p && PQntuples(p) == 1) {
    /* Counted from the ledger, not in memory, so the totals survive a restart and agree
     * with what an auditor reads in the table. */
    rp_ctl_metric(buf, bufsz, len,
                  "# HELP rp_promotions_total Promotion ledger rows by action.\n"
                  "# TYPE rp_promotions_total counter\n"
                  "rp_promotions_total{action=\"promote\"} %s\n"
                  "rp_promotions_total{action=\"rollback\"} %s\n"
                  "rp_promotions_total{action=\"refused\"} %s\n",
                  PQgetvalue(p, 0, 0), PQgetvalue(p, 0, 1), PQgetvalue(p, 0, 2));
  }
  PQclear(a);
  PQclear(p);
}

static const struct rp_route registry_routes[] = {
    {"POST", "/models", post_models},
    {"GET", "/models", get_models},
    {"GET", "/models/active", get_active},
    {"POST", "/promote", post_promote},
    {"POST", "/rollback", post_rollback},
    {NULL, NULL, NULL},
};

const struct rp_module rp_module_registry = {
    .name = "registry",
    .routes = registry_routes,
    .init = registry_init,
    .tick = NULL,
    .metrics = registry_metrics,
};
