/* SPDX-License-Identifier: MIT */
/* common/image-type.c: types by content, base64 both ways. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-type.h"
#include "test.h"
#include "util.h"

static void test_detect(void) {
        ASSERT_STREQ(image_type_detect("\x89PNG\r\n\x1a\n\0\0", 10), "image/png");
        ASSERT(!image_type_detect("\x89PNG\r\n\x1a", 7));
        ASSERT_STREQ(image_type_detect("\xff\xd8\xff\xe0", 4), "image/jpeg");
        ASSERT(!image_type_detect("\xff\xd8\xff", 3));
        ASSERT_STREQ(image_type_detect("GIF89a..", 8), "image/gif");
        ASSERT_STREQ(image_type_detect("GIF87a", 6), "image/gif");
        ASSERT(!image_type_detect("GIF88a", 6));
        ASSERT_STREQ(image_type_detect("RIFF\x10\0\0\0WEBPVP8 ", 16), "image/webp");
        ASSERT_STREQ(image_type_detect("RIFF\x10\0\0\0WEBPVP8L", 16), "image/webp");
        ASSERT(!image_type_detect("RIFF\x10\0\0\0WAVEfmt ", 16));
        ASSERT(!image_type_detect("<svg xmlns=...>", 15));
        ASSERT(!image_type_detect(NULL, 10));
        ASSERT(!image_type_detect("", 0));
}

static void test_base64(void) {
        static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
        uint8_t all[256];

        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                _cleanup_free_ char *s = NULL;
                _cleanup_free_ uint8_t *d = NULL;
                size_t n, m;

                ASSERT(base64_encode(plain[i], strlen(plain[i]), &s, &n) == 0);
                ASSERT_STREQ(s, coded[i]);
                ASSERT(n == strlen(coded[i]));
                ASSERT(base64_decode(s, n, 100, &d, &m) == 0);
                ASSERT(m == strlen(plain[i]) && memcmp(d, plain[i], m) == 0);
        }
        for (size_t i = 0; i < sizeof all; i++)
                all[i] = (uint8_t) i;
        _cleanup_free_ char *s = NULL;
        _cleanup_free_ uint8_t *d = NULL;
        size_t n, m;
        ASSERT(base64_encode(all, sizeof all, &s, &n) == 0);
        ASSERT(base64_decode(s, n, sizeof all, &d, &m) == 0);
        ASSERT(m == sizeof all && memcmp(d, all, m) == 0);
        free(TAKE_PTR(d));
        ASSERT(base64_decode(s, n, sizeof all - 1, &d, &m) == -EFBIG);
        /* Padding optional, white space skipped, the URL alphabet too. */
        ASSERT(base64_decode("Zm9vYg", 6, 10, &d, &m) == 0 && m == 4 && memcmp(d, "foob", 4) == 0);
        free(TAKE_PTR(d));
        ASSERT(base64_decode("Zm9v\nYmFy\r\n", 11, 10, &d, &m) == 0 && m == 6);
        free(TAKE_PTR(d));
        ASSERT(base64_decode("-_-_", 4, 10, &d, &m) == 0 && m == 3);
        free(TAKE_PTR(d));
        ASSERT(base64_decode("Zm9v!", 5, 10, &d, &m) == -EINVAL);
        ASSERT(base64_decode("Zg==Zg", 6, 10, &d, &m) == -EINVAL);
        ASSERT(base64_decode("Z", 1, 10, &d, &m) == -EINVAL);
}

int main(void) {
        test_detect();
        test_base64();
        printf("test-image-type: all passed\n");
        return 0;
}
