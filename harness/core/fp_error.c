/* fp_error.c - error codes and caller-owned messages (see fp_error.h). */
#include "harness/core/fp_error.h"

#include <stdio.h>
#include <string.h>

static const char *const rc_names[] = {
#define FP_RC_NAME(name, text) "FP_" #name,
	FP_RC_MAP(FP_RC_NAME)
#undef FP_RC_NAME
};

static const char *const rc_texts[] = {
#define FP_RC_TEXT(name, text) text,
	FP_RC_MAP(FP_RC_TEXT)
#undef FP_RC_TEXT
};

int fp_err_vset(struct fp_err *err, enum fp_rc rc, const char *fmt,
		va_list ap)
{
	if (err) {
		err->rc = rc;
		err->retriable = 0;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	}
	return rc;
}

int fp_err_set(struct fp_err *err, enum fp_rc rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fp_err_vset(err, rc, fmt, ap);
	va_end(ap);
	return rc;
}

int fp_err_prefix(struct fp_err *err, const char *fmt, ...)
{
	char head[FP_ERR_MSG_MAX], old[FP_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return FP_OK;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	snprintf(err->msg, sizeof err->msg, "%s%s", head, old);
	return err->rc;
}

void fp_err_clear(struct fp_err *err)
{
	if (err) {
		err->rc = FP_OK;
		err->retriable = 0;
		err->msg[0] = '\0';
	}
}

const char *fp_rc_name(enum fp_rc rc)
{
	return (unsigned)rc < FP_RC_COUNT ? rc_names[rc] : "FP_E?";
}

const char *fp_rc_str(enum fp_rc rc)
{
	return (unsigned)rc < FP_RC_COUNT ? rc_texts[rc] : "unknown error";
}
