/* SPDX-License-Identifier: MIT */
/*
 * Image types by content and base64 (common/image-type.c). Input: any
 * bytes. Invariants: detection reads only the given bytes and answers one
 * of the four types or NULL; encoding then decoding gives the input back;
 * decoding anything either fails cleanly or stays within its bound, and
 * re-encoding what it decoded decodes to the same bytes again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "image-type.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL, *s2 = NULL;
        _cleanup_free_ uint8_t *d = NULL, *d2 = NULL;
        const char *t;
        size_t n, m, m2;
        int r;

        t = image_type_detect(data, size);
        FUZZ_CHECK(!t || streq(t, "image/png") || streq(t, "image/jpeg") || streq(t, "image/gif") ||
                   streq(t, "image/webp"));

        FUZZ_CHECK(base64_encode(data, size, &s, &n) == 0);
        FUZZ_CHECK(n == strlen(s) && n % 4 == 0);
        FUZZ_CHECK(base64_decode(s, n, size, &d, &m) == 0);
        FUZZ_CHECK(m == size && memcmp(d, data, size) == 0);
        free(TAKE_PTR(d));

        r = base64_decode((const char *) data, size, 4096, &d, &m);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EFBIG);
        if (r == 0) {
                FUZZ_CHECK(m <= 4096);
                FUZZ_CHECK(base64_encode(d, m, &s2, &n) == 0);
                FUZZ_CHECK(base64_decode(s2, n, m, &d2, &m2) == 0);
                FUZZ_CHECK(m2 == m && memcmp(d2, d, m) == 0);
        }
        return 0;
}
