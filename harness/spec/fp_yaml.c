/*
 * fp_yaml.c - libyaml events -> a small node tree with 1-based marks (see
 * fp_yaml_int.h). Only this file includes <yaml.h>.
 */
#include "harness/spec/fp_yaml_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Specs are a few levels deep; a cap keeps hostile input from exhausting the
 * stack through recursion. */
#define MAX_DEPTH 64

struct builder {
	yaml_parser_t parser;
	const char *file;
	const char *text;
	size_t len;
	struct fp_err *err;
};

static int node_err(struct builder *b, int line, int col, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static int node_err(struct builder *b, int line, int col, const char *fmt,
		    ...)
{
	char what[FP_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return fp_err_set(b->err, FP_ESPEC, "%s:%d:%d: %s", b->file, line, col,
			  what);
}

/* libyaml marks are 0-based; ours are 1-based. Clamp so a huge file cannot
 * overflow an int. */
static int mark1(size_t v)
{
	return v >= (size_t)0x7ffffffe ? 0x7fffffff : (int)v + 1;
}

/* Reader errors (bad UTF-8) carry only a byte offset: count lines up to it. */
static void offset_to_mark(const struct builder *b, size_t off, int *line,
			   int *col)
{
	size_t l = 1, c = 1;

	for (size_t i = 0; i < off && i < b->len; i++) {
		if (b->text[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = mark1(l - 1);
	*col = mark1(c - 1);
}

static int syntax_err(struct builder *b)
{
	yaml_parser_t *p = &b->parser;
	int line, col;

	if (p->error == YAML_MEMORY_ERROR)
		return fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
				  b->file);
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(b, p->problem_offset, &line, &col);
		return node_err(b, line, col,
				"expected UTF-8 YAML text, got %s",
				p->problem ? p->problem : "unreadable input");
	}
	line = mark1(p->problem_mark.line);
	col = mark1(p->problem_mark.column);
	if (p->context)
		return node_err(b, line, col,
				"expected valid YAML, got a syntax error: "
				"%s (%s that started at %d:%d)",
				p->problem ? p->problem : "?", p->context,
				mark1(p->context_mark.line),
				mark1(p->context_mark.column));
	return node_err(b, line, col,
			"expected valid YAML, got a syntax error: %s",
			p->problem ? p->problem : "?");
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev))
		return syntax_err(b);
	return FP_OK;
}

static struct fp_yaml_node *new_node(enum fp_yaml_kind kind,
				     const yaml_event_t *ev)
{
	struct fp_yaml_node *n = calloc(1, sizeof *n);

	if (n) {
		n->kind = kind;
		n->line = mark1(ev->start_mark.line);
		n->col = mark1(ev->start_mark.column);
	}
	return n;
}

/* Grow a node's children by one slot; keys only for maps. */
static int push_child(struct fp_yaml_node *n, struct fp_yaml_node *key,
		      struct fp_yaml_node *val)
{
	struct fp_yaml_node **v;

	v = realloc(n->vals, (n->n + 1) * sizeof *v);
	if (!v)
		return FP_ENOMEM;
	n->vals = v;
	if (n->kind == FP_YAML_MAP) {
		struct fp_yaml_node **k;

		k = realloc(n->keys, (n->n + 1) * sizeof *k);
		if (!k)
			return FP_ENOMEM;
		n->keys = k;
		n->keys[n->n] = key;
	}
	n->vals[n->n] = val;
	n->n++;
	return FP_OK;
}

static int reject_anchor(struct builder *b, const yaml_event_t *ev,
			 const yaml_char_t *anchor)
{
	if (!anchor)
		return FP_OK;
	return node_err(b, mark1(ev->start_mark.line),
			mark1(ev->start_mark.column),
			"expected plain values (anchors and aliases are not "
			"supported: they hide where a value came from), got "
			"anchor &%s",
			(const char *)anchor);
}

static int build(struct builder *b, yaml_event_t *ev, int depth,
		 struct fp_yaml_node **out);

static int build_scalar(struct builder *b, yaml_event_t *ev,
			struct fp_yaml_node **out)
{
	struct fp_yaml_node *n;
	size_t len = ev->data.scalar.length;

	if (reject_anchor(b, ev, ev->data.scalar.anchor))
		return FP_ESPEC;
	if (memchr(ev->data.scalar.value, '\0', len))
		return node_err(b, mark1(ev->start_mark.line),
				mark1(ev->start_mark.column),
				"expected text, got a value with a NUL byte");
	n = new_node(FP_YAML_SCALAR, ev);
	if (!n)
		return fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
				  b->file);
	n->str = malloc(len + 1);
	if (!n->str) {
		free(n);
		return fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
				  b->file);
	}
	memcpy(n->str, ev->data.scalar.value, len);
	n->str[len] = '\0';
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	*out = n;
	return FP_OK;
}

