/*
 * s3.c - copy a bundle to S3: path-style PUTs signed by libcurl's
 * CURLOPT_AWS_SIGV4, with retries, manifest.json last.
 *
 * libcurl 7.88.1 has SigV4 traps (research/real-components.md §2,
 * research/feasibility.md §5) that decide the shape of this file:
 *  - it does not add x-amz-content-sha256, and without it the server
 *    rejects the request (or the body hash is wrong): we always send the
 *    real hex SHA-256 of the body, which curl then signs verbatim;
 *  - it signs the path verbatim: object keys are UriEncoded here;
 *  - header-removal entries ("Expect:") are signed but not sent, which
 *    breaks the signature: we add none;
 *  - the body goes through CURLOPT_POSTFIELDS with CUSTOMREQUEST "PUT"
 *    (bundle files are small and already in memory).
 * Credentials go through CURLOPT_USERNAME / CURLOPT_PASSWORD (not a joined
 * "key:secret" string, so an access key with ':' still works and no extra
 * copy of the secret exists); they never appear in a log line or an error.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "harness/core/fp_buf.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "reports/report_internal.h"

#define S3_FILE_MAX ((size_t)512 << 20)  /* bundle files are small */
#define S3_BODY_MAX ((size_t)64 << 10)   /* error bodies we keep */
#define S3_CONNECT_TIMEOUT_MS 5000L
#define S3_TIMEOUT_MS 60000L
#define S3_BACKOFF_NS (250 * FP_NS_PER_MS)
#define S3_DEFAULT_ATTEMPTS 4

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in 7.88; run it exactly once. */
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int fp_s3_uri_encode(const char *in, char *out, size_t outsz)
{
	struct fp_buf b = FP_BUF_INIT(outsz ? outsz - 1 : 0);
	int rc;

	if (!in || !out || outsz == 0)
		return -1;
	rc = fp_buf_put_uri(&b, in, 1);
	snprintf(out, outsz, "%s", rc ? "" : fp_buf_cstr(&b));
	fp_buf_release(&b);
	return rc ? -1 : 0;
}

void fp_s3_error_code(const char *body, char *out, size_t outsz)
{
	const char *a, *z;

	if (!out || outsz == 0)
		return;
	out[0] = '\0';
	if (!body || !(a = strstr(body, "<Code>")))
		return;
	a += 6;
	z = strstr(a, "</Code>");
	if (!z)
		return;
	snprintf(out, outsz, "%.*s", (int)(z - a), a);
}

/* The <Message> of an S3 error body, for the human part of an error. */
static void error_message(const char *body, char *out, size_t outsz)
{
	const char *a, *z;

	out[0] = '\0';
	if (!body || !(a = strstr(body, "<Message>")))
		return;
	a += 9;
	z = strstr(a, "</Message>");
	if (z)
		snprintf(out, outsz, "%.*s", (int)(z - a), a);
}

/* Copy s without trailing '/' characters into a length for "%.*s". */
static int trimmed_len(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return (int)n;
}

int fp_s3_bundle_key(const struct fp_s3_conf *c, const char *drill_id,
		     int64_t started_wall_ns, const char *run_id, char *out,
		     size_t outsz)
{
	const char *prefix = c && c->prefix ? c->prefix : "";
	char stamp[32];
	time_t s = (time_t)(started_wall_ns / FP_NS_PER_S);
	struct tm tm;
	int n;

	if (!out || outsz == 0 || !fp_bundle_name_ok(drill_id) ||
	    !fp_bundle_name_ok(run_id))
		return FP_EINVAL;
	gmtime_r(&s, &tm);
	fp_fmt_compact(started_wall_ns, stamp, sizeof stamp);
	n = snprintf(out, outsz, "%.*s%sdrills/%s/%04d/%02d/%02d/%s-%s",
		     trimmed_len(prefix), prefix,
		     trimmed_len(prefix) ? "/" : "", drill_id,
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, stamp,
		     run_id);
	if (n < 0 || (size_t)n >= outsz) {
		out[0] = '\0';
		return FP_EINVAL;
	}
	return FP_OK;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	/* Keep the first S3_BODY_MAX bytes (the XML error is short); the
	 * rest is read and dropped so the transfer still completes. */
	struct fp_buf *b = ud;
	size_t room = b->max - b->len, take = sz * n < room ? sz * n : room;

	if (take)
		fp_buf_append(b, p, take);
	return sz * n;
}

/* The endpoint must be a plain http(s) origin: userinfo ("u:p@host") would
 * put a credential into every URL, where curl error text can echo it. */
