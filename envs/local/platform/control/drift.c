/*
 * drift.c - rp-control's drift monitor (contract §9, seed T1.2 / DR-09).
 *
 * Every 5 s and on POST /drift/check it compares the served features of the
 * decisions in a rolling window (decision_log.features) with the training
 * histograms of the active model (model_registry -> training_runs
 * .feature_stats), one PSI per feature over the training bins. PSI >= 0.2 is
 * a warning, >= 0.5 critical (seed 003). A warning is recorded
 * (drift_events); a critical drift is recorded, raised as a posture event and
 * mitigated - rollback to the last known good version or the degrade key -
 * because monitoring without response is theatre (T1.2).
 *
 * Mitigation happens once per episode: an episode starts when PSI reaches
 * warn and ends only when every judged feature is back below warn, so a
 * persisting shift does not roll back version after version every tick.
 * The planted defect `drift-blind` keeps the PSI gauges but never records,
 * raises or mitigates anything.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lane.h"
#include "lane_io.h"
#include "rp_control.h"
#include "rp_core.h"

#define TICK_PERIOD_S 5
#define DEGRADE_KEY "fp:ctl:degrade"
#define DEGRADE_REASON "drift_mitigation"
#define MAX_WINDOW_S 86400
#define MAX_WINDOW_ROWS 200000    /* bounds one check's memory */

static const char *const ddl[] = {
	/* main.c creates the schema, platform.rp_append_only() and
	 * posture_events (§10) before any module init. */
	"CREATE TABLE IF NOT EXISTS platform.drift_events ("
	" drift_id bigserial PRIMARY KEY, feature text NOT NULL, psi double precision NOT NULL,"
	" severity text NOT NULL, window_start timestamptz, window_end timestamptz,"
	" action text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
	"CREATE OR REPLACE TRIGGER drift_events_append_only BEFORE UPDATE OR DELETE"
	" ON platform.drift_events FOR EACH ROW EXECUTE FUNCTION platform.rp_append_only()",
	NULL,
};

/* Everything below is guarded by mu; a check runs whole under it, so the
 * ticker and an HTTP check never interleave their episode updates. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int window_s;
	char mitigation[16];        /* "rollback" | "degrade" */
	char run[256];              /* restrict to one platform_run_id, "" = all */
	int min_samples;            /* fewer served values: no judgment (noise) */
} cfg = {60, "rollback", "", 30};
static struct {
	struct rp_drift_episode e;
	int posted;                 /* the episode's posture row is written */
	char version[128], action[16];
} ep;
static double psi_last[RP_LANE_NFEAT];
static int psi_valid[RP_LANE_NFEAT];
static struct timespec last_run;
static atomic_ulong ev_warn, ev_crit;

static int drift_init(struct rp_ctl *c)
{
	return lane_pg_ddl(c, ddl);
}

/* ---- one check ----------------------------------------------------------------- */

struct check {
	int judged;
	const char *why;            /* why no judgment, or NULL */
	char version[128], ws[64], we[64];
	int level;
	double psi[RP_LANE_NFEAT];
	size_t samples[RP_LANE_NFEAT];
	int have[RP_LANE_NFEAT];    /* training stats present for the feature */
	int judged_f[RP_LANE_NFEAT];
	size_t rows;
	const char *action;         /* what this check did */
};

/* Loads the active model's training histograms; 0 when some exist. */
static int load_stats(struct rp_ctl *c, struct check *ck, struct rp_feat_stats *st)
{
	PGresult *r = lane_pg(c, "SELECT to_regclass('platform.active_model') IS NOT NULL",
			      0, NULL, NULL, 0);
	int has_view = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!has_view) {
		ck->why = "no_active_model";
		return -1;
	}
	/* model_registry/training_runs may be missing on a half-initialised
	 * platform: the query then fails and there is simply no judgment. */
	r = lane_pg(c, "SELECT a.version, t.feature_stats::text FROM platform.active_model a"
		    " LEFT JOIN platform.model_registry m ON m.version = a.version"
		    " LEFT JOIN platform.training_runs t ON t.training_run_id = m.training_run_id"
		    " LIMIT 1", 0, NULL, NULL, 0);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		ck->why = "no_active_model";
		return -1;
	}
	snprintf(ck->version, sizeof ck->version, "%s", PQgetvalue(r, 0, 0));
	json_t *js = PQgetisnull(r, 0, 1) ? NULL : json_loads(PQgetvalue(r, 0, 1), 0, NULL);
	PQclear(r);
	int any = 0;
	for (int i = 0; i < RP_LANE_NFEAT; i++) {
		ck->have[i] = rp_feat_stats_parse(json_object_get(js, rp_lane_feat_names[i]),
						  &st[i]) == 0;
		any |= ck->have[i];
	}
	json_decref(js);
	if (!any) {
		ck->why = "no_training_stats";
		return -1;
	}
	return 0;
}

