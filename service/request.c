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

#include "gateway.h"
#include "http.h"
#include "keyfmt.h"
#include "log.h"
#include "model-list.h"
#include "models.h"
#include "request.h"

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

        /* The failure to report if nothing better comes. */
        const char *error_name;
        char *error_message;
};

static const char *const state_names[_REQUEST_STATE_MAX] = {
        [REQUEST_PENDING] = "pending",
        [REQUEST_STREAMING] = "streaming",
        [REQUEST_FINISHED] = "finished",
        [REQUEST_FAILED] = "failed",
        [REQUEST_CANCELLED] = "cancelled",
};

const char *request_state_to_string(RequestState s) {
        return s >= 0 && s < _REQUEST_STATE_MAX ? state_names[s] : "unknown";
}

void request_options_done(RequestOptions *o) {
        o->system = mfree(o->system);
        o->stop = strv_free(o->stop);
        o->fallback_models = strv_free(o->fallback_models);
}

bool request_is_active(const Request *r) {
        return r->state == REQUEST_PENDING || r->state == REQUEST_STREAMING;
}

static const char *request_model(const Request *r) {
        return r->models[r->model_idx];
}

uint64_t request_get_id(const Request *r) {
        return r->id;
}

const char *request_get_path(const Request *r) {
        return r->path;
}

const char *request_get_owner(const Request *r) {
        return r->owner;
}

unsigned request_get_attempts(const Request *r) {
        return r->attempts;
}

RequestLink *request_get_link(Request *r) {
        return &r->link;
}

bool request_owner_is_gone(const Request *r) {
        return r->owner_gone;
}

void request_set_on_ended(Request *r, RequestEndedFn on_ended, void *userdata) {
        r->on_ended = on_ended;
        r->on_ended_userdata = userdata;
}

/* The end state is reached: the owner of the books hears of it once. */
static void request_ended(Request *r) {
        if (r->on_ended)
                r->on_ended(r, r->on_ended_userdata);
}

static int on_linger_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *r = userdata;

        if (r->on_linger_done)
                r->on_linger_done(r, r->on_linger_userdata);
        return 0;
}

int request_linger(Request *r, uint64_t usec, RequestLingerFn on_done, void *userdata) {
        r->on_linger_done = on_done;
        r->on_linger_userdata = userdata;
        return sd_event_add_time_relative(r->context->event, &r->linger_timer, CLOCK_MONOTONIC, usec, 0,
                                          on_linger_timer, r);
}

void request_forget_owner(Request *r) {
        if (!r->linger_timer)
                return;
        r->owner_gone = true;
        (void) sd_event_source_set_time_relative(r->linger_timer, 0);
}

/* ---- lifetime ---------------------------------------------------------- */

int request_new(Context *c, uint64_t id, const char *owner, sd_bus_message *complete, char **models,
                ChatMessage *messages, size_t n_messages, RequestOptions *options, Request **ret) {
        Request *r;

        r = calloc(1, sizeof(Request));
        if (!r) {
                strv_free(models);
                for (size_t i = 0; i < n_messages; i++)
                        free((char *) messages[i].content);
                free(messages);
                request_options_done(options);
                return -ENOMEM;
        }
        /* Owned from here on, whatever happens next. */
        r->models = models;
        r->n_models = strv_length(models);
        r->messages = messages;
        r->n_messages = n_messages;
        r->options = *options;
        *options = (RequestOptions) {};

        r->context = c;
        r->id = id;
        r->state = REQUEST_PENDING;
        r->stop_reason = CHAT_STOP_NONE;
        r->owner = strdup(owner);
        if (!r->owner || r->n_models == 0 ||
            (!complete && asprintf(&r->path, REQUEST_PATH_PREFIX "/%" PRIu64, id) < 0)) {
                r->path = NULL;
                request_free(r);
                return -ENOMEM;
        }
        if (complete)
                r->complete = sd_bus_message_ref(complete);
        *ret = r;
        return 0;
}

static void request_release_http(Request *r) {
        r->http = http_request_free(r->http);
        r->stream = chat_stream_free(r->stream);
        r->draining = false;
}

