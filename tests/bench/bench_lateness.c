/*
 * bench_lateness.c - benchmark 4: scheduler lateness of the open-model
 * generator. Sends at a fixed planned rate (default 10k events/s for 30 s,
 * concurrency 64) to a fixed-answer sink and measures, per original event,
 * actual send time minus intended send time from the ledger's sent_ns and
 * intended_ns columns (the public API exposes only the > 10 ms "late"
 * count). Prints p50/p99/p99.9/max lateness and the generator's own
 * latency-from-intended percentiles.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness/load/fp_load.h"
#include "tests/bench/bench_common.h"

static double us(int64_t ns)
{
	return (double)ns / 1e3;
}

int main(int argc, char **argv)
{
	const char *url = bench_opt(argc, argv, "url", "http://127.0.0.1:27180/v1/events");
	double rate = atof(bench_opt(argc, argv, "rate", "10000"));
	int conc = atoi(bench_opt(argc, argv, "concurrency", "64"));
	double secs = atof(bench_opt(argc, argv, "seconds", "30"));
	const char *ledger = bench_opt(argc, argv, "ledger", "/tmp/h4-bench/lateness-ledger.tsv");
	struct fp_load_spec sp;
	struct fp_load_conf conf = {0};
	struct fp_loadgen *g = NULL;
	struct fp_load_stats st;
	struct bench_ledger_sum sum;
	struct fp_err err = {0};
	double la0 = bench_loadavg1(), cpu0, cpu;

	bench_default_spec(&sp, rate, conc);
	conf.spec = &sp;
	conf.url = url;
	conf.platform_run_id = "bench-run-0004";
	conf.scenario_run_id = "bench-scenario-0004";
	conf.event_class = "fraud.v1";
	conf.runtime_lane = "shadow";
	conf.ledger_path = ledger;
	conf.senders = atoi(bench_opt(argc, argv, "senders", "0"));
	cpu0 = bench_cpu_s();
	if (fp_loadgen_new(&conf, &g, &err) != FP_OK ||
	    fp_loadgen_start(g, "load", (int64_t)(secs * 1e9), &err) != FP_OK ||
	    fp_loadgen_wait(g, &err) != FP_OK) {
		fprintf(stderr, "bench_lateness: %s\n", err.msg);
		fp_loadgen_free(g);
		return 1;
	}
	cpu = bench_cpu_s() - cpu0;
	fp_loadgen_stats(g, &st);
	fp_loadgen_free(g);
	if (bench_ledger_summarise(ledger, 0, &sum) != 0) {
		perror(ledger);
		return 1;
	}
	printf("fpdrill_lateness rate=%.0f samples=%" PRId64
	       " late_p50_us=%.1f late_p99_us=%.1f late_p999_us=%.1f"
	       " late_max_us=%.1f early=%" PRId64 " late_gt10ms=%" PRId64
	       " dropped=%" PRId64 " sent=%" PRId64 " achieved=%.1f"
	       " lat_p99_ms=%.3f lat_max_ms=%.3f loadavg_start=%.2f"
	       " loadavg_end=%.2f cpu_s=%.3f cpu_us_per_event=%.2f\n",
	       rate, fp_hist_count(sum.lateness),
	       us(fp_hist_percentile(sum.lateness, 50)),
	       us(fp_hist_percentile(sum.lateness, 99)),
	       us(fp_hist_percentile(sum.lateness, 99.9)),
	       us(fp_hist_max(sum.lateness)), sum.lateness_neg, st.late,
	       st.dropped, st.sent, st.achieved_rate,
	       (double)st.p99_ns / 1e6, (double)st.max_ns / 1e6, la0,
	       bench_loadavg1(), cpu, st.sent > 0 ? cpu * 1e6 / (double)st.sent : 0);
	bench_ledger_sum_free(&sum);
	if (!bench_flag(argc, argv, "keep-ledger"))
		unlink(ledger);
	return 0;
}
