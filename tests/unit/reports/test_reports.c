/*
 * test_reports.c - unit tests of fp_reports without a network: the model,
 * the four bundle documents read back by real parsers (jansson for JSON,
 * string checks for JUnit/Markdown), the manifest and its verification
 * (tampering and a wrong key must fail), the local and S3 layouts for a
 * fixed timestamp, and the SigV4 UriEncode.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ftw.h>

#include "harness/core/fp_fs.h"
#include "harness/core/fp_hash.h"
#include "reports/fp_report.h"

/* 2026-11-23T18:23:40.551Z */
#define T0 INT64_C(1795458220551000000)
#define SEC INT64_C(1000000000)

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
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fp-reports-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(reports, .init = setup, .fini = teardown);

static struct fp_report *sample_report(void)
{
	struct fp_report *r = fp_report_new();
	struct fp_inv_result *v;

	cr_assert_not_null(r);
	fp_report_set(&r->run_id, "r-0001");
	fp_report_set(&r->drill_id, "DR-03");
	fp_report_set(&r->drill_title, "Lag spike + recovery");
	fp_report_set(&r->description,
		      "Pause the decider consumer for 30s under 200 ev/s.");
	fp_report_set(&r->expected, "Lag recovers within 60s; no loss.");
	fp_report_add_claim(r, "T0.2");
	fp_report_set(&r->env_name, "local");
	fp_report_set(&r->env_class, "local");
	fp_report_set(&r->scenario_path, "scenarios/dr03.yaml");
	fp_report_set(&r->platform_run_id, "plat-9");
	r->started_wall_ns = T0;
	r->ended_wall_ns = T0 + 75 * SEC + 250000000;
	r->verdict = FP_VERDICT_FAIL;
	r->exit_code = 1;
	fp_report_set(&r->verdict_reason, "no_duplicate_decisions violated");

	v = fp_report_add_invariant(r, "no_lost_events");
	cr_assert_not_null(v);
	v->status = FP_STATUS_PASS;
	fp_report_set(&v->observed, "0 lost of 4000");
	fp_report_set(&v->expected, "0 lost");

	v = fp_report_add_invariant(r, "no_duplicate_decisions");
	cr_assert_not_null(v);
	v->status = FP_STATUS_FAIL;
	v->count = 3;
	fp_report_set(&v->observed, "3 duplicate | decisions <x&y>");
	fp_report_set(&v->expected, "0 duplicate decisions");
	fp_inv_add_example(v, "evt-17");
	fp_inv_add_example(v, "evt-42");

	fp_report_add_bound(r, "lag_recovery", "60s", "not reached", 0);
	fp_report_add_timeline(r, 0, T0, "phase", "baseline", NULL);
	fp_report_add_timeline(r, 1234 * INT64_C(1000000), T0 + 1234000000,
			       "fault", "consumer_pause", "group=decider");
	fp_report_add_timeline(r, 31 * SEC, T0 + 31 * SEC, "revert",
			       "consumer_pause", NULL);
	json_object_set_new(json_object_get(r->metrics, "before"), "lag",
			    json_integer(0));
	json_object_set_new(json_object_get(r->metrics, "during"), "lag",
			    json_integer(5800));
	r->load = json_pack("{s:f,s:f,s:i}", "planned_rate", 200.0,
			    "achieved_rate", 199.5, "sent", 4000);
	fp_report_add_followup(r, "Add a lag alert at 1000.");
	return r;
}

static char *slurp(const char *name)
{
	char path[256], *data = NULL;
	size_t len;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	cr_assert_eq(fp_read_file(path, 1 << 20, &data, &len, NULL), FP_OK,
		     "cannot read %s", name);
	return data;
}

static void write_extra(const char *name, const char *text)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	cr_assert_eq(fp_write_file_atomic(path, text, strlen(text), NULL),
		     FP_OK);
}

static json_t *load_json(const char *name)
{
	char path[256];
	json_error_t e;
	json_t *j;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
	cr_assert_not_null(j, "%s: %s", name, e.text);
	return j;
}

