/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Chat (chat.c): Start and Complete, the limits and the
 * books of the requests (request.c) they create.
 */
#pragma once

#include "bankr-llmd.h"

int chat_new(Context *c, Chat **ret);
Chat *chat_free(Chat *ch);
extern const sd_bus_vtable chat_vtable[];
/* Chat.DefaultPrivacy, for the Context's context_default_privacy(). */
ChatPrivacy chat_get_default_privacy(Chat *ch);
