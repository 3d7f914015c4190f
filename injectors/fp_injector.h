/*
 * fp_injector.h - the fault injector interface and table.
 *
 * An injector is one file defining a const struct fp_injector plus one line
 * in injectors.def (the X-macro list that builds the table). The run loop
 * journals every injection (fsync'd) before calling apply(), pushes it on the
 * revert stack, and calls revert() LIFO on every exit path. An injector whose
 * effect does not stay in place (a one-shot, such as an offset reset) has
 * revert == NULL and says so in its doc page (docs/injectors/<name>.md).
 *
 * Ownership: every pointer in struct fp_inject_ctx is borrowed from the run.
 */
#ifndef FP_INJECTOR_H
#define FP_INJECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "harness/backend/fp_kafka.h"
#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

/* Offsets of the traffic topic recorded at a phase start ("mark: NAME"). */
struct fp_offset_mark {
	const char *name;
	const struct fp_part_offsets *parts;
	size_t n;
};

/* One partition whose committed offset an injector moved on purpose. */
struct fp_offsets_move {
	const char *group;
	const char *topic;
	int32_t partition;
	int64_t from;           /* committed before, or FP_KAFKA_NO_OFFSET */
	int64_t to;
	int64_t t_start_ns;     /* monotonic, just before the admin call */
};

struct fp_inject_ctx {
	const struct fp_env *env;
	struct fp_kafka *kafka;
	const struct fp_offset_mark *marks;
	size_t n_marks;
	/* An injector that moves a consumer group's committed offsets reports
	 * every partition it moved, after the broker took the move: the only
	 * backward moves committed_offsets_monotonic accepts are these. May
	 * be NULL (cleanup, tests). */
	void (*offsets_moved)(void *ud, const struct fp_offsets_move *mv);
	void *offsets_moved_ud;
	/* apply() describes what it did here (JSON text, for the journal and
	 * the report); revert() gets it back, also after a crash. */
	char state[2048];
};

struct fp_injector {
	const char *name;
	const char *summary;
	/* Check arguments without touching the target. */
	int (*validate)(const struct fp_kvlist *with, struct fp_err *err);
	int (*apply)(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		     struct fp_err *err);
	/* NULL: nothing stays in place after apply() (one-shot). */
	int (*revert)(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		      struct fp_err *err);
	/* Blast radius for the profile's safety limits: the share (0..1] of a
	 * topic's partitions / of a component's instances this fault touches.
	 * NULL: touches one instance and no partition-wide state. */
	void (*blast)(const struct fp_kvlist *with, double *partition_share,
		      double *instance_share);
};

#define FP_INJECTOR(sym) extern const struct fp_injector fp_injector_##sym;
#include "injectors/injectors.def"
#undef FP_INJECTOR

extern const struct fp_injector *const fp_injectors[];
extern const size_t fp_injectors_count;

/* @returns the injector named name, or NULL. */
const struct fp_injector *fp_injector_find(const char *name);
int fp_injector_exists(const char *name);

#endif