Request *request_free(Request *r) {
        if (!r)
                return NULL;
        request_release_http(r);
        sd_event_source_disable_unref(r->retry_timer);
        sd_event_source_disable_unref(r->deadline_timer);
        sd_event_source_disable_unref(r->flush_timer);
        sd_event_source_disable_unref(r->linger_timer);
        sd_bus_slot_unref(r->slot);
        sd_bus_message_unref(r->complete);
        for (size_t i = 0; i < r->n_messages; i++)
                free((char *) r->messages[i].content);
        free(r->messages);
        strv_free(r->models);
        request_options_done(&r->options);
        free(r->body);
        free(r->text);
        free(r->answered_model);
        free(r->error_message);
        free(r->owner);
        free(r->path);
        free(r);
        return NULL;
}

/* ---- signals ----------------------------------------------------------- */

/* Every signal of a request goes to its caller alone. */
static int request_new_signal(Request *r, const char *interface, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        k = sd_bus_message_new_signal(r->context->bus, &m, r->path, interface, member);
        if (k < 0)
                return k;
        k = sd_bus_message_set_destination(m, r->owner);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(m);
        return 0;
}

static void request_emit_properties_changed(Request *r, bool model, bool state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        if (!r->path || r->owner_gone)
                return;
        k = request_new_signal(r, "org.freedesktop.DBus.Properties", "PropertiesChanged", &m);
        if (k >= 0)
                k = sd_bus_message_append(m, "s", IFACE_REQUEST);
        if (k >= 0)
                k = sd_bus_message_open_container(m, 'a', "{sv}");
        if (k >= 0 && model)
                k = sd_bus_message_append(m, "{sv}", "Model", "s", request_model(r));
        if (k >= 0 && state)
                k = sd_bus_message_append(m, "{sv}", "State", "s", request_state_to_string(r->state));
        if (k >= 0)
                k = sd_bus_message_close_container(m);
        if (k >= 0)
                k = sd_bus_message_append(m, "as", 0);
        if (k >= 0)
                k = sd_bus_send(NULL, m, NULL);
        if (k < 0)
                log_warning_errno(k, "Failed to emit PropertiesChanged for %s: %m", r->path);
}

static void request_set_state(Request *r, RequestState s) {
        if (r->state == s)
                return;
        r->state = s;
        request_emit_properties_changed(r, false, true);
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* Sends the part of Text not sent yet as one Delta. Unless forced, holds it
 * back while our outgoing bus queue is long, so a slow bus merges deltas
 * instead of piling up messages. */
static void request_flush(Request *r, bool force) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        size_t n = r->text_len - r->text_sent;
        char *p;
        int k;

        if (n == 0)
                return;
        if (!r->path || r->owner_gone) {
                r->text_sent = r->text_len;
                return;
        }
        if (!force) {
                uint64_t queued = 0;
                (void) sd_bus_get_n_queued_write(r->context->bus, &queued);
                if (queued > CHAT_BUS_QUEUE_HIGH) {
                        if (!r->flush_timer)
                                k = sd_event_add_time_relative(r->context->event, &r->flush_timer, CLOCK_MONOTONIC,
                                                               CHAT_FLUSH_RETRY_USEC, 1, on_flush_timer, r);
                        else {
                                k = sd_event_source_set_time_relative(r->flush_timer, CHAT_FLUSH_RETRY_USEC);
                                if (k >= 0)
                                        k = sd_event_source_set_enabled(r->flush_timer, SD_EVENT_ONESHOT);
                        }
                        if (k >= 0)
                                return;
                        /* No timer: send now rather than stall. */
                }
        }
        if (r->flush_timer)
                (void) sd_event_source_set_enabled(r->flush_timer, SD_EVENT_OFF);

        k = request_new_signal(r, IFACE_REQUEST, "Delta", &m);
        if (k >= 0)
                k = sd_bus_message_append_string_space(m, n, &p);
        if (k >= 0) {
                memcpy(p, r->text + r->text_sent, n);
                k = sd_bus_send(NULL, m, NULL);
        }
        if (k < 0) {
                /* Keep it for the next try: nothing may be dropped. */
                log_warning_errno(k, "Failed to send a Delta for %s: %m", r->path);
                return;
        }
        r->text_sent = r->text_len;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        request_flush(userdata, false);
        return 0;
}

static double usec_to_ms(uint64_t a, uint64_t b) {
        return b > a ? (double) (b - a) / USEC_PER_MSEC : 0.0;
}

