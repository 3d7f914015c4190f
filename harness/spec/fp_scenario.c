/*
 * fp_scenario.c - scenario v1 (fpdrill: scenario/v1): load, validate, free.
 *
 * Order matters: params are read first (with --set applied) because every
 * other value may say ${params.NAME}; then the whole tree is interpolated,
 * and only then typed, so "duration: ${params.d}" decodes as a duration.
 * Cross references (revert -> earlier "as", mark:<name> -> an earlier or
 * current phase's mark, phase_duration:<id> -> a phase, a recovery bound's
 * after: phase:<id> / revert:<as-id>, action -> the env profile,
 * inject/invariant -> the plugin tables, observables of until / recovery /
 * stop_conditions -> the env profile's samplers) are all checked here, so
 * a run never starts with a spec that would fail halfway through.
 */
#include "harness/spec/fp_spec_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_buf.h"
#include "harness/core/fp_clock.h"

struct scn {
	struct fp_sd d;
	struct fp_scenario *sc;
	const struct fp_env *env;            /* may be NULL */
	const struct fp_spec_names *names;   /* may be NULL */
};

/* ---- free --------------------------------------------------------------- */

static void step_free(struct fp_step *s)
{
	free(s->action);
	free(s->revert_action);
	free(s->injector);
	fp_sd_kvlist_free(&s->with);
	free(s->as);
	free(s->revert_ref);
}

static void phase_free(struct fp_phase *p)
{
	for (size_t i = 0; i < p->n_steps; i++)
		step_free(&p->steps[i]);
	free(p->steps);
	free(p->id);
	free(p->mark);
	free(p->until.observable);
}

void fp_scenario_free(struct fp_scenario *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->n_phases; i++)
		phase_free(&sc->phases[i]);
	free(sc->phases);
	for (size_t i = 0; i < sc->n_checks; i++) {
		free(sc->checks[i].invariant);
		fp_sd_kvlist_free(&sc->checks[i].with);
	}
	free(sc->checks);
	for (size_t i = 0; i < sc->n_bounds; i++) {
		free(sc->bounds[i].name);
		free(sc->bounds[i].measure);
		free(sc->bounds[i].recovery.observable);
		free(sc->bounds[i].after);
	}
	free(sc->bounds);
	for (size_t i = 0; i < sc->n_stop_conditions; i++) {
		free(sc->stop_conditions[i].text);
		free(sc->stop_conditions[i].observable);
	}
	free(sc->stop_conditions);
	free(sc->load.bursts);
	free(sc->load.kafka_topic);
	free(sc->id);
	free(sc->title);
	free(sc->description);
	free(sc->expected);
	fp_sd_strv_free(sc->claims, sc->n_claims);
	fp_sd_strv_free(sc->covers, sc->n_covers);
	fp_sd_strv_free(sc->followups, sc->n_followups);
	fp_sd_kvlist_free(&sc->params);
	free(sc->path); /* last: marks borrow it */
	free(sc);
}

/* ---- names -------------------------------------------------------------- */

/* FP_EVENT_KIND_MAP names in enum order, NULL-terminated (mix: keys). */
static const char *const kind_names[] = {
#define FP_EVENT_KIND_NAME(sym, name) name,
	FP_EVENT_KIND_MAP(FP_EVENT_KIND_NAME)
#undef FP_EVENT_KIND_NAME
	NULL};

const char *fp_event_kind_name(enum fp_event_kind k)
{
	return (unsigned)k < FP_EVENT_KIND_COUNT ? kind_names[k] : "unknown";
}

/* Comparison operators in enum fp_cmp order. */
static const char *const cmp_ops[] = {"<", "<=", "==", ">=", ">", NULL};

static int name_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

static int phase_char(int c)
{
	return (c >= 'a' && c <= 'z') || isdigit(c) || c == '_' || c == '-';
}

#define NAME_DESCR "a name of letters, digits, '.', '_' and '-'"

/* ---- params and --set ------------------------------------------------- */

static int decode_params(struct scn *s, struct fp_yaml_node *n)
{
	struct fp_sd *d = &s->d;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "params"))
		return d->rc;
	for (size_t i = 0; i < n->n; i++) {
		char *tmp = NULL;

		if (fp_sd_name(d, n->keys[i], name_char,
			       "a parameter name of letters, digits, '.', "
			       "'_' and '-'",
			       &tmp))
			return d->rc;
		free(tmp);
	}
	d->in_params = 1;
	fp_sd_interp_tree(d, n);
	d->in_params = 0;
	if (d->rc)
		return d->rc;
	return fp_sd_kvlist(d, n, "params", &s->sc->params);
}

/* A malformed --set is a usage error, caught before the file is read. */
static int check_sets(const char *const *sets, size_t nsets,
		      struct fp_err *err)
{
	for (size_t i = 0; i < nsets; i++) {
		const char *eq = sets[i] ? strchr(sets[i], '=') : NULL;

		if (!eq || eq == sets[i])
			return fp_err_set(err, FP_EUSAGE,
					  "--set: expected key=value, got "
					  "\"%.64s\"",
					  sets[i] ? sets[i] : "(null)");
	}
	return FP_OK;
}

static int apply_sets(struct scn *s, const char *const *sets, size_t nsets)
{
	struct fp_sd *d = &s->d;
	static const struct fp_mark set_mark = {"--set", 0, 0};

	for (size_t i = 0; i < nsets; i++) {
		const char *eq = strchr(sets[i], '=');
		size_t klen = (size_t)(eq - sets[i]);
		struct fp_kv *kv = NULL;
		char known[256];
		char *v;

		for (size_t j = 0; j < s->sc->params.n; j++) {
			struct fp_kv *p = &s->sc->params.items[j];

			if (strlen(p->key) == klen &&
			    memcmp(p->key, sets[i], klen) == 0)
				kv = p;
		}
		if (!kv)
			return fp_sd_err_at(d, &set_mark,
					    "unknown parameter '%.*s' (known: "
					    "%s)",
					    (int)(klen > 64 ? 64 : klen),
					    sets[i],
					    fp_sd_kv_keys(&s->sc->params,
							  known,
							  sizeof known));
		d->in_params = 1;
		fp_sd_interp(d, eq + 1, &set_mark, &v);
		d->in_params = 0;
		if (d->rc)
			return d->rc;
		free(kv->value);
		kv->value = v;
		kv->mark = set_mark;
	}
	return FP_OK;
}

