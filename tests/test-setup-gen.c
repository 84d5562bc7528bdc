/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the tool setup generators and the strict JSON merge.
 * Generator output is compared with golden files under tests/golden/;
 * UPDATE_GOLDEN=1 rewrites them (then review the diff).
 */
#include <stdarg.h>
#include <sys/stat.h>

#include "setup-gen.h"
#include "test.h"

#define TEST_KEY "bk_TESTKEY_0123456789abcdefABCDEF"
#define GATEWAY "https://llm.bankr.bot"

static const char *golden_dir;
static bool update_golden;

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

/* ---- Model list fixtures, built by hand (no dependency on model-list.c) ---- */

static void add_model(ModelList *l, const char *id, const char *name, const char *owner, uint32_t ctx,
                      uint32_t max_out, const char *input_csv, double in, double out, double cread,
                      double cwrite) {
        Model *m;

        l->models = realloc(l->models, sizeof(Model) * (l->n + 1));
        if (!l->models)
                abort();
        m = &l->models[l->n++];
        *m = (Model) {
                .id = strdup(id),
                .name = name ? strdup(name) : NULL,
                .provider = strdup(owner),
                .api = strdup(streq(owner, "anthropic") ? "anthropic" : "openai"),
                .context_window = ctx,
                .max_output_tokens = max_out,
                .price_input = in,
                .price_output = out,
                .price_cache_read = cread,
                .price_cache_write = cwrite,
        };
        _cleanup_free_ char *csv = strdup(input_csv);
        char *save = NULL;
        for (char *t = strtok_r(csv, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (strv_extend(&m->input, t) < 0)
                        abort();
}

static void free_list(ModelList *l) {
        for (size_t i = 0; i < l->n; i++) {
                Model *m = &l->models[i];
                free(m->id);
                free(m->name);
                free(m->provider);
                free(m->api);
                strv_free(m->input);
        }
        free(l->models);
        *l = (ModelList) {};
}

/* The bankr CLI's built-in catalog (shared/reference/bankr-cli-behaviour.md). */
static void build_catalog(ModelList *l) {
        add_model(l, "claude-opus-4.6", "Claude Opus 4.6", "anthropic", 1000000, 128000, "text,image", 5, 25, 0.5, 6.25);
        add_model(l, "claude-opus-4.5", "Claude Opus 4.5", "anthropic", 200000, 64000, "text,image", 5, 25, 0.5, 6.25);
        add_model(l, "claude-sonnet-4.6", "Claude Sonnet 4.6", "anthropic", 1000000, 128000, "text,image", 3, 15, 0.3, 3.75);
        add_model(l, "claude-sonnet-4.5", "Claude Sonnet 4.5", "anthropic", 1000000, 64000, "text,image", 3, 15, 0.3, 3.75);
        add_model(l, "claude-haiku-4.5", "Claude Haiku 4.5", "anthropic", 200000, 64000, "text,image", 1, 5, 0.1, 1.25);
        add_model(l, "gemini-3.1-pro", "Gemini 3.1 Pro", "google", 1048576, 65536, "text,image", 2, 12, 0.2, 0.375);
        add_model(l, "gemini-3.1-flash-lite", "Gemini 3.1 Flash Lite", "google", 1048576, 65536, "text,image", 0.25, 1.5, 0.025, 0.08333);
        add_model(l, "gemini-3-pro", "Gemini 3 Pro", "google", 1048576, 65536, "text,image", 2, 12, 0.2, 0.375);
        add_model(l, "gemini-3-flash", "Gemini 3 Flash", "google", 1048576, 65535, "text,image", 0.5, 3, 0.05, 0.0833);
        add_model(l, "gemini-2.5-pro", "Gemini 2.5 Pro", "google", 1048576, 65536, "text,image", 1.25, 10, 0.125, 0.375);
        add_model(l, "gemini-2.5-flash", "Gemini 2.5 Flash", "google", 1048576, 65535, "text,image", 0.3, 2.5, 0.03, 0.0833);
        add_model(l, "gpt-5.4", "GPT 5.4", "openai", 1050000, 128000, "text,image", 2.5, 15, 0.25, 0);
        add_model(l, "gpt-5.2", "GPT 5.2", "openai", 400000, 128000, "text", 1.75, 14, 0.175, 0);
        add_model(l, "gpt-5.2-codex", "GPT 5.2 Codex", "openai", 400000, 128000, "text", 1.75, 14, 0.175, 0);
        add_model(l, "gpt-5-mini", "GPT 5 Mini", "openai", 400000, 128000, "text", 0.25, 2, 0.025, 0);
        add_model(l, "gpt-5-nano", "GPT 5 Nano", "openai", 400000, 128000, "text", 0.05, 0.4, 0.005, 0);
        add_model(l, "grok-4.1-fast", "Grok 4.1 Fast", "x-ai", 2000000, 30000, "text", 0.2, 0.5, 0.05, 0);
        add_model(l, "deepseek-v3.2", "DeepSeek V3.2", "deepseek", 163840, 65536, "text", 0.26, 0.38, 0.13, 0);
        add_model(l, "qwen3-coder", "Qwen3 Coder", "qwen", 262144, 65536, "text", 0.12, 0.75, 0.06, 0);
        add_model(l, "qwen3.5-plus", "Qwen3.5 Plus", "qwen", 1000000, 65536, "text", 0.26, 1.56, 0, 0);
        add_model(l, "qwen3.5-flash", "Qwen3.5 Flash", "qwen", 1000000, 65536, "text", 0.1, 0.4, 0, 0);
        add_model(l, "kimi-k2.5", "Kimi K2.5", "moonshotai", 262144, 65535, "text", 0.45, 2.2, 0.225, 0);
        add_model(l, "minimax-m2.5", "MiniMax M2.5", "minimax", 196608, 196608, "text", 0.27, 0.95, 0.03, 0);
}

/* What a live gateway might answer: a subset in another order, a model the
 * catalog lacks, one without a name, modalities OpenClaw does not know,
 * awkward characters and prices. claude-opus-4.6 is missing on purpose. */
static void build_live(ModelList *l) {
        add_model(l, "gpt-5.2", "GPT 5.2", "openai", 400000, 128000, "text", 1.75, 14, 0.175, 0);
        add_model(l, "claude-sonnet-4.6", "Claude Sonnet 4.6", "anthropic", 1000000, 128000, "text,image,pdf", 3, 15, 0.3, 3.75);
        add_model(l, "gemini-3-pro", "Gemini 3 Pro", "google", 1048576, 65536, "image,text,audio,video", 2, 12, 0.2, 0.375);
        add_model(l, "brand-new-model", NULL, "newcorp", 128000, 32768, "", 0, 0, 0, 0);
        add_model(l, "qu\"oted/model", "Qu\"oted \\ Modèl\t1", "odd", 8192, 4096, "text", 0.0000001, 1234567.5, 1e-7, 0.30000000000000004);
        add_model(l, "claude-haiku-4.5", "Claude Haiku 4.5", "anthropic", 200000, 64000, "text,image", 1, 5, 0.1, 1.25);
        /* Repeated ids count once (the first wins). */
        add_model(l, "gpt-5.2", "GPT 5.2 again", "openai", 1, 1, "text", 0, 0, 0, 0);
}

/* ---- Golden files ---- */

static char *read_file(const char *path) {
        char *t = NULL;
        int r = read_full_file(path, 16 * 1024 * 1024, &t, NULL);
        return r < 0 ? NULL : t;
}

static void check_golden(const char *name, const char *text) {
        _cleanup_free_ char *path = NULL, *want = NULL;

        if (!text) {
                fprintf(stderr, "golden %s: no text\n", name);
                test_failures++;
                return;
        }
        if (asprintf(&path, "%s/%s", golden_dir, name) < 0)
                abort();
        if (update_golden) {
                if (write_file_atomic(path, text, strlen(text), 0644) < 0) {
                        fprintf(stderr, "Failed to write %s: %m\n", path);
                        test_failures++;
                }
                return;
        }
        want = read_file(path);
        if (!want) {
                fprintf(stderr, "golden %s missing (run with UPDATE_GOLDEN=1)\n", path);
                test_failures++;
                return;
        }
        if (!streq(want, text)) {
                fprintf(stderr, "golden %s differs; got:\n%s\n", path, text);
                test_failures++;
        }
}

static void test_generators(const char *list_name, const ModelList *l) {
        for (SetupTool t = 0; t < _SETUP_TOOL_MAX; t++)
                for (SetupKeyMode m = 0; m < _SETUP_KEY_MODE_MAX; m++) {
                        _cleanup_(erase_and_freep) char *text = NULL;
                        _cleanup_free_ char *name = NULL;

                        EXPECT_R(setup_preview(t, l, GATEWAY, m, TEST_KEY, &text), 0);
                        if (asprintf(&name, "%s-%s-%s.txt", setup_tool_to_string(t), list_name,
                                     setup_key_mode_to_string(m)) < 0)
                                abort();
                        check_golden(name, text);
                        /* The key is in the text exactly when asked for. */
                        EXPECT(!!strstr(strempty(text), TEST_KEY) == (m == SETUP_KEY_INLINE));
                }

        for (SetupTool t = 0; t < _SETUP_TOOL_MAX; t++) {
                _cleanup_free_ char *text = NULL, *name = NULL;

                EXPECT_R(setup_default_hint(t, l, &text), 0);
                if (asprintf(&name, "hint-%s-%s.txt", setup_tool_to_string(t), list_name) < 0)
                        abort();
                check_golden(name, text);
        }
}

static void test_basics(void) {
        _cleanup_free_ char *p = NULL, *text = NULL;
        ModelList empty = {};

        EXPECT(setup_tool_from_string("openclaw") == SETUP_TOOL_OPENCLAW);
        EXPECT(setup_tool_from_string("cursor") == SETUP_TOOL_CURSOR);
        EXPECT(setup_tool_from_string("vim") == _SETUP_TOOL_INVALID);
        EXPECT(setup_tool_from_string(NULL) == _SETUP_TOOL_INVALID);
        EXPECT(streq(setup_tool_to_string(SETUP_TOOL_CLAUDE), "claude"));
        EXPECT(setup_key_mode_from_string("inline") == SETUP_KEY_INLINE);
        EXPECT(setup_key_mode_from_string("plain") == _SETUP_KEY_MODE_INVALID);
        EXPECT(setup_tool_has_config(SETUP_TOOL_OPENCODE));
        EXPECT(!setup_tool_has_config(SETUP_TOOL_CURSOR));

        EXPECT_R(setup_tool_config_path(SETUP_TOOL_OPENCLAW, "/home/u", NULL, NULL, &p), 0);
        EXPECT(streq_ptr(p, "/home/u/.openclaw/openclaw.json"));
        p = mfree_str(p);
        EXPECT_R(setup_tool_config_path(SETUP_TOOL_OPENCLAW, "/home/u", NULL, "/etc/oc.json", &p), 0);
        EXPECT(streq_ptr(p, "/etc/oc.json"));
        p = mfree_str(p);
        EXPECT_R(setup_tool_config_path(SETUP_TOOL_OPENCODE, "/home/u", "", NULL, &p), 0);
        EXPECT(streq_ptr(p, "/home/u/.config/opencode/opencode.json"));
        p = mfree_str(p);
        EXPECT_R(setup_tool_config_path(SETUP_TOOL_OPENCODE, "/home/u", "/x/cfg", NULL, &p), 0);
        EXPECT(streq_ptr(p, "/x/cfg/opencode/opencode.json"));
        p = mfree_str(p);
        EXPECT_R(setup_tool_config_path(SETUP_TOOL_CURSOR, "/home/u", NULL, NULL, &p), -EOPNOTSUPP);
        EXPECT_R(setup_tool_config_path(SETUP_TOOL_OPENCLAW, NULL, NULL, NULL, &p), -EINVAL);

        /* Inline needs a key; env never prints one. */
        EXPECT_R(setup_preview(SETUP_TOOL_OPENCLAW, &empty, GATEWAY, SETUP_KEY_INLINE, NULL, &text), -EINVAL);
        EXPECT_R(setup_preview(SETUP_TOOL_OPENCLAW, &empty, GATEWAY, SETUP_KEY_INLINE, "", &text), -EINVAL);
        EXPECT_R(setup_preview(SETUP_TOOL_OPENCLAW, &empty, "", SETUP_KEY_ENV, NULL, &text), -EINVAL);
        EXPECT_R(setup_provider_json(SETUP_TOOL_CLAUDE, &empty, GATEWAY, SETUP_KEY_ENV, NULL, &text), -EOPNOTSUPP);
        EXPECT_R(setup_default_hint(SETUP_TOOL_OPENCLAW, &empty, &text), -ENODATA);

        /* URL forms: trailing '/', "/v1" or both end up the same. */
        const char *urls[] = { "https://llm.bankr.bot/", "https://llm.bankr.bot/v1", "https://llm.bankr.bot/v1/" };
        for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
                _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

                EXPECT_R(setup_preview(SETUP_TOOL_OPENCODE, &empty, urls[i], SETUP_KEY_ENV, NULL, &a), 0);
                EXPECT_R(setup_preview(SETUP_TOOL_OPENCODE, &empty, GATEWAY, SETUP_KEY_ENV, NULL, &b), 0);
                EXPECT(streq_ptr(a, b));
                EXPECT(strstr(strempty(a), "\"baseURL\": \"https://llm.bankr.bot/v1\""));
                EXPECT_R(setup_preview(SETUP_TOOL_CLAUDE, &empty, urls[i], SETUP_KEY_ENV, NULL, &c), 0);
                EXPECT(strstr(strempty(c), "export ANTHROPIC_BASE_URL=\"https://llm.bankr.bot\"\n"));
                EXPECT_R(setup_preview(SETUP_TOOL_OPENCLAW, &empty, urls[i], SETUP_KEY_ENV, NULL, &d), 0);
                EXPECT(strstr(strempty(d), "\"baseUrl\": \"https://llm.bankr.bot\","));
        }

        /* Shell quoting: anything that could expand goes in single quotes. */
        {
                _cleanup_free_ char *c = NULL;
                EXPECT_R(setup_preview(SETUP_TOOL_CLAUDE, &empty, "http://127.0.0.1:8080", SETUP_KEY_INLINE,
                                      "bk_a'b$(x)`y`!z", &c), 0);
                EXPECT(streq_ptr(c, "export ANTHROPIC_BASE_URL=\"http://127.0.0.1:8080\"\n"
                                   "export ANTHROPIC_AUTH_TOKEN='bk_a'\\''b$(x)`y`!z'\n"));
        }

        /* Cursor warns about a gateway its servers cannot reach. */
        {
                _cleanup_free_ char *c = NULL, *d = NULL;
                EXPECT_R(setup_preview(SETUP_TOOL_CURSOR, &empty, "http://localhost:8080", SETUP_KEY_ENV, NULL, &c), 0);
                EXPECT(strstr(strempty(c), "Warning: http://localhost:8080/v1 is a local address"));
                EXPECT_R(setup_preview(SETUP_TOOL_CURSOR, &empty, GATEWAY, SETUP_KEY_ENV, NULL, &d), 0);
                EXPECT(!strstr(strempty(d), "Warning:"));
        }
}

/* ---- Merge ---- */

static char *provider(SetupTool t, const ModelList *l) {
        char *p = NULL;
        EXPECT_R(setup_provider_json(t, l, GATEWAY, SETUP_KEY_ENV, NULL, &p), 0);
        return p;
}

static void test_merge_fresh(const ModelList *l) {
        for (SetupTool t = SETUP_TOOL_OPENCLAW; t <= SETUP_TOOL_OPENCODE; t++) {
                _cleanup_free_ char *prov = provider(t, l), *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;

                EXPECT_R(setup_merge(t, NULL, prov, false, &a, NULL), 0);
                EXPECT_R(setup_preview(t, l, GATEWAY, SETUP_KEY_ENV, NULL, &b), 0);
                EXPECT(streq_ptr(a, b));
                /* Empty or blank files hold nothing to keep: fresh too. */
                EXPECT_R(setup_merge(t, "", prov, false, &c, NULL), 0);
                EXPECT(streq_ptr(a, c));
                EXPECT_R(setup_merge(t, " \n\t\r\n", prov, false, &d, NULL), 0);
                EXPECT(streq_ptr(a, d));
                /* A byte order mark is accepted (and not written back). */
                EXPECT_R(setup_merge(t, "\xEF\xBB\xBF{}\n", prov, false, &e, NULL), 0);
                EXPECT(streq_ptr(a, e));
        }
}

/* merge-<tool>-<case>.in.json + our provider → .out.json, byte for byte;
 * merging the output again changes nothing. */
static void test_merge_file(SetupTool t, const char *casename, const ModelList *l) {
        _cleanup_free_ char *in_path = NULL, *out_name = NULL, *in = NULL, *prov = provider(t, l),
                           *out = NULL, *again = NULL, *err = NULL;

        if (asprintf(&in_path, "%s/merge-%s-%s.in.json", golden_dir, setup_tool_to_string(t), casename) < 0 ||
            asprintf(&out_name, "merge-%s-%s.out.json", setup_tool_to_string(t), casename) < 0)
                abort();
        in = read_file(in_path);
        if (!in) {
                fprintf(stderr, "fixture %s missing\n", in_path);
                test_failures++;
                return;
        }
        EXPECT_R(setup_merge(t, in, prov, false, &out, &err), 0);
        if (err)
                fprintf(stderr, "%s: %s\n", in_path, err);
        check_golden(out_name, out);
        EXPECT_R(setup_merge(t, out, prov, false, &again, NULL), 0);
        EXPECT(streq_ptr(out, again));
}

static void test_merge_numbers(void) {
        /* Untouched numbers keep their spelling, even beyond 64 bits or
         * what a double can hold. */
        static const char in[] =
                "{\n"
                "  \"a\": 0.1,\n"
                "  \"b\": 1e3,\n"
                "  \"c\": 123456789012345678901234567890,\n"
                "  \"d\": -0,\n"
                "  \"e\": 1.0,\n"
                "  \"f\": 1E400,\n"
                "  \"g\": -9223372036854775809,\n"
                "  \"h\": 18446744073709551615,\n"
                "  \"i\": 9007199254740993,\n"
                "  \"j\": [0.30000000000000004, -1.5e-10, 2E+5, 100, -7],\n"
                "  \"k\": \"text \\u00e9 \\ud83d\\ude00 \\/ \\u0001\",\n"
                "  \"l\": null,\n"
                "  \"m\": {},\n"
                "  \"n\": [],\n"
                "  \"o\": [true, false, null, {}, []]\n"
                "}\n";
        static const char tail[] =
                "  \"a\": 0.1,\n"
                "  \"b\": 1e3,\n"
                "  \"c\": 123456789012345678901234567890,\n"
                "  \"d\": -0,\n"
                "  \"e\": 1.0,\n"
                "  \"f\": 1E400,\n"
                "  \"g\": -9223372036854775809,\n"
                "  \"h\": 18446744073709551615,\n"
                "  \"i\": 9007199254740993,\n"
                "  \"j\": [\n"
                "    0.30000000000000004,\n"
                "    -1.5e-10,\n"
                "    2E+5,\n"
                "    100,\n"
                "    -7\n"
                "  ],\n"
                "  \"k\": \"text \xc3\xa9 \xf0\x9f\x98\x80 / \\u0001\",\n"
                "  \"l\": null,\n"
                "  \"m\": {},\n"
                "  \"n\": [],\n"
                "  \"o\": [\n"
                "    true,\n"
                "    false,\n"
                "    null,\n"
                "    {},\n"
                "    []\n"
                "  ],\n";
        ModelList empty = {};
        _cleanup_free_ char *prov = provider(SETUP_TOOL_OPENCODE, &empty), *out = NULL, *err = NULL;

        EXPECT_R(setup_merge(SETUP_TOOL_OPENCODE, in, prov, false, &out, &err), 0);
        /* $schema first, then the user's members unchanged, then ours. */
        EXPECT(startswith(strempty(out), "{\n  \"$schema\": \"https://opencode.ai/config.json\",\n"));
        EXPECT(strstr(strempty(out), tail));
        if (!strstr(strempty(out), tail))
                fprintf(stderr, "got:\n%s\n", strempty(out));
}

static void test_merge_refused(const ModelList *l) {
        static const struct {
                const char *text;
                const char *says;
        } bad[] = {
                { "{\n  // my settings\n  \"a\": 1\n}\n", "a comment (JSONC/JSON5 syntax, not JSON) at line 2, column 3" },
                { "{\"a\": 1 /* why */}", "a comment" },
                { "/* head */ {}", "a comment" },
                { "{} // tail", "a comment" },
                { "# hash\n{}", "'#' comment" },
                { "{\"a\": 1,}", "a trailing comma before '}'" },
                { "{\"a\": [1, 2,]}", "a trailing comma before ']'" },
                { "{'a': 1}", "single-quoted" },
                { "{\"a\": 'x'}", "single-quoted" },
                { "{a: 1}", "an unquoted key" },
                { "{\"a\": NaN}", "a number JSON does not allow" },
                { "{\"a\": Infinity}", "a number JSON does not allow" },
                { "{\"a\": -Infinity}", "a number JSON does not allow" },
                { "{\"a\": +1}", "a number JSON does not allow" },
                { "{\"a\": .5}", "a number JSON does not allow" },
                { "{\"a\": 5.}", "no digit after its '.'" },
                { "{\"a\": 0x1F}", "hexadecimal" },
                { "{\"a\": 012}", "leading zero" },
                { "{\"a\": 1e}", "incomplete exponent" },
                { "{\"a\": \"x\ty\"}", "raw control character" },
                { "{\"a\": \"\\x41\"}", "invalid escape" },
                { "{\"a\": \"\\ud800\"}", "unpaired UTF-16 surrogate" },
                { "{\"a\": \"\\u12G4\"}", "invalid \\u escape" },
                { "{\"a\": \"\xff\"}", "not valid UTF-8 at line 1, column 8" },
                { "{\"a\": \"\xc0\xaf\"}", "not valid UTF-8" },
                { "{\"a\": 1, \"a\": 2}", "the key \"a\" twice in the same object at line 1, column 10" },
                { "{\"x\": {\"b\": 1, \"b\": 1}}", "the key \"b\" twice" },
                { "{\"a\": 1} {\"b\": 2}", "more text after the end" },
                { "{\"a\": 1}x", "more text after the end" },
                { "[1, 2]", "an array at the top level" },
                { "\"text\"", "a string at the top level" },
                { "42", "a number at the top level" },
                { "null", "null at the top level" },
                { "hello world", "an unexpected character where a value was expected at line 1, column 1" },
                { "{\"a\": tru}", "an unexpected character" },
                { "{\"a\": True}", "an unexpected character" },
                { "{\"a\": 1", "the text ends before" },
                { "{\"a\": \"abc", "the text ends before" },
                { "{\"a\" 1}", "a ':' after the key" },
                { "{\"a\": 1 \"b\": 2}", "',' or '}'" },
                { "{\"a\": \"k\\u0000\", \"b\\u0000\": 1}", "a key containing \\u0000" },
                { "\x01{}", "an unexpected character" },
        };

        for (SetupTool t = SETUP_TOOL_OPENCLAW; t <= SETUP_TOOL_OPENCODE; t++) {
                _cleanup_free_ char *prov = provider(t, l), *fresh = NULL;

                EXPECT_R(setup_merge(t, NULL, prov, false, &fresh, NULL), 0);
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        _cleanup_free_ char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
                        int r;

                        r = setup_merge(t, bad[i].text, prov, false, &out, &err);
                        if (r != -EBADMSG || out || !err || !strstr(err, bad[i].says) ||
                            !strstr(err, "use --force")) {
                                fprintf(stderr, "case %zu (%s): r=%d err=%s\n", i, bad[i].text, r, strna(err));
                                test_failures++;
                        }
                        /* force: a fresh file, and the reason. */
                        r = setup_merge(t, bad[i].text, prov, true, &out2, &err2);
                        EXPECT(r == 1);
                        EXPECT(streq_ptr(out2, fresh));
                        EXPECT(err2 && strstr(err2, bad[i].says));
                }
        }

        /* Deep nesting is refused, not a stack overflow. */
        {
                size_t depth = 100000;
                _cleanup_free_ char *deep = malloc(depth * 2 + 3), *prov = provider(SETUP_TOOL_OPENCLAW, l),
                                    *out = NULL, *err = NULL;
                char *p = deep;
                *p++ = '{';
                *p++ = '"';
                *p++ = 'a';
                *p++ = '"';
                *p++ = ':';
                for (size_t i = 0; i < depth; i++)
                        *p++ = '[';
                *p = 0;
                EXPECT_R(setup_merge(SETUP_TOOL_OPENCLAW, deep, prov, false, &out, &err), -EBADMSG);
                EXPECT(err && strstr(err, "nesting deeper than"));
        }
}

