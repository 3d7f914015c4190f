/*
 * fp_spec.c - the shared half of the spec module: key/value lookups of the
 * public header, and the decoding toolkit of fp_spec_int.h (errors with
 * marks, ${...} interpolation, typed scalar decoders).
 *
 * Decoders take the value node (NULL when the key is absent) and either fill
 * the output or report "file:line:col: expected X, got Y" at that node.
 */
#include "harness/spec/fp_spec_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_buf.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_secret.h"

/* ---- public lookups --------------------------------------------------- */

const struct fp_kv *fp_kv_find(const struct fp_kvlist *l, const char *key)
{
	if (!l || !key)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i].key && strcmp(l->items[i].key, key) == 0)
			return &l->items[i];
	return NULL;
}

const char *fp_kv_get(const struct fp_kvlist *l, const char *key)
{
	const struct fp_kv *kv = fp_kv_find(l, key);

	return kv ? kv->value : NULL;
}

/* ---- errors ----------------------------------------------------------- */

struct fp_mark fp_sd_mark(const struct fp_sd *d, const struct fp_yaml_node *n)
{
	struct fp_mark m = {d->file, n ? n->line : 0, n ? n->col : 0};

	return m;
}

static int vreport(struct fp_sd *d, const struct fp_mark *at,
		   const char *fmt, va_list ap)
{
	char what[FP_ERR_MSG_MAX];

	if (d->rc)
		return d->rc; /* keep the first error */
	vsnprintf(what, sizeof what, fmt, ap);
	d->rc = FP_ESPEC;
	if (at->line > 0)
		return fp_err_set(d->err, FP_ESPEC, "%s:%d:%d: %s", at->file,
				  at->line, at->col, what);
	return fp_err_set(d->err, FP_ESPEC, "%s: %s", at->file, what);
}

int fp_sd_err_at(struct fp_sd *d, const struct fp_mark *at, const char *fmt,
		 ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vreport(d, at, fmt, ap);
	va_end(ap);
	return rc;
}

int fp_sd_err(struct fp_sd *d, const struct fp_yaml_node *at,
	      const char *fmt, ...)
{
	struct fp_mark m = fp_sd_mark(d, at);
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vreport(d, &m, fmt, ap);
	va_end(ap);
	return rc;
}

int fp_sd_oom(struct fp_sd *d)
{
	if (d->rc)
		return d->rc;
	d->rc = FP_ENOMEM;
	return fp_err_set(d->err, FP_ENOMEM, "%s: out of memory while loading",
			  d->file);
}

/* ---- interpolation ---------------------------------------------------- */

/* Values are small; a cap stops a runaway expansion. */
#define INTERP_MAX (1024u * 1024u)

static int is_env_name(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

/* Look up a kvlist entry by a key that is not NUL-terminated. */
static const char *kv_getn(const struct fp_kvlist *l, const char *k, size_t n)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->items[i].key) == n &&
		    memcmp(l->items[i].key, k, n) == 0)
			return l->items[i].value;
	return NULL;
}

/* ${env:NAME} / ${env:NAME:-default}: the process environment wins over
 * env_file, so an operator can override one endpoint without editing it. */
static int interp_env(struct fp_sd *d, const char *in, size_t n,
		      const struct fp_mark *at, struct fp_buf *b)
{
	const char *dflt = NULL, *v;
	size_t name_n = n, dflt_n = 0;
	char name[256];

	for (size_t i = 0; i + 1 < n; i++) {
		if (in[i] == ':' && in[i + 1] == '-') {
			name_n = i;
			dflt = in + i + 2;
			dflt_n = n - i - 2;
			break;
		}
	}
	if (!is_env_name(in, name_n) || name_n >= sizeof name)
		return fp_sd_err_at(d, at,
				    "expected ${env:NAME} with NAME made of "
				    "letters, digits and _, got \"${env:%.*s}\"",
				    (int)(n > 64 ? 64 : n), in);
	memcpy(name, in, name_n);
	name[name_n] = '\0';
	v = getenv(name);
	if (!v)
		v = kv_getn(d->vars, in, name_n);
	if (v)
		return fp_buf_puts(b, v) ? fp_sd_oom(d) : FP_OK;
	if (dflt)
		return fp_buf_append(b, dflt, dflt_n) ? fp_sd_oom(d) : FP_OK;
	return fp_sd_err_at(d, at,
			    "expected environment variable %s to be set (in "
			    "the process environment or the env profile's "
			    "env_file; or write ${env:%s:-default}), got it "
			    "unset",
			    name, name);
}

