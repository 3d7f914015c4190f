/* fp_hash.c - digests and random ids (see fp_hash.h). */
#include "harness/core/fp_hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void fp_hex_encode(const void *data, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	const unsigned char *d = data;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void fp_sha256_hex(const void *data, size_t len, char out[FP_SHA256_HEX])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256(data, len, d);
	fp_hex_encode(d, sizeof d, out);
}

int fp_sha256_file_hex(const char *path, char out[FP_SHA256_HEX],
		       struct fp_err *err)
{
	unsigned char d[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int dl = 0;
	EVP_MD_CTX *ctx;
	FILE *f;
	size_t r;

	f = fopen(path, "rb");
	if (!f)
		return fp_err_set(err, FP_EIO, "cannot open '%s': %s", path,
				  strerror(errno));
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		fclose(f);
		return fp_err_set(err, FP_EINTERNAL, "sha256 init failed");
	}
	while ((r = fread(buf, 1, sizeof buf, f)) > 0)
		EVP_DigestUpdate(ctx, buf, r);
	if (ferror(f)) {
		EVP_MD_CTX_free(ctx);
		fclose(f);
		return fp_err_set(err, FP_EIO, "read '%s' failed", path);
	}
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(ctx);
	fclose(f);
	fp_hex_encode(d, dl, out);
	return FP_OK;
}

void fp_hmac_sha256_hex(const void *key, size_t keylen, const void *data,
			size_t len, char out[FP_SHA256_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	HMAC(EVP_sha256(), key, (int)keylen, data, len, d, &dl);
	fp_hex_encode(d, dl, out);
}

int fp_random_hex(char *out, size_t nbytes, struct fp_err *err)
{
	unsigned char buf[64];
	size_t got = 0;

	if (nbytes > sizeof buf)
		return fp_err_set(err, FP_EINVAL, "random id too long");
	while (got < nbytes) {
		ssize_t r = getrandom(buf + got, nbytes - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fp_err_set(err, FP_EIO, "getrandom: %s",
					  strerror(errno));
		got += (size_t)r;
	}
	fp_hex_encode(buf, nbytes, out);
	return FP_OK;
}
