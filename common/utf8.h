/* SPDX-License-Identifier: MIT */
/*
 * UTF-8, strictly (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF): decoding one code point, validation, repairing text with
 * U+FFFD the way browsers do, and where a text may be cut without splitting
 * a character. Everything here takes a length, so NUL bytes inside are seen.
 */
#pragma once

#include "buf.h"
#include "util.h"

#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* The two byte rules everything here is built on, for code that must walk
 * a sequence byte by byte (a stream cut anywhere: term-sanitize). The
 * length of the sequence that lead starts (1 for ASCII), 0 when it cannot
 * start one (a continuation byte, C0/C1 overlong leads, F5..FF). */
static inline unsigned utf8_lead_length(uint8_t lead) {
        if (lead < 0x80)
                return 1;
        if (lead >= 0xC2 && lead <= 0xDF)
                return 2;
        if (lead >= 0xE0 && lead <= 0xEF)
                return 3;
        if (lead >= 0xF0 && lead <= 0xF4)
                return 4;
        return 0;
}

/* Whether c may be byte k (1..3) of a sequence led by lead: the second
 * byte's range excludes overlong forms, surrogates and > U+10FFFF. */
static inline bool utf8_continuation_ok(uint8_t lead, size_t k, uint8_t c) {
        if (k == 1)
                switch (lead) {
                case 0xE0:
                        return c >= 0xA0 && c <= 0xBF;
                case 0xED:
                        return c >= 0x80 && c <= 0x9F;
                case 0xF0:
                        return c >= 0x90 && c <= 0xBF;
                case 0xF4:
                        return c >= 0x80 && c <= 0x8F;
                }
        return c >= 0x80 && c <= 0xBF;
}

/* Looks at the sequence starting at s[0] (n > 0). Returns its length (1..4)
 * when it is valid (the code point goes to *ret_cp), 0 when s[0..n) is a
 * valid but incomplete start of one, or -k when the first k bytes are an
 * invalid subpart to be replaced by one U+FFFD (the "maximal subpart"
 * practice of the Unicode standard). */
int utf8_decode(const char *s, size_t n, uint32_t *ret_cp);

/* Writes cp (at most U+10FFFF) as 1..4 bytes to out; returns the count. */
size_t utf8_encode(uint32_t cp, char out[static 4]);

/* Whether s[0..n) is valid UTF-8 (NUL bytes are valid). */
bool utf8_is_valid_n(const char *s, size_t n);
/* Offset of the first byte of s[0..n) that does not start a valid, complete
 * sequence, or SIZE_MAX when all of it is valid. */
size_t utf8_invalid_at(const char *s, size_t n);

/* A continuation byte (10xxxxxx): not the start of a character. */
static inline bool utf8_is_continuation(char c) {
        return ((unsigned char) c & 0xC0) == 0x80;
}
/* Characters in the NUL-terminated s (counting start bytes, so each byte of
 * invalid text counts as one at most). */
size_t utf8_chars(const char *s);
/* Byte offset of the n-th character of the NUL-terminated s (its end when
 * it has fewer). */
size_t utf8_skip_chars(const char *s, size_t n);

/* Appends s[0..n) to out as valid UTF-8: invalid subparts (and NULs, unless
 * keep_nul) become U+FFFD. With ret_hold, an incomplete sequence at the very
 * end is not appended and its length goes to *ret_hold instead. 0 or
 * -ENOMEM. */
int utf8_sanitize_append(Buf *out, const char *s, size_t n, bool keep_nul, size_t *ret_hold);

/* The largest length ≤ max at which s[0..n) can be cut without splitting a
 * sequence: it backs off over continuation bytes (10xxxxxx) only, so it is
 * exact on valid text and harmless on anything else. */
size_t utf8_cut(const char *s, size_t n, size_t max);
