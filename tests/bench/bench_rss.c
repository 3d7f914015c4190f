/*
 * bench_rss.c - benchmark 3: peak memory of the load generator as the
 * number of events grows. One generator (concurrency 64, ledger streamed to
 * disk) sends to a fixed-answer sink in consecutive phases until 1 M and
 * then 10 M originals have been sent; at each checkpoint the process's
 * VmHWM (peak RSS) and VmRSS are printed. The planned rate should sit just
 * below the generator's ceiling (run.sh passes 0.9x the measured HTTP
 * rate), so few events are dropped at phase ends; dropped events are
 * ledgered too and do not count towards the checkpoints.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/load/fp_load.h"
#include "tests/bench/bench_common.h"

int main(int argc, char **argv)
{
	const char *url = bench_opt(argc, argv, "url", "http://127.0.0.1:27180/v1/events");
	double rate = atof(bench_opt(argc, argv, "rate", "20000"));
	int conc = atoi(bench_opt(argc, argv, "concurrency", "64"));
	const char *ledger = bench_opt(argc, argv, "ledger", "/tmp/h4-bench/rss-ledger.tsv");
	const char *cps = bench_opt(argc, argv, "checkpoints", "1000000,10000000");
	struct fp_load_spec sp;
	struct fp_load_conf conf = {0};
	struct fp_loadgen *g = NULL;
	struct fp_load_stats st;
	struct fp_err err = {0};
	int64_t t0 = fp_mono_ns(), sent = 0;
	int phase = 0;
	char *end;

	bench_default_spec(&sp, rate, conc);
	conf.spec = &sp;
	conf.url = url;
	conf.platform_run_id = "bench-run-0003";
	conf.scenario_run_id = "bench-scenario-0003";
	conf.event_class = "fraud.v1";
	conf.runtime_lane = "shadow";
	conf.ledger_path = ledger;
	if (fp_loadgen_new(&conf, &g, &err) != FP_OK) {
		fprintf(stderr, "bench_rss: %s\n", err.msg);
		return 1;
	}
	printf("fpdrill_rss checkpoint=0 sent=0 vmhwm_kb=%ld vmrss_kb=%ld\n",
	       bench_vmhwm_kb(), bench_vmrss_kb());
	fflush(stdout);
	for (const char *p = cps; *p; p = *end ? end + 1 : end) {
		int64_t target = strtoll(p, &end, 10);

		while (sent < target) {
			double d = (double)(target - sent) / rate;
			char pid[32];

			if (d > 60)
				d = 60;
			if (d < 1)
				d = 1;
			snprintf(pid, sizeof pid, "p%d", phase++);
			if (fp_loadgen_start(g, pid, (int64_t)(d * 1e9), &err) != FP_OK ||
			    fp_loadgen_wait(g, &err) != FP_OK) {
				fprintf(stderr, "bench_rss: %s\n", err.msg);
				fp_loadgen_free(g);
				return 1;
			}
			fp_loadgen_stats(g, &st);
			sent = st.sent;
		}
		printf("fpdrill_rss checkpoint=%" PRId64 " sent=%" PRId64
		       " planned=%" PRId64 " dropped=%" PRId64
		       " failed=%" PRId64 " vmhwm_kb=%ld vmrss_kb=%ld"
		       " elapsed_s=%.1f loadavg=%.2f\n",
		       target, st.sent, st.planned, st.dropped, st.failed,
		       bench_vmhwm_kb(), bench_vmrss_kb(),
		       (double)(fp_mono_ns() - t0) / 1e9, bench_loadavg1());
		fflush(stdout);
	}
	fp_loadgen_free(g);
	if (!bench_flag(argc, argv, "keep-ledger"))
		unlink(ledger);
	return 0;
}
