/* SPDX-License-Identifier: MIT */
/*
 * One background GET to the gateway that several parties share, for the
 * Models and Credits modules: the request in flight, the method calls
 * waiting for its answer, the timer of the next fetch and the count of
 * failures in a row (for the backoff of retry-policy.h). The owner decides
 * what an answer means and when to fetch; the fetcher does the plumbing.
 */
#pragma once

#include "bankr-llmd.h"
#include "http.h"

typedef struct Fetcher Fetcher;

typedef struct FetcherOps {
        /* The GET ended (error: as http.h's on_done). The fetcher is idle
         * again when this runs (a new fetch may be started from here), and
         * frees hr after it returned. */
        void (*done)(HttpRequest *hr, int error, void *userdata);
        /* Answer one waiting call: e is NULL after a good answer. kind is
         * what fetcher_join() was given. */
        int (*reply)(sd_bus_message *m, unsigned kind, const sd_bus_error *e, void *userdata);
        /* The timer of fetcher_schedule() fired. */
        void (*timer)(void *userdata);
} FetcherOps;

/* GET <gateway>path with timeout_usec and max_body (gateway_get_new());
 * timer_accuracy_usec and description for the timer. */
int fetcher_new(Context *c, const char *path, uint64_t timeout_usec, size_t max_body, uint64_t timer_accuracy_usec,
                const char *description, const FetcherOps *ops, void *userdata, Fetcher **ret);
/* Cuts a fetch in flight; waiting calls must have been answered before
 * (fetcher_reply_all()). */
Fetcher *fetcher_free(Fetcher *f);

/* Starts the GET: 0 when it started, 1 when one was already in flight (it
 * is shared), <0 (-ENOKEY without a key) when it cannot start. */
int fetcher_start(Fetcher *f);
bool fetcher_in_flight(const Fetcher *f);
/* Drops the fetch in flight without an answer (asked with an old key). */
void fetcher_cancel(Fetcher *f);

/* m waits for the answer, starting a fetch when none is in flight. When
 * that fails, m was not added and the error is returned. */
int fetcher_join(Fetcher *f, sd_bus_message *m, unsigned kind);
size_t fetcher_n_waiting(const Fetcher *f);
/* Answers every waiting call through ops->reply. */
void fetcher_reply_all(Fetcher *f, const sd_bus_error *e);

/* The next fetch (ops->timer) after delay; UINT64_MAX disarms it. */
void fetcher_schedule(Fetcher *f, uint64_t delay);

/* Failures in a row: counted by the owner, read for the backoff. */
unsigned fetcher_note_failure(Fetcher *f);
void fetcher_reset_failures(Fetcher *f);
unsigned fetcher_failures(const Fetcher *f);
