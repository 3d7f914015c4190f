/*
 * learning.c - rp-control's learning lane (contract §9, seed T1.1/FM-LN-01):
 * labels, online feature publishing, leakage-guarded dataset building and
 * logistic-regression training that registers a version with full lineage
 * (model_registry -> training_runs -> dataset_manifests -> digests).
 *
 * The dataset builder fails closed: a window reaching past as_of, a row
 * served after as_of, or a label not yet mature at the cutoff refuses the
 * dataset with 422 and an auditable leakage_reports row. The planted defect
 * `leak-accepted` skips exactly those checks.
 *
 * A built dataset is materialised in platform.dataset_rows (an internal
 * table, like the decider's guard tables) so training reads exactly the
 * fingerprinted rows and re-verifies the fingerprint first: a dataset cannot
 * change after its manifest was published (FM-LN-02).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lane.h"
#include "lane_io.h"
#include "rp_control.h"
#include "rp_core.h"

#define MAX_LABEL_ITEMS 100000
#define MAX_FEATURE_ITEMS 100000
#define MAX_EXAMPLES 5      /* event ids quoted per violated rule in a report */

static atomic_ulong n_ds_accepted, n_ds_rejected, n_ds_conflict, n_ds_empty, n_ds_error;
static atomic_ulong n_leak_rejections, n_training_runs;

static const char *const ddl[] = {
	/* main.c creates the schema and platform.rp_append_only() first. */
	"CREATE TABLE IF NOT EXISTS platform.labels ("
	" label_id bigserial PRIMARY KEY,"
	" platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
	" label int NOT NULL CHECK (label IN (0, 1)),"
	" mature_at timestamptz NOT NULL,"
	" recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())",
	"CREATE INDEX IF NOT EXISTS labels_tuple_idx"
	" ON platform.labels (platform_run_id, event_class, event_id)",
	"CREATE TABLE IF NOT EXISTS platform.dataset_manifests ("
	" dataset_id text PRIMARY KEY, manifest_id text NOT NULL, fingerprint text NOT NULL,"
	" as_of timestamptz NOT NULL, label_maturity_cutoff timestamptz NOT NULL,"
	" features jsonb NOT NULL, rows bigint NOT NULL,"
	" created_at timestamptz NOT NULL DEFAULT clock_timestamp())",
	/* One dataset per manifest id: datasets are immutable. */
	"CREATE UNIQUE INDEX IF NOT EXISTS dataset_manifests_manifest_idx"
	" ON platform.dataset_manifests (manifest_id)",
	"CREATE TABLE IF NOT EXISTS platform.dataset_rows ("
	" dataset_id text NOT NULL, ord int NOT NULL,"
	" platform_run_id text NOT NULL, event_class text NOT NULL, event_id text NOT NULL,"
	" x jsonb NOT NULL, label int NOT NULL, PRIMARY KEY (dataset_id, ord))",
	/* Lineage columns stay nullable: registry.c may record a bootstrap
	 * stats row for the built-in model, which has no dataset. */
	"CREATE TABLE IF NOT EXISTS platform.training_runs ("
	" training_run_id text PRIMARY KEY, dataset_id text, code_digest text,"
	" config_digest text, feature_stats jsonb,"
	" started_at timestamptz NOT NULL DEFAULT clock_timestamp(), finished_at timestamptz)",
	"CREATE TABLE IF NOT EXISTS platform.leakage_reports ("
	" report_id bigserial PRIMARY KEY, manifest_id text, reason text NOT NULL,"
	" details jsonb, at timestamptz NOT NULL DEFAULT clock_timestamp())",
	"CREATE OR REPLACE TRIGGER labels_append_only BEFORE UPDATE OR DELETE"
	" ON platform.labels FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
	"CREATE OR REPLACE TRIGGER dataset_manifests_append_only BEFORE UPDATE OR DELETE"
	" ON platform.dataset_manifests FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
	"CREATE OR REPLACE TRIGGER dataset_rows_append_only BEFORE UPDATE OR DELETE"
	" ON platform.dataset_rows FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
	"CREATE OR REPLACE TRIGGER training_runs_append_only BEFORE UPDATE OR DELETE"
	" ON platform.training_runs FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
	"CREATE OR REPLACE TRIGGER leakage_reports_append_only BEFORE UPDATE OR DELETE"
	" ON platform.leakage_reports FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
	NULL,
};

static int learning_init(struct rp_ctl *c)
{
	return lane_pg_ddl(c, ddl);
}

/* ---- small helpers ------------------------------------------------------------- */

static const char *str_member(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* An optional string member: absent/null is fine, any other type is not. */
static int opt_str_member(const json_t *o, const char *key, const char **out)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return -1;
	*out = json_string_value(v);
	return 0;
}

