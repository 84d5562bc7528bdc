/* SPDX-License-Identifier: MIT */
/* Unit tests for the chat wire formats (common/chat-request.c, chat-stream.c, http-error.c, chat-cost.c). */
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>

#include "chat-cost.h"
#include "chat-request.h"
#include "chat-stream.h"
#include "http-error.h"
#include "utf8.h"
#include "sse.h"
#include "transcripts.h"
#include "test.h"

/* ---- Stream harness ---------------------------------------------------- */

typedef struct Result {
        char text[65536];
        size_t text_len;
        unsigned n_deltas, n_done, n_failed;
        char type[128], message[512];
        int fail_delta_at; /* make the n-th delta return -42 */
        /* What the stream said afterwards. */
        int feed_end;   /* first feed() return that was not 0 */
        int finish;
        ChatStreamState state;
        ChatStopReason stop;
        char model[128];
        ChatUsage usage;
        bool has_text;
} Result;

static int on_delta(const char *text, size_t len, void *userdata) {
        Result *r = userdata;

        ASSERT(len > 0);
        ASSERT(text[len] == 0);
        ASSERT(utf8_is_valid_n(text, len));
        ASSERT(memchr(text, 0, len) == NULL);
        ASSERT(r->n_done == 0 && r->n_failed == 0);
        ASSERT(r->text_len + len < sizeof r->text);
        memcpy(r->text + r->text_len, text, len);
        r->text_len += len;
        r->text[r->text_len] = 0;
        r->n_deltas++;
        if (r->fail_delta_at > 0 && r->n_deltas == (unsigned) r->fail_delta_at)
                return -42;
        return 0;
}

static int on_done(void *userdata) {
        Result *r = userdata;
        ASSERT(r->n_failed == 0);
        r->n_done++;
        return 0;
}

static int on_failed(const char *type, const char *message, void *userdata) {
        Result *r = userdata;

        ASSERT(r->n_done == 0);
        ASSERT(type && message);
        ASSERT(utf8_is_valid_n(message, strlen(message)));
        ASSERT(strlen(message) <= CHAT_ERROR_MESSAGE_MAX);
        r->n_failed++;
        snprintf(r->type, sizeof r->type, "%s", type);
        snprintf(r->message, sizeof r->message, "%s", message);
        return 0;
}

static const ChatStreamCallbacks callbacks = {
        .delta = on_delta,
        .done = on_done,
        .failed = on_failed,
};

static void collect(ChatStream *s, Result *res) {
        const char *m = chat_stream_get_model(s), *type, *message;

        res->state = chat_stream_get_state(s);
        res->stop = chat_stream_get_stop_reason(s);
        snprintf(res->model, sizeof res->model, "%s", strempty(m));
        chat_stream_get_usage(s, &res->usage);
        res->has_text = chat_stream_has_text(s);
        ASSERT(res->n_done + res->n_failed <= 1);
        if (res->state == CHAT_STREAM_FAILED) {
                ASSERT(chat_stream_get_error(s, &type, &message));
                ASSERT_STREQ(type, res->type);
                ASSERT_STREQ(message, res->message);
                ASSERT(res->n_failed == 1);
        } else
                ASSERT(!chat_stream_get_error(s, &type, &message));
        if (res->state == CHAT_STREAM_DONE)
                ASSERT(res->n_done == 1);
}

/* Set by test_usage_only(): streams are made with chat_stream_set_usage_only(). */
static bool usage_only;

/* Feeds in pieces of size piece (0: whole; SIZE_MAX: random, seeded). */
static void run_pieces(ChatApi api, const char *body, size_t n, size_t piece, unsigned seed, Result *res) {
        _cleanup_chat_stream_ ChatStream *s = NULL;

        *res = (Result) {};
        ASSERT(chat_stream_new(api, &s) == 0);
        chat_stream_set_usage_only(s, usage_only);
        if (seed)
                srandom(seed);
        for (size_t i = 0; i < n;) {
                size_t k = piece == 0 ? n : piece == SIZE_MAX ? (size_t) random() % 64 : piece;
                k = MIN(k, n - i);
                int r = chat_stream_feed(s, body + i, k, &callbacks, res);
                ASSERT(r == 0 || r == 1 || r == -42);
                if (r != 0 && res->feed_end == 0)
                        res->feed_end = r;
                if (r < 0)
                        break;
                i += k;
        }
        res->finish = chat_stream_finish(s, &callbacks, res);
        collect(s, res);
}

static void run(ChatApi api, const char *body, Result *res) {
        run_pieces(api, body, strlen(body), 0, 0, res);
}

static void assert_usage(const ChatUsage *u, uint64_t in, uint64_t out, uint64_t cr, uint64_t cw) {
        if (u->input != in || u->output != out || u->cache_read != cr || u->cache_write != cw) {
                fprintf(stderr, "usage %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 ", expected %" PRIu64 "/%" PRIu64
                                "/%" PRIu64 "/%" PRIu64 "\n",
                        u->input, u->output, u->cache_read, u->cache_write, in, out, cr, cw);
                abort();
        }
}

static void assert_same(const Result *a, const Result *b) {
        ASSERT_STREQ(a->text, b->text);
        ASSERT(a->state == b->state);
        ASSERT(a->stop == b->stop);
        ASSERT_STREQ(a->model, b->model);
        assert_usage(&a->usage, b->usage.input, b->usage.output, b->usage.cache_read, b->usage.cache_write);
        ASSERT(a->finish == b->finish);
        ASSERT(a->n_done == b->n_done && a->n_failed == b->n_failed);
        ASSERT_STREQ(a->type, b->type);
}

/* Whole, every piece size, and random splits, in LF, CRLF and CR. */
static void check_all_splits(ChatApi api, const char *body, const Result *expect) {
        static const char *const eols[] = { "\n", "\r\n", "\r" };

        for (size_t e = 0; e < ELEMENTSOF(eols); e++) {
                _cleanup_free_ char *b = with_eol(body, eols[e]);
                size_t n = strlen(b);
                Result res;

                for (size_t piece = 1; piece <= n; piece++) {
                        run_pieces(api, b, n, piece, 0, &res);
                        assert_same(&res, expect);
                }
                for (unsigned seed = 1; seed <= 100; seed++) {
                        run_pieces(api, b, n, SIZE_MAX, seed * 7919 + e, &res);
                        assert_same(&res, expect);
                }
        }
}

static void test_transcripts(void) {
        Result o, a;

        run(CHAT_API_OPENAI, openai_transcript, &o);
        ASSERT_STREQ(o.text, "Hello");
        ASSERT(o.n_deltas == 1); /* the first chunk's "" gave none */
        ASSERT(o.state == CHAT_STREAM_DONE && o.n_done == 1 && o.n_failed == 0);
        ASSERT(o.finish == 1 && o.feed_end == 1);
        ASSERT(o.stop == CHAT_STOP_END_TURN);
        ASSERT_STREQ(o.model, "gpt-5-mini");
        assert_usage(&o.usage, 10, 1, 0, 0);
        ASSERT(o.has_text);

        run(CHAT_API_ANTHROPIC, anthropic_transcript, &a);
        ASSERT_STREQ(a.text, "Hello");
        ASSERT(a.n_deltas == 1);
        ASSERT(a.state == CHAT_STREAM_DONE && a.n_done == 1 && a.n_failed == 0);
        ASSERT(a.finish == 1 && a.feed_end == 1);
        ASSERT(a.stop == CHAT_STOP_END_TURN);
        ASSERT_STREQ(a.model, "claude-haiku-4.5");
        assert_usage(&a.usage, 25, 15, 0, 0);

        /* Both formats say the same thing the same way. */
        ASSERT_STREQ(o.text, a.text);
        ASSERT(o.stop == a.stop);
        ASSERT_STREQ(chat_stop_reason_to_string(o.stop), "end_turn");

        check_all_splits(CHAT_API_OPENAI, openai_transcript, &o);
        check_all_splits(CHAT_API_ANTHROPIC, anthropic_transcript, &a);
}

