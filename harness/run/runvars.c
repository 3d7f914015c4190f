/*
 * runvars.c - ${run.id} and ${run.platform_run_id} in the strings a run hands
 * to the target. The spec loader leaves them as written (only the run knows
 * its id) and refuses any other ${run.*} name; this pass replaces them in the
 * loaded env and scenario before anything is sent, so an action, a sampler
 * query or an invariant argument can name "this run" exactly (e.g. the actor
 * of the promotion ledger rows a drill writes) instead of "about now".
 * The loader keeps "$${run." escaped (see fp_spec.c) and this pass turns it
 * into the literal "${run.".
 * `fpdrill cleanup` runs it on the env alone with the journal's run id, so a
 * revert action sees the same strings the run's apply saw.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_buf.h"
#include "harness/run/run_int.h"

struct vars {
	const char *id;
	const char *platform_run_id;   /* NULL while it is being made */
};

/* Replace *s in place when it names a run variable. */
static int expand(char **s, const struct vars *v, struct fp_err *err)
{
	struct fp_buf b = FP_BUF_INIT(1 << 20);
	const char *p, *q;
	char *out;

	if (!*s || !strstr(*s, "${run."))
		return FP_OK;
	for (p = *s; (q = strstr(p, "${run.")); p = strchr(q, '}') + 1) {
		const char *end = strchr(q, '}');
		const char *val = NULL;
		size_t n;

		if (!end)
			break;
		if (q > p && q[-1] == '$') { /* $${run.x}: the literal ${run.x} */
			if (fp_buf_append(&b, p, (size_t)(q - p) - 1) ||
			    fp_buf_append(&b, q, (size_t)(end - q) + 1))
				goto oom;
			continue;
		}
		n = (size_t)(end - q - 6);
		if (n == 2 && memcmp(q + 6, "id", 2) == 0)
			val = v->id;
		else if (n == 15 && memcmp(q + 6, "platform_run_id", 15) == 0)
			val = v->platform_run_id;
		if (fp_buf_append(&b, p, (size_t)(q - p)) ||
		    (val ? fp_buf_puts(&b, val)
			 : fp_buf_append(&b, q, (size_t)(end - q) + 1)))
			goto oom;
	}
	if (fp_buf_puts(&b, p))
		goto oom;
	out = fp_buf_detach(&b);
	if (!out)
		goto oom;
	free(*s);
	*s = out;
	return FP_OK;
oom:
	fp_buf_release(&b);
	return fp_err_set(err, FP_ENOMEM, "expanding run variables");
}

static int expand_kv(struct fp_kvlist *l, const struct vars *v,
		     struct fp_err *err)
{
	for (size_t i = 0; i < l->n; i++)
		if (expand(&l->items[i].value, v, err))
			return FP_ENOMEM;
	return FP_OK;
}

static int expand_env(struct fp_env *env, const struct vars *v,
		      struct fp_err *err)
{
	for (size_t i = 0; i < env->n_actions; i++) {
		struct fp_action *a = &env->actions[i];

		if (expand(&a->url, v, err) || expand(&a->body, v, err) ||
		    expand_kv(&a->headers, v, err))
			return FP_ENOMEM;
		for (size_t k = 0; k < a->argc; k++)
			if (expand(&a->argv[k], v, err))
				return FP_ENOMEM;
	}
	for (size_t i = 0; i < env->n_samplers; i++) {
		struct fp_sampler *s = &env->samplers[i];

		if (expand(&s->group, v, err) || expand(&s->topic, v, err) ||
		    expand(&s->query, v, err) || expand(&s->url, v, err) ||
		    expand(&s->metric, v, err))
			return FP_ENOMEM;
	}
	return expand_kv(&env->observables, v, err);
}

static int expand_scenario(struct fp_scenario *sc, const struct vars *v,
			   struct fp_err *err)
{
	for (size_t p = 0; p < sc->n_phases; p++)
		for (size_t s = 0; s < sc->phases[p].n_steps; s++)
			if (expand_kv(&sc->phases[p].steps[s].with, v, err))
				return FP_ENOMEM;
	for (size_t c = 0; c < sc->n_checks; c++)
		if (expand_kv(&sc->checks[c].with, v, err))
			return FP_ENOMEM;
	return FP_OK;
}

int fp_run_vars_apply(struct fp_env *env, struct fp_scenario *sc,
		      const char *run_id, struct fp_err *err)
{
	struct vars v = {run_id, NULL};

	/* platform_run_id first, from ${run.id} alone (the loader refuses
	 * one that names itself); then everything else may use both. */
	if (expand(&env->platform_run_id, &v, err))
		return FP_ENOMEM;
	v.platform_run_id = env->platform_run_id;
	if (expand_env(env, &v, err))
		return FP_ENOMEM;
	return sc ? expand_scenario(sc, &v, err) : FP_OK;
}
