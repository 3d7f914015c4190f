/*
 * test_loadgen.c - the open-model generator against the in-process HTTP
 * stub (loopback only): rate and ledger accounting, retries with identical
 * bytes, coordinated omission under a stall, late sends under a concurrency
 * cap, stop, outcome mapping (409, 413, 429) and phase numbering, ramps and
 * bursts on the wire, the event mix with its expect column and conflicting
 * re-sends; and the Kafka channel against librdkafka's in-process mock
 * cluster (records read back with their key and headers). Each test runs
 * in a few seconds at most.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h */

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "harness/load/fp_load.h"
#include "harness/load/fp_load_int.h"
#include "tests/unit/load/http_stub.h"

#define MS FP_NS_PER_MS
#define SEC FP_NS_PER_S

/* Every timed test uses .timeout = 30: with --jobs 2, Criterion 2.4.1's
 * runner leaks 48 bytes (reported by ASan, failing the run) when tests with
 * different timeouts overlap. measure_ceiling (60) returns at once unless
 * FP_LOAD_MEASURE is set. */

struct row {
	int64_t seq;
	char event_id[32];
	char kind[16];
	int64_t attempt;
	char phase[32];
	char account[32];
	int64_t amount;
	char hash[72];
	int64_t intended, sent, done;
	int64_t status;
	char outcome[16];
	char topic[64];
	int64_t partition, offset;
	char error[256];
	char expect[32];
};

struct fixture {
	char dir[64];
	char ledger[128];
	struct fp_load_spec spec;
	struct fp_load_conf conf;
};

static void fx_init(struct fixture *fx, const char *url)
{
	memset(fx, 0, sizeof *fx);
	fp_log_set_level(FP_LOG_WARN);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/fp-load-XXXXXX");
	cr_assert_not_null(mkdtemp(fx->dir));
	snprintf(fx->ledger, sizeof fx->ledger, "%s/ledger.tsv", fx->dir);
	fx->spec = (struct fp_load_spec){
		.enabled = 1, .channel = FP_CHANNEL_HTTP, .rate = 200, .seed = 7,
		.concurrency = 64, .accounts = 100, .retry_share = 0,
		.retry_delay_ns = 50 * MS, .high_value_share = 0.1,
		.timeout_ns = 2 * SEC,
	};
	fx->conf = (struct fp_load_conf){
		.spec = &fx->spec, .url = url,
		.platform_run_id = "fpd-test", .scenario_run_id = "test",
		.event_class = "transaction", .runtime_lane = "drill",
		.ledger_path = fx->ledger,
	};
}

static void fx_fini(struct fixture *fx)
{
	unlink(fx->ledger);
	rmdir(fx->dir);
}

/*
 * Under valgrind every thread shares one core at a fraction of its speed,
 * so the generator cannot keep a 200/s schedule there: the memory checks
 * still run every path, but assertions that are about *timing* (exact sent
 * counts, achieved rate, sub-second windows) are only made at full speed.
 * FP_TEST_SLOW=1 selects the same mode on a loaded machine.
 */
static int slow_env(void)
{
	const char *pre = getenv("LD_PRELOAD");
	const char *slow = getenv("FP_TEST_SLOW");

	return (pre && strstr(pre, "vgpreload")) || (slow && *slow == '1');
}

/* Open model: a send still waiting for a free slot or a CPU when its phase
 * window closes is dropped, not sent late, and counted. On a loaded 2-core
 * CI box (criterion runs these tests in parallel) a handful at the very end
 * of a window is the generator working as designed; more than 1 % is not. */
static void assert_nearly_all_sent(const struct fp_load_stats *s,
				   int64_t planned)
{
	cr_assert_eq(s->sent + s->dropped, planned);
	if (!slow_env())
		cr_assert_leq(s->dropped * 100, planned,
			      "%lld of %lld dropped", (long long)s->dropped,
			      (long long)planned);
}

static int64_t field_int(const char *s)
{
	return strcmp(s, "\\N") == 0 ? -1 : strtoll(s, NULL, 10);
}

#define NCOLS 19

/* Parse the ledger (19 tab-separated columns); @returns the row count. */
static size_t read_ledger(const char *path, struct row **out)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0, alloc = 0;
	struct row *rows = NULL;

	cr_assert_not_null(f);
	while (getline(&line, &cap, f) > 0) {
		char *p = line, *fld[NCOLS];
		int nf = 0;
		struct row *r;

		line[strcspn(line, "\n")] = '\0';
		while (nf < NCOLS && (fld[nf] = strsep(&p, "\t")) != NULL)
			nf++;
		cr_assert_eq(nf, NCOLS, "row %zu has %d columns", n, nf);
		cr_assert_null(p, "row %zu has more than %d columns", n, NCOLS);
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 256;
			rows = realloc(rows, alloc * sizeof *rows);
			cr_assert_not_null(rows);
		}
		r = &rows[n++];
		memset(r, 0, sizeof *r);
		r->seq = field_int(fld[0]);
		snprintf(r->event_id, sizeof r->event_id, "%s", fld[1]);
		snprintf(r->kind, sizeof r->kind, "%s", fld[2]);
		r->attempt = field_int(fld[3]);
		snprintf(r->phase, sizeof r->phase, "%s", fld[4]);
		snprintf(r->account, sizeof r->account, "%s", fld[5]);
		r->amount = field_int(fld[6]);
		snprintf(r->hash, sizeof r->hash, "%s", fld[7]);
		r->intended = field_int(fld[8]);
		r->sent = field_int(fld[9]);
		r->done = field_int(fld[10]);
		r->status = field_int(fld[11]);
		snprintf(r->outcome, sizeof r->outcome, "%s", fld[12]);
		snprintf(r->topic, sizeof r->topic, "%s", fld[14]);
		r->partition = field_int(fld[15]);
		r->offset = field_int(fld[16]);
		snprintf(r->error, sizeof r->error, "%s", fld[17]);
		snprintf(r->expect, sizeof r->expect, "%s", fld[18]);
	}
	free(line);
	fclose(f);
	*out = rows;
	return n;
}

static void run_phase(struct fixture *fx, const char *phase, int64_t dur,
		      struct fp_load_stats *st)
{
	struct fp_loadgen *g = NULL;
	struct fp_err err = {0};

	cr_assert_eq(fp_loadgen_new(&fx->conf, &g, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_loadgen_start(g, phase, dur, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_loadgen_wait(g, &err), FP_OK, "%s", err.msg);
	fp_loadgen_stats(g, st);
	fp_loadgen_free(g);
}

static int cmp_req(const void *a, const void *b)
{
	const struct stub_req *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->span_id, y->span_id);
}

Test(loadgen, rate_ledger_and_retries, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.dup_on_repeat = 1, .record = 1};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n;
	int64_t expect_retries = 0, pairs = 0;
	json_t *j;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.retry_share = 0.1;
	run_phase(&fx, "load", 2 * SEC, &s);

