/* SPDX-License-Identifier: MIT */
/* OpenAI/Anthropic chat wire formats; see chat-wire.h. */
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>

#include "chat-wire.h"
#include "sse.h"

#define JSON_MAX_DEPTH 64
/* Bodies of error answers are only searched this far for an HTML title. */
#define ERROR_BODY_SCAN_MAX ((size_t) 64U * 1024U)
/* A plain-text error body is shown when it is at most this long. */
#define ERROR_BODY_TEXT_MAX 1024U
#define ERROR_TYPE_MAX 64U

static const char *const chat_api_table[_CHAT_API_MAX] = {
        [CHAT_API_OPENAI] = "openai",
        [CHAT_API_ANTHROPIC] = "anthropic",
};

const char *chat_api_to_string(ChatApi api) {
        if (api < 0 || api >= _CHAT_API_MAX)
                return NULL;
        return chat_api_table[api];
}

ChatApi chat_api_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _CHAT_API_MAX; i++)
                        if (streq(s, chat_api_table[i]))
                                return (ChatApi) i;
        return _CHAT_API_INVALID;
}

static const char *const stop_reason_table[_CHAT_STOP_MAX] = {
        [CHAT_STOP_NONE] = "other",
        [CHAT_STOP_END_TURN] = "end_turn",
        [CHAT_STOP_MAX_TOKENS] = "max_tokens",
        [CHAT_STOP_STOP_SEQUENCE] = "stop_sequence",
        [CHAT_STOP_TOOL_USE] = "tool_use",
        [CHAT_STOP_OTHER] = "other",
};

const char *chat_stop_reason_to_string(ChatStopReason r) {
        if (r < 0 || r >= _CHAT_STOP_MAX)
                return "other";
        return stop_reason_table[r];
}

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

/* ---- Small growable byte buffer ---------------------------------------- */

typedef struct Buf {
        char *p;
        size_t len;
        size_t alloc;
} Buf;

static int buf_append(Buf *b, const void *s, size_t n) {
        if (b->len + n + 1 > b->alloc) {
                size_t a = MAX(b->alloc * 2, (size_t) 128);

                while (a < b->len + n + 1)
                        a *= 2;
                char *t = realloc(b->p, a);
                if (!t)
                        return -ENOMEM;
                b->p = t;
                b->alloc = a;
        }
        if (n > 0)
                memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
        return 0;
}

static void buf_done(Buf *b) {
        free(b->p);
        *b = (Buf) {};
}

/* ---- UTF-8 ------------------------------------------------------------- */

#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Looks at the sequence starting at s[0]. Returns its length (1..4) when it
 * is valid (the code point goes to *ret_cp), 0 when s[0..n) is a valid but
 * incomplete start of one, or -k when the first k bytes are an invalid
 * subpart to be replaced by one U+FFFD (the "maximal subpart" practice of
 * the Unicode standard, as browsers do). */
static int utf8_next(const uint8_t *s, size_t n, uint32_t *ret_cp) {
        uint8_t c = s[0], lo = 0x80, hi = 0xBF;
        uint32_t cp;
        size_t len;

        if (c < 0x80) {
                *ret_cp = c;
                return 1;
        }
        if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
                cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                cp = c & 0x0F;
                if (c == 0xE0)
                        lo = 0xA0; /* no overlongs */
                else if (c == 0xED)
                        hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                cp = c & 0x07;
                if (c == 0xF0)
                        lo = 0x90; /* no overlongs */
                else if (c == 0xF4)
                        hi = 0x8F; /* nothing above U+10FFFF */
        } else
                return -1;

        for (size_t k = 1; k < len; k++) {
                if (k >= n)
                        return 0;
                if (s[k] < lo || s[k] > hi)
                        return -(int) k;
                lo = 0x80;
                hi = 0xBF;
                cp = (cp << 6) | (s[k] & 0x3F);
        }
        *ret_cp = cp;
        return (int) len;
}

