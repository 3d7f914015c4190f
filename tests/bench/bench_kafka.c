/*
 * bench_kafka.c - benchmark 2, fpdrill side: throughput of the ledgered,
 * open-model fpdrill load generator over `channel: kafka` (delivery
 * reports, acks=all, idempotent producer) to the local stack's broker, to
 * be compared with bench_kafka_peer (a plain librdkafka producer with the
 * same properties, topic and message size) in the same run.
 *
 * The generator is planned above the broker's capacity for --seconds; the
 * achieved rate is read back from the ledger: records acknowledged (ok)
 * inside the phase window divided by the window, as bench_kafka_peer
 * counts deliveries inside its produce window.
 *
 * The Kafka channel (struct fp_load_conf fields kafka_bootstrap and
 * kafka_props) is being added to harness/load in parallel; CMake probes for
 * it and, when it is absent, this program prints a SKIP line and exits 2.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/load/fp_load.h"
#include "tests/bench/bench_common.h"

#ifndef FP_BENCH_HAVE_KAFKA_CHANNEL
int main(void)
{
	printf("fpdrill_kafka SKIP: struct fp_load_conf has no kafka_bootstrap/"
	       "kafka_props yet (channel: kafka not in harness/load)\n");
	return 2;
}
#else
/* The producer settings shared with bench_kafka_peer (see run.sh). */
static struct fp_kv kv[] = {
	{.key = "acks", .value = "all"},
	{.key = "enable.idempotence", .value = "true"},
	{.key = "linger.ms", .value = "5"},
	{.key = "batch.num.messages", .value = "10000"},
	{.key = "batch.size", .value = "1000000"},
	{.key = "compression.type", .value = "none"},
	{.key = "queue.buffering.max.messages", .value = "100000"},
};

int main(int argc, char **argv)
{
	const char *bootstrap = bench_opt(argc, argv, "bootstrap", "127.0.0.1:27092");
	const char *topic = bench_opt(argc, argv, "topic", "fp.bus.traffic.fraud.v1");
	double rate = atof(bench_opt(argc, argv, "rate", "300000"));
	int conc = atoi(bench_opt(argc, argv, "concurrency", "50000"));
	double secs = atof(bench_opt(argc, argv, "seconds", "10"));
	const char *ledger = bench_opt(argc, argv, "ledger", "/tmp/h4-bench/kafka-ledger.tsv");
	struct fp_kvlist props = {kv, sizeof kv / sizeof kv[0]};
	struct fp_load_spec sp;
	struct fp_load_conf conf = {0};
	struct fp_loadgen *g = NULL;
	struct fp_load_stats st;
	struct bench_ledger_sum sum;
	struct fp_err err = {0};
	double span_s, mps, cpu0, cpu, cpu_start, cpu_win;
	int64_t t0;

	bench_default_spec(&sp, rate, conc);
	sp.channel = FP_CHANNEL_KAFKA;
	sp.kafka_topic = (char *)topic;
	conf.spec = &sp;
	conf.url = "http://127.0.0.1:9/unused"; /* not used by channel kafka */
	conf.platform_run_id = "bench-run-0002";
	conf.scenario_run_id = "bench-scenario-0002";
	conf.event_class = "fraud.v1";
	conf.runtime_lane = "shadow";
	conf.ledger_path = ledger;
	conf.kafka_bootstrap = bootstrap;
	conf.kafka_props = &props;
	cpu0 = bench_cpu_s();
	if (fp_loadgen_new(&conf, &g, &err) == FP_OK)
		cpu_start = bench_cpu_s();
	else {
		printf("fpdrill_kafka SKIP: fp_loadgen_new: %s\n", err.msg);
		return 2;
	}
	t0 = fp_mono_ns();
	if (fp_loadgen_start(g, "load", (int64_t)(secs * 1e9), &err) != FP_OK) {
		fprintf(stderr, "bench_kafka: %s\n", err.msg);
		fp_loadgen_free(g);
		return 1;
	}
	/* CPU used inside the window (all threads): the rows of the sends
	 * that never went out are written after it. */
	fp_sleep_ns(t0 + (int64_t)(secs * 1e9) - fp_mono_ns(), NULL);
	cpu_win = bench_cpu_s() - cpu_start;
	if (fp_loadgen_wait(g, &err) != FP_OK) {
		fprintf(stderr, "bench_kafka: %s\n", err.msg);
		fp_loadgen_free(g);
		return 1;
	}
	/* CPU of the whole process (librdkafka's and the ledger writer's
	 * threads included) over the phase and its drain, per record. At a
	 * planned rate above capacity it includes the dropped rows. */
	cpu = bench_cpu_s() - cpu0;
	fp_loadgen_stats(g, &st);
	fp_loadgen_free(g);
	if (bench_ledger_summarise(ledger, (int64_t)(secs * 1e9), &sum) != 0) {
		perror(ledger);
		return 1;
	}
	span_s = (double)(sum.last_done_ns - sum.first_sent_ns) / 1e9;
	mps = (double)sum.ok_in_window / secs;
	printf("fpdrill_kafka mps=%.0f ok_in_window=%" PRId64 " span_mps=%.0f"
	       " ok=%" PRId64 " completed=%" PRId64
	       " span_s=%.3f planned=%" PRId64 " sent=%" PRId64
	       " dropped=%" PRId64 " failed=%" PRId64 " ledger_rows=%" PRId64
	       " vmhwm_kb=%ld cpu_s=%.3f cpu_window_s=%.3f cpu_us_per_msg=%.2f"
	       " concurrency=%d loadavg=%.2f\n",
	       mps, sum.ok_in_window,
	       span_s > 0 ? (double)sum.ok / span_s : 0, sum.ok, sum.completed, span_s, st.planned, st.sent,
	       st.dropped, st.failed, sum.rows, bench_vmhwm_kb(), cpu, cpu_win,
	       sum.ok_in_window > 0 ? cpu_win * 1e6 / (double)sum.ok_in_window
				    : 0,
	       conc, bench_loadavg1());
	bench_ledger_sum_free(&sum);
	if (!bench_flag(argc, argv, "keep-ledger"))
		unlink(ledger);
	return sum.ok > 0 ? 0 : 1;
}
#endif
