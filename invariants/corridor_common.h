/*
 * corridor_common.h - private to invariants/: the duration argument of the
 * promotion-corridor invariants (version_after_rollback: grace,
 * provenance_complete: max_response). Table names and the other arguments
 * go through with_args.h like every other invariant's.
 */
#ifndef FP_CORRIDOR_COMMON_H
#define FP_CORRIDOR_COMMON_H

#include <stddef.h>

#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"

/*
 * @brief A with: duration (e.g. "2s") in milliseconds, fallback when absent.
 * @returns FP_OK, or FP_EINVAL for a malformed duration.
 */
int fp_corridor_duration_ms(const struct fp_kvlist *with, const char *key,
			    long long fallback_ms, long long *ms,
			    struct fp_err *err);

#endif
