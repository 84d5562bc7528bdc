/* SPDX-License-Identifier: MIT */
/*
 * Budget periods and estimates (see budget.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"

#define USEC_PER_SEC_ UINT64_C(1000000)

static const char *const period_names[_BUDGET_PERIOD_MAX] = {
        [BUDGET_DAY] = "day",
        [BUDGET_WEEK] = "week",
        [BUDGET_MONTH] = "month",
};

const char *budget_period_to_string(BudgetPeriod p) {
        if (p < 0 || p >= _BUDGET_PERIOD_MAX)
                return NULL;
        return period_names[p];
}

BudgetPeriod budget_period_from_string(const char *s) {
        if (!s)
                return _BUDGET_PERIOD_INVALID;
        for (int i = 0; i < _BUDGET_PERIOD_MAX; i++)
                if (strcmp(s, period_names[i]) == 0)
                        return (BudgetPeriod) i;
        return _BUDGET_PERIOD_INVALID;
}

/* Local midnight of the day tm names, tm_mday moved by days (mktime
 * normalises, and finds the offset in force then: DST-safe). */
static int local_midnight(const struct tm *tm, int days, int months, uint64_t *ret) {
        struct tm t = *tm;
        time_t s;

        t.tm_hour = t.tm_min = t.tm_sec = 0;
        t.tm_mday += days;
        t.tm_mon += months;
        t.tm_isdst = -1;
        s = mktime(&t);
        if (s == (time_t) -1 || s < 0)
                return -ERANGE;
        *ret = (uint64_t) s * USEC_PER_SEC_;
        return 0;
}

int budget_period_bounds(BudgetPeriod p, uint64_t t, uint64_t *ret_start, uint64_t *ret_end) {
        time_t s = (time_t) (t / USEC_PER_SEC_);
        uint64_t start, end;
        struct tm tm;
        int r, back;

        if (p < 0 || p >= _BUDGET_PERIOD_MAX)
                return -EINVAL;
        if (!localtime_r(&s, &tm))
                return -ERANGE;

        switch (p) {
        case BUDGET_DAY:
                r = local_midnight(&tm, 0, 0, &start);
                if (r >= 0)
                        r = local_midnight(&tm, 1, 0, &end);
                break;
        case BUDGET_WEEK:
                back = (tm.tm_wday + 6) % 7; /* days since Monday */
                r = local_midnight(&tm, -back, 0, &start);
                if (r >= 0)
                        r = local_midnight(&tm, 7 - back, 0, &end);
                break;
        default:
                tm.tm_mday = 1;
                r = local_midnight(&tm, 0, 0, &start);
                if (r >= 0)
                        r = local_midnight(&tm, 0, 1, &end);
                break;
        }
        if (r < 0)
                return r;
        if (ret_start)
                *ret_start = start;
        if (ret_end)
                *ret_end = end;
        return 0;
}

bool budget_limit_is_valid(double limit_usd) {
        return isfinite(limit_usd) && limit_usd >= 0.0 && limit_usd <= BUDGET_LIMIT_MAX_USD;
}

static double price(double p) {
        return isfinite(p) && p > 0.0 ? p : 0.0;
}

double budget_estimate_usd(double price_input, double price_output, uint64_t input_bytes,
                           uint64_t max_output_tokens) {
        double in_tokens = (double) (input_bytes / 3 + (input_bytes % 3 != 0));
        return (in_tokens * price(price_input) + (double) max_output_tokens * price(price_output)) / 1e6;
}

bool budget_may_start(double limit_usd, double spent_usd, double in_flight_usd) {
        if (!(limit_usd > 0.0) || !isfinite(limit_usd))
                return true;
        if (!isfinite(spent_usd) || !isfinite(in_flight_usd))
                return false;
        return spent_usd + (in_flight_usd > 0.0 ? in_flight_usd : 0.0) < limit_usd;
}

static int parse_usd(const char *s, size_t n, double *ret) {
        char buf[64], *end;
        double v;

        if (n > 0 && s[0] == '$')
                s++, n--;
        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        /* Digits and one point only: no "inf", "nan", hex or exponents. */
        if (strspn(buf, "0123456789.") != n || strchr(buf, '.') != strrchr(buf, '.') || buf[0] == '.')
                return -EINVAL;
        errno = 0;
        v = strtod(buf, &end);
        if (errno != 0 || *end != '\0' || !budget_limit_is_valid(v))
                return -EINVAL;
        *ret = v;
        return 0;
}

int budget_parse_spec(const char *s, double *ret_usd, BudgetPeriod *ret_period) {
        const char *slash;
        BudgetPeriod p = BUDGET_DAY;
        double v;
        int r;

        if (!s || !ret_usd || !ret_period)
                return -EINVAL;
        slash = strchr(s, '/');
        r = parse_usd(s, slash ? (size_t) (slash - s) : strlen(s), &v);
        if (r < 0)
                return r;
        if (slash) {
                p = budget_period_from_string(slash + 1);
                if (p < 0)
                        return -EINVAL;
        }
        *ret_usd = v;
        *ret_period = p;
        return 0;
}

int budget_parse_when(const char *s, uint64_t now_usec, uint64_t *ret_usec) {
        unsigned long long n;
        int y, mo, d, h = 0, mi = 0, consumed = 0;
        char unit, *end;
        struct tm tm = {};
        time_t t;

        if (!s || !ret_usec || !*s)
                return -EINVAL;

        if (strcmp(s, "today") == 0)
                return budget_period_bounds(BUDGET_DAY, now_usec, ret_usec, NULL);

        if (s[0] == '@') {
                if (strspn(s + 1, "0123456789") != strlen(s + 1) || !s[1])
                        return -EINVAL;
                errno = 0;
                n = strtoull(s + 1, &end, 10);
                if (errno != 0)
                        return -ERANGE;
                *ret_usec = n;
                return 0;
        }

        /* A duration back from now: digits and one unit letter. */
        size_t digits = strspn(s, "0123456789");
        if (digits > 0 && digits <= 9 && s[digits] && !s[digits + 1]) {
                uint64_t mult;

                n = strtoull(s, NULL, 10);
                unit = s[digits];
                switch (unit) {
                case 's': mult = 1; break;
                case 'm': mult = 60; break;
                case 'h': mult = 3600; break;
                case 'd': mult = 86400; break;
                case 'w': mult = 7 * 86400; break;
                default: return -EINVAL;
                }
                if (n * mult * USEC_PER_SEC_ > now_usec)
                        return -ERANGE;
                *ret_usec = now_usec - n * mult * USEC_PER_SEC_;
                return 0;
        }

        /* YYYY-MM-DD[(T| )HH:MM] in local time. */
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) != 3 || consumed != 10)
                return -EINVAL;
        if (s[10] != '\0') {
                int c2 = 0;
                if ((s[10] != 'T' && s[10] != ' ') || sscanf(s + 11, "%2d:%2d%n", &h, &mi, &c2) != 2 ||
                    c2 != 5 || s[16] != '\0')
                        return -EINVAL;
        }
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || h < 0 || mi < 0)
                return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        if (t == (time_t) -1 || t < 0)
                return -ERANGE;
        /* mktime normalises 2026-02-31 into March: that is not a date. */
        if (tm.tm_mday != d || tm.tm_mon != mo - 1)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC_;
        return 0;
}
