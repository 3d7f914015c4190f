/*
 * pending.c - retry the uploads that failed: `fpdrill upload --pending`.
 *
 * When a run cannot copy its bundle to S3 it keeps the bundle and leaves an
 * FP_BUNDLE_UPLOAD_PENDING marker in it (content: the error). This walks
 * <out_root>/<DR-ID>/<bundle>/, uploads every marked bundle under the key its
 * own report.json implies (drill.id, run_id, started_at through
 * fp_s3_bundle_key(), so the retry lands exactly where the first attempt
 * would have) and removes the marker only after the manifest went up: a
 * crash in between leaves the marker, and uploading again is harmless
 * (PUTs of the same bytes to the same keys).
 *
 * The walk does not follow symlinks (a link in the output tree must not
 * make us upload some other directory) and visits names in byte order, so
 * bundles (named <YYYYMMDDTHHMMSSZ>-<run_id>) go up oldest first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "reports/report_internal.h"

/* Names of the sub-directories of dir, sorted by strcmp. */
struct names {
	char **v;
	size_t n;
};

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	ns->v = NULL;
	ns->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_subdirs(const char *dir, struct names *ns, struct fp_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	ns->v = NULL;
	ns->n = 0;
	if (!d)
		return fp_err_set(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO,
				  "cannot open directory '%s': %s", dir,
				  strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char **nv;

		/* Dot entries are harness state or temp files, never bundles. */
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISDIR(st.st_mode))
			continue;
		nv = realloc(ns->v, (ns->n + 1) * sizeof *nv);
		if (!nv)
			goto nomem;
		ns->v = nv;
		ns->v[ns->n] = strdup(de->d_name);
		if (!ns->v[ns->n])
			goto nomem;
		ns->n++;
	}
	closedir(d);
	if (ns->n)
		qsort(ns->v, ns->n, sizeof *ns->v, cmp_str);
	return FP_OK;
nomem:
	closedir(d);
	names_free(ns);
	return fp_err_set(err, FP_ENOMEM, "out of memory");
}

/* "2026-11-23T18:22:01.123Z" (the report.json form; fraction optional) to
 * ns since the epoch. @returns 0, or -1 when malformed. */
static int parse_iso(const char *s, int64_t *ns)
{
	struct tm tm;
	int y, mo, d, h, mi, se, n = 0, ms = 0, digits = 0;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se,
		   &n) != 6 || n != 19)
		return -1;
	s += n;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*s - '0');
		if (!digits)
			return -1;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(s, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*ns = (int64_t)t * FP_NS_PER_S + (int64_t)ms * FP_NS_PER_MS;
	return 0;
}

/* The S3 key prefix of the bundle in dir, from its report.json. */
static int key_of(const struct fp_s3_conf *c, const char *dir, char *key,
		  size_t keysz, struct fp_err *err)
{
	char path[4096], *text = NULL;
	const char *drill, *run, *started;
	size_t len = 0;
	json_error_t jerr;
	json_t *j;
	int64_t t0;
	int rc;

	if (fp_path_join(path, sizeof path, dir, FP_BUNDLE_REPORT_JSON))
		return fp_err_set(err, FP_EINVAL, "path too long");
	rc = fp_read_file(path, FP_REPORT_DOC_MAX, &text, &len, err);
	if (rc)
		return rc;
	j = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!j)
		return fp_err_set(err, FP_EINVAL,
				  "report.json: invalid JSON at line %d: %s",
				  jerr.line, jerr.text);
	drill = json_string_value(json_object_get(json_object_get(j, "drill"),
						  "id"));
	run = json_string_value(json_object_get(j, "run_id"));
	started = json_string_value(json_object_get(j, "started_at"));
	if (!drill || !run || !started)
		rc = fp_err_set(err, FP_EINVAL,
				"report.json lacks drill.id, run_id or "
				"started_at");
	else if (parse_iso(started, &t0))
		rc = fp_err_set(err, FP_EINVAL,
				"report.json: bad started_at '%s'", started);
	else if (fp_s3_bundle_key(c, drill, t0, run, key, keysz))
		rc = fp_err_set(err, FP_EINVAL,
				"report.json: drill id '%s' or run id '%s' "
				"cannot form an S3 key",
				drill, run);
	json_decref(j);
	return rc;
}

