/*
 * sampler.c - the run's time series and its stop conditions.
 *
 * One thread samples every series each period (default 250 ms): the decision
 * group's lag from Kafka, and the env profile's samplers (SQL counters, HTTP
 * probes, Prometheus scrapes). It keeps every sample in memory (a drill is
 * minutes to hours: a few thousand points per series) so recovery bounds can
 * be computed afterwards from the whole curve, writes them to samples.tsv,
 * and evaluates the time-qualified stop conditions after each round.
 * The thread has its own Kafka, PostgreSQL and curl handles: nothing is
 * shared with the run loop but the series, under one mutex.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_kafka.h"
#include "harness/backend/fp_pg.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "harness/run/run_int.h"

struct point {
	int64_t t;
	double v;
};

struct fp_series {
	char name[96];
	struct point *pts;
	size_t n, cap;
};

struct fp_sampling {
	struct fp_sampling_conf c;
	char *pg_password;
	struct fp_kafka *kafka;
	struct fp_pg *pg;
	CURL *curl;
	pthread_t th;
	int running;
	volatile int stop;
	pthread_mutex_t mu;
	struct fp_series *series;
	size_t n_series;
	int64_t *cond_since;             /* per stop condition; 0 = not holding */
	const struct fp_stop_condition *fired;
	char fired_why[256];
	int offsets_detached;            /* under mu */
};

int fp_cmp_holds(enum fp_cmp op, double a, double b)
{
	switch (op) {
	case FP_CMP_LT: return a < b;
	case FP_CMP_LE: return a <= b;
	case FP_CMP_EQ: return a == b;
	case FP_CMP_GE: return a >= b;
	case FP_CMP_GT: return a > b;
	}
	return 0;
}

const char *fp_cmp_name(enum fp_cmp op)
{
	static const char *const n[] = {"<", "<=", "==", ">=", ">"};

	return (unsigned)op < 5 ? n[op] : "?";
}

static struct fp_series *series_get(struct fp_sampling *s, const char *name)
{
	struct fp_series *ns;

	for (size_t i = 0; i < s->n_series; i++)
		if (strcmp(s->series[i].name, name) == 0)
			return &s->series[i];
	ns = realloc(s->series, (s->n_series + 1) * sizeof *ns);
	if (!ns)
		return NULL;
	s->series = ns;
	ns = &s->series[s->n_series++];
	memset(ns, 0, sizeof *ns);
	snprintf(ns->name, sizeof ns->name, "%s", name);
	return ns;
}

static void record(struct fp_sampling *s, const char *name, int64_t t,
		   double v)
{
	struct fp_series *se;

	pthread_mutex_lock(&s->mu);
	se = series_get(s, name);
	if (se && se->n == se->cap) {
		size_t ncap = se->cap ? se->cap * 2 : 256;
		struct point *np = realloc(se->pts, ncap * sizeof *np);

		if (np) {
			se->pts = np;
			se->cap = ncap;
		}
	}
	if (se && se->n < se->cap)
		se->pts[se->n++] = (struct point){t, v};
	pthread_mutex_unlock(&s->mu);
	if (s->c.out)
		fprintf(s->c.out, "%.3f\t%s\t%.17g\n",
			(double)(t - s->c.t0) / 1e9, name, v);
}

/* ---- one sampler ------------------------------------------------------- */

struct body {
	char *p;
	size_t n, cap;
};

static size_t on_body(char *d, size_t sz, size_t nm, void *ud)
{
	struct body *b = ud;
	size_t n = sz * nm;

	/* Metrics pages are small; cap at 4 MiB so a wrong URL cannot eat
	 * memory. */
	if (b->n + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 16384;
		char *np;

		while (ncap < b->n + n + 1)
			ncap *= 2;
		if (ncap > (4u << 20))
			return 0;
		np = realloc(b->p, ncap);
		if (!np)
			return 0;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static int http_get(struct fp_sampling *s, const char *url, int64_t timeout,
		    long *status, struct body *b, double *ms)
{
	CURLcode cc;
	double secs = 0;

	curl_easy_reset(s->curl);
	curl_easy_setopt(s->curl, CURLOPT_URL, url);
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS,
			 (long)(timeout / FP_NS_PER_MS));
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(s->curl);
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_getinfo(s->curl, CURLINFO_TOTAL_TIME, &secs);
	*ms = secs * 1e3;
	return cc == CURLE_OK ? 0 : -1;
}

/* Does a metrics line's label set contain every k="v" of the matcher? */
static int labels_match(const char *line_labels, const char *want)
{
	char buf[512];
	char *save = NULL, *tok;

	if (!want || !*want)
		return 1;
	snprintf(buf, sizeof buf, "%s", want);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (!line_labels || !strstr(line_labels, tok))
			return 0;
	}
	return 1;
}