/* ---- load ------------------------------------------------------------- */

/* Bursts beyond this are a spec mistake, and the load generator's rate
 * polynomial grows one degree per overlapping burst. */
#define MAX_BURSTS 64

static int decode_ramp(struct scn *s, const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"from", "to", "over", NULL};
	struct fp_load_spec *l = &s->sc->load;
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v;
	char got[160];

	if (fp_sd_want_map(d, n, "load.ramp") ||
	    fp_sd_check_keys(d, n, "load.ramp", keys) ||
	    fp_sd_require(d, n, "from", "load.ramp", &v) ||
	    fp_sd_number_range(d, v, 0, 1e7, &l->ramp_from) ||
	    fp_sd_require(d, n, "to", "load.ramp", &v) ||
	    fp_sd_number(d, v, &l->ramp_to))
		return d->rc;
	if (!(l->ramp_to > 0 && l->ramp_to <= 1e7))
		return fp_sd_err(d, v,
				 "expected a rate above 0 and at most 1e+07 "
				 "(events per second), got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_require(d, n, "over", "load.ramp", &v) ||
	    fp_sd_duration(d, v, &l->ramp_over_ns))
		return d->rc;
	if (l->ramp_over_ns <= 0)
		return fp_sd_err(d, v, "expected a ramp time above 0, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	/* rate is the steady rate the ramp ends at (shown by `plan`). */
	l->rate = l->ramp_to;
	return FP_OK;
}

static int decode_burst(struct scn *s, const struct fp_yaml_node *n,
			struct fp_burst *b)
{
	static const char *const keys[] = {"at",    "duration", "multiplier",
					   "shape", "ramp",     NULL};
	static const char *const shapes[] = {"step", "ramp", NULL};
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v, *rv;
	char got[160];
	int shape = 0;

	if (fp_sd_want_map(d, n, "a burst") ||
	    fp_sd_check_keys(d, n, "burst", keys) ||
	    fp_sd_require(d, n, "at", "burst", &v) ||
	    fp_sd_duration(d, v, &b->at_ns) ||
	    fp_sd_require(d, n, "duration", "burst", &v) ||
	    fp_sd_duration(d, v, &b->duration_ns))
		return d->rc;
	if (b->duration_ns <= 0)
		return fp_sd_err(d, v,
				 "expected a burst duration above 0, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_require(d, n, "multiplier", "burst", &v) ||
	    fp_sd_number(d, v, &b->multiplier))
		return d->rc;
	if (!(b->multiplier > 0 && b->multiplier <= 1000))
		return fp_sd_err(d, v,
				 "expected a multiplier above 0 and at most "
				 "1000, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_enum(d, fp_yaml_get(n, "shape"), shapes, &shape))
		return d->rc;
	b->ramp = shape;
	rv = fp_yaml_get(n, "ramp");
	if (rv && !b->ramp)
		return fp_sd_err(d, rv,
				 "expected ramp: only with shape: ramp, got "
				 "it with shape: step");
	if (!b->ramp)
		return FP_OK;
	b->ramp_ns = b->duration_ns / 4;
	if (fp_sd_duration(d, rv, &b->ramp_ns))
		return d->rc;
	if (rv && (b->ramp_ns <= 0 || b->ramp_ns > b->duration_ns / 2))
		return fp_sd_err(d, rv,
				 "expected a ramp time above 0 and at most "
				 "half the burst duration (up and down both "
				 "fit), got %s",
				 fp_yaml_describe(rv, got, sizeof got));
	return FP_OK;
}

static int decode_bursts(struct scn *s, const struct fp_yaml_node *n)
{
	struct fp_load_spec *l = &s->sc->load;
	struct fp_sd *d = &s->d;
	char got[160];

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_seq(d, n, "load.bursts"))
		return d->rc;
	if (n->n > MAX_BURSTS)
		return fp_sd_err(d, n,
				 "expected at most %d bursts, got %zu (%s)",
				 MAX_BURSTS, n->n,
				 fp_yaml_describe(n, got, sizeof got));
	if (n->n == 0)
		return FP_OK;
	l->bursts = calloc(n->n, sizeof *l->bursts);
	if (!l->bursts)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		l->n_bursts++;
		if (decode_burst(s, n->vals[i], &l->bursts[i]))
			return d->rc;
	}
	return FP_OK;
}

static int decode_mix(struct scn *s, const struct fp_yaml_node *n)
{
	struct fp_load_spec *l = &s->sc->load;
	struct fp_sd *d = &s->d;
	double sum = 0;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "load.mix") ||
	    fp_sd_check_keys(d, n, "load.mix", kind_names))
		return d->rc;
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
		l->mix[k] = 0;
	for (size_t i = 0; i < n->n; i++) {
		int k = 0;
		char got[160];

		while (strcmp(kind_names[k], n->keys[i]->str) != 0)
			k++; /* check_keys guarantees a match */
		if (fp_sd_number(d, n->vals[i], &l->mix[k]))
			return d->rc;
		if (!(l->mix[k] >= 0))
			return fp_sd_err(d, n->vals[i],
					 "expected a share of 0 or more, got %s",
					 fp_yaml_describe(n->vals[i], got,
							  sizeof got));
		sum += l->mix[k];
	}
	if (!(sum > 0))
		return fp_sd_err(d, n,
				 "expected load.mix shares that add up to "
				 "more than 0, got a sum of 0");
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
		l->mix[k] /= sum;
	return FP_OK;
}

