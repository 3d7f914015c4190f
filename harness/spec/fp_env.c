/*
 * fp_env.c - env profile v1 (fpdrill: env/v1): load, validate, free.
 *
 * The profile binds a scenario's abstract names to one concrete platform:
 * endpoints, topics, groups, tables, the HTTP calls / commands behind each
 * action, the samplers whose series drills observe, and the safety limits
 * (scenario allowlist, blast radius) the run guard enforces. env_file (KEY=VALUE lines written by `envs/local/stack up`)
 * is read first because every other value may say ${env:KEY}.
 */
#include "harness/spec/fp_spec_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"

/* Small enough for any env_file; keeps a wrong path from being slurped. */
#define ENV_FILE_MAX (1024u * 1024u)

static const char *const class_names[] = {"local", "dev", "staging",
					  "production", NULL};

const char *fp_env_class_name(enum fp_env_class c)
{
	return (unsigned)c <= FP_ENV_PRODUCTION ? class_names[c] : "unknown";
}

const struct fp_action *fp_env_action(const struct fp_env *env,
				      const char *name)
{
	if (!env || !name)
		return NULL;
	for (size_t i = 0; i < env->n_actions; i++)
		if (env->actions[i].name &&
		    strcmp(env->actions[i].name, name) == 0)
			return &env->actions[i];
	return NULL;
}

static void action_free(struct fp_action *a)
{
	free(a->name);
	free(a->method);
	free(a->url);
	free(a->body);
	fp_sd_kvlist_free(&a->headers);
	fp_sd_strv_free(a->argv, a->argc);
}

static void sampler_free(struct fp_sampler *sp)
{
	free(sp->name);
	free(sp->group);
	free(sp->topic);
	free(sp->query);
	free(sp->url);
	free(sp->metric);
}

void fp_env_free(struct fp_env *env)
{
	if (!env)
		return;
	for (size_t i = 0; i < env->n_samplers; i++)
		sampler_free(&env->samplers[i]);
	free(env->samplers);
	fp_sd_strv_free(env->safety.allow_scenarios,
			env->safety.n_allow_scenarios);
	for (size_t i = 0; i < env->n_actions; i++)
		action_free(&env->actions[i]);
	free(env->actions);
	free(env->name);
	free(env->platform_run_id);
	free(env->event_class);
	free(env->runtime_lane);
	free(env->ingress_url);
	free(env->kafka_bootstrap);
	fp_sd_kvlist_free(&env->kafka_props);
	free(env->pg_conninfo);
	free(env->pg_password_ref);
	fp_sd_kvlist_free(&env->observables);
	free(env->out_dir);
	free(env->s3_endpoint);
	free(env->s3_bucket);
	free(env->s3_region);
	free(env->s3_prefix);
	free(env->s3_access_key_ref);
	free(env->s3_secret_key_ref);
	free(env->signing_key_ref);
	fp_sd_kvlist_free(&env->env_vars);
	/* path and dir last: marks in the lists above borrow path. */
	free(env->path);
	free(env->dir);
	free(env);
}

/* ---- env_file --------------------------------------------------------- */

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Set key=value in l, replacing an earlier value (the last line wins, as in
 * a shell). */
static int vars_set(struct fp_sd *d, struct fp_kvlist *l, const char *key,
		    const char *value, struct fp_mark mark)
{
	struct fp_kv *items;
	char *v = strdup(value);

	if (!v)
		return fp_sd_oom(d);
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].key, key) == 0) {
			free(l->items[i].value);
			l->items[i].value = v;
			return FP_OK;
		}
	}
	items = realloc(l->items, (l->n + 1) * sizeof *items);
	if (!items) {
		free(v);
		return fp_sd_oom(d);
	}
	l->items = items;
	items[l->n].key = strdup(key);
	items[l->n].value = v;
	items[l->n].mark = mark;
	l->n++;
	return items[l->n - 1].key ? FP_OK : fp_sd_oom(d);
}

/* Parse KEY=VALUE lines; "#" comments, blank lines and an "export " prefix
 * are allowed; one pair of matching quotes around VALUE is removed. */
static int parse_env_file(struct fp_sd *d, const char *shown, char *text,
			  struct fp_mark mark, struct fp_kvlist *out)
{
	int lineno = 0;
	char *save = NULL;