static int endpoint_ok(const char *ep)
{
	const char *host, *end, *at;

	if (strncmp(ep, "http://", 7) == 0)
		host = ep + 7;
	else if (strncmp(ep, "https://", 8) == 0)
		host = ep + 8;
	else
		return 0;
	end = strchr(host, '/');
	at = strchr(host, '@');
	return *host && (!at || (end && at > end));
}

static const char *default_ct(const char *ct)
{
	return ct && *ct ? ct : "application/octet-stream";
}

static int put_attempt(CURL *h, long *status, char *curlerr,
		       struct fp_buf *body, CURLcode *cc)
{
	fp_buf_reset(body);
	curlerr[0] = '\0';
	*status = 0;
	*cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return *cc == CURLE_OK && *status >= 200 && *status < 300;
}

int fp_s3_put(const struct fp_s3_conf *c, const char *key, const void *data,
	      size_t len, const char *content_type, long *http_status,
	      struct fp_err *err)
{
	char sha[FP_SHA256_HEX], hdr[128], sigv4[160], curlerr[CURL_ERROR_SIZE];
	char *ekey = NULL, *ebucket = NULL, *url = NULL, *ctype = NULL;
	struct curl_slist *hl = NULL, *t;
	struct fp_buf body = FP_BUF_INIT(S3_BODY_MAX);
	int attempts, signed_req, rc = FP_OK, n;
	size_t urlsz;
	long status = 0;
	CURLcode cc = CURLE_OK;
	CURL *h = NULL;

	if (http_status)
		*http_status = 0;
	if (!c || !c->endpoint || !c->bucket || !*c->bucket || !key || !*key ||
	    (!data && len))
		return fp_err_set(err, FP_EINVAL, "s3 put: missing endpoint, "
						  "bucket or key");
	if (!endpoint_ok(c->endpoint))
		return fp_err_set(err, FP_EINVAL,
				  "s3 put: endpoint must be http(s)://host[:port] "
				  "without credentials");
	signed_req = c->access_key && *c->access_key;
	if (signed_req != (c->secret_key && *c->secret_key))
		return fp_err_set(err, FP_EINVAL,
				  "s3 put: access key and secret key must be "
				  "given together");
	if (len > S3_FILE_MAX)
		return fp_err_set(err, FP_EINVAL, "s3 put %s: %zu bytes is over "
						  "the %zu-byte limit",
				  key, len, S3_FILE_MAX);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return fp_err_set(err, FP_EINTERNAL, "curl_global_init: %s",
				  curl_easy_strerror(curl_init_rc));
	attempts = c->max_attempts > 0 ? c->max_attempts : S3_DEFAULT_ATTEMPTS;

	ekey = malloc(3 * strlen(key) + 1);
	ebucket = malloc(3 * strlen(c->bucket) + 1);
	urlsz = strlen(c->endpoint) + 3 * (strlen(key) + strlen(c->bucket)) + 4;
	url = malloc(urlsz);
	n = (int)strlen(default_ct(content_type)) + 16;
	ctype = malloc((size_t)n);
	if (!ekey || !ebucket || !url || !ctype) {
		rc = fp_err_set(err, FP_ENOMEM, "out of memory");
		goto out;
	}
	fp_s3_uri_encode(key, ekey, 3 * strlen(key) + 1);
	fp_s3_uri_encode(c->bucket, ebucket, 3 * strlen(c->bucket) + 1);
	snprintf(url, urlsz, "%.*s/%s/%s", trimmed_len(c->endpoint),
		 c->endpoint, ebucket, ekey[0] == '/' ? ekey + 1 : ekey);
	snprintf(ctype, (size_t)n, "Content-Type: %s", default_ct(content_type));

