/* fp_fs.c - durable file helpers (see fp_fs.h). */
#include "harness/core/fp_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fp_mkdir_p(const char *path, int mode, struct fp_err *err)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof tmp)
		return fp_err_set(err, FP_EINVAL, "bad directory path '%s'",
				  path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
			return fp_err_set(err, FP_EIO, "cannot create '%s': %s",
					  tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
		return fp_err_set(err, FP_EIO, "cannot create '%s': %s", tmp,
				  strerror(errno));
	return FP_OK;
}

void fp_path_dirname(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, outsz, ".");
	else if (slash == path)
		snprintf(out, outsz, "/");
	else
		snprintf(out, outsz, "%.*s", (int)(slash - path), path);
}

int fp_fsync_dir_of(const char *path, struct fp_err *err)
{
	char dir[4096];
	int fd;

	fp_path_dirname(path, dir, sizeof dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fp_err_set(err, FP_EIO, "cannot open '%s': %s", dir,
				  strerror(errno));
	if (fsync(fd) && errno != EINVAL) {
		int e = errno;

		close(fd);
		return fp_err_set(err, FP_EIO, "fsync '%s': %s", dir,
				  strerror(e));
	}
	close(fd);
	return FP_OK;
}

int fp_write_file_atomic(const char *path, const void *data, size_t len,
			 struct fp_err *err)
{
	char tmp[4200];
	const char *p = data;
	int fd;

	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fp_err_set(err, FP_EIO, "cannot create '%s': %s", tmp,
				  strerror(errno));
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;

			close(fd);
			unlink(tmp);
			return fp_err_set(err, FP_EIO, "write '%s': %s", tmp,
					  strerror(e));
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) || close(fd)) {
		int e = errno;

		unlink(tmp);
		return fp_err_set(err, FP_EIO, "fsync '%s': %s", tmp,
				  strerror(e));
	}
	if (rename(tmp, path)) {
		int e = errno;

		unlink(tmp);
		return fp_err_set(err, FP_EIO, "rename to '%s': %s", path,
				  strerror(e));
	}
	return fp_fsync_dir_of(path, err);
}

int fp_read_file(const char *path, size_t max, char **out, size_t *len,
		 struct fp_err *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return fp_err_set(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO,
				  "cannot open '%s': %s", path,
				  strerror(errno));
	for (;;) {
		size_t r;

		if (cap - n < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return fp_err_set(err, FP_ENOMEM,
						  "reading '%s'", path);
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n > max) {
			free(buf);
			fclose(f);
			return fp_err_set(err, FP_EIO,
					  "'%s' is larger than %zu bytes", path,
					  max);
		}
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return fp_err_set(err, FP_EIO, "read '%s' failed", path);
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return FP_OK;
}

int fp_path_join(char *out, size_t outsz, const char *dir, const char *name)
{
	int n;

	if (name[0] == '/' || !dir || !dir[0])
		n = snprintf(out, outsz, "%s", name);
	else
		n = snprintf(out, outsz, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= outsz) ? FP_EINVAL : FP_OK;
}
