/* SPDX-License-Identifier: MIT */
/*
 * What a failed gateway answer means, and what to do next: the one mapping
 * of HTTP statuses to failures (each endpoint's column of one table), which
 * failures are worth another attempt, the chat backoff with Retry-After and
 * its cap, when to move on to the fallback model, and the backoff of the
 * background fetches of Models and Credits. Pure: no bus, no loop, no clock
 * (the caller passes the time and the random bits).
 *
 * The bus error name of each failure is given by the daemon
 * (gateway_failure_to_bus_error() in service/gateway.c); the sentences stay
 * with the module that knows who reads them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The settled numbers of dbus/bot.bankr.LLM1.xml. */
#define RETRY_ATTEMPTS_PER_MODEL 3U
#define RETRY_AFTER_MAX_USEC (30 * USEC_PER_SEC)
#define RETRY_BACKOFF_BASE_USEC_DEFAULT (500 * USEC_PER_MSEC)
#define RETRY_BACKOFF_MAX_USEC (8 * USEC_PER_SEC)
/* Background fetches (Models, Credits) after a failure: 30 s, doubling. */
#define RETRY_FETCH_MIN_USEC (30 * USEC_PER_SEC)

typedef enum GatewayFailure {
        GATEWAY_FAILURE_NONE,             /* 2xx */
        GATEWAY_FAILURE_UNAUTHORIZED,     /* 401, 403 */
        GATEWAY_FAILURE_PAYMENT_REQUIRED, /* 402 insufficient_credits, or no type */
        GATEWAY_FAILURE_DAILY_BUDGET,     /* chat: 402 daily_budget_exceeded (the balance is fine) */
        GATEWAY_FAILURE_MODEL_RETIRED,    /* chat: 410, a hard-deprecated model */
        GATEWAY_FAILURE_PRIVACY,          /* chat: 422 zdr_unavailable, 400 privacy_conflict/invalid_privacy */
        GATEWAY_FAILURE_MODEL_NOT_FOUND,  /* chat: 404 */
        GATEWAY_FAILURE_TIMEOUT,          /* chat: 408; any endpoint: no answer in time */
        GATEWAY_FAILURE_RATE_LIMITED,     /* 429 */
        GATEWAY_FAILURE_UNAVAILABLE,      /* 5xx (not the agent API), no connection */
        GATEWAY_FAILURE_INVALID_ARGS,     /* agent API: 400 */
        GATEWAY_FAILURE_ERROR,            /* any other status, an unusable answer */
        _GATEWAY_FAILURE_MAX,
} GatewayFailure;

/* Who answered: the columns of the table. */
typedef enum GatewayEndpoint {
        GATEWAY_ENDPOINT_CHAT,  /* POST /v1/chat/completions, /v1/messages */
        GATEWAY_ENDPOINT_GET,   /* GET /v1/models, /v1/credits */
        GATEWAY_ENDPOINT_AGENT, /* the agent API's /llm/credits/… */
        _GATEWAY_ENDPOINT_MAX,
} GatewayEndpoint;

/* The failure an HTTP status stands for at endpoint. */
GatewayFailure gateway_failure_for_status(long status, GatewayEndpoint endpoint);
/* The failure a transfer that ended with this negative errno stands for
 * (-ENOMEM is the caller's: it is no gateway failure). */
GatewayFailure gateway_failure_for_transport(int error, GatewayEndpoint endpoint);

typedef enum Retry {
        RETRY_NO,       /* report it */
        RETRY_FALLBACK, /* not this model again, but a fallback may work */
        RETRY_YES,      /* the same model again, then the fallbacks */
} Retry;

/* A chat answer with this status (type and message: the gateway's error
 * body, may be NULL). Also sets *ret_failure (may be NULL): a 4xx whose
 * error says the model is unknown is MODEL_NOT_FOUND; a 402 whose type is
 * daily_budget_exceeded is DAILY_BUDGET (no retry: neither the same model
 * nor a fallback can be paid for today); a 410 is MODEL_RETIRED (the
 * fallbacks may work); a 422, or a 400 whose type is privacy_conflict or
 * invalid_privacy, or whose type or message says zdr_unavailable, is
 * PRIVACY (bus error InvalidArgs; a 422 may move on to a fallback, which
 * is asked at the same tier: a tier never gets weaker). */
Retry retry_for_status(long status, const char *type, const char *message, GatewayFailure *ret_failure);
/* A transfer that failed with this negative errno. */
Retry retry_for_transport(int error);
/* An error event in the stream, by its type (CHAT_ERROR_INCOMPLETE for a
 * stream without its end marker). */
Retry retry_for_stream_error(const char *type, GatewayFailure *ret_failure);
/* The kind of a 402: DAILY_BUDGET when the type (or, tolerating other
 * shapes, the message) says daily_budget_exceeded, else PAYMENT_REQUIRED
 * (insufficient_credits, or no type at all). */
GatewayFailure gateway_failure_for_402(const char *type, const char *message);
/* Whether a 402 of this failure means the balance ran out (and Credits
 * should count as exhausted). Only PAYMENT_REQUIRED does. */
static inline bool gateway_failure_exhausts_credits(GatewayFailure f) {
        return f == GATEWAY_FAILURE_PAYMENT_REQUIRED;
}

/* The gateway's error type or message says the model does not exist. */
bool retry_message_says_model_not_found(const char *type, const char *message);

/* The wait before attempt attempts_model + 1 on the same model: base × 2ⁿ⁻¹
 * up to RETRY_BACKOFF_MAX_USEC, ±25 % by random. */
uint64_t retry_backoff_usec(uint64_t base, unsigned attempts_model, uint64_t random);
/* Whether the same model gets another attempt after delay: attempts left,
 * a Retry-After wish (UINT64_MAX: none) within the cap, and before the
 * deadline (UINT64_MAX: none). */
bool retry_same_model(Retry retry, unsigned attempts_model, uint64_t retry_after, uint64_t now, uint64_t delay,
                      uint64_t deadline);
/* Whether to move on to the next model (one is left). */
bool retry_next_model(Retry retry, bool have_next);

/* A background fetch failed for the failures-th time in a row: the wait
 * before the next one, from RETRY_FETCH_MIN_USEC doubling, at most cap. */
uint64_t retry_fetch_backoff_usec(unsigned failures, uint64_t cap);
