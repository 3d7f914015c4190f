/*
 * write_json.c - report.json (schema fpdrill.report/v1, docs/report-schema.md).
 *
 * Keys are inserted in the documented order and dumped with
 * JSON_PRESERVE_ORDER, so two reports diff line by line. Reals are dumped
 * with 15 significant digits: enough for any metric, and it keeps a time
 * rounded to the millisecond ("t": 1.234) from printing as 1.2339999999999999.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "reports/report_internal.h"

/* A string from the model, or null. Text that is not valid UTF-8 (a raw
 * backend row, say) is kept with the bad bytes replaced rather than failing
 * the whole report over one example. */
static json_t *jstr(const char *s)
{
	json_t *j;
	char *copy;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *jtime(int64_t wall_ns)
{
	char b[40];

	if (wall_ns <= 0)
		return json_null();
	fp_fmt_iso8601(wall_ns, b, sizeof b);
	return json_string(b);
}

/* json_object_set_new that remembers a failure (NULL value = no memory), so
 * the builders read as a list of keys instead of a ladder of checks. */
static void put(json_t *o, const char *k, json_t *v, int *bad)
{
	if (!v || json_object_set_new(o, k, v))
		*bad = 1;
}

static void push(json_t *a, json_t *v, int *bad)
{
	if (!v || json_array_append_new(a, v))
		*bad = 1;
}

static json_t *strv(char *const *v, size_t n, int *bad)
{
	json_t *a = json_array();

	if (!a) {
		*bad = 1;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		push(a, jstr(v[i]), bad);
	return a;
}

static json_t *invariant_json(const struct fp_inv_result *v, int *bad)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	put(o, "name", jstr(v->name), bad);
	put(o, "status", json_string(fp_status_name(v->status)), bad);
	put(o, "count", json_integer(v->count), bad);
	put(o, "observed", jstr(v->observed), bad);
	put(o, "expected", jstr(v->expected), bad);
	put(o, "detail", jstr(v->detail), bad);
	put(o, "examples",
	    strv(v->examples,
		 v->n_examples > FP_MAX_EXAMPLES ? FP_MAX_EXAMPLES
						 : v->n_examples,
		 bad),
	    bad);
	return o;
}

static json_t *bound_json(const struct fp_bound_result *b, int *bad)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	put(o, "name", jstr(b->name), bad);
	put(o, "limit", jstr(b->limit), bad);
	put(o, "observed", jstr(b->observed), bad);
	put(o, "met",
	    b->met < 0 ? json_null() : json_boolean(b->met > 0), bad);
	return o;
}

/* Keys of a timeline entry itself; a kind with one of these names must not
 * overwrite them through the "<kind>": name alias. */
static int reserved_key(const char *k)
{
	static const char *const keys[] = {"t", "at", "kind", "name",
					   "detail"};

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(k, keys[i]) == 0)
			return 1;
	return 0;
}

static json_t *timeline_json(const struct fp_timeline_entry *e, int *bad)
{
	json_t *o = json_object();
	/* Rounded to the millisecond: the report promises 3 decimals. */
	double t = (double)llround((double)e->t_ns / 1e6) / 1000.0;

	if (!o)
		return NULL;
	put(o, "t", json_real(t), bad);
	put(o, "at", jtime(e->wall_ns), bad);
	put(o, "kind", jstr(e->kind), bad);
	/* DESIGN.md writes entries as {t, phase|fault|action, ...}: the kind
	 * doubles as a key whose value is the name, so both shapes parse. */
	if (e->kind && *e->kind && !reserved_key(e->kind))
		put(o, e->kind, jstr(e->name), bad);
	put(o, "name", jstr(e->name), bad);
	put(o, "detail", jstr(e->detail), bad);
	return o;
}

/* metrics: before/during/after always present (empty objects by default),
 * then whatever other keys the run put there, in its order. */
