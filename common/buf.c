/* SPDX-License-Identifier: MIT */
/* The growable byte buffer (see buf.h). */
#include <stdarg.h>

#include "buf.h"

void buf_done(Buf *b) {
        if (b->p) {
                explicit_bzero(b->p, b->alloc);
                free(b->p);
        }
        *b = (Buf) {};
}

bool buf_reserve(Buf *b, size_t extra) {
        if (b->oom)
                return false;
        if (b->n + extra + 1 <= b->alloc)
                return true;

        size_t na = MAX(b->alloc * 2, b->n + extra + 1);
        na = MAX(na, (size_t) 256);
        char *t = malloc(na);
        if (!t) {
                b->oom = true;
                return false;
        }
        if (b->p) {
                memcpy(t, b->p, b->n);
                explicit_bzero(b->p, b->alloc);
                free(b->p);
        }
        b->p = t;
        b->p[b->n] = 0;
        b->alloc = na;
        return true;
}

void buf_put(Buf *b, const void *s, size_t n) {
        if (!buf_reserve(b, n))
                return;
        if (n > 0)
                memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
}

void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

void buf_putc(Buf *b, char c) {
        buf_put(b, &c, 1);
}

void buf_indent(Buf *b, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                buf_put(b, "  ", 2);
}

void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
                b->oom = true;
                return;
        }
        if (!buf_reserve(b, (size_t) k))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(b->p + b->n, (size_t) k + 1, fmt, ap);
        va_end(ap);
        b->n += (size_t) k;
}

int buf_append(Buf *b, const void *s, size_t n) {
        buf_put(b, s, n);
        return b->oom ? -ENOMEM : 0;
}

int buf_steal(Buf *b, char **ret) {
        if (b->oom || !buf_reserve(b, 0)) {
                buf_done(b);
                return -ENOMEM;
        }
        *ret = b->p;
        *b = (Buf) {};
        return 0;
}
