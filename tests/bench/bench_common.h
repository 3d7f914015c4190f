/*
 * bench_common.h - small helpers shared by the benchmarks in tests/bench:
 * option lookup, peak/current RSS from /proc/self/status, the 1-minute load
 * average, a default load spec, and a reader of ledger.tsv that summarises
 * the rows (throughput window, scheduler lateness) through the public
 * histogram API. Not part of the harness; the benchmarks only use the
 * public APIs of harness/load, harness/backend and invariants/.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>

#include "harness/load/fp_load.h"

/* @returns the value after "--name", or def when absent. */
const char *bench_opt(int argc, char **argv, const char *name,
		      const char *def);
/* @returns 1 when the flag "--name" is present. */
int bench_flag(int argc, char **argv, const char *name);

/* @returns VmHWM / VmRSS of this process in KiB, -1 when unreadable. */
long bench_vmhwm_kb(void);
long bench_vmrss_kb(void);
double bench_loadavg1(void);
/* @returns user + system CPU seconds of this process (all threads). */
double bench_cpu_s(void);

/* A load spec with the loader's defaults (valid events only, no retries). */
void bench_default_spec(struct fp_load_spec *sp, double rate,
			int concurrency);

/* What a pass over ledger.tsv found. */
struct bench_ledger_sum {
	int64_t rows;
	int64_t ok;            /* outcome ok */
	int64_t completed;     /* rows with a done_ns (any outcome) */
	int64_t dropped;
	int64_t first_sent_ns; /* min sent_ns */
	int64_t last_done_ns;  /* max done_ns */
	int64_t first_intended_ns; /* min intended_ns: the phase start */
	/* With a window: attempts completed (any outcome / ok) no later than
	 * first_intended_ns + window_ns, i.e. inside the phase window. */
	int64_t completed_in_window, ok_in_window;
	struct fp_hist *lateness; /* sent_ns - intended_ns of originals (owned) */
	int64_t lateness_neg;  /* sends before their intended time (should be 0) */
};

/* @param window_ns the phase duration, or 0 to skip the window counts.
 * @returns 0, or -1 when the file cannot be read. */
int bench_ledger_summarise(const char *path, int64_t window_ns,
			   struct bench_ledger_sum *s);
void bench_ledger_sum_free(struct bench_ledger_sum *s);

#endif
