/*
 * with_args.c - private to invariants/: shared parsing of `with:` arguments
 * (see with_args.h). Kept free of the spec library so an invariant links
 * against the core and PostgreSQL only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "invariants/with_args.h"

const char *fp__with_get(const struct fp_kvlist *with, const char *key)
{
	if (!with)
		return NULL;
	for (size_t i = 0; i < with->n; i++)
		if (with->items[i].key && strcmp(with->items[i].key, key) == 0)
			return with->items[i].value;
	return NULL;
}

int fp__with_only(const struct fp_kvlist *with, const char *invariant,
		  const char *const *allowed, struct fp_err *err)
{
	if (!with)
		return FP_OK;
	for (size_t i = 0; i < with->n; i++) {
		const char *k = with->items[i].key;
		size_t j;

		for (j = 0; allowed[j]; j++)
			if (k && strcmp(k, allowed[j]) == 0)
				break;
		if (!allowed[j])
			return fp_err_set(err, FP_EINVAL,
					  "%s: unknown with: key '%s'",
					  invariant, k ? k : "(null)");
	}
	return FP_OK;
}

int fp__with_table(const struct fp_kvlist *with, const char *key,
		   const char *def, char *out, size_t outsz,
		   struct fp_err *err)
{
	const char *v = fp__with_get(with, key);

	if (!v || !*v)
		v = def;
	if (fp_pg_quote_ident(v, out, outsz) != 0)
		return fp_err_set(err, FP_EINVAL, "with: %s: bad table name '%s'",
				  key, v);
	return FP_OK;
}

int fp__with_number(const struct fp_kvlist *with, const char *key,
		    double def, double *out, struct fp_err *err)
{
	const char *v = fp__with_get(with, key);
	char *end;
	double d;

	if (!v) {
		if (def < 0)
			return fp_err_set(err, FP_EINVAL,
					  "with: %s is required", key);
		*out = def;
		return FP_OK;
	}
	d = strtod(v, &end);
	if (end == v || *end || !isfinite(d) || d < 0)
		return fp_err_set(err, FP_EINVAL,
				  "with: %s: expected a number >= 0, got '%s'",
				  key, v);
	*out = d;
	return FP_OK;
}
