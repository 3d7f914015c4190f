/*
 * suite.c - run a suite of drills (scenarios/suites/<name>.yaml) one after
 * another, as the drill cadence of seed 000 B.7 asks (per-release, weekly,
 * monthly, learning), and fold their outcomes into one exit code CI can gate
 * on. A suite file is small:
 *
 *   fpdrill: suite/v1
 *   name: weekly
 *   title: Replay and lag recovery
 *   drills:
 *     - ../dr-02-replay-integrity.yaml    # relative to the suite file
 *     - ../dr-03-lag-spike.yaml
 *
 * Every drill still writes its own bundle; the suite prints one line per
 * drill and the folded verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "harness/core/fp_fs.h"
#include "harness/core/fp_log.h"
#include "harness/run/fp_run.h"

#define MAX_DRILLS 64

struct suite {
	char name[128];
	char title[256];
	char *drills[MAX_DRILLS];
	size_t n;
};

static int yerr(struct fp_err *err, const char *path, const yaml_mark_t *m,
		const char *what)
{
	return fp_err_set(err, FP_ESPEC, "%s:%zu:%zu: %s", path, m->line + 1,
			  m->column + 1, what);
}

/* A flat reader: top-level scalar keys and one list of scalars. Anything
 * else is an error with its position, like the spec loader's. */
static int suite_load(const char *path, struct suite *s, struct fp_err *err)
{
	yaml_parser_t p;
	yaml_event_t ev;
	FILE *f = fopen(path, "rb");
	char key[64] = "", dir[4096];
	int depth = 0, in_list = 0, have_tag = 0, rc = FP_OK, done = 0;

	memset(s, 0, sizeof *s);
	if (!f)
		return fp_err_set(err, FP_EUSAGE, "cannot open suite '%s'", path);
	fp_path_dirname(path, dir, sizeof dir);
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	while (!done && rc == FP_OK) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = fp_err_set(err, FP_ESPEC, "%s:%zu:%zu: %s", path,
					p.problem_mark.line + 1,
					p.problem_mark.column + 1,
					p.problem ? p.problem : "bad YAML");
			break;
		}
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
			if (++depth > 1)
				rc = yerr(err, path, &ev.start_mark,
					  "expected a string, got a map");
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (depth != 1 || strcmp(key, "drills") != 0 || in_list)
				rc = yerr(err, path, &ev.start_mark,
					  "only drills: is a list");
			in_list = 1;
			break;
		case YAML_SEQUENCE_END_EVENT:
			in_list = 0;
			key[0] = '\0';
			break;
		case YAML_SCALAR_EVENT: {
			const char *v = (const char *)ev.data.scalar.value;

			if (in_list) {
				char full[4200];

				if (s->n >= MAX_DRILLS) {
					rc = yerr(err, path, &ev.start_mark,
						  "too many drills");
					break;
				}
				fp_path_join(full, sizeof full, dir, v);
				s->drills[s->n++] = strdup(full);
			} else if (!key[0]) {
				snprintf(key, sizeof key, "%s", v);
				if (strcmp(key, "fpdrill") && strcmp(key, "name") &&
				    strcmp(key, "title") && strcmp(key, "drills"))
					rc = fp_err_set(
						err, FP_ESPEC,
						"%s:%zu:%zu: unknown key \"%s\" in "
						"suite (expected one of: fpdrill, "
						"name, title, drills)",
						path, ev.start_mark.line + 1,
						ev.start_mark.column + 1, key);
			} else {
				if (strcmp(key, "fpdrill") == 0) {
					if (strcmp(v, "suite/v1") != 0)
						rc = yerr(err, path,
							  &ev.start_mark,
							  "expected fpdrill: "
							  "suite/v1");
					have_tag = 1;
				} else if (strcmp(key, "name") == 0) {
					snprintf(s->name, sizeof s->name, "%s",
						 v);
				} else if (strcmp(key, "title") == 0) {
					snprintf(s->title, sizeof s->title,
						 "%s", v);
				} else {
					rc = yerr(err, path, &ev.start_mark,
						  "expected a list of drill "
						  "files");
				}
				key[0] = '\0';
			}
			break;
		}
		case YAML_ALIAS_EVENT:
			rc = yerr(err, path, &ev.start_mark,
				  "aliases are not supported");
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	fclose(f);
	if (rc == FP_OK && !have_tag)
		rc = fp_err_set(err, FP_ESPEC, "%s:1:1: expected fpdrill: suite/v1",
				path);
	if (rc == FP_OK && !s->n)
		rc = fp_err_set(err, FP_ESPEC, "%s:1:1: a suite needs drills:",
				path);
	return rc;
}

