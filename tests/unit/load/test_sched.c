/*
 * test_sched.c - the arrival schedule: planned counts are the integral of
 * the rate function (exact within one event), event k sits where the
 * integral reaches k, and ramps and bursts (step and ramped) put the right
 * number of events in each window. Pure arithmetic, no clock.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "harness/core/fp_clock.h"
#include "harness/load/fp_load_int.h"

#define MS FP_NS_PER_MS
#define SEC FP_NS_PER_S

static struct fp_sched *build(const struct fp_load_spec *sp, int64_t d)
{
	struct fp_sched *s = NULL;

	cr_assert_eq(fp_sched_build(sp, d, &s), 0);
	return s;
}

/* Events whose intended time falls in [a, b). */
static int64_t in_window(const struct fp_sched *s, int64_t a, int64_t b)
{
	int64_t n = 0, planned = fp_sched_planned(s);

	for (int64_t k = 0; k < planned; k++) {
		int64_t t = fp_sched_time_of(s, k);

		n += t >= a && t < b;
	}
	return n;
}

/* Every event sits where the integral reaches its number, in order. */
static void assert_consistent(const struct fp_sched *s)
{
	int64_t planned = fp_sched_planned(s), prev = -1;

	for (int64_t k = 0; k < planned; k++) {
		int64_t t = fp_sched_time_of(s, k);

		cr_assert_geq(t, prev, "event %lld before its predecessor", (long long)k);
		cr_assert(fabs(fp_sched_count(s, t) - (double)k) < 1e-3,
			  "N(t_%lld) = %f", (long long)k, fp_sched_count(s, t));
		prev = t;
	}
}

Test(sched, constant_rate_keeps_k_over_rate)
{
	struct fp_load_spec sp = {.rate = 200};
	struct fp_sched *s = build(&sp, 2 * SEC);

	cr_assert_eq(fp_sched_planned(s), 400);
	for (int64_t k = 0; k < 400; k++)
		cr_assert(llabs(fp_sched_time_of(s, k) - k * 5 * MS) <= 1);
	cr_assert_float_eq(fp_sched_peak(s), 200.0, 1e-9);
	cr_assert_eq(fp_sched_planned_before(s, SEC), 200);
	cr_assert_eq(fp_sched_planned_before(s, SEC + 1), 201);
	fp_sched_free(s);

	/* A fractional count rounds up: k/rate < duration. */
	sp.rate = 3;
	s = build(&sp, 1500 * MS);
	cr_assert_eq(fp_sched_planned(s), 5);
	fp_sched_free(s);
}

Test(sched, linear_ramp_integral)
{
	/* r = 100 + 200 t over 1 s, then 300: N(t) = 100 t + 100 t^2. */
	struct fp_load_spec sp = {.rate = 300, .ramp_from = 100, .ramp_to = 300,
				  .ramp_over_ns = SEC};
	struct fp_sched *s = build(&sp, 1500 * MS);

	cr_assert_eq(fp_sched_planned(s), 350);
	cr_assert_float_eq(fp_sched_count(s, 500 * MS), 75.0, 1e-9);
	cr_assert(llabs(in_window(s, 0, 500 * MS) - 75) <= 1);
	cr_assert(llabs(in_window(s, 500 * MS, SEC) - 125) <= 1);
	cr_assert(llabs(in_window(s, SEC, 1500 * MS) - 150) <= 1);
	cr_assert_float_eq(fp_sched_peak(s), 300.0, 1e-9);
	cr_assert_float_eq(fp_sched_rate_at(s, 250 * MS), 150.0, 1e-9);
	assert_consistent(s);
	fp_sched_free(s);

	/* A ramp down from 400 to 0 over 2 s: 400 events, denser first. */
	sp = (struct fp_load_spec){.rate = 1, .ramp_from = 400, .ramp_to = 1e-9,
				   .ramp_over_ns = 2 * SEC};
	s = build(&sp, 2 * SEC);
	cr_assert(llabs(fp_sched_planned(s) - 400) <= 1);
	cr_assert(llabs(in_window(s, 0, SEC) - 300) <= 1);
	assert_consistent(s);
	fp_sched_free(s);
}

