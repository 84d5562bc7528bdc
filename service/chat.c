/* SPDX-License-Identifier: MIT */
/* bot.bankr.LLM1.Chat (placeholder until the Chat issue lands). */
#include "modules.h"

struct Chat {
        Context *context;
};

int chat_new(Context *c, Chat **ret) {
        Chat *ch = calloc(1, sizeof(Chat));
        if (!ch)
                return -ENOMEM;
        ch->context = c;
        *ret = ch;
        return 0;
}

Chat *chat_free(Chat *ch) {
        free(ch);
        return NULL;
}

bool chat_idle(Chat *ch) {
        return true;
}

const sd_bus_vtable chat_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_VTABLE_END,
};