static int interp_one(struct fp_sd *d, const char *in, size_t n,
		      const struct fp_mark *at, struct fp_buf *b)
{
	char known[256];
	const char *v;

	if (n > 4 && memcmp(in, "env:", 4) == 0)
		return interp_env(d, in + 4, n - 4, at, b);
	if (n > 7 && memcmp(in, "params.", 7) == 0) {
		if (!d->scenario)
			return fp_sd_err_at(d, at,
					    "expected ${env:...} or ${run.*} "
					    "in an env profile, got "
					    "\"${%.*s}\" (params exist only "
					    "in scenarios)",
					    (int)(n > 64 ? 64 : n), in);
		if (d->in_params)
			return fp_sd_err_at(d, at,
					    "expected a parameter value "
					    "without ${params.*} (parameters "
					    "may not reference other "
					    "parameters), got \"${%.*s}\"",
					    (int)(n > 64 ? 64 : n), in);
		v = kv_getn(d->params, in + 7, n - 7);
		if (!v)
			return fp_sd_err_at(d, at,
					    "expected a parameter declared "
					    "under params: (known: %s), got "
					    "\"${%.*s}\"",
					    fp_sd_kv_keys(d->params, known,
							  sizeof known),
					    (int)(n > 64 ? 64 : n), in);
		return fp_buf_puts(b, v) ? fp_sd_oom(d) : FP_OK;
	}
	if (n > 4 && memcmp(in, "obs.", 4) == 0) {
		if (!d->scenario)
			return fp_sd_err_at(d, at,
					    "expected ${env:...} or ${run.*} "
					    "in an env profile, got "
					    "\"${%.*s}\" (observables are "
					    "referenced by scenarios)",
					    (int)(n > 64 ? 64 : n), in);
		if (!d->obs) /* validating without an env: keep it */
			return fp_buf_printf(b, "${%.*s}", (int)n, in)
				       ? fp_sd_oom(d)
				       : FP_OK;
		v = kv_getn(d->obs, in + 4, n - 4);
		if (!v)
			return fp_sd_err_at(d, at,
					    "expected an observable bound by "
					    "the env profile (bound: %s), got "
					    "\"${%.*s}\" (unbound observable)",
					    fp_sd_kv_keys(d->obs, known,
							  sizeof known),
					    (int)(n > 64 ? 64 : n), in);
		return fp_buf_puts(b, v) ? fp_sd_oom(d) : FP_OK;
	}
	if (n > 4 && memcmp(in, "run.", 4) == 0) {
		/* The run loop's job (harness/run/runvars.c): only names it
		 * knows, so a typo fails here and not as a literal "${run.x}"
		 * sent to the platform. */
		if (!((n == 6 && memcmp(in + 4, "id", 2) == 0) ||
		      (n == 19 && memcmp(in + 4, "platform_run_id", 15) == 0)))
			return fp_sd_err_at(d, at,
					    "expected ${run.id} or "
					    "${run.platform_run_id}, got "
					    "\"${%.*s}\"",
					    (int)(n > 64 ? 64 : n), in);
		return fp_buf_printf(b, "${%.*s}", (int)n, in) ? fp_sd_oom(d)
							      : FP_OK;
	}
	return fp_sd_err_at(d, at,
			    "expected ${env:NAME}, ${params.NAME}, "
			    "${obs.NAME} or ${run.NAME} (write $${ for a "
			    "literal ${), got \"${%.*s}\"",
			    (int)(n > 64 ? 64 : n), in);
}