static int build_seq(struct builder *b, yaml_event_t *ev, int depth,
		     struct fp_yaml_node **out)
{
	struct fp_yaml_node *n;
	int rc;

	if (reject_anchor(b, ev, ev->data.sequence_start.anchor))
		return FP_ESPEC;
	n = new_node(FP_YAML_SEQ, ev);
	if (!n)
		return fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
				  b->file);
	for (;;) {
		yaml_event_t item;
		struct fp_yaml_node *child = NULL;

		rc = next_event(b, &item);
		if (rc)
			break;
		if (item.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&item);
			*out = n;
			return FP_OK;
		}
		rc = build(b, &item, depth + 1, &child);
		yaml_event_delete(&item);
		if (rc)
			break;
		if (push_child(n, NULL, child)) {
			fp_yaml_free(child);
			rc = fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
					b->file);
			break;
		}
	}
	fp_yaml_free(n);
	return rc;
}

static int build_map(struct builder *b, yaml_event_t *ev, int depth,
		     struct fp_yaml_node **out)
{
	struct fp_yaml_node *n;
	int rc;

	if (reject_anchor(b, ev, ev->data.mapping_start.anchor))
		return FP_ESPEC;
	n = new_node(FP_YAML_MAP, ev);
	if (!n)
		return fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
				  b->file);
	for (;;) {
		yaml_event_t kev, vev;
		struct fp_yaml_node *key = NULL, *val = NULL;
		char got[96];

		rc = next_event(b, &kev);
		if (rc)
			break;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			*out = n;
			return FP_OK;
		}
		rc = build(b, &kev, depth + 1, &key);
		yaml_event_delete(&kev);
		if (rc)
			break;
		if (key->kind != FP_YAML_SCALAR) {
			rc = node_err(b, key->line, key->col,
				      "expected a plain key, got %s",
				      fp_yaml_describe(key, got, sizeof got));
			fp_yaml_free(key);
			break;
		}
		for (size_t i = 0; i < n->n; i++) {
			if (strcmp(n->keys[i]->str, key->str) == 0) {
				rc = node_err(b, key->line, key->col,
					      "expected each key once in a "
					      "map, got \"%.64s\" again (first "
					      "at %d:%d)",
					      key->str, n->keys[i]->line,
					      n->keys[i]->col);
				break;
			}
		}
		if (rc) {
			fp_yaml_free(key);
			break;
		}
		rc = next_event(b, &vev);
		if (rc) {
			fp_yaml_free(key);
			break;
		}
		rc = build(b, &vev, depth + 1, &val);
		yaml_event_delete(&vev);
		if (rc) {
			fp_yaml_free(key);
			break;
		}
		if (push_child(n, key, val)) {
			fp_yaml_free(key);
			fp_yaml_free(val);
			rc = fp_err_set(b->err, FP_ENOMEM, "%s: parsing YAML",
					b->file);
			break;
		}
	}
	fp_yaml_free(n);
	return rc;
}

/* Build the node that starts with ev; ev stays owned by the caller. */
static int build(struct builder *b, yaml_event_t *ev, int depth,
		 struct fp_yaml_node **out)
{
	if (depth > MAX_DEPTH)
		return node_err(b, mark1(ev->start_mark.line),
				mark1(ev->start_mark.column),
				"expected at most %d levels of nesting, got "
				"more",
				MAX_DEPTH);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return build_scalar(b, ev, out);
	case YAML_SEQUENCE_START_EVENT:
		return build_seq(b, ev, depth, out);
	case YAML_MAPPING_START_EVENT:
		return build_map(b, ev, depth, out);
	case YAML_ALIAS_EVENT:
		return node_err(b, mark1(ev->start_mark.line),
				mark1(ev->start_mark.column),
				"expected plain values (anchors and aliases "
				"are not supported: they hide where a value "
				"came from), got alias *%s",
				(const char *)ev->data.alias.anchor);
	default:
		return node_err(b, mark1(ev->start_mark.line),
				mark1(ev->start_mark.column),
				"expected a value, got YAML event %d",
				(int)ev->type);
	}
}

