/*
 * fp_clock.h - time for the harness: a monotonic clock for measuring and
 * scheduling (never jumps), the wall clock only for labels in reports, and
 * the duration syntax used by specs ("250ms", "10s", "2m", "1h", "1.5s").
 */
#ifndef FP_CLOCK_H
#define FP_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define FP_NS_PER_MS INT64_C(1000000)
#define FP_NS_PER_S INT64_C(1000000000)

int64_t fp_mono_ns(void);
int64_t fp_wall_ns(void);

/* @brief "2026-11-23T18:22:01.123Z" (UTC, millisecond precision). */
void fp_fmt_iso8601(int64_t wall_ns, char *out, size_t outsz);
/* @brief "20261123T182201Z", the form used in bundle paths and S3 keys. */
void fp_fmt_compact(int64_t wall_ns, char *out, size_t outsz);

/*
 * @brief Parse a duration: a non-negative decimal number followed by one of
 *        ns, us, ms, s, m, h. A bare number is rejected (units are required,
 *        so "10" is never silently seconds or milliseconds).
 * @returns 0 on success, -1 on a malformed value.
 */
int fp_duration_parse(const char *s, int64_t *ns);
/* @brief Format ns as a short human duration ("1.25s", "300ms"). */
void fp_duration_fmt(int64_t ns, char *out, size_t outsz);

/* @brief Sleep for ns on the monotonic clock (restarts after signals
 *        unless *stop becomes non-zero; stop may be NULL). */
void fp_sleep_ns(int64_t ns, volatile int *stop);

#endif
