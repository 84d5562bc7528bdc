/* SPDX-License-Identifier: MIT */
/*
 * Incremental Server-Sent Events decoder, as browsers and the official
 * OpenAI/Anthropic clients decode it. Pure code: bytes in, events out
 * through a callback. Bytes may arrive in any pieces (a piece can end inside
 * a line, between CR and LF or inside a UTF-8 sequence).
 *
 *  - lines end in LF, CRLF or a bare CR (a CR ending one piece and the LF
 *    starting the next are one line end);
 *  - an empty line dispatches the event; several "data" lines are joined
 *    with "\n"; one space after the colon is dropped;
 *  - "event" names the event; "id", "retry" and unknown fields are ignored;
 *    lines starting with ':' are comments; a field without a colon is a
 *    field with an empty value;
 *  - a leading UTF-8 BOM is dropped;
 *  - events without any data line are not dispatched;
 *  - an event still open at the end of the stream is dropped
 *    (sse_parser_finish() says whether that happened).
 *
 * Bytes are passed through as they are; UTF-8 validation is the consumer's
 * business (the JSON inside is decoded there anyway).
 */
#pragma once

#include "util.h"

/* A line or an event (name + data) larger than this fails with -E2BIG, so a
 * hostile upstream cannot make us allocate without bound. */
#define SSE_MAX_SIZE_DEFAULT ((size_t) 8U * 1024U * 1024U)

typedef struct SseParser SseParser;

/* Called once per event. event is NULL when the event had no "event" field
 * or an empty one (a name is a C string: it ends at a NUL byte, if any).
 * data is NUL-terminated (len excludes the NUL; data may contain NUL bytes).
 * Both are only valid during the call. A negative return aborts feeding and
 * is returned by sse_parser_feed(). */
typedef int (*SseEventHandler)(const char *event, const char *data, size_t len, void *userdata);

int sse_parser_new(SseParser **ret);
SseParser *sse_parser_free(SseParser *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(SseParser *, sse_parser_free);
#define _cleanup_sse_parser_ _cleanup_(sse_parser_freep)

/* Limit for one line and for one event; 0 restores the default. */
void sse_parser_set_max_size(SseParser *p, size_t max);

/* Feeds n bytes. Returns 0, -E2BIG when a line or an event exceeds the
 * limit, -ENOMEM, or the handler's negative return. An error is sticky: the
 * parser refuses further input with the same error. */
int sse_parser_feed(SseParser *p, const void *buf, size_t n, SseEventHandler handler, void *userdata);

/* End of stream. Returns 1 when an incomplete event (a partial line, or
 * fields not yet followed by the empty line) was pending and has been
 * dropped, 0 when the stream ended cleanly, or the sticky error. The parser
 * is reset afterwards and may be reused for a new stream. */
int sse_parser_finish(SseParser *p);

/* Events dispatched so far (those with data), counted over the parser's
 * life: sse_parser_reset() and sse_parser_finish() keep the count. A
 * consumer's measure of progress: bytes of a trickle are not. */
uint64_t sse_parser_get_n_events(const SseParser *p);

/* Forgets everything, including a sticky error; the next byte is the start
 * of a new stream (a BOM is dropped again). */
void sse_parser_reset(SseParser *p);