static int request_append_info(Request *r, sd_bus_message *m) {
        const char *id = r->answered_model ?: request_model(r);
        const Model *rec;
        double cost = 0.0;
        int k;

        /* Price by the id we asked for (the record we know), else by the
         * answered one. */
        rec = models_find(r->context->models, request_model(r));
        if (!rec && r->answered_model)
                rec = models_find(r->context->models, r->answered_model);
        if (rec)
                cost = chat_cost_usd(&r->usage, rec->price_input, rec->price_output, rec->price_cache_read,
                                     rec->price_cache_write);

        k = sd_bus_message_open_container(m, 'a', "{sv}");
        if (k < 0)
                return k;
        k = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                  "model", "s", id,
                                  "stop_reason", "s", chat_stop_reason_to_string(r->stop_reason),
                                  "input_tokens", "u", (uint32_t) MIN(r->usage.input, UINT32_MAX),
                                  "output_tokens", "u", (uint32_t) MIN(r->usage.output, UINT32_MAX),
                                  "cache_read_tokens", "u", (uint32_t) MIN(r->usage.cache_read, UINT32_MAX),
                                  "cache_write_tokens", "u", (uint32_t) MIN(r->usage.cache_write, UINT32_MAX),
                                  "cost_usd", "d", cost,
                                  "attempts", "u", (uint32_t) r->attempts,
                                  "latency_first_ms", "d",
                                  r->first_delta_usec ? usec_to_ms(r->start_usec, r->first_delta_usec) : 0.0,
                                  "latency_total_ms", "d", usec_to_ms(r->start_usec, r->end_usec));
        if (k < 0)
                return k;
        return sd_bus_message_close_container(m);
}

/* ---- the end ----------------------------------------------------------- */

static void request_stop_timers(Request *r) {
        if (r->retry_timer)
                (void) sd_event_source_set_enabled(r->retry_timer, SD_EVENT_OFF);
        if (r->deadline_timer)
                (void) sd_event_source_set_enabled(r->deadline_timer, SD_EVENT_OFF);
        if (r->flush_timer)
                (void) sd_event_source_set_enabled(r->flush_timer, SD_EVENT_OFF);
}

static void request_finish(Request *r) {
        const char *answered;
        int k;

        if (!request_is_active(r))
                return;
        r->end_usec = now_usec(CLOCK_MONOTONIC);
        r->stop_reason = chat_stream_get_stop_reason(r->stream);
        chat_stream_get_usage(r->stream, &r->usage);
        answered = chat_stream_get_model(r->stream);
        /* Only a name the bus can carry: one broken byte would make info
         * unsendable, and the caller would never hear the end. */
        if (answered && utf8_is_valid_n(answered, strlen(answered))) {
                /* A text from the gateway like any other: it may quote the key. */
                char *clean = key_redact(answered, context_llm_key(r->context));
                if (clean) {
                        free(r->answered_model);
                        r->answered_model = clean;
                }
        }
        request_stop_timers(r);
        request_flush(r, true);
        /* The stream may still be closing cleanly: let it, so the connection
         * can be reused (it is cut when the object goes away). */
        r->draining = r->http != NULL;

        log_debug("Request %" PRIu64 " (%s) finished: %zu bytes, %u attempt(s), %.1f ms.", r->id, request_model(r),
                  r->text_len, r->attempts, usec_to_ms(r->start_usec, r->end_usec));

        if (r->complete) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                k = sd_bus_message_new_method_return(r->complete, &reply);
                if (k >= 0)
                        k = sd_bus_message_append(reply, "s", strempty(r->text));
                if (k >= 0)
                        k = request_append_info(r, reply);
                if (k >= 0)
                        k = sd_bus_send(NULL, reply, NULL);
                if (k < 0) {
                        log_warning_errno(k, "Failed to answer Complete: %m");
                        /* Never leave the call unanswered. */
                        (void) sd_bus_reply_method_errorf(r->complete, BUS_ERROR_GATEWAY_ERROR,
                                                          "The answer could not be sent over the bus: %s",
                                                          strerror(-k));
                }
                r->complete = sd_bus_message_unref(r->complete);
        }

        r->state = REQUEST_FINISHED;
        if (r->path && !r->owner_gone) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                request_emit_properties_changed(r, false, true);
                k = request_new_signal(r, IFACE_REQUEST, "Finished", &m);
                if (k >= 0)
                        k = request_append_info(r, m);
                if (k >= 0)
                        k = sd_bus_send(NULL, m, NULL);
                if (k < 0)
                        log_warning_errno(k, "Failed to emit Finished for %s: %m", r->path);
        }
        request_ended(r);
}

/* Ends the request with an error. name is a bus error name; message a
 * sentence (never containing the key). */
