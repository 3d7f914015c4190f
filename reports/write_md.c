/*
 * write_md.c - report.md, the human report of seed 000 B.6: scenario and
 * injection, expected behaviour, integrity results (observed vs expected),
 * recovery bounds met / not met, timeline, metrics before / during / after,
 * load, follow-ups, artifacts and the reason for the verdict.
 *
 * Table cells hold free text from backends and specs, so every cell goes
 * through cell(): a '|' would split the row and a newline would end the
 * table.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "reports/report_internal.h"

#define DASH "-"

static const char *or_dash(const char *s)
{
	return s && *s ? s : DASH;
}

/* One table cell: '|' escaped, '\' doubled so "\|" in the source cannot
 * un-escape ours, line breaks folded to spaces. */
static void cell(struct fp_buf *b, const char *s, int *bad)
{
	const char *p;

	s = or_dash(s);
	for (p = s; *p; p++) {
		int rc;

		if (*p == '|')
			rc = fp_buf_puts(b, "\\|");
		else if (*p == '\\')
			rc = fp_buf_puts(b, "\\\\");
		else if (*p == '\n' || *p == '\r' || *p == '\t')
			rc = fp_buf_puts(b, " ");
		else
			rc = fp_buf_append(b, p, 1);
		if (rc)
			*bad = 1;
	}
}

/* A paragraph: kept as written, but a missing value is said out loud. */
static void para(struct fp_buf *b, const char *s, const char *none, int *bad)
{
	if (fp_buf_printf(b, "%s\n\n", s && *s ? s : none))
		*bad = 1;
}

static void out(struct fp_buf *b, const char *s, int *bad)
{
	if (fp_buf_puts(b, s))
		*bad = 1;
}

static void upper(const char *in, char *o, size_t osz)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < osz; i++)
		o[i] = (char)toupper((unsigned char)in[i]);
	o[i] = '\0';
}

/* A JSON value as cell text: strings bare, everything else compact JSON. */
static char *value_text(json_t *v)
{
	if (!v)
		return NULL;
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
				     JSON_PRESERVE_ORDER |
				     JSON_REAL_PRECISION(15));
}

static void value_cell(struct fp_buf *b, json_t *v, int *bad)
{
	char *t = value_text(v);

	cell(b, t, bad);
	free(t);
}

static void header(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	char verdict[16], t0[40] = DASH, t1[40] = DASH;
	double dur = fp_report_duration_s(r);

	upper(fp_verdict_name(r->verdict), verdict, sizeof verdict);
	if (fp_buf_printf(b, "# %s %s: %s\n\n", or_dash(r->drill_id),
			  or_dash(r->drill_title), verdict))
		*bad = 1;
	if (r->started_wall_ns > 0)
		fp_fmt_iso8601(r->started_wall_ns, t0, sizeof t0);
	if (r->ended_wall_ns > 0)
		fp_fmt_iso8601(r->ended_wall_ns, t1, sizeof t1);
	out(b, "| | |\n|---|---|\n| Verdict | ", bad);
	cell(b, verdict, bad);
	if (fp_buf_printf(b, " (exit code %d) |\n| Run id | ", r->exit_code))
		*bad = 1;
	cell(b, r->run_id, bad);
	out(b, " |\n| Environment | ", bad);
	cell(b, r->env_name, bad);
	out(b, " (", bad);
	cell(b, r->env_class, bad);
	out(b, ") |\n| Scenario | ", bad);
	cell(b, r->scenario_path, bad);
	out(b, " |\n| Platform run id | ", bad);
	cell(b, r->platform_run_id, bad);
	if (fp_buf_printf(b, " |\n| Started (UTC) | %s |\n| Ended (UTC) | %s |\n",
			  t0, t1))
		*bad = 1;
	if (dur >= 0 ? fp_buf_printf(b, "| Duration | %.3f s |\n\n", dur)
		     : fp_buf_puts(b, "| Duration | - |\n\n"))
		*bad = 1;
	out(b, "**Verdict reason:** ", bad);
	para(b, r->verdict_reason, "(none given)", bad);
}

