/*
 * run.c - the drill run loop (see fp_run.h).
 *
 * The order of things is what makes a drill trustworthy:
 *   1. validate everything offline, so a typo never half-runs a drill;
 *   2. prove the target is reachable before touching it;
 *   3. journal each fault (fsync'd) before applying it, keep it on a revert
 *      stack, and unwind the stack LIFO whatever happens afterwards;
 *   4. judge from first-class records only (ledger + decision log), after
 *      the platform has drained;
 *   5. write the bundle locally first, upload second, so nothing is lost
 *      when S3 is down.
 */
#include "harness/run/fp_run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/backend/fp_act.h"
#include "harness/backend/fp_kafka.h"
#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_hash.h"
#include "harness/core/fp_log.h"
#include "harness/core/fp_secret.h"
#include "harness/load/fp_load.h"
#include "harness/run/run_int.h"
#include "harness/spec/fp_spec.h"
#include "injectors/fp_injector.h"
#include "invariants/fp_invariant.h"
#include "reports/fp_report.h"

#define MAX_REVERTS 64
#define MAX_MARKS 16

static volatile sig_atomic_t stop_requested;

void fp_run_request_stop(void)
{
	stop_requested = 1;
}

int fp_run_has_injector(const char *name)
{
	return fp_injector_exists(name);
}

int fp_run_has_invariant(const char *name)
{
	return fp_invariant_exists(name);
}

/* One fault or action that stays in place until reverted. */
struct revert_entry {
	char id[64];                     /* the step's "as", or a generated one */
	int is_action;
	const struct fp_action *revert_action;
	const struct fp_injector *inj;
	const struct fp_kvlist *with;
	char state[2048];
	int done;
};

struct phase_times {
	int64_t start_ns;
	int64_t end_ns;
	int64_t reached_ns;              /* until: first time the condition held
					    and kept holding; 0 = not reached */
};

struct run {
	const struct fp_run_opts *o;
	struct fp_env *env;
	struct fp_scenario *sc;
	struct fp_report *rep;
	struct fp_kafka *kafka;
	struct fp_pg *pg;
	struct fp_loadgen *load;
	char run_id[32];
	char platform_run_id[256];
	char bundle[4096];
	char out_root[4096];
	struct fp_journal *journal;
	int64_t t0;                      /* monotonic run start */
	const char *topic;
	const char *group;
	struct fp_sampling *sampling;
	FILE *samples;
	FILE *offsets;                   /* offsets.tsv: committed offsets */
	FILE *offset_resets;             /* offset_resets.tsv: replays */
	const char *inject_id;           /* the injection under way, if any */
	char *pg_password;
	/* faults */
	struct revert_entry reverts[MAX_REVERTS];
	int64_t revert_at[MAX_REVERTS];  /* when each was reverted (recovery "after") */
	size_t n_reverts;
	int revert_failed;
	/* marks */
	struct fp_offset_mark marks[MAX_MARKS];
	struct fp_part_offsets *mark_parts[MAX_MARKS];
	size_t n_marks;
	struct phase_times *ptimes;
	int aborted;
	char abort_reason[512];
};

static pthread_mutex_t status_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fp_run_status status_now;

void fp_run_status_get(struct fp_run_status *st)
{
	pthread_mutex_lock(&status_mu);
	*st = status_now;
	pthread_mutex_unlock(&status_mu);
}

static void status_update(struct run *r, const char *phase)
{
	struct fp_load_stats ls = {0};
	double lag = -1;
	int64_t at;
	int faults = 0;

	if (r->load)
		fp_loadgen_stats(r->load, &ls);
	if (r->sampling &&
	    fp_sampling_latest(r->sampling, "decision_group_lag", &lag, &at))
		lag = -1;
	for (size_t i = 0; i < r->n_reverts; i++)
		faults += !r->reverts[i].done;
	pthread_mutex_lock(&status_mu);
	status_now.active = 1;
	snprintf(status_now.drill, sizeof status_now.drill, "%s", r->sc->id);
	if (phase)
		snprintf(status_now.phase, sizeof status_now.phase, "%s", phase);
	status_now.elapsed_s = (double)(fp_mono_ns() - r->t0) / 1e9;
	status_now.achieved_rate = ls.achieved_rate;
	status_now.sent = (long long)ls.sent;
	status_now.lag = lag;
	status_now.faults_in_place = faults;
	pthread_mutex_unlock(&status_mu);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void timeline(struct run *r, const char *kind, const char *name,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void timeline(struct run *r, const char *kind, const char *name,
		     const char *fmt, ...)
{
	char detail[1024] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof detail, fmt, ap);
		va_end(ap);
	}
	fp_report_add_timeline(r->rep, fp_mono_ns() - r->t0, fp_wall_ns(),
			       kind, name, fmt ? detail : NULL);
	FP_INFO("event=%s name=%s t=%.3f%s%s", kind, name,
		(double)(fp_mono_ns() - r->t0) / 1e9, fmt ? " detail=" : "",
		fmt ? detail : "");
}

/* ---- faults ------------------------------------------------------------ */

static int revert_one(struct run *r, struct revert_entry *e)
{
	struct fp_err err = {0};
	int rc;

	if (e->done)
		return FP_OK;
	fp_journal_mark(r->journal, "revert", e->id, e->state, NULL);
	if (e->is_action) {
		rc = fp_action_run(e->revert_action, NULL, &err);
	} else {
		struct fp_inject_ctx ctx = {.env = r->env, .kafka = r->kafka,
					    .marks = r->marks,
					    .n_marks = r->n_marks};

		snprintf(ctx.state, sizeof ctx.state, "%s", e->state);
		rc = e->inj->revert(e->with, &ctx, &err);
	}
	if (rc) {
		/* One retry: a revert is the one thing we must not give up on
		 * lightly, and most failures here are transient. */
		fp_sleep_ns(500 * FP_NS_PER_MS, NULL);
		fp_err_clear(&err);
		if (e->is_action)
			rc = fp_action_run(e->revert_action, NULL, &err);
	}
	if (rc) {
		fp_journal_mark(r->journal, "revert_failed", e->id, e->state,
				err.msg);
		timeline(r, "revert", e->id, "FAILED: %s", err.msg);
		r->revert_failed = 1;
		return rc;
	}
	e->done = 1;
	r->revert_at[e - r->reverts] = fp_mono_ns();
	fp_journal_mark(r->journal, "reverted", e->id, NULL, NULL);
	timeline(r, "revert", e->id, "reverted");
	return FP_OK;
}

