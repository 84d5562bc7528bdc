/* SPDX-License-Identifier: MIT */
/*
 * One chat request, from the first upstream attempt to the last signal; see
 * request.h. The answer is accumulated in Text; Delta signals carry the part
 * of Text not sent yet, so merging deltas under load can neither reorder,
 * drop nor duplicate anything.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <sys/random.h>

#include <ctype.h>
#include <strings.h>
#include <time.h>

#include "chat-cost.h"
#include "http-error.h"
#include "json-util.h"
#include "gateway.h"
#include "http.h"
#include "keyfmt.h"
#include "log.h"
#include "model-list.h"
#include "models.h"
#include "request.h"
#include "utf8.h"

struct Request {
        Context *context;
        RequestLink link; /* in the Chat's active or ended list */
        RequestEndedFn on_ended;
        void *on_ended_userdata;
        RequestLingerFn on_linger_done;
        void *on_linger_userdata;

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

        /* What the gateway said about privacy and the model (headers). */
        ChatPrivacy privacy_tier; /* X-Privacy-Tier of the last answer, _CHAT_PRIVACY_INVALID: none */
        bool deprecated;          /* X-Model-Deprecated: true on the answer */
        char *replacement;        /* X-Model-Replacement, checked as a model id */
        bool followed;            /* a 410's replacement was taken already */
        bool privacy_downgraded;  /* the answer came at a weaker tier: aborted */

        /* The failure to report if nothing better comes. */
        const char *error_name;
        char *error_message;

        /* The ledger: who asked, what it may cost while in flight, what it
         * did cost (computed once at the end: info and record agree), and
         * the error it ended with (NULL when finished). */
        char *app;
        double estimate_usd;
        double cost_usd;
        const char *end_error;
};

static const char *const request_state_table[_REQUEST_STATE_MAX] = {
        [REQUEST_PENDING] = "pending",
        [REQUEST_STREAMING] = "streaming",
        [REQUEST_FINISHED] = "finished",
        [REQUEST_FAILED] = "failed",
        [REQUEST_CANCELLED] = "cancelled",
};

DEFINE_STRING_TABLE_TO_STRING(request_state, RequestState, "unknown");

void request_options_done(RequestOptions *o) {
        for (size_t i = 0; o->image_data && i < o->n_images; i++)
                free(o->image_data[i]);
        o->image_data = mfree(o->image_data);
        o->images = mfree(o->images);
        o->n_images = o->n_images_allocated = o->n_image_data_allocated = 0;
        o->system = mfree(o->system);
        o->stop = strv_free(o->stop);
        o->fallback_models = strv_free(o->fallback_models);
}

bool request_is_active(const Request *req) {
        return req->state == REQUEST_PENDING || req->state == REQUEST_STREAMING;
}

static const char *request_model(const Request *req) {
        return req->models[req->model_idx];
}

uint64_t request_get_id(const Request *req) {
        return req->id;
}

const char *request_get_path(const Request *req) {
        return req->path;
}

const char *request_get_owner(const Request *req) {
        return req->owner;
}

unsigned request_get_attempts(const Request *req) {
        return req->attempts;
}

RequestLink *request_get_link(Request *req) {
        return &req->link;
}

bool request_owner_is_gone(const Request *req) {
        return req->owner_gone;
}

void request_set_on_ended(Request *req, RequestEndedFn on_ended, void *userdata) {
        req->on_ended = on_ended;
        req->on_ended_userdata = userdata;
}

/* The end state is reached: the owner of the books hears of it once. */
static void request_ended(Request *req) {
        if (req->on_ended)
                req->on_ended(req, req->on_ended_userdata);
}

static int on_linger_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *req = userdata;

        if (req->on_linger_done)
                req->on_linger_done(req, req->on_linger_userdata);
        return 0;
}

int request_linger(Request *req, uint64_t usec, RequestLingerFn on_done, void *userdata) {
        req->on_linger_done = on_done;
        req->on_linger_userdata = userdata;
        return sd_event_add_time_relative(req->context->event, &req->linger_timer, CLOCK_MONOTONIC, usec, 0,
                                          on_linger_timer, req);
}

void request_forget_owner(Request *req) {
        if (!req->linger_timer)
                return;
        req->owner_gone = true;
        (void) sd_event_source_set_time_relative(req->linger_timer, 0);
}

/* ---- lifetime ---------------------------------------------------------- */

int request_new(Context *c, uint64_t id, const char *owner, sd_bus_message *complete, char **models,
                ChatMessage *messages, size_t n_messages, RequestOptions *options, Request **ret) {
        Request *req;

        req = calloc(1, sizeof(Request));
        if (!req) {
                strv_free(models);
                chat_messages_free(messages, n_messages);
                request_options_done(options);
                return -ENOMEM;
        }
        /* Owned from here on, whatever happens next. */
        req->models = models;
        req->n_models = strv_length(models);
        req->messages = messages;
        req->n_messages = n_messages;
        req->options = *options;
        *options = (RequestOptions) {};

        req->context = c;
        req->id = id;
        req->state = REQUEST_PENDING;
        req->stop_reason = CHAT_STOP_NONE;
        req->privacy_tier = _CHAT_PRIVACY_INVALID;
        req->owner = strdup(owner);
        if (!req->owner || req->n_models == 0 ||
            (!complete && asprintf(&req->path, REQUEST_PATH_PREFIX "/%" PRIu64, id) < 0)) {
                req->path = NULL;
                request_free(req);
                return -ENOMEM;
        }
        if (complete)
                req->complete = sd_bus_message_ref(complete);
        *ret = req;
        return 0;
}

static void request_release_http(Request *req) {
        req->http = http_request_free(req->http);
        req->stream = chat_stream_free(req->stream);
        req->draining = false;
}

Request *request_free(Request *req) {
        if (!req)
                return NULL;
        request_release_http(req);
        sd_event_source_disable_unref(req->retry_timer);
        sd_event_source_disable_unref(req->deadline_timer);
        sd_event_source_disable_unref(req->flush_timer);
        sd_event_source_disable_unref(req->linger_timer);
        sd_bus_slot_unref(req->slot);
        sd_bus_message_unref(req->complete);
        chat_messages_free(req->messages, req->n_messages);
        strv_free(req->models);
        request_options_done(&req->options);
        free(req->body);
        free(req->text);
        free(req->answered_model);
        free(req->replacement);
        free(req->error_message);
        free(req->owner);
        free(req->path);
        free(req->app);
        free(req);
        return NULL;
}

