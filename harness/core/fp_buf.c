/* fp_buf.c - capped growable buffer (see fp_buf.h). */
#include "harness/core/fp_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_buf_init(struct fp_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int reserve(struct fp_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return FP_ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return FP_OK;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	p = realloc(b->data, ncap);
	if (!p)
		return FP_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return FP_OK;
}

int fp_buf_append(struct fp_buf *b, const void *p, size_t n)
{
	if (reserve(b, n))
		return FP_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return FP_OK;
}

int fp_buf_puts(struct fp_buf *b, const char *s)
{
	return fp_buf_append(b, s, strlen(s));
}

int fp_buf_printf(struct fp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return FP_EINVAL;
	if (reserve(b, (size_t)n))
		return FP_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return FP_OK;
}

void fp_buf_reset(struct fp_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void fp_buf_release(struct fp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

char *fp_buf_detach(struct fp_buf *b)
{
	char *p = b->data;

	if (!p)
		p = strdup("");
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

const char *fp_buf_cstr(const struct fp_buf *b)
{
	return b->data ? b->data : "";
}

int fp_buf_put_uri(struct fp_buf *b, const char *s, int keep_slash)
{
	static const char hx[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char e[3] = {'%', hx[*p >> 4], hx[*p & 15]};
		int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			   *p == '.' || *p == '~' || (keep_slash && *p == '/');

		if (keep ? fp_buf_append(b, p, 1) : fp_buf_append(b, e, 3))
			return -1;
	}
	return 0;
}