int fp_sd_interp(struct fp_sd *d, const char *s, const struct fp_mark *at,
		 char **out)
{
	struct fp_buf b = FP_BUF_INIT(INTERP_MAX);
	const char *p = s;

	*out = NULL;
	while (*p) {
		const char *dollar = strchr(p, '$');
		const char *close;

		if (!dollar) {
			if (fp_buf_puts(&b, p))
				goto oom;
			break;
		}
		if (fp_buf_append(&b, p, (size_t)(dollar - p)))
			goto oom;
		if (dollar[1] == '$' && dollar[2] == '{') { /* $${ -> ${ */
			/* ...except before "run.": the run loop expands
			 * ${run.*} later and undoes this escape itself. */
			if (fp_buf_puts(&b, strncmp(dollar + 3, "run.", 4) == 0
						    ? "$${"
						    : "${"))
				goto oom;
			p = dollar + 3;
			continue;
		}
		if (dollar[1] != '{') {
			if (fp_buf_puts(&b, "$"))
				goto oom;
			p = dollar + 1;
			continue;
		}
		close = strchr(dollar + 2, '}');
		if (!close) {
			fp_buf_release(&b);
			return fp_sd_err_at(d, at,
					    "expected \"}\" to close \"${\" "
					    "(write $${ for a literal ${), got "
					    "the end of the value \"%.64s\"",
					    s);
		}
		if (interp_one(d, dollar + 2, (size_t)(close - dollar - 2), at,
			       &b)) {
			fp_buf_release(&b);
			return d->rc;
		}
		p = close + 1;
	}
	*out = fp_buf_detach(&b);
	return *out ? FP_OK : fp_sd_oom(d);
oom:
	fp_buf_release(&b);
	return fp_sd_oom(d);
}

int fp_sd_interp_tree(struct fp_sd *d, struct fp_yaml_node *n)
{
	if (!n || n->done)
		return FP_OK;
	if (n->kind == FP_YAML_SCALAR) {
		struct fp_mark m = fp_sd_mark(d, n);
		char *v;

		n->done = 1;
		if (!strchr(n->str, '$'))
			return FP_OK;
		if (fp_sd_interp(d, n->str, &m, &v))
			return d->rc;
		if (strcmp(v, n->str) == 0) {
			free(v);
			return FP_OK;
		}
		n->raw = n->str;
		n->str = v;
		return FP_OK;
	}
	for (size_t i = 0; i < n->n; i++)
		if (fp_sd_interp_tree(d, n->vals[i]))
			return d->rc;
	n->done = 1;
	return FP_OK;
}

/* ---- structure -------------------------------------------------------- */

int fp_sd_want_map(struct fp_sd *d, const struct fp_yaml_node *n,
		   const char *what)
{
	char got[160];

	if (n && n->kind == FP_YAML_MAP)
		return FP_OK;
	return fp_sd_err(d, n, "expected a map for %s, got %s", what,
			 fp_yaml_describe(n, got, sizeof got));
}

int fp_sd_want_seq(struct fp_sd *d, const struct fp_yaml_node *n,
		   const char *what)
{
	char got[160];

	if (n && n->kind == FP_YAML_SEQ)
		return FP_OK;
	return fp_sd_err(d, n, "expected a list for %s, got %s", what,
			 fp_yaml_describe(n, got, sizeof got));
}

int fp_sd_check_keys(struct fp_sd *d, const struct fp_yaml_node *map,
		     const char *what, const char *const *allowed)
{
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->str;
		struct fp_buf list = FP_BUF_INIT(1024);
		int found = 0;

		for (size_t j = 0; allowed[j]; j++)
			if (strcmp(allowed[j], k) == 0)
				found = 1;
		if (found)
			continue;
		for (size_t j = 0; allowed[j]; j++)
			fp_buf_printf(&list, "%s%s", j ? ", " : "",
				      allowed[j]);
		fp_sd_err(d, map->keys[i],
			  "unknown key \"%.64s\" in %s (expected one of: %s)",
			  k, what, fp_buf_cstr(&list));
		fp_buf_release(&list);
		return d->rc;
	}
	return FP_OK;
}

int fp_sd_require(struct fp_sd *d, const struct fp_yaml_node *map,
		  const char *key, const char *what,
		  const struct fp_yaml_node **val)
{
	*val = fp_yaml_get(map, key);
	if (*val)
		return FP_OK;
	return fp_sd_err(d, map, "missing required key \"%s\" in %s", key,
			 what);
}

/* ---- typed values ----------------------------------------------------- */

/* A scalar that is not "nothing"; else "expected <what>, got ...". */
static int want_scalar(struct fp_sd *d, const struct fp_yaml_node *n,
		       const char *what)
{
	char got[160];

	if (n->kind == FP_YAML_SCALAR && !fp_yaml_is_null(n))
		return FP_OK;
	return fp_sd_err(d, n, "expected %s, got %s", what,
			 fp_yaml_describe(n, got, sizeof got));
}

static int dup_into(struct fp_sd *d, const char *s, char **out)
{
	char *v = strdup(s);

	if (!v)
		return fp_sd_oom(d);
	free(*out); /* replaces a default */
	*out = v;
	return FP_OK;
}