static void test_merge_conflicts(const ModelList *l) {
        static const struct {
                SetupTool tool;
                const char *text;
                const char *says;
        } bad[] = {
                { SETUP_TOOL_OPENCLAW, "{\"models\": \"none\"}", "Its \"models\" is a string, not an object" },
                { SETUP_TOOL_OPENCLAW, "{\"models\": null}", "Its \"models\" is null, not an object" },
                { SETUP_TOOL_OPENCLAW, "{\"models\": {\"providers\": []}}", "Its \"models.providers\" is an array" },
                { SETUP_TOOL_OPENCLAW, "{\"models\": {\"providers\": 3}}", "Its \"models.providers\" is a number" },
                { SETUP_TOOL_OPENCODE, "{\"provider\": true}", "Its \"provider\" is a boolean" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *prov = provider(bad[i].tool, l), *out = NULL, *err = NULL, *out2 = NULL,
                                    *err2 = NULL, *fresh = NULL;

                EXPECT_R(setup_merge(bad[i].tool, bad[i].text, prov, false, &out, &err), -EBADMSG);
                EXPECT(!out);
                EXPECT(err && strstr(err, bad[i].says) && strstr(err, "--force"));
                EXPECT_R(setup_merge(bad[i].tool, bad[i].text, prov, true, &out2, &err2), 1);
                EXPECT_R(setup_merge(bad[i].tool, NULL, prov, false, &fresh, NULL), 0);
                EXPECT(streq_ptr(out2, fresh));
        }

        /* The same names elsewhere are not ours to judge. */
        {
                _cleanup_free_ char *prov = provider(SETUP_TOOL_OPENCODE, l), *out = NULL;
                EXPECT_R(setup_merge(SETUP_TOOL_OPENCODE, "{\"models\": 5}", prov, false, &out, NULL), 0);
        }
}

static void test_merge_keeps_position(void) {
        ModelList empty = {};
        _cleanup_free_ char *prov = provider(SETUP_TOOL_OPENCLAW, &empty), *out = NULL;

        EXPECT_R(setup_merge(SETUP_TOOL_OPENCLAW,
                            "{\"z\":1,\"models\":{\"providers\":{\"a\":{},\"bankr\":{\"old\":true},\"c\":null},\"mode\":\"merge\"},\"y\":2}",
                            prov, false, &out, NULL), 0);
        EXPECT(streq_ptr(out,
                        "{\n"
                        "  \"z\": 1,\n"
                        "  \"models\": {\n"
                        "    \"providers\": {\n"
                        "      \"a\": {},\n"
                        "      \"bankr\": {\n"
                        "        \"baseUrl\": \"https://llm.bankr.bot\",\n"
                        "        \"apiKey\": \"${BANKR_API_KEY}\",\n"
                        "        \"api\": \"openai-completions\",\n"
                        "        \"models\": []\n"
                        "      },\n"
                        "      \"c\": null\n"
                        "    },\n"
                        "    \"mode\": \"merge\"\n"
                        "  },\n"
                        "  \"y\": 2\n"
                        "}\n"));

        /* An existing $schema stays where it is, with its value. */
        _cleanup_free_ char *prov2 = provider(SETUP_TOOL_OPENCODE, &empty), *out2 = NULL;
        EXPECT_R(setup_merge(SETUP_TOOL_OPENCODE, "{\"a\":null,\"$schema\":\"https://example.com/s.json\"}", prov2,
                            false, &out2, NULL), 0);
        EXPECT(startswith(strempty(out2), "{\n  \"a\": null,\n  \"$schema\": \"https://example.com/s.json\",\n  \"provider\": {\n"));
}

/* The keys a backup must not keep (setup_inline_keys()). */
static void test_inline_keys(void) {
        char **l = NULL;

        EXPECT_R(setup_inline_keys(SETUP_TOOL_OPENCLAW,
                                  "{\"models\":{\"providers\":{\"bankr\":{\"apiKey\":\"plainkey-no-prefix\"}}},"
                                  "\"other\":\"bk_elsewhere_12345678\",\"short\":\"bk_1234567\"}", &l), 0);
        EXPECT(strv_length(l) == 2);
        EXPECT(l && streq_ptr(l[0], "plainkey-no-prefix") && streq_ptr(l[1], "bk_elsewhere_12345678"));
        l = setup_keys_free(l);

        /* The environment reference is no key. */
        EXPECT_R(setup_inline_keys(SETUP_TOOL_OPENCODE,
                                  "{\"provider\":{\"bankr\":{\"options\":{\"apiKey\":\"{env:BANKR_API_KEY}\"}}}}", &l), 0);
        EXPECT(!l);
        EXPECT_R(setup_inline_keys(SETUP_TOOL_OPENCODE,
                                  "{\"provider\":{\"bankr\":{\"options\":{\"apiKey\":\"\\u0062k_escaped_0123456789\"}}}}", &l), 0);
        EXPECT(strv_length(l) == 1 && streq_ptr(l[0], "bk_escaped_0123456789")); /* decoded */
        l = setup_keys_free(l);

        /* Not JSON (replaced with --force): bk_ tokens still found, once each. */
        EXPECT_R(setup_inline_keys(SETUP_TOOL_OPENCODE, "{ // x\n apiKey: 'bk_abc_0123456789', again bk_abc_0123456789,\n",
                                  &l), 0);
        EXPECT(strv_length(l) == 1 && streq_ptr(l[0], "bk_abc_0123456789"));
        l = setup_keys_free(l);

        /* Print-only tools and no file: nothing. */
        EXPECT_R(setup_inline_keys(SETUP_TOOL_CLAUDE, "bk_abc_0123456789", &l), 0);
        EXPECT(!l);
        EXPECT_R(setup_inline_keys(SETUP_TOOL_OPENCLAW, NULL, &l), 0);
        EXPECT(!l);
        EXPECT(streq_ptr(setup_key_reference(SETUP_TOOL_OPENCLAW), "${BANKR_API_KEY}"));
        EXPECT(streq_ptr(setup_key_reference(SETUP_TOOL_OPENCODE), "{env:BANKR_API_KEY}"));
}

int main(void) {
        ModelList catalog = {}, live = {};

        golden_dir = getenv("GOLDEN_DIR") ?: SOURCE_ROOT "/tests/golden";
        update_golden = streq_ptr(getenv("UPDATE_GOLDEN"), "1");
        if (update_golden)
                (void) mkdir(golden_dir, 0755);

        build_catalog(&catalog);
        build_live(&live);

        test_basics();
        test_generators("catalog", &catalog);
        test_generators("live", &live);
        test_merge_fresh(&live);
        test_merge_file(SETUP_TOOL_OPENCLAW, "nested", &live);
        test_merge_file(SETUP_TOOL_OPENCODE, "nested", &live);
        test_merge_numbers();
        test_merge_refused(&live);
        test_merge_conflicts(&live);
        test_merge_keeps_position();
        test_inline_keys();

        free_list(&catalog);
        free_list(&live);

        if (test_failures > 0) {
                fprintf(stderr, "%u EXPECT(s) failed\n", test_failures);
                return EXIT_FAILURE;
        }
        printf("setup-gen: all checks passed%s\n", update_golden ? " (golden files rewritten)" : "");
        return EXIT_SUCCESS;
}
