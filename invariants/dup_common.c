/*
 * dup_common.c - at most one row per dedupe tuple in a platform table.
 *
 * One pass over the table: the counts and the first 32 duplicated events
 * (in event order) come from the same grouping, so a failing run does not
 * group 10 M rows a second time for its examples.
 */
#include "invariants/dup_common.h"

#include <stdio.h>
#include <stdlib.h>

int fp__check_at_most_one(const struct fp_check_ctx *ctx, const char *table,
			  const char *noun, struct fp_check_result *res,
			  struct fp_err *err)
{
	const char *params[2] = {ctx->platform_run_id, ctx->event_class};
	char sql[1536], what[96], pop[96];
	struct fp_rows *rows;
	long long dups, judged;
	int rc;

	snprintf(sql, sizeof sql,
		 "WITH c AS (SELECT count(*) FILTER (WHERE n > 1) AS dups, "
		 "count(*) AS judged, (array_agg(event_id ORDER BY event_id) "
		 "FILTER (WHERE n > 1))[1:32] AS ids, (array_agg(n ORDER BY "
		 "event_id) FILTER (WHERE n > 1))[1:32] AS ns FROM (SELECT "
		 "event_id, count(*) AS n FROM %s WHERE platform_run_id = $1 "
		 "AND event_class = $2 GROUP BY event_id) g) "
		 "SELECT c.dups, c.judged, coalesce(x.e, '(null)') || ' (' || "
		 "x.n || ' %ss)' FROM c LEFT JOIN LATERAL unnest(c.ids, c.ns) "
		 "WITH ORDINALITY AS x(e, n, i) ON true ORDER BY x.i",
		 table, noun);
	rc = fp_pg_query(ctx->pg, sql, 2, params, &rows, err);
	if (rc)
		return rc;
	dups = strtoll(fp_rows_get(rows, 0, 0), NULL, 10);
	judged = strtoll(fp_rows_get(rows, 0, 1), NULL, 10);
	snprintf(what, sizeof what, "events with more than one %s", noun);
	snprintf(pop, sizeof pop, "events with a %s", noun);
	fp_check_judge(res, dups, judged, what, pop);
	fp_check_take_examples(res, rows, 2);
	fp_rows_free(rows);
	return FP_OK;
}