	cr_log_info("rate test: achieved %.2f/s sent %lld retries %lld p99 %.3f ms svc p99 %.3f ms late %lld",
		    s.achieved_rate, (long long)s.sent, (long long)s.retries_sent,
		    s.p99_ns / 1e6, s.svc_p99_ns / 1e6, (long long)s.late);
	cr_assert_eq(s.planned, 400);
	cr_assert_eq(s.sent + s.dropped, s.planned);
	cr_assert_gt(s.sent, 0);
	if (!slow_env()) {
		cr_assert_eq(s.sent, s.planned);
		cr_assert(s.achieved_rate > 190 && s.achieved_rate < 210,
			  "achieved %.2f", s.achieved_rate);
	}
	cr_assert_gt(s.retries_sent, 0);
	cr_assert_eq(s.accepted, s.sent);
	cr_assert_eq(s.duplicates, s.retries_sent);
	cr_assert_eq(s.failed + s.rejected + s.in_flight, 0);
	cr_assert_geq(s.p99_ns, s.svc_p99_ns);
	cr_assert_gt(s.p50_ns, 0);

	/* The ledger: one row per attempt, retries with the original's identity. */
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, s.sent + s.retries_sent + s.dropped);
	{
		const struct row *orig[401] = {0};
		struct fp_event_mix mix = {.seed = fx.spec.seed,
					   .accounts = fx.spec.accounts,
					   .high_value_share = fx.spec.high_value_share,
					   .retry_share = fx.spec.retry_share};

		for (size_t i = 0; i < n; i++) {
			cr_assert(rows[i].seq >= 1 && rows[i].seq <= 400);
			cr_assert_str_eq(rows[i].phase, "load");
			if (strcmp(rows[i].outcome, "dropped") == 0)
				continue;
			cr_assert(rows[i].intended >= 0 && rows[i].sent >= rows[i].intended - MS &&
				  rows[i].done >= rows[i].sent);
			if (strcmp(rows[i].kind, "original") == 0) {
				struct fp_event ev;

				cr_assert_str_eq(rows[i].outcome, "ok");
				orig[rows[i].seq] = &rows[i];
				/* Every sent original drawn for a retry got one. */
				fp_event_draw(&mix, (uint64_t)rows[i].seq, &ev);
				expect_retries += ev.retry;
			}
		}
		cr_assert_eq(s.retries_sent, expect_retries);
		for (size_t i = 0; i < n; i++) {
			const struct row *o;

			if (strcmp(rows[i].kind, "retry") != 0)
				continue;
			o = orig[rows[i].seq];
			cr_assert_not_null(o);
			cr_assert_str_eq(rows[i].event_id, o->event_id);
			cr_assert_str_eq(rows[i].hash, o->hash);
			cr_assert_str_eq(rows[i].outcome, "dup");
			cr_assert_geq(rows[i].intended, o->done + fx.spec.retry_delay_ns);
		}
	}
	free(rows);

	/* On the wire: the same bytes, the same trace, a new span. */
	stub_stop(&st);
	cr_assert_eq((int64_t)st.nreqs, s.sent + s.retries_sent);
	qsort(st.reqs, st.nreqs, sizeof st.reqs[0], cmp_req);
	for (size_t i = 0; i + 1 < st.nreqs; i++) {
		struct stub_req *a = &st.reqs[i], *b = &st.reqs[i + 1];

		cr_assert_eq(strlen(a->trace_id), 32);
		cr_assert(a->seq >= 1 && a->seq <= 400);
		cr_assert(i == 0 || a->seq != b->seq || st.reqs[i - 1].seq != a->seq,
			  "seq %llu sent three times", (unsigned long long)a->seq);
		if (a->seq != b->seq)
			continue;
		pairs++;
		cr_assert_str_eq(a->body_hash, b->body_hash, "seq %llu", (unsigned long long)a->seq);
		cr_assert_str_eq(a->trace_id, b->trace_id);
		cr_assert_str_neq(a->span_id, b->span_id);
	}
	cr_assert_eq(pairs, s.retries_sent, "pairs %lld retries %lld", (long long)pairs, (long long)s.retries_sent);
	cr_assert_leq(st.max_conns, 64);
	stub_free(&st);

	j = fp_loadgen_stats_json(&s);
	cr_assert_not_null(j);
	cr_assert_eq(json_integer_value(json_object_get(j, "sent")), s.sent);
	cr_assert(json_is_real(json_object_get(json_object_get(j, "latency_ms"), "p99")));
	cr_assert(json_is_real(json_object_get(json_object_get(j, "service_ms"), "p50")));
	cr_assert(json_is_number(json_object_get(j, "achieved_rate")));
	json_decref(j);
	fx_fini(&fx);
}

Test(loadgen, stall_shows_in_corrected_latency, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.stall_at_ns = 500 * MS, .stall_ns = 500 * MS};
	struct fixture fx;
	struct fp_load_stats s;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.concurrency = 2;
	run_phase(&fx, "stall", 2 * SEC, &s);
	stub_stop(&st);
	stub_free(&st);
	cr_log_info("stall: p99 %.1f ms max %.1f ms, service p99 %.1f ms, late %lld",
		    s.p99_ns / 1e6, s.max_ns / 1e6, s.svc_p99_ns / 1e6, (long long)s.late);
	assert_nearly_all_sent(&s, 400);
	/* Two requests sat in the stalled server; ~100 waited for a slot.
	 * Measured from the intended time they are all slow; measured from
	 * the send (coordinated omission) almost none is. */
	cr_assert_geq(s.p99_ns, 400 * MS, "corrected p99 %lld", (long long)s.p99_ns);
	cr_assert_lt(s.svc_p99_ns, 100 * MS, "service p99 %lld", (long long)s.svc_p99_ns);
	cr_assert_gt(s.late, 50);
	fx_fini(&fx);
}

Test(loadgen, concurrency_cap_makes_late_and_dropped_sends, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.delay_ns = 20 * MS};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n, dropped = 0;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.concurrency = 1;
	fx.spec.rate = 100;
	run_phase(&fx, "capped", 1 * SEC, &s);
	stub_stop(&st);
	stub_free(&st);
	cr_log_info("cap 1: sent %lld late %lld dropped %lld achieved %.1f/s",
		    (long long)s.sent, (long long)s.late, (long long)s.dropped,
		    s.achieved_rate);
	cr_assert_eq(s.planned, 100);
	/* 20 ms per request, one at a time: at most ~50 of 100 go out. */
	cr_assert_lt(s.sent, 60);
	cr_assert_gt(s.late, slow_env() ? 0 : 10);
	cr_assert_eq(s.sent + s.dropped, s.planned);
	cr_assert_lt(s.achieved_rate, 0.95 * s.planned_rate);
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, s.planned);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].outcome, "dropped") == 0) {
			dropped++;
			cr_assert_eq(rows[i].sent, -1);
			cr_assert_eq(rows[i].done, -1);
		}
	cr_assert_eq((int64_t)dropped, s.dropped);
	free(rows);
	fx_fini(&fx);
}

