/* audit.c (rp_module_audit): GET /audit/decision/{decision_id}, the audit chain of one decision
 * (contract §11; seed DR-06, FM-AU-01). The chain is assembled by one SQL statement from the
 * first-class records (decision_log -> model_registry -> promotion_ledger -> training_runs ->
 * dataset_manifests), never from caches or process memory, so the answer is exactly what an
 * auditor would get by querying the tables; this module only judges which links are missing.
 * An incomplete chain is still answered (200, complete=false, missing=[...]): a gap is the
 * finding a provenance drill is looking for, not an error. */
#include "rp_control.h"
#include "rp_core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PREFIX "/audit/decision/"

/* Answered chains by completeness; DR-06 reads provenance completeness off these. */
static atomic_ullong chains_complete, chains_incomplete;

/* The model of a fallback decision is "<version>+fallback" (contract §8): it is the same
 * registered version scored with its online weights zeroed, so the chain follows the base
 * version. "promotion" is the newest promote row of that version at or before the decision;
 * "activation" is the ledger row (promote or rollback, any version) in force at that moment,
 * which shows whether the registry's idea of the active model matches what scored it. */
static const char chain_sql[] =
    "SELECT jsonb_build_object("
    " 'decision', to_jsonb(d),"
    " 'model', CASE WHEN r.version IS NULL THEN NULL ELSE jsonb_build_object("
    "   'version', r.version, 'training_run_id', r.training_run_id,"
    "   'artifact_sha256', r.artifact_sha256, 'extra_latency_ms', r.extra_latency_ms,"
    "   'registered_at', r.registered_at) END,"
    " 'promotion', CASE WHEN p.promotion_id IS NULL THEN NULL ELSE jsonb_build_object("
    "   'promotion_id', p.promotion_id, 'action', p.action, 'version', p.version,"
    "   'previous_version', p.previous_version, 'actor', p.actor, 'reason', p.reason,"
    "   'approval', p.approval, 'evidence', p.evidence, 'at', p.at) END,"
    " 'activation', CASE WHEN a.promotion_id IS NULL THEN NULL ELSE jsonb_build_object("
    "   'promotion_id', a.promotion_id, 'action', a.action, 'version', a.version,"
    "   'actor', a.actor, 'at', a.at) END,"
    " 'training_run', to_jsonb(t),"
    " 'dataset_manifest', to_jsonb(m))::text"
    " FROM platform.decision_log d"
    " LEFT JOIN platform.model_registry r ON r.version = split_part(d.model_version, '+', 1)"
    " LEFT JOIN LATERAL (SELECT * FROM platform.promotion_ledger l"
    "   WHERE l.version = r.version AND l.action = 'promote' AND l.at <= d.decided_at"
    "   ORDER BY l.at DESC, l.promotion_id DESC LIMIT 1) p ON true"
    " LEFT JOIN LATERAL (SELECT * FROM platform.promotion_ledger l"
    "   WHERE l.action IN ('promote', 'rollback') AND l.at <= d.decided_at"
    "   ORDER BY l.promotion_id DESC LIMIT 1) a ON true"
    " LEFT JOIN platform.training_runs t ON t.training_run_id = r.training_run_id"
    " LEFT JOIN platform.dataset_manifests m ON m.dataset_id = t.dataset_id"
    " WHERE d.decision_id = $1::bigint";

static bool filled(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0);
}

/* Names every missing link of the chain (contract §11), most fundamental first. */
static json_t *missing_links(const json_t *chain) {
  json_t *miss = json_array();
  json_t *model = json_object_get(chain, "model"), *promo = json_object_get(chain, "promotion"),
         *run = json_object_get(chain, "training_run"),
         *ds = json_object_get(chain, "dataset_manifest");
  if (!json_is_object(model)) {
    json_array_append_new(miss, json_string("model"));
  } else {
    if (!filled(model, "artifact_sha256"))
      json_array_append_new(miss, json_string("model.artifact_sha256"));
    if (!filled(model, "training_run_id"))
      json_array_append_new(miss, json_string("model.training_run_id"));
  }
  if (!json_is_object(promo)) json_array_append_new(miss, json_string("promotion"));
  else if (!filled(promo, "approval"))
    json_array_append_new(miss, json_string("promotion.approval"));
  if (!json_is_object(run)) {
    json_array_append_new(miss, json_string("training_run"));
  } else {
    if (!filled(run, "code_digest")) json_array_append_new(miss, json_string("training_run.code_digest"));
    if (!filled(run, "config_digest"))
      json_array_append_new(miss, json_string("training_run.config_digest"));
  }
  if (!json_is_object(ds)) json_array_append_new(miss, json_string("dataset_manifest"));
  else if (!filled(ds, "fingerprint"))
    json_array_append_new(miss, json_string("dataset_manifest.fingerprint"));
  return miss;
}

static void get_decision_chain(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs) {
  const char *id = rq->path + strlen(AUDIT_PREFIX);
  size_t n = strlen(id);
  if (n == 0 || n > 18 || strspn(id, "0123456789") != n) {
    rp_ctl_reply(rs, 400, "{\"status\":\"rejected\",\"reason\":\"decision_id must be a positive "
                          "integer\"}");
    return;
  }
  const char *p[] = {id};
  pthread_mutex_lock(&c->pg_lock);
  /* The decision log belongs to rp-decider; before its first start there is nothing to audit. */
  PGresult *e = rp_ctl_query(c, "audit_exists",
                             "SELECT to_regclass('platform.decision_log') IS NOT NULL", 0, NULL);
  bool exists = e && strcmp(PQgetvalue(e, 0, 0), "t") == 0;
  PGresult *r = exists ? rp_ctl_query(c, "audit_chain", chain_sql, 1, p) : NULL;
  pthread_mutex_unlock(&c->pg_lock);
  PQclear(e);
  if (!e || (exists && !r)) {
    rp_ctl_reply(rs, 503, "{\"status\":\"error\",\"reason\":\"audit_store_unavailable\"}");
    return;
  }
  if (!exists || PQntuples(r) == 0) {
    PQclear(r);
    rp_ctl_reply(rs, 404, "{\"status\":\"not_found\",\"decision_id\":%s}", id);
    return;
  }
  json_t *chain = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
  PQclear(r);
  if (!json_is_object(chain)) {
    json_decref(chain);
    rp_ctl_reply(rs, 500, "{\"status\":\"error\",\"reason\":\"chain_not_json\"}");
    return;
  }
  json_t *miss = missing_links(chain);
  bool complete = json_array_size(miss) == 0;
  atomic_fetch_add(complete ? &chains_complete : &chains_incomplete, 1);
  json_object_set_new(chain, "complete", json_boolean(complete));
  json_object_set_new(chain, "missing", miss);
  rp_ctl_reply_json(rs, 200, chain);
}

static void audit_metrics(struct rp_ctl *c, char *buf, size_t bufsz, size_t *len) {
  rp_ctl_metric(buf, bufsz, len,
                "# HELP rp_audit_chains_total Audit chains answered, by completeness.\n"
                "# TYPE rp_audit_chains_total counter\n"
                "rp_audit_chains_total{complete=\"true\"} %llu\n"
                "rp_audit_chains_total{complete=\"false\"} %llu\n",
                atomic_load(&chains_complete), atomic_load(&chains_incomplete));
}

static const struct rp_route audit_routes[] = {
    {"GET", AUDIT_PREFIX, get_decision_chain},
    {NULL, NULL, NULL},
};

const struct rp_module rp_module_audit = {
    .name = "audit",
    .routes = audit_routes,
    .init = NULL,
    .tick = NULL,
    .metrics = audit_metrics,
};