static void revert_all(struct run *r)
{
	for (size_t i = r->n_reverts; i-- > 0;)
		revert_one(r, &r->reverts[i]);
}

/* ---- waiting on observables ---------------------------------------------- */

/* Wait until the observable satisfies the condition and keeps satisfying it
 * for the hold window. Returns the time it first held (the recovery point),
 * or 0 when the timeout passed first. Only samples taken after the wait
 * began count: recovery is measured from the phase start, never before. */
static int64_t wait_until(struct run *r, const struct fp_until *u)
{
	int64_t start = fp_mono_ns();
	int64_t deadline = start + u->timeout_ns;
	int64_t held_since = 0, last_seen = 0;

	while (!stop_requested) {
		double v;
		int64_t at;

		if (fp_sampling_latest(r->sampling, u->observable, &v, &at) == 0 &&
		    at != last_seen && at >= start) {
			last_seen = at;
			if (fp_cmp_holds(u->op, v, u->value)) {
				if (!held_since)
					held_since = at;
				if (at - held_since >= u->hold_ns)
					return held_since;
			} else {
				held_since = 0;
			}
		}
		if (fp_mono_ns() > deadline)
			return 0;
		status_update(r, NULL);
		fp_sleep_ns(50 * FP_NS_PER_MS, NULL);
	}
	return 0;
}

/* ---- offsets evidence ----------------------------------------------------- */

static int open_offsets_files(struct run *r, struct fp_err *err)
{
	char path[4200];

	fp_path_join(path, sizeof path, r->bundle, "offsets.tsv");
	r->offsets = fopen(path, "w");
	if (r->offsets) {
		fp_path_join(path, sizeof path, r->bundle, "offset_resets.tsv");
		r->offset_resets = fopen(path, "w");
	}
	if (!r->offsets || !r->offset_resets)
		return fp_err_set(err, FP_EIO, "cannot write into bundle '%s': %s",
				  r->bundle, strerror(errno));
	fprintf(r->offsets,
		"t_ms\tkind\tgroup\ttopic\tpartition\tcommitted\thigh\n");
	fprintf(r->offset_resets, "t_start_ms\tt_end_ms\tsource\tgroup\ttopic"
				  "\tpartition\tfrom\tto\n");
	fflush(r->offsets);
	fflush(r->offset_resets);
	return FP_OK;
}

/* An injector moved committed offsets on purpose (a replay): one row per
 * partition, flushed at once so the evidence outlives a crash. The window
 * is [just before the admin call, now], rounded outwards to the ms. */
static void on_offsets_moved(void *ud, const struct fp_offsets_move *mv)
{
	struct run *r = ud;
	int64_t end = fp_mono_ns() - r->t0, start = mv->t_start_ns - r->t0;
	char from[32] = "", src[160], group[512], topic[512];

	if (!r->offset_resets)
		return;
	if (mv->from != FP_KAFKA_NO_OFFSET)
		snprintf(from, sizeof from, "%lld", (long long)mv->from);
	fp_tsv_field(src, sizeof src, r->inject_id ? r->inject_id : "?");
	fp_tsv_field(group, sizeof group, mv->group);
	fp_tsv_field(topic, sizeof topic, mv->topic);
	fprintf(r->offset_resets, "%lld\t%lld\t%s\t%s\t%s\t%d\t%s\t%lld\n",
		(long long)(start / FP_NS_PER_MS),
		(long long)((end + FP_NS_PER_MS - 1) / FP_NS_PER_MS), src,
		group, topic, mv->partition, from, (long long)mv->to);
	fflush(r->offset_resets);
}

/* ---- steps -------------------------------------------------------------- */

static int record_mark(struct run *r, const char *name, struct fp_err *err)
{
	struct fp_part_offsets *po;
	size_t n;
	int rc;

	if (r->n_marks >= MAX_MARKS)
		return fp_err_set(err, FP_EINVAL, "too many marks");
	rc = fp_kafka_watermarks(r->kafka, r->topic, &po, &n, err);
	if (rc)
		return rc;
	/* A mark is where a replay of "everything from here on" starts. */
	for (size_t i = 0; i < n; i++)
		po[i].committed = po[i].high;
	r->mark_parts[r->n_marks] = po;
	r->marks[r->n_marks].name = name;
	r->marks[r->n_marks].parts = po;
	r->marks[r->n_marks].n = n;
	r->n_marks++;
	{
		char detail[1024];
		size_t len = 0;

		detail[0] = '\0';
		for (size_t i = 0; i < n && len < sizeof detail; i++)
			len += (size_t)snprintf(detail + len,
						sizeof detail - len,
						"%sp%d@%lld", i ? " " : "",
						po[i].partition,
						(long long)po[i].high);
		timeline(r, "mark", name, "%s", detail);
	}
	return FP_OK;
}

static struct revert_entry *push_revert(struct run *r, const char *as,
					struct fp_err *err)
{
	struct revert_entry *e;

	if (r->n_reverts >= MAX_REVERTS) {
		fp_err_set(err, FP_EINVAL, "too many faults in place");
		return NULL;
	}
	e = &r->reverts[r->n_reverts++];
	memset(e, 0, sizeof *e);
	if (as)
		snprintf(e->id, sizeof e->id, "%s", as);
	else
		snprintf(e->id, sizeof e->id, "fault-%zu", r->n_reverts);
	return e;
}

