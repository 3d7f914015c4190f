/*
 * tcp_fault.c - the tcp.fault injector: put a network fault (latency,
 * bandwidth, blackhole, reset, slow_close, slicer, down) on one route of
 * fpdrill's own fault proxy (harness/proxy, daemon fpdrill-proxy) through
 * its HTTP control API, and remove it on revert.
 *
 * Unlike a Toxiproxy toxic, every fault here carries a lease (`ttl`, default
 * 10m, at most 1h) that the proxy enforces by itself: if the harness dies
 * and nobody runs `fpdrill cleanup`, the fault still ends when the lease
 * does. apply() records {proxy, id} in ctx->state, which the run loop
 * journals, so the revert after a crash deletes exactly that fault; a 404
 * on delete means the lease already ran out (or the proxy restarted, which
 * drops every fault), and counts as success.
 *
 * Every argument is checked offline in validate() against the same bounds
 * the proxy applies (harness/proxy/fp_proxy.h), so a scenario with a bad
 * parameter fails at load time, not half-way through a drill.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_act.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "harness/proxy/fp_proxy.h"
#include "injectors/inj_util.h"

#define NAME "tcp.fault"
#define DEFAULT_PROXY "http://127.0.0.1:18090"
#define DEFAULT_TTL_NS (10 * 60 * FP_NS_PER_S)

static const char *const keys[] = {
	"proxy", "route", "type",     "direction", "ms",      "jitter_ms",
	"kbps",  "bytes", "delay_ms", "ttl",       "timeout", NULL};

/* Parameters per type: which it needs, which it may take. */
static const struct {
	const char *type;
	const char *required[2];
	const char *optional[2];
	int whole_connection; /* reset, down: direction must be both */
} types[] = {
	{"latency", {"ms", NULL}, {"jitter_ms", NULL}, 0},
	{"bandwidth", {"kbps", NULL}, {NULL, NULL}, 0},
	{"blackhole", {NULL, NULL}, {NULL, NULL}, 0},
	{"reset", {NULL, NULL}, {NULL, NULL}, 1},
	{"slow_close", {"ms", NULL}, {NULL, NULL}, 0},
	{"slicer", {"bytes", NULL}, {"delay_ms", NULL}, 0},
	{"down", {NULL, NULL}, {NULL, NULL}, 1},
};

static const char *const params[] = {"ms", "jitter_ms", "kbps", "bytes",
				     "delay_ms", NULL};

static int type_index(const char *t)
{
	for (size_t i = 0; t && i < sizeof types / sizeof types[0]; i++)
		if (!strcmp(types[i].type, t))
			return (int)i;
	return -1;
}

static int listed(const char *const *list, size_t n, const char *k)
{
	for (size_t i = 0; i < n && list[i]; i++)
		if (!strcmp(list[i], k))
			return 1;
	return 0;
}

/* Route names end up in logs and JSON: the proxy's own alphabet. */
static int plain_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n < FP_PROXY_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == n;
}

/* The proxy's direction names (harness/proxy/fp_proxy.h). Parsed here, not
 * with fp_proxy_dir_parse(): the injectors link no proxy code, only its
 * header's bounds. */
static int dir_parse(const char *s, unsigned *dirs)
{
	if (!strcmp(s, "upstream"))
		*dirs = FP_PDIR_UP;
	else if (!strcmp(s, "downstream"))
		*dirs = FP_PDIR_DOWN;
	else if (!strcmp(s, "both"))
		*dirs = FP_PDIR_BOTH;
	else
		return -1;
	return 0;
}