int request_set_app(Request *req, const char *app, double estimate_usd) {
        req->estimate_usd = estimate_usd;
        return free_and_strdup(&req->app, app);
}

const char *request_get_app(const Request *req) {
        return req->app;
}

double request_get_estimate(const Request *req) {
        return req->estimate_usd;
}

/* ---- signals ----------------------------------------------------------- */

/* Every signal of a request goes to its caller alone. */
static int request_new_signal(Request *req, const char *interface, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        k = sd_bus_message_new_signal(req->context->bus, &m, req->path, interface, member);
        if (k < 0)
                return k;
        k = sd_bus_message_set_destination(m, req->owner);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(m);
        return 0;
}

static void request_emit_properties_changed(Request *req, bool model, bool state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        if (!req->path || req->owner_gone)
                return;
        k = request_new_signal(req, "org.freedesktop.DBus.Properties", "PropertiesChanged", &m);
        if (k >= 0)
                k = sd_bus_message_append(m, "s", IFACE_REQUEST);
        if (k >= 0)
                k = sd_bus_message_open_container(m, 'a', "{sv}");
        if (k >= 0 && model)
                k = sd_bus_message_append(m, "{sv}", "Model", "s", request_model(req));
        if (k >= 0 && state)
                k = sd_bus_message_append(m, "{sv}", "State", "s", request_state_to_string(req->state));
        if (k >= 0)
                k = sd_bus_message_close_container(m);
        if (k >= 0)
                k = sd_bus_message_append(m, "as", 0);
        if (k >= 0)
                k = sd_bus_send(NULL, m, NULL);
        if (k < 0)
                log_warning_errno(k, "Failed to emit PropertiesChanged for %s: %m", req->path);
}

static void request_set_state(Request *req, RequestState s) {
        if (req->state == s)
                return;
        req->state = s;
        request_emit_properties_changed(req, false, true);
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* Sends the part of Text not sent yet as one Delta. Unless forced, holds it
 * back while our outgoing bus queue is long, so a slow bus merges deltas
 * instead of piling up messages. */
static void request_flush(Request *req, bool force) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        size_t n = req->text_len - req->text_sent;
        char *p;
        int k;

        if (n == 0)
                return;
        if (!req->path || req->owner_gone) {
                req->text_sent = req->text_len;
                return;
        }
        if (!force) {
                uint64_t queued = 0;
                (void) sd_bus_get_n_queued_write(req->context->bus, &queued);
                if (queued > CHAT_BUS_QUEUE_HIGH) {
                        if (!req->flush_timer)
                                k = sd_event_add_time_relative(req->context->event, &req->flush_timer, CLOCK_MONOTONIC,
                                                               CHAT_FLUSH_RETRY_USEC, 1, on_flush_timer, req);
                        else {
                                k = sd_event_source_set_time_relative(req->flush_timer, CHAT_FLUSH_RETRY_USEC);
                                if (k >= 0)
                                        k = sd_event_source_set_enabled(req->flush_timer, SD_EVENT_ONESHOT);
                        }
                        if (k >= 0)
                                return;
                        /* No timer: send now rather than stall. */
                }
        }
        if (req->flush_timer)
                (void) sd_event_source_set_enabled(req->flush_timer, SD_EVENT_OFF);

        k = request_new_signal(req, IFACE_REQUEST, "Delta", &m);
        if (k >= 0)
                k = sd_bus_message_append_string_space(m, n, &p);
        if (k >= 0) {
                memcpy(p, req->text + req->text_sent, n);
                k = sd_bus_send(NULL, m, NULL);
        }
        if (k < 0) {
                /* Keep it for the next try: nothing may be dropped. */
                log_warning_errno(k, "Failed to send a Delta for %s: %m", req->path);
                return;
        }
        req->text_sent = req->text_len;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        request_flush(userdata, false);
        return 0;
}

/* The record of a model id, also when it carries a ":zdr"/":private"
 * suffix: privacy is a routing constraint, not part of the model. */
static const Model *request_find_model(Request *req, const char *id) {
        _cleanup_free_ char *bare = NULL;
        size_t n;

        if (!id)
                return NULL;
        (void) chat_privacy_from_model_suffix(id, &n);
        if (n == strlen(id))
                return models_find(req->context->models, id);
        bare = strndup(id, n);
        return bare ? models_find(req->context->models, bare) : NULL;
}

/* The tier the current attempt asks for: the option (already raised to
 * Chat.DefaultPrivacy), the model's suffix and the URL's tier endpoint. */
static ChatPrivacy request_expected_privacy(Request *req) {
        ChatPrivacy p = req->options.privacy;

        p = chat_privacy_max(p, chat_privacy_from_model_suffix(request_model(req), NULL));
        return chat_privacy_max(p, chat_privacy_from_url(context_gateway_url(req->context)));
}

static double usec_to_ms(uint64_t a, uint64_t b) {
        return b > a ? (double) (b - a) / USEC_PER_MSEC : 0.0;
}

/* What the usage the gateway reported costs, once at the end, so that the
 * Finished info and the ledger's record carry the same number. */
static void request_settle_cost(Request *req) {
        const Model *rec;

        /* Price by the id we asked for (the record we know), else by the
         * answered one. */
        rec = request_find_model(req, request_model(req));
        if (!rec && req->answered_model)
                rec = request_find_model(req, req->answered_model);
        req->cost_usd = rec ? chat_cost_usd(&req->usage, rec->price_input, rec->price_output, rec->price_cache_read,
                                            rec->price_cache_write)
                            : 0.0;
}