Test(loadgen, stop_and_next_phase_numbering, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {0};
	struct fixture fx;
	struct fp_load_stats s;
	struct fp_loadgen *g = NULL;
	struct fp_err err = {0};
	struct row *rows;
	size_t n;
	int64_t t0;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 100;
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_loadgen_start(g, "long", 10 * SEC, &err), FP_OK);
	cr_assert_eq(fp_loadgen_start(g, "again", SEC, &err), FP_EINVAL);
	fp_sleep_ns(300 * MS, NULL);
	fp_loadgen_stats(g, &s);
	if (!slow_env())
		cr_assert_gt(s.sent, 20);
	t0 = fp_mono_ns();
	fp_loadgen_stop(g);
	cr_assert_eq(fp_loadgen_wait(g, &err), FP_OK, "%s", err.msg);
	cr_assert_lt(fp_mono_ns() - t0, slow_env() ? 5 * SEC : SEC);
	fp_loadgen_stats(g, &s);
	cr_assert_eq(s.planned, 1000);
	cr_assert_eq(s.sent + s.dropped, 1000);
	cr_assert_lt(s.sent, 200);
	if (!slow_env())
		cr_assert(s.achieved_rate > 85 && s.achieved_rate < 115,
			  "achieved %.1f", s.achieved_rate);

	/* A second phase on the same generator continues the numbering. */
	cr_assert_eq(fp_loadgen_start(g, "next", 200 * MS, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_loadgen_wait(g, &err), FP_OK);
	fp_loadgen_stats(g, &s);
	fp_loadgen_free(g);
	stub_stop(&st);
	stub_free(&st);
	cr_assert_eq(s.planned, 1020);
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, s.planned + s.retries_sent);
	{
		int64_t first_next = -1, nnext = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(rows[i].phase, "next") == 0) {
				nnext++;
				if (first_next < 0 || rows[i].seq < first_next)
					first_next = rows[i].seq;
			}
		cr_assert_eq(nnext, 20);
		cr_assert_eq(first_next, 1001);
	}
	free(rows);
	fx_fini(&fx);
}

static void run_outcome(int status, const char *url, int64_t timeout_ns,
			const char *want_outcome, const char *want_error)
{
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n;

	fx_init(&fx, url);
	/* Five originals; slower and longer where threads crawl. */
	fx.spec.rate = slow_env() ? 5 : 50;
	fx.spec.retry_share = 1.0; /* the retry of a failure is sent too */
	fx.spec.retry_delay_ns = 10 * MS;
	fx.spec.timeout_ns = timeout_ns;
	run_phase(&fx, "outcome", slow_env() ? SEC : 100 * MS, &s);
	cr_assert_eq(s.planned, 5);
	cr_assert_eq(s.sent + s.dropped, 5);
	cr_assert_gt(s.sent, 0);
	if (!slow_env())
		cr_assert_eq(s.sent, 5);
	cr_assert_eq(s.retries_sent, s.sent);
	if (status >= 400 && status < 500)
		cr_assert_eq(s.rejected, 2 * s.sent);
	else
		cr_assert_eq(s.failed, 2 * s.sent);
	cr_assert_eq(s.accepted + s.duplicates, 0);
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, 2 * s.sent + s.dropped);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].outcome, "dropped") == 0)
			continue;
		cr_assert_str_eq(rows[i].outcome, want_outcome);
		cr_assert(strstr(rows[i].error, want_error), "error '%s'", rows[i].error);
	}
	free(rows);
	fx_fini(&fx);
}

Test(loadgen, outcomes_rejected_and_indeterminate, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.status = 400};
	char url[64];
	int fd;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof a;

	cr_assert_eq(stub_start(&st, &sc), 0);
	run_outcome(400, st.url, 2 * SEC, "rejected", "http 400: stub");
	stub_stop(&st);
	stub_free(&st);
	sc.status = 503;
	cr_assert_eq(stub_start(&st, &sc), 0);
	run_outcome(503, st.url, 2 * SEC, "info", "http 503");
	stub_stop(&st);
	stub_free(&st);

	/* A slow target: the request times out, outcome indeterminate. */
	sc = (struct stub_conf){.delay_ns = 2 * SEC};
	cr_assert_eq(stub_start(&st, &sc), 0);
	run_outcome(0, st.url, 100 * MS, "info", "imed out");
	stub_stop(&st);
	stub_free(&st);

	/* Nothing listening: connection refused, outcome indeterminate. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/events", ntohs(a.sin_port));
	close(fd);
	run_outcome(0, url, SEC, "info", "onnect");
}

Test(loadgen, bad_configuration)
{
	struct fixture fx;
	struct fp_loadgen *g = NULL;
	struct fp_err err = {0};

	fx_init(&fx, "http://127.0.0.1:1/v1/events");
	fx.spec.rate = 0;
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_EINVAL);
	fx.spec.rate = 10;
	fx.spec.channel = FP_CHANNEL_KAFKA;
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_EINVAL);
	fx.spec.channel = FP_CHANNEL_HTTP;
	fx.spec.concurrency = 0;
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_EINVAL);
	fx.spec.concurrency = 4;
	fx.conf.ledger_path = "/nonexistent-dir/x/ledger.tsv";
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_EIO);
	cr_assert_null(g);
	fx.conf.ledger_path = fx.ledger;
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_OK);
	cr_assert_eq(fp_loadgen_start(g, "p", 0, &err), FP_EINVAL);
	fp_loadgen_free(g);
	fx_fini(&fx);
}

/* Generator ceiling on this machine: FP_LOAD_MEASURE=<rate> to run. */
Test(loadgen, measure_ceiling, .timeout = 60)
{
	const char *env = getenv("FP_LOAD_MEASURE");
	struct stub st;
	struct stub_conf sc = {0};
	struct fixture fx;
	struct fp_load_stats s;

	/* A plain return, not cr_skip_test(): Criterion's skip path leaks its
	 * own IPC buffers, which would make the valgrind run fail. */
	if (!env || !*env) {
		cr_log_info("set FP_LOAD_MEASURE=<events/s> to measure the ceiling");
		return;
	}
	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = strtod(env, NULL);
	fx.spec.concurrency = 64;
	run_phase(&fx, "measure", 3 * SEC, &s);
	stub_stop(&st);
	stub_free(&st);
	fprintf(stderr,
		"measure: planned %.0f/s achieved %.1f/s sent %lld dropped %lld late %lld "
		"p50 %.3f p99 %.3f max %.3f ms svc p50 %.3f p99 %.3f ms conns %lld\n",
		s.planned_rate, s.achieved_rate, (long long)s.sent,
		(long long)s.dropped, (long long)s.late, s.p50_ns / 1e6,
		s.p99_ns / 1e6, s.max_ns / 1e6, s.svc_p50_ns / 1e6,
		s.svc_p99_ns / 1e6, (long long)st.max_conns);
	fx_fini(&fx);
}