static void sha_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	static const char digits[] = "0123456789abcdef";
	if (EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL) != 1)
		len = 0;
	memset(out, '0', 64);
	for (unsigned i = 0; i < len && i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

/* A served feature value: numbers as they are, booleans as 0/1. */
static int feature_value(const json_t *feats, const char *name, double *out)
{
	json_t *v = json_object_get(feats, name);
	if (json_is_boolean(v))
		*out = json_is_true(v) ? 1.0 : 0.0;
	else if (json_is_number(v))
		*out = json_number_value(v);
	else
		return -1;
	return isfinite(*out) ? 0 : -1;
}

/* ---- POST /labels -------------------------------------------------------------- */

static void h_labels(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	json_t *body = lane_body(rq, rs);
	if (!body)
		return;
	json_t *items = json_object_get(body, "items");
	size_t n = json_array_size(items);
	if (!json_is_array(items) || n == 0 || n > MAX_LABEL_ITEMS) {
		lane_reply_error(rs, 400, "missing_field", "items: non-empty array expected");
		json_decref(body);
		return;
	}
	/* Validate everything first: a batch is appended whole or not at all. */
	json_t *recs = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(items, i), *lab = json_object_get(it, "label");
		const char *eid = str_member(it, "event_id"), *run = str_member(it, "platform_run_id");
		const char *cls = str_member(it, "event_class"), *mat = str_member(it, "mature_at");
		if (!eid || !run || !cls || !mat || !json_is_integer(lab) ||
		    (json_integer_value(lab) != 0 && json_integer_value(lab) != 1)) {
			char d[96];
			snprintf(d, sizeof d, "items[%zu]: event_id, platform_run_id, event_class,"
				 " label 0/1, mature_at required", i);
			lane_reply_error(rs, 400, "wrong_type", d);
			json_decref(recs);
			json_decref(body);
			return;
		}
		json_array_append_new(recs, json_pack("{s:s,s:s,s:s,s:I,s:s}", "platform_run_id", run,
			"event_class", cls, "event_id", eid, "label", json_integer_value(lab),
			"mature_at", mat));
	}
	char *txt = json_dumps(recs, JSON_COMPACT);
	json_decref(recs);
	json_decref(body);
	char err[512];
	const char *p[1] = {txt};
	PGresult *r = txt ? lane_pg(c,
		"INSERT INTO platform.labels (platform_run_id, event_class, event_id, label, mature_at)"
		" SELECT r.platform_run_id, r.event_class, r.event_id, r.label, r.mature_at::timestamptz"
		" FROM jsonb_to_recordset($1::jsonb) AS r(platform_run_id text, event_class text,"
		" event_id text, label int, mature_at text)", 1, p, err, sizeof err) : NULL;
	free(txt);
	if (!r) {
		if (lane_pg_input_error(err))
			lane_reply_error(rs, 400, "wrong_type", err);
		else
			lane_reply_error(rs, 503, "database_unavailable", err);
		return;
	}
	rp_ctl_reply(rs, 200, "{\"status\":\"ok\",\"inserted\":%s}", PQcmdTuples(r));
	PQclear(r);
}

/* ---- POST /features ------------------------------------------------------------ */

static void h_features(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	json_t *body = lane_body(rq, rs);
	if (!body)
		return;
	json_t *items = json_object_get(body, "items");
	size_t n = json_array_size(items);
	if (!json_is_array(items) || n == 0 || n > MAX_FEATURE_ITEMS) {
		lane_reply_error(rs, 400, "missing_field", "items: non-empty array expected");
		json_decref(body);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(items, i), *v = json_object_get(it, "txn_count_24h");
		/* Out-of-range values are published as they are: a skew drill
		 * serves exactly such values to see the contract catch them. */
		if (!str_member(it, "account_id") || !json_is_number(v) ||
		    !isfinite(json_number_value(v))) {
			char d[96];
			snprintf(d, sizeof d, "items[%zu]: account_id and numeric txn_count_24h required", i);
			lane_reply_error(rs, 400, "wrong_type", d);
			json_decref(body);
			return;
		}
	}
	size_t done = 0;
	for (; done < n; done++) {
		json_t *it = json_array_get(items, done);
		char val[64];
		snprintf(val, sizeof val, "%.17g", json_number_value(json_object_get(it, "txn_count_24h")));
		redisReply *rep = rp_ctl_redis(c, "HSET fp:feat:%s txn_count_24h %s",
					     str_member(it, "account_id"), val);
		int ok = rep && rep->type != REDIS_REPLY_ERROR;
		if (rep)
			freeReplyObject(rep);
		if (!ok)
			break;
	}
	json_decref(body);
	if (done < n) {
		char d[96];
		snprintf(d, sizeof d, "published %zu of %zu before Redis failed", done, n);
		lane_reply_error(rs, 503, "feature_store_unavailable", d);
		return;
	}
	rp_ctl_reply(rs, 200, "{\"status\":\"ok\",\"published\":%zu}", n);
}

/* ---- POST /datasets ------------------------------------------------------------ */

struct cand {                 /* one selected tuple before feature parsing */
	char *cls, *eid, *feats;
	double at;
	int label;
	size_t first_label, nlabels;   /* slice of the label maturity array */
};

static void free_rows(struct rp_ds_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].platform_run_id);
		free(rows[i].event_class);
		free(rows[i].event_id);
	}
	free(rows);
}

