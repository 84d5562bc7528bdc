/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "term-sanitize.h"
#include "utf8.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

static inline bool ascii_kept(uint8_t c) {
        return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t';
}

/* The pending bytes (lead in p[0], n of them) may go on with c. */
static inline bool utf8_continues(const uint8_t *p, uint8_t n, uint8_t c) {
        return utf8_continuation_ok(p[0], n, c);
}

/* Length of a multi-byte sequence that c starts, 0 when it starts none. */
static inline uint8_t utf8_length(uint8_t c) {
        unsigned l = utf8_lead_length(c);
        return l > 1 ? (uint8_t) l : 0;
}

static inline char *put_caret(char *o, uint8_t c) {
        *o++ = '^';
        *o++ = c == 0x7f ? '?' : (char) (c + 0x40);
        return o;
}

static inline char *put_replacement(char *o) {
        memcpy(o, replacement, 3);
        return o + 3;
}

/* A complete sequence: C1 controls (U+0080-U+009F, C2 80..C2 9F) become the
 * ESC sequence they stand for, in caret notation; anything else is copied. */
static inline char *put_sequence(char *o, const uint8_t *p, uint8_t n) {
        if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
                *o++ = '^';
                *o++ = '[';
                *o++ = (char) (p[1] - 0x40);
                return o;
        }
        memcpy(o, p, n);
        return o + n;
}

size_t term_sanitize(TermSanitizer *t, const char *in, size_t n, char *out) {
        const uint8_t *p = (const uint8_t *) in, *end = p + n;
        char *o = out;

        while (p < end) {
                uint8_t c = *p;

                if (t->n_pending > 0) {
                        if (!utf8_continues(t->pending, t->n_pending, c)) {
                                /* The maximal subpart so far is one error; c is looked at anew. */
                                o = put_replacement(o);
                                t->n_pending = 0;
                                continue;
                        }
                        t->pending[t->n_pending++] = c;
                        p++;
                        if (t->n_pending == t->need) {
                                o = put_sequence(o, t->pending, t->need);
                                t->n_pending = 0;
                        }
                        continue;
                }

                if (ascii_kept(c)) {
                        /* The common case: a run of plain text. */
                        const uint8_t *s = p;
                        do
                                p++;
                        while (p < end && ascii_kept(*p));
                        memcpy(o, s, (size_t) (p - s));
                        o += p - s;
                        continue;
                }
                p++;
                if (c < 0x80) {
                        o = put_caret(o, c);
                        continue;
                }

                uint8_t l = utf8_length(c);
                if (l == 0) {
                        o = put_replacement(o);
                        continue;
                }
                /* Whole sequence in this piece and valid: no copy through the state. */
                if ((size_t) (end - p) >= (size_t) l - 1) {
                        uint8_t seq[4] = { c };
                        uint8_t k = 1;
                        while (k < l && utf8_continues(seq, k, p[k - 1])) {
                                seq[k] = p[k - 1];
                                k++;
                        }
                        if (k == l) {
                                o = put_sequence(o, seq, l);
                                p += l - 1;
                                continue;
                        }
                }
                t->pending[0] = c;
                t->n_pending = 1;
                t->need = l;
        }
        return (size_t) (o - out);
}

size_t term_sanitize_finish(TermSanitizer *t, char *out) {
        if (t->n_pending == 0)
                return 0;
        t->n_pending = 0;
        memcpy(out, replacement, 3);
        return 3;
}

bool term_text_is_safe(const char *s, size_t n) {
        const uint8_t *p = (const uint8_t *) s, *end = p + n;

        while (p < end) {
                uint8_t c = *p++, l;

                if (ascii_kept(c))
                        continue;
                l = utf8_length(c);
                if (l == 0 || (size_t) (end - p) < (size_t) l - 1)
                        return false;
                if (l == 2 && c == 0xc2 && p[0] < 0xa0)
                        return false; /* C1 */
                uint8_t seq[1] = { c };
                if (!utf8_continues(seq, 1, p[0]))
                        return false;
                for (uint8_t k = 2; k < l; k++)
                        if (p[k - 1] < 0x80 || p[k - 1] > 0xbf)
                                return false;
                p += l - 1;
        }
        return true;
}

char *term_sanitize_string(const char *s) {
        TermSanitizer t = TERM_SANITIZER_INIT;
        size_t n = strlen(s), k;
        char *out = malloc(TERM_SANITIZE_OUT_MAX(n) + TERM_SANITIZE_FINISH_MAX + 1);

        if (!out)
                return NULL;
        k = term_sanitize(&t, s, n, out);
        k += term_sanitize_finish(&t, out + k);
        out[k] = 0;
        return out;
}