static int param_bounds(const char *key, int64_t *lo, int64_t *hi)
{
	*lo = 1;
	if (!strcmp(key, "ms"))
		*hi = FP_PROXY_MS_MAX;
	else if (!strcmp(key, "jitter_ms") || !strcmp(key, "delay_ms")) {
		*lo = 0;
		*hi = FP_PROXY_MS_MAX;
	} else if (!strcmp(key, "kbps"))
		*hi = FP_PROXY_KBPS_MAX;
	else
		*hi = FP_PROXY_BYTES_MAX;
	return 0;
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	const char *proxy = fp_kv_get(with, "proxy");
	const char *type = fp_kv_get(with, "type");
	const char *dir = fp_kv_get(with, "direction");
	unsigned dirs = FP_PDIR_BOTH;
	int64_t x, ms = 0, jitter = 0;
	int t, rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (rc)
		return rc;
	if (proxy && strncmp(proxy, "http://", 7) &&
	    strncmp(proxy, "https://", 8))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": proxy must be the control API URL "
				       "such as " DEFAULT_PROXY ", got \"%s\"",
				  proxy);
	if (!plain_name(fp_kv_get(with, "route")))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": needs route, the name of a route of "
				       "the proxy ([A-Za-z0-9._-], e.g. redis)");
	t = type_index(type);
	if (t < 0)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": type must be latency, bandwidth, "
				       "blackhole, reset, slow_close, slicer "
				       "or down, got \"%s\"",
				  type ? type : "(none)");
	if (dir && dir_parse(dir, &dirs))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": direction must be upstream "
				       "(client->server), downstream or both, "
				       "got \"%s\"",
				  dir);
	if (types[t].whole_connection && dirs != FP_PDIR_BOTH)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": a %s fault acts on whole "
				       "connections; direction must be both",
				  type);
	for (size_t i = 0; params[i]; i++) {
		const char *k = params[i];
		int64_t lo, hi;

		if (!fp_kv_get(with, k)) {
			if (listed(types[t].required, 2, k))
				return fp_err_set(err, FP_ESPEC,
						  NAME ": a %s fault needs %s",
						  type, k);
			continue;
		}
		if (!listed(types[t].required, 2, k) &&
		    !listed(types[t].optional, 2, k))
			return fp_err_set(err, FP_ESPEC,
					  NAME ": %s is not a parameter of a "
					       "%s fault",
					  k, type);
		param_bounds(k, &lo, &hi);
		rc = fp_inj_i64(with, k, 0, lo, hi, &x, NAME, err);
		if (rc)
			return rc;
		if (!strcmp(k, "ms"))
			ms = x;
		if (!strcmp(k, "jitter_ms"))
			jitter = x;
	}
	if (jitter > ms)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": jitter_ms (%lld) must not exceed ms "
				       "(%lld): a chunk cannot leave before "
				       "it arrived",
				  (long long)jitter, (long long)ms);
	rc = fp_inj_duration(with, "ttl", DEFAULT_TTL_NS, FP_NS_PER_MS,
			     FP_PROXY_TTL_MAX_MS * FP_NS_PER_MS, &x, NAME, err);
	if (rc)
		return rc;
	return fp_inj_duration(with, "timeout", 10 * FP_NS_PER_S, FP_NS_PER_MS,
			       120 * FP_NS_PER_S, &x, NAME, err);
}

static int request(int64_t timeout_ns, const char *method, const char *url,
		   const char *body, int expect, struct fp_act_result *res,
		   struct fp_err *err)
{
	struct fp_kv hv[] = {{"Content-Type", "application/json", {0}}};
	struct fp_action a;

	memset(&a, 0, sizeof a);
	a.name = (char *)NAME;
	a.kind = FP_ACTION_HTTP;
	a.method = (char *)method;
	a.url = (char *)url;
	a.body = (char *)body;
	a.headers.items = hv;
	a.headers.n = body ? 1 : 0;
	a.expect_status = expect;
	a.timeout_ns = timeout_ns;
	memset(res, 0, sizeof *res);
	return fp_action_run(&a, res, err);
}

/* Trim a trailing '/' so "{proxy}/faults" never has "//". */
static void join(char *out, size_t outsz, const char *base, const char *path)
{
	size_t n = strlen(base);

	if (n && base[n - 1] == '/')
		n--;
	snprintf(out, outsz, "%.*s%s", (int)n, base, path);
}