static int features_column_present(struct rp_ctl *c)
{
	PGresult *r = lane_pg(c, "SELECT 1 FROM information_schema.columns WHERE"
			      " table_schema = 'platform' AND table_name = 'decision_log'"
			      " AND column_name = 'features'", 0, NULL, NULL, 0);
	int ok = r && PQntuples(r) == 1;
	PQclear(r);
	return ok;
}

/* The identities of rows violating a rule, for the report. */
static json_t *examples(const struct cand *cs, size_t n, const double *mat, unsigned rule,
			double as_of, double cutoff)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n && json_array_size(a) < MAX_EXAMPLES; i++) {
		int hit = 0;
		if (rule == RP_LEAK_FEATURE_AFTER_AS_OF)
			hit = cs[i].at > as_of;
		for (size_t k = 0; rule == RP_LEAK_IMMATURE_LABEL && k < cs[i].nlabels; k++)
			hit |= mat[cs[i].first_label + k] > cutoff;
		if (hit)
			json_array_append_new(a, json_pack("{s:s,s:s}", "event_class", cs[i].cls,
							   "event_id", cs[i].eid));
	}
	return a;
}

struct ds_req {
	const char *manifest_id, *run, *as_of, *cutoff, *wstart, *wend;
	const char *names[RP_LANE_NFEAT];
	int idx[RP_LANE_NFEAT];
	size_t d;
	double t_as_of, t_cutoff, t_wend;
};

static int parse_ds_req(json_t *body, struct ds_req *q, char *err, size_t errsz)
{
	memset(q, 0, sizeof *q);
	q->manifest_id = str_member(body, "manifest_id");
	q->run = str_member(body, "platform_run_id");
	q->as_of = str_member(body, "as_of");
	q->cutoff = str_member(body, "label_maturity_cutoff");
	if (!q->manifest_id || !q->run || !q->as_of || !q->cutoff) {
		snprintf(err, errsz, "manifest_id, platform_run_id, as_of, label_maturity_cutoff required");
		return -1;
	}
	if (opt_str_member(body, "window_start", &q->wstart) ||
	    opt_str_member(body, "window_end", &q->wend)) {
		snprintf(err, errsz, "window_start / window_end: timestamp strings expected");
		return -1;
	}
	json_t *f = json_object_get(body, "features");
	if (!json_is_array(f) || json_array_size(f) == 0 || json_array_size(f) > RP_LANE_NFEAT) {
		snprintf(err, errsz, "features: 1..%d feature names expected", RP_LANE_NFEAT);
		return -1;
	}
	for (size_t j = 0; j < json_array_size(f); j++) {
		const char *nm = json_string_value(json_array_get(f, j));
		int ix = rp_lane_feat_index(nm);
		for (size_t k = 0; ix >= 0 && k < q->d; k++)
			if (q->idx[k] == ix)
				ix = -1;
		if (ix < 0) {
			snprintf(err, errsz, "features[%zu]: unknown or repeated feature", j);
			return -1;
		}
		q->names[q->d] = rp_lane_feat_names[ix];
		q->idx[q->d++] = ix;
	}
	return 0;
}

/* Writes one leakage_reports row per violated rule; returns their ids. */
static json_t *record_leakage(struct rp_ctl *c, const struct ds_req *q,
			      const struct rp_leak_result *lr, const struct cand *cs,
			      size_t n, const double *mat, json_t **violations)
{
	json_t *ids = json_array();
	*violations = json_array();
	static const unsigned rules[] = {RP_LEAK_WINDOW_AFTER_AS_OF, RP_LEAK_FEATURE_AFTER_AS_OF,
					 RP_LEAK_IMMATURE_LABEL};
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		if (!(lr->rules & rules[i]))
			continue;
		size_t count = rules[i] == RP_LEAK_WINDOW_AFTER_AS_OF ? 1
			: rules[i] == RP_LEAK_FEATURE_AFTER_AS_OF ? lr->rows_after_as_of
			: lr->immature_labels;
		json_t *v = json_pack("{s:s,s:I,s:o}", "rule", rp_leak_reason(rules[i]),
				      "violations", (json_int_t)count, "examples",
				      examples(cs, n, mat, rules[i], q->t_as_of, q->t_cutoff));
		json_t *details = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:O,s:b}",
			"manifest_id", q->manifest_id, "platform_run_id", q->run,
			"as_of", q->as_of, "label_maturity_cutoff", q->cutoff,
			"window_start", q->wstart, "window_end", q->wend,
			"violation", v, "fail_closed", 1);
		json_array_append_new(*violations, v);
		char *dtxt = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(details);
		const char *p[3] = {q->manifest_id, rp_leak_reason(rules[i]), dtxt};
		PGresult *r = dtxt ? lane_pg(c, "INSERT INTO platform.leakage_reports"
			" (manifest_id, reason, details) VALUES ($1, $2, $3::jsonb)"
			" RETURNING report_id", 3, p, NULL, 0) : NULL;
		free(dtxt);
		if (r && PQntuples(r) == 1)
			json_array_append_new(ids, json_integer(strtoll(PQgetvalue(r, 0, 0), NULL, 10)));
		PQclear(r);
	}
	return ids;
}

/*
 * Stores manifest + rows in one transaction, unless the manifest id already
 * names a dataset: then the same fingerprint is the same dataset (200, an
 * idempotent retry) and a different one is a mutation attempt (409).
 */