/* One marked bundle: upload, then drop the marker durably. */
static int upload_one(const struct fp_s3_conf *c, const char *dir,
		      const char *marker, char *key, size_t keysz,
		      struct fp_err *err)
{
	int rc = key_of(c, dir, key, keysz, err);

	if (!rc)
		rc = fp_s3_upload_bundle(c, dir, key, err);
	if (rc)
		return rc;
	if (unlink(marker) && errno != ENOENT)
		return fp_err_set(err, FP_EIO,
				  "uploaded, but cannot remove '%s': %s", marker,
				  strerror(errno));
	/* Without the fsync a crash could bring the marker back and the
	 * bundle would be uploaded twice (harmless, but noisy). */
	return fp_fsync_dir_of(marker, err);
}

int fp_s3_upload_pending(const struct fp_s3_conf *c, const char *out_root,
			 int *uploaded, int *failed, FILE *report,
			 struct fp_err *err)
{
	struct names drills = {NULL, 0};
	struct fp_err first = {0};
	int n_ok = 0, n_bad = 0, rc;

	if (uploaded)
		*uploaded = 0;
	if (failed)
		*failed = 0;
	if (!c || !out_root || !*out_root)
		return fp_err_set(err, FP_EINVAL,
				  "upload pending: no S3 config or output root");
	rc = list_subdirs(out_root, &drills, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < drills.n && rc != FP_ENOMEM; i++) {
		struct names bundles = {NULL, 0};
		char ddir[4096];

		if (fp_path_join(ddir, sizeof ddir, out_root, drills.v[i]) ||
		    list_subdirs(ddir, &bundles, NULL))
			continue;
		for (size_t j = 0; j < bundles.n; j++) {
			char bdir[4096], marker[4200], key[1024];
			struct fp_err e = {0};
			struct stat st;
			int x;

			if (fp_path_join(bdir, sizeof bdir, ddir, bundles.v[j]) ||
			    fp_path_join(marker, sizeof marker, bdir,
					 FP_BUNDLE_UPLOAD_PENDING) ||
			    lstat(marker, &st) || !S_ISREG(st.st_mode))
				continue;
			key[0] = '\0';
			x = upload_one(c, bdir, marker, key, sizeof key, &e);
			if (!x) {
				n_ok++;
				FP_INFO("event=pending_uploaded bundle=%s key=%s",
					bdir, key);
				if (report)
					fprintf(report,
						"uploaded %s/%s -> s3://%s/%s/\n",
						drills.v[i], bundles.v[j],
						c->bucket ? c->bucket : "", key);
				continue;
			}
			n_bad++;
			if (!first.rc)
				first = e;
			FP_ERROR("event=pending_upload_failed bundle=%s err=\"%s\"",
				 bdir, e.msg);
			if (report)
				fprintf(report, "FAILED   %s/%s: %s\n",
					drills.v[i], bundles.v[j], e.msg);
			/* The marker keeps the latest reason, for the next
			 * operator who looks. */
			if (x != FP_ENOMEM)
				fp_write_file_atomic(marker, e.msg,
						     strlen(e.msg), NULL);
			else
				rc = FP_ENOMEM;
		}
		names_free(&bundles);
	}
	names_free(&drills);
	if (report)
		fflush(report);
	if (uploaded)
		*uploaded = n_ok;
	if (failed)
		*failed = n_bad;
	if (!n_bad)
		return FP_OK;
	return fp_err_set(err, first.rc, "%d of %d pending bundles failed to "
					 "upload; first: %s",
			  n_bad, n_bad + n_ok, first.msg);
}