void request_get_record(const Request *req, LedgerRecord *ret) {
        *ret = (LedgerRecord) {
                .time = now_usec(CLOCK_REALTIME),
                .app = req->app ?: (char *) "unknown",
                .via = (char *) "dbus",
                .model = req->answered_model ?: req->models[req->model_idx],
                .status = (char *) request_state_to_string(req->state),
                .error = (char *) strempty(req->end_error),
                .input_tokens = req->usage.input,
                .output_tokens = req->usage.output,
                .cache_read_tokens = req->usage.cache_read,
                .cache_write_tokens = req->usage.cache_write,
                .cost_usd = req->cost_usd,
                .latency_first_ms = req->first_delta_usec ? usec_to_ms(req->start_usec, req->first_delta_usec) : 0.0,
                .latency_total_ms = usec_to_ms(req->start_usec, req->end_usec),
                .attempts = req->attempts,
                .privacy_tier = (char *) (req->privacy_tier >= 0 ? chat_privacy_to_string(req->privacy_tier) : ""),
        };
}

/* The one place the info dict of Finished and Complete is assembled; the
 * ledger's record (request_get_record()) carries the same numbers. */
static int request_append_info(Request *req, sd_bus_message *m) {
        const char *id = req->answered_model ?: request_model(req);
        double cost = req->cost_usd;
        int k;

        k = sd_bus_message_open_container(m, 'a', "{sv}");
        if (k < 0)
                return k;
        k = sd_bus_message_append(m, "{sv}{sv}{sv}",
                                  "privacy_tier", "s",
                                  req->privacy_tier >= 0 ? chat_privacy_to_string(req->privacy_tier) : "",
                                  "deprecated", "b", req->deprecated,
                                  "replacement", "s", strempty(req->replacement));
        if (k < 0)
                return k;
        k = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                  "model", "s", id,
                                  "stop_reason", "s", chat_stop_reason_to_string(req->stop_reason),
                                  "input_tokens", "u", (uint32_t) MIN(req->usage.input, UINT32_MAX),
                                  "output_tokens", "u", (uint32_t) MIN(req->usage.output, UINT32_MAX),
                                  "cache_read_tokens", "u", (uint32_t) MIN(req->usage.cache_read, UINT32_MAX),
                                  "cache_write_tokens", "u", (uint32_t) MIN(req->usage.cache_write, UINT32_MAX),
                                  "cost_usd", "d", cost,
                                  "attempts", "u", (uint32_t) req->attempts,
                                  "latency_first_ms", "d",
                                  req->first_delta_usec ? usec_to_ms(req->start_usec, req->first_delta_usec) : 0.0,
                                  "latency_total_ms", "d", usec_to_ms(req->start_usec, req->end_usec));
        if (k < 0)
                return k;
        return sd_bus_message_close_container(m);
}

/* ---- the end ----------------------------------------------------------- */

static void request_stop_timers(Request *req) {
        if (req->retry_timer)
                (void) sd_event_source_set_enabled(req->retry_timer, SD_EVENT_OFF);
        if (req->deadline_timer)
                (void) sd_event_source_set_enabled(req->deadline_timer, SD_EVENT_OFF);
        if (req->flush_timer)
                (void) sd_event_source_set_enabled(req->flush_timer, SD_EVENT_OFF);
}

static void request_finish(Request *req) {
        const char *answered;
        int k;

        if (!request_is_active(req))
                return;
        req->end_usec = now_usec(CLOCK_MONOTONIC);
        req->stop_reason = chat_stream_get_stop_reason(req->stream);
        chat_stream_get_usage(req->stream, &req->usage);
        answered = chat_stream_get_model(req->stream);
        /* Only a name the bus can carry: one broken byte would make info
         * unsendable, and the caller would never hear the end. */
        if (answered && utf8_is_valid_n(answered, strlen(answered))) {
                /* A text from the gateway like any other: it may quote the key. */
                char *clean = key_redact(answered, context_llm_key(req->context));
                if (clean) {
                        free(req->answered_model);
                        req->answered_model = clean;
                }
        }
        request_settle_cost(req);
        request_stop_timers(req);
        request_flush(req, true);
        /* The stream may still be closing cleanly: let it, so the connection
         * can be reused (it is cut when the object goes away). */
        req->draining = req->http != NULL;

        log_debug("Request %" PRIu64 " (%s) finished: %zu bytes, %u attempt(s), %.1f ms.", req->id, request_model(req),
                  req->text_len, req->attempts, usec_to_ms(req->start_usec, req->end_usec));

        if (req->complete) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                k = sd_bus_message_new_method_return(req->complete, &reply);
                if (k >= 0)
                        k = sd_bus_message_append(reply, "s", strempty(req->text));
                if (k >= 0)
                        k = request_append_info(req, reply);
                if (k >= 0)
                        k = sd_bus_send(NULL, reply, NULL);
                if (k < 0) {
                        log_warning_errno(k, "Failed to answer Complete: %m");
                        /* Never leave the call unanswered. */
                        (void) sd_bus_reply_method_errorf(req->complete, BUS_ERROR_GATEWAY_ERROR,
                                                          "The answer could not be sent over the bus: %s",
                                                          strerror(-k));
                }
                req->complete = sd_bus_message_unref(req->complete);
        }

        req->state = REQUEST_FINISHED;
        if (req->path && !req->owner_gone) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                request_emit_properties_changed(req, false, true);
                k = request_new_signal(req, IFACE_REQUEST, "Finished", &m);
                if (k >= 0)
                        k = request_append_info(req, m);
                if (k >= 0)
                        k = sd_bus_send(NULL, m, NULL);
                if (k < 0)
                        log_warning_errno(k, "Failed to emit Finished for %s: %m", req->path);
        }
        request_ended(req);
}

/* Ends the request with an error. name is a bus error name; message a
 * sentence (never containing the key). */
static void request_fail_full(Request *req, RequestState state, const char *name, const char *message) {
        bool partial = req->text_len > 0;
        int k;

        if (!request_is_active(req))
                return;
        req->end_usec = now_usec(CLOCK_MONOTONIC);
        req->end_error = name;
        /* What the gateway reported before the end still costs. */
        if (req->stream)
                chat_stream_get_usage(req->stream, &req->usage);
        request_settle_cost(req);
        request_stop_timers(req);
        request_release_http(req);
        request_flush(req, true);

        if (state == REQUEST_CANCELLED)
                log_debug("Request %" PRIu64 " (%s) cancelled.", req->id, request_model(req));
        else
                log_info("Request %" PRIu64 " (%s) failed%s: %s", req->id, request_model(req),
                         partial ? " after streaming text" : "", message);

        if (req->complete) {
                k = sd_bus_reply_method_errorf(req->complete, name, "%s", message);
                if (k < 0)
                        log_warning_errno(k, "Failed to answer Complete: %m");
                req->complete = sd_bus_message_unref(req->complete);
        }

        req->state = state;
        if (req->path && !req->owner_gone) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                request_emit_properties_changed(req, false, true);
                k = request_new_signal(req, IFACE_REQUEST, "Failed", &m);
                if (k >= 0)
                        k = sd_bus_message_append(m, "ssb", name, message, partial);
                if (k >= 0)
                        k = sd_bus_send(NULL, m, NULL);
                if (k < 0)
                        log_warning_errno(k, "Failed to emit Failed for %s: %m", req->path);
        }
        request_ended(req);
}

