/*
 * inj_util.c - helpers shared by the injectors (see inj_util.h).
 *
 * Kept out of the injector files so every injector parses arguments, names
 * signals and identifies processes the same way, and so the one place that
 * reads /proc or resolves a secret is reviewed once.
 */
#include "injectors/inj_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_secret.h"

/* ---- arguments ------------------------------------------------------------ */

int fp_inj_check_keys(const struct fp_kvlist *with, const char *inj,
		      const char *const *allowed, const char *const *prefixes,
		      struct fp_err *err)
{
	for (size_t i = 0; with && i < with->n; i++) {
		const char *k = with->items[i].key;
		int ok = 0;

		for (size_t j = 0; allowed[j] && !ok; j++)
			ok = strcmp(k, allowed[j]) == 0;
		for (size_t j = 0; prefixes && prefixes[j] && !ok; j++)
			ok = strncmp(k, prefixes[j], strlen(prefixes[j])) == 0 &&
			     k[strlen(prefixes[j])] != '\0';
		if (!ok)
			return fp_err_set(err, FP_ESPEC,
					  "%s: unknown argument '%s'", inj, k);
	}
	return FP_OK;
}

int fp_inj_i64(const struct fp_kvlist *with, const char *key, int64_t def,
	       int64_t lo, int64_t hi, int64_t *out, const char *inj,
	       struct fp_err *err)
{
	const char *v = fp_kv_get(with, key);
	char *end;
	long long x;

	*out = def;
	if (!v)
		return FP_OK;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return fp_err_set(err, FP_ESPEC,
				  "%s: %s must be an integer in [%lld, %lld], "
				  "got \"%s\"",
				  inj, key, (long long)lo, (long long)hi, v);
	*out = x;
	return FP_OK;
}

int fp_inj_bool(const struct fp_kvlist *with, const char *key, int def,
		int *out, const char *inj, struct fp_err *err)
{
	const char *v = fp_kv_get(with, key);

	*out = def;
	if (!v)
		return FP_OK;
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = 0;
	else
		return fp_err_set(err, FP_ESPEC,
				  "%s: %s must be true or false, got \"%s\"",
				  inj, key, v);
	return FP_OK;
}

int fp_inj_duration(const struct fp_kvlist *with, const char *key,
		    int64_t def_ns, int64_t lo_ns, int64_t hi_ns, int64_t *out,
		    const char *inj, struct fp_err *err)
{
	const char *v = fp_kv_get(with, key);
	char lo[32], hi[32];

	*out = def_ns;
	if (!v)
		return FP_OK;
	if (fp_duration_parse(v, out) == 0 && *out >= lo_ns && *out <= hi_ns)
		return FP_OK;
	fp_duration_fmt(lo_ns, lo, sizeof lo);
	fp_duration_fmt(hi_ns, hi, sizeof hi);
	return fp_err_set(err, FP_ESPEC,
			  "%s: %s must be a duration (e.g. 500ms, 10s) between "
			  "%s and %s, got \"%s\"",
			  inj, key, lo, hi, v);
}

int fp_inj_secret_arg(const struct fp_kvlist *with, const char *key,
		      const char *inj, struct fp_err *err)
{
	const char *v = fp_kv_get(with, key);

	/* The value itself is never echoed: it may be a pasted secret. */
	if (v && !fp_secret_is_ref(v))
		return fp_err_set(err, FP_ESPEC,
				  "%s: %s must be a secret reference "
				  "(env:NAME or file:PATH), not a literal",
				  inj, key);
	return FP_OK;
}