static const char *sget(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void write_sample_bundle(const char *key)
{
	struct fp_report *r = sample_report();
	struct fp_err err = {0};

	write_extra("ledger.tsv", "evt-1\t1\nevt-2\t2\n");
	write_extra("faults.jsonl", "{\"fault\":\"consumer_pause\"}\n");
	cr_assert_eq(fp_bundle_write(r, tmpdir, key, &err), FP_OK, "%s",
		     err.msg);
	fp_report_free(r);
}

Test(reports, defaults_are_pessimistic)
{
	struct fp_report *r = fp_report_new();
	struct fp_inv_result *v = fp_report_add_invariant(r, "x");

	cr_assert_eq(r->verdict, FP_VERDICT_UNKNOWN);
	cr_assert_eq(r->exit_code, 3);
	cr_assert_eq(v->status, FP_STATUS_UNKNOWN);
	for (int i = 0; i < FP_MAX_EXAMPLES; i++)
		cr_assert_eq(fp_inv_add_example(v, "e"), FP_OK);
	cr_assert_neq(fp_inv_add_example(v, "one too many"), FP_OK);
	cr_assert_eq(v->n_examples, FP_MAX_EXAMPLES);
	cr_assert_str_eq(fp_verdict_name(FP_VERDICT_ABORTED), "aborted");
	cr_assert_str_eq(fp_status_name(FP_STATUS_FAIL), "fail");
	fp_report_free(r);
}

Test(reports, report_json_schema)
{
	json_t *j, *inv, *b, *tl, *e, *m, *arts, *k;
	const char *key;
	void *it;
	int i = 0;
	static const char *const order[] = {
		"schema", "run_id", "drill", "claims", "env", "scenario",
		"platform_run_id", "started_at", "ended_at", "duration_s",
		"verdict", "verdict_reason", "exit_code", "invariants", "bounds",
		"timeline", "metrics", "load", "followups", "artifacts"};

	write_sample_bundle(NULL);
	j = load_json("report.json");
	/* Stable key order, exactly the documented keys. */
	for (it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
		key = json_object_iter_key(it);
		cr_assert_lt(i, 20, "extra key %s", key);
		cr_assert_str_eq(key, order[i], "key %d", i);
		i++;
	}
	cr_assert_eq(i, 20);
	cr_assert_str_eq(sget(j, "schema"), "fpdrill.report/v1");
	cr_assert_str_eq(sget(j, "run_id"), "r-0001");
	cr_assert_str_eq(sget(json_object_get(j, "drill"), "id"), "DR-03");
	cr_assert_str_eq(sget(json_object_get(j, "drill"), "title"),
			 "Lag spike + recovery");
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(j, "claims"), 0)),
			 "T0.2");
	cr_assert_str_eq(sget(json_object_get(j, "env"), "name"), "local");
	cr_assert_str_eq(sget(j, "started_at"), "2026-11-23T18:23:40.551Z");
	cr_assert_str_eq(sget(j, "ended_at"), "2026-11-23T18:24:55.801Z");
	cr_assert_float_eq(json_real_value(json_object_get(j, "duration_s")),
			   75.25, 1e-9);
	cr_assert_str_eq(sget(j, "verdict"), "fail");
	cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 1);

	inv = json_object_get(j, "invariants");
	cr_assert_eq(json_array_size(inv), 2);
	cr_assert_str_eq(sget(json_array_get(inv, 0), "status"), "pass");
	e = json_array_get(inv, 1);
	cr_assert_str_eq(sget(e, "name"), "no_duplicate_decisions");
	cr_assert_str_eq(sget(e, "status"), "fail");
	cr_assert_eq(json_integer_value(json_object_get(e, "count")), 3);
	cr_assert_str_eq(sget(e, "observed"), "3 duplicate | decisions <x&y>");
	cr_assert(json_is_null(json_object_get(e, "detail")));
	cr_assert_eq(json_array_size(json_object_get(e, "examples")), 2);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(e, "examples"), 1)),
			 "evt-42");

	b = json_array_get(json_object_get(j, "bounds"), 0);
	cr_assert_str_eq(sget(b, "limit"), "60s");
	cr_assert(json_is_false(json_object_get(b, "met")));

	tl = json_object_get(j, "timeline");
	cr_assert_eq(json_array_size(tl), 3);
	e = json_array_get(tl, 1);
	cr_assert_float_eq(json_real_value(json_object_get(e, "t")), 1.234,
			   1e-9);
	cr_assert_str_eq(sget(e, "at"), "2026-11-23T18:23:41.785Z");
	cr_assert_str_eq(sget(e, "kind"), "fault");
	cr_assert_str_eq(sget(e, "fault"), "consumer_pause");
	cr_assert_str_eq(sget(e, "name"), "consumer_pause");
	cr_assert_str_eq(sget(e, "detail"), "group=decider");
	cr_assert_str_eq(sget(json_array_get(tl, 0), "phase"), "baseline");

	m = json_object_get(j, "metrics");
	cr_assert_eq(json_integer_value(json_object_get(
			     json_object_get(m, "during"), "lag")),
		     5800);
	cr_assert(json_is_object(json_object_get(m, "after")));
	cr_assert_float_eq(json_real_value(json_object_get(
				   json_object_get(j, "load"), "achieved_rate")),
			   199.5, 1e-9);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(j, "followups"), 0)),
			 "Add a lag alert at 1000.");

	/* artifacts: every file except report.json and manifest.json. */
	arts = json_object_get(j, "artifacts");
	cr_assert_eq(json_object_size(arts), 5); /* + report.html */
	cr_assert_null(json_object_get(arts, "report.json"));
	cr_assert_null(json_object_get(arts, "manifest.json"));
	json_object_foreach(arts, key, k) {
		char path[256], sha[FP_SHA256_HEX];

		snprintf(path, sizeof path, "%s/%s", tmpdir, key);
		cr_assert_eq(fp_sha256_file_hex(path, sha, NULL), FP_OK);
		cr_assert_str_eq(json_string_value(k), sha, "%s", key);
	}
	cr_assert_not_null(json_object_get(arts, "report.md"));
	cr_assert_not_null(json_object_get(arts, "ledger.tsv"));
	json_decref(j);

	/* Pretty-printed with indent 2, and t printed with 3 decimals. */
	{
		char *text = slurp("report.json");

		cr_assert(strstr(text, "\n  \"schema\": ") != NULL);
		cr_assert(strstr(text, "\"t\": 1.234,") != NULL, "%s", text);
		free(text);
	}
}