static void store_dataset(struct rp_ctl *c, const struct ds_req *q, struct rp_ds_row *rows,
			  size_t n, const char *fp, size_t skipped, struct rp_resp *rs)
{
	char seed[1024], dsid[64], dsh[65], err[512] = "";
	snprintf(seed, sizeof seed, "%s\n%s", q->manifest_id, fp);
	sha_hex(seed, dsh);
	snprintf(dsid, sizeof dsid, "ds-%.24s", dsh);

	json_t *names = json_array(), *recs = json_array();
	for (size_t j = 0; j < q->d; j++)
		json_array_append_new(names, json_string(q->names[j]));
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array();
		for (size_t j = 0; j < q->d; j++)
			json_array_append_new(x, json_real(rows[i].x[j]));
		json_array_append_new(recs, json_pack("{s:I,s:s,s:s,s:s,s:o,s:i}", "ord",
			(json_int_t)i, "run", rows[i].platform_run_id, "cls", rows[i].event_class,
			"eid", rows[i].event_id, "x", x, "y", rows[i].label));
	}
	char *ntxt = json_dumps(names, JSON_COMPACT);
	char *rtxt = json_dumps(recs, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(names);
	json_decref(recs);
	char nrows[32];
	snprintf(nrows, sizeof nrows, "%zu", n);

	int status = 503;
	const char *reason = "database_unavailable";
	json_t *existing = NULL;
	pthread_mutex_lock(&c->pg_lock);
	const char *p1[1] = {q->manifest_id};
	PGresult *r = ntxt && rtxt ? lane_pg_locked(c, "SELECT dataset_id, fingerprint, rows"
		" FROM platform.dataset_manifests WHERE manifest_id = $1", 1, p1, err, sizeof err)
		: NULL;
	if (r && PQntuples(r) == 1) {
		existing = json_pack("{s:s,s:s,s:I}", "dataset_id", PQgetvalue(r, 0, 0),
				     "fingerprint", PQgetvalue(r, 0, 1),
				     "rows", (json_int_t)strtoll(PQgetvalue(r, 0, 2), NULL, 10));
		int same = strcmp(PQgetvalue(r, 0, 1), fp) == 0;
		status = same ? 200 : 409;
		reason = same ? "exists" : "dataset_immutable";
	} else if (r) {
		PQclear(r);
		const char *pr[2] = {dsid, rtxt};
		const char *pm[6] = {dsid, q->manifest_id, fp, q->as_of, q->cutoff, ntxt};
		r = lane_pg_locked(c, "BEGIN", 0, NULL, err, sizeof err);
		int ok = r != NULL;
		PQclear(r);
		r = ok ? lane_pg_locked(c, "INSERT INTO platform.dataset_rows SELECT $1, r.ord,"
			" r.run, r.cls, r.eid, r.x, r.y FROM jsonb_to_recordset($2::jsonb) AS"
			" r(ord int, run text, cls text, eid text, x jsonb, y int)", 2, pr,
			err, sizeof err) : NULL;
		ok = r && strcmp(PQcmdTuples(r), nrows) == 0;
		if (r && !ok)
			snprintf(err, sizeof err, "stored %s rows, expected %s", PQcmdTuples(r), nrows);
		PQclear(r);
		/* rows is counted from the table in the same transaction, so the
		 * manifest can never claim rows it does not have. */
		r = ok ? lane_pg_locked(c, "INSERT INTO platform.dataset_manifests (dataset_id,"
			" manifest_id, fingerprint, as_of, label_maturity_cutoff, features, rows)"
			" SELECT $1, $2, $3, $4::timestamptz, $5::timestamptz, $6::jsonb, count(*)"
			" FROM platform.dataset_rows WHERE dataset_id = $1", 6, pm, err, sizeof err)
			: NULL;
		ok = r != NULL;
		PQclear(r);
		r = lane_pg_locked(c, ok ? "COMMIT" : "ROLLBACK", 0, NULL, ok ? err : NULL,
				   ok ? sizeof err : 0);
		ok = ok && r != NULL;
		status = ok ? 200 : 503;
		reason = ok ? "accepted" : "database_unavailable";
	}
	PQclear(r);
	pthread_mutex_unlock(&c->pg_lock);
	free(ntxt);
	free(rtxt);

	if (status == 200 && existing) {
		atomic_fetch_add(&n_ds_accepted, 1);
		json_object_set_new(existing, "status", json_string("exists"));
		rp_ctl_reply_json(rs, 200, existing);
	} else if (status == 409) {
		atomic_fetch_add(&n_ds_conflict, 1);
		rp_ctl_reply_json(rs, 409, json_pack("{s:s,s:s,s:s,s:s,s:o}", "status", "conflict",
			"reason", reason, "manifest_id", q->manifest_id, "fingerprint", fp,
			"existing", existing));
	} else if (status == 200) {
		atomic_fetch_add(&n_ds_accepted, 1);
		rp_ctl_reply_json(rs, 200, json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "status", "accepted",
			"dataset_id", dsid, "fingerprint", fp, "rows", (json_int_t)n,
			"skipped_rows", (json_int_t)skipped, "manifest_id", q->manifest_id));
	} else {
		json_decref(existing);
		atomic_fetch_add(&n_ds_error, 1);
		lane_reply_error(rs, status, reason, err);
	}
}

