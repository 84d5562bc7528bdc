/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Models (models.c): the model list, served from memory, and
 * when it is fetched again.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The pure decisions of the background refresh (µs; UINT64_MAX: never).
 * After start, a key change or a success: 0 (at once) when the list never
 * came from the gateway, came from another one or is older than the TTL;
 * else what is left of the TTL; never without a key or after a 401/403. */
uint64_t models_refresh_delay(bool have_key, bool key_rejected, uint64_t updated_at, bool same_gateway, uint64_t now,
                              uint64_t ttl);
/* After the failures-th failed fetch in a row, next being
 * models_refresh_delay(): 30 s doubling, at least next, at most the TTL. */
uint64_t models_retry_delay(unsigned failures, uint64_t next, uint64_t ttl);
