/*
 * fp_fs.h - small file helpers the bundle writers and the fault journal need:
 * create directories, write a file atomically and durably (temp file, fsync,
 * rename, fsync of the directory), read a whole file with a size cap.
 */
#ifndef FP_FS_H
#define FP_FS_H

#include <stddef.h>

#include "harness/core/fp_error.h"

/* @brief mkdir -p with the given mode; existing directories are fine. */
int fp_mkdir_p(const char *path, int mode, struct fp_err *err);

/* @brief Write data to path atomically: readers see the old file or the new
 *        one, never a torn one; the data is on disk when this returns 0. */
int fp_write_file_atomic(const char *path, const void *data, size_t len,
			 struct fp_err *err);

/* @brief Read a whole file (at most max bytes, else FP_EIO).
 * @param out set to a NUL-terminated buffer the caller frees with free(). */
int fp_read_file(const char *path, size_t max, char **out, size_t *len,
		 struct fp_err *err);

/* @brief fsync the directory that holds path (after a create or rename). */
int fp_fsync_dir_of(const char *path, struct fp_err *err);

/* @brief Join dir and name into out ("dir/name"); FP_EINVAL if it won't fit. */
int fp_path_join(char *out, size_t outsz, const char *dir, const char *name);

/* @brief Directory part of path into out ("." when there is none). */
void fp_path_dirname(const char *path, char *out, size_t outsz);

#endif
