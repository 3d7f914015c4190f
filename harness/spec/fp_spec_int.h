/*
 * fp_spec_int.h - private to harness/spec: the decoding toolkit shared by
 * the env profile loader (fp_env.c) and the scenario loader (fp_scenario.c).
 *
 * Every helper reports through one struct fp_sd and returns FP_OK or the
 * error code; the first error wins (later ones are never written over it),
 * because one precise message is more useful than a cascade of follow-ups.
 * Messages read "file:line:col: expected X, got Y".
 */
#ifndef FP_SPEC_INT_H
#define FP_SPEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "harness/core/fp_error.h"
#include "harness/spec/fp_spec.h"
#include "harness/spec/fp_yaml_int.h"

/* Whole spec files are small; the cap keeps a wrong path (a log, a binary)
 * from being read into memory. */
#define FP_SPEC_MAX_FILE (4u * 1024u * 1024u)

struct fp_sd {
	const char *file;        /* in messages and marks; owned by the result */
	struct fp_err *err;
	int rc;                  /* first error, FP_OK until then */
	/* interpolation sources */
	int scenario;            /* ${params.*} and ${obs.*} allowed */
	int in_params;           /* decoding params: ${params.*} is an error */
	const struct fp_kvlist *vars;   /* env_file KEY=VALUE, may be NULL */
	const struct fp_kvlist *params; /* scenario params after --set */
	const struct fp_kvlist *obs;    /* NULL: ${obs.*} stays literal */
};

/* ---- errors ----------------------------------------------------------- */

/* @brief FP_ESPEC "file:line:col: <fmt>" at node at (first error wins). */
int fp_sd_err(struct fp_sd *d, const struct fp_yaml_node *at,
	      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* @brief Same at an explicit mark; line 0 prints "file: <fmt>". */
int fp_sd_err_at(struct fp_sd *d, const struct fp_mark *at,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fp_sd_oom(struct fp_sd *d);
struct fp_mark fp_sd_mark(const struct fp_sd *d,
			  const struct fp_yaml_node *n);

/* ---- interpolation ---------------------------------------------------- */

/* @brief Expand ${...} in s; errors are reported at mark at. */
int fp_sd_interp(struct fp_sd *d, const char *s, const struct fp_mark *at,
		 char **out);
/* @brief Expand every scalar under n that is not yet done (keys are never
 *        expanded: they are names, not values). */
int fp_sd_interp_tree(struct fp_sd *d, struct fp_yaml_node *n);

/* ---- structure -------------------------------------------------------- */

/* @brief n must be a map ("expected a map for <what>, got ..."). */
int fp_sd_want_map(struct fp_sd *d, const struct fp_yaml_node *n,
		   const char *what);
/* @brief n must be a list. */
int fp_sd_want_seq(struct fp_sd *d, const struct fp_yaml_node *n,
		   const char *what);
/* @brief Every key of map must be in allowed (NULL-terminated). */
int fp_sd_check_keys(struct fp_sd *d, const struct fp_yaml_node *map,
		     const char *what, const char *const *allowed);
/* @brief The value of a required key; the error points at the map. */
int fp_sd_require(struct fp_sd *d, const struct fp_yaml_node *map,
		  const char *key, const char *what,
		  const struct fp_yaml_node **val);

/* ---- typed values (n NULL: leave *out at its default, return FP_OK) --- */

/* Any scalar, empty allowed; a null/absent optional leaves *out. */
int fp_sd_str(struct fp_sd *d, const struct fp_yaml_node *n, char **out);
/* A scalar that is not empty. */
int fp_sd_str_nonempty(struct fp_sd *d, const struct fp_yaml_node *n,
		       char **out);
/* A name made of the characters ok() accepts; descr names the form. */
int fp_sd_name(struct fp_sd *d, const struct fp_yaml_node *n,
	       int (*ok)(int c), const char *descr, char **out);
/* An env:NAME or file:PATH secret reference. */
int fp_sd_secret_ref(struct fp_sd *d, const struct fp_yaml_node *n,
		     char **out);
int fp_sd_duration(struct fp_sd *d, const struct fp_yaml_node *n,
		   int64_t *out);
int fp_sd_bool(struct fp_sd *d, const struct fp_yaml_node *n, int *out);
int fp_sd_number(struct fp_sd *d, const struct fp_yaml_node *n, double *out);
/* @brief Plain decimal notation, fully consumed, finite (no "inf", hex or
 *        blanks); the number rule of every typed value. @returns 0 or -1. */
int fp_sd_parse_number(const char *s, double *out);
/* A number in [lo, hi]. */
int fp_sd_number_range(struct fp_sd *d, const struct fp_yaml_node *n,
		       double lo, double hi, double *out);
int fp_sd_int(struct fp_sd *d, const struct fp_yaml_node *n, long long lo,
	      long long hi, long long *out);
int fp_sd_u64(struct fp_sd *d, const struct fp_yaml_node *n, uint64_t *out);
/* One of names (NULL-terminated); *out is the index. */
int fp_sd_enum(struct fp_sd *d, const struct fp_yaml_node *n,
	       const char *const *names, int *out);
/* A map of name -> scalar; null means empty. */
int fp_sd_kvlist(struct fp_sd *d, const struct fp_yaml_node *n,
		 const char *what, struct fp_kvlist *out);
/* A list of scalars; null means empty. */
int fp_sd_strlist(struct fp_sd *d, const struct fp_yaml_node *n,
		  const char *what, char ***out, size_t *nout);

/* ---- cleanup ---------------------------------------------------------- */

void fp_sd_kvlist_free(struct fp_kvlist *l);
void fp_sd_strv_free(char **v, size_t n);

/* @brief "a, b, c" of the keys of l into buf ("none" when empty). */
const char *fp_sd_kv_keys(const struct fp_kvlist *l, char *buf, size_t bufsz);

/* @brief Read path into a tree; FP_EIO when unreadable. */
int fp_sd_load_file(const char *path, struct fp_yaml_node **root,
		    struct fp_err *err);

#endif
