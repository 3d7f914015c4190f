/* dup_common.c - at most one row per dedupe tuple in a platform table. */
#include "invariants/dup_common.h"

#include <stdio.h>
#include <stdlib.h>

int fp__check_at_most_one(const struct fp_check_ctx *ctx, const char *table,
			  const char *noun, struct fp_check_result *res,
			  struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[1024], groups[512], what[96], pop[96];
	struct fp_rows *rows;
	long long dups, judged;
	int rc;

	snprintf(groups, sizeof groups,
		 "SELECT event_id, count(*) AS n FROM %s WHERE "
		 "platform_run_id = $1 AND event_class = $2 GROUP BY event_id",
		 table);
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FILTER (WHERE n > 1), count(*) FROM (%s) g",
		 groups);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	dups = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	fp_rows_free(rows);
	snprintf(what, sizeof what, "events with more than one %s", noun);
	snprintf(pop, sizeof pop, "events with a %s", noun);
	fp_check_judge(res, dups, judged, what, pop);
	if (dups == 0)
		return FP_OK;
	snprintf(sql, sizeof sql,
		 "SELECT event_id || ' (' || n || ' %ss)' FROM (%s) g WHERE "
		 "n > 1 ORDER BY event_id LIMIT 32",
		 noun, groups);
	return fp_check_examples(ctx, res, sql, 2, params, err);
}
