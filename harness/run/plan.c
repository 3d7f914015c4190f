/*
 * plan.c - what a drill will do, computed without touching the target: the
 * resolved timeline (`fpdrill plan`), its planned totals, and the safety
 * guard that refuses a drill the profile does not allow (production class,
 * scenario allowlist, blast-radius limits). The guard runs before anything
 * connects, so a refused drill has no side effect at all.
 */
#include <stdio.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/run/fp_run.h"
#include "harness/run/run_int.h"
#include "injectors/fp_injector.h"

#define STEP_NS (10 * FP_NS_PER_MS)

/* Arrival rate of a load at offset t into a load phase. */
static double rate_at(const struct fp_load_spec *l, int64_t t)
{
	double r = l->rate;

	if (l->ramp_over_ns > 0) {
		double f = t >= l->ramp_over_ns ? 1.0
						: (double)t / (double)l->ramp_over_ns;

		r = l->ramp_from + (l->ramp_to - l->ramp_from) * f;
	}
	for (size_t i = 0; i < l->n_bursts; i++) {
		const struct fp_burst *b = &l->bursts[i];
		int64_t in = t - b->at_ns;
		double m = b->multiplier;

		if (in < 0 || in >= b->duration_ns)
			continue;
		if (b->ramp && b->ramp_ns > 0) {
			int64_t edge = in < b->duration_ns - in
					       ? in
					       : b->duration_ns - in;

			if (edge < b->ramp_ns)
				m = 1.0 + (m - 1.0) * (double)edge /
						  (double)b->ramp_ns;
		}
		r *= m;
	}
	return r;
}

static int64_t phase_upper_bound(const struct fp_phase *ph)
{
	int64_t waits = 0, d;

	for (size_t i = 0; i < ph->n_steps; i++)
		if (ph->steps[i].kind == FP_STEP_WAIT)
			waits += ph->steps[i].wait_ns;
	d = ph->duration_ns > waits ? ph->duration_ns : waits;
	if (ph->load && !ph->duration_ns)
		d = FP_NS_PER_S;
	if (ph->has_until)
		d += ph->until.timeout_ns;
	return d;
}

void fp_plan_totals(const struct fp_scenario *sc, struct fp_plan_totals *t)
{
	memset(t, 0, sizeof *t);
	for (size_t p = 0; p < sc->n_phases; p++) {
		const struct fp_phase *ph = &sc->phases[p];

		t->duration_ns += phase_upper_bound(ph);
		if (!ph->load || !sc->load.enabled)
			continue;
		for (int64_t x = 0;
		     x < (ph->duration_ns ? ph->duration_ns : FP_NS_PER_S);
		     x += STEP_NS) {
			double r = rate_at(&sc->load, x);

			t->planned_events += r * (double)STEP_NS / 1e9;
			if (r > t->peak_rate)
				t->peak_rate = r;
		}
	}
}