/* Appends s[0..n) to out as valid UTF-8: invalid subparts (and NULs, unless
 * keep_nul) become U+FFFD. When hold is non-NULL an incomplete sequence at
 * the very end is not appended; its length goes to *hold instead. */
static int utf8_sanitize_append(Buf *out, const char *str, size_t n, bool keep_nul, size_t *hold) {
        const uint8_t *s = (const uint8_t *) str;
        size_t i = 0, run = 0; /* s[run..i) is valid and not yet copied */
        int r;

        if (hold)
                *hold = 0;

        while (i < n) {
                uint32_t cp;
                int k = utf8_next(s + i, n - i, &cp);

                if (k > 0 && (cp != 0 || keep_nul)) {
                        i += k;
                        continue;
                }

                r = buf_append(out, s + run, i - run);
                if (r < 0)
                        return r;

                if (k == 0 && hold) {
                        *hold = n - i;
                        return 0;
                }

                r = buf_append(out, UTF8_REPLACEMENT, strlen(UTF8_REPLACEMENT));
                if (r < 0)
                        return r;
                i += k > 0 ? (size_t) k : k == 0 ? n - i : (size_t) -k;
                run = i;
        }

        return buf_append(out, s + run, i - run);
}

/* A message for people: valid UTF-8, control characters and runs of white
 * space folded into single spaces, trimmed, at most max bytes (cut on a
 * character boundary, marked with "…"). */
static int text_sanitize(const char *str, size_t n, size_t max, char **ret) {
        _cleanup_(buf_done) Buf valid = {}, out = {};
        size_t i = 0;
        bool space = false;
        int r;

        /* NULs stay for now: they are control characters, folded below. */
        r = utf8_sanitize_append(&valid, str ?: "", str ? n : 0, true, NULL);
        if (r < 0)
                return r;

        while (i < valid.len) {
                const uint8_t *s = (const uint8_t *) valid.p + i;
                uint32_t cp;
                int k = utf8_next(s, valid.len - i, &cp);

                if (k <= 0) /* cannot happen after sanitising; be safe anyway */
                        k = 1, cp = 0xFFFD;

                if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == ' ') {
                        space = out.len > 0;
                        i += k;
                        continue;
                }

                size_t need = (space ? 1 : 0) + (size_t) k;
                if (out.len + need > max) {
                        /* Cut here; make room for the ellipsis on a boundary. */
                        while (out.len > 0 && out.len + strlen("…") > max) {
                                out.len--;
                                while (out.len > 0 && ((uint8_t) out.p[out.len] & 0xC0) == 0x80)
                                        out.len--;
                        }
                        while (out.len > 0 && out.p[out.len - 1] == ' ')
                                out.len--;
                        if (out.p)
                                out.p[out.len] = 0;
                        if (out.len + strlen("…") <= max) {
                                r = buf_append(&out, "…", strlen("…"));
                                if (r < 0)
                                        return r;
                        }
                        break;
                }

                if (space) {
                        r = buf_append(&out, " ", 1);
                        if (r < 0)
                                return r;
                        space = false;
                }
                r = buf_append(&out, s, k);
                if (r < 0)
                        return r;
                i += k;
        }

        if (!out.p) {
                r = buf_append(&out, "", 0);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(out.p);
        return 0;
}

/* Error types are identifiers: keep [A-Za-z0-9_.-], bounded. NULL when
 * nothing usable is left. */
static int type_sanitize(const char *s, char **ret) {
        _cleanup_free_ char *t = NULL;
        size_t n = 0;

        if (isempty(s)) {
                *ret = NULL;
                return 0;
        }

        t = malloc(ERROR_TYPE_MAX + 1);
        if (!t)
                return -ENOMEM;
        for (; *s && n < ERROR_TYPE_MAX; s++)
                if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                    *s == '_' || *s == '-' || *s == '.')
                        t[n++] = *s;
        t[n] = 0;
        *ret = n > 0 ? TAKE_PTR(t) : NULL;
        return 0;
}