static void request_fail_full(Request *r, RequestState state, const char *name, const char *message) {
        bool partial = r->text_len > 0;
        int k;

        if (!request_is_active(r))
                return;
        r->end_usec = now_usec(CLOCK_MONOTONIC);
        request_stop_timers(r);
        request_release_http(r);
        request_flush(r, true);

        if (state == REQUEST_CANCELLED)
                log_debug("Request %" PRIu64 " (%s) cancelled.", r->id, request_model(r));
        else
                log_info("Request %" PRIu64 " (%s) failed%s: %s", r->id, request_model(r),
                         partial ? " after streaming text" : "", message);

        if (r->complete) {
                k = sd_bus_reply_method_errorf(r->complete, name, "%s", message);
                if (k < 0)
                        log_warning_errno(k, "Failed to answer Complete: %m");
                r->complete = sd_bus_message_unref(r->complete);
        }

        r->state = state;
        if (r->path && !r->owner_gone) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                request_emit_properties_changed(r, false, true);
                k = request_new_signal(r, IFACE_REQUEST, "Failed", &m);
                if (k >= 0)
                        k = sd_bus_message_append(m, "ssb", name, message, partial);
                if (k >= 0)
                        k = sd_bus_send(NULL, m, NULL);
                if (k < 0)
                        log_warning_errno(k, "Failed to emit Failed for %s: %m", r->path);
        }
        request_ended(r);
}

static void request_fail(Request *r, const char *name, const char *message) {
        request_fail_full(r, REQUEST_FAILED, name, message);
}

static void request_fail_oom(Request *r) {
        request_fail(r, BUS_ERROR_GATEWAY_ERROR, "The service ran out of memory while handling the request.");
}

void request_cancel(Request *r, bool notify) {
        if (!notify)
                r->owner_gone = true;
        request_fail_full(r, REQUEST_CANCELLED, BUS_ERROR_CANCELLED, "The request was cancelled.");
}

void request_notify_shutdown(Request *r) {
        static const char msg[] = "bankr-llmd is stopping; the request was cancelled.";

        if (!request_is_active(r))
                return;
        request_release_http(r);
        if (r->complete) {
                (void) sd_bus_reply_method_errorf(r->complete, BUS_ERROR_CANCELLED, msg);
                r->complete = sd_bus_message_unref(r->complete);
        }
        if (r->path && !r->owner_gone) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                request_flush(r, true);
                r->state = REQUEST_CANCELLED;
                request_emit_properties_changed(r, false, true);
                if (request_new_signal(r, IFACE_REQUEST, "Failed", &m) >= 0 &&
                    sd_bus_message_append(m, "ssb", BUS_ERROR_CANCELLED, msg, r->text_len > 0) >= 0)
                        (void) sd_bus_send(NULL, m, NULL);
        }
        r->state = REQUEST_CANCELLED;
}

/* ---- errors ------------------------------------------------------------ */

/* Remembers the failure of this attempt as the one to report. */
static void request_note_error(Request *r, const char *name, const char *fmt, ...) _printf_(3, 4);
static void request_note_error(Request *r, const char *name, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        r->error_name = name;
        free(r->error_message);
        r->error_message = m;
}

/* The final sentence: the last failure, plus what was tried. */
static void request_fail_noted(Request *r) {
        _cleanup_free_ char *msg = NULL, *tried = NULL;
        const char *base = r->error_message ?: "The request failed.";

        if (r->n_models > 1 && r->model_idx > 0) {
                size_t len = 0;
                for (size_t i = 0; i <= r->model_idx; i++)
                        len += strlen(r->models[i]) + 2;
                tried = malloc(len + 1);
                if (tried) {
                        tried[0] = 0;
                        for (size_t i = 0; i <= r->model_idx; i++) {
                                if (i > 0)
                                        strcat(tried, ", ");
                                strcat(tried, r->models[i]);
                        }
                }
        }
        if (tried)
                (void) asprintf(&msg, "%s (%u attempts in all, models tried: %s.)", base, r->attempts, tried);
        else if (r->attempts > 1)
                (void) asprintf(&msg, "%s (%u attempts.)", base, r->attempts);
        request_fail(r, r->error_name ?: BUS_ERROR_GATEWAY_ERROR, msg ?: base);
}

static int request_start_attempt(Request *r);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *r = userdata;
        int k;

        k = request_start_attempt(r);
        if (k < 0 && request_is_active(r))
                request_fail_noted(r);
        return 0;
}

