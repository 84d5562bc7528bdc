/* SPDX-License-Identifier: MIT */
/* The names of the two wire formats (see chat-api.h). */
#include "chat-api.h"

static const char *const chat_api_table[_CHAT_API_MAX] = {
        [CHAT_API_OPENAI] = "openai",
        [CHAT_API_ANTHROPIC] = "anthropic",
};

const char *chat_api_to_string(ChatApi api) {
        if (api < 0 || api >= _CHAT_API_MAX)
                return NULL;
        return chat_api_table[api];
}

ChatApi chat_api_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _CHAT_API_MAX; i++)
                        if (streq(s, chat_api_table[i]))
                                return (ChatApi) i;
        return _CHAT_API_INVALID;
}
