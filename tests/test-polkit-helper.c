/* SPDX-License-Identifier: MIT */
/*
 * A tiny daemon for tests/test-polkit.py: owns the bus name given on the
 * command line on the session bus and serves /test with
 *   Guarded(s action) → (s)   checks polkit, then "runs": answers "ok";
 *   Ping() → ()               unguarded, to show nothing blocks;
 *   Runs (u)                  how many times Guarded's body ran;
 *   Pending (u)               polkit checks in flight.
 * The polkit module under test is exactly the one bankr-llmd links.
 */

#include <signal.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "polkit.h"

#define HELPER_INTERFACE "bot.bankr.LLM1.Test.Polkit"

typedef struct Helper {
        Polkit *polkit;
        uint32_t runs;
} Helper;

static int method_guarded(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Helper *h = userdata;
        const char *action;
        int r;

        r = sd_bus_message_read(m, "s", &action);
        if (r < 0)
                return r;
        if (isempty(action))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "The action must not be empty.");

        r = polkit_check_async(h->polkit, m, action, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit is being asked; we run again when it has answered */

        h->runs++;
        return sd_bus_reply_method_return(m, "s", "ok");
}

static int method_ping(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Helper *h = userdata;

        if (streq(property, "Runs"))
                return sd_bus_message_append(reply, "u", h->runs);
        return sd_bus_message_append(reply, "u", polkit_pending(h->polkit));
}

static const sd_bus_vtable helper_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Runs", "u", property_get, 0, 0),
        SD_BUS_PROPERTY("Pending", "u", property_get, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Guarded", SD_BUS_ARGS("s", action), SD_BUS_RESULT("s", result),
                                method_guarded, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Ping", "", "", method_ping, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(polkit_freep) Polkit *polkit = NULL; /* freed before the bus its calls came on */
        Helper h = {};
        sigset_t mask;
        int r;

        log_set_program("test-polkit-helper");
        if (getenv("BANKR_LLMD_DEBUG"))
                log_max_level = LOG_DEBUG;

        if (argc != 2) {
                log_error("Usage: %s BUS-NAME", argv[0]);
                return 2;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&e);
        if (r < 0)
                return log_error_errno(r, "Failed to get the event loop: %m"), 1;
        (void) sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(e, NULL, SIGINT, NULL, NULL);

        r = polkit_new(e, &polkit);
        if (r < 0)
                return log_error_errno(r, "Failed to set up polkit checks: %m"), 1;
        h.polkit = polkit;

        r = sd_bus_open_user(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the session bus: %m"), 1;

        r = sd_bus_add_object_vtable(bus, NULL, "/test", HELPER_INTERFACE, helper_vtable, &h);
        if (r < 0)
                return log_error_errno(r, "Failed to export /test: %m"), 1;

        r = sd_bus_attach_event(bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus: %m"), 1;

        /* Synchronous on purpose: tests wait for the name to appear. */
        r = sd_bus_request_name(bus, argv[1], 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire %s: %m", argv[1]), 1;

        r = sd_event_loop(e);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        return 0;
}