	for (char *line = text; line; line = save) {
		char *nl = strchr(line, '\n'), *eq, *key, *val;
		size_t vlen;

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		if (strncmp(line, "export ", 7) == 0)
			line = trim(line + 7);
		eq = strchr(line, '=');
		if (eq)
			*eq = '\0';
		key = eq ? trim(line) : line;
		if (!eq || !*key || isdigit((unsigned char)*key) ||
		    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
				"uvwxyz0123456789_") != strlen(key)) {
			struct fp_mark m = {shown, lineno, 1};

			if (eq)
				*eq = '=';
			return fp_sd_err_at(d, &m,
					    "expected KEY=VALUE (or a # "
					    "comment), got \"%.64s\"",
					    line);
		}
		val = trim(eq + 1);
		vlen = strlen(val);
		if (vlen >= 2 && (val[0] == '"' || val[0] == '\'') &&
		    val[vlen - 1] == val[0]) {
			val[vlen - 1] = '\0';
			val++;
		}
		if (vars_set(d, out, key, val, mark))
			return d->rc;
	}
	return FP_OK;
}

static int load_env_file(struct fp_sd *d, struct fp_env *env,
			 struct fp_yaml_node *node)
{
	struct fp_mark m = fp_sd_mark(d, node);
	char *rel = NULL, *text = NULL;
	char path[4096];
	struct fp_err e2;
	int rc;

	/* Only the process environment can feed env_file's own path. */
	if (fp_sd_interp_tree(d, node))
		return d->rc;
	if (fp_sd_str_nonempty(d, node, &rel))
		return d->rc;
	if (fp_path_join(path, sizeof path, env->dir, rel)) {
		free(rel);
		return fp_sd_err_at(d, &m, "expected a shorter env_file path");
	}
	rc = fp_read_file(path, ENV_FILE_MAX, &text, NULL, &e2);
	if (rc == FP_ENOTFOUND) {
		fp_sd_err_at(d, &m,
			     "expected env_file \"%s\" to exist (resolved to "
			     "%s), got no such file; start the local stack "
			     "with `envs/local/stack up`, which writes it",
			     rel, path);
		free(rel);
		return d->rc;
	}
	if (rc) {
		fp_sd_err_at(d, &m, "expected a readable env_file, got %s",
			     e2.msg);
		free(rel);
		return d->rc;
	}
	free(rel);
	/* Messages about a line of env_file name env_file itself; the stored
	 * marks point at the env_file key (env->path outlives the list). */
	parse_env_file(d, path, text, m, &env->env_vars);
	free(text);
	return d->rc;
}

/* ---- actions ---------------------------------------------------------- */

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH",
				      NULL};

static int decode_http(struct fp_sd *d, const struct fp_yaml_node *h,
		       struct fp_action *a, const char *what)
{
	static const char *const keys[] = {"method", "url", "body", "headers",
					   "expect", "timeout", NULL};
	const struct fp_yaml_node *v;
	long long expect = 200;
	int m = 1; /* POST */

	if (fp_sd_want_map(d, h, what) || fp_sd_check_keys(d, h, what, keys))
		return d->rc;
	a->kind = FP_ACTION_HTTP;
	if (fp_sd_enum(d, fp_yaml_get(h, "method"), methods, &m))
		return d->rc;
	a->method = strdup(methods[m]);
	if (!a->method)
		return fp_sd_oom(d);
	if (fp_sd_require(d, h, "url", what, &v) ||
	    fp_sd_str_nonempty(d, v, &a->url) ||
	    fp_sd_str(d, fp_yaml_get(h, "body"), &a->body) ||
	    fp_sd_kvlist(d, fp_yaml_get(h, "headers"), "headers",
			 &a->headers))
		return d->rc;
	v = fp_yaml_get(h, "expect");
	if (v) {
		char got[160];

		if (fp_sd_int(d, v, 0, 599, &expect))
			return d->rc;
		if (expect > 0 && expect < 100)
			return fp_sd_err(d, v,
					 "expected an HTTP status from 100 to "
					 "599 (or 0 for any 2xx), got %s",
					 fp_yaml_describe(v, got, sizeof got));
	}
	a->expect_status = (int)expect;
	return fp_sd_duration(d, fp_yaml_get(h, "timeout"), &a->timeout_ns);
}

static int decode_command(struct fp_sd *d, const struct fp_yaml_node *c,
			  struct fp_action *a, const char *what)
{
	static const char *const keys[] = {"argv", "timeout", NULL};
	const struct fp_yaml_node *v;
	char got[160];