static int do_apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		    struct fp_err *err)
{
	const char *proxy = fp_kv_get(with, "proxy") ? fp_kv_get(with, "proxy")
						     : DEFAULT_PROXY;
	const char *route = fp_kv_get(with, "route");
	const char *type = fp_kv_get(with, "type");
	const char *dir = fp_kv_get(with, "direction") ? fp_kv_get(with, "direction")
						       : "both";
	struct fp_act_result res;
	json_t *body, *pj = json_object(), *ans, *st;
	char url[1024], *text;
	const char *id;
	int64_t ttl, timeout, x;
	int rc;

	rc = validate(with, err);
	if (rc) {
		json_decref(pj);
		return rc;
	}
	fp_inj_duration(with, "ttl", DEFAULT_TTL_NS, FP_NS_PER_MS,
			FP_PROXY_TTL_MAX_MS * FP_NS_PER_MS, &ttl, NAME, NULL);
	fp_inj_duration(with, "timeout", 10 * FP_NS_PER_S, FP_NS_PER_MS,
			120 * FP_NS_PER_S, &timeout, NAME, NULL);
	for (size_t i = 0; params[i]; i++)
		if (fp_kv_get(with, params[i])) {
			fp_inj_i64(with, params[i], 0, 0, INT64_MAX, &x, NAME,
				   NULL);
			json_object_set_new(pj, params[i], json_integer(x));
		}
	/* Round a sub-millisecond lease up: 0 would be refused. */
	ttl = (ttl + FP_NS_PER_MS - 1) / FP_NS_PER_MS;
	body = json_pack("{s:s,s:s,s:s,s:o,s:I}", "route", route, "type", type,
			 "direction", dir, "params", pj, "ttl_ms",
			 (json_int_t)ttl);
	text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER)
		    : NULL;
	if (!text) {
		json_decref(body);
		return fp_err_set(err, FP_ENOMEM, NAME ": request body");
	}
	join(url, sizeof url, proxy, "/faults");
	rc = request(timeout, "POST", url, text, 201, &res, err);
	free(text);
	if (rc == FP_EBACKEND && res.http_status == 404)
		rc = fp_err_set(err, FP_ENOTFOUND,
				NAME ": the proxy at %s has no route '%s' (%s)",
				proxy, route, res.output);
	if (rc) {
		json_decref(body);
		return rc;
	}
	ans = json_loads(res.output, 0, NULL);
	id = json_string_value(json_object_get(ans, "id"));
	if (!id) {
		json_decref(ans);
		json_decref(body);
		/* Applied, but we cannot name it: only its lease will end
		 * it, so say how long that is. */
		return fp_err_set(err, FP_EBACKEND,
				  NAME ": the proxy at %s answered 201 without "
				       "an id (\"%.200s\"); the fault ends "
				       "when its %lld ms lease does",
				  proxy, res.output, (long long)ttl);
	}
	st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:I}", "proxy", proxy, "id",
		       id, "route", route, "type", type, "direction", dir,
		       "params", json_object_get(body, "params"), "ttl_ms",
		       (json_int_t)ttl);
	FP_INFO("event=inject injector=" NAME " proxy=%s route=%s type=%s "
		"direction=%s id=%s ttl_ms=%lld",
		proxy, route, type, dir, id, (long long)ttl);
	json_decref(ans);
	json_decref(body);
	return fp_inj_state_set(ctx, st, err);
}

/* A failed apply leaves nothing in place; say so for the revert. */
static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	int rc;

	ctx->state[0] = '\0';
	rc = do_apply(with, ctx, err);
	if (rc && !ctx->state[0])
		fp_inj_state_not_applied(ctx);
	return rc;
}

static int revert(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		  struct fp_err *err)
{
	json_t *st;
	const char *proxy, *id;
	struct fp_act_result res;
	char url[1200], path[128];
	int64_t timeout;
	int rc;

	if (fp_inj_state_is_not_applied(ctx))
		return FP_OK;
	st = fp_inj_state_get(ctx);
	proxy = json_string_value(json_object_get(st, "proxy"));
	id = json_string_value(json_object_get(st, "id"));
	if (!proxy || !id || !plain_name(id)) {
		/* A crash between the journal's "apply" and "applied": the
		 * id never reached the journal. Guessing which fault is ours
		 * could remove someone else's, so leave it to the lease. */
		FP_WARN("event=revert_skipped injector=" NAME " route=%s "
			"reason=no_fault_id note=\"the fault, if it was "
			"applied, ends with its lease (ttl)\"",
			fp_kv_get(with, "route") ? fp_kv_get(with, "route")
						 : "-");
		json_decref(st);
		return FP_OK;
	}
	fp_inj_duration(with, "timeout", 10 * FP_NS_PER_S, FP_NS_PER_MS,
			120 * FP_NS_PER_S, &timeout, NAME, NULL);
	snprintf(path, sizeof path, "/faults/%s", id);
	join(url, sizeof url, proxy, path);
	rc = request(timeout, "DELETE", url, NULL, 200, &res, err);
	if (rc == FP_EBACKEND && res.http_status == 404) {
		rc = FP_OK; /* the lease ran out, or the proxy restarted */
		fp_err_clear(err);
		FP_INFO("event=revert injector=" NAME " id=%s already_gone=1",
			id);
	} else if (!rc) {
		FP_INFO("event=revert injector=" NAME " id=%s", id);
	}
	json_decref(st);
	return rc;
}

/* One route of one proxy: one dependency path of every instance. */
static void blast(const struct fp_kvlist *with, double *partition_share,
		  double *instance_share)
{
	*partition_share = 0.0;
	*instance_share = 1.0;
}

const struct fp_injector fp_injector_tcp_fault = {
	.name = NAME,
	.summary = "put a leased network fault (latency, bandwidth, blackhole, "
		   "reset, slow_close, slicer, down) on a route of "
		   "fpdrill-proxy; revert deletes it",
	.validate = validate,
	.apply = apply,
	.revert = revert,
	.blast = blast,
};
