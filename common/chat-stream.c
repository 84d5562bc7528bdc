/* SPDX-License-Identifier: MIT */
/* Streamed answers of both formats (see chat-stream.h). */
#include <json-c/json.h>
#include <stdarg.h>

#include "buf.h"
#include "chat-stream.h"
#include "json-util.h"
#include "sse.h"
#include "utf8.h"

static const char *const chat_stop_reason_table[_CHAT_STOP_MAX] = {
        [CHAT_STOP_NONE] = "other",
        [CHAT_STOP_END_TURN] = "end_turn",
        [CHAT_STOP_MAX_TOKENS] = "max_tokens",
        [CHAT_STOP_STOP_SEQUENCE] = "stop_sequence",
        [CHAT_STOP_TOOL_USE] = "tool_use",
        [CHAT_STOP_OTHER] = "other",
};

DEFINE_STRING_TABLE_TO_STRING(chat_stop_reason, ChatStopReason, "other");

static ChatStopReason stop_reason_from_openai(const char *s) {
        if (streq(s, "stop"))
                return CHAT_STOP_END_TURN;
        if (streq(s, "length"))
                return CHAT_STOP_MAX_TOKENS;
        if (streq(s, "tool_calls") || streq(s, "function_call"))
                return CHAT_STOP_TOOL_USE;
        return CHAT_STOP_OTHER; /* content_filter, "error", anything new */
}

static ChatStopReason stop_reason_from_anthropic(const char *s) {
        if (streq(s, "end_turn"))
                return CHAT_STOP_END_TURN;
        if (streq(s, "max_tokens"))
                return CHAT_STOP_MAX_TOKENS;
        if (streq(s, "stop_sequence"))
                return CHAT_STOP_STOP_SEQUENCE;
        if (streq(s, "tool_use"))
                return CHAT_STOP_TOOL_USE;
        return CHAT_STOP_OTHER; /* pause_turn, refusal, anything new */
}

/* ---- Streamed answers -------------------------------------------------- */

struct ChatStream {
        ChatApi api;
        SseParser *sse;
        json_tokener *tok;

        ChatStreamState state;
        ChatStopReason stop_reason;
        char *model;
        ChatUsage usage;
        bool has_text;
        size_t max_event;
        bool usage_only;
        char *error_type;
        char *error_message;

        /* An incomplete UTF-8 sequence at the end of the last delta. */
        uint8_t held[4];
        size_t held_len;
        Buf work, out;

        /* Valid during chat_stream_feed()/finish(). */
        const ChatStreamCallbacks *cb;
        void *userdata;
        int cb_error; /* a callback's negative return */
};

/* Returned from the SSE handler to stop parsing once the stream is over. */
#define STREAM_STOP (-ESHUTDOWN)

