/* SPDX-License-Identifier: MIT */
/* Cost arithmetic (see chat-cost.h). */
#include <math.h>

#include "chat-cost.h"

static double price_or_zero(double p) {
        return isfinite(p) && p > 0 ? p : 0;
}

double chat_cost_usd(const ChatUsage *u, double p_in, double p_out, double p_cache_read, double p_cache_write) {
        if (!u)
                return 0;

        return ((double) u->input * price_or_zero(p_in) + (double) u->output * price_or_zero(p_out) +
                (double) u->cache_read * price_or_zero(p_cache_read) +
                (double) u->cache_write * price_or_zero(p_cache_write)) /
               1e6;
}
