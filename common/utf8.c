/* SPDX-License-Identifier: MIT */
/* UTF-8 decoding, validation, repair and cut points (see utf8.h). */
#include "utf8.h"

int utf8_decode(const char *str, size_t n, uint32_t *ret_cp) {
        static const uint8_t lead_mask[5] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
        const uint8_t *s = (const uint8_t *) str;
        size_t len = utf8_lead_length(s[0]);
        uint32_t cp;

        if (len == 0)
                return -1;
        cp = s[0] & lead_mask[len];
        for (size_t k = 1; k < len; k++) {
                if (k >= n)
                        return 0;
                if (!utf8_continuation_ok(s[0], k, s[k]))
                        return -(int) k;
                cp = (cp << 6) | (s[k] & 0x3F);
        }
        *ret_cp = cp;
        return (int) len;
}

size_t utf8_encode(uint32_t cp, char out[static 4]) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xC0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xE0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

size_t utf8_invalid_at(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                int k = utf8_decode(s + i, n - i, &cp);

                if (k <= 0)
                        return i;
                i += (size_t) k;
        }
        return SIZE_MAX;
}

bool utf8_is_valid_n(const char *s, size_t n) {
        return utf8_invalid_at(s, n) == SIZE_MAX;
}

size_t utf8_chars(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                if (!utf8_is_continuation(*s))
                        n++;
        return n;
}

size_t utf8_skip_chars(const char *s, size_t n) {
        size_t i = 0;

        while (n > 0 && s[i]) {
                i++;
                while (utf8_is_continuation(s[i]))
                        i++;
                n--;
        }
        return i;
}

int utf8_sanitize_append(Buf *out, const char *str, size_t n, bool keep_nul, size_t *hold) {
        const uint8_t *s = (const uint8_t *) str;
        size_t i = 0, run = 0; /* s[run..i) is valid and not yet copied */
        int r;

        if (hold)
                *hold = 0;

        while (i < n) {
                uint32_t cp;
                int k = utf8_decode(str + i, n - i, &cp);

                if (k > 0 && (cp != 0 || keep_nul)) {
                        i += k;
                        continue;
                }

                r = buf_append(out, s + run, i - run);
                if (r < 0)
                        return r;

                if (k == 0 && hold) {
                        *hold = n - i;
                        return 0;
                }

                r = buf_append(out, UTF8_REPLACEMENT, strlen(UTF8_REPLACEMENT));
                if (r < 0)
                        return r;
                i += k > 0 ? (size_t) k : k == 0 ? n - i : (size_t) -k;
                run = i;
        }

        return buf_append(out, s + run, i - run);
}

size_t utf8_cut(const char *s, size_t n, size_t max) {
        if (n <= max)
                return n;
        while (max > 0 && utf8_is_continuation(s[max]))
                max--;
        return max;
}
