/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous polkit checks for method calls that reach us on the session
 * bus. We ask polkitd on the system bus, over a connection of our own on the
 * same sd-event loop, whether the calling process may perform an action; the
 * call is parked meanwhile and dispatched again once polkit has answered.
 *
 * Use at the top of a method handler, after validating the arguments and
 * before changing anything:
 *
 *         r = polkit_check_async(c->polkit, m, ACTION_TOP_UP, error);
 *         if (r < 0)
 *                 return r;          // error is set: NotAuthorized + why
 *         if (r == 0)
 *                 return 1;          // asked polkit; we run again later
 *         ... authorized: do it and reply ...
 *
 * When polkit answers, the original message is queued again with
 * sd_bus_enqueue_for_read(), so the handler runs once more from the top and
 * the same call then returns the verdict for that message. Everything fails
 * closed: no system bus, no polkitd, an error or a timeout all end in
 * bot.bankr.LLM1.Error.NotAuthorized with a sentence saying which.
 */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "util.h"

typedef struct Polkit Polkit;

/* How long polkit may take to answer. Checks that let polkit ask for a
 * password get longer: a person has to type it. The environment variable
 * BANKR_LLMD_POLKIT_TIMEOUT_MS (read by polkit_new) sets both. */
#define POLKIT_TIMEOUT_DEFAULT_USEC (25 * USEC_PER_SEC)
#define POLKIT_TIMEOUT_INTERACTIVE_USEC (300 * USEC_PER_SEC)

int polkit_new(sd_event *e, Polkit **ret);
Polkit *polkit_free(Polkit *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Polkit *, polkit_free);

/* Overrides both timeouts; 0 restores the defaults. */
void polkit_set_timeout(Polkit *p, uint64_t usec);

/* Returns 1 when the sender of m may perform action, 0 when a check was
 * started (or is still running) and the handler must return 1 without
 * replying, and a negative errno with error set to NotAuthorized otherwise.
 * Never logs the message's arguments. */
int polkit_check_async(Polkit *p, sd_bus_message *m, const char *action, sd_bus_error *error);

/* The same calling convention, but nobody is asked: it only makes sure the
 * sender of m is not a sandboxed application. A Flatpak app reaches the bus
 * through its D-Bus proxy, whose process polkit sees as an ordinary one of
 * the active session, so a polkit "yes" cannot tell the two apart: calls
 * that hand out the key or change what the host relies on (the key, the
 * user's tool configs) check this first. The caller counts as sandboxed
 * when it runs in a Flatpak scope or /proc/PID/root/.flatpak-info exists
 * (see caller_flatpak_app() in polkit.c).
 * Denied (NotAuthorized naming the app) also when that cannot be told. */
int polkit_check_host_async(Polkit *p, sd_bus_message *m, sd_bus_error *error);

/* Checks waiting for polkit (tests use it). */
unsigned polkit_pending(Polkit *p);