/* ---- ramps, bursts, mixes, conflicts, throttling, Kafka ------------------ */

/*
 * Per-row checks of a long ledger: every row is checked, the number of bad
 * rows and the first one are reported in one assertion (a failing run then
 * says how widespread the problem is, not just where it starts).
 */
struct checks {
	int64_t bad;
	char first[256];
};

#define CHECK(c, cond, ...)                                                   \
	do {                                                                  \
		if (!(cond) && (c)->bad++ == 0)                               \
			snprintf((c)->first, sizeof (c)->first, __VA_ARGS__); \
	} while (0)

#define CHECKS_OK(c) cr_assert_eq((c)->bad, 0, "%lld bad rows; first: %s", \
				  (long long)(c)->bad, (c)->first)

/* Originals whose column (intended or sent) falls in [a, b). */
static int64_t count_window(const struct row *rows, size_t n, int sent,
			    int64_t a, int64_t b)
{
	int64_t c = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t t = sent ? rows[i].sent : rows[i].intended;

		if (strcmp(rows[i].kind, "original") == 0 && t >= a && t < b)
			c++;
	}
	return c;
}

Test(loadgen, ramp_and_burst_schedule, .timeout = 30)
{
	/* 100 -> 300/s over 1 s, x2 step burst over [1.0, 1.25) s. */
	struct fp_burst b = {.at_ns = SEC, .duration_ns = 250 * MS,
			     .multiplier = 2};
	struct stub st;
	struct stub_conf sc = {0};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	int64_t t0 = INT64_MAX;
	size_t n;
	static const struct {
		int64_t a, b, want;
	} win[] = {
		{0, 500 * MS, 75},          /* 100 t + 100 t^2 */
		{500 * MS, SEC, 125},
		{SEC, 1250 * MS, 150},      /* 600/s */
		{1250 * MS, 1500 * MS, 75}, /* 300/s */
	};
	json_t *j;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 300;
	fx.spec.ramp_from = 100;
	fx.spec.ramp_to = 300;
	fx.spec.ramp_over_ns = SEC;
	fx.spec.bursts = &b;
	fx.spec.n_bursts = 1;
	run_phase(&fx, "ramp", 1500 * MS, &s);
	stub_stop(&st);
	stub_free(&st);
	cr_log_info("ramp: planned %lld planned_rate %.1f achieved %.1f peak %.1f",
		    (long long)s.planned, s.planned_rate, s.achieved_rate,
		    s.peak_rate);
	cr_assert_eq(s.planned, 425);
	cr_assert_float_eq(s.peak_rate, 600.0, 1e-6);
	cr_assert(fabs(s.planned_rate - 425 / 1.5) < 3, "planned_rate %.2f",
		  s.planned_rate);
	cr_assert_eq(s.sent + s.dropped, s.planned);

	n = read_ledger(fx.ledger, &rows);
	for (size_t i = 0; i < n; i++)
		if (rows[i].intended < t0)
			t0 = rows[i].intended;
	for (size_t w = 0; w < sizeof win / sizeof win[0]; w++) {
		int64_t planned = count_window(rows, n, 0, t0 + win[w].a,
					       t0 + win[w].b);

		cr_assert(llabs(planned - win[w].want) <= 1,
			  "window %zu: %lld intended, want %lld", w,
			  (long long)planned, (long long)win[w].want);
		if (!slow_env()) {
			/* Achieved: the sends themselves follow the shape. */
			int64_t sent = count_window(rows, n, 1, t0 + win[w].a,
						    t0 + win[w].b);

			cr_assert(llabs(sent - win[w].want) <= 3 + win[w].want / 20,
				  "window %zu: %lld sent, want %lld", w,
				  (long long)sent, (long long)win[w].want);
		}
	}
	free(rows);
	j = fp_loadgen_stats_json(&s);
	cr_assert_float_eq(json_real_value(json_object_get(j, "peak_planned_rate")),
			   600.0, 1e-6);
	json_decref(j);
	fx_fini(&fx);
}

