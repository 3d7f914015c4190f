/*
 * psi.c - feature statistics, equal-width binning and the population
 * stability index the drift monitor judges with (lane.h). Pure functions so
 * the unit tests can hold PSI to hand-computed values: a drift drill is only
 * as good as the number it compares against its thresholds.
 */
#include "lane.h"

#include <math.h>
#include <string.h>

const char *const rp_lane_feat_names[RP_LANE_NFEAT] = {
	"amount", "ecom", "foreign", "merchant_risk", "txn_count_24h"};

int rp_lane_feat_index(const char *name)
{
	for (int i = 0; name && i < RP_LANE_NFEAT; i++)
		if (strcmp(name, rp_lane_feat_names[i]) == 0)
			return i;
	return -1;
}

int rp_lane_feat_binary(int idx)
{
	return idx >= 1 && idx <= 3;
}

void rp_lane_feat_range(int idx, double *lo, double *hi)
{
	/* Contract §8.1: amount [0, 8], txn_count_24h [0, 1000], the rest 0/1. */
	*lo = 0.0;
	*hi = idx == 0 ? 8.0 : idx == 4 ? 1000.0 : 1.0;
}

int rp_psi_bin(double v, double lo, double hi, int nbins)
{
	if (nbins <= 1 || !(v > lo))       /* also sends NaN to bin 0 */
		return 0;
	if (v >= hi)
		return nbins - 1;
	int b = (int)((v - lo) / (hi - lo) * nbins);
	/* Rounding can land exactly on nbins just below hi. */
	return b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
}

void rp_psi_bin_counts(const double *x, size_t n, double lo, double hi, int nbins,
		       uint64_t *out)
{
	memset(out, 0, sizeof *out * (size_t)nbins);
	for (size_t i = 0; i < n; i++)
		out[rp_psi_bin(x[i], lo, hi, nbins)]++;
}

void rp_feat_stats_compute(const double *x, size_t n, struct rp_feat_stats *st)
{
	memset(st, 0, sizeof *st);
	if (n == 0)
		return;
	double sum = 0, lo = x[0], hi = x[0];
	for (size_t i = 0; i < n; i++) {
		sum += x[i];
		lo = x[i] < lo ? x[i] : lo;
		hi = x[i] > hi ? x[i] : hi;
	}
	double mean = sum / (double)n, ss = 0;
	/* Two passes: the textbook one-pass formula loses precision on
	 * large, nearly constant features such as txn counts. */
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - mean) * (x[i] - mean);
	st->n = n;
	st->mean = mean;
	st->std = sqrt(ss / (double)n);
	st->min = lo;
	st->max = hi;
	rp_psi_bin_counts(x, n, lo, hi, RP_PSI_BINS, st->bins);
}

double rp_psi(const uint64_t *expected, const uint64_t *actual, int nbins)
{
	uint64_t te = 0, ta = 0;
	for (int i = 0; i < nbins; i++) {
		te += expected[i];
		ta += actual[i];
	}
	if (te == 0 || ta == 0)
		return -1.0;
	double psi = 0;
	for (int i = 0; i < nbins; i++) {
		double e = expected[i] ? (double)expected[i] / (double)te : RP_PSI_EPS;
		double a = actual[i] ? (double)actual[i] / (double)ta : RP_PSI_EPS;
		psi += (a - e) * log(a / e);
	}
	return psi;
}

int rp_psi_level(double psi)
{
	return psi >= RP_PSI_CRIT ? 2 : psi >= RP_PSI_WARN ? 1 : 0;
}

const char *rp_psi_severity(double psi)
{
	static const char *const names[] = {"none", "warn", "critical"};
	return names[rp_psi_level(psi)];
}

unsigned rp_drift_episode_step(struct rp_drift_episode *ep, int level)
{
	unsigned out = 0;
	if (level <= 0) {
		out = ep->active ? RP_EP_ENDED : 0;
		memset(ep, 0, sizeof *ep);
		return out;
	}
	ep->active = 1;
	if (level > ep->level) {
		ep->level = level;
		out |= RP_EP_RECORD;
	}
	/* A failed mitigation stays due: the next check tries again. */
	if (ep->level >= 2 && !ep->mitigated)
		out |= RP_EP_MITIGATE;
	return out;
}

json_t *rp_feat_stats_json(const struct rp_feat_stats *st)
{
	json_t *bins = json_array();
	for (int i = 0; bins && i < RP_PSI_BINS; i++)
		json_array_append_new(bins, json_integer((json_int_t)st->bins[i]));
	return json_pack("{s:I,s:f,s:f,s:f,s:f,s:o}", "n", (json_int_t)st->n,
			 "mean", st->mean, "std", st->std, "min", st->min,
			 "max", st->max, "bins", bins);
}

/* A number of either JSON kind (PostgreSQL's jsonb prints 2.0 as 2). */
static int num(const json_t *j, const char *key, double *out)
{
	json_t *v = json_object_get(j, key);
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return isfinite(*out) ? 0 : -1;
}

int rp_feat_stats_parse(const json_t *j, struct rp_feat_stats *st)
{
	memset(st, 0, sizeof *st);
	json_t *bins = json_object_get(j, "bins");
	double n = 0;
	if (!json_is_object(j) || num(j, "min", &st->min) || num(j, "max", &st->max) ||
	    !json_is_array(bins) || json_array_size(bins) != RP_PSI_BINS ||
	    st->max < st->min)
		return -1;
	/* mean/std/n are informative; PSI needs only the range and the bins. */
	num(j, "mean", &st->mean);
	num(j, "std", &st->std);
	uint64_t total = 0;
	for (size_t i = 0; i < RP_PSI_BINS; i++) {
		json_t *b = json_array_get(bins, i);
		if (!json_is_integer(b) || json_integer_value(b) < 0)
			return -1;
		st->bins[i] = (uint64_t)json_integer_value(b);
		total += st->bins[i];
	}
	st->n = num(j, "n", &n) == 0 && n >= 0 ? (uint64_t)n : total;
	return total > 0 ? 0 : -1;
}