static uint64_t backoff_usec(Request *r) {
        uint64_t jitter = 0;

        (void) getrandom(&jitter, sizeof jitter, GRND_NONBLOCK);
        return retry_backoff_usec(r->options.backoff_base_usec, r->attempts_model, jitter);
}

static int request_schedule_attempt(Request *r, uint64_t delay) {
        int k;

        if (!r->retry_timer)
                k = sd_event_add_time_relative(r->context->event, &r->retry_timer, CLOCK_MONOTONIC, delay, 1,
                                               on_retry_timer, r);
        else {
                k = sd_event_source_set_time_relative(r->retry_timer, delay);
                if (k >= 0)
                        k = sd_event_source_set_enabled(r->retry_timer, SD_EVENT_ONESHOT);
        }
        return k;
}

/* What to do after a failed attempt that streamed no text. The error has
 * been noted. retry_after: the server's wish in µs, or UINT64_MAX. */
static void request_attempt_failed(Request *r, Retry retry, uint64_t retry_after) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), delay, deadline = UINT64_MAX;
        int k;

        request_release_http(r);
        if (r->deadline_timer)
                (void) sd_event_source_get_time(r->deadline_timer, &deadline);

        if (retry == RETRY_YES) {
                delay = retry_after != UINT64_MAX ? retry_after : backoff_usec(r);
                if (retry_same_model(retry, r->attempts_model, retry_after, now, delay, deadline)) {
                        log_debug("Request %" PRIu64 ": attempt %u on %s failed (%s); retrying in %.0f ms.", r->id,
                                  r->attempts_model, request_model(r), strna(r->error_message),
                                  (double) delay / USEC_PER_MSEC);
                        k = request_schedule_attempt(r, delay);
                        if (k >= 0)
                                return;
                }
        }
        /* The same model again is out (attempts used up, a Retry-After
         * beyond the cap or past the deadline): on to the next one. */
        if (retry_next_model(retry, r->model_idx + 1 < r->n_models)) {
                log_info("Request %" PRIu64 ": %s failed (%s); falling back to %s.", r->id, request_model(r),
                         strna(r->error_message), r->models[r->model_idx + 1]);
                r->model_idx++;
                r->attempts_model = 0;
                r->body = mfree(r->body);
                request_emit_properties_changed(r, true, false);
                k = request_schedule_attempt(r, 0);
                if (k >= 0)
                        return;
        }
        request_fail_noted(r);
}

/* A transfer that ended without a usable answer: no response at all, or a
 * body cut short. */
static void request_transport_failed(Request *r, int error) {
        const char *what = http_request_get_error_message(r->http);
        const char *name = gateway_failure_to_bus_error(gateway_failure_for_transport(error, GATEWAY_ENDPOINT_CHAT));

        if (error == -ENOMEM)
                return request_fail_oom(r);
        if (r->text_len > 0) {
                request_note_error(r, name, "The answer was cut short after %zu bytes: %s", r->text_len,
                                   what ?: strerror(-error));
                return request_fail_noted(r);
        }
        if (error == -ETIMEDOUT)
                request_note_error(r, name, "The gateway at %s did not answer in time: %s",
                                   context_gateway_url(r->context), what ?: "timed out");
        else
                request_note_error(r, name, "Cannot reach the gateway at %s: %s", context_gateway_url(r->context),
                                   what ?: strerror(-error));
        request_attempt_failed(r, retry_for_transport(error), UINT64_MAX);
}

