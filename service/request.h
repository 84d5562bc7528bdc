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
#include "chat-wire.h"
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

typedef struct HttpRequest HttpRequest;
typedef struct Request Request;

struct Request {
        Chat *chat;
        Context *context;
        Request *prev, *next; /* in the Chat's active or ended list */

        uint64_t id;
        char *path;              /* NULL for Complete: no object, no signals */
        char *owner;             /* unique bus name of the caller */
        sd_bus_message *complete; /* Complete: the call still to be answered */
        sd_bus_slot *slot;       /* the exported object */
        RequestState state;
        bool owner_gone;

        /* What was asked. */
        char **models;           /* the model, then the fallbacks */
        size_t n_models;
        size_t model_idx;
        ChatMessage *messages;   /* roles are static strings, contents owned */
        size_t n_messages;
        RequestOptions options;

        /* The current attempt. */
        HttpRequest *http;
        ChatStream *stream;
        ChatApi api;
        char *body;              /* JSON for models[model_idx], built on first use */
        unsigned attempts_model; /* attempts on the current model */
        unsigned attempts;       /* attempts in all */
        bool draining;           /* ended; the transfer may still finish cleanly */

        sd_event_source *retry_timer;
        sd_event_source *deadline_timer;
        sd_event_source *flush_timer;
        sd_event_source *linger_timer;

        /* The answer. */
        char *text;
        size_t text_len, text_alloc;
        size_t text_sent;        /* bytes already sent as Delta */
        char *answered_model;
        ChatStopReason stop_reason;
        ChatUsage usage;
        uint64_t start_usec, first_delta_usec, end_usec;

        /* The failure to report if nothing better comes. */
        const char *error_name;
        char *error_message;
};

/* Takes ownership of models, messages (and their contents) and options,
 * also when it fails. */
int request_new(Chat *ch, Context *c, uint64_t id, const char *owner, sd_bus_message *complete, char **models,
                ChatMessage *messages, size_t n_messages, RequestOptions *options, Request **ret);
/* Cancels a running transfer, unexports, frees. */
Request *request_free(Request *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free);

/* Exports the object (Start only). */
int request_export(Request *r);
/* Starts the first attempt. Failures are reported through the request's
 * own signals/reply, so this cannot fail. */
void request_start(Request *r);
/* Owner asked (notify: send Failed) or the owner left the bus (no signal). */
void request_cancel(Request *r, bool notify);
/* The service is stopping: tell the caller, without further bookkeeping. */
void request_notify_shutdown(Request *r);
bool request_is_active(const Request *r);

extern const sd_bus_vtable request_vtable[];

/* chat.c's side: called once when a request reached its end state. */
void chat_request_ended(Chat *ch, Request *r);
uint64_t chat_backoff_base_usec(Chat *ch);