static void scenario(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "## Scenario and injection\n\n", bad);
	para(b, r->description, "(no description)", bad);
	if (r->n_claims) {
		out(b, "Claims exercised:\n\n", bad);
		for (size_t i = 0; i < r->n_claims; i++)
			if (fp_buf_printf(b, "- %s\n", or_dash(r->claims[i])))
				*bad = 1;
		out(b, "\n", bad);
	}
	out(b, "## Expected behaviour\n\n", bad);
	para(b, r->expected, "(not stated)", bad);
}

static void invariants(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "## Integrity checks (invariants)\n\n", bad);
	if (!r->n_invariants) {
		out(b, "No invariant was evaluated.\n\n", bad);
		return;
	}
	out(b, "| Invariant | Status | Violations | Observed | Expected |\n"
	       "|---|---|---|---|---|\n", bad);
	for (size_t i = 0; i < r->n_invariants; i++) {
		const struct fp_inv_result *v = &r->invariants[i];
		char st[16];

		upper(fp_status_name(v->status), st, sizeof st);
		out(b, "| ", bad);
		cell(b, v->name, bad);
		if (fp_buf_printf(b, " | %s | %lld | ", st, v->count))
			*bad = 1;
		cell(b, v->observed, bad);
		out(b, " | ", bad);
		cell(b, v->expected, bad);
		out(b, " |\n", bad);
	}
	out(b, "\n", bad);
	for (size_t i = 0; i < r->n_invariants; i++) {
		const struct fp_inv_result *v = &r->invariants[i];

		if (!v->n_examples && !v->detail)
			continue;
		if (fp_buf_printf(b, "### %s\n\n", or_dash(v->name)))
			*bad = 1;
		if (v->detail)
			para(b, v->detail, "", bad);
		if (!v->n_examples)
			continue;
		if (fp_buf_printf(b, "Examples (%zu of %lld):\n\n",
				  v->n_examples,
				  v->count > (long long)v->n_examples
					  ? v->count
					  : (long long)v->n_examples))
			*bad = 1;
		for (size_t j = 0; j < v->n_examples; j++) {
			out(b, "- ", bad);
			cell(b, v->examples[j], bad);
			out(b, "\n", bad);
		}
		out(b, "\n", bad);
	}
}

static void bounds(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "## Recovery bounds\n\n", bad);
	if (!r->n_bounds) {
		out(b, "No bound was set.\n\n", bad);
		return;
	}
	out(b, "| Bound | Limit | Observed | Result |\n|---|---|---|---|\n", bad);
	for (size_t i = 0; i < r->n_bounds; i++) {
		const struct fp_bound_result *x = &r->bounds[i];

		out(b, "| ", bad);
		cell(b, x->name, bad);
		out(b, " | ", bad);
		cell(b, x->limit, bad);
		out(b, " | ", bad);
		cell(b, x->observed, bad);
		out(b, x->met > 0 ? " | met |\n"
				  : (x->met == 0 ? " | **NOT MET** |\n"
						 : " | unknown |\n"),
		    bad);
	}
	out(b, "\n", bad);
}

static void timeline(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "## Timeline\n\n", bad);
	if (!r->n_timeline) {
		out(b, "No event was recorded.\n\n", bad);
		return;
	}
	out(b, "| t (s) | UTC | Kind | Name | Detail |\n|---|---|---|---|---|\n",
	    bad);
	for (size_t i = 0; i < r->n_timeline; i++) {
		const struct fp_timeline_entry *e = &r->timeline[i];
		char at[40] = DASH;

		if (e->wall_ns > 0)
			fp_fmt_iso8601(e->wall_ns, at, sizeof at);
		if (fp_buf_printf(b, "| %.3f | %s | ",
				  (double)llround((double)e->t_ns / 1e6) /
					  1000.0,
				  at))
			*bad = 1;
		cell(b, e->kind, bad);
		out(b, " | ", bad);
		cell(b, e->name, bad);
		out(b, " | ", bad);
		cell(b, e->detail, bad);
		out(b, " |\n", bad);
	}
	out(b, "\n", bad);
}

