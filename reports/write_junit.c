/*
 * write_junit.c - junit.xml, so CI systems show a drill as test cases: one
 * testsuite per drill, one testcase per invariant ("invariant:<name>") and
 * per bound ("bound:<name>"). fail -> <failure>, unknown -> <skipped>, an
 * aborted run -> an extra "run" testcase with <error>. An unknown verdict
 * also gets a skipped "run" case: an inconclusive run whose invariants all
 * passed must not look green in a CI dashboard.
 *
 * Every string is XML-escaped, and control characters XML 1.0 forbids are
 * replaced, because one stray byte from a backend row would make the whole
 * file unparseable and hide the failure it describes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "reports/report_internal.h"

static void esc(struct fp_buf *b, const char *s, int *bad)
{
	for (const char *p = s ? s : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		int rc;

		switch (c) {
		case '&':
			rc = fp_buf_puts(b, "&amp;");
			break;
		case '<':
			rc = fp_buf_puts(b, "&lt;");
			break;
		case '>':
			rc = fp_buf_puts(b, "&gt;");
			break;
		case '"':
			rc = fp_buf_puts(b, "&quot;");
			break;
		case '\'':
			rc = fp_buf_puts(b, "&apos;");
			break;
		case '\n': /* character references survive attribute
			    * normalisation; raw newlines do not */
			rc = fp_buf_puts(b, "&#10;");
			break;
		case '\r':
			rc = fp_buf_puts(b, "&#13;");
			break;
		case '\t':
			rc = fp_buf_puts(b, "&#9;");
			break;
		default:
			rc = c < 0x20 || c == 0x7f ? fp_buf_puts(b, "?")
						   : fp_buf_append(b, p, 1);
		}
		if (rc)
			*bad = 1;
	}
}

static void out(struct fp_buf *b, const char *s, int *bad)
{
	if (fp_buf_puts(b, s))
		*bad = 1;
}

/* <testcase classname="fpdrill.<id>" name="<prefix><name>" time="0"> */
static void case_open(struct fp_buf *b, const struct fp_report *r,
		      const char *prefix, const char *name, int *bad)
{
	out(b, "  <testcase classname=\"fpdrill.", bad);
	esc(b, r->drill_id, bad);
	out(b, "\" name=\"", bad);
	esc(b, prefix, bad);
	esc(b, name, bad);
	out(b, "\" time=\"0\"", bad);
}

static void inv_case(struct fp_buf *b, const struct fp_report *r,
		     const struct fp_inv_result *v, int *bad)
{
	case_open(b, r, "invariant:", v->name, bad);
	if (v->status == FP_STATUS_PASS) {
		out(b, "/>\n", bad);
		return;
	}
	out(b, ">\n", bad);
	if (v->status == FP_STATUS_UNKNOWN) {
		out(b, "    <skipped message=\"unknown: ", bad);
		esc(b, v->observed ? v->observed : v->detail, bad);
		out(b, "\"/>\n", bad);
	} else {
		char count[32];

		out(b, "    <failure type=\"invariant\" message=\"", bad);
		esc(b, v->observed, bad);
		out(b, " (expected ", bad);
		esc(b, v->expected, bad);
		out(b, ")\">observed: ", bad);
		esc(b, v->observed, bad);
		out(b, "\nexpected: ", bad);
		esc(b, v->expected, bad);
		snprintf(count, sizeof count, "%lld", v->count);
		out(b, "\nviolations: ", bad);
		out(b, count, bad);
		if (v->detail) {
			out(b, "\ndetail: ", bad);
			esc(b, v->detail, bad);
		}
		if (v->n_examples)
			out(b, "\nexamples:", bad);
		for (size_t i = 0; i < v->n_examples; i++) {
			out(b, "\n  ", bad);
			esc(b, v->examples[i], bad);
		}
		out(b, "</failure>\n", bad);
	}
	out(b, "  </testcase>\n", bad);
}

