/* Event validation for POST /v1/events and for records the decider reads back: one parser so
 * ingress and decider agree on what a valid event is (the contract, section 1). */
#include "rp_core.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rp_reason_name(rp_reason r) {
  switch (r) {
  case RP_OK: return "ok";
  case RP_MALFORMED_JSON: return "malformed_json";
  case RP_MISSING_FIELD: return "missing_field";
  case RP_WRONG_TYPE: return "wrong_type";
  case RP_UNSUPPORTED_VERSION: return "unsupported_version";
  case RP_OVERSIZE: return "oversize";
  case RP_REASON_COUNT: break;
  }
  return "unknown";
}

__attribute__((format(printf, 4, 5))) static rp_reason fail(rp_reason r, char *detail,
                                                             size_t dsz, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, dsz, fmt, ap);
  va_end(ap);
  return r;
}

/* Required non-empty string: an empty identity string cannot take part in the dedupe tuple,
 * so it counts as missing rather than as a type error. */
static rp_reason req_str(json_t *obj, const char *key, const char **out, char *detail,
                         size_t dsz) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return fail(RP_MISSING_FIELD, detail, dsz, "%s is required", key);
  if (!json_is_string(v)) return fail(RP_WRONG_TYPE, detail, dsz, "%s must be a string", key);
  if (json_string_length(v) == 0)
    return fail(RP_MISSING_FIELD, detail, dsz, "%s must not be empty", key);
  *out = json_string_value(v);
  return RP_OK;
}

/* Optional correlation field: absent is fine, but it becomes a Kafka header and a decision-log
 * column, so anything other than a string is refused. */
static rp_reason opt_str(json_t *obj, const char *key, const char **out, char *detail,
                         size_t dsz) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v)) return RP_OK;
  if (!json_is_string(v)) return fail(RP_WRONG_TYPE, detail, dsz, "%s must be a string", key);
  *out = json_string_value(v);
  return RP_OK;
}

/* Major version is the digits before the first '.', so "1", "1.0" and "1.7" are all schema 1. */
static bool major_is_one(const char *v) {
  if (v[0] != '1') return false;
  return v[1] == '\0' || v[1] == '.';
}

/* Schema 1.1 added payload.device_id. A 1.0 producer may carry any extra field through
 * untouched, so the type is only enforced from the minor version that defines the field. */
static bool defines_device_id(const char *v) {
  return strcmp(v, "1") != 0 && strcmp(v, "1.0") != 0;
}