static int run_step(struct run *r, const struct fp_step *s, struct fp_err *err)
{
	switch (s->kind) {
	case FP_STEP_WAIT:
		timeline(r, "action", "wait", "%lld ms",
			 (long long)(s->wait_ns / FP_NS_PER_MS));
		fp_sleep_ns(s->wait_ns, (volatile int *)&stop_requested);
		return FP_OK;
	case FP_STEP_ACTION: {
		const struct fp_action *a = fp_env_action(r->env, s->action);
		struct revert_entry *e = NULL;
		struct fp_act_result res;
		int rc;

		if (s->revert_action) {
			e = push_revert(r, s->as, err);
			if (!e)
				return FP_EINVAL;
			e->is_action = 1;
			e->revert_action = fp_env_action(r->env,
							 s->revert_action);
			/* Journal before acting: after a crash, cleanup must
			 * know the revert may be needed. */
			if (fp_journal_apply_action(r->journal, e->id, a->name,
						    s->revert_action)) {
				r->n_reverts--;
				return fp_err_set(err, FP_EIO,
						  "cannot write the fault "
						  "journal '%s'",
						  fp_journal_path(r->journal));
			}
		}
		rc = fp_action_run(a, &res, err);
		timeline(r, e ? "fault" : "action", a->name, "%s (%lld ms)",
			 rc ? err->msg : "ok",
			 (long long)(res.elapsed_ns / FP_NS_PER_MS));
		if (e)
			fp_journal_mark(r->journal, rc ? "apply_failed" : "applied",
					e->id, NULL, rc ? err->msg : NULL);
		return rc;
	}
	case FP_STEP_INJECT: {
		const struct fp_injector *inj = fp_injector_find(s->injector);
		struct fp_inject_ctx ctx = {.env = r->env, .kafka = r->kafka,
					    .marks = r->marks,
					    .n_marks = r->n_marks,
					    .offsets_moved = on_offsets_moved,
					    .offsets_moved_ud = r};
		struct revert_entry *e = NULL;
		char id[64];
		int rc;

		rc = inj->validate ? inj->validate(&s->with, err) : FP_OK;
		if (rc)
			return rc;
		snprintf(id, sizeof id, "%s", s->as ? s->as : inj->name);
		if (inj->revert) {
			e = push_revert(r, s->as, err);
			if (!e)
				return FP_EINVAL;
			e->inj = inj;
			e->with = &s->with;
			snprintf(id, sizeof id, "%s", e->id);
		}
		if (fp_journal_apply_inject(r->journal, id, inj->name, &s->with,
					    inj->revert != NULL)) {
			if (e)
				r->n_reverts--;
			return fp_err_set(err, FP_EIO,
					  "cannot write the fault journal '%s'",
					  fp_journal_path(r->journal));
		}
		r->inject_id = id;
		rc = inj->apply(&s->with, &ctx, err);
		r->inject_id = NULL;
		if (e)
			snprintf(e->state, sizeof e->state, "%s", ctx.state);
		fp_journal_mark(r->journal, rc ? "apply_failed" : "applied", id,
				ctx.state, rc ? err->msg : NULL);
		timeline(r, "fault", inj->name, "%s%s%s",
			 rc ? "FAILED: " : "", rc ? err->msg : ctx.state,
			 inj->revert ? "" : " (one-shot)");
		return rc;
	}
	case FP_STEP_REVERT:
		for (size_t i = r->n_reverts; i-- > 0;)
			if (strcmp(r->reverts[i].id, s->revert_ref) == 0)
				return revert_one(r, &r->reverts[i])
					       ? fp_err_set(err, FP_EBACKEND,
							    "revert of '%s' "
							    "failed",
							    s->revert_ref)
					       : FP_OK;
		return fp_err_set(err, FP_EINTERNAL, "nothing to revert for '%s'",
				  s->revert_ref);
	}
	return FP_EINTERNAL;
}

static int run_phase(struct run *r, size_t pi, struct fp_err *err)
{
	const struct fp_phase *ph = &r->sc->phases[pi];
	struct phase_times *pt = &r->ptimes[pi];
	int rc = FP_OK;

	pt->start_ns = fp_mono_ns();
	status_update(r, ph->id);
	timeline(r, "phase", ph->id, "start");
	if (ph->mark) {
		rc = record_mark(r, ph->mark, err);
		if (rc)
			return rc;
	}
	if (ph->load) {
		rc = fp_loadgen_start(r->load, ph->id,
				      ph->duration_ns ? ph->duration_ns
						      : FP_NS_PER_S,
				      err);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < ph->n_steps && !stop_requested; i++) {
		rc = run_step(r, &ph->steps[i], err);
		if (rc)
			return rc;
	}
	if (ph->duration_ns) {
		int64_t end = pt->start_ns + ph->duration_ns;

		/* Slices, so the status line moves and a stop is seen fast. */
		while (!stop_requested && fp_mono_ns() < end) {
			int64_t left = end - fp_mono_ns();

			fp_sleep_ns(left < 250 * FP_NS_PER_MS
					    ? left
					    : 250 * FP_NS_PER_MS,
				    (volatile int *)&stop_requested);
			status_update(r, NULL);
		}
	}
	if (ph->load) {
		if (stop_requested)
			fp_loadgen_stop(r->load);
		rc = fp_loadgen_wait(r->load, err);
		if (rc)
			return rc;
	}
	if (ph->has_until && !stop_requested) {
		pt->reached_ns = wait_until(r, &ph->until);
		if (pt->reached_ns)
			timeline(r, "phase", ph->id,
				 "%s %s %g held %lld ms: reached after %.3f s",
				 ph->until.observable, fp_cmp_name(ph->until.op),
				 ph->until.value,
				 (long long)(ph->until.hold_ns / FP_NS_PER_MS),
				 (double)(pt->reached_ns - pt->start_ns) / 1e9);
		else
			timeline(r, "phase", ph->id,
				 "%s not reached within %lld s",
				 ph->until.observable,
				 (long long)(ph->until.timeout_ns /
					     FP_NS_PER_S));
	}
	pt->end_ns = fp_mono_ns();
	timeline(r, "phase", ph->id, "end");
	return FP_OK;
}

/* ---- judging ------------------------------------------------------------ */

/*
 * The decision group's committed offsets and the run's own replays, into the
 * harness schema for the offset checks (fpdrill.offsets_<run>,
 * fpdrill.offset_resets_<run>). First the final snapshot: the committed
 * offsets now, after the drain, which committed_records_decided_once judges
 * against. The sampler stops writing offsets.tsv before it, so the file in
 * the bundle is exactly what was judged. Without the evidence files the
 * table names stay empty and the offset checks say unknown.
 */