static void request_fail(Request *req, const char *name, const char *message) {
        request_fail_full(req, REQUEST_FAILED, name, message);
}

static void request_fail_oom(Request *req) {
        request_fail(req, BUS_ERROR_GATEWAY_ERROR, "The service ran out of memory while handling the request.");
}

void request_cancel(Request *req, bool notify) {
        if (!notify)
                req->owner_gone = true;
        request_fail_full(req, REQUEST_CANCELLED, BUS_ERROR_CANCELLED, "The request was cancelled.");
}

void request_notify_shutdown(Request *req) {
        static const char msg[] = "bankr-llmd is stopping; the request was cancelled.";

        if (!request_is_active(req))
                return;
        request_release_http(req);
        if (req->complete) {
                (void) sd_bus_reply_method_errorf(req->complete, BUS_ERROR_CANCELLED, msg);
                req->complete = sd_bus_message_unref(req->complete);
        }
        if (req->path && !req->owner_gone) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                request_flush(req, true);
                req->state = REQUEST_CANCELLED;
                request_emit_properties_changed(req, false, true);
                if (request_new_signal(req, IFACE_REQUEST, "Failed", &m) >= 0 &&
                    sd_bus_message_append(m, "ssb", BUS_ERROR_CANCELLED, msg, req->text_len > 0) >= 0)
                        (void) sd_bus_send(NULL, m, NULL);
        }
        req->state = REQUEST_CANCELLED;
}

/* ---- errors ------------------------------------------------------------ */

/* Remembers the failure of this attempt as the one to report. */
static void request_note_error(Request *req, const char *name, const char *fmt, ...) _printf_(3, 4);
static void request_note_error(Request *req, const char *name, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) free_and_vasprintf(&req->error_message, fmt, ap);
        va_end(ap);
        req->error_name = name;
}

/* The final sentence: the last failure, plus what was tried. */
static void request_fail_noted(Request *req) {
        _cleanup_free_ char *msg = NULL, *tried = NULL;
        const char *base = req->error_message ?: "The request failed.";

        if (req->n_models > 1 && req->model_idx > 0) {
                size_t len = 0;
                for (size_t i = 0; i <= req->model_idx; i++)
                        len += strlen(req->models[i]) + 2;
                tried = malloc(len + 1);
                if (tried) {
                        tried[0] = 0;
                        for (size_t i = 0; i <= req->model_idx; i++) {
                                if (i > 0)
                                        strcat(tried, ", ");
                                strcat(tried, req->models[i]);
                        }
                }
        }
        if (tried)
                (void) asprintf(&msg, "%s (%u attempts in all, models tried: %s.)", base, req->attempts, tried);
        else if (req->attempts > 1)
                (void) asprintf(&msg, "%s (%u attempts.)", base, req->attempts);
        request_fail(req, req->error_name ?: BUS_ERROR_GATEWAY_ERROR, msg ?: base);
}

static int request_start_attempt(Request *req);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *req = userdata;
        int k;

        k = request_start_attempt(req);
        if (k < 0 && request_is_active(req))
                request_fail_noted(req);
        return 0;
}

static uint64_t backoff_usec(Request *req) {
        uint64_t jitter = 0;

        (void) getrandom(&jitter, sizeof jitter, GRND_NONBLOCK);
        return retry_backoff_usec(req->options.backoff_base_usec, req->attempts_model, jitter);
}

static int request_schedule_attempt(Request *req, uint64_t delay) {
        int k;

        if (!req->retry_timer)
                k = sd_event_add_time_relative(req->context->event, &req->retry_timer, CLOCK_MONOTONIC, delay, 1,
                                               on_retry_timer, req);
        else {
                k = sd_event_source_set_time_relative(req->retry_timer, delay);
                if (k >= 0)
                        k = sd_event_source_set_enabled(req->retry_timer, SD_EVENT_ONESHOT);
        }
        return k;
}

/* What to do after a failed attempt that streamed no text. The error has
 * been noted. retry_after: the server's wish in µs, or UINT64_MAX. */
static void request_attempt_failed(Request *req, Retry retry, uint64_t retry_after) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), delay, deadline = UINT64_MAX;
        int k;

        request_release_http(req);
        if (req->deadline_timer)
                (void) sd_event_source_get_time(req->deadline_timer, &deadline);

        if (retry == RETRY_YES) {
                delay = retry_after != UINT64_MAX ? retry_after : backoff_usec(req);
                if (retry_same_model(retry, req->attempts_model, retry_after, now, delay, deadline)) {
                        log_debug("Request %" PRIu64 ": attempt %u on %s failed (%s); retrying in %.0f ms.", req->id,
                                  req->attempts_model, request_model(req), strna(req->error_message),
                                  (double) delay / USEC_PER_MSEC);
                        k = request_schedule_attempt(req, delay);
                        if (k >= 0)
                                return;
                }
        }
        /* The same model again is out (attempts used up, a Retry-After
         * beyond the cap or past the deadline): on to the next one. */
        if (retry_next_model(retry, req->model_idx + 1 < req->n_models)) {
                log_info("Request %" PRIu64 ": %s failed (%s); falling back to %s.", req->id, request_model(req),
                         strna(req->error_message), req->models[req->model_idx + 1]);
                req->model_idx++;
                req->attempts_model = 0;
                req->body = mfree(req->body);
                request_emit_properties_changed(req, true, false);
                k = request_schedule_attempt(req, 0);
                if (k >= 0)
                        return;
        }
        request_fail_noted(req);
}

