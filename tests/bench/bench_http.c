/*
 * bench_http.c - benchmark 1: throughput of the ledgered, open-model fpdrill
 * load generator over HTTP against a fixed-answer sink (nginx), to be
 * compared with wrk against the same sink in the same run (tests/bench/run.sh).
 *
 * The generator is planned above the sink's capacity, so it sends as fast
 * as its concurrency cap allows and every send is "late". The achieved
 * rate is read back from the ledger it wrote to disk, defined as wrk
 * defines its own: requests completed inside the phase window divided by
 * the window (the ledger rows of the unsent remainder, written after the
 * window closed, are not counted against it).
 *
 * --print-body writes one representative event body to stdout (for wrk's
 * Lua script, so both clients POST the same number of bytes).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/load/fp_load.h"
#include "harness/load/fp_load_int.h"
#include "tests/bench/bench_common.h"

static int print_body(void)
{
	/* fp_event_build is the generator's own body builder (internal
	 * header shared with the unit tests); seq 500000 is a typical size. */
	struct fp_event_ids ids = {"bench-run-0001", "bench-scenario-0001",
				   "load", "shadow", "fraud.v1"};
	struct fp_event_mix mix = {.seed = 1, .accounts = 1000,
				   .high_value_share = 0.1};
	struct fp_event ev;
	struct fp_err err = {0};

	if (fp_event_build(&ids, &mix, 500000, fp_wall_ns(), &ev, &err) != FP_OK) {
		fprintf(stderr, "bench_http: %s\n", err.msg);
		return 1;
	}
	fwrite(ev.body, 1, ev.body_len, stdout);
	fp_event_release(&ev);
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = bench_opt(argc, argv, "url", "http://127.0.0.1:27180/v1/events");
	double rate = atof(bench_opt(argc, argv, "rate", "150000"));
	int conc = atoi(bench_opt(argc, argv, "concurrency", "64"));
	double secs = atof(bench_opt(argc, argv, "seconds", "10"));
	const char *ledger = bench_opt(argc, argv, "ledger", "/tmp/h4-bench/http-ledger.tsv");
	struct fp_load_spec sp;
	struct fp_load_conf conf = {0};
	struct fp_loadgen *g = NULL;
	struct fp_load_stats st;
	struct bench_ledger_sum sum;
	struct fp_err err = {0};
	int64_t t0, t1, t2;
	double span_s, rps, cpu0, cpu, cpu_win;

	if (bench_flag(argc, argv, "print-body"))
		return print_body();
	bench_default_spec(&sp, rate, conc);
	conf.spec = &sp;
	conf.url = url;
	conf.platform_run_id = "bench-run-0001";
	conf.scenario_run_id = "bench-scenario-0001";
	conf.event_class = "fraud.v1";
	conf.runtime_lane = "shadow";
	conf.ledger_path = ledger;
	conf.senders = atoi(bench_opt(argc, argv, "senders", "0"));
	cpu0 = bench_cpu_s();
	t0 = fp_mono_ns();
	if (fp_loadgen_new(&conf, &g, &err) != FP_OK ||
	    fp_loadgen_start(g, "load", (int64_t)(secs * 1e9), &err) != FP_OK) {
		fprintf(stderr, "bench_http: %s\n", err.msg);
		fp_loadgen_free(g);
		return 1;
	}
	/* CPU used inside the window: the rows of the sends that never went
	 * out are written after it and are not a cost of the requests. */
	fp_sleep_ns(t0 + (int64_t)(secs * 1e9) - fp_mono_ns(), NULL);
	cpu_win = bench_cpu_s() - cpu0;
	if (fp_loadgen_wait(g, &err) != FP_OK) {
		fprintf(stderr, "bench_http: wait: %s\n", err.msg);
		fp_loadgen_free(g);
		return 1;
	}
	t1 = fp_mono_ns();
	/* CPU of the whole process over the phase and its drain, including
	 * the dropped rows when planned above capacity. */
	cpu = bench_cpu_s() - cpu0;
	fp_loadgen_stats(g, &st);
	fp_loadgen_free(g);
	t2 = fp_mono_ns();
	if (bench_ledger_summarise(ledger, (int64_t)(secs * 1e9), &sum) != 0) {
		perror(ledger);
		return 1;
	}
	span_s = (double)(sum.last_done_ns - sum.first_sent_ns) / 1e9;
	rps = (double)sum.completed_in_window / secs;
	/* One machine-readable line; run.sh picks the fields it tabulates. */
	printf("fpdrill_http rps=%.0f in_window=%" PRId64 " span_rps=%.0f"
	       " completed=%" PRId64 " ok=%" PRId64 " span_s=%.3f planned=%" PRId64 " sent=%" PRId64
	       " dropped=%" PRId64 " failed=%" PRId64 " stats_rate=%.0f"
	       " p99_svc_ms=%.3f wait_s=%.3f free_s=%.3f ledger_rows=%" PRId64
	       " vmhwm_kb=%ld cpu_s=%.3f cpu_window_s=%.3f cpu_us_per_req=%.2f"
	       " senders=%d loadavg=%.2f\n",
	       rps, sum.completed_in_window,
	       span_s > 0 ? (double)sum.completed / span_s : 0, sum.completed,
	       sum.ok, span_s, st.planned, st.sent,
	       st.dropped, st.failed, st.achieved_rate,
	       (double)st.svc_p99_ns / 1e6, (double)(t1 - t0) / 1e9,
	       (double)(t2 - t1) / 1e9, sum.rows, bench_vmhwm_kb(), cpu, cpu_win,
	       sum.completed_in_window > 0
		       ? cpu_win * 1e6 / (double)sum.completed_in_window
		       : 0,
	       conf.senders, bench_loadavg1());
	bench_ledger_sum_free(&sum);
	if (!bench_flag(argc, argv, "keep-ledger"))
		unlink(ledger);
	return sum.completed > 0 ? 0 : 1;
}
