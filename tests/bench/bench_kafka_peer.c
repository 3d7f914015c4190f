/*
 * bench_kafka_peer.c - benchmark 2, peer side: a plain librdkafka producer
 * (no ledger, no schedule) that produces fixed-size records to one topic as
 * fast as the local queue admits for --seconds, then flushes. Same producer
 * properties as bench_kafka (acks=all, idempotence on, linger 5 ms, batch
 * 10000 / 1 MB, no compression). Rate = records acknowledged inside the
 * produce window divided by the window (what is still queued at its end is
 * flushed but not counted), as bench_kafka counts from its ledger.
 *
 * Every record carries the nine headers of the platform contract (section
 * 2) with values of the same lengths as fpdrill's, so both sides put
 * records of the same size on the wire and pay the same per-header cost
 * in librdkafka; --no-headers drops them (the method before 2026-11-23
 * 22:00). --rate paces the producer (0 = as fast as the queue admits), for
 * CPU-per-record comparisons at a rate both sides sustain.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t n_ok, n_err, last_dr_ns, window_end_ns, n_ok_window;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	last_dr_ns = now_ns();
	if (m->err) {
		n_err++;
	} else {
		n_ok++;
		n_ok_window += last_dr_ns <= window_end_ns;
	}
}

static const char *opt(int argc, char **argv, const char *name,
		       const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0)
			return argv[i + 1];
	return def;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Names and value lengths of fpdrill's record headers (bench_kafka's
 * identities: run "bench-run-0002", scenario "bench-scenario-0002", phase
 * "load", lane "shadow", class "fraud.v1"). */
static const char *const hdr_names[] = {
	"traceparent", "platform_run_id", "scenario_run_id", "phase_id",
	"event_id", "runtime_lane", "event_class", "payload_hash",
	"schema_version",
};
static const size_t hdr_lens[] = {55, 14, 19, 4, 22, 6, 8, 64, 3};

static const char *const props[][2] = {
	{"acks", "all"},
	{"enable.idempotence", "true"},
	{"linger.ms", "5"},
	{"batch.num.messages", "10000"},
	{"batch.size", "1000000"},
	{"compression.type", "none"},
	{"queue.buffering.max.messages", "100000"},
};

int main(int argc, char **argv)
{
	const char *bootstrap = opt(argc, argv, "bootstrap", "127.0.0.1:27092");
	const char *topic = opt(argc, argv, "topic", "fp.bus.traffic.fraud.v1");
	size_t size = (size_t)atol(opt(argc, argv, "size", "700"));
	double secs = atof(opt(argc, argv, "seconds", "10"));
	double rate = atof(opt(argc, argv, "rate", "0"));
	int headers = 1;
	char hval[65];
	double cpu0;
	char errstr[512], key[32], *val;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	int64_t t0, tend, produced = 0, qfull = 0;
	double span_s;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--no-headers") == 0)
			headers = 0;
	memset(hval, 'h', sizeof hval);
	if (size < 64)
		size = 64;
	val = malloc(size);
	if (!val)
		return 1;
	memset(val, 'x', size);
	val[size - 1] = '}';
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
			      sizeof errstr) != RD_KAFKA_CONF_OK)
		goto conf_err;
	for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr,
				      sizeof errstr) != RD_KAFKA_CONF_OK)
			goto conf_err;
	rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!rk) {
		fprintf(stderr, "bench_kafka_peer: %s\n", errstr);
		return 1;
	}
	cpu0 = cpu_s();
	t0 = now_ns();
	tend = t0 + (int64_t)(secs * 1e9);
	window_end_ns = tend;
	while (now_ns() < tend) {
		rd_kafka_resp_err_t e;
		rd_kafka_headers_t *hdrs = NULL;
		int klen = snprintf(key, sizeof key, "e-%020" PRId64, produced);

		if (rate > 0) {
			/* Paced: record n is due at t0 + n / rate. */
			int64_t due = t0 + (int64_t)((double)produced / rate * 1e9);
			int64_t wait = due - now_ns();

			/* Sleep, never spin, as fpdrill's sender does. */
			if (wait > 1000000) {
				rd_kafka_poll(rk, (int)(wait / 1000000));
			} else if (wait > 0 && rd_kafka_poll(rk, 0) == 0) {
				struct timespec ts = {0, (long)wait};

				nanosleep(&ts, NULL);
			}
			if (now_ns() < due)
				continue;
		}
		if (headers) {
			hdrs = rd_kafka_headers_new(9);
			for (size_t i = 0; i < 9; i++)
				rd_kafka_header_add(hdrs, hdr_names[i], -1, hval,
						    (ssize_t)hdr_lens[i]);
		}

		/* A unique record head, like the generator's envelopes. */
		snprintf(val, size, "{\"seq\":%020" PRId64 ",", produced);
		val[strlen(val)] = 'x';
		e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
				      RD_KAFKA_V_KEY(key, (size_t)klen),
				      RD_KAFKA_V_VALUE(val, size),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_HEADERS(hdrs),
				      RD_KAFKA_V_END);
		if (e && hdrs)
			rd_kafka_headers_destroy(hdrs);
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			qfull++;
			rd_kafka_poll(rk, 1);
			continue;
		}
		if (e) {
			fprintf(stderr, "bench_kafka_peer: produce: %s\n",
				rd_kafka_err2str(e));
			break;
		}
		if (++produced % 1000 == 0)
			rd_kafka_poll(rk, 0);
	}
	/* CPU of the whole process (librdkafka's threads included) inside
	 * the produce window, per record acknowledged in it. */
	cpu0 = cpu_s() - cpu0;
	rd_kafka_flush(rk, 60000);
	span_s = (double)(last_dr_ns - t0) / 1e9;
	printf("peer_kafka mps=%.0f ok_in_window=%" PRId64 " span_mps=%.0f"
	       " ok=%" PRId64 " err=%" PRId64
	       " produced=%" PRId64 " span_s=%.3f queue_full=%" PRId64
	       " size=%zu headers=%d cpu_window_s=%.3f cpu_us_per_msg=%.2f\n",
	       (double)n_ok_window / secs, n_ok_window,
	       span_s > 0 ? (double)n_ok / span_s : 0, n_ok, n_err, produced,
	       span_s, qfull, size, headers, cpu0,
	       n_ok_window > 0 ? cpu0 * 1e6 / (double)n_ok_window : 0);
	rd_kafka_destroy(rk);
	free(val);
	return n_ok > 0 ? 0 : 1;
conf_err:
	fprintf(stderr, "bench_kafka_peer: %s\n", errstr);
	rd_kafka_conf_destroy(conf);
	return 1;
}