Test(reports, null_and_unknown_values)
{
	struct fp_report *r = fp_report_new();
	struct fp_err err = {0};
	json_t *j;

	fp_report_set(&r->run_id, "r2");
	fp_report_set(&r->drill_id, "DR-01");
	fp_report_add_bound(r, "b", "10s", NULL, -1);
	/* A kind that collides with an entry key must not overwrite it. */
	fp_report_add_timeline(r, 5, 0, "name", "real-name", NULL);
	cr_assert_eq(fp_bundle_write(r, tmpdir, NULL, &err), FP_OK, "%s",
		     err.msg);
	j = load_json("report.json");
	cr_assert_str_eq(sget(j, "verdict"), "unknown");
	cr_assert(json_is_null(json_object_get(j, "started_at")));
	cr_assert(json_is_null(json_object_get(j, "duration_s")));
	cr_assert(json_is_null(json_object_get(j, "load")));
	cr_assert(json_is_null(json_object_get(
		json_array_get(json_object_get(j, "bounds"), 0), "met")));
	cr_assert_str_eq(sget(json_array_get(json_object_get(j, "timeline"), 0),
			      "name"),
			 "real-name");
	json_decref(j);
	j = load_json("manifest.json");
	cr_assert_str_eq(sget(json_object_get(j, "signature"), "alg"), "none");
	json_decref(j);
	fp_report_free(r);
}

Test(reports, junit_xml)
{
	char *x;

	write_sample_bundle(NULL);
	x = slurp("junit.xml");
	cr_assert(strstr(x, "<testsuite name=\"DR-03 Lag spike + recovery\" "
			    "tests=\"3\" failures=\"2\" errors=\"0\" "
			    "skipped=\"0\" time=\"75.250\"") != NULL,
		  "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"fpdrill.DR-03\" "
			    "name=\"invariant:no_lost_events\" time=\"0\"/>") !=
		  NULL);
	cr_assert(strstr(x, "name=\"invariant:no_duplicate_decisions\"") !=
		  NULL);
	cr_assert(strstr(x, "<failure type=\"invariant\" message=\"3 "
			    "duplicate | decisions &lt;x&amp;y&gt; "
			    "(expected 0 duplicate decisions)\">") != NULL,
		  "%s", x);
	cr_assert(strstr(x, "evt-42") != NULL);
	cr_assert(strstr(x, "name=\"bound:lag_recovery\"") != NULL);
	cr_assert(strstr(x, "not met: observed not reached, limit 60s") !=
		  NULL);
	cr_assert(strstr(x, "<x&y>") == NULL, "unescaped text");
	free(x);
}