/* A transfer that ended without a usable answer: no response at all, or a
 * body cut short. */
static void request_transport_failed(Request *req, int error) {
        const char *what = http_request_get_error_message(req->http);
        const char *name = gateway_failure_to_bus_error(gateway_failure_for_transport(error, GATEWAY_ENDPOINT_CHAT));

        if (error == -ENOMEM)
                return request_fail_oom(req);
        if (req->text_len > 0) {
                request_note_error(req, name, "The answer was cut short after %zu bytes: %s", req->text_len,
                                   what ?: strerror(-error));
                return request_fail_noted(req);
        }
        if (error == -ETIMEDOUT)
                request_note_error(req, name, "The gateway at %s did not answer in time: %s",
                                   context_gateway_url(req->context), what ?: "timed out");
        else
                request_note_error(req, name, "Cannot reach the gateway at %s: %s", context_gateway_url(req->context),
                                   what ?: strerror(-error));
        request_attempt_failed(req, retry_for_transport(error), UINT64_MAX);
}

/* "Did you mean …?" from the model list, or "". */
static char *closest_models_hint(Request *req) {
        _cleanup_strv_free_ char **l = NULL;
        const ModelList *list = models_list(req->context->models);
        char *s = NULL;
        size_t len = 0;

        if (list)
                l = model_list_closest(list, request_model(req), 3);
        if (!l || !l[0])
                return strdup(" See \"bankr-llm models\" for the models available.");
        for (char **i = l; *i; i++)
                len += strlen(*i) + 4;
        s = malloc(len + 64);
        if (!s)
                return NULL;
        strcpy(s, " Did you mean ");
        for (char **i = l; *i; i++) {
                if (i != l)
                        strcat(s, i[1] ? ", " : " or ");
                strcat(s, "\"");
                strcat(s, *i);
                strcat(s, "\"");
        }
        strcat(s, "?");
        return s;
}

/* When a daily budget will let requests through again, if the gateway
 * says so: a Retry-After (wait, in µs), or a reset time in the error body
 * (resets_at / reset_at / resetAt, an ISO 8601 time or Unix seconds).
 * The documented budget is a trailing 24 hours without a reset time, so
 * usually there is none: then the sentence says how it works. */
static char *daily_budget_reset_hint(Request *req, const char *body, size_t len, uint64_t wait_usec) {
        static const char *const keys[] = { "resets_at", "reset_at", "resetAt", "resetsAt", "reset" };
        _cleanup_(json_object_putp) json_object *root = NULL;
        char *s = NULL;

        if (wait_usec != UINT64_MAX && wait_usec > 0) {
                uint64_t min = (wait_usec + 59 * USEC_PER_SEC) / (60 * USEC_PER_SEC);
                if (min < 120)
                        (void) asprintf(&s, "The gateway says it lets requests through again in about %" PRIu64
                                        " minute%s.", min, min == 1 ? "" : "s");
                else
                        (void) asprintf(&s, "The gateway says it lets requests through again in about %" PRIu64
                                        " hours.", (min + 30) / 60);
                return s;
        }
        if (len > 0 && len < CHAT_ERROR_BODY_MAX)
                root = json_tokener_parse(body);
        for (int pass = 0; root && pass < 2; pass++) {
                json_object *o = pass == 0 ? json_get(root, "error") : root, *v;
                if (!json_object_is_type(o, json_type_object))
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        if (!json_object_object_get_ex(o, keys[i], &v))
                                continue;
                        if (json_object_is_type(v, json_type_string)) {
                                _cleanup_free_ char *t = NULL;
                                const char *raw = json_object_get_string(v);
                                if (chat_error_sanitize_message(raw, strlen(raw), 64, &t) >= 0 && !isempty(t))
                                        (void) asprintf(&s, "The gateway says the budget resets at %s.", t);
                                return s;
                        }
                        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0) {
                                time_t t = (time_t) json_object_get_int64(v);
                                struct tm tm;
                                char buf[64];
                                if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm) > 0)
                                        (void) asprintf(&s, "The gateway says the budget resets at %s.", buf);
                                return s;
                        }
                }
        }
        (void) req;
        return strdup("The budget covers a trailing 24 hours: requests go through again as earlier spending ages out "
                      "of that window (\"bankr-llm credits\" shows the balance).");
}