/* ---- JSON helpers ------------------------------------------------------ */

static json_object *json_get(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v; /* NULL for JSON null too */
}

static const char *json_get_string(json_object *o, const char *key, size_t *ret_len) {
        json_object *v = json_get(o, key);

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        if (ret_len)
                *ret_len = (size_t) json_object_get_string_len(v);
        return json_object_get_string(v);
}

/* Token counts: non-negative integers (a float is accepted and truncated). */
static bool json_get_count(json_object *o, const char *key, uint64_t *ret) {
        json_object *v = json_get(o, key);

        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);
                *ret = i > 0 ? (uint64_t) i : 0;
                return true;
        }
        if (json_object_is_type(v, json_type_double)) {
                double d = json_object_get_double(v);
                *ret = isfinite(d) && d > 0 ? (d < 1e18 ? (uint64_t) d : UINT64_C(1000000000000000000)) : 0;
                return true;
        }
        return false;
}

/* Parses exactly s[0..n) (surrounding white space allowed). */
static json_object *json_parse_n(json_tokener *tok, const char *s, size_t n, const char **ret_error) {
        json_object *o;
        size_t off;

        if (n > INT32_MAX) {
                *ret_error = "too large";
                return NULL;
        }

        json_tokener_reset(tok);
        o = json_tokener_parse_ex(tok, s, (int) n);
        if (!o) {
                enum json_tokener_error e = json_tokener_get_error(tok);
                *ret_error = e == json_tokener_continue ? "unexpected end of data" : json_tokener_error_desc(e);
                return NULL;
        }

        off = json_tokener_get_parse_end(tok);
        for (; off < n; off++)
                if (!strchr(" \t\r\n", s[off]) || s[off] == 0) {
                        json_object_put(o);
                        *ret_error = "unexpected data after the JSON value";
                        return NULL;
                }
        return o;
}

/* Finds type and message in an error object of any of the known shapes. */
static void json_find_error(json_object *root, const char **ret_type, const char **ret_message, size_t *ret_len) {
        const char *type = NULL, *message = NULL;
        size_t len = 0;
        json_object *e = json_get(root, "error");

        if (json_object_is_type(e, json_type_object)) {
                /* {"error":{"message","type","code"}} and
                 * {"type":"error","error":{"type","message"}} */
                type = json_get_string(e, "type", NULL);
                if (isempty(type))
                        type = json_get_string(e, "code", NULL);
                message = json_get_string(e, "message", &len);
        } else if (json_object_is_type(e, json_type_string)) {
                /* {"error":"msg"} */
                message = json_get_string(root, "error", &len);
        }

        if (isempty(message)) {
                message = json_get_string(root, "message", &len);
                if (isempty(message))
                        message = json_get_string(root, "detail", &len);
        }
        if (isempty(message))
                message = NULL, len = 0;
        if (isempty(type))
                type = NULL;

        *ret_type = type;
        *ret_message = message;
        *ret_len = len;
}

/* ---- Request bodies ---------------------------------------------------- */

static bool role_is_valid(const char *role) {
        return role && (streq(role, "system") || streq(role, "user") || streq(role, "assistant"));
}

/* Doubles in their shortest form that reads back the same (0.7, not
 * 0.69999999999999996). */
static json_object *json_new_double_short(double d) {
        char s[64];

        for (int prec = 15; prec <= 17; prec++) {
                (void) snprintf(s, sizeof s, "%.*g", prec, d);
                if (strtod(s, NULL) == d)
                        break;
        }
        return json_object_new_double_s(d, s);
}

