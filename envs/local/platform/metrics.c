/* Prometheus text exposition (format 0.0.4) for the /metrics endpoints of both services: a
 * growable buffer, label escaping and the decision-latency histogram with the contract's
 * buckets. Counters and gauges are plain numbers the services own; only the shapes that are
 * easy to get wrong (cumulative buckets, +Inf, escaping) live here. */
#include "rp_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double rp_latency_buckets[RP_LAT_NBUCKETS] = {.001, .0025, .005, .01, .025, .05,
                                                    .1,   .25,   .5,   1,   2.5};

static bool reserve(rp_buf *b, size_t extra) {
  if (b->oom) return false;
  if (b->len + extra + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) cap *= 2;
  char *n = realloc(b->s, cap);
  if (!n) {
    b->oom = true;
    return false;
  }
  b->s = n;
  b->cap = cap;
  return true;
}

void rp_buf_printf(rp_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void rp_buf_label(rp_buf *b, const char *v) {
  for (const char *p = v ? v : ""; *p; p++) {
    if (*p == '\\') rp_buf_printf(b, "\\\\");
    else if (*p == '"') rp_buf_printf(b, "\\\"");
    else if (*p == '\n') rp_buf_printf(b, "\\n");
    else rp_buf_printf(b, "%c", *p);
  }
}

void rp_buf_free(rp_buf *b) {
  free(b->s);
  memset(b, 0, sizeof *b);
}

void rp_hist_observe(rp_hist *h, double seconds) {
  for (int i = 0; i < RP_LAT_NBUCKETS; i++)
    if (seconds <= rp_latency_buckets[i]) {
      h->le[i]++;
      break;
    }
  h->count++; /* values above the last bound only count toward +Inf */
  h->sum += seconds;
}

void rp_hist_render(rp_buf *b, const char *name, const char *help, const rp_hist *h) {
  rp_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  unsigned long long cum = 0;
  for (int i = 0; i < RP_LAT_NBUCKETS; i++) {
    cum += h->le[i];
    rp_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, rp_latency_buckets[i], cum);
  }
  rp_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name, h->count,
                name, h->sum, name, h->count);
}
