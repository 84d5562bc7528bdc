/* SPDX-License-Identifier: MIT */
/*
 * Text from the gateway (a model's answer, a model's name, an error message)
 * made safe to write to a terminal: no byte that a terminal executes gets
 * through, everything else is kept as it is.
 *
 *   kept            printable ASCII, \n, \t, and valid UTF-8 from U+00A0 up
 *   C0 controls     (U+0000-U+001F except \n and \t) shown in caret notation,
 *                   as "cat -v" does: ESC is "^[", BEL "^G", CR "^M", NUL "^@"
 *   DEL (U+007F)    "^?"
 *   C1 controls     (U+0080-U+009F, which some terminals execute like the
 *                   ESC sequence they stand for) shown as that sequence in
 *                   caret notation: U+009B (CSI) is "^[[", U+009D (OSC) "^[]"
 *   invalid UTF-8   U+FFFD, one per maximal invalid subpart (as Unicode and
 *                   the WHATWG decoder count them)
 *
 * Because ESC and the C1 controls never reach the terminal, no CSI, OSC,
 * DCS, APC, PM or SOS sequence can start: "\e]52;c;…\a" (clipboard), "\e]0;…"
 * (title) and "\e[2J" (clear) become visible, inert text such as "^[[2J". No
 * sequence has to be parsed, so there is no guess about where one ends.
 *
 * Streaming: a UTF-8 sequence may be cut between two calls; the few bytes of
 * it are held in the state until the next call (or term_sanitize_finish()).
 * Pure code: no I/O, no allocation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct TermSanitizer {
        uint8_t pending[4]; /* an incomplete UTF-8 sequence */
        uint8_t n_pending;
        uint8_t need;       /* its full length */
} TermSanitizer;

#define TERM_SANITIZER_INIT ((TermSanitizer) {})

/* Most bytes term_sanitize() writes for n input bytes, and
 * term_sanitize_finish() for the end. */
#define TERM_SANITIZE_OUT_MAX(n) (3 * (size_t) (n) + 3)
#define TERM_SANITIZE_FINISH_MAX 3

/* Writes the safe form of in[0..n) to out (room for TERM_SANITIZE_OUT_MAX(n)
 * bytes) and returns the number of bytes written. */
size_t term_sanitize(TermSanitizer *t, const char *in, size_t n, char *out);

/* The end of the text: an incomplete sequence held becomes U+FFFD. Returns the
 * number of bytes written to out (at most TERM_SANITIZE_FINISH_MAX). */
size_t term_sanitize_finish(TermSanitizer *t, char *out);

/* True when s[0..n) is written unchanged (and leaves no state): the common
 * case, so that callers can skip the copy. */
bool term_text_is_safe(const char *s, size_t n);

/* A sanitised copy of the NUL-terminated s (NUL-terminated, complete: an
 * incomplete sequence at the end is U+FFFD), or NULL without memory. */
char *term_sanitize_string(const char *s);