	if (fp_sd_want_map(d, c, what) || fp_sd_check_keys(d, c, what, keys))
		return d->rc;
	a->kind = FP_ACTION_COMMAND;
	if (fp_sd_require(d, c, "argv", what, &v))
		return d->rc;
	if (v->kind != FP_YAML_SEQ || v->n == 0)
		return fp_sd_err(d, v,
				 "expected a non-empty list for argv "
				 "([program, arg, ...]), got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_strlist(d, v, "argv", &a->argv, &a->argc))
		return d->rc;
	return fp_sd_duration(d, fp_yaml_get(c, "timeout"), &a->timeout_ns);
}

static int action_name_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

static int decode_actions(struct fp_sd *d, struct fp_env *env,
			  const struct fp_yaml_node *n)
{
	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "actions"))
		return d->rc;
	if (n->n == 0)
		return FP_OK;
	env->actions = calloc(n->n, sizeof *env->actions);
	if (!env->actions)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		static const char *const keys[] = {"http", "command", NULL};
		struct fp_action *a = &env->actions[i];
		const struct fp_yaml_node *an = n->vals[i], *h, *c;
		char what[160];

		env->n_actions++;
		a->timeout_ns = 30 * FP_NS_PER_S;
		a->expect_status = 200;
		a->mark = fp_sd_mark(d, an);
		if (fp_sd_name(d, n->keys[i], action_name_char,
			       "an action name of letters, digits, '.', '_' "
			       "and '-'",
			       &a->name))
			return d->rc;
		snprintf(what, sizeof what, "action \"%s\"", a->name);
		if (fp_sd_want_map(d, an, what) ||
		    fp_sd_check_keys(d, an, what, keys))
			return d->rc;
		h = fp_yaml_get(an, "http");
		c = fp_yaml_get(an, "command");
		if (!h == !c)
			return fp_sd_err(d, an,
					 "expected exactly one of http or "
					 "command in %s, got %s",
					 what, h ? "both" : "neither");
		snprintf(what, sizeof what, "action \"%s\" %s", a->name,
			 h ? "http" : "command");
		if (h ? decode_http(d, h, a, what)
		      : decode_command(d, c, a, what))
			return d->rc;
	}
	return FP_OK;
}

/* ---- samplers ----------------------------------------------------------- */

/* The implicit series every run samples; no profile may redefine it. */
#define RESERVED_SAMPLER "decision_group_lag"
/* Sampler names become series names ("<name>.latency_ms" for http) in
 * samples.tsv and report.json; the cap keeps them readable. */
#define SAMPLER_NAME_MAX 64

static int sampler_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || isdigit(c) || c == '_' || c == '.';
}

/* Prometheus metric selector: a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*),
 * optionally followed by {label="value",...}. @returns 1 when well formed. */
static int metric_ok(const char *m)
{
	const char *p = m;

	if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
		return 0;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	if (!*p)
		return 1;
	if (*p++ != '{')
		return 0;
	for (;;) {
		if (!(isalpha((unsigned char)*p) || *p == '_'))
			return 0;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if (*p++ != '=' || *p++ != '"')
			return 0;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		if (*p++ != '"')
			return 0;
		if (*p == ',') {
			p++;
			continue;
		}
		return p[0] == '}' && p[1] == '\0';
	}
}

static int decode_sampler_kind(struct fp_sd *d, const struct fp_yaml_node *an,
			       struct fp_sampler *sp, const char *what)
{
	static const char *const kinds[] = {"kafka_lag", "sql", "http",
					    "prometheus", NULL};
	static const char *const k_lag[] = {"group", "topic", NULL};
	static const char *const k_sql[] = {"query", NULL};
	static const char *const k_http[] = {"url", "expect", "timeout", NULL};
	static const char *const k_prom[] = {"url", "metric", "timeout", NULL};
	const struct fp_yaml_node *k = NULL, *v;
	char w[160], got[160];
	int found = -1;

