/* fp_log.c - leveled logging with a pluggable sink (see fp_log.h). */
#include "harness/core/fp_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "harness/core/fp_clock.h"

int fp_log_level_current = FP_LOG_INFO;

static fp_log_sink_fn log_sink;
static void *log_opaque;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void fp_log_set_level(int level)
{
	fp_log_level_current = level;
}

void fp_log_set_sink(fp_log_sink_fn fn, void *opaque)
{
	log_sink = fn;
	log_opaque = opaque;
}

const char *fp_log_level_name(enum fp_log_level level)
{
	switch (level) {
	case FP_LOG_ERROR: return "error";
	case FP_LOG_WARN: return "warn";
	case FP_LOG_INFO: return "info";
	case FP_LOG_DEBUG: return "debug";
	}
	return "?";
}

void fp_log_emit(enum fp_log_level level, const char *fmt, ...)
{
	char line[2048], ts[40];
	va_list ap;
	int n;

	fp_fmt_iso8601(fp_wall_ns(), ts, sizeof ts);
	n = snprintf(line, sizeof line, "ts=%s level=%s ", ts,
		     fp_log_level_name(level));
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	/* One lock so lines from the load and sampler threads never interleave. */
	pthread_mutex_lock(&log_lock);
	if (log_sink)
		log_sink(level, line, log_opaque);
	else
		fprintf(stderr, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
}
