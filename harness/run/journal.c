/*
 * journal.c - the fault journal and `fpdrill cleanup`.
 *
 * The top complaint about every chaos tool is a fault left in place after an
 * abort or a crash. So each fault is written here, and forced to disk, before
 * it is applied; after a kill -9 the journal is the only record of what may
 * still be in place, and `fpdrill cleanup` replays its reverts LIFO. The
 * journal lives outside the bundle (<out_root>/.journal/) so cleanup can find
 * every unfinished run without knowing its bundle.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/backend/fp_act.h"
#include "harness/core/fp_clock.h"
#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "harness/run/fp_run.h"
#include "harness/run/run_int.h"
#include "injectors/fp_injector.h"

struct fp_journal {
	FILE *f;
	char dir[4096];
	char path[4200];
	char run_id[64];
};

static int jwrite(struct fp_journal *j, json_t *o)
{
	char ts[40], *line;
	int rc = FP_OK;

	fp_fmt_iso8601(fp_wall_ns(), ts, sizeof ts);
	json_object_set_new(o, "at", json_string(ts));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	/* fsync per line: the record must be on disk before the fault is. */
	if (!line || fprintf(j->f, "%s\n", line) < 0 || fflush(j->f) ||
	    fsync(fileno(j->f)))
		rc = FP_EIO;
	free(line);
	return rc;
}

int fp_journal_open(const char *out_root, const char *run_id,
		    const char *env_path, const char *scenario_path,
		    struct fp_journal **out, struct fp_err *err)
{
	struct fp_journal *j = calloc(1, sizeof *j);
	json_t *o;
	int rc;

	*out = NULL;
	if (!j)
		return fp_err_set(err, FP_ENOMEM, "journal");
	snprintf(j->dir, sizeof j->dir, "%s/.journal", out_root);
	snprintf(j->run_id, sizeof j->run_id, "%s", run_id);
	rc = fp_mkdir_p(j->dir, 0755, err);
	if (rc) {
		free(j);
		return rc;
	}
	snprintf(j->path, sizeof j->path, "%s/%s.jsonl", j->dir, run_id);
	j->f = fopen(j->path, "a");
	if (!j->f) {
		rc = fp_err_set(err, FP_EIO, "cannot create fault journal '%s': %s",
				j->path, strerror(errno));
		free(j);
		return rc;
	}
	o = json_pack("{s:s,s:s,s:i,s:s,s:s}", "op", "open", "run_id", run_id,
		      "pid", (int)getpid(), "env", env_path, "scenario",
		      scenario_path);
	if (jwrite(j, o) || fp_fsync_dir_of(j->path, err)) {
		fclose(j->f);
		free(j);
		return fp_err_set(err, FP_EIO, "cannot write fault journal in '%s'",
				  out_root);
	}
	*out = j;
	return FP_OK;
}

int fp_journal_apply_action(struct fp_journal *j, const char *id,
			    const char *action, const char *revert_action)
{
	return jwrite(j, json_pack("{s:s,s:s,s:s,s:s,s:s}", "op", "apply", "id",
				   id, "kind", "action", "action", action,
				   "revert_action", revert_action));
}

int fp_journal_apply_inject(struct fp_journal *j, const char *id,
			    const char *injector, const struct fp_kvlist *with,
			    int revertible)
{
	json_t *w = json_object();

	for (size_t i = 0; with && i < with->n; i++)
		json_object_set_new(w, with->items[i].key,
				    json_string(with->items[i].value));
	return jwrite(j, json_pack("{s:s,s:s,s:s,s:s,s:o,s:b}", "op", "apply",
				   "id", id, "kind", "inject", "injector",
				   injector, "with", w, "revertible",
				   revertible));
}

int fp_journal_mark(struct fp_journal *j, const char *op, const char *id,
		    const char *state, const char *error)
{
	json_t *o = json_pack("{s:s,s:s}", "op", op, "id", id);

	if (state && state[0])
		json_object_set_new(o, "state", json_string(state));
	if (error && error[0])
		json_object_set_new(o, "error", json_string(error));
	return jwrite(j, o);
}

const char *fp_journal_path(const struct fp_journal *j)
{
	return j->path;
}

static int copy_file(const char *from, const char *to)
{
	char *buf = NULL;
	size_t n = 0;
	int rc = fp_read_file(from, 64 << 20, &buf, &n, NULL);

	if (rc == FP_OK)
		rc = fp_write_file_atomic(to, buf, n, NULL);
	free(buf);
	return rc;
}

