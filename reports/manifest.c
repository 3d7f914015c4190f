/*
 * manifest.c - the bundle as a whole: scanning the directory, writing the
 * five documents in dependency order, manifest.json (sha256 and size of
 * every file, optionally HMAC-signed) and its verification.
 *
 * Write order matters because each document lists the ones before it:
 * junit.xml, then report.html (lists the run's files and junit.xml), then
 * report.md (adds report.html), then report.json (its "artifacts" add
 * report.md), then manifest.json (lists everything, itself excepted).
 * The directory is scanned and hashed once; files this module writes are
 * hashed from memory, so a large ledger is read twice per bundle: once for
 * its sha256, once streamed by the charts of report.html.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "reports/report_internal.h"

#define MANIFEST_MAX ((size_t)16 << 20)

static int cmp_art(const void *a, const void *b)
{
	return strcmp(((const struct fp_artifact *)a)->name,
		      ((const struct fp_artifact *)b)->name);
}

/* "<name>.tmp.<digits>" is what fp_write_file_atomic leaves behind when it
 * is interrupted; it is not part of the bundle. */
static int is_atomic_leftover(const char *name)
{
	const char *p = strstr(name, ".tmp.");

	if (!p || p == name)
		return 0;
	p += 5;
	if (!*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static int in_list(const char *name, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(name, *list) == 0)
			return 1;
	return 0;
}

/* Names end up in JSON keys, Markdown cells and S3 keys: they must be
 * valid UTF-8 without control characters. */
static int printable_utf8(const char *name)
{
	json_t *probe;

	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	probe = json_string(name);
	json_decref(probe);
	return probe != NULL;
}

void fp_artifacts_free(struct fp_artifacts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].name);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

int fp_artifacts_put(struct fp_artifacts *a, const char *name,
		     const char sha256[FP_SHA256_HEX], long long bytes)
{
	struct fp_artifact *v;
	size_t i;

	for (i = 0; i < a->n; i++) {
		int c = strcmp(a->v[i].name, name);

		if (c == 0) {
			memcpy(a->v[i].sha256, sha256, FP_SHA256_HEX);
			a->v[i].bytes = bytes;
			return FP_OK;
		}
		if (c > 0)
			break;
	}
	v = realloc(a->v, (a->n + 1) * sizeof *v);
	if (!v)
		return FP_ENOMEM;
	a->v = v;
	memmove(&v[i + 1], &v[i], (a->n - i) * sizeof *v);
	v[i].name = strdup(name);
	if (!v[i].name) {
		memmove(&v[i], &v[i + 1], (a->n - i) * sizeof *v);
		return FP_ENOMEM;
	}
	memcpy(v[i].sha256, sha256, FP_SHA256_HEX);
	v[i].bytes = bytes;
	a->n++;
	return FP_OK;
}

int fp_artifacts_scan(const char *dir, const char *const *skip, int hash,
		      struct fp_artifacts *out, struct fp_err *err)
{
	struct fp_artifacts a = {NULL, 0};
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = FP_OK;

	if (!d)
		return fp_err_set(err, FP_EIO, "cannot open directory '%s': %s",
				  dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		struct stat st;
		struct fp_artifact *v;

		/* Dot files are harness state (".upload-pending"), not
		 * evidence: they stay out of the manifest and of S3. */
		if (!fp_bundle_name_ok(name) || name[0] == '.' ||
		    in_list(name, skip) || is_atomic_leftover(name))
			continue;
		/* Regular files only: a symlink could pull an outside file
		 * into a signed bundle. */
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!printable_utf8(name)) {
			rc = fp_err_set(err, FP_EINVAL,
					"bundle '%s' holds a file whose name is "
					"not printable UTF-8",
					dir);
			goto out;
		}
		v = realloc(a.v, (a.n + 1) * sizeof *v);
		if (!v) {
			rc = fp_err_set(err, FP_ENOMEM, "out of memory");
			goto out;
		}
		a.v = v;
		memset(&v[a.n], 0, sizeof *v);
		v[a.n].name = strdup(name);
		if (!v[a.n].name) {
			rc = fp_err_set(err, FP_ENOMEM, "out of memory");
			goto out;
		}
		v[a.n++].bytes = (long long)st.st_size;
	}
	if (a.n)
		qsort(a.v, a.n, sizeof *a.v, cmp_art);
	for (size_t i = 0; hash && i < a.n; i++) {
		char path[4096];

		if (fp_path_join(path, sizeof path, dir, a.v[i].name)) {
			rc = fp_err_set(err, FP_EINVAL, "path too long in '%s'",
					dir);
			goto out;
		}
		rc = fp_sha256_file_hex(path, a.v[i].sha256, err);
		if (rc)
			goto out;
	}