Test(reports, junit_aborted_has_error_case)
{
	struct fp_report *r = sample_report();
	struct fp_err err = {0};
	char *x;

	r->verdict = FP_VERDICT_ABORTED;
	r->invariants[1].status = FP_STATUS_UNKNOWN;
	fp_report_set(&r->verdict_reason, "stop: error rate > 5% \"hard\"");
	cr_assert_eq(fp_bundle_write(r, tmpdir, NULL, &err), FP_OK, "%s",
		     err.msg);
	x = slurp("junit.xml");
	cr_assert(strstr(x, "tests=\"4\" failures=\"1\" errors=\"1\" "
			    "skipped=\"1\"") != NULL,
		  "%s", x);
	cr_assert(strstr(x, "name=\"run\"") != NULL);
	cr_assert(strstr(x, "<error type=\"aborted\" message=\"aborted: stop: "
			    "error rate &gt; 5% &quot;hard&quot;\">") != NULL,
		  "%s", x);
	cr_assert(strstr(x, "<skipped message=\"unknown: 3 duplicate") != NULL,
		  "%s", x);
	free(x);
	fp_report_free(r);
}

Test(reports, report_md)
{
	char *md;

	write_sample_bundle(NULL);
	md = slurp("report.md");
	cr_assert(strncmp(md, "# DR-03 Lag spike + recovery: FAIL\n", 35) == 0,
		  "%s", md);
	cr_assert(strstr(md, "Pause the decider consumer") != NULL);
	cr_assert(strstr(md, "Lag recovers within 60s") != NULL);
	cr_assert(strstr(md, "| no_duplicate_decisions | FAIL | 3 | 3 "
			     "duplicate \\| decisions <x&y> | 0 duplicate "
			     "decisions |") != NULL,
		  "%s", md);
	cr_assert(strstr(md, "- evt-17\n") != NULL);
	cr_assert(strstr(md, "| lag_recovery | 60s | not reached | **NOT MET** "
			     "|") != NULL);
	cr_assert(strstr(md, "| 1.234 | 2026-11-23T18:23:41.785Z | fault | "
			     "consumer_pause | group=decider |") != NULL,
		  "%s", md);
	cr_assert(strstr(md, "| lag | 0 | 5800 | - |") != NULL, "%s", md);
	cr_assert(strstr(md, "| achieved_rate | 199.5 |") != NULL, "%s", md);
	cr_assert(strstr(md, "- Add a lag alert at 1000.") != NULL);
	cr_assert(strstr(md, "| ledger.tsv | 16 | `") != NULL, "%s", md);
	cr_assert(strstr(md, "| junit.xml |") != NULL);
	cr_assert(strstr(md, "## Verdict reason\n\nno_duplicate_decisions "
			     "violated") != NULL);
	free(md);
}

Test(reports, manifest_lists_every_file)
{
	json_t *m, *files;
	size_t i;
	static const char *const want[] = {"faults.jsonl", "junit.xml",
					   "ledger.tsv", "report.html",
					   "report.json", "report.md"};

	/* A leftover of an interrupted atomic write is not a bundle file. */
	write_extra("ledger.tsv.tmp.12345", "partial");
	write_sample_bundle("k3y");
	m = load_json("manifest.json");
	cr_assert_str_eq(sget(m, "schema"), "fpdrill.manifest/v1");
	cr_assert_str_eq(sget(m, "run_id"), "r-0001");
	cr_assert_str_eq(sget(m, "drill_id"), "DR-03");
	cr_assert_not_null(sget(m, "created_at"));
	files = json_object_get(m, "files");
	cr_assert_eq(json_array_size(files), 6);
	for (i = 0; i < 6; i++) {
		json_t *f = json_array_get(files, i);
		char path[256], sha[FP_SHA256_HEX];
		struct stat st;

		cr_assert_str_eq(sget(f, "path"), want[i]);
		snprintf(path, sizeof path, "%s/%s", tmpdir, want[i]);
		cr_assert_eq(fp_sha256_file_hex(path, sha, NULL), FP_OK);
		cr_assert_str_eq(sget(f, "sha256"), sha, "%s", want[i]);
		cr_assert_eq(stat(path, &st), 0);
		cr_assert_eq(json_integer_value(json_object_get(f, "bytes")),
			     st.st_size);
	}
	/* The signature is HMAC-SHA256(key, compact sorted-keys files). */
	{
		char *canon = json_dumps(files, JSON_COMPACT | JSON_SORT_KEYS);
		char mac[FP_SHA256_HEX];

		cr_assert(strncmp(canon, "[{\"bytes\":", 10) == 0, "%s", canon);
		fp_hmac_sha256_hex("k3y", 3, canon, strlen(canon), mac);
		cr_assert_str_eq(sget(json_object_get(m, "signature"), "alg"),
				 "HMAC-SHA256");
		cr_assert_str_eq(sget(json_object_get(m, "signature"), "value"),
				 mac);
		free(canon);
	}
	json_decref(m);
}

