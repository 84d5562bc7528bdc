/* SPDX-License-Identifier: MIT */
/*
 * The assertion macros of the C unit tests. Two kinds:
 * - ASSERT*: stop at the first failure (abort(), so a core or a sanitizer
 *   report points at it);
 * - EXPECT*: count the failure in test_failures and go on, for tests that
 *   want every mismatch listed; main() returns test_exit_status().
 */
#pragma once

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned test_failures __attribute__((unused));

static inline const char *test_strna_(const char *s) {
        return s ? s : "(null)";
}

#define ASSERT(expr)                                                                                   \
        do {                                                                                           \
                if (!(expr)) {                                                                         \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr);   \
                        abort();                                                                       \
                }                                                                                      \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                             \
        do {                                                                                           \
                const char *_a = (a), *_b = (b);                                                       \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                               \
                        fprintf(stderr, "%s:%d: expected\n«%s»\ngot\n«%s»\n", __FILE__, __LINE__,      \
                                test_strna_(_b), test_strna_(_a));                                     \
                        abort();                                                                       \
                }                                                                                      \
        } while (0)

#define ASSERT_UINT_EQ(a, b)                                                                           \
        do {                                                                                           \
                uint64_t _a = (a), _b = (b);                                                           \
                if (_a != _b) {                                                                        \
                        fprintf(stderr, "%s:%d: %s is %" PRIu64 ", expected %" PRIu64 "\n", __FILE__,  \
                                __LINE__, #a, _a, _b);                                                 \
                        abort();                                                                       \
                }                                                                                      \
        } while (0)

#define EXPECT(expr)                                                                                    \
        do {                                                                                           \
                if (!(expr)) {                                                                         \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr);       \
                        test_failures++;                                                               \
                }                                                                                      \
        } while (0)

#define EXPECT_R(expr, want)                                                                            \
        do {                                                                                           \
                int _r = (expr);                                                                       \
                if (_r != (want)) {                                                                    \
                        fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d\n", __FILE__,         \
                                __LINE__, #expr, _r, _r < 0 ? strerror(-_r) : "-", (want));            \
                        test_failures++;                                                               \
                }                                                                                      \
        } while (0)

static inline int test_exit_status(void) {
        if (test_failures > 0)
                fprintf(stderr, "%u check(s) failed.\n", test_failures);
        return test_failures > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
