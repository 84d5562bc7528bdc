/* SPDX-License-Identifier: MIT */
/* Unit tests for the incremental SSE decoder (common/sse.c). */
#include <stdarg.h>

#include "sse.h"
#include "transcripts.h"
#include "test.h"

/* Events are recorded as "[name]data" joined with "|"; NUL bytes in data
 * show as "\0". */
typedef struct Log {
        char s[65536];
        size_t n;
        unsigned events;
        int fail_at; /* return -42 from this event (1-based), 0: never */
} Log;

static void log_add(Log *l, const char *s, size_t n) {
        ASSERT(l->n + n < sizeof l->s);
        memcpy(l->s + l->n, s, n);
        l->n += n;
        l->s[l->n] = 0;
}

static int on_event(const char *event, const char *data, size_t len, void *userdata) {
        Log *l = userdata;

        ASSERT(data);
        ASSERT(data[len] == 0);
        l->events++;
        if (l->n > 0)
                log_add(l, "|", 1);
        log_add(l, "[", 1);
        if (event)
                log_add(l, event, strlen(event));
        log_add(l, "]", 1);
        for (size_t i = 0; i < len; i++)
                if (data[i] == 0)
                        log_add(l, "\\0", 2);
                else
                        log_add(l, data + i, 1);
        if (l->fail_at > 0 && l->events == (unsigned) l->fail_at)
                return -42;
        return 0;
}

/* Feeds s in pieces of the given size (0: whole) and returns finish()'s
 * result; the log receives the events. */
static int feed_pieces(const char *s, size_t n, size_t piece, Log *l) {
        _cleanup_sse_parser_ SseParser *p = NULL;
        int r;

        ASSERT(sse_parser_new(&p) == 0);
        *l = (Log) {};
        if (piece == 0)
                piece = n ?: 1;
        for (size_t i = 0; i < n; i += piece) {
                r = sse_parser_feed(p, s + i, MIN(piece, n - i), on_event, l);
                ASSERT(r == 0);
        }
        return sse_parser_finish(p);
}

/* Checks that s decodes to expect, fed whole and in every piece size. */
static void check(const char *s, size_t n, const char *expect, int finish_expect) {
        for (size_t piece = 0; piece <= n; piece++) {
                Log l;
                int r = feed_pieces(s, n, piece, &l);
                if (!streq(l.s, expect) || r != finish_expect)
                        fprintf(stderr, "piece size %zu (finish %d):\n", piece, r);
                ASSERT_STREQ(l.s, expect);
                ASSERT(r == finish_expect);
        }
}
#define CHECK(s, expect) check((s), sizeof(s) - 1, (expect), 0)
#define CHECK_OPEN(s, expect) check((s), sizeof(s) - 1, (expect), 1)


/* The expected log of a transcript: its data lines, with names. */
static void expected_log(const char *t, char *out, size_t size) {
        Log l = {};
        const char *name = NULL;
        size_t name_len = 0;

        (void) size;
        for (const char *line = t; *line;) {
                const char *end = strchr(line, '\n');
                if (startswith(line, "event: ")) {
                        name = line + 7;
                        name_len = end - name;
                } else if (startswith(line, "data: ")) {
                        if (l.n > 0)
                                log_add(&l, "|", 1);
                        log_add(&l, "[", 1);
                        if (name)
                                log_add(&l, name, name_len);
                        log_add(&l, "]", 1);
                        log_add(&l, line + 6, end - line - 6);
                } else if (end == line)
                        name = NULL;
                line = end + 1;
        }
        ASSERT(l.n < size);
        memcpy(out, l.s, l.n + 1);
}

static void check_random_splits(const char *s, size_t n, const char *expect, unsigned seed) {
        srandom(seed);
        for (int round = 0; round < 200; round++) {
                _cleanup_sse_parser_ SseParser *p = NULL;
                Log l = {};

                ASSERT(sse_parser_new(&p) == 0);
                for (size_t i = 0; i < n;) {
                        size_t k = (size_t) random() % 40; /* 0-byte pieces too */
                        k = MIN(k, n - i);
                        ASSERT(sse_parser_feed(p, s + i, k, on_event, &l) == 0);
                        i += k;
                }
                ASSERT(sse_parser_finish(p) == 0);
                ASSERT_STREQ(l.s, expect);
        }
}

