/*
 * hist.c - log-linear latency histogram with HdrHistogram semantics.
 *
 * HdrHistogram_c is not packaged on the target distribution and fetched code
 * must not be vendored, so this is an in-house equivalent of its layout:
 * values are bucketed by power of two ("major" buckets) and each bucket is
 * split into SUB_HALF linear sub-buckets, so a value v falls into a slot of
 * width at most v / SUB_HALF. With SUB_HALF = 128 the relative error is at
 * most 1/128 (0.78 %), within the 1 % the reports promise, and memory is a
 * constant ~31 KiB whatever the number of samples.
 *
 * The unit is 1 ns, so the layout covers 0 .. 2^37 ns; recorded values are
 * clamped into [1 us, 100 s] (the range the error bound is promised for)
 * and the number of clamped values is kept, so a report can say when the
 * range was too small instead of silently lying.
 */
#include "harness/load/fp_load.h"

#include <stdlib.h>

#include "harness/load/fp_load_int.h"

#define SUB_COUNT_MAG 8                      /* 256 slots in bucket 0 */
#define SUB_COUNT (1 << SUB_COUNT_MAG)
#define SUB_HALF_MAG (SUB_COUNT_MAG - 1)
#define SUB_HALF (1 << SUB_HALF_MAG)
#define SUB_MASK ((int64_t)SUB_COUNT - 1)
/* Bucket k >= 1 covers [SUB_HALF << k, SUB_COUNT << k); 100 s = 1e11 ns
 * needs k = 29 (SUB_COUNT << 29 = 1.37e11), so 30 buckets. */
#define BUCKETS 30
#define SLOTS ((BUCKETS + 1) * SUB_HALF)

struct fp_hist {
	int64_t count;
	int64_t clamped;
	int64_t min, max;
	/* long double keeps the sum exact up to 2^64 ns (584 years), so the
	 * mean stays exact for any realistic run. */
	long double sum;
	int64_t slots[SLOTS];
};

static int bucket_of(int64_t v)
{
	/* Index of the highest set bit of (v | SUB_MASK), minus the bits a
	 * sub-bucket index uses: 0 for v < SUB_COUNT. */
	return (63 - __builtin_clzll((unsigned long long)(v | SUB_MASK))) -
	       SUB_HALF_MAG;
}

static size_t slot_of(int64_t v)
{
	int b = bucket_of(v);
	int64_t sub = v >> b; /* in [SUB_HALF, SUB_COUNT) for b >= 1 */

	return (size_t)(((int64_t)b << SUB_HALF_MAG) + sub);
}

/* Lowest value that maps to slot i, and the slot width. Row 0 (slots
 * 0..127) is bucket 0's lower half; row r >= 1 holds bucket r - 1's upper
 * half, sub index (i - (r - 1) * SUB_HALF) in [SUB_HALF, SUB_COUNT). */
static void slot_range(size_t i, int64_t *lo, int64_t *width)
{
	int64_t row = (int64_t)(i >> SUB_HALF_MAG);
	int64_t b, sub;

	if (row == 0) {
		*lo = (int64_t)i;
		*width = 1;
		return;
	}
	b = row - 1;
	sub = (int64_t)i - (b << SUB_HALF_MAG);
	*lo = sub << b;
	*width = INT64_C(1) << b;
}

struct fp_hist *fp_hist_new(void)
{
	return calloc(1, sizeof(struct fp_hist));
}

void fp_hist_free(struct fp_hist *h)
{
	free(h);
}

void fp_hist_record(struct fp_hist *h, int64_t v)
{
	if (v < FP_HIST_LOWEST_NS) {
		v = FP_HIST_LOWEST_NS;
		h->clamped++;
	} else if (v > FP_HIST_HIGHEST_NS) {
		v = FP_HIST_HIGHEST_NS;
		h->clamped++;
	}
	h->slots[slot_of(v)]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count++;
	h->sum += (long double)v;
}

void fp_hist_merge(struct fp_hist *dst, const struct fp_hist *src)
{
	if (src->count == 0)
		return;
	for (size_t i = 0; i < SLOTS; i++)
		dst->slots[i] += src->slots[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (dst->count == 0 || src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
}

int64_t fp_hist_count(const struct fp_hist *h)
{
	return h->count;
}

int64_t fp_hist_clamped(const struct fp_hist *h)
{
	return h->clamped;
}

/*
 * The value at or below which q % of the recorded values fall. As in
 * HdrHistogram the rank is max(1, round(q/100 * count)) and the answer is
 * the highest value equivalent to the slot holding that rank, so it is
 * never below the true value and above it by less than one slot width. It
 * is capped at the exact maximum so that p100 == max.
 */
int64_t fp_hist_percentile(const struct fp_hist *h, double q)
{
	int64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	if (!(q > 0.0))
		return h->min; /* also catches NaN */
	if (q > 100.0)
		q = 100.0;
	want = (int64_t)(q / 100.0 * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->count)
		want = h->count;
	for (size_t i = 0; i < SLOTS; i++) {
		seen += h->slots[i];
		if (seen >= want) {
			int64_t lo, width, hi;

			slot_range(i, &lo, &width);
			hi = lo + width - 1;
			if (hi > h->max)
				hi = h->max;
			if (hi < h->min)
				hi = h->min;
			return hi;
		}
	}
	return h->max;
}

int64_t fp_hist_max(const struct fp_hist *h)
{
	return h->count ? h->max : 0;
}

int64_t fp_hist_min(const struct fp_hist *h)
{
	return h->count ? h->min : 0;
}

double fp_hist_mean(const struct fp_hist *h)
{
	return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}
