/* SPDX-License-Identifier: MIT */
/*
 * One chat request: its object at /bot/bankr/LLM1/request/<n> (interface
 * bot.bankr.LLM1.Request), its upstream attempts (retries with backoff,
 * then the fallback models), the streamed answer turned into Delta,
 * Finished and Failed signals sent to the caller alone, and the info dict.
 * chat.c validates calls, creates requests and keeps the books (limits,
 * owners, ActiveRequests, linger); this file does everything in between.
 */
#pragma once

#include "bankr-llmd.h"
#include "ledger.h"
#include "chat-request.h"
#include "chat-stream.h"
#include "retry-policy.h"

/* The settled numbers of dbus/bot.bankr.LLM1.xml; those of retries are in
 * retry-policy.h. */
#define CHAT_LINGER_USEC_DEFAULT (30 * USEC_PER_SEC)
/* Text kept per request: beyond this the answer fails with LimitExceeded
 * (a D-Bus message must still be able to carry it in Complete's reply). */
#define CHAT_TEXT_MAX ((size_t) 32U * 1024U * 1024U)
/* Error bodies of non-2xx answers are read up to this size. */
#define CHAT_ERROR_BODY_MAX ((size_t) 256U * 1024U)
/* Held deltas are retried this often while the bus's write queue is long. */
#define CHAT_FLUSH_RETRY_USEC (2 * USEC_PER_MSEC)
/* Outgoing bus messages queued in our process above which deltas are held
 * back and merged rather than sent one by one. */
#define CHAT_BUS_QUEUE_HIGH 64U

#define CHAT_API_AUTO (-1)

typedef struct RequestOptions {
        char *system;
        uint32_t max_tokens;  /* 0: unset */
        double temperature;   /* NAN: unset */
        double top_p;         /* NAN: unset */
        char **stop;
        int api;              /* CHAT_API_AUTO or a ChatApi */
        char **fallback_models;
        uint64_t timeout_usec;
        uint64_t connect_timeout_usec;
        uint64_t first_byte_timeout_usec;
        uint64_t idle_timeout_usec;
        uint64_t backoff_base_usec; /* set by chat.c, not by the caller */
        ChatPrivacy privacy;  /* the stronger of the option and Chat.DefaultPrivacy (chat.c) */
        bool follow_replacement; /* a 410 retries once with the model's replacement */
        ChatImage *images;    /* sorted by message index; data owned (image_data) */
        void **image_data;
        size_t n_images, n_images_allocated, n_image_data_allocated;
} RequestOptions;

void request_options_done(RequestOptions *o);

typedef enum RequestState {
        REQUEST_PENDING,
        REQUEST_STREAMING,
        REQUEST_FINISHED,
        REQUEST_FAILED,
        REQUEST_CANCELLED,
        _REQUEST_STATE_MAX,
} RequestState;

const char *request_state_to_string(RequestState s);

typedef struct Request Request;

/* The links of the list a request is in: chat.c's books, kept in the
 * request so that moving it between lists costs no allocation. */
typedef struct RequestLink {
        Request *prev, *next;
} RequestLink;

/* Called once when a request reached its end state (its owner keeps the books). */
typedef void (*RequestEndedFn)(Request *req, void *userdata);
/* The linger time set by request_linger() is over. */
typedef void (*RequestLingerFn)(Request *req, void *userdata);

/* Takes ownership of models, messages (and their contents) and options,
 * also when it fails. */
int request_new(Context *c, uint64_t id, const char *owner, sd_bus_message *complete, char **models,
                ChatMessage *messages, size_t n_messages, RequestOptions *options, Request **ret);
/* on_ended(req, userdata) runs once, when the request reaches its end state. */
void request_set_on_ended(Request *req, RequestEndedFn on_ended, void *userdata);
/* Cancels a running transfer, unexports, frees. */
Request *request_free(Request *req);
DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free);

/* Exports the object (Start only). */
int request_export(Request *req);
/* Starts the first attempt. Failures are reported through the request's
 * own signals/reply, so this cannot fail. */
void request_start(Request *req);
/* Owner asked (notify: send Failed) or the owner left the bus (no signal). */
void request_cancel(Request *req, bool notify);
/* The service is stopping: tell the caller, without further bookkeeping. */
void request_notify_shutdown(Request *req);
bool request_is_active(const Request *req);

uint64_t request_get_id(const Request *req);
/* The object path (NULL for Complete) and the caller's unique name. */
const char *request_get_path(const Request *req);
const char *request_get_owner(const Request *req);
/* Attempts sent to the gateway, in all (0: it never reached it). */
unsigned request_get_attempts(const Request *req);
/* Who the ledger books it under, and its in-flight estimate (usage.h). */
int request_set_app(Request *req, const char *app, double estimate_usd);
const char *request_get_app(const Request *req);
double request_get_estimate(const Request *req);
/* The ledger's record of an ended request (via "dbus"): the same numbers as
 * its Finished info. Strings are borrowed from req. */
void request_get_record(const Request *req, LedgerRecord *ret);
RequestLink *request_get_link(Request *req);
/* An ended request stays readable for usec (0: goes at the next loop
 * iteration, never at once), then on_done(req, userdata) runs. */
int request_linger(Request *req, uint64_t usec, RequestLingerFn on_done, void *userdata);
/* The owner left the bus: nobody can read the ended request any more, so
 * a lingering one goes at once. */
void request_forget_owner(Request *req);
bool request_owner_is_gone(const Request *req);

extern const sd_bus_vtable request_vtable[];

