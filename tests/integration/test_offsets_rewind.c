/*
 * test_offsets_rewind.c - committed_offsets_monotonic on the real stack: a
 * rewind of the decision group's committed offsets that the run did not make
 * fails the check, with the partition and the move as examples. While the
 * fixture drill (fixtures/rewind-behind.yaml) holds the decision consumers
 * paused, a thread of this test moves every partition's committed offset a
 * few records back through the Kafka admin API, as an operator's reset or a
 * stale commit would. The drill's own replay (DR-02) is the pass case
 * (test_dr02.c); this is the proof that the pass is not vacuous.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "drill_util.h"
#include "harness/backend/fp_kafka.h"

#define GROUP "fp-decision"
#define TOPIC "fp.bus.traffic.fraud.v1"
#define BACK 5

struct rewinder {
	int moved;        /* partitions moved back */
	char error[512];
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Wait for the drill's pause (the group going from members to Empty), then
 * move every committed offset BACK records back. */
static void *rewind_main(void *arg)
{
	struct rewinder *w = arg;
	char *bootstrap = it_endpoint("FPD_KAFKA_BOOTSTRAP");
	struct fp_kafka *k = NULL;
	struct fp_part_offsets *po = NULL;
	struct fp_err err = {0};
	int seen_members = 0;
	size_t n = 0;
	int64_t lag;

	if (fp_kafka_new(bootstrap, NULL, 5000, &k, &err)) {
		snprintf(w->error, sizeof w->error, "connect: %s", err.msg);
		goto out;
	}
	for (int i = 0; i < 900; i++) { /* 90 s */
		char state[64] = "";
		int members = -1;

		if (fp_kafka_group_state(k, GROUP, state, sizeof state,
					 &members, &err) == FP_OK) {
			if (members > 0)
				seen_members = 1;
			else if (seen_members && strcmp(state, "Empty") == 0)
				break;
		}
		sleep_ms(100);
	}
	if (fp_kafka_group_lag(k, GROUP, TOPIC, &po, &n, &lag, &err)) {
		snprintf(w->error, sizeof w->error, "offsets: %s", err.msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (po[i].committed == FP_KAFKA_NO_OFFSET ||
		    po[i].committed - BACK < po[i].low) {
			po[i].committed = FP_KAFKA_NO_OFFSET;
			continue;
		}
		po[i].committed -= BACK;
		w->moved++;
	}
	/* only the partitions that can go back (the others keep theirs) */
	for (size_t i = 0, j = 0; i < n; i++)
		if (po[i].committed != FP_KAFKA_NO_OFFSET)
			po[j++] = po[i];
	if (w->moved &&
	    fp_kafka_group_reset(k, GROUP, TOPIC, po, (size_t)w->moved, &err))
		snprintf(w->error, sizeof w->error, "reset: %s", err.msg);
out:
	free(po);
	fp_kafka_free(k);
	free(bootstrap);
	return NULL;
}

Test(offsets_rewind, rewind_outside_a_replay_fails_monotonic, .timeout = 300)
{
	struct rewinder w = {0};
	struct drill_run r;
	pthread_t th;
	json_t *inv, *ex;

	cr_assert_eq(pthread_create(&th, NULL, rewind_main, &w), 0);
	r = run_drill_args("tests/integration/fixtures/rewind-behind.yaml",
			   "--no-upload");
	pthread_join(th, NULL);
	cr_assert_str_empty(w.error, "%s", w.error);
	cr_assert_geq(w.moved, 1, "no partition had %d records to go back",
		      BACK);
	cr_expect_eq(r.exit_code, 1, "exit %d", r.exit_code);
	inv = invariant(r.report, "committed_offsets_monotonic");
	cr_expect_str_eq(json_string_value(json_object_get(inv, "status")),
			 "fail");
	/* each moved partition shows its drop once (or not at all when the
	 * consumer caught up within one sample period) */
	cr_expect(json_integer_value(json_object_get(inv, "count")) >= 1 &&
			  json_integer_value(json_object_get(inv, "count")) <=
				  w.moved,
		  "count %lld, moved %d",
		  (long long)json_integer_value(json_object_get(inv, "count")),
		  w.moved);
	ex = json_array_get(json_object_get(inv, "examples"), 0);
	cr_assert_not_null(ex);
	cr_expect(strstr(json_string_value(ex), TOPIC "[") &&
			  strstr(json_string_value(ex),
				 "(no replay reset in between)"),
		  "%s", json_string_value(ex));
	/* the platform's idempotency absorbed the re-read records: the
	 * rewind is the only thing wrong */
	cr_expect_str_eq(status_of(r.report, "committed_records_decided_once"),
			 "pass");
	cr_expect_str_eq(status_of(r.report, "no_duplicate_decisions"), "pass");
	json_decref(r.report);
}
