/*
 * test_hist.c - the log-linear histogram against exact answers: percentiles
 * of random samples within 1 % (and never below the true value), exact
 * min/max/mean, merge, the empty histogram and clamping.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "harness/load/fp_load.h"
#include "harness/load/fp_load_int.h"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The HdrHistogram rank rule: max(1, round(q/100 * n)). */
static int64_t exact_percentile(const int64_t *sorted, size_t n, double q)
{
	int64_t rank = (int64_t)(q / 100.0 * (double)n + 0.5);

	if (rank < 1)
		rank = 1;
	if (rank > (int64_t)n)
		rank = (int64_t)n;
	return sorted[rank - 1];
}

Test(hist, percentiles_within_one_percent)
{
	static const double qs[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
	enum { N = 200000 };
	int64_t *v = malloc(N * sizeof *v);
	struct fp_hist *h = fp_hist_new();
	struct fp_rng rng;
	long double sum = 0;

	cr_assert(v && h);
	fp_rng_seed(&rng, 12345, 0);
	/* Log-uniform over 1 us .. 100 s: every major bucket gets samples. */
	for (size_t i = 0; i < N; i++) {
		double e = 3.0 + 8.0 * fp_rng_double(&rng);

		v[i] = (int64_t)pow(10.0, e);
		if (v[i] > FP_HIST_HIGHEST_NS)
			v[i] = FP_HIST_HIGHEST_NS;
		fp_hist_record(h, v[i]);
		sum += v[i];
	}
	qsort(v, N, sizeof *v, cmp_i64);
	cr_assert_eq(fp_hist_count(h), N);
	cr_assert_eq(fp_hist_min(h), v[0]);
	cr_assert_eq(fp_hist_max(h), v[N - 1]);
	cr_assert_float_eq(fp_hist_mean(h), (double)(sum / N), 1e-6 * (double)(sum / N));
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		int64_t want = exact_percentile(v, N, qs[i]);
		int64_t got = fp_hist_percentile(h, qs[i]);
		double relerr = (double)(got - want) / (double)want;

		cr_assert(got >= want, "q=%g got %lld < exact %lld", qs[i],
			  (long long)got, (long long)want);
		cr_assert(relerr <= 0.01, "q=%g got %lld exact %lld err %.4f",
			  qs[i], (long long)got, (long long)want, relerr);
	}
	free(v);
	fp_hist_free(h);
}

Test(hist, every_value_in_range_is_within_bound)
{
	struct fp_hist *h = fp_hist_new();

	/* One value at a time: p100 of a single sample must be the value up
	 * to one slot width (<= 1/128), and never below it. */
	for (int64_t v = 1000; v < FP_HIST_HIGHEST_NS; v = v + v / 7 + 1) {
		struct fp_hist *one = fp_hist_new();
		int64_t p;

		fp_hist_record(one, v);
		p = fp_hist_percentile(one, 50);
		cr_assert(p >= v && (double)(p - v) <= 0.01 * (double)v,
			  "v=%lld p=%lld", (long long)v, (long long)p);
		fp_hist_merge(h, one);
		fp_hist_free(one);
	}
	cr_assert_gt(fp_hist_count(h), 100);
	fp_hist_free(h);
}

Test(hist, merge_equals_combined)
{
	struct fp_hist *a = fp_hist_new(), *b = fp_hist_new(), *all = fp_hist_new();
	struct fp_rng rng;

	fp_rng_seed(&rng, 99, 1);
	for (int i = 0; i < 50000; i++) {
		int64_t x = 1000 + (int64_t)fp_rng_below(&rng, 50000000);

		fp_hist_record(i % 3 ? a : b, x);
		fp_hist_record(all, x);
	}
	fp_hist_merge(a, b);
	cr_assert_eq(fp_hist_count(a), fp_hist_count(all));
	cr_assert_eq(fp_hist_min(a), fp_hist_min(all));
	cr_assert_eq(fp_hist_max(a), fp_hist_max(all));
	cr_assert_float_eq(fp_hist_mean(a), fp_hist_mean(all), 1e-6);
	for (double q = 0; q <= 100; q += 0.5)
		cr_assert_eq(fp_hist_percentile(a, q), fp_hist_percentile(all, q));
	/* Merging an empty histogram changes nothing; into an empty one copies. */
	{
		struct fp_hist *e = fp_hist_new(), *c = fp_hist_new();

		fp_hist_merge(a, e);
		cr_assert_eq(fp_hist_count(a), fp_hist_count(all));
		fp_hist_merge(c, all);
		cr_assert_eq(fp_hist_min(c), fp_hist_min(all));
		cr_assert_eq(fp_hist_percentile(c, 99), fp_hist_percentile(all, 99));
		fp_hist_free(e);
		fp_hist_free(c);
	}
	fp_hist_free(a);
	fp_hist_free(b);
	fp_hist_free(all);
}

Test(hist, empty)
{
	struct fp_hist *h = fp_hist_new();

	cr_assert_eq(fp_hist_count(h), 0);
	cr_assert_eq(fp_hist_percentile(h, 50), 0);
	cr_assert_eq(fp_hist_percentile(h, 100), 0);
	cr_assert_eq(fp_hist_max(h), 0);
	cr_assert_eq(fp_hist_min(h), 0);
	cr_assert_float_eq(fp_hist_mean(h), 0.0, 1e-12);
	fp_hist_free(h);
}

Test(hist, clamping)
{
	struct fp_hist *h = fp_hist_new();

	fp_hist_record(h, -5);
	fp_hist_record(h, 0);
	fp_hist_record(h, 999);
	fp_hist_record(h, 5000);
	fp_hist_record(h, INT64_C(1000000000000)); /* 1000 s */
	cr_assert_eq(fp_hist_count(h), 5);
	cr_assert_eq(fp_hist_clamped(h), 4);
	cr_assert_eq(fp_hist_min(h), FP_HIST_LOWEST_NS);
	cr_assert_eq(fp_hist_max(h), FP_HIST_HIGHEST_NS);
	cr_assert_eq(fp_hist_percentile(h, 100), FP_HIST_HIGHEST_NS);
	cr_assert_eq(fp_hist_percentile(h, 10), FP_HIST_LOWEST_NS + 3); /* slot 1000..1003 */
	fp_hist_free(h);
}
