/* Small shared helpers: defect names, a monotonic clock, the W3C traceparent parser, timestamps
 * and the logfmt logger both executables write to stderr (one line per notable event, so a
 * drill can grep). */
#include "rp_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Indexed by rp_defect; the names are the contract's (section 12). */
static const char *const defect_names[RP_DEFECT_COUNT] = {
    [RP_DEFECT_NONE] = "none",
    [RP_DEFECT_DEDUPE_OFF] = "dedupe-off",
    [RP_DEFECT_CASE_DUP] = "case-dup",
    [RP_DEFECT_COMMIT_BEFORE_WRITE] = "commit-before-write",
    [RP_DEFECT_QUARANTINE_DROP] = "quarantine-drop",
    [RP_DEFECT_DEGRADE_UNFLAGGED] = "degrade-unflagged",
    [RP_DEFECT_SLOW_DRAIN] = "slow-drain",
    [RP_DEFECT_SKEW_SILENT] = "skew-silent",
    [RP_DEFECT_ROLLBACK_NOOP] = "rollback-noop",
    [RP_DEFECT_LINEAGE_MISSING] = "lineage-missing",
    [RP_DEFECT_GUARD_NEVER_TRIPS] = "guard-never-trips",
    [RP_DEFECT_LEAK_ACCEPTED] = "leak-accepted",
    [RP_DEFECT_DRIFT_BLIND] = "drift-blind",
    [RP_DEFECT_LATENCY_REGRESSION] = "latency-regression",
};

bool rp_defect_parse(const char *name, rp_defect *out) {
  if (!name) return false;
  for (int i = 0; i < RP_DEFECT_COUNT; i++)
    if (strcmp(name, defect_names[i]) == 0) {
      *out = (rp_defect)i;
      return true;
    }
  return false;
}

const char *rp_defect_name(rp_defect d) {
  return d >= 0 && d < RP_DEFECT_COUNT ? defect_names[d] : "?";
}

static bool lower_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}

static bool all_zero(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != '0') return false;
  return true;
}

/* W3C Trace Context level 1: version-traceid-parentid-flags, lowercase hex only. Version ff is
 * invalid; version 00 must be exactly 55 chars; a future version may append "-..." fields. */
bool rp_traceparent_parse(const char *tp, char trace_id[33], char parent_id[17]) {
  if (!tp) return false;
  size_t n = strlen(tp);
  if (n < 55) return false;
  if (!lower_hex(tp, 2) || strncmp(tp, "ff", 2) == 0 || tp[2] != '-') return false;
  if (!lower_hex(tp + 3, 32) || all_zero(tp + 3, 32) || tp[35] != '-') return false;
  if (!lower_hex(tp + 36, 16) || all_zero(tp + 36, 16) || tp[52] != '-') return false;
  if (!lower_hex(tp + 53, 2)) return false;
  if (strncmp(tp, "00", 2) == 0 ? n != 55 : (n > 55 && tp[55] != '-')) return false;
  memcpy(trace_id, tp + 3, 32);
  trace_id[32] = '\0';
  if (parent_id) {
    memcpy(parent_id, tp + 36, 16);
    parent_id[16] = '\0';
  }
  return true;
}

double rp_mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void rp_now_iso8601(char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

void rp_log(const char *level, const char *fmt, ...) {
  char line[2048], ts[32];
  rp_now_iso8601(ts);
  int n = snprintf(line, sizeof line, "ts=%s level=%s ", ts, level);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  /* One write(2) per line so lines from different threads never interleave. */
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

bool rp_split_hostport(const char *s, char *host, size_t hsz, int *port) {
  const char *colon = s ? strrchr(s, ':') : NULL;
  if (!colon || colon == s || (size_t)(colon - s) >= hsz) return false;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p <= 0 || p > 65535) return false;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  *port = (int)p;
  return true;
}
