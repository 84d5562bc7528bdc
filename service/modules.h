/* SPDX-License-Identifier: MIT */
/*
 * The constructor/destructor/vtable of each interface module, and the few
 * hooks modules call on each other. One block per module.
 */
#pragma once

#include "bankr-llmd.h"

/* key.c — bot.bankr.LLM1.Key */
int keys_new(Context *c, Keys **ret);
Keys *keys_free(Keys *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Keys *, keys_free);
extern const sd_bus_vtable keys_vtable[];
/* Starts the first keyring lookups; ready() runs once they answered (or
 * after a few seconds without an answer). */
void keys_start(Keys *k, void (*ready)(Context *c));

/* models.c — bot.bankr.LLM1.Models */
struct Model;
int models_new(Context *c, Models **ret);
Models *models_free(Models *m);
extern const sd_bus_vtable models_vtable[];
void models_key_changed(Models *m);
/* The current record for id, or NULL. Valid until the next loop iteration. */
const struct Model *models_find(Models *m, const char *id);
/* The whole current list (live, cached or catalog). */
const struct ModelList *models_list(Models *m);

/* credits.c — bot.bankr.LLM1.Credits */
int credits_new(Context *c, Credits **ret);
Credits *credits_free(Credits *cr);
extern const sd_bus_vtable credits_vtable[];
void credits_key_changed(Credits *cr);
/* A chat answered 402: exhausted now, without another call. */
void credits_payment_required(Credits *cr);
/* A chat request finished: schedule one coalesced refresh. */
void credits_request_finished(Credits *cr);
/* Key.Validate: asks the gateway (credits endpoint) and replies to m with
 * (b ok, s message) later. Returns 1, or <0 with error set. */
int credits_validate(Credits *cr, sd_bus_message *m, sd_bus_error *error);

/* Hooks credits.c offers to topup.c. */
Context *credits_context(Credits *cr);
/* A top-up answered with the new balance: Balance/State/UpdatedAt change at
 * once (PropertiesChanged, Low/Exhausted as for any refresh). */
void credits_set_balance(Credits *cr, double balance_usd);

/* topup.c — the Credits methods that spend money or change auto top-up
 * (agent API, polkit-guarded). Registered in credits_vtable; userdata is
 * the Credits object. */
int method_credits_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_credits_get_auto_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_credits_set_auto_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* chat.c — bot.bankr.LLM1.Chat (+ request objects) */
int chat_new(Context *c, Chat **ret);
Chat *chat_free(Chat *ch);
extern const sd_bus_vtable chat_vtable[];

/* setup.c — bot.bankr.LLM1.Setup */
int setup_new(Context *c, Setup **ret);
Setup *setup_free(Setup *s);
extern const sd_bus_vtable setup_vtable[];
