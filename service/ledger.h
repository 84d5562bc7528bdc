/* SPDX-License-Identifier: MIT */
/*
 * The ledger: one SQLite record per request that reached the gateway, at
 * $XDG_STATE_HOME/bankr-llm/usage.db, written and read by a thread of its
 * own so that the event loop never waits for the disk. Records hold
 * metadata only (app, model, status, tokens, cost, latency), never prompt
 * or answer text.
 *
 * The loop hands jobs over under a mutex (ledger_book() only copies the
 * record and queues it: no I/O) and gets answers back through an eventfd,
 * whose callbacks then run on the loop. Bookings are written in batches,
 * one transaction per wakeup of the thread.
 *
 * A database that is corrupt, locked by another process, on a full disk or
 * read-only does not stop anything: the reason is logged once per change,
 * bookings are kept in memory (up to LEDGER_UNBOOKED_MAX) and written once
 * the database works again (retried every LEDGER_RETRY_USEC, and on every
 * Usage call), and readers get the sentence from ledger_problem().
 *
 * Schema (user_version 1): table requests (one row per record; index by
 * time and by app, time) and table daily (totals per local day, app and
 * model, updated in the same transaction), so that Summary reads whole days
 * from daily and only the partial days at the ends of its range from
 * requests. Retention: records older than LEDGER_RETENTION_DAYS are
 * deleted (at open and once a day); daily totals are kept.
 */
#pragma once

#include <systemd/sd-event.h>

#include "util.h"

#define LEDGER_SCHEMA_VERSION 1
#define LEDGER_RETENTION_DAYS 400
#define LEDGER_UNBOOKED_MAX 100000U
#define LEDGER_RETRY_USEC (30 * USEC_PER_SEC)
#define LEDGER_BUSY_TIMEOUT_MS 1000
#define LEDGER_RECENT_MAX 10000U

typedef struct Ledger Ledger;

typedef struct LedgerRecord {
        uint64_t id;   /* set by the ledger (Recent); ignored when booking */
        uint64_t time; /* µs since the epoch: when the request ended */
        char *app;
        char *via;    /* "dbus" or "endpoint" */
        char *model;  /* as answered (else as asked) */
        char *status; /* "finished", "failed", "cancelled" */
        char *error;  /* bus error name, "" when finished */
        uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
        double cost_usd;
        double latency_first_ms, latency_total_ms;
        uint32_t attempts;
        char *privacy_tier;
} LedgerRecord;

void ledger_record_done(LedgerRecord *r);

enum {
        LEDGER_GROUP_APP = 1 << 0,
        LEDGER_GROUP_MODEL = 1 << 1,
        LEDGER_GROUP_DAY = 1 << 2,
        LEDGER_GROUP_HOUR = 1 << 3,
};

typedef struct LedgerFilter {
        uint64_t since; /* µs, 0: from the start */
        uint64_t until; /* µs, exclusive; 0: no end */
        char *app;      /* NULL: all */
        char *model;    /* NULL: all */
} LedgerFilter;

typedef struct LedgerRow {
        char *app, *model, *day, *hour; /* NULL unless grouped by it */
        uint64_t requests, errors;
        uint64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
        double cost_usd;
} LedgerRow;

/* error 0: rows/records are the answer (owned by the ledger: valid during
 * the call). Else -errno, and problem says what is wrong with the database
 * in a sentence for a person. -ECANCELED when the ledger is being freed. */
typedef void (*LedgerSummaryCallback)(int error, const char *problem, const LedgerRow *rows, size_t n,
                                      void *userdata);
typedef void (*LedgerRecentCallback)(int error, const char *problem, const LedgerRecord *records, size_t n,
                                     void *userdata);
/* The database became usable or unusable (problem NULL: usable). */
typedef void (*LedgerStateCallback)(const char *problem, void *userdata);

/* Starts the thread, which opens (creating, migrating) path in the
 * background. */
int ledger_new(sd_event *e, const char *path, Ledger **ret);
/* Opens (and migrates) the database on the thread. Not in ledger_new():
 * a second instance that will not get the bus name must not touch it. */
void ledger_start(Ledger *l);
/* Writes what is queued (the thread finishes its batch), stops the thread. */
Ledger *ledger_free(Ledger *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ledger *, ledger_free);

void ledger_set_state_callback(Ledger *l, LedgerStateCallback cb, void *userdata);

/* Copies rec and queues it. Only allocates and takes a mutex: safe and
 * cheap on the loop. -ENOMEM. */
int ledger_book(Ledger *l, const LedgerRecord *rec);

/* group: LEDGER_GROUP_* bits (0: one total row). f is copied. */
int ledger_summary(Ledger *l, unsigned group, const LedgerFilter *f, LedgerSummaryCallback cb, void *userdata);
/* Newest first, at most limit (1..LEDGER_RECENT_MAX). */
int ledger_recent(Ledger *l, unsigned limit, const LedgerFilter *f, LedgerRecentCallback cb, void *userdata);

/* Writes data to path atomically (mode 0600) on the ledger's thread, in
 * order with its other jobs: for small settings files (budgets). */
int ledger_write_file(Ledger *l, const char *path, const char *data);

/* NULL while the database works, else why not (a sentence). Valid until the
 * next return to the loop. */
const char *ledger_problem(Ledger *l);
/* Records booked but not written yet (kept in memory). */
unsigned ledger_unbooked(Ledger *l);
/* Jobs queued or running (tests, benchmarks). */
unsigned ledger_pending(Ledger *l);
