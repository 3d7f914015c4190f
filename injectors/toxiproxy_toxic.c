/*
 * toxiproxy_toxic.c - drive a real Toxiproxy (github.com/Shopify/toxiproxy)
 * through its HTTP API, for platforms that already route a dependency
 * through one: add a toxic (latency, bandwidth, slow_close, timeout,
 * reset_peer, slicer, limit_data) to a proxy and delete it on revert, or
 * take the proxy down (enabled=false) and re-enable it.
 *
 * Toxiproxy toxics have no lease: one stays until it is deleted, so the
 * revert (and `fpdrill cleanup` after a crash, which replays it from the
 * journal) is the only thing that removes it. A toxic's name is therefore
 * deterministic (fpdrill_<type>_<stream> unless `name` is given): the revert
 * can delete it even without state, and a 409 on apply means one is left
 * from an earlier run. A 404 on delete means it is already gone: success.
 * Toxiproxy answers 403 to a Mozilla/ User-Agent, so ours says fpdrill.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_act.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "toxiproxy.toxic"

static const char *const keys[] = {"api",    "proxy",	 "type", "name",
				   "stream", "toxicity", "timeout", NULL};
static const char *const prefixes[] = {"attr.", NULL};

/* Toxic types, their attributes, and the one that must be given for the
 * toxic to do anything (Toxiproxy defaults every attribute to 0). */
static const struct toxic_type {
	const char *type;
	const char *attrs[4];
	const char *required;
} types[] = {
	{"latency", {"latency", "jitter"}, "latency"},
	{"bandwidth", {"rate"}, "rate"},
	{"slow_close", {"delay"}, "delay"},
	{"timeout", {"timeout"}, NULL},
	{"reset_peer", {"timeout"}, NULL},
	{"slicer", {"average_size", "size_variation", "delay"}, "average_size"},
	{"limit_data", {"bytes"}, "bytes"},
	{"down", {NULL}, NULL},
};

static const struct toxic_type *find_type(const char *t)
{
	for (size_t i = 0; t && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(types[i].type, t) == 0)
			return &types[i];
	return NULL;
}

/* Names end up in URL paths: keep them to characters that need no
 * escaping. */
static int plain_name(const char *s)
{
	return s && *s && strlen(s) < 128 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == strlen(s);
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	const char *api = fp_kv_get(with, "api"), *tox = fp_kv_get(with, "type");
	const char *stream = fp_kv_get(with, "stream");
	const char *tv = fp_kv_get(with, "toxicity");
	const struct toxic_type *t;
	int64_t x;
	int rc = fp_inj_check_keys(with, NAME, keys, prefixes, err);

	if (rc)
		return rc;
	if (api && strncmp(api, "http://", 7) && strncmp(api, "https://", 8))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": api must be an http:// URL such as "
				       "http://127.0.0.1:8474, got \"%s\"",
				  api);
	if (!plain_name(fp_kv_get(with, "proxy")))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": needs proxy, the name of an existing "
				       "Toxiproxy proxy ([A-Za-z0-9._-])");
	t = find_type(tox);
	if (!t)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": type must be latency, bandwidth, "
				       "slow_close, timeout, reset_peer, "
				       "slicer, limit_data or down, got \"%s\"",
				  tox ? tox : "(none)");
	if (fp_kv_get(with, "name") && !plain_name(fp_kv_get(with, "name")))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": name may hold only [A-Za-z0-9._-]");
	if (stream && strcmp(stream, "upstream") && strcmp(stream, "downstream"))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": stream must be upstream or "
				       "downstream, got \"%s\"",
				  stream);
	if (tv) {
		char *end;
		double d = strtod(tv, &end);

		if (end == tv || *end || !(d >= 0 && d <= 1))
			return fp_err_set(err, FP_ESPEC,
					  NAME ": toxicity must be a number in "
					       "[0, 1], got \"%s\"",
					  tv);
	}
	if (!strcmp(t->type, "down") &&
	    (stream || tv || fp_kv_get(with, "name")))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": type down disables the whole proxy; "
				       "stream, toxicity and name do not apply");
	for (size_t i = 0; i < with->n; i++) {
		const char *k = with->items[i].key;
		int known = 0;

		if (strncmp(k, "attr.", 5))
			continue;
		for (size_t j = 0; t->attrs[j] && !known; j++)
			known = !strcmp(k + 5, t->attrs[j]);
		if (!known)
			return fp_err_set(err, FP_ESPEC,
					  NAME ": %s is not an attribute of a %s "
					       "toxic",
					  k, t->type);
		rc = fp_inj_i64(with, k, 0, 0, INT64_C(1) << 40, &x, NAME, err);
		if (rc)
			return rc;
	}
	if (t->required) {
		char k[32];

		snprintf(k, sizeof k, "attr.%s", t->required);
		if (!fp_kv_get(with, k))
			return fp_err_set(err, FP_ESPEC,
					  NAME ": a %s toxic needs %s (an "
					       "integer; Toxiproxy's default 0 "
					       "does nothing)",
					  t->type, k);
	}
	return fp_inj_duration(with, "timeout", 10 * FP_NS_PER_S, FP_NS_PER_MS,
			       120 * FP_NS_PER_S, &x, NAME, err);
}

