/*
 * fp_yaml_int.h - private to harness/spec: a small YAML node tree with
 * 1-based line/column marks, built with libyaml's event API.
 *
 * The decoders in fp_env.c / fp_scenario.c never see libyaml: they walk this
 * tree, so every semantic error can name the exact place of the value that
 * caused it. Anchors and aliases are rejected (an alias would make one value
 * appear at two places, and a mark could point at the wrong one); duplicate
 * map keys are rejected (YAML would silently keep one of them).
 */
#ifndef FP_YAML_INT_H
#define FP_YAML_INT_H

#include <stddef.h>

#include "harness/core/fp_error.h"

enum fp_yaml_kind {
	FP_YAML_SCALAR,
	FP_YAML_MAP,
	FP_YAML_SEQ,
};

struct fp_yaml_node {
	enum fp_yaml_kind kind;
	int line; /* 1-based */
	int col;  /* 1-based */
	/* scalar */
	char *str;   /* value; replaced in place by interpolation */
	char *raw;   /* the value as written when interpolation changed it */
	int plain;   /* unquoted: "", "~" and "null" then mean "nothing" */
	/* map: keys[i] -> vals[i]; seq: vals[i] */
	size_t n;
	struct fp_yaml_node **keys;
	struct fp_yaml_node **vals;
	int done;    /* interpolated already (set by the decoders) */
};

/*
 * @brief Parse text (the content of file) into a tree. The root is whatever
 *        the single document holds; an empty document is FP_ESPEC.
 * @param file used in messages only ("file:line:col: ...").
 * @returns FP_OK, FP_ESPEC (syntax, anchors, duplicate keys, several
 *          documents), FP_ENOMEM.
 */
int fp_yaml_parse(const char *file, const char *text, size_t len,
		  struct fp_yaml_node **out, struct fp_err *err);
void fp_yaml_free(struct fp_yaml_node *n);

/* @returns the value node for key in map, or NULL (also when map is not a
 *          map). */
const struct fp_yaml_node *fp_yaml_get(const struct fp_yaml_node *map,
				       const char *key);
/* @returns the key node for key (its mark), or NULL. */
const struct fp_yaml_node *fp_yaml_key(const struct fp_yaml_node *map,
				       const char *key);

/* @returns 1 for an unquoted empty, "~" or "null" scalar. */
int fp_yaml_is_null(const struct fp_yaml_node *n);

/*
 * @brief Describe a node for the "got ..." half of a message: a scalar as
 *        its quoted value (shortened, control characters escaped, plus the
 *        text as written when interpolation changed it), else "a map",
 *        "a list" or "nothing".
 * @returns buf.
 */
const char *fp_yaml_describe(const struct fp_yaml_node *n, char *buf,
			     size_t bufsz);

#endif