static void test_transcripts(void) {
        static const char *const eols[] = { "\n", "\r\n", "\r" };
        const char *transcripts[] = { openai_transcript, anthropic_transcript };
        char expect[16384];

        for (size_t t = 0; t < ELEMENTSOF(transcripts); t++) {
                expected_log(transcripts[t], expect, sizeof expect);
                for (size_t e = 0; e < ELEMENTSOF(eols); e++) {
                        _cleanup_free_ char *s = with_eol(transcripts[t], eols[e]);
                        check(s, strlen(s), expect, 0);
                        check_random_splits(s, strlen(s), expect, 4242 + t * 10 + e);
                }
        }

        /* Sanity check of the expectation itself. */
        expected_log(openai_transcript, expect, sizeof expect);
        ASSERT(strstr(expect, "|[][DONE]"));
        expected_log(anthropic_transcript, expect, sizeof expect);
        ASSERT(startswith(expect, "[message_start]{\"type\": \"message_start\""));
        ASSERT(strstr(expect, "|[message_stop]{\"type\": \"message_stop\"}"));
}

static void test_line_endings(void) {
        CHECK("data: a\n\n", "[]a");
        CHECK("data: a\r\n\r\n", "[]a");
        CHECK("data: a\r\r", "[]a");
        CHECK("data: a\r\n\ndata: b\r\rdata: c\n\r\n", "[]a|[]b|[]c");
        /* A CR followed by LF is one line end, so this is a single event. */
        CHECK("data: a\r\ndata: b\r\n\r\n", "[]a\nb");
        /* CR CR is two line ends: the second one dispatches. */
        CHECK("data: a\r\rdata: b\n\n", "[]a|[]b");
        /* LF CR: also two. */
        CHECK("data: a\n\rdata: b\n\n", "[]a|[]b");
}

/* Progress for the idle timeout: events with data, not comments or bytes. */
static void test_n_events(void) {
        _cleanup_sse_parser_ SseParser *p = NULL;
        static const char in[] = ": ping\n\nevent: x\n\ndata: a\n\ndata: b";

        ASSERT(sse_parser_new(&p) == 0);
        for (size_t i = 0; i < sizeof in - 1; i++) {
                ASSERT(sse_parser_feed(p, in + i, 1, NULL, NULL) == 0);
                ASSERT(sse_parser_get_n_events(p) == (i >= strlen(": ping\n\nevent: x\n\ndata: a\n") ? 1U : 0U));
        }
        ASSERT(sse_parser_finish(p) == 1);
        ASSERT(sse_parser_get_n_events(p) == 1);
        ASSERT(sse_parser_get_n_events(NULL) == 0);
}

static void test_cr_at_piece_boundary(void) {
        _cleanup_sse_parser_ SseParser *p = NULL;
        Log l = {};

        ASSERT(sse_parser_new(&p) == 0);
        ASSERT(sse_parser_feed(p, "data: a\r", 8, on_event, &l) == 0);
        ASSERT(sse_parser_feed(p, "\ndata: b\r", 9, on_event, &l) == 0);
        ASSERT(l.events == 0);
        ASSERT(sse_parser_feed(p, "\n", 1, on_event, &l) == 0);
        ASSERT(l.events == 0);
        ASSERT(sse_parser_feed(p, "\r", 1, on_event, &l) == 0);
        ASSERT(l.events == 1);
        ASSERT(sse_parser_feed(p, "\n", 1, on_event, &l) == 0); /* belongs to the CR */
        ASSERT(sse_parser_feed(p, "data: c\n\n", 9, on_event, &l) == 0);
        ASSERT(sse_parser_finish(p) == 0);
        ASSERT_STREQ(l.s, "[]a\nb|[]c");
}

