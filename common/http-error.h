/* SPDX-License-Identifier: MIT */
/*
 * Error answers of the gateway and of whatever stands in front of it: the
 * error of a non-2xx body (JSON of several shapes, an HTML page, plain
 * text) as a type and a short message that is safe to show and to put on
 * the bus, and the Retry-After headers. Pure code. The sanitisers and the
 * JSON error lookup are shared with chat-stream.c, whose error events are
 * the same objects.
 */
#pragma once

#include <json-c/json.h>

#include "util.h"

/* Messages taken from upstream are capped to this many bytes. */
#define CHAT_ERROR_MESSAGE_MAX 300U

/* Extracts the error of a non-2xx answer. Accepts OpenAI
 * {"error":{"message","type","code"}}, Anthropic
 * {"type":"error","error":{"type","message"}}, {"error":"msg"},
 * {"message":"msg"} and {"detail":"msg"}. For anything else it makes up a
 * short, safe summary: the <title> of an HTML page, a short plain-text body,
 * or "unexpected non-JSON answer". *ret_type is NULL when no type was given
 * (ret_type may be NULL); *ret_message is always set, valid UTF-8 without
 * control characters, at most CHAT_ERROR_MESSAGE_MAX bytes. Returns 1 when
 * the body was a structured error, 0 when the message is our summary, or
 * -ENOMEM. */
int chat_parse_error_body(const char *body, size_t len, char **ret_type, char **ret_message);

/* How long the server asks us to wait, in µs: "retry-after-ms" (milliseconds,
 * fractions allowed) wins when valid, else "retry-after" as seconds or an
 * HTTP date (IMF-fixdate, RFC 850 or asctime; a past date gives 0).
 * Either header may be NULL. Returns -ENODATA when neither is given,
 * -EINVAL when what is given cannot be parsed, -ERANGE when absurdly
 * large. */
int http_parse_retry_after(const char *retry_after, const char *retry_after_ms, uint64_t now_usec_realtime,
                           uint64_t *ret_usec);

/* Finds type and message in an error object of any of the known shapes
 * (see chat_parse_error_body()). Pointers into root; NULL when absent. */
void chat_error_find(json_object *root, const char **ret_type, const char **ret_message, size_t *ret_len);

/* A message for people: valid UTF-8, control characters and runs of white
 * space folded into single spaces, trimmed, at most max bytes (cut on a
 * character boundary, marked with "…"). Never NULL on success. */
int chat_error_sanitize_message(const char *s, size_t n, size_t max, char **ret);

/* Error types are identifiers: keeps [A-Za-z0-9_.-], at most 64 bytes.
 * *ret is NULL when nothing usable is left. */
int chat_error_sanitize_type(const char *s, char **ret);