/*
 * Sum the samples of one metric in Prometheus text format. metric is
 * `name` or `name{k="v",...}`; lines whose label set contains every given
 * label count. Returns 0 and the sum, -1 when no line matched.
 */
int fp_prometheus_value(const char *text, const char *metric, double *out);

int fp_prometheus_value(const char *text, const char *metric, double *out)
{
	char name[256], want[512] = "";
	const char *brace = strchr(metric, '{');
	const char *p = text;
	double sum = 0;
	int found = 0;

	if (brace) {
		snprintf(name, sizeof name, "%.*s", (int)(brace - metric), metric);
		snprintf(want, sizeof want, "%s", brace + 1);
		want[strcspn(want, "}")] = '\0';
	} else {
		snprintf(name, sizeof name, "%s", metric);
	}
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		size_t nl = strlen(name);

		if (*p != '#' && len > nl && strncmp(p, name, nl) == 0 &&
		    (p[nl] == ' ' || p[nl] == '{')) {
			char line[1024], *labels = NULL, *val;

			snprintf(line, sizeof line, "%.*s", (int)len, p);
			if (line[nl] == '{') {
				char *close = strchr(line + nl, '}');

				labels = line + nl + 1;
				if (!close)
					goto next;
				*close = '\0';
				val = close + 1;
			} else {
				val = line + nl;
			}
			if (labels_match(labels, want)) {
				sum += strtod(val, NULL);
				found = 1;
			}
		}
next:
		p = eol ? eol + 1 : NULL;
	}
	if (!found)
		return -1;
	*out = sum;
	return 0;
}

static int count_params(const char *q)
{
	return strstr(q, "$2") ? 2 : strstr(q, "$1") ? 1 : 0;
}

void fp_tsv_field(char *out, size_t outsz, const char *v)
{
	size_t o = 0;

	if (!strpbrk(v, "\t\"\r\n")) {
		snprintf(out, outsz, "%s", v);
		return;
	}
	out[o++] = '"';
	for (; *v && o + 3 < outsz; v++) {
		if (*v == '"')
			out[o++] = '"';
		out[o++] = *v;
	}
	out[o++] = '"';
	out[o] = '\0';
}

void fp_offsets_write(FILE *f, int64_t t_ms, const char *kind,
		      const char *group, const char *topic,
		      const struct fp_part_offsets *po, size_t n)
{
	char g[512], t[512];

	fp_tsv_field(g, sizeof g, group);
	fp_tsv_field(t, sizeof t, topic);
	for (size_t i = 0; i < n; i++) {
		if (po[i].committed == FP_KAFKA_NO_OFFSET)
			fprintf(f, "%lld\t%s\t%s\t%s\t%d\t\t%lld\n",
				(long long)t_ms, kind, g, t, po[i].partition,
				(long long)po[i].high);
		else
			fprintf(f, "%lld\t%s\t%s\t%s\t%d\t%lld\t%lld\n",
				(long long)t_ms, kind, g, t, po[i].partition,
				(long long)po[i].committed,
				(long long)po[i].high);
	}
}

static void sample_lag(struct fp_sampling *s, const struct fp_sampler *sp,
		       int64_t now, int write_offsets)
{
	struct fp_part_offsets *po = NULL;
	struct fp_err err = {0};
	size_t n = 0;
	int64_t lag;

	if (!s->kafka || fp_kafka_group_lag(s->kafka, sp->group, sp->topic,
					    &po, &n, &lag, &err) != FP_OK) {
		free(po);
		return;
	}
	if (write_offsets) {
		int64_t done = fp_mono_ns();

		pthread_mutex_lock(&s->mu);
		if (s->c.offsets_out && !s->offsets_detached)
			fp_offsets_write(s->c.offsets_out,
					 (done - s->c.t0) / FP_NS_PER_MS,
					 "sample", sp->group, sp->topic, po, n);
		pthread_mutex_unlock(&s->mu);
	}
	record(s, sp->name, now, (double)lag);
	/* Per partition too: a lag that hides on one partition (a stuck
	 * consumer) is invisible in the sum. */
	for (size_t i = 0; i < n; i++) {
		char pname[128];
		int64_t from = po[i].committed == FP_KAFKA_NO_OFFSET
				       ? po[i].low
				       : po[i].committed;

		snprintf(pname, sizeof pname, "%s.p%d", sp->name,
			 po[i].partition);
		record(s, pname, now,
		       (double)(po[i].high > from ? po[i].high - from : 0));
	}
	free(po);
}

