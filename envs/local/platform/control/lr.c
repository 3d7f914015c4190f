/*
 * lr.c - logistic regression for the learning lane (lane.h): full-batch
 * gradient descent with an L2 penalty and a fixed number of steps. Batch (not
 * stochastic) descent in a fixed summation order, with no random start, makes
 * training a pure function of the dataset: the same dataset and config give
 * bit-identical weights, which is what lets the registry's artifact_sha256
 * stand for "this dataset, this code, this config".
 */
#include "lane.h"

#include <math.h>
#include <stdlib.h>

const struct rp_lr_cfg rp_lr_default_cfg = {.iters = 600, .lr = 0.5, .l2 = 1e-3};

static double sigmoid(double z)
{
	/* Split by sign so exp() never overflows for large |z|. */
	if (z >= 0)
		return 1.0 / (1.0 + exp(-z));
	double e = exp(z);
	return e / (1.0 + e);
}

double rp_lr_score(const double *x, size_t d, const double *w, double bias)
{
	double z = bias;
	for (size_t j = 0; j < d; j++)
		z += w[j] * x[j];
	return sigmoid(z);
}

double rp_lr_accuracy(const double *X, const int *y, size_t n, size_t d,
		      const double *w, double bias)
{
	if (n == 0)
		return 0.0;
	size_t ok = 0;
	for (size_t i = 0; i < n; i++)
		ok += (rp_lr_score(X + i * d, d, w, bias) >= 0.5) == (y[i] != 0);
	return (double)ok / (double)n;
}

int rp_lr_train(const double *X, const int *y, size_t n, size_t d,
		const struct rp_lr_cfg *cfg, double *w, double *bias)
{
	if (n == 0)
		return -1;
	double *mu = calloc(d ? d : 1, sizeof *mu), *sd = calloc(d ? d : 1, sizeof *sd);
	double *ws = calloc(d ? d : 1, sizeof *ws), *g = calloc(d ? d : 1, sizeof *g);
	if (!mu || !sd || !ws || !g) {
		free(mu), free(sd), free(ws), free(g);
		return -1;
	}
	/* Standardise: amount lives in [0, 8], txn_count_24h in [0, 1000]; one
	 * step size cannot suit both raw scales. */
	for (size_t j = 0; j < d; j++) {
		double s = 0, ss = 0;
		for (size_t i = 0; i < n; i++)
			s += X[i * d + j];
		mu[j] = s / (double)n;
		for (size_t i = 0; i < n; i++)
			ss += (X[i * d + j] - mu[j]) * (X[i * d + j] - mu[j]);
		sd[j] = sqrt(ss / (double)n);
	}
	double b = 0;
	for (int it = 0; it < cfg->iters; it++) {
		double gb = 0;
		for (size_t j = 0; j < d; j++)
			g[j] = 0;
		for (size_t i = 0; i < n; i++) {
			double z = b;
			for (size_t j = 0; j < d; j++)
				if (sd[j] > 0)
					z += ws[j] * (X[i * d + j] - mu[j]) / sd[j];
			double r = sigmoid(z) - (y[i] ? 1.0 : 0.0);
			gb += r;
			for (size_t j = 0; j < d; j++)
				if (sd[j] > 0)
					g[j] += r * (X[i * d + j] - mu[j]) / sd[j];
		}
		b -= cfg->lr * gb / (double)n;
		for (size_t j = 0; j < d; j++)
			ws[j] -= cfg->lr * (g[j] / (double)n + cfg->l2 * ws[j]);
	}
	/* Back to raw units: w_raw = w_std / sd, bias absorbs the centring. */
	double braw = b;
	for (size_t j = 0; j < d; j++) {
		w[j] = sd[j] > 0 ? ws[j] / sd[j] : 0.0;
		braw -= w[j] * mu[j];
	}
	*bias = braw;
	free(mu), free(sd), free(ws), free(g);
	return 0;
}
