/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the chat wire code. Input: two control bytes, then a
 * response body. Byte 0: bit 0 picks the API (so '0' is OpenAI and '1'
 * Anthropic), bits 1-2 the event size limit; bytes 0-1 seed the piece
 * sizes. The body goes through a ChatStream whole and in pieces (same
 * text, end, stop reason and usage required; every delta valid UTF-8),
 * through the error-body parser, the Retry-After parser and, as message
 * content, through the request builder (which must round-trip it).
 */
#include <json-c/json.h>
#include <string.h>

#include "chat-cost.h"
#include "chat-request.h"
#include "chat-stream.h"
#include "http-error.h"
#include "utf8.h"
#include "fuzz.h"
#include "sse.h"

typedef struct Run {
        uint64_t hash;
        size_t text_len;
        unsigned n_deltas, n_done, n_failed;
} Run;

static int on_delta(const char *text, size_t len, void *userdata) {
        Run *r = userdata;

        FUZZ_CHECK(text && len > 0);
        FUZZ_CHECK(r->n_done == 0 && r->n_failed == 0);
        FUZZ_CHECK(utf8_is_valid_n(text, len));
        FUZZ_CHECK(!memchr(text, 0, len));
        r->hash = fuzz_hash(r->hash, text, len);
        r->text_len += len;
        r->n_deltas++;
        return 0;
}

static int on_done(void *userdata) {
        Run *r = userdata;

        FUZZ_CHECK(r->n_done == 0 && r->n_failed == 0);
        r->n_done++;
        return 0;
}

static int on_failed(const char *type, const char *message, void *userdata) {
        Run *r = userdata;

        FUZZ_CHECK(r->n_done == 0 && r->n_failed == 0);
        FUZZ_CHECK(type && *type && message && *message);
        FUZZ_CHECK(strlen(message) <= CHAT_ERROR_MESSAGE_MAX);
        FUZZ_CHECK(utf8_is_valid_n(message, strlen(message)));
        r->hash = fuzz_hash(r->hash, type, strlen(type) + 1);
        r->n_failed++;
        return 0;
}

static const ChatStreamCallbacks callbacks = {
        .delta = on_delta,
        .done = on_done,
        .failed = on_failed,
};

typedef struct Outcome {
        Run run;
        int finish;
        ChatStreamState state;
        ChatStopReason stop;
        ChatUsage usage;
        uint64_t model_hash;
        bool has_text;
} Outcome;

static void run_stream(ChatApi api, size_t max, bool usage_only, const uint8_t *data, size_t size, FuzzSplit *split,
                       Outcome *o) {
        ChatStream *s = NULL;
        bool ended = false;

        *o = (Outcome) { .run.hash = FUZZ_HASH_INIT };
        FUZZ_CHECK(chat_stream_new(api, &s) == 0);
        chat_stream_set_max_event_size(s, max);
        chat_stream_set_usage_only(s, usage_only);

        for (size_t i = 0; i < size;) {
                size_t k = split ? fuzz_split_next(split, size - i) : size;
                int r = chat_stream_feed(s, data + i, k, &callbacks, &o->run);

                FUZZ_CHECK(r == 0 || r == 1);
                if (ended)
                        FUZZ_CHECK(r == 1);
                if (r == 1) {
                        ended = true;
                        FUZZ_CHECK(chat_stream_get_state(s) != CHAT_STREAM_RUNNING);
                }
                i += k;
        }

        o->finish = chat_stream_finish(s, &callbacks, &o->run);
        o->state = chat_stream_get_state(s);
        o->stop = chat_stream_get_stop_reason(s);
        chat_stream_get_usage(s, &o->usage);
        o->has_text = chat_stream_has_text(s);
        o->model_hash = fuzz_hash(FUZZ_HASH_INIT, chat_stream_get_model(s) ?: "", strlen(chat_stream_get_model(s) ?: ""));

        FUZZ_CHECK(o->state != CHAT_STREAM_RUNNING);
        FUZZ_CHECK(o->finish == (o->state == CHAT_STREAM_DONE));
        FUZZ_CHECK(o->run.n_done + o->run.n_failed == 1);
        FUZZ_CHECK((o->run.n_done == 1) == (o->state == CHAT_STREAM_DONE));
        FUZZ_CHECK(o->has_text == (o->run.n_deltas > 0));
        if (usage_only)
                FUZZ_CHECK(o->run.n_deltas == 0);

        const char *type = NULL, *message = NULL;
        FUZZ_CHECK(chat_stream_get_error(s, &type, &message) == (o->state == CHAT_STREAM_FAILED));
        if (type) {
                o->run.hash = fuzz_hash(o->run.hash, message, strlen(message));
                FUZZ_CHECK(strlen(message) <= CHAT_ERROR_MESSAGE_MAX);
        }
        FUZZ_CHECK(chat_stop_reason_to_string(o->stop));

        (void) chat_cost_usd(&o->usage, 1.5, 7.5, 0.15, 1.875);
        chat_stream_free(s);
}

