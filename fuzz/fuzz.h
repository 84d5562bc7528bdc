/* SPDX-License-Identifier: MIT */
/*
 * Shared bits of the fuzz targets: the libFuzzer entry point, a check that
 * survives NDEBUG, and the small PRNG that turns the first input bytes into
 * the piece sizes a "network" delivers.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr)                                                                      \
        do {                                                                                  \
                if (!(expr)) {                                                                \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

typedef struct FuzzSplit {
        uint32_t state;
        size_t max_piece;
} FuzzSplit;

/* seed: any bytes; pieces are 0..max_piece bytes long (0 included: an
 * empty read must be harmless too). */
static inline FuzzSplit fuzz_split_init(uint8_t a, uint8_t b) {
        return (FuzzSplit) {
                .state = 0x9E3779B9u ^ ((uint32_t) a << 8) ^ b,
                .max_piece = 1 + (size_t) (b % 64),
        };
}

static inline size_t fuzz_split_next(FuzzSplit *s, size_t left) {
        /* xorshift32 */
        s->state ^= s->state << 13;
        s->state ^= s->state >> 17;
        s->state ^= s->state << 5;
        size_t k = s->state % (s->max_piece + 1);
        return k < left ? k : left;
}

/* FNV-1a, to compare what two runs produced without keeping it. */
static inline uint64_t fuzz_hash(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}
#define FUZZ_HASH_INIT UINT64_C(0xcbf29ce484222325)