Test(loadgen, mix_conflicts_oversize_and_headers, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.dup_on_repeat = 1, .conflict_on_mismatch = 1,
			       .record = 1};
	struct fixture fx;
	struct fp_load_stats s;
	struct fp_event_mix mix;
	struct row *rows;
	size_t n;
	int64_t conflicts = 0, oversize = 0, by_kind = 0, kinds_seen = 0;
	int seen[FP_EVENT_KIND_COUNT] = {0};
	struct checks ck = {0};

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = slow_env() ? 100 : 300;
	fx.spec.retry_share = 0.1;
	fx.spec.retry_delay_ns = 20 * MS;
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
		fx.spec.mix[k] = 0.1;
	fx.spec.mix[FP_EVENT_VALID] = 0.3;
	fx.spec.mix[FP_EVENT_OVERSIZE] = 0.03;
	run_phase(&fx, "mix", SEC, &s);
	stub_stop(&st);
	cr_log_info("mix: sent %lld retries %lld conflicts %lld rejected %lld",
		    (long long)s.sent, (long long)s.retries_sent,
		    (long long)s.conflicts, (long long)s.rejected);

	mix = (struct fp_event_mix){.seed = fx.spec.seed,
				    .accounts = fx.spec.accounts,
				    .high_value_share = fx.spec.high_value_share,
				    .retry_share = fx.spec.retry_share};
	memcpy(mix.kinds, fx.spec.mix, sizeof mix.kinds);
	n = read_ledger(fx.ledger, &rows);
	for (size_t i = 0; i < n; i++) {
		struct fp_event ev;
		const struct row *r = &rows[i];

		fp_event_draw(&mix, (uint64_t)r->seq, &ev);
		if (strcmp(r->outcome, "dropped") == 0)
			continue;
		seen[ev.kind] = 1;
		if (strcmp(r->kind, "conflict") == 0) {
			/* The re-send of a hash_conflict event: same identity,
			 * another hash, answered 409. */
			const struct row *o = NULL;

			for (size_t k = 0; k < n; k++)
				if (rows[k].seq == r->seq &&
				    strcmp(rows[k].kind, "original") == 0)
					o = &rows[k];
			CHECK(&ck, o, "seq %lld: conflict without original",
			      (long long)r->seq);
			CHECK(&ck, o && ev.kind == FP_EVENT_HASH_CONFLICT &&
				       r->attempt == 2 &&
				       strcmp(r->expect, "hash_conflict") == 0 &&
				       strcmp(r->outcome, "conflict") == 0 &&
				       r->status == 409 &&
				       strcmp(r->event_id, o->event_id) == 0 &&
				       strcmp(r->hash, o->hash) != 0 &&
				       r->amount == o->amount + 1 &&
				       r->intended >= o->done + fx.spec.retry_delay_ns,
			      "seq %lld: conflict row %s/%lld/%s/%lld", (long long)r->seq,
			      r->expect, (long long)r->attempt, r->outcome,
			      (long long)r->status);
			conflicts++;
			continue;
		}
		CHECK(&ck, strcmp(r->expect, fp_event_expect(&ev)) == 0,
		      "seq %lld: expect %s, want %s", (long long)r->seq, r->expect,
		      fp_event_expect(&ev));
		if (ev.kind == FP_EVENT_OVERSIZE) {
			CHECK(&ck, r->status == 413 && strcmp(r->outcome, "rejected") == 0,
			      "seq %lld: oversize got %lld %s", (long long)r->seq,
			      (long long)r->status, r->outcome);
			oversize++;
		} else if (ev.kind == FP_EVENT_MALFORMED_JSON) {
			CHECK(&ck, strcmp(r->hash, "\\N") == 0,
			      "seq %lld: malformed with hash %s", (long long)r->seq, r->hash);
		} else if (ev.kind == FP_EVENT_MISSING_FIELD &&
			   strcmp(ev.dropped_field, "amount_minor") == 0) {
			CHECK(&ck, r->amount == -1, "seq %lld: amount %lld, want \\N",
			      (long long)r->seq, (long long)r->amount);
		}
	}
	CHECKS_OK(&ck);
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
		kinds_seen += seen[k];
	/* Where threads crawl, most events are dropped as late, rare kinds
	 * among them; every row that was sent is still checked above. */
	cr_assert_geq(kinds_seen, slow_env() ? 2 : FP_EVENT_KIND_COUNT,
		      "%lld kinds sent", (long long)kinds_seen);
	if (!slow_env())
		cr_assert_gt(conflicts, 0);
	cr_assert_eq(conflicts, s.conflicts, "ledger %lld stats %lld", (long long)conflicts, (long long)s.conflicts);
	cr_assert_eq(oversize, s.rejected);
	for (int k = 0; k < FP_EVENT_KIND_COUNT; k++)
		by_kind += s.sent_by_kind[k];
	cr_assert_eq(by_kind, s.sent);
	cr_assert_eq(s.sent_by_kind[FP_EVENT_OVERSIZE], oversize);
	free(rows);

	/* Every request carried the identity headers, oversize ones too. */
	cr_assert_eq((int64_t)st.nreqs, s.sent + s.retries_sent);
	for (size_t i = 0; i < st.nreqs; i++) {
		char want[32];

		snprintf(want, sizeof want, "e-%020llu",
			 (unsigned long long)st.reqs[i].seq);
		CHECK(&ck, st.reqs[i].x_ids && strcmp(st.reqs[i].x_event_id, want) == 0,
		      "request %zu: X-Event-Id '%s' (want %s), ids %d", i,
		      st.reqs[i].x_event_id, want, st.reqs[i].x_ids);
	}
	CHECKS_OK(&ck);
	stub_free(&st);
	fx_fini(&fx);
}

Test(loadgen, throttled_429, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.status = 429};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 50;
	run_phase(&fx, "throttle", 200 * MS, &s);
	stub_stop(&st);
	stub_free(&st);
	cr_assert_eq(s.planned, 10);
	cr_assert_gt(s.sent, 0);
	cr_assert_eq(s.throttled, s.sent);
	cr_assert_eq(s.rejected + s.failed + s.accepted, 0);
	n = read_ledger(fx.ledger, &rows);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].outcome, "dropped") == 0)
			continue;
		cr_assert_str_eq(rows[i].outcome, "throttled");
		cr_assert_eq(rows[i].status, 429);
		cr_assert_str_eq(rows[i].error, "http 429: stub");
		cr_assert_str_eq(rows[i].expect, "valid");
	}
	free(rows);
	fx_fini(&fx);
}

/* One record read back from the mock cluster. */
struct rec {
	int32_t partition;
	int64_t offset;
	char key[32];
	char event_id[32];
	char event_class[32];
	char schema_version[8];
	char payload_hash[72];
	int has_traceparent;
	size_t len;
	char identity[160]; /* the constant headers, "name=value;" each */
	char names[256];    /* every header name, in order, ";" after each */
};

static void header_str(rd_kafka_headers_t *h, const char *name, char *out,
		       size_t outsz)
{
	const void *v = NULL;
	size_t n = 0;

	out[0] = '\0';
	if (h && rd_kafka_header_get_last(h, name, &v, &n) ==
			 RD_KAFKA_RESP_ERR_NO_ERROR && v) {
		if (n >= outsz)
			n = outsz - 1;
		memcpy(out, v, n);
		out[n] = '\0';
	}
}