/* Move a finished journal out of the way of cleanup. */
static int retire(const char *dir, const char *path, const char *run_id,
		  struct fp_err *err)
{
	char done[4200], dst[4400];

	snprintf(done, sizeof done, "%s/done", dir);
	if (fp_mkdir_p(done, 0755, err))
		return FP_EIO;
	snprintf(dst, sizeof dst, "%s/%s.jsonl", done, run_id);
	if (rename(path, dst))
		return fp_err_set(err, FP_EIO, "cannot retire journal '%s': %s",
				  path, strerror(errno));
	return fp_fsync_dir_of(dst, err);
}

int fp_journal_finish(struct fp_journal *j, int all_reverted,
		      const char *bundle_dir, struct fp_err *err)
{
	char copy[4200];
	int rc = FP_OK;

	if (all_reverted)
		jwrite(j, json_pack("{s:s,s:s}", "op", "closed", "by", "run"));
	fclose(j->f);
	j->f = NULL;
	if (bundle_dir) {
		snprintf(copy, sizeof copy, "%s/faults.jsonl", bundle_dir);
		copy_file(j->path, copy);
	}
	if (all_reverted)
		rc = retire(j->dir, j->path, j->run_id, err);
	return rc;
}

void fp_journal_free(struct fp_journal *j)
{
	if (!j)
		return;
	if (j->f)
		fclose(j->f);
	free(j);
}

/* ---- cleanup ---------------------------------------------------------------- */

struct pending {
	json_t *apply;       /* borrowed from the parsed lines */
	const char *state;
	int reverted;
};

static int pid_alive_fpdrill(int pid)
{
	char path[64], comm[64] = "";
	FILE *f;

	if (pid <= 0 || (kill(pid, 0) && errno == ESRCH))
		return 0;
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof comm, f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "fpdrill", 7) == 0;
}

static int revert_entry(const struct fp_env *env, json_t *apply,
			const char *state, FILE *report, struct fp_err *err)
{
	const char *kind = json_string_value(json_object_get(apply, "kind"));
	const char *id = json_string_value(json_object_get(apply, "id"));

	if (kind && strcmp(kind, "action") == 0) {
		const char *name = json_string_value(
			json_object_get(apply, "revert_action"));
		const struct fp_action *a = env ? fp_env_action(env, name) : NULL;

		if (!a)
			return fp_err_set(err, FP_ESPEC,
					  "%s: revert action '%s' is not bound "
					  "in the env profile",
					  id, name ? name : "?");
		fprintf(report, "cleanup: %s: running %s\n", id, name);
		return fp_action_run(a, NULL, err);
	} else {
		const char *name = json_string_value(
			json_object_get(apply, "injector"));
		const struct fp_injector *inj = fp_injector_find(name ? name : "");
		json_t *w = json_object_get(apply, "with"), *v;
		struct fp_inject_ctx ctx;
		struct fp_kv items[64];
		struct fp_kvlist with = {items, 0};
		const char *k;
		int rc;

		if (!inj)
			return fp_err_set(err, FP_EINTERNAL,
					  "%s: unknown injector '%s'", id,
					  name ? name : "?");
		if (!inj->revert)
			return FP_OK;
		json_object_foreach(w, k, v)
		{
			if (with.n < 64) {
				items[with.n].key = (char *)k;
				items[with.n].value = (char *)json_string_value(v);
				memset(&items[with.n].mark, 0,
				       sizeof items[with.n].mark);
				with.n++;
			}
		}
		memset(&ctx, 0, sizeof ctx);
		ctx.env = env;
		snprintf(ctx.state, sizeof ctx.state, "%s", state ? state : "");
		fprintf(report, "cleanup: %s: reverting %s\n", id, name);
		rc = inj->revert(&with, &ctx, err);
		return rc;
	}
}