	if (fp_sd_want_map(d, an, what) || fp_sd_check_keys(d, an, what, kinds))
		return d->rc;
	for (int i = 0; kinds[i]; i++) {
		if (!fp_yaml_get(an, kinds[i]))
			continue;
		if (found >= 0)
			return fp_sd_err(d, an,
					 "expected exactly one of kafka_lag, "
					 "sql, http, prometheus in %s, got "
					 "both %s and %s",
					 what, kinds[found], kinds[i]);
		found = i;
		k = fp_yaml_get(an, kinds[i]);
	}
	if (found < 0)
		return fp_sd_err(d, an,
				 "expected exactly one of kafka_lag, sql, "
				 "http, prometheus in %s, got none",
				 what);
	sp->kind = (enum fp_sampler_kind)found;
	snprintf(w, sizeof w, "%s %s", what, kinds[found]);
	if (fp_sd_want_map(d, k, w))
		return d->rc;
	switch (sp->kind) {
	case FP_SAMPLER_KAFKA_LAG:
		if (fp_sd_check_keys(d, k, w, k_lag) ||
		    fp_sd_require(d, k, "group", w, &v) ||
		    fp_sd_str_nonempty(d, v, &sp->group) ||
		    fp_sd_require(d, k, "topic", w, &v) ||
		    fp_sd_str_nonempty(d, v, &sp->topic))
			return d->rc;
		break;
	case FP_SAMPLER_SQL:
		if (fp_sd_check_keys(d, k, w, k_sql) ||
		    fp_sd_require(d, k, "query", w, &v) ||
		    fp_sd_str_nonempty(d, v, &sp->query))
			return d->rc;
		break;
	case FP_SAMPLER_HTTP: {
		long long expect = 200;

		if (fp_sd_check_keys(d, k, w, k_http) ||
		    fp_sd_require(d, k, "url", w, &v) ||
		    fp_sd_str_nonempty(d, v, &sp->url) ||
		    fp_sd_int(d, fp_yaml_get(k, "expect"), 100, 599, &expect) ||
		    fp_sd_duration(d, fp_yaml_get(k, "timeout"),
				   &sp->timeout_ns))
			return d->rc;
		sp->expect_status = (int)expect;
		break;
	}
	case FP_SAMPLER_PROMETHEUS:
		if (fp_sd_check_keys(d, k, w, k_prom) ||
		    fp_sd_require(d, k, "url", w, &v) ||
		    fp_sd_str_nonempty(d, v, &sp->url) ||
		    fp_sd_require(d, k, "metric", w, &v) ||
		    fp_sd_str_nonempty(d, v, &sp->metric) ||
		    fp_sd_duration(d, fp_yaml_get(k, "timeout"),
				   &sp->timeout_ns))
			return d->rc;
		if (!metric_ok(sp->metric))
			return fp_sd_err(d, v,
					 "expected a Prometheus metric name "
					 "with an optional {label=\"value\","
					 "...} matcher, got %s",
					 fp_yaml_describe(v, got, sizeof got));
		break;
	}
	v = fp_yaml_get(k, "timeout");
	if (v && sp->timeout_ns <= 0)
		return fp_sd_err(d, v, "expected a timeout above 0, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	return FP_OK;
}

/* "<http sampler>.latency_ms" is a derived series: no sampler may take
 * that name, or two series would be written under it. */
static int check_latency_clash(struct fp_sd *d, const struct fp_env *env,
			       const struct fp_yaml_node *n)
{
	for (size_t i = 0; i < env->n_samplers; i++) {
		const struct fp_sampler *a = &env->samplers[i];
		size_t al = strlen(a->name);

		if (a->kind != FP_SAMPLER_HTTP)
			continue;
		for (size_t j = 0; j < env->n_samplers; j++) {
			const char *b = env->samplers[j].name;

			if (strncmp(b, a->name, al) == 0 &&
			    strcmp(b + al, ".latency_ms") == 0) {
				const struct fp_yaml_node *at =
					fp_yaml_key(n, b);

				return fp_sd_err(d, at ? at : n,
						 "expected a sampler name "
						 "that is not the latency "
						 "series of http sampler "
						 "\"%s\", got \"%s\"",
						 a->name, b);
			}
		}
	}
	return FP_OK;
}

static int decode_samplers(struct fp_sd *d, struct fp_env *env,
			   const struct fp_yaml_node *n)
{
	const struct fp_yaml_node *every;
	char got[160];

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "samplers"))
		return d->rc;
	every = fp_yaml_get(n, "every");
	if (every) {
		if (fp_sd_duration(d, every, &env->sample_every_ns))
			return d->rc;
		if (env->sample_every_ns < 50 * FP_NS_PER_MS ||
		    env->sample_every_ns > 10 * FP_NS_PER_S)
			return fp_sd_err(d, every,
					 "expected a sample period from 50ms "
					 "to 10s, got %s",
					 fp_yaml_describe(every, got,
							  sizeof got));
	}
	if (n->n - (every ? 1 : 0) == 0)
		return FP_OK;
	env->samplers = calloc(n->n, sizeof *env->samplers);
	if (!env->samplers)
		return fp_sd_oom(d);
	for (size_t i = 0; i < n->n; i++) {
		const struct fp_yaml_node *kn = n->keys[i];
		struct fp_sampler *sp;
		char what[160];

		if (strcmp(kn->str, "every") == 0)
			continue;
		sp = &env->samplers[env->n_samplers++];
		sp->expect_status = 200;
		sp->timeout_ns = 2 * FP_NS_PER_S;
		sp->mark = fp_sd_mark(d, n->vals[i]);
		if (fp_sd_name(d, kn, sampler_name_char,
			       "a sampler name of a-z, 0-9, '_' and '.'",
			       &sp->name))
			return d->rc;
		if (strlen(sp->name) > SAMPLER_NAME_MAX)
			return fp_sd_err(d, kn,
					 "expected a sampler name of at most "
					 "%d characters, got %s",
					 SAMPLER_NAME_MAX,
					 fp_yaml_describe(kn, got, sizeof got));
		if (strcmp(sp->name, RESERVED_SAMPLER) == 0)
			return fp_sd_err(d, kn,
					 "expected a sampler name other than "
					 "\"" RESERVED_SAMPLER "\" (reserved: "
					 "the harness always samples it from "
					 "observables decision_group and "
					 "traffic_topic), got it");
		snprintf(what, sizeof what, "sampler \"%s\"", sp->name);
		if (decode_sampler_kind(d, n->vals[i], sp, what))
			return d->rc;
	}
	return check_latency_clash(d, env, n);
}