static void test_fields(void) {
        /* Multi-line data. */
        CHECK("data: a\ndata: b\ndata: c\n\n", "[]a\nb\nc");
        CHECK("data: a\ndata:\ndata: c\n\n", "[]a\n\nc");
        /* Only one space is dropped, and none is required. */
        CHECK("data:x\n\n", "[]x");
        CHECK("data:  x\n\n", "[] x");
        CHECK("data: x \n\n", "[]x ");
        CHECK("data:\tx\n\n", "[]\tx");
        /* A field name without a colon has an empty value. */
        CHECK("data\n\n", "[]");
        CHECK("data\ndata\n\n", "[]\n");
        CHECK("data: \n\n", "[]");
        /* Values may contain colons. */
        CHECK("data: a: b:c\n\n", "[]a: b:c");
        /* Field names are case-sensitive and exact. */
        CHECK("Data: x\n\ndata : y\n\ndatax: z\n\n", "");
        /* Comments and ignored fields. */
        CHECK(": keep-alive\n\ndata: x\n\n", "[]x");
        CHECK(":\n:comment\ndata: x\n: in between\ndata: y\n\n", "[]x\ny");
        CHECK("id: 1\nretry: 100\nfoo: bar\nid\ndata: x\n\n", "[]x");
        /* Event names, which do not carry over to the next event. */
        CHECK("event: foo\ndata: x\n\ndata: y\n\n", "[foo]x|[]y");
        CHECK("event: foo\nevent: bar\ndata: x\n\n", "[bar]x");
        CHECK("data: x\nevent: late\n\n", "[late]x");
        CHECK("event:\ndata: x\n\n", "[]x");
        CHECK("event\ndata: x\n\n", "[]x");
        /* Events without data are not dispatched, and their name is gone. */
        CHECK("event: a\n\ndata: y\n\n", "[]y");
        CHECK("id: 7\n\n\n\n", "");
        /* NUL bytes pass through. */
        check("data: a\0b\n\n", 11, "[]a\\0b", 0);
}

static void test_bom(void) {
        CHECK("\xEF\xBB\xBF" "data: x\n\n", "[]x");
        CHECK("\xEF\xBB\xBF" "\xEF\xBB\xBF" "data: x\n\n", "");  /* only one is dropped */
        CHECK("data: \xEF\xBB\xBFx\n\n", "[]\xEF\xBB\xBFx");      /* not at the start */
        /* Something that only starts like a BOM is content. */
        CHECK("\xEF\xBB" "data: x\n\n\ndata: y\n\n", "[]y");
        CHECK("\xEF" "\n" "data: y\n\n", "[]y");
        CHECK("\xEF\xBB\n\ndata: y\n\n", "[]y");
        /* A stream that is only part of a BOM ended early. */
        CHECK_OPEN("\xEF\xBB", "");
        CHECK("\xEF\xBB\xBF", "");
}

static void test_utf8_split(void) {
        /* Bytes pass through untouched, however the pieces fall. */
        CHECK("data: h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80!\n\n", "[]h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80!");
        CHECK("event: \xC3\xA9v\ndata: \xC3\n\n", "[\xC3\xA9v]\xC3");
}

static void test_unterminated(void) {
        CHECK_OPEN("data: x\n", "");
        CHECK_OPEN("data: x", "");
        CHECK_OPEN("data: x\r", ""); /* one line end only */
        CHECK_OPEN("data: a\n\ndata: b\n", "[]a");
        CHECK_OPEN("event: foo\n", "");
        CHECK_OPEN(": partial comment", "");
        CHECK("data: a\n\n", "[]a");
        CHECK("data: a\n\n: trailing comment\n", "[]a");
        CHECK("", "");
}

static void test_reuse_after_finish(void) {
        _cleanup_sse_parser_ SseParser *p = NULL;
        Log l = {};

        ASSERT(sse_parser_new(&p) == 0);
        ASSERT(sse_parser_feed(p, "event: e\ndata: half", 19, on_event, &l) == 0);
        ASSERT(sse_parser_finish(p) == 1);
        ASSERT(l.events == 0);
        /* A fresh stream: BOM dropped again, no leftovers. */
        ASSERT(sse_parser_feed(p, "\xEF\xBB\xBF" "data: new\n\n", 14, on_event, &l) == 0);
        ASSERT(sse_parser_finish(p) == 0);
        ASSERT_STREQ(l.s, "[]new");

        l = (Log) {};
        ASSERT(sse_parser_feed(p, "data: x\n", 8, on_event, &l) == 0);
        sse_parser_reset(p);
        ASSERT(sse_parser_feed(p, "data: y\n\n", 9, on_event, &l) == 0);
        ASSERT_STREQ(l.s, "[]y");
}

