/*
 * lane.h - the pure (network-free) logic of rp-control's learning lane and
 * drift monitor: feature names, statistics and PSI binning (psi.c), logistic
 * regression (lr.c), dataset fingerprint, leakage rules, feature contract and
 * canonical weights (dataset.c). learning.c and drift.c do the I/O around it;
 * the unit tests link these files alone, so what they check is exactly what
 * the control plane runs. Nothing here touches PostgreSQL, Redis or rp_ctl.
 */
#ifndef RP_LANE_H
#define RP_LANE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- features (contract §8.1) ------------------------------------------------ */
#define RP_LANE_NFEAT 5
/* In weights-JSON order: amount, ecom, foreign, merchant_risk, txn_count_24h. */
extern const char *const rp_lane_feat_names[RP_LANE_NFEAT];
/* @returns the index of a §8.1 feature name, or -1. */
int rp_lane_feat_index(const char *name);
/* @returns 1 for the 0/1 features (ecom, foreign, merchant_risk). */
int rp_lane_feat_binary(int idx);
/* The nominal §8.1 range of a feature (contract clipping). */
void rp_lane_feat_range(int idx, double *lo, double *hi);

/* ---- statistics and PSI (psi.c) ---------------------------------------------- */
#define RP_PSI_BINS 10
#define RP_PSI_EPS 1e-4    /* share given to an empty bin so ln() stays finite */
/* Seed 003 thresholds; a value exactly on a threshold already counts. */
#define RP_PSI_WARN 0.2
#define RP_PSI_CRIT 0.5

struct rp_feat_stats {
	uint64_t n;
	double mean, std, min, max;          /* std: population standard deviation */
	uint64_t bins[RP_PSI_BINS];          /* equal-width over [min, max] */
};

/*
 * @brief Bin of value v among nbins equal-width bins over [lo, hi]. Values
 *        below lo fall in bin 0, values at or above hi in the last bin, so a
 *        served value outside the training range still counts (it is exactly
 *        the shift PSI must see). A zero-width range maps v <= lo to bin 0 and
 *        v > lo to the last bin.
 */
int rp_psi_bin(double v, double lo, double hi, int nbins);
/* @brief Count x[0..n) into nbins bins over [lo, hi] (out is zeroed first). */
void rp_psi_bin_counts(const double *x, size_t n, double lo, double hi, int nbins,
		       uint64_t *out);
/* @brief mean/std/min/max and the PSI histogram of x (n may be 0: all zero). */
void rp_feat_stats_compute(const double *x, size_t n, struct rp_feat_stats *st);
/*
 * @brief Population stability index of actual against expected counts:
 *        sum (a_i - e_i) * ln(a_i / e_i) over bin shares, an empty bin taking
 *        the share RP_PSI_EPS.
 * @returns PSI >= 0, or -1 when either side has no observations.
 */
double rp_psi(const uint64_t *expected, const uint64_t *actual, int nbins);
/* @returns "none", "warn" (>= 0.2) or "critical" (>= 0.5). */
const char *rp_psi_severity(double psi);
/* @returns 0 none, 1 warn, 2 critical. */
int rp_psi_level(double psi);

/*
 * A drift episode: it starts when PSI reaches warn and ends only when a judged
 * check is back below warn. Within one episode each escalation is recorded
 * once and a critical drift is mitigated once, so a persisting shift does not
 * roll back version after version on every tick.
 */
struct rp_drift_episode {
	int active;
	int level;       /* highest level recorded in this episode: 1 warn, 2 critical */
	int mitigated;   /* set by the caller once the mitigation succeeded */
};
#define RP_EP_RECORD 0x1    /* escalation: record drift events now */
#define RP_EP_MITIGATE 0x2  /* critical and not (yet) mitigated: act now */
#define RP_EP_ENDED 0x4     /* back below warn: the episode just ended */
/* @brief Advance the episode by one judged check at level (0, 1, 2).
 * @returns RP_EP_* bits telling the caller what to do. */
unsigned rp_drift_episode_step(struct rp_drift_episode *ep, int level);

/*
 * feature_stats JSON (training_runs.feature_stats), one member per feature:
 *   {"amount":{"n":N,"mean":m,"std":s,"min":a,"max":b,"bins":[c0,...,c9]}, ...}
 * The bins are RP_PSI_BINS equal-width bins over [min, max]. A bootstrap stats
 * row for a hand-made model must use the same form.
 */
