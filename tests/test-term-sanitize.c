/* SPDX-License-Identifier: MIT */
/* Unit tests for the terminal filter (common/term-sanitize.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "term-sanitize.h"
#include "test.h"

/* in (n bytes) through the filter cut into pieces of `piece` bytes (0: whole). */
static char *run(const char *in, size_t n, size_t piece) {
        TermSanitizer t = TERM_SANITIZER_INIT;
        char *out = malloc(TERM_SANITIZE_OUT_MAX(n) + TERM_SANITIZE_FINISH_MAX + 1);
        size_t k = 0;

        ASSERT(out);
        if (piece == 0)
                piece = n ? n : 1;
        for (size_t i = 0; i < n; i += piece) {
                size_t m = n - i < piece ? n - i : piece;
                /* Each piece alone respects the bound. */
                size_t w = term_sanitize(&t, in + i, m, out + k);
                ASSERT(w <= TERM_SANITIZE_OUT_MAX(m));
                k += w;
        }
        k += term_sanitize_finish(&t, out + k);
        out[k] = 0;
        return out;
}

static void check_n(const char *in, size_t n, const char *want, int line) {
        for (size_t piece = 0; piece <= 5; piece++) {
                char *got = run(in, n, piece);
                if (strcmp(got, want) != 0) {
                        fprintf(stderr, "line %d, pieces of %zu: expected «%s», got «%s»\n", line, piece, want, got);
                        abort();
                }
                free(got);
        }
        ASSERT(term_text_is_safe(in, n) == (strlen(want) == n && memcmp(in, want, n) == 0));
}
#define check(in, want) check_n(in, sizeof(in) - 1, want, __LINE__)

static void test_text_is_kept(void) {
        check("", "");
        check("plain ASCII text, with punctuation!? {}[]~", "plain ASCII text, with punctuation!? {}[]~");
        check("lines\nand\ttabs\n\n", "lines\nand\ttabs\n\n");
        check("Grüße — 日本語 🎉 \xc2\xa0nbsp", "Grüße — 日本語 🎉 \xc2\xa0nbsp");
        check("\xf4\x8f\xbf\xbf max", "\xf4\x8f\xbf\xbf max"); /* U+10FFFF */
        check("\xed\x9f\xbf", "\xed\x9f\xbf");                 /* U+D7FF */
}

static void test_escape_sequences_are_inert(void) {
        /* OSC 52 (clipboard), OSC 0 (title), CSI 2J (clear), DCS, 8-bit CSI. */
        check("\x1b]52;c;ZWNobyBwd25lZA==\x07", "^[]52;c;ZWNobyBwd25lZA==^G");
        check("\x1b]0;evil title\x1b\\", "^[]0;evil title^[\\");
        check("a\x1b[2Jb\x1b[H", "a^[[2Jb^[[H");
        check("\x1bP+q544e\x1b\\", "^[P+q544e^[\\");
        check("\xc2\x9b" "2J \xc2\x9d" "0;t\xc2\x9c \xc2\x80\xc2\x9f", "^[[2J ^[]0;t^[\\ ^[@^[_");
}

static void test_controls(void) {
        check("\r\b\a\f\v", "^M^H^G^L^K");
        check_n("a\0b", 3, "a^@b", __LINE__);
        check("\x1f\x7f", "^_^?");
}

static void test_invalid_utf8(void) {
        check("\xff", "\xef\xbf\xbd");
        check("a\x80z", "a\xef\xbf\xbdz");
        check("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");             /* overlong */
        check("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
        check("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* > U+10FFFF */
        check("\xe6\x97x", "\xef\xbf\xbdx");                          /* truncated, then ASCII */
        check("\xe6\x97\x1b[", "\xef\xbf\xbd^[[");                    /* truncated, then ESC */
        check("\xf0\x9f\x8e", "\xef\xbf\xbd");                        /* cut at the end */
        check("\xf0\x9f\x8e\xf0\x9f\x8e\x89", "\xef\xbf\xbd🎉");
}

static void test_split_across_pieces(void) {
        /* Every cut of a mixed text gives the same result as the whole. */
        static const char in[] = "x\x1b]52;c;QQ==\x07 🎉 \xc2\x9b" "2J é\xe6\x97\xa5\xff\n";
        char *whole = run(in, sizeof in - 1, 0);
        for (size_t cut = 0; cut <= sizeof in - 1; cut++) {
                TermSanitizer t = TERM_SANITIZER_INIT;
                char out[256];
                size_t k = term_sanitize(&t, in, cut, out);
                k += term_sanitize(&t, in + cut, sizeof in - 1 - cut, out + k);
                k += term_sanitize_finish(&t, out + k);
                out[k] = 0;
                ASSERT(strcmp(out, whole) == 0);
        }
        free(whole);
}

static void test_string_helper(void) {
        char *s = term_sanitize_string("model\x1b[31m-red\xe6\x97");
        ASSERT(s && strcmp(s, "model^[[31m-red\xef\xbf\xbd") == 0);
        free(s);
}

int main(void) {
        test_text_is_kept();
        test_escape_sequences_are_inert();
        test_controls();
        test_invalid_utf8();
        test_split_across_pieces();
        test_string_helper();
        printf("term-sanitize: ok\n");
        return 0;
}