/* Defaults shared by apply and revert: the revert must compute the same
 * toxic name without state. */
static void resolve(const struct fp_kvlist *with, const char **api,
		    const char **stream, char *name, size_t namesz)
{
	*api = fp_kv_get(with, "api") ? fp_kv_get(with, "api")
				      : "http://127.0.0.1:8474";
	*stream = fp_kv_get(with, "stream") ? fp_kv_get(with, "stream")
					    : "downstream";
	if (fp_kv_get(with, "name"))
		snprintf(name, namesz, "%s", fp_kv_get(with, "name"));
	else
		snprintf(name, namesz, "fpdrill_%s_%s",
			 fp_kv_get(with, "type"), *stream);
}

static int request(const struct fp_kvlist *with, const char *method,
		   const char *url, const char *body,
		   struct fp_act_result *res, struct fp_err *err)
{
	struct fp_kv hv[] = {{"User-Agent", "fpdrill-injector", {0}},
			     {"Content-Type", "application/json", {0}}};
	struct fp_action a;
	int64_t timeout;

	fp_inj_duration(with, "timeout", 10 * FP_NS_PER_S, FP_NS_PER_MS,
			120 * FP_NS_PER_S, &timeout, NAME, NULL);
	memset(&a, 0, sizeof a);
	a.name = (char *)NAME;
	a.kind = FP_ACTION_HTTP;
	a.method = (char *)method;
	a.url = (char *)url;
	a.body = (char *)body;
	a.headers.items = hv;
	a.headers.n = body ? 2 : 1;
	a.timeout_ns = timeout;
	return fp_action_run(&a, res, err);
}

/* Trim a trailing '/' so "{api}/proxies" never has "//". */
static void join(char *out, size_t outsz, const char *api, const char *path)
{
	size_t n = strlen(api);

	if (n && api[n - 1] == '/')
		n--;
	snprintf(out, outsz, "%.*s%s", (int)n, api, path);
}

static int apply_down(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		      const char *api, struct fp_err *err)
{
	const char *proxy = fp_kv_get(with, "proxy");
	struct fp_act_result res;
	char url[1024], path[256];
	int was_enabled, rc;

	snprintf(path, sizeof path, "/proxies/%s", proxy);
	join(url, sizeof url, api, path);
	rc = request(with, "GET", url, NULL, &res, err);
	if (rc)
		return res.http_status == 404
			       ? fp_err_set(err, FP_ENOTFOUND,
					    NAME ": Toxiproxy at %s has no "
						 "proxy '%s'",
					    api, proxy)
			       : rc;
	/* "enabled" precedes the toxics list in the answer, so the start of
	 * the body that fp_act keeps always holds it. */
	was_enabled = strstr(res.output, "\"enabled\":false") == NULL;
	if (was_enabled) {
		rc = request(with, "POST", url, "{\"enabled\":false}", &res, err);
		if (rc)
			return rc;
	}
	FP_INFO("event=inject injector=" NAME " proxy=%s type=down "
		"was_enabled=%d",
		proxy, was_enabled);
	return fp_inj_state_set(ctx,
				json_pack("{s:s,s:s,s:s,s:b}", "api", api,
					  "proxy", proxy, "type", "down",
					  "was_enabled", was_enabled),
				err);
}