static int decode_load(struct scn *s, const struct fp_yaml_node *n)
{
	static const char *const keys[] = {
		"channel",  "rate",   "seed",  "concurrency",
		"accounts", "high_value_share", "timeout", "retry",
		"ramp",     "bursts", "mix",   "kafka",   NULL};
	static const char *const rkeys[] = {"share", "delay", NULL};
	static const char *const kkeys[] = {"topic", NULL};
	static const char *const channels[] = {"http", "kafka", NULL};
	struct fp_load_spec *l = &s->sc->load;
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v, *r, *ramp, *k;
	long long conc = 64, accounts = 1000;
	int ch = FP_CHANNEL_HTTP;
	char got[160];

	if (!n)
		return FP_OK;
	if (fp_sd_want_map(d, n, "load") ||
	    fp_sd_check_keys(d, n, "load", keys))
		return d->rc;
	l->enabled = 1;
	v = fp_yaml_get(n, "channel");
	if (fp_sd_enum(d, v, channels, &ch))
		return d->rc;
	l->channel = (enum fp_channel)ch;
	k = fp_yaml_get(n, "kafka");
	if (l->channel == FP_CHANNEL_KAFKA && !k)
		return fp_sd_err(d, n,
				 "missing required key \"kafka\" in load "
				 "(channel: kafka produces to kafka.topic)");
	if (k && l->channel != FP_CHANNEL_KAFKA)
		return fp_sd_err(d, k,
				 "expected load.kafka only with channel: "
				 "kafka, got it with channel: http");
	if (k && (fp_sd_want_map(d, k, "load.kafka") ||
		  fp_sd_check_keys(d, k, "load.kafka", kkeys) ||
		  fp_sd_require(d, k, "topic", "load.kafka", &v) ||
		  fp_sd_str_nonempty(d, v, &l->kafka_topic)))
		return d->rc;
	v = fp_yaml_get(n, "rate");
	ramp = fp_yaml_get(n, "ramp");
	if (v && ramp)
		return fp_sd_err(d, ramp,
				 "expected exactly one of rate or ramp in "
				 "load, got both");
	if (!v && !ramp)
		return fp_sd_err(d, n,
				 "missing required key \"rate\" (or "
				 "\"ramp\") in load");
	if (ramp) {
		if (decode_ramp(s, ramp))
			return d->rc;
	} else {
		if (fp_sd_number(d, v, &l->rate))
			return d->rc;
		if (!(l->rate > 0))
			return fp_sd_err(d, v,
					 "expected a rate above 0 (events per "
					 "second), got %s",
					 fp_yaml_describe(v, got, sizeof got));
	}
	if (decode_bursts(s, fp_yaml_get(n, "bursts")) ||
	    decode_mix(s, fp_yaml_get(n, "mix")))
		return d->rc;
	if (fp_sd_u64(d, fp_yaml_get(n, "seed"), &l->seed) ||
	    fp_sd_int(d, fp_yaml_get(n, "concurrency"), 1, 4096, &conc) ||
	    fp_sd_int(d, fp_yaml_get(n, "accounts"), 1, 0x7fffffff,
		      &accounts) ||
	    fp_sd_number_range(d, fp_yaml_get(n, "high_value_share"), 0, 1,
			       &l->high_value_share) ||
	    fp_sd_duration(d, fp_yaml_get(n, "timeout"), &l->timeout_ns))
		return d->rc;
	l->concurrency = (int)conc;
	l->accounts = (int)accounts;
	r = fp_yaml_get(n, "retry");
	if (!r || fp_yaml_is_null(r))
		return FP_OK;
	if (fp_sd_want_map(d, r, "load.retry") ||
	    fp_sd_check_keys(d, r, "load.retry", rkeys) ||
	    fp_sd_number_range(d, fp_yaml_get(r, "share"), 0, 1,
			       &l->retry_share) ||
	    fp_sd_duration(d, fp_yaml_get(r, "delay"), &l->retry_delay_ns))
		return d->rc;
	return FP_OK;
}

/* ---- cross references ------------------------------------------------- */

/* The step with as == id among phases [0, upto] (steps decoded so far). */
static const struct fp_step *find_as(const struct fp_scenario *sc,
				     size_t upto, const char *id)
{
	for (size_t i = 0; i <= upto && i < sc->n_phases; i++)
		for (size_t j = 0; j < sc->phases[i].n_steps; j++)
			if (sc->phases[i].steps[j].as &&
			    strcmp(sc->phases[i].steps[j].as, id) == 0)
				return &sc->phases[i].steps[j];
	return NULL;
}

static const struct fp_step *find_revert_of(const struct fp_scenario *sc,
					    size_t upto, const char *id)
{
	for (size_t i = 0; i <= upto && i < sc->n_phases; i++)
		for (size_t j = 0; j < sc->phases[i].n_steps; j++)
			if (sc->phases[i].steps[j].revert_ref &&
			    strcmp(sc->phases[i].steps[j].revert_ref, id) == 0)
				return &sc->phases[i].steps[j];
	return NULL;
}

/* "a, b" of the as ids (or marks) seen so far, for messages. */
static void list_as(const struct fp_scenario *sc, size_t upto, int marks,
		    struct fp_buf *b)
{
	for (size_t i = 0; i <= upto && i < sc->n_phases; i++) {
		if (marks) {
			if (sc->phases[i].mark)
				fp_buf_printf(b, "%s%s", b->len ? ", " : "",
					      sc->phases[i].mark);
			continue;
		}
		for (size_t j = 0; j < sc->phases[i].n_steps; j++)
			if (sc->phases[i].steps[j].as)
				fp_buf_printf(b, "%s%s", b->len ? ", " : "",
					      sc->phases[i].steps[j].as);
	}
	if (!b->len)
		fp_buf_puts(b, "none");
}

/* Values "mark:<name>" must name a mark of a phase in [0, upto]: offsets
 * are recorded when that phase starts, so a later mark does not exist yet
 * when this step runs. */
static int check_mark_refs(struct scn *s, const struct fp_yaml_node *with,
			   size_t upto)
{
	struct fp_sd *d = &s->d;

	if (!with || with->kind != FP_YAML_MAP)
		return FP_OK;
	for (size_t i = 0; i < with->n; i++) {
		const struct fp_yaml_node *v = with->vals[i];
		struct fp_buf known = FP_BUF_INIT(512);
		int found = 0;

		if (v->kind != FP_YAML_SCALAR || strncmp(v->str, "mark:", 5))
			continue;
		for (size_t p = 0; p <= upto && p < s->sc->n_phases; p++)
			if (s->sc->phases[p].mark &&
			    strcmp(s->sc->phases[p].mark, v->str + 5) == 0)
				found = 1;
		if (found)
			continue;
		list_as(s->sc, upto, 1, &known);
		fp_sd_err(d, v,
			  "expected mark:<name> naming a mark of this or an "
			  "earlier phase (defined so far: %s), got \"%.64s\" "
			  "(dangling reference)",
			  fp_buf_cstr(&known), v->str);
		fp_buf_release(&known);
		return d->rc;
	}
	return FP_OK;
}