static int load_offsets(struct run *r, char *otbl, size_t otblsz, char *rtbl,
			size_t rtblsz, struct fp_err *err)
{
	struct fp_part_offsets *po = NULL;
	struct fp_err e2 = {0};
	char sql[1024], path[4200];
	int64_t lag, rows = 0, resets = 0;
	size_t n = 0;
	int rc;

	otbl[0] = rtbl[0] = '\0';
	if (!r->offsets || !r->offset_resets)
		return FP_OK;
	fp_sampling_detach_offsets(r->sampling);
	if (fp_kafka_group_lag(r->kafka, r->group, r->topic, &po, &n, &lag,
			       &e2) == FP_OK)
		fp_offsets_write(r->offsets,
				 (fp_mono_ns() - r->t0) / FP_NS_PER_MS, "final",
				 r->group, r->topic, po, n);
	else
		timeline(r, "info", "final_offsets",
			 "snapshot failed, the last sample stands in: %s",
			 e2.msg);
	free(po);
	fclose(r->offsets);
	fclose(r->offset_resets);
	r->offsets = r->offset_resets = NULL;

	snprintf(otbl, otblsz, "\"fpdrill\".\"offsets_%s\"", r->run_id);
	snprintf(rtbl, rtblsz, "\"fpdrill\".\"offset_resets_%s\"", r->run_id);
	/* seq keeps the file order, which per partition is time order. */
	snprintf(sql, sizeof sql,
		 "CREATE SCHEMA IF NOT EXISTS fpdrill; "
		 "DROP TABLE IF EXISTS %s; CREATE UNLOGGED TABLE %s (seq "
		 "bigserial, t_ms bigint, kind text, consumer_group text, topic "
		 "text, partition int, committed bigint, high bigint); "
		 "DROP TABLE IF EXISTS %s; CREATE UNLOGGED TABLE %s (t_start_ms "
		 "bigint, t_end_ms bigint, source text, consumer_group text, "
		 "topic text, partition int, from_offset bigint, to_offset "
		 "bigint)",
		 otbl, otbl, rtbl, rtbl);
	rc = fp_pg_exec(r->pg, sql, err);
	if (rc)
		return rc;
	snprintf(sql, sizeof sql,
		 "COPY %s (t_ms, kind, consumer_group, topic, partition, "
		 "committed, high) FROM STDIN (FORMAT csv, DELIMITER E'\\t', "
		 "HEADER true)",
		 otbl);
	fp_path_join(path, sizeof path, r->bundle, "offsets.tsv");
	rc = fp_pg_copy_in(r->pg, sql, path, &rows, err);
	if (rc)
		return rc;
	snprintf(sql, sizeof sql,
		 "COPY %s (t_start_ms, t_end_ms, source, consumer_group, topic, "
		 "partition, from_offset, to_offset) FROM STDIN (FORMAT csv, "
		 "DELIMITER E'\\t', HEADER true)",
		 rtbl);
	fp_path_join(path, sizeof path, r->bundle, "offset_resets.tsv");
	rc = fp_pg_copy_in(r->pg, sql, path, &resets, err);
	if (rc)
		return rc;
	snprintf(sql, sizeof sql, "ANALYZE %s; ANALYZE %s", otbl, rtbl);
	rc = fp_pg_exec(r->pg, sql, err);
	timeline(r, "info", "offsets_loaded",
		 "%lld committed-offset rows (final snapshot: %s), %lld "
		 "partition resets",
		 (long long)rows, n ? "yes" : "no", (long long)resets);
	return rc;
}

/* Like the ledger table: the files are in the bundle, the tables were only
 * for the set algebra. */
static void drop_offsets(struct run *r, const char *otbl, const char *rtbl)
{
	char sql[600];
	struct fp_err e = {0};

	if (!otbl[0])
		return;
	snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s; DROP TABLE IF "
				  "EXISTS %s",
		 otbl, rtbl);
	fp_pg_exec(r->pg, sql, &e);
}

static enum fp_status map_status(enum fp_check_status s)
{
	return s == FP_CHECK_PASS ? FP_STATUS_PASS
	       : s == FP_CHECK_FAIL ? FP_STATUS_FAIL
				    : FP_STATUS_UNKNOWN;
}

static int run_checks(struct run *r, struct fp_err *err)
{
	char ledger[256], dlog[256], cases[256], offsets[256], resets[256];
	char path[4200], sql[512];
	const char *obs_cases = fp_kv_get(&r->env->observables, "cases");
	struct fp_check_ctx ctx = {0};
	struct fp_judge_conf jc = {0};
	struct fp_judge_stats js;
	struct fp_judge_check *jcs;
	struct fp_err e3 = {0};
	size_t n = r->sc->n_checks;
	int rc;

	if (n == 0)
		return FP_OK;
	rc = load_offsets(r, offsets, sizeof offsets, resets, sizeof resets,
			  err);
	if (rc)
		return rc;
	jcs = calloc(n, sizeof *jcs);
	if (!jcs)
		return fp_err_set(err, FP_ENOMEM, "check results");
	snprintf(ledger, sizeof ledger, "\"fpdrill\".\"ledger_%s\"", r->run_id);
	fp_path_join(path, sizeof path, r->bundle, "ledger.tsv");
	fp_pg_quote_ident(fp_kv_get(&r->env->observables, "decision_log"),
			  dlog, sizeof dlog);
	if (obs_cases)
		fp_pg_quote_ident(obs_cases, cases, sizeof cases);
	ctx.ledger = ledger;
	ctx.decision_log = dlog;
	ctx.cases = obs_cases ? cases : NULL;
	ctx.platform_run_id = r->platform_run_id;
	ctx.event_class = r->env->event_class;
	ctx.traffic_topic = r->topic;
	ctx.offsets = offsets[0] ? offsets : NULL;
	ctx.offset_resets = resets[0] ? resets : NULL;
	for (size_t i = 0; i < n; i++) {
		jcs[i].inv = fp_invariant_find(r->sc->checks[i].invariant);
		jcs[i].with = &r->sc->checks[i].with;
	}
	jc.lanes = r->env->pg_judge_connections;
	jc.conninfo = r->env->pg_conninfo;
	jc.password = r->pg_password;
	jc.load_ledger = 1;
	/* A drill without load has no ledger: its checks judge the platform's
	 * records against an empty ledger. */
	jc.ledger_tsv = r->load ? path : NULL;
	rc = fp_judge_run(r->pg, &jc, &ctx, jcs, n, &js, err);
	if (!rc) {
		timeline(r, "info", "ledger_loaded", "%lld rows",
			 (long long)js.ledger_rows);
		timeline(r, "info", "checks_judged",
			 "%zu checks on %d connections in %.1f s (ledger load "
			 "%.1f s)",
			 n, js.lanes, (double)js.elapsed_ns / FP_NS_PER_S,
			 (double)js.load_ns / FP_NS_PER_S);
	}
	for (size_t i = 0; !rc && i < n; i++) {
		const struct fp_judge_check *c = &jcs[i];
		struct fp_inv_result *ir = fp_report_add_invariant(r->rep,
								    c->inv->name);

		if (c->rc) {
			/* Could not judge: unknown, with the reason, never pass. */
			ir->status = FP_STATUS_UNKNOWN;
			fp_report_set(&ir->observed, "check could not run");
			fp_report_set(&ir->detail, c->err.msg);
			FP_ERROR("event=check_error invariant=%s err=\"%s\"",
				 c->inv->name, c->err.msg);
		} else {
			ir->status = map_status(c->res.status);
			ir->count = c->res.count;
			fp_report_set(&ir->observed, c->res.observed);
			fp_report_set(&ir->expected, c->res.expected);
			if (c->res.detail[0])
				fp_report_set(&ir->detail, c->res.detail);
			for (size_t k = 0; k < c->res.n_examples; k++)
				fp_inv_add_example(ir, c->res.examples[k]);
		}
		FP_INFO("event=invariant name=%s status=%s seconds=%.2f "
			"observed=\"%s\"",
			c->inv->name, fp_status_name(ir->status),
			(double)c->elapsed_ns / FP_NS_PER_S,
			ir->observed ? ir->observed : "");
	}
	free(jcs);
	/* The ledger is in the bundle; the table was only for the set
	 * algebra and is not kept around. */
	snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", ledger);
	fp_pg_exec(r->pg, sql, &e3);
	drop_offsets(r, offsets, resets);
	return rc;
}