int fp_safety_check(const struct fp_env *env, const struct fp_scenario *sc,
		    int allow_production, struct fp_err *err)
{
	const struct fp_safety *s = &env->safety;
	struct fp_plan_totals t;
	int listed = 0;

	for (size_t i = 0; i < s->n_allow_scenarios; i++)
		listed |= strcmp(s->allow_scenarios[i], sc->id) == 0;
	if (env->env_class == FP_ENV_PRODUCTION) {
		if (!allow_production)
			return fp_err_set(err, FP_ESPEC,
					  "%s: profile '%s' is class production: "
					  "refusing without --allow-production",
					  env->path, env->name);
		if (!listed)
			return fp_err_set(err, FP_ESPEC,
					  "%s: drill %s is not in the profile's "
					  "safety.allow_scenarios",
					  env->path, sc->id);
	} else if (s->n_allow_scenarios && !listed) {
		return fp_err_set(err, FP_ESPEC,
				  "%s: drill %s is not in the profile's "
				  "safety.allow_scenarios",
				  env->path, sc->id);
	}
	fp_plan_totals(sc, &t);
	if (s->max_rate > 0 && t.peak_rate > s->max_rate)
		return fp_err_set(err, FP_ESPEC,
				  "%s: drill %s peaks at %.1f events/s, over "
				  "safety.max_rate %.1f",
				  env->path, sc->id, t.peak_rate, s->max_rate);
	if (s->max_duration_ns > 0 && t.duration_ns > s->max_duration_ns) {
		char a[32], b[32];

		fp_duration_fmt(t.duration_ns, a, sizeof a);
		fp_duration_fmt(s->max_duration_ns, b, sizeof b);
		return fp_err_set(err, FP_ESPEC,
				  "%s: drill %s may run %s, over "
				  "safety.max_duration %s",
				  env->path, sc->id, a, b);
	}
	for (size_t p = 0; p < sc->n_phases; p++)
		for (size_t i = 0; i < sc->phases[p].n_steps; i++) {
			const struct fp_step *st = &sc->phases[p].steps[i];
			const struct fp_injector *inj;
			double ps = 0, is = 0;

			if (st->kind != FP_STEP_INJECT)
				continue;
			inj = fp_injector_find(st->injector);
			if (!inj || !inj->blast)
				continue;
			inj->blast(&st->with, &ps, &is);
			if (s->max_partition_share > 0 &&
			    ps > s->max_partition_share)
				return fp_err_set(
					err, FP_ESPEC,
					"%s:%d:%d: %s touches %.0f%% of the "
					"partitions, over safety."
					"max_partition_share %.0f%%",
					st->mark.file, st->mark.line,
					st->mark.col, st->injector, ps * 100,
					s->max_partition_share * 100);
			if (s->max_instance_share > 0 &&
			    is > s->max_instance_share)
				return fp_err_set(
					err, FP_ESPEC,
					"%s:%d:%d: %s touches %.0f%% of the "
					"instances, over safety."
					"max_instance_share %.0f%%",
					st->mark.file, st->mark.line,
					st->mark.col, st->injector, is * 100,
					s->max_instance_share * 100);
		}
	return FP_OK;
}

static void print_kv(FILE *f, const struct fp_kvlist *l)
{
	fputc('{', f);
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%s%s=%s", i ? ", " : "", l->items[i].key,
			l->items[i].value);
	fputc('}', f);
}

static void print_action(FILE *f, const struct fp_env *env, const char *name)
{
	const struct fp_action *a = fp_env_action(env, name);

	if (!a)
		fprintf(f, "%s (unbound)", name);
	else if (a->kind == FP_ACTION_HTTP)
		fprintf(f, "%s -> %s %s", name, a->method, a->url);
	else {
		fprintf(f, "%s -> command", name);
		for (size_t i = 0; i < a->argc; i++)
			fprintf(f, " %s", a->argv[i]);
	}
}

