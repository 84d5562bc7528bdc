/* SPDX-License-Identifier: MIT */
/*
 * The two chat wire formats the gateway speaks — OpenAI Chat Completions
 * (/v1/chat/completions) and Anthropic Messages (/v1/messages) — as pure
 * code: request bodies, the streamed answer mapped to text deltas, a stop
 * reason and usage, error bodies of non-2xx answers, Retry-After headers and
 * cost arithmetic. No I/O: the daemon feeds network bytes in and turns the
 * callbacks into D-Bus signals.
 */
#pragma once

#include <math.h>

#include "util.h"

typedef enum ChatApi {
        CHAT_API_OPENAI,
        CHAT_API_ANTHROPIC,
        _CHAT_API_MAX,
        _CHAT_API_INVALID = -EINVAL,
} ChatApi;

/* "openai", "anthropic". */
const char *chat_api_to_string(ChatApi api);
ChatApi chat_api_from_string(const char *s);

/* ---- Request bodies ---------------------------------------------------- */

typedef struct ChatMessage {
        const char *role; /* "system", "user" or "assistant" */
        const char *content;
} ChatMessage;

typedef struct ChatRequestParams {
        const char *model;
        const ChatMessage *messages;
        size_t n_messages;
        const char *system;               /* NULL or "": none */
        uint32_t max_tokens;              /* 0: unset */
        uint32_t model_max_output_tokens; /* the model's own limit, 0: unknown */
        double temperature;               /* NAN: unset */
        double top_p;                     /* NAN: unset */
        char *const *stop;                /* strv, NULL or empty: none */
} ChatRequestParams;

#define CHAT_REQUEST_PARAMS_INIT { .temperature = NAN, .top_p = NAN }

/* Anthropic requires max_tokens. When the caller sets none we send
 * min(model_max_output_tokens, CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS), or the
 * default alone when the model's limit is unknown. */
#define CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS 4096U

/* Builds the JSON body of a streamed request ("stream": true always).
 *
 * OpenAI: the "system" option becomes a leading system message; system-role
 * messages stay where they are; max_tokens is sent as
 * "max_completion_tokens" (the current name; the deprecated "max_tokens" is
 * refused by reasoning models); "stop" as is; and
 * "stream_options": {"include_usage": true} so the usage arrives.
 *
 * Anthropic: "system" is a top-level field holding the option followed by
 * every system-role message, joined with "\n\n", and those messages are
 * removed from "messages"; "stop" becomes "stop_sequences"; "max_tokens" is
 * always present (see above). Consecutive messages with the same role are
 * passed on as they are: the gateway accepts them.
 *
 * Returns -EINVAL for an empty model, no messages (for Anthropic: none left
 * after taking out the system ones), an unknown role, a NULL content, or a
 * temperature/top_p that is not a finite non-negative number. */
int chat_request_build(ChatApi api, const ChatRequestParams *p, char **ret_json);

/* ---- Streamed answers -------------------------------------------------- */

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

/* Token counts, with input excluding the cached part in both formats:
 *  - OpenAI (final chunk's "usage"): input = prompt_tokens − cached_tokens
 *    − cache_write_tokens, output = completion_tokens, cache_read =
 *    prompt_tokens_details.cached_tokens, cache_write =
 *    prompt_tokens_details.cache_write_tokens (not sent by OpenAI itself,
 *    so usually 0; some gateways report it).
 *  - Anthropic: message_start's message.usage gives input_tokens,
 *    cache_creation_input_tokens (cache_write) and cache_read_input_tokens;
 *    message_delta's usage.output_tokens is cumulative and replaces output
 *    (any input/cache counts it carries replace those too). */
typedef struct ChatUsage {
        uint64_t input;
        uint64_t output;
        uint64_t cache_read;
        uint64_t cache_write;
} ChatUsage;

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

/* Messages taken from upstream are capped to this many bytes. */
#define CHAT_ERROR_MESSAGE_MAX 300U

typedef struct ChatStream ChatStream;

int chat_stream_new(ChatApi api, ChatStream **ret);
ChatStream *chat_stream_free(ChatStream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ChatStream *, chat_stream_free);
#define _cleanup_chat_stream_ _cleanup_(chat_stream_freep)

/* Limit for one SSE line/event (default SSE_MAX_SIZE_DEFAULT). */
void chat_stream_set_max_event_size(ChatStream *s, size_t max);

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

/* ---- Errors, retries, cost -------------------------------------------- */

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

/* Cost in USD; prices are USD per 1M tokens. A NaN, infinite or negative
 * price counts as 0 (unknown pricing must not produce a NaN cost). */
double chat_cost_usd(const ChatUsage *u, double p_in, double p_out, double p_cache_read, double p_cache_write);