static int check_bound_action(struct scn *s, const struct fp_yaml_node *n,
			      const char *name)
{
	struct fp_buf known = FP_BUF_INIT(1024);
	struct fp_sd *d = &s->d;

	if (!s->env || fp_env_action(s->env, name))
		return FP_OK;
	for (size_t i = 0; i < s->env->n_actions; i++)
		fp_buf_printf(&known, "%s%s", i ? ", " : "",
			      s->env->actions[i].name);
	fp_sd_err(d, n,
		  "expected an action bound by env profile \"%s\" (bound: "
		  "%s), got \"%.64s\" (unbound action)",
		  s->env->name, known.len ? fp_buf_cstr(&known) : "none",
		  name);
	fp_buf_release(&known);
	return d->rc;
}

/* The series a run samples: decision_group_lag, every sampler of the env
 * profile, and "<name>.latency_ms" of each http sampler. Without an env
 * profile nothing is known, so nothing is checked. */
static int check_observable(struct scn *s, const struct fp_yaml_node *at,
			    const char *name)
{
	struct fp_buf known = FP_BUF_INIT(2048);
	const struct fp_env *env = s->env;
	struct fp_sd *d = &s->d;

	if (!env || strcmp(name, "decision_group_lag") == 0)
		return FP_OK;
	for (size_t i = 0; i < env->n_samplers; i++) {
		const struct fp_sampler *sp = &env->samplers[i];
		size_t nl = strlen(sp->name);

		if (strcmp(sp->name, name) == 0 ||
		    (sp->kind == FP_SAMPLER_HTTP &&
		     strncmp(name, sp->name, nl) == 0 &&
		     strcmp(name + nl, ".latency_ms") == 0))
			return FP_OK;
	}
	fp_buf_puts(&known, "decision_group_lag");
	for (size_t i = 0; i < env->n_samplers; i++) {
		fp_buf_printf(&known, ", %s", env->samplers[i].name);
		if (env->samplers[i].kind == FP_SAMPLER_HTTP)
			fp_buf_printf(&known, ", %s.latency_ms",
				      env->samplers[i].name);
	}
	fp_sd_err(d, at,
		  "unknown observable \"%.64s\" (known: %s; samplers are "
		  "declared under samplers: in env profile \"%s\")",
		  name, fp_buf_cstr(&known), env->name);
	fp_buf_release(&known);
	return d->rc;
}

/* ---- steps and phases -------------------------------------------------- */

static int decode_step(struct scn *s, size_t pi, const struct fp_yaml_node *n,
		       struct fp_step *st)
{
	static const char *const all[] = {"action", "inject", "revert",
					  "wait",   "as",     "with", NULL};
	static const char *const k_action[] = {"action", "revert", "as", NULL};
	static const char *const k_inject[] = {"inject", "with", "as", NULL};
	static const char *const k_wait[] = {"wait", NULL};
	static const char *const k_revert[] = {"revert", NULL};
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *a, *inj, *w, *rv, *as, *v;
	const char *kinds[3];
	int nk = 0;

	st->mark = fp_sd_mark(d, n);
	if (fp_sd_want_map(d, n, "a step") ||
	    fp_sd_check_keys(d, n, "step", all))
		return d->rc;
	a = fp_yaml_get(n, "action");
	inj = fp_yaml_get(n, "inject");
	w = fp_yaml_get(n, "wait");
	rv = fp_yaml_get(n, "revert");
	as = fp_yaml_get(n, "as");
	if (a)
		kinds[nk++] = "action";
	if (inj)
		kinds[nk++] = "inject";
	if (w)
		kinds[nk++] = "wait";
	if (nk > 1)
		return fp_sd_err(d, n,
				 "expected exactly one of action, inject, "
				 "revert, wait in a step, got both %s and %s",
				 kinds[0], kinds[1]);
	if (nk == 0 && !rv)
		return fp_sd_err(d, n,
				 "expected exactly one of action, inject, "
				 "revert, wait in a step, got none");
	if (a) {
		st->kind = FP_STEP_ACTION;
		if (fp_sd_check_keys(d, n, "action step", k_action) ||
		    fp_sd_name(d, a, name_char, "an action " NAME_DESCR,
			       &st->action) ||
		    check_bound_action(s, a, st->action) ||
		    fp_sd_name(d, rv, name_char, "an action " NAME_DESCR,
			       &st->revert_action) ||
		    (st->revert_action &&
		     check_bound_action(s, rv, st->revert_action)))
			return d->rc;
	} else if (inj) {
		char got[160];

		st->kind = FP_STEP_INJECT;
		if (fp_sd_check_keys(d, n, "inject step", k_inject) ||
		    fp_sd_name(d, inj, name_char, "an injector " NAME_DESCR,
			       &st->injector))
			return d->rc;
		if (s->names && s->names->has_injector &&
		    !s->names->has_injector(st->injector))
			return fp_sd_err(d, inj,
					 "expected a known injector, got %s "
					 "(unknown injector; see "
					 "docs/injectors/)",
					 fp_yaml_describe(inj, got,
							  sizeof got));
		v = fp_yaml_get(n, "with");
		if (fp_sd_kvlist(d, v, "with", &st->with) ||
		    check_mark_refs(s, v, pi))
			return d->rc;
	} else if (w) {
		st->kind = FP_STEP_WAIT;
		if (fp_sd_check_keys(d, n, "wait step", k_wait) ||
		    fp_sd_duration(d, w, &st->wait_ns))
			return d->rc;
		return FP_OK;
	} else {
		const struct fp_step *target;
		struct fp_buf known = FP_BUF_INIT(1024);

		st->kind = FP_STEP_REVERT;
		if (fp_sd_check_keys(d, n, "revert step", k_revert) ||
		    fp_sd_name(d, rv, name_char, "a step id " NAME_DESCR,
			       &st->revert_ref))
			return d->rc;
		/* st is not counted yet, so it cannot find itself. */
		target = find_as(s->sc, pi, st->revert_ref);
		if (!target) {
			list_as(s->sc, pi, 0, &known);
			fp_sd_err(d, rv,
				  "expected the as: id of an earlier action "
				  "or inject step (defined so far: %s), got "
				  "\"%.64s\" (dangling reference)",
				  fp_buf_cstr(&known), st->revert_ref);
			fp_buf_release(&known);
			return d->rc;
		}
		if (target->kind == FP_STEP_ACTION && !target->revert_action)
			return fp_sd_err(d, rv,
					 "expected a step that can be undone "
					 "(an inject, or an action with "
					 "revert:), got \"%.64s\", an action "
					 "without revert:",
					 st->revert_ref);
		if (find_revert_of(s->sc, pi, st->revert_ref))
			return fp_sd_err(d, rv,
					 "expected a step that is not "
					 "reverted yet, got \"%.64s\" "
					 "(reverted earlier)",
					 st->revert_ref);
		return FP_OK;
	}
	if (fp_sd_name(d, as, name_char, "a step id " NAME_DESCR, &st->as))
		return d->rc;
	if (st->as && find_as(s->sc, pi, st->as))
		return fp_sd_err(d, as,
				 "expected a step id used once, got \"%.64s\" "
				 "again",
				 st->as);
	return FP_OK;
}