static void free_cands(struct cand *cs, size_t n)
{
	for (size_t i = 0; cs && i < n; i++) {
		free(cs[i].cls);
		free(cs[i].eid);
		free(cs[i].feats);
	}
	free(cs);
}

static void h_datasets(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	json_t *body = lane_body(rq, rs);
	if (!body)
		return;
	struct ds_req q;
	char err[512];
	if (parse_ds_req(body, &q, err, sizeof err)) {
		atomic_fetch_add(&n_ds_error, 1);
		lane_reply_error(rs, 400, "missing_field", err);
		json_decref(body);
		return;
	}
	/* PostgreSQL parses the timestamps (any form it accepts) and hands
	 * back epochs for the pure rule evaluation. A window without an end
	 * ends at as_of: only an explicit later end is a leak. */
	const char *pt[3] = {q.as_of, q.cutoff, q.wend ? q.wend : q.as_of};
	PGresult *r = lane_pg(c, "SELECT extract(epoch FROM $1::timestamptz),"
		" extract(epoch FROM $2::timestamptz), extract(epoch FROM $3::timestamptz)",
		3, pt, err, sizeof err);
	if (!r) {
		atomic_fetch_add(&n_ds_error, 1);
		lane_reply_error(rs, lane_pg_input_error(err) ? 400 : 503,
				 lane_pg_input_error(err) ? "wrong_type" : "database_unavailable", err);
		json_decref(body);
		return;
	}
	q.t_as_of = strtod(PQgetvalue(r, 0, 0), NULL);
	q.t_cutoff = strtod(PQgetvalue(r, 0, 1), NULL);
	q.t_wend = strtod(PQgetvalue(r, 0, 2), NULL);
	PQclear(r);

	/* Without the decider's served-feature column the values a model saw
	 * cannot be recovered (decision_log carries no payload), and guessing
	 * them would train on something other than what was served: refuse. */
	if (!features_column_present(c)) {
		atomic_fetch_add(&n_ds_error, 1);
		lane_reply_error(rs, 503, "features_unavailable",
				 "platform.decision_log has no features column yet");
		json_decref(body);
		return;
	}

	/* First decision per tuple (a replayed duplicate is not a second
	 * sample), every label row joined to it (the leakage check must see
	 * them all; the newest one is the label). */
	const char *ps[3] = {q.run, q.wstart, q.wend ? q.wend : q.as_of};
	r = lane_pg(c,
		"SELECT d.event_class, d.event_id, extract(epoch FROM d.decided_at), d.features::text,"
		" l.label, extract(epoch FROM l.mature_at)"
		" FROM (SELECT DISTINCT ON (event_class, event_id) event_class, event_id,"
		"       decided_at, features FROM platform.decision_log"
		"       WHERE platform_run_id = $1"
		"         AND ($2::timestamptz IS NULL OR decided_at >= $2::timestamptz)"
		"         AND decided_at <= $3::timestamptz"
		"       ORDER BY event_class, event_id, decision_id) d"
		" JOIN platform.labels l ON l.platform_run_id = $1"
		"  AND l.event_class = d.event_class AND l.event_id = d.event_id"
		" ORDER BY d.event_class, d.event_id, l.label_id", 3, ps, err, sizeof err);
	if (!r) {
		atomic_fetch_add(&n_ds_error, 1);
		lane_reply_error(rs, lane_pg_input_error(err) ? 400 : 503,
				 lane_pg_input_error(err) ? "wrong_type" : "database_unavailable", err);
		json_decref(body);
		return;
	}
	size_t nr = (size_t)PQntuples(r), nc = 0;
	struct cand *cs = calloc(nr ? nr : 1, sizeof *cs);
	double *mat = calloc(nr ? nr : 1, sizeof *mat), *at = calloc(nr ? nr : 1, sizeof *at);
	for (size_t i = 0; cs && mat && at && i < nr; i++) {
		const char *cls = PQgetvalue(r, (int)i, 0), *eid = PQgetvalue(r, (int)i, 1);
		if (nc == 0 || strcmp(cs[nc - 1].cls, cls) || strcmp(cs[nc - 1].eid, eid)) {
			struct cand *k = &cs[nc++];
			k->cls = strdup(cls);
			k->eid = strdup(eid);
			k->feats = PQgetisnull(r, (int)i, 3) ? NULL : strdup(PQgetvalue(r, (int)i, 3));
			k->at = strtod(PQgetvalue(r, (int)i, 2), NULL);
			k->first_label = i;
			at[nc - 1] = k->at;
		}
		cs[nc - 1].label = atoi(PQgetvalue(r, (int)i, 4));
		cs[nc - 1].nlabels++;
		mat[i] = strtod(PQgetvalue(r, (int)i, 5), NULL);
	}
	PQclear(r);
	if (!cs || !mat || !at) {
		free(cs), free(mat), free(at);
		lane_reply_error(rs, 500, "out_of_memory", "");
		json_decref(body);
		return;
	}

	struct rp_leak_input li = {.as_of = q.t_as_of, .cutoff = q.t_cutoff,
				   .window_end = q.t_wend, .row_at = at, .nrows = nc,
				   .label_mature = mat, .nlabels = nr};
	struct rp_leak_result lr;
	rp_leak_evaluate(&li, &lr);
	if (lr.rules && rp_ctl_defect(c, "leak-accepted")) {
		rp_log("warn", "msg=leakage_ignored defect=leak-accepted manifest_id=%s rules=%u",
		       q.manifest_id, lr.rules);
		lr.rules = 0;
	}
	if (lr.rules) {
		json_t *viol = NULL;
		json_t *ids = record_leakage(c, &q, &lr, cs, nc, mat, &viol);
		atomic_fetch_add(&n_ds_rejected, 1);
		atomic_fetch_add(&n_leak_rejections, 1);
		rp_log("info", "msg=dataset_rejected manifest_id=%s rules=%u", q.manifest_id, lr.rules);
		const char *first = rp_leak_reason(lr.rules & RP_LEAK_WINDOW_AFTER_AS_OF ?
			RP_LEAK_WINDOW_AFTER_AS_OF : lr.rules & RP_LEAK_FEATURE_AFTER_AS_OF ?
			RP_LEAK_FEATURE_AFTER_AS_OF : RP_LEAK_IMMATURE_LABEL);
		rp_ctl_reply_json(rs, 422, json_pack("{s:s,s:s,s:s,s:o,s:o}", "status", "rejected",
			"reason", first, "manifest_id", q.manifest_id, "violations", viol,
			"report_ids", ids));
		free_cands(cs, nc), free(mat), free(at);
		json_decref(body);
		return;
	}

	/* Feature vectors; a row whose served features lack a requested one
	 * (e.g. a degraded decision without txn_count_24h) is left out and
	 * counted, never filled with a made-up value. */
	struct rp_ds_row *rows = calloc(nc ? nc : 1, sizeof *rows);
	size_t n = 0, skipped = 0;
	for (size_t i = 0; rows && i < nc; i++) {
		json_t *f = cs[i].feats ? json_loads(cs[i].feats, 0, NULL) : NULL;
		struct rp_ds_row row = {0};
		int ok = json_is_object(f);
		for (size_t j = 0; ok && j < q.d; j++)
			ok = feature_value(f, q.names[j], &row.x[j]) == 0;
		json_decref(f);
		if (!ok) {
			skipped++;
			continue;
		}
		row.platform_run_id = strdup(q.run);
		row.event_class = strdup(cs[i].cls);
		row.event_id = strdup(cs[i].eid);
		row.label = cs[i].label;
		rows[n++] = row;
	}
	free_cands(cs, nc), free(mat), free(at);
	if (!rows || n == 0) {
		free_rows(rows, n);
		atomic_fetch_add(&n_ds_empty, 1);
		rp_ctl_reply_json(rs, 422, json_pack("{s:s,s:s,s:s,s:I}", "status", "rejected",
			"reason", "empty_dataset", "manifest_id", q.manifest_id,
			"skipped_rows", (json_int_t)skipped));
		json_decref(body);
		return;
	}
	char fp[65];
	rp_ds_fingerprint(rows, n, q.names, q.d, fp);
	store_dataset(c, &q, rows, n, fp, skipped, rs);
	free_rows(rows, n);
	json_decref(body);
}

