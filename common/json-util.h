/* SPDX-License-Identifier: MIT */
/*
 * Small conveniences over json-c for JSON that comes from or goes to the
 * network: the one cleanup spelling for json-c objects, typed member
 * lookups that treat a missing member, JSON null and a member of the wrong
 * type alike, parsing exactly n bytes, and adding members without leaking
 * on failure. (Files we rewrite for the user go through json-strict.h.)
 */
#pragma once

#include <json-c/json.h>

#include "util.h"

/* Nesting limit for JSON from the network. */
#define JSON_NET_MAX_DEPTH 64

/* The one cleanup spelling for json-c objects: _cleanup_(json_object_putp).
 * Trees that may hold a secret use _cleanup_(json_erase_and_putp) from
 * json-strict.h instead. */
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* o[key] when o is an object and the member is there and not null. */
json_object *json_get(json_object *o, const char *key);
/* o[key] when it is a string (its length to *ret_len, which may be NULL). */
const char *json_get_string(json_object *o, const char *key, size_t *ret_len);
/* o[key] as a count: a non-negative integer (negative gives 0; a float is
 * accepted and truncated). false when it is not a number. */
bool json_get_count(json_object *o, const char *key, uint64_t *ret);

/* Parses exactly s[0..n) (surrounding white space allowed) with tok (reset
 * first). NULL on failure, with *ret_error saying why. */
json_object *json_parse_n(json_tokener *tok, const char *s, size_t n, const char **ret_error);

/* A double in its shortest form that reads back the same (0.7, not
 * 0.69999999999999996); NULL when out of memory. */
json_object *json_new_double_short(double d);

/* Adds v (NULL: an allocation failed) as o[key] or at the end of array a;
 * v is released on failure. 0 or -ENOMEM. */
int json_add(json_object *o, const char *key, json_object *v);
int json_append(json_object *a, json_object *v);

/* A whole body of len bytes, as json_tokener_parse_ex() reads it in one go
 * with a fresh tokener of json-c's default depth (what may follow the first
 * value is not looked at). 0 with the value in *ret; -EBADMSG when it is not
 * JSON, or is JSON null; -E2BIG above INT32_MAX bytes; -ENOMEM. */
int json_parse_body(const char *body, size_t len, json_object **ret);
