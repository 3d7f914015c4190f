/*
 * fp_pg.h - the harness's thin wrapper of libpq: connect with a password
 * that came from a secret reference, run statements, read small result sets
 * as strings, and stream a file in with COPY. Errors carry the server's
 * message; the password never appears in one.
 *
 * Ownership: struct fp_pg and struct fp_rows are opaque; free them with
 * fp_pg_close() / fp_rows_free(). Strings returned by fp_rows_get() are
 * borrowed and live until fp_rows_free().
 */
#ifndef FP_PG_H
#define FP_PG_H

#include <stddef.h>
#include <stdint.h>

#include "harness/core/fp_error.h"

struct fp_pg;
struct fp_rows;

/*
 * @param password may be NULL (libpq then uses PGPASSFILE etc.).
 * @returns FP_EUNREACHABLE when the server cannot be reached or refuses.
 */
int fp_pg_connect(const char *conninfo, const char *password,
		  struct fp_pg **out, struct fp_err *err);
void fp_pg_close(struct fp_pg *pg);

/* @brief Run a statement (or several, without parameters). */
int fp_pg_exec(struct fp_pg *pg, const char *sql, struct fp_err *err);

/* @brief Run a query with text parameters; rows come back as strings. */
int fp_pg_query(struct fp_pg *pg, const char *sql, int nparams,
		const char *const *params, struct fp_rows **out,
		struct fp_err *err);
/* @brief A query returning one integer (NULL reads as 0). */
int fp_pg_query_i64(struct fp_pg *pg, const char *sql, int nparams,
		    const char *const *params, int64_t *out,
		    struct fp_err *err);

size_t fp_rows_count(const struct fp_rows *r);
/* @returns the value or NULL for SQL NULL / out of range. */
const char *fp_rows_get(const struct fp_rows *r, size_t row, size_t col);
void fp_rows_free(struct fp_rows *r);

/* @brief COPY table (columns) FROM STDIN, streaming the file in text format. */
int fp_pg_copy_in(struct fp_pg *pg, const char *copy_sql, const char *path,
		  int64_t *rows, struct fp_err *err);

/*
 * @brief The same COPY, fed by the caller: begin, put any number of chunks
 *        (rows may span chunks), end. A caller that gives up after begin
 *        must still call fp_pg_copy_end with a client_error, which makes the
 *        server abort the COPY and leaves the connection usable.
 */
int fp_pg_copy_begin(struct fp_pg *pg, const char *copy_sql,
		     struct fp_err *err);
int fp_pg_copy_put(struct fp_pg *pg, const char *buf, size_t len,
		   struct fp_err *err);
/* @param client_error NULL to commit the COPY, else why it is abandoned. */
int fp_pg_copy_end(struct fp_pg *pg, const char *client_error, int64_t *rows,
		   struct fp_err *err);

/* @brief Quote an identifier ("schema.table" stays two identifiers). */
int fp_pg_quote_ident(const char *qualified, char *out, size_t outsz);

#endif