rp_reason rp_event_parse(const char *body, size_t len, rp_event *ev, char *detail, size_t dsz) {
  memset(ev, 0, sizeof *ev);
  if (dsz) detail[0] = '\0';
  json_error_t jerr;
  /* Duplicate keys would make the payload hash depend on which copy a reader keeps. */
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    snprintf(detail, dsz, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    return RP_MALFORMED_JSON;
  }
  rp_reason r = RP_OK;
  rp_event e = {.root = root};
  if (!json_is_object(root)) {
    r = fail(RP_WRONG_TYPE, detail, dsz, "%s must be a JSON object", "body");
    goto out;
  }
  if ((r = req_str(root, "schema_version", &e.schema_version, detail, dsz))) goto out;
  if (!major_is_one(e.schema_version)) {
    r = fail(RP_UNSUPPORTED_VERSION, detail, dsz, "schema_version %s: only major 1 is supported",
             e.schema_version);
    goto out;
  }
  if ((r = req_str(root, "platform_run_id", &e.platform_run_id, detail, dsz))) goto out;
  if ((r = req_str(root, "event_class", &e.event_class, detail, dsz))) goto out;
  if ((r = req_str(root, "event_id", &e.event_id, detail, dsz))) goto out;
  if ((r = opt_str(root, "scenario_run_id", &e.scenario_run_id, detail, dsz))) goto out;
  if ((r = opt_str(root, "phase_id", &e.phase_id, detail, dsz))) goto out;
  if ((r = opt_str(root, "runtime_lane", &e.runtime_lane, detail, dsz))) goto out;

  e.payload = json_object_get(root, "payload");
  if (!e.payload || json_is_null(e.payload)) {
    r = fail(RP_MISSING_FIELD, detail, dsz, "%s is required", "payload");
    goto out;
  }
  if (!json_is_object(e.payload)) {
    r = fail(RP_WRONG_TYPE, detail, dsz, "%s must be an object", "payload");
    goto out;
  }
  json_t *acct = json_object_get(e.payload, "account_id");
  if (!acct || json_is_null(acct)) {
    r = fail(RP_MISSING_FIELD, detail, dsz, "%s is required", "payload.account_id");
    goto out;
  }
  if (!json_is_string(acct)) {
    r = fail(RP_WRONG_TYPE, detail, dsz, "%s must be a string", "payload.account_id");
    goto out;
  }
  e.account_id = json_string_value(acct);

  json_t *dev = json_object_get(e.payload, "device_id");
  if (dev && !json_is_null(dev) && defines_device_id(e.schema_version)) {
    if (!json_is_string(dev)) {
      r = fail(RP_WRONG_TYPE, detail, dsz, "%s must be a string", "payload.device_id");
      goto out;
    }
    e.device_id = json_string_value(dev);
  }

  json_t *amt = json_object_get(e.payload, "amount_minor");
  if (!amt || json_is_null(amt)) {
    r = fail(RP_MISSING_FIELD, detail, dsz, "%s is required", "payload.amount_minor");
    goto out;
  }
  /* A real (12.0) is refused too: minor units are integral by definition. */
  if (!json_is_integer(amt) || json_integer_value(amt) < 0) {
    r = fail(RP_WRONG_TYPE, detail, dsz, "%s must be an integer >= 0", "payload.amount_minor");
    goto out;
  }
  e.amount_minor = json_integer_value(amt);

  json_t *cur = json_object_get(e.payload, "currency");
  if (!cur || json_is_null(cur)) {
    r = fail(RP_MISSING_FIELD, detail, dsz, "%s is required", "payload.currency");
    goto out;
  }
  const char *c = json_is_string(cur) ? json_string_value(cur) : NULL;
  if (!c || json_string_length(cur) != 3 || !isalpha((unsigned char)c[0]) ||
      !isalpha((unsigned char)c[1]) || !isalpha((unsigned char)c[2])) {
    r = fail(RP_WRONG_TYPE, detail, dsz, "%s must be a 3-letter string", "payload.currency");
    goto out;
  }
  if (!rp_payload_hash(e.payload, e.payload_hash)) {
    r = fail(RP_MALFORMED_JSON, detail, dsz, "%s could not be serialised", "payload");
    goto out;
  }
  *ev = e;
  return RP_OK;
out:
  json_decref(root);
  return r;
}

void rp_event_free(rp_event *ev) {
  if (ev->root) json_decref(ev->root);
  memset(ev, 0, sizeof *ev);
}

static char *tuple_member(json_t *root, const char *key, const char *fallback) {
  json_t *v = json_is_object(root) ? json_object_get(root, key) : NULL;
  if (json_is_string(v) && json_string_length(v) > 0) return strdup(json_string_value(v));
  return fallback && *fallback ? strdup(fallback) : NULL;
}

/* Lenient on purpose (duplicate keys allowed, any shape): this only labels a row of an event
 * that was already refused, and a quarantine row with a tuple is worth more than one without. */
void rp_tuple_peek(const char *body, size_t len, const char *fb_run, const char *fb_class,
                   const char *fb_event, rp_tuple *t) {
  json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
  t->platform_run_id = tuple_member(root, "platform_run_id", fb_run);
  t->event_class = tuple_member(root, "event_class", fb_class);
  t->event_id = tuple_member(root, "event_id", fb_event);
  t->payload_hash[0] = '\0';
  json_t *payload = json_is_object(root) ? json_object_get(root, "payload") : NULL;
  if (json_is_object(payload) && !rp_payload_hash(payload, t->payload_hash))
    t->payload_hash[0] = '\0';
  json_decref(root);
}

void rp_tuple_free(rp_tuple *t) {
  free(t->platform_run_id);
  free(t->event_class);
  free(t->event_id);
  memset(t, 0, sizeof *t);
}