static int decode_until(struct scn *s, const struct fp_yaml_node *n,
			struct fp_phase *p)
{
	static const char *const keys[] = {"observable", "op",      "value",
					   "hold",       "timeout", NULL};
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v;
	int op = 0;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "until") ||
	    fp_sd_check_keys(d, n, "until", keys))
		return d->rc;
	p->has_until = 1;
	if (fp_sd_require(d, n, "observable", "until", &v) ||
	    fp_sd_name(d, v, name_char, "an observable " NAME_DESCR,
		       &p->until.observable) ||
	    check_observable(s, v, p->until.observable) ||
	    fp_sd_require(d, n, "op", "until", &v) ||
	    fp_sd_enum(d, v, cmp_ops, &op) ||
	    fp_sd_require(d, n, "value", "until", &v) ||
	    fp_sd_number(d, v, &p->until.value) ||
	    fp_sd_duration(d, fp_yaml_get(n, "hold"), &p->until.hold_ns) ||
	    fp_sd_require(d, n, "timeout", "until", &v) ||
	    fp_sd_duration(d, v, &p->until.timeout_ns))
		return d->rc;
	/* cmp_ops[] is in fp_cmp order. */
	p->until.op = (enum fp_cmp)op;
	return FP_OK;
}

static int decode_phase(struct scn *s, size_t pi, const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"id",   "duration", "load",
					   "mark", "steps",    "until", NULL};
	struct fp_phase *p = &s->sc->phases[pi];
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v, *steps;

	p->where = fp_sd_mark(d, n);
	if (fp_sd_want_map(d, n, "a phase") ||
	    fp_sd_check_keys(d, n, "phase", keys))
		return d->rc;
	if (fp_sd_require(d, n, "id", "phase", &v) ||
	    fp_sd_name(d, v, phase_char,
		       "a phase id of a-z, 0-9, '_' and '-'", &p->id))
		return d->rc;
	for (size_t i = 0; i < pi; i++)
		if (strcmp(s->sc->phases[i].id, p->id) == 0)
			return fp_sd_err(d, v,
					 "expected a phase id used once, got "
					 "\"%s\" again",
					 p->id);
	if (fp_sd_duration(d, fp_yaml_get(n, "duration"), &p->duration_ns))
		return d->rc;
	v = fp_yaml_get(n, "load");
	if (fp_sd_bool(d, v, &p->load))
		return d->rc;
	if (p->load && !s->sc->load.enabled)
		return fp_sd_err(d, v,
				 "expected a top-level load: block for a phase "
				 "with load: true, got none");
	v = fp_yaml_get(n, "mark");
	if (fp_sd_name(d, v, name_char, "a mark " NAME_DESCR, &p->mark))
		return d->rc;
	for (size_t i = 0; p->mark && i < pi; i++)
		if (s->sc->phases[i].mark &&
		    strcmp(s->sc->phases[i].mark, p->mark) == 0)
			return fp_sd_err(d, v,
					 "expected a mark name used once, got "
					 "\"%s\" again (phase %s)",
					 p->mark, s->sc->phases[i].id);
	steps = fp_yaml_get(n, "steps");
	if (steps && !fp_yaml_is_null(steps)) {
		if (fp_sd_want_seq(d, steps, "steps"))
			return d->rc;
		if (steps->n) {
			p->steps = calloc(steps->n, sizeof *p->steps);
			if (!p->steps)
				return fp_sd_oom(d);
		}
		for (size_t i = 0; i < steps->n; i++) {
			/* Count a step only once it is complete: the cross
			 * reference scans must not see a half-decoded one,
			 * but free must see its strings, hence free on
			 * failure here. */
			if (decode_step(s, pi, steps->vals[i],
					&p->steps[i])) {
				step_free(&p->steps[i]);
				return d->rc;
			}
			p->n_steps++;
		}
	}
	return decode_until(s, fp_yaml_get(n, "until"), p);
}

static int decode_phases(struct scn *s, const struct fp_yaml_node *n)
{
	struct fp_sd *d = &s->d;
	char got[160];

	if (n->kind != FP_YAML_SEQ || n->n == 0)
		return fp_sd_err(d, n, "expected a non-empty list of phases, "
				       "got %s",
				 fp_yaml_describe(n, got, sizeof got));
	s->sc->phases = calloc(n->n, sizeof *s->sc->phases);
	if (!s->sc->phases)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		/* Counted first: phase_free copes with a partial phase, and
		 * steps of this phase must see its own mark. */
		s->sc->n_phases++;
		if (decode_phase(s, i, n->vals[i]))
			return d->rc;
	}
	return FP_OK;
}

/* ---- checks and bounds ------------------------------------------------ */

