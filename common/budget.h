/* SPDX-License-Identifier: MIT */
/*
 * Budgets per application: periods in local time (day, week from Monday,
 * calendar month), the estimate of what a request in flight may still cost,
 * and whether a new one may start. Also the time words of the CLI
 * ("7d", "2026-11-01"). Pure: the clock and the time zone (TZ, localtime)
 * are the only outside inputs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum BudgetPeriod {
        BUDGET_DAY,
        BUDGET_WEEK,
        BUDGET_MONTH,
        _BUDGET_PERIOD_MAX,
        _BUDGET_PERIOD_INVALID = -1,
} BudgetPeriod;

/* Limits of SetBudget: 0 removes, else up to this many USD. */
#define BUDGET_LIMIT_MAX_USD 1000000.0

const char *budget_period_to_string(BudgetPeriod p);
BudgetPeriod budget_period_from_string(const char *s);

/* [start, end) in µs since the epoch of the period that holds t, in local
 * time: days from midnight to midnight (23 or 25 hours across a DST
 * change), weeks from Monday 00:00, months from the 1st 00:00. -EINVAL for
 * a bad period, -ERANGE when t cannot be broken down. */
int budget_period_bounds(BudgetPeriod p, uint64_t t, uint64_t *ret_start, uint64_t *ret_end);

/* True for a limit SetBudget accepts: finite, 0 ≤ limit ≤ BUDGET_LIMIT_MAX_USD. */
bool budget_limit_is_valid(double limit_usd);

/* The most a request may cost before its usage is known: its input as
 * ceil(bytes / 3) tokens (English runs at about 4 bytes a token, so this
 * errs high), and max_output_tokens of output, at the model's prices (USD
 * per 1M tokens; NaN or negative prices count as 0). */
double budget_estimate_usd(double price_input, double price_output, uint64_t input_bytes,
                           uint64_t max_output_tokens);

/* A request may start while what was spent in the period plus the
 * estimates of the requests in flight is below the limit (limit 0: no
 * budget). So parallel requests overrun a budget by at most the cost of
 * the one admitted last, and by what the estimates under-counted. */
bool budget_may_start(double limit_usd, double spent_usd, double in_flight_usd);

/* "USD/PERIOD" of "bankr-llm budget set": "5/day", "$0.50/week",
 * "20/month"; a bare number is per day. -EINVAL when malformed. */
int budget_parse_spec(const char *s, double *ret_usd, BudgetPeriod *ret_period);

/* A point in time of "--since": a duration back from now ("90s", "30m",
 * "24h", "7d", "2w"), a local date "2026-11-01", a local time
 * "2026-11-01T12:30" or "2026-11-01 12:30", "today", or µs since the epoch
 * prefixed with "@". -EINVAL when malformed, -ERANGE when out of range. */
int budget_parse_when(const char *s, uint64_t now_usec, uint64_t *ret_usec);
