/* SPDX-License-Identifier: MIT */
/* bot.bankr.LLM1.Models (placeholder until the Models issue lands). */
#include "modules.h"

struct Models {
        Context *context;
};

int models_new(Context *c, Models **ret) {
        Models *m = calloc(1, sizeof(Models));
        if (!m)
                return -ENOMEM;
        m->context = c;
        *ret = m;
        return 0;
}

Models *models_free(Models *m) {
        free(m);
        return NULL;
}

void models_key_changed(Models *m) {
}

const struct Model *models_find(Models *m, const char *id) {
        return NULL;
}

const struct ModelList *models_list(Models *m) {
        return NULL;
}

const sd_bus_vtable models_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_VTABLE_END,
};
