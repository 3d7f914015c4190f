/*
 * judge.c - runs a drill's checks: loads the ledger, then judges on up to
 * FP_JUDGE_MAX_LANES database connections at once.
 *
 * At 10 M events every check that joins the ledger is one PostgreSQL backend
 * busy on one core for 10-20 s (docs/performance.md §5), so a single
 * connection leaves the other cores idle. Each lane is a connection of its
 * own (the caller's, plus lanes - 1 opened here, each on its own thread).
 * Checks that do not read the ledger (flag needs_ledger clear) start at
 * once, while lane 0 is still copying the ledger in; the others wait for the
 * load. Results land in the caller's array, so the report keeps the spec's
 * order whatever order the checks finished in.
 *
 * The checks only read, and each runs whole on one connection, so running
 * two at a time changes when they run, never what they see: the run is over
 * and the ledger table is complete before any of them reads it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "invariants/fp_invariant.h"

struct judge {
	const struct fp_check_ctx *tmpl;
	struct fp_judge_check *checks;
	size_t n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t next_free, next_ledger; /* scan positions over checks[] */
	int ledger_ready, ledger_failed;
};

/* The next check this lane may run, or NULL when none is left for it.
 * Ledger-free checks first, in spec order; then, once the ledger is in,
 * the rest in spec order. */
static struct fp_judge_check *take(struct judge *j)
{
	struct fp_judge_check *c = NULL;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (j->next_free < j->n &&
		       j->checks[j->next_free].inv->needs_ledger)
			j->next_free++;
		if (j->next_free < j->n) {
			c = &j->checks[j->next_free++];
			break;
		}
		if (j->ledger_failed)
			break;
		if (j->ledger_ready) {
			while (j->next_ledger < j->n &&
			       !j->checks[j->next_ledger].inv->needs_ledger)
				j->next_ledger++;
			if (j->next_ledger < j->n)
				c = &j->checks[j->next_ledger++];
			break;
		}
		pthread_cond_wait(&j->cv, &j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return c;
}

static void run_one(const struct judge *j, struct fp_pg *pg,
		    struct fp_judge_check *c)
{
	struct fp_check_ctx ctx = *j->tmpl;
	int64_t t0 = fp_mono_ns();

	ctx.pg = pg;
	memset(&c->res, 0, sizeof c->res);
	memset(&c->err, 0, sizeof c->err);
	c->rc = c->inv->check(&ctx, c->with, &c->res, &c->err);
	c->elapsed_ns = fp_mono_ns() - t0;
	c->ran = 1;
}

static void drain(struct judge *j, struct fp_pg *pg)
{
	struct fp_judge_check *c;

	while ((c = take(j)))
		run_one(j, pg, c);
}

struct lane {
	struct judge *j;
	struct fp_pg *pg;
	pthread_t tid;
};

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct fp_err e = {0};

	/* Tuned like lane 0; the connection is closed after the checks. */
	if (fp_invariant_tune_session(l->pg, 1, &e) != FP_OK)
		FP_WARN("event=judge_lane_tune err=\"%s\"", e.msg);
	drain(l->j, l->pg);
	return NULL;
}

int fp_judge_run(struct fp_pg *pg, const struct fp_judge_conf *conf,
		 const struct fp_check_ctx *tmpl,
		 struct fp_judge_check *checks, size_t n,
		 struct fp_judge_stats *stats, struct fp_err *err)
{
	struct judge j = {.tmpl = tmpl, .checks = checks, .n = n};
	struct lane lanes[FP_JUDGE_MAX_LANES];
	int want = conf->lanes < 1 ? 1
		   : conf->lanes > FP_JUDGE_MAX_LANES ? FP_JUDGE_MAX_LANES
						      : conf->lanes;
	int used = 1, rc = FP_OK;
	struct fp_err e3 = {0};
	int64_t t0 = fp_mono_ns();

	memset(stats, 0, sizeof *stats);
	memset(lanes, 0, sizeof lanes);
	for (size_t i = 0; i < n; i++)
		checks[i].ran = 0;
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.cv, NULL);
	j.ledger_ready = !conf->load_ledger;

	/* Extra lanes: a connection each. One that cannot connect is only a
	 * slower judgement, never a wrong one, so it is logged and skipped. */
	for (int k = 1; k < want && n > 1; k++) {
		struct lane *l = &lanes[used];
		struct fp_err e = {0};

		if (fp_pg_connect(conf->conninfo, conf->password, &l->pg, &e) !=
		    FP_OK) {
			FP_WARN("event=judge_lane_connect lane=%d err=\"%s\"", k,
				e.msg);
			break;
		}
		l->j = &j;
		if (pthread_create(&l->tid, NULL, lane_main, l) != 0) {
			FP_WARN("event=judge_lane_thread lane=%d", k);
			fp_pg_close(l->pg);
			l->pg = NULL;
			break;
		}
		used++;
	}
	stats->lanes = used;

	rc = fp_invariant_tune_session(pg, 1, err);
	if (!rc && conf->load_ledger) {
		int64_t tl = fp_mono_ns();

		rc = fp_invariant_load_ledger(pg, conf->ledger_tsv,
					      tmpl->ledger, &stats->ledger_rows,
					      err);
		stats->load_ns = fp_mono_ns() - tl;
	}
	pthread_mutex_lock(&j.mu);
	if (rc)
		j.ledger_failed = 1;
	else
		j.ledger_ready = 1;
	pthread_cond_broadcast(&j.cv);
	pthread_mutex_unlock(&j.mu);
	if (!rc)
		drain(&j, pg);

	for (int k = 1; k < used; k++) {
		pthread_join(lanes[k].tid, NULL);
		fp_pg_close(lanes[k].pg);
	}
	fp_invariant_tune_session(pg, 0, &e3);
	pthread_cond_destroy(&j.cv);
	pthread_mutex_destroy(&j.mu);
	stats->elapsed_ns = fp_mono_ns() - t0;
	return rc;
}
