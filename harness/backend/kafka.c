/*
 * kafka.c - librdkafka admin and metadata calls for the harness (see
 * fp_kafka.h). One producer-type handle serves metadata, watermark queries
 * and the Admin API; it never produces.
 */
#include "harness/backend/fp_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/core/fp_log.h"

struct fp_kafka {
	rd_kafka_t *rk;
	int timeout_ms;
};

/* librdkafka logs through its own callback; route it to ours at debug so a
 * broker that is down does not flood the drill's output. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
		   const char *buf)
{
	FP_DEBUG("component=kafka level=%d fac=%s msg=\"%s\"", level, fac, buf);
}

int fp_kafka_new(const char *bootstrap, const struct fp_kvlist *props,
		 int timeout_ms, struct fp_kafka **out, struct fp_err *err)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	struct fp_kafka *k;
	rd_kafka_resp_err_t e;

	*out = NULL;
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
			      sizeof errstr) != RD_KAFKA_CONF_OK)
		goto conf_fail;
	rd_kafka_conf_set(conf, "client.id", "fpdrill", NULL, 0);
	if (fp_kafka_conf_apply(conf, props, errstr, sizeof errstr))
		goto conf_fail;
	rd_kafka_conf_set_log_cb(conf, log_cb);
	k = calloc(1, sizeof *k);
	if (!k) {
		rd_kafka_conf_destroy(conf);
		return fp_err_set(err, FP_ENOMEM, "kafka handle");
	}
	k->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!k->rk) {
		free(k);
		rd_kafka_conf_destroy(conf);
		return fp_err_set(err, FP_EINVAL, "kafka: %s", errstr);
	}
	/* Prove a broker answers now, so an unreachable bus is reported as
	 * such (exit 5) rather than as a confusing failure mid-drill. */
	e = rd_kafka_metadata(k->rk, 0, NULL, &md, k->timeout_ms);
	if (e) {
		rd_kafka_destroy(k->rk);
		free(k);
		return fp_err_set(err, FP_EUNREACHABLE,
				  "kafka %s: no broker answered: %s", bootstrap,
				  rd_kafka_err2str(e));
	}
	rd_kafka_metadata_destroy(md);
	*out = k;
	return FP_OK;
conf_fail:
	rd_kafka_conf_destroy(conf);
	return fp_err_set(err, FP_ESPEC, "kafka property: %s", errstr);
}

void fp_kafka_free(struct fp_kafka *k)
{
	if (!k)
		return;
	rd_kafka_destroy(k->rk);
	free(k);
}

static int cmp_part(const void *a, const void *b)
{
	const struct fp_part_offsets *x = a, *y = b;

	return (x->partition > y->partition) - (x->partition < y->partition);
}

int fp_kafka_watermarks(struct fp_kafka *k, const char *topic,
			struct fp_part_offsets **out, size_t *n,
			struct fp_err *err)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	struct fp_part_offsets *po;
	rd_kafka_resp_err_t e;
	int cnt;

	*out = NULL;
	*n = 0;
	rkt = rd_kafka_topic_new(k->rk, topic, NULL);
	if (!rkt)
		return fp_err_set(err, FP_EINVAL, "kafka topic '%s'", topic);
	e = rd_kafka_metadata(k->rk, 0, rkt, &md, k->timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (e)
		return fp_err_set(err, FP_EUNREACHABLE,
				  "kafka metadata for '%s': %s", topic,
				  rd_kafka_err2str(e));
	if (md->topic_cnt != 1 || md->topics[0].err) {
		e = md->topic_cnt ? md->topics[0].err
				  : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		rd_kafka_metadata_destroy(md);
		return fp_err_set(err, FP_ENOTFOUND, "kafka topic '%s': %s",
				  topic, rd_kafka_err2str(e));
	}
	cnt = md->topics[0].partition_cnt;
	po = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof *po);
	if (!po) {
		rd_kafka_metadata_destroy(md);
		return fp_err_set(err, FP_ENOMEM, "watermarks");
	}
	for (int i = 0; i < cnt; i++) {
		int32_t p = md->topics[0].partitions[i].id;

		po[i].partition = p;
		po[i].committed = FP_KAFKA_NO_OFFSET;
		e = rd_kafka_query_watermark_offsets(k->rk, topic, p,
						     &po[i].low, &po[i].high,
						     k->timeout_ms);
		if (e) {
			rd_kafka_metadata_destroy(md);
			free(po);
			return fp_err_set(err, FP_EUNREACHABLE,
					  "watermarks of %s[%d]: %s", topic, p,
					  rd_kafka_err2str(e));
		}
	}
	rd_kafka_metadata_destroy(md);
	qsort(po, (size_t)cnt, sizeof *po, cmp_part);
	*out = po;
	*n = (size_t)cnt;
	return FP_OK;
}

