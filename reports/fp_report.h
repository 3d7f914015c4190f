/*
 * fp_report.h - the drill report model and the bundle it becomes.
 *
 * The run loop fills a struct fp_report; the writers turn it into the bundle
 * of DESIGN.md / seed 000 B.6: report.json (schema fpdrill.report/v1,
 * docs/report-schema.md), report.md, report.html, junit.xml and
 * manifest.json (sha256 of every file in the bundle directory, written
 * last). fp_s3_upload_bundle()
 * then copies the bundle to S3 with SigV4, manifest last, so a reader that
 * sees a manifest knows every file it lists is there.
 *
 * Ownership: a struct fp_report owns every string and json_t it holds; the
 * fp_report_add_* helpers copy their string arguments. fp_report_free()
 * releases everything.
 */
#ifndef FP_REPORT_H
#define FP_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "harness/core/fp_error.h"

#define FP_REPORT_SCHEMA "fpdrill.report/v1"
#define FP_MAX_EXAMPLES 32

/* Three-way status of one invariant: unknown = nothing to judge. */
enum fp_status {
	FP_STATUS_PASS,
	FP_STATUS_FAIL,
	FP_STATUS_UNKNOWN,
};

enum fp_verdict {
	FP_VERDICT_PASS,
	FP_VERDICT_FAIL,
	FP_VERDICT_UNKNOWN,
	FP_VERDICT_ABORTED,
};

const char *fp_status_name(enum fp_status s);   /* "pass" "fail" "unknown" */
const char *fp_verdict_name(enum fp_verdict v); /* + "aborted" */

struct fp_inv_result {
	char *name;
	enum fp_status status;
	long long count;         /* violations found (0 on pass) */
	char *observed;          /* e.g. "3 duplicate decisions over 4000 events" */
	char *expected;          /* e.g. "0 duplicate decisions" */
	char *detail;            /* optional longer text, may be NULL */
	char *examples[FP_MAX_EXAMPLES]; /* example event ids / rows */
	size_t n_examples;
};

struct fp_bound_result {
	char *name;
	char *limit;             /* "60s" */
	char *observed;          /* "12.4s" or "not reached" */
	int met;                 /* 1 met, 0 missed, -1 unknown */
};

struct fp_timeline_entry {
	int64_t t_ns;            /* monotonic offset from the run start */
	int64_t wall_ns;         /* wall clock, for the UTC label */
	char *kind;              /* "phase", "fault", "revert", "action", "mark", "stop", "info" */
	char *name;
	char *detail;            /* may be NULL */
};

struct fp_report {
	char *run_id;
	char *drill_id;
	char *drill_title;
	char *description;       /* scenario + injection description */
	char *expected;          /* expected behaviour */
	char **claims;
	size_t n_claims;
	char *env_name;
	char *env_class;
	char *scenario_path;
	char *platform_run_id;
	int64_t started_wall_ns;
	int64_t ended_wall_ns;
	enum fp_verdict verdict;
	char *verdict_reason;    /* one line: why this verdict (may be NULL) */
	int exit_code;
	struct fp_inv_result *invariants;
	size_t n_invariants;
	struct fp_bound_result *bounds;
	size_t n_bounds;
	struct fp_timeline_entry *timeline;
	size_t n_timeline;
	json_t *metrics;         /* object {before:{}, during:{}, after:{}}; owned */
	json_t *load;            /* object: planned/achieved rate, counts, latency; owned, may be NULL */
	char **followups;
	size_t n_followups;
};

struct fp_report *fp_report_new(void);
void fp_report_free(struct fp_report *r);

/* Setters copy their arguments (NULL allowed where the field may be NULL). */
int fp_report_set(char **field, const char *value);
struct fp_inv_result *fp_report_add_invariant(struct fp_report *r,
					      const char *name);
int fp_inv_add_example(struct fp_inv_result *inv, const char *example);
int fp_report_add_bound(struct fp_report *r, const char *name,
			const char *limit, const char *observed, int met);
int fp_report_add_timeline(struct fp_report *r, int64_t t_ns, int64_t wall_ns,
			   const char *kind, const char *name,
			   const char *detail);
int fp_report_add_followup(struct fp_report *r, const char *text);

/*
 * @brief Bundle directory for a run: <out_root>/<drill_id>/<YYYYMMDDTHHMMSSZ>-<run_id>
 *        (created with parents).
 */
int fp_bundle_dir(const char *out_root, const char *drill_id,
		  int64_t started_wall_ns, const char *run_id, char *out,
		  size_t outsz, struct fp_err *err);

/*
 * @brief Write junit.xml, report.html, report.md and report.json into dir,
 *        then manifest.json listing the sha256 of every regular file in dir
 *        (including files the run wrote there before, e.g. ledger.tsv,
 *        samples.tsv, faults.jsonl). report.json's "artifacts" holds the same
 *        file -> sha256 map (minus report.json and manifest.json themselves).
 * @param signing_key HMAC-SHA-256 key for the manifest signature, or NULL
 *        (then the manifest is unsigned and says so).
 */