static int decode_checks(struct scn *s, const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"invariant", "with", NULL};
	struct fp_sd *d = &s->d;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_seq(d, n, "checks"))
		return d->rc;
	if (n->n == 0)
		return FP_OK;
	s->sc->checks = calloc(n->n, sizeof *s->sc->checks);
	if (!s->sc->checks)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		struct fp_check *c = &s->sc->checks[i];
		const struct fp_yaml_node *cn = n->vals[i], *v;
		char got[160];

		s->sc->n_checks++;
		c->mark = fp_sd_mark(d, cn);
		if (fp_sd_want_map(d, cn, "a check") ||
		    fp_sd_check_keys(d, cn, "check", keys) ||
		    fp_sd_require(d, cn, "invariant", "check", &v) ||
		    fp_sd_name(d, v, name_char, "an invariant " NAME_DESCR,
			       &c->invariant))
			return d->rc;
		if (s->names && s->names->has_invariant &&
		    !s->names->has_invariant(c->invariant))
			return fp_sd_err(d, v,
					 "expected a known invariant, got %s "
					 "(unknown invariant; see "
					 "docs/invariants/)",
					 fp_yaml_describe(v, got, sizeof got));
		v = fp_yaml_get(cn, "with");
		/* Checks judge after the last phase: every mark exists. */
		if (fp_sd_kvlist(d, v, "with", &c->with) ||
		    check_mark_refs(s, v, s->sc->n_phases))
			return d->rc;
	}
	return FP_OK;
}

/* "a, b" of the phase ids, for messages. */
static void list_phases(const struct fp_scenario *sc, struct fp_buf *b)
{
	for (size_t p = 0; p < sc->n_phases; p++)
		fp_buf_printf(b, "%s%s", p ? ", " : "", sc->phases[p].id);
}

static int has_phase(const struct fp_scenario *sc, const char *id)
{
	for (size_t p = 0; p < sc->n_phases; p++)
		if (strcmp(sc->phases[p].id, id) == 0)
			return 1;
	return 0;
}

/* measure: "phase_duration:<id>" must name a phase; other measures are
 * free-form (judged by the run loop). */
static int decode_measure(struct scn *s, const struct fp_yaml_node *mv,
			  struct fp_bound *b)
{
	static const char pd[] = "phase_duration:";
	struct fp_buf known = FP_BUF_INIT(1024);
	struct fp_sd *d = &s->d;

	b->kind = FP_BOUND_MEASURE;
	if (fp_sd_str_nonempty(d, mv, &b->measure))
		return d->rc;
	if (strncmp(b->measure, pd, sizeof pd - 1) != 0 ||
	    has_phase(s->sc, b->measure + sizeof pd - 1))
		return FP_OK;
	list_phases(s->sc, &known);
	fp_sd_err(d, mv,
		  "expected phase_duration:<phase id> naming a phase (phases: "
		  "%s), got \"%.64s\" (dangling reference)",
		  fp_buf_cstr(&known), b->measure);
	fp_buf_release(&known);
	return d->rc;
}

/* after: "phase:<id>" (a phase of this scenario) or "revert:<as-id>" (the
 * as: id of an action or inject step). */
static int check_after(struct scn *s, const struct fp_yaml_node *v,
		       const char *after)
{
	struct fp_buf known = FP_BUF_INIT(1024);
	struct fp_sd *d = &s->d;

	if (strncmp(after, "phase:", 6) == 0) {
		if (has_phase(s->sc, after + 6))
			return FP_OK;
		list_phases(s->sc, &known);
		fp_sd_err(d, v,
			  "expected after: phase:<id> naming a phase (phases: "
			  "%s), got \"%.64s\" (dangling reference)",
			  fp_buf_cstr(&known), after);
	} else if (strncmp(after, "revert:", 7) == 0) {
		if (find_as(s->sc, s->sc->n_phases, after + 7))
			return FP_OK;
		list_as(s->sc, s->sc->n_phases, 0, &known);
		fp_sd_err(d, v,
			  "expected after: revert:<id> naming the as: id of "
			  "an action or inject step (defined: %s), got "
			  "\"%.64s\" (dangling reference)",
			  fp_buf_cstr(&known), after);
	} else {
		fp_sd_err(d, v,
			  "expected after: phase:<phase id> or "
			  "revert:<step as: id>, got \"%.64s\"",
			  after);
	}
	fp_buf_release(&known);
	return d->rc;
}

static int decode_recovery(struct scn *s, const struct fp_yaml_node *n,
			   struct fp_bound *b)
{
	static const char *const keys[] = {"observable", "op",    "value",
					   "hold",       "after", NULL};
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v;
	int op = 0;

	b->kind = FP_BOUND_RECOVERY;
	if (fp_sd_want_map(d, n, "recovery") ||
	    fp_sd_check_keys(d, n, "recovery", keys) ||
	    fp_sd_require(d, n, "observable", "recovery", &v) ||
	    fp_sd_name(d, v, name_char, "an observable " NAME_DESCR,
		       &b->recovery.observable) ||
	    check_observable(s, v, b->recovery.observable) ||
	    fp_sd_require(d, n, "op", "recovery", &v) ||
	    fp_sd_enum(d, v, cmp_ops, &op) ||
	    fp_sd_require(d, n, "value", "recovery", &v) ||
	    fp_sd_number(d, v, &b->recovery.value) ||
	    fp_sd_duration(d, fp_yaml_get(n, "hold"), &b->recovery.hold_ns) ||
	    fp_sd_require(d, n, "after", "recovery", &v) ||
	    fp_sd_str_nonempty(d, v, &b->after) ||
	    check_after(s, v, b->after))
		return d->rc;
	b->recovery.op = (enum fp_cmp)op;
	return FP_OK;
}

static int decode_latency(struct scn *s, const struct fp_yaml_node *n,
			  struct fp_bound *b)
{
	static const char *const keys[] = {"percentile", "of", NULL};
	static const char *const ofs[] = {"corrected", "service", NULL};
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v;
	char got[160];
	int of = 0;