static int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_append(json_object *a, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_append_message(json_object *a, const char *role, const char *content) {
        json_object *m;
        int r;

        m = json_object_new_object();
        if (!m)
                return -ENOMEM;
        r = json_add(m, "role", json_object_new_string(role));
        if (r >= 0)
                r = json_add(m, "content", json_object_new_string(content));
        if (r < 0) {
                json_object_put(m);
                return r;
        }
        return json_append(a, m);
}

static bool sampling_param_valid(double d) {
        return isnan(d) || (isfinite(d) && d >= 0);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

int chat_request_build(ChatApi api, const ChatRequestParams *p, char **ret_json) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(buf_done) Buf system = {};
        json_object *messages;
        size_t n_kept = 0;
        int r;

        if (!p || !ret_json || api < 0 || api >= _CHAT_API_MAX)
                return -EINVAL;
        if (isempty(p->model) || p->n_messages == 0 || !p->messages)
                return -EINVAL;
        for (size_t i = 0; i < p->n_messages; i++)
                if (!role_is_valid(p->messages[i].role) || !p->messages[i].content)
                        return -EINVAL;
        if (!sampling_param_valid(p->temperature) || !sampling_param_valid(p->top_p))
                return -EINVAL;

        root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        r = json_add(root, "model", json_object_new_string(p->model));
        if (r < 0)
                return r;

        messages = json_object_new_array();
        r = json_add(root, "messages", messages);
        if (r < 0)
                return r;

        if (api == CHAT_API_OPENAI) {
                if (!isempty(p->system)) {
                        r = json_append_message(messages, "system", p->system);
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < p->n_messages; i++) {
                        r = json_append_message(messages, p->messages[i].role, p->messages[i].content);
                        if (r < 0)
                                return r;
                }
        } else {
                if (!isempty(p->system)) {
                        r = buf_append(&system, p->system, strlen(p->system));
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < p->n_messages; i++) {
                        const ChatMessage *m = p->messages + i;

                        if (streq(m->role, "system")) {
                                /* Anthropic has no system role: gather them
                                 * into the top-level field. */
                                if (system.p) {
                                        r = buf_append(&system, "\n\n", 2);
                                        if (r < 0)
                                                return r;
                                }
                                r = buf_append(&system, m->content, strlen(m->content));
                                if (r < 0)
                                        return r;
                                continue;
                        }

                        r = json_append_message(messages, m->role, m->content);
                        if (r < 0)
                                return r;
                        n_kept++;
                }
                if (n_kept == 0)
                        return -EINVAL;
                if (system.p) {
                        r = json_add(root, "system", json_object_new_string(system.p));
                        if (r < 0)
                                return r;
                }
        }

        uint32_t max_tokens = p->max_tokens;
        if (api == CHAT_API_ANTHROPIC && max_tokens == 0)
                max_tokens = p->model_max_output_tokens > 0 ?
                        MIN(p->model_max_output_tokens, CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS) :
                        CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS;
        if (max_tokens > 0) {
                r = json_add(root, api == CHAT_API_OPENAI ? "max_completion_tokens" : "max_tokens",
                             json_object_new_int64(max_tokens));
                if (r < 0)
                        return r;
        }

        if (!isnan(p->temperature)) {
                r = json_add(root, "temperature", json_new_double_short(p->temperature));
                if (r < 0)
                        return r;
        }
        if (!isnan(p->top_p)) {
                r = json_add(root, "top_p", json_new_double_short(p->top_p));
                if (r < 0)
                        return r;
        }

        if (p->stop && p->stop[0]) {
                json_object *a = json_object_new_array();

                r = json_add(root, api == CHAT_API_OPENAI ? "stop" : "stop_sequences", a);
                if (r < 0)
                        return r;
                for (char *const *s = p->stop; *s; s++) {
                        r = json_append(a, json_object_new_string(*s));
                        if (r < 0)
                                return r;
                }
        }

        r = json_add(root, "stream", json_object_new_boolean(true));
        if (r < 0)
                return r;

        if (api == CHAT_API_OPENAI) {
                json_object *o = json_object_new_object();

                r = json_add(root, "stream_options", o);
                if (r < 0)
                        return r;
                r = json_add(o, "include_usage", json_object_new_boolean(true));
                if (r < 0)
                        return r;
        }

        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        char *j = strdup(s);
        if (!j)
                return -ENOMEM;
        *ret_json = j;
        return 0;
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
        s->tok = json_tokener_new_ex(JSON_MAX_DEPTH);
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

        r = type_sanitize(type, &s->error_type);
        if (r < 0)
                return r;
        if (!s->error_type) {
                s->error_type = strdup("unknown_error");
                if (!s->error_type)
                        return -ENOMEM;
        }
        r = text_sanitize(message, len, CHAT_ERROR_MESSAGE_MAX, &s->error_message);
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
                const uint8_t *u = (const uint8_t *) text;
                size_t i = 0;

                while (i < len) {
                        uint32_t cp;
                        int k = utf8_next(u + i, len - i, &cp);
                        if (k <= 0 || cp == 0)
                                break;
                        i += k;
                }
                if (i == len)
                        return stream_emit(s, text, len);
        }

        s->work.len = 0;
        r = buf_append(&s->work, s->held, s->held_len);
        if (r < 0)
                return r;
        r = buf_append(&s->work, text, len);
        if (r < 0)
                return r;
        s->held_len = 0;

        s->out.len = 0;
        r = utf8_sanitize_append(&s->out, s->work.p, s->work.len, false, final ? NULL : &hold);
        if (r < 0)
                return r;
        if (hold > 0) {
                /* utf8_next() only reports an incomplete sequence when it is
                 * shorter than 4 bytes. */
                memcpy(s->held, s->work.p + s->work.len - hold, hold);
                s->held_len = hold;
        }

        r = stream_emit(s, s->out.p, s->out.len);

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

        json_find_error(root, &type, &message, &mlen);
        if (!message && !root)
                /* Not even JSON: the data itself is all we have. */
                return stream_fail(s, type, data, len);
        if (!message)
                return stream_fail(s, type, "The gateway reported an error without a message.",
                                   strlen("The gateway reported an error without a message."));
        return stream_fail(s, type, message, mlen);
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

static int stream_openai_event(ChatStream *s, const char *event, const char *data, size_t len) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *choices, *e;
        int r;

        if (startswith(data, "[DONE]"))
                return stream_done(s);

        if (event && streq(event, "error")) {
                const char *err = NULL;
                root = json_parse_n(s->tok, data, len, &err);
                return stream_error_event(s, root, data, len);
        }

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
                        text = json_get_string(delta, "content", &tlen);
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

        if (event && streq(event, "error")) {
                const char *err = NULL;
                root = json_parse_n(s->tok, data, len, &err);
                return stream_error_event(s, root, data, len);
        }

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
                if (!dtype || !streq(dtype, "text_delta"))
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

/* ---- Error bodies ------------------------------------------------------ */

static const char *memmem_nocase(const char *h, size_t hlen, const char *needle) {
        size_t nlen = strlen(needle);

        if (nlen > hlen)
                return NULL;
        for (size_t i = 0; i + nlen <= hlen; i++)
                if (strncasecmp(h + i, needle, nlen) == 0)
                        return h + i;
        return NULL;
}

/* Decodes the handful of entities that show up in page titles. */
static int html_unescape(const char *s, size_t n, Buf *out) {
        static const struct {
                const char *entity;
                const char *text;
        } table[] = {
                { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
                { "&#39;", "'" }, { "&apos;", "'" }, { "&nbsp;", " " },
        };
        int r;

        for (size_t i = 0; i < n;) {
                bool found = false;

                if (s[i] == '&')
                        for (size_t k = 0; k < ELEMENTSOF(table); k++) {
                                size_t l = strlen(table[k].entity);
                                if (l <= n - i && strncasecmp(s + i, table[k].entity, l) == 0) {
                                        r = buf_append(out, table[k].text, strlen(table[k].text));
                                        if (r < 0)
                                                return r;
                                        i += l;
                                        found = true;
                                        break;
                                }
                        }
                if (found)
                        continue;
                r = buf_append(out, s + i, 1);
                if (r < 0)
                        return r;
                i++;
        }
        return 0;
}

static int error_summary_html(const char *body, size_t len, char **ret) {
        _cleanup_(buf_done) Buf t = {};
        const char *start, *end;
        int r;

        len = MIN(len, ERROR_BODY_SCAN_MAX);
        start = memmem_nocase(body, len, "<title");
        if (start) {
                start = memchr(start, '>', len - (start - body));
                if (start) {
                        start++;
                        end = memmem_nocase(start, len - (start - body), "</title");
                        if (end) {
                                r = html_unescape(start, end - start, &t);
                                if (r < 0)
                                        return r;
                                if (t.p) {
                                        _cleanup_free_ char *m = NULL;

                                        r = text_sanitize(t.p, t.len, CHAT_ERROR_MESSAGE_MAX, &m);
                                        if (r < 0)
                                                return r;
                                        if (!isempty(m)) {
                                                *ret = TAKE_PTR(m);
                                                return 0;
                                        }
                                }
                        }
                }
        }

        *ret = strdup("unexpected HTML answer");
        return *ret ? 0 : -ENOMEM;
}

static bool looks_like_text(const char *s, size_t n) {
        if (!utf8_is_valid_n(s, n))
                return false;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t) s[i] < 0x20 && !strchr("\t\r\n", s[i]))
                        return false;
        return true;
}