void fp_plan_print(FILE *f, const struct fp_env *env,
		   const struct fp_scenario *sc)
{
	struct fp_plan_totals t;
	char d[32];

	fp_plan_totals(sc, &t);
	fprintf(f, "drill %s: %s\n", sc->id, sc->title);
	fprintf(f, "scenario: %s\nenv: %s (class %s) from %s\n", sc->path,
		env->name, fp_env_class_name(env->env_class), env->path);
	fprintf(f, "target: ingress %s, kafka %s\n", env->ingress_url,
		env->kafka_bootstrap);
	if (sc->n_claims) {
		fprintf(f, "claims:");
		for (size_t i = 0; i < sc->n_claims; i++)
			fprintf(f, " %s", sc->claims[i]);
		fputc('\n', f);
	}
	if (sc->load.enabled) {
		const struct fp_load_spec *l = &sc->load;

		fprintf(f, "load: %s, ", l->channel == FP_CHANNEL_HTTP ? "http"
								    : "kafka");
		if (l->ramp_over_ns > 0) {
			fp_duration_fmt(l->ramp_over_ns, d, sizeof d);
			fprintf(f, "ramp %g -> %g events/s over %s", l->ramp_from,
				l->ramp_to, d);
		} else {
			fprintf(f, "%g events/s", l->rate);
		}
		fprintf(f, ", seed %llu, concurrency %d, %d accounts\n",
			(unsigned long long)l->seed, l->concurrency, l->accounts);
		for (size_t i = 0; i < l->n_bursts; i++) {
			char a[32], b[32];

			fp_duration_fmt(l->bursts[i].at_ns, a, sizeof a);
			fp_duration_fmt(l->bursts[i].duration_ns, b, sizeof b);
			fprintf(f, "  burst at %s for %s x%g (%s)\n", a, b,
				l->bursts[i].multiplier,
				l->bursts[i].ramp ? "ramp" : "step");
		}
		fprintf(f, "  mix:");
		for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
			if (l->mix[k] > 0)
				fprintf(f, " %s=%.3f",
					fp_event_kind_name((enum fp_event_kind)k),
					l->mix[k]);
		fprintf(f, "\n  retries: %.0f%% re-sent %lld ms after completion\n",
			l->retry_share * 100,
			(long long)(l->retry_delay_ns / FP_NS_PER_MS));
		fprintf(f, "  planned: ~%.0f events, peak %.1f events/s\n",
			t.planned_events, t.peak_rate);
	}
	fp_duration_fmt(t.duration_ns, d, sizeof d);
	fprintf(f, "timeline (at most %s):\n", d);
	for (size_t p = 0; p < sc->n_phases; p++) {
		const struct fp_phase *ph = &sc->phases[p];

		fprintf(f, "  phase %s:", ph->id);
		if (ph->duration_ns) {
			fp_duration_fmt(ph->duration_ns, d, sizeof d);
			fprintf(f, " duration %s", d);
		}
		if (ph->load)
			fprintf(f, " load on");
		if (ph->mark)
			fprintf(f, " mark %s", ph->mark);
		fputc('\n', f);
		for (size_t i = 0; i < ph->n_steps; i++) {
			const struct fp_step *st = &ph->steps[i];

			fprintf(f, "    - ");
			switch (st->kind) {
			case FP_STEP_ACTION:
				fprintf(f, "action ");
				print_action(f, env, st->action);
				if (st->revert_action) {
					fprintf(f, "; revert ");
					print_action(f, env, st->revert_action);
				}
				break;
			case FP_STEP_INJECT: {
				const struct fp_injector *inj =
					fp_injector_find(st->injector);

				fprintf(f, "inject %s ", st->injector);
				print_kv(f, &st->with);
				fprintf(f, "%s", inj && !inj->revert
							 ? " (one-shot)"
							 : " (reverted LIFO)");
				break;
			}
			case FP_STEP_REVERT:
				fprintf(f, "revert %s", st->revert_ref);
				break;
			case FP_STEP_WAIT:
				fp_duration_fmt(st->wait_ns, d, sizeof d);
				fprintf(f, "wait %s", d);
				break;
			}
			if (st->as)
				fprintf(f, " as %s", st->as);
			fputc('\n', f);
		}
		if (ph->has_until) {
			char h[32], to[32];

			fp_duration_fmt(ph->until.hold_ns, h, sizeof h);
			fp_duration_fmt(ph->until.timeout_ns, to, sizeof to);
			fprintf(f, "    until %s %s %g held %s (timeout %s)\n",
				ph->until.observable, fp_cmp_name(ph->until.op),
				ph->until.value, h, to);
		}
	}
	fprintf(f, "checks:");
	for (size_t i = 0; i < sc->n_checks; i++)
		fprintf(f, " %s", sc->checks[i].invariant);
	fprintf(f, "%s\nbounds:\n", sc->n_checks ? "" : " none");
	for (size_t i = 0; i < sc->n_bounds; i++) {
		const struct fp_bound *b = &sc->bounds[i];

		fp_duration_fmt(b->limit_ns, d, sizeof d);
		fprintf(f, "  %s: ", b->name);
		if (b->kind == FP_BOUND_MEASURE)
			fprintf(f, "%s", b->measure);
		else if (b->kind == FP_BOUND_RECOVERY)
			fprintf(f, "recovery of %s %s %g after %s",
				b->recovery.observable,
				fp_cmp_name(b->recovery.op), b->recovery.value,
				b->after ? b->after : "the run start");
		else
			fprintf(f, "p%g %s latency", b->percentile,
				b->service_time ? "service" : "corrected");
		fprintf(f, " <= %s\n", d);
	}
	fprintf(f, "stop conditions:%s\n", sc->n_stop_conditions ? "" : " none");
	for (size_t i = 0; i < sc->n_stop_conditions; i++)
		fprintf(f, "  %s\n", sc->stop_conditions[i].text);
	fprintf(f, "samplers: decision_group_lag");
	for (size_t i = 0; i < env->n_samplers; i++)
		fprintf(f, ", %s", env->samplers[i].name);
	fputc('\n', f);
}
