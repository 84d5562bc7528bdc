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

static int gram_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t gram_at(const char *p) {
        uint64_t g;
        memcpy(&g, p, sizeof g);
        return g;
}

/* Whether the KEY_REDACT_RUN bytes at p are a run of the key. p must have that many bytes. */
static bool gram_is_key(const uint64_t *grams, size_t n, const char *p) {
        uint64_t g = gram_at(p);
        return bsearch(&g, grams, n, sizeof g, gram_cmp) != NULL;
}

char *key_redact(const char *s, const char *key) {
        static const size_t shown = 6; /* key_mask() shows the first 6 characters */
        size_t kl = key ? strlen(key) : 0, sl, n = 0, i = 0, copied_from = 0, n_grams = 0;
        uint64_t *grams = NULL;
        char *out;

        _Static_assert(sizeof(uint64_t) == KEY_REDACT_RUN, "a run is one uint64_t");

        if (!s)
                return NULL;
        sl = strlen(s);
        /* "***" for each byte at worst (a one-byte key). */
        out = malloc(sl * 3 + 1);
        if (!out)
                return NULL;

        /* Every run of KEY_REDACT_RUN bytes of the key, sorted: a window of s
         * is a piece of the key when it is found here. */
        if (kl >= KEY_REDACT_RUN && sl >= KEY_REDACT_RUN) {
                n_grams = kl - KEY_REDACT_RUN + 1;
                grams = malloc(n_grams * sizeof(uint64_t));
                if (!grams) {
                        free(out);
                        return NULL;
                }
                for (size_t j = 0; j < n_grams; j++)
                        grams[j] = gram_at(key + j);
                qsort(grams, n_grams, sizeof(uint64_t), gram_cmp);
        }

        while (i < sl) {
                size_t m = 0;

                /* The whole key, however short. */
                if (kl > 0 && strncmp(s + i, key, kl) == 0) {
                        memcpy(out + n, "***", 3);
                        n += 3;
                        i += kl;
                        copied_from = i;
                        continue;
                }

                /* Any run of KEY_REDACT_RUN or more bytes of the key: the union
                 * of all windows that are pieces of it, widened to whole
                 * characters. */
                if (grams && sl - i >= KEY_REDACT_RUN && gram_is_key(grams, n_grams, s + i)) {
                        size_t end = i + KEY_REDACT_RUN;
                        while (end < sl && gram_is_key(grams, n_grams, s + end + 1 - KEY_REDACT_RUN))
                                end++;
                        while (end < sl && ((unsigned char) s[end] & 0xC0) == 0x80)
                                end++;
                        /* Started inside a character: take back its bytes copied already. */
                        while (i > copied_from && ((unsigned char) s[i] & 0xC0) == 0x80) {
                                i--;
                                n--;
                        }
                        memcpy(out + n, "***", 3);
                        n += 3;
                        i = end;
                        copied_from = i;
                        continue;
                }

                /* A start of the key cut by the end of the text or a "…". */
                while (m < kl && s[i + m] && s[i + m] == key[m])
                        m++;
                if (kl > 0 && m > shown &&
                    (!s[i + m] || startswith(s + i + m, "\xe2\x80\xa6") || startswith(s + i + m, "..."))) {
                        memcpy(out + n, "***", 3);
                        n += 3;
                        i += m;
                        copied_from = i;
                } else
                        out[n++] = s[i++];
        }
        out[n] = 0;
        if (grams) {
                explicit_bzero(grams, n_grams * sizeof(uint64_t));
                free(grams);
        }
        return out;
}

bool key_kind_valid(const char *kind) {
        return kind && (streq(kind, "llm") || streq(kind, "api"));
}