out:
	closedir(d);
	if (rc)
		fp_artifacts_free(&a);
	else
		*out = a;
	return rc;
}

char *fp_manifest_canonical(json_t *files)
{
	/* Compact separators ("," and ":") and sorted keys: the form any
	 * JSON tool can reproduce (jq -cjS .files). */
	return json_dumps(files, JSON_COMPACT | JSON_SORT_KEYS);
}

/* Write one rendered document and record its hash and size. */
static int write_doc(const char *dir, const char *name, struct fp_buf *b,
		     struct fp_artifacts *arts, struct fp_err *err)
{
	char path[4096], sha[FP_SHA256_HEX];
	const char *data = fp_buf_cstr(b);
	int rc;

	if (fp_path_join(path, sizeof path, dir, name))
		return fp_err_set(err, FP_EINVAL, "path too long in '%s'", dir);
	rc = fp_write_file_atomic(path, data, b->len, err);
	if (rc)
		return rc;
	if (!arts)
		return FP_OK;
	fp_sha256_hex(data, b->len, sha);
	if (fp_artifacts_put(arts, name, sha, (long long)b->len))
		return fp_err_set(err, FP_ENOMEM, "out of memory");
	return FP_OK;
}

static int render_manifest(const struct fp_report *r,
			   const struct fp_artifacts *arts,
			   const char *signing_key, struct fp_buf *out,
			   struct fp_err *err)
{
	json_t *root = json_object(), *files = json_array(), *sig = json_object();
	char now[40], *canon = NULL, *text = NULL;
	int bad = !root || !files || !sig, rc = FP_OK;

	for (size_t i = 0; !bad && i < arts->n; i++) {
		json_t *f = json_object();

		bad |= !f || json_array_append_new(files, f) ||
		       json_object_set_new(f, "path",
					   json_string(arts->v[i].name)) ||
		       json_object_set_new(f, "sha256",
					   json_string(arts->v[i].sha256)) ||
		       json_object_set_new(f, "bytes",
					   json_integer(arts->v[i].bytes));
	}
	if (!bad && signing_key) {
		char mac[FP_SHA256_HEX];

		canon = fp_manifest_canonical(files);
		bad |= !canon;
		if (canon) {
			fp_hmac_sha256_hex(signing_key, strlen(signing_key),
					   canon, strlen(canon), mac);
			bad |= json_object_set_new(sig, "alg",
						   json_string("HMAC-SHA256")) ||
			       json_object_set_new(sig, "value",
						   json_string(mac));
		}
	} else if (!bad) {
		bad |= json_object_set_new(sig, "alg", json_string("none"));
	}
	fp_fmt_iso8601(fp_wall_ns(), now, sizeof now);
	if (!bad) {
		bad |= json_object_set_new(root, "schema",
					   json_string(FP_MANIFEST_SCHEMA)) ||
		       json_object_set_new(root, "run_id",
					   r->run_id ? json_string(r->run_id)
						     : json_null()) ||
		       json_object_set_new(root, "drill_id",
					   r->drill_id ? json_string(r->drill_id)
						       : json_null()) ||
		       json_object_set_new(root, "created_at",
					   json_string(now)) ||
		       json_object_set(root, "files", files) ||
		       json_object_set(root, "signature", sig);
	}
	if (!bad)
		text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text || fp_buf_puts(out, text) || fp_buf_puts(out, "\n"))
		rc = fp_err_set(err, FP_ENOMEM, "manifest.json: out of memory");
	free(text);
	if (canon) {
		OPENSSL_cleanse(canon, strlen(canon));
		free(canon);
	}
	json_decref(files);
	json_decref(sig);
	json_decref(root);
	return rc;
}

