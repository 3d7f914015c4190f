/*
 * fp_secret.h - secrets by reference only.
 *
 * Specs and profiles never hold a secret inline: a secret field is
 * "env:NAME" (an environment variable) or "file:PATH" (a file's content,
 * trailing newline removed). The resolved value lives only in memory, is
 * wiped when freed, and is never logged (fp_secret_redact names the
 * reference instead).
 */
#ifndef FP_SECRET_H
#define FP_SECRET_H

#include "harness/core/fp_error.h"

/* @returns 1 when ref has the "env:" or "file:" form, else 0. */
int fp_secret_is_ref(const char *ref);

/*
 * @brief Resolve a reference.
 * @param base_dir directory relative file: paths are resolved against (NULL
 *        = current directory).
 * @param out set to a NUL-terminated value; caller frees with
 *        fp_secret_free().
 */
int fp_secret_resolve(const char *ref, const char *base_dir, char **out,
		      struct fp_err *err);

/* @brief Zero and free a resolved value; NULL is a no-op. */
void fp_secret_free(char *value);

#endif
