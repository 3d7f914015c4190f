/*
 * kafka_replay_window.c - replay a window of the traffic topic through a
 * consumer group by moving the group's committed offsets back to a mark.
 *
 * The broker only lets an admin client commit offsets for a group that has no
 * active member, so the scenario stops the decision consumers first (an
 * action such as pause_decisions); this injector waits, bounded, for the
 * group to become Empty, then resets every partition to the offset the mark
 * recorded. It is a one-shot: once the consumers resume, the offsets move on
 * by themselves, so there is nothing to revert.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_clock.h"
#include "harness/core/fp_log.h"
#include "injectors/fp_injector.h"

static int validate(const struct fp_kvlist *with, struct fp_err *err)
{
	const char *to = fp_kv_get(with, "to");
	const char *wait = fp_kv_get(with, "wait_empty");
	int64_t ns;

	if (!fp_kv_get(with, "group") || !fp_kv_get(with, "topic") || !to)
		return fp_err_set(err, FP_ESPEC,
				  "kafka.replay_window needs group, topic and "
				  "to (mark:NAME)");
	if (strncmp(to, "mark:", 5) != 0)
		return fp_err_set(err, FP_ESPEC,
				  "kafka.replay_window: to must be mark:NAME, "
				  "got \"%s\"",
				  to);
	if (wait && fp_duration_parse(wait, &ns))
		return fp_err_set(err, FP_ESPEC,
				  "kafka.replay_window: wait_empty must be a "
				  "duration, got \"%s\"",
				  wait);
	return FP_OK;
}

static int wait_group_empty(struct fp_kafka *k, const char *group,
			    int64_t timeout_ns, struct fp_err *err)
{
	int64_t deadline = fp_mono_ns() + timeout_ns;
	char state[64] = "";
	int members = -1;

	for (;;) {
		int rc = fp_kafka_group_state(k, group, state, sizeof state,
					      &members, err);

		if (rc == FP_OK && (strcmp(state, "Empty") == 0 ||
				    strcmp(state, "Dead") == 0))
			return FP_OK;
		if (fp_mono_ns() > deadline)
			return fp_err_set(err, FP_ETIMEOUT,
					  "group '%s' still has %d member(s) "
					  "(state %s): stop its consumers first",
					  group, members, state);
		fp_sleep_ns(200 * FP_NS_PER_MS, NULL);
	}
}

/* Tell the run which partitions moved and from where, so the judging can
 * tell this replay from a regression. Only after the broker took the whole
 * reset: on an error the drill aborts and nothing is judged. */
static void report_moves(struct fp_inject_ctx *ctx, const char *group,
			 const char *topic, const struct fp_offset_mark *m,
			 const struct fp_part_offsets *now, size_t n,
			 int64_t t_start)
{
	if (!ctx->offsets_moved)
		return;
	for (size_t j = 0; j < m->n; j++) {
		struct fp_offsets_move mv = {
			.group = group,
			.topic = topic,
			.partition = m->parts[j].partition,
			.from = FP_KAFKA_NO_OFFSET,
			.to = m->parts[j].committed,
			.t_start_ns = t_start,
		};

		for (size_t i = 0; i < n; i++)
			if (now[i].partition == mv.partition)
				mv.from = now[i].committed;
		ctx->offsets_moved(ctx->offsets_moved_ud, &mv);
	}
}

static int apply(const struct fp_kvlist *with, struct fp_inject_ctx *ctx,
		 struct fp_err *err)
{
	const char *group = fp_kv_get(with, "group");
	const char *topic = fp_kv_get(with, "topic");
	const char *mark = fp_kv_get(with, "to") + 5;
	const char *wait = fp_kv_get(with, "wait_empty");
	const struct fp_offset_mark *m = NULL;
	struct fp_part_offsets *now = NULL;
	size_t n = 0, len;
	int64_t timeout_ns = 30 * FP_NS_PER_S, replayed = 0, total_lag;
	int64_t t_start;
	int rc;

	if (wait)
		fp_duration_parse(wait, &timeout_ns);
	for (size_t i = 0; i < ctx->n_marks; i++)
		if (strcmp(ctx->marks[i].name, mark) == 0)
			m = &ctx->marks[i];
	if (!m)
		return fp_err_set(err, FP_EINTERNAL, "mark '%s' was not recorded",
				  mark);
	rc = wait_group_empty(ctx->kafka, group, timeout_ns, err);
	if (rc)
		return rc;
	rc = fp_kafka_group_lag(ctx->kafka, group, topic, &now, &n, &total_lag,
				err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < m->n; j++)
			if (m->parts[j].partition == now[i].partition &&
			    now[i].committed != FP_KAFKA_NO_OFFSET &&
			    now[i].committed > m->parts[j].high)
				replayed += now[i].committed - m->parts[j].high;
	len = (size_t)snprintf(ctx->state, sizeof ctx->state,
			       "{\"group\":\"%s\",\"topic\":\"%s\",\"mark\":"
			       "\"%s\",\"replayed_records\":%lld,\"from\":[",
			       group, topic, mark, (long long)replayed);
	for (size_t i = 0; i < n && len < sizeof ctx->state; i++)
		len += (size_t)snprintf(ctx->state + len,
					sizeof ctx->state - len,
					"%s{\"p\":%d,\"committed\":%lld}",
					i ? "," : "", now[i].partition,
					(long long)now[i].committed);
	if (len < sizeof ctx->state)
		snprintf(ctx->state + len, sizeof ctx->state - len, "]}");
	t_start = fp_mono_ns();
	rc = fp_kafka_group_reset(ctx->kafka, group, topic, m->parts, m->n,
				  err);
	if (rc == FP_OK) {
		FP_INFO("event=replay_window group=%s topic=%s mark=%s "
			"replayed_records=%lld",
			group, topic, mark, (long long)replayed);
		report_moves(ctx, group, topic, m, now, n, t_start);
	}
	free(now);
	return rc;
}

/* Every partition of the topic is rewound. */
static void blast(const struct fp_kvlist *with, double *partition_share,
		  double *instance_share)
{
	*partition_share = 1.0;
	*instance_share = 0.0;
}

const struct fp_injector fp_injector_kafka_replay_window = {
	.name = "kafka.replay_window",
	.summary = "reset a consumer group's committed offsets to a mark so "
		   "the window is consumed again",
	.validate = validate,
	.apply = apply,
	.revert = NULL,
	.blast = blast,
};
