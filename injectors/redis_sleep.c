/*
 * redis_sleep.c - stall the whole Redis server with DEBUG SLEEP <seconds>:
 * its one command thread sleeps, so every client (and replication) waits.
 * A one-shot that undoes itself: nothing can cut the sleep short, which is
 * also why seconds is capped.
 *
 * DEBUG SLEEP blocks the connection that sent it until the sleep ends, so it
 * always goes on a connection of its own. Two ways to wait for it:
 *   wait: true   apply() returns after the reply (socket timeout = the
 *                sleep + 5s) and reports how long Redis was blocked; the
 *                steps after it run once Redis answers again.
 *   wait: false  (default) apply() returns as soon as the command is on the
 *                wire; a detached thread reads the reply and logs it. The
 *                scenario's next steps run during the stall, which is what
 *                a drill usually wants to observe.
 * Redis 7 refuses DEBUG unless started with --enable-debug-command (local or
 * yes); a DEBUG SLEEP 0 probe first turns that into a clear error instead of
 * one only the detached thread would see.
 */
#include <errno.h>
#include <hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/inj_util.h"

#define NAME "redis.sleep"
#define MAX_SECONDS 300.0

static const char *const keys[] = {"host", "port",    "user", "password",
				   "seconds", "wait", NULL};

static int parse(const struct fp_kvlist *with, double *secs, int *wait,
		 struct fp_err *err)
{
	const char *s = fp_kv_get(with, "seconds");
	char *end;

	if (!s)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": needs seconds (how long Redis "
				       "sleeps, e.g. 2 or 0.5)");
	errno = 0;
	*secs = strtod(s, &end);
	if (errno || end == s || *end || !(*secs > 0) || *secs > MAX_SECONDS)
		return fp_err_set(err, FP_ESPEC,
				  NAME ": seconds must be a number in (0, "
				       "%.0f], got \"%s\"",
				  MAX_SECONDS, s);
	return fp_inj_bool(with, "wait", 0, wait, NAME, err);
}

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	double secs;
	int wait, rc = fp_inj_check_keys(with, NAME, keys, NULL, err);

	if (!rc)
		rc = fp_inj_redis_validate(with, NAME, err);
	if (!rc)
		rc = parse(with, &secs, &wait, err);
	return rc;
}

struct waiter {
	redisContext *c;
	double secs;
	int64_t t0;
};

static void *wait_reply(void *arg)
{
	struct waiter *w = arg;
	void *reply = NULL;
	redisReply *r;

	if (redisGetReply(w->c, &reply) != REDIS_OK)
		FP_WARN("event=redis_sleep_reply ok=0 error=\"%s\"",
			w->c->errstr);
	r = reply;
	if (r)
		FP_INFO("event=redis_sleep_reply ok=%d blocked_ms=%lld",
			r->type == REDIS_REPLY_STATUS,
			(long long)((fp_mono_ns() - w->t0) / FP_NS_PER_MS));
	freeReplyObject(r);
	redisFree(w->c);
	free(w);
	return NULL;
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	redisContext *c = NULL;
	redisReply *r;
	struct waiter *w;
	pthread_attr_t attr;
	pthread_t tid;
	double secs;
	int wait, rc, done = 0;
	int64_t t0, blocked_ms = -1, timeout_ns;
	char arg[32];

	ctx->state[0] = '\0';
	rc = validate(with, err);
	if (rc)
		return rc;
	parse(with, &secs, &wait, NULL);
	snprintf(arg, sizeof arg, "%.3f", secs);
	timeout_ns = (int64_t)(secs * 1e9) + 5 * FP_NS_PER_S;
	rc = fp_inj_redis_connect(with, ctx, timeout_ns, &c, NAME, err);
	if (rc)
		return rc;
	r = redisCommand(c, "DEBUG SLEEP 0");
	if (!r || r->type != REDIS_REPLY_STATUS) {
		rc = fp_err_set(err, r ? FP_EBACKEND : FP_EUNREACHABLE,
				NAME ": DEBUG is not usable: %s",
				r ? (r->str ? r->str : "unexpected reply")
				  : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		return rc;
	}
	freeReplyObject(r);
	t0 = fp_mono_ns();
	if (wait) {
		r = redisCommand(c, "DEBUG SLEEP %s", arg);
		if (!r || r->type != REDIS_REPLY_STATUS)
			rc = fp_err_set(err, r ? FP_EBACKEND : FP_ETIMEOUT,
					NAME ": DEBUG SLEEP %s: %s", arg,
					r ? (r->str ? r->str : "unexpected")
					  : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		if (rc)
			return rc;
		blocked_ms = (fp_mono_ns() - t0) / FP_NS_PER_MS;
	} else {
		/* Put the command on the wire here, so "applied" means Redis
		 * has it; only the reply is left to the thread. */
		if (redisAppendCommand(c, "DEBUG SLEEP %s", arg) != REDIS_OK)
			goto io_error;
		while (!done)
			if (redisBufferWrite(c, &done) != REDIS_OK)
				goto io_error;
		w = malloc(sizeof *w);
		if (w) {
			*w = (struct waiter){c, secs, t0};
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr,
						    PTHREAD_CREATE_DETACHED);
			if (pthread_create(&tid, &attr, wait_reply, w)) {
				free(w);
				w = NULL;
			}
			pthread_attr_destroy(&attr);
		}
		if (!w) {
			/* No thread: the command is already sent, so wait
			 * for the reply here rather than leave it behind. */
			void *reply = NULL;

			redisGetReply(c, &reply);
			freeReplyObject(reply);
			redisFree(c);
			blocked_ms = (fp_mono_ns() - t0) / FP_NS_PER_MS;
			wait = 1;
		}
	}
	rc = fp_inj_state_set(
		ctx,
		json_pack("{s:s,s:s,s:f,s:b}", "host",
			  fp_kv_get(with, "host") ? fp_kv_get(with, "host")
						  : "127.0.0.1",
			  "port", fp_kv_get(with, "port"), "seconds", secs,
			  "waited", wait),
		err);
	if (blocked_ms >= 0 && !rc) {
		json_t *st = fp_inj_state_get(ctx);

		json_object_set_new(st, "blocked_ms", json_integer(blocked_ms));
		rc = fp_inj_state_set(ctx, st, err);
	}
	FP_INFO("event=inject injector=" NAME " seconds=%s waited=%d", arg,
		wait);
	return rc;
io_error:
	rc = fp_err_set(err, FP_EUNREACHABLE, NAME ": sending DEBUG SLEEP: %s",
			c->errstr);
	redisFree(c);
	return rc;
}

const struct fp_injector fp_injector_redis_sleep = {
	.name = NAME,
	.summary = "stall the whole Redis server with DEBUG SLEEP seconds "
		   "(needs --enable-debug-command; one-shot)",
	.validate = validate,
	.apply = apply,
	.revert = NULL,
};