int fp_bundle_write(const struct fp_report *r, const char *dir,
		    const char *signing_key, struct fp_err *err)
{
	static const char *const own[] = {
		FP_BUNDLE_REPORT_JSON, FP_BUNDLE_REPORT_MD, FP_BUNDLE_JUNIT,
		FP_BUNDLE_REPORT_HTML, FP_BUNDLE_MANIFEST, NULL};
	struct fp_artifacts arts = {NULL, 0};
	struct fp_buf b = FP_BUF_INIT(FP_REPORT_DOC_MAX);
	int rc;

	if (!r || !dir || !*dir)
		return fp_err_set(err, FP_EINVAL, "bundle write: no report or dir");
	/* An empty key is a misconfigured secret. Losing the whole report
	 * over it would be worse than an unsigned manifest (which says
	 * "alg": "none" and fails any verification with a key), so warn and
	 * write it unsigned. */
	if (signing_key && !*signing_key) {
		FP_WARN("event=bundle_unsigned dir=%s "
			"reason=\"the signing key is empty\"",
			dir);
		signing_key = NULL;
	}
	rc = fp_artifacts_scan(dir, own, 1, &arts, err);
	if (rc)
		goto out;

	rc = fp_render_junit(r, &b, err);
	if (!rc)
		rc = write_doc(dir, FP_BUNDLE_JUNIT, &b, &arts, err);
	fp_buf_reset(&b);
	/* Before manifest.json, so the signed manifest vouches for it. */
	if (!rc)
		rc = fp_render_html(r, dir, &arts, &b, err);
	if (!rc)
		rc = write_doc(dir, FP_BUNDLE_REPORT_HTML, &b, &arts, err);
	fp_buf_reset(&b);
	if (!rc)
		rc = fp_render_md(r, &arts, &b, err);
	if (!rc)
		rc = write_doc(dir, FP_BUNDLE_REPORT_MD, &b, &arts, err);
	fp_buf_reset(&b);
	if (!rc)
		rc = fp_render_json(r, &arts, &b, err);
	if (!rc)
		rc = write_doc(dir, FP_BUNDLE_REPORT_JSON, &b, &arts, err);
	fp_buf_reset(&b);
	if (!rc)
		rc = render_manifest(r, &arts, signing_key, &b, err);
	if (!rc)
		rc = write_doc(dir, FP_BUNDLE_MANIFEST, &b, NULL, err);
	if (!rc)
		FP_INFO("event=bundle_written dir=%s files=%zu signed=%s", dir,
			arts.n + 1, signing_key ? "yes" : "no");
out:
	if (rc)
		fp_err_prefix(err, "writing bundle '%s': ", dir);
	fp_buf_release(&b);
	fp_artifacts_free(&arts);
	return rc;
}

