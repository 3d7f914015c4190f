/*
 * report.c - the report model: allocation, the copying setters, status
 * names and the local bundle directory name (see fp_report.h).
 *
 * The model starts pessimistic (verdict unknown, exit code 3, invariants
 * unknown) because a zeroed enum would read as "pass": a field the run loop
 * forgot to set must never turn into a green report.
 */
#include "reports/fp_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "reports/report_internal.h"

const char *fp_status_name(enum fp_status s)
{
	switch (s) {
	case FP_STATUS_PASS:
		return "pass";
	case FP_STATUS_FAIL:
		return "fail";
	case FP_STATUS_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *fp_verdict_name(enum fp_verdict v)
{
	switch (v) {
	case FP_VERDICT_PASS:
		return "pass";
	case FP_VERDICT_FAIL:
		return "fail";
	case FP_VERDICT_ABORTED:
		return "aborted";
	case FP_VERDICT_UNKNOWN:
		break;
	}
	return "unknown";
}

static json_t *empty_metrics(void)
{
	json_t *m = json_object();

	if (!m)
		return NULL;
	if (json_object_set_new(m, "before", json_object()) ||
	    json_object_set_new(m, "during", json_object()) ||
	    json_object_set_new(m, "after", json_object())) {
		json_decref(m);
		return NULL;
	}
	return m;
}

struct fp_report *fp_report_new(void)
{
	struct fp_report *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->verdict = FP_VERDICT_UNKNOWN;
	r->exit_code = 3; /* DESIGN.md exit codes: 3 = unknown */
	r->metrics = empty_metrics();
	if (!r->metrics) {
		free(r);
		return NULL;
	}
	return r;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void fp_report_free(struct fp_report *r)
{
	if (!r)
		return;
	free(r->run_id);
	free(r->drill_id);
	free(r->drill_title);
	free(r->description);
	free(r->expected);
	free_strv(r->claims, r->n_claims);
	free(r->env_name);
	free(r->env_class);
	free(r->scenario_path);
	free(r->platform_run_id);
	free(r->verdict_reason);
	for (size_t i = 0; i < r->n_invariants; i++) {
		struct fp_inv_result *v = &r->invariants[i];

		free(v->name);
		free(v->observed);
		free(v->expected);
		free(v->detail);
		for (size_t j = 0; j < v->n_examples; j++)
			free(v->examples[j]);
	}
	free(r->invariants);
	for (size_t i = 0; i < r->n_bounds; i++) {
		free(r->bounds[i].name);
		free(r->bounds[i].limit);
		free(r->bounds[i].observed);
	}
	free(r->bounds);
	for (size_t i = 0; i < r->n_timeline; i++) {
		free(r->timeline[i].kind);
		free(r->timeline[i].name);
		free(r->timeline[i].detail);
	}
	free(r->timeline);
	json_decref(r->metrics);
	json_decref(r->load);
	free_strv(r->followups, r->n_followups);
	free(r);
}

int fp_report_set(char **field, const char *value)
{
	char *copy = NULL;

	if (!field)
		return FP_EINVAL;
	if (value) {
		copy = strdup(value);
		if (!copy)
			return FP_ENOMEM;
	}
	free(*field);
	*field = copy;
	return FP_OK;
}

/* Grow an array by one element; arrays are small (tens of entries), so a
 * realloc per append keeps the code obvious at no measurable cost. */
static void *grow(void *base, size_t n, size_t elem)
{
	void *p = realloc(base, (n + 1) * elem);

	if (p)
		memset((char *)p + n * elem, 0, elem);
	return p;
}

struct fp_inv_result *fp_report_add_invariant(struct fp_report *r,
					      const char *name)
{
	struct fp_inv_result *v;
	char *nm;

	if (!r || !name)
		return NULL;
	nm = strdup(name);
	if (!nm)
		return NULL;
	v = grow(r->invariants, r->n_invariants, sizeof *v);
	if (!v) {
		free(nm);
		return NULL;
	}
	r->invariants = v;
	v = &r->invariants[r->n_invariants++];
	v->name = nm;
	v->status = FP_STATUS_UNKNOWN;
	return v;
}

int fp_inv_add_example(struct fp_inv_result *inv, const char *example)
{
	char *copy;

	if (!inv || !example)
		return FP_EINVAL;
	/* The cap keeps a report readable; `count` still says how many. */
	if (inv->n_examples >= FP_MAX_EXAMPLES)
		return FP_EINVAL;
	copy = strdup(example);
	if (!copy)
		return FP_ENOMEM;
	inv->examples[inv->n_examples++] = copy;
	return FP_OK;
}

int fp_report_add_bound(struct fp_report *r, const char *name,
			const char *limit, const char *observed, int met)
{
	struct fp_bound_result b = {0}, *v;

	if (!r || !name)
		return FP_EINVAL;
	if (fp_report_set(&b.name, name) || fp_report_set(&b.limit, limit) ||
	    fp_report_set(&b.observed, observed))
		goto nomem;
	b.met = met > 0 ? 1 : (met == 0 ? 0 : -1);
	v = grow(r->bounds, r->n_bounds, sizeof *v);
	if (!v)
		goto nomem;
	r->bounds = v;
	r->bounds[r->n_bounds++] = b;
	return FP_OK;
nomem:
	free(b.name);
	free(b.limit);
	free(b.observed);
	return FP_ENOMEM;
}

int fp_report_add_timeline(struct fp_report *r, int64_t t_ns, int64_t wall_ns,
			   const char *kind, const char *name,
			   const char *detail)
{
	struct fp_timeline_entry e = {0}, *v;

	if (!r)
		return FP_EINVAL;
	e.t_ns = t_ns;
	e.wall_ns = wall_ns;
	if (fp_report_set(&e.kind, kind) || fp_report_set(&e.name, name) ||
	    fp_report_set(&e.detail, detail))
		goto nomem;
	v = grow(r->timeline, r->n_timeline, sizeof *v);
	if (!v)
		goto nomem;
	r->timeline = v;
	r->timeline[r->n_timeline++] = e;
	return FP_OK;
nomem:
	free(e.kind);
	free(e.name);
	free(e.detail);
	return FP_ENOMEM;
}

static int add_str(char ***v, size_t *n, const char *text)
{
	char *copy, **nv;

	if (!text)
		return FP_EINVAL;
	copy = strdup(text);
	if (!copy)
		return FP_ENOMEM;
	nv = grow(*v, *n, sizeof *nv);
	if (!nv) {
		free(copy);
		return FP_ENOMEM;
	}
	*v = nv;
	nv[(*n)++] = copy;
	return FP_OK;
}

int fp_report_add_followup(struct fp_report *r, const char *text)
{
	if (!r)
		return FP_EINVAL;
	return add_str(&r->followups, &r->n_followups, text);
}

double fp_report_duration_s(const struct fp_report *r)
{
	if (r->started_wall_ns <= 0 || r->ended_wall_ns <= 0 ||
	    r->ended_wall_ns < r->started_wall_ns)
		return -1.0;
	/* Millisecond resolution, like the ISO stamps it is derived from. */
	return (double)((r->ended_wall_ns - r->started_wall_ns) /
			FP_NS_PER_MS) / 1000.0;
}

int fp_bundle_name_ok(const char *name)
{
	return name && *name && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int fp_bundle_dir(const char *out_root, const char *drill_id,
		  int64_t started_wall_ns, const char *run_id, char *out,
		  size_t outsz, struct fp_err *err)
{
	char stamp[32];
	int n;

	if (!out_root || !*out_root || !out || outsz == 0)
		return fp_err_set(err, FP_EINVAL, "bundle dir: no output root");
	/* Both ids become path components: a '/' or ".." would escape. */
	if (!fp_bundle_name_ok(drill_id) || !fp_bundle_name_ok(run_id))
		return fp_err_set(err, FP_EINVAL,
				  "bundle dir: bad drill id or run id");
	fp_fmt_compact(started_wall_ns, stamp, sizeof stamp);
	n = snprintf(out, outsz, "%s/%s/%s-%s", out_root, drill_id, stamp,
		     run_id);
	if (n < 0 || (size_t)n >= outsz)
		return fp_err_set(err, FP_EINVAL, "bundle dir: path too long");
	return fp_mkdir_p(out, 0755, err);
}

int fp_report_add_claim(struct fp_report *r, const char *claim)
{
	if (!r)
		return FP_EINVAL;
	return add_str(&r->claims, &r->n_claims, claim);
}

json_t *fp_report_metric_rows(const struct fp_report *r, json_t *ph[3])
{
	static const char *const phases[] = {"before", "during", "after"};
	json_t *seen = json_object(), *v;
	const char *k;

	for (size_t i = 0; i < 3; i++) {
		ph[i] = json_is_object(r->metrics)
				? json_object_get(r->metrics, phases[i])
				: NULL;
		if (!json_is_object(ph[i]))
			ph[i] = NULL;
		if (!seen || !ph[i])
			continue;
		json_object_foreach(ph[i], k, v) {
			if (!json_object_get(seen, k) &&
			    json_object_set_new(seen, k, json_true())) {
				json_decref(seen);
				return NULL;
			}
		}
	}
	return seen;
}