static void suite_free(struct suite *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->drills[i]);
}

/* How bad an exit code is for a gate: a fault possibly left in place is
 * worst, then a broken spec, then an unreachable target, then a failure. */
static int severity(int code)
{
	static const int order[] = {FP_EXIT_PASS,    FP_EXIT_UNKNOWN,
				    FP_EXIT_ABORTED, FP_EXIT_FAIL,
				    FP_EXIT_UNREACHABLE, FP_EXIT_USAGE,
				    FP_EXIT_CLEANUP};

	for (int i = 0; i < 7; i++)
		if (order[i] == code)
			return i;
	return 7;
}

int fp_suite_path(const char *name_or_path, char *out, size_t outsz)
{
	size_t n = strlen(name_or_path);

	if (strchr(name_or_path, '/') ||
	    (n > 5 && strcmp(name_or_path + n - 5, ".yaml") == 0))
		snprintf(out, outsz, "%s", name_or_path);
	else
		snprintf(out, outsz, "scenarios/suites/%s.yaml", name_or_path);
	return FP_OK;
}

int fp_run_suite(const struct fp_run_opts *base, const char *suite,
		 FILE *out, struct fp_err *err)
{
	struct suite s;
	char path[4096];
	int worst = FP_EXIT_PASS;
	int codes[MAX_DRILLS];
	size_t ran = 0;
	char verdicts[MAX_DRILLS][16], bundles[MAX_DRILLS][512];

	fp_suite_path(suite, path, sizeof path);
	if (suite_load(path, &s, err))
		return FP_EXIT_USAGE;
	fprintf(out, "suite %s: %s (%zu drills)\n", s.name, s.title, s.n);
	for (size_t i = 0; i < s.n; i++) {
		struct fp_run_opts o = *base;
		struct fp_run_outcome oc;
		struct fp_err e = {0};

		o.scenario_path = s.drills[i];
		FP_INFO("event=suite_drill suite=%s drill=%s n=%zu/%zu", s.name,
			s.drills[i], i + 1, s.n);
		codes[i] = fp_run_drill(&o, &oc, &e);
		snprintf(verdicts[i], sizeof verdicts[i], "%s",
			 oc.verdict[0] ? oc.verdict : "none");
		snprintf(bundles[i], sizeof bundles[i], "%s",
			 oc.bundle_dir[0] ? oc.bundle_dir : e.msg);
		ran++;
		if (severity(codes[i]) > severity(worst))
			worst = codes[i];
		if (codes[i] == FP_EXIT_CLEANUP)
			break; /* never start another drill over a fault in place */
	}
	fprintf(out, "\n%-44s %-8s %-4s %s\n", "drill", "verdict", "exit",
		"bundle");
	for (size_t i = 0; i < s.n; i++) {
		if (i >= ran) {
			fprintf(out, "%-44s %-8s %-4s %s\n", s.drills[i],
				"skipped", "-", "a fault may be in place");
			continue;
		}
		fprintf(out, "%-44s %-8s %-4d %s\n", s.drills[i], verdicts[i],
			codes[i], bundles[i]);
	}
	fprintf(out, "suite %s: exit %d\n", s.name, worst);
	suite_free(&s);
	return worst;
}