void fp_inj_argv_free(char **argv)
{
	if (!argv)
		return;
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static int argv_push(char ***argv, size_t *argc, size_t *cap, const char *s,
		     size_t len)
{
	if (*argc + 2 > *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		char **n = realloc(*argv, ncap * sizeof *n);

		if (!n)
			return -1;
		*argv = n;
		*cap = ncap;
	}
	(*argv)[*argc] = strndup(s, len);
	if (!(*argv)[*argc])
		return -1;
	(*argv)[++*argc] = NULL;
	return 0;
}

int fp_inj_argv(const char *text, const char *json_text, char ***argv,
		size_t *argc, const char *inj, const char *key,
		struct fp_err *err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;

	*argv = NULL;
	*argc = 0;
	if (!!text == !!json_text)
		return fp_err_set(err, FP_ESPEC,
				  "%s: give exactly one of %s and %s_json", inj,
				  key, key);
	if (text) {
		const char *p = text;

		while (*p) {
			const char *s;

			while (*p && isspace((unsigned char)*p))
				p++;
			s = p;
			while (*p && !isspace((unsigned char)*p))
				p++;
			if (p > s && argv_push(&v, &n, &cap, s, (size_t)(p - s)))
				goto oom;
		}
	} else {
		json_error_t je;
		json_t *a = json_loads(json_text, JSON_REJECT_DUPLICATES, &je);
		size_t i;
		json_t *e;

		if (!json_is_array(a)) {
			json_decref(a);
			return fp_err_set(err, FP_ESPEC,
					  "%s: %s_json must be a JSON array of "
					  "strings such as [\"prog\",\"arg\"]",
					  inj, key);
		}
		json_array_foreach(a, i, e)
		{
			if (!json_is_string(e)) {
				json_decref(a);
				fp_inj_argv_free(v);
				return fp_err_set(err, FP_ESPEC,
						  "%s: %s_json element %zu is "
						  "not a string",
						  inj, key, i);
			}
			if (argv_push(&v, &n, &cap, json_string_value(e),
				      json_string_length(e))) {
				json_decref(a);
				goto oom;
			}
		}
		json_decref(a);
	}
	if (n == 0) {
		fp_inj_argv_free(v);
		return fp_err_set(err, FP_ESPEC, "%s: %s is empty", inj, key);
	}
	*argv = v;
	*argc = n;
	return FP_OK;
oom:
	fp_inj_argv_free(v);
	return fp_err_set(err, FP_ENOMEM, "%s: argv", inj);
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
	{"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
	{"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
	{"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
	{"ABRT", SIGABRT}, {"SEGV", SIGSEGV},
};

int fp_inj_signal_parse(const char *s, int *sig)
{
	char up[16];
	size_t i;

	if (!s || !*s)
		return -1;
	if (isdigit((unsigned char)*s)) {
		char *end;
		long x = strtol(s, &end, 10);

		/* 0 is "check only", and real-time signals are not faults. */
		if (*end || x < 1 || x > 31)
			return -1;
		*sig = (int)x;
		return 0;
	}
	for (i = 0; s[i] && i + 1 < sizeof up; i++)
		up[i] = (char)toupper((unsigned char)s[i]);
	up[i] = '\0';
	if (s[i])
		return -1;
	for (size_t j = 0; j < sizeof signals / sizeof signals[0]; j++)
		if (!strcmp(up, signals[j].name) ||
		    (!strncmp(up, "SIG", 3) && !strcmp(up + 3, signals[j].name))) {
			*sig = signals[j].sig;
			return 0;
		}
	return -1;
}

const char *fp_inj_signal_name(int sig)
{
	static const char *const names[] = {
		[SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",
		[SIGQUIT] = "SIGQUIT", [SIGKILL] = "SIGKILL",
		[SIGUSR1] = "SIGUSR1", [SIGUSR2] = "SIGUSR2",
		[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",
		[SIGTERM] = "SIGTERM", [SIGCONT] = "SIGCONT",
		[SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
		[SIGABRT] = "SIGABRT", [SIGSEGV] = "SIGSEGV",
	};

	if (sig > 0 && (size_t)sig < sizeof names / sizeof names[0] &&
	    names[sig])
		return names[sig];
	return "SIG?";
}

/* ---- state JSON ----------------------------------------------------------- */

int fp_inj_state_set(struct fp_inject_ctx *ctx, json_t *obj,
		     struct fp_err *err)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len = s ? strlen(s) : 0;
	int rc = FP_OK;

	json_decref(obj);
	if (!s)
		return fp_err_set(err, FP_ENOMEM, "state JSON");
	if (len >= sizeof ctx->state)
		rc = fp_err_set(err, FP_EINTERNAL,
				"state JSON is %zu bytes, more than the %zu the "
				"journal keeps",
				len, sizeof ctx->state - 1);
	else
		memcpy(ctx->state, s, len + 1);
	free(s);
	return rc;
}

void fp_inj_state_not_applied(struct fp_inject_ctx *ctx)
{
	snprintf(ctx->state, sizeof ctx->state, "{\"applied\":false}");
}

int fp_inj_state_is_not_applied(const struct fp_inject_ctx *ctx)
{
	json_t *o = fp_inj_state_get(ctx);
	int r = json_is_false(json_object_get(o, "applied"));

	json_decref(o);
	return r;
}

json_t *fp_inj_state_get(const struct fp_inject_ctx *ctx)
{
	json_t *o;

	if (!ctx->state[0])
		return NULL;
	o = json_loads(ctx->state, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- processes ------------------------------------------------------------ */

/* Fields after the command name: it is in parentheses and may itself hold
 * spaces and ')', so parsing starts after the last ')'. */
static int read_stat(int pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	if (state)
		*state = p[2];
	/* p + 2 is field 3 (state); field 22 (starttime) is 19 further on. */
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	if (sscanf(p, "%llu", &st) != 1)
		return -1;
	if (start)
		*start = st;
	return 0;
}

char fp_inj_proc_state(int pid)
{
	char st = 0;

	return read_stat(pid, &st, NULL) ? 0 : st;
}

int fp_inj_proc_alive(const struct fp_inj_proc *p)
{
	unsigned long long st;
	char s;

	if (read_stat(p->pid, &s, &st))
		return 0;
	return st == p->start && s != 'Z' && s != 'X';
}

int fp_inj_proc_wait_gone(const struct fp_inj_proc *p, size_t n,
			  int64_t timeout_ns)
{
	int64_t deadline = fp_mono_ns() + timeout_ns;

	for (;;) {
		size_t alive = 0;

		for (size_t i = 0; i < n; i++)
			alive += (size_t)fp_inj_proc_alive(&p[i]);
		if (alive == 0)
			return 0;
		if (fp_mono_ns() >= deadline)
			return -1;
		fp_sleep_ns(20 * FP_NS_PER_MS, NULL);
	}
}

int fp_inj_proc_validate(const struct fp_kvlist *with, const char *inj,
			 int required, struct fp_err *err)
{
	const char *pf = fp_kv_get(with, "pid_file");
	const char *m = fp_kv_get(with, "match");
	int all, rc;
	regex_t re;

	rc = fp_inj_bool(with, "all", 0, &all, inj, err);
	if (rc)
		return rc;
	if (pf && m)
		return fp_err_set(err, FP_ESPEC,
				  "%s: give pid_file or match, not both", inj);
	if (required && !pf && !m)
		return fp_err_set(err, FP_ESPEC,
				  "%s: needs pid_file (a file holding one pid) "
				  "or match (a pgrep -f style regex)",
				  inj);
	if (pf && !*pf)
		return fp_err_set(err, FP_ESPEC, "%s: pid_file is empty", inj);
	if (all && !m)
		return fp_err_set(err, FP_ESPEC,
				  "%s: all: true only applies to match", inj);
	if (m) {
		int r;

		if (!*m)
			return fp_err_set(err, FP_ESPEC,
					  "%s: match is empty (it would match "
					  "every process)",
					  inj);
		r = regcomp(&re, m, REG_EXTENDED | REG_NOSUB);
		if (r) {
			char msg[128];

			regerror(r, &re, msg, sizeof msg);
			return fp_err_set(err, FP_ESPEC,
					  "%s: match \"%s\" is not an extended "
					  "regex: %s",
					  inj, m, msg);
		}
		regfree(&re);
	}
	return FP_OK;
}

static int read_cmdline(int pid, char *buf, size_t bufsz)
{
	char path[64];
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, bufsz - 1, f);
	fclose(f);
	/* Arguments are NUL-separated; pgrep -f joins them with spaces. */
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

static int find_by_pid_file(const char *pf, const char *inj,
			    struct fp_inj_proc *out, size_t *n,
			    struct fp_err *err)
{
	char buf[64], *end;
	size_t len;
	long pid;
	char st;
	FILE *f = fopen(pf, "r");

	if (!f)
		return fp_err_set(err, FP_ENOTFOUND, "%s: pid_file '%s': %s",
				  inj, pf, strerror(errno));
	len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	while (*end && isspace((unsigned char)*end))
		end++;
	if (errno || end == buf || *end || pid <= 1 || pid > INT_MAX)
		return fp_err_set(err, FP_EINVAL,
				  "%s: pid_file '%s' does not hold one pid",
				  inj, pf);
	if (pid == getpid())
		return fp_err_set(err, FP_EINVAL,
				  "%s: pid_file '%s' names the harness itself",
				  inj, pf);
	out[0].pid = (int)pid;
	if (read_stat(out[0].pid, &st, &out[0].start) || st == 'Z')
		return fp_err_set(err, FP_ENOTFOUND,
				  "%s: pid_file '%s' names pid %ld, which is "
				  "not running",
				  inj, pf, pid);
	*n = 1;
	return FP_OK;
}

int fp_inj_proc_find(const struct fp_kvlist *with, const char *inj,
		     struct fp_inj_proc *out, size_t max, size_t *n,
		     struct fp_err *err)
{
	const char *pf = fp_kv_get(with, "pid_file");
	const char *m = fp_kv_get(with, "match");
	char cmd[4096], list[160] = "";
	size_t found = 0, llen = 0;
	int all = 0, self = getpid(), rc;
	struct dirent *de;
	regex_t re;
	DIR *d;

	*n = 0;
	rc = fp_inj_proc_validate(with, inj, 1, err);
	if (rc)
		return rc;
	fp_inj_bool(with, "all", 0, &all, inj, NULL);
	if (pf)
		return find_by_pid_file(pf, inj, out, n, err);
	if (regcomp(&re, m, REG_EXTENDED | REG_NOSUB))
		return fp_err_set(err, FP_ESPEC, "%s: bad match", inj);
	d = opendir("/proc");
	if (!d) {
		regfree(&re);
		return fp_err_set(err, FP_EIO, "%s: /proc: %s", inj,
				  strerror(errno));
	}
	while ((de = readdir(d))) {
		struct fp_inj_proc p;
		char st;
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		p.pid = (int)pid;
		/* Kernel threads have no command line; zombies cannot be
		 * stopped or killed and would only make a match ambiguous. */
		if (read_cmdline(p.pid, cmd, sizeof cmd) ||
		    regexec(&re, cmd, 0, NULL, 0) ||
		    read_stat(p.pid, &st, &p.start) || st == 'Z' || st == 'X')
			continue;
		if (found < max)
			out[found] = p;
		if (llen < sizeof list - 16)
			llen += (size_t)snprintf(list + llen, sizeof list - llen,
						 "%s%d", found ? " " : "",
						 p.pid);
		found++;
	}
	closedir(d);
	regfree(&re);
	if (found == 0)
		return fp_err_set(err, FP_ENOTFOUND,
				  "%s: match \"%s\" finds no process", inj, m);
	if (found > 1 && !all)
		return fp_err_set(err, FP_EINVAL,
				  "%s: match \"%s\" finds %zu processes (%s); "
				  "make it unambiguous or set all: true",
				  inj, m, found, list);
	if (found > max)
		return fp_err_set(err, FP_EINVAL,
				  "%s: match \"%s\" finds %zu processes, more "
				  "than the %zu one step may touch",
				  inj, m, found, max);
	*n = found;
	return FP_OK;
}

void fp_inj_proc_to_json(json_t *obj, const char *key,
			 const struct fp_inj_proc *p, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(
			a, json_pack("{s:i,s:I}", "pid", p[i].pid, "start",
				     (json_int_t)p[i].start));
	json_object_set_new(obj, key, a);
}

size_t fp_inj_proc_from_json(json_t *obj, const char *key,
			     struct fp_inj_proc *p, size_t max)
{
	json_t *a = json_object_get(obj, key), *e;
	size_t i, n = 0;

	json_array_foreach(a, i, e)
	{
		json_t *pid = json_object_get(e, "pid");
		json_t *st = json_object_get(e, "start");

		if (n < max && json_is_integer(pid) && json_is_integer(st)) {
			p[n].pid = (int)json_integer_value(pid);
			p[n].start = (unsigned long long)json_integer_value(st);
			n++;
		}
	}
	return n;
}

/* ---- Redis ---------------------------------------------------------------- */

int fp_inj_redis_validate(const struct fp_kvlist *with, const char *inj,
			  struct fp_err *err)
{
	int64_t port;
	int rc;

	if (!fp_kv_get(with, "port"))
		return fp_err_set(err, FP_ESPEC,
				  "%s: needs port (and host, default "
				  "127.0.0.1)",
				  inj);
	rc = fp_inj_i64(with, "port", 0, 1, 65535, &port, inj, err);
	if (!rc)
		rc = fp_inj_secret_arg(with, "password", inj, err);
	if (!rc && fp_kv_get(with, "user") && !fp_kv_get(with, "password"))
		rc = fp_err_set(err, FP_ESPEC, "%s: user needs password", inj);
	return rc;
}

void fp_inj_redis_timeout(struct redisContext *c, int64_t timeout_ns)
{
	struct timeval tv = {(time_t)(timeout_ns / FP_NS_PER_S),
			     (suseconds_t)(timeout_ns % FP_NS_PER_S / 1000)};

	redisSetTimeout(c, tv);
}

int fp_inj_redis_connect(const struct fp_kvlist *with,
			 const struct fp_inject_ctx *ctx, int64_t cmd_timeout_ns,
			 struct redisContext **out, const char *inj,
			 struct fp_err *err)
{
	const char *host = fp_kv_get(with, "host");
	const char *user = fp_kv_get(with, "user");
	const char *pref = fp_kv_get(with, "password");
	struct timeval ct = {3, 0};
	char *pw = NULL;
	redisContext *c;
	redisReply *r;
	int64_t port;
	int rc;

	*out = NULL;
	rc = fp_inj_redis_validate(with, inj, err);
	if (rc)
		return rc;
	fp_inj_i64(with, "port", 0, 1, 65535, &port, inj, NULL);
	if (!host)
		host = "127.0.0.1";
	if (pref) {
		rc = fp_secret_resolve(pref, ctx && ctx->env ? ctx->env->dir
							      : NULL,
				       &pw, err);
		if (rc)
			return fp_err_prefix(err, "%s: password: ", inj);
	}
	c = redisConnectWithTimeout(host, (int)port, ct);
	if (!c || c->err) {
		rc = fp_err_set(err, FP_EUNREACHABLE, "%s: redis %s:%lld: %s",
				inj, host, (long long)port,
				c ? c->errstr : "out of memory");
		redisFree(c);
		fp_secret_free(pw);
		return rc;
	}
	fp_inj_redis_timeout(c, cmd_timeout_ns);
	if (pw) {
		r = user ? redisCommand(c, "AUTH %s %s", user, pw)
			 : redisCommand(c, "AUTH %s", pw);
		fp_secret_free(pw);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			/* The server's message names neither the user's
			 * password nor the reference's content. */
			rc = fp_err_set(err, r ? FP_EBACKEND : FP_EUNREACHABLE,
					"%s: redis AUTH (%s): %s", inj, pref,
					r ? r->str : c->errstr);
			freeReplyObject(r);
			redisFree(c);
			return rc;
		}
		freeReplyObject(r);
	}
	*out = c;
	return FP_OK;
}

/* ---- PostgreSQL ----------------------------------------------------------- */

int fp_inj_pg_validate(const struct fp_kvlist *with, const char *inj,
		       struct fp_err *err)
{
	const char *ci = fp_kv_get(with, "conninfo");

	if (ci && strstr(ci, "password"))
		return fp_err_set(err, FP_ESPEC,
				  "%s: conninfo must not carry a password; "
				  "give password: env:NAME or file:PATH",
				  inj);
	if (fp_kv_get(with, "password") && !ci)
		return fp_err_set(err, FP_ESPEC,
				  "%s: password needs conninfo (without "
				  "conninfo the env profile's target.postgres "
				  "is used with its own password)",
				  inj);
	return fp_inj_secret_arg(with, "password", inj, err);
}

int fp_inj_pg_connect(const struct fp_kvlist *with,
		      const struct fp_inject_ctx *ctx, const char *app_name,
		      struct fp_pg **out, const char *inj, struct fp_err *err)
{
	const char *ci = fp_kv_get(with, "conninfo");
	const char *pref = fp_kv_get(with, "password");
	const struct fp_env *env = ctx ? ctx->env : NULL;
	char full[2048], *pw = NULL;
	int rc;

	*out = NULL;
	rc = fp_inj_pg_validate(with, inj, err);
	if (rc)
		return rc;
	if (!ci && env && env->pg_conninfo) {
		ci = env->pg_conninfo;
		pref = env->pg_password_ref;
	}
	if (!ci)
		return fp_err_set(err, FP_ESPEC,
				  "%s: needs conninfo, or an env profile with "
				  "target.postgres",
				  inj);
	/* The session's name shows in pg_stat_activity; a URI takes it as a
	 * query parameter, key=value conninfo as one more pair. Given twice,
	 * libpq keeps the last, so ours wins. */
	if (strstr(ci, "://"))
		snprintf(full, sizeof full, "%s%capplication_name=%s", ci,
			 strchr(ci, '?') ? '&' : '?', app_name);
	else
		snprintf(full, sizeof full, "%s application_name=%s", ci,
			 app_name);
	if (pref) {
		rc = fp_secret_resolve(pref, env ? env->dir : NULL, &pw, err);
		if (rc)
			return fp_err_prefix(err, "%s: password: ", inj);
	}
	rc = fp_pg_connect(full, pw, out, err);
	fp_secret_free(pw);
	if (rc)
		fp_err_prefix(err, "%s: ", inj);
	return rc;
}