	fp_sha256_hex(data ? data : "", len, sha);
	snprintf(hdr, sizeof hdr, "x-amz-content-sha256: %s", sha);
	if (!(t = curl_slist_append(hl, hdr)) || !(hl = t) ||
	    !(t = curl_slist_append(hl, ctype)) || !(hl = t)) {
		rc = fp_err_set(err, FP_ENOMEM, "out of memory");
		goto out;
	}
	h = curl_easy_init();
	if (!h) {
		rc = fp_err_set(err, FP_EINTERNAL, "curl_easy_init failed");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, data ? data : "");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "fpdrill/0.1");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, S3_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, S3_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	if (signed_req) {
		/* An IP endpoint carries no region or service: name both. */
		snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3",
			 c->region && *c->region ? c->region : "us-east-1");
		curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
		curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
	}

	for (int i = 1; i <= attempts; i++) {
		int retry;

		if (put_attempt(h, &status, curlerr, &body, &cc)) {
			FP_DEBUG("event=s3_put bucket=%s key=%s bytes=%zu "
				 "status=%ld attempt=%d",
				 c->bucket, key, len, status, i);
			goto out;
		}
		/* 4xx other than 429 will not change by asking again: a 403
		 * means wrong credentials or a bad signature. */
		retry = cc != CURLE_OK || status >= 500 || status == 429;
		if (!retry || i == attempts)
			break;
		FP_WARN("event=s3_retry bucket=%s key=%s attempt=%d/%d "
			"status=%ld cause=\"%s\"",
			c->bucket, key, i, attempts, status,
			cc != CURLE_OK ? (curlerr[0] ? curlerr
						     : curl_easy_strerror(cc))
				       : "http error");
		fp_sleep_ns(S3_BACKOFF_NS << (i - 1 < 10 ? i - 1 : 10), NULL);
	}
	if (cc != CURLE_OK) {
		rc = fp_err_set(err, FP_EUNREACHABLE,
				"PUT s3://%s/%s: %s (after %d attempts)",
				c->bucket, key,
				curlerr[0] ? curlerr : curl_easy_strerror(cc),
				attempts);
		if (err)
			err->retriable = 1;
	} else {
		char code[96], msg[200];

		fp_s3_error_code(fp_buf_cstr(&body), code, sizeof code);
		error_message(fp_buf_cstr(&body), msg, sizeof msg);
		rc = fp_err_set(err, FP_EBACKEND, "PUT s3://%s/%s: HTTP %ld %s%s%s",
				c->bucket, key, status,
				code[0] ? code : "(no S3 error code)",
				msg[0] ? ": " : "", msg);
		if (err)
			err->retriable = status >= 500 || status == 429;
	}
out:
	if (http_status)
		*http_status = status;
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	fp_buf_release(&body);
	free(ekey);
	free(ebucket);
	free(url);
	free(ctype);
	return rc;
}

static const char *content_type_of(const char *name)
{
	static const char *const map[][2] = {
		{".json", "application/json"},
		{".jsonl", "application/x-ndjson"},
		{".md", "text/markdown; charset=utf-8"},
		{".xml", "application/xml"},
		{".html", "text/html; charset=utf-8"},
		{".tsv", "text/tab-separated-values"},
		{".csv", "text/csv"},
		{".txt", "text/plain; charset=utf-8"},
		{".log", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
		if (strcmp(dot, map[i][0]) == 0)
			return map[i][1];
	return "application/octet-stream";
}

static int upload_one(const struct fp_s3_conf *c, const char *dir,
		      const char *key_prefix, const char *name,
		      struct fp_err *err)
{
	char path[4096], *data = NULL, *key;
	size_t len = 0, ksz = strlen(key_prefix) + strlen(name) + 2;
	int rc;

	if (fp_path_join(path, sizeof path, dir, name))
		return fp_err_set(err, FP_EINVAL, "'%s': path too long", name);
	key = malloc(ksz);
	if (!key)
		return fp_err_set(err, FP_ENOMEM, "out of memory");
	snprintf(key, ksz, "%.*s/%s", trimmed_len(key_prefix), key_prefix,
		 name);
	rc = fp_read_file(path, S3_FILE_MAX, &data, &len, err);
	if (!rc)
		rc = fp_s3_put(c, key, data, len, content_type_of(name), NULL,
			       err);
	free(data);
	free(key);
	return rc;
}

int fp_s3_upload_bundle(const struct fp_s3_conf *c, const char *dir,
			const char *key_prefix, struct fp_err *err)
{
	struct fp_artifacts files = {NULL, 0};
	int rc, have_manifest = 0;

	if (!c || !dir || !key_prefix || !*key_prefix)
		return fp_err_set(err, FP_EINVAL,
				  "s3 upload: missing config, dir or key prefix");
	rc = fp_artifacts_scan(dir, NULL, 0, &files, err);
	if (rc)
		goto out;
	/* Sorted by name, manifest.json held back: a reader that finds the
	 * manifest can trust every file it lists is already there. */
	for (size_t i = 0; i < files.n; i++) {
		if (strcmp(files.v[i].name, FP_BUNDLE_MANIFEST) == 0) {
			have_manifest = 1;
			continue;
		}
		rc = upload_one(c, dir, key_prefix, files.v[i].name, err);
		if (rc)
			goto out;
	}
	if (have_manifest)
		rc = upload_one(c, dir, key_prefix, FP_BUNDLE_MANIFEST, err);
	else
		FP_WARN("event=s3_upload dir=%s warning=\"no manifest.json\"",
			dir);
	if (!rc)
		FP_INFO("event=s3_uploaded bucket=%s prefix=%s files=%zu",
			c->bucket, key_prefix, files.n);
out:
	if (rc)
		fp_err_prefix(err, "uploading bundle '%s': ", dir);
	fp_artifacts_free(&files);
	return rc;
}
