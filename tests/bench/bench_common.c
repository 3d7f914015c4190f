/*
 * bench_common.c - helpers shared by the benchmarks (see bench_common.h).
 */
#include "tests/bench/bench_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

const char *bench_opt(int argc, char **argv, const char *name,
		      const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] == '-' &&
		    strcmp(argv[i] + 2, name) == 0)
			return argv[i + 1];
	return def;
}

int bench_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] == '-' &&
		    strcmp(argv[i] + 2, name) == 0)
			return 1;
	return 0;
}

static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t klen = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

long bench_vmhwm_kb(void)
{
	return status_kb("VmHWM");
}

long bench_vmrss_kb(void)
{
	return status_kb("VmRSS");
}

double bench_loadavg1(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double v = -1;

	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

double bench_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void bench_default_spec(struct fp_load_spec *sp, double rate,
			int concurrency)
{
	memset(sp, 0, sizeof *sp);
	sp->enabled = 1;
	sp->channel = FP_CHANNEL_HTTP;
	sp->rate = rate;
	sp->seed = 1;
	sp->concurrency = concurrency;
	sp->accounts = 1000;
	sp->retry_share = 0;
	sp->retry_delay_ns = 200 * INT64_C(1000000);
	sp->high_value_share = 0.1;
	sp->timeout_ns = 10 * INT64_C(1000000000);
	sp->mix[FP_EVENT_VALID] = 1.0;
}

/* Split a COPY text line into at most n fields in place. */
static int split_tabs(char *line, char **f, int n)
{
	int k = 0;

	f[k++] = line;
	for (char *p = line; *p && k < n; p++)
		if (*p == '\t') {
			*p = '\0';
			f[k++] = p + 1;
		}
	return k;
}

static int is_null(const char *s)
{
	return s[0] == '\\' && s[1] == 'N';
}

int bench_ledger_summarise(const char *path, int64_t window_ns,
			   struct bench_ledger_sum *s)
{
	/* Columns: FP_LEDGER_COLUMNS (0 seq, 2 kind, 8 intended_ns,
	 * 9 sent_ns, 10 done_ns, 12 outcome). */
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	memset(s, 0, sizeof *s);
	s->first_sent_ns = INT64_MAX;
	s->last_done_ns = INT64_MIN;
	s->first_intended_ns = INT64_MAX;
	if (!f)
		return -1;
	s->lateness = fp_hist_new();
	while (getline(&line, &cap, f) > 0) {
		char *c[18];

		if (split_tabs(line, c, 18) < 13)
			continue;
		s->rows++;
		if (!is_null(c[8])) {
			int64_t in = strtoll(c[8], NULL, 10);

			if (in < s->first_intended_ns)
				s->first_intended_ns = in;
		}
		if (strcmp(c[12], "ok") == 0)
			s->ok++;
		else if (strcmp(c[12], "dropped") == 0)
			s->dropped++;
		if (!is_null(c[10])) {
			int64_t d = strtoll(c[10], NULL, 10);

			s->completed++;
			if (d > s->last_done_ns)
				s->last_done_ns = d;
		}
		if (!is_null(c[9])) {
			int64_t st = strtoll(c[9], NULL, 10);

			if (st < s->first_sent_ns)
				s->first_sent_ns = st;
			if (strcmp(c[2], "original") == 0 && !is_null(c[8])) {
				int64_t late = st - strtoll(c[8], NULL, 10);

				if (late < 0)
					s->lateness_neg++;
				/* The histogram starts at 1 us; a send on
				 * time is recorded at its floor. */
				fp_hist_record(s->lateness, late < 0 ? 0 : late);
			}
		}
	}
	if (window_ns > 0) {
		/* Second pass: what completed inside the phase window. */
		int64_t end = s->first_intended_ns + window_ns;

		rewind(f);
		while (getline(&line, &cap, f) > 0) {
			char *c[18];

			if (split_tabs(line, c, 18) < 13 || is_null(c[10]) ||
			    strtoll(c[10], NULL, 10) > end)
				continue;
			s->completed_in_window++;
			s->ok_in_window += strcmp(c[12], "ok") == 0;
		}
	}
	free(line);
	fclose(f);
	return 0;
}

void bench_ledger_sum_free(struct bench_ledger_sum *s)
{
	fp_hist_free(s->lateness);
	s->lateness = NULL;
}
