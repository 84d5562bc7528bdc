/* SPDX-License-Identifier: MIT */
/*
 * HTTP on the event loop: libcurl's multi interface driven by sd-event.
 *
 * One Http object owns the CURLM handle (and with it the connection pool:
 * keep-alive, HTTP/2 multiplexing where offered), one timer source for
 * curl's timeouts and one io source per socket curl opens. Each HttpRequest
 * wraps one easy handle. Nothing here blocks; results arrive through
 * callbacks dispatched from the event loop.
 *
 * Callback rules:
 *  - on_headers(r, status): once, when the final (non-1xx) response's
 *    headers are complete, before any body byte. Return <0 to abort the
 *    transfer (on_done then gets that error), HTTP_BODY_BUFFER to buffer
 *    this response's body (e.g. a non-2xx error body while streaming), or 0.
 *  - on_body(r, data, n): streamed body pieces; when unset, the body is
 *    buffered (up to the max body size) and read with http_request_get_body().
 *    Return <0 to abort the transfer.
 *  - on_done(r, error): exactly once per started request that was neither
 *    cancelled nor freed. error is 0 when a complete answer arrived, whatever
 *    its status (check http_request_get_status()), else a negative errno:
 *    -ETIMEDOUT (connect, first byte, idle or total timeout: the message says
 *    which), -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -ECONNRESET (the
 *    connection broke), -EFBIG (body over the limit), -EKEYREJECTED (the
 *    server's TLS certificate failed verification: nothing was sent),
 *    -EPROTO (other TLS or HTTP protocol failure), -EIO (anything else), or
 *    the callback's own error. The CA certificates come from CURL_CA_BUNDLE,
 *    SSL_CERT_FILE or SSL_CERT_DIR when set, as for the curl tool.
 *    on_done may free the request, cancel or free other requests and start
 *    new ones.
 *  - on_headers and on_body may cancel or free any request, including their
 *    own (this aborts it without further callbacks).
 *  - No callback runs after http_request_cancel() or http_request_free().
 *    http_free() must not be called from a callback.
 *
 * Secrets: request headers (which carry keys) are wiped when freed and never
 * logged nor put into error messages. URLs must not contain credentials.
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "util.h"

typedef struct Http Http;
typedef struct HttpRequest HttpRequest;

/* Buffered bodies are capped at this unless http_request_set_max_body(). */
#define HTTP_MAX_BODY_DEFAULT (4U * 1024U * 1024U)

/* Return value of on_headers: buffer this response's body, don't stream it. */
#define HTTP_BODY_BUFFER 1

typedef int (*http_headers_handler_t)(HttpRequest *r, long status, void *userdata);
typedef int (*http_body_handler_t)(HttpRequest *r, const void *data, size_t n, void *userdata);
typedef void (*http_done_handler_t)(HttpRequest *r, int error, void *userdata);

int http_new(sd_event *e, Http **ret);
/* Cancels (silently) every request still running; requests the caller
 * still holds stay valid for http_request_free() only. */
Http *http_free(Http *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Http *, http_free);

/* Number of requests started and not yet finished: for exit-on-idle. */
unsigned http_n_running(Http *h);

/* method: "GET", "POST", "HEAD", … ; url: http:// or https:// only, without
 * user:password. -EINVAL for a bad method or URL. */
int http_request_new(Http *h, const char *method, const char *url, HttpRequest **ret);
/* Frees the request; a running one is cancelled first. Returns NULL. */
HttpRequest *http_request_free(HttpRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpRequest *, http_request_free);

/* "Name: value". The copy is wiped when the request is freed. */
int http_request_add_header(HttpRequest *r, const char *header);
/* Request body (copied, wiped on free) with its Content-Type (may be NULL). */
int http_request_set_body(HttpRequest *r, const void *data, size_t len, const char *content_type);
/* Microseconds, 0 = none. connect: TCP+TLS setup; first_byte: from start
 * until the first response byte; idle: longest silence after that; total:
 * the whole transfer. Millisecond precision. */
void http_request_set_timeouts(HttpRequest *r, uint64_t connect_usec, uint64_t first_byte_usec,
                               uint64_t idle_usec, uint64_t total_usec);
/* Limit for buffered bodies; exceeding it fails the request with -EFBIG. */
void http_request_set_max_body(HttpRequest *r, size_t max);
void http_request_set_on_headers(HttpRequest *r, http_headers_handler_t cb);
void http_request_set_on_body(HttpRequest *r, http_body_handler_t cb);
void http_request_set_on_done(HttpRequest *r, http_done_handler_t cb);
void http_request_set_userdata(HttpRequest *r, void *userdata);
void *http_request_get_userdata(HttpRequest *r);

/* Starts the transfer (once per request; -EBUSY after that, -ESTALE when
 * the Http object is gone). Returns at once. */
int http_request_start(HttpRequest *r);
/* Stops the transfer now and closes its connection (an HTTP/2 stream is
 * reset instead); no callback follows. No-op when not running. */
void http_request_cancel(HttpRequest *r);

bool http_request_is_running(HttpRequest *r);
const char *http_request_get_method(HttpRequest *r);
const char *http_request_get_url(HttpRequest *r);
/* HTTP status of the last response, 0 before one arrived. */
long http_request_get_status(HttpRequest *r);
/* The buffered body (NUL-terminated for convenience; len excludes it).
 * Never NULL: "" when empty. */
const char *http_request_get_body(HttpRequest *r, size_t *ret_len);
/* Response header of the last response (case-insensitive name), value
 * without surrounding blanks, or NULL. */
const char *http_request_get_header(HttpRequest *r, const char *name);
/* A short sentence saying what went wrong, or NULL when nothing did. */
const char *http_request_get_error_message(HttpRequest *r);
/* Time from start to the first response byte and to completion, in µs;
 * 0 for what has not happened (yet). */
void http_request_get_timing(HttpRequest *r, uint64_t *ret_first_byte_usec, uint64_t *ret_total_usec);
