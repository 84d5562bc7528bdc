/* SPDX-License-Identifier: MIT */
/* The names of the two wire formats (see chat-api.h). */
#include "chat-api.h"

static const char *const chat_api_table[_CHAT_API_MAX] = {
        [CHAT_API_OPENAI] = "openai",
        [CHAT_API_ANTHROPIC] = "anthropic",
};

DEFINE_STRING_TABLE_LOOKUP(chat_api, ChatApi, _CHAT_API_INVALID);