/* ---- Builders for synthetic streams ------------------------------------ */

static char *openai_chunk(const char *content_json) {
        char *s = NULL;
        ASSERT(asprintf(&s,
                        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,"
                        "\"delta\":{\"content\":%s},\"finish_reason\":null}],\"usage\":null}\n\n",
                        content_json) >= 0);
        return s;
}

static char *anthropic_delta(const char *text_json) {
        char *s = NULL;
        ASSERT(asprintf(&s,
                        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                        "\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n",
                        text_json) >= 0);
        return s;
}

#define OPENAI_END "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
#define ANTHROPIC_START                                                                                     \
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":" \
        "{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
#define ANTHROPIC_END                                                                                  \
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}," \
        "\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

/* A stream carrying pieces (JSON string literals) as separate deltas, in
 * either format. */
static char *stream_of(ChatApi api, const char *const *pieces, size_t n) {
        char *s = strdup(api == CHAT_API_OPENAI ? "" : ANTHROPIC_START), *t;

        ASSERT(s);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *c = api == CHAT_API_OPENAI ? openai_chunk(pieces[i]) : anthropic_delta(pieces[i]);
                ASSERT(asprintf(&t, "%s%s", s, c) >= 0);
                free(s);
                s = t;
        }
        ASSERT(asprintf(&t, "%s%s", s, api == CHAT_API_OPENAI ? OPENAI_END : ANTHROPIC_END) >= 0);
        free(s);
        return t;
}

static void check_text(const char *const *pieces, size_t n, const char *expect) {
        for (ChatApi api = 0; api < _CHAT_API_MAX; api++) {
                _cleanup_free_ char *body = stream_of(api, pieces, n);
                Result res;

                run(api, body, &res);
                ASSERT(res.state == CHAT_STREAM_DONE);
                ASSERT_STREQ(res.text, expect);
                /* And the same however the bytes arrive. */
                for (size_t piece = 1; piece < strlen(body); piece += 3) {
                        Result r2;
                        run_pieces(api, body, strlen(body), piece, 0, &r2);
                        ASSERT_STREQ(r2.text, expect);
                }
        }
}
#define CHECK_TEXT(expect, ...)                                                  \
        do {                                                                     \
                const char *const _p[] = { __VA_ARGS__ };                        \
                check_text(_p, ELEMENTSOF(_p), (expect));                        \
        } while (0)

#define FFFD "\xEF\xBF\xBD"

static void test_utf8(void) {
        /* Multi-byte characters intact, also via \u escapes and pairs. */
        CHECK_TEXT("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", "\"h\xC3\xA9llo \"", "\"\xE2\x82\xAC \"",
                   "\"\\ud83d\\ude00\"");

        /* A character split across two deltas is held back and passed on
         * whole (on_delta asserts every delta is valid UTF-8). */
        CHECK_TEXT("a\xC3\xA9z", "\"a\xC3\"", "\"\xA9z\"");
        CHECK_TEXT("\xF0\x9F\x98\x80!", "\"\xF0\"", "\"\x9F\"", "\"\x98\"", "\"\x80!\"");
        CHECK_TEXT("x\xE2\x82\xAC", "\"x\xE2\x82\"", "\"\xAC\"");

        /* Invalid bytes become U+FFFD, one per maximal subpart. */
        CHECK_TEXT("a" FFFD "b", "\"a\xFF" "b\"");
        CHECK_TEXT("a" FFFD "(b", "\"a\xC3(b\"");
        CHECK_TEXT("a" FFFD FFFD "b", "\"a\xC0\xAF" "b\"");         /* overlong */
        CHECK_TEXT("a" FFFD FFFD FFFD "b", "\"a\xED\xA0\x80" "b\""); /* raw surrogate */
        CHECK_TEXT("a" FFFD "b", "\"a\xE2\x82" "b\"");               /* truncated 3-byte */
        CHECK_TEXT(FFFD "x", "\"\\ud800x\"");                          /* lone surrogate escape */
        /* A held-back start that the next delta does not complete. */
        CHECK_TEXT("a" FFFD "b", "\"a\xC3\"", "\"b\"");
        /* Incomplete at the very end: replaced before done(). */
        CHECK_TEXT("a" FFFD, "\"a\xF0\x9F\"");
        /* NUL cannot travel in a D-Bus string. */
        CHECK_TEXT("a" FFFD "b", "\"a\\u0000b\"");
        /* Deltas that are only held back produce no callback until completed. */
        {
                const char *const p[] = { "\"\xE2\"", "\"\x82\"", "\"\xAC\"" };
                _cleanup_free_ char *body = stream_of(CHAT_API_OPENAI, p, 3);
                Result res;
                run(CHAT_API_OPENAI, body, &res);
                ASSERT(res.n_deltas == 1);
                ASSERT_STREQ(res.text, "\xE2\x82\xAC");
        }
}