/* Read every record of topic (partitions 0..np-1) from the beginning. */
static size_t consume_all(const char *bootstrap, const char *topic, int np,
			  size_t want, struct rec *out, size_t cap)
{
	char e[512];
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *parts =
		rd_kafka_topic_partition_list_new(np);
	size_t n = 0;
	int64_t deadline = fp_mono_ns() + 15 * SEC;

	cr_assert_eq(rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, e, sizeof e),
		     RD_KAFKA_CONF_OK);
	rd_kafka_conf_set(kc, "group.id", "fpdrill-test-reader", e, sizeof e);
	rd_kafka_conf_set(kc, "enable.auto.commit", "false", e, sizeof e);
	rd_kafka_conf_set(kc, "log_level", "2", e, sizeof e);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, e, sizeof e);
	cr_assert_not_null(rk, "%s", e);
	for (int p = 0; p < np; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	cr_assert_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(parts);
	while (n < want && n < cap && fp_mono_ns() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		rd_kafka_headers_t *h = NULL;
		struct rec *r;
		char tp[64];

		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		r = &out[n++];
		memset(r, 0, sizeof *r);
		r->partition = m->partition;
		r->offset = m->offset;
		r->len = m->len;
		snprintf(r->key, sizeof r->key, "%.*s", (int)m->key_len,
			 (const char *)m->key);
		rd_kafka_message_headers(m, &h);
		header_str(h, "event_id", r->event_id, sizeof r->event_id);
		header_str(h, "event_class", r->event_class, sizeof r->event_class);
		header_str(h, "schema_version", r->schema_version,
			   sizeof r->schema_version);
		header_str(h, "payload_hash", r->payload_hash, sizeof r->payload_hash);
		header_str(h, "traceparent", tp, sizeof tp);
		r->has_traceparent = strlen(tp) == 55;
		{
			static const char *const idn[] = {
				"platform_run_id", "scenario_run_id",
				"phase_id", "runtime_lane"};
			const char *hn;
			const void *hv;
			size_t hl, o = 0;

			for (size_t k = 0; k < 4; k++) {
				char v[64];

				header_str(h, idn[k], v, sizeof v);
				o += (size_t)snprintf(r->identity + o,
						      sizeof r->identity - o,
						      "%s=%s;", idn[k], v);
			}
			o = 0;
			for (size_t k = 0;
			     h && rd_kafka_header_get_all(h, k, &hn, &hv, &hl) ==
					  RD_KAFKA_RESP_ERR_NO_ERROR;
			     k++)
				o += (size_t)snprintf(r->names + o,
						      sizeof r->names - o,
						      "%s;", hn);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

Test(loadgen, kafka_channel_against_mock_cluster, .timeout = 30)
{
	static const char topic[] = "fp.test.traffic";
	char e[512];
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	rd_kafka_t *host;
	rd_kafka_mock_cluster_t *mc;
	struct fp_kvlist props;
	struct fp_kv prop = {.key = "client.id", .value = "fpdrill-test"};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	struct rec *recs;
	size_t n, nrec;
	int64_t ok = 0, conflicts = 0, rejected = 0;
	struct checks ck = {0};

	/* The mock lives in this process, hosted by a handle of its own; the
	 * topic exists before any client asks for it (auto-create would
	 * make 4 partitions). */
	rd_kafka_conf_set(kc, "log_level", "2", e, sizeof e);
	host = rd_kafka_new(RD_KAFKA_PRODUCER, kc, e, sizeof e);
	cr_assert_not_null(host, "%s", e);
	mc = rd_kafka_mock_cluster_new(host, 1);
	cr_assert_not_null(mc);
	cr_assert_eq(rd_kafka_mock_topic_create(mc, topic, 3, 1),
		     RD_KAFKA_RESP_ERR_NO_ERROR);

	fx_init(&fx, NULL);
	props = (struct fp_kvlist){.items = &prop, .n = 1};
	fx.spec.channel = FP_CHANNEL_KAFKA;
	fx.spec.kafka_topic = (char *)topic;
	fx.spec.rate = slow_env() ? 50 : 200;
	fx.spec.mix[FP_EVENT_VALID] = 0.8;
	fx.spec.mix[FP_EVENT_COMPATIBLE] = 0.1;
	fx.spec.mix[FP_EVENT_HASH_CONFLICT] = 0.08;
	fx.spec.mix[FP_EVENT_OVERSIZE] = 0.02; /* over message.max.bytes */
	fx.spec.retry_delay_ns = 20 * MS;
	fx.conf.kafka_bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
	fx.conf.kafka_props = &props;
	run_phase(&fx, "kafka", SEC, &s);
	cr_log_info("kafka: sent %lld accepted %lld rejected %lld failed %lld p99 %.2f ms",
		    (long long)s.sent, (long long)s.accepted,
		    (long long)s.rejected, (long long)s.failed, s.p99_ns / 1e6);
	cr_assert_eq(s.sent + s.dropped, s.planned);
	if (!slow_env())
		cr_assert_eq(s.sent, s.planned);
	cr_assert_eq(s.failed, 0);
	cr_assert_gt(s.p50_ns, 0);

	n = read_ledger(fx.ledger, &rows);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		if (strcmp(r->outcome, "dropped") == 0)
			continue;
		CHECK(&ck, r->status == -1, "seq %lld: HTTP status on Kafka",
		      (long long)r->seq);
		if (strcmp(r->outcome, "ok") == 0) {
			ok++;
			CHECK(&ck, strcmp(r->topic, topic) == 0 && r->partition >= 0 &&
				       r->partition < 3 && r->offset >= 0,
			      "seq %lld: at %s/%lld/%lld", (long long)r->seq,
			      r->topic, (long long)r->partition, (long long)r->offset);
			conflicts += strcmp(r->kind, "conflict") == 0;
		} else {
			/* Refused locally: too large for the producer. */
			CHECK(&ck, strcmp(r->outcome, "rejected") == 0 &&
				       strcmp(r->expect, "oversize") == 0 &&
				       strstr(r->error, "produce: "),
			      "seq %lld: %s %s %s", (long long)r->seq, r->outcome,
			      r->expect, r->error);
			rejected++;
		}
	}
	CHECKS_OK(&ck);
	cr_assert_eq(ok, s.accepted);
	cr_assert_eq(rejected, s.rejected);
	cr_assert_gt(conflicts, 0);
	cr_assert_gt(rejected, 0);

	/* Every delivered record is on the topic where the ledger says, keyed
	 * by account, with the contract's headers. */
	recs = calloc((size_t)ok + 16, sizeof *recs);
	cr_assert_not_null(recs);
	nrec = consume_all(fx.conf.kafka_bootstrap, topic, 3, (size_t)ok, recs,
			   (size_t)ok + 16);
	cr_assert_eq((int64_t)nrec, ok);
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = NULL;

		if (strcmp(rows[i].outcome, "ok") != 0)
			continue;
		for (size_t k = 0; k < nrec && !r; k++)
			if (recs[k].partition == rows[i].partition &&
			    recs[k].offset == rows[i].offset)
				r = &recs[k];
		cr_assert_not_null(r, "no record at %lld/%lld",
				   (long long)rows[i].partition,
				   (long long)rows[i].offset);
		cr_assert_str_eq(r->key, rows[i].account);
		cr_assert_str_eq(r->event_id, rows[i].event_id);
		cr_assert_str_eq(r->event_class, "transaction");
		cr_assert_str_eq(r->payload_hash, rows[i].hash);
		cr_assert(r->has_traceparent);
		cr_assert_str_eq(r->identity,
				 "platform_run_id=fpd-test;scenario_run_id=test;"
				 "phase_id=kafka;runtime_lane=drill;");
		cr_assert_str_eq(r->names,
				 "traceparent;platform_run_id;scenario_run_id;"
				 "phase_id;event_id;runtime_lane;event_class;"
				 "payload_hash;schema_version;");
		cr_assert_str_eq(r->schema_version,
				 strcmp(rows[i].expect, "compatible") == 0 ? "1.1"
									  : "1.0");
	}
	free(recs);
	free(rows);
	fx_fini(&fx);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(host);
}

static int cmp_part_off(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/*
 * Overload on channel kafka: planned far above what the sender can do, with
 * a concurrency far above the number of sends between two harvests
 * (SERVE_EVERY, 1000), so runs of late sends stop to serve reports and
 * freed slots are taken again at once. Every original is ledgered exactly
 * once, sent or dropped; every sent record is acknowledged once, at its own
 * offset, never before it was sent; and the backlog, larger than the
 * concurrency, does not go on being sent after the window has closed (at
 * most one run of SERVE_EVERY sends, a few ms, may still be under way).
 */
Test(loadgen, kafka_overload_serves_reports_inside_runs, .timeout = 30)
{
	static const char topic[] = "fp.test.overload";
	char e[512];
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	rd_kafka_t *host;
	rd_kafka_mock_cluster_t *mc;
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n, nok = 0;
	int64_t (*po)[2];
	int64_t t0 = -1, last_sent = -1;
	static unsigned char seen[200001];
	struct checks ck = {0};

	rd_kafka_conf_set(kc, "log_level", "2", e, sizeof e);
	host = rd_kafka_new(RD_KAFKA_PRODUCER, kc, e, sizeof e);
	cr_assert_not_null(host, "%s", e);
	mc = rd_kafka_mock_cluster_new(host, 1);
	cr_assert_not_null(mc);
	cr_assert_eq(rd_kafka_mock_topic_create(mc, topic, 2, 1),
		     RD_KAFKA_RESP_ERR_NO_ERROR);

	fx_init(&fx, NULL);
	fx.spec.channel = FP_CHANNEL_KAFKA;
	fx.spec.kafka_topic = (char *)topic;
	fx.spec.rate = 400000;
	fx.spec.concurrency = 20000;
	fx.conf.kafka_bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
	run_phase(&fx, "overload", SEC / 2, &s);
	cr_log_info("kafka overload: planned %lld sent %lld dropped %lld",
		    (long long)s.planned, (long long)s.sent,
		    (long long)s.dropped);
	cr_assert_eq(s.planned, 200000);
	cr_assert_eq(s.sent + s.dropped, s.planned);
	cr_assert_gt(s.sent, 3000, "too few sends to exercise the runs");
	cr_assert_gt(s.dropped, 0, "not overloaded");
	cr_assert_eq(s.accepted, s.sent);
	cr_assert_eq(s.failed + s.rejected + s.in_flight, 0);

	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, s.planned);
	po = calloc(n, sizeof *po);
	cr_assert_not_null(po);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		CHECK(&ck, r->seq >= 1 && r->seq <= 200000, "seq %lld",
		      (long long)r->seq);
		if (r->seq < 1 || r->seq > 200000)
			continue;
		seen[r->seq]++;
		if (r->seq == 1)
			t0 = r->intended; /* event 0 is due at the phase start */
		if (strcmp(r->outcome, "dropped") == 0)
			continue;
		if (r->sent > last_sent)
			last_sent = r->sent;
		CHECK(&ck, strcmp(r->outcome, "ok") == 0, "seq %lld: %s %s",
		      (long long)r->seq, r->outcome, r->error);
		CHECK(&ck, r->sent >= r->intended && r->done >= r->sent,
		      "seq %lld: intended %lld sent %lld done %lld",
		      (long long)r->seq, (long long)r->intended,
		      (long long)r->sent, (long long)r->done);
		po[nok][0] = r->partition;
		po[nok][1] = r->offset;
		nok++;
	}
	CHECKS_OK(&ck);
	for (int k = 1; k <= 200000; k++)
		cr_assert_eq(seen[k], 1, "seq %d ledgered %d times", k, seen[k]);
	cr_assert_geq(t0, 0);
	cr_log_info("kafka overload: last send %.1f ms after the window",
		    (double)(last_sent - (t0 + SEC / 2)) / 1e6);
	if (!slow_env())
		cr_assert_leq(last_sent, t0 + SEC / 2 + 200 * MS,
			      "sent %.1f ms after the window closed",
			      (double)(last_sent - (t0 + SEC / 2)) / 1e6);
	cr_assert_eq((int64_t)nok, s.accepted);
	qsort(po, nok, sizeof *po, cmp_part_off);
	for (size_t i = 1; i < nok; i++)
		cr_assert(po[i][0] != po[i - 1][0] || po[i][1] != po[i - 1][1],
			  "two records at %lld/%lld", (long long)po[i][0],
			  (long long)po[i][1]);
	free(po);
	free(rows);
	fx_fini(&fx);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(host);
}

