/*
 * dataset.c - the pure rules of the dataset builder and the trainer's output
 * (lane.h): the dataset fingerprint, the leakage rules, the canonical weights
 * JSON with its sha256, and the feature contract derived from training
 * statistics. Kept free of I/O so the unit tests pin down exactly what makes
 * a dataset "the same" and what makes it leaky.
 */
#include "lane.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const unsigned char *md, unsigned len, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < len && i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct rp_ds_row *a = pa, *b = pb;
	int r = strcmp(a->platform_run_id, b->platform_run_id);
	if (!r)
		r = strcmp(a->event_class, b->event_class);
	if (!r)
		r = strcmp(a->event_id, b->event_id);
	return r;
}

static void upd(EVP_MD_CTX *ctx, const char *s)
{
	EVP_DigestUpdate(ctx, s, strlen(s));
}

void rp_ds_fingerprint(struct rp_ds_row *rows, size_t n, const char *const *names,
		       size_t d, char out[65])
{
	if (n > 1)
		qsort(rows, n, sizeof *rows, row_cmp);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char num[64];
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		/* Only on allocation failure; an all-zero fingerprint can never
		 * match a real one, so the caller's immutability check fails closed. */
		memset(out, '0', 64);
		out[64] = '\0';
		EVP_MD_CTX_free(ctx);
		return;
	}
	/* Unit separator (0x1f) between fields, newline between records: no
	 * identity can forge another record's boundary with ordinary text. */
	upd(ctx, "features");
	for (size_t j = 0; j < d; j++) {
		upd(ctx, "\x1f");
		upd(ctx, names[j]);
	}
	upd(ctx, "\n");
	for (size_t i = 0; i < n; i++) {
		upd(ctx, rows[i].platform_run_id);
		upd(ctx, "\x1f");
		upd(ctx, rows[i].event_class);
		upd(ctx, "\x1f");
		upd(ctx, rows[i].event_id);
		for (size_t j = 0; j < d; j++) {
			/* %.17g round-trips a double exactly. */
			snprintf(num, sizeof num, "\x1f%.17g", rows[i].x[j]);
			upd(ctx, num);
		}
		snprintf(num, sizeof num, "\x1f%d\n", rows[i].label ? 1 : 0);
		upd(ctx, num);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	hex(md, mdlen, out);
}

void rp_leak_evaluate(const struct rp_leak_input *in, struct rp_leak_result *out)
{
	memset(out, 0, sizeof *out);
	/* A window reaching past as_of selects rows the model could not have
	 * seen at inference time, whether or not such rows exist yet. */
	if (in->window_end > in->as_of)
		out->rules |= RP_LEAK_WINDOW_AFTER_AS_OF;
	for (size_t i = 0; i < in->nrows; i++)
		if (in->row_at[i] > in->as_of)
			out->rows_after_as_of++;
	if (out->rows_after_as_of)
		out->rules |= RP_LEAK_FEATURE_AFTER_AS_OF;
	for (size_t i = 0; i < in->nlabels; i++)
		if (in->label_mature[i] > in->cutoff)
			out->immature_labels++;
	if (out->immature_labels)
		out->rules |= RP_LEAK_IMMATURE_LABEL;
}

const char *rp_leak_reason(unsigned rule)
{
	switch (rule) {
	case RP_LEAK_WINDOW_AFTER_AS_OF: return "window_after_as_of";
	case RP_LEAK_FEATURE_AFTER_AS_OF: return "feature_after_as_of";
	case RP_LEAK_IMMATURE_LABEL: return "immature_label";
	default: return "unknown";
	}
}

char *rp_weights_canonical(const int *idx, size_t d, const double *w, double bias,
			   char sha_out[65])
{
	double all[RP_LANE_NFEAT] = {0};
	for (size_t j = 0; j < d; j++)
		if (idx[j] >= 0 && idx[j] < RP_LANE_NFEAT)
			all[idx[j]] = w[j];
	json_t *o = json_object();
	if (!o)
		return NULL;
	/* json_real rejects non-finite values; a weight is finite by
	 * construction, but a NaN must not become a silently missing key. */
	if (!isfinite(bias) || json_object_set_new(o, "bias", json_real(bias))) {
		json_decref(o);
		return NULL;
	}
	for (int i = 0; i < RP_LANE_NFEAT; i++)
		if (!isfinite(all[i]) ||
		    json_object_set_new(o, rp_lane_feat_names[i], json_real(all[i]))) {
			json_decref(o);
			return NULL;
		}
	char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
	json_decref(o);
	if (!txt)
		return NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(txt, strlen(txt), md, &mdlen, EVP_sha256(), NULL) != 1) {
		free(txt);
		return NULL;
	}
	hex(md, mdlen, sha_out);
	return txt;
}

json_t *rp_feature_contract(const int *idx, size_t d, const struct rp_feat_stats *st)
{
	json_t *arr = json_array();
	for (int i = 0; arr && i < RP_LANE_NFEAT; i++) {
		double lo, hi, nlo, nhi;
		rp_lane_feat_range(i, &nlo, &nhi);
		lo = nlo;
		hi = nhi;
		for (size_t j = 0; j < d; j++) {
			if (idx[j] != i || rp_lane_feat_binary(i) || st[j].n == 0)
				continue;
			/* Served values a little outside what training saw are
			 * normal; far outside is skew. The margin draws that line. */
			double m = (st[j].max - st[j].min) / 4.0;
			m = m < 0.5 ? 0.5 : m;
			lo = st[j].min - m;
			hi = st[j].max + m;
			/* Clip to the nominal range, but never inside what training
			 * itself saw (the contract must accept the training data). */
			if (lo < nlo)
				lo = st[j].min < nlo ? st[j].min : nlo;
			if (hi > nhi)
				hi = st[j].max > nhi ? st[j].max : nhi;
		}
		json_array_append_new(arr, json_pack("{s:s,s:s,s:f,s:f,s:f}", "name",
			rp_lane_feat_names[i], "type", rp_lane_feat_binary(i) ? "binary" : "float",
			"min", lo, "max", hi, "scale", 1.0));
	}
	return arr;
}
