/* SPDX-License-Identifier: MIT */
/*
 * The streamed answer of either format, decoded: SSE events in, text
 * deltas, a stop reason, usage and the model out, and for a stream that
 * fails, an error type and a message a person can read. Pure code: the
 * daemon feeds network bytes in and turns the callbacks into D-Bus signals.
 */
#pragma once

#include "chat-api.h"
#include "http-error.h"

typedef enum ChatStopReason {
        CHAT_STOP_NONE,          /* none seen (yet) */
        CHAT_STOP_END_TURN,      /* OpenAI "stop" */
        CHAT_STOP_MAX_TOKENS,    /* OpenAI "length" */
        CHAT_STOP_STOP_SEQUENCE,
        CHAT_STOP_TOOL_USE,      /* OpenAI "tool_calls"/"function_call" */
        CHAT_STOP_OTHER,         /* content_filter, pause_turn, refusal, unknown */
        _CHAT_STOP_MAX,
} ChatStopReason;

/* "end_turn", "max_tokens", "stop_sequence", "tool_use", "other"; NONE is
 * reported as "other" too, since a caller needs one of the five. */
const char *chat_stop_reason_to_string(ChatStopReason r);

typedef struct ChatStreamCallbacks {
        /* A piece of answer text: never empty, NUL-terminated at text[len],
         * always complete valid UTF-8 without NUL bytes inside (D-Bus
         * strings cannot carry them), so it can go into a signal as is.
         * Valid only during the call. An incomplete
         * trailing sequence is held back until the next piece completes it;
         * invalid bytes and NULs become U+FFFD. */
        int (*delta)(const char *text, size_t len, void *userdata);
        /* The terminator arrived ([DONE], message_stop); results are final. */
        int (*done)(void *userdata);
        /* The stream failed: an error event from upstream, an answer we
         * cannot parse, or the end of the stream without its terminator.
         * Called once; see chat_stream_get_error(). */
        int (*failed)(const char *type, const char *message, void *userdata);
} ChatStreamCallbacks;

typedef enum ChatStreamState {
        CHAT_STREAM_RUNNING,
        CHAT_STREAM_DONE,
        CHAT_STREAM_FAILED,
} ChatStreamState;

/* Error types we make up ourselves (upstream ones are passed through, e.g.
 * "overloaded_error", "server_error"). Both mean the gateway misbehaved
 * (GatewayError), except that INCOMPLETE means the text is partial. */
#define CHAT_ERROR_INVALID_RESPONSE "invalid_response"
#define CHAT_ERROR_INCOMPLETE "incomplete_stream"

typedef struct ChatStream ChatStream;

int chat_stream_new(ChatApi api, ChatStream **ret);
ChatStream *chat_stream_free(ChatStream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ChatStream *, chat_stream_free);
#define _cleanup_chat_stream_ _cleanup_(chat_stream_freep)

/* Limit for one SSE line/event (default SSE_MAX_SIZE_DEFAULT). */
void chat_stream_set_max_event_size(ChatStream *s, size_t max);

/* Usage only (for a relay that passes the bytes on itself): the stream is
 * decoded for its model, usage, terminator and errors, and no text is
 * decoded or passed to delta(); events that cannot carry any of these are
 * not parsed at all (OpenAI chunks, once the model is known, without a
 * "usage" or "error" member that is not null and without a \u escape;
 * Anthropic content_block_* events), so a chunk with
 * invalid JSON among them does not fail the stream. Stop reason and
 * has_text are not kept. Set it before the first feed. */
void chat_stream_set_usage_only(ChatStream *s, bool b);

/* Feeds bytes of the response body, in any pieces. Returns 0 while more is
 * expected, 1 once the stream has ended (done or failed: close the
 * connection; later bytes are ignored), or a negative errno for a local
 * failure (-ENOMEM) or a callback's negative return, which aborts. */
int chat_stream_feed(ChatStream *s, const void *buf, size_t n, const ChatStreamCallbacks *cb, void *userdata);

/* The body ended. A stream still running fails here with
 * CHAT_ERROR_INCOMPLETE (failed() is called). Returns 1 when the stream
 * completed with its terminator, 0 when it failed (now or before), or a
 * callback's negative return. */
int chat_stream_finish(ChatStream *s, const ChatStreamCallbacks *cb, void *userdata);

ChatStreamState chat_stream_get_state(const ChatStream *s);
static inline bool chat_stream_is_terminated(const ChatStream *s) {
        return chat_stream_get_state(s) == CHAT_STREAM_DONE;
}
ChatStopReason chat_stream_get_stop_reason(const ChatStream *s);
/* Model as named by the answer; NULL when it named none. */
const char *chat_stream_get_model(const ChatStream *s);
void chat_stream_get_usage(const ChatStream *s, ChatUsage *ret);
/* Complete SSE events seen so far (for the idle timeout: progress). */
uint64_t chat_stream_get_n_events(const ChatStream *s);
/* Whether any text has been passed to delta() (for Failed's "partial"). */
bool chat_stream_has_text(const ChatStream *s);
/* For a failed stream: the error type and a message a person can read
 * (sanitised, at most CHAT_ERROR_MESSAGE_MAX bytes). Returns false when the
 * stream has not failed. Pointers stay valid until the stream is freed. */
bool chat_stream_get_error(const ChatStream *s, const char **ret_type, const char **ret_message);
