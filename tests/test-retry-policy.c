/* SPDX-License-Identifier: MIT */
/* Unit tests for the gateway failures and the retry policy (common/retry-policy.c). */
#include <errno.h>

#include "chat-stream.h"
#include "retry-policy.h"
#include "test.h"

static void test_status_table(void) {
        static const struct {
                long status;
                GatewayFailure chat, get, agent;
        } table[] = {
                { 200, GATEWAY_FAILURE_NONE, GATEWAY_FAILURE_NONE, GATEWAY_FAILURE_NONE },
                { 204, GATEWAY_FAILURE_NONE, GATEWAY_FAILURE_NONE, GATEWAY_FAILURE_NONE },
                { 301, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR },
                { 400, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_INVALID_ARGS },
                { 401, GATEWAY_FAILURE_UNAUTHORIZED, GATEWAY_FAILURE_UNAUTHORIZED, GATEWAY_FAILURE_UNAUTHORIZED },
                { 402, GATEWAY_FAILURE_PAYMENT_REQUIRED, GATEWAY_FAILURE_PAYMENT_REQUIRED, GATEWAY_FAILURE_PAYMENT_REQUIRED },
                { 403, GATEWAY_FAILURE_UNAUTHORIZED, GATEWAY_FAILURE_UNAUTHORIZED, GATEWAY_FAILURE_UNAUTHORIZED },
                { 404, GATEWAY_FAILURE_MODEL_NOT_FOUND, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR },
                { 408, GATEWAY_FAILURE_TIMEOUT, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR },
                { 409, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR, GATEWAY_FAILURE_ERROR },
                { 429, GATEWAY_FAILURE_RATE_LIMITED, GATEWAY_FAILURE_RATE_LIMITED, GATEWAY_FAILURE_RATE_LIMITED },
                { 500, GATEWAY_FAILURE_UNAVAILABLE, GATEWAY_FAILURE_UNAVAILABLE, GATEWAY_FAILURE_ERROR },
                { 502, GATEWAY_FAILURE_UNAVAILABLE, GATEWAY_FAILURE_UNAVAILABLE, GATEWAY_FAILURE_ERROR },
                { 529, GATEWAY_FAILURE_UNAVAILABLE, GATEWAY_FAILURE_UNAVAILABLE, GATEWAY_FAILURE_ERROR },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                EXPECT(gateway_failure_for_status(table[i].status, GATEWAY_ENDPOINT_CHAT) == table[i].chat);
                EXPECT(gateway_failure_for_status(table[i].status, GATEWAY_ENDPOINT_GET) == table[i].get);
                EXPECT(gateway_failure_for_status(table[i].status, GATEWAY_ENDPOINT_AGENT) == table[i].agent);
        }

        ASSERT(gateway_failure_for_transport(-ETIMEDOUT, GATEWAY_ENDPOINT_CHAT) == GATEWAY_FAILURE_TIMEOUT);
        ASSERT(gateway_failure_for_transport(-ETIMEDOUT, GATEWAY_ENDPOINT_AGENT) == GATEWAY_FAILURE_TIMEOUT);
        ASSERT(gateway_failure_for_transport(-ECONNREFUSED, GATEWAY_ENDPOINT_GET) == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(gateway_failure_for_transport(-EFBIG, GATEWAY_ENDPOINT_CHAT) == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(gateway_failure_for_transport(-EFBIG, GATEWAY_ENDPOINT_GET) == GATEWAY_FAILURE_ERROR);
        ASSERT(gateway_failure_for_transport(-EPROTO, GATEWAY_ENDPOINT_GET) == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(gateway_failure_for_transport(-EPROTO, GATEWAY_ENDPOINT_AGENT) == GATEWAY_FAILURE_ERROR);
}

static void test_retry_for_status(void) {
        GatewayFailure f;

        /* Never again: the key, the money. */
        ASSERT(retry_for_status(401, NULL, NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_UNAUTHORIZED);
        ASSERT(retry_for_status(403, NULL, NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_UNAUTHORIZED);
        ASSERT(retry_for_status(402, NULL, NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_PAYMENT_REQUIRED);
        /* Not this model: a fallback may know it. */
        ASSERT(retry_for_status(404, NULL, NULL, &f) == RETRY_FALLBACK && f == GATEWAY_FAILURE_MODEL_NOT_FOUND);
        ASSERT(retry_for_status(400, "invalid_request_error", "Model foo does not exist", &f) == RETRY_FALLBACK &&
               f == GATEWAY_FAILURE_MODEL_NOT_FOUND);
        ASSERT(retry_for_status(422, "model_not_found", NULL, &f) == RETRY_FALLBACK && f == GATEWAY_FAILURE_MODEL_NOT_FOUND);
        ASSERT(retry_for_status(400, "invalid_request_error", "max_tokens is too large", &f) == RETRY_NO &&
               f == GATEWAY_FAILURE_ERROR);
        /* A message about a model on a 5xx is still a 5xx. */
        ASSERT(retry_for_status(500, NULL, "model not found", &f) == RETRY_YES && f == GATEWAY_FAILURE_UNAVAILABLE);
        /* Worth another go. */
        ASSERT(retry_for_status(408, NULL, NULL, &f) == RETRY_YES && f == GATEWAY_FAILURE_TIMEOUT);
        ASSERT(retry_for_status(429, NULL, NULL, &f) == RETRY_YES && f == GATEWAY_FAILURE_RATE_LIMITED);
        ASSERT(retry_for_status(503, NULL, NULL, &f) == RETRY_YES && f == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(retry_for_status(529, NULL, NULL, NULL) == RETRY_YES);
        /* The two kinds of 402: only an empty balance exhausts the credits. */
        ASSERT(retry_for_status(402, "insufficient_credits", NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_PAYMENT_REQUIRED);
        ASSERT(retry_for_status(402, "insufficient_quota", NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_PAYMENT_REQUIRED);
        ASSERT(retry_for_status(402, "daily_budget_exceeded", NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_DAILY_BUDGET);
        ASSERT(retry_for_status(402, "Daily_Budget_Exceeded", NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_DAILY_BUDGET);
        ASSERT(gateway_failure_for_402(NULL, "daily budget exceeded") == GATEWAY_FAILURE_DAILY_BUDGET);
        ASSERT(gateway_failure_for_402("billing_error", "daily budget exceeded") == GATEWAY_FAILURE_PAYMENT_REQUIRED);
        ASSERT(gateway_failure_for_402(NULL, NULL) == GATEWAY_FAILURE_PAYMENT_REQUIRED);
        ASSERT(gateway_failure_exhausts_credits(GATEWAY_FAILURE_PAYMENT_REQUIRED));
        ASSERT(!gateway_failure_exhausts_credits(GATEWAY_FAILURE_DAILY_BUDGET));
        /* Retired: the fallbacks may work. */
        ASSERT(retry_for_status(410, NULL, NULL, &f) == RETRY_FALLBACK && f == GATEWAY_FAILURE_MODEL_RETIRED);
        /* Privacy: a 422 may move on (at the same tier), a conflict never. */
        ASSERT(retry_for_status(422, "zdr_unavailable", "x", &f) == RETRY_FALLBACK && f == GATEWAY_FAILURE_PRIVACY);
        ASSERT(retry_for_status(422, NULL, "No confidential (TEE) provider serves `m`", &f) == RETRY_FALLBACK &&
               f == GATEWAY_FAILURE_PRIVACY);
        ASSERT(retry_for_status(400, "privacy_conflict", "x", &f) == RETRY_NO && f == GATEWAY_FAILURE_PRIVACY);
        ASSERT(retry_for_status(400, "invalid_privacy", NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_PRIVACY);
        ASSERT(retry_for_status(422, "unprocessable", "bad field", &f) == RETRY_NO && f == GATEWAY_FAILURE_ERROR);
        /* Neither an error nor an answer. */
        ASSERT(retry_for_status(302, NULL, "model not found", &f) == RETRY_NO && f == GATEWAY_FAILURE_ERROR);

        ASSERT(retry_message_says_model_not_found("not_found_error", NULL));
        ASSERT(retry_message_says_model_not_found(NULL, "The MODEL is not supported"));
        ASSERT(retry_message_says_model_not_found(NULL, "invalid model id"));
        ASSERT(!retry_message_says_model_not_found(NULL, "not found"));
        ASSERT(!retry_message_says_model_not_found(NULL, NULL));
}

static void test_retry_for_transport_and_stream(void) {
        GatewayFailure f;

        ASSERT(retry_for_transport(-ECONNREFUSED) == RETRY_YES);
        ASSERT(retry_for_transport(-ECONNRESET) == RETRY_YES);
        ASSERT(retry_for_transport(-ETIMEDOUT) == RETRY_YES);
        ASSERT(retry_for_transport(-EIO) == RETRY_YES);
        ASSERT(retry_for_transport(-EMFILE) == RETRY_NO);
        ASSERT(retry_for_transport(-EINVAL) == RETRY_NO);

        ASSERT(retry_for_stream_error(CHAT_ERROR_INCOMPLETE, &f) == RETRY_YES && f == GATEWAY_FAILURE_ERROR);
        ASSERT(retry_for_stream_error(CHAT_ERROR_INVALID_RESPONSE, &f) == RETRY_NO && f == GATEWAY_FAILURE_ERROR);
        ASSERT(retry_for_stream_error("rate_limit_error", &f) == RETRY_YES && f == GATEWAY_FAILURE_RATE_LIMITED);
        ASSERT(retry_for_stream_error("overloaded_error", &f) == RETRY_YES && f == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(retry_for_stream_error("api_error", &f) == RETRY_YES && f == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(retry_for_stream_error("server_error", &f) == RETRY_YES && f == GATEWAY_FAILURE_UNAVAILABLE);
        ASSERT(retry_for_stream_error("invalid_request_error", &f) == RETRY_NO && f == GATEWAY_FAILURE_ERROR);
        ASSERT(retry_for_stream_error(NULL, &f) == RETRY_NO && f == GATEWAY_FAILURE_ERROR);
}

static void test_backoff(void) {
        const uint64_t base = RETRY_BACKOFF_BASE_USEC_DEFAULT;

        /* Without jitter's upper part (random 0): 0.75 × base × 2ⁿ⁻¹. */
        ASSERT_UINT_EQ(retry_backoff_usec(base, 1, 0), base * 3 / 4);
        ASSERT_UINT_EQ(retry_backoff_usec(base, 2, 0), 2 * base * 3 / 4);
        ASSERT_UINT_EQ(retry_backoff_usec(base, 3, 0), 4 * base * 3 / 4);
        /* The cap: 8 s, however many attempts. */
        ASSERT_UINT_EQ(retry_backoff_usec(base, 40, 0), RETRY_BACKOFF_MAX_USEC * 3 / 4);
        ASSERT_UINT_EQ(retry_backoff_usec(base, 40, RETRY_BACKOFF_MAX_USEC / 2), RETRY_BACKOFF_MAX_USEC * 5 / 4);
        /* Within ±25 % for any random bits. */
        for (uint64_t rnd = 1; rnd < UINT64_MAX / 3; rnd = rnd * 7 + 1) {
                uint64_t d = retry_backoff_usec(base, 2, rnd);
                ASSERT(d >= 2 * base * 3 / 4 && d <= 2 * base * 5 / 4);
        }
        /* A tiny base (tests shorten it) is not jittered below 4 µs. */
        ASSERT_UINT_EQ(retry_backoff_usec(1, 1, 12345), 1);
        ASSERT_UINT_EQ(retry_backoff_usec(0, 3, 12345), 0);
}

static void test_next_step(void) {
        const uint64_t now = 1000 * USEC_PER_SEC, s = USEC_PER_SEC;

        ASSERT(retry_same_model(RETRY_YES, 1, UINT64_MAX, now, s, UINT64_MAX));
        ASSERT(retry_same_model(RETRY_YES, 2, UINT64_MAX, now, s, UINT64_MAX));
        /* Three attempts per model. */
        ASSERT(!retry_same_model(RETRY_YES, 3, UINT64_MAX, now, s, UINT64_MAX));
        ASSERT(!retry_same_model(RETRY_FALLBACK, 1, UINT64_MAX, now, s, UINT64_MAX));
        ASSERT(!retry_same_model(RETRY_NO, 1, UINT64_MAX, now, s, UINT64_MAX));
        /* Retry-After up to 30 s is waited for; longer moves on. */
        ASSERT(retry_same_model(RETRY_YES, 1, RETRY_AFTER_MAX_USEC, now, RETRY_AFTER_MAX_USEC, UINT64_MAX));
        ASSERT(!retry_same_model(RETRY_YES, 1, RETRY_AFTER_MAX_USEC + 1, now, RETRY_AFTER_MAX_USEC + 1, UINT64_MAX));
        ASSERT(!retry_same_model(RETRY_YES, 1, UINT64_MAX - 1, now, UINT64_MAX - 1 - now, UINT64_MAX));
        /* Not past the overall deadline. */
        ASSERT(retry_same_model(RETRY_YES, 1, UINT64_MAX, now, s, now + s + 1));
        ASSERT(!retry_same_model(RETRY_YES, 1, UINT64_MAX, now, s, now + s));

        ASSERT(retry_next_model(RETRY_YES, true));
        ASSERT(retry_next_model(RETRY_FALLBACK, true));
        ASSERT(!retry_next_model(RETRY_NO, true));
        ASSERT(!retry_next_model(RETRY_YES, false));
}

static void test_fetch_backoff(void) {
        const uint64_t ttl = 60 * 60 * USEC_PER_SEC;

        /* 30 s, doubling, up to the cap. */
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(1, ttl), 30 * USEC_PER_SEC);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(2, ttl), 60 * USEC_PER_SEC);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(3, ttl), 120 * USEC_PER_SEC);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(7, ttl), 1920 * USEC_PER_SEC);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(8, ttl), ttl);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(1000, ttl), ttl);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(1000, UINT64_MAX), RETRY_FETCH_MIN_USEC << 10);
        ASSERT_UINT_EQ(retry_fetch_backoff_usec(1, 10 * USEC_PER_SEC), 10 * USEC_PER_SEC);
}

int main(void) {
        test_status_table();
        test_retry_for_status();
        test_retry_for_transport_and_stream();
        test_backoff();
        test_next_step();
        test_fetch_backoff();
        return test_exit_status();
}
