/* SPDX-License-Identifier: MIT */
/* Unit test of common/model-list.c: catalog, gateway answers, round trip, closest ids. */
#include "log.h"
#include "model-list.h"

static unsigned n_failed;

#define CHECK(x)                                                                        \
        do {                                                                            \
                if (!(x)) {                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        n_failed++;                                                     \
                }                                                                       \
        } while (0)

static ModelList *catalog;

static int parse(const char *json, ModelList **ret, char **ret_error) {
        return model_list_from_gateway_json(json, strlen(json), catalog, ret, ret_error);
}

static void test_catalog(void) {
        _cleanup_free_ char *text = NULL, *error = NULL, *out = NULL;
        _cleanup_(model_list_freep) ModelList *again = NULL;
        size_t size;
        const Model *m;

        CHECK(read_full_file(SOURCE_ROOT "/data/models.json", 1 << 20, &text, &size) >= 0);
        CHECK(model_list_from_gateway_json(text, size, NULL, &catalog, &error) >= 0);
        CHECK(!error);
        CHECK(catalog && catalog->n == 23);

        /* Every row as in the reference table, spot-checked across providers. */
        m = model_list_find(catalog, "claude-opus-4.6");
        CHECK(m && streq(m->name, "Claude Opus 4.6") && streq(m->provider, "anthropic") &&
              streq(m->api, "anthropic") && m->context_window == 1000000 && m->max_output_tokens == 128000 &&
              strv_length(m->input) == 2 && streq(m->input[0], "text") && streq(m->input[1], "image") &&
              m->price_input == 5 && m->price_output == 25 && m->price_cache_read == 0.5 &&
              m->price_cache_write == 6.25);
        m = model_list_find(catalog, "gemini-3.1-flash-lite");
        CHECK(m && m->context_window == 1048576 && m->max_output_tokens == 65536 && m->price_input == 0.25 &&
              m->price_output == 1.5 && m->price_cache_read == 0.025 && m->price_cache_write == 0.08333 &&
              streq(m->api, "openai") && streq(m->provider, "google"));
        m = model_list_find(catalog, "gemini-3-flash");
        CHECK(m && m->max_output_tokens == 65535 && m->price_cache_write == 0.0833);
        m = model_list_find(catalog, "gpt-5.2");
        CHECK(m && strv_length(m->input) == 1 && streq(m->input[0], "text") && m->price_cache_write == 0);
        m = model_list_find(catalog, "minimax-m2.5");
        CHECK(m && m->context_window == 196608 && m->max_output_tokens == 196608 && m->price_input == 0.27 &&
              m->price_output == 0.95 && m->price_cache_read == 0.03 && streq(m->provider, "minimax"));
        m = model_list_find(catalog, "grok-4.1-fast");
        CHECK(m && m->context_window == 2000000 && m->max_output_tokens == 30000 && streq(m->provider, "x-ai"));
        CHECK(streq(catalog->models[0].id, "claude-opus-4.6"));
        CHECK(streq(catalog->models[catalog->n - 1].id, "minimax-m2.5"));
        for (size_t i = 0; i < catalog->n; i++)
                CHECK(streq(catalog->models[i].api,
                            startswith(catalog->models[i].id, "claude-") ? "anthropic" : "openai"));

        /* Round trip: written and read back, it is the same list; written
         * again, the same text. */
        CHECK(model_list_to_json(catalog, &out) >= 0);
        CHECK(parse(out, &again, NULL) >= 0);
        CHECK(model_list_equal(catalog, again));
        _cleanup_free_ char *out2 = NULL;
        CHECK(model_list_to_json(again, &out2) >= 0);
        CHECK(streq(out, out2));
        CHECK(strstr(out, "\"cache_write\": 0.08333"));
        CHECK(strstr(out, "\"input\": 5,") || strstr(out, "\"input\": 5\n"));

        _cleanup_(model_list_freep) ModelList *copy = NULL;
        CHECK(model_list_copy(catalog, &copy) >= 0);
        CHECK(model_list_equal(catalog, copy));
        free(copy->models[3].name);
        copy->models[3].name = strdup("changed");
        CHECK(!model_list_equal(catalog, copy));
}

