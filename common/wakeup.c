/* SPDX-License-Identifier: MIT */
/* Oneshot wakeups for libcurl and libmicrohttpd (see wakeup.h). */
#include "wakeup.h"

#define WAKEUP_MAX_ACCURACY (250 * USEC_PER_MSEC)

static int on_now(sd_event_source *s, void *userdata) {
        Wakeup *w = userdata;

        w->handler(w->userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Wakeup *w = userdata;

        w->handler(w->userdata);
        return 0;
}

int wakeup_init(Wakeup *w, sd_event *e, const char *description, wakeup_handler_t handler, void *userdata) {
        int r;

        *w = (Wakeup) { .handler = handler, .userdata = userdata };
        r = sd_event_add_defer(e, &w->now, on_now, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->now, SD_EVENT_OFF);
        if (r >= 0)
                /* Accuracy 1 µs: 0 would mean sd-event's default of 250 ms. */
                r = sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, 0, 1, on_timer, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0) {
                wakeup_done(w);
                return r;
        }
        (void) sd_event_source_set_description(w->now, description);
        (void) sd_event_source_set_description(w->timer, description);
        return 0;
}

void wakeup_done(Wakeup *w) {
        w->now = sd_event_source_disable_unref(w->now);
        w->timer = sd_event_source_disable_unref(w->timer);
}

int wakeup_in(Wakeup *w, uint64_t usec) {
        int r;

        if (!w->now)
                return -ESTALE;
        if (usec == 0) {
                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
                return sd_event_source_set_enabled(w->now, SD_EVENT_ONESHOT);
        }
        (void) sd_event_source_set_enabled(w->now, SD_EVENT_OFF);
        r = sd_event_source_set_time_accuracy(w->timer, CLAMP(usec / 10, (uint64_t) 1, (uint64_t) WAKEUP_MAX_ACCURACY));
        if (r >= 0)
                r = sd_event_source_set_time(w->timer, now_usec(CLOCK_MONOTONIC) + usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        return r;
}

void wakeup_off(Wakeup *w) {
        if (!w->now)
                return;
        (void) sd_event_source_set_enabled(w->now, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
}