/* ---- safety ------------------------------------------------------------- */

static int scenario_id_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/* A share in (0, 1]; absent leaves 0 (no limit). */
static int decode_share(struct fp_sd *d, const struct fp_yaml_node *n,
			double *out)
{
	char got[160];

	if (!n)
		return FP_OK;
	if (fp_sd_number(d, n, out))
		return d->rc;
	if (!(*out > 0 && *out <= 1))
		return fp_sd_err(d, n,
				 "expected a share above 0 and at most 1, "
				 "got %s",
				 fp_yaml_describe(n, got, sizeof got));
	return FP_OK;
}

static int decode_safety(struct fp_sd *d, struct fp_env *env,
			 const struct fp_yaml_node *n)
{
	static const char *const keys[] = {
		"allow_scenarios",     "max_rate",           "max_duration",
		"max_partition_share", "max_instance_share", NULL};
	struct fp_safety *s = &env->safety;
	const struct fp_yaml_node *v;
	char got[160];

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "safety") ||
	    fp_sd_check_keys(d, n, "safety", keys))
		return d->rc;
	v = fp_yaml_get(n, "allow_scenarios");
	if (fp_sd_strlist(d, v, "safety.allow_scenarios", &s->allow_scenarios,
			  &s->n_allow_scenarios))
		return d->rc;
	for (size_t i = 0; i < s->n_allow_scenarios; i++) {
		char *tmp = NULL;

		if (fp_sd_name(d, v->vals[i], scenario_id_char,
			       "a drill id like DR-02 (letters, digits, '.', "
			       "'_', '-')",
			       &tmp))
			return d->rc;
		free(tmp);
	}
	v = fp_yaml_get(n, "max_rate");
	if (fp_sd_number(d, v, &s->max_rate))
		return d->rc;
	if (v && !(s->max_rate > 0))
		return fp_sd_err(d, v,
				 "expected a rate above 0 (events per second, "
				 "bursts included), got %s",
				 fp_yaml_describe(v, got, sizeof got));
	v = fp_yaml_get(n, "max_duration");
	if (fp_sd_duration(d, v, &s->max_duration_ns))
		return d->rc;
	if (v && s->max_duration_ns <= 0)
		return fp_sd_err(d, v, "expected a duration above 0, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (decode_share(d, fp_yaml_get(n, "max_partition_share"),
			 &s->max_partition_share) ||
	    decode_share(d, fp_yaml_get(n, "max_instance_share"),
			 &s->max_instance_share))
		return d->rc;
	return FP_OK;
}

/* ---- sections --------------------------------------------------------- */

static int decode_identity(struct fp_sd *d, struct fp_env *env,
			   const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"platform_run_id", "event_class",
					   "runtime_lane", NULL};

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "identity") ||
	    fp_sd_check_keys(d, n, "identity", keys))
		return d->rc;
	if (fp_sd_str_nonempty(d, fp_yaml_get(n, "platform_run_id"),
			       &env->platform_run_id))
		return d->rc;
	if (env->platform_run_id &&
	    strstr(env->platform_run_id, "${run.platform_run_id}"))
		return fp_sd_err(d, fp_yaml_get(n, "platform_run_id"),
				    "expected a platform_run_id that does not "
				    "reference itself (use ${run.id}), got "
				    "\"%s\"",
				    env->platform_run_id);
	if (
	    fp_sd_str_nonempty(d, fp_yaml_get(n, "event_class"),
			       &env->event_class) ||
	    fp_sd_str_nonempty(d, fp_yaml_get(n, "runtime_lane"),
			       &env->runtime_lane))
		return d->rc;
	return FP_OK;
}