/* When the fault a recovery bound waits on ended: "phase:<id>" is that
 * phase's start, "revert:<id>" the moment that fault was reverted. */
static int64_t bound_after(struct run *r, const char *after)
{
	if (!after)
		return r->t0;
	if (strncmp(after, "phase:", 6) == 0) {
		for (size_t p = 0; p < r->sc->n_phases; p++)
			if (strcmp(r->sc->phases[p].id, after + 6) == 0)
				return r->ptimes[p].start_ns;
	} else if (strncmp(after, "revert:", 7) == 0) {
		for (size_t i = 0; i < r->n_reverts; i++)
			if (strcmp(r->reverts[i].id, after + 7) == 0)
				return r->revert_at[i];
	}
	return 0;
}

static void judge_bounds(struct run *r, const struct fp_load_stats *ls)
{
	for (size_t i = 0; i < r->sc->n_bounds; i++) {
		const struct fp_bound *b = &r->sc->bounds[i];
		char limit[32], obs[128];
		int met = -1;

		fp_duration_fmt(b->limit_ns, limit, sizeof limit);
		snprintf(obs, sizeof obs, "not measured");
		if (b->kind == FP_BOUND_MEASURE &&
		    strncmp(b->measure, "phase_duration:", 15) == 0) {
			for (size_t p = 0; p < r->sc->n_phases; p++) {
				const struct fp_phase *ph = &r->sc->phases[p];
				struct phase_times *pt = &r->ptimes[p];
				int64_t took;

				if (strcmp(ph->id, b->measure + 15) != 0 ||
				    !pt->start_ns)
					continue;
				if (ph->has_until && !pt->reached_ns) {
					snprintf(obs, sizeof obs,
						 "not reached within %lld s",
						 (long long)(ph->until.timeout_ns /
							     FP_NS_PER_S));
					met = pt->end_ns ? 0 : -1;
					break;
				}
				took = (ph->has_until ? pt->reached_ns
						      : pt->end_ns) -
				       pt->start_ns;
				fp_duration_fmt(took, obs, sizeof obs);
				met = took <= b->limit_ns;
			}
		} else if (b->kind == FP_BOUND_RECOVERY) {
			int64_t after = bound_after(r, b->after), when = 0;

			if (!after) {
				snprintf(obs, sizeof obs, "%s never happened",
					 b->after);
			} else if (fp_sampling_recovery(
					   r->sampling, b->recovery.observable,
					   b->recovery.op, b->recovery.value,
					   b->recovery.hold_ns, after, &when)) {
				fp_duration_fmt(when - after, obs, sizeof obs);
				met = when - after <= b->limit_ns;
			} else {
				snprintf(obs, sizeof obs,
					 "%s %s %g never held for the hold window",
					 b->recovery.observable,
					 fp_cmp_name(b->recovery.op),
					 b->recovery.value);
				met = 0;
			}
		} else if (b->kind == FP_BOUND_LATENCY) {
			int64_t v = -1;
			double q = b->percentile;

			if (ls->sent + ls->retries_sent == 0) {
				snprintf(obs, sizeof obs, "no request sent");
			} else if (q == 50) {
				v = b->service_time ? ls->svc_p50_ns : ls->p50_ns;
			} else if (q == 95) {
				v = b->service_time ? ls->svc_p95_ns : ls->p95_ns;
			} else if (q == 99) {
				v = b->service_time ? ls->svc_p99_ns : ls->p99_ns;
			} else if (q == 100 && !b->service_time) {
				v = ls->max_ns;
			} else {
				snprintf(obs, sizeof obs,
					 "p%g is not recorded (use 50, 95, 99)",
					 q);
			}
			if (v >= 0) {
				fp_duration_fmt(v, obs, sizeof obs);
				met = v <= b->limit_ns;
			}
		}
		fp_report_add_bound(r->rep, b->name, limit, obs, met);
	}
}

/* Fail dominates, then unknown, then pass (DESIGN.md verdicts); an abort
 * (stop condition, signal, error) is its own verdict. */
