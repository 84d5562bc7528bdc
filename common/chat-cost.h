/* SPDX-License-Identifier: MIT */
/* What an answer cost, from its token counts and the model's prices. */
#pragma once

#include "chat-api.h"

/* Cost in USD; prices are USD per 1M tokens. A NaN, infinite or negative
 * price counts as 0 (unknown pricing must not produce a NaN cost). */
double chat_cost_usd(const ChatUsage *u, double p_in, double p_out, double p_cache_read, double p_cache_write);
