/*
 * test_invariant_table.c - the invariant and injector tables (names unique,
 * summaries present, a doc page for each entry) and the shared three-way
 * judgement every invariant uses.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "injectors/fp_injector.h"
#include "invariants/fp_invariant.h"

static int doc_exists(const char *kind, const char *name)
{
	char path[4096];
	const char *src = getenv("FPDRILL_SOURCE_DIR");

	snprintf(path, sizeof path, "%s/docs/%s/%s.md", src ? src : ".", kind,
		 name);
	return access(path, R_OK) == 0;
}

Test(invariant_table, entries_are_unique_documented)
{
	for (size_t i = 0; i < fp_invariants_count; i++) {
		const struct fp_invariant *a = fp_invariants[i];

		cr_expect(a->summary && a->summary[0], "%s: no summary", a->name);
		cr_expect_not_null(a->check, "%s: no check", a->name);
		cr_expect(doc_exists("invariants", a->name),
			  "docs/invariants/%s.md is missing", a->name);
		for (size_t j = i + 1; j < fp_invariants_count; j++)
			cr_expect_str_neq(a->name, fp_invariants[j]->name);
		cr_expect_eq(fp_invariant_find(a->name), a);
	}
	cr_expect_null(fp_invariant_find("no_such_invariant"));
}

/* 1 when the file reads the ledger table (mentions ctx->ledger), 0 when it
 * does not, -1 when it cannot be read. */
static int source_reads_ledger(const char *file)
{
	char path[4096], *buf;
	const char *src = getenv("FPDRILL_SOURCE_DIR");
	long n;
	int found;
	FILE *f;

	snprintf(path, sizeof path, "%s/invariants/%s", src ? src : ".", file);
	f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	found = strstr(buf, "ctx->ledger") != NULL;
	free(buf);
	return found;
}

/* The judge starts the checks without needs_ledger while the ledger is
 * still loading, so the flag must say exactly which checks read it. */
Test(invariant_table, needs_ledger_matches_the_source)
{
	static const char *const helpers[] = {"with_args.c", "dup_common.c",
					      "corridor_common.c"};

	for (size_t i = 0; i < fp_invariants_count; i++) {
		const struct fp_invariant *a = fp_invariants[i];
		char file[128];
		int reads;

		snprintf(file, sizeof file, "%s.c", a->name);
		reads = source_reads_ledger(file);
		cr_assert_neq(reads, -1, "cannot read invariants/%s", file);
		cr_expect_eq(reads, a->needs_ledger,
			     "%s: needs_ledger = %d but the source %s ctx->ledger",
			     a->name, a->needs_ledger,
			     reads ? "reads" : "never reads");
	}
	/* Helpers take the whole context: they must not read the ledger
	 * behind a flag that says otherwise. */
	for (size_t i = 0; i < sizeof helpers / sizeof *helpers; i++)
		cr_expect_eq(source_reads_ledger(helpers[i]), 0, "%s",
			     helpers[i]);
}

Test(injector_table, entries_are_unique_documented)
{
	for (size_t i = 0; i < fp_injectors_count; i++) {
		const struct fp_injector *a = fp_injectors[i];

		cr_expect(a->summary && a->summary[0], "%s: no summary", a->name);
		cr_expect_not_null(a->apply, "%s: no apply", a->name);
		cr_expect(doc_exists("injectors", a->name),
			  "docs/injectors/%s.md is missing", a->name);
		for (size_t j = i + 1; j < fp_injectors_count; j++)
			cr_expect_str_neq(a->name, fp_injectors[j]->name);
	}
	cr_expect_null(fp_injector_find("no.such"));
}

Test(judge, fail_dominates_and_unknown_needs_nothing_to_judge)
{
	struct fp_check_result r;

	memset(&r, 0, sizeof r);
	fp_check_judge(&r, 2, 10, "duplicates", "events");
	cr_expect_eq(r.status, FP_CHECK_FAIL);
	cr_expect_eq(r.count, 2);
	cr_expect_str_eq(r.observed, "2 duplicates among 10 events");
	cr_expect_str_eq(r.expected, "0 duplicates");

	memset(&r, 0, sizeof r);
	fp_check_judge(&r, 0, 10, "duplicates", "events");
	cr_expect_eq(r.status, FP_CHECK_PASS);

	memset(&r, 0, sizeof r);
	fp_check_judge(&r, 0, 0, "duplicates", "events");
	cr_expect_eq(r.status, FP_CHECK_UNKNOWN);
	cr_expect(strstr(r.detail, "nothing to judge") != NULL);
}

Test(replay_window, validate_rejects_bad_args)
{
	const struct fp_injector *inj = fp_injector_find("kafka.replay_window");
	struct fp_kv ok_items[] = {{"group", "g", {0}}, {"topic", "t", {0}},
				   {"to", "mark:w", {0}}};
	struct fp_kv bad_items[] = {{"group", "g", {0}}, {"topic", "t", {0}},
				    {"to", "earliest", {0}}};
	struct fp_kvlist ok = {ok_items, 3}, bad = {bad_items, 3},
			 missing = {ok_items, 2};
	struct fp_err err = {0};

	cr_assert_not_null(inj);
	cr_expect_eq(inj->validate(&ok, &err), FP_OK);
	cr_expect_eq(inj->validate(&bad, &err), FP_ESPEC);
	cr_expect(strstr(err.msg, "mark:NAME") != NULL, "%s", err.msg);
	cr_expect_eq(inj->validate(&missing, &err), FP_ESPEC);
	cr_expect_null(inj->revert, "a replay is one-shot");
}
