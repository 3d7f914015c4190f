/*
 * msk_iam.c - Amazon MSK IAM authentication for every librdkafka handle the
 * harness makes (see fp_kafka.h). MSK's IAM listener speaks SASL OAUTHBEARER
 * whose bearer token is an AWS SigV4 *presigned URL* for the action
 * kafka-cluster:Connect, base64url-encoded without padding; the token lives
 * 15 minutes and librdkafka asks for a new one through its refresh callback
 * before it expires. The env profile's aws_msk_iam block is carried to the
 * callback inside sasl.oauthbearer.config (the string librdkafka hands the
 * callback verbatim), so no handle needs an opaque pointer and every refresh
 * re-reads the credential references: a rotated file: credential is picked up
 * without a restart. Credentials are resolved only in memory and wiped.
 */
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/backend/fp_kafka.h"
#include "harness/core/fp_buf.h"
#include "harness/core/fp_hash.h"
#include "harness/core/fp_log.h"
#include "harness/core/fp_secret.h"

#define MSK_SERVICE "kafka-cluster"
#define MSK_EXPIRES_S 900
#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MSK_USER_AGENT "fpdrill%%2F0.1" /* a format string */

static void hmac(const void *key, size_t keylen, const char *msg,
		 unsigned char out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	     strlen(msg), out, &n);
}

static int put_b64url(struct fp_buf *b, const unsigned char *in, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789-_";
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 |
			     in[i + 2];
		char o[4] = {al[v >> 18], al[(v >> 12) & 63], al[(v >> 6) & 63],
			     al[v & 63]};

		if (fp_buf_append(b, o, 4))
			return -1;
	}
	if (i < n) { /* 1 or 2 bytes left; no padding */
		unsigned v = (unsigned)in[i] << 16 |
			     (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
		char o[3] = {al[v >> 18], al[(v >> 12) & 63], al[(v >> 6) & 63]};

		if (fp_buf_append(b, o, i + 1 < n ? 3 : 2))
			return -1;
	}
	return 0;
}

int fp_msk_iam_token(const char *region, const struct fp_msk_iam_creds *c,
		     int64_t now_s, char **token, int64_t *expiry_ms,
		     struct fp_err *err)
{
	struct fp_buf q = FP_BUF_INIT(1 << 16), creq = FP_BUF_INIT(1 << 16),
		      url = FP_BUF_INIT(1 << 16), tok = FP_BUF_INIT(1 << 17);
	char amz_date[17], date[9], host[128], scope[160], sts[512];
	char creq_hash[FP_SHA256_HEX], sig[FP_SHA256_HEX], *kdate0 = NULL;
	unsigned char k[32];
	struct tm tm;
	time_t t = (time_t)now_s;
	size_t klen;
	int rc = FP_OK;

	*token = NULL;
	if (!region || !*region || strlen(region) > 40 || !c ||
	    !c->access_key_id || !*c->access_key_id ||
	    !c->secret_access_key || !*c->secret_access_key)
		return fp_err_set(err, FP_EINVAL,
				  "msk iam: a region, an access key id and a "
				  "secret access key are required");
	gmtime_r(&t, &tm);
	strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
	strftime(date, sizeof date, "%Y%m%d", &tm);
	snprintf(host, sizeof host, "kafka.%s.amazonaws.com", region);
	snprintf(scope, sizeof scope, "%s/%s/" MSK_SERVICE "/aws4_request",
		 date, region);

	/* The canonical query string has its keys in byte order (the session
	 * token sorts before SignedHeaders); the URL lists them as AWS's own
	 * signer does, with the token last. Values are URI-encoded. */
	if (fp_buf_puts(&q, "Action=kafka-cluster%3AConnect"
			    "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
			    "&X-Amz-Credential=") ||
	    fp_buf_put_uri(&q, c->access_key_id, 0) || fp_buf_puts(&q, "%2F") ||
	    fp_buf_put_uri(&q, scope, 0) ||
	    fp_buf_printf(&q, "&X-Amz-Date=%s&X-Amz-Expires=%d", amz_date,
			  MSK_EXPIRES_S) ||
	    fp_buf_puts(&url, "https://") || fp_buf_puts(&url, host) ||
	    fp_buf_puts(&url, "/?") || fp_buf_append(&url, q.data, q.len) ||
	    fp_buf_puts(&url, "&X-Amz-SignedHeaders=host"))
		goto oom;
	if (c->session_token && *c->session_token &&
	    (fp_buf_puts(&q, "&X-Amz-Security-Token=") ||
	     fp_buf_put_uri(&q, c->session_token, 0) ||
	     fp_buf_puts(&url, "&X-Amz-Security-Token=") ||
	     fp_buf_put_uri(&url, c->session_token, 0)))
		goto oom;
	if (fp_buf_puts(&q, "&X-Amz-SignedHeaders=host"))
		goto oom;
	/* The payload hash is that of the empty body, as botocore's
	 * SigV4QueryAuth (under AWS's MSK signer) computes it for a GET. */
	if (fp_buf_printf(&creq, "GET\n/\n%s\nhost:%s\n\nhost\n%s",
			  fp_buf_cstr(&q), host, EMPTY_SHA256))
		goto oom;
	fp_sha256_hex(creq.data, creq.len, creq_hash);
	snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date,
		 scope, creq_hash);

	klen = strlen(c->secret_access_key) + 5;
	kdate0 = malloc(klen);
	if (!kdate0)
		goto oom;
	snprintf(kdate0, klen, "AWS4%s", c->secret_access_key);
	hmac(kdate0, klen - 1, date, k);
	hmac(k, 32, region, k);
	hmac(k, 32, MSK_SERVICE, k);
	hmac(k, 32, "aws4_request", k);
	fp_hmac_sha256_hex(k, 32, sts, strlen(sts), sig);

	if (fp_buf_printf(&url, "&X-Amz-Signature=%s&User-Agent=" MSK_USER_AGENT,
			  sig) ||
	    put_b64url(&tok, (const unsigned char *)url.data, url.len))
		goto oom;
	*token = fp_buf_detach(&tok);
	if (!*token)
		goto oom;
	*expiry_ms = (now_s + MSK_EXPIRES_S) * 1000;
	goto out;
