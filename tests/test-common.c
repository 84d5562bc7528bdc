/* SPDX-License-Identifier: MIT */
/* Unit tests for the pure helpers: URL normalisation, the bankr config file,
 * key checks and masking. */
#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "bankr-config.h"
#include "json-util.h"
#include "log.h"
#include "keyfmt.h"
#include "url.h"
#include "utf8.h"

static int failures = 0;
#define CHECK(x)                                                                       \
        do {                                                                           \
                if (!(x)) {                                                            \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        failures++;                                                    \
                }                                                                      \
        } while (0)

static void url_ok(const char *in, const char *want) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r = url_normalize(in, &out, &err);
        if (r < 0 || !streq_ptr(out, want))
                fprintf(stderr, "url_normalize(\"%s\") = %d \"%s\" (%s), wanted \"%s\"\n", in, r, strna(out), strna(err), want);
        CHECK(r == 0 && streq_ptr(out, want));
}

static void url_bad(const char *in, const char *needle) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r = url_normalize(in, &out, &err);
        if (r != -EINVAL || !err || !strstr(err, needle))
                fprintf(stderr, "url_normalize(\"%s\") = %d \"%s\" (%s), wanted an error with \"%s\"\n", in, r, strna(out), strna(err), needle);
        CHECK(r == -EINVAL && err && strstr(err, needle));
        CHECK(!out);
}

static void test_url(void) {
        url_ok("https://llm.bankr.bot", "https://llm.bankr.bot");
        url_ok("https://llm.bankr.bot/", "https://llm.bankr.bot");
        url_ok("https://llm.bankr.bot/v1", "https://llm.bankr.bot");
        url_ok("https://llm.bankr.bot/v1/", "https://llm.bankr.bot");
        url_ok("https://llm.bankr.bot//v1//", "https://llm.bankr.bot");
        url_ok("  https://LLM.Bankr.Bot/V1  ", "https://llm.bankr.bot");
        url_ok("HTTPS://llm.bankr.bot:8443/gw/v1", "https://llm.bankr.bot:8443/gw");
        url_ok("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080");
        url_ok("http://localhost:1234", "http://localhost:1234");
        url_ok("http://[::1]:99/", "http://[::1]:99");
        url_ok("http://127.5.6.7", "http://127.5.6.7");
        url_ok("https://[2001:db8::1]:443/v1", "https://[2001:db8::1]:443");
        url_ok("https://llm.bankr.bot/v1beta", "https://llm.bankr.bot/v1beta");
        url_ok("http://127.0.0.1:0080/v1/1//:/v1/v1/", "http://127.0.0.1:0080/v1/1//:"); /* found by fuzz-models */

        url_bad("", "empty");
        url_bad("   ", "empty");
        url_bad("llm.bankr.bot", "https://");
        url_bad("ftp://llm.bankr.bot", "https://");
        url_bad("https://", "host");
        url_bad("https:///v1", "host");
        url_bad("http://llm.bankr.bot", "unencrypted");
        url_bad("http://10.0.0.1:8080", "unencrypted");
        url_bad("http://128.0.0.1", "unencrypted");
        url_bad("https://user:pw@llm.bankr.bot", "password");
        url_bad("https://llm.bankr.bot:0", "port");
        url_bad("https://llm.bankr.bot:99999", "port");
        url_bad("https://llm.bankr.bot:abc", "port");
        url_bad("https://llm.bankr.bot/v1?x=1", "query");
        url_bad("https://llm.bankr.bot/#frag", "fragment");
        url_bad("https://llm bankr.bot", "spaces");
        url_bad("https://[::1", "IPv6");
        url_bad("https://ex ample.com", "spaces");
        url_bad("https://exa$mple.com", "host name");

        CHECK(url_host_is_loopback("localhost"));
        CHECK(url_host_is_loopback("127.0.0.1"));
        CHECK(!url_host_is_loopback("127.0.0.1.evil.com"));
        CHECK(!url_host_is_loopback("localhost.evil.com"));
}

