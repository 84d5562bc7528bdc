/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one Context, shared by every interface module. Each module
 * owns an opaque object hung off the Context (models, credits, chat, …) and
 * exports its vtable; main.c wires them onto /bot/bankr/LLM1.
 */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bankr-names.h"
#include "chat-request.h"
#include "util.h"

typedef struct Keys Keys;       /* key.c: key sources and resolution */
typedef struct Keyring Keyring; /* keyring.c: Secret Service worker thread */
typedef struct Http Http;       /* http.c: libcurl multi on sd-event */
typedef struct Models Models;   /* models.c */
typedef struct Credits Credits; /* credits.c */
typedef struct Topup Topup;     /* topup.c */
typedef struct Chat Chat;       /* chat.c + request.c */
typedef struct Setup Setup;     /* setup.c */
typedef struct Images Images;   /* images.c */
typedef struct Polkit Polkit;   /* polkit.c */
typedef struct Endpoint Endpoint; /* endpoint.c + tokens.c */
typedef struct Usage Usage;     /* usage.c + ledger.c */
struct LedgerRecord;

typedef struct Context {
        sd_event *event;
        sd_bus *bus;

        /* Paths, resolved once at start from HOME/XDG_* and BANKR_CONFIG. */
        char *config_path;   /* ~/.bankr/config.json */
        char *cache_dir;     /* $XDG_CACHE_HOME/bankr-llm */
        char *state_dir;     /* $XDG_CONFIG_HOME/bankr-llm (our own settings) */
        char *catalog_path;  /* fallback model catalog (data/models.json) */

        Keys *keys;
        Keyring *keyring;
        Http *http;
        Models *models;
        Credits *credits;
        Topup *topup;
        Chat *chat;
        Setup *setup;
        Images *images;
        Polkit *polkit;
        Endpoint *endpoint;
        Usage *usage;
} Context;

/* The Context's accessors (context.c, from key.c's state).
 *
 * The LLM key in use (resolution order of dbus-api.md), or NULL. Secret:
 * never log it. Valid until the next return to the event loop. */
const char *context_llm_key(Context *c);
/* The agent API key (BANKR_API_KEY → keyring api → apiKey), or NULL. */
const char *context_api_key(Context *c);
/* Normalised gateway base URL (no trailing slash, no /v1). Never NULL. */
const char *context_gateway_url(Context *c);
/* Normalised agent API base URL. Never NULL. */
const char *context_api_url(Context *c);
/* The local endpoint's base URL (Endpoint.Url, "http://127.0.0.1:PORT"),
 * or NULL while it is not listening (endpoint.c's). setup.c uses it for
 * the "endpoint" key mode. */
const char *context_endpoint_url(Context *c);
/* Chat.DefaultPrivacy (chat.c's, persisted): the weakest tier any request
 * of ours is sent at; chat requests and the endpoint's traffic are raised
 * to it (the stronger tier wins). CHAT_PRIVACY_STANDARD before Chat exists. */
ChatPrivacy context_default_privacy(Context *c);

/* The Context's events (context.c): a module tells the Context, and the
 * Context tells the modules that react. No module calls another sideways.
 *
 * key.c: the resolved key or URLs changed; Models and Credits refetch (or
 * stop fetching). */
void context_key_changed(Context *c);
/* request.c (and the endpoint): the gateway answered a chat request with
 * this HTTP status and error (type and message from the body, may be NULL);
 * Credits reacts to a 402 that means the balance ran out (exhausted at once,
 * without another call), not to one of type daily_budget_exceeded (the
 * balance is fine; gateway_failure_for_402() in common/retry-policy.h). */
void context_gateway_status(Context *c, long status, const char *type, const char *message);
/* request.c (and the endpoint): the gateway said model is deprecated
 * (X-Model-Deprecated) or retired (410), with its replacement (may be NULL).
 * Models records it in its dicts and emits ModelDeprecated once per model. */
void context_model_deprecated(Context *c, const char *model, const char *replacement);
/* chat.c: a request that reached the gateway ended; Credits schedules one
 * coalesced refresh. */
void context_request_finished(Context *c);
/* topup.c: the agent API answered a top-up with the new balance; Credits
 * moves Balance/State/UpdatedAt at once. */
void context_balance_known(Context *c, double balance_usd);
/* key.c's Key.Validate: asks the gateway (the credits endpoint, through
 * Credits) and replies to m with (b ok, s message) later. Returns 1, or <0
 * with error set. */
int context_validate_key(Context *c, sd_bus_message *m, sd_bus_error *error);

/* chat.c (the Endpoint later, with its token's app instead): the app the
 * caller of m is booked under. 1 and the app (valid until the next return
 * to the loop); 0 when m was parked and is dispatched again once the bus
 * daemon has said who it is (the handler must return 1); <0 with error set.
 * Without a ledger: 1 and "unknown". */
int context_caller_app(Context *c, sd_bus_message *m, const char **ret_app, sd_bus_error *error);
/* chat.c: may a request of app for model start, within the app's budget?
 * Its estimate (from the model's pricing, input_bytes and max_tokens, 0:
 * the model's output limit) is counted in flight and returned, or the call
 * is refused with BudgetExceeded (<0, error set). */
int context_request_admit(Context *c, const char *app, const char *model, uint64_t input_bytes, uint32_t max_tokens,
                          double *ret_estimate, sd_bus_error *error);
/* chat.c: an admitted request ended. rec (NULL when nothing reached the
 * gateway) is booked in the ledger; the estimate is released. */
void context_request_booked(Context *c, const char *app, double estimate_usd, const struct LedgerRecord *rec);

/* sd-bus.h and sd-event.h already provide sd_bus_message_unrefp() & co. */