/* ---- POST /train --------------------------------------------------------------- */

/* The registry's version rule, checked before any training happens so a bad
 * name never leaves a training run behind: no '+', which the decider uses for
 * "<version>+fallback". */
static int valid_version(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 120)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || strchr("._:-", v[i])))
			return 0;
	return 1;
}

struct train_set {
	const char *names[RP_LANE_NFEAT];
	int idx[RP_LANE_NFEAT];
	size_t d, n;
	struct rp_ds_row *rows;
	char fingerprint[65];
};

/* Loads a dataset and re-verifies its fingerprint: 0, or an HTTP status. */
static int load_dataset(struct rp_ctl *c, const char *dsid, struct train_set *ts,
			char *err, size_t errsz)
{
	memset(ts, 0, sizeof *ts);
	const char *p[1] = {dsid};
	PGresult *r = lane_pg(c, "SELECT fingerprint, features::text, rows FROM"
			      " platform.dataset_manifests WHERE dataset_id = $1", 1, p, err, errsz);
	if (!r)
		return 503;
	if (PQntuples(r) != 1) {
		PQclear(r);
		snprintf(err, errsz, "no dataset %s", dsid);
		return 404;
	}
	snprintf(ts->fingerprint, sizeof ts->fingerprint, "%s", PQgetvalue(r, 0, 0));
	long long want = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	json_t *names = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
	PQclear(r);
	if (want <= 0) {
		/* e.g. the registry's bootstrap manifest: nothing to learn from. */
		json_decref(names);
		snprintf(err, errsz, "dataset %s has no rows", dsid);
		return 422;
	}
	for (size_t j = 0; j < json_array_size(names) && ts->d < RP_LANE_NFEAT; j++) {
		int ix = rp_lane_feat_index(json_string_value(json_array_get(names, j)));
		if (ix < 0)
			continue;
		ts->names[ts->d] = rp_lane_feat_names[ix];
		ts->idx[ts->d++] = ix;
	}
	size_t nnames = json_array_size(names);
	json_decref(names);
	if (ts->d == 0 || ts->d != nnames) {
		snprintf(err, errsz, "dataset %s has an unreadable feature list", dsid);
		return 409;
	}
	r = lane_pg(c, "SELECT platform_run_id, event_class, event_id, x::text, label FROM"
		    " platform.dataset_rows WHERE dataset_id = $1 ORDER BY ord", 1, p, err, errsz);
	if (!r)
		return 503;
	size_t nr = (size_t)PQntuples(r);
	ts->rows = calloc(nr ? nr : 1, sizeof *ts->rows);
	for (size_t i = 0; ts->rows && i < nr; i++) {
		struct rp_ds_row *row = &ts->rows[ts->n++];
		row->platform_run_id = strdup(PQgetvalue(r, (int)i, 0));
		row->event_class = strdup(PQgetvalue(r, (int)i, 1));
		row->event_id = strdup(PQgetvalue(r, (int)i, 2));
		row->label = atoi(PQgetvalue(r, (int)i, 4));
		json_t *x = json_loads(PQgetvalue(r, (int)i, 3), JSON_DECODE_ANY, NULL);
		for (size_t j = 0; j < ts->d; j++)
			row->x[j] = json_number_value(json_array_get(x, j));
		json_decref(x);
	}
	PQclear(r);
	if (!ts->rows)
		return 500;
	char fp[65];
	rp_ds_fingerprint(ts->rows, ts->n, ts->names, ts->d, fp);
	/* Training only what the manifest vouches for (FM-LN-02). */
	if ((long long)ts->n != want || strcmp(fp, ts->fingerprint) != 0) {
		snprintf(err, errsz, "dataset %s: stored rows (%zu, %s) do not match the manifest"
			 " (%lld, %s)", dsid, ts->n, fp, want, ts->fingerprint);
		return 409;
	}
	return 0;
}