	b->kind = FP_BOUND_LATENCY;
	if (fp_sd_want_map(d, n, "latency") ||
	    fp_sd_check_keys(d, n, "latency", keys) ||
	    fp_sd_require(d, n, "percentile", "latency", &v) ||
	    fp_sd_number(d, v, &b->percentile))
		return d->rc;
	if (!(b->percentile > 0 && b->percentile <= 100))
		return fp_sd_err(d, v,
				 "expected a percentile above 0 and at most "
				 "100, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_enum(d, fp_yaml_get(n, "of"), ofs, &of))
		return d->rc;
	b->service_time = of;
	if (!s->sc->load.enabled)
		return fp_sd_err(d, n,
				 "expected a top-level load: block for a "
				 "latency bound (latency is measured on the "
				 "load), got none");
	return FP_OK;
}

static int decode_bounds(struct scn *s, const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"name",    "measure", "recovery",
					   "latency", "limit",   NULL};
	static const char *const kinds[] = {"measure", "recovery", "latency",
					    NULL};
	struct fp_sd *d = &s->d;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_seq(d, n, "bounds"))
		return d->rc;
	if (n->n == 0)
		return FP_OK;
	s->sc->bounds = calloc(n->n, sizeof *s->sc->bounds);
	if (!s->sc->bounds)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		struct fp_bound *b = &s->sc->bounds[i];
		const struct fp_yaml_node *bn = n->vals[i], *v, *kv = NULL;
		int kind = -1;

		s->sc->n_bounds++;
		b->mark = fp_sd_mark(d, bn);
		if (fp_sd_want_map(d, bn, "a bound") ||
		    fp_sd_check_keys(d, bn, "bound", keys) ||
		    fp_sd_require(d, bn, "name", "bound", &v) ||
		    fp_sd_name(d, v, name_char, "a bound " NAME_DESCR,
			       &b->name))
			return d->rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->sc->bounds[j].name, b->name) == 0)
				return fp_sd_err(d, v,
						 "expected a bound name used "
						 "once, got \"%s\" again",
						 b->name);
		for (int k = 0; kinds[k]; k++) {
			if (!fp_yaml_get(bn, kinds[k]))
				continue;
			if (kind >= 0)
				return fp_sd_err(d, bn,
						 "expected exactly one of "
						 "measure, recovery, latency "
						 "in a bound, got both %s and "
						 "%s",
						 kinds[kind], kinds[k]);
			kind = k;
			kv = fp_yaml_get(bn, kinds[k]);
		}
		if (kind < 0)
			return fp_sd_err(d, bn,
					 "expected exactly one of measure, "
					 "recovery, latency in a bound, got "
					 "none");
		if ((kind == FP_BOUND_MEASURE && decode_measure(s, kv, b)) ||
		    (kind == FP_BOUND_RECOVERY && decode_recovery(s, kv, b)) ||
		    (kind == FP_BOUND_LATENCY && decode_latency(s, kv, b)))
			return d->rc;
		if (fp_sd_require(d, bn, "limit", "bound", &v) ||
		    fp_sd_duration(d, v, &b->limit_ns))
			return d->rc;
	}
	return FP_OK;
}

/* ---- stop conditions ---------------------------------------------------- */

#define STOP_FORM "\"<observable> <op> <number> [for <duration>]\""

/* The string form "<observable> <op> <number> [for <duration>]", split on
 * blanks. Errors point at the string (the scalar's mark). */
static int parse_stop_string(struct scn *s, const struct fp_yaml_node *n,
			     struct fp_stop_condition *c)
{
	struct fp_sd *d = &s->d;
	char buf[512], got[160], *tok[6], *save = NULL;
	int nt = 0, op = -1;

	if (strlen(n->str) >= sizeof buf)
		return fp_sd_err(d, n, "expected " STOP_FORM ", got %s",
				 fp_yaml_describe(n, got, sizeof got));
	snprintf(buf, sizeof buf, "%s", n->str);
	for (char *t = strtok_r(buf, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		if (nt == 5)
			return fp_sd_err(d, n,
					 "expected " STOP_FORM ", got %s "
					 "(extra words)",
					 fp_yaml_describe(n, got, sizeof got));
		tok[nt++] = t;
	}
	if (nt != 3 && !(nt == 5 && strcmp(tok[3], "for") == 0))
		return fp_sd_err(d, n, "expected " STOP_FORM ", got %s",
				 fp_yaml_describe(n, got, sizeof got));
	for (const char *p = tok[0]; *p; p++)
		if (!name_char((unsigned char)*p))
			return fp_sd_err(d, n,
					 "expected " STOP_FORM " with an "
					 "observable " NAME_DESCR ", got %s",
					 fp_yaml_describe(n, got, sizeof got));
	for (int i = 0; cmp_ops[i]; i++)
		if (strcmp(cmp_ops[i], tok[1]) == 0)
			op = i;
	if (op < 0)
		return fp_sd_err(d, n,
				 "expected " STOP_FORM " with op one of <, "
				 "<=, ==, >=, >, got \"%.64s\" in %s",
				 tok[1], fp_yaml_describe(n, got, sizeof got));
	if (fp_sd_parse_number(tok[2], &c->value))
		return fp_sd_err(d, n,
				 "expected " STOP_FORM " with a number, got "
				 "\"%.64s\" in %s",
				 tok[2], fp_yaml_describe(n, got, sizeof got));
	if (nt == 5 && fp_duration_parse(tok[4], &c->for_ns))
		return fp_sd_err(d, n,
				 "expected " STOP_FORM " with a duration like "
				 "250ms, 10s, 2m after for, got \"%.64s\" in "
				 "%s",
				 tok[4], fp_yaml_describe(n, got, sizeof got));
	c->op = (enum fp_cmp)op;
	c->observable = strdup(tok[0]);
	c->text = strdup(n->str);
	if (!c->observable || !c->text)
		return fp_sd_oom(d);
	return check_observable(s, n, c->observable);
}

static int decode_stop_map(struct scn *s, const struct fp_yaml_node *n,
			   struct fp_stop_condition *c)
{
	static const char *const keys[] = {"observable", "op", "value", "for",
					   NULL};
	struct fp_sd *d = &s->d;
	struct fp_buf text = FP_BUF_INIT(512);
	const struct fp_yaml_node *v, *vv;
	int op = 0;

	if (fp_sd_check_keys(d, n, "stop condition", keys) ||
	    fp_sd_require(d, n, "observable", "stop condition", &v) ||
	    fp_sd_name(d, v, name_char, "an observable " NAME_DESCR,
		       &c->observable) ||
	    check_observable(s, v, c->observable) ||
	    fp_sd_require(d, n, "op", "stop condition", &v) ||
	    fp_sd_enum(d, v, cmp_ops, &op) ||
	    fp_sd_require(d, n, "value", "stop condition", &vv) ||
	    fp_sd_number(d, vv, &c->value) ||
	    fp_sd_duration(d, fp_yaml_get(n, "for"), &c->for_ns))
		return d->rc;
	c->op = (enum fp_cmp)op;
	/* The text the report shows: the string form of the same condition. */
	fp_buf_printf(&text, "%s %s %s", c->observable, cmp_ops[op], vv->str);
	v = fp_yaml_get(n, "for");
	if (v)
		fp_buf_printf(&text, " for %s", v->str);
	c->text = fp_buf_detach(&text);
	return c->text ? FP_OK : fp_sd_oom(d);
}

static int decode_stop_conditions(struct scn *s, const struct fp_yaml_node *n)
{
	struct fp_sd *d = &s->d;
	char got[160];

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_seq(d, n, "stop_conditions"))
		return d->rc;
	if (n->n == 0)
		return FP_OK;
	s->sc->stop_conditions = calloc(n->n, sizeof *s->sc->stop_conditions);
	if (!s->sc->stop_conditions)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		struct fp_stop_condition *c = &s->sc->stop_conditions[i];
		const struct fp_yaml_node *cn = n->vals[i];

