/*
 * corridor_common.c - with: argument helpers of the promotion-corridor
 * invariants (see corridor_common.h).
 */
#include "invariants/corridor_common.h"

#include <stdint.h>

#include "harness/core/fp_clock.h"
#include "invariants/with_args.h"

int fp_corridor_duration_ms(const struct fp_kvlist *with, const char *key,
			    long long fallback_ms, long long *ms,
			    struct fp_err *err)
{
	const char *v = fp__with_get(with, key);
	int64_t ns;

	if (!v) {
		*ms = fallback_ms;
		return FP_OK;
	}
	if (fp_duration_parse(v, &ns))
		return fp_err_set(err, FP_EINVAL,
				  "with: %s: expected a duration like 2s or "
				  "500ms, got '%s'",
				  key, v);
	*ms = (long long)(ns / FP_NS_PER_MS);
	return FP_OK;
}