int chat_parse_error_body(const char *body, size_t len, char **ret_type, char **ret_message) {
        _cleanup_free_ char *type = NULL, *message = NULL;
        int structured = 0, r;

        if (!ret_message || (!body && len > 0))
                return -EINVAL;

        /* Skip a BOM and leading white space. */
        if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
                body += 3, len -= 3;
        while (len > 0 && strchr(" \t\r\n", body[0]) && body[0])
                body++, len--;
        while (len > 0 && strchr(" \t\r\n", body[len - 1]) && body[len - 1])
                len--;

        if (len == 0) {
                message = strdup("empty answer");
                if (!message)
                        return -ENOMEM;

        } else if (body[0] == '{' || body[0] == '[') {
                _cleanup_(json_object_putp) json_object *root = NULL;
                json_tokener *tok;
                const char *err = NULL, *t, *m;
                size_t mlen;

                tok = json_tokener_new_ex(JSON_MAX_DEPTH);
                if (!tok)
                        return -ENOMEM;
                root = json_parse_n(tok, body, len, &err);
                json_tokener_free(tok);

                json_find_error(root, &t, &m, &mlen);
                if (m) {
                        r = type_sanitize(t, &type);
                        if (r < 0)
                                return r;
                        r = text_sanitize(m, mlen, CHAT_ERROR_MESSAGE_MAX, &message);
                        if (r < 0)
                                return r;
                        structured = 1;
                } else if (t) {
                        /* A type but no message: say at least that much. */
                        r = type_sanitize(t, &type);
                        if (r < 0)
                                return r;
                        message = strdup(type ? type : "unexpected JSON answer");
                        if (!message)
                                return -ENOMEM;
                        structured = 1;
                } else {
                        message = strdup(root ? "unexpected JSON answer" : "unexpected non-JSON answer");
                        if (!message)
                                return -ENOMEM;
                }

        } else if (body[0] == '<' || memmem_nocase(body, MIN(len, ERROR_BODY_SCAN_MAX), "<html")) {
                r = error_summary_html(body, len, &message);
                if (r < 0)
                        return r;

        } else if (len <= ERROR_BODY_TEXT_MAX && looks_like_text(body, len)) {
                /* Short plain text, as proxies send ("upstream connect error"). */
                r = text_sanitize(body, len, CHAT_ERROR_MESSAGE_MAX, &message);
                if (r < 0)
                        return r;
        } else {
                message = strdup("unexpected non-JSON answer");
                if (!message)
                        return -ENOMEM;
        }

        if (ret_type)
                *ret_type = TAKE_PTR(type);
        *ret_message = TAKE_PTR(message);
        return structured;
}

