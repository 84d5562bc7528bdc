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
 *  - on_send(hr, n): each time the request is about to go out: n is 1, then
 *    2, 3, … when libcurl sends it again by itself (it does so when a reused
 *    keep-alive connection closes before any answer, and the server may
 *    have read the request: count it). Return <0 to stop instead; on_done
 *    then gets -ECONNRESET for a resend (with a message saying so), or that
 *    error for the first send.
 *  - on_headers(hr, status): once, when the final (non-1xx) response's
 *    headers are complete, before any body byte. Return <0 to abort the
 *    transfer (on_done then gets that error), HTTP_BODY_BUFFER to buffer
 *    this response's body (e.g. a non-2xx error body while streaming), or 0.
 *  - on_body(hr, data, n): streamed body pieces; when unset, the body is
 *    buffered (up to the max body size) and read with http_request_get_body().
 *    Return <0 to abort the transfer, HTTP_BODY_PAUSE to refuse these
 *    bytes for now (libcurl pauses and offers them again after
 *    http_request_unpause()), or 0.
 *  - on_done(hr, error): exactly once per started request that was neither
 *    cancelled nor freed. error is 0 when a complete answer arrived, whatever
 *    its status (check http_request_get_status()), else a negative errno:
 *    -ETIMEDOUT (connect, first byte, idle or total timeout: the message says
 *    which), -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -EMFILE or -ENFILE
 *    (out of file descriptors: nothing was sent), -ECONNRESET (the
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
/* Return value of on_body: these bytes were not taken; pause the transfer
 * (backpressure) and offer them again after http_request_unpause(). */
#define HTTP_BODY_PAUSE 2

typedef int (*http_send_handler_t)(HttpRequest *hr, unsigned n, void *userdata);
typedef int (*http_headers_handler_t)(HttpRequest *hr, long status, void *userdata);
typedef int (*http_body_handler_t)(HttpRequest *hr, const void *data, size_t n, void *userdata);
typedef void (*http_done_handler_t)(HttpRequest *hr, int error, void *userdata);

int http_new(sd_event *e, Http **ret);
/* Cancels (silently) every request still running; requests the caller
 * still holds stay valid for http_request_free() only. */
Http *http_free(Http *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Http *, http_free);

/* Number of requests started and not yet finished (tests use it). */
unsigned http_n_running(Http *h);

/* method: "GET", "POST", "HEAD", … ; url: http:// or https:// only, without
 * user:password. -EINVAL for a bad method or URL. */
int http_request_new(Http *h, const char *method, const char *url, HttpRequest **ret);
/* Frees the request; a running one is cancelled first. Returns NULL. */
HttpRequest *http_request_free(HttpRequest *hr);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpRequest *, http_request_free);

/* "Name: value". The copy is wiped when the request is freed. */
int http_request_add_header(HttpRequest *hr, const char *header);
/* Request body (copied, wiped on free) with its Content-Type (may be NULL). */
int http_request_set_body(HttpRequest *hr, const void *data, size_t len, const char *content_type);
/* A buffered body makes progress with every this many bytes (and its end). */
#define HTTP_PROGRESS_BYTES (16U * 1024U)

/* Microseconds, 0 = none. connect: TCP+TLS setup; first_byte: from start
 * until the first response byte; idle: the longest time without progress
 * after that (not without bytes: a trickle does not count). Progress is the
 * end of the headers; then, for a buffered body, every HTTP_PROGRESS_BYTES;
 * for a streamed one, every piece passed to on_body, or, after
 * http_request_set_progress_by_caller(), only http_request_note_progress().
 * total: the whole transfer. Millisecond precision. */
void http_request_set_timeouts(HttpRequest *hr, uint64_t connect_usec, uint64_t first_byte_usec,
                               uint64_t idle_usec, uint64_t total_usec);
/* The caller judges a streamed body's progress (e.g. a complete SSE event)
 * and reports it with http_request_note_progress(), from on_body or anywhere. */
void http_request_set_progress_by_caller(HttpRequest *hr, bool b);
void http_request_note_progress(HttpRequest *hr);
/* Limit for buffered bodies; exceeding it fails the request with -EFBIG. */
void http_request_set_max_body(HttpRequest *hr, size_t max);
void http_request_set_on_send(HttpRequest *hr, http_send_handler_t cb);
/* How many times the request went out so far (see on_send). */
unsigned http_request_get_n_sends(HttpRequest *hr);
void http_request_set_on_headers(HttpRequest *hr, http_headers_handler_t cb);
void http_request_set_on_body(HttpRequest *hr, http_body_handler_t cb);
void http_request_set_on_done(HttpRequest *hr, http_done_handler_t cb);
void http_request_set_userdata(HttpRequest *hr, void *userdata);
void *http_request_get_userdata(HttpRequest *hr);

/* Starts the transfer (once per request; -EBUSY after that, -ESTALE when
 * the Http object is gone). Returns at once. */
int http_request_start(HttpRequest *hr);
/* Stops the transfer now and closes its connection (an HTTP/2 stream is
 * reset instead); no callback follows. No-op when not running. */
void http_request_cancel(HttpRequest *hr);

bool http_request_is_running(HttpRequest *hr);
const char *http_request_get_method(HttpRequest *hr);
const char *http_request_get_url(HttpRequest *hr);
/* HTTP status of the last response, 0 before one arrived. */
long http_request_get_status(HttpRequest *hr);
/* The buffered body (NUL-terminated for convenience; len excludes it).
 * Never NULL: "" when empty. */
const char *http_request_get_body(HttpRequest *hr, size_t *ret_len);
/* Response header of the last response (case-insensitive name), value
 * without surrounding blanks, or NULL. */
const char *http_request_get_header(HttpRequest *hr, const char *name);
/* The i-th response header line ("Name: value", no line break) of the
 * last response, in the order received, or NULL past the last one. */
const char *http_request_get_header_line(HttpRequest *hr, size_t i);
/* Resumes a transfer that on_body paused with HTTP_BODY_PAUSE; the kept
 * bytes may reach on_body before this returns. No-op when not paused. */
void http_request_unpause(HttpRequest *hr);
/* A short sentence saying what went wrong, or NULL when nothing did. */
const char *http_request_get_error_message(HttpRequest *hr);
/* Time from start to the first response byte and to completion, in µs;
 * 0 for what has not happened (yet). */
void http_request_get_timing(HttpRequest *hr, uint64_t *ret_first_byte_usec, uint64_t *ret_total_usec);
