/* SPDX-License-Identifier: MIT */
/* Image types by content, and base64 (see image-type.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "image-type.h"

const char *image_type_detect(const void *data, size_t n) {
        const uint8_t *p = data;

        if (!p)
                return NULL;
        if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
                return "image/png";
        /* SOI, then the first marker. */
        if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
                return "image/jpeg";
        if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
                return "image/gif";
        /* RIFF, size, WEBP, and a VP8/VP8L/VP8X chunk. */
        if (n >= 16 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBPVP8", 7) == 0 &&
            (p[15] == ' ' || p[15] == 'L' || p[15] == 'X'))
                return "image/webp";
        return NULL;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode_to(const void *data, size_t n, char *s) {
        const uint8_t *p = data;
        size_t i, o = 0;

        for (i = 0; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
                s[o++] = b64[v >> 18];
                s[o++] = b64[(v >> 12) & 63];
                s[o++] = b64[(v >> 6) & 63];
                s[o++] = b64[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0);
                s[o++] = b64[v >> 18];
                s[o++] = b64[(v >> 12) & 63];
                s[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                s[o++] = '=';
        }
        return o;
}

int base64_encode(const void *data, size_t n, char **ret, size_t *ret_len) {
        size_t o;
        char *s;

        if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
                return -EFBIG;
        s = malloc(BASE64_LEN(n) + 1);
        if (!s)
                return -ENOMEM;
        o = base64_encode_to(data, n, s);
        s[o] = 0;
        *ret = s;
        if (ret_len)
                *ret_len = o;
        return 0;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

int base64_decode(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_size) {
        uint8_t *out;
        size_t o = 0, cap;
        uint32_t acc = 0;
        unsigned bits = 0;
        bool pad = false;

        if (!s && len > 0)
                return -EINVAL;
        cap = len / 4 * 3 + 3;
        if (cap > max + 3)
                cap = max + 3;
        out = malloc(cap ? cap : 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                int v;

                if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                        continue;
                if (c == '=') {
                        pad = true;
                        continue;
                }
                v = b64_value(c);
                if (v < 0 || pad) { /* nothing but padding after padding */
                        free(out);
                        return -EINVAL;
                }
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        if (o >= max) {
                                free(out);
                                return -EFBIG;
                        }
                        out[o++] = (uint8_t) (acc >> bits);
                        acc &= (1U << bits) - 1;
                }
        }
        if (bits >= 6) { /* one lone character: not base64 */
                free(out);
                return -EINVAL;
        }
        *ret = out;
        *ret_size = o;
        return 0;
}
