/*
 * fp_log.h - leveled logging for the harness.
 *
 * The library never writes to stdout: lines go to a host-supplied sink (the
 * CLI installs a stderr key=value sink). FP_LOG checks the level before it
 * evaluates any argument, so debug logging costs nothing when off.
 * Messages are written as key=value pairs by convention ("event=inject
 * fault=paused"), which keeps CI logs greppable.
 */
#ifndef FP_LOG_H
#define FP_LOG_H

enum fp_log_level {
	FP_LOG_ERROR = 0,
	FP_LOG_WARN = 1,
	FP_LOG_INFO = 2,
	FP_LOG_DEBUG = 3,
};

extern int fp_log_level_current;

/* @param line the formatted line without a trailing newline; borrowed for
 *        the duration of the call. */
typedef void (*fp_log_sink_fn)(enum fp_log_level level, const char *line,
			       void *opaque);

void fp_log_set_level(int level);
/* @brief Install a sink; NULL restores the default (stderr). Not thread-safe:
 *        call before any thread logs. */
void fp_log_set_sink(fp_log_sink_fn fn, void *opaque);
const char *fp_log_level_name(enum fp_log_level level);

void fp_log_emit(enum fp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define FP_LOG(level, ...)                                              \
	do {                                                            \
		if ((int)(level) <= fp_log_level_current)               \
			fp_log_emit((level), __VA_ARGS__);              \
	} while (0)

#define FP_ERROR(...) FP_LOG(FP_LOG_ERROR, __VA_ARGS__)
#define FP_WARN(...) FP_LOG(FP_LOG_WARN, __VA_ARGS__)
#define FP_INFO(...) FP_LOG(FP_LOG_INFO, __VA_ARGS__)
#define FP_DEBUG(...) FP_LOG(FP_LOG_DEBUG, __VA_ARGS__)

#endif