static json_t *metrics_json(json_t *m, int *bad)
{
	static const char *const phases[] = {"before", "during", "after"};
	json_t *o = json_object();
	const char *k;
	json_t *v;

	if (!o)
		return NULL;
	for (size_t i = 0; i < 3; i++) {
		v = json_is_object(m) ? json_object_get(m, phases[i]) : NULL;
		put(o, phases[i], v ? json_incref(v) : json_object(), bad);
	}
	if (json_is_object(m)) {
		json_object_foreach(m, k, v) {
			if (!json_object_get(o, k))
				put(o, k, json_incref(v), bad);
		}
	}
	return o;
}

int fp_render_json(const struct fp_report *r, const struct fp_artifacts *arts,
		   struct fp_buf *out, struct fp_err *err)
{
	json_t *root = json_object(), *o, *a;
	double dur = fp_report_duration_s(r);
	int bad = 0, rc = FP_OK;
	char *text;

	if (!root)
		return fp_err_set(err, FP_ENOMEM, "report.json: out of memory");
	put(root, "schema", json_string(FP_REPORT_SCHEMA), &bad);
	put(root, "run_id", jstr(r->run_id), &bad);

	o = json_object();
	if (o) {
		put(o, "id", jstr(r->drill_id), &bad);
		put(o, "title", jstr(r->drill_title), &bad);
		put(o, "description", jstr(r->description), &bad);
		put(o, "expected", jstr(r->expected), &bad);
	}
	put(root, "drill", o, &bad);
	put(root, "claims", strv(r->claims, r->n_claims, &bad), &bad);
	o = json_object();
	if (o) {
		put(o, "name", jstr(r->env_name), &bad);
		put(o, "class", jstr(r->env_class), &bad);
	}
	put(root, "env", o, &bad);
	put(root, "scenario", jstr(r->scenario_path), &bad);
	put(root, "platform_run_id", jstr(r->platform_run_id), &bad);
	put(root, "started_at", jtime(r->started_wall_ns), &bad);
	put(root, "ended_at", jtime(r->ended_wall_ns), &bad);
	put(root, "duration_s", dur < 0 ? json_null() : json_real(dur), &bad);
	put(root, "verdict", json_string(fp_verdict_name(r->verdict)), &bad);
	put(root, "verdict_reason", jstr(r->verdict_reason), &bad);
	put(root, "exit_code", json_integer(r->exit_code), &bad);

	a = json_array();
	for (size_t i = 0; a && i < r->n_invariants; i++)
		push(a, invariant_json(&r->invariants[i], &bad), &bad);
	put(root, "invariants", a, &bad);
	a = json_array();
	for (size_t i = 0; a && i < r->n_bounds; i++)
		push(a, bound_json(&r->bounds[i], &bad), &bad);
	put(root, "bounds", a, &bad);
	a = json_array();
	for (size_t i = 0; a && i < r->n_timeline; i++)
		push(a, timeline_json(&r->timeline[i], &bad), &bad);
	put(root, "timeline", a, &bad);

	put(root, "metrics", metrics_json(r->metrics, &bad), &bad);
	put(root, "load", r->load ? json_incref(r->load) : json_null(), &bad);
	put(root, "followups", strv(r->followups, r->n_followups, &bad),
	    &bad);
	o = json_object();
	for (size_t i = 0; o && arts && i < arts->n; i++)
		put(o, arts->v[i].name, json_string(arts->v[i].sha256), &bad);
	put(root, "artifacts", o, &bad);

	if (bad) {
		json_decref(root);
		return fp_err_set(err, FP_ENOMEM, "report.json: out of memory");
	}
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
					JSON_REAL_PRECISION(15));
	json_decref(root);
	if (!text)
		return fp_err_set(err, FP_ENOMEM, "report.json: dump failed");
	if (fp_buf_puts(out, text) || fp_buf_puts(out, "\n"))
		rc = fp_err_set(err, FP_ENOMEM, "report.json: too large");
	free(text);
	return rc;
}