static void test_openai_details(void) {
        Result res;

        /* Unknown fields, chunks without content, extra choices, usage null. */
        run(CHAT_API_OPENAI,
            ": keep-alive\n\n"
            "data: {\"id\":\"x\",\"model\":\"gpt-x\",\"service_tier\":\"default\",\"obfuscation\":\"abc\",\"system_fingerprint\":null,"
            "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null}}]}\n\n"
            "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"IGNORED\"}}]}\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\",\"new_thing\":[1,2]}}],\"usage\":null}\n\n"
            "data: {\"choices\":{\"not\":\"an array\"}}\n\n"
            "data: {\"choices\":[null, 5, \"x\", {\"delta\":{\"content\":\"B\"}}]}\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
            "data: {\"choices\":[],\"model\":\"ignored-later\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":7,"
            "\"total_tokens\":107,\"prompt_tokens_details\":{\"cached_tokens\":60,\"audio_tokens\":0},"
            "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
            "data: [DONE]\n\n",
            &res);
        ASSERT(res.state == CHAT_STREAM_DONE);
        ASSERT_STREQ(res.text, "AB");
        ASSERT(res.stop == CHAT_STOP_MAX_TOKENS);
        ASSERT_STREQ(res.model, "gpt-x");
        assert_usage(&res.usage, 40, 7, 60, 0);

        /* Gateways that report cache writes; nonsense counts are clamped. */
        run(CHAT_API_OPENAI,
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":-5,"
            "\"prompt_tokens_details\":{\"cached_tokens\":30,\"cache_write_tokens\":50}}}\n\n"
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2.0,"
            "\"prompt_tokens_details\":{\"cached_tokens\":30,\"cache_write_tokens\":\"50\"}}}\n\n"
            "data: [DONE]\n\n",
            &res);
        assert_usage(&res.usage, 0, 2, 10, 0);
        run(CHAT_API_OPENAI,
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":5,"
            "\"prompt_tokens_details\":{\"cached_tokens\":30,\"cache_write_tokens\":50}}}\n\n"
            "data: [DONE]\n\n",
            &res);
        assert_usage(&res.usage, 20, 5, 30, 50);
        ASSERT(!res.has_text);
        ASSERT(res.stop == CHAT_STOP_NONE);
        ASSERT_STREQ(chat_stop_reason_to_string(res.stop), "other");
        ASSERT_STREQ(res.model, "");

        /* Finish reasons. */
        static const struct {
                const char *wire;
                ChatStopReason want;
        } reasons[] = {
                { "stop", CHAT_STOP_END_TURN },     { "length", CHAT_STOP_MAX_TOKENS },
                { "tool_calls", CHAT_STOP_TOOL_USE }, { "function_call", CHAT_STOP_TOOL_USE },
                { "content_filter", CHAT_STOP_OTHER }, { "something_new", CHAT_STOP_OTHER },
        };
        for (size_t i = 0; i < ELEMENTSOF(reasons); i++) {
                _cleanup_free_ char *body = NULL;
                ASSERT(asprintf(&body, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}\n\ndata: [DONE]\n\n",
                                reasons[i].wire) >= 0);
                run(CHAT_API_OPENAI, body, &res);
                ASSERT(res.stop == reasons[i].want);
        }

        /* An "event:" line does not change how OpenAI data is read. */
        run(CHAT_API_OPENAI, "event: message\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n", &res);
        ASSERT_STREQ(res.text, "x");
        ASSERT(res.state == CHAT_STREAM_DONE);
}

static void test_anthropic_details(void) {
        Result res;

        run(CHAT_API_ANTHROPIC,
            "event: message_start\n"
            "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":5,"
            "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n"
            "event: ping\ndata: {\"type\": \"ping\"}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            "event: brand_new_event\ndata: this is not even JSON\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\",\"extra\":1}}\n\n"
            ": comment\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"citations_delta\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"text\":\"no type\"}}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
            "\"usage\":{\"output_tokens\":42}}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":43,"
            "\"input_tokens\":6,\"cache_read_input_tokens\":2001}}\n\n"
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            &res);
        ASSERT(res.state == CHAT_STREAM_DONE);
        ASSERT_STREQ(res.text, "Hi");
        ASSERT(res.stop == CHAT_STOP_TOOL_USE);
        ASSERT_STREQ(res.model, "claude-x");
        assert_usage(&res.usage, 6, 43, 2001, 100);

        /* Without event lines, "type" decides. */
        run(CHAT_API_ANTHROPIC,
            "data: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
            "data: {\"type\":\"ping\"}\n\n"
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"t\"}}\n\n"
            "data: {\"no_type\":true}\n\n"
            "data: {\"type\":\"message_stop\"}\n\n",
            &res);
        ASSERT(res.state == CHAT_STREAM_DONE);
        ASSERT_STREQ(res.text, "t");

        static const struct {
                const char *wire;
                ChatStopReason want;
        } reasons[] = {
                { "end_turn", CHAT_STOP_END_TURN },   { "max_tokens", CHAT_STOP_MAX_TOKENS },
                { "stop_sequence", CHAT_STOP_STOP_SEQUENCE }, { "tool_use", CHAT_STOP_TOOL_USE },
                { "pause_turn", CHAT_STOP_OTHER },    { "refusal", CHAT_STOP_OTHER },
                { "model_context_window_exceeded", CHAT_STOP_OTHER },
        };
        for (size_t i = 0; i < ELEMENTSOF(reasons); i++) {
                _cleanup_free_ char *body = NULL;
                ASSERT(asprintf(&body,
                                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\"}}\n\n"
                                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                                reasons[i].wire) >= 0);
                run(CHAT_API_ANTHROPIC, body, &res);
                ASSERT(res.stop == reasons[i].want);
        }
        ASSERT_STREQ(chat_stop_reason_to_string(CHAT_STOP_STOP_SEQUENCE), "stop_sequence");
        ASSERT_STREQ(chat_stop_reason_to_string(CHAT_STOP_TOOL_USE), "tool_use");
        ASSERT_STREQ(chat_stop_reason_to_string(CHAT_STOP_MAX_TOKENS), "max_tokens");
        ASSERT_STREQ(chat_stop_reason_to_string(CHAT_STOP_OTHER), "other");
        ASSERT_STREQ(chat_stop_reason_to_string(_CHAT_STOP_MAX), "other");
}

/* Usage only (the endpoint's relay): model, usage, the terminator and
 * errors as in full decoding; no text; content chunks not even parsed. */
static void check_usage_only(ChatApi api, const char *body) {
        Result full, u;

        usage_only = false;
        run(api, body, &full);
        usage_only = true;
        run(api, body, &u);
        for (size_t piece = 1; piece < strlen(body); piece += 5) {
                Result u2;
                run_pieces(api, body, strlen(body), piece, 0, &u2);
                ASSERT(u2.state == u.state);
                ASSERT_STREQ(u2.model, u.model);
                assert_usage(&u2.usage, u.usage.input, u.usage.output, u.usage.cache_read, u.usage.cache_write);
        }
        usage_only = false;

        ASSERT(u.n_deltas == 0 && !u.has_text);
        ASSERT(u.state == full.state);
        ASSERT_STREQ(u.model, full.model);
        assert_usage(&u.usage, full.usage.input, full.usage.output, full.usage.cache_read, full.usage.cache_write);
        ASSERT_STREQ(u.type, full.type);
}