/* Computes PSI per feature over the window; mu held. */
static void compute(struct rp_ctl *c, struct check *ck)
{
	struct rp_feat_stats st[RP_LANE_NFEAT];
	memset(ck, 0, sizeof *ck);
	ck->action = "none";
	/* The gauges show the latest check only: a PSI from an earlier model
	 * or window must not linger as if it were current. */
	memset(psi_valid, 0, sizeof psi_valid);
	if (load_stats(c, ck, st))
		return;
	char win[32], lim[32];
	snprintf(win, sizeof win, "%d", cfg.window_s);
	snprintf(lim, sizeof lim, "%d", MAX_WINDOW_ROWS);
	const char *p[3] = {win, cfg.run[0] ? cfg.run : NULL, lim};
	PGresult *r = lane_pg(c,
		"WITH w AS (SELECT clock_timestamp() - make_interval(secs => $1::double precision)"
		"           AS ws, clock_timestamp() AS we)"
		" SELECT to_char(w.ws AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		"        to_char(w.we AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), d.f"
		" FROM w LEFT JOIN LATERAL (SELECT features::text AS f FROM platform.decision_log"
		"   WHERE decided_at >= w.ws AND decided_at <= w.we AND features IS NOT NULL"
		"     AND ($2::text IS NULL OR platform_run_id = $2::text)"
		"   ORDER BY decided_at DESC LIMIT $3::int) d ON true", 3, p, NULL, 0);
	if (!r || PQntuples(r) < 1) {
		PQclear(r);
		ck->why = "features_unavailable";
		return;
	}
	snprintf(ck->ws, sizeof ck->ws, "%s", PQgetvalue(r, 0, 0));
	snprintf(ck->we, sizeof ck->we, "%s", PQgetvalue(r, 0, 1));
	size_t n = (size_t)PQntuples(r);
	double *vals = calloc(n * RP_LANE_NFEAT, sizeof *vals);
	if (!vals) {
		PQclear(r);
		ck->why = "out_of_memory";
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (PQgetisnull(r, (int)i, 2))
			continue;
		json_t *f = json_loads(PQgetvalue(r, (int)i, 2), 0, NULL);
		ck->rows += json_is_object(f);
		for (int k = 0; json_is_object(f) && k < RP_LANE_NFEAT; k++) {
			json_t *v = json_object_get(f, rp_lane_feat_names[k]);
			double x;
			if (json_is_boolean(v))
				x = json_is_true(v) ? 1.0 : 0.0;
			else if (json_is_number(v))
				x = json_number_value(v);
			else
				continue;
			if (isfinite(x))
				vals[k * n + ck->samples[k]++] = x;
		}
		json_decref(f);
	}
	PQclear(r);
	for (int k = 0; k < RP_LANE_NFEAT; k++) {
		if (!ck->have[k] || ck->samples[k] < (size_t)cfg.min_samples)
			continue;
		uint64_t act[RP_PSI_BINS];
		rp_psi_bin_counts(vals + (size_t)k * n, ck->samples[k], st[k].min, st[k].max,
				  RP_PSI_BINS, act);
		double psi = rp_psi(st[k].bins, act, RP_PSI_BINS);
		if (psi < 0)
			continue;
		ck->psi[k] = psi;
		ck->judged_f[k] = 1;
		ck->judged = 1;
		ck->level = rp_psi_level(psi) > ck->level ? rp_psi_level(psi) : ck->level;
		psi_last[k] = psi;
		psi_valid[k] = 1;
	}
	free(vals);
	if (!ck->judged)
		ck->why = "too_few_samples";
}

static json_t *psi_json(const struct check *ck)
{
	json_t *o = json_object();
	for (int k = 0; k < RP_LANE_NFEAT; k++)
		if (ck->judged_f[k])
			json_object_set_new(o, rp_lane_feat_names[k], json_real(ck->psi[k]));
	return o;
}