int chat_stream_new(ChatApi api, ChatStream **ret) {
        ChatStream *s;
        int r;

        if (!ret || api < 0 || api >= _CHAT_API_MAX)
                return -EINVAL;

        s = calloc(1, sizeof(ChatStream));
        if (!s)
                return -ENOMEM;
        s->api = api;
        s->max_event = SSE_MAX_SIZE_DEFAULT;
        r = sse_parser_new(&s->sse);
        if (r < 0) {
                free(s);
                return r;
        }
        s->tok = json_tokener_new_ex(JSON_NET_MAX_DEPTH);
        if (!s->tok) {
                chat_stream_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

ChatStream *chat_stream_free(ChatStream *s) {
        if (!s)
                return NULL;
        sse_parser_free(s->sse);
        if (s->tok)
                json_tokener_free(s->tok);
        free(s->model);
        free(s->error_type);
        free(s->error_message);
        buf_done(&s->work);
        buf_done(&s->out);
        free(s);
        return NULL;
}

void chat_stream_set_max_event_size(ChatStream *s, size_t max) {
        if (!s)
                return;
        s->max_event = max > 0 ? max : SSE_MAX_SIZE_DEFAULT;
        sse_parser_set_max_size(s->sse, s->max_event);
}

void chat_stream_set_usage_only(ChatStream *s, bool b) {
        if (s)
                s->usage_only = b;
}

ChatStreamState chat_stream_get_state(const ChatStream *s) {
        return s ? s->state : CHAT_STREAM_FAILED;
}

ChatStopReason chat_stream_get_stop_reason(const ChatStream *s) {
        return s ? s->stop_reason : CHAT_STOP_NONE;
}

const char *chat_stream_get_model(const ChatStream *s) {
        return s ? s->model : NULL;
}

void chat_stream_get_usage(const ChatStream *s, ChatUsage *ret) {
        if (ret)
                *ret = s ? s->usage : (ChatUsage) {};
}

uint64_t chat_stream_get_n_events(const ChatStream *s) {
        return s ? sse_parser_get_n_events(s->sse) : 0;
}

bool chat_stream_has_text(const ChatStream *s) {
        return s && s->has_text;
}

bool chat_stream_get_error(const ChatStream *s, const char **ret_type, const char **ret_message) {
        if (!s || s->state != CHAT_STREAM_FAILED)
                return false;
        if (ret_type)
                *ret_type = s->error_type;
        if (ret_message)
                *ret_message = s->error_message;
        return true;
}

/* Records a callback's return; negative ones abort everything. */
static int stream_callback_result(ChatStream *s, int r) {
        if (r < 0 && s->cb_error == 0)
                s->cb_error = r;
        return r < 0 ? r : 0;
}

static int stream_fail(ChatStream *s, const char *type, const char *message, size_t len) {
        int r;

        if (s->state != CHAT_STREAM_RUNNING)
                return STREAM_STOP;

        free(s->error_type);
        free(s->error_message);
        s->error_type = s->error_message = NULL;

        r = chat_error_sanitize_type(type, &s->error_type);
        if (r < 0)
                return r;
        if (!s->error_type) {
                s->error_type = strdup("unknown_error");
                if (!s->error_type)
                        return -ENOMEM;
        }
        r = chat_error_sanitize_message(message, len, CHAT_ERROR_MESSAGE_MAX, &s->error_message);
        if (r < 0)
                return r;
        if (isempty(s->error_message)) {
                free(s->error_message);
                s->error_message = strdup("The gateway reported an error without a message.");
                if (!s->error_message)
                        return -ENOMEM;
        }

        s->state = CHAT_STREAM_FAILED;
        s->held_len = 0; /* the text is partial anyway */

        if (s->cb && s->cb->failed) {
                r = stream_callback_result(s, s->cb->failed(s->error_type, s->error_message, s->userdata));
                if (r < 0)
                        return r;
        }
        return STREAM_STOP;
}

_printf_(3, 4) static int stream_failf(ChatStream *s, const char *type, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return stream_fail(s, type, buf, strlen(buf));
}

static int stream_emit(ChatStream *s, const char *text, size_t len) {
        if (len == 0)
                return 0;
        s->has_text = true;
        if (!s->cb || !s->cb->delta)
                return 0;
        return stream_callback_result(s, s->cb->delta(text, len, s->userdata));
}

/* Passes text on as complete, valid UTF-8. With final, nothing is held
 * back: an incomplete sequence at the end is invalid by now. */
static int stream_text(ChatStream *s, const char *text, size_t len, bool final) {
        size_t hold = 0;
        int r;

        if (s->held_len == 0) {
                /* Fast path: well-formed text goes through without a copy. */
                size_t i = 0;

                while (i < len) {
                        uint32_t cp;
                        int k = utf8_decode(text + i, len - i, &cp);
                        if (k <= 0 || cp == 0)
                                break;
                        i += k;
                }
                if (i == len)
                        return stream_emit(s, text, len);
        }

        s->work.n = 0;
        r = buf_append(&s->work, s->held, s->held_len);
        if (r < 0)
                return r;
        r = buf_append(&s->work, text, len);
        if (r < 0)
                return r;
        s->held_len = 0;

        s->out.n = 0;
        r = utf8_sanitize_append(&s->out, s->work.p, s->work.n, false, final ? NULL : &hold);
        if (r < 0)
                return r;
        if (hold > 0) {
                /* utf8_decode() only reports an incomplete sequence when it is
                 * shorter than 4 bytes. */
                memcpy(s->held, s->work.p + s->work.n - hold, hold);
                s->held_len = hold;
        }

        r = stream_emit(s, s->out.p, s->out.n);

        /* Do not keep a huge buffer for the rest of the stream. */
        if (s->work.alloc > 65536)
                buf_done(&s->work);
        if (s->out.alloc > 65536)
                buf_done(&s->out);
        return r;
}

static int stream_done(ChatStream *s) {
        int r;

        if (s->state != CHAT_STREAM_RUNNING)
                return STREAM_STOP;

        if (s->held_len > 0) {
                r = stream_text(s, "", 0, true);
                if (r < 0)
                        return r;
        }

        s->state = CHAT_STREAM_DONE;
        if (s->cb && s->cb->done) {
                r = stream_callback_result(s, s->cb->done(s->userdata));
                if (r < 0)
                        return r;
        }
        return STREAM_STOP;
}

static int stream_set_model(ChatStream *s, json_object *o) {
        const char *m = json_get_string(o, "model", NULL);

        if (s->model || isempty(m))
                return 0;
        s->model = strdup(m);
        return s->model ? 0 : -ENOMEM;
}

static int stream_error_event(ChatStream *s, json_object *root, const char *data, size_t len) {
        const char *type, *message;
        size_t mlen;

        chat_error_find(root, &type, &message, &mlen);
        if (!message && !root)
                /* Not even JSON: the data itself is all we have. */
                return stream_fail(s, type, data, len);
        if (!message)
                return stream_fail(s, type, "The gateway reported an error without a message.",
                                   strlen("The gateway reported an error without a message."));
        return stream_fail(s, type, message, mlen);
}

/* An "error" event: its data is an error object, or, when it is not even
 * JSON, the message itself. */
static int stream_error_data(ChatStream *s, const char *data, size_t len) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        const char *err = NULL;

        root = json_parse_n(s->tok, data, len, &err);
        return stream_error_event(s, root, data, len);
}

static json_object *stream_parse(ChatStream *s, const char *data, size_t len, int *ret) {
        const char *err = NULL;
        json_object *o;

        o = json_parse_n(s->tok, data, len, &err);
        if (!o) {
                *ret = stream_failf(s, CHAT_ERROR_INVALID_RESPONSE,
                                    "The gateway sent a stream event that is not valid JSON (%s).", err);
                return NULL;
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                *ret = stream_failf(s, CHAT_ERROR_INVALID_RESPONSE,
                                    "The gateway sent a stream event that is not a JSON object.");
                return NULL;
        }
        *ret = 0;
        return o;
}

static int stream_openai_usage(ChatStream *s, json_object *u) {
        uint64_t prompt = 0, completion = 0, cached = 0, written = 0;
        json_object *details;

        if (!json_object_is_type(u, json_type_object))
                return 0; /* "usage": null on every chunk but the last */

        (void) json_get_count(u, "prompt_tokens", &prompt);
        (void) json_get_count(u, "completion_tokens", &completion);
        details = json_get(u, "prompt_tokens_details");
        (void) json_get_count(details, "cached_tokens", &cached);
        (void) json_get_count(details, "cache_write_tokens", &written);

        /* prompt_tokens counts the cached part too; ours does not. */
        cached = MIN(cached, prompt);
        written = MIN(written, prompt - cached);
        s->usage = (ChatUsage) {
                .input = prompt - cached - written,
                .output = completion,
                .cache_read = cached,
                .cache_write = written,
        };
        return 0;
}

static const char *skip_json_space(const char *p, const char *end) {
        while (p < end && strchr(" \t\r\n", *p) && *p)
                p++;
        return p;
}

/* Whether a chunk may have a "usage" or "error" member that is not null:
 * a quote followed by either name, a quote and a colon (what follows a
 * string that is not a key is a comma or a bracket) and a value that does
 * not start with 'n' (null: OpenAI sends "usage":null on every chunk but
 * the last); or a \u escape anywhere (which could spell a name some other
 * way). memchr() jumps over the text between the few quotes a chunk has
 * (quotes inside its strings are escaped). False positives only cost a
 * parse. */
static bool openai_chunk_may_matter(const char *data, size_t len) {
        const char *end = data + len;

        for (const char *p = data; p < end && (p = memchr(p, '"', (size_t) (end - p))); p++) {
                const char *v;

                if ((size_t) (end - p) <= 6 || (memcmp(p + 1, "usage\"", 6) != 0 && memcmp(p + 1, "error\"", 6) != 0))
                        continue;
                v = skip_json_space(p + 7, end);
                if (v >= end || *v != ':')
                        continue;
                v = skip_json_space(v + 1, end);
                if (v < end && *v != 'n')
                        return true;
        }
        for (const char *p = data; p < end && (p = memchr(p, '\\', (size_t) (end - p))); p += 2)
                if (p + 1 < end && p[1] == 'u')
                        return true;
        return false;
}

static int stream_openai_event(ChatStream *s, const char *event, const char *data, size_t len) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *choices, *e;
        int r;

        if (startswith(data, "[DONE]"))
                return stream_done(s);

        if (event && streq(event, "error"))
                return stream_error_data(s, data, len);

        /* Usage only: once the model is known, a chunk can matter only if
         * it names "usage" or "error"; the text deltas in between are not
         * even parsed. */
        if (s->usage_only && s->model && !openai_chunk_may_matter(data, len))
                return 0;

        root = stream_parse(s, data, len, &r);
        if (!root)
                return r;

        /* Mid-stream errors: a chunk with an "error" member. */
        e = json_get(root, "error");
        if (e)
                return stream_error_event(s, root, data, len);

        r = stream_set_model(s, root);
        if (r < 0)
                return r;

        choices = json_get(root, "choices");
        if (json_object_is_type(choices, json_type_array)) {
                size_t n = json_object_array_length(choices);

                for (size_t i = 0; i < n; i++) {
                        json_object *c = json_object_array_get_idx(choices, i), *idx, *delta;
                        const char *text, *finish;
                        size_t tlen = 0;

                        /* We ask for one choice; ignore any others. */
                        idx = json_get(c, "index");
                        if (json_object_is_type(idx, json_type_int) && json_object_get_int64(idx) != 0)
                                continue;

                        delta = json_get(c, "delta");
                        text = s->usage_only ? NULL : json_get_string(delta, "content", &tlen);
                        if (text && tlen > 0) {
                                r = stream_text(s, text, tlen, false);
                                if (r < 0)
                                        return r;
                        }

                        finish = json_get_string(c, "finish_reason", NULL);
                        if (!isempty(finish))
                                s->stop_reason = stop_reason_from_openai(finish);
                }
        }

        return stream_openai_usage(s, json_get(root, "usage"));
}