/* ---- Retry-After ------------------------------------------------------- */

/* A non-negative decimal number ("12", "1.5"), white space around allowed,
 * scaled by unit (µs per 1). */
static int parse_decimal_usec(const char *s, uint64_t unit, uint64_t *ret) {
        uint64_t whole = 0, frac = 0, scale = unit;
        bool digits = false;

        s += strspn(s, " \t");
        for (; *s >= '0' && *s <= '9'; s++) {
                digits = true;
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*s - '0');
        }
        if (*s == '.') {
                s++;
                for (; *s >= '0' && *s <= '9'; s++) {
                        digits = true;
                        scale /= 10;
                        frac += (uint64_t) (*s - '0') * scale; /* digits beyond µs vanish */
                }
        }
        s += strspn(s, " \t");
        if (!digits || *s)
                return -EINVAL;
        if (whole > (UINT64_MAX - frac) / unit)
                return -ERANGE;

        *ret = whole * unit + frac;
        return 0;
}

static int month_from_name(const char *m) {
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

        for (int i = 0; i < 12; i++)
                if (strcasecmp(m, months[i]) == 0)
                        return i + 1;
        return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* HTTP dates (RFC 9110 §5.6.7), parsed by hand: strptime() would follow the
 * locale for month names. */
static int parse_http_date(const char *s, uint64_t *ret_usec) {
        char wday[16], mon[4];
        int day, year, hh, mm, ss, n = -1;

        s += strspn(s, " \t");

        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wday, &day, mon, &year, &hh, &mm, &ss, &n) ==
                    7 &&
            n > 0)
                goto parsed;
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        n = -1;
        if (sscanf(s, "%15[A-Za-z], %2d-%3[A-Za-z]-%4d %2d:%2d:%2d GMT%n", wday, &day, mon, &year, &hh, &mm, &ss, &n) ==
                    7 &&
            n > 0) {
                if (year < 100)
                        year += year < 70 ? 2000 : 1900;
                goto parsed;
        }
        /* asctime: Sun Nov  6 08:49:37 1994 */
        n = -1;
        if (sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, mon, &day, &hh, &mm, &ss, &year, &n) == 7 &&
            n > 0)
                goto parsed;
        return -EINVAL;

