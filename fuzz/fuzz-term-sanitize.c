/* SPDX-License-Identifier: MIT */
/*
 * The terminal filter (common/term-sanitize.c). Input: two control bytes
 * seeding the piece sizes, then the text. Invariants: the output has no
 * byte a terminal executes (C0 but \n and \t, DEL, C1) and is valid UTF-8;
 * cutting the input anywhere changes nothing; each call stays within
 * TERM_SANITIZE_OUT_MAX; text found safe comes out unchanged.
 */
#include <string.h>

#include "fuzz.h"
#include "term-sanitize.h"
#include "utf8.h"
#include "util.h"

static size_t filter(const uint8_t *in, size_t n, FuzzSplit *split, char *out) {
        TermSanitizer t = TERM_SANITIZER_INIT;
        size_t k = 0, i = 0;

        while (i < n) {
                size_t m = split ? fuzz_split_next(split, n - i) : n - i;
                size_t w = term_sanitize(&t, (const char *) in + i, m, out + k);
                FUZZ_CHECK(w <= TERM_SANITIZE_OUT_MAX(m));
                k += w;
                i += m;
        }
        size_t w = term_sanitize_finish(&t, out + k);
        FUZZ_CHECK(w <= TERM_SANITIZE_FINISH_MAX);
        return k + w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2 || size > 256 * 1024)
                return 0;
        FuzzSplit split = fuzz_split_init(data[0], data[1]);
        const uint8_t *in = data + 2;
        size_t n = size - 2, cap = TERM_SANITIZE_OUT_MAX(n) + TERM_SANITIZE_FINISH_MAX;
        char *a = malloc(cap ?: 1), *b = malloc(cap ?: 1);
        FUZZ_CHECK(a && b);

        size_t na = filter(in, n, NULL, a);
        size_t nb = filter(in, n, &split, b);
        FUZZ_CHECK(na == nb && memcmp(a, b, na) == 0);
        FUZZ_CHECK(na <= cap);

        FUZZ_CHECK(utf8_is_valid_n(a, na));
        for (size_t i = 0; i < na; i++) {
                uint8_t c = (uint8_t) a[i];
                FUZZ_CHECK(c >= 0x20 || c == '\n' || c == '\t');
                FUZZ_CHECK(c != 0x7f);
                if (c == 0xc2 && i + 1 < na)
                        FUZZ_CHECK((uint8_t) a[i + 1] >= 0xa0);
        }
        if (term_text_is_safe((const char *) in, n))
                FUZZ_CHECK(na == n && memcmp(a, in, n) == 0);
        /* The output is a fixed point. */
        FUZZ_CHECK(term_text_is_safe(a, na));

        free(a);
        free(b);
        return 0;
}
