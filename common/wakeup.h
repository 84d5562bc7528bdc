/* SPDX-License-Identifier: MIT */
/*
 * A oneshot wakeup on sd-event for a library that asks for one after
 * nearly every call into it (libcurl's timer callback, libmicrohttpd's
 * MHD_get_timeout()). "Now" is a defer source, which costs no system call;
 * a deadline is a timer whose accuracy grows with its distance (a tenth of
 * it, at most 250 ms), so that a far deadline moving a little on every
 * call does not re-arm the kernel's timerfd each time. Never early; late
 * by at most that accuracy.
 */
#pragma once

#include <systemd/sd-event.h>

#include "util.h"

typedef void (*wakeup_handler_t)(void *userdata);

typedef struct Wakeup {
        sd_event_source *now, *timer;
        wakeup_handler_t handler;
        void *userdata;
} Wakeup;

int wakeup_init(Wakeup *w, sd_event *e, const char *description, wakeup_handler_t handler, void *userdata);
void wakeup_done(Wakeup *w);
/* Calls the handler once, in usec from now (0: on the next loop iteration).
 * Replaces any earlier request. */
int wakeup_in(Wakeup *w, uint64_t usec);
void wakeup_off(Wakeup *w);
