/*
 * fp_invariant.h - the invariant interface and table.
 *
 * An invariant is one file defining a const struct fp_invariant plus one line
 * in invariants.def. It judges the run from first-class records: what the
 * harness loaded into its own schema (the ledger, the decision group's
 * committed offsets) and the platform's observables (decision log, cases),
 * with set-based SQL where the data lives. It never
 * writes to the platform's tables.
 *
 * A violated invariant is a verdict (FP_CHECK_FAIL), not an error: check()
 * returns an error code only when it could not judge at all (query failed).
 * FP_CHECK_UNKNOWN means there was nothing to judge (no events, no cases).
 *
 * Ownership: every pointer in struct fp_check_ctx is borrowed.
 */
#ifndef FP_INVARIANT_H
#define FP_INVARIANT_H

#include <stddef.h>

#include "harness/backend/fp_pg.h"
#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

#define FP_CHECK_MAX_EXAMPLES 32

enum fp_check_status {
	FP_CHECK_PASS,
	FP_CHECK_FAIL,
	FP_CHECK_UNKNOWN,
};

struct fp_check_result {
	enum fp_check_status status;
	long long count;               /* violations */
	char observed[256];
	char expected[256];
	char detail[512];
	char examples[FP_CHECK_MAX_EXAMPLES][160];
	size_t n_examples;
};

struct fp_check_ctx {
	struct fp_pg *pg;
	const char *ledger;          /* quoted "fpdrill"."ledger_<run>" */
	const char *decision_log;    /* quoted platform table */
	const char *cases;           /* quoted platform table, may be NULL */
	const char *platform_run_id;
	const char *event_class;
	const char *traffic_topic;
	/* The decision group's committed offsets over the run, one row per
	 * partition per sample (seq, t_ms, kind 'sample' | 'final',
	 * consumer_group, topic, partition, committed, high), and the resets
	 * the run made on purpose (t_start_ms, t_end_ms, source,
	 * consumer_group, topic, partition, from_offset, to_offset): quoted
	 * "fpdrill"."offsets_<run>" / "fpdrill"."offset_resets_<run>", NULL
	 * when the run has no such evidence (the offset checks are unknown). */
	const char *offsets;
	const char *offset_resets;
};

struct fp_invariant {
	const char *name;
	const char *summary;
	/* 1 when check() reads ctx->ledger: the judge runs it only after the
	 * ledger is loaded (the others start while it loads). */
	int needs_ledger;
	int (*check)(const struct fp_check_ctx *ctx,
		     const struct fp_kvlist *with, struct fp_check_result *res,
		     struct fp_err *err);
};

#define FP_INVARIANT(sym) extern const struct fp_invariant fp_invariant_##sym;
#include "invariants/invariants.def"
#undef FP_INVARIANT

extern const struct fp_invariant *const fp_invariants[];
extern const size_t fp_invariants_count;

const struct fp_invariant *fp_invariant_find(const char *name);
int fp_invariant_exists(const char *name);

/*
 * @brief Shared judgement: violations > 0 fails; otherwise, with nothing to
 *        judge (judged == 0) the status is unknown, else pass. Fills status,
 *        count, observed ("<violations> <what> among <judged> <population>")
 *        and expected ("0 <what>").
 */
void fp_check_judge(struct fp_check_result *res, long long violations,
		    long long judged, const char *what,
		    const char *population);

/*
 * @brief Append column col of each row as an example (rows whose value is
 *        NULL are skipped), up to the example limit. For checks whose one
 *        query returns the counts and the examples together.
 */
void fp_check_take_examples(struct fp_check_result *res,
			    const struct fp_rows *rows, size_t col);

/*
 * @brief Run a query whose rows are examples (column 0 is the text, e.g. an
 *        event id and a count); append up to the example limit.
 */
int fp_check_examples(const struct fp_check_ctx *ctx,
		      struct fp_check_result *res, const char *sql,
		      int nparams, const char *const *params,
		      struct fp_err *err);

/*
 * The ledger columns the invariants' SQL may read, as loaded into ctx->ledger
 * by fp_invariant_load_ledger (the bundle's ledger.tsv keeps all of
 * FP_LEDGER_COLUMNS). An invariant that needs another ledger column adds it
 * here; the loader picks columns by name.
 */
#define FP_JUDGE_LEDGER_SQL_COLUMNS                                         \
	"event_id text, outcome text, topic text, partition int, "           \
	"kafka_offset bigint, expect text"

/*
 * @brief Create table (quoted, in the harness's fpdrill schema; replaced if
 *        it exists) with FP_JUDGE_LEDGER_SQL_COLUMNS and fill it from a
 *        ledger file in FP_LEDGER_COLUMNS order, then ANALYZE it.
 * @param tsv_path NULL for an empty ledger (a drill without load).
 * @returns FP_EINVAL when a line does not have the ledger's column count.
 */
int fp_invariant_load_ledger(struct fp_pg *pg, const char *tsv_path,
			     const char *table, int64_t *rows,
			     struct fp_err *err);

/*
 * @brief Session settings for judging at scale (memory for hash joins and
 *        aggregates, parallel workers, no JIT); on = 0 resets them.
 */
int fp_invariant_tune_session(struct fp_pg *pg, int on, struct fp_err *err);

/* ---- the judge: load the ledger and run a drill's checks (judge.c) ---- */

#define FP_JUDGE_MAX_LANES FP_JUDGE_MAX_CONNECTIONS

struct fp_judge_conf {
	/* Connections to judge on at once, the caller's included (1 = the
	 * caller's only); clamped to 1..FP_JUDGE_MAX_LANES. */
	int lanes;
	/* For the extra lanes' connections; borrowed. password may be NULL. */
	const char *conninfo;
	const char *password;
	/* 1: load ledger_tsv (NULL = an empty ledger) into the template's
	 * ctx->ledger first; 0: the table is already loaded. */
	int load_ledger;
	const char *ledger_tsv;
};

/* One check to run; the judge fills the out fields. */
struct fp_judge_check {
	const struct fp_invariant *inv;  /* borrowed */
	const struct fp_kvlist *with;    /* borrowed */
	struct fp_check_result res;      /* out, valid when ran && rc == 0 */
	int rc;                          /* out: check()'s return */
	struct fp_err err;               /* out, when rc != 0 */
	int64_t elapsed_ns;              /* out */
	int ran;                         /* out: 0 when the load failed first */
};

struct fp_judge_stats {
	int lanes;            /* connections used */
	int64_t ledger_rows;  /* rows loaded */
	int64_t load_ns;      /* the ledger load */
	int64_t elapsed_ns;   /* the whole judgement, load included */
};

/*
 * @brief Tune the session(s), load the ledger (conf->load_ledger) on pg, and
 *        run every check, on conf->lanes connections at once. A check that
 *        returns an error is reported in its slot (rc, err), not here.
 * @param pg   lane 0, the caller's connection (its settings are reset
 *             before return).
 * @param tmpl the check context; its pg is replaced per lane. Borrowed.
 * @returns an error only when the ledger could not be loaded (or the
 *          session tuned); checks not needing the ledger may have run.
 */
int fp_judge_run(struct fp_pg *pg, const struct fp_judge_conf *conf,
		 const struct fp_check_ctx *tmpl,
		 struct fp_judge_check *checks, size_t n,
		 struct fp_judge_stats *stats, struct fp_err *err);

#endif
