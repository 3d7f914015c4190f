/*
 * sched.c - the open-model arrival schedule of one load phase.
 *
 * The arrival rate r(t) is a base rate (constant, or a linear ramp from ->
 * to over `over`, then `to`) multiplied by every burst active at t (a step
 * multiplier, or one that ramps linearly from 1 up to the multiplier over
 * `ramp` and back down over the last `ramp` of the burst). The expected
 * number of events up to t is N(t) = integral of r over [0, t], and event k
 * (k = 0, 1, ...) is intended at the t where N(t) reaches k, so the k-th
 * event of a constant rate is at k/rate as before, and a ramp or a burst
 * changes the spacing, never the count rule.
 *
 * Between consecutive breakpoints (ramp end, burst edges) the base and each
 * multiplier are linear in t, so r is a polynomial there and N is its exact
 * integral. Inversion is closed-form up to degree 1 (constant and linear
 * rate) and bisection above (overlapping ramps), which is exact to well
 * under a nanosecond for any phase length.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/load/fp_load_int.h"

/* Enough breakpoints for the ramp end, four edges per burst and the ends. */
#define MAX_POINTS(nb) (4 * (nb) + 3)
#define PEAK_SAMPLES 32

struct seg {
	int64_t a_ns, b_ns;   /* [a, b) offsets from the phase start */
	double cum0;          /* N(a) */
	double len_s;         /* (b - a) in seconds */
	int deg;              /* degree of the rate polynomial */
	double *c;            /* r(a + u) = sum c[i] u^i, u in seconds */
};

struct fp_sched {
	struct seg *segs;
	size_t n;
	int64_t duration_ns;
	double total;         /* N(duration) */
	double peak;          /* max r(t) on [0, duration) */
};

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

/* c (degree *deg) *= (p0 + p1 u) */
static void poly_mul_lin(double *c, int *deg, double p0, double p1)
{
	c[*deg + 1] = 0;
	for (int i = *deg + 1; i > 0; i--)
		c[i] = c[i] * p0 + c[i - 1] * p1;
	c[0] *= p0;
	(*deg)++;
}

static double poly_eval(const double *c, int deg, double u)
{
	double v = 0;

	for (int i = deg; i >= 0; i--)
		v = v * u + c[i];
	return v;
}

/* Integral of the polynomial over [0, u]. */
static double poly_int(const double *c, int deg, double u)
{
	double v = 0;

	for (int i = deg; i >= 0; i--)
		v = v * u + c[i] / (double)(i + 1);
	return v * u;
}

/* The rate polynomial of [a, b) in u = t - a (seconds). */
static int seg_poly(const struct fp_load_spec *sp, struct seg *s)
{
	double a = (double)s->a_ns / 1e9;
	int64_t mid = s->a_ns + (s->b_ns - s->a_ns) / 2;

	s->c = calloc((size_t)sp->n_bursts + 3, sizeof *s->c);
	if (!s->c)
		return -1;
	if (sp->ramp_over_ns > 0 && mid < sp->ramp_over_ns) {
		double slope = (sp->ramp_to - sp->ramp_from) /
			       ((double)sp->ramp_over_ns / 1e9);

		s->c[0] = sp->ramp_from + slope * a;
		s->c[1] = slope;
		s->deg = slope != 0 ? 1 : 0;
	} else {
		s->c[0] = sp->ramp_over_ns > 0 ? sp->ramp_to : sp->rate;
		s->deg = 0;
	}
	for (size_t i = 0; i < sp->n_bursts; i++) {
		const struct fp_burst *b = &sp->bursts[i];
		int64_t end = b->at_ns + b->duration_ns;
		double m1 = b->multiplier - 1, r = (double)b->ramp_ns / 1e9;

		if (mid < b->at_ns || mid >= end)
			continue;
		if (!b->ramp || b->ramp_ns <= 0 ||
		    (mid >= b->at_ns + b->ramp_ns && mid < end - b->ramp_ns))
			poly_mul_lin(s->c, &s->deg, b->multiplier, 0);
		else if (mid < b->at_ns + b->ramp_ns) /* ramping up */
			poly_mul_lin(s->c, &s->deg,
				     1 + m1 * (a - (double)b->at_ns / 1e9) / r,
				     m1 / r);
		else /* ramping down */
			poly_mul_lin(s->c, &s->deg,
				     1 + m1 * ((double)end / 1e9 - a) / r,
				     -m1 / r);
	}
	return 0;
}

void fp_sched_free(struct fp_sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->segs[i].c);
	free(s->segs);
	free(s);
}

int fp_sched_build(const struct fp_load_spec *sp, int64_t duration_ns,
		   struct fp_sched **out)
{
	size_t cap = MAX_POINTS(sp->n_bursts), np = 0;
	int64_t *pts = calloc(cap, sizeof *pts);
	struct fp_sched *s = calloc(1, sizeof *s);
	double cum = 0;