/* Wait on an admin result queue for one event of the wanted type. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int type,
				    int timeout_ms)
{
	for (;;) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);

		if (!ev || rd_kafka_event_type(ev) == type)
			return ev;
		rd_kafka_event_destroy(ev);
	}
}

static int group_committed(struct fp_kafka *k, const char *group,
			   const char *topic, struct fp_part_offsets *po,
			   size_t n, struct fp_err *err)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_ListConsumerGroupOffsets_t *req;
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	const rd_kafka_ListConsumerGroupOffsets_result_t *res;
	const rd_kafka_group_result_t **gr;
	const rd_kafka_topic_partition_list_t *got;
	size_t ng;
	char errstr[256];
	int rc = FP_OK;

	/* An explicit partition list: asking for "all partitions" returns
	 * nothing on some brokers (see research/feasibility.md). */
	parts = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(parts, topic,
						  po[i].partition);
	req = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	opt = rd_kafka_AdminOptions_new(
		k->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
	rd_kafka_AdminOptions_set_request_timeout(opt, k->timeout_ms, errstr,
						  sizeof errstr);
	q = rd_kafka_queue_new(k->rk);
	rd_kafka_ListConsumerGroupOffsets(k->rk, &req, 1, opt, q);
	rd_kafka_ListConsumerGroupOffsets_destroy(req);
	rd_kafka_AdminOptions_destroy(opt);
	ev = admin_wait(q, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT,
			k->timeout_ms + 2000);
	if (!ev) {
		rc = fp_err_set(err, FP_ETIMEOUT,
				"committed offsets of group '%s': timed out",
				group);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		rc = fp_err_set(err, FP_EUNREACHABLE,
				"committed offsets of group '%s': %s", group,
				rd_kafka_event_error_string(ev));
		goto out;
	}
	res = rd_kafka_event_ListConsumerGroupOffsets_result(ev);
	gr = rd_kafka_ListConsumerGroupOffsets_result_groups(res, &ng);
	if (ng != 1 || rd_kafka_group_result_error(gr[0])) {
		rc = fp_err_set(err, FP_EBACKEND,
				"committed offsets of group '%s': %s", group,
				ng ? rd_kafka_error_string(
					     rd_kafka_group_result_error(gr[0]))
				   : "no result");
		goto out;
	}
	got = rd_kafka_group_result_partitions(gr[0]);
	for (int j = 0; got && j < got->cnt; j++)
		for (size_t i = 0; i < n; i++)
			if (po[i].partition == got->elems[j].partition &&
			    !got->elems[j].err)
				po[i].committed = got->elems[j].offset < 0
							  ? FP_KAFKA_NO_OFFSET
							  : got->elems[j].offset;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	return rc;
}

int fp_kafka_group_lag(struct fp_kafka *k, const char *group,
		       const char *topic, struct fp_part_offsets **out,
		       size_t *n, int64_t *total_lag, struct fp_err *err)
{
	struct fp_part_offsets *po;
	size_t cnt;
	int64_t lag = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = fp_kafka_watermarks(k, topic, &po, &cnt, err);
	if (rc)
		return rc;
	rc = group_committed(k, group, topic, po, cnt, err);
	if (rc) {
		free(po);
		return rc;
	}
	for (size_t i = 0; i < cnt; i++) {
		int64_t from = po[i].committed == FP_KAFKA_NO_OFFSET
				       ? po[i].low
				       : po[i].committed;

		if (po[i].high > from)
			lag += po[i].high - from;
	}
	*out = po;
	*n = cnt;
	*total_lag = lag;
	return FP_OK;
}