Test(sched, step_burst_multiplies_its_window)
{
	struct fp_burst b = {.at_ns = 500 * MS, .duration_ns = 500 * MS,
			     .multiplier = 3};
	struct fp_load_spec sp = {.rate = 100, .bursts = &b, .n_bursts = 1};
	struct fp_sched *s = build(&sp, 2 * SEC);

	/* 100/s for 1.5 s + 300/s for 0.5 s. */
	cr_assert_eq(fp_sched_planned(s), 300);
	cr_assert(llabs(in_window(s, 0, 500 * MS) - 50) <= 1);
	cr_assert(llabs(in_window(s, 500 * MS, SEC) - 150) <= 1);
	cr_assert(llabs(in_window(s, SEC, 2 * SEC) - 100) <= 1);
	cr_assert_float_eq(fp_sched_peak(s), 300.0, 1e-9);
	assert_consistent(s);
	fp_sched_free(s);

	/* A burst past the phase end is cut at the end. */
	b.at_ns = 1800 * MS;
	s = build(&sp, 2 * SEC);
	cr_assert_eq(fp_sched_planned(s), 180 + 60);
	fp_sched_free(s);
}

Test(sched, ramped_burst_goes_up_and_down)
{
	/* x3 over 1 s with 250 ms ramps: the extra is 2 * 100 * 0.75 s. */
	struct fp_burst b = {.at_ns = SEC, .duration_ns = SEC, .multiplier = 3,
			     .ramp = 1, .ramp_ns = 250 * MS};
	struct fp_load_spec sp = {.rate = 100, .bursts = &b, .n_bursts = 1};
	struct fp_sched *s = build(&sp, 3 * SEC);

	cr_assert_eq(fp_sched_planned(s), 450);
	/* The up ramp: 100 -> 300 over 250 ms = 50 events. */
	cr_assert(llabs(in_window(s, SEC, 1250 * MS) - 50) <= 1);
	cr_assert(llabs(in_window(s, 1250 * MS, 1750 * MS) - 150) <= 1);
	cr_assert(llabs(in_window(s, 1750 * MS, 2 * SEC) - 50) <= 1);
	cr_assert_float_eq(fp_sched_rate_at(s, 1125 * MS), 200.0, 1e-6);
	cr_assert_float_eq(fp_sched_rate_at(s, 1875 * MS), 200.0, 1e-6);
	cr_assert_float_eq(fp_sched_peak(s), 300.0, 1e-6);
	assert_consistent(s);
	fp_sched_free(s);
}

Test(sched, overlapping_ramps_use_the_exact_integral)
{
	/* A ramping base times two overlapping ramped bursts: degree 3 on
	 * some segments, so inversion goes through bisection. */
	struct fp_burst b[2] = {
		{.at_ns = 200 * MS, .duration_ns = 800 * MS, .multiplier = 2,
		 .ramp = 1, .ramp_ns = 400 * MS},
		{.at_ns = 400 * MS, .duration_ns = 400 * MS, .multiplier = 4,
		 .ramp = 1, .ramp_ns = 200 * MS},
	};
	struct fp_load_spec sp = {.rate = 500, .ramp_from = 50, .ramp_to = 500,
				  .ramp_over_ns = SEC, .bursts = b, .n_bursts = 2};
	struct fp_sched *s = build(&sp, 1200 * MS);
	double n = 0;

	/* Midpoint-rule integral on a fine grid as the reference. */
	for (int64_t t = 0; t < 1200 * MS; t += 10000)
		n += fp_sched_rate_at(s, t + 5000) * 1e-5;
	cr_assert(fabs(fp_sched_count(s, 1200 * MS) - n) < 0.01,
		  "N = %f, reference %f", fp_sched_count(s, 1200 * MS), n);
	cr_assert(llabs(fp_sched_planned(s) - (int64_t)ceil(n)) <= 1);
	assert_consistent(s);
	fp_sched_free(s);
}
