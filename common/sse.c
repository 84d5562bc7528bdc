/* SPDX-License-Identifier: MIT */
/* Incremental Server-Sent Events decoder; see sse.h for the rules. */
#include "buf.h"
#include "sse.h"

/* Buffers that grew beyond this for one large event are given back after
 * it, so one big event does not pin memory for the rest of a long stream. */
#define SSE_KEEP_ALLOC ((size_t) 64U * 1024U)

enum {
        BOM_DONE = 3, /* 0..2: that many BOM bytes matched so far */
};

static const uint8_t utf8_bom[3] = { 0xEF, 0xBB, 0xBF };


struct SseParser {
        Buf line;     /* a line not yet terminated */
        Buf data;     /* data lines of the current event, joined */
        Buf event;   /* value of the last "event" field */
        bool have_data;
        bool have_event;
        bool skip_lf; /* last byte was CR: a following LF belongs to it */
        unsigned bom;
        size_t max;
        int error; /* sticky */
        uint64_t n_events; /* dispatched since created (reset keeps it) */
};

static void sse_buffer_clear(Buf *b) {
        if (b->alloc > SSE_KEEP_ALLOC)
                buf_done(b);
        else
                buf_clear(b);
}

int sse_parser_new(SseParser **ret) {
        SseParser *p;

        if (!ret)
                return -EINVAL;

        p = calloc(1, sizeof(SseParser));
        if (!p)
                return -ENOMEM;
        p->max = SSE_MAX_SIZE_DEFAULT;
        *ret = p;
        return 0;
}

SseParser *sse_parser_free(SseParser *p) {
        if (!p)
                return NULL;
        buf_done(&p->line);
        buf_done(&p->data);
        buf_done(&p->event);
        free(p);
        return NULL;
}

void sse_parser_set_max_size(SseParser *p, size_t max) {
        if (p)
                p->max = max > 0 ? max : SSE_MAX_SIZE_DEFAULT;
}

void sse_parser_reset(SseParser *p) {
        if (!p)
                return;
        sse_buffer_clear(&p->line);
        sse_buffer_clear(&p->data);
        sse_buffer_clear(&p->event);
        p->have_data = p->have_event = p->skip_lf = false;
        p->bom = 0;
        p->error = 0;
}

static int sse_dispatch(SseParser *p, SseEventHandler handler, void *userdata) {
        int r = 0;

        /* Per the spec an event without data is not dispatched, but it still
         * ends here: its name must not leak into the next event. */
        if (p->have_data)
                p->n_events++;
        if (p->have_data && handler)
                r = handler(p->have_event && p->event.n > 0 && p->event.p[0] ? p->event.p : NULL,
                            p->data.n > 0 ? p->data.p : "",
                            p->data.n,
                            userdata);

        sse_buffer_clear(&p->data);
        sse_buffer_clear(&p->event);
        p->have_data = p->have_event = false;
        return r < 0 ? r : 0;
}

static bool field_is(const char *field, size_t len, const char *name) {
        return len == strlen(name) && memcmp(field, name, len) == 0;
}

static int sse_process_line(SseParser *p, const char *line, size_t len, SseEventHandler handler, void *userdata) {
        const char *colon, *value;
        size_t field_len, value_len;
        int r;

        if (len == 0)
                return sse_dispatch(p, handler, userdata);

        if (line[0] == ':') /* comment, typically a keep-alive */
                return 0;

        colon = memchr(line, ':', len);
        if (colon) {
                field_len = colon - line;
                value = colon + 1;
                value_len = len - field_len - 1;
                if (value_len > 0 && value[0] == ' ') {
                        value++;
                        value_len--;
                }
        } else {
                /* A field name alone is that field with an empty value. */
                field_len = len;
                value = "";
                value_len = 0;
        }

        if (field_is(line, field_len, "data")) {
                size_t total = p->data.n + (p->have_data ? 1 : 0) + value_len + p->event.n;

                if (total > p->max)
                        return -E2BIG;
                if (p->have_data) {
                        r = buf_append(&p->data, "\n", 1);
                        if (r < 0)
                                return r;
                }
                r = buf_append(&p->data, value, value_len);
                if (r < 0)
                        return r;
                p->have_data = true;

        } else if (field_is(line, field_len, "event")) {
                if (p->data.n + value_len > p->max)
                        return -E2BIG;
                buf_clear(&p->event);
                r = buf_append(&p->event, value, value_len);
                if (r < 0)
                        return r;
                p->have_event = true;
        }
        /* "id", "retry" and anything else: nothing we need. */

        return 0;
}

static int sse_process_bytes(SseParser *p, const uint8_t *s, size_t n, SseEventHandler handler, void *userdata) {
        size_t i = 0;
        int r;

        while (i < n) {
                if (p->skip_lf) {
                        p->skip_lf = false;
                        if (s[i] == '\n') {
                                i++;
                                continue;
                        }
                }

                /* The line ends at the first LF or CR: memchr() for each
                 * (the CR only up to the LF), not a byte loop. */
                const uint8_t *lf = memchr(s + i, '\n', n - i);
                const uint8_t *cr = memchr(s + i, '\r', (lf ? (size_t) (lf - s) : n) - i);
                size_t j = cr ? (size_t) (cr - s) : lf ? (size_t) (lf - s) : n;

                if (j == n) {
                        /* The line continues in a later piece. */
                        if (p->line.n + (n - i) > p->max)
                                return -E2BIG;
                        return buf_append(&p->line, s + i, n - i);
                }

                const char *line;
                size_t len;

                if (p->line.n + (j - i) > p->max)
                        return -E2BIG;
                if (p->line.n == 0) {
                        /* Common case: the whole line is in this piece, no copy. */
                        line = (const char *) s + i;
                        len = j - i;
                } else {
                        r = buf_append(&p->line, s + i, j - i);
                        if (r < 0)
                                return r;
                        line = p->line.p;
                        len = p->line.n;
                }

                if (s[j] == '\r')
                        p->skip_lf = true;
                i = j + 1;

                r = sse_process_line(p, line, len, handler, userdata);
                sse_buffer_clear(&p->line);
                if (r < 0)
                        return r;
        }

        return 0;
}

int sse_parser_feed(SseParser *p, const void *buf, size_t n, SseEventHandler handler, void *userdata) {
        const uint8_t *s = buf;
        int r;

        if (!p || (!buf && n > 0))
                return -EINVAL;
        if (p->error < 0)
                return p->error;

        /* Drop a leading BOM, which may itself arrive in pieces. */
        while (p->bom < BOM_DONE && n > 0) {
                if (s[0] == utf8_bom[p->bom]) {
                        p->bom++;
                        s++;
                        n--;
                        continue;
                }

                /* Not a BOM after all: what matched so far is content. */
                unsigned matched = p->bom;
                p->bom = BOM_DONE;
                r = sse_process_bytes(p, utf8_bom, matched, handler, userdata);
                if (r < 0)
                        return (p->error = r);
        }

        r = sse_process_bytes(p, s, n, handler, userdata);
        if (r < 0)
                return (p->error = r);
        return 0;
}

int sse_parser_finish(SseParser *p) {
        int r;

        if (!p)
                return -EINVAL;

        if (p->error < 0)
                r = p->error;
        else
                r = p->line.n > 0 || p->have_data || p->have_event || (p->bom > 0 && p->bom < BOM_DONE);

        sse_parser_reset(p);
        return r;
}

uint64_t sse_parser_get_n_events(const SseParser *p) {
        return p ? p->n_events : 0;
}