static void h_train(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	json_t *body = lane_body(rq, rs);
	if (!body)
		return;
	const char *dsid = str_member(body, "dataset_id"), *ver = str_member(body, "version");
	const char *code = str_member(body, "code_digest"), *conf = str_member(body, "config_digest");
	char err[512] = "";
	if (!dsid || !ver || !code || !conf || !valid_version(ver)) {
		lane_reply_error(rs, 400, "missing_field", "dataset_id, version (1-120 of"
				 " [A-Za-z0-9._:-]), code_digest, config_digest required");
		json_decref(body);
		return;
	}
	const char *pv[1] = {ver};
	PGresult *r = lane_pg(c, "SELECT 1 FROM platform.model_registry WHERE version = $1",
			      1, pv, err, sizeof err);
	if (!r || PQntuples(r) > 0) {
		int exists = r != NULL;
		PQclear(r);
		lane_reply_error(rs, exists ? 409 : 503, exists ? "version_exists" : "registry_unavailable",
				 exists ? "model versions are append-only" : err);
		json_decref(body);
		return;
	}
	PQclear(r);

	struct train_set ts;
	int st = load_dataset(c, dsid, &ts, err, sizeof err);

	size_t pos = 0;
	for (size_t i = 0; st == 0 && i < ts.n; i++)
		pos += ts.rows[i].label != 0;
	if (st == 0 && (pos == 0 || pos == ts.n)) {
		/* One class has no decision boundary to learn. */
		snprintf(err, sizeof err, "dataset %s has %zu rows of a single class", dsid, ts.n);
		st = 422;
	}
	if (st) {
		free_rows(ts.rows, ts.n);
		lane_reply_error(rs, st, st == 404 ? "unknown_dataset" : st == 422 ?
				 (ts.n ? "single_class" : "empty_dataset")
				 : st == 409 ? "dataset_fingerprint_mismatch" : "database_unavailable", err);
		json_decref(body);
		return;
	}

	char started[32];
	rp_now_iso8601(started);
	double *X = calloc(ts.n * ts.d, sizeof *X), *col = calloc(ts.n, sizeof *col);
	int *y = calloc(ts.n, sizeof *y);
	double w[RP_LANE_NFEAT] = {0}, bias = 0;
	struct rp_feat_stats stats[RP_LANE_NFEAT];
	char *wtxt = NULL, sha[65] = "";
	if (X && y && col) {
		for (size_t i = 0; i < ts.n; i++) {
			y[i] = ts.rows[i].label;
			for (size_t j = 0; j < ts.d; j++)
				X[i * ts.d + j] = ts.rows[i].x[j];
		}
		for (size_t j = 0; j < ts.d; j++) {
			for (size_t i = 0; i < ts.n; i++)
				col[i] = ts.rows[i].x[j];
			rp_feat_stats_compute(col, ts.n, &stats[j]);
		}
		if (rp_lr_train(X, y, ts.n, ts.d, &rp_lr_default_cfg, w, &bias) == 0)
			wtxt = rp_weights_canonical(ts.idx, ts.d, w, bias, sha);
	}
	double acc = wtxt ? rp_lr_accuracy(X, y, ts.n, ts.d, w, bias) : 0;
	free(X), free(y), free(col);
	free_rows(ts.rows, ts.n);
	if (!wtxt) {
		lane_reply_error(rs, 500, "training_failed", "allocation or non-finite weights");
		json_decref(body);
		return;
	}

	json_t *fstats = json_object();
	for (size_t j = 0; j < ts.d; j++)
		json_object_set_new(fstats, ts.names[j], rp_feat_stats_json(&stats[j]));
	json_t *contract = rp_feature_contract(ts.idx, ts.d, stats);
	char *stxt = json_dumps(fstats, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	char *ctxt = json_dumps(contract, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(fstats);
	json_decref(contract);

	char seed[1024], th[65], trid[64];
	snprintf(seed, sizeof seed, "%s\n%s\n%s\n%s\n%s", dsid, ver, code, conf, started);
	sha_hex(seed, th);
	snprintf(trid, sizeof trid, "tr-%.24s", th);

	/* The training run goes in first, then the version is registered
	 * through the registry's own path (validation, canonical weights,
	 * its planted defects). A failure in between leaves a run without a
	 * version - visible, harmless - never a version without its run. */
	const char *pt[6] = {trid, dsid, code, conf, stxt, started};
	r = stxt && ctxt ? lane_pg(c, "INSERT INTO platform.training_runs (training_run_id,"
		" dataset_id, code_digest, config_digest, feature_stats, started_at, finished_at)"
		" VALUES ($1, $2, $3, $4, $5::jsonb, $6::timestamptz, clock_timestamp())",
		6, pt, err, sizeof err) : NULL;
	int status = r ? 201 : 503;
	PQclear(r);
	json_t *wj = json_loads(wtxt, 0, NULL);
	if (status == 201) {
		json_t *reg = json_pack("{s:s,s:O,s:s,s:s,s:o,s:i}", "version", ver, "weights", wj,
					"artifact_sha256", sha, "training_run_id", trid,
					"feature_contract", json_loads(ctxt, 0, NULL),
					"extra_latency_ms", 0);
		status = reg ? rp_registry_register(c, reg, err, sizeof err) : 500;
		json_decref(reg);
	}
	free(stxt), free(ctxt), free(wtxt);
	if (status != 201) {
		json_decref(wj);
		lane_reply_error(rs, status, status == 409 ? "version_exists"
				 : status == 400 ? "wrong_type" : "registry_unavailable", err);
		json_decref(body);
		return;
	}
	atomic_fetch_add(&n_training_runs, 1);
	rp_log("info", "msg=model_trained version=%s training_run_id=%s dataset_id=%s rows=%zu"
	       " accuracy=%.4f artifact_sha256=%s", ver, trid, dsid, ts.n, acc, sha);
	rp_ctl_reply_json(rs, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:f,s:o}", "status", "trained",
		"version", ver, "training_run_id", trid, "artifact_sha256", sha, "dataset_id", dsid,
		"rows", (json_int_t)ts.n, "train_accuracy", acc, "weights", wj ? wj : json_null()));
	json_decref(body);
}