static void record_events(struct rp_ctl *c, const struct check *ck, const char *crit_action)
{
	for (int k = 0; k < RP_LANE_NFEAT; k++) {
		int lvl = ck->judged_f[k] ? rp_psi_level(ck->psi[k]) : 0;
		if (lvl == 0)
			continue;
		char psi[64];
		snprintf(psi, sizeof psi, "%.17g", ck->psi[k]);
		const char *p[6] = {rp_lane_feat_names[k], psi, rp_psi_severity(ck->psi[k]),
				    ck->ws, ck->we, lvl == 2 ? crit_action : "none"};
		PQclear(lane_pg(c, "INSERT INTO platform.drift_events (feature, psi, severity,"
				" window_start, window_end, action) VALUES ($1, $2::double precision,"
				" $3, $4::timestamptz, $5::timestamptz, $6)", 6, p, NULL, 0));
		atomic_fetch_add(lvl == 2 ? &ev_crit : &ev_warn, 1);
	}
}

/* Applies the mitigation; returns the action taken or NULL on failure. */
static const char *mitigate(struct rp_ctl *c, const char *reason, char *err, size_t errsz)
{
	err[0] = '\0';
	if (strcmp(cfg.mitigation, "rollback") == 0) {
		if (rp_registry_rollback(c, "drift-monitor", reason, err, errsz) == 0)
			return "rollback";
		/* No known good version to go back to (or the registry
		 * refused): degrading still takes the drifted model out of
		 * the decision path, which is the point of mitigating. */
		rp_log("warn", "msg=drift_rollback_failed error=\"%s\" fallback=degrade", err);
	}
	redisReply *rep = rp_ctl_redis(c, "SET %s %s", DEGRADE_KEY, DEGRADE_REASON);
	if (!rep) {
		size_t l = strlen(err);
		snprintf(err + l, errsz - l, "%sdegrade: Redis unavailable", l ? "; " : "");
		return NULL;
	}
	freeReplyObject(rep);
	return "degrade";
}

/* Episode bookkeeping after a judged check; mu held. */
static void act(struct rp_ctl *c, struct check *ck)
{
	int was_active = ep.e.active;
	unsigned due = rp_drift_episode_step(&ep.e, ck->level);
	if (due & RP_EP_ENDED) {
		rp_log("info", "msg=drift_episode_ended model_version=%s", ep.version);
		memset(&ep, 0, sizeof ep);
		return;
	}
	if (ck->level == 0)
		return;
	if (!was_active)
		snprintf(ep.version, sizeof ep.version, "%s", ck->version);
	char reason[256] = "drift", err[256] = "";
	for (int k = 0; k < RP_LANE_NFEAT; k++) {
		size_t l = strlen(reason);
		if (ck->judged_f[k] && rp_psi_level(ck->psi[k]) > 0)
			snprintf(reason + l, sizeof reason - l, " %s psi=%.4f", rp_lane_feat_names[k],
				 ck->psi[k]);
	}
	if (due & RP_EP_RECORD) {
		record_events(c, ck, cfg.mitigation);
		rp_log("warn", "msg=drift_detected severity=%s model_version=%s reason=\"%s\"",
		       ck->level == 2 ? "critical" : "warn", ck->version, reason);
	}
	if (!(due & RP_EP_MITIGATE))
		return;
	const char *done = mitigate(c, reason, err, sizeof err);
	/* One posture row per episode, plus one when a failed attempt finally
	 * succeeds: the evidence shows the attempt and the outcome. */
	if (!ep.posted || done) {
		json_t *d = json_pack("{s:o,s:s,s:s,s:s,s:b,s:s,s:s}", "psi", psi_json(ck),
			"requested", cfg.mitigation, "window_start", ck->ws, "window_end", ck->we,
			"applied", done != NULL, "error", err, "platform_run_id", cfg.run);
		char *dtxt = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))
			: NULL;
		json_decref(d);
		rp_ctl_posture(c, "drift", "critical", reason, done ? done : cfg.mitigation,
			       ck->version, dtxt ? dtxt : "{}");
		free(dtxt);
		ep.posted = 1;
	}
	if (done) {
		ep.e.mitigated = 1;
		snprintf(ep.action, sizeof ep.action, "%s", done);
		ck->action = done;
		rp_log("warn", "msg=drift_mitigated action=%s model_version=%s", done, ck->version);
	} else {
		ck->action = "mitigation_failed";
	}
}

