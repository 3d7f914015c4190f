/*
 * it_util.h - shared by the integration tests: find the local stack's
 * endpoints file and read values from it. The tests need the real stack
 * (envs/local/stack up); a missing file or server fails them, never skips.
 */
#ifndef FP_IT_UTIL_H
#define FP_IT_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void it_endpoints_path(char *out, size_t outsz)
{
	const char *state = getenv("FPDRILL_STATE");
	const char *src = getenv("FPDRILL_SOURCE_DIR");

	if (state && *state)
		snprintf(out, outsz, "%s/endpoints.env", state);
	else
		snprintf(out, outsz, "%s/envs/local/.state/endpoints.env",
			 src ? src : ".");
}

/* @returns a malloc'd value for key from endpoints.env; fails the test when
 *          the file or the key is missing. */
static inline char *it_endpoint(const char *key)
{
	char path[4096], line[1024];
	size_t klen = strlen(key);
	FILE *f;

	it_endpoints_path(path, sizeof path);
	f = fopen(path, "r");
	cr_assert_not_null(f, "the local stack is not up: %s is missing "
			      "(run envs/local/stack up)", path);
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			char *v = line + klen + 1;

			v[strcspn(v, "\r\n")] = '\0';
			fclose(f);
			return strdup(v);
		}
	}
	fclose(f);
	cr_assert_fail("%s has no %s", path, key);
	return NULL;
}

static inline char *it_read_small_file(const char *path)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "cannot open %s", path);
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

/* conninfo of the stack's PostgreSQL (password passed separately). */
static inline void it_pg_conninfo(char *out, size_t outsz, char **password)
{
	char *h = it_endpoint("FPD_PG_HOST"), *p = it_endpoint("FPD_PG_PORT");
	char *d = it_endpoint("FPD_PG_DB"), *u = it_endpoint("FPD_PG_USER");
	char *pwf = it_endpoint("FPD_PG_PASSWORD_FILE");

	snprintf(out, outsz, "host=%s port=%s dbname=%s user=%s", h, p, d, u);
	*password = it_read_small_file(pwf);
	free(h);
	free(p);
	free(d);
	free(u);
	free(pwf);
}

#endif