/* A complete non-2xx answer. */
static void request_status_failed(Request *req, long status) {
        _cleanup_free_ char *type = NULL, *raw = NULL, *gw = NULL, *hint = NULL;
        uint64_t retry_after = UINT64_MAX, ra;
        const char *body, *name, *model = request_model(req);
        GatewayFailure failure;
        Retry retry;
        size_t len;
        int k;

        body = http_request_get_body(req->http, &len);
        k = chat_parse_error_body(body, len, &type, &raw);
        if (k < 0)
                return request_fail_oom(req);
        gw = key_redact(raw, context_llm_key(req->context));
        if (!gw)
                return request_fail_oom(req);
        k = http_parse_retry_after(http_request_get_header(req->http, "retry-after"),
                                   http_request_get_header(req->http, "retry-after-ms"), now_usec(CLOCK_REALTIME), &ra);
        if (k >= 0)
                retry_after = ra;
        else if (k == -ERANGE)
                retry_after = UINT64_MAX - 1; /* beyond any cap */

        /* Tolerant of where the gateway puts it: the type, or the code
         * next to another type. */
        const char *kind = status == 402 && memmem(body, len, "daily_budget_exceeded", 21) ? "daily_budget_exceeded" : type;
        context_gateway_status(req->context, status, kind, raw);
        retry = retry_for_status(status, kind, raw, &failure);
        name = gateway_failure_to_bus_error(failure);
        switch (failure) {
        case GATEWAY_FAILURE_DAILY_BUDGET: {
                _cleanup_free_ char *when = NULL;
                when = daily_budget_reset_hint(req, body, len, k >= 0 ? ra : UINT64_MAX);
                request_note_error(req, name,
                                   "Your daily spend budget for the Bankr LLM Gateway is used up (HTTP 402: %s). Your "
                                   "balance is not the problem, so a top-up does not help. %s You can raise or clear the "
                                   "budget at https://bankr.bot/llm.", gw, when ?: "");
                break;
        }
        case GATEWAY_FAILURE_MODEL_RETIRED:
                if (req->replacement && req->options.follow_replacement && !req->followed &&
                    !streq(req->replacement, model)) {
                        log_info("Request %" PRIu64 ": %s is retired; following its replacement %s.", req->id, model,
                                 req->replacement);
                        if (free_and_strdup(&req->models[req->model_idx], req->replacement) < 0)
                                return request_fail_oom(req);
                        req->followed = true;
                        req->attempts_model = 0;
                        req->body = mfree(req->body);
                        request_release_http(req);
                        request_emit_properties_changed(req, true, false);
                        if (request_schedule_attempt(req, 0) >= 0)
                                return;
                        return request_fail_oom(req);
                }
                if (req->replacement)
                        request_note_error(req, name,
                                           "The model \"%s\" is retired (HTTP 410: %s). Use its replacement \"%s\" "
                                           "instead, or pass the option follow_replacement to switch by itself.",
                                           model, gw, req->replacement);
                else
                        request_note_error(req, name,
                                           "The model \"%s\" is retired (HTTP 410: %s), and the gateway named no "
                                           "replacement. See \"bankr-llm models\" for the models available.", model, gw);
                retry_after = UINT64_MAX;
                break;
        case GATEWAY_FAILURE_PRIVACY:
                if (status == 422)
                        request_note_error(req, name,
                                           "No provider can serve %s at the privacy tier \"%s\" (HTTP 422: %s). The "
                                           "gateway never downgrades a tier: pick a model listed by \"bankr-llm models "
                                           "--%s\", or ask for a weaker tier.", model,
                                           chat_privacy_to_string(request_expected_privacy(req)), gw,
                                           request_expected_privacy(req) == CHAT_PRIVACY_PRIVATE ? "private" : "zdr");
                else
                        request_note_error(req, name,
                                           "The gateway refused the privacy tier of the request (HTTP %ld: %s). The "
                                           "gateway URL %s is a tier endpoint that only serves its own tier: remove the "
                                           "option privacy (and a :zdr/:private model suffix, and lower "
                                           "Chat.DefaultPrivacy), or set a gateway URL without the tier prefix.",
                                           status, gw, context_gateway_url(req->context));
                retry_after = UINT64_MAX;
                break;
        case GATEWAY_FAILURE_UNAUTHORIZED:
                request_note_error(req, name,
                                   "The gateway rejected the key (HTTP %ld: %s). Check it with \"bankr-llm key validate\" "
                                   "or set a new one with \"bankr-llm key set\".", status, gw);
                break;
        case GATEWAY_FAILURE_PAYMENT_REQUIRED:
                request_note_error(req, name,
                                   "Your Bankr LLM credits are exhausted (HTTP 402: %s). Add credits with "
                                   "\"bankr-llm credits add\" and try again.", gw);
                break;
        case GATEWAY_FAILURE_MODEL_NOT_FOUND:
                hint = closest_models_hint(req);
                request_note_error(req, name, "The gateway does not know the model \"%s\" (HTTP %ld: %s).%s",
                                   model, status, gw, strempty(hint));
                retry_after = UINT64_MAX;
                break;
        case GATEWAY_FAILURE_TIMEOUT:
                request_note_error(req, name, "The gateway timed out (HTTP %ld: %s).", status, gw);
                break;
        case GATEWAY_FAILURE_RATE_LIMITED:
                request_note_error(req, name,
                                   "The gateway is rate limiting requests for %s (HTTP 429: %s). Wait a moment and try again.",
                                   model, gw);
                break;
        case GATEWAY_FAILURE_UNAVAILABLE:
                request_note_error(req, name, "The gateway failed to answer for %s (HTTP %ld: %s). Try again later.",
                                   model, status, gw);
                break;
        default:
                if (status >= 400)
                        request_note_error(req, name, "The gateway refused the request (HTTP %ld: %s).", status, gw);
                else
                        request_note_error(req, name, "The gateway sent an unexpected answer (HTTP %ld: %s).", status, gw);
                break;
        }
        if (retry == RETRY_NO)
                return request_fail_noted(req);
        request_attempt_failed(req, retry, retry_after);
}

/* The stream failed (error event, unparsable data, or no terminator). */
static void request_stream_failed(Request *req) {
        _cleanup_free_ char *type = NULL, *msg = NULL; /* t and m as they may be shown */
        const char *name, *t = NULL, *m = NULL;
        GatewayFailure failure;
        Retry retry;

        (void) chat_stream_get_error(req->stream, &t, &m);
        if ((t && !(type = key_redact(t, context_llm_key(req->context)))) ||
            (m && !(msg = key_redact(m, context_llm_key(req->context)))))
                return request_fail_oom(req);
        retry = retry_for_stream_error(t, &failure);
        name = gateway_failure_to_bus_error(failure);
        if (streq_ptr(t, CHAT_ERROR_INCOMPLETE))
                request_note_error(req, name,
                                   "The answer from the gateway ended before it was complete (no end-of-stream marker).");
        else if (streq_ptr(t, CHAT_ERROR_INVALID_RESPONSE))
                request_note_error(req, name, "The gateway sent an answer that cannot be read: %s", strna(msg));
        else
                request_note_error(req, name, "The gateway reported an error during the answer (%s): %s", strna(type),
                                   strna(msg));
        /* Once text has streamed, nothing is retried. */
        if (req->text_len > 0)
                return request_fail_noted(req);
        request_attempt_failed(req, retry, UINT64_MAX);
}

/* ---- the stream -------------------------------------------------------- */

static int on_stream_delta(const char *text, size_t len, void *userdata) {
        Request *req = userdata;

        if (len > CHAT_TEXT_MAX - req->text_len)
                return -EFBIG;
        if (req->text_len + len + 1 > req->text_alloc) {
                size_t a = MAX(MAX(req->text_alloc * 2, req->text_len + len + 1), (size_t) 256);
                char *p = realloc(req->text, a);
                if (!p)
                        return -ENOMEM;
                req->text = p;
                req->text_alloc = a;
        }
        memcpy(req->text + req->text_len, text, len);
        req->text_len += len;
        req->text[req->text_len] = 0;
        if (req->first_delta_usec == 0) {
                req->first_delta_usec = now_usec(CLOCK_MONOTONIC);
                request_set_state(req, REQUEST_STREAMING);
        }
        return 0;
}

