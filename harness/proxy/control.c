/*
 * control.c - the fault proxy's HTTP/1.1 JSON control API (libmicrohttpd,
 * its own thread): GET /health, GET /routes, POST /faults,
 * DELETE /faults/{id}, POST /reset.
 *
 * It is a thin shell over the library API in proxy.c, so the daemon and an
 * in-process proxy behave the same. Requests are validated strictly (an
 * unknown key, a parameter for the wrong fault type, a missing ttl_ms are
 * 400s), because a typo that silently injected a weaker fault would make a
 * drill pass for the wrong reason. DELETE of an unknown id is 404: the
 * harness's idempotent revert counts that as "already gone".
 */
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "harness/proxy/fp_proxy_int.h"

#define BODY_MAX 65536

struct req {
	char *body;
	size_t len;
	int too_big;
};

static enum MHD_Result send_json(struct MHD_Connection *conn,
				 unsigned status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	struct MHD_Response *resp;
	enum MHD_Result rc;

	json_decref(obj);
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *conn,
				  unsigned status, const char *msg)
{
	return send_json(conn, status, json_pack("{s:s}", "error", msg));
}

static json_t *fault_json(const struct fp_pfault *f, int64_t now)
{
	json_t *params = json_object();
	int64_t left = f->expires_ns - now;

	switch (f->f.type) {
	case FP_PFAULT_LATENCY:
		json_object_set_new(params, "ms", json_integer(f->f.ms));
		json_object_set_new(params, "jitter_ms",
				    json_integer(f->f.jitter_ms));
		break;
	case FP_PFAULT_SLOW_CLOSE:
		json_object_set_new(params, "ms", json_integer(f->f.ms));
		break;
	case FP_PFAULT_BANDWIDTH:
		json_object_set_new(params, "kbps", json_integer(f->f.kbps));
		break;
	case FP_PFAULT_SLICER:
		json_object_set_new(params, "bytes", json_integer(f->f.bytes));
		json_object_set_new(params, "delay_ms",
				    json_integer(f->f.delay_ms));
		break;
	default:
		break;
	}
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:I,s:I}",
			 "id", f->id,
			 "route", f->route->name,
			 "type", fp_proxy_fault_type_name(f->f.type),
			 "direction", fp_proxy_dir_name(f->f.dirs),
			 "params", params,
			 "ttl_ms", (json_int_t)f->f.ttl_ms,
			 "expires_in_ms",
			 (json_int_t)(left > 0 ? left / FP_NS_PER_MS : 0));
}

static json_t *routes_json(struct fp_proxy *p)
{
	json_t *arr = json_array();
	int64_t now;

	pthread_mutex_lock(&p->mu);
	now = fp_mono_ns();
	for (size_t i = 0; i < p->nroutes; i++) {
		const struct fp_proute *r = p->routes[i];
		json_t *faults = json_array();

		for (const struct fp_pfault *f = p->faults; f; f = f->next)
			if (f->route == r && f->expires_ns > now)
				json_array_append_new(faults,
						      fault_json(f, now));
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:i,s:s,s:b,s:i,s:o}", "name",
				       r->name, "listen", r->listen_s, "port",
				       r->port, "upstream", r->upstream_s,
				       "listening", r->lfd >= 0, "connections",
				       r->nconns, "faults", faults));
	}
	pthread_mutex_unlock(&p->mu);
	return json_pack("{s:o}", "routes", arr);
}

/* Integer parameter; absent = 0 (fp_proxy_fault_check() then says whether
 * the type needed it). */
