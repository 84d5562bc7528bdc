/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the SSE decoder. Input: two control bytes, then the
 * stream. Byte 0 picks the size limit, bytes 0-1 seed the piece sizes. The
 * stream is decoded once whole and once in pieces; both must give the same
 * events and the same end, and every event must respect the limits.
 */
#include <string.h>

#include "fuzz.h"
#include "sse.h"

typedef struct Run {
        uint64_t hash;
        unsigned events;
        size_t max;
} Run;

static int on_event(const char *event, const char *data, size_t len, void *userdata) {
        Run *r = userdata;

        FUZZ_CHECK(data);
        FUZZ_CHECK(data[len] == 0);
        FUZZ_CHECK(len <= r->max);
        if (event) {
                size_t el = strlen(event);
                FUZZ_CHECK(el > 0);
                FUZZ_CHECK(el + len <= r->max);
                FUZZ_CHECK(!strpbrk(event, "\r\n"));
                r->hash = fuzz_hash(r->hash, event, el + 1);
        } else
                r->hash = fuzz_hash(r->hash, "\xff", 1);
        r->hash = fuzz_hash(r->hash, &len, sizeof len);
        r->hash = fuzz_hash(r->hash, data, len);
        r->events++;
        return 0;
}

static size_t max_for(uint8_t b) {
        static const size_t choices[] = { 0, 8, 64, 1024 };
        return choices[(b >> 1) & 3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SseParser *p = NULL;
        Run whole = {}, pieces = {};
        int rw, rp, fw, fp;

        if (size < 2)
                return 0;

        size_t max = max_for(data[0]);
        FuzzSplit split = fuzz_split_init(data[0], data[1]);
        data += 2;
        size -= 2;

        FUZZ_CHECK(sse_parser_new(&p) == 0);
        sse_parser_set_max_size(p, max);
        whole = (Run) { .hash = FUZZ_HASH_INIT, .max = max ?: SSE_MAX_SIZE_DEFAULT };
        rw = sse_parser_feed(p, data, size, on_event, &whole);
        fw = sse_parser_finish(p);

        /* The same parser again, now fed in pieces: finish() reset it. */
        pieces = (Run) { .hash = FUZZ_HASH_INIT, .max = whole.max };
        rp = 0;
        for (size_t i = 0; i < size;) {
                size_t k = fuzz_split_next(&split, size - i);
                rp = sse_parser_feed(p, data + i, k, on_event, &pieces);
                if (rp < 0)
                        break;
                i += k;
        }
        fp = sse_parser_finish(p);

        FUZZ_CHECK(rw == 0 || rw == -E2BIG);
        FUZZ_CHECK(rw == rp);
        FUZZ_CHECK(fw == fp);
        FUZZ_CHECK(fw == rw || (rw == 0 && (fw == 0 || fw == 1)));
        FUZZ_CHECK(whole.events == pieces.events);
        FUZZ_CHECK(whole.hash == pieces.hash);

        sse_parser_free(p);
        return 0;
}