int fp_sd_str(struct fp_sd *d, const struct fp_yaml_node *n, char **out)
{
	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "a string"))
		return d->rc;
	return dup_into(d, n->str, out);
}

int fp_sd_str_nonempty(struct fp_sd *d, const struct fp_yaml_node *n,
		       char **out)
{
	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "a non-empty string"))
		return d->rc;
	if (!n->str[0])
		return fp_sd_err(d, n, "expected a non-empty string, got \"\"");
	return dup_into(d, n->str, out);
}

int fp_sd_name(struct fp_sd *d, const struct fp_yaml_node *n,
	       int (*ok)(int c), const char *descr, char **out)
{
	char got[160];
	int good;

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, descr))
		return d->rc;
	good = n->str[0] != '\0';
	for (const char *p = n->str; good && *p; p++)
		good = ok((unsigned char)*p);
	if (!good)
		return fp_sd_err(d, n, "expected %s, got %s", descr,
				 fp_yaml_describe(n, got, sizeof got));
	return dup_into(d, n->str, out);
}

int fp_sd_secret_ref(struct fp_sd *d, const struct fp_yaml_node *n,
		     char **out)
{
	if (!n)
		return FP_OK;
	if (n->kind != FP_YAML_SCALAR || fp_yaml_is_null(n))
		return want_scalar(d, n, "an env:NAME or file:PATH reference");
	/* Never echo the value: it may be the secret itself. */
	if (!fp_secret_is_ref(n->str))
		return fp_sd_err(d, n,
				 "expected an env:NAME or file:PATH reference "
				 "(secrets must be env:NAME or file:PATH "
				 "references, never inline), got an inline "
				 "value");
	return dup_into(d, n->str, out);
}

int fp_sd_duration(struct fp_sd *d, const struct fp_yaml_node *n,
		   int64_t *out)
{
	const char *what = "a duration like 250ms, 10s, 2m";
	char got[160];
	int64_t v;

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, what))
		return d->rc;
	if (fp_duration_parse(n->str, &v))
		return fp_sd_err(d, n, "expected %s, got %s", what,
				 fp_yaml_describe(n, got, sizeof got));
	*out = v;
	return FP_OK;
}

int fp_sd_bool(struct fp_sd *d, const struct fp_yaml_node *n, int *out)
{
	char got[160];

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "true or false"))
		return d->rc;
	if (strcmp(n->str, "true") == 0)
		*out = 1;
	else if (strcmp(n->str, "false") == 0)
		*out = 0;
	else
		return fp_sd_err(d, n, "expected true or false, got %s",
				 fp_yaml_describe(n, got, sizeof got));
	return FP_OK;
}

/* strtod alone would take "0x1p3", "inf" and leading blanks: allow only
 * plain decimal notation, then require it to consume everything. */
int fp_sd_parse_number(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int fp_sd_number(struct fp_sd *d, const struct fp_yaml_node *n, double *out)
{
	char got[160];
	double v;

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "a number"))
		return d->rc;
	if (fp_sd_parse_number(n->str, &v))
		return fp_sd_err(d, n, "expected a number, got %s",
				 fp_yaml_describe(n, got, sizeof got));
	*out = v;
	return FP_OK;
}

int fp_sd_number_range(struct fp_sd *d, const struct fp_yaml_node *n,
		       double lo, double hi, double *out)
{
	char got[160];
	double v;

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "a number"))
		return d->rc;
	if (fp_sd_parse_number(n->str, &v) || v < lo || v > hi)
		return fp_sd_err(d, n, "expected a number from %g to %g, got %s",
				 lo, hi, fp_yaml_describe(n, got, sizeof got));
	*out = v;
	return FP_OK;
}

int fp_sd_int(struct fp_sd *d, const struct fp_yaml_node *n, long long lo,
	      long long hi, long long *out)
{
	char got[160];
	const char *s;
	char *end;
	long long v;

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "an integer"))
		return d->rc;
	s = n->str;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (!(isdigit((unsigned char)s[0]) ||
	      (s[0] == '-' && isdigit((unsigned char)s[1]))) ||
	    errno || *end || v < lo || v > hi)
		return fp_sd_err(d, n,
				 "expected an integer from %lld to %lld, got %s",
				 lo, hi, fp_yaml_describe(n, got, sizeof got));
	*out = v;
	return FP_OK;
}

