/* fp_clock.c - monotonic/wall clocks and durations (see fp_clock.h). */
#include "harness/core/fp_clock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t ts_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * FP_NS_PER_S + ts.tv_nsec;
}

int64_t fp_mono_ns(void)
{
	return ts_ns(CLOCK_MONOTONIC);
}

int64_t fp_wall_ns(void)
{
	return ts_ns(CLOCK_REALTIME);
}

void fp_fmt_iso8601(int64_t wall_ns, char *out, size_t outsz)
{
	time_t s = (time_t)(wall_ns / FP_NS_PER_S);
	int ms = (int)((wall_ns % FP_NS_PER_S) / FP_NS_PER_MS);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ms);
}

void fp_fmt_compact(int64_t wall_ns, char *out, size_t outsz)
{
	time_t s = (time_t)(wall_ns / FP_NS_PER_S);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(out, outsz, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int fp_duration_parse(const char *s, int64_t *ns)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
		{"ns", 1.0}, {"us", 1e3}, {"ms", 1e6},
		{"s", 1e9},  {"m", 60e9}, {"h", 3600e9},
	};
	char *end;
	double v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) == 0) {
			double r = v * units[i].mult;

			if (r > 9.0e18)
				return -1;
			*ns = (int64_t)llround(r);
			return 0;
		}
	}
	return -1;
}

void fp_duration_fmt(int64_t ns, char *out, size_t outsz)
{
	if (ns < 0)
		snprintf(out, outsz, "-");
	else if (ns < FP_NS_PER_MS)
		snprintf(out, outsz, "%.0fus", (double)ns / 1e3);
	else if (ns < FP_NS_PER_S)
		snprintf(out, outsz, "%.0fms", (double)ns / 1e6);
	else
		snprintf(out, outsz, "%.2fs", (double)ns / 1e9);
}

void fp_sleep_ns(int64_t ns, volatile int *stop)
{
	int64_t deadline = fp_mono_ns() + ns;

	for (;;) {
		int64_t left = deadline - fp_mono_ns();
		struct timespec ts;

		if (left <= 0 || (stop && *stop))
			return;
		/* Short slices so a stop request is seen within 50 ms. */
		if (stop && left > 50 * FP_NS_PER_MS)
			left = 50 * FP_NS_PER_MS;
		ts.tv_sec = (time_t)(left / FP_NS_PER_S);
		ts.tv_nsec = (long)(left % FP_NS_PER_S);
		nanosleep(&ts, NULL);
	}
}
