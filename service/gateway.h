/* SPDX-License-Identifier: MIT */
/*
 * Plain GETs to the gateway for the Models and Credits modules: the request
 * (key in X-API-Key, bounded time and size) and the one place where a failed
 * answer becomes a named bus error with a sentence a person can act on.
 */
#pragma once

#include "bankr-llmd.h"
#include "http.h"
#include "retry-policy.h"

/* Builds (does not start) GET <gateway><path> with the LLM key in X-API-Key.
 * timeout_usec bounds connect, first byte, idle and total time alike.
 * -ENOKEY when there is no key. */
int gateway_get_new(Context *c, const char *path, uint64_t timeout_usec, size_t max_body, HttpRequest **ret);

/* After on_done(hr, error): 0 for a complete 2xx answer. Otherwise sets
 * ret_error (Unauthorized, PaymentRequired, RateLimited, GatewayUnavailable,
 * GatewayError or Timeout) with a sentence naming the cause, including the
 * gateway's own message when it sent one, and returns -EIO. what names the
 * thing asked for in sentences ("the model list", "the balance"). */
int gateway_check_answer(Context *c, HttpRequest *hr, int error, const char *what, sd_bus_error *ret_error);

/* The bus error name of a failure (retry-policy.h): the one mapping. */
const char *gateway_failure_to_bus_error(GatewayFailure f);

