/* SPDX-License-Identifier: MIT */
/* Unit tests for when service/models.c fetches the model list again: the
 * TTL, the backoff after failures (30 s doubling up to the TTL), and no
 * background fetch without a key or after a 401/403. */
#include "models.h"
#include "retry-policy.h"
#include "test.h"

#define S USEC_PER_SEC
#define TTL (60 * 60 * S)
#define NOW (UINT64_C(1800000000) * S)

static void test_refresh_delay(void) {
        /* Never without a key, or with a key the gateway rejected. */
        ASSERT_UINT_EQ(models_refresh_delay(false, false, NOW - 10 * S, true, NOW, TTL), UINT64_MAX);
        ASSERT_UINT_EQ(models_refresh_delay(true, true, NOW - 10 * S, true, NOW, TTL), UINT64_MAX);
        ASSERT_UINT_EQ(models_refresh_delay(true, true, 0, false, NOW, TTL), UINT64_MAX);
        /* At once: the catalog (never fetched), another gateway's list, a list from the future. */
        ASSERT_UINT_EQ(models_refresh_delay(true, false, 0, true, NOW, TTL), 0);
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW - 10 * S, false, NOW, TTL), 0);
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW + S, true, NOW, TTL), 0);
        /* At once when at least one TTL old. */
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW - TTL, true, NOW, TTL), 0);
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW - 3 * TTL, true, NOW, TTL), 0);
        /* Else what is left of the TTL. */
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW, true, NOW, TTL), TTL);
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW - 10 * 60 * S, true, NOW, TTL), 50 * 60 * S);
        ASSERT_UINT_EQ(models_refresh_delay(true, false, NOW - TTL + 1, true, NOW, TTL), 1);
}

static void test_retry_delay(void) {
        /* A failure with the old list due at once (next = 0): 30 s, 1 min, 2 min, … up to the TTL. */
        ASSERT_UINT_EQ(models_retry_delay(1, 0, TTL), 30 * S);
        ASSERT_UINT_EQ(models_retry_delay(2, 0, TTL), 60 * S);
        ASSERT_UINT_EQ(models_retry_delay(3, 0, TTL), 120 * S);
        ASSERT_UINT_EQ(models_retry_delay(7, 0, TTL), 1920 * S);
        ASSERT_UINT_EQ(models_retry_delay(8, 0, TTL), TTL);
        ASSERT_UINT_EQ(models_retry_delay(200, 0, TTL), TTL);
        /* Not earlier than the served list is due anyway. */
        ASSERT_UINT_EQ(models_retry_delay(1, 20 * 60 * S, TTL), 20 * 60 * S);
        ASSERT_UINT_EQ(models_retry_delay(7, 20 * 60 * S, TTL), 1920 * S);
        /* 401/403 or no key: no retry at all. */
        ASSERT_UINT_EQ(models_retry_delay(1, UINT64_MAX, TTL), UINT64_MAX);
        /* A test's short TTL caps the backoff too. */
        ASSERT_UINT_EQ(models_retry_delay(1, 0, 2 * S), 2 * S);
}

int main(void) {
        test_refresh_delay();
        test_retry_delay();
        return test_exit_status();
}
