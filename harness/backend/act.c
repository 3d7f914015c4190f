/* act.c - HTTP and command actions (see fp_act.h). */
#include "harness/backend/fp_act.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
	char *buf;
	size_t len, cap;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct sink *s = ud;
	size_t n = sz * nm, room = s->cap - 1 - s->len;

	/* Keep only the start of the body: enough for a report. */
	if (n < room)
		room = n;
	memcpy(s->buf + s->len, p, room);
	s->len += room;
	s->buf[s->len] = '\0';
	return n;
}

static int run_http(const struct fp_action *a, struct fp_act_result *res,
		    struct fp_err *err)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL;
	struct sink s = {res->output, 0, sizeof res->output};
	CURL *c;
	CURLcode cc;
	int rc = FP_OK;

	pthread_once(&curl_once, curl_init_once);
	c = curl_easy_init();
	if (!c)
		return fp_err_set(err, FP_ENOMEM, "curl handle");
	res->output[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, a->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, a->method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
			 (long)(a->timeout_ns / FP_NS_PER_MS));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	for (size_t i = 0; i < a->headers.n; i++) {
		char h[1024];

		snprintf(h, sizeof h, "%s: %s", a->headers.items[i].key,
			 a->headers.items[i].value);
		hl = curl_slist_append(hl, h);
	}
	if (a->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
				 (long)strlen(a->body));
	} else if (strcmp(a->method, "POST") == 0 ||
		   strcmp(a->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->http_status);
	if (cc == CURLE_OPERATION_TIMEDOUT)
		rc = fp_err_set(err, FP_ETIMEOUT, "action %s: %s %s: %s",
				a->name, a->method, a->url, ebuf);
	else if (cc)
		rc = fp_err_set(err, FP_EUNREACHABLE, "action %s: %s %s: %s",
				a->name, a->method, a->url,
				ebuf[0] ? ebuf : curl_easy_strerror(cc));
	else if (a->expect_status
			 ? res->http_status != a->expect_status
			 : (res->http_status < 200 || res->http_status > 299))
		rc = fp_err_set(err, FP_EBACKEND,
				"action %s: %s %s answered %ld (expected %d): "
				"%.200s",
				a->name, a->method, a->url, res->http_status,
				a->expect_status ? a->expect_status : 200,
				res->output);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc;
}

static int run_command(const struct fp_action *a, struct fp_act_result *res,
		       struct fp_err *err)
{
	int pfd[2], status = 0;
	int64_t deadline = fp_mono_ns() + a->timeout_ns;
	size_t len = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return fp_err_set(err, FP_EIO, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return fp_err_set(err, FP_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* Own process group, so a timeout kills everything it spawned. */
		setpgid(0, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execvp(a->argv[0], a->argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(pfd[1]);
	res->output[0] = '\0';
	for (;;) {
		int64_t left = deadline - fp_mono_ns();
		struct pollfd p = {pfd[0], POLLIN, 0};
		char tmp[512];
		ssize_t r;

		if (left <= 0) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			close(pfd[0]);
			res->exit_code = -1;
			return fp_err_set(err, FP_ETIMEOUT,
					  "action %s: command timed out",
					  a->name);
		}
		if (poll(&p, 1, (int)(left / FP_NS_PER_MS) + 1) <= 0)
			continue;
		r = read(pfd[0], tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r && len + 1 < sizeof res->output; i++)
			res->output[len++] = tmp[i];
		res->output[len] = '\0';
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (res->exit_code != 0)
		return fp_err_set(err, FP_EBACKEND,
				  "action %s: command exited %d: %.200s",
				  a->name, res->exit_code, res->output);
	return FP_OK;
}

int fp_action_run(const struct fp_action *a, struct fp_act_result *res,
		  struct fp_err *err)
{
	struct fp_act_result local;
	int64_t t0 = fp_mono_ns();
	int rc;

	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
	rc = a->kind == FP_ACTION_HTTP ? run_http(a, res, err)
				       : run_command(a, res, err);
	res->elapsed_ns = fp_mono_ns() - t0;
	FP_INFO("event=action name=%s rc=%s elapsed_ms=%lld", a->name,
		fp_rc_name((enum fp_rc)rc),
		(long long)(res->elapsed_ns / FP_NS_PER_MS));
	return rc;
}
