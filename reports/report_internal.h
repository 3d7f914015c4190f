/*
 * report_internal.h - what the bundle writers share inside fp_reports and
 * nothing outside it uses: the artifact list (one directory scan, hashed
 * once, so a large ledger is read once per bundle write) and the renderers
 * that turn a report into bytes without touching the disk, so each can be
 * tested and the orchestrator alone decides what lands where.
 */
#ifndef FP_REPORT_INTERNAL_H
#define FP_REPORT_INTERNAL_H

#include <stddef.h>

#include "harness/core/fp_buf.h"
#include "harness/core/fp_error.h"
#include "harness/core/fp_hash.h"
#include "reports/fp_report.h"

/* Rendered documents are small; the cap only stops a runaway loop. */
#define FP_REPORT_DOC_MAX ((size_t)64 << 20)

struct fp_artifact {
	char *name;              /* file name inside the bundle directory */
	char sha256[FP_SHA256_HEX];
	long long bytes;
};

struct fp_artifacts {
	struct fp_artifact *v;
	size_t n;
};

/*
 * @brief List the regular files of dir (not recursive, no symlinks, no
 *        dot files, no leftover "<name>.tmp.<pid>" of an atomic write),
 *        sorted by name, skipping the names in skip (NULL-terminated list,
 *        may be NULL). With hash set, fills sha256 and bytes.
 */
int fp_artifacts_scan(const char *dir, const char *const *skip, int hash,
		      struct fp_artifacts *out, struct fp_err *err);
/* @brief Add or replace one entry (name copied), keeping the list sorted. */
int fp_artifacts_put(struct fp_artifacts *a, const char *name,
		     const char sha256[FP_SHA256_HEX], long long bytes);
void fp_artifacts_free(struct fp_artifacts *a);

/* @brief 1 when name is a plain file name: no '/', not "", "." or "..". */
int fp_bundle_name_ok(const char *name);

/* Renderers: append the document to out. arts = the files to list. */
int fp_render_json(const struct fp_report *r, const struct fp_artifacts *arts,
		   struct fp_buf *out, struct fp_err *err);
int fp_render_md(const struct fp_report *r, const struct fp_artifacts *arts,
		 struct fp_buf *out, struct fp_err *err);
int fp_render_junit(const struct fp_report *r, struct fp_buf *out,
		    struct fp_err *err);
/*
 * @brief report.html (write_html.c): the report plus rate / latency / lag
 *        charts read from dir's ledger.tsv and samples.tsv, each streamed
 *        once into a bounded number of time buckets (constant memory). A
 *        missing or unreadable file gives a "no data" chart, not an error.
 */
int fp_render_html(const struct fp_report *r, const char *dir,
		   const struct fp_artifacts *arts, struct fp_buf *out,
		   struct fp_err *err);

/*
 * @brief The canonical signed string of a manifest: its files array dumped
 *        compact with sorted keys. Caller frees with free().
 */
char *fp_manifest_canonical(json_t *files);

/* Seconds between two wall-clock stamps, or -1 when either is unset. */
double fp_report_duration_s(const struct fp_report *r);

/*
 * @brief The metric table every human-readable writer shows: ph[] is set to
 *        the before / during / after objects of r->metrics (borrowed; NULL
 *        when absent) and the result holds every metric name seen in any of
 *        them, in first-seen order (values true).
 * @returns a new object the caller json_decref()s, or NULL when out of memory.
 */
json_t *fp_report_metric_rows(const struct fp_report *r, json_t *ph[3]);

#endif
