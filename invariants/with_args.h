/*
 * with_args.h - private to invariants/: reading a check's `with:` arguments
 * (table names, numbers, phase lists) the same way in every invariant that
 * takes them, refusing unknown keys so a typo never silently weakens a check.
 */
#ifndef FP_INVARIANTS_WITH_ARGS_H
#define FP_INVARIANTS_WITH_ARGS_H

#include <stddef.h>

#include "invariants/fp_invariant.h"

/* @returns the value of key, or NULL when absent (with may be NULL). */
const char *fp__with_get(const struct fp_kvlist *with, const char *key);

/*
 * @brief Fail (FP_EINVAL) when with holds a key not in the NULL-terminated
 *        list allowed; the message names the invariant and the key.
 */
int fp__with_only(const struct fp_kvlist *with, const char *invariant,
		  const char *const *allowed, struct fp_err *err);

/*
 * @brief The quoted table named by key, or def when the key is absent.
 */
int fp__with_table(const struct fp_kvlist *with, const char *key,
		   const char *def, char *out, size_t outsz,
		   struct fp_err *err);

/*
 * @brief A finite number >= 0 from key (def when absent; required when
 *        def < 0).
 */
int fp__with_number(const struct fp_kvlist *with, const char *key,
		    double def, double *out, struct fp_err *err);

#endif