static void fuzz_error_body(const uint8_t *data, size_t size) {
        char *type = NULL, *message = NULL;
        int r;

        r = chat_parse_error_body((const char *) data, size, &type, &message);
        FUZZ_CHECK(r == 0 || r == 1);
        FUZZ_CHECK(message);
        FUZZ_CHECK(strlen(message) <= CHAT_ERROR_MESSAGE_MAX);
        FUZZ_CHECK(utf8_is_valid_n(message, strlen(message)));
        for (const char *c = message; *c; c++)
                FUZZ_CHECK((unsigned char) *c >= 0x20 && *c != 0x7f);
        if (type)
                FUZZ_CHECK(*type && strlen(type) <= 64 && !strpbrk(type, " \t\r\n\"<>"));
        free(type);
        free(message);
}

static void fuzz_retry_after(const uint8_t *data, size_t size) {
        char buf[65];
        uint64_t v = 0;
        size_t n = size < 64 ? size : 64;
        int r;

        memcpy(buf, data, n);
        buf[n] = 0;
        r = http_parse_retry_after(buf, NULL, UINT64_C(1700000000) * USEC_PER_SEC, &v);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
        r = http_parse_retry_after(NULL, buf, 0, &v);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
}

static void fuzz_request(ChatApi api, const uint8_t *data, size_t size) {
        char *content = strndup((const char *) data, size), *json = NULL;
        ChatMessage m[] = { { "system", "sys" }, { "user", content } };
        ChatRequestParams p = CHAT_REQUEST_PARAMS_INIT;
        json_object *o, *v;

        FUZZ_CHECK(content);
        p.model = "m";
        p.messages = m;
        p.n_messages = 2;
        p.system = content;
        FUZZ_CHECK(chat_request_build(api, &p, &json) == 0);

        /* Whatever the bytes, the body is JSON and carries them unchanged. */
        o = json_tokener_parse(json);
        FUZZ_CHECK(o);
        FUZZ_CHECK(json_object_object_get_ex(o, "messages", &v));
        /* OpenAI: [system option, "sys", user]; an empty system option is unset. */
        v = json_object_array_get_idx(v, api == CHAT_API_OPENAI ? (content[0] ? 2 : 1) : 0);
        FUZZ_CHECK(json_object_object_get_ex(v, "content", &v));
        FUZZ_CHECK(strcmp(json_object_get_string(v), content) == 0);
        json_object_put(o);
        free(json);
        free(content);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t max_choices[] = { 0, 16, 128, 4096 };
        Outcome whole, pieces, usage;

        if (size < 2)
                return 0;

        ChatApi api = (data[0] & 1) ? CHAT_API_ANTHROPIC : CHAT_API_OPENAI;
        size_t max = max_choices[(data[0] >> 1) & 3];
        FuzzSplit split = fuzz_split_init(data[0], data[1]);
        data += 2;
        size -= 2;

        run_stream(api, max, false, data, size, NULL, &whole);
        run_stream(api, max, false, data, size, &split, &pieces);
        run_stream(api, max, true, data, size, &split, &usage);

        FUZZ_CHECK(whole.run.hash == pieces.run.hash);
        FUZZ_CHECK(whole.run.text_len == pieces.run.text_len);
        FUZZ_CHECK(whole.finish == pieces.finish);
        FUZZ_CHECK(whole.state == pieces.state);
        FUZZ_CHECK(whole.stop == pieces.stop);
        FUZZ_CHECK(memcmp(&whole.usage, &pieces.usage, sizeof whole.usage) == 0);
        FUZZ_CHECK(whole.model_hash == pieces.model_hash);

        /* Usage only parses fewer events: where full decoding completed,
         * it completes too, with the same model and usage. */
        if (whole.state == CHAT_STREAM_DONE) {
                FUZZ_CHECK(usage.state == CHAT_STREAM_DONE);
                FUZZ_CHECK(memcmp(&whole.usage, &usage.usage, sizeof whole.usage) == 0);
                FUZZ_CHECK(whole.model_hash == usage.model_hash);
        }

        fuzz_error_body(data, size);
        fuzz_retry_after(data, size);
        if (size < 4096)
                fuzz_request(api, data, size);
        return 0;
}
