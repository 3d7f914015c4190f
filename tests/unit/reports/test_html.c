/*
 * test_html.c - unit tests of report.html (reports/write_html.c)
 * through fp_bundle_write() on synthetic bundle directories: the file is
 * written and signed in the manifest, holds three SVG charts with one phase
 * band per phase and one marker per fault entry on each, escapes hostile
 * text, says "no data" when there is none, tolerates malformed rows and an
 * extra trailing ledger column, and streams a large ledger in bounded
 * memory (the ledger of a long soak must not be loaded whole).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "harness/core/fp_fs.h"
#include "reports/fp_report.h"

/* 2026-11-23T18:23:40.551Z */
#define T0 INT64_C(1795458220551000000)
#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)

static char tmpdir[64];

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fp-html-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(html, .init = setup, .fini = teardown);

static FILE *open_in_tmp(const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "cannot create %s", path);
	return f;
}

static char *slurp(const char *name)
{
	char path[256], *data = NULL;
	size_t len;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	cr_assert_eq(fp_read_file(path, (size_t)64 << 20, &data, &len, NULL),
		     FP_OK, "cannot read %s", name);
	return data;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0, l = strlen(needle);

	for (const char *p = strstr(hay, needle); p; p = strstr(p + l, needle))
		n++;
	return n;
}

/* One ledger row in FP_LEDGER_COLUMNS order; times in ns since the
 * generator's creation, -1 for NULL. */
static void ledger_row(FILE *f, long long seq, const char *kind,
		       const char *phase, long long in, long long sent,
		       long long done, int extra_column)
{
	char s[32] = "\\N", d[32] = "\\N";

	if (sent >= 0)
		snprintf(s, sizeof s, "%lld", sent);
	if (done >= 0)
		snprintf(d, sizeof d, "%lld", done);
	fprintf(f,
		"%lld\tevt-%lld\t%s\t%d\t%s\tacct-1\t100\tabc\t%lld\t%s\t%s\t"
		"202\taccepted\t\\N\t\\N\t\\N\t\\N\t\\N%s\n",
		seq, seq, kind, strcmp(kind, "retry") == 0 ? 2 : 1, phase, in, s,
		d, extra_column ? "\tdecided" : "");
}

/* A run of 40 s: baseline 0-10 s, inject 10-30 s (load 100 ev/s from
 * t = 0.5 s on the run clock), recover 30-40 s; two faults, a revert and a
 * stop. The generator's clock starts 0.5 s before the run clock's load. */
static struct fp_report *make_report(const char *title)
{
	struct fp_report *r = fp_report_new();
	struct fp_inv_result *v;

	cr_assert_not_null(r);
	fp_report_set(&r->run_id, "r-html1");
	fp_report_set(&r->drill_id, "DR-03");
	fp_report_set(&r->drill_title, title);
	fp_report_set(&r->env_name, "local");
	fp_report_set(&r->env_class, "local");
	fp_report_set(&r->verdict_reason, "lag recovered in 12.4 s & no loss");
	r->started_wall_ns = T0;
	r->ended_wall_ns = T0 + 40 * SEC;
	r->verdict = FP_VERDICT_PASS;
	r->exit_code = 0;
	v = fp_report_add_invariant(r, "no_lost_events");
	v->status = FP_STATUS_PASS;
	fp_report_set(&v->observed, "0 lost of 3900");
	fp_report_set(&v->expected, "0 lost");
	v = fp_report_add_invariant(r, "no_duplicate_decisions");
	v->status = FP_STATUS_FAIL;
	v->count = 2;
	fp_inv_add_example(v, "evt-<7>");
	fp_report_add_bound(r, "lag_recovery", "60s", "12.4s", 1);
	fp_report_add_timeline(r, 0, T0, "phase", "baseline", "start");
	fp_report_add_timeline(r, 10 * SEC, T0 + 10 * SEC, "phase", "baseline",
			       "end");
	fp_report_add_timeline(r, 10 * SEC, T0 + 10 * SEC, "phase", "inject",
			       "start");
	fp_report_add_timeline(r, 12 * SEC, T0 + 12 * SEC, "fault",
			       "consumer_pause", "group=decider");
	fp_report_add_timeline(r, 15 * SEC, T0 + 15 * SEC, "action",
			       "rollback_model", NULL);
	fp_report_add_timeline(r, 18 * SEC, T0 + 18 * SEC, "fault",
			       "latency", "+200ms \"quoted\"");
	fp_report_add_timeline(r, 25 * SEC, T0 + 25 * SEC, "revert",
			       "consumer_pause", NULL);
	fp_report_add_timeline(r, 30 * SEC, T0 + 30 * SEC, "phase", "inject",
			       "end");
	fp_report_add_timeline(r, 30 * SEC, T0 + 30 * SEC, "phase", "recover",
			       "start");
	fp_report_add_timeline(r, 39 * SEC, T0 + 39 * SEC, "stop",
			       "max_lag", "lag > 50000");
	fp_report_add_timeline(r, 40 * SEC, T0 + 40 * SEC, "phase", "recover",
			       "end");
	json_object_set_new(json_object_get(r->metrics, "during"), "lag",
			    json_integer(5800));
	r->load = json_pack("{s:f,s:i}", "planned_rate", 100.0, "sent", 3900);
	fp_report_add_followup(r, "Alert at lag > 1000 <soon>.");
	return r;
}