static int do_apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		    struct fp_err *err)
{
	const char *api, *stream, *proxy = fp_kv_get(with, "proxy");
	const char *tv = fp_kv_get(with, "toxicity");
	struct fp_act_result res;
	char name[160], url[1024], path[256], *body;
	json_t *attrs, *toxic;
	int rc;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (rc)
		return rc;
	resolve(with, &api, &stream, name, sizeof name);
	if (!strcmp(fp_kv_get(with, "type"), "down"))
		return apply_down(with, ctx, api, err);
	attrs = json_object();
	for (size_t i = 0; i < with->n; i++)
		if (!strncmp(with->items[i].key, "attr.", 5))
			json_object_set_new(
				attrs, with->items[i].key + 5,
				json_integer(atoll(with->items[i].value)));
	toxic = json_pack("{s:s,s:s,s:s,s:f,s:o}", "name", name, "type",
			  fp_kv_get(with, "type"), "stream", stream,
			  "toxicity", tv ? strtod(tv, NULL) : 1.0,
			  "attributes", attrs);
	body = json_dumps(toxic, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!body) {
		json_decref(toxic);
		return fp_err_set(err, FP_ENOMEM, NAME ": request body");
	}
	snprintf(path, sizeof path, "/proxies/%s/toxics", proxy);
	join(url, sizeof url, api, path);
	rc = request(with, "POST", url, body, &res, err);
	free(body);
	if (rc == FP_EBACKEND && res.http_status == 404)
		rc = fp_err_set(err, FP_ENOTFOUND,
				NAME ": Toxiproxy at %s has no proxy '%s'", api,
				proxy);
	else if (rc == FP_EBACKEND && res.http_status == 409)
		rc = fp_err_set(err, FP_EBACKEND,
				NAME ": proxy '%s' already has a toxic '%s' "
				     "(left by an earlier run? `fpdrill "
				     "cleanup`, or give another name)",
				proxy, name);
	if (rc) {
		json_decref(toxic);
		return rc;
	}
	json_object_set_new(toxic, "api", json_string(api));
	json_object_set_new(toxic, "proxy", json_string(proxy));
	FP_INFO("event=inject injector=" NAME " proxy=%s toxic=%s", proxy,
		name);
	return fp_inj_state_set(ctx, toxic, err);
}

/* A failed apply leaves nothing in place; say so for the revert. */
static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	int rc = do_apply(with, ctx, err);

	if (rc && !ctx->state[0])
		fp_inj_state_not_applied(ctx);
	return rc;
}

static int revert(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		  struct fp_err *err)
{
	const char *api, *stream, *proxy = fp_kv_get(with, "proxy");
	json_t *st = fp_inj_state_get(ctx);
	struct fp_act_result res;
	char name[160], url[1024], path[512];
	int rc;

	if (fp_inj_state_is_not_applied(ctx)) {
		json_decref(st);
		return FP_OK;
	}
	resolve(with, &api, &stream, name, sizeof name);
	if (!strcmp(fp_kv_get(with, "type"), "down")) {
		/* Without state (crash before "applied") the proxy is
		 * assumed to have been enabled before: re-enabling is the
		 * safe side. */
		int was = !st || json_is_true(json_object_get(st, "was_enabled"));

		json_decref(st);
		if (!was)
			return FP_OK;
		snprintf(path, sizeof path, "/proxies/%s", proxy);
		join(url, sizeof url, api, path);
		rc = request(with, "POST", url, "{\"enabled\":true}", &res, err);
		if (rc == FP_EBACKEND && res.http_status == 404)
			rc = FP_OK; /* the proxy itself is gone */
		return rc;
	}
	json_decref(st);
	snprintf(path, sizeof path, "/proxies/%s/toxics/%s", proxy, name);
	join(url, sizeof url, api, path);
	rc = request(with, "DELETE", url, NULL, &res, err);
	if (rc == FP_EBACKEND && res.http_status == 404)
		rc = FP_OK; /* already gone: what the revert wants */
	if (!rc)
		FP_INFO("event=revert injector=" NAME " proxy=%s toxic=%s",
			proxy, name);
	return rc;
}

const struct fp_injector fp_injector_toxiproxy_toxic = {
	.name = NAME,
	.summary = "add a toxic to (or disable) a proxy of a running Toxiproxy "
		   "through its HTTP API; revert deletes (re-enables) it",
	.validate = validate,
	.apply = apply,
	.revert = revert,
};
