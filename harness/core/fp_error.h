/*
 * fp_error.h - the harness's one error vocabulary.
 *
 * Every fallible function returns an enum fp_rc and, when the caller passes a
 * struct fp_err, fills in a human message. The struct is caller-owned and
 * fixed-size so reporting an error never allocates. A violated invariant is a
 * verdict, never an error: these codes are for things that stopped the harness
 * from judging at all.
 */
#ifndef FP_ERROR_H
#define FP_ERROR_H

#include <stdarg.h>

/* X-macro list: one place generates the enum, the names and the texts. */
#define FP_RC_MAP(XX)                                                  \
	XX(OK, "ok")                                                   \
	XX(EINVAL, "invalid argument")                                 \
	XX(ENOMEM, "out of memory")                                    \
	XX(EIO, "input/output error")                                  \
	XX(ESPEC, "invalid spec or profile")                           \
	XX(EUSAGE, "usage error")                                      \
	XX(EUNREACHABLE, "target unreachable")                         \
	XX(ETIMEOUT, "timed out")                                      \
	XX(EBACKEND, "backend refused the request")                    \
	XX(ENOTFOUND, "not found")                                     \
	XX(ECANCELED, "canceled")                                      \
	XX(EINTERNAL, "internal error")

enum fp_rc {
#define FP_RC_ENUM(name, text) FP_##name,
	FP_RC_MAP(FP_RC_ENUM)
#undef FP_RC_ENUM
	FP_RC_COUNT
};

#define FP_ERR_MSG_MAX 512

struct fp_err {
	enum fp_rc rc;
	int retriable; /* 1 when the same call may succeed if repeated */
	char msg[FP_ERR_MSG_MAX];
};

/*
 * @brief Record an error and return its code, so callers can write
 *        `return fp_err_set(err, FP_EIO, "cannot open '%s'", path);`.
 * @param err may be NULL (the code is still returned).
 */
int fp_err_set(struct fp_err *err, enum fp_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int fp_err_vset(struct fp_err *err, enum fp_rc rc, const char *fmt,
		va_list ap);

/* @brief Prepend context ("loading spec: ") to an existing message. */
int fp_err_prefix(struct fp_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void fp_err_clear(struct fp_err *err);

/* @returns a static string: "FP_ESPEC" style name / human text. */
const char *fp_rc_name(enum fp_rc rc);
const char *fp_rc_str(enum fp_rc rc);

#endif
