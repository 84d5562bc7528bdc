/* SPDX-License-Identifier: MIT */
/* Budget periods, estimates, admission and the CLI's time words (common/budget.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"

static int failures;
#define CHECK(x)                                                                   \
        do {                                                                       \
                if (!(x)) {                                                        \
                        fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #x); \
                        failures++;                                                \
                }                                                                  \
        } while (0)

static uint64_t at(int y, int mo, int d, int h, int mi) {
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                         .tm_isdst = -1 };
        return (uint64_t) mktime(&tm) * 1000000ULL;
}

int main(void) {
        uint64_t s, e, t;
        double usd;
        BudgetPeriod p;

        CHECK(budget_period_from_string("day") == BUDGET_DAY);
        CHECK(budget_period_from_string("week") == BUDGET_WEEK);
        CHECK(budget_period_from_string("month") == BUDGET_MONTH);
        CHECK(budget_period_from_string("year") == _BUDGET_PERIOD_INVALID);
        CHECK(budget_period_from_string("") == _BUDGET_PERIOD_INVALID);
        CHECK(budget_period_from_string(NULL) == _BUDGET_PERIOD_INVALID);
        CHECK(strcmp(budget_period_to_string(BUDGET_WEEK), "week") == 0);

        /* UTC first, then a zone with DST. */
        setenv("TZ", "UTC", 1);
        tzset();
        t = at(2026, 12, 2, 15, 30); /* a Wednesday */
        CHECK(budget_period_bounds(BUDGET_DAY, t, &s, &e) == 0 && s == at(2026, 12, 2, 0, 0) && e == at(2026, 12, 3, 0, 0));
        CHECK(budget_period_bounds(BUDGET_WEEK, t, &s, &e) == 0 && s == at(2026, 11, 30, 0, 0) && e == at(2026, 12, 7, 0, 0));
        CHECK(budget_period_bounds(BUDGET_MONTH, t, &s, &e) == 0 && s == at(2026, 12, 1, 0, 0) && e == at(2027, 1, 1, 0, 0));
        /* A Monday at midnight is the start of its own week; a Sunday the end of the previous. */
        CHECK(budget_period_bounds(BUDGET_WEEK, at(2026, 11, 30, 0, 0), &s, NULL) == 0 && s == at(2026, 11, 30, 0, 0));
        CHECK(budget_period_bounds(BUDGET_WEEK, at(2026, 11, 29, 23, 59), &s, NULL) == 0 && s == at(2026, 11, 23, 0, 0));
        CHECK(budget_period_bounds((BudgetPeriod) 7, t, &s, &e) == -EINVAL);

        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        /* 2026-03-29: clocks go forward, the day has 23 hours. */
        CHECK(budget_period_bounds(BUDGET_DAY, at(2026, 3, 29, 12, 0), &s, &e) == 0 && e - s == 23ULL * 3600 * 1000000);
        /* 2026-10-25: back, 25 hours. */
        CHECK(budget_period_bounds(BUDGET_DAY, at(2026, 10, 25, 12, 0), &s, &e) == 0 && e - s == 25ULL * 3600 * 1000000);
        CHECK(budget_period_bounds(BUDGET_MONTH, at(2026, 2, 15, 12, 0), &s, &e) == 0 && s == at(2026, 2, 1, 0, 0) &&
              e == at(2026, 3, 1, 0, 0));

        /* Limits. */
        CHECK(budget_limit_is_valid(0));
        CHECK(budget_limit_is_valid(5));
        CHECK(!budget_limit_is_valid(-1));
        CHECK(!budget_limit_is_valid(NAN));
        CHECK(!budget_limit_is_valid(INFINITY));
        CHECK(!budget_limit_is_valid(2e6));

        /* Estimates: 300 bytes → 100 tokens in; 1000 out; $3/$15 per 1M. */
        CHECK(fabs(budget_estimate_usd(3, 15, 300, 1000) - (100 * 3 + 1000 * 15) / 1e6) < 1e-12);
        CHECK(fabs(budget_estimate_usd(3, 15, 301, 0) - 101 * 3 / 1e6) < 1e-12);
        CHECK(budget_estimate_usd(NAN, -1, 3000, 1000) == 0.0);

        /* Admission. */
        CHECK(budget_may_start(0, 100, 100));       /* no budget */
        CHECK(budget_may_start(1.0, 0.5, 0.4));
        CHECK(!budget_may_start(1.0, 0.5, 0.5));
        CHECK(!budget_may_start(1.0, 1.0, 0));
        CHECK(!budget_may_start(1.0, NAN, 0));
        CHECK(budget_may_start(1.0, 0.2, -5));      /* never negative in flight */

        /* "USD/PERIOD". */
        CHECK(budget_parse_spec("5/day", &usd, &p) == 0 && usd == 5 && p == BUDGET_DAY);
        CHECK(budget_parse_spec("$0.50/week", &usd, &p) == 0 && usd == 0.5 && p == BUDGET_WEEK);
        CHECK(budget_parse_spec("20/month", &usd, &p) == 0 && usd == 20 && p == BUDGET_MONTH);
        CHECK(budget_parse_spec("3", &usd, &p) == 0 && usd == 3 && p == BUDGET_DAY);
        CHECK(budget_parse_spec("5/year", &usd, &p) == -EINVAL);
        CHECK(budget_parse_spec("-5/day", &usd, &p) == -EINVAL);
        CHECK(budget_parse_spec("nan/day", &usd, &p) == -EINVAL);
        CHECK(budget_parse_spec("1e3/day", &usd, &p) == -EINVAL);
        CHECK(budget_parse_spec("1.2.3/day", &usd, &p) == -EINVAL);
        CHECK(budget_parse_spec("/day", &usd, &p) == -EINVAL);
        CHECK(budget_parse_spec("2000000/day", &usd, &p) == -EINVAL);

        /* --since. */
        t = at(2026, 12, 2, 15, 30);
        CHECK(budget_parse_when("7d", t, &s) == 0 && s == t - 7ULL * 86400 * 1000000);
        CHECK(budget_parse_when("24h", t, &s) == 0 && s == t - 24ULL * 3600 * 1000000);
        CHECK(budget_parse_when("30m", t, &s) == 0 && s == t - 30ULL * 60 * 1000000);
        CHECK(budget_parse_when("2w", t, &s) == 0 && s == t - 14ULL * 86400 * 1000000);
        CHECK(budget_parse_when("2026-11-01", t, &s) == 0 && s == at(2026, 11, 1, 0, 0));
        CHECK(budget_parse_when("2026-11-01T12:30", t, &s) == 0 && s == at(2026, 11, 1, 12, 30));
        CHECK(budget_parse_when("2026-11-01 12:30", t, &s) == 0 && s == at(2026, 11, 1, 12, 30));
        CHECK(budget_parse_when("today", t, &s) == 0 && s == at(2026, 12, 2, 0, 0));
        CHECK(budget_parse_when("@123", t, &s) == 0 && s == 123);
        CHECK(budget_parse_when("2026-02-31", t, &s) == -EINVAL);
        CHECK(budget_parse_when("2026-13-01", t, &s) == -EINVAL);
        CHECK(budget_parse_when("7x", t, &s) == -EINVAL);
        CHECK(budget_parse_when("d", t, &s) == -EINVAL);
        CHECK(budget_parse_when("", t, &s) == -EINVAL);
        CHECK(budget_parse_when("2026-11-01T25:00", t, &s) == -EINVAL);
        CHECK(budget_parse_when("99999999d", t, &s) == -ERANGE);

        if (failures) {
                fprintf(stderr, "%d failure(s)\n", failures);
                return 1;
        }
        printf("budget: all cases passed\n");
        return 0;
}
