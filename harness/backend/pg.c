/* pg.c - libpq wrapper for the harness (see fp_pg.h). */
#include "harness/backend/fp_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fp_pg {
	PGconn *conn;
};

struct fp_rows {
	PGresult *res;
};

/* NOTICEs (e.g. from CREATE ... IF NOT EXISTS) would print on stderr. */
static void quiet_notice(void *arg, const char *message)
{
}

static void trim_msg(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

int fp_pg_connect(const char *conninfo, const char *password,
		  struct fp_pg **out, struct fp_err *err)
{
	const char *keys[4] = {"dbname", "password", "connect_timeout", NULL};
	const char *vals[4] = {conninfo, password, "5", NULL};
	struct fp_pg *pg;
	char msg[512];

	*out = NULL;
	if (!password) {
		keys[1] = "connect_timeout";
		vals[1] = "5";
		keys[2] = NULL;
		vals[2] = NULL;
	}
	pg = calloc(1, sizeof *pg);
	if (!pg)
		return fp_err_set(err, FP_ENOMEM, "postgres handle");
	/* expand_dbname=1: the dbname value is parsed as a conninfo string. */
	pg->conn = PQconnectdbParams(keys, vals, 1);
	if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
		snprintf(msg, sizeof msg, "%s",
			 pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
		trim_msg(msg);
		PQfinish(pg->conn);
		free(pg);
		return fp_err_set(err, FP_EUNREACHABLE, "postgres: %s", msg);
	}
	PQsetNoticeProcessor(pg->conn, quiet_notice, NULL);
	*out = pg;
	return FP_OK;
}

void fp_pg_close(struct fp_pg *pg)
{
	if (!pg)
		return;
	PQfinish(pg->conn);
	free(pg);
}

static int result_error(struct fp_pg *pg, PGresult *res, const char *what,
			struct fp_err *err)
{
	char msg[512];
	int lost = PQstatus(pg->conn) != CONNECTION_OK;

	snprintf(msg, sizeof msg, "%s",
		 res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
	trim_msg(msg);
	PQclear(res);
	return fp_err_set(err, lost ? FP_EUNREACHABLE : FP_EBACKEND,
			  "postgres %s: %s", what, msg);
}

int fp_pg_exec(struct fp_pg *pg, const char *sql, struct fp_err *err)
{
	PGresult *res = PQexec(pg->conn, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return result_error(pg, res, "statement", err);
	PQclear(res);
	return FP_OK;
}

int fp_pg_query(struct fp_pg *pg, const char *sql, int nparams,
		const char *const *params, struct fp_rows **out,
		struct fp_err *err)
{
	PGresult *res;

	*out = NULL;
	res = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL,
			   0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_error(pg, res, "query", err);
	*out = malloc(sizeof **out);
	if (!*out) {
		PQclear(res);
		return fp_err_set(err, FP_ENOMEM, "query result");
	}
	(*out)->res = res;
	return FP_OK;
}

int fp_pg_query_i64(struct fp_pg *pg, const char *sql, int nparams,
		    const char *const *params, int64_t *out,
		    struct fp_err *err)
{
	struct fp_rows *r;
	const char *v;
	int rc = fp_pg_query(pg, sql, nparams, params, &r, err);

	if (rc)
		return rc;
	v = fp_rows_get(r, 0, 0);
	*out = v ? strtoll(v, NULL, 10) : 0;
	fp_rows_free(r);
	return FP_OK;
}

size_t fp_rows_count(const struct fp_rows *r)
{
	return r ? (size_t)PQntuples(r->res) : 0;
}

const char *fp_rows_get(const struct fp_rows *r, size_t row, size_t col)
{
	if (!r || row >= (size_t)PQntuples(r->res) ||
	    col >= (size_t)PQnfields(r->res) ||
	    PQgetisnull(r->res, (int)row, (int)col))
		return NULL;
	return PQgetvalue(r->res, (int)row, (int)col);
}

void fp_rows_free(struct fp_rows *r)
{
	if (!r)
		return;
	PQclear(r->res);
	free(r);
}

int fp_pg_copy_begin(struct fp_pg *pg, const char *copy_sql,
		     struct fp_err *err)
{
	PGresult *res = PQexec(pg->conn, copy_sql);

	if (!res || PQresultStatus(res) != PGRES_COPY_IN)
		return result_error(pg, res, "copy", err);
	PQclear(res);
	return FP_OK;
}

int fp_pg_copy_put(struct fp_pg *pg, const char *buf, size_t len,
		   struct fp_err *err)
{
	/* libpq takes an int length: feed very large buffers in slices. */
	while (len > 0) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;

		if (PQputCopyData(pg->conn, buf, n) != 1)
			return result_error(pg, NULL, "copy", err);
		buf += n;
		len -= (size_t)n;
	}
	return FP_OK;
}

int fp_pg_copy_end(struct fp_pg *pg, const char *client_error, int64_t *rows,
		   struct fp_err *err)
{
	PGresult *res;
	int rc = FP_OK;

	if (PQputCopyEnd(pg->conn, client_error) != 1)
		return result_error(pg, NULL, "copy end", err);
	res = PQgetResult(pg->conn);
	if (client_error) {
		/* The server's answer is the expected "COPY ... aborted". */
		PQclear(res);
	} else if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = result_error(pg, res, "copy", err);
	} else {
		if (rows)
			*rows = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
	while ((res = PQgetResult(pg->conn)))
		PQclear(res);
	return rc;
}

int fp_pg_copy_in(struct fp_pg *pg, const char *copy_sql, const char *path,
		  int64_t *rows, struct fp_err *err)
{
	char buf[1 << 16];
	FILE *f;
	size_t r;
	int rc;

	f = fopen(path, "rb");
	if (!f)
		return fp_err_set(err, FP_EIO, "cannot open '%s': %s", path,
				  strerror(errno));
	rc = fp_pg_copy_begin(pg, copy_sql, err);
	if (rc) {
		fclose(f);
		return rc;
	}
	while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
		rc = fp_pg_copy_put(pg, buf, r, err);
		if (rc) {
			struct fp_err e2 = {0};

			fclose(f);
			fp_pg_copy_end(pg, "client error", NULL, &e2);
			return rc;
		}
	}
	fclose(f);
	return fp_pg_copy_end(pg, NULL, rows, err);
}

int fp_pg_quote_ident(const char *qualified, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz < 3)
		return FP_EINVAL;
	out[o++] = '"';
	for (const char *p = qualified; *p; p++) {
		if (o + 4 >= outsz)
			return FP_EINVAL;
		if (*p == '.') {
			out[o++] = '"';
			out[o++] = '.';
			out[o++] = '"';
		} else if (*p == '"') {
			out[o++] = '"';
			out[o++] = '"';
		} else {
			out[o++] = *p;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return FP_OK;
}