int fp_kafka_group_state(struct fp_kafka *k, const char *group, char *state,
			 size_t statesz, int *members, struct fp_err *err)
{
	const char *groups[1] = {group};
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	const rd_kafka_ConsumerGroupDescription_t **gd;
	size_t ng;
	char errstr[256];
	int rc = FP_OK;

	opt = rd_kafka_AdminOptions_new(
		k->rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
	rd_kafka_AdminOptions_set_request_timeout(opt, k->timeout_ms, errstr,
						  sizeof errstr);
	q = rd_kafka_queue_new(k->rk);
	rd_kafka_DescribeConsumerGroups(k->rk, groups, 1, opt, q);
	rd_kafka_AdminOptions_destroy(opt);
	ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT,
			k->timeout_ms + 2000);
	if (!ev) {
		rc = fp_err_set(err, FP_ETIMEOUT, "describe group '%s': timed out",
				group);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		rc = fp_err_set(err, FP_EUNREACHABLE, "describe group '%s': %s",
				group, rd_kafka_event_error_string(ev));
		goto out;
	}
	gd = rd_kafka_DescribeConsumerGroups_result_groups(
		rd_kafka_event_DescribeConsumerGroups_result(ev), &ng);
	if (ng != 1 || rd_kafka_ConsumerGroupDescription_error(gd[0])) {
		rc = fp_err_set(err, FP_EBACKEND, "describe group '%s': %s",
				group,
				ng ? rd_kafka_error_string(
					     rd_kafka_ConsumerGroupDescription_error(
						     gd[0]))
				   : "no result");
		goto out;
	}
	snprintf(state, statesz, "%s",
		 rd_kafka_consumer_group_state_name(
			 rd_kafka_ConsumerGroupDescription_state(gd[0])));
	if (members)
		*members = (int)rd_kafka_ConsumerGroupDescription_member_count(
			gd[0]);
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	return rc;
}

int fp_kafka_group_reset(struct fp_kafka *k, const char *group,
			 const char *topic, const struct fp_part_offsets *to,
			 size_t n, struct fp_err *err)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_AlterConsumerGroupOffsets_t *req;
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	const rd_kafka_group_result_t **gr;
	const rd_kafka_topic_partition_list_t *got;
	size_t ng;
	char errstr[256];
	int rc = FP_OK;

	parts = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(parts, topic, to[i].partition)
			->offset = to[i].committed;
	req = rd_kafka_AlterConsumerGroupOffsets_new(group, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	opt = rd_kafka_AdminOptions_new(
		k->rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
	rd_kafka_AdminOptions_set_request_timeout(opt, k->timeout_ms, errstr,
						  sizeof errstr);
	q = rd_kafka_queue_new(k->rk);
	rd_kafka_AlterConsumerGroupOffsets(k->rk, &req, 1, opt, q);
	rd_kafka_AlterConsumerGroupOffsets_destroy(req);
	rd_kafka_AdminOptions_destroy(opt);
	ev = admin_wait(q, RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT,
			k->timeout_ms + 2000);
	if (!ev) {
		rc = fp_err_set(err, FP_ETIMEOUT, "reset group '%s': timed out",
				group);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		rc = fp_err_set(err, FP_EBACKEND, "reset group '%s': %s", group,
				rd_kafka_event_error_string(ev));
		goto out;
	}
	gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
		rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &ng);
	if (ng != 1 || rd_kafka_group_result_error(gr[0])) {
		rc = fp_err_set(err, FP_EBACKEND, "reset group '%s': %s", group,
				ng ? rd_kafka_error_string(
					     rd_kafka_group_result_error(gr[0]))
				   : "no result");
		goto out;
	}
	got = rd_kafka_group_result_partitions(gr[0]);
	for (int j = 0; got && j < got->cnt; j++)
		if (got->elems[j].err) {
			rc = fp_err_set(err, FP_EBACKEND,
					"reset group '%s' %s[%d]: %s", group,
					topic, got->elems[j].partition,
					rd_kafka_err2str(got->elems[j].err));
			break;
		}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	return rc;
}
