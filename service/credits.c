/* SPDX-License-Identifier: MIT */
/* bot.bankr.LLM1.Credits (placeholder until the Credits issue lands). */
#include "modules.h"

struct Credits {
        Context *context;
};

int credits_new(Context *c, Credits **ret) {
        Credits *cr = calloc(1, sizeof(Credits));
        if (!cr)
                return -ENOMEM;
        cr->context = c;
        *ret = cr;
        return 0;
}

Credits *credits_free(Credits *cr) {
        free(cr);
        return NULL;
}

void credits_key_changed(Credits *cr) {
}

void credits_payment_required(Credits *cr) {
}

void credits_request_finished(Credits *cr) {
}

int credits_validate(Credits *cr, sd_bus_message *m, sd_bus_error *error) {
        return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED, "Validation is not available yet.");
}

const sd_bus_vtable credits_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_VTABLE_END,
};