/* Expect one event of the given type (stream/document framing). */
static int expect_event(struct builder *b, yaml_event_type_t type,
			yaml_event_t *ev)
{
	int rc = next_event(b, ev);

	if (rc)
		return rc;
	if (ev->type != type) {
		int line = mark1(ev->start_mark.line);
		int col = mark1(ev->start_mark.column);

		yaml_event_delete(ev);
		return node_err(b, line, col,
				"expected a single YAML document, got more "
				"than one");
	}
	return FP_OK;
}

int fp_yaml_parse(const char *file, const char *text, size_t len,
		  struct fp_yaml_node **out, struct fp_err *err)
{
	struct builder b = {.file = file, .text = text, .len = len, .err = err};
	struct fp_yaml_node *root = NULL;
	yaml_event_t ev;
	int rc;

	*out = NULL;
	if (!yaml_parser_initialize(&b.parser))
		return fp_err_set(err, FP_ENOMEM, "%s: parsing YAML", file);
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text,
				     len);
	rc = expect_event(&b, YAML_STREAM_START_EVENT, &ev);
	if (rc)
		goto done;
	yaml_event_delete(&ev);
	rc = next_event(&b, &ev);
	if (rc)
		goto done;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		rc = node_err(&b, 1, 1, "expected a map, got an empty file");
		goto done;
	}
	/* DOCUMENT_START is the only other event libyaml emits here. */
	yaml_event_delete(&ev);
	rc = next_event(&b, &ev);
	if (rc)
		goto done;
	rc = build(&b, &ev, 0, &root);
	yaml_event_delete(&ev);
	if (rc)
		goto done;
	rc = expect_event(&b, YAML_DOCUMENT_END_EVENT, &ev);
	if (rc)
		goto done;
	yaml_event_delete(&ev);
	rc = expect_event(&b, YAML_STREAM_END_EVENT, &ev);
	if (rc)
		goto done;
	yaml_event_delete(&ev);
done:
	yaml_parser_delete(&b.parser);
	if (rc) {
		fp_yaml_free(root);
		return rc;
	}
	*out = root;
	return FP_OK;
}

void fp_yaml_free(struct fp_yaml_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			fp_yaml_free(n->keys[i]);
		fp_yaml_free(n->vals[i]);
	}
	free(n->keys);
	free(n->vals);
	free(n->str);
	free(n->raw);
	free(n);
}

const struct fp_yaml_node *fp_yaml_get(const struct fp_yaml_node *map,
				       const char *key)
{
	if (!map || map->kind != FP_YAML_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->str, key) == 0)
			return map->vals[i];
	return NULL;
}

const struct fp_yaml_node *fp_yaml_key(const struct fp_yaml_node *map,
				       const char *key)
{
	if (!map || map->kind != FP_YAML_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->str, key) == 0)
			return map->keys[i];
	return NULL;
}

int fp_yaml_is_null(const struct fp_yaml_node *n)
{
	return n && n->kind == FP_YAML_SCALAR && n->plain && !n->raw &&
	       (n->str[0] == '\0' || strcmp(n->str, "~") == 0 ||
		strcmp(n->str, "null") == 0 || strcmp(n->str, "Null") == 0 ||
		strcmp(n->str, "NULL") == 0);
}

/* Quote s into out (at most ~48 visible characters), escaping what would
 * break a one-line message. */
static void quote(const char *s, char *out, size_t outsz)
{
	size_t o = 0, shown = 0;

	if (outsz < 8) {
		if (outsz)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (; *s && o + 8 < outsz; s++, shown++) {
		unsigned char c = (unsigned char)*s;

		if (shown == 48) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

const char *fp_yaml_describe(const struct fp_yaml_node *n, char *buf,
			     size_t bufsz)
{
	if (!n || fp_yaml_is_null(n)) {
		snprintf(buf, bufsz, "nothing");
	} else if (n->kind == FP_YAML_MAP) {
		snprintf(buf, bufsz, "a map");
	} else if (n->kind == FP_YAML_SEQ) {
		snprintf(buf, bufsz, "a list");
	} else if (n->raw) {
		char v[128], r[128];

		quote(n->str, v, sizeof v);
		quote(n->raw, r, sizeof r);
		snprintf(buf, bufsz, "%s (from %s)", v, r);
	} else {
		quote(n->str, buf, bufsz);
	}
	return buf;
}
