/* SPDX-License-Identifier: MIT */
/* bot.bankr.LLM1.Setup (placeholder until the Setup issue lands). */
#include "modules.h"

struct Setup {
        Context *context;
};

int setup_new(Context *c, Setup **ret) {
        Setup *s = calloc(1, sizeof(Setup));
        if (!s)
                return -ENOMEM;
        s->context = c;
        *ret = s;
        return 0;
}

Setup *setup_free(Setup *s) {
        free(s);
        return NULL;
}

const sd_bus_vtable setup_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_VTABLE_END,
};
