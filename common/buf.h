/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer, always NUL-terminated after its n bytes. Growing
 * it wipes the old allocation and buf_done() wipes the last one, since texts
 * built here may hold a key. An allocation failure is sticky (b->oom): the
 * void writers then do nothing, and buf_steal() or buf_append() report
 * -ENOMEM, so a chain of writes needs one check at its end.
 */
#pragma once

#include "util.h"

typedef struct Buf {
        char *p; /* NULL until something was written */
        size_t n, alloc;
        bool oom;
} Buf;

void buf_done(Buf *b);
/* Makes room for extra more bytes (and the NUL). false after a failure. */
bool buf_reserve(Buf *b, size_t extra);
void buf_put(Buf *b, const void *s, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_putc(Buf *b, char c);
void buf_indent(Buf *b, unsigned n);
void buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
/* buf_put() that says whether it worked: 0 or -ENOMEM. */
int buf_append(Buf *b, const void *s, size_t n);
/* Forgets the contents, keeps the allocation. */
static inline void buf_clear(Buf *b) {
        b->n = 0;
        if (b->p)
                b->p[0] = 0;
}
/* Hands the text over (NUL-terminated, never NULL on success). */
int buf_steal(Buf *b, char **ret);
