/*
 * http_call.c - a fault a platform exposes over HTTP (a feature flag, an
 * admin endpoint, a fault API of its own): apply sends one request, and the
 * revert, when revert_url is given, sends a second one that undoes it.
 * Without revert_url the revert does nothing (the call was a one-shot).
 *
 * Requests go through fp_action_run (harness/backend/fp_act.h), so timeouts,
 * status checks and error codes match the env profile's bound HTTP actions.
 * A header whose value is an env:/file: reference is resolved as a secret
 * (e.g. header.Authorization: "env:ADMIN_TOKEN" holding "Bearer ..."), and
 * lives in memory only for the request.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_act.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "harness/core/fp_secret.h"
#include "injectors/inj_util.h"

#define NAME "http.call"
#define MAX_HEADERS 16

static const char *const keys[] = {
	"method",	 "url",		"body",	       "expect",
	"timeout",	 "revert_method", "revert_url", "revert_body",
	"revert_expect", NULL};
static const char *const prefixes[] = {"header.", NULL};

/* pre is "" for the apply request, "revert_" for the revert request. */
static int check_request(const struct fp_kvlist *with, const char *pre,
			 struct fp_err *err)
{
	char k[32];
	const char *url, *method;
	int64_t x;

	snprintf(k, sizeof k, "%surl", pre);
	url = fp_kv_get(with, k);
	if (!url)
		return *pre ? FP_OK
			    : fp_err_set(err, FP_ESPEC, NAME ": needs url");
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": %s must be an http:// or https:// "
				       "URL, got \"%s\"",
				  k, url);
	snprintf(k, sizeof k, "%smethod", pre);
	method = fp_kv_get(with, k);
	if (method && (!*method || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") !=
						 strlen(method)))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": %s must be an upper-case HTTP method "
				       "such as POST, got \"%s\"",
				  k, method);
	snprintf(k, sizeof k, "%sexpect", pre);
	return fp_inj_i64(with, k, 0, 100, 599, &x, NAME, err);
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	int64_t t;
	int rc = fp_inj_check_keys(with, NAME, keys, prefixes, err);

	if (!rc)
		rc = check_request(with, "", err);
	if (!rc)
		rc = check_request(with, "revert_", err);
	if (!rc && !fp_kv_get(with, "revert_url") &&
	    (fp_kv_get(with, "revert_method") || fp_kv_get(with, "revert_body") ||
	     fp_kv_get(with, "revert_expect")))
		rc = fp_err_set(err, FP_ESPEC,
				NAME ": revert_method/body/expect need "
				     "revert_url");
	if (!rc)
		rc = fp_inj_duration(with, "timeout", 30 * FP_NS_PER_S,
				     FP_NS_PER_MS, 600 * FP_NS_PER_S, &t, NAME,
				     err);
	return rc;
}

struct headers {
	struct fp_kv kv[MAX_HEADERS];
	char *secret[MAX_HEADERS];
	size_t n;
};

static void headers_free(struct headers *h)
{
	for (size_t i = 0; i < h->n; i++)
		fp_secret_free(h->secret[i]);
	h->n = 0;
}

static int headers_build(const struct fp_kvlist *with,
			 const struct fp_inject_ctx *ctx, struct headers *h,
			 struct fp_err *err)
{
	memset(h, 0, sizeof *h);
	for (size_t i = 0; i < with->n; i++) {
		const struct fp_kv *kv = &with->items[i];

		if (strncmp(kv->key, "header.", 7) != 0)
			continue;
		if (h->n == MAX_HEADERS) {
			headers_free(h);
			return fp_err_set(err, FP_ESPEC,
					  NAME ": more than %d headers",
					  MAX_HEADERS);
		}
		h->kv[h->n].key = kv->key + 7;
		h->kv[h->n].value = kv->value;
		if (fp_secret_is_ref(kv->value)) {
			if (fp_secret_resolve(kv->value,
					      ctx->env ? ctx->env->dir : NULL,
					      &h->secret[h->n], err)) {
				headers_free(h);
				return fp_err_prefix(err, NAME ": header %s: ",
						     kv->key + 7);
			}
			h->kv[h->n].value = h->secret[h->n];
		}
		h->n++;
	}
	return FP_OK;
}

/* One request; pre selects the apply ("") or revert ("revert_") keys. */
static int call(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		const char *pre, struct fp_act_result *res, struct fp_err *err)
{
	struct fp_action a;
	struct headers h;
	char k[32];
	int64_t expect, timeout;
	int rc;

	memset(&a, 0, sizeof a);
	a.name = (char *)(*pre ? NAME " (revert)" : NAME);
	a.kind = FP_ACTION_HTTP;
	snprintf(k, sizeof k, "%smethod", pre);
	a.method = (char *)(fp_kv_get(with, k) ? fp_kv_get(with, k) : "POST");
	snprintf(k, sizeof k, "%surl", pre);
	a.url = (char *)fp_kv_get(with, k);
	snprintf(k, sizeof k, "%sbody", pre);
	a.body = (char *)fp_kv_get(with, k);
	snprintf(k, sizeof k, "%sexpect", pre);
	fp_inj_i64(with, k, 0, 100, 599, &expect, NAME, NULL);
	a.expect_status = (int)expect;
	fp_inj_duration(with, "timeout", 30 * FP_NS_PER_S, FP_NS_PER_MS,
			600 * FP_NS_PER_S, &timeout, NAME, NULL);
	a.timeout_ns = timeout;
	rc = headers_build(with, ctx, &h, err);
	if (rc)
		return rc;
	a.headers.items = h.kv;
	a.headers.n = h.n;
	rc = fp_action_run(&a, res, err);
	headers_free(&h);
	return rc;
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	struct fp_act_result res;
	int rc, rc2;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (rc)
		return rc;
	rc = call(with, ctx, "", &res, err);
	/* The response body is left out of the state: it may carry a token
	 * and the state lands in the journal and the report. */
	rc2 = fp_inj_state_set(
		ctx,
		json_pack("{s:s,s:s,s:i,s:I,s:b}", "method",
			  fp_kv_get(with, "method") ? fp_kv_get(with, "method")
						    : "POST",
			  "url", fp_kv_get(with, "url"), "status",
			  (int)res.http_status, "elapsed_ms",
			  (json_int_t)(res.elapsed_ns / FP_NS_PER_MS),
			  "revertible", fp_kv_get(with, "revert_url") != NULL),
		rc ? NULL : err);
	return rc ? rc : rc2;
}

static int revert(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		  struct fp_err *err)
{
	struct fp_act_result res;

	if (!fp_kv_get(with, "revert_url"))
		return FP_OK;
	return call(with, ctx, "revert_", &res, err);
}

const struct fp_injector fp_injector_http_call = {
	.name = NAME,
	.summary = "send an HTTP request (method, url, body, expect); revert "
		   "sends the optional revert_* request",
	.validate = validate,
	.apply = apply,
	.revert = revert,
};