static void write_inputs(int rows_per_s, int extra_column)
{
	FILE *f = open_in_tmp("ledger.tsv");
	long long seq = 0;

	/* The load phase "inject" runs 10-30 s on the run clock; its first
	 * event is due 9.5 s after the generator started. */
	for (int s = 0; s < 20; s++)
		for (int i = 0; i < rows_per_s; i++) {
			long long in = (long long)(9.5 * SEC) + s * SEC +
				       (long long)i * SEC / rows_per_s;
			long long lat = (s >= 2 && s < 15) ? 200 * MS : 4 * MS;

			ledger_row(f, seq, "original", "inject", in, in + MS,
				   in + lat, extra_column);
			if (i == 0 && s >= 2 && s < 15)
				ledger_row(f, seq, "retry", "inject", in + SEC,
					   in + SEC, in + SEC + 3 * MS,
					   extra_column);
			seq++;
		}
	/* A dropped attempt (never sent) and rubbish lines. */
	ledger_row(f, seq, "original", "inject", (long long)(29.4 * SEC), -1,
		   -1, extra_column);
	fputs("not\ta\tledger\trow\n", f);
	fputs("1\tevt\toriginal\t1\tp\ta\t1\th\tNaN\t1\t2\t202\n", f);
	fclose(f);

	f = open_in_tmp("samples.tsv");
	fputs("t_s\tseries\tvalue\n", f);
	for (int i = 0; i < 80; i++) {
		double t = i * 0.5;
		double lag = t >= 12 && t < 25 ? (t - 12) * 400 : 0;

		fprintf(f, "%.3f\tdecision_group_lag\t%g\n", t, lag);
		fprintf(f, "%.3f\tdecision_group_lag.p0\t%g\n", t, lag / 2);
		fprintf(f, "%.3f\tingress_p99\t%g\n", t, 3.5);
	}
	fclose(f);
}

static void write_bundle(struct fp_report *r)
{
	struct fp_err err = {0};

	cr_assert_eq(fp_bundle_write(r, tmpdir, "k3y", &err), FP_OK, "%s",
		     err.msg);
}

Test(html, charts_bands_markers_and_manifest)
{
	struct fp_report *r = make_report("Lag spike + recovery");
	struct fp_err err = {0};
	json_t *m, *files;
	char *html, path[256];
	int listed = 0;

	write_inputs(100, 0);
	write_bundle(r);
	fp_report_free(r);

	html = slurp("report.html");
	cr_assert(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	cr_assert_eq(count(html, "<svg class=\"chart\""), 3);
	cr_assert(strstr(html, "id=\"chart-rate\"") &&
		  strstr(html, "id=\"chart-latency\"") &&
		  strstr(html, "id=\"chart-lag\""));
	cr_assert_eq(count(html, "role=\"img\""), 3);
	/* 3 phases and 2 faults on each of the 3 charts. */
	cr_assert_eq(count(html, "<rect class=\"band\""), 9, "%zu",
		     count(html, "<rect class=\"band\""));
	for (const char *const *p = (const char *const[]){
		     "data-phase=\"baseline\"", "data-phase=\"inject\"",
		     "data-phase=\"recover\"", NULL};
	     *p; p++)
		cr_assert_eq(count(html, *p), 3, "%s", *p);
	cr_assert_eq(count(html, "class=\"marker fault\""), 6);
	cr_assert_eq(count(html, "class=\"marker revert\""), 3);
	cr_assert_eq(count(html, "class=\"marker stop\""), 3);
	/* Data in all three: 2 rate + 4 latency + 1 lag series. */
	cr_assert_eq(count(html, "<path class=\"line\""), 7);
	cr_assert_null(strstr(html, "no data<"));
	cr_assert_not_null(strstr(html, "aligned on the start of the first "
					"load phase"));
	cr_assert_not_null(strstr(html, "2 malformed ledger rows skipped"));
	/* Marker titles escape their detail. */
	cr_assert_not_null(strstr(html, "+200ms &quot;quoted&quot;"));
	cr_assert_not_null(strstr(html, "evt-&lt;7&gt;"));
	cr_assert_not_null(strstr(html, "class=\"badge v-pass\""));
	/* Offline: no URL is fetched, no script is run. */
	cr_assert_null(strstr(html, "<script"));
	cr_assert_null(strstr(html, "src=\"http"));
	cr_assert_null(strstr(html, "href=\"http"));
	free(html);

	snprintf(path, sizeof path, "%s/manifest.json", tmpdir);
	m = json_load_file(path, 0, NULL);
	cr_assert_not_null(m);
	files = json_object_get(m, "files");
	for (size_t i = 0; i < json_array_size(files); i++)
		listed += strcmp(json_string_value(json_object_get(
					 json_array_get(files, i), "path")),
				 "report.html") == 0;
	json_decref(m);
	cr_assert_eq(listed, 1, "report.html is not in manifest.json");
	cr_assert_eq(fp_bundle_verify(tmpdir, "k3y", &err), FP_OK, "%s",
		     err.msg);
	/* report.md and report.json list it as an artifact too. */
	html = slurp("report.md");
	cr_assert_not_null(strstr(html, "| report.html |"));
	free(html);
	html = slurp("report.json");
	cr_assert_not_null(strstr(html, "\"report.html\":"));
	free(html);
}

Test(html, escapes_hostile_text)
{
	struct fp_report *r =
		make_report("<script>alert('x')</script> & \"more\"\x01\xff");

	write_inputs(5, 1); /* with a trailing "expect" column */
	write_bundle(r);
	fp_report_free(r);
	{
		char *html = slurp("report.html");

		cr_assert_null(strstr(html, "<script"), "unescaped title");
		cr_assert_not_null(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)"
						"&lt;/script&gt; &amp; "
						"&quot;more&quot;&#xFFFD;&#xFFFD;"));
		/* The extra column did not turn rows into rubbish. */
		cr_assert_eq(count(html, "<path class=\"line\""), 7);
		cr_assert_not_null(strstr(html, "2 malformed ledger rows"));
		free(html);
	}
}

