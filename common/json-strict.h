/* SPDX-License-Identifier: MIT */
/*
 * Strict JSON (RFC 8259) for files we rewrite on the user's behalf, and JSON
 * text written the way JSON.stringify(v, null, 2) writes it. json-c's own
 * tokener accepts single quotes, NaN and comments even in strict mode, and
 * loses the spelling of numbers; this parser refuses all of those, keeps
 * number text exactly, keeps member order, and says where it stopped
 * ("… at line L, column C") without quoting the file.
 */
#pragma once

#include <json-c/json.h>

#include "buf.h"
#include "util.h"

/* A JSON string literal for s[0..n), quotes included. */
void json_put_string(Buf *b, const char *s, size_t n);
/* Pretty text (2 spaces) with a trailing newline. */
int json_to_text(struct json_object *o, char **ret);
/* A double that prints in the shortest exact form. */
struct json_object *json_new_number(double v);
/* Trees may hold the key: overwrite every string before json-c frees it. */
void json_erase_strings(struct json_object *o);
void json_erase_and_putp(struct json_object **o); /* for _cleanup_() */
/* "a string", "an array", … for error messages. */
const char *json_type_phrase(struct json_object *o);

/* Parses a whole text. Empty or blank text gives *ret = NULL. On -EBADMSG,
 * *ret_what says what is wrong and where, *ret_remedy what to do. */
int json_parse_strict(const char *text, struct json_object **ret, char **ret_what, const char **ret_remedy);
