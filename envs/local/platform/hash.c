/* SHA-256 helpers: the payload hash is the platform's half of the dedupe law (same tuple with a
 * different hash is an anomaly), so its canonical form must never drift between components. */
#include "rp_core.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

void rp_sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  /* EVP_Digest rather than SHA256(): the low-level API is deprecated in OpenSSL 3. */
  if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
    memset(out, '0', 64); /* cannot happen with a working libcrypto; never leave it undefined */
    out[64] = '\0';
    return;
  }
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

bool rp_payload_hash(const json_t *payload, char out[65]) {
  char *s = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
  if (!s) return false;
  rp_sha256_hex(s, strlen(s), out);
  free(s);
  return true;
}