Test(reports, verify_detects_tampering)
{
	struct fp_err err = {0};
	char path[256];
	FILE *f;
	int c;

	write_sample_bundle("s3cret");
	cr_assert_eq(fp_bundle_verify(tmpdir, "s3cret", &err), FP_OK, "%s",
		     err.msg);
	cr_assert_eq(fp_bundle_verify(tmpdir, NULL, &err), FP_OK, "%s",
		     err.msg);
	cr_assert_eq(fp_bundle_verify(tmpdir, "wrong", &err), FP_EINVAL);
	cr_assert(strstr(err.msg, "signature") != NULL, "%s", err.msg);

	/* Flip one byte of report.md (same size, so only the hash differs). */
	snprintf(path, sizeof path, "%s/report.md", tmpdir);
	f = fopen(path, "r+b");
	cr_assert_not_null(f);
	fseek(f, 10, SEEK_SET);
	c = fgetc(f);
	fseek(f, 10, SEEK_SET);
	fputc(c ^ 1, f);
	fclose(f);
	cr_assert_eq(fp_bundle_verify(tmpdir, "s3cret", &err), FP_EINVAL);
	cr_assert(strstr(err.msg, "report.md") != NULL, "%s", err.msg);
	cr_assert_eq(fp_bundle_verify(tmpdir, NULL, &err), FP_EINVAL);

	/* A missing file is named too. */
	snprintf(path, sizeof path, "%s/ledger.tsv", tmpdir);
	cr_assert_eq(unlink(path), 0);
	write_sample_bundle("s3cret");
	cr_assert_eq(fp_bundle_verify(tmpdir, "s3cret", &err), FP_OK, "%s",
		     err.msg);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(fp_bundle_verify(tmpdir, "s3cret", &err), FP_EINVAL);
	cr_assert(strstr(err.msg, "ledger.tsv") != NULL, "%s", err.msg);
}

Test(reports, verify_rejects_unsigned_when_key_given)
{
	struct fp_err err = {0};

	write_sample_bundle(NULL);
	cr_assert_eq(fp_bundle_verify(tmpdir, NULL, &err), FP_OK, "%s",
		     err.msg);
	cr_assert_eq(fp_bundle_verify(tmpdir, "k", &err), FP_EINVAL);
	cr_assert(strstr(err.msg, "not signed") != NULL, "%s", err.msg);
}

Test(reports, verify_rejects_path_escape)
{
	struct fp_err err = {0};
	const char *m = "{\"schema\":\"fpdrill.manifest/v1\",\"files\":[{"
			"\"path\":\"../etc/passwd\",\"sha256\":\"00000000000000"
			"000000000000000000000000000000000000000000000000\","
			"\"bytes\":1}],\"signature\":{\"alg\":\"none\"}}";

	write_extra("manifest.json", m);
	cr_assert_eq(fp_bundle_verify(tmpdir, NULL, &err), FP_EINVAL);
	cr_assert(strstr(err.msg, "malformed entry") != NULL, "%s", err.msg);
	cr_assert_eq(fp_bundle_write(NULL, tmpdir, NULL, &err), FP_EINVAL);
	cr_assert_eq(fp_bundle_verify(tmpdir, "", &err), FP_EINVAL);
}

Test(reports, dot_files_and_empty_key)
{
	struct fp_err err = {0};
	json_t *m;

	/* The runner's ".upload-pending" marker is state, not evidence. */
	write_extra(".upload-pending", "HTTP 503");
	write_sample_bundle("");
	m = load_json("manifest.json");
	cr_assert_str_eq(sget(json_object_get(m, "signature"), "alg"), "none");
	for (size_t i = 0; i < json_array_size(json_object_get(m, "files"));
	     i++)
		cr_assert_str_neq(sget(json_array_get(json_object_get(m, "files"),
						      i),
				       "path"),
				  ".upload-pending");
	json_decref(m);
	cr_assert_eq(fp_bundle_verify(tmpdir, NULL, &err), FP_OK, "%s",
		     err.msg);
}

