/*
 * test_offsets_tsv.c - the rows of offsets.tsv as the sampler and the final
 * snapshot write them: the columns docs/report-schema.md promises, an empty
 * field for a partition without a committed offset (NULL once loaded), and
 * names quoted only when COPY's CSV dialect needs it. No network.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/run/run_int.h"

Test(offsets_tsv, one_row_per_partition_empty_when_uncommitted)
{
	struct fp_part_offsets po[2] = {
		{.partition = 0, .low = 0, .high = 120, .committed = 117},
		{.partition = 3, .low = 5, .high = 9,
		 .committed = FP_KAFKA_NO_OFFSET},
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	fp_offsets_write(f, 1250, "sample", "fp-decision", "t.v1", po, 2);
	fp_offsets_write(f, 9000, "final", "fp-decision", "t.v1", po, 1);
	fclose(f);
	cr_expect_str_eq(buf, "1250\tsample\tfp-decision\tt.v1\t0\t117\t120\n"
			      "1250\tsample\tfp-decision\tt.v1\t3\t\t9\n"
			      "9000\tfinal\tfp-decision\tt.v1\t0\t117\t120\n");
	free(buf);
}

Test(offsets_tsv, names_quoted_only_when_needed)
{
	char out[64];

	fp_tsv_field(out, sizeof out, "fp-decision");
	cr_expect_str_eq(out, "fp-decision");
	fp_tsv_field(out, sizeof out, "a\tb");
	cr_expect_str_eq(out, "\"a\tb\"");
	fp_tsv_field(out, sizeof out, "say \"hi\"");
	cr_expect_str_eq(out, "\"say \"\"hi\"\"\"");
	/* truncated, but still one closed field */
	fp_tsv_field(out, 8, "\"aaaaaaaaaa");
	cr_expect_eq(out[0], '"');
	cr_expect_eq(out[strlen(out) - 1], '"');
	cr_expect_lt(strlen(out), 8u);
}
