/*
 * provenance_complete.c - the audit chain of contract §11 is complete for a
 * random sample of the run's decisions, and the audit answers in time (seed
 * B.4 DR-06 / FM-AU-01: response time bound, provenance completeness 100 %,
 * trace chain intact). From first-class records only, one SQL statement:
 *
 *   decision_log.model_version ("+fallback" stripped)
 *     -> model_registry (training_run_id)
 *     -> promotion_ledger: the newest promote row of that version at or
 *        before decided_at, with an approval
 *     -> training_runs (dataset_id, code and config digests)
 *     -> dataset_manifests (fingerprint)
 *
 * A sampled decision with any missing link is a violation (example: its id
 * and the links it lacks). The statement's wall time is the audit response
 * time; over with: max_response (default 2s) is a violation too, stated
 * with both numbers. with: sample (default 50, or "all"); with: the four
 * table names (defaults: the contract's platform.* names). Unknown when the
 * run decided nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "invariants/corridor_common.h"
#include "invariants/fp_invariant.h"
#include "invariants/with_args.h"

#define MAX_SAMPLE 100000

/* Columns 3.. of the chain query: which link is present, in chain order
 * (short names: an example is at most 160 characters). */
static const char *const link_names[] = {
	"registry row", "run ref", "promote row", "approval",
	"training run", "digests", "manifest",
};
#define N_LINKS (sizeof link_names / sizeof link_names[0])

static const char *const allowed[] = {"model_registry", "promotion_ledger", "training_runs",
					  "dataset_manifests", "sample", "max_response",
					  NULL};

static int check(const struct fp_check_ctx *ctx, const struct fp_kvlist *with,
		 struct fp_check_result *res, struct fp_err *err)
{
	char mr[256], pl[256], tr[256], dm[256], sql[4096], limit[32];
	const char *sample = fp__with_get(with, "sample");
	const char *params[3];
	struct fp_rows *rows;
	long long max_ms, incomplete = 0, n;
	int64_t t0, took_ns;
	double took_ms;
	int rc;

	rc = fp__with_only(with, "provenance_complete", allowed, err);
	if (rc)
		return rc;
	rc = fp__with_table(with, "model_registry",
			       "platform.model_registry", mr, sizeof mr, err);
	if (rc == FP_OK)
		rc = fp__with_table(with, "promotion_ledger",
				       "platform.promotion_ledger", pl,
				       sizeof pl, err);
	if (rc == FP_OK)
		rc = fp__with_table(with, "training_runs",
				       "platform.training_runs", tr, sizeof tr,
				       err);
	if (rc == FP_OK)
		rc = fp__with_table(with, "dataset_manifests",
				       "platform.dataset_manifests", dm,
				       sizeof dm, err);
	if (rc == FP_OK)
		rc = fp_corridor_duration_ms(with, "max_response", 2000,
					     &max_ms, err);
	if (rc)
		return rc;
	if (!sample || strcmp(sample, "all") != 0) {
		char *end;
		long long k = sample ? strtoll(sample, &end, 10) : 50;

		if (sample && (*end || end == sample || k < 1 ||
			       k > MAX_SAMPLE))
			return fp_err_set(err, FP_EINVAL,
					  "with: sample: expected 1..%d or "
					  "\"all\", got '%s'",
					  MAX_SAMPLE, sample);
		snprintf(limit, sizeof limit, "%lld", k);
	} else {
		snprintf(limit, sizeof limit, "%d", MAX_SAMPLE);
	}
	params[0] = ctx->platform_run_id;
	params[1] = ctx->event_class;
	params[2] = limit;
	snprintf(sql, sizeof sql,
		 "WITH s AS (SELECT decision_id, event_id, decided_at, "
		 "split_part(model_version, '+', 1) AS v FROM %s WHERE "
		 "platform_run_id = $1 AND event_class = $2 ORDER BY random() "
		 "LIMIT $3::bigint) "
		 "SELECT s.decision_id, s.event_id, coalesce(s.v, '(null)'), "
		 "r.version IS NOT NULL, "
		 "coalesce(r.training_run_id, '') <> '', "
		 "p.promotion_id IS NOT NULL, "
		 "coalesce(p.approval, '') <> '', "
		 "t.training_run_id IS NOT NULL, "
		 "coalesce(t.code_digest, '') <> '' AND "
		 "coalesce(t.config_digest, '') <> '', "
		 "m.dataset_id IS NOT NULL AND coalesce(m.fingerprint, '') <> '' "
		 "FROM s LEFT JOIN %s r ON r.version = s.v "
		 "LEFT JOIN LATERAL (SELECT promotion_id, approval FROM %s l "
		 "WHERE l.action = 'promote' AND l.version = s.v AND l.at <= "
		 "s.decided_at ORDER BY l.promotion_id DESC LIMIT 1) p ON true "
		 "LEFT JOIN %s t ON t.training_run_id = r.training_run_id "
		 "LEFT JOIN %s m ON m.dataset_id = t.dataset_id "
		 "ORDER BY s.decision_id",
		 ctx->decision_log, mr, pl, tr, dm);
	t0 = fp_mono_ns();
	rc = fp_pg_query(ctx->pg, sql, 3, params, &rows, err);
	took_ns = fp_mono_ns() - t0;
	if (rc)
		return rc;
	took_ms = (double)took_ns / (double)FP_NS_PER_MS;
	n = (long long)fp_rows_count(rows);
	for (size_t i = 0; i < (size_t)n; i++) {
		char missing[128] = "";
		size_t len = 0;

		for (size_t k = 0; k < N_LINKS; k++)
			if (strcmp(fp_rows_get(rows, i, 3 + k), "t") != 0 &&
			    len < sizeof missing)
				len += (size_t)snprintf(
					missing + len, sizeof missing - len,
					"%s%s", len ? ", " : "", link_names[k]);
		if (!missing[0])
			continue;
		incomplete++;
		if (res->n_examples < FP_CHECK_MAX_EXAMPLES)
			snprintf(res->examples[res->n_examples++],
				 sizeof res->examples[0],
				 "decision %s (%s) model %s: no %s",
				 fp_rows_get(rows, i, 0),
				 fp_rows_get(rows, i, 1),
				 fp_rows_get(rows, i, 2), missing);
	}
	fp_rows_free(rows);
	fp_check_judge(res, incomplete + (took_ms > (double)max_ms), n,
		       "incomplete chains or a slow audit",
		       "sampled decisions");
	if (n > 0)
		snprintf(res->observed, sizeof res->observed,
			 "%lld of %lld sampled decisions with a complete "
			 "chain (%.1f %%); audit query %.1f ms",
			 n - incomplete, n, 100.0 * (double)(n - incomplete) /
						    (double)n,
			 took_ms);
	snprintf(res->expected, sizeof res->expected,
		 "100 %% complete chains; audit query <= %lld ms", max_ms);
	snprintf(res->detail, sizeof res->detail,
		 "audit response time %.1f ms (bound %lld ms%s); %lld of "
		 "%lld sampled decisions (sample %s) lack a link of "
		 "decision -> registry -> promotion (approval) -> training run "
		 "-> dataset manifest",
		 took_ms, max_ms, took_ms > (double)max_ms ? ", EXCEEDED" : "",
		 incomplete, n, sample ? sample : "50");
	return FP_OK;
}

const struct fp_invariant fp_invariant_provenance_complete = {
	.name = "provenance_complete",
	.summary = "sampled decisions have a complete audit chain, answered "
		   "within max_response",
	.check = check,
};