static void sample_one(struct fp_sampling *s, const struct fp_sampler *sp,
		       int64_t now)
{
	struct fp_err err = {0};

	switch (sp->kind) {
	case FP_SAMPLER_KAFKA_LAG:
		sample_lag(s, sp, now, 0);
		break;
	case FP_SAMPLER_SQL: {
		const char *params[2] = {s->c.platform_run_id,
					 s->c.env->event_class};
		struct fp_rows *rows;
		const char *v;

		if (!s->pg)
			break;
		if (fp_pg_query(s->pg, sp->query, count_params(sp->query),
				params, &rows, &err) == FP_OK) {
			v = fp_rows_get(rows, 0, 0);
			record(s, sp->name, now, v ? strtod(v, NULL) : 0);
			fp_rows_free(rows);
		} else {
			FP_DEBUG("event=sample_failed sampler=%s err=\"%s\"",
				 sp->name, err.msg);
		}
		break;
	}
	case FP_SAMPLER_HTTP: {
		struct body b = {0};
		long status = 0;
		double ms = 0;
		char lname[128];
		int ok = http_get(s, sp->url, sp->timeout_ns, &status, &b,
				  &ms) == 0;

		record(s, sp->name, now,
		       ok && status == (sp->expect_status ? sp->expect_status
							  : 200));
		snprintf(lname, sizeof lname, "%s.latency_ms", sp->name);
		if (ok)
			record(s, lname, now, ms);
		free(b.p);
		break;
	}
	case FP_SAMPLER_PROMETHEUS: {
		struct body b = {0};
		long status = 0;
		double ms = 0, v;

		if (http_get(s, sp->url, sp->timeout_ns, &status, &b, &ms) ==
			    0 &&
		    status == 200 && b.p &&
		    fp_prometheus_value(b.p, sp->metric, &v) == 0)
			record(s, sp->name, now, v);
		free(b.p);
		break;
	}
	}
}

static int latest_locked(struct fp_sampling *s, const char *name, double *v,
			 int64_t *at)
{
	for (size_t i = 0; i < s->n_series; i++)
		if (strcmp(s->series[i].name, name) == 0 && s->series[i].n) {
			*v = s->series[i].pts[s->series[i].n - 1].v;
			*at = s->series[i].pts[s->series[i].n - 1].t;
			return 0;
		}
	return -1;
}

static void eval_stop_conditions(struct fp_sampling *s, int64_t now)
{
	const struct fp_scenario *sc = s->c.sc;

	for (size_t i = 0; i < sc->n_stop_conditions && !s->fired; i++) {
		const struct fp_stop_condition *c = &sc->stop_conditions[i];
		double v;
		int64_t at;
		int have;

		pthread_mutex_lock(&s->mu);
		have = latest_locked(s, c->observable, &v, &at) == 0;
		pthread_mutex_unlock(&s->mu);
		if (!have || !fp_cmp_holds(c->op, v, c->value)) {
			s->cond_since[i] = 0;
			continue;
		}
		if (!s->cond_since[i])
			s->cond_since[i] = at;
		if (now - s->cond_since[i] >= c->for_ns) {
			pthread_mutex_lock(&s->mu);
			s->fired = c;
			snprintf(s->fired_why, sizeof s->fired_why,
				 "stop condition \"%s\" held (%s = %g)", c->text,
				 c->observable, v);
			pthread_mutex_unlock(&s->mu);
			FP_WARN("event=stop_condition condition=\"%s\" value=%g",
				c->text, v);
			if (s->c.stop_flag)
				*s->c.stop_flag = 1;
		}
	}
}

static void *sampling_main(void *arg)
{
	struct fp_sampling *s = arg;
	const struct fp_env *env = s->c.env;
	int64_t period = env->sample_every_ns ? env->sample_every_ns
					      : 250 * FP_NS_PER_MS;
	struct fp_sampler lag = {
		.name = "decision_group_lag",
		.kind = FP_SAMPLER_KAFKA_LAG,
		.group = (char *)s->c.group,
		.topic = (char *)s->c.topic,
	};

	while (!s->stop) {
		int64_t now = fp_mono_ns();

		/* Only the decision group's offsets are evidence for the
		 * offset checks; a profile's own lag samplers are series. */
		sample_lag(s, &lag, now, 1);
		for (size_t i = 0; i < env->n_samplers; i++)
			sample_one(s, &env->samplers[i], fp_mono_ns());
		if (s->c.out)
			fflush(s->c.out);
		pthread_mutex_lock(&s->mu);
		if (s->c.offsets_out && !s->offsets_detached)
			fflush(s->c.offsets_out);
		pthread_mutex_unlock(&s->mu);
		eval_stop_conditions(s, fp_mono_ns());
		fp_sleep_ns(period - (fp_mono_ns() - now),
			    (volatile int *)&s->stop);
	}
	return NULL;
}