json_t *rp_feat_stats_json(const struct rp_feat_stats *st);
/* @returns 0 and fills st from one member; -1 when it is not well formed. */
int rp_feat_stats_parse(const json_t *j, struct rp_feat_stats *st);

/* ---- logistic regression (lr.c) ---------------------------------------------- */
struct rp_lr_cfg {
	int iters;      /* fixed number of full-batch gradient steps */
	double lr;      /* step size on standardised features */
	double l2;      /* L2 penalty on the (standardised) weights, not the bias */
};
/* The configuration /train uses (fixed, so a retrain is reproducible). */
extern const struct rp_lr_cfg rp_lr_default_cfg;

/*
 * @brief Train on X (n rows x d features, row-major) and y (0/1). Features are
 *        standardised internally for a well-conditioned descent; the result
 *        is expressed in raw units (w[j], bias) because the decision service
 *        applies the weights to the served values as they are. A feature with
 *        zero variance carries no information and gets weight 0.
 *        Deterministic: fixed iteration count, fixed summation order.
 * @returns 0, or -1 on n == 0 or allocation failure.
 */
int rp_lr_train(const double *X, const int *y, size_t n, size_t d,
		const struct rp_lr_cfg *cfg, double *w, double *bias);
/* @returns the logistic score of one row. */
double rp_lr_score(const double *x, size_t d, const double *w, double bias);
/* @returns the share of rows classified correctly at threshold 0.5. */
double rp_lr_accuracy(const double *X, const int *y, size_t n, size_t d,
		      const double *w, double bias);

/* ---- datasets (dataset.c) ---------------------------------------------------- */
struct rp_ds_row {
	char *platform_run_id, *event_class, *event_id; /* the dedupe tuple */
	double x[RP_LANE_NFEAT];        /* in the order of the manifest's features */
	int label;
};

/*
 * @brief sha256 (hex) of the dataset: the feature names, then one line per row
 *        in tuple order with its identity, feature values (%.17g, exact) and
 *        label. Sorting first makes the fingerprint independent of the query
 *        order, so the same data always has the same fingerprint.
 *        rows is sorted in place.
 */
void rp_ds_fingerprint(struct rp_ds_row *rows, size_t n, const char *const *names,
		       size_t d, char out[65]);

/* Leakage rules (contract §9, seed T1.1 / FM-LN-01). Times are epoch seconds. */
#define RP_LEAK_WINDOW_AFTER_AS_OF 0x1  /* window_end > as_of */
#define RP_LEAK_FEATURE_AFTER_AS_OF 0x2 /* a row's features were served after as_of */
#define RP_LEAK_IMMATURE_LABEL 0x4      /* a joined label matures after the cutoff */

struct rp_leak_input {
	double as_of, cutoff, window_end;
	const double *row_at;        /* decided_at of each selected row */
	size_t nrows;
	const double *label_mature;  /* mature_at of each joined label row */
	size_t nlabels;
};
struct rp_leak_result {
	unsigned rules;              /* RP_LEAK_* bits violated */
	size_t rows_after_as_of, immature_labels;
};
/* @brief Evaluate every rule (no short cut, so the report names them all). */
void rp_leak_evaluate(const struct rp_leak_input *in, struct rp_leak_result *out);
/* @returns the report reason of one rule bit. */
const char *rp_leak_reason(unsigned rule);

/*
 * @brief The weights JSON of contract §8 (all five features; the ones the
 *        dataset does not carry get 0) serialised canonically (sorted keys,
 *        compact, 17 significant digits), plus its sha256 = artifact_sha256.
 *        idx[j] is the §8.1 index of trained feature j.
 * @returns malloc'd text, or NULL on allocation failure.
 */
char *rp_weights_canonical(const int *idx, size_t d, const double *w, double bias,
			   char sha_out[65]);

/*
 * @brief The feature contract of a trained version: [{name, type, min, max,
 *        scale}] for all five features. A trained feature's range is its
 *        training [min, max] widened by a margin of a quarter of the range
 *        (at least 0.5), clipped to the §8.1 nominal range; 0/1 features are
 *        always [0, 1]; untrained ones get the nominal range. scale is 1:
 *        the weights are in raw units, the served value is used as it is.
 */
json_t *rp_feature_contract(const int *idx, size_t d, const struct rp_feat_stats *st);

#endif