static int int_param(json_t *params, const char *key, int64_t *out,
		     char *msg, size_t msgsz)
{
	json_t *v = params ? json_object_get(params, key) : NULL;

	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v)) {
		snprintf(msg, msgsz, "params.%s must be an integer", key);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static enum MHD_Result post_fault(struct fp_proxy *p,
				  struct MHD_Connection *conn, const char *body,
				  size_t len)
{
	static const char *const top[] = {"route", "type", "direction",
					  "params", "ttl_ms", NULL};
	static const char *const pkeys[] = {"ms",    "jitter_ms", "kbps",
					    "bytes", "delay_ms",  NULL};
	struct fp_proxy_fault f;
	struct fp_err err;
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr), *params, *v;
	const char *key, *dir;
	char msg[256], id[FP_PROXY_ID_LEN];
	int rc;

	if (!root || !json_is_object(root)) {
		json_decref(root);
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "body must be a JSON object");
	}
	json_object_foreach(root, key, v)
	{
		int ok = 0;

		for (size_t i = 0; top[i]; i++)
			ok |= !strcmp(key, top[i]);
		if (!ok) {
			snprintf(msg, sizeof msg, "unknown key '%s'", key);
			json_decref(root);
			return send_error(conn, MHD_HTTP_BAD_REQUEST, msg);
		}
	}
	params = json_object_get(root, "params");
	if (params && !json_is_object(params)) {
		json_decref(root);
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "params must be an object");
	}
	json_object_foreach(params, key, v)
	{
		int ok = 0;

		for (size_t i = 0; pkeys[i]; i++)
			ok |= !strcmp(key, pkeys[i]);
		if (!ok) {
			snprintf(msg, sizeof msg, "unknown parameter '%s'", key);
			json_decref(root);
			return send_error(conn, MHD_HTTP_BAD_REQUEST, msg);
		}
	}
	memset(&f, 0, sizeof f);
	f.route = json_string_value(json_object_get(root, "route"));
	dir = json_string_value(json_object_get(root, "direction"));
	f.dirs = FP_PDIR_BOTH;
	v = json_object_get(root, "ttl_ms");
	msg[0] = '\0';
	if (!f.route)
		snprintf(msg, sizeof msg, "route (a string) is required");
	else if (fp_proxy_fault_type_parse(
			 json_string_value(json_object_get(root, "type")),
			 &f.type))
		snprintf(msg, sizeof msg,
			 "type must be latency, bandwidth, blackhole, reset, "
			 "slow_close, slicer or down");
	else if ((json_object_get(root, "direction") && !dir) ||
		 (dir && fp_proxy_dir_parse(dir, &f.dirs)))
		snprintf(msg, sizeof msg,
			 "direction must be upstream, downstream or both");
	else if (!json_is_integer(v))
		snprintf(msg, sizeof msg,
			 "ttl_ms (an integer, at most %" PRId64 ") is required: "
			 "every fault has a lease",
			 FP_PROXY_TTL_MAX_MS);
	if (!msg[0]) {
		int64_t *dst[] = {&f.ms, &f.jitter_ms, &f.kbps, &f.bytes,
				  &f.delay_ms};

		f.ttl_ms = json_integer_value(v);
		for (size_t i = 0; pkeys[i]; i++)
			if (int_param(params, pkeys[i], dst[i], msg, sizeof msg))
				break;
	}
	if (msg[0]) {
		json_decref(root);
		return send_error(conn, MHD_HTTP_BAD_REQUEST, msg);
	}
	fp_err_clear(&err);
	rc = fp_proxy_add_fault(p, &f, id, &err);
	json_decref(root);
	if (rc)
		return send_error(conn,
				  rc == FP_ENOTFOUND ? MHD_HTTP_NOT_FOUND
						     : MHD_HTTP_BAD_REQUEST,
				  err.msg);
	return send_json(conn, MHD_HTTP_CREATED,
			 json_pack("{s:s,s:I}", "id", id, "expires_in_ms",
				   (json_int_t)f.ttl_ms));
}

static enum MHD_Result route_request(struct fp_proxy *p,
				     struct MHD_Connection *conn,
				     const char *url, const char *method,
				     struct req *rq)
{
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	int del = !strcmp(method, "DELETE");

	if (!strcmp(url, "/health"))
		return get ? send_json(conn, MHD_HTTP_OK,
				       json_pack("{s:s,s:I}", "status", "ok",
						 "faults",
						 (json_int_t)fp_proxy_fault_count(
							 p)))
			   : send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					"GET only");
	if (!strcmp(url, "/routes"))
		return get ? send_json(conn, MHD_HTTP_OK, routes_json(p))
			   : send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					"GET only");
	if (!strcmp(url, "/faults")) {
		if (!post)
			return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "POST only");
		if (rq->too_big)
			return send_error(conn,
					  MHD_HTTP_CONTENT_TOO_LARGE,
					  "body too large");
		return post_fault(p, conn, rq->body ? rq->body : "", rq->len);
	}
	if (!strncmp(url, "/faults/", 8) && url[8]) {
		struct fp_err err;

		if (!del)
			return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "DELETE only");
		fp_err_clear(&err);
		if (fp_proxy_remove_fault(p, url + 8, &err))
			return send_error(conn, MHD_HTTP_NOT_FOUND, err.msg);
		return send_json(conn, MHD_HTTP_OK,
				 json_pack("{s:s,s:b}", "id", url + 8,
					   "removed", 1));
	}
	if (!strcmp(url, "/reset")) {
		if (!post)
			return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "POST only");
		return send_json(conn, MHD_HTTP_OK,
				 json_pack("{s:I}", "removed",
					   (json_int_t)fp_proxy_reset(p)));
	}
	return send_error(conn, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
			       const char *url, const char *method,
			       const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;

	if (!rq) {
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		/* Keep reading an oversized body (and answer 413) rather
		 * than cutting the connection. */
		if (!rq->too_big && rq->len + *upload_size <= BODY_MAX) {
			char *nb = realloc(rq->body, rq->len + *upload_size + 1);

			if (!nb)
				return MHD_NO;
			rq->body = nb;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = '\0';
		} else {
			rq->too_big = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	return route_request(cls, conn, url, method, rq);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

int fp_proxy_ctl_start(struct fp_proxy *p, struct fp_err *err)
{
	p->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
		handler, p, MHD_OPTION_LISTEN_SOCKET, p->ctl_fd,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!p->mhd)
		return fp_err_set(err, FP_EIO,
				  "control: cannot start the HTTP server on %s",
				  p->ctl_addr);
	return FP_OK;
}

void fp_proxy_ctl_stop(struct fp_proxy *p)
{
	if (!p->mhd)
		return;
	/* MHD closes the listen socket it was given. */
	MHD_stop_daemon(p->mhd);
	p->mhd = NULL;
	p->ctl_fd = -1;
}