int fp_sampling_start(const struct fp_sampling_conf *c,
		      struct fp_sampling **out, struct fp_err *err)
{
	struct fp_sampling *s = calloc(1, sizeof *s);
	int need_pg = 0, rc;

	*out = NULL;
	if (!s)
		return fp_err_set(err, FP_ENOMEM, "sampling");
	s->c = *c;
	pthread_mutex_init(&s->mu, NULL);
	s->cond_since = calloc(c->sc->n_stop_conditions + 1,
			       sizeof *s->cond_since);
	if (c->pg_password)
		s->pg_password = strdup(c->pg_password);
	rc = fp_kafka_new(c->kafka_bootstrap, &c->env->kafka_props, 5000,
			  &s->kafka, err);
	if (rc)
		goto fail;
	for (size_t i = 0; i < c->env->n_samplers; i++)
		need_pg |= c->env->samplers[i].kind == FP_SAMPLER_SQL;
	if (need_pg) {
		rc = fp_pg_connect(c->env->pg_conninfo, s->pg_password, &s->pg,
				   err);
		if (rc)
			goto fail;
	}
	s->curl = curl_easy_init();
	if (!s->curl) {
		rc = fp_err_set(err, FP_ENOMEM, "curl");
		goto fail;
	}
	if (pthread_create(&s->th, NULL, sampling_main, s)) {
		rc = fp_err_set(err, FP_EINTERNAL, "cannot start the sampler");
		goto fail;
	}
	s->running = 1;
	*out = s;
	return FP_OK;
fail:
	fp_sampling_free(s);
	return rc;
}

void fp_sampling_stop(struct fp_sampling *s)
{
	if (s && s->running) {
		s->stop = 1;
		pthread_join(s->th, NULL);
		s->running = 0;
	}
}

void fp_sampling_detach_offsets(struct fp_sampling *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->offsets_detached = 1;
	pthread_mutex_unlock(&s->mu);
}

void fp_sampling_free(struct fp_sampling *s)
{
	if (!s)
		return;
	fp_sampling_stop(s);
	for (size_t i = 0; i < s->n_series; i++)
		free(s->series[i].pts);
	free(s->series);
	free(s->cond_since);
	fp_kafka_free(s->kafka);
	fp_pg_close(s->pg);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	if (s->pg_password) {
		memset(s->pg_password, 0, strlen(s->pg_password));
		free(s->pg_password);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int fp_sampling_latest(struct fp_sampling *s, const char *name, double *value,
		       int64_t *at)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = latest_locked(s, name, value, at);
	pthread_mutex_unlock(&s->mu);
	if (rc)
		*at = -1;
	return rc;
}

int fp_sampling_recovery(struct fp_sampling *s, const char *name,
			 enum fp_cmp op, double value, int64_t hold_ns,
			 int64_t after_ns, int64_t *when)
{
	int found = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_series && !found; i++) {
		const struct fp_series *se = &s->series[i];
		int64_t since = 0;

		if (strcmp(se->name, name) != 0)
			continue;
		for (size_t k = 0; k < se->n; k++) {
			if (se->pts[k].t < after_ns)
				continue;
			if (!fp_cmp_holds(op, se->pts[k].v, value)) {
				since = 0;
				continue;
			}
			if (!since)
				since = se->pts[k].t;
			if (se->pts[k].t - since >= hold_ns) {
				*when = since;
				found = 1;
				break;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

int fp_sampling_max(struct fp_sampling *s, const char *name, int64_t from_ns,
		    int64_t to_ns, double *max)
{
	int any = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_series; i++) {
		const struct fp_series *se = &s->series[i];

		if (strcmp(se->name, name) != 0)
			continue;
		for (size_t k = 0; k < se->n; k++)
			if (se->pts[k].t >= from_ns && se->pts[k].t <= to_ns &&
			    (!any || se->pts[k].v > *max)) {
				*max = se->pts[k].v;
				any = 1;
			}
	}
	pthread_mutex_unlock(&s->mu);
	return any;
}

const struct fp_stop_condition *fp_sampling_fired(struct fp_sampling *s,
						  char *why, size_t whysz)
{
	const struct fp_stop_condition *c;

	pthread_mutex_lock(&s->mu);
	c = s->fired;
	if (c && why)
		snprintf(why, whysz, "%s", s->fired_why);
	pthread_mutex_unlock(&s->mu);
	return c;
}