/* Revert what one journal says may still be in place. */
static int clean_one(const char *dir, const char *path, const char *env_path,
		     int force, FILE *report, int *failed)
{
	char *text = NULL, *save = NULL, *line;
	struct pending pend[256];
	size_t np = 0;
	json_t *lines = json_array();
	struct fp_env *env = NULL;
	struct fp_err err = {0};
	const char *run_id = NULL, *jenv = NULL;
	int pid = 0, closed = 0, bad = 0;
	FILE *f;

	if (fp_read_file(path, 64 << 20, &text, NULL, &err)) {
		fprintf(report, "cleanup: %s\n", err.msg);
		json_decref(lines);
		(*failed)++;
		return 0;
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *op;

		if (!o)
			continue; /* a torn last line after a crash */
		json_array_append_new(lines, o);
		op = json_string_value(json_object_get(o, "op"));
		if (!op)
			continue;
		if (strcmp(op, "open") == 0) {
			run_id = json_string_value(json_object_get(o, "run_id"));
			jenv = json_string_value(json_object_get(o, "env"));
			pid = (int)json_integer_value(json_object_get(o, "pid"));
		} else if (strcmp(op, "closed") == 0) {
			closed = 1;
		} else if (strcmp(op, "apply") == 0 && np < 256) {
			pend[np].apply = o;
			pend[np].state = NULL;
			pend[np].reverted = 0;
			np++;
		} else {
			const char *id = json_string_value(json_object_get(o, "id"));

			for (size_t i = np; id && i-- > 0;) {
				const char *pid_s = json_string_value(
					json_object_get(pend[i].apply, "id"));

				if (!pid_s || strcmp(pid_s, id) != 0)
					continue;
				if (strcmp(op, "applied") == 0)
					pend[i].state = json_string_value(
						json_object_get(o, "state"));
				else if (strcmp(op, "reverted") == 0)
					pend[i].reverted = 1;
				break;
			}
		}
	}
	if (!run_id)
		run_id = "unknown";
	if (!closed && !force && pid_alive_fpdrill(pid)) {
		fprintf(report,
			"cleanup: run %s is still running (pid %d); not touching "
			"it (use --force to override)\n",
			run_id, pid);
		json_decref(lines);
		free(text);
		return 0;
	}
	if (!env_path)
		env_path = jenv;
	for (size_t i = np; i-- > 0;) {
		json_t *rv;

		if (pend[i].reverted ||
		    json_is_false(json_object_get(pend[i].apply, "revertible")))
			continue;
		/* The env as the run saw it: its actions may name the run. */
		if (!env && env_path &&
		    (fp_env_load(env_path, &env, &err) ||
		     fp_run_vars_apply(env, NULL, run_id, &err))) {
			fprintf(report, "cleanup: run %s: %s\n", run_id, err.msg);
			bad++;
			break;
		}
		fp_err_clear(&err);
		if (revert_entry(env, pend[i].apply, pend[i].state, report,
				 &err)) {
			fprintf(report, "cleanup: run %s: REVERT FAILED: %s\n",
				run_id, err.msg);
			bad++;
			continue;
		}
		/* Record the revert in the journal itself, so a second cleanup
		 * (or a human) sees it was done. */
		f = fopen(path, "a");
		rv = json_pack("{s:s,s:s,s:s}", "op", "reverted", "id",
			       json_string_value(
				       json_object_get(pend[i].apply, "id")),
			       "by", "cleanup");
		if (f) {
			char *s = json_dumps(rv, JSON_COMPACT);

			fprintf(f, "%s\n", s ? s : "");
			free(s);
			fflush(f);
			fsync(fileno(f));
			fclose(f);
		}
		json_decref(rv);
		fprintf(report, "cleanup: run %s: %s reverted\n", run_id,
			json_string_value(json_object_get(pend[i].apply, "id")));
	}
	if (!bad) {
		f = fopen(path, "a");
		if (f) {
			fprintf(f, "{\"op\":\"closed\",\"by\":\"cleanup\"}\n");
			fflush(f);
			fsync(fileno(f));
			fclose(f);
		}
		retire(dir, path, run_id, &err);
		fprintf(report, "cleanup: run %s: nothing left in place\n",
			run_id);
	}
	*failed += bad ? 1 : 0;
	fp_env_free(env);
	json_decref(lines);
	free(text);
	return 1;
}

int fp_cleanup(const char *out_root, const char *env_path, int force,
	       FILE *report, struct fp_err *err)
{
	char dir[4096];
	struct dirent *de;
	DIR *d;
	int failed = 0, seen = 0;

	snprintf(dir, sizeof dir, "%s/.journal", out_root);
	d = opendir(dir);
	if (!d) {
		fprintf(report, "cleanup: no journal under %s: nothing to do\n",
			out_root);
		return FP_EXIT_PASS;
	}
	while ((de = readdir(d))) {
		char path[4400];
		size_t n = strlen(de->d_name);

		if (n < 7 || strcmp(de->d_name + n - 6, ".jsonl") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		seen += clean_one(dir, path, env_path, force, report, &failed);
	}
	closedir(d);
	if (!seen)
		fprintf(report, "cleanup: no unfinished run under %s\n", out_root);
	if (failed) {
		fp_err_set(err, FP_EBACKEND,
			   "%d run(s) still have faults that could not be "
			   "reverted; see the messages above",
			   failed);
		return FP_EXIT_CLEANUP;
	}
	return FP_EXIT_PASS;
}
