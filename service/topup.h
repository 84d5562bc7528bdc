/* SPDX-License-Identifier: MIT */
/*
 * Credits.TopUp, Credits.GetAutoTopUp and Credits.SetAutoTopUp (topup.c):
 * the Credits methods that go to the agent API. An object of its own on the
 * Context, whose vtable main.c registers on bot.bankr.LLM1.Credits next to
 * credits.c's (sd-bus merges the two in calls and introspection).
 */
#pragma once

#include "bankr-llmd.h"

int topup_new(Context *c, Topup **ret);
/* Calls still out are dropped without an answer (the caller sees us leave). */
Topup *topup_free(Topup *t);
extern const sd_bus_vtable topup_vtable[];