	*out = NULL;
	if (!pts || !s)
		goto oom;
	s->duration_ns = duration_ns;
	pts[np++] = 0;
	pts[np++] = duration_ns;
	if (sp->ramp_over_ns > 0)
		pts[np++] = sp->ramp_over_ns;
	for (size_t i = 0; i < sp->n_bursts; i++) {
		const struct fp_burst *b = &sp->bursts[i];

		pts[np++] = b->at_ns;
		pts[np++] = b->at_ns + b->duration_ns;
		if (b->ramp && b->ramp_ns > 0) {
			pts[np++] = b->at_ns + b->ramp_ns;
			pts[np++] = b->at_ns + b->duration_ns - b->ramp_ns;
		}
	}
	qsort(pts, np, sizeof *pts, cmp_i64);
	s->segs = calloc(np, sizeof *s->segs);
	if (!s->segs)
		goto oom;
	for (size_t i = 0; i + 1 < np; i++) {
		struct seg *g;

		if (pts[i] < 0 || pts[i] >= duration_ns || pts[i + 1] == pts[i])
			continue;
		g = &s->segs[s->n++];
		g->a_ns = pts[i];
		g->b_ns = pts[i + 1] < duration_ns ? pts[i + 1] : duration_ns;
		g->len_s = (double)(g->b_ns - g->a_ns) / 1e9;
		g->cum0 = cum;
		if (seg_poly(sp, g))
			goto oom;
		cum += poly_int(g->c, g->deg, g->len_s);
		for (int k = 0; k <= PEAK_SAMPLES; k++) {
			double r = poly_eval(g->c, g->deg,
					     g->len_s * k / PEAK_SAMPLES);

			if (r > s->peak)
				s->peak = r;
		}
	}
	s->total = cum;
	free(pts);
	*out = s;
	return 0;
oom:
	free(pts);
	fp_sched_free(s);
	return -1;
}

/* The segment holding offset t (the last one for t >= duration). */
static const struct seg *seg_at(const struct fp_sched *s, int64_t t)
{
	size_t lo = 0, hi = s->n;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (s->segs[mid].a_ns <= t)
			lo = mid;
		else
			hi = mid;
	}
	return &s->segs[lo];
}

double fp_sched_count(const struct fp_sched *s, int64_t t_ns)
{
	const struct seg *g;
	double u;

	if (s->n == 0 || t_ns <= 0)
		return 0;
	if (t_ns >= s->duration_ns)
		return s->total;
	g = seg_at(s, t_ns);
	u = (double)(t_ns - g->a_ns) / 1e9;
	return g->cum0 + poly_int(g->c, g->deg, u);
}

double fp_sched_rate_at(const struct fp_sched *s, int64_t t_ns)
{
	const struct seg *g;

	if (s->n == 0 || t_ns < 0 || t_ns >= s->duration_ns)
		return 0;
	g = seg_at(s, t_ns);
	return poly_eval(g->c, g->deg, (double)(t_ns - g->a_ns) / 1e9);
}

int64_t fp_sched_planned(const struct fp_sched *s)
{
	/* Events k = 0, 1, ... with N(t_k) = k < N(duration). */
	double n = ceil(s->total - 1e-9);

	return n > 0 ? (int64_t)n : 0;
}

int64_t fp_sched_planned_before(const struct fp_sched *s, int64_t t_ns)
{
	double n = ceil(fp_sched_count(s, t_ns) - 1e-9);
	int64_t all = fp_sched_planned(s);

	if (n <= 0)
		return 0;
	return (int64_t)n < all ? (int64_t)n : all;
}

double fp_sched_peak(const struct fp_sched *s)
{
	return s->peak;
}

int64_t fp_sched_time_of(const struct fp_sched *s, int64_t k)
{
	double x = (double)k, u, lo, hi;
	const struct seg *g = NULL;
	size_t l = 0, h = s->n;

	if (k <= 0 || s->n == 0)
		return 0;
	if (x >= s->total)
		return s->duration_ns;
	/* Last segment whose cumulative start is <= k. */
	while (h - l > 1) {
		size_t mid = (l + h) / 2;

		if (s->segs[mid].cum0 <= x)
			l = mid;
		else
			h = mid;
	}
	g = &s->segs[l];
	x -= g->cum0;
	if (g->deg == 0) {
		u = g->c[0] > 0 ? x / g->c[0] : 0;
	} else if (g->deg == 1) {
		/* c1/2 u^2 + c0 u = x, in the form that stays accurate when
		 * c1 is tiny or negative (a ramp down). */
		double disc = g->c[0] * g->c[0] + 2 * g->c[1] * x;
		double den = g->c[0] + sqrt(disc > 0 ? disc : 0);

		u = den > 0 ? 2 * x / den : 0;
	} else {
		lo = 0;
		hi = g->len_s;
		for (int i = 0; i < 64 && hi - lo > 1e-10; i++) {
			double m = (lo + hi) / 2;

			if (poly_int(g->c, g->deg, m) < x)
				lo = m;
			else
				hi = m;
		}
		u = hi;
	}
	if (u > g->len_s)
		u = g->len_s;
	return g->a_ns + (int64_t)(u * 1e9);
}