/* "Did you mean …?" from the model list, or "". */
static char *closest_models_hint(Request *r) {
        _cleanup_strv_free_ char **l = NULL;
        const ModelList *list = models_list(r->context->models);
        char *s = NULL;
        size_t len = 0;

        if (list)
                l = model_list_closest(list, request_model(r), 3);
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

/* A complete non-2xx answer. */
static void request_status_failed(Request *r, long status) {
        _cleanup_free_ char *type = NULL, *raw = NULL, *gw = NULL, *hint = NULL;
        uint64_t retry_after = UINT64_MAX, ra;
        const char *body, *name, *model = request_model(r);
        GatewayFailure failure;
        Retry retry;
        size_t len;
        int k;

        body = http_request_get_body(r->http, &len);
        k = chat_parse_error_body(body, len, &type, &raw);
        if (k < 0)
                return request_fail_oom(r);
        gw = key_redact(raw, context_llm_key(r->context));
        if (!gw)
                return request_fail_oom(r);
        k = http_parse_retry_after(http_request_get_header(r->http, "retry-after"),
                                   http_request_get_header(r->http, "retry-after-ms"), now_usec(CLOCK_REALTIME), &ra);
        if (k >= 0)
                retry_after = ra;
        else if (k == -ERANGE)
                retry_after = UINT64_MAX - 1; /* beyond any cap */

        context_gateway_status(r->context, status);
        retry = retry_for_status(status, type, raw, &failure);
        name = gateway_failure_to_bus_error(failure);
        switch (failure) {
        case GATEWAY_FAILURE_UNAUTHORIZED:
                request_note_error(r, name,
                                   "The gateway rejected the key (HTTP %ld: %s). Check it with \"bankr-llm key validate\" "
                                   "or set a new one with \"bankr-llm key set\".", status, gw);
                break;
        case GATEWAY_FAILURE_PAYMENT_REQUIRED:
                request_note_error(r, name,
                                   "Your Bankr LLM credits are exhausted (HTTP 402: %s). Add credits with "
                                   "\"bankr-llm credits add\" and try again.", gw);
                break;
        case GATEWAY_FAILURE_MODEL_NOT_FOUND:
                hint = closest_models_hint(r);
                request_note_error(r, name, "The gateway does not know the model \"%s\" (HTTP %ld: %s).%s",
                                   model, status, gw, strempty(hint));
                retry_after = UINT64_MAX;
                break;
        case GATEWAY_FAILURE_TIMEOUT:
                request_note_error(r, name, "The gateway timed out (HTTP %ld: %s).", status, gw);
                break;
        case GATEWAY_FAILURE_RATE_LIMITED:
                request_note_error(r, name,
                                   "The gateway is rate limiting requests for %s (HTTP 429: %s). Wait a moment and try again.",
                                   model, gw);
                break;
        case GATEWAY_FAILURE_UNAVAILABLE:
                request_note_error(r, name, "The gateway failed to answer for %s (HTTP %ld: %s). Try again later.",
                                   model, status, gw);
                break;
        default:
                if (status >= 400)
                        request_note_error(r, name, "The gateway refused the request (HTTP %ld: %s).", status, gw);
                else
                        request_note_error(r, name, "The gateway sent an unexpected answer (HTTP %ld: %s).", status, gw);
                break;
        }
        if (retry == RETRY_NO)
                return request_fail_noted(r);
        request_attempt_failed(r, retry, retry_after);
}

/* The stream failed (error event, unparsable data, or no terminator). */
static void request_stream_failed(Request *r) {
        _cleanup_free_ char *type = NULL, *msg = NULL; /* t and m as they may be shown */
        const char *name, *t = NULL, *m = NULL;
        GatewayFailure failure;
        Retry retry;

        (void) chat_stream_get_error(r->stream, &t, &m);
        if ((t && !(type = key_redact(t, context_llm_key(r->context)))) ||
            (m && !(msg = key_redact(m, context_llm_key(r->context)))))
                return request_fail_oom(r);
        retry = retry_for_stream_error(t, &failure);
        name = gateway_failure_to_bus_error(failure);
        if (streq_ptr(t, CHAT_ERROR_INCOMPLETE))
                request_note_error(r, name,
                                   "The answer from the gateway ended before it was complete (no end-of-stream marker).");
        else if (streq_ptr(t, CHAT_ERROR_INVALID_RESPONSE))
                request_note_error(r, name, "The gateway sent an answer that cannot be read: %s", strna(msg));
        else
                request_note_error(r, name, "The gateway reported an error during the answer (%s): %s", strna(type),
                                   strna(msg));
        /* Once text has streamed, nothing is retried. */
        if (r->text_len > 0)
                return request_fail_noted(r);
        request_attempt_failed(r, retry, UINT64_MAX);
}

/* ---- the stream -------------------------------------------------------- */

static int on_stream_delta(const char *text, size_t len, void *userdata) {
        Request *r = userdata;

        if (len > CHAT_TEXT_MAX - r->text_len)
                return -EFBIG;
        if (r->text_len + len + 1 > r->text_alloc) {
                size_t a = MAX(MAX(r->text_alloc * 2, r->text_len + len + 1), (size_t) 256);
                char *p = realloc(r->text, a);
                if (!p)
                        return -ENOMEM;
                r->text = p;
                r->text_alloc = a;
        }
        memcpy(r->text + r->text_len, text, len);
        r->text_len += len;
        r->text[r->text_len] = 0;
        if (r->first_delta_usec == 0) {
                r->first_delta_usec = now_usec(CLOCK_MONOTONIC);
                request_set_state(r, REQUEST_STREAMING);
        }
        return 0;
}

static const ChatStreamCallbacks stream_callbacks = {
        .delta = on_stream_delta,
};

/* After the stream has seen more bytes (or their end): send what came and
 * act on an end. k is what chat_stream_feed/finish returned. */
static void request_after_feed(Request *r, int k) {
        if (k == -EFBIG) {
                request_flush(r, true);
                return request_fail(r, BUS_ERROR_LIMIT_EXCEEDED,
                                    "The answer is larger than the 32 MiB a request may hold; it was stopped.");
        }
        if (k < 0)
                return request_fail_oom(r);

        switch (chat_stream_get_state(r->stream)) {
        case CHAT_STREAM_RUNNING:
                request_flush(r, false);
                return;
        case CHAT_STREAM_DONE:
                return request_finish(r);
        case CHAT_STREAM_FAILED:
                return request_stream_failed(r);
        }
}

/* libcurl sends a POST again by itself when a reused connection closes
 * before any answer; the gateway may have read (and billed) the first one.
 * Each send is an attempt, and the attempts per model stay capped. */
static int on_http_send(HttpRequest *h, unsigned n, void *userdata) {
        Request *r = userdata;

        if (n <= 1)
                return 0; /* counted when the attempt started */
        if (r->attempts_model >= RETRY_ATTEMPTS_PER_MODEL)
                return -ECONNRESET;
        r->attempts++;
        r->attempts_model++;
        log_debug("Request %" PRIu64 ": the gateway closed a reused connection without answering; the request is sent "
                  "again (attempt %u on %s).", r->id, r->attempts_model, request_model(r));
        return 0;
}

static int on_http_headers(HttpRequest *h, long status, void *userdata) {
        Request *r = userdata;
        int k;

        if (status < 200 || status > 299)
                return HTTP_BODY_BUFFER;
        k = chat_stream_new(r->api, &r->stream);
        if (k < 0)
                return k;
        return 0;
}

static int on_http_body(HttpRequest *h, const void *data, size_t n, void *userdata) {
        Request *r = userdata;
        int k;

        uint64_t events;

        if (r->draining || !r->stream)
                return 0; /* after the terminator: let the body end */
        events = chat_stream_get_n_events(r->stream);
        k = chat_stream_feed(r->stream, data, n, &stream_callbacks, r);
        /* Progress for the idle timeout is a complete event, not a byte. */
        if (r->http == h && chat_stream_get_n_events(r->stream) != events)
                http_request_note_progress(h);
        request_after_feed(r, k);
        return 0;
}

static void on_http_done(HttpRequest *h, int error, void *userdata) {
        Request *r = userdata;
        long status;
        int k;

        if (r->draining || !request_is_active(r)) {
                request_release_http(r);
                return;
        }
        if (error < 0)
                return request_transport_failed(r, error);

        status = http_request_get_status(h);
        if (status < 200 || status > 299)
                return request_status_failed(r, status);

        if (!r->stream)
                return request_fail_oom(r);
        k = chat_stream_finish(r->stream, &stream_callbacks, r);
        request_after_feed(r, k < 0 ? k : 0);
        /* Finished (or failed) now: the transfer is over, let it go. */
        if (r->draining)
                request_release_http(r);
}

/* ---- attempts ---------------------------------------------------------- */

static ChatApi request_route(Request *r, const Model **ret_model) {
        const char *id = request_model(r);
        const Model *m = models_find(r->context->models, id);

        *ret_model = m;
        if (r->options.api != CHAT_API_AUTO)
                return r->options.api;
        if (m)
                return model_is_anthropic(m) ? CHAT_API_ANTHROPIC : CHAT_API_OPENAI;
        /* No record (yet): go by the id, as the gateway's owners do. */
        if (startswith(id, "claude") || startswith(id, "anthropic/"))
                return CHAT_API_ANTHROPIC;
        return CHAT_API_OPENAI;
}

static int request_build_body(Request *r, const Model *m) {
        ChatRequestParams p = CHAT_REQUEST_PARAMS_INIT;

        p.model = request_model(r);
        p.messages = r->messages;
        p.n_messages = r->n_messages;
        p.system = r->options.system;
        p.max_tokens = r->options.max_tokens;
        p.model_max_output_tokens = m ? m->max_output_tokens : 0;
        p.temperature = r->options.temperature;
        p.top_p = r->options.top_p;
        p.stop = r->options.stop;
        return chat_request_build(r->api, &p, &r->body);
}

static int request_start_attempt(Request *r) {
        _cleanup_(http_request_freep) HttpRequest *h = NULL;
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *auth = NULL;
        const char *key = context_llm_key(r->context);
        const Model *m;
        ChatApi api;
        int k;

        if (!key) {
                request_note_error(r, BUS_ERROR_NO_KEY,
                                   "No gateway key is configured any more. Set one with \"bankr-llm key set\".");
                return -ENOKEY;
        }

        api = request_route(r, &m);
        if (!r->body || api != r->api) {
                r->body = mfree(r->body);
                r->api = api;
                k = request_build_body(r, m);
                if (k < 0) {
                        request_note_error(r, BUS_ERROR_GATEWAY_ERROR, "Cannot build the request for %s: %s",
                                           request_model(r), strerror(-k));
                        return k;
                }
        }

        if (asprintf(&url, "%s%s", context_gateway_url(r->context),
                     api == CHAT_API_ANTHROPIC ? "/v1/messages" : "/v1/chat/completions") < 0)
                return -ENOMEM;
        k = http_request_new(r->context->http, "POST", url, &h);
        if (k < 0) {
                request_note_error(r, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot send a request to %s: %s", url,
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
                k = http_request_set_body(h, r->body, strlen(r->body), "application/json");
        if (k < 0)
                return k;
        http_request_set_timeouts(h, r->options.connect_timeout_usec, r->options.first_byte_timeout_usec,
                                  r->options.idle_timeout_usec, 0);
        http_request_set_max_body(h, CHAT_ERROR_BODY_MAX);
        http_request_set_progress_by_caller(h, true);
        http_request_set_on_send(h, on_http_send);
        http_request_set_on_headers(h, on_http_headers);
        http_request_set_on_body(h, on_http_body);
        http_request_set_on_done(h, on_http_done);
        http_request_set_userdata(h, r);

        request_release_http(r);
        k = http_request_start(h);
        if (k < 0) {
                request_note_error(r, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot start a request to %s: %s", url,
                                   strerror(-k));
                return k;
        }
        r->http = TAKE_PTR(h);
        r->attempts++;
        r->attempts_model++;
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *r = userdata;
        _cleanup_free_ char *msg = NULL;

        if (asprintf(&msg, "No complete answer within %.0f s (the request's overall timeout, option timeout_s).",
                     (double) r->options.timeout_usec / USEC_PER_SEC) < 0)
                msg = NULL;
        request_fail(r, BUS_ERROR_TIMEOUT, msg ?: "The request timed out.");
        return 0;
}

void request_start(Request *r) {
        int k;

        r->start_usec = now_usec(CLOCK_MONOTONIC);
        if (r->options.timeout_usec > 0) {
                k = sd_event_add_time(r->context->event, &r->deadline_timer, CLOCK_MONOTONIC,
                                      r->start_usec + r->options.timeout_usec, 0, on_deadline, r);
                if (k < 0)
                        return request_fail_oom(r);
        }
        k = request_start_attempt(r);
        if (k == -ENOMEM)
                return request_fail_oom(r);
        if (k < 0)
                return request_fail_noted(r);
}

/* ---- the object -------------------------------------------------------- */

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Request *r = userdata;

        if (!streq_ptr(sd_bus_message_get_sender(m), r->owner))
                return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED,
                                        "Only the client that started this request may cancel it.");
        /* Cancelling what has ended already is not an error: the caller's
         * wish is fulfilled. */
        if (request_is_active(r))
                request_cancel(r, true);
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Request *r = userdata;

        if (streq(property, "Model"))
                return sd_bus_message_append(reply, "s", request_model(r));
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", request_state_to_string(r->state));
        if (streq(property, "Text")) {
                sd_bus_message *m = sd_bus_get_current_message(bus);
                /* The conversation is the caller's alone. */
                if (!m || !streq_ptr(sd_bus_message_get_sender(m), r->owner))
                        return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED,
                                                "Only the client that started this request may read its text.");
                return sd_bus_message_append(reply, "s", strempty(r->text));
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

int request_export(Request *r) {
        return sd_bus_add_object_vtable(r->context->bus, &r->slot, r->path, IFACE_REQUEST, request_vtable, r);
}