static void decide(struct run *r, const struct fp_load_stats *ls)
{
	int any_fail = 0, any_unknown = 0;
	char reason[512] = "";

	for (size_t i = 0; i < r->rep->n_invariants; i++) {
		if (r->rep->invariants[i].status == FP_STATUS_FAIL && !any_fail) {
			any_fail = 1;
			snprintf(reason, sizeof reason, "invariant %s failed: %s",
				 r->rep->invariants[i].name,
				 r->rep->invariants[i].observed);
		}
		if (r->rep->invariants[i].status == FP_STATUS_UNKNOWN &&
		    !any_unknown) {
			any_unknown = 1;
			if (!any_fail)
				snprintf(reason, sizeof reason,
					 "invariant %s could not be judged",
					 r->rep->invariants[i].name);
		}
	}
	for (size_t i = 0; i < r->rep->n_bounds; i++) {
		if (r->rep->bounds[i].met == 0 && !any_fail) {
			any_fail = 1;
			snprintf(reason, sizeof reason,
				 "bound %s missed: %s (limit %s)",
				 r->rep->bounds[i].name,
				 r->rep->bounds[i].observed,
				 r->rep->bounds[i].limit);
		}
		if (r->rep->bounds[i].met < 0 && !any_unknown && !any_fail) {
			any_unknown = 1;
			snprintf(reason, sizeof reason, "bound %s not measured",
				 r->rep->bounds[i].name);
		}
	}
	/* A run that did not drive the load it promised proves nothing. */
	if (r->sc->load.enabled && ls->planned > 0 &&
	    ls->achieved_rate < 0.95 * ls->planned_rate) {
		if (!any_fail)
			snprintf(reason, sizeof reason,
				 "load missed its rate: %.1f/s of %.1f/s planned",
				 ls->achieved_rate, ls->planned_rate);
		any_unknown = 1;
	}
	if (r->aborted) {
		r->rep->verdict = FP_VERDICT_ABORTED;
		r->rep->exit_code = FP_EXIT_ABORTED;
		fp_report_set(&r->rep->verdict_reason, r->abort_reason);
	} else if (any_fail) {
		r->rep->verdict = FP_VERDICT_FAIL;
		r->rep->exit_code = FP_EXIT_FAIL;
		fp_report_set(&r->rep->verdict_reason, reason);
	} else if (any_unknown) {
		r->rep->verdict = FP_VERDICT_UNKNOWN;
		r->rep->exit_code = FP_EXIT_UNKNOWN;
		fp_report_set(&r->rep->verdict_reason, reason);
	} else {
		r->rep->verdict = FP_VERDICT_PASS;
		r->rep->exit_code = FP_EXIT_PASS;
		fp_report_set(&r->rep->verdict_reason,
			      "every invariant held and every bound was met");
	}
	if (r->revert_failed)
		r->rep->exit_code = FP_EXIT_CLEANUP;
}

/* before/after: the latest value of every series; during: the maximum of
 * each series while the phases ran. */
static void metrics_snapshot(struct run *r, const char *when, int64_t from,
			     int64_t to)
{
	json_t *m = json_object();
	const char *names[64];
	size_t n = 0;

	names[n++] = "decision_group_lag";
	for (size_t i = 0; i < r->env->n_samplers && n < 64; i++)
		names[n++] = r->env->samplers[i].name;
	for (size_t i = 0; i < n; i++) {
		double v;
		int64_t at;

		if (!r->sampling)
			break;
		if (from) {
			if (fp_sampling_max(r->sampling, names[i], from, to, &v)) {
				char key[128];

				snprintf(key, sizeof key, "%s_max", names[i]);
				json_object_set_new(m, key, json_real(v));
			}
		} else if (fp_sampling_latest(r->sampling, names[i], &v, &at) ==
			   0) {
			json_object_set_new(m, names[i], json_real(v));
		}
	}
	json_object_set_new(r->rep->metrics, when, m);
}

/* ---- setup and teardown ------------------------------------------------- */

static int connect_target(struct run *r, struct fp_err *err)
{
	int rc;

	rc = fp_kafka_new(r->env->kafka_bootstrap, &r->env->kafka_props, 10000,
			  &r->kafka, err);
	if (rc)
		return rc;
	if (r->env->pg_password_ref) {
		rc = fp_secret_resolve(r->env->pg_password_ref, r->env->dir,
				       &r->pg_password, err);
		if (rc)
			return rc;
	}
	return fp_pg_connect(r->env->pg_conninfo, r->pg_password, &r->pg, err);
}

static void fill_report_header(struct run *r)
{
	struct fp_report *rep = r->rep;

	fp_report_set(&rep->run_id, r->run_id);
	fp_report_set(&rep->drill_id, r->sc->id);
	fp_report_set(&rep->drill_title, r->sc->title);
	fp_report_set(&rep->description, r->sc->description);
	fp_report_set(&rep->expected, r->sc->expected);
	fp_report_set(&rep->env_name, r->env->name);
	fp_report_set(&rep->env_class, fp_env_class_name(r->env->env_class));
	fp_report_set(&rep->scenario_path, r->sc->path);
	fp_report_set(&rep->platform_run_id, r->platform_run_id);
	for (size_t i = 0; i < r->sc->n_claims; i++)
		fp_report_add_claim(rep, r->sc->claims[i]);
	for (size_t i = 0; i < r->sc->n_followups; i++)
		fp_report_add_followup(rep, r->sc->followups[i]);
	if (!rep->metrics)
		rep->metrics = json_object();
}

static int upload(struct run *r, struct fp_run_outcome *out)
{
	char *ak = NULL, *sk = NULL, key[1024];
	struct fp_s3_conf c = {0};
	struct fp_err err = {0};
	int rc;

	rc = fp_secret_resolve(r->env->s3_access_key_ref, r->env->dir, &ak,
			       &err);
	if (rc == FP_OK)
		rc = fp_secret_resolve(r->env->s3_secret_key_ref, r->env->dir,
				       &sk, &err);
	if (rc == FP_OK) {
		c.endpoint = r->env->s3_endpoint;
		c.bucket = r->env->s3_bucket;
		c.region = r->env->s3_region;
		c.prefix = r->env->s3_prefix;
		c.access_key = ak;
		c.secret_key = sk;
		fp_s3_bundle_key(&c, r->sc->id, r->rep->started_wall_ns,
				 r->run_id, key, sizeof key);
		rc = fp_s3_upload_bundle(&c, r->bundle, key, &err);
	}
	fp_secret_free(ak);
	fp_secret_free(sk);
	if (rc) {
		char marker[4200];

		snprintf(out->upload_error, sizeof out->upload_error, "%s",
			 err.msg);
		/* The bundle stays; the marker says it still has to go up. */
		fp_path_join(marker, sizeof marker, r->bundle,
			     ".upload-pending");
		fp_write_file_atomic(marker, err.msg, strlen(err.msg), NULL);
		FP_ERROR("event=upload_failed bundle=%s err=\"%s\"", r->bundle,
			 err.msg);
		return rc;
	}
	snprintf(out->s3_uri, sizeof out->s3_uri, "s3://%s/%s/manifest.json",
		 r->env->s3_bucket, key);
	return FP_OK;
}