static void test_abort(void) {
        _cleanup_sse_parser_ SseParser *p = NULL;
        Log l = { .fail_at = 2 };
        const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

        ASSERT(sse_parser_new(&p) == 0);
        ASSERT(sse_parser_feed(p, s, sizeof s - 1, on_event, &l) == -42);
        ASSERT(l.events == 2);
        /* Sticky. */
        ASSERT(sse_parser_feed(p, "data: 4\n\n", 9, on_event, &l) == -42);
        ASSERT(l.events == 2);
        ASSERT(sse_parser_finish(p) == -42);
        /* finish() reset it. */
        ASSERT(sse_parser_feed(p, "data: 5\n\n", 9, on_event, &l) == 0);
        ASSERT(l.events == 3);

        /* Bad arguments. */
        ASSERT(sse_parser_feed(NULL, "x", 1, on_event, &l) == -EINVAL);
        ASSERT(sse_parser_feed(p, NULL, 1, on_event, &l) == -EINVAL);
        ASSERT(sse_parser_feed(p, NULL, 0, on_event, &l) == 0);
        ASSERT(sse_parser_new(NULL) == -EINVAL);
        ASSERT(sse_parser_free(NULL) == NULL);
        /* No handler: events are just consumed. */
        ASSERT(sse_parser_feed(p, "data: 6\n\n", 9, NULL, NULL) == 0);
}

static void test_size_cap(void) {
        _cleanup_sse_parser_ SseParser *p = NULL;
        Log l = {};

        /* A line over the limit, in pieces. */
        ASSERT(sse_parser_new(&p) == 0);
        sse_parser_set_max_size(p, 16);
        ASSERT(sse_parser_feed(p, "data: 0123456789", 16, on_event, &l) == 0);
        ASSERT(sse_parser_feed(p, "x", 1, on_event, &l) == -E2BIG);
        ASSERT(sse_parser_feed(p, "\n\n", 2, on_event, &l) == -E2BIG);
        ASSERT(sse_parser_finish(p) == -E2BIG);
        ASSERT(l.events == 0);

        /* Exactly at the limit is fine, whole line in one piece too. */
        sse_parser_set_max_size(p, 16);
        ASSERT(sse_parser_feed(p, "data: 0123456789\n\n", 18, on_event, &l) == 0);
        ASSERT(l.events == 1);
        ASSERT(sse_parser_feed(p, "data: 01234567890\n\n", 19, on_event, &l) == -E2BIG);
        sse_parser_reset(p);

        /* Many small data lines adding up to too much. */
        sse_parser_set_max_size(p, 16);
        ASSERT(sse_parser_feed(p, "data: 01234\ndata: 56789\n", 24, on_event, &l) == 0);
        ASSERT(sse_parser_feed(p, "data: abcde\n", 12, on_event, &l) == -E2BIG);
        sse_parser_reset(p);

        /* Comments count as lines too: a never-ending one is refused. */
        sse_parser_set_max_size(p, 16);
        ASSERT(sse_parser_feed(p, ":aaaaaaaaaaaaaaaaaaaaaa", 23, on_event, &l) == -E2BIG);
        sse_parser_reset(p);

        /* The default limit: 8 MiB. */
        sse_parser_set_max_size(p, 0);
        {
                size_t n = SSE_MAX_SIZE_DEFAULT;
                _cleanup_free_ char *big = malloc(n);
                ASSERT(big);
                memset(big, 'a', n);
                memcpy(big, "data: ", 6);
                l = (Log) {};
                ASSERT(sse_parser_feed(p, big, n, on_event, &l) == 0);
                ASSERT(sse_parser_feed(p, "b", 1, on_event, &l) == -E2BIG);
                sse_parser_reset(p);

                /* Just under the limit goes through, and memory is given back. */
                big[n - 2] = '\n';
                big[n - 1] = '\n';
                ASSERT(sse_parser_feed(p, big, n, NULL, NULL) == 0);
                ASSERT(sse_parser_feed(p, "data: small\n\n", 13, on_event, &l) == 0);
                ASSERT_STREQ(l.s, "[]small");
        }
}

int main(void) {
        test_line_endings();
        test_n_events();
        test_cr_at_piece_boundary();
        test_fields();
        test_bom();
        test_utf8_split();
        test_unterminated();
        test_reuse_after_finish();
        test_abort();
        test_size_cap();
        test_transcripts();
        printf("test-sse: all passed\n");
        return 0;
}