static void stream_anthropic_usage(ChatStream *s, json_object *u) {
        (void) json_get_count(u, "input_tokens", &s->usage.input);
        (void) json_get_count(u, "output_tokens", &s->usage.output);
        (void) json_get_count(u, "cache_read_input_tokens", &s->usage.cache_read);
        (void) json_get_count(u, "cache_creation_input_tokens", &s->usage.cache_write);
}

static bool anthropic_event_known(const char *event) {
        static const char *const known[] = {
                "message_start",       "message_delta",      "message_stop", "content_block_start",
                "content_block_delta", "content_block_stop", "error",
        };

        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (streq(event, known[i]))
                        return true;
        return false;
}

static int stream_anthropic_event(ChatStream *s, const char *event, const char *data, size_t len) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        const char *type;
        int r;

        /* Like the official clients: named events we do not know (ping and
         * whatever comes next) are skipped without even parsing them. */
        if (event && !anthropic_event_known(event))
                return 0;
        /* Usage only: the content blocks carry none (the event line decides
         * the type, as below, so nothing is lost by not parsing them). */
        if (s->usage_only && event && startswith(event, "content_block_"))
                return 0;

        if (event && streq(event, "error"))
                return stream_error_data(s, data, len);

        root = stream_parse(s, data, len, &r);
        if (!root)
                return r;

        /* The event line and the "type" member agree on the wire; the event
         * line is what the official clients go by, "type" covers streams
         * that leave it out. */
        type = event ?: json_get_string(root, "type", NULL);
        if (!type)
                return 0;

        if (streq(type, "message_start")) {
                json_object *m = json_get(root, "message");

                r = stream_set_model(s, m);
                if (r < 0)
                        return r;
                stream_anthropic_usage(s, json_get(m, "usage"));

        } else if (streq(type, "content_block_delta")) {
                json_object *d = json_get(root, "delta");
                const char *dtype = json_get_string(d, "type", NULL), *text;
                size_t tlen = 0;

                /* Only text_delta is answer text: thinking, signatures and
                 * tool input are not. */
                if (!dtype || !streq(dtype, "text_delta") || s->usage_only)
                        return 0;
                text = json_get_string(d, "text", &tlen);
                if (text && tlen > 0)
                        return stream_text(s, text, tlen, false);

        } else if (streq(type, "message_delta")) {
                const char *reason = json_get_string(json_get(root, "delta"), "stop_reason", NULL);

                if (!isempty(reason))
                        s->stop_reason = stop_reason_from_anthropic(reason);
                /* Cumulative counts: they replace what message_start said. */
                stream_anthropic_usage(s, json_get(root, "usage"));

        } else if (streq(type, "message_stop"))
                return stream_done(s);
        else if (streq(type, "error"))
                return stream_error_event(s, root, data, len);

        return 0;
}