/* One table, one row per metric name seen in any phase, so before / during
 * / after of the same metric sit side by side. */
static void metrics(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	json_t *ph[3], *seen = fp_report_metric_rows(r, ph), *v;
	const char *k;
	size_t rows = 0;

	out(b, "## Metrics (before / during / after)\n\n", bad);
	if (!seen) {
		*bad = 1;
		return;
	}
	json_object_foreach(seen, k, v) {
		if (rows++ == 0)
			out(b, "| Metric | Before | During | After |\n"
			       "|---|---|---|---|\n",
			    bad);
		out(b, "| ", bad);
		cell(b, k, bad);
		for (size_t i = 0; i < 3; i++) {
			out(b, " | ", bad);
			value_cell(b,
				   json_is_object(ph[i])
					   ? json_object_get(ph[i], k)
					   : NULL,
				   bad);
		}
		out(b, " |\n", bad);
	}
	json_decref(seen);
	out(b, rows ? "\n" : "No metric was collected.\n\n", bad);
}

static void load(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	const char *k;
	json_t *v;

	out(b, "## Load\n\n", bad);
	if (!json_is_object(r->load) || json_object_size(r->load) == 0) {
		out(b, "No load was generated.\n\n", bad);
		return;
	}
	out(b, "| Measure | Value |\n|---|---|\n", bad);
	json_object_foreach(r->load, k, v) {
		out(b, "| ", bad);
		cell(b, k, bad);
		out(b, " | ", bad);
		value_cell(b, v, bad);
		out(b, " |\n", bad);
	}
	out(b, "\n", bad);
}

static void followups(struct fp_buf *b, const struct fp_report *r, int *bad)
{
	out(b, "## Follow-up actions\n\n", bad);
	if (!r->n_followups) {
		out(b, "None.\n\n", bad);
		return;
	}
	for (size_t i = 0; i < r->n_followups; i++) {
		out(b, "- ", bad);
		cell(b, r->followups[i], bad);
		out(b, "\n", bad);
	}
	out(b, "\n", bad);
}

static void artifacts(struct fp_buf *b, const struct fp_artifacts *a,
		      int *bad)
{
	out(b, "## Artifacts\n\n", bad);
	out(b, "report.json and manifest.json are written after this file; "
	       "manifest.json holds the sha256 of every file in the bundle, "
	       "this one included.\n\n",
	    bad);
	if (!a || !a->n)
		return;
	out(b, "| File | Bytes | sha256 |\n|---|---|---|\n", bad);
	for (size_t i = 0; i < a->n; i++) {
		out(b, "| ", bad);
		cell(b, a->v[i].name, bad);
		if (fp_buf_printf(b, " | %lld | `%s` |\n", a->v[i].bytes,
				  a->v[i].sha256))
			*bad = 1;
	}
	out(b, "\n", bad);
}

int fp_render_md(const struct fp_report *r, const struct fp_artifacts *arts,
		 struct fp_buf *b, struct fp_err *err)
{
	int bad = 0;

	header(b, r, &bad);
	scenario(b, r, &bad);
	invariants(b, r, &bad);
	bounds(b, r, &bad);
	timeline(b, r, &bad);
	metrics(b, r, &bad);
	load(b, r, &bad);
	followups(b, r, &bad);
	artifacts(b, arts, &bad);
	out(b, "## Verdict reason\n\n", &bad);
	para(b, r->verdict_reason, "(none given)", &bad);
	if (bad)
		return fp_err_set(err, FP_ENOMEM, "report.md: out of memory");
	return FP_OK;
}