Test(html, no_data_for_an_empty_ledger)
{
	struct fp_report *r = make_report("Empty");
	FILE *f = open_in_tmp("ledger.tsv");

	fclose(f);
	write_bundle(r);
	fp_report_free(r);
	{
		char *html = slurp("report.html");

		cr_assert_eq(count(html, "<svg class=\"chart\""), 3);
		cr_assert_eq(count(html, "class=\"nodata\""), 3);
		cr_assert_eq(count(html, "<path class=\"line\""), 0);
		/* The bands and markers still show when the run sent nothing. */
		cr_assert_eq(count(html, "<rect class=\"band\""), 9);
		cr_assert_eq(count(html, "class=\"marker fault\""), 6);
		free(html);
	}
}

Test(html, bare_report_without_timeline_or_files)
{
	struct fp_report *r = fp_report_new();
	struct fp_err err = {0};
	char *html;

	cr_assert_eq(fp_bundle_write(r, tmpdir, NULL, &err), FP_OK, "%s",
		     err.msg);
	fp_report_free(r);
	html = slurp("report.html");
	cr_assert_eq(count(html, "class=\"nodata\""), 3);
	cr_assert_eq(count(html, "<rect class=\"band\""), 0);
	cr_assert_not_null(strstr(html, "class=\"badge v-unknown\""));
	cr_assert_not_null(strstr(html, "No invariant was evaluated."));
	free(html);
}

static long maxrss_kb(void)
{
	struct rusage ru;

	cr_assert_eq(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* 200 000 rows over 2 000 s (past the 1 024-bucket cap, so buckets are
 * merged): the whole bundle write must stay under 50 MB more RSS than
 * before it, and the charts stay a bounded size. */
Test(html, large_ledger_bounded_memory, .timeout = 60)
{
	struct fp_report *r = make_report("Soak");
	FILE *f = open_in_tmp("ledger.tsv");
	long before, after;
	char *html;

	for (long long i = 0; i < 200000; i++) {
		long long in = (long long)(9.5 * SEC) + i * 10 * MS;

		ledger_row(f, i, "original", "inject", in, in + MS,
			   in + (i % 100 == 0 ? 900 * MS : 5 * MS), 0);
	}
	fclose(f);
	before = maxrss_kb();
	write_bundle(r);
	after = maxrss_kb();
	fp_report_free(r);
	cr_assert_lt(after - before, 50 * 1024, "RSS grew by %ld kB",
		     after - before);
	html = slurp("report.html");
	cr_assert_lt(strlen(html), (size_t)1 << 20, "report.html is %zu bytes",
		     strlen(html));
	cr_assert_not_null(strstr(html, "200000 rows"));
	cr_assert_not_null(strstr(html, "in 2 s buckets"), "coarsening");
	cr_assert_eq(count(html, "<path class=\"line\""), 6);
	free(html);
}
