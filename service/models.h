/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Models (models.c): the model list, served from memory, and
 * when it is fetched again.
 */
#pragma once

#include "bankr-llmd.h"

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

/* --- the Models interface ------------------------------------------------ */


struct Model;
struct ModelList;

int models_new(Context *c, Models **ret);
Models *models_free(Models *m);
extern const sd_bus_vtable models_vtable[];
/* The Context's key_changed event: refetch (or stop fetching). */
void models_key_changed(Models *m);
/* The current record for id, or NULL. Valid until the next loop iteration. */
const struct Model *models_find(Models *m, const char *id);
/* The Context's model_deprecated event: an answer said model (a ":zdr"/
 * ":private" suffix is dropped) is deprecated or retired, with replacement
 * (NULL or "": none named). The first time per model and run it emits
 * ModelDeprecated(id, replacement); the Models dicts carry deprecated and
 * replacement from then on. A model only the list flags is not announced:
 * the signal is about models someone uses. */
void models_note_deprecated(Models *m, const char *model, const char *replacement);
/* The whole current list (live, cached or catalog). */
const struct ModelList *models_list(Models *m);