oom:
	rc = fp_err_set(err, FP_ENOMEM, "msk iam token");
out:
	if (kdate0) {
		OPENSSL_cleanse(kdate0, klen);
		free(kdate0);
	}
	OPENSSL_cleanse(k, sizeof k);
	fp_buf_release(&q);
	fp_buf_release(&creq);
	fp_buf_release(&url);
	fp_buf_release(&tok);
	return rc;
}

/* ---- the env profile's block, carried in sasl.oauthbearer.config ---------- */

/* Value of " key=" in a config string, copied to out. */
static int config_get(const char *cfg, const char *key, char *out,
		      size_t outsz)
{
	size_t kl = strlen(key);

	for (const char *p = cfg; (p = strstr(p, key)); p += kl) {
		size_t n;

		if ((p != cfg && p[-1] != ' ') || p[kl] != '=')
			continue;
		p += kl + 1;
		n = strcspn(p, " ");
		if (n >= outsz)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		return 0;
	}
	out[0] = '\0';
	return -1;
}

int fp_msk_iam_token_from_config(const char *cfg, int64_t now_s, char **token,
				 int64_t *expiry_ms, char *principal,
				 size_t principalsz, struct fp_err *err)
{
	char region[64], r_ak[1024], r_sk[1024], r_st[1024];
	struct fp_msk_iam_creds c = {0};
	char *ak = NULL, *sk = NULL, *st = NULL;
	int rc;

	*token = NULL;
	if (!cfg || strncmp(cfg, FP_MSK_IAM_TAG " ", strlen(FP_MSK_IAM_TAG) + 1) ||
	    config_get(cfg, "region", region, sizeof region) ||
	    config_get(cfg, "access_key_id", r_ak, sizeof r_ak) ||
	    config_get(cfg, "secret_access_key", r_sk, sizeof r_sk))
		return fp_err_set(err, FP_EINVAL,
				  "msk iam: malformed sasl.oauthbearer.config");
	if (config_get(cfg, "session_token", r_st, sizeof r_st))
		r_st[0] = '\0';
	rc = fp_secret_resolve(r_ak, NULL, &ak, err);
	if (!rc)
		rc = fp_secret_resolve(r_sk, NULL, &sk, err);
	/* A session token is optional: long-term keys have none, and an
	 * unset AWS_SESSION_TOKEN means exactly that. */
	if (!rc && r_st[0] && fp_secret_resolve(r_st, NULL, &st, err)) {
		FP_DEBUG("event=msk_iam_no_session_token ref=%s", r_st);
		st = NULL;
	}
	if (!rc) {
		c.access_key_id = ak;
		c.secret_access_key = sk;
		c.session_token = st;
		rc = fp_msk_iam_token(region, &c, now_s, token, expiry_ms, err);
		/* The principal is only a label on the client side. */
		snprintf(principal, principalsz, "%s", ak);
	}
	fp_secret_free(ak);
	fp_secret_free(sk);
	fp_secret_free(st);
	return rc;
}

static void on_refresh(rd_kafka_t *rk, const char *cfg, void *opaque)
{
	char principal[256] = "fpdrill", errstr[512];
	struct fp_err err = {0};
	int64_t expiry_ms;
	char *token = NULL;

	(void)opaque;
	if (fp_msk_iam_token_from_config(cfg, (int64_t)time(NULL), &token,
					 &expiry_ms, principal,
					 sizeof principal, &err)) {
		/* librdkafka retries and fails the connection with this. */
		rd_kafka_oauthbearer_set_token_failure(rk, err.msg);
		return;
	}
	if (rd_kafka_oauthbearer_set_token(rk, token, expiry_ms, principal,
					   NULL, 0, errstr, sizeof errstr))
		rd_kafka_oauthbearer_set_token_failure(rk, errstr);
	free(token);
}

int fp_kafka_conf_apply(struct rd_kafka_conf_s *conf,
			const struct fp_kvlist *props, char *errstr,
			size_t errsz)
{
	for (size_t i = 0; props && i < props->n; i++) {
		const char *k = props->items[i].key, *v = props->items[i].value;

		if (rd_kafka_conf_set(conf, k, v, errstr, errsz) !=
		    RD_KAFKA_CONF_OK)
			return -1;
		if (strcmp(k, "sasl.oauthbearer.config") == 0 &&
		    strncmp(v, FP_MSK_IAM_TAG " ",
			    strlen(FP_MSK_IAM_TAG) + 1) == 0)
			rd_kafka_conf_set_oauthbearer_token_refresh_cb(
				conf, on_refresh);
	}
	return 0;
}