/* ---- several sender threads ------------------------------------------------ */

/*
 * Three senders share one schedule: every original of the phase is sent
 * (or dropped) exactly once, at its own intended time, each retry follows
 * its own original, the counters add up across the threads, and one ledger
 * holds every row. A stop ends all three windows at one instant.
 */
Test(loadgen, senders_share_one_schedule, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.dup_on_repeat = 1};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n;
	int64_t originals = 0, retries = 0, dropped = 0;
	static int seen[1201];
	struct checks ck = {0};

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 600;
	fx.spec.concurrency = 6;
	fx.spec.retry_share = 0.1;
	fx.conf.senders = 3;
	run_phase(&fx, "shared", 2 * SEC, &s);
	stub_stop(&st);
	stub_free(&st);
	cr_assert_eq(s.planned, 1200);
	assert_nearly_all_sent(&s, s.planned);
	cr_assert_eq(s.accepted, s.sent);
	cr_assert_eq(s.duplicates, s.retries_sent);
	cr_assert_eq(s.in_flight + s.failed, 0);

	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, s.sent + s.retries_sent + s.dropped);
	memset(seen, 0, sizeof seen);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		CHECK(&ck, r->seq >= 1 && r->seq <= 1200, "seq %lld", (long long)r->seq);
		if (r->seq < 1 || r->seq > 1200)
			continue;
		if (strcmp(r->kind, "original") == 0) {
			seen[r->seq]++;
			originals++;
			dropped += strcmp(r->outcome, "dropped") == 0;
			/* Event k (seq k + 1) is due at k / 600 s: never early. */
			if (strcmp(r->outcome, "dropped") != 0)
				CHECK(&ck, r->sent >= r->intended,
				      "seq %lld sent %lld before intended %lld",
				      (long long)r->seq, (long long)r->sent,
				      (long long)r->intended);
		} else {
			retries++;
		}
	}
	CHECKS_OK(&ck);
	for (int k = 1; k <= 1200; k++)
		cr_assert_eq(seen[k], 1, "seq %d ledgered %d times as original", k, seen[k]);
	/* Intended times follow the one schedule: k / rate apart. */
	{
		int64_t t_first = -1, t_last = -1;

		for (size_t i = 0; i < n; i++) {
			if (strcmp(rows[i].kind, "original") != 0)
				continue;
			if (rows[i].seq == 1)
				t_first = rows[i].intended;
			if (rows[i].seq == 1200)
				t_last = rows[i].intended;
		}
		cr_assert(llabs((t_last - t_first) - 1199 * SEC / 600) < 1000,
			  "seq 1 -> 1200 intended %lld ns apart",
			  (long long)(t_last - t_first));
	}
	cr_assert_eq(originals, 1200);
	cr_assert_eq(dropped, s.dropped);
	cr_assert_eq(retries, s.retries_sent);
	cr_assert_gt(retries, 0);
	free(rows);
	fx_fini(&fx);
}

