/* SPDX-License-Identifier: MIT */
/*
 * The terminal filter alone (common/term-sanitize.c): bytes per second for
 * plain English, mixed UTF-8 and hostile text (an escape every 16 bytes), fed
 * in model-sized deltas (16 bytes) and in 64 KiB blocks, next to memcpy of
 * the same pieces. Prints a Markdown table.
 *
 *   ninja -C build bench/bench-term-sanitize && build/bench/bench-term-sanitize [MiB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "term-sanitize.h"

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void fill(char *buf, size_t n, const char *unit) {
        size_t l = strlen(unit);
        for (size_t i = 0; i < n; i++)
                buf[i] = unit[i % l];
}

static volatile size_t sink;

/* MB/s of fn over buf[0..n) in pieces of piece bytes, best of 3. */
static double run(const char *buf, size_t n, size_t piece, char *out, bool filter) {
        double best = 0;
        for (int rep = 0; rep < 3; rep++) {
                TermSanitizer t = TERM_SANITIZER_INIT;
                size_t total = 0;
                double t0 = now();
                for (size_t i = 0; i < n; i += piece) {
                        size_t m = n - i < piece ? n - i : piece;
                        if (filter)
                                total += term_sanitize(&t, buf + i, m, out);
                        else {
                                memcpy(out, buf + i, m);
                                total += m;
                        }
                }
                double dt = now() - t0;
                sink += total;
                double mbs = (double) n / dt / 1e6;
                if (mbs > best)
                        best = mbs;
        }
        return best;
}

int main(int argc, char *argv[]) {
        size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
        size_t n = mib * 1024 * 1024;
        static const struct {
                const char *name, *unit;
        } texts[] = {
                { "English (ASCII, newlines)", "The quick brown fox jumps over the lazy dog.\n" },
                { "mixed UTF-8 (Latin, CJK, emoji)", "Grüße — 日本語のテキスト 🎉 and ASCII\t\n" },
                { "hostile (ESC every 16 bytes)", "\x1b[2Jabcdefghijk" },
        };
        char *buf = malloc(n), *out = malloc(TERM_SANITIZE_OUT_MAX(65536));

        if (!buf || !out)
                return 1;
        printf("| text | pieces | memcpy MB/s | filter MB/s |\n|---|---|---|---|\n");
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                fill(buf, n, texts[i].unit);
                for (size_t piece = 16; piece <= 65536; piece *= 4096) {
                        double c = run(buf, n, piece, out, false), f = run(buf, n, piece, out, true);
                        printf("| %s | %zu B | %.0f | %.0f |\n", texts[i].name, piece, c, f);
                }
        }
        free(buf);
        free(out);
        return 0;
}
