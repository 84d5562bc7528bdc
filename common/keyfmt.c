/* SPDX-License-Identifier: MIT */
#include "keyfmt.h"
#include "utf8.h"

int key_check(const char *key, size_t len, const char **ret_reason) {
        const char *reason = NULL;

        if (!key || len == 0)
                reason = "The key is empty.";
        else if (len > KEY_MAX_BYTES)
                reason = "The key is longer than 4 KiB; that cannot be a gateway key.";
        else if (memchr(key, 0, len))
                reason = "The key contains a NUL byte.";
        else if (!utf8_is_valid_n(key, len))
                reason = "The key is not valid UTF-8.";
        else
                for (size_t i = 0; i < len; i++) {
                        unsigned char c = (unsigned char) key[i];
                        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
                                reason = "The key contains whitespace; check for a stray space or line break from copy and paste.";
                                break;
                        }
                        if (c < 0x20 || c == 0x7f) {
                                reason = "The key contains control characters.";
                                break;
                        }
                        /* U+0085, U+00A0 (C2 85 / C2 A0), U+2000–U+200B, U+2028/9, U+3000, U+FEFF */
                        if (c == 0xC2 && i + 1 < len && ((unsigned char) key[i + 1] == 0x85 || (unsigned char) key[i + 1] == 0xA0)) {
                                reason = "The key contains whitespace; check for a stray space or line break from copy and paste.";
                                break;
                        }
                        if (c == 0xE2 && i + 2 < len && (unsigned char) key[i + 1] == 0x80 &&
                            ((unsigned char) key[i + 2] <= 0x8B || (unsigned char) key[i + 2] == 0xA8 ||
                             (unsigned char) key[i + 2] == 0xA9 || (unsigned char) key[i + 2] == 0xAF)) {
                                reason = "The key contains whitespace; check for a stray space or line break from copy and paste.";
                                break;
                        }
                        if ((c == 0xE3 && i + 2 < len && (unsigned char) key[i + 1] == 0x80 && (unsigned char) key[i + 2] == 0x80) ||
                            (c == 0xEF && i + 2 < len && (unsigned char) key[i + 1] == 0xBB && (unsigned char) key[i + 2] == 0xBF)) {
                                reason = "The key contains whitespace; check for a stray space or line break from copy and paste.";
                                break;
                        }
                }

        if (reason) {
                if (ret_reason)
                        *ret_reason = reason;
                return -EINVAL;
        }
        return 0;
}

char *key_mask(const char *key) {
        char *m;

        if (isempty(key))
                return strdup("");
        size_t n = utf8_chars(key);
        if (n <= 8)
                return strdup("****");

        size_t head = utf8_skip_chars(key, 6);
        size_t tail = utf8_skip_chars(key, n - 4);
        if (asprintf(&m, "%.*s...%s", (int) head, key, key + tail) < 0)
                return NULL;
        return m;
}

char *key_redact(const char *s, const char *key) {
        static const size_t shown = 6; /* key_mask() shows the first 6 characters */
        size_t kl = key ? strlen(key) : 0, n = 0;
        char *out;

        if (!s)
                return NULL;
        /* "***" for each byte at worst (a one-byte key). */
        out = malloc(strlen(s) * 3 + 1);
        if (!out)
                return NULL;
        while (*s) {
                size_t m = 0;

                while (m < kl && s[m] && s[m] == key[m])
                        m++;
                if (kl > 0 && (m == kl || (m > shown && (!s[m] || startswith(s + m, "\xe2\x80\xa6") || startswith(s + m, "..."))))) {
                        memcpy(out + n, "***", 3);
                        n += 3;
                        s += m;
                } else
                        out[n++] = *s++;
        }
        out[n] = 0;
        return out;
}

bool key_kind_valid(const char *kind) {
        return kind && (streq(kind, "llm") || streq(kind, "api"));
}