static int stream_on_event(const char *event, const char *data, size_t len, void *userdata) {
        ChatStream *s = userdata;
        int r;

        if (s->state != CHAT_STREAM_RUNNING)
                return STREAM_STOP;

        r = s->api == CHAT_API_OPENAI ? stream_openai_event(s, event, data, len) :
                                        stream_anthropic_event(s, event, data, len);
        if (s->cb_error < 0)
                return s->cb_error;
        return r;
}

int chat_stream_feed(ChatStream *s, const void *buf, size_t n, const ChatStreamCallbacks *cb, void *userdata) {
        int r;

        if (!s || (!buf && n > 0))
                return -EINVAL;
        if (s->cb_error < 0)
                return s->cb_error;
        if (s->state != CHAT_STREAM_RUNNING)
                return 1; /* bytes after the terminator are ignored */

        s->cb = cb;
        s->userdata = userdata;
        r = sse_parser_feed(s->sse, buf, n, stream_on_event, s);
        if (r == -E2BIG && s->state == CHAT_STREAM_RUNNING)
                (void) stream_failf(s, CHAT_ERROR_INVALID_RESPONSE,
                                    "The gateway sent a stream event larger than the limit of %zu bytes.",
                                    s->max_event);
        s->cb = NULL;
        s->userdata = NULL;

        if (s->cb_error < 0)
                return s->cb_error;
        if (s->state != CHAT_STREAM_RUNNING)
                return 1;
        return r < 0 ? r : 0;
}

int chat_stream_finish(ChatStream *s, const ChatStreamCallbacks *cb, void *userdata) {
        if (!s)
                return -EINVAL;
        if (s->cb_error < 0)
                return s->cb_error;

        (void) sse_parser_finish(s->sse);

        if (s->state == CHAT_STREAM_RUNNING) {
                s->cb = cb;
                s->userdata = userdata;
                (void) stream_failf(s, CHAT_ERROR_INCOMPLETE,
                                    "The gateway closed the stream before the answer was complete.");
                s->cb = NULL;
                s->userdata = NULL;
                if (s->cb_error < 0)
                        return s->cb_error;
        }

        return s->state == CHAT_STREAM_DONE;
}