Test(reports, bundle_dir_layout)
{
	char out[512], want[512];
	struct fp_err err = {0};
	struct stat st;

	cr_assert_eq(fp_bundle_dir(tmpdir, "DR-03", T0, "r-0001", out,
				   sizeof out, &err),
		     FP_OK, "%s", err.msg);
	snprintf(want, sizeof want, "%s/DR-03/20261123T182340Z-r-0001", tmpdir);
	cr_assert_str_eq(out, want);
	cr_assert_eq(stat(out, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(fp_bundle_dir(tmpdir, "../x", T0, "r", out, sizeof out,
				   &err),
		     FP_EINVAL);
	cr_assert_eq(fp_bundle_dir(tmpdir, "DR-03", T0, "r-0001", out, 10,
				   &err),
		     FP_EINVAL);
}

Test(reports, s3_key_layout)
{
	struct fp_s3_conf c = {.prefix = "fpdrill"};
	char out[256];

	cr_assert_eq(fp_s3_bundle_key(&c, "DR-03", T0, "r-0001", out,
				      sizeof out),
		     FP_OK);
	cr_assert_str_eq(out,
			 "fpdrill/drills/DR-03/2026/11/23/20261123T182340Z-r-0001");
	c.prefix = "team/fpdrill/";
	cr_assert_eq(fp_s3_bundle_key(&c, "DR-03", T0, "r-0001", out,
				      sizeof out),
		     FP_OK);
	cr_assert_str_eq(
		out, "team/fpdrill/drills/DR-03/2026/11/23/20261123T182340Z-r-0001");
	c.prefix = NULL;
	cr_assert_eq(fp_s3_bundle_key(&c, "DR-03", T0, "r-0001", out,
				      sizeof out),
		     FP_OK);
	cr_assert_str_eq(out, "drills/DR-03/2026/11/23/20261123T182340Z-r-0001");
	cr_assert_eq(fp_s3_bundle_key(&c, "DR-03", T0, "r-0001", out, 20),
		     FP_EINVAL);
	cr_assert_eq(fp_s3_bundle_key(&c, "DR/03", T0, "r", out, sizeof out),
		     FP_EINVAL);
}

Test(reports, s3_uri_encode)
{
	char out[128];

	cr_assert_eq(fp_s3_uri_encode("a b/c=d~e", out, sizeof out), 0);
	cr_assert_str_eq(out, "a%20b/c%3Dd~e");
	cr_assert_eq(fp_s3_uri_encode("A-Z_0.9+%&?#:@", out, sizeof out), 0);
	cr_assert_str_eq(out, "A-Z_0.9%2B%25%26%3F%23%3A%40");
	cr_assert_eq(fp_s3_uri_encode("day=2026-11-23/t-9.json", out,
				      sizeof out),
		     0);
	cr_assert_str_eq(out, "day%3D2026-11-23/t-9.json");
	cr_assert_eq(fp_s3_uri_encode("\xc3\xa9", out, sizeof out), 0);
	cr_assert_str_eq(out, "%C3%A9");
	cr_assert_eq(fp_s3_uri_encode("abc", out, 3), -1);
	cr_assert_eq(fp_s3_uri_encode("abc", out, 4), 0);
	cr_assert_eq(fp_s3_uri_encode(" ", out, 3), -1);
}

Test(reports, s3_error_code)
{
	char code[64];

	fp_s3_error_code("<?xml version=\"1.0\"?><Error><Code>"
			 "SignatureDoesNotMatch</Code><Message>x</Message>"
			 "</Error>",
			 code, sizeof code);
	cr_assert_str_eq(code, "SignatureDoesNotMatch");
	fp_s3_error_code("not xml", code, sizeof code);
	cr_assert_str_eq(code, "");
	fp_s3_error_code(NULL, code, sizeof code);
	cr_assert_str_eq(code, "");
}

Test(reports, s3_put_rejects_bad_config_without_network)
{
	struct fp_s3_conf c = {.endpoint = "http://u:p@127.0.0.1:1",
			       .bucket = "b"};
	struct fp_err err = {0};

	cr_assert_eq(fp_s3_put(&c, "k", "x", 1, NULL, NULL, &err), FP_EINVAL);
	cr_assert(strstr(err.msg, "u:p") == NULL);
	c.endpoint = "ftp://127.0.0.1:1";
	cr_assert_eq(fp_s3_put(&c, "k", "x", 1, NULL, NULL, &err), FP_EINVAL);
	c.endpoint = "http://127.0.0.1:1";
	c.access_key = "AK";
	cr_assert_eq(fp_s3_put(&c, "k", "x", 1, NULL, NULL, &err), FP_EINVAL);
	cr_assert_eq(fp_s3_upload_bundle(&c, tmpdir, "", &err), FP_EINVAL);
}
