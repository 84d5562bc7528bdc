/* SPDX-License-Identifier: MIT */
/*
 * A shared background GET with its waiters and timer: see fetcher.h.
 */
#include "fetcher.h"
#include "gateway.h"
#include "log.h"

typedef struct FetcherWaiter {
        sd_bus_message *message;
        unsigned kind;
} FetcherWaiter;

struct Fetcher {
        Context *context;
        char *path;
        uint64_t timeout_usec;
        size_t max_body;
        const FetcherOps *ops;
        void *userdata;

        HttpRequest *request; /* in flight */
        FetcherWaiter *waiting;
        size_t n_waiting, n_waiting_allocated;

        sd_event_source *timer;
        uint64_t timer_accuracy_usec;
        const char *description;
        unsigned failures;
};

int fetcher_new(Context *c, const char *path, uint64_t timeout_usec, size_t max_body, uint64_t timer_accuracy_usec,
                const char *description, const FetcherOps *ops, void *userdata, Fetcher **ret) {
        Fetcher *f;

        f = calloc(1, sizeof(Fetcher));
        if (!f)
                return -ENOMEM;
        f->path = strdup(path);
        if (!f->path) {
                free(f);
                return -ENOMEM;
        }
        f->context = c;
        f->timeout_usec = timeout_usec;
        f->max_body = max_body;
        f->timer_accuracy_usec = timer_accuracy_usec;
        f->description = description;
        f->ops = ops;
        f->userdata = userdata;
        *ret = f;
        return 0;
}

Fetcher *fetcher_free(Fetcher *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_waiting; i++)
                sd_bus_message_unref(f->waiting[i].message);
        free(f->waiting);
        http_request_free(f->request);
        sd_event_source_disable_unref(f->timer);
        free(f->path);
        free(f);
        return NULL;
}

static void on_fetch_done(HttpRequest *hr, int error, void *userdata) {
        Fetcher *f = userdata;

        f->request = NULL;
        f->ops->done(hr, error, f->userdata);
        http_request_free(hr);
}

int fetcher_start(Fetcher *f) {
        int r;

        if (f->request)
                return 1; /* already on its way: share it */
        r = gateway_get_new(f->context, f->path, f->timeout_usec, f->max_body, &f->request);
        if (r < 0)
                return r;
        http_request_set_on_done(f->request, on_fetch_done);
        http_request_set_userdata(f->request, f);
        r = http_request_start(f->request);
        if (r < 0) {
                f->request = http_request_free(f->request);
                return r;
        }
        return 0;
}

bool fetcher_in_flight(const Fetcher *f) {
        return f->request != NULL;
}

void fetcher_cancel(Fetcher *f) {
        f->request = http_request_free(f->request);
}

int fetcher_join(Fetcher *f, sd_bus_message *m, unsigned kind) {
        FetcherWaiter *w;
        int r;

        /* Room first: once the fetch is out, adding the caller cannot fail. */
        w = GREEDY_REALLOC(f->waiting, f->n_waiting_allocated, f->n_waiting + 1);
        if (!w)
                return -ENOMEM;
        if (!f->request) {
                r = fetcher_start(f);
                if (r < 0)
                        return r;
        }
        f->waiting[f->n_waiting++] = (FetcherWaiter) { .message = sd_bus_message_ref(m), .kind = kind };
        return 0;
}

size_t fetcher_n_waiting(const Fetcher *f) {
        return f->n_waiting;
}

void fetcher_reply_all(Fetcher *f, const sd_bus_error *e) {
        FetcherWaiter *w = TAKE_PTR(f->waiting);
        size_t n = f->n_waiting;

        f->n_waiting = f->n_waiting_allocated = 0;
        for (size_t i = 0; i < n; i++) {
                int r = f->ops->reply(w[i].message, w[i].kind, e, f->userdata);
                if (r < 0)
                        log_debug_errno(r, "Failed to answer a call waiting for %s: %m", f->path);
                sd_bus_message_unref(w[i].message);
        }
        free(w);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fetcher *f = userdata;

        f->ops->timer(f->userdata);
        return 0;
}

void fetcher_schedule(Fetcher *f, uint64_t delay) {
        int r;

        if (delay == UINT64_MAX) {
                if (f->timer)
                        (void) sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
                return;
        }
        if (!f->timer) {
                r = sd_event_add_time_relative(f->context->event, &f->timer, CLOCK_MONOTONIC, delay,
                                               f->timer_accuracy_usec, on_timer, f);
                if (r >= 0)
                        (void) sd_event_source_set_description(f->timer, f->description);
        } else {
                r = sd_event_source_set_time_relative(f->timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the next fetch of %s: %m", f->path);
}

unsigned fetcher_note_failure(Fetcher *f) {
        return ++f->failures;
}

void fetcher_reset_failures(Fetcher *f) {
        f->failures = 0;
}

unsigned fetcher_failures(const Fetcher *f) {
        return f->failures;
}
