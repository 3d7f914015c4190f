/*
 * redis_pause.c - pause Redis clients with CLIENT PAUSE <ms> [WRITE|ALL];
 * the revert sends CLIENT UNPAUSE (Redis >= 6.2).
 *
 * The pause is a lease: Redis ends it by itself after ms, so a harness that
 * dies mid-drill leaves nothing behind for longer than that. Redis 7.0
 * queues every command of a paused client in ALL mode, CLIENT UNPAUSE
 * included (seen on 7.0.15), so in ALL mode the revert returns only when the
 * lease expires; in WRITE mode it ends the pause at once. The revert's socket
 * timeout is therefore the lease's remaining time plus a margin.
 */
#include <hiredis.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "redis.pause"
#define MAX_MS INT64_C(600000) /* 10 minutes: a drill, not an outage */

static const char *const keys[] = {"host", "port", "user", "password",
				   "ms", "mode", NULL};

static int parse(const struct fp_kvlist *with, int64_t *ms,
		 const char **mode, struct fp_err *err)
{
	const char *m = fp_kv_get(with, "mode");

	if (!fp_kv_get(with, "ms"))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": needs ms (how long the pause lasts; "
				       "Redis ends it by itself)");
	if (fp_inj_i64(with, "ms", 0, 1, MAX_MS, ms, NAME, err))
		return FP_ESPEC;
	*mode = "ALL";
	if (m && strcasecmp(m, "ALL") && strcasecmp(m, "WRITE"))
		return fp_err_set(err, FP_ESPEC,
				  NAME ": mode must be ALL or WRITE, got "
				       "\"%s\"",
				  m);
	if (m && !strcasecmp(m, "WRITE"))
		*mode = "WRITE";
	return FP_OK;
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	int64_t ms;
	const char *mode;
	int rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = fp_inj_redis_validate(with, NAME, err);
	if (!rc)
		rc = parse(with, &ms, &mode, err);
	return rc;
}

static int do_apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		    struct fp_err *err)
{
	redisContext *c = NULL;
	redisReply *r;
	const char *mode;
	int64_t ms, until_ms;
	char until[40];
	int rc;

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (!rc)
		rc = fp_inj_redis_connect(with, ctx, 5 * FP_NS_PER_S, &c, NAME,
					  err);
	if (rc)
		return rc;
	parse(with, &ms, &mode, NULL);
	/* The lease end is taken before the command, so it is never later
	 * than the server's own deadline. */
	until_ms = fp_wall_ns() / FP_NS_PER_MS + ms;
	r = redisCommand(c, "CLIENT PAUSE %lld %s", (long long)ms, mode);
	if (!r || r->type != REDIS_REPLY_STATUS) {
		rc = fp_err_set(err, r ? FP_EBACKEND : FP_EUNREACHABLE,
				NAME ": CLIENT PAUSE: %s",
				r ? (r->str ? r->str : "unexpected reply")
				  : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		return rc;
	}
	freeReplyObject(r);
	redisFree(c);
	fp_fmt_iso8601(until_ms * FP_NS_PER_MS, until, sizeof until);
	rc = fp_inj_state_set(
		ctx,
		json_pack("{s:s,s:s,s:I,s:s,s:I,s:s}", "host",
			  fp_kv_get(with, "host") ? fp_kv_get(with, "host")
						  : "127.0.0.1",
			  "port", fp_kv_get(with, "port"), "ms", (json_int_t)ms,
			  "mode", mode, "until_ms", (json_int_t)until_ms,
			  "until", until),
		err);
	FP_INFO("event=inject injector=" NAME " ms=%lld mode=%s", (long long)ms,
		mode);
	return rc;
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
	json_t *st = fp_inj_state_get(ctx);
	int64_t now_ms = fp_wall_ns() / FP_NS_PER_MS, left_ms, ms = MAX_MS;
	redisContext *c = NULL;
	redisReply *r;
	int rc;

	if (fp_inj_state_is_not_applied(ctx)) {
		json_decref(st);
		return FP_OK;
	}
	fp_inj_i64(with, "ms", MAX_MS, 1, MAX_MS, &ms, NAME, NULL);
	if (st) {
		left_ms = json_integer_value(json_object_get(st, "until_ms")) -
			  now_ms;
		json_decref(st);
		if (left_ms <= 0) {
			/* The lease ran out: Redis already unpaused. */
			FP_INFO("event=revert injector=" NAME " expired=1");
			return FP_OK;
		}
	} else {
		/* No state (crash before "applied"): the pause may have
		 * started up to ms ago, so at most ms are left. */
		left_ms = ms;
	}
	rc = fp_inj_redis_connect(with, ctx,
				  (left_ms + 5000) * FP_NS_PER_MS, &c, NAME,
				  err);
	if (rc)
		return rc;
	r = redisCommand(c, "CLIENT UNPAUSE");
	if (!r || r->type != REDIS_REPLY_STATUS) {
		rc = fp_err_set(err, r ? FP_EBACKEND : FP_EUNREACHABLE,
				NAME ": CLIENT UNPAUSE: %s (the pause ends by "
				     "itself within %lld ms)",
				r ? (r->str ? r->str : "unexpected reply")
				  : c->errstr,
				(long long)left_ms);
	}
	freeReplyObject(r);
	redisFree(c);
	if (!rc)
		FP_INFO("event=revert injector=" NAME " unpaused=1");
	return rc;
}

const struct fp_injector fp_injector_redis_pause = {
	.name = NAME,
	.summary = "pause Redis clients (CLIENT PAUSE ms, ALL or WRITE) as a "
		   "lease that expires by itself; revert CLIENT UNPAUSE",
	.validate = validate,
	.apply = apply,
	.revert = revert,
};