static int finish(struct run *r, struct fp_run_outcome *out)
{
	struct fp_err err = {0};
	char *key = NULL;

	r->rep->ended_wall_ns = fp_wall_ns();
	if (r->journal) {
		/* The journal copy must be in the bundle before the manifest
		 * lists its files. */
		fp_journal_finish(r->journal, !r->revert_failed, r->bundle, &err);
		fp_journal_free(r->journal);
		r->journal = NULL;
	}
	if (r->samples) {
		fclose(r->samples);
		r->samples = NULL;
	}
	if (r->offsets) {
		fclose(r->offsets);
		r->offsets = NULL;
	}
	if (r->offset_resets) {
		fclose(r->offset_resets);
		r->offset_resets = NULL;
	}
	if (r->o->release_id) {
		char rel[4200], line[512];

		/* Written before the manifest, so it is listed and signed. */
		fp_path_join(rel, sizeof rel, r->bundle, "release.txt");
		snprintf(line, sizeof line, "%s\n", r->o->release_id);
		fp_write_file_atomic(rel, line, strlen(line), NULL);
	}
	if (r->env->signing_key_ref &&
	    fp_secret_resolve(r->env->signing_key_ref, r->env->dir, &key,
			      &err)) {
		FP_WARN("event=signing_key_unavailable err=\"%s\"", err.msg);
		key = NULL;
	}
	if (fp_bundle_write(r->rep, r->bundle, key, &err)) {
		FP_ERROR("event=bundle_write_failed err=\"%s\"", err.msg);
		fp_secret_free(key);
		return FP_EIO;
	}
	fp_secret_free(key);
	snprintf(out->bundle_dir, sizeof out->bundle_dir, "%s", r->bundle);
	if (r->env->s3_enabled && !r->o->no_upload)
		upload(r, out);
	return FP_OK;
}

/* Load, validate and guard: everything that can refuse a drill before it
 * touches anything. */
static int prepare(const struct fp_run_opts *o, struct fp_env **env,
		   struct fp_scenario **sc, struct fp_err *err)
{
	struct fp_spec_names names = {fp_run_has_injector, fp_run_has_invariant};
	int rc;

	rc = fp_env_load(o->env_path, env, err);
	if (rc == FP_OK)
		rc = fp_scenario_load(o->scenario_path, *env, o->sets, o->nsets,
				      &names, sc, err);
	if (rc == FP_OK)
		rc = fp_safety_check(*env, *sc, o->allow_production, err);
	if (rc == FP_OK &&
	    (!fp_kv_get(&(*env)->observables, "traffic_topic") ||
	     !fp_kv_get(&(*env)->observables, "decision_group") ||
	     !fp_kv_get(&(*env)->observables, "decision_log")))
		rc = fp_err_set(err, FP_ESPEC,
				"%s: observables traffic_topic, decision_group "
				"and decision_log must be bound",
				o->env_path);
	return rc;
}

int fp_run_plan(const struct fp_run_opts *o, FILE *out, struct fp_err *err)
{
	struct fp_env *env = NULL;
	struct fp_scenario *sc = NULL;
	int rc = prepare(o, &env, &sc, err);

	if (rc == FP_OK) {
		fp_plan_print(out, env, sc);
		fprintf(out, "safety: ok (class %s)\n",
			fp_env_class_name(env->env_class));
	}
	fp_scenario_free(sc);
	fp_env_free(env);
	return rc ? FP_EXIT_USAGE : FP_EXIT_PASS;
}

int fp_run_drill(const struct fp_run_opts *o, struct fp_run_outcome *out,
		 struct fp_err *err)
{
	struct fp_load_stats ls = {0};
	struct sigaction sa, old_int, old_term;
	struct run r;
	char path[4200], hex[9];
	const struct fp_stop_condition *fired;
	int rc, exit_code;

	memset(out, 0, sizeof *out);
	memset(&r, 0, sizeof r);
	r.o = o;
	stop_requested = 0;

	rc = prepare(o, &r.env, &r.sc, err);
	if (rc) {
		exit_code = FP_EXIT_USAGE;
		goto out_free;
	}
	r.topic = fp_kv_get(&r.env->observables, "traffic_topic");
	r.group = fp_kv_get(&r.env->observables, "decision_group");

	/* Identity: the run id names the bundle and every event of the run. */
	if (fp_random_hex(hex, 4, err)) {
		exit_code = FP_EXIT_USAGE;
		goto out_free;
	}
	snprintf(r.run_id, sizeof r.run_id, "%s", hex);
	snprintf(out->run_id, sizeof out->run_id, "%s", r.run_id);
	if (fp_run_vars_apply(r.env, r.sc, r.run_id, err)) {
		exit_code = FP_EXIT_USAGE;
		goto out_free;
	}
	snprintf(r.platform_run_id, sizeof r.platform_run_id, "%s",
		 r.env->platform_run_id);
	r.rep = fp_report_new();
	r.rep->started_wall_ns = fp_wall_ns();
	r.t0 = fp_mono_ns();
	r.ptimes = calloc(r.sc->n_phases, sizeof *r.ptimes);
	fill_report_header(&r);
	snprintf(r.out_root, sizeof r.out_root, "%s",
		 o->out_dir ? o->out_dir : r.env->out_dir);

	rc = fp_bundle_dir(r.out_root, r.sc->id, r.rep->started_wall_ns,
			   r.run_id, r.bundle, sizeof r.bundle, err);
	if (rc == FP_OK)
		rc = fp_journal_open(r.out_root, r.run_id, o->env_path,
				     o->scenario_path, &r.journal, err);
	if (rc) {
		exit_code = FP_EXIT_USAGE;
		goto out_free;
	}
	fp_path_join(path, sizeof path, r.bundle, "samples.tsv");
	r.samples = fopen(path, "w");
	if (!r.samples) {
		fp_err_set(err, FP_EIO, "cannot write into bundle '%s': %s",
			   r.bundle, strerror(errno));
		exit_code = FP_EXIT_USAGE;
		goto out_free;
	}
	fprintf(r.samples, "t_s\tseries\tvalue\n");
	if (open_offsets_files(&r, err)) {
		exit_code = FP_EXIT_USAGE;
		goto out_free;
	}
	FP_INFO("event=run_start run_id=%s drill=%s env=%s platform_run_id=%s "
		"bundle=%s journal=%s",
		r.run_id, r.sc->id, r.env->name, r.platform_run_id, r.bundle,
		fp_journal_path(r.journal));
	status_update(&r, "connect");