parsed:
        s += n;
        s += strspn(s, " \t");
        if (*s)
                return -EINVAL;

        int month = month_from_name(mon);
        if (month < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 ||
            year < 1970)
                return -EINVAL;

        int64_t t = days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
        if (t < 0)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

int http_parse_retry_after(const char *retry_after, const char *retry_after_ms, uint64_t now_usec_realtime,
                           uint64_t *ret_usec) {
        uint64_t v, when;
        int r = -ENODATA;

        if (!ret_usec)
                return -EINVAL;

        /* The OpenAI clients' convention: milliseconds, preferred when valid. */
        if (retry_after_ms) {
                r = parse_decimal_usec(retry_after_ms, USEC_PER_MSEC, &v);
                if (r >= 0) {
                        *ret_usec = v;
                        return 0;
                }
        }

        if (retry_after) {
                r = parse_decimal_usec(retry_after, USEC_PER_SEC, &v);
                if (r >= 0) {
                        *ret_usec = v;
                        return 0;
                }
                if (r == -EINVAL) {
                        r = parse_http_date(retry_after, &when);
                        if (r >= 0) {
                                *ret_usec = when > now_usec_realtime ? when - now_usec_realtime : 0;
                                return 0;
                        }
                }
        }

        return r;
}

/* ---- Cost -------------------------------------------------------------- */

static double price_or_zero(double p) {
        return isfinite(p) && p > 0 ? p : 0;
}

double chat_cost_usd(const ChatUsage *u, double p_in, double p_out, double p_cache_read, double p_cache_write) {
        if (!u)
                return 0;

        return ((double) u->input * price_or_zero(p_in) + (double) u->output * price_or_zero(p_out) +
                (double) u->cache_read * price_or_zero(p_cache_read) +
                (double) u->cache_write * price_or_zero(p_cache_write)) /
               1e6;
}