static const ChatStreamCallbacks stream_callbacks = {
        .delta = on_stream_delta,
};

/* After the stream has seen more bytes (or their end): send what came and
 * act on an end. k is what chat_stream_feed/finish returned. */
static void request_after_feed(Request *req, int k) {
        if (k == -EFBIG) {
                request_flush(req, true);
                return request_fail(req, BUS_ERROR_LIMIT_EXCEEDED,
                                    "The answer is larger than the 32 MiB a request may hold; it was stopped.");
        }
        if (k < 0)
                return request_fail_oom(req);

        switch (chat_stream_get_state(req->stream)) {
        case CHAT_STREAM_RUNNING:
                request_flush(req, false);
                return;
        case CHAT_STREAM_DONE:
                return request_finish(req);
        case CHAT_STREAM_FAILED:
                return request_stream_failed(req);
        }
}

/* libcurl sends a POST again by itself when a reused connection closes
 * before any answer; the gateway may have read (and billed) the first one.
 * Each send is an attempt, and the attempts per model stay capped. */
static int on_http_send(HttpRequest *h, unsigned n, void *userdata) {
        Request *req = userdata;

        if (n <= 1)
                return 0; /* counted when the attempt started */
        if (req->attempts_model >= RETRY_ATTEMPTS_PER_MODEL)
                return -ECONNRESET;
        req->attempts++;
        req->attempts_model++;
        log_debug("Request %" PRIu64 ": the gateway closed a reused connection without answering; the request is sent "
                  "again (attempt %u on %s).", req->id, req->attempts_model, request_model(req));
        return 0;
}

/* A model id the gateway named (X-Model-Replacement): only what could be
 * a model id, so that it can be shown, sent on the bus and asked for. */
static char *replacement_from_header(Request *req, const char *v) {
        size_t n;

        if (isempty(v))
                return NULL;
        n = strlen(v);
        if (n > 256)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) v[i]) || strchr("._:/@-[]", v[i])))
                        return NULL;
        return key_redact(v, context_llm_key(req->context));
}

/* What the headers of any answer say: the tier it was handled under, and
 * whether the model is deprecated (and for what). */
static void request_read_headers(Request *req, HttpRequest *h) {
        const char *tier = http_request_get_header(h, "x-privacy-tier");
        const char *dep = http_request_get_header(h, "x-model-deprecated");
        _cleanup_free_ char *repl = replacement_from_header(req, http_request_get_header(h, "x-model-replacement"));

        req->privacy_tier = tier ? chat_privacy_from_header(tier) : _CHAT_PRIVACY_INVALID;
        if (tier && req->privacy_tier < 0)
                log_debug("Request %" PRIu64 ": ignoring an unknown X-Privacy-Tier.", req->id);
        req->deprecated = dep && (strcasecmp(dep, "true") == 0 || streq(dep, "1") || strcasecmp(dep, "yes") == 0);
        free(req->replacement);
        req->replacement = TAKE_PTR(repl);
        if (req->deprecated || http_request_get_status(h) == 410)
                context_model_deprecated(req->context, request_model(req), req->replacement);
}

static int on_http_headers(HttpRequest *h, long status, void *userdata) {
        Request *req = userdata;
        int k;

        request_read_headers(req, h);
        if (status < 200 || status > 299)
                return HTTP_BODY_BUFFER;
        /* Fail closed: an answer served at a weaker tier than asked is not
         * read at all (the gateway promises never to downgrade; should it,
         * nothing of it reaches the caller). */
        if (req->privacy_tier >= 0 && req->privacy_tier < request_expected_privacy(req)) {
                request_note_error(req, BUS_ERROR_GATEWAY_ERROR,
                                   "The gateway served %s at the privacy tier \"%s\" although \"%s\" was asked; the "
                                   "answer was discarded unread.", request_model(req),
                                   chat_privacy_to_string(req->privacy_tier),
                                   chat_privacy_to_string(request_expected_privacy(req)));
                req->privacy_downgraded = true;
                return -EPERM;
        }
        k = chat_stream_new(req->api, &req->stream);
        if (k < 0)
                return k;
        return 0;
}

static int on_http_body(HttpRequest *h, const void *data, size_t n, void *userdata) {
        Request *req = userdata;
        int k;

        uint64_t events;

        if (req->draining || !req->stream)
                return 0; /* after the terminator: let the body end */
        events = chat_stream_get_n_events(req->stream);
        k = chat_stream_feed(req->stream, data, n, &stream_callbacks, req);
        /* Progress for the idle timeout is a complete event, not a byte. */
        if (req->http == h && chat_stream_get_n_events(req->stream) != events)
                http_request_note_progress(h);
        request_after_feed(req, k);
        return 0;
}

static void on_http_done(HttpRequest *h, int error, void *userdata) {
        Request *req = userdata;
        long status;
        int k;

        if (req->draining || !request_is_active(req)) {
                request_release_http(req);
                return;
        }
        if (req->privacy_downgraded)
                return request_fail_noted(req);
        if (error < 0)
                return request_transport_failed(req, error);

        status = http_request_get_status(h);
        if (status < 200 || status > 299)
                return request_status_failed(req, status);

        if (!req->stream)
                return request_fail_oom(req);
        k = chat_stream_finish(req->stream, &stream_callbacks, req);
        request_after_feed(req, k < 0 ? k : 0);
        /* Finished (or failed) now: the transfer is over, let it go. */
        if (req->draining)
                request_release_http(req);
}

/* ---- attempts ---------------------------------------------------------- */

static ChatApi request_route(Request *req, const Model **ret_model) {
        const char *id = request_model(req);
        const Model *m = request_find_model(req, id);

        *ret_model = m;
        if (req->options.api != CHAT_API_AUTO)
                return req->options.api;
        if (m)
                return model_is_anthropic(m) ? CHAT_API_ANTHROPIC : CHAT_API_OPENAI;
        /* No record (yet): go by the id, as the gateway's owners do. */
        if (startswith(id, "claude") || startswith(id, "anthropic/"))
                return CHAT_API_ANTHROPIC;
        return CHAT_API_OPENAI;
}