	rc = connect_target(&r, err);
	if (rc == FP_OK) {
		struct fp_sampling_conf sc = {
			.env = r.env,
			.sc = r.sc,
			.platform_run_id = r.platform_run_id,
			.kafka_bootstrap = r.env->kafka_bootstrap,
			.topic = r.topic,
			.group = r.group,
			.pg_password = r.pg_password,
			.out = r.samples,
			.offsets_out = r.offsets,
			.t0 = r.t0,
			.stop_flag = (volatile int *)&stop_requested,
		};

		rc = fp_sampling_start(&sc, &r.sampling, err);
	}
	if (rc) {
		timeline(&r, "stop", "unreachable", "%s", err->msg);
		exit_code = rc == FP_EUNREACHABLE ? FP_EXIT_UNREACHABLE
						  : FP_EXIT_USAGE;
		r.rep->verdict = FP_VERDICT_UNKNOWN;
		r.rep->exit_code = exit_code;
		fp_report_set(&r.rep->verdict_reason, err->msg);
		finish(&r, out);
		snprintf(out->verdict, sizeof out->verdict, "unknown");
		goto out_free;
	}

	if (r.sc->load.enabled) {
		struct fp_load_conf lc = {
			.spec = &r.sc->load,
			.url = r.env->ingress_url,
			.platform_run_id = r.platform_run_id,
			.scenario_run_id = r.run_id,
			.event_class = r.env->event_class,
			.runtime_lane = r.env->runtime_lane,
			.ledger_path = NULL,
			.kafka_bootstrap = r.env->kafka_bootstrap,
			.kafka_props = &r.env->kafka_props,
		};
		char lpath[4200];

		fp_path_join(lpath, sizeof lpath, r.bundle, "ledger.tsv");
		lc.ledger_path = lpath;
		rc = fp_loadgen_new(&lc, &r.load, err);
		if (rc) {
			exit_code = FP_EXIT_USAGE;
			goto out_free;
		}
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	/* One sample period so "before" has values. */
	fp_sleep_ns(r.env->sample_every_ns ? r.env->sample_every_ns + 50 * FP_NS_PER_MS
					   : 300 * FP_NS_PER_MS,
		    NULL);
	metrics_snapshot(&r, "before", 0, 0);

	for (size_t i = 0; i < r.sc->n_phases; i++) {
		if (stop_requested)
			break;
		rc = run_phase(&r, i, err);
		if (rc) {
			r.aborted = 1;
			snprintf(r.abort_reason, sizeof r.abort_reason,
				 "phase %s: %s", r.sc->phases[i].id, err->msg);
			timeline(&r, "stop", "error", "%s", r.abort_reason);
			break;
		}
	}
	fired = fp_sampling_fired(r.sampling, r.abort_reason,
				  sizeof r.abort_reason);
	if (fired && !r.aborted) {
		r.aborted = 1;
		timeline(&r, "stop", "stop_condition", "%s", r.abort_reason);
	} else if (stop_requested && !r.aborted) {
		r.aborted = 1;
		snprintf(r.abort_reason, sizeof r.abort_reason,
			 "stopped by a signal");
		timeline(&r, "stop", "signal", "stop requested");
	}
	/* Every exit path from here on runs the reverts, first thing: a
	 * Ctrl-C must undo the faults before anything slow happens. */
	revert_all(&r);
	if (r.load) {
		struct fp_err e2 = {0};

		if (r.aborted)
			fp_loadgen_stop(r.load);
		fp_loadgen_wait(r.load, &e2);
	}
	metrics_snapshot(&r, "during", r.t0, fp_mono_ns());
	if (r.load) {
		fp_loadgen_stats(r.load, &ls);
		r.rep->load = fp_loadgen_stats_json(&ls);
	}
	if (!r.aborted) {
		struct fp_err e2 = {0};

		status_update(&r, "check");
		rc = run_checks(&r, &e2);
		if (rc) {
			r.aborted = 1;
			snprintf(r.abort_reason, sizeof r.abort_reason,
				 "checks could not run: %s", e2.msg);
		}
	}
	metrics_snapshot(&r, "after", 0, 0);
	fp_sampling_stop(r.sampling);
	judge_bounds(&r, &ls);
	decide(&r, &ls);
	exit_code = r.rep->exit_code;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	status_update(&r, "report");
	if (finish(&r, out) && exit_code == FP_EXIT_PASS)
		exit_code = FP_EXIT_UNKNOWN;
	snprintf(out->verdict, sizeof out->verdict, "%s",
		 fp_verdict_name(r.rep->verdict));
	if (r.rep->verdict_reason)
		fp_err_set(err, FP_OK, "%s", r.rep->verdict_reason);

out_free:
	pthread_mutex_lock(&status_mu);
	status_now.active = 0;
	pthread_mutex_unlock(&status_mu);
	fp_sampling_free(r.sampling);
	if (r.journal) {
		/* Reached only on early exits, before any fault. */
		struct fp_err e3 = {0};

		fp_journal_finish(r.journal, 1, NULL, &e3);
		fp_journal_free(r.journal);
	}
	if (r.samples)
		fclose(r.samples);
	if (r.offsets)
		fclose(r.offsets);
	if (r.offset_resets)
		fclose(r.offset_resets);
	fp_loadgen_free(r.load);
	fp_kafka_free(r.kafka);
	fp_pg_close(r.pg);
	fp_secret_free(r.pg_password);
	for (size_t i = 0; i < r.n_marks; i++)
		free(r.mark_parts[i]);
	free(r.ptimes);
	fp_report_free(r.rep);
	fp_scenario_free(r.sc);
	fp_env_free(r.env);
	out->exit_code = exit_code;
	return exit_code;
}