int fp_bundle_write(const struct fp_report *r, const char *dir,
		    const char *signing_key, struct fp_err *err);

struct fp_s3_conf {
	const char *endpoint;    /* "http://127.0.0.1:19000" (borrowed) */
	const char *bucket;
	const char *region;      /* "us-east-1" */
	const char *prefix;      /* "fpdrill" */
	const char *access_key;  /* resolved values; never logged */
	const char *secret_key;
	int max_attempts;        /* per object, default 4 when 0 */
};

/*
 * @brief The S3 key prefix of a bundle:
 *        <prefix>/drills/<drill_id>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMSSZ>-<run_id>
 */
int fp_s3_bundle_key(const struct fp_s3_conf *c, const char *drill_id,
		     int64_t started_wall_ns, const char *run_id, char *out,
		     size_t outsz);

/*
 * @brief Upload every file of a bundle directory under key_prefix, SigV4
 *        signed, with retries on transport errors and 5xx; manifest.json last.
 *        Nothing local is removed. On failure the error says which object
 *        and why (an HTTP 403 is not retried: it means bad credentials).
 */
int fp_s3_upload_bundle(const struct fp_s3_conf *c, const char *dir,
			const char *key_prefix, struct fp_err *err);

/* @brief PUT one object (used by the upload and by tests). */
int fp_s3_put(const struct fp_s3_conf *c, const char *key, const void *data,
	      size_t len, const char *content_type, long *http_status,
	      struct fp_err *err);

/* ---- additions (declared after the original interface) ---------------- */

/* Bundle file names the writers own. */
#define FP_BUNDLE_REPORT_JSON "report.json"
#define FP_BUNDLE_REPORT_MD "report.md"
#define FP_BUNDLE_REPORT_HTML "report.html"
#define FP_BUNDLE_JUNIT "junit.xml"
#define FP_BUNDLE_MANIFEST "manifest.json"
#define FP_MANIFEST_SCHEMA "fpdrill.manifest/v1"

/*
 * Note on fp_report_add_invariant(): the returned pointer points into
 * r->invariants, which the next fp_report_add_invariant() may move; finish
 * filling one invariant before adding the next. New invariants start as
 * FP_STATUS_UNKNOWN and a new report as FP_VERDICT_UNKNOWN / exit code 3, so
 * a field nobody set never reads as a pass.
 */

/* @brief Append one claim (copied) to r->claims. */
int fp_report_add_claim(struct fp_report *r, const char *claim);

/*
 * @brief Check a bundle against its manifest.json: every listed file exists
 *        with the listed sha256 and size and, when signing_key is not NULL,
 *        the manifest carries a valid HMAC-SHA256 signature over its files
 *        array (canonical form: docs/report-schema.md).
 * @returns FP_OK, or FP_EINVAL with a message naming the first bad file
 *          (FP_EIO when manifest.json itself cannot be read).
 */
int fp_bundle_verify(const char *dir, const char *signing_key,
		     struct fp_err *err);

/*
 * @brief AWS SigV4 UriEncode of an object key: keeps A-Za-z0-9 - . _ ~ and
 *        '/', percent-encodes every other byte as %XX (upper-case hex).
 *        libcurl 7.88 signs the path verbatim, so the caller must encode.
 * @returns 0, or -1 when out (outsz bytes incl. NUL) is too small.
 */
int fp_s3_uri_encode(const char *in, char *out, size_t outsz);

/* Marker the run loop leaves in a bundle whose upload failed (its content
 * is the error text); fp_s3_upload_pending() removes it after an upload. */
#define FP_BUNDLE_UPLOAD_PENDING ".upload-pending"

/*
 * @brief Upload every bundle under out_root/<DR-ID>/<bundle>/ that holds an
 *        FP_BUNDLE_UPLOAD_PENDING marker, oldest name first. The S3 key comes
 *        from the bundle's report.json (drill.id, run_id, started_at) through
 *        fp_s3_bundle_key(); on success the marker is deleted (and the
 *        directory fsync'd), on failure it is rewritten with the new error.
 * @param uploaded, failed counters (may be NULL), set even on error.
 * @param report one line per bundle is printed there (may be NULL).
 * @returns FP_OK when every pending bundle went up (or none was pending),
 *          else the code of the first failure, err naming how many failed.
 */
int fp_s3_upload_pending(const struct fp_s3_conf *c, const char *out_root,
			 int *uploaded, int *failed, FILE *report,
			 struct fp_err *err);

/*
 * @brief Parse the <Code> element of an S3 XML error body into out
 *        ("SignatureDoesNotMatch"); out is "" when there is none.
 */
void fp_s3_error_code(const char *body, char *out, size_t outsz);

#endif