static int request_build_body(Request *req, const Model *m) {
        ChatRequestParams p = CHAT_REQUEST_PARAMS_INIT;

        p.model = request_model(req);
        p.messages = req->messages;
        p.n_messages = req->n_messages;
        p.system = req->options.system;
        p.max_tokens = req->options.max_tokens;
        p.model_max_output_tokens = m ? m->max_output_tokens : 0;
        p.temperature = req->options.temperature;
        p.top_p = req->options.top_p;
        p.stop = req->options.stop;
        /* A tier endpoint (a gateway URL ending in /zdr or /private) already
         * serves its tier; naming a weaker or the same one there adds
         * nothing, and a different one is a conflict, so only a stronger
         * tier is sent (and refused by the gateway: privacy_conflict). */
        p.privacy = req->options.privacy > chat_privacy_from_url(context_gateway_url(req->context)) ?
                req->options.privacy : CHAT_PRIVACY_STANDARD;
        p.images = req->options.images;
        p.n_images = req->options.n_images;
        return chat_request_build(req->api, &p, &req->body);
}

static int request_start_attempt(Request *req) {
        _cleanup_(http_request_freep) HttpRequest *h = NULL;
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *auth = NULL;
        const char *key = context_llm_key(req->context);
        const Model *m;
        ChatApi api;
        int k;

        if (!key) {
                request_note_error(req, BUS_ERROR_NO_KEY,
                                   "No gateway key is configured any more. Set one with \"bankr-llm key set\".");
                return -ENOKEY;
        }

        api = request_route(req, &m);
        if (!req->body || api != req->api) {
                req->body = mfree(req->body);
                req->api = api;
                k = request_build_body(req, m);
                if (k < 0) {
                        request_note_error(req, BUS_ERROR_GATEWAY_ERROR, "Cannot build the request for %s: %s",
                                           request_model(req), strerror(-k));
                        return k;
                }
        }

        if (asprintf(&url, "%s%s", context_gateway_url(req->context),
                     api == CHAT_API_ANTHROPIC ? "/v1/messages" : "/v1/chat/completions") < 0)
                return -ENOMEM;
        k = http_request_new(req->context->http, "POST", url, &h);
        if (k < 0) {
                request_note_error(req, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot send a request to %s: %s", url,
                                   strerror(-k));
                return k;
        }
        if (api == CHAT_API_ANTHROPIC) {
                if (asprintf(&auth, "x-api-key: %s", key) < 0)
                        return -ENOMEM;
                k = http_request_add_header(h, "anthropic-version: 2023-06-01");
        } else {
                if (asprintf(&auth, "Authorization: Bearer %s", key) < 0)
                        return -ENOMEM;
                k = 0;
        }
        if (k >= 0)
                k = http_request_add_header(h, auth);
        if (k >= 0)
                k = http_request_add_header(h, "Accept: text/event-stream");
        if (k >= 0)
                k = http_request_set_body(h, req->body, strlen(req->body), "application/json");
        if (k < 0)
                return k;
        http_request_set_timeouts(h, req->options.connect_timeout_usec, req->options.first_byte_timeout_usec,
                                  req->options.idle_timeout_usec, 0);
        http_request_set_max_body(h, CHAT_ERROR_BODY_MAX);
        http_request_set_progress_by_caller(h, true);
        http_request_set_on_send(h, on_http_send);
        http_request_set_on_headers(h, on_http_headers);
        http_request_set_on_body(h, on_http_body);
        http_request_set_on_done(h, on_http_done);
        http_request_set_userdata(h, req);

        request_release_http(req);
        k = http_request_start(h);
        if (k < 0) {
                request_note_error(req, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot start a request to %s: %s", url,
                                   strerror(-k));
                return k;
        }
        req->http = TAKE_PTR(h);
        req->attempts++;
        req->attempts_model++;
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *req = userdata;
        _cleanup_free_ char *msg = NULL;

        if (asprintf(&msg, "No complete answer within %.0f s (the request's overall timeout, option timeout_s).",
                     (double) req->options.timeout_usec / USEC_PER_SEC) < 0)
                msg = NULL;
        request_fail(req, BUS_ERROR_TIMEOUT, msg ?: "The request timed out.");
        return 0;
}

void request_start(Request *req) {
        int k;

        req->start_usec = now_usec(CLOCK_MONOTONIC);
        if (req->options.timeout_usec > 0) {
                k = sd_event_add_time(req->context->event, &req->deadline_timer, CLOCK_MONOTONIC,
                                      req->start_usec + req->options.timeout_usec, 0, on_deadline, req);
                if (k < 0)
                        return request_fail_oom(req);
        }
        k = request_start_attempt(req);
        if (k == -ENOMEM)
                return request_fail_oom(req);
        if (k < 0)
                return request_fail_noted(req);
}

/* ---- the object -------------------------------------------------------- */

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Request *req = userdata;

        if (!streq_ptr(sd_bus_message_get_sender(m), req->owner))
                return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED,
                                        "Only the client that started this request may cancel it.");
        /* Cancelling what has ended already is not an error: the caller's
         * wish is fulfilled. */
        if (request_is_active(req))
                request_cancel(req, true);
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Request *req = userdata;

        if (streq(property, "Model"))
                return sd_bus_message_append(reply, "s", request_model(req));
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", request_state_to_string(req->state));
        if (streq(property, "Text")) {
                sd_bus_message *m = sd_bus_get_current_message(bus);
                /* The conversation is the caller's alone. */
                if (!m || !streq_ptr(sd_bus_message_get_sender(m), req->owner))
                        return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED,
                                                "Only the client that started this request may read its text.");
                return sd_bus_message_append(reply, "s", strempty(req->text));
        }
        return -ENOENT;
}

const sd_bus_vtable request_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Model", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Text", "s", property_get, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Delta", SD_BUS_ARGS("s", text), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Finished", SD_BUS_ARGS("a{sv}", info), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Failed", SD_BUS_ARGS("s", error_name, "s", message, "b", partial), 0),
        SD_BUS_VTABLE_END,
};

int request_export(Request *req) {
        return sd_bus_add_object_vtable(req->context->bus, &req->slot, req->path, IFACE_REQUEST, request_vtable, req);
}
