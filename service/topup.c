/* SPDX-License-Identifier: MIT */
/* Credits.TopUp and auto top-up (placeholder until the polkit issue lands). */
#include "modules.h"

int method_credits_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED, "Top-ups are not available yet.");
}

int method_credits_get_auto_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED, "Auto top-up is not available yet.");
}

int method_credits_set_auto_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED, "Auto top-up is not available yet.");
}
