/* SPDX-License-Identifier: MIT */
/* Unit tests for common/wakeup.c: "now" on the next iteration, a deadline
 * never early and late by at most its accuracy, the last request wins, off
 * is off. */
#include "test.h"
#include "wakeup.h"

typedef struct Run {
        unsigned n;
        uint64_t at;
} Run;

static void on_wake(void *userdata) {
        Run *r = userdata;

        r->n++;
        r->at = now_usec(CLOCK_MONOTONIC);
}

/* Runs the loop until the wakeup fired or limit passed; the time it fired. */
static void run_for(sd_event *e, Run *r, uint64_t limit) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + limit;

        while (r->n == 0 && now_usec(CLOCK_MONOTONIC) < end)
                ASSERT(sd_event_run(e, 1000) >= 0);
}

int main(void) {
        sd_event *e = NULL;
        Wakeup w;
        Run r = {};
        uint64_t t0;

        ASSERT(sd_event_new(&e) >= 0);
        ASSERT(wakeup_init(&w, e, "test", on_wake, &r) == 0);

        /* Nothing asked: nothing fires. */
        ASSERT(sd_event_run(e, 20 * 1000) >= 0);
        ASSERT(r.n == 0);

        /* Now: on the next iteration, once. */
        ASSERT(wakeup_in(&w, 0) >= 0);
        ASSERT(sd_event_run(e, 0) >= 0);
        ASSERT(r.n == 1);
        ASSERT(sd_event_run(e, 20 * 1000) >= 0);
        ASSERT(r.n == 1);

        /* 30 ms: not before, and within its accuracy (3 ms) plus slack. */
        r = (Run) {};
        t0 = now_usec(CLOCK_MONOTONIC);
        ASSERT(wakeup_in(&w, 30 * 1000) >= 0);
        run_for(e, &r, 2 * USEC_PER_SEC);
        ASSERT(r.n == 1);
        ASSERT(r.at - t0 >= 30 * 1000);
        ASSERT(r.at - t0 < 30 * 1000 + 3 * 1000 + 500 * 1000);

        /* The last request wins: a deadline after a "now" cancels the now,
         * a "now" after a deadline fires at once. */
        r = (Run) {};
        ASSERT(wakeup_in(&w, 0) >= 0);
        ASSERT(wakeup_in(&w, 10 * USEC_PER_SEC) >= 0);
        ASSERT(sd_event_run(e, 20 * 1000) >= 0);
        ASSERT(r.n == 0);
        ASSERT(wakeup_in(&w, 0) >= 0);
        ASSERT(sd_event_run(e, 0) >= 0);
        ASSERT(r.n == 1);

        /* Off is off, for both kinds. */
        r = (Run) {};
        ASSERT(wakeup_in(&w, 5 * 1000) >= 0);
        wakeup_off(&w);
        ASSERT(wakeup_in(&w, 0) >= 0);
        wakeup_off(&w);
        ASSERT(sd_event_run(e, 50 * 1000) >= 0);
        ASSERT(r.n == 0);

        /* After done, requests are refused, not crashes. */
        wakeup_done(&w);
        ASSERT(wakeup_in(&w, 0) == -ESTALE);
        wakeup_off(&w);
        sd_event_unref(e);
        printf("test-wakeup: all passed\n");
        return 0;
}
