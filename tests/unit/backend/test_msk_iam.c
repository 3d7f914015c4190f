/*
 * test_msk_iam.c - the MSK IAM token is the presigned URL AWS's own signer
 * makes. The expected URLs were produced once by aws-msk-iam-sasl-signer-
 * python 1.0.2 on botocore 1.44.5 with the clock frozen at
 * 2026-11-23T21:30:05Z and these example credentials (docs/operations.md,
 * "MSK IAM"); fpdrill's URL differs only in its User-Agent parameter, which
 * is not signed. No network: nothing here can reach AWS.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend/fp_kafka.h"

#define NOW 1795469405 /* 2026-11-23T21:30:05Z */
#define AK "AKIDEXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const char ref_plain[] =
	"https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect"
	"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"
	"20261123%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date="
	"20261123T213005Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
	"&X-Amz-Signature="
	"bb57116e23a963604a971a4a7a70e5859997b51d04eef7f5b5ba6b3759c71c0d";
static const char ref_session[] =
	"https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect"
	"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"
	"20261123%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date="
	"20261123T213005Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
	"&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN%2Fwith%2Bchars%3D"
	"&X-Amz-Signature="
	"04e4fe9df2c29609b1540fcadd23083d0146a7f7979fc450b240f3d23dadf1d7";

/* base64url without padding -> bytes (test-side decoder). */
static char *b64url_decode(const char *in)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789-_";
	size_t n = strlen(in), o = 0;
	char *out = calloc(n, 1);
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p = strchr(al, in[i]);

		cr_assert(p && in[i], "not base64url: '%c'", in[i]);
		acc = acc << 6 | (unsigned)(p - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits & 0xff);
		}
	}
	return out;
}

static void expect_url(const char *token, const char *ref)
{
	char *url = b64url_decode(token);
	size_t rl = strlen(ref);

	cr_expect(strchr(token, '=') == NULL, "padding in %s", token);
	cr_expect(strncmp(url, ref, rl) == 0, "got %s\nwant %s", url, ref);
	cr_expect_str_eq(url + rl, "&User-Agent=fpdrill%2F0.1");
	free(url);
}

Test(msk_iam, matches_the_aws_signer)
{
	struct fp_msk_iam_creds c = {AK, SK, NULL};
	struct fp_err err = {0};
	int64_t exp = 0;
	char *tok = NULL;

	cr_assert_eq(fp_msk_iam_token("eu-west-1", &c, NOW, &tok, &exp, &err),
		     FP_OK, "%s", err.msg);
	expect_url(tok, ref_plain);
	cr_expect_eq(exp, 1795470305000LL);
	free(tok);

	c.session_token = "FQoGZXIvYXdzEXAMPLETOKEN/with+chars=";
	cr_assert_eq(fp_msk_iam_token("eu-west-1", &c, NOW, &tok, &exp, &err),
		     FP_OK, "%s", err.msg);
	expect_url(tok, ref_session);
	free(tok);
}

/* One second or one key byte later, another signature: the vector is not
 * matched by accident. */
Test(msk_iam, signature_depends_on_time_and_key)
{
	struct fp_msk_iam_creds c = {AK, SK, NULL}, c2 = {AK, "x" SK, NULL};
	struct fp_err err = {0};
	int64_t exp;
	char *a, *b, *d;

	cr_assert_eq(fp_msk_iam_token("eu-west-1", &c, NOW, &a, &exp, &err), 0);
	cr_assert_eq(fp_msk_iam_token("eu-west-1", &c, NOW + 1, &b, &exp, &err), 0);
	cr_assert_eq(fp_msk_iam_token("eu-west-1", &c2, NOW, &d, &exp, &err), 0);
	cr_expect_str_neq(a, b);
	cr_expect_str_neq(a, d);
	free(a);
	free(b);
	free(d);
}

Test(msk_iam, missing_credentials_are_an_error)
{
	struct fp_msk_iam_creds c = {AK, "", NULL};
	struct fp_err err = {0};
	int64_t exp;
	char *tok = (char *)1;

	cr_expect_eq(fp_msk_iam_token("eu-west-1", &c, NOW, &tok, &exp, &err),
		     FP_EINVAL);
	cr_expect_null(tok);
	cr_expect(strstr(err.msg, "secret access key") != NULL, "%s", err.msg);
}