Test(loadgen, senders_stop_together, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {0};
	struct fixture fx;
	struct fp_load_stats s;
	struct fp_loadgen *g = NULL;
	struct fp_err err = {0};
	struct row *rows;
	size_t n;
	int64_t last_sent_intended = -1, first_dropped_intended = INT64_MAX;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 300;
	fx.conf.senders = 4;
	cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_OK, "%s", err.msg);
	cr_assert_eq(fp_loadgen_start(g, "long", 10 * SEC, &err), FP_OK);
	fp_sleep_ns(400 * MS, NULL);
	fp_loadgen_stop(g);
	cr_assert_eq(fp_loadgen_wait(g, &err), FP_OK, "%s", err.msg);
	fp_loadgen_stats(g, &s);
	fp_loadgen_free(g);
	stub_stop(&st);
	stub_free(&st);
	cr_assert_eq(s.planned, 3000);
	cr_assert_eq(s.sent + s.dropped, 3000);
	cr_assert_lt(s.sent, 600);
	if (!slow_env())
		cr_assert(s.achieved_rate > 255 && s.achieved_rate < 345,
			  "achieved %.1f", s.achieved_rate);
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, 3000);
	/* One window end for all senders: what was sent was due before what
	 * was dropped (give or take a late wake-up of one sender). */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].outcome, "dropped") == 0) {
			if (rows[i].intended < first_dropped_intended)
				first_dropped_intended = rows[i].intended;
		} else if (rows[i].intended > last_sent_intended) {
			last_sent_intended = rows[i].intended;
		}
	}
	if (!slow_env())
		cr_assert_lt(last_sent_intended, first_dropped_intended + 20 * MS,
			     "sent up to %lld, dropped from %lld",
			     (long long)last_sent_intended,
			     (long long)first_dropped_intended);
	free(rows);
	fx_fini(&fx);
}

/* A sender with nothing due for seconds sleeps in epoll_wait; stop() must
 * end that sleep through its eventfd, not the 1 s backstop of the wait.
 * Three stops in a row, each bounded at 250 ms: a sender woken only by
 * the backstop would pass all three about one time in 64. */
Test(loadgen, stop_wakes_an_idle_sender, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {0};
	struct fixture fx;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 0.2; /* one event every 5 s */
	fx.conf.senders = 1;
	for (int i = 0; i < 3; i++) {
		struct fp_loadgen *g = NULL;
		struct fp_err err = {0};
		struct fp_load_stats s;
		int64_t t0;

		cr_assert_eq(fp_loadgen_new(&fx.conf, &g, &err), FP_OK, "%s",
			     err.msg);
		cr_assert_eq(fp_loadgen_start(g, "idle", 20 * SEC, &err), FP_OK);
		/* The first event (k = 0) goes at once; then nothing is due
		 * for 5 s and the sender is in epoll_wait. */
		fp_sleep_ns(300 * MS, NULL);
		t0 = fp_mono_ns();
		fp_loadgen_stop(g);
		cr_assert_eq(fp_loadgen_wait(g, &err), FP_OK, "%s", err.msg);
		if (!slow_env())
			cr_assert_lt(fp_mono_ns() - t0, 250 * MS,
				     "stop took %lld ms",
				     (long long)((fp_mono_ns() - t0) / MS));
		fp_loadgen_stats(g, &s);
		cr_assert_eq(s.sent, 1);
		cr_assert_eq(s.accepted, 1);
		cr_assert_eq(s.sent + s.dropped, 4);
		fp_loadgen_free(g);
	}
	stub_stop(&st);
	stub_free(&st);
	fx_fini(&fx);
}

/* Many transfers in flight on one sender: every socket goes through the
 * epoll set (the stub holds each answer 100 ms, so about 100 requests are
 * open at once on as many connections) and each completes once. */
Test(loadgen, many_slots_on_one_sender, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.delay_ns = 100 * MS};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n, ok = 0;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 1000;
	fx.spec.concurrency = 300;
	fx.conf.senders = 1;
	run_phase(&fx, "wide", 1500 * MS, &s);
	stub_stop(&st);
	cr_assert_eq(s.planned, 1500);
	/* Not assert_nearly_all_sent: with other tests running beside it
	 * the stub's one thread can fall behind its connections and sends wait
	 * for slots (dropped at the window's end). What is asserted is that
	 * whatever went out came back, once, on the right slot. */
	cr_assert_eq(s.sent + s.dropped, 1500);
	cr_assert_gt(s.sent, 750);
	cr_assert_eq(s.failed, 0);
	cr_assert_eq(s.accepted, s.sent);
	cr_assert_eq(st.total, s.sent);
	if (!slow_env())
		cr_assert_gt(st.max_conns, 64, "max %lld connections",
			     (long long)st.max_conns);
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, 1500);
	for (size_t i = 0; i < n; i++) {
		ok += strcmp(rows[i].outcome, "ok") == 0 && rows[i].status == 202;
		cr_assert(strcmp(rows[i].outcome, "ok") == 0 ||
			  strcmp(rows[i].outcome, "dropped") == 0,
			  "seq %lld: %s", (long long)rows[i].seq,
			  rows[i].outcome);
	}
	cr_assert_eq((int64_t)ok, s.sent);
	free(rows);
	stub_free(&st);
	fx_fini(&fx);
}

/* A connection reset instead of an answer (every 25th event) is a failed,
 * indeterminate attempt with its error in the ledger: never lost, never
 * counted as accepted, and the sender carries on with the others. */
Test(loadgen, connection_reset_is_failed_not_lost, .timeout = 30)
{
	struct stub st;
	struct stub_conf sc = {.reset_mod = 25};
	struct fixture fx;
	struct fp_load_stats s;
	struct row *rows;
	size_t n;
	int64_t reset_rows = 0, ok_rows = 0;

	cr_assert_eq(stub_start(&st, &sc), 0);
	fx_init(&fx, st.url);
	fx.spec.rate = 500;
	fx.conf.senders = 2;
	run_phase(&fx, "resets", 1 * SEC, &s);
	stub_stop(&st);
	cr_assert_eq(s.planned, 500);
	assert_nearly_all_sent(&s, 500);
	cr_assert_gt(st.resets, 0);
	n = read_ledger(fx.ledger, &rows);
	cr_assert_eq((int64_t)n, 500);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].outcome, "dropped") == 0)
			continue;
		cr_assert_geq(rows[i].done, rows[i].sent);
		if (rows[i].seq % 25 == 0) {
			cr_assert_str_eq(rows[i].outcome, "info",
					 "seq %lld", (long long)rows[i].seq);
			cr_assert_eq(rows[i].status, -1);
			cr_assert_neq(rows[i].error[0], '\0');
			reset_rows++;
		} else {
			cr_assert_str_eq(rows[i].outcome, "ok",
					 "seq %lld: %s", (long long)rows[i].seq,
					 rows[i].error);
			ok_rows++;
		}
	}
	cr_assert_eq(s.failed, reset_rows);
	cr_assert_eq(s.accepted, ok_rows);
	cr_assert_eq(s.failed + s.accepted, s.sent);
	cr_assert_geq(reset_rows, 19);
	free(rows);
	stub_free(&st);
	fx_fini(&fx);
}
