/* registry.c - builds the injector table from injectors.def. */
#include <string.h>

#include "injectors/fp_injector.h"

const struct fp_injector *const fp_injectors[] = {
#define FP_INJECTOR(sym) &fp_injector_##sym,
#include "injectors/injectors.def"
#undef FP_INJECTOR
};

const size_t fp_injectors_count = sizeof fp_injectors / sizeof fp_injectors[0];

const struct fp_injector *fp_injector_find(const char *name)
{
	for (size_t i = 0; i < fp_injectors_count; i++)
		if (strcmp(fp_injectors[i]->name, name) == 0)
			return fp_injectors[i];
	return NULL;
}

int fp_injector_exists(const char *name)
{
	return fp_injector_find(name) != NULL;
}
