/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Usage: the ledger (service/ledger.c) on the bus, who the
 * calling app is, and budgets per app.
 *
 * A request path (Chat now; the Endpoint later, with via "endpoint" and
 * the token's app) uses it in three steps:
 *
 *   r = usage_caller_app(u, m, &app, error);   // D-Bus callers only
 *   if (r < 0) return r;                       // error set
 *   if (r == 0) return 1;                      // parked: m is dispatched again
 *   r = usage_admit(u, app, estimate_usd, error);  // BudgetExceeded
 *   ... the request runs ...
 *   usage_book(u, app, estimate_usd, &record);  // reached the gateway
 *   usage_release(u, app, estimate_usd);        // ended before it did
 *
 * usage_caller_app() asks the bus daemon for the caller's pid
 * asynchronously (GetConnectionCredentials; sd_bus_query_sender_creds()
 * would block), derives the app (service/proc-app.h), caches it per unique
 * name until the name goes, and re-queues the call with
 * sd_bus_enqueue_for_read(). It also parks calls until the budgets' spending
 * has been read from the database at start.
 */
#pragma once

#include "bankr-llmd.h"
#include "ledger.h"


typedef struct Usage Usage;

/* Opens the ledger at $XDG_STATE_HOME/bankr-llm/usage.db (default
 * ~/.local/state) and reads budgets from $XDG_CONFIG_HOME/bankr-llm/budgets.json.
 * polkit may be NULL (SetBudget then fails closed). */
int usage_new(sd_event *e, sd_bus *bus, struct Polkit *polkit, const char *config_dir, Usage **ret);
/* Opens the database and reads back the current periods' spending; once
 * the bus name is ours (a second instance must not touch the database).
 * Calls are parked until the spending is known. */
int usage_start(Usage *u);
Usage *usage_free(Usage *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Usage *, usage_free);
extern const sd_bus_vtable usage_vtable[];

/* 1 and the caller's app (valid until the next return to the loop); 0 when
 * m was parked and will be dispatched again; <0 with error set. */
int usage_caller_app(Usage *u, sd_bus_message *m, const char **ret_app, sd_bus_error *error);

/* Counts estimate_usd as in flight for app, or refuses with BudgetExceeded
 * (error set, <0) when its budget is spent (budget.h: budget_may_start). */
int usage_admit(Usage *u, const char *app, double estimate_usd, sd_bus_error *error);
/* Books one request that reached the gateway (rec->app is used when app is
 * NULL) and releases its estimate. Never fails: trouble with the database
 * is logged and the record kept (ledger.h). */
void usage_book(Usage *u, double estimate_usd, const LedgerRecord *rec);
/* The request ended before anything was sent: release its estimate. */
void usage_release(Usage *u, const char *app, double estimate_usd);

/* The ledger (benchmarks, tests). */
Ledger *usage_ledger(Usage *u);