		s->sc->n_stop_conditions++;
		c->mark = fp_sd_mark(d, cn);
		if (cn->kind == FP_YAML_MAP) {
			if (decode_stop_map(s, cn, c))
				return d->rc;
		} else if (cn->kind == FP_YAML_SCALAR && !fp_yaml_is_null(cn)) {
			if (parse_stop_string(s, cn, c))
				return d->rc;
		} else {
			return fp_sd_err(d, cn,
					 "expected a stop condition (" STOP_FORM
					 " or {observable, op, value, for}), "
					 "got %s",
					 fp_yaml_describe(cn, got, sizeof got));
		}
	}
	return FP_OK;
}

/* ---- scenario --------------------------------------------------------- */

static int decode_scenario(struct scn *s, struct fp_yaml_node *root,
			   const char *const *sets, size_t nsets)
{
	static const char *const keys[] = {
		"fpdrill", "id",     "title",  "description", "expected",
		"claims",  "covers", "params", "load",        "phases",
		"checks",  "bounds", "followups", "stop_conditions", NULL};
	struct fp_scenario *sc = s->sc;
	struct fp_sd *d = &s->d;
	const struct fp_yaml_node *v;
	struct fp_yaml_node *params = NULL;
	char got[160];

	/* The format tag first, so an env profile passed as the scenario is
	 * named as such. */
	if (fp_sd_want_map(d, root, "scenario") ||
	    fp_sd_require(d, root, "fpdrill", "scenario", &v))
		return d->rc;
	if (v->kind != FP_YAML_SCALAR || strcmp(v->str, "scenario/v1") != 0)
		return fp_sd_err(d, v, "expected fpdrill: scenario/v1, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_check_keys(d, root, "scenario", keys))
		return d->rc;
	for (size_t i = 0; i < root->n; i++)
		if (strcmp(root->keys[i]->str, "params") == 0)
			params = root->vals[i];
	if (decode_params(s, params) || apply_sets(s, sets, nsets))
		return d->rc;
	d->params = &sc->params;
	if (fp_sd_interp_tree(d, root))
		return d->rc;
	if (fp_sd_require(d, root, "id", "scenario", &v) ||
	    fp_sd_name(d, v, name_char,
		       "a drill id like DR-02 (letters, digits, '.', '_', "
		       "'-')",
		       &sc->id) ||
	    fp_sd_require(d, root, "title", "scenario", &v) ||
	    fp_sd_str_nonempty(d, v, &sc->title) ||
	    fp_sd_require(d, root, "description", "scenario", &v) ||
	    fp_sd_str_nonempty(d, v, &sc->description) ||
	    fp_sd_require(d, root, "expected", "scenario", &v) ||
	    fp_sd_str_nonempty(d, v, &sc->expected) ||
	    fp_sd_strlist(d, fp_yaml_get(root, "claims"), "claims",
			  &sc->claims, &sc->n_claims) ||
	    fp_sd_strlist(d, fp_yaml_get(root, "covers"), "covers",
			  &sc->covers, &sc->n_covers) ||
	    decode_load(s, fp_yaml_get(root, "load")) ||
	    fp_sd_require(d, root, "phases", "scenario", &v) ||
	    decode_phases(s, v) ||
	    decode_checks(s, fp_yaml_get(root, "checks")) ||
	    decode_bounds(s, fp_yaml_get(root, "bounds")) ||
	    decode_stop_conditions(s, fp_yaml_get(root, "stop_conditions")) ||
	    fp_sd_strlist(d, fp_yaml_get(root, "followups"), "followups",
			  &sc->followups, &sc->n_followups))
		return d->rc;
	return FP_OK;
}

static void set_defaults(struct fp_load_spec *l)
{
	l->channel = FP_CHANNEL_HTTP;
	l->seed = 1;
	l->concurrency = 64;
	l->accounts = 1000;
	l->high_value_share = 0.1;
	l->timeout_ns = 10 * FP_NS_PER_S;
	l->retry_share = 0;
	l->retry_delay_ns = 200 * FP_NS_PER_MS;
	l->mix[FP_EVENT_VALID] = 1;
}

int fp_scenario_load(const char *path, const struct fp_env *env,
		     const char *const *sets, size_t nsets,
		     const struct fp_spec_names *names,
		     struct fp_scenario **out, struct fp_err *err)
{
	struct fp_yaml_node *root = NULL;
	struct scn s;
	int rc;

	memset(&s, 0, sizeof s);
	*out = NULL;
	rc = check_sets(sets, nsets, err);
	if (rc)
		return rc;
	s.sc = calloc(1, sizeof *s.sc);
	if (!s.sc)
		return fp_err_set(err, FP_ENOMEM, "loading %s", path);
	s.sc->path = strdup(path);
	if (!s.sc->path) {
		fp_scenario_free(s.sc);
		return fp_err_set(err, FP_ENOMEM, "loading %s", path);
	}
	set_defaults(&s.sc->load);
	s.env = env;
	s.names = names;
	s.d.file = s.sc->path;
	s.d.err = err;
	s.d.scenario = 1;
	s.d.vars = env ? &env->env_vars : NULL;
	s.d.obs = env ? &env->observables : NULL;
	rc = fp_sd_load_file(s.sc->path, &root, err);
	if (rc == FP_OK)
		rc = decode_scenario(&s, root, sets, nsets);
	fp_yaml_free(root);
	if (rc) {
		fp_scenario_free(s.sc);
		return rc;
	}
	*out = s.sc;
	return FP_OK;
}