static void test_fill(void) {
        _cleanup_(model_list_freep) ModelList *l = NULL;
        const Model *m;

        /* OpenAI style: only ids and owners. */
        CHECK(parse("{\"object\":\"list\",\"data\":["
                    "{\"id\":\"claude-sonnet-4.5\",\"object\":\"model\",\"created\":1,\"owned_by\":\"anthropic\"},"
                    "{\"id\":\"new-model\",\"object\":\"model\",\"owned_by\":\"somebody\"},"
                    "{\"id\":\"claude-next\"},"
                    "{\"id\":\"odd-claude\",\"owned_by\":\"Anthropic\"},"
                    "{\"id\":\"gpt-5-mini\",\"name\":\"Mini!\",\"context_window\":500000,"
                    "\"pricing\":{\"input\":0.3}}]}",
                    &l, NULL) >= 0);
        CHECK(l && l->n == 5);

        m = model_list_find(l, "claude-sonnet-4.5");
        CHECK(m && streq(m->name, "Claude Sonnet 4.5") && m->context_window == 1000000 &&
              m->max_output_tokens == 64000 && strv_length(m->input) == 2 && m->price_output == 15 &&
              m->price_cache_write == 3.75 && streq(m->api, "anthropic"));

        m = model_list_find(l, "new-model");
        CHECK(m && streq(m->name, "new-model") && streq(m->provider, "somebody") && streq(m->api, "openai") &&
              m->context_window == 128000 && m->max_output_tokens == 32768 && strv_length(m->input) == 1 &&
              streq(m->input[0], "text") && m->price_input == 0 && m->price_output == 0 &&
              m->price_cache_read == 0 && m->price_cache_write == 0);

        m = model_list_find(l, "claude-next");
        CHECK(m && streq(m->api, "anthropic") && streq(m->provider, ""));
        m = model_list_find(l, "odd-claude");
        CHECK(m && streq(m->api, "anthropic"));

        /* Given fields win; missing ones come from the catalog, per field. */
        m = model_list_find(l, "gpt-5-mini");
        CHECK(m && streq(m->name, "Mini!") && m->context_window == 500000 && m->max_output_tokens == 128000 &&
              m->price_input == 0.3 && m->price_output == 2 && m->price_cache_read == 0.025 &&
              streq(m->provider, "openai"));
}

static void test_anthropic_paging(void) {
        _cleanup_(model_list_freep) ModelList *l = NULL;
        const Model *m;

        CHECK(parse("{\"data\":[{\"type\":\"model\",\"id\":\"claude-x-1\",\"display_name\":\"Claude X 1\","
                    "\"created_at\":\"2025-01-01T00:00:00Z\"},"
                    "{\"id\":\"claude-y\",\"name\":\"Named\",\"display_name\":\"Display\"}],"
                    "\"has_more\":true,\"first_id\":\"claude-x-1\",\"last_id\":\"claude-y\"}",
                    &l, NULL) >= 0);
        CHECK(l && l->n == 2);
        m = model_list_find(l, "claude-x-1");
        CHECK(m && streq(m->name, "Claude X 1") && streq(m->api, "anthropic"));
        m = model_list_find(l, "claude-y");
        CHECK(m && streq(m->name, "Named"));
}

static void test_wrong_types(void) {
        _cleanup_(model_list_freep) ModelList *l = NULL;
        const Model *m;

        CHECK(parse("{\"data\":["
                    "42, \"string\", null, [], {\"name\":\"no id\"}, {\"id\":17}, {\"id\":\"\"},"
                    "{\"id\":\"bad id\"}, {\"id\":\"ctl\\u0001\"},"
                    "{\"id\":\"claude-haiku-4.5\",\"name\":7,\"owned_by\":[\"x\"],\"context_window\":\"big\","
                    "\"max_output_tokens\":-5,\"input_modalities\":\"text\",\"pricing\":{\"input\":\"1\","
                    "\"output\":-1,\"cache_read\":1e300,\"cache_write\":null}},"
                    "{\"id\":\"x1\",\"context_window\":1.5,\"max_output_tokens\":1e12,"
                    "\"input_modalities\":[1,\"text\",\"text\",\"image\",null],\"pricing\":[1,2]},"
                    "{\"id\":\"x1\",\"name\":\"duplicate\"},"
                    "{\"id\":\"x2\",\"name\":\"a\\u0000b\",\"context_window\":4096.0,\"input_modalities\":[]}"
                    "]}",
                    &l, NULL) >= 0);
        CHECK(l && l->n == 3);

        m = model_list_find(l, "claude-haiku-4.5");
        CHECK(m && streq(m->name, "Claude Haiku 4.5") && streq(m->provider, "anthropic") &&
              m->context_window == 200000 && m->max_output_tokens == 64000 && strv_length(m->input) == 2 &&
              m->price_input == 1 && m->price_output == 5 && m->price_cache_read == 0.1 &&
              m->price_cache_write == 1.25);

        m = model_list_find(l, "x1");
        CHECK(m && streq(m->name, "x1") && m->context_window == 128000 && m->max_output_tokens == 32768 &&
              strv_length(m->input) == 2 && streq(m->input[0], "text") && streq(m->input[1], "image"));
        CHECK(l->models[1].id == m->id); /* the first x1 was kept */

        m = model_list_find(l, "x2");
        CHECK(m && streq(m->name, "x2") && m->context_window == 4096 && strv_length(m->input) == 1);
}