static int kv_append(struct fp_sd *d, struct fp_kvlist *l, const char *key,
		     const char *value, const struct fp_yaml_node *at)
{
	struct fp_kv *items = realloc(l->items, (l->n + 1) * sizeof *items);

	if (!items)
		return fp_sd_oom(d);
	l->items = items;
	items[l->n].key = strdup(key);
	items[l->n].value = strdup(value);
	items[l->n].mark = fp_sd_mark(d, at);
	if (!items[l->n].key || !items[l->n].value) {
		free(items[l->n].key);
		free(items[l->n].value);
		return fp_sd_oom(d);
	}
	l->n++;
	return FP_OK;
}

/* A file: reference relative to the profile, made absolute: the Kafka token
 * callback resolves it later, with no profile directory at hand. */
static int abs_ref(struct fp_sd *d, const struct fp_env *env, char **ref)
{
	char *abs;
	size_t n;

	if (!*ref || strncmp(*ref, "file:", 5) != 0 || (*ref)[5] == '/')
		return FP_OK;
	n = strlen(env->dir) + strlen(*ref) + 2;
	abs = malloc(n);
	if (!abs)
		return fp_sd_oom(d);
	snprintf(abs, n, "file:%s/%s", env->dir, *ref + 5);
	free(*ref);
	*ref = abs;
	return FP_OK;
}

/*
 * target.kafka.aws_msk_iam: {region, access_key_id, secret_access_key,
 * session_token} (references; defaults are the standard AWS_* variables)
 * becomes librdkafka properties: SASL_SSL unless set, OAUTHBEARER, and the
 * block in sasl.oauthbearer.config for the token callback (see fp_kafka.h).
 */
static int decode_msk_iam(struct fp_sd *d, struct fp_env *env,
			  const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"region", "access_key_id",
					   "secret_access_key",
					   "session_token", NULL};
	char *region = NULL, *refs[3] = {NULL, NULL, NULL}, cfg[4096];
	static const char *const defaults[3] = {"env:AWS_ACCESS_KEY_ID",
						"env:AWS_SECRET_ACCESS_KEY",
						"env:AWS_SESSION_TOKEN"};
	const struct fp_yaml_node *v;
	int rc = FP_OK, len;

	if (!n)
		return FP_OK;
	if (fp_sd_want_map(d, n, "target.kafka.aws_msk_iam") ||
	    fp_sd_check_keys(d, n, "target.kafka.aws_msk_iam", keys) ||
	    fp_sd_require(d, n, "region", "target.kafka.aws_msk_iam", &v) ||
	    fp_sd_str_nonempty(d, v, &region))
		return d->rc;
	for (size_t i = 0; i < env->kafka_props.n; i++) {
		const struct fp_kv *kv = &env->kafka_props.items[i];

		if (strcmp(kv->key, "sasl.mechanism") == 0 ||
		    strcmp(kv->key, "sasl.mechanisms") == 0 ||
		    strcmp(kv->key, "sasl.oauthbearer.config") == 0) {
			rc = fp_sd_err_at(d, &kv->mark,
					  "expected no %s in target.kafka."
					  "properties when aws_msk_iam is set "
					  "(it sets SASL OAUTHBEARER itself)",
					  kv->key);
			goto out;
		}
	}
	if (strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    strlen(region)) {
		rc = fp_sd_err(d, v, "expected an AWS region like eu-west-2, "
				     "got \"%s\"", region);
		goto out;
	}
	if (fp_sd_secret_ref(d, fp_yaml_get(n, "access_key_id"), &refs[0]) ||
	    fp_sd_secret_ref(d, fp_yaml_get(n, "secret_access_key"),
			     &refs[1]) ||
	    fp_sd_secret_ref(d, fp_yaml_get(n, "session_token"), &refs[2])) {
		rc = d->rc;
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if ((!refs[i] && !(refs[i] = strdup(defaults[i]))) ||
		    abs_ref(d, env, &refs[i])) {
			rc = fp_sd_oom(d);
			goto out;
		}
	len = snprintf(cfg, sizeof cfg,
		       FP_MSK_IAM_TAG " region=%s access_key_id=%s "
				      "secret_access_key=%s session_token=%s",
		       region, refs[0], refs[1], refs[2]);
	if (len < 0 || (size_t)len >= sizeof cfg || strpbrk(refs[0], " ") ||
	    strpbrk(refs[1], " ") || strpbrk(refs[2], " ")) {
		rc = fp_sd_err(d, n, "expected references without spaces, "
				     "shorter than 1 KiB each");
		goto out;
	}
	if (!fp_kv_get(&env->kafka_props, "security.protocol"))
		rc = kv_append(d, &env->kafka_props, "security.protocol",
			       "SASL_SSL", n);
	if (!rc)
		rc = kv_append(d, &env->kafka_props, "sasl.mechanism",
			       "OAUTHBEARER", n);
	if (!rc)
		rc = kv_append(d, &env->kafka_props, "sasl.oauthbearer.config",
			       cfg, n);
out:
	free(region);
	for (int i = 0; i < 3; i++)
		free(refs[i]);
	return rc;
}

