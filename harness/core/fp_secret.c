/* fp_secret.c - env:/file: secret references (see fp_secret.h). */
#include "harness/core/fp_secret.h"

#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_fs.h"

int fp_secret_is_ref(const char *ref)
{
	return ref && ((strncmp(ref, "env:", 4) == 0 && ref[4]) ||
		       (strncmp(ref, "file:", 5) == 0 && ref[5]));
}

int fp_secret_resolve(const char *ref, const char *base_dir, char **out,
		      struct fp_err *err)
{
	*out = NULL;
	if (!fp_secret_is_ref(ref))
		return fp_err_set(err, FP_ESPEC,
				  "a secret must be an env:NAME or file:PATH "
				  "reference");
	if (ref[0] == 'e') {
		const char *v = getenv(ref + 4);

		if (!v)
			return fp_err_set(err, FP_ESPEC,
					  "secret %s: variable is not set",
					  ref);
		*out = strdup(v);
	} else {
		char path[4096];
		size_t n = 0;
		struct fp_err e2;
		char *buf;

		if (fp_path_join(path, sizeof path, base_dir, ref + 5))
			return fp_err_set(err, FP_ESPEC, "secret %s: path too long",
					  ref);
		if (fp_read_file(path, 64 * 1024, &buf, &n, &e2))
			return fp_err_set(err, FP_ESPEC, "secret %s: %s", ref,
					  e2.msg);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		*out = buf;
	}
	return *out ? FP_OK : fp_err_set(err, FP_ENOMEM, "secret %s", ref);
}

void fp_secret_free(char *value)
{
	if (value) {
		volatile char *p = value;

		while (*p)
			*p++ = '\0';
		free(value);
	}
}