static void bound_case(struct fp_buf *b, const struct fp_report *r,
		       const struct fp_bound_result *x, int *bad)
{
	case_open(b, r, "bound:", x->name, bad);
	if (x->met > 0) {
		out(b, "/>\n", bad);
		return;
	}
	out(b, ">\n", bad);
	if (x->met < 0) {
		out(b, "    <skipped message=\"unknown: observed ", bad);
		esc(b, x->observed ? x->observed : "nothing", bad);
		out(b, "\"/>\n", bad);
	} else {
		out(b, "    <failure type=\"bound\" message=\"not met: observed ",
		    bad);
		esc(b, x->observed, bad);
		out(b, ", limit ", bad);
		esc(b, x->limit, bad);
		out(b, "\">observed: ", bad);
		esc(b, x->observed, bad);
		out(b, "\nexpected: within ", bad);
		esc(b, x->limit, bad);
		out(b, "</failure>\n", bad);
	}
	out(b, "  </testcase>\n", bad);
}

int fp_render_junit(const struct fp_report *r, struct fp_buf *b,
		    struct fp_err *err)
{
	size_t tests = 0, failures = 0, skipped = 0, errors = 0;
	double dur = fp_report_duration_s(r);
	int bad = 0;

	for (size_t i = 0; i < r->n_invariants; i++) {
		tests++;
		failures += r->invariants[i].status == FP_STATUS_FAIL;
		skipped += r->invariants[i].status == FP_STATUS_UNKNOWN;
	}
	for (size_t i = 0; i < r->n_bounds; i++) {
		tests++;
		failures += r->bounds[i].met == 0;
		skipped += r->bounds[i].met < 0;
	}
	if (r->verdict == FP_VERDICT_ABORTED) {
		tests++;
		errors++;
	} else if (r->verdict == FP_VERDICT_UNKNOWN) {
		tests++;
		skipped++;
	}

	out(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", &bad);
	out(b, "<testsuite name=\"", &bad);
	esc(b, r->drill_id, &bad);
	out(b, " ", &bad);
	esc(b, r->drill_title, &bad);
	if (fp_buf_printf(b,
			  "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
			  "skipped=\"%zu\" time=\"%.3f\"",
			  tests, failures, errors, skipped,
			  dur < 0 ? 0.0 : dur))
		bad = 1;
	if (r->started_wall_ns > 0) {
		char ts[40];

		/* JUnit's timestamp has no zone suffix; it is UTC. */
		fp_fmt_iso8601(r->started_wall_ns, ts, sizeof ts);
		ts[19] = '\0';
		out(b, " timestamp=\"", &bad);
		out(b, ts, &bad);
		out(b, "\"", &bad);
	}
	out(b, ">\n  <properties>\n", &bad);
	{
		const char *props[][2] = {
			{"run_id", r->run_id},
			{"verdict", fp_verdict_name(r->verdict)},
			{"env", r->env_name},
			{"scenario", r->scenario_path},
			{"platform_run_id", r->platform_run_id},
		};

		for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
			if (!props[i][1])
				continue;
			out(b, "    <property name=\"", &bad);
			out(b, props[i][0], &bad);
			out(b, "\" value=\"", &bad);
			esc(b, props[i][1], &bad);
			out(b, "\"/>\n", &bad);
		}
	}
	out(b, "  </properties>\n", &bad);

	for (size_t i = 0; i < r->n_invariants; i++)
		inv_case(b, r, &r->invariants[i], &bad);
	for (size_t i = 0; i < r->n_bounds; i++)
		bound_case(b, r, &r->bounds[i], &bad);
	if (r->verdict == FP_VERDICT_ABORTED) {
		case_open(b, r, "", "run", &bad);
		out(b, ">\n    <error type=\"aborted\" message=\"aborted: ",
		    &bad);
		esc(b, r->verdict_reason ? r->verdict_reason : "stop condition",
		    &bad);
		out(b, "\">", &bad);
		esc(b, r->verdict_reason, &bad);
		out(b, "</error>\n  </testcase>\n", &bad);
	} else if (r->verdict == FP_VERDICT_UNKNOWN) {
		case_open(b, r, "", "run", &bad);
		out(b, ">\n    <skipped message=\"unknown: ", &bad);
		esc(b, r->verdict_reason ? r->verdict_reason : "inconclusive",
		    &bad);
		out(b, "\"/>\n  </testcase>\n", &bad);
	}
	out(b, "</testsuite>\n", &bad);
	if (bad)
		return fp_err_set(err, FP_ENOMEM, "junit.xml: out of memory");
	return FP_OK;
}