static int decode_target(struct fp_sd *d, struct fp_env *env,
			 const struct fp_yaml_node *t)
{
	static const char *const keys[] = {"ingress_url", "kafka", "postgres",
					   NULL};
	static const char *const kkeys[] = {"bootstrap", "properties",
					    "aws_msk_iam", NULL};
	static const char *const pkeys[] = {"conninfo", "password",
					    "judge_connections", NULL};
	const struct fp_yaml_node *v, *k, *p;
	long long jc;

	if (fp_sd_want_map(d, t, "target") ||
	    fp_sd_check_keys(d, t, "target", keys))
		return d->rc;
	if (fp_sd_require(d, t, "ingress_url", "target", &v) ||
	    fp_sd_str_nonempty(d, v, &env->ingress_url))
		return d->rc;
	if (fp_sd_require(d, t, "kafka", "target", &k) ||
	    fp_sd_want_map(d, k, "target.kafka") ||
	    fp_sd_check_keys(d, k, "target.kafka", kkeys) ||
	    fp_sd_require(d, k, "bootstrap", "target.kafka", &v) ||
	    fp_sd_str_nonempty(d, v, &env->kafka_bootstrap) ||
	    fp_sd_kvlist(d, fp_yaml_get(k, "properties"),
			 "target.kafka.properties", &env->kafka_props) ||
	    decode_msk_iam(d, env, fp_yaml_get(k, "aws_msk_iam")))
		return d->rc;
	if (fp_sd_require(d, t, "postgres", "target", &p) ||
	    fp_sd_want_map(d, p, "target.postgres") ||
	    fp_sd_check_keys(d, p, "target.postgres", pkeys) ||
	    fp_sd_require(d, p, "conninfo", "target.postgres", &v) ||
	    fp_sd_str_nonempty(d, v, &env->pg_conninfo) ||
	    fp_sd_secret_ref(d, fp_yaml_get(p, "password"),
			     &env->pg_password_ref))
		return d->rc;
	jc = 2;
	if (fp_sd_int(d, fp_yaml_get(p, "judge_connections"), 1,
		      FP_JUDGE_MAX_CONNECTIONS, &jc))
		return d->rc;
	env->pg_judge_connections = (int)jc;
	return FP_OK;
}

static int decode_reports(struct fp_sd *d, struct fp_env *env,
			  const struct fp_yaml_node *n)
{
	static const char *const keys[] = {"out", "signing_key", "s3", NULL};
	static const char *const skeys[] = {"endpoint",   "bucket",
					    "region",     "prefix",
					    "access_key", "secret_key", NULL};
	const struct fp_yaml_node *s3, *v;

	if (!n || fp_yaml_is_null(n))
		return FP_OK;
	if (fp_sd_want_map(d, n, "reports") ||
	    fp_sd_check_keys(d, n, "reports", keys) ||
	    fp_sd_str_nonempty(d, fp_yaml_get(n, "out"), &env->out_dir) ||
	    fp_sd_secret_ref(d, fp_yaml_get(n, "signing_key"),
			     &env->signing_key_ref))
		return d->rc;
	s3 = fp_yaml_get(n, "s3");
	if (!s3)
		return FP_OK;
	if (fp_sd_want_map(d, s3, "reports.s3") ||
	    fp_sd_check_keys(d, s3, "reports.s3", skeys))
		return d->rc;
	env->s3_enabled = 1;
	if (fp_sd_require(d, s3, "endpoint", "reports.s3", &v) ||
	    fp_sd_str_nonempty(d, v, &env->s3_endpoint) ||
	    fp_sd_require(d, s3, "bucket", "reports.s3", &v) ||
	    fp_sd_str_nonempty(d, v, &env->s3_bucket) ||
	    fp_sd_str_nonempty(d, fp_yaml_get(s3, "region"),
			       &env->s3_region) ||
	    fp_sd_str(d, fp_yaml_get(s3, "prefix"), &env->s3_prefix) ||
	    fp_sd_require(d, s3, "access_key", "reports.s3", &v) ||
	    fp_sd_secret_ref(d, v, &env->s3_access_key_ref) ||
	    fp_sd_require(d, s3, "secret_key", "reports.s3", &v) ||
	    fp_sd_secret_ref(d, v, &env->s3_secret_key_ref))
		return d->rc;
	return FP_OK;
}