static void test_keys(void) {
        const char *reason = NULL;
        char big[KEY_MAX_BYTES + 2];

        CHECK(key_check("bk_abcdefghijkl", 15, &reason) == 0);
        CHECK(key_check("", 0, &reason) == -EINVAL && strstr(reason, "empty"));
        CHECK(key_check("bk_ab cd", 8, &reason) == -EINVAL && strstr(reason, "whitespace"));
        CHECK(key_check(" bk_abcd", 8, &reason) == -EINVAL && strstr(reason, "whitespace"));
        CHECK(key_check("bk_abcd\n", 8, &reason) == -EINVAL && strstr(reason, "whitespace"));
        CHECK(key_check("bk_ab\tcd", 8, &reason) == -EINVAL && strstr(reason, "whitespace"));
        CHECK(key_check("bk_ab\x01" "cd", 8, &reason) == -EINVAL && strstr(reason, "control"));
        CHECK(key_check("bk_ab\x7f" "cd", 8, &reason) == -EINVAL && strstr(reason, "control"));
        CHECK(key_check("bk_ab\xff" "cd", 8, &reason) == -EINVAL && strstr(reason, "UTF-8"));
        CHECK(key_check("bk_ab\xc3" "cd", 8, &reason) == -EINVAL && strstr(reason, "UTF-8"));
        CHECK(key_check("bk_\xc2\xa0x", 6, &reason) == -EINVAL && strstr(reason, "whitespace"));   /* NBSP */
        CHECK(key_check("bk_\xe2\x80\x8bx", 7, &reason) == -EINVAL && strstr(reason, "whitespace")); /* ZWSP */
        CHECK(key_check("bk_\xc3\xa9t\xc3\xa9", 8, &reason) == 0); /* é is fine */
        memset(big, 'a', sizeof big);
        CHECK(key_check(big, KEY_MAX_BYTES, &reason) == 0);
        CHECK(key_check(big, KEY_MAX_BYTES + 1, &reason) == -EINVAL && strstr(reason, "4 KiB"));

        struct {
                const char *in, *out;
        } masks[] = {
                { NULL, "" },
                { "", "" },
                { "a", "****" },
                { "bk_12345", "****" },
                { "bk_123456", "bk_123...3456" },
                { "bk_abcdefghijklmnopqrstuvwxyz", "bk_abc...wxyz" },
                { "ééééééééé", "éééééé...éééé" },
        };
        for (size_t i = 0; i < ELEMENTSOF(masks); i++) {
                _cleanup_free_ char *m = key_mask(masks[i].in);
                if (!streq_ptr(m, masks[i].out))
                        fprintf(stderr, "key_mask(%s) = %s, wanted %s\n", strna(masks[i].in), strna(m), masks[i].out);
                CHECK(streq_ptr(m, masks[i].out));
        }
        struct {
                const char *in, *key, *out;
        } redactions[] = {
                { "bad key bk_secret_123 here", "bk_secret_123", "bad key *** here" },
                { "bk_secret_123bk_secret_123", "bk_secret_123", "******" },
                { "cut: bk_secre", "bk_secret_123", "cut: ***" },          /* a start longer than the mask shows */
                { "cut: bk_secre\xe2\x80\xa6", "bk_secret_123", "cut: ***\xe2\x80\xa6" },
                { "cut: bk_sec", "bk_secret_123", "cut: bk_sec" },         /* what key_mask() shows anyway */
                { "a*b", "*", "a***b" },                                   /* a one-byte key cannot loop or overflow */
                { "nothing", NULL, "nothing" },
                /* Any run of 8 or more bytes of the key, wherever it is cut. */
                { "echo: bk_secret_12.", "bk_secret_123", "echo: ***." },       /* without its last character */
                { "echo: k_secret_123 end", "bk_secret_123", "echo: *** end" },  /* without its first */
                { "[ecret_12]", "bk_secret_123", "[***]" },                      /* 8 from the middle */
                { "[cret_123]", "bk_secret_123", "[***]" },
                { "[ecret_]", "bk_secret_123", "[ecret_]" },                     /* 7: left alone */
                { "ab_secret_123bk_secre", "bk_secret_123", "ab******" },         /* two pieces side by side */
                { "bk_secret_123", "bk_secret_123", "***" },                     /* a model id equal to the key */
                { "x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9y", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "x***y" },
                { "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3!", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "***!" },
                { "", "k", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(redactions); i++) {
                _cleanup_free_ char *out = key_redact(redactions[i].in, redactions[i].key);
                if (!streq_ptr(out, redactions[i].out))
                        fprintf(stderr, "key_redact(%s) = %s, wanted %s\n", redactions[i].in, strna(out), redactions[i].out);
                CHECK(streq_ptr(out, redactions[i].out));
        }
        CHECK(key_redact(NULL, "k") == NULL);

        CHECK(key_kind_valid("llm") && key_kind_valid("api") && !key_kind_valid("LLM") && !key_kind_valid(""));
}

/* Random keys and texts made of pieces of them: no run of KEY_REDACT_RUN
 * bytes of the key survives, and what is not a run is kept. */
static void test_redact_random(void) {
        static const char alphabet[] = "abAB_01-";
        unsigned seed = 12345;

        for (unsigned iter = 0; iter < 20000; iter++) {
                char key[40], text[200];
                size_t kl = 1 + rand_r(&seed) % (sizeof key - 1), tl = 0;

                for (size_t i = 0; i < kl; i++)
                        key[i] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
                key[kl] = 0;
                while (tl < sizeof text - 1) {
                        size_t a = rand_r(&seed) % kl, n = 1 + rand_r(&seed) % kl;
                        if (rand_r(&seed) % 3 == 0) { /* noise */
                                text[tl++] = " .:x"[rand_r(&seed) % 4];
                                continue;
                        }
                        for (size_t i = a; i < kl && n > 0 && tl < sizeof text - 1; i++, n--)
                                text[tl++] = key[i];
                }
                text[tl] = 0;

                _cleanup_free_ char *out = key_redact(text, key);
                CHECK(out != NULL);
                if (!out)
                        return;
                CHECK(strlen(out) <= 3 * tl);
                for (size_t i = 0; i + KEY_REDACT_RUN <= kl; i++) {
                        char run[KEY_REDACT_RUN + 1];
                        memcpy(run, key + i, KEY_REDACT_RUN);
                        run[KEY_REDACT_RUN] = 0;
                        if (strstr(out, run)) {
                                fprintf(stderr, "key_redact(%s, %s) = %s keeps %s\n", text, key, out, run);
                                CHECK(false);
                                return;
                        }
                }
                if (kl >= KEY_REDACT_RUN && !strstr(out, "***"))
                        /* Nothing marked: nothing was a run (the text is kept as it is). */
                        CHECK(streq(out, text));
        }
}

static void test_config(void) {
        BankrConfig *c = NULL;
        char *err = NULL, *out = NULL;

        const char *t = "{\"apiKey\": \"bk_api\", \"llmUrl\": \"http://127.0.0.1:1\", \"other\": {\"x\": [1, 2.50, 1e3]}, \"llmKey\": 5}";
        CHECK(bankr_config_parse(t, strlen(t), &c, &err) == 0);
        CHECK(c && streq_ptr(c->api_key, "bk_api") && !c->llm_key && streq_ptr(c->llm_url, "http://127.0.0.1:1"));
        c = bankr_config_free(c);

        CHECK(bankr_config_parse("", 0, &c, &err) == 0 && c && !c->llm_key);
        c = bankr_config_free(c);
        CHECK(bankr_config_parse("  \n", 3, &c, &err) == 0);
        c = bankr_config_free(c);

        const char *bad[] = { "{", "[1,2]", "\"str\"", "{\"a\": 1,}", "{\"a\": 1} x", "{/* c */ \"a\": 1}", "{'a': 1}", "nul" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = mfree(err);
                int r = bankr_config_parse(bad[i], strlen(bad[i]), &c, &err);
                if (r != -EBADMSG)
                        fprintf(stderr, "bankr_config_parse(%s) = %d\n", bad[i], r);
                CHECK(r == -EBADMSG && err);
                CHECK(!c);
        }
        err = mfree(err);

        /* Editing keeps every other member, its order and number spelling. */
        const char *keys[] = { "llmKey", "apiKey" };
        const char *unset[] = { NULL, NULL };
        CHECK(bankr_config_edit(t, keys, unset, 2, &out) == 0);
        CHECK(streq_ptr(out, "{\n  \"llmUrl\": \"http://127.0.0.1:1\",\n  \"other\": {\n    \"x\": [\n      1,\n      2.50,\n      1e3\n    ]\n  }\n}\n"));
        if (out && !strstr(out, "2.50"))
                fprintf(stderr, "edit output: %s", out);
        out = mfree(out);

        const char *k1[] = { "llmUrl" };
        const char *v1[] = { "https://x.example/a/b" };
        CHECK(bankr_config_edit("{\"a\": 1, \"llmUrl\": \"old\", \"z\": true}", k1, v1, 1, &out) == 0);
        CHECK(streq_ptr(out, "{\n  \"a\": 1,\n  \"llmUrl\": \"https://x.example/a/b\",\n  \"z\": true\n}\n"));
        out = mfree(out);
        CHECK(bankr_config_edit(NULL, k1, v1, 1, &out) == 0);
        CHECK(streq_ptr(out, "{\n  \"llmUrl\": \"https://x.example/a/b\"\n}\n"));
        out = mfree(out);
        CHECK(bankr_config_edit("[1]", k1, v1, 1, &out) == -EBADMSG);

        /* The file: mode kept, unparsable file untouched. */
        char dir[] = "/tmp/test-common-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = NULL;
        CHECK(asprintf(&path, "%s/sub/config.json", dir) > 0);
        CHECK(bankr_config_update_file(path, k1, v1, 1, &err) == 0);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
        _cleanup_free_ char *sub = strndup(path, strlen(path) - strlen("/config.json"));
        CHECK(stat(sub, &st) == 0 && (st.st_mode & 07777) == 0700);
        CHECK(chmod(path, 0640) == 0);
        const char *v2[] = { "https://y.example" };
        CHECK(bankr_config_update_file(path, k1, v2, 1, &err) == 0);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);

        FILE *f = fopen(path, "w");
        fputs("{ \"llmUrl\": \"x\", // comment\n}", f);
        fclose(f);
        CHECK(bankr_config_update_file(path, k1, v1, 1, &err) == -EBADMSG && err && strstr(err, "untouched"));
        err = mfree(err);
        char *after = NULL;
        CHECK(read_full_file(path, 4096, &after, NULL) == 0 && streq_ptr(after, "{ \"llmUrl\": \"x\", // comment\n}"));
        free(after);

        /* Removing imported keys: only an unchanged value goes; a read-only file is refused. */
        const char *kk[] = { "llmKey", "apiKey" };
        const char *exp[] = { "bk_old", "bk_api" };
        unsigned kept = 99;
        f = fopen(path, "w");
        fputs("{\"llmKey\": \"bk_new\", \"apiKey\": \"bk_api\", \"z\": 1}", f);
        fclose(f);
        CHECK(bankr_config_remove_if_unchanged(path, kk, exp, 2, &kept, &err) == 0 && kept == 1);
        CHECK(read_full_file(path, 4096, &after, NULL) == 0 &&
              streq_ptr(after, "{\n  \"llmKey\": \"bk_new\",\n  \"z\": 1\n}\n"));
        free(after);
        CHECK(chmod(path, 0400) == 0);
        const char *exp2[] = { "bk_new", NULL };
        CHECK(bankr_config_check_writable(path) == -EROFS);
        CHECK(bankr_config_remove_if_unchanged(path, kk, exp2, 2, &kept, &err) == -EROFS && err && strstr(err, "read-only"));
        err = mfree(err);
        CHECK(bankr_config_update_file(path, k1, v1, 1, &err) == -EROFS && err && strstr(err, "mode 0400"));
        err = mfree(err);
        CHECK(read_full_file(path, 4096, &after, NULL) == 0 && strstr(after, "bk_new"));
        free(after);
        CHECK(chmod(path, 0600) == 0 && bankr_config_check_writable(path) == 0);
        CHECK(bankr_config_remove_if_unchanged(path, kk, exp2, 2, &kept, &err) == 0 && kept == 0);
        CHECK(read_full_file(path, 4096, &after, NULL) == 0 && streq_ptr(after, "{\n  \"z\": 1\n}\n"));
        free(after);
        _cleanup_free_ char *cmd = NULL;
        CHECK(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
        (void) !system(cmd);
}

static void test_utf8(void) {
        uint32_t cp = 0;
        char t[4];

        /* Decoding one code point, and the three kinds of answer. */
        CHECK(utf8_decode("A", 1, &cp) == 1 && cp == 'A');
        CHECK(utf8_decode("\xC3\xA9", 2, &cp) == 2 && cp == 0xE9);
        CHECK(utf8_decode("\xE2\x82\xAC", 3, &cp) == 3 && cp == 0x20AC);
        CHECK(utf8_decode("\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600);
        CHECK(utf8_decode("\xE2\x82", 2, &cp) == 0);      /* incomplete */
        CHECK(utf8_decode("\xC0\xAF", 2, &cp) == -1);     /* overlong lead */
        CHECK(utf8_decode("\xED\xA0\x80", 3, &cp) == -1); /* surrogate */
        CHECK(utf8_decode("\xE2\x28\xA1", 3, &cp) == -1); /* bad continuation */
        CHECK(utf8_decode("\xF4\x90\x80\x80", 4, &cp) == -1); /* above U+10FFFF */

        /* Encoding round-trips. */
        CHECK(utf8_encode(0x24, t) == 1 && t[0] == '$');
        CHECK(utf8_encode(0x20AC, t) == 3 && memcmp(t, "\xE2\x82\xAC", 3) == 0);
        CHECK(utf8_encode(0x10FFFF, t) == 4 && utf8_decode(t, 4, &cp) == 4 && cp == 0x10FFFF);

        /* Validation: NUL bytes are valid, a cut sequence is not. */
        CHECK(utf8_is_valid_n("a\0b", 3));
        CHECK(utf8_is_valid_n("", 0));
        CHECK(!utf8_is_valid_n("ab\xE2\x82", 4));
        CHECK(utf8_invalid_at("ab\xE2\x82", 4) == 2);
        CHECK(utf8_invalid_at("ok", 2) == SIZE_MAX);

        /* Repair: one U+FFFD per maximal subpart; a held incomplete tail. */
        Buf b = {};
        size_t hold = 99;
        CHECK(utf8_sanitize_append(&b, "a\xFF" "b\xE2\x82", 5, false, &hold) == 0);
        CHECK(b.n == 5 && memcmp(b.p, "a" UTF8_REPLACEMENT "b", 5) == 0 && hold == 2);
        buf_clear(&b);
        CHECK(utf8_sanitize_append(&b, "x\0y", 3, false, NULL) == 0);
        CHECK(b.n == 5 && memcmp(b.p, "x" UTF8_REPLACEMENT "y", 5) == 0);
        buf_done(&b);

        /* Cut points never split a character. */
        CHECK(utf8_cut("h\xC3\xA9llo", 6, 2) == 1);
        CHECK(utf8_cut("h\xC3\xA9llo", 6, 3) == 3);
        CHECK(utf8_cut("abc", 3, 10) == 3);
        CHECK(utf8_cut("\xE2\x82\xAC", 3, 2) == 0);

        /* Characters, for masks and columns. */
        CHECK(utf8_chars("h\xC3\xA9\xE2\x82\xAC") == 3);
        CHECK(utf8_skip_chars("h\xC3\xA9\xE2\x82\xAC!", 2) == 3);
        CHECK(utf8_skip_chars("ab", 5) == 2);
}

static void test_getenv_msec(void) {
        const char *n = "BANKR_TEST_GETENV_MSEC";

        CHECK(unsetenv(n) == 0);
        CHECK(getenv_msec(n, 7, 1, 100) == 7);
        setenv(n, "", 1);
        CHECK(getenv_msec(n, 7, 1, 100) == 7);
        setenv(n, "25", 1);
        CHECK(getenv_msec(n, 7, 1, 100) == 25 * USEC_PER_MSEC);
        setenv(n, "0", 1);
        CHECK(getenv_msec(n, 7, 0, 100) == 0);
        CHECK(getenv_msec(n, 7, 1, 100) == 7); /* below min */
        setenv(n, "101", 1);
        CHECK(getenv_msec(n, 7, 1, 100) == 7); /* above max */
        /* One rule for all: digits only. */
        static const char *const bad[] = { "-1", " 5", "+5", "5ms", "1.5", "0x10", "99999999999999999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                setenv(n, bad[i], 1);
                CHECK(getenv_msec(n, 7, 0, MSEC_MAX) == 7);
        }
        setenv(n, "18446744073709551", 1); /* MSEC_MAX itself */
        CHECK(getenv_msec(n, 7, 0, MSEC_MAX) == MSEC_MAX * USEC_PER_MSEC);
        setenv(n, "18446744073709552", 1);
        CHECK(getenv_msec(n, 7, 0, UINT64_MAX) == 7); /* would overflow µs */
        CHECK(unsetenv(n) == 0);
}

static void test_json_parse_body(void) {
        json_object *o = NULL;

        CHECK(json_parse_body("{\"balanceUsd\": 12.5}", 20, &o) == 0);
        CHECK(json_object_is_type(o, json_type_object));
        CHECK(json_object_get_double(json_get(o, "balanceUsd")) == 12.5);
        json_object_put(o);
        /* Not NUL-terminated: only len bytes are read. */
        o = NULL;
        CHECK(json_parse_body("[1]xyz", 3, &o) == 0 && json_object_is_type(o, json_type_array));
        json_object_put(o);
        /* As json_tokener_parse_ex() reads it: what follows the value is not looked at. */
        o = NULL;
        CHECK(json_parse_body("{} trailing", 11, &o) == 0 && json_object_is_type(o, json_type_object));
        json_object_put(o);
        o = NULL;
        CHECK(json_parse_body("7 ", 2, &o) == 0 && json_object_get_int(o) == 7);
        json_object_put(o);
        /* json-c cannot tell a number at the very end from one cut short. */
        o = NULL;
        CHECK(json_parse_body("7", 1, &o) == -EBADMSG && !o);

        /* Failures leave *ret alone. */
        o = NULL;
        CHECK(json_parse_body("", 0, &o) == -EBADMSG && !o);
        CHECK(json_parse_body("{\"a\":", 5, &o) == -EBADMSG && !o);
        CHECK(json_parse_body("<html>", 6, &o) == -EBADMSG && !o);
        CHECK(json_parse_body("null", 4, &o) == -EBADMSG && !o);
        CHECK(json_parse_body("{}", (size_t) INT32_MAX + 1, &o) == -E2BIG && !o);
}

static unsigned help_calls;
static void count_help(void) {
        help_calls++;
}

static int parse(char **argv) {
        int argc = 0;

        while (argv[argc])
                argc++;
        optind = 0; /* getopt from the start, as in a fresh process */
        return daemon_parse_argv("bankr-test", count_help, argc, argv);
}

static void test_daemon_parse_argv(void) {
        int saved = log_max_level;

        log_max_level = LOG_INFO;
        CHECK(parse((char *[]) { (char *) "prog", NULL }) == 1);
        CHECK(log_max_level == LOG_INFO);
        CHECK(help_calls == 0);

        CHECK(parse((char *[]) { (char *) "prog", (char *) "--help", NULL }) == 0);
        CHECK(parse((char *[]) { (char *) "prog", (char *) "-h", NULL }) == 0);
        CHECK(help_calls == 2);
        CHECK(parse((char *[]) { (char *) "prog", (char *) "--version", NULL }) == 0);
        CHECK(help_calls == 2);

        /* Refused: nothing changes. */
        CHECK(parse((char *[]) { (char *) "prog", (char *) "-v", (char *) "--bogus", NULL }) == -EINVAL);
        CHECK(parse((char *[]) { (char *) "prog", (char *) "-v", (char *) "extra", NULL }) == -EINVAL);
        CHECK(log_max_level == LOG_INFO);

        CHECK(parse((char *[]) { (char *) "prog", (char *) "--verbose", NULL }) == 1);
        CHECK(log_max_level == LOG_DEBUG);
        log_max_level = LOG_INFO;
        CHECK(parse((char *[]) { (char *) "prog", (char *) "-v", NULL }) == 1);
        CHECK(log_max_level == LOG_DEBUG);
        log_max_level = saved;
}

static void set_message(char **dst, const char *fmt, ...) _printf_(2, 3);
static void set_message(char **dst, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        CHECK(free_and_vasprintf(dst, fmt, ap) == 0);
        va_end(ap);
}

static void test_free_and_vasprintf(void) {
        _cleanup_free_ char *s = NULL;

        set_message(&s, "%s %d", "one", 1);
        CHECK(streq_ptr(s, "one 1"));
        /* The old text may be an argument: it is freed only afterwards. */
        set_message(&s, "%s, two", s);
        CHECK(streq_ptr(s, "one 1, two"));
}

static void test_pread_full(void) {
        _cleanup_close_ int fd = memfd_create("test", MFD_CLOEXEC);
        _cleanup_free_ void *data = NULL;
        char text[10000];
        size_t size = 0;

        CHECK(fd >= 0);
        /* Empty. */
        CHECK(pread_full(fd, 0, 100, &data, &size) == 0 && size == 0);
        data = mfree(data);
        for (size_t i = 0; i < sizeof text; i++)
                text[i] = (char) ('a' + i % 26);
        CHECK(write(fd, text, sizeof text) == (ssize_t) sizeof text);
        /* A small hint grows; fd's offset stays at the end. */
        CHECK(pread_full(fd, 10, sizeof text, &data, &size) == 0 && size == sizeof text);
        CHECK(data && memcmp(data, text, sizeof text) == 0);
        data = mfree(data);
        CHECK(lseek(fd, 0, SEEK_CUR) == (off_t) sizeof text);
        /* The exact hint, and one byte over the limit. */
        CHECK(pread_full(fd, sizeof text, sizeof text, &data, &size) == 0 && size == sizeof text);
        data = mfree(data);
        CHECK(pread_full(fd, 10, sizeof text - 1, &data, &size) == -EFBIG && !data);
        CHECK(pread_full(fd, sizeof text, sizeof text - 1, &data, &size) == -EFBIG && !data);
}

int main(void) {
        test_url();
        test_keys();
        test_redact_random();
        test_config();
        test_utf8();
        test_getenv_msec();
        test_json_parse_body();
        test_daemon_parse_argv();
        test_free_and_vasprintf();
        test_pread_full();
        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return 1;
        }
        printf("all common checks passed\n");
        return 0;
}