/* ---- metrics and module -------------------------------------------------------- */

static void learning_metrics(struct rp_ctl *c, char *buf, size_t bufsz, size_t *len)
{
	if (*len >= bufsz)
		return;
	int k = snprintf(buf + *len, bufsz - *len,
		"# HELP rp_datasets_total Dataset build requests by outcome.\n"
		"# TYPE rp_datasets_total counter\n"
		"rp_datasets_total{outcome=\"accepted\"} %lu\n"
		"rp_datasets_total{outcome=\"rejected_leakage\"} %lu\n"
		"rp_datasets_total{outcome=\"conflict\"} %lu\n"
		"rp_datasets_total{outcome=\"empty\"} %lu\n"
		"rp_datasets_total{outcome=\"error\"} %lu\n"
		"# HELP rp_leakage_rejections_total Datasets refused by the leakage checks.\n"
		"# TYPE rp_leakage_rejections_total counter\n"
		"rp_leakage_rejections_total %lu\n"
		"# HELP rp_training_runs_total Training runs that registered a version.\n"
		"# TYPE rp_training_runs_total counter\n"
		"rp_training_runs_total %lu\n",
		atomic_load(&n_ds_accepted), atomic_load(&n_ds_rejected),
		atomic_load(&n_ds_conflict), atomic_load(&n_ds_empty), atomic_load(&n_ds_error),
		atomic_load(&n_leak_rejections), atomic_load(&n_training_runs));
	if (k > 0)
		*len += (size_t)k < bufsz - *len ? (size_t)k : bufsz - *len - 1;
}

static const struct rp_route learning_routes[] = {
	{"POST", "/labels", h_labels},
	{"POST", "/features", h_features},
	{"POST", "/datasets", h_datasets},
	{"POST", "/train", h_train},
	{NULL, NULL, NULL},
};

const struct rp_module rp_module_learning = {
	.name = "learning",
	.routes = learning_routes,
	.init = learning_init,
	.tick = NULL,
	.metrics = learning_metrics,
};
