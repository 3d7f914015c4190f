/*
 * fp_buf.h - a growable byte buffer with a hard size cap.
 *
 * Data from a backend never grows a buffer without bound: every buffer has a
 * maximum, and an append past it fails with FP_ENOMEM and leaves the buffer
 * as it was. The buffer is always NUL-terminated when data is non-NULL.
 */
#ifndef FP_BUF_H
#define FP_BUF_H

#include <stddef.h>

#include "harness/core/fp_error.h"

struct fp_buf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* hard cap on len */
};

#define FP_BUF_INIT(maxbytes) {NULL, 0, 0, (maxbytes)}

void fp_buf_init(struct fp_buf *b, size_t max);
int fp_buf_append(struct fp_buf *b, const void *p, size_t n);
int fp_buf_puts(struct fp_buf *b, const char *s);
int fp_buf_printf(struct fp_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fp_buf_reset(struct fp_buf *b); /* len = 0, keeps memory */
void fp_buf_release(struct fp_buf *b); /* frees memory, back to init state */
/* @returns the data (caller frees with free()); the buffer is reset. Never
 *          NULL: an empty buffer yields "". NULL only on allocation failure. */
char *fp_buf_detach(struct fp_buf *b);
/*
 * @brief Append s URI-encoded as AWS SigV4 wants it: A-Z a-z 0-9 - _ . ~
 *        kept, every other byte as %XX (upper-case hex); '/' kept too when
 *        keep_slash (an S3 object path), encoded otherwise (a query value).
 */
int fp_buf_put_uri(struct fp_buf *b, const char *s, int keep_slash);
/* @returns data or "" when empty; borrowed, valid until the next change. */
const char *fp_buf_cstr(const struct fp_buf *b);

#endif