int fp_sd_u64(struct fp_sd *d, const struct fp_yaml_node *n, uint64_t *out)
{
	char got[160];
	unsigned long long v;
	char *end;

	if (!n)
		return FP_OK;
	if (want_scalar(d, n, "an unsigned integer"))
		return d->rc;
	errno = 0;
	v = strtoull(n->str, &end, 10);
	/* strtoull accepts "-1" (it wraps): insist on digits only. */
	if (!isdigit((unsigned char)n->str[0]) || errno || *end)
		return fp_sd_err(d, n, "expected an unsigned integer, got %s",
				 fp_yaml_describe(n, got, sizeof got));
	*out = (uint64_t)v;
	return FP_OK;
}

int fp_sd_enum(struct fp_sd *d, const struct fp_yaml_node *n,
	       const char *const *names, int *out)
{
	struct fp_buf list = FP_BUF_INIT(512);
	char got[160];

	if (!n)
		return FP_OK;
	if (n->kind == FP_YAML_SCALAR && !fp_yaml_is_null(n)) {
		for (int i = 0; names[i]; i++) {
			if (strcmp(names[i], n->str) == 0) {
				*out = i;
				return FP_OK;
			}
		}
	}
	for (int i = 0; names[i]; i++)
		fp_buf_printf(&list, "%s%s", i ? ", " : "", names[i]);
	fp_sd_err(d, n, "expected one of %s, got %s", fp_buf_cstr(&list),
		  fp_yaml_describe(n, got, sizeof got));
	fp_buf_release(&list);
	return d->rc;
}

int fp_sd_kvlist(struct fp_sd *d, const struct fp_yaml_node *n,
		 const char *what, struct fp_kvlist *out)
{
	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, what))
		return d->rc;
	if (n->n == 0)
		return FP_OK;
	out->items = calloc(n->n, sizeof *out->items);
	if (!out->items)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		struct fp_kv *kv = &out->items[out->n];

		if (want_scalar(d, n->vals[i], "a scalar value"))
			return d->rc;
		kv->key = strdup(n->keys[i]->str);
		kv->value = strdup(n->vals[i]->str);
		kv->mark = fp_sd_mark(d, n->vals[i]);
		out->n++; /* counted before the check so free sees it */
		if (!kv->key || !kv->value)
			return fp_sd_oom(d);
	}
	return FP_OK;
}

int fp_sd_strlist(struct fp_sd *d, const struct fp_yaml_node *n,
		  const char *what, char ***out, size_t *nout)
{
	char **v;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_seq(d, n, what))
		return d->rc;
	/* One extra slot keeps the array NULL-terminated (argv needs it). */
	v = calloc(n->n + 1, sizeof *v);
	if (!v)
		return fp_sd_oom(d);
	*out = v;
	*nout = n->n;
	for (size_t i = 0; i < n->n; i++) {
		if (want_scalar(d, n->vals[i], "a string"))
			return d->rc;
		v[i] = strdup(n->vals[i]->str);
		if (!v[i])
			return fp_sd_oom(d);
	}
	return FP_OK;
}

/* ---- cleanup ---------------------------------------------------------- */

void fp_sd_kvlist_free(struct fp_kvlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void fp_sd_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

const char *fp_sd_kv_keys(const struct fp_kvlist *l, char *buf, size_t bufsz)
{
	size_t o = 0;

	if (!bufsz)
		return buf;
	buf[0] = '\0';
	if (!l || l->n == 0) {
		snprintf(buf, bufsz, "none");
		return buf;
	}
	for (size_t i = 0; i < l->n && o < bufsz; i++) {
		int w = snprintf(buf + o, bufsz - o, "%s%s", i ? ", " : "",
				 l->items[i].key);

		if (w < 0)
			break;
		o += (size_t)w;
	}
	return buf;
}

int fp_sd_load_file(const char *path, struct fp_yaml_node **root,
		    struct fp_err *err)
{
	struct fp_err e2;
	char *text;
	size_t len;
	int rc;

	*root = NULL;
	rc = fp_read_file(path, FP_SPEC_MAX_FILE, &text, &len, &e2);
	if (rc)
		return fp_err_set(err, rc == FP_ENOMEM ? FP_ENOMEM : FP_EIO,
				  "%s", e2.msg);
	rc = fp_yaml_parse(path, text, len, root, err);
	free(text);
	return rc;
}
