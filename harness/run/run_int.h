/*
 * run_int.h - private to harness/run/: the fault journal, the samplers and
 * stop conditions, and the plan/safety checks that run.c, cleanup and the
 * CLI's plan verb share.
 */
#ifndef FP_RUN_INT_H
#define FP_RUN_INT_H

#include <stdint.h>
#include <stdio.h>

#include "harness/backend/fp_kafka.h"
#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

/* ---- fault journal -------------------------------------------------------
 * One JSON line per event, written and fsync'd before the harness acts on
 * it, in <out_root>/.journal/<run_id>.jsonl. A journal that is not closed
 * belongs to a run that is alive or died; `fpdrill cleanup` reverts what it
 * says may still be in place. */
struct fp_journal;

int fp_journal_open(const char *out_root, const char *run_id,
		    const char *env_path, const char *scenario_path,
		    struct fp_journal **out, struct fp_err *err);
/* Before an action with a revert is run. */
int fp_journal_apply_action(struct fp_journal *j, const char *id,
			    const char *action, const char *revert_action);
/* Before an injector is applied (also one-shots, for the record). */
int fp_journal_apply_inject(struct fp_journal *j, const char *id,
			    const char *injector, const struct fp_kvlist *with,
			    int revertible);
/* op: "applied", "apply_failed", "revert", "reverted", "revert_failed". */
int fp_journal_mark(struct fp_journal *j, const char *op, const char *id,
		    const char *state, const char *error);
const char *fp_journal_path(const struct fp_journal *j);
/*
 * @brief Finish the journal. When everything was reverted it is closed and
 *        moved to .journal/done/; otherwise it stays for `fpdrill cleanup`.
 *        A copy goes into the bundle as faults.jsonl either way.
 */
int fp_journal_finish(struct fp_journal *j, int all_reverted,
		      const char *bundle_dir, struct fp_err *err);
void fp_journal_free(struct fp_journal *j);

/* ---- run variables --------------------------------------------------------
 * ${run.id} and ${run.platform_run_id}, left in place by the spec loader, are
 * replaced in the env (actions, samplers, observables; platform_run_id first,
 * from ${run.id}) and, when sc is not NULL, in the scenario's step and check
 * arguments. Strings are replaced in place (owned by env / sc as before). */
int fp_run_vars_apply(struct fp_env *env, struct fp_scenario *sc,
		      const char *run_id, struct fp_err *err);

/* ---- samplers -------------------------------------------------------------
 * Time series of everything a scenario can wait on, stop on or bound:
 * decision_group_lag (implicit) and the env profile's samplers. The decision
 * group's committed offsets themselves go to offsets.tsv (one row per
 * partition per sample, see docs/report-schema.md) for the offset checks. */
struct fp_series;

struct fp_sampling;

struct fp_sampling_conf {
	const struct fp_env *env;
	const struct fp_scenario *sc;
	const char *platform_run_id;
	const char *kafka_bootstrap;
	const char *topic;
	const char *group;
	const char *pg_password;        /* resolved, may be NULL; copied */
	FILE *out;                       /* samples.tsv, borrowed */
	FILE *offsets_out;               /* offsets.tsv, borrowed, may be NULL */
	int64_t t0;                      /* run start (monotonic) */
	volatile int *stop_flag;         /* set when a stop condition fires */
};

int fp_sampling_start(const struct fp_sampling_conf *c,
		      struct fp_sampling **out, struct fp_err *err);
void fp_sampling_stop(struct fp_sampling *s);
/*
 * @brief Stop writing offsets.tsv: after this returns the sampler neither
 *        writes nor flushes offsets_out, so the caller may add the final
 *        snapshot and close it while the other series go on.
 */
void fp_sampling_detach_offsets(struct fp_sampling *s);
/*
 * @brief Append one offsets.tsv row per partition (columns t_ms, kind, group,
 *        topic, partition, committed, high; tab-separated CSV). t_ms is when
 *        the answer came back, so each committed offset was read at or
 *        before it, and after the partition's previous row was written:
 *        committed_offsets_monotonic places a replay reset between two rows
 *        with that. No committed offset (none yet, or the broker did not
 *        answer for the partition) is an empty field.
 */
/* @brief A name as one field of a tab-separated CSV row (what COPY ...
 *        (FORMAT csv, DELIMITER E'\t') reads back): quoted only when it has
 *        to be, so the usual group and topic names stay plain. */
void fp_tsv_field(char *out, size_t outsz, const char *v);
void fp_offsets_write(FILE *f, int64_t t_ms, const char *kind,
		      const char *group, const char *topic,
		      const struct fp_part_offsets *po, size_t n);
void fp_sampling_free(struct fp_sampling *s);
/* @returns latest value of a series and when it was taken; -1 at when none. */
int fp_sampling_latest(struct fp_sampling *s, const char *name, double *value,
		       int64_t *at);
/*
 * @brief First time >= after_ns at which name op value held and kept holding
 *        for hold_ns (the recovery point), from the recorded series.
 * @returns 1 found (at *when), 0 not found.
 */
int fp_sampling_recovery(struct fp_sampling *s, const char *name,
			 enum fp_cmp op, double value, int64_t hold_ns,
			 int64_t after_ns, int64_t *when);
/* Max of a series over [from_ns, to_ns]; 0 when no sample. */
int fp_sampling_max(struct fp_sampling *s, const char *name, int64_t from_ns,
		    int64_t to_ns, double *max);
/* The stop condition that fired, or NULL. */
const struct fp_stop_condition *fp_sampling_fired(struct fp_sampling *s,
						  char *why, size_t whysz);
int fp_cmp_holds(enum fp_cmp op, double a, double b);
const char *fp_cmp_name(enum fp_cmp op);

/* ---- plan and safety ------------------------------------------------------ */

/* Planned totals of a scenario (for the plan, the guard and the report). */
struct fp_plan_totals {
	int64_t duration_ns;      /* phases + until timeouts + waits (upper bound) */
	double peak_rate;         /* highest arrival rate incl. ramps and bursts */
	double planned_events;    /* integral of the rate over load phases */
};

void fp_plan_totals(const struct fp_scenario *sc, struct fp_plan_totals *t);

/*
 * @brief The production guard and the blast-radius limits of the profile.
 * @returns FP_OK or FP_ESPEC with a message naming the limit.
 */
int fp_safety_check(const struct fp_env *env, const struct fp_scenario *sc,
		    int allow_production, struct fp_err *err);

/* @brief Print the resolved timeline of a drill without touching the target. */
void fp_plan_print(FILE *f, const struct fp_env *env,
		   const struct fp_scenario *sc);

#endif