/* The refresh callback's path: references resolved from the environment
 * (an unset session token means none), the secret never in the config. */
Test(msk_iam, config_carries_references_only)
{
	char cfg[1024], principal[64];
	struct fp_err err = {0};
	int64_t exp;
	char *tok = NULL;

	setenv("FPT_AK", AK, 1);
	setenv("FPT_SK", SK, 1);
	unsetenv("FPT_ST");
	snprintf(cfg, sizeof cfg, FP_MSK_IAM_TAG " region=eu-west-1 "
		 "access_key_id=env:FPT_AK secret_access_key=env:FPT_SK "
		 "session_token=env:FPT_ST");
	cr_expect(strstr(cfg, SK) == NULL, "secret in config: %s", cfg);
	cr_assert_eq(fp_msk_iam_token_from_config(cfg, NOW, &tok, &exp,
						  principal, sizeof principal,
						  &err),
		     FP_OK, "%s", err.msg);
	expect_url(tok, ref_plain);
	cr_expect_str_eq(principal, AK);
	free(tok);

	setenv("FPT_ST", "FQoGZXIvYXdzEXAMPLETOKEN/with+chars=", 1);
	cr_assert_eq(fp_msk_iam_token_from_config(cfg, NOW, &tok, &exp,
						  principal, sizeof principal,
						  &err),
		     FP_OK, "%s", err.msg);
	expect_url(tok, ref_session);
	free(tok);

	unsetenv("FPT_SK");
	cr_expect_neq(fp_msk_iam_token_from_config(cfg, NOW, &tok, &exp,
						   principal, sizeof principal,
						   &err),
		      FP_OK);
	cr_expect(strstr(err.msg, "FPT_SK") != NULL, "%s", err.msg);
	cr_expect_neq(fp_msk_iam_token_from_config("region=x", NOW, &tok, &exp,
						   principal, sizeof principal,
						   &err),
		      FP_OK);
}

/* ---- the wiring into librdkafka --------------------------------------------
 * A handle made through fp_kafka_conf_apply asks our callback for a token as
 * soon as it is created; with a credential missing, the callback's failure is
 * what librdkafka reports. No broker is needed for that. */
#include <librdkafka/rdkafka.h>

static char last_error[512];

static void on_error(rd_kafka_t *rk, int e, const char *reason, void *op)
{
	(void)rk;
	(void)e;
	(void)op;
	snprintf(last_error, sizeof last_error, "%s", reason);
}

static void poll_for_error(const char *cfg)
{
	struct fp_kv items[4] = {
		{.key = "security.protocol", .value = "SASL_PLAINTEXT"},
		{.key = "sasl.mechanism", .value = "OAUTHBEARER"},
		{.key = "sasl.oauthbearer.config", .value = (char *)cfg},
		{.key = "bootstrap.servers", .value = "127.0.0.1:1"},
	};
	struct fp_kvlist props = {items, 4};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];
	rd_kafka_t *rk;

	last_error[0] = '\0';
	cr_assert_eq(fp_kafka_conf_apply(conf, &props, errstr, sizeof errstr),
		     0, "%s", errstr);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	cr_assert_not_null(rk, "%s", errstr);
	for (int i = 0; i < 200 && !strstr(last_error, "msk iam") &&
			!strstr(last_error, "FPT_"); i++)
		rd_kafka_poll(rk, 50);
	rd_kafka_destroy(rk);
}

Test(msk_iam, librdkafka_calls_the_callback)
{
	char cfg[512];

	snprintf(cfg, sizeof cfg, FP_MSK_IAM_TAG " region=eu-west-1 "
		 "access_key_id=env:FPT_AK2 secret_access_key=env:FPT_SK2 "
		 "session_token=env:FPT_ST2");
	unsetenv("FPT_SK2");
	setenv("FPT_AK2", AK, 1);
	poll_for_error(cfg);
	cr_expect(strstr(last_error, "FPT_SK2") != NULL,
		  "librdkafka did not report the callback's failure: '%s'",
		  last_error);
}