static json_t *run_check(struct rp_ctl *c)
{
	struct check ck;
	compute(c, &ck);
	int blind = rp_ctl_defect(c, "drift-blind");
	if (ck.judged && !blind)
		act(c, &ck);
	clock_gettime(CLOCK_MONOTONIC, &last_run);
	json_t *psi = psi_json(&ck), *samples = json_object();
	for (int k = 0; k < RP_LANE_NFEAT; k++)
		if (ck.have[k])
			json_object_set_new(samples, rp_lane_feat_names[k],
					    json_integer((json_int_t)ck.samples[k]));
	/* The window bounds are exactly what the drift_events rows carry, so a
	 * caller can find the evidence of this very check. */
	return json_pack("{s:s,s:b,s:s?,s:s,s:s?,s:s?,s:s,s:o,s:o,s:I,s:s,s:{s:b,s:s,s:b,s:s}}",
		"status", "ok", "judged", ck.judged, "reason", ck.why,
		"model_version", ck.version, "window_start", ck.ws[0] ? ck.ws : NULL,
		"window_end", ck.we[0] ? ck.we : NULL, "severity", ck.judged ?
			(ck.level == 2 ? "critical" : ck.level ? "warn" : "none") : "unknown",
		"psi", psi, "samples", samples, "rows", (json_int_t)ck.rows,
		"action", blind ? "none" : ck.action,
		"episode", "active", ep.e.active, "level", ep.e.level == 2 ? "critical" :
			ep.e.level ? "warn" : "none", "mitigated", ep.e.mitigated,
		"mitigation", ep.action);
}

/* ---- HTTP ---------------------------------------------------------------------- */

static json_t *config_json(void)
{
	return json_pack("{s:i,s:s,s:s?,s:i}", "window_s", cfg.window_s, "mitigation",
			 cfg.mitigation, "platform_run_id", cfg.run[0] ? cfg.run : NULL,
			 "min_samples", cfg.min_samples);
}

/* Applies the optional config members of a body; mu held. -1 on bad input. */
static int apply_config(const json_t *b, char *err, size_t errsz)
{
	json_t *w = json_object_get(b, "window_s"), *m = json_object_get(b, "mitigation");
	json_t *run = json_object_get(b, "platform_run_id"), *ms = json_object_get(b, "min_samples");
	if (w && (!json_is_integer(w) || json_integer_value(w) < 1 ||
		  json_integer_value(w) > MAX_WINDOW_S)) {
		snprintf(err, errsz, "window_s: integer 1..%d expected", MAX_WINDOW_S);
		return -1;
	}
	if (m && (!json_is_string(m) || (strcmp(json_string_value(m), "rollback") &&
					 strcmp(json_string_value(m), "degrade")))) {
		snprintf(err, errsz, "mitigation: \"rollback\" or \"degrade\" expected");
		return -1;
	}
	if (run && !json_is_null(run) &&
	    (!json_is_string(run) || json_string_length(run) >= sizeof cfg.run)) {
		snprintf(err, errsz, "platform_run_id: string or null expected");
		return -1;
	}
	if (ms && (!json_is_integer(ms) || json_integer_value(ms) < 1 ||
		   json_integer_value(ms) > 1000000)) {
		snprintf(err, errsz, "min_samples: integer 1..1000000 expected");
		return -1;
	}
	if (w)
		cfg.window_s = (int)json_integer_value(w);
	if (m)
		snprintf(cfg.mitigation, sizeof cfg.mitigation, "%s", json_string_value(m));
	if (run) {
		const char *nr = json_is_string(run) ? json_string_value(run) : "";
		/* Another population is another episode: a drift judged on
		 * one run must not suppress the response to the next. */
		if (strcmp(nr, cfg.run) != 0)
			memset(&ep, 0, sizeof ep);
		snprintf(cfg.run, sizeof cfg.run, "%s", nr);
	}
	if (ms)
		cfg.min_samples = (int)json_integer_value(ms);
	return 0;
}

/* An empty body is allowed on /drift/check; anything else must be an object. */
static json_t *optional_body(const struct rp_req *rq, struct rp_resp *rs)
{
	size_t i = 0;
	while (i < rq->body_len && (rq->body[i] == ' ' || rq->body[i] == '\n' ||
				    rq->body[i] == '\r' || rq->body[i] == '\t'))
		i++;
	if (i == rq->body_len)
		return json_object();
	return lane_body(rq, rs);
}