static int set_defaults(struct fp_sd *d, struct fp_env *env)
{
	env->env_class = FP_ENV_LOCAL;
	env->platform_run_id = strdup("fpd-${run.id}");
	env->event_class = strdup("transaction");
	env->runtime_lane = strdup("drill");
	env->out_dir = strdup("fpdrill-out");
	env->s3_region = strdup("us-east-1");
	env->s3_prefix = strdup("fpdrill");
	env->sample_every_ns = 250 * FP_NS_PER_MS;
	if (!env->platform_run_id || !env->event_class || !env->runtime_lane ||
	    !env->out_dir || !env->s3_region || !env->s3_prefix)
		return fp_sd_oom(d);
	return FP_OK;
}

static int decode_env(struct fp_sd *d, struct fp_env *env,
		      struct fp_yaml_node *root)
{
	static const char *const keys[] = {
		"fpdrill", "name",        "class",   "env_file", "identity",
		"target",  "observables", "actions", "reports",  "samplers",
		"safety",  NULL};
	const struct fp_yaml_node *v;
	struct fp_yaml_node *ef = NULL;
	int cls = FP_ENV_LOCAL;
	char got[160];

	/* The format tag first: loading a scenario as --env should say so,
	 * not complain about its keys. */
	if (fp_sd_want_map(d, root, "env profile") ||
	    fp_sd_require(d, root, "fpdrill", "env profile", &v))
		return d->rc;
	if (v->kind != FP_YAML_SCALAR || strcmp(v->str, "env/v1") != 0)
		return fp_sd_err(d, v, "expected fpdrill: env/v1, got %s",
				 fp_yaml_describe(v, got, sizeof got));
	if (fp_sd_check_keys(d, root, "env profile", keys))
		return d->rc;
	for (size_t i = 0; i < root->n; i++)
		if (strcmp(root->keys[i]->str, "env_file") == 0)
			ef = root->vals[i];
	if (ef && !fp_yaml_is_null(ef) && load_env_file(d, env, ef))
		return d->rc;
	d->vars = &env->env_vars;
	if (fp_sd_interp_tree(d, root))
		return d->rc;
	if (fp_sd_require(d, root, "name", "env profile", &v) ||
	    fp_sd_str_nonempty(d, v, &env->name) ||
	    fp_sd_enum(d, fp_yaml_get(root, "class"), class_names, &cls))
		return d->rc;
	env->env_class = (enum fp_env_class)cls;
	if (decode_identity(d, env, fp_yaml_get(root, "identity")))
		return d->rc;
	if (fp_sd_require(d, root, "target", "env profile", &v) ||
	    decode_target(d, env, v))
		return d->rc;
	if (fp_sd_require(d, root, "observables", "env profile", &v) ||
	    fp_sd_want_map(d, v, "observables") ||
	    fp_sd_kvlist(d, v, "observables", &env->observables))
		return d->rc;
	if (decode_actions(d, env, fp_yaml_get(root, "actions")) ||
	    decode_reports(d, env, fp_yaml_get(root, "reports")) ||
	    decode_samplers(d, env, fp_yaml_get(root, "samplers")) ||
	    decode_safety(d, env, fp_yaml_get(root, "safety")))
		return d->rc;
	/* The production guard: such a profile runs only the drills it
	 * names, so the refusal is at load time, before any flag matters. */
	if (env->env_class == FP_ENV_PRODUCTION &&
	    env->safety.n_allow_scenarios == 0)
		return fp_sd_err(d, fp_yaml_get(root, "class"),
				 "expected a profile of class production to "
				 "list the drills it allows under "
				 "safety.allow_scenarios, got none");
	return FP_OK;
}

int fp_env_load(const char *path, struct fp_env **out, struct fp_err *err)
{
	struct fp_yaml_node *root = NULL;
	struct fp_env *env;
	struct fp_sd d = {0};
	char dir[4096];
	int rc;

	*out = NULL;
	env = calloc(1, sizeof *env);
	if (!env)
		return fp_err_set(err, FP_ENOMEM, "loading %s", path);
	fp_path_dirname(path, dir, sizeof dir);
	env->path = strdup(path);
	env->dir = strdup(dir);
	d.file = env->path;
	d.err = err;
	if (!env->path || !env->dir) {
		fp_env_free(env);
		return fp_err_set(err, FP_ENOMEM, "loading %s", path);
	}
	rc = fp_sd_load_file(env->path, &root, err);
	if (rc == FP_OK && set_defaults(&d, env) == FP_OK)
		decode_env(&d, env, root);
	if (rc == FP_OK)
		rc = d.rc;
	fp_yaml_free(root);
	if (rc) {
		fp_env_free(env);
		return rc;
	}
	*out = env;
	return FP_OK;
}