static void test_bad(void) {
        static const struct {
                const char *json;
                const char *message;
        } cases[] = {
                { "", "not valid JSON" },
                { "{\"data\":[", "not valid JSON" },
                { "<html><body>502 Bad Gateway</body></html>", "not valid JSON" },
                { "{\"data\":[]} trailing", "not valid JSON" },
                { "[]", "has no \"data\" array" },
                { "{}", "has no \"data\" array" },
                { "{\"data\":{\"id\":\"x\"}}", "has no \"data\" array" },
                { "{\"data\":null}", "has no \"data\" array" },
                { "{\"data\":[]}", "no usable model" },
                { "{\"data\":[1,2,{}]}", "no usable model" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(model_list_freep) ModelList *l = NULL;
                _cleanup_free_ char *error = NULL;

                CHECK(parse(cases[i].json, &l, &error) == -EBADMSG);
                CHECK(!l);
                CHECK(error && strstr(error, cases[i].message));
                if (!error || !strstr(error, cases[i].message))
                        fprintf(stderr, "  case %zu: %s\n", i, strna(error));
        }

        /* The "data" message is the one the daemon shows. */
        _cleanup_(model_list_freep) ModelList *l = NULL;
        _cleanup_free_ char *error = NULL;
        CHECK(parse("{\"models\":[]}", &l, &error) == -EBADMSG);
        CHECK(streq_ptr(error, "The gateway's model list has no \"data\" array."));
        /* A NULL error pointer is fine. */
        CHECK(parse("nope", &l, NULL) == -EBADMSG);
}

static void test_cap(void) {
        _cleanup_(model_list_freep) ModelList *l = NULL;
        size_t n = 12000, size = n * 20 + 32, off = 0;
        char *json = malloc(size);

        off += snprintf(json + off, size - off, "{\"data\":[");
        for (size_t i = 0; i < n; i++)
                off += snprintf(json + off, size - off, "%s{\"id\":\"m%zu\"}", i ? "," : "", i);
        off += snprintf(json + off, size - off, "]}");
        CHECK(model_list_from_gateway_json(json, off, NULL, &l, NULL) >= 0);
        CHECK(l && l->n == 10000);
        free(json);
}

static void check_closest(const char *id, const char *const *expected) {
        _cleanup_strv_free_ char **c = model_list_closest(catalog, id, 3);
        size_t n = 0;

        CHECK(c);
        if (!c)
                return;
        while (expected[n])
                n++;
        bool ok = strv_length(c) >= n;
        for (size_t i = 0; ok && i < n; i++)
                ok = streq(c[i], expected[i]);
        if (n == 0)
                ok = strv_length(c) == 0;
        if (!ok) {
                fprintf(stderr, "closest(%s):", id);
                for (char **s = c; *s; s++)
                        fprintf(stderr, " %s", *s);
                fprintf(stderr, "\n");
        }
        CHECK(ok);
}

static void test_closest(void) {
        check_closest("claude-sonet-4.5", (const char *const[]) { "claude-sonnet-4.5", "claude-sonnet-4.6", NULL });
        check_closest("Claude-Sonnet-4.5", (const char *const[]) { "claude-sonnet-4.5", NULL });
        check_closest("gpt5-mini", (const char *const[]) { "gpt-5-mini", NULL });
        check_closest("gemini-3-flsah", (const char *const[]) { "gemini-3-flash", NULL });
        /* Prefix matches, nearest (shortest) first. */
        check_closest("claude", (const char *const[]) { "claude-opus-4.5", "claude-opus-4.6", NULL });
        check_closest("codex", (const char *const[]) { "gpt-5.2-codex", NULL });
        check_closest("claude-3-sonnet", (const char *const[]) { "claude-sonnet-4.5", "claude-sonnet-4.6", NULL });
        check_closest("gemini-ultra", (const char *const[]) { "gemini-3-pro", NULL });
        check_closest("totally-unrelated-name", (const char *const[]) { NULL });
        check_closest("", (const char *const[]) { NULL });

        _cleanup_strv_free_ char **c = model_list_closest(catalog, "claude", 100);
        CHECK(strv_length(c) == 5);
        _cleanup_strv_free_ char **none = model_list_closest(NULL, "x", 3);
        CHECK(none && strv_length(none) == 0);
}

int main(void) {
        log_set_program("test-models");
        log_prefix_levels = false;

        test_catalog();
        test_fill();
        test_anthropic_paging();
        test_wrong_types();
        test_bad();
        test_cap();
        test_closest();

        model_list_free(catalog);
        if (n_failed > 0) {
                fprintf(stderr, "%u check(s) failed.\n", n_failed);
                return EXIT_FAILURE;
        }
        fprintf(stderr, "All model tests passed.\n");
        return EXIT_SUCCESS;
}
