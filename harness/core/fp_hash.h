/*
 * fp_hash.h - SHA-256, HMAC-SHA-256 and random identifiers (OpenSSL
 * libcrypto). Digests are exchanged as lowercase hex strings because that is
 * how they appear in the platform contract, manifests and SigV4.
 */
#ifndef FP_HASH_H
#define FP_HASH_H

#include <stddef.h>

#include "harness/core/fp_error.h"

#define FP_SHA256_HEX 65 /* 64 hex digits + NUL */

/* @brief n bytes as 2n lowercase hex digits and a NUL (out: 2n + 1). */
void fp_hex_encode(const void *data, size_t n, char *out);

void fp_sha256_hex(const void *data, size_t len, char out[FP_SHA256_HEX]);
int fp_sha256_file_hex(const char *path, char out[FP_SHA256_HEX],
		       struct fp_err *err);
void fp_hmac_sha256_hex(const void *key, size_t keylen, const void *data,
			size_t len, char out[FP_SHA256_HEX]);

/* @brief nbytes random bytes from the kernel as 2*nbytes hex digits. */
int fp_random_hex(char *out, size_t nbytes, struct fp_err *err);

#endif