static void h_config(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	json_t *b = optional_body(rq, rs);
	if (!b)
		return;
	char err[128];
	pthread_mutex_lock(&mu);
	int rc = apply_config(b, err, sizeof err);
	json_t *out = rc ? NULL : config_json();
	pthread_mutex_unlock(&mu);
	json_decref(b);
	if (rc)
		lane_reply_error(rs, 400, "wrong_type", err);
	else
		rp_ctl_reply_json(rs, 200, out);
}

static void h_check(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	json_t *b = optional_body(rq, rs);
	if (!b)
		return;
	char err[128];
	pthread_mutex_lock(&mu);
	/* Body members persist like /drift/config: the ticker then keeps
	 * watching with the same window and scope the caller chose. */
	int rc = apply_config(b, err, sizeof err);
	json_t *out = rc ? NULL : run_check(c);
	if (out)
		json_object_set_new(out, "config", config_json());
	pthread_mutex_unlock(&mu);
	json_decref(b);
	if (rc)
		lane_reply_error(rs, 400, "wrong_type", err);
	else
		rp_ctl_reply_json(rs, 200, out);
}

static void h_reset(struct rp_ctl *c, const struct rp_req *rq, struct rp_resp *rs)
{
	pthread_mutex_lock(&mu);
	memset(&ep, 0, sizeof ep);
	pthread_mutex_unlock(&mu);
	/* Only a degrade this monitor set is lifted; another reason belongs
	 * to whoever set it. The compare-and-delete runs in Redis atomically. */
	redisReply *rep = rp_ctl_redis(c, "EVAL %s 1 %s %s",
		"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1])"
		" else return 0 end", DEGRADE_KEY, DEGRADE_REASON);
	if (!rep) {
		lane_reply_error(rs, 503, "control_store_unavailable", "could not clear " DEGRADE_KEY);
		return;
	}
	long long cleared = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	rp_log("info", "msg=drift_reset degrade_cleared=%lld", cleared);
	rp_ctl_reply(rs, 200, "{\"status\":\"ok\",\"degrade_cleared\":%s}", cleared ? "true" : "false");
}

static void drift_tick(struct rp_ctl *c)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&mu);
	if (last_run.tv_sec == 0 || now.tv_sec - last_run.tv_sec >= TICK_PERIOD_S)
		json_decref(run_check(c));
	pthread_mutex_unlock(&mu);
}

static void drift_metrics(struct rp_ctl *c, char *buf, size_t bufsz, size_t *len)
{
	pthread_mutex_lock(&mu);
	double psi[RP_LANE_NFEAT];
	int valid[RP_LANE_NFEAT];
	memcpy(psi, psi_last, sizeof psi);
	memcpy(valid, psi_valid, sizeof valid);
	pthread_mutex_unlock(&mu);
	size_t room = *len < bufsz ? bufsz - *len : 0;
	int k = room ? snprintf(buf + *len, room,
		"# HELP rp_drift_psi Population stability index of a served feature against"
		" the active model's training distribution.\n# TYPE rp_drift_psi gauge\n") : 0;
	for (int i = 0; i < RP_LANE_NFEAT && k >= 0 && (size_t)k < room; i++)
		if (valid[i])
			k += snprintf(buf + *len + k, room - (size_t)k,
				      "rp_drift_psi{feature=\"%s\"} %.6f\n", rp_lane_feat_names[i], psi[i]);
	if (k >= 0 && (size_t)k < room)
		k += snprintf(buf + *len + k, room - (size_t)k,
			"# HELP rp_drift_events_total Drift events recorded, by severity.\n"
			"# TYPE rp_drift_events_total counter\n"
			"rp_drift_events_total{severity=\"warn\"} %lu\n"
			"rp_drift_events_total{severity=\"critical\"} %lu\n",
			atomic_load(&ev_warn), atomic_load(&ev_crit));
	if (k > 0)
		*len += (size_t)k < room ? (size_t)k : room - 1;
}

static const struct rp_route drift_routes[] = {
	{"POST", "/drift/check", h_check},
	{"POST", "/drift/config", h_config},
	{"POST", "/drift/reset", h_reset},
	{NULL, NULL, NULL},
};

const struct rp_module rp_module_drift = {
	.name = "drift",
	.routes = drift_routes,
	.init = drift_init,
	.tick = drift_tick,
	.metrics = drift_metrics,
};