static void test_usage_only(void) {
        Result res;

        check_usage_only(CHAT_API_OPENAI, openai_transcript);
        check_usage_only(CHAT_API_ANTHROPIC, anthropic_transcript);
        {
                const char *const pieces[] = { "\"a\"", "\"b\"", "\"\\u00e9\"" };
                for (ChatApi api = 0; api < _CHAT_API_MAX; api++) {
                        _cleanup_free_ char *body = stream_of(api, pieces, ELEMENTSOF(pieces));
                        check_usage_only(api, body);
                }
        }
        /* A mid-stream error still fails the stream. */
        check_usage_only(CHAT_API_OPENAI,
                         "data: {\"model\":\"m\",\"choices\":[]}\n\n"
                         "data: {\"error\":{\"type\":\"server_error\",\"message\":\"boom\"}}\n\n"
                         "data: [DONE]\n\n");
        check_usage_only(CHAT_API_ANTHROPIC,
                         ANTHROPIC_START "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                         "\"overloaded_error\",\"message\":\"busy\"}}\n\n");
        /* Usage behind an escaped name is still found. */
        check_usage_only(CHAT_API_OPENAI,
                         "data: {\"model\":\"m\",\"choices\":[]}\n\n"
                         "data: {\"choices\":[],\"\\u0075sage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n"
                         "data: [DONE]\n\n");

        /* Null usage and error members, and names that are values, are
         * passed over; spaced-out members are not. */
        check_usage_only(CHAT_API_OPENAI,
                         "data: {\"model\":\"m\",\"choices\":[]}\n\n"
                         "data: {\"choices\":[{\"delta\":{\"content\":\"usage\"}}],\"usage\":null,\"error\" : null}\n\n"
                         "data: {\"choices\":[],\"x\":\"usage\"}\n\n"
                         "data: {\"choices\":[], \"usage\" :\t {\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n"
                         "data: [DONE]\n\n");
        usage_only = true;
        run(CHAT_API_OPENAI,
            "data: {\"model\":\"m\",\"choices\":[]}\n\n"
            "data: {\"usage\":null, broken\n\n"
            "data: {\"choices\":[], \"usage\" :\t {\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n"
            "data: [DONE]\n\n",
            &res);
        usage_only = false;
        ASSERT(res.state == CHAT_STREAM_DONE);
        assert_usage(&res.usage, 7, 3, 0, 0);

        /* What is not parsed cannot fail: a broken text chunk after the
         * first, which full decoding rejects, is passed over. */
        usage_only = true;
        run(CHAT_API_OPENAI,
            "data: {\"model\":\"m\",\"choices\":[]}\n\n"
            "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}\n\n"
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n"
            "data: [DONE]\n\n",
            &res);
        usage_only = false;
        ASSERT(res.state == CHAT_STREAM_DONE);
        ASSERT_STREQ(res.model, "m");
        assert_usage(&res.usage, 5, 2, 0, 0);
        run(CHAT_API_ANTHROPIC,
            ANTHROPIC_START "event: content_block_delta\ndata: {not json\n\n" ANTHROPIC_END, &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        usage_only = true;
        run(CHAT_API_ANTHROPIC,
            ANTHROPIC_START "event: content_block_delta\ndata: {not json\n\n" ANTHROPIC_END, &res);
        usage_only = false;
        ASSERT(res.state == CHAT_STREAM_DONE);
        ASSERT_STREQ(res.model, "claude");
        assert_usage(&res.usage, 3, 2, 0, 0);
}

static void test_midstream_errors(void) {
        Result res;

        run(CHAT_API_OPENAI,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n"
            "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"NOT SEEN\"}}]}\n\n"
            "data: [DONE]\n\n",
            &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT(res.feed_end == 1 && res.finish == 0);
        ASSERT_STREQ(res.text, "par");
        ASSERT(res.has_text);
        ASSERT_STREQ(res.type, "server_error");
        ASSERT_STREQ(res.message, "The server had an error while processing your request.");
        ASSERT(res.n_done == 0);

        /* The type may only be in "code"; the error may come with choices. */
        run(CHAT_API_OPENAI,
            "data: {\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit_exceeded\"},\"choices\":[{\"finish_reason\":\"error\"}]}\n\n",
            &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.type, "rate_limit_exceeded");
        ASSERT_STREQ(res.message, "slow down");
        ASSERT(!res.has_text);

        run(CHAT_API_OPENAI, "event: error\ndata: upstream exploded\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.type, "unknown_error");
        ASSERT_STREQ(res.message, "upstream exploded");

        run(CHAT_API_OPENAI, "data: {\"error\":\"plain string error\"}\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.message, "plain string error");

        run(CHAT_API_OPENAI, "data: {\"error\":{}}\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.type, "unknown_error");
        ASSERT(strlen(res.message) > 0);

        /* "error": null is no error. */
        run(CHAT_API_OPENAI, "data: {\"error\":null,\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_DONE);
        ASSERT_STREQ(res.text, "ok");

        run(CHAT_API_ANTHROPIC,
            ANTHROPIC_START
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
            "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT(res.feed_end == 1 && res.finish == 0);
        ASSERT_STREQ(res.text, "Hel");
        ASSERT_STREQ(res.type, "overloaded_error");
        ASSERT_STREQ(res.message, "Overloaded");

        /* An error event whose data is not JSON, and one without an event line. */
        run(CHAT_API_ANTHROPIC, "event: error\ndata: <html>oops</html>\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.message, "<html>oops</html>");
        run(CHAT_API_ANTHROPIC, "data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}}\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.type, "api_error");
        ASSERT_STREQ(res.message, "Internal server error");

        /* Messages are sanitised and capped; types are identifiers. */
        {
                char big[2048];
                _cleanup_free_ char *body = NULL;

                memset(big, 'x', sizeof big - 1);
                big[sizeof big - 1] = 0;
                ASSERT(asprintf(&body, "data: {\"error\":{\"message\":\"line1\\nline2\\t\\u0007%s\",\"type\":\"evil type\\n<b>\"}}\n\n", big) >= 0);
                run(CHAT_API_OPENAI, body, &res);
                ASSERT(res.state == CHAT_STREAM_FAILED);
                ASSERT(startswith(res.message, "line1 line2 xxx"));
                ASSERT(strlen(res.message) <= CHAT_ERROR_MESSAGE_MAX);
                ASSERT(strstr(res.message, "…"));
                ASSERT_STREQ(res.type, "eviltypeb");
        }
}

static void test_malformed(void) {
        static const char *const bad[] = {
                "data: {\"choices\":[\n\n",
                "data: {not json}\n\n",
                "data: {\"a\":1} trailing\n\n",
                "data: [1,2,3]\n\n",
                "data: \"string\"\n\n",
                "data: \n\n",
                "data: {\"a\":\"\\ud800\\u\"}\n\n",
        };
        Result res;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                for (ChatApi api = 0; api < _CHAT_API_MAX; api++) {
                        _cleanup_free_ char *body = NULL;

                        ASSERT(asprintf(&body, "%s%s", api == CHAT_API_ANTHROPIC ? "event: content_block_delta\n" : "",
                                        bad[i]) >= 0);
                        run(api, body, &res);
                        ASSERT(res.state == CHAT_STREAM_FAILED);
                        ASSERT_STREQ(res.type, CHAT_ERROR_INVALID_RESPONSE);
                        ASSERT(startswith(res.message, "The gateway sent a stream event that is not"));
                }

        /* Nesting deep enough to hurt a recursive parser is refused cleanly. */
        {
                char deep[20000];
                size_t n = 0;
                n += sprintf(deep, "data: ");
                for (int i = 0; i < 5000; i++)
                        deep[n++] = '[';
                memcpy(deep + n, "\n\n", 3);
                run(CHAT_API_OPENAI, deep, &res);
                ASSERT(res.state == CHAT_STREAM_FAILED);
                ASSERT_STREQ(res.type, CHAT_ERROR_INVALID_RESPONSE);
        }

        /* An event over the size limit. */
        {
                _cleanup_chat_stream_ ChatStream *s = NULL;
                const char *type, *message;

                ASSERT(chat_stream_new(CHAT_API_OPENAI, &s) == 0);
                chat_stream_set_max_event_size(s, 64);
                res = (Result) {};
                ASSERT(chat_stream_feed(s, "data: {\"choices\":[{\"delta\":{\"content\":\"0123456789012345678901234567890123456789\"}}]}\n\n",
                                        92, &callbacks, &res) == 1);
                ASSERT(chat_stream_get_state(s) == CHAT_STREAM_FAILED);
                ASSERT(chat_stream_get_error(s, &type, &message));
                ASSERT_STREQ(type, CHAT_ERROR_INVALID_RESPONSE);
                ASSERT_STREQ(message, "The gateway sent a stream event larger than the limit of 64 bytes.");
                ASSERT(res.n_failed == 1);
                ASSERT(chat_stream_finish(s, &callbacks, &res) == 0);
                ASSERT(res.n_failed == 1);
        }
}

static void test_incomplete(void) {
        size_t n = strlen(openai_transcript);
        Result res;

        /* Cut before [DONE] (after the finish_reason and usage even). */
        for (ChatApi api = 0; api < _CHAT_API_MAX; api++) {
                const char *t = api == CHAT_API_OPENAI ? openai_transcript : anthropic_transcript;
                const char *last = api == CHAT_API_OPENAI ? "data: [DONE]" : "event: message_stop";

                n = strstr(t, last) - t;
                run_pieces(api, t, n, 0, 0, &res);
                ASSERT(res.state == CHAT_STREAM_FAILED);
                ASSERT(res.finish == 0 && res.feed_end == 0);
                ASSERT_STREQ(res.type, CHAT_ERROR_INCOMPLETE);
                ASSERT_STREQ(res.message, "The gateway closed the stream before the answer was complete.");
                ASSERT_STREQ(res.text, "Hello");
                ASSERT(res.has_text);
                ASSERT(res.stop == CHAT_STOP_END_TURN); /* what we knew is still readable */

                /* The terminator without its blank line is lost too (as in
                 * browsers). */
                run_pieces(api, t, strlen(t) - 1, 0, 0, &res);
                ASSERT(res.state == CHAT_STREAM_FAILED);
                ASSERT_STREQ(res.type, CHAT_ERROR_INCOMPLETE);

                /* Nothing at all. */
                run_pieces(api, "", 0, 0, 0, &res);
                ASSERT(res.state == CHAT_STREAM_FAILED);
                ASSERT(!res.has_text);
                ASSERT_STREQ(res.type, CHAT_ERROR_INCOMPLETE);
        }

        /* A dropped connection in the middle of a character: the held-back
         * bytes are not passed on. */
        run(CHAT_API_OPENAI, "data: {\"choices\":[{\"delta\":{\"content\":\"a\xE2\x82\"}}]}\n\n", &res);
        ASSERT(res.state == CHAT_STREAM_FAILED);
        ASSERT_STREQ(res.text, "a");
}

static void test_after_terminator(void) {
        for (ChatApi api = 0; api < _CHAT_API_MAX; api++) {
                _cleanup_chat_stream_ ChatStream *s = NULL;
                const char *t = api == CHAT_API_OPENAI ? openai_transcript : anthropic_transcript;
                _cleanup_free_ char *body = NULL;
                Result res = {};

                ASSERT(asprintf(&body, "%sdata: {\"choices\":[{\"delta\":{\"content\":\"MORE\"}}]}\n\ngarbage{{{\n\n", t) >= 0);
                ASSERT(chat_stream_new(api, &s) == 0);
                ASSERT(chat_stream_feed(s, body, strlen(body), &callbacks, &res) == 1);
                ASSERT(chat_stream_feed(s, "data: x\n\n", 9, &callbacks, &res) == 1);
                ASSERT(chat_stream_feed(s, "\xFF\xFF", 2, &callbacks, &res) == 1);
                ASSERT(chat_stream_finish(s, &callbacks, &res) == 1);
                collect(s, &res);
                ASSERT_STREQ(res.text, "Hello");
                ASSERT(res.n_done == 1 && res.n_failed == 0);
        }

        /* [DONE] with anything after it on the line, as the clients accept. */
        Result res;
        run(CHAT_API_OPENAI, "data: [DONE] \n\n", &res);
        ASSERT(res.state == CHAT_STREAM_DONE);
}

static void test_callback_abort(void) {
        _cleanup_chat_stream_ ChatStream *s = NULL;
        const char *const p[] = { "\"one\"", "\"two\"", "\"three\"" };
        _cleanup_free_ char *body = stream_of(CHAT_API_OPENAI, p, 3);
        Result res = { .fail_delta_at = 2 };

        ASSERT(chat_stream_new(CHAT_API_OPENAI, &s) == 0);
        ASSERT(chat_stream_feed(s, body, strlen(body), &callbacks, &res) == -42);
        ASSERT_STREQ(res.text, "onetwo");
        ASSERT(chat_stream_feed(s, "", 0, &callbacks, &res) == -42);
        ASSERT(chat_stream_finish(s, &callbacks, &res) == -42);
        ASSERT(res.n_done == 0 && res.n_failed == 0);

        /* No callbacks at all is fine. */
        chat_stream_free(TAKE_PTR(s));
        ASSERT(chat_stream_new(CHAT_API_ANTHROPIC, &s) == 0);
        ASSERT(chat_stream_feed(s, anthropic_transcript, strlen(anthropic_transcript), NULL, NULL) == 1);
        ASSERT(chat_stream_is_terminated(s));
        ASSERT(chat_stream_has_text(s));

        ASSERT(chat_stream_new(_CHAT_API_MAX, &s) == -EINVAL);
        ASSERT(chat_stream_new(CHAT_API_OPENAI, NULL) == -EINVAL);
        ASSERT(chat_stream_feed(NULL, "", 0, NULL, NULL) == -EINVAL);
        ASSERT(chat_stream_get_state(NULL) == CHAT_STREAM_FAILED);
}

/* ---- Request bodies ---------------------------------------------------- */

static json_object *parse_body(ChatApi api, const ChatRequestParams *p) {
        _cleanup_free_ char *j = NULL;
        json_object *o;

        ASSERT(chat_request_build(api, p, &j) == 0);
        o = json_tokener_parse(j);
        ASSERT(o);
        return o;
}

static const char *jstr(json_object *o, const char *path) {
        /* path: keys separated by '.', array indices as numbers */
        char buf[256], *save = NULL;

        snprintf(buf, sizeof buf, "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
                if (json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, atoi(k));
                else if (!json_object_object_get_ex(o, k, &o))
                        return NULL;
        }
        return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
}

static void test_request_bodies(void) {
        const ChatMessage msgs[] = {
                { "system", "Be brief." },
                { "user", "Hi/there \"x\"" },
                { "assistant", "Hello." },
                { "system", "Use French." },
                { "user", "And now?" },
        };
        char *stop[] = { "END", "\n\n", NULL };
        ChatRequestParams p = CHAT_REQUEST_PARAMS_INIT;
        _cleanup_free_ char *j = NULL;
        json_object *o;

        /* The simplest request, byte for byte. */
        p.model = "gpt-5-mini";
        p.messages = msgs + 1;
        p.n_messages = 1;
        ASSERT(chat_request_build(CHAT_API_OPENAI, &p, &j) == 0);
        ASSERT_STREQ(j, "{\"model\":\"gpt-5-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi/there \\\"x\\\"\"}],"
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
        free(TAKE_PTR(j));
        p.model = "claude-haiku-4.5";
        ASSERT(chat_request_build(CHAT_API_ANTHROPIC, &p, &j) == 0);
        ASSERT_STREQ(j, "{\"model\":\"claude-haiku-4.5\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi/there \\\"x\\\"\"}],"
                        "\"max_tokens\":4096,\"stream\":true}");

        /* Everything set, OpenAI. */
        p.messages = msgs;
        p.n_messages = ELEMENTSOF(msgs);
        p.system = "You are helpful.";
        p.max_tokens = 500;
        p.model_max_output_tokens = 64000;
        p.temperature = 0.7;
        p.top_p = 1;
        p.stop = stop;
        o = parse_body(CHAT_API_OPENAI, &p);
        ASSERT_STREQ(jstr(o, "messages.0.role"), "\"system\"");
        ASSERT_STREQ(jstr(o, "messages.0.content"), "\"You are helpful.\"");
        ASSERT_STREQ(jstr(o, "messages.1.content"), "\"Be brief.\"");
        ASSERT_STREQ(jstr(o, "messages.4.role"), "\"system\"");
        ASSERT_STREQ(jstr(o, "messages.5.content"), "\"And now?\"");
        ASSERT(json_object_array_length(json_object_object_get(o, "messages")) == 6);
        ASSERT_STREQ(jstr(o, "max_completion_tokens"), "500");
        ASSERT(!jstr(o, "max_tokens"));
        ASSERT_STREQ(jstr(o, "temperature"), "0.7");
        ASSERT_STREQ(jstr(o, "top_p"), "1");
        ASSERT_STREQ(jstr(o, "stop"), "[\"END\",\"\\n\\n\"]");
        ASSERT(!jstr(o, "stop_sequences"));
        ASSERT(!jstr(o, "system"));
        ASSERT_STREQ(jstr(o, "stream"), "true");
        ASSERT_STREQ(jstr(o, "stream_options"), "{\"include_usage\":true}");
        json_object_put(o);

        /* Everything set, Anthropic. */
        o = parse_body(CHAT_API_ANTHROPIC, &p);
        ASSERT_STREQ(jstr(o, "system"), "\"You are helpful.\\n\\nBe brief.\\n\\nUse French.\"");
        ASSERT(json_object_array_length(json_object_object_get(o, "messages")) == 3);
        ASSERT_STREQ(jstr(o, "messages.0.role"), "\"user\"");
        ASSERT_STREQ(jstr(o, "messages.1.role"), "\"assistant\"");
        ASSERT_STREQ(jstr(o, "messages.2.content"), "\"And now?\"");
        ASSERT_STREQ(jstr(o, "max_tokens"), "500");
        ASSERT_STREQ(jstr(o, "stop_sequences"), "[\"END\",\"\\n\\n\"]");
        ASSERT(!jstr(o, "stop"));
        ASSERT(!jstr(o, "stream_options"));
        ASSERT_STREQ(jstr(o, "temperature"), "0.7");
        ASSERT_STREQ(jstr(o, "stream"), "true");
        json_object_put(o);

        /* max_tokens default: the model's limit when lower than 4096. */
        p.max_tokens = 0;
        o = parse_body(CHAT_API_ANTHROPIC, &p);
        ASSERT_STREQ(jstr(o, "max_tokens"), "4096");
        json_object_put(o);
        p.model_max_output_tokens = 1024;
        o = parse_body(CHAT_API_ANTHROPIC, &p);
        ASSERT_STREQ(jstr(o, "max_tokens"), "1024");
        json_object_put(o);
        o = parse_body(CHAT_API_OPENAI, &p);
        ASSERT(!jstr(o, "max_completion_tokens") && !jstr(o, "max_tokens"));
        json_object_put(o);

        /* System messages only in the list, no option; empty stop list. */
        p.system = "";
        p.stop = (char *[]) { NULL };
        p.temperature = p.top_p = NAN;
        o = parse_body(CHAT_API_ANTHROPIC, &p);
        ASSERT_STREQ(jstr(o, "system"), "\"Be brief.\\n\\nUse French.\"");
        ASSERT(!jstr(o, "stop_sequences") && !jstr(o, "temperature") && !jstr(o, "top_p"));
        json_object_put(o);
        o = parse_body(CHAT_API_OPENAI, &p);
        ASSERT_STREQ(jstr(o, "messages.0.content"), "\"Be brief.\"");
        ASSERT(!jstr(o, "stop"));
        json_object_put(o);

        /* Consecutive same-role messages pass as they are; UTF-8 intact. */
        {
                const ChatMessage m2[] = { { "user", "a" }, { "user", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80" } };
                ChatRequestParams q = CHAT_REQUEST_PARAMS_INIT;
                q.model = "m";
                q.messages = m2;
                q.n_messages = 2;
                q.temperature = 0;
                o = parse_body(CHAT_API_ANTHROPIC, &q);
                ASSERT(json_object_array_length(json_object_object_get(o, "messages")) == 2);
                ASSERT_STREQ(jstr(o, "messages.1.content"), "\"\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80\"");
                ASSERT_STREQ(jstr(o, "temperature"), "0");
                json_object_put(o);
        }

        /* Bad input. */
        {
                const ChatMessage bad_role[] = { { "tool", "x" } };
                const ChatMessage only_system[] = { { "system", "x" } };
                const ChatMessage null_content[] = { { "user", NULL } };
                ChatRequestParams q = CHAT_REQUEST_PARAMS_INIT;
                char *out = NULL;

                q.model = "m";
                q.messages = bad_role;
                q.n_messages = 1;
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == -EINVAL);
                q.messages = null_content;
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == -EINVAL);
                q.messages = only_system;
                ASSERT(chat_request_build(CHAT_API_ANTHROPIC, &q, &out) == -EINVAL);
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == 0);
                free(TAKE_PTR(out));
                q.n_messages = 0;
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == -EINVAL);
                q.n_messages = 1;
                q.model = "";
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == -EINVAL);
                q.model = "m";
                q.temperature = INFINITY;
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == -EINVAL);
                q.temperature = -1;
                ASSERT(chat_request_build(CHAT_API_OPENAI, &q, &out) == -EINVAL);
                q.temperature = NAN;
                ASSERT(chat_request_build(_CHAT_API_MAX, &q, &out) == -EINVAL);
                ASSERT(out == NULL);
        }

        ASSERT_STREQ(chat_api_to_string(CHAT_API_OPENAI), "openai");
        ASSERT_STREQ(chat_api_to_string(CHAT_API_ANTHROPIC), "anthropic");
        ASSERT(chat_api_from_string("anthropic") == CHAT_API_ANTHROPIC);
        ASSERT(chat_api_from_string("auto") == _CHAT_API_INVALID);
        ASSERT(chat_api_from_string(NULL) == _CHAT_API_INVALID);
        ASSERT(chat_api_to_string(_CHAT_API_MAX) == NULL);
}

/* ---- Error bodies ------------------------------------------------------ */

static void check_error_body(const char *body, int want_r, const char *want_type, const char *want_message) {
        _cleanup_free_ char *type = NULL, *message = NULL;
        int r = chat_parse_error_body(body, strlen(body), &type, &message);

        if (r != want_r)
                fprintf(stderr, "body «%.80s»: r=%d\n", body, r);
        ASSERT(r == want_r);
        if (want_type)
                ASSERT_STREQ(type, want_type);
        else
                ASSERT(!type);
        ASSERT_STREQ(message, want_message);
        ASSERT(utf8_is_valid_n(message, strlen(message)));
        ASSERT(strlen(message) <= CHAT_ERROR_MESSAGE_MAX);
}

static void test_privacy_and_images(void) {
        static const uint8_t png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3 };
        const ChatMessage msgs[] = { { "system", "S" }, { "user", "look" }, { "user", "" } };
        ChatImage imgs[] = {
                { .message = 1, .mime = "image/png", .data = png, .size = sizeof png },
                { .message = 2, .mime = "image/png", .data = png, .size = 3 },
        };
        ChatRequestParams p = CHAT_REQUEST_PARAMS_INIT;
        _cleanup_free_ char *j = NULL;
        size_t n;

        ASSERT(chat_privacy_from_string("zdr") == CHAT_PRIVACY_ZDR);
        ASSERT(chat_privacy_from_string("ZDR") < 0);
        ASSERT(chat_privacy_from_header("ZDR") == CHAT_PRIVACY_ZDR);
        ASSERT(chat_privacy_from_string("zdrr") < 0);
        ASSERT(chat_privacy_max(CHAT_PRIVACY_PRIVATE, CHAT_PRIVACY_ZDR) == CHAT_PRIVACY_PRIVATE);
        ASSERT(chat_privacy_from_model_suffix("glm-5.2:ZDR", &n) == CHAT_PRIVACY_ZDR && n == 7);
        ASSERT(chat_privacy_from_model_suffix("glm-5.2:Private", &n) == CHAT_PRIVACY_PRIVATE && n == 7);
        ASSERT(chat_privacy_from_model_suffix("a:b", &n) == CHAT_PRIVACY_STANDARD && n == 3);
        ASSERT(chat_privacy_from_model_suffix(":zdr", &n) == CHAT_PRIVACY_STANDARD && n == 4);
        ASSERT(chat_privacy_from_url("https://llm.bankr.bot/zdr") == CHAT_PRIVACY_ZDR);
        ASSERT(chat_privacy_from_url("https://llm.bankr.bot/private/") == CHAT_PRIVACY_PRIVATE);
        ASSERT(chat_privacy_from_url("https://llm.bankr.bot") == CHAT_PRIVACY_STANDARD);
        ASSERT(chat_privacy_from_url("https://zdr.example") == CHAT_PRIVACY_STANDARD);

        p.model = "m";
        p.messages = msgs + 1;
        p.n_messages = 1;
        p.privacy = CHAT_PRIVACY_ZDR;
        ASSERT(chat_request_build(CHAT_API_OPENAI, &p, &j) == 0);
        ASSERT(strstr(j, "\"privacy\":\"zdr\""));
        free(TAKE_PTR(j));
        p.privacy = CHAT_PRIVACY_STANDARD;
        ASSERT(chat_request_build(CHAT_API_OPENAI, &p, &j) == 0);
        ASSERT(!strstr(j, "privacy"));
        free(TAKE_PTR(j));

        p.messages = msgs;
        p.n_messages = ELEMENTSOF(msgs);
        p.images = imgs;
        p.n_images = ELEMENTSOF(imgs);
        ASSERT(chat_request_build(CHAT_API_OPENAI, &p, &j) == 0);
        ASSERT(strstr(j, "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
                         "{\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgoBAgM=\"},\"type\":\"image_url\"}]}"));
        /* An empty text gets no text part. */
        ASSERT(strstr(j, "{\"role\":\"user\",\"content\":[{\"image_url\":{\"url\":\"data:image/png;base64,iVBO\"}"));
        free(TAKE_PTR(j));
        ASSERT(chat_request_build(CHAT_API_ANTHROPIC, &p, &j) == 0);
        ASSERT(strstr(j, "\"messages\":[{\"role\":\"user\",\"content\":[{\"source\":{\"type\":\"base64\","
                         "\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgoBAgM=\"},\"type\":\"image\"},"
                         "{\"type\":\"text\",\"text\":\"look\"}]}"));
        free(TAKE_PTR(j));
        /* Past the messages, or on a system message: refused. */
        imgs[1].message = 3;
        ASSERT(chat_request_build(CHAT_API_OPENAI, &p, &j) == -EINVAL);
        imgs[1].message = 0;
        ASSERT(chat_request_build(CHAT_API_ANTHROPIC, &p, &j) == -EINVAL);
}

static void test_error_bodies(void) {
        check_error_body("{\"error\":{\"message\":\"Incorrect API key provided.\",\"type\":\"invalid_request_error\","
                         "\"param\":null,\"code\":\"invalid_api_key\"}}",
                         1, "invalid_request_error", "Incorrect API key provided.");
        check_error_body("{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":null,\"code\":\"insufficient_quota\"}}",
                         1, "insufficient_quota", "You exceeded your current quota.");
        check_error_body("{\"error\":{\"message\":\"x\",\"code\":429}}", 1, NULL, "x");
        check_error_body("{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Number of request tokens has exceeded your per-minute rate limit\"}}",
                         1, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit");
        check_error_body("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}", 1, "overloaded_error", "overloaded_error");
        check_error_body("{\"error\":\"Insufficient credits\"}", 1, NULL, "Insufficient credits");
        check_error_body("{\"message\":\"Model not found: foo\"}", 1, NULL, "Model not found: foo");
        check_error_body("{\"detail\":\"Not Found\"}", 1, NULL, "Not Found");
        check_error_body("  \n{\"success\":false,\"error\":\"Invalid API key\"}\n", 1, NULL, "Invalid API key");
        check_error_body("\xEF\xBB\xBF{\"error\":\"bom\"}", 1, NULL, "bom");
        check_error_body("{\"status\":\"bad\"}", 0, NULL, "unexpected JSON answer");
        check_error_body("[1,2]", 0, NULL, "unexpected JSON answer");
        check_error_body("{\"error\":{\"message\":", 0, NULL, "unexpected non-JSON answer");
        check_error_body("", 0, NULL, "empty answer");
        check_error_body(" \r\n", 0, NULL, "empty answer");
        check_error_body("<!DOCTYPE html>\n<html><head><TITLE>\n  502 Bad   Gateway\n</TITLE></head><body>...</body></html>",
                         0, NULL, "502 Bad Gateway");
        check_error_body("<html><head><title>Cloudflare &amp; friends &lt;3 &#39;x&#39;</title>", 0, NULL,
                         "Cloudflare & friends <3 'x'");
        check_error_body("<html><body>no title</body></html>", 0, NULL, "unexpected HTML answer");
        check_error_body("<html><title></title></html>", 0, NULL, "unexpected HTML answer");
        check_error_body("<title>unterminated", 0, NULL, "unexpected HTML answer");
        check_error_body("upstream connect error or disconnect/reset before headers. reset reason: overflow", 0, NULL,
                         "upstream connect error or disconnect/reset before headers. reset reason: overflow");
        check_error_body("Bad\x01Gateway", 0, NULL, "unexpected non-JSON answer");
        check_error_body("\xFF\xFE garbage", 0, NULL, "unexpected non-JSON answer");

        /* Huge bodies are never echoed. */
        {
                size_t n = 100000;
                _cleanup_free_ char *big = malloc(n + 1), *msg = NULL, *type = NULL;
                ASSERT(big);
                memset(big, 'A', n);
                big[n] = 0;
                check_error_body(big, 0, NULL, "unexpected non-JSON answer");

                /* A huge message inside JSON is cut on a character boundary. */
                free(big);
                big = NULL;
                ASSERT(asprintf(&big, "{\"error\":{\"message\":\"%0500d\xC3\xA9\xC3\xA9\xC3\xA9\",\"type\":\"t\"}}", 0) > 0);
                for (size_t cut = 295; cut <= 300; cut++) {
                        /* Shift the multi-byte characters across the cut. */
                        _cleanup_free_ char *b2 = NULL;
                        ASSERT(asprintf(&b2, "{\"error\":{\"message\":\"%.*s\xC3\xA9\xC3\xA9\xC3\xA9%0400d\"}}", (int) cut - 3,
                                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                        0) > 0);
                        free(TAKE_PTR(msg));
                        ASSERT(chat_parse_error_body(b2, strlen(b2), NULL, &msg) == 1);
                        ASSERT(strlen(msg) <= CHAT_ERROR_MESSAGE_MAX);
                        ASSERT(utf8_is_valid_n(msg, strlen(msg)));
                        ASSERT(strstr(msg, "…"));
                }
                free(TAKE_PTR(msg));
                ASSERT(chat_parse_error_body(big, strlen(big), &type, &msg) == 1);
                ASSERT(strlen(msg) <= CHAT_ERROR_MESSAGE_MAX);
                ASSERT_STREQ(type, "t");
        }

        /* Embedded NUL: the length counts, not the terminator. */
        {
                _cleanup_free_ char *msg = NULL;
                ASSERT(chat_parse_error_body("{\"error\":\"a\"}\0junk", 18, NULL, &msg) == 0);
                ASSERT_STREQ(msg, "unexpected non-JSON answer");
                free(TAKE_PTR(msg));
                ASSERT(chat_parse_error_body("{\"error\":\"a\\u0000b\"}", 20, NULL, &msg) == 1);
                ASSERT_STREQ(msg, "a b");
                ASSERT(chat_parse_error_body(NULL, 0, NULL, NULL) == -EINVAL);
        }
}

/* ---- Retry-After ------------------------------------------------------- */

static void test_retry_after(void) {
        const uint64_t now = UINT64_C(784111777) * USEC_PER_SEC; /* Sun, 06 Nov 1994 08:49:37 GMT */
        uint64_t v = 12345;

        ASSERT(http_parse_retry_after("3", NULL, now, &v) == 0 && v == 3 * USEC_PER_SEC);
        ASSERT(http_parse_retry_after(" 120 ", NULL, now, &v) == 0 && v == 120 * USEC_PER_SEC);
        ASSERT(http_parse_retry_after("0", NULL, now, &v) == 0 && v == 0);
        ASSERT(http_parse_retry_after("1.5", NULL, now, &v) == 0 && v == 1500 * USEC_PER_MSEC);
        ASSERT(http_parse_retry_after(NULL, "250", now, &v) == 0 && v == 250 * USEC_PER_MSEC);
        ASSERT(http_parse_retry_after(NULL, "0.5", now, &v) == 0 && v == 500);
        ASSERT(http_parse_retry_after(NULL, "0.0015", now, &v) == 0 && v == 1);
        /* -ms wins; an invalid -ms falls back to retry-after. */
        ASSERT(http_parse_retry_after("30", "100", now, &v) == 0 && v == 100 * USEC_PER_MSEC);
        ASSERT(http_parse_retry_after("30", "soon", now, &v) == 0 && v == 30 * USEC_PER_SEC);
        /* HTTP dates in all three forms. */
        ASSERT(http_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", NULL, now, &v) == 0 && v == 10 * USEC_PER_SEC);
        ASSERT(http_parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", NULL, now, &v) == 0 && v == 60 * USEC_PER_SEC);
        ASSERT(http_parse_retry_after("Sun Nov  6 08:49:38 1994", NULL, now, &v) == 0 && v == 1 * USEC_PER_SEC);
        ASSERT(http_parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", NULL, now, &v) == 0 && v == 86400 * USEC_PER_SEC);
        ASSERT(http_parse_retry_after("Thu, 01 Jan 2037 00:00:00 GMT", NULL, now, &v) == 0 &&
               v == (UINT64_C(2114380800) - UINT64_C(784111777)) * USEC_PER_SEC);
        ASSERT(http_parse_retry_after("Wed, 29 Feb 2012 12:00:00 GMT", NULL, UINT64_C(1330516800) * USEC_PER_SEC, &v) == 0 &&
               v == 0);
        /* In the past: no wait. */
        ASSERT(http_parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", NULL, now, &v) == 0 && v == 0);
        /* Invalid. */
        v = 777;
        ASSERT(http_parse_retry_after("", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("-1", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("+5", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("5s", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("1e3", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after(".", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("nan", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("Sun, 06 Nov 1994 25:49:37 GMT", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT junk", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", NULL, now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after(NULL, "abc", now, &v) == -EINVAL);
        ASSERT(http_parse_retry_after("99999999999999999999999", NULL, now, &v) == -ERANGE);
        ASSERT(http_parse_retry_after("18446744073710", NULL, now, &v) == -ERANGE);
        ASSERT(http_parse_retry_after(NULL, NULL, now, &v) == -ENODATA);
        ASSERT(v == 777);
        ASSERT(http_parse_retry_after("1", NULL, now, NULL) == -EINVAL);
}

/* ---- Cost -------------------------------------------------------------- */

static bool close_to(double a, double b) {
        return fabs(a - b) < 1e-12;
}

static void test_cost(void) {
        ChatUsage u = { .input = 1000000, .output = 500000, .cache_read = 2000000, .cache_write = 100000 };

        ASSERT(close_to(chat_cost_usd(&u, 3, 15, 0.3, 3.75), 3 + 7.5 + 0.6 + 0.375));
        ASSERT(close_to(chat_cost_usd(&u, 0, 0, 0, 0), 0));
        u = (ChatUsage) { .input = 10, .output = 1 };
        ASSERT(close_to(chat_cost_usd(&u, 0.25, 2, 0.025, 0), (10 * 0.25 + 2) / 1e6));
        /* Unknown prices count as free, never NaN. */
        ASSERT(close_to(chat_cost_usd(&u, NAN, 2, INFINITY, -1), 2 / 1e6));
        ASSERT(chat_cost_usd(NULL, 1, 1, 1, 1) == 0);

        /* Cost from a streamed usage. */
        Result res;
        run(CHAT_API_ANTHROPIC, anthropic_transcript, &res);
        ASSERT(close_to(chat_cost_usd(&res.usage, 1, 5, 0.1, 1.25), (25 * 1 + 15 * 5) / 1e6));
}

int main(void) {
        test_transcripts();
        test_utf8();
        test_openai_details();
        test_anthropic_details();
        test_usage_only();
        test_midstream_errors();
        test_malformed();
        test_incomplete();
        test_after_terminator();
        test_callback_abort();
        test_request_bodies();
        test_privacy_and_images();
        test_error_bodies();
        test_retry_after();
        test_cost();
        printf("test-chat-wire: all passed\n");
        return 0;
}
