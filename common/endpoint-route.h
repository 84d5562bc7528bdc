/* SPDX-License-Identifier: MIT */
/*
 * The local endpoint's pure decisions (service/endpoint.c does the I/O):
 * which route a request line names, which request and response headers
 * cross the endpoint, whether a Host header names us, where the caller's
 * token is, the error bodies in each route's format, and the usage of an
 * unstreamed answer. No I/O, no allocation beyond what is returned.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "chat-api.h"

typedef enum EndpointRouteKind {
        ENDPOINT_ROUTE_CHAT,          /* POST /v1/chat/completions */
        ENDPOINT_ROUTE_MESSAGES,      /* POST /v1/messages */
        ENDPOINT_ROUTE_COUNT_TOKENS,  /* POST /v1/messages/count_tokens */
        ENDPOINT_ROUTE_IMAGES,        /* POST /v1/images/generations */
        ENDPOINT_ROUTE_MODELS,        /* GET /v1/models: answered from the cache */
        _ENDPOINT_ROUTE_MAX,
        _ENDPOINT_ROUTE_INVALID = -EINVAL,
} EndpointRouteKind;

typedef enum EndpointPrivacy {
        ENDPOINT_PRIVACY_STANDARD,
        ENDPOINT_PRIVACY_ZDR,        /* /zdr prefix */
        ENDPOINT_PRIVACY_PRIVATE,    /* /private prefix */
} EndpointPrivacy;

typedef struct EndpointRoute {
        EndpointRouteKind kind;
        EndpointPrivacy privacy;
        ChatApi format;              /* the error format of the route */
        /* The path to ask the gateway for, query string kept:
         * "[/zdr|/private]/v1/<route>[?query]". */
        char upstream_path[512];
} EndpointRoute;

/* Longest request target we route (anything longer is 414). */
#define ENDPOINT_TARGET_MAX 480

/* Parses a request target (path and query; no scheme, no host). Returns
 * 0 with *ret filled; -ENOENT for an unknown path (404), -EBADRQC when the
 * path is known but the method is not the route's (405), -E2BIG for a
 * target over ENDPOINT_TARGET_MAX (414), -EINVAL for a target that is not
 * an origin-form path (400). On any error ret->format still says the
 * format to answer in (Anthropic for paths under /messages, else OpenAI). */
int endpoint_route_parse(const char *method, const char *target, EndpointRoute *ret);

const char *endpoint_route_kind_to_string(EndpointRouteKind k);

/* Raises a parsed route to at least tier min (Chat.DefaultPrivacy): the
 * upstream path gets that tier's prefix instead of a weaker one (the
 * gateway's strongest tier wins and it fails closed). 1 when the path
 * changed, 0 when the route already asks for min or more, -E2BIG when the
 * new path would not fit. */
int endpoint_route_raise_privacy(EndpointRoute *r, EndpointPrivacy min);

typedef enum EndpointHeaderAction {
        ENDPOINT_HEADER_FORWARD,     /* goes upstream as it is */
        ENDPOINT_HEADER_DROP,        /* hop-by-hop, Host, cookies, framing, … */
        ENDPOINT_HEADER_CREDENTIAL,  /* the caller's token: read it, never forward it */
} EndpointHeaderAction;

/* What to do with a request header of this name (case-insensitive). A name
 * that is not a valid token, or a value with a CR, LF or NUL, is dropped. */
EndpointHeaderAction endpoint_request_header_action(const char *name, const char *value);

/* Whether the value of a Connection header lists name (comma-separated,
 * case-insensitive): such a header is hop-by-hop too (RFC 9110 7.6.1). */
bool endpoint_connection_lists(const char *connection, const char *name);

/* Whether a response header of the gateway goes back to the caller. Drops
 * hop-by-hop and framing headers (the endpoint frames the answer itself),
 * Content-Encoding (libcurl has decoded the body) and Set-Cookie. */
bool endpoint_response_header_keep(const char *name);

/* Whether host (the Host header's value) names the loopback listener on
 * port: "127.0.0.1:PORT", "localhost:PORT", "[::1]:PORT" (any case for
 * localhost), nothing else (no other name, no missing port, no userinfo). */
bool endpoint_host_ok(const char *host, unsigned port);

/* The token from "Authorization: Bearer T" (scheme case-insensitive) or
 * "x-api-key: T". Returns a pointer into value (the token's first byte)
 * and its length in *ret_len, or NULL when value holds no token. */
const char *endpoint_credential_token(const char *name, const char *value, size_t *ret_len);

/* A refusal in the route's format, as a malloc'd NUL-terminated JSON text:
 *  OpenAI:    {"error":{"message":M,"type":T,"code":C}}
 *  Anthropic: {"type":"error","error":{"type":T,"message":M}}
 * code may be NULL (then T). NULL on OOM. */
char *endpoint_error_body(ChatApi format, const char *type, const char *code, const char *message);

/* The "model" member of a JSON request body, as a malloc'd string in
 * *ret (NULL when the body is not a JSON object or has no string model).
 * Returns 0, or -ENOMEM. */
int endpoint_body_model(const void *body, size_t len, char **ret);

/* Usage and model of an unstreamed answer of format (OpenAI "usage"
 * prompt/completion tokens, Anthropic "usage" input/output/cache). Returns
 * true when the body had a usage object. *ret_model (may be NULL) gets a
 * malloc'd copy of the answer's "model" or NULL. */
bool endpoint_body_usage(ChatApi format, const void *body, size_t len, ChatUsage *ret, char **ret_model);
