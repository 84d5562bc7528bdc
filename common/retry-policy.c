/* SPDX-License-Identifier: MIT */
/*
 * Gateway failures and the retry policy: see retry-policy.h.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "chat-stream.h"
#include "retry-policy.h"

GatewayFailure gateway_failure_for_status(long status, GatewayEndpoint endpoint) {
        if (status >= 200 && status < 300)
                return GATEWAY_FAILURE_NONE;
        switch (status) {
        case 401:
        case 403:
                return GATEWAY_FAILURE_UNAUTHORIZED;
        case 402:
                return GATEWAY_FAILURE_PAYMENT_REQUIRED;
        case 429:
                return GATEWAY_FAILURE_RATE_LIMITED;
        case 400:
                if (endpoint == GATEWAY_ENDPOINT_AGENT)
                        return GATEWAY_FAILURE_INVALID_ARGS; /* our arguments, checked by the agent API */
                break;
        case 404:
                if (endpoint == GATEWAY_ENDPOINT_CHAT)
                        return GATEWAY_FAILURE_MODEL_NOT_FOUND;
                break;
        case 408:
                if (endpoint == GATEWAY_ENDPOINT_CHAT)
                        return GATEWAY_FAILURE_TIMEOUT;
                break;
        }
        /* A 5xx from the agent API may follow a payment that went through
         * (a failed swap, say): no "try again later" for it. */
        if (status >= 500 && endpoint != GATEWAY_ENDPOINT_AGENT)
                return GATEWAY_FAILURE_UNAVAILABLE;
        return GATEWAY_FAILURE_ERROR;
}

GatewayFailure gateway_failure_for_transport(int error, GatewayEndpoint endpoint) {
        if (error == -ETIMEDOUT)
                return GATEWAY_FAILURE_TIMEOUT;
        /* Too large, or not HTTP: something answered, and not as it should. */
        if (endpoint != GATEWAY_ENDPOINT_CHAT && error == -EFBIG)
                return GATEWAY_FAILURE_ERROR;
        if (endpoint == GATEWAY_ENDPOINT_AGENT && error == -EPROTO)
                return GATEWAY_FAILURE_ERROR;
        return GATEWAY_FAILURE_UNAVAILABLE;
}

bool retry_message_says_model_not_found(const char *type, const char *msg) {
        if (streq_ptr(type, "not_found_error") || streq_ptr(type, "model_not_found"))
                return true;
        return msg && strcasestr(msg, "model") &&
               (strcasestr(msg, "not found") || strcasestr(msg, "does not exist") || strcasestr(msg, "unknown") ||
                strcasestr(msg, "not supported") || strcasestr(msg, "invalid model"));
}

GatewayFailure gateway_failure_for_402(const char *type, const char *message) {
        if (type && (strcasecmp(type, "daily_budget_exceeded") == 0 || strcasecmp(type, "daily-budget-exceeded") == 0))
                return GATEWAY_FAILURE_DAILY_BUDGET;
        if (!type && message && (strcasestr(message, "daily_budget_exceeded") || strcasestr(message, "daily budget")))
                return GATEWAY_FAILURE_DAILY_BUDGET;
        return GATEWAY_FAILURE_PAYMENT_REQUIRED;
}

static bool says_privacy(const char *type, const char *message) {
        static const char *const types[] = { "zdr_unavailable", "privacy_conflict", "invalid_privacy",
                                             "private_unavailable", "confidential" };
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if ((type && strcasecmp(type, types[i]) == 0) || (message && strcasestr(message, types[i])))
                        return true;
        return false;
}

Retry retry_for_status(long status, const char *type, const char *message, GatewayFailure *ret_failure) {
        GatewayFailure f = gateway_failure_for_status(status, GATEWAY_ENDPOINT_CHAT);
        Retry retry;

        if (status == 402)
                f = gateway_failure_for_402(type, message);
        else if (status == 410)
                f = GATEWAY_FAILURE_MODEL_RETIRED;
        else if ((status == 400 || status == 422) && says_privacy(type, message))
                f = GATEWAY_FAILURE_PRIVACY;

        if (f == GATEWAY_FAILURE_ERROR && status >= 400 && status < 500 &&
            retry_message_says_model_not_found(type, message))
                f = GATEWAY_FAILURE_MODEL_NOT_FOUND;

        switch (f) {
        case GATEWAY_FAILURE_MODEL_NOT_FOUND:
        case GATEWAY_FAILURE_MODEL_RETIRED:
                retry = RETRY_FALLBACK;
                break;
        case GATEWAY_FAILURE_PRIVACY:
                /* Another model may be served at the tier (zdr_unavailable);
                 * a conflict with the endpoint's tier stays one. */
                retry = status == 422 ? RETRY_FALLBACK : RETRY_NO;
                break;
        case GATEWAY_FAILURE_TIMEOUT:
        case GATEWAY_FAILURE_RATE_LIMITED:
        case GATEWAY_FAILURE_UNAVAILABLE:
                retry = RETRY_YES;
                break;
        default:
                retry = RETRY_NO;
                break;
        }
        if (ret_failure)
                *ret_failure = f;
        return retry;
}

Retry retry_for_transport(int error) {
        switch (error) {
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -ETIMEDOUT:
        case -EPROTO:
        case -EIO:
                return RETRY_YES;
        default:
                return RETRY_NO;
        }
}

Retry retry_for_stream_error(const char *type, GatewayFailure *ret_failure) {
        GatewayFailure f = GATEWAY_FAILURE_ERROR;
        Retry retry = RETRY_NO;

        if (streq_ptr(type, CHAT_ERROR_INCOMPLETE))
                retry = RETRY_YES;
        else if (streq_ptr(type, "rate_limit_error")) {
                f = GATEWAY_FAILURE_RATE_LIMITED;
                retry = RETRY_YES;
        } else if (streq_ptr(type, "overloaded_error") || streq_ptr(type, "api_error") ||
                   streq_ptr(type, "server_error")) {
                f = GATEWAY_FAILURE_UNAVAILABLE;
                retry = RETRY_YES;
        }
        if (ret_failure)
                *ret_failure = f;
        return retry;
}

uint64_t retry_backoff_usec(uint64_t base, unsigned attempts_model, uint64_t random) {
        uint64_t d = base;

        for (unsigned i = 1; i < attempts_model && d < RETRY_BACKOFF_MAX_USEC; i++)
                d *= 2;
        d = MIN(d, RETRY_BACKOFF_MAX_USEC);
        /* ±25 % so that clients failing together do not retry together. */
        if (d >= 4)
                d = d - d / 4 + random % (d / 2 + 1);
        return d;
}

bool retry_same_model(Retry retry, unsigned attempts_model, uint64_t retry_after, uint64_t now, uint64_t delay,
                      uint64_t deadline) {
        if (retry != RETRY_YES || attempts_model >= RETRY_ATTEMPTS_PER_MODEL)
                return false;
        if (retry_after != UINT64_MAX && retry_after > RETRY_AFTER_MAX_USEC)
                return false; /* a longer wish moves on without waiting */
        return now + delay < deadline;
}

bool retry_next_model(Retry retry, bool have_next) {
        return retry != RETRY_NO && have_next;
}

uint64_t retry_fetch_backoff_usec(unsigned failures, uint64_t cap) {
        return MIN(cap, RETRY_FETCH_MIN_USEC << MIN(failures > 0 ? failures - 1 : 0, 10U));
}