static int is_hex64(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

static int verify_signature(json_t *m, json_t *files, const char *key,
			    struct fp_err *err)
{
	json_t *sig = json_object_get(m, "signature");
	const char *alg = json_string_value(json_object_get(sig, "alg"));
	const char *val = json_string_value(json_object_get(sig, "value"));
	char mac[FP_SHA256_HEX], *canon;
	int ok;

	if (!alg || strcmp(alg, "HMAC-SHA256") != 0)
		return fp_err_set(err, FP_EINVAL,
				  "manifest.json: not signed (alg %s) but a "
				  "signing key was given",
				  alg ? alg : "missing");
	if (!val || !is_hex64(val))
		return fp_err_set(err, FP_EINVAL,
				  "manifest.json: malformed signature value");
	canon = fp_manifest_canonical(files);
	if (!canon)
		return fp_err_set(err, FP_ENOMEM, "out of memory");
	fp_hmac_sha256_hex(key, strlen(key), canon, strlen(canon), mac);
	free(canon);
	/* Constant time: the comparison must not leak how much matched. */
	ok = CRYPTO_memcmp(mac, val, 64) == 0;
	OPENSSL_cleanse(mac, sizeof mac);
	if (!ok)
		return fp_err_set(err, FP_EINVAL,
				  "manifest.json: signature mismatch (wrong "
				  "key, or the manifest was edited)");
	return FP_OK;
}

static int verify_file(const char *dir, json_t *f, struct fp_err *err)
{
	const char *name = json_string_value(json_object_get(f, "path"));
	const char *want = json_string_value(json_object_get(f, "sha256"));
	json_t *bytes = json_object_get(f, "bytes");
	char path[4096], got[FP_SHA256_HEX];
	struct stat st;
	int rc;

	/* A listed path is a plain name: "../x" must not make the verifier
	 * read (and vouch for) a file outside the bundle. */
	if (!fp_bundle_name_ok(name) || !want || !is_hex64(want) ||
	    !json_is_integer(bytes))
		return fp_err_set(err, FP_EINVAL,
				  "manifest.json: malformed entry for '%s'",
				  name ? name : "?");
	if (fp_path_join(path, sizeof path, dir, name))
		return fp_err_set(err, FP_EINVAL, "'%s': path too long", name);
	if (lstat(path, &st) || !S_ISREG(st.st_mode))
		return fp_err_set(err, FP_EINVAL,
				  "'%s': listed in manifest.json but missing "
				  "or not a regular file",
				  name);
	if ((long long)st.st_size != (long long)json_integer_value(bytes))
		return fp_err_set(err, FP_EINVAL,
				  "'%s': size %lld, manifest says %lld", name,
				  (long long)st.st_size,
				  (long long)json_integer_value(bytes));
	rc = fp_sha256_file_hex(path, got, err);
	if (rc) {
		/* Re-raised as EINVAL so the caller sees "bundle bad"; the
		 * cause is copied first (it lives in the buffer we rewrite). */
		char why[FP_ERR_MSG_MAX];

		snprintf(why, sizeof why, "%s", err ? err->msg : "I/O error");
		return fp_err_set(err, FP_EINVAL, "'%s': cannot hash: %s", name,
				  why);
	}
	if (strcmp(got, want) != 0)
		return fp_err_set(err, FP_EINVAL,
				  "'%s': sha256 %.12s... does not match "
				  "manifest.json (%.12s...)",
				  name, got, want);
	return FP_OK;
}

int fp_bundle_verify(const char *dir, const char *signing_key,
		     struct fp_err *err)
{
	static const char *const skip[] = {FP_BUNDLE_MANIFEST, NULL};
	char path[4096], *text = NULL;
	struct fp_artifacts present = {NULL, 0};
	json_error_t jerr;
	json_t *m = NULL, *files;
	const char *schema;
	size_t len = 0;
	int rc;

	if (!dir || !*dir)
		return fp_err_set(err, FP_EINVAL, "bundle verify: no directory");
	if (signing_key && !*signing_key)
		return fp_err_set(err, FP_EINVAL,
				  "bundle verify: the signing key is empty");
	if (fp_path_join(path, sizeof path, dir, FP_BUNDLE_MANIFEST))
		return fp_err_set(err, FP_EINVAL, "bundle verify: path too long");
	rc = fp_read_file(path, MANIFEST_MAX, &text, &len, err);
	if (rc)
		return rc;
	m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!m) {
		rc = fp_err_set(err, FP_EINVAL,
				"manifest.json: invalid JSON at line %d: %s",
				jerr.line, jerr.text);
		goto out;
	}
	schema = json_string_value(json_object_get(m, "schema"));
	files = json_object_get(m, "files");
	if (!schema || strcmp(schema, FP_MANIFEST_SCHEMA) != 0 ||
	    !json_is_array(files)) {
		rc = fp_err_set(err, FP_EINVAL,
				"manifest.json: not a %s manifest",
				FP_MANIFEST_SCHEMA);
		goto out;
	}
	/* The signature first: until it checks out, the list is untrusted. */
	if (signing_key) {
		rc = verify_signature(m, files, signing_key, err);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		rc = verify_file(dir, json_array_get(files, i), err);
		if (rc)
			goto out;
	}
	/* Files nobody listed do not invalidate the bundle (they are not
	 * vouched for either), but an operator should hear about them. */
	if (fp_artifacts_scan(dir, skip, 0, &present, NULL) == FP_OK) {
		for (size_t i = 0; i < present.n; i++) {
			int listed = 0;

			for (size_t j = 0; !listed && j < json_array_size(files);
			     j++) {
				const char *p = json_string_value(json_object_get(
					json_array_get(files, j), "path"));

				listed = p && strcmp(p, present.v[i].name) == 0;
			}
			if (!listed)
				FP_WARN("event=bundle_verify dir=%s "
					"unlisted_file=%s",
					dir, present.v[i].name);
		}
		fp_artifacts_free(&present);
	}
out:
	json_decref(m);
	return rc;
}
