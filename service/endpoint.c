/* SPDX-License-Identifier: MIT */
/*
 * The local endpoint (endpoint.h). One libmicrohttpd daemon per listener
 * (127.0.0.1, ::1, the unix socket), each with MHD_USE_EPOLL: its epoll fd
 * is an sd-event io source, and a timer follows MHD_get_timeout(). Nothing
 * blocks: a request whose answer is not there yet suspends its connection
 * (MHD_ALLOW_SUSPEND_RESUME) and http.c's callbacks resume it.
 *
 * One request, EpRequest, lives from the URI callback to the completion
 * callback of libmicrohttpd:
 *   NEW       the headers are in: route, Host, Origin, the token; a refusal
 *             is queued at once
 *   READING   the body comes in (capped at ENDPOINT_MAX_BODY)
 *   WAITING   the body is complete; the model check, then the upstream
 *             request starts and the connection is suspended until its
 *             headers (or its failure) arrive
 *   STREAMING the answer was queued; its content reader hands out what
 *             upstream delivered, suspends when nothing is there, and
 *             pauses upstream (HTTP_BODY_PAUSE) while the client lags
 *             ENDPOINT_HIGH_WATER bytes behind.
 * Every request that reached the gateway ends in endpoint_book_request():
 * an answer when its content reader reached the end, else when it failed
 * or was cut.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <strings.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "buf.h"
#include "bus-util.h"
#include "chat-cost.h"
#include "chat-stream.h"
#include "endpoint-route.h"
#include "app-id.h"
#include "endpoint.h"
#include "http-error.h"
#include "gateway.h"
#include "http.h"
#include "ledger.h"
#include "json-util.h"
#include "keyfmt.h"
#include "log.h"
#include "model-list.h"
#include "models.h"
#include "polkit.h"
#include "tokens.h"
#include "wakeup.h"

/* Upstream is paused while this much is waiting for a slow client. */
#define ENDPOINT_HIGH_WATER (1024U * 1024U)
/* The block size of a streamed answer's response. libmicrohttpd reads a
 * chunked answer straight into the connection's write buffer (from its
 * memory pool, ENDPOINT_CONNECTION_MEMORY), so the block it allocates
 * with each response goes unused: kept small, it does not cost every
 * stream 16 KiB. */
#define ENDPOINT_RESPONSE_BLOCK 512U
/* A refusal decided from the headers waits for a body up to this size
 * (read and dropped) before it goes out: answering at once and closing the
 * connection would reset it under a client still sending, which then sees
 * a broken pipe instead of the 401. Longer bodies are refused at once. */
#define ENDPOINT_DRAIN_MAX (1024U * 1024U)
/* Bytes already sent are dropped from the front of the buffer once there
 * are this many. */
#define ENDPOINT_COMPACT (64U * 1024U)
/* Error answers are held (to redact the key) up to this size. */
#define ENDPOINT_MAX_ERROR_BODY (1024U * 1024U)
/* Unstreamed answers are also copied (for their usage) up to this size. */
#define ENDPOINT_MAX_TAP_BODY (4U * 1024U * 1024U)
#define ENDPOINT_UPSTREAM_CONNECT_USEC (30 * USEC_PER_SEC)
#define ENDPOINT_UPSTREAM_FIRST_BYTE_USEC (600 * USEC_PER_SEC)

typedef struct Listener {
        struct Endpoint *endpoint;
        struct MHD_Daemon *daemon;
        sd_event_source *io;
        Wakeup wake; /* MHD_get_timeout(), and resumed connections */
        unsigned port; /* 0 for the unix socket */
        const char *what;
} Listener;

enum { L_INET, L_INET6, L_UNIX, _L_MAX };

struct Endpoint {
        Context *context;
        Listener listeners[_L_MAX];
        unsigned port;
        char *url, *socket_path;
        bool socket_passed; /* socket_path is bankr-llmd.socket's: not ours to unlink */
        char *port_file;
        Tokens *tokens;
        sd_bus_slot *owner_match;
        struct EpRequest *requests; /* all live ones */
        unsigned max_connections;
        sd_event_source *tokens_changed; /* the coalesced Tokens signal */
};

typedef enum EpState {
        EP_NEW,
        EP_READING,
        EP_WAITING,
        EP_STREAMING,
        EP_DONE,      /* a refusal or the models list was queued */
} EpState;

typedef struct EpRequest {
        Endpoint *endpoint;
        Listener *listener;
        struct MHD_Connection *conn;
        struct EpRequest *prev, *next;
        EpState state;
        char *target;
        EndpointRoute route;
        Token *token;
        char **headers; /* to forward: "Name: value" */
        Buf body;
        bool too_big;
        bool draining; /* refused: the body is read and dropped before the answer */

        /* A refusal to queue when the handler runs next. */
        unsigned refuse_status;
        char *refuse_body;

        HttpRequest *hr;
        bool suspended;
        bool headers_ready, upstream_done, cut, reached_gateway;
        int upstream_error;
        long status;
        bool buffer_error; /* non-2xx: held whole, key redacted */
        bool sse;
        Buf out;         /* bytes for the client, from out_off */
        size_t out_off;
        Buf tap;         /* copy of an unstreamed answer (for its usage), or the whole error body */
        ChatStream *stream;
        char *model;
        char *app;       /* the token's, kept: the token may go first */
        char *privacy_tier;
        double estimate; /* held in the app's budget (Usage) while admitted */
        bool admitted;
        uint64_t started_usec, first_byte_usec;
} EpRequest;

/* ---- the loop --------------------------------------------------------- */

static void listener_arm(Listener *l) {
        MHD_UNSIGNED_LONG_LONG ms = 0;

        if (!l->wake.now)
                return;
        if (MHD_get_timeout(l->daemon, &ms) == MHD_YES)
                (void) wakeup_in(&l->wake, (uint64_t) ms * USEC_PER_MSEC);
        else
                wakeup_off(&l->wake);
}

static void listener_run(void *userdata) {
        Listener *l = userdata;

        if (!l->daemon)
                return;
        (void) MHD_run(l->daemon);
        listener_arm(l);
}

static int on_listener_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        listener_run(userdata);
        return 0;
}

static void ep_suspend(EpRequest *q) {
        if (q->suspended)
                return;
        MHD_suspend_connection(q->conn);
        q->suspended = true;
}

static void ep_resume(EpRequest *q) {
        if (!q->suspended)
                return;
        q->suspended = false;
        MHD_resume_connection(q->conn);
        /* The daemon's ITC wakes its epoll fd too; this runs it at once. */
        (void) wakeup_in(&q->listener->wake, 0);
}

/* ---- answers ---------------------------------------------------------- */

static int ep_refuse(EpRequest *q, unsigned status, const char *type, const char *code, const char *message) {
        free(q->refuse_body);
        q->refuse_status = status;
        q->refuse_body = endpoint_error_body(q->route.format, type, code, message);
        return q->refuse_body ? 0 : -ENOMEM;
}

static enum MHD_Result queue_json(struct MHD_Connection *conn, unsigned status, const char *body, const char *extra) {
        struct MHD_Response *resp;
        enum MHD_Result k;

        resp = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, "Content-Type", "application/json");
        if (extra)
                (void) MHD_add_response_header(resp, "WWW-Authenticate", extra);
        k = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return k;
}

static enum MHD_Result queue_refusal(EpRequest *q) {
        enum MHD_Result k;

        if (!q->refuse_body)
                return MHD_NO;
        q->state = EP_DONE;
        k = queue_json(q->conn, q->refuse_status, q->refuse_body, q->refuse_status == 401 ? "Bearer" : NULL);
        q->refuse_status = 0;
        q->refuse_body = mfree(q->refuse_body);
        return k;
}

/* ---- the books -------------------------------------------------------- */

/* Tokens' spending changes with every request: its PropertiesChanged (the
 * whole list, to everyone on the bus) goes out at most once a second.
 * Creating and revoking tokens announce it at once. */
#define ENDPOINT_TOKENS_SIGNAL_USEC USEC_PER_SEC

static void endpoint_tokens_changed(Endpoint *e) {
        if (e->tokens_changed)
                (void) sd_event_source_set_enabled(e->tokens_changed, SD_EVENT_OFF);
        (void) sd_bus_emit_properties_changed(e->context->bus, OBJECT_PATH, IFACE_ENDPOINT, "Tokens", NULL);
}

static int on_tokens_changed(sd_event_source *s, uint64_t usec, void *userdata) {
        endpoint_tokens_changed(userdata);
        return 0;
}

static void endpoint_tokens_changed_soon(Endpoint *e) {
        int enabled = SD_EVENT_OFF;

        if (!e->tokens_changed) {
                if (sd_event_add_time_relative(e->context->event, &e->tokens_changed, CLOCK_MONOTONIC,
                                               ENDPOINT_TOKENS_SIGNAL_USEC, 100 * USEC_PER_MSEC, on_tokens_changed, e) < 0) {
                        endpoint_tokens_changed(e);
                        return;
                }
                (void) sd_event_source_set_description(e->tokens_changed, "endpoint-tokens-changed");
                (void) sd_event_source_set_enabled(e->tokens_changed, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_source_get_enabled(e->tokens_changed, &enabled);
        if (enabled != SD_EVENT_OFF)
                return; /* one is due already */
        (void) sd_event_source_set_time_relative(e->tokens_changed, ENDPOINT_TOKENS_SIGNAL_USEC);
        (void) sd_event_source_set_enabled(e->tokens_changed, SD_EVENT_ONESHOT);
}

/* Where an endpoint request that reached the gateway ends: everything the
 * ledger (issue 15) books is at hand here — via "endpoint", the token's
 * app, the status, the error, the model, the token counts, the cost and
 * the latencies. The ledger's booking call goes here. */
static void endpoint_book_request(EpRequest *q) {
        Endpoint *e = q->endpoint;
        ChatUsage u = {};
        const Model *m;
        double cost = 0;
        uint64_t now = now_usec(CLOCK_REALTIME), total = now_usec(CLOCK_MONOTONIC) - q->started_usec;
        _cleanup_free_ char *body_model = NULL;
        const char *model = q->model;

        if (!q->reached_gateway)
                return;
        q->reached_gateway = false;

        if (q->stream) {
                (void) chat_stream_finish(q->stream, NULL, NULL);
                chat_stream_get_usage(q->stream, &u);
                if (chat_stream_get_model(q->stream))
                        model = chat_stream_get_model(q->stream);
        } else if (q->tap.n > 0 && !q->buffer_error) {
                (void) endpoint_body_usage(q->route.format, q->tap.p, q->tap.n, &u, &body_model);
                if (body_model && !model)
                        model = body_model;
        }
        m = model ? models_find(e->context->models, model) : NULL;
        if (m)
                cost = chat_cost_usd(&u, m->price_input, m->price_output, m->price_cache_read, m->price_cache_write);

        if (q->token)
                tokens_charge(e->tokens, q->token, cost, now);
        endpoint_tokens_changed_soon(e);

        log_debug("Endpoint: %s %s for %s: status %ld%s, %" PRIu64 "/%" PRIu64 " tokens, $%.6f, first byte %.1f ms, "
                  "total %.1f ms.",
                  endpoint_route_kind_to_string(q->route.kind), strna(model), q->token ? q->token->app : "-", q->status,
                  q->cut ? " (cut)" : q->upstream_error < 0 ? " (failed)" : "", u.input + u.cache_read + u.cache_write,
                  u.output, cost, q->first_byte_usec ? (double) q->first_byte_usec / 1000.0 : 0.0,
                  (double) total / 1000.0);

        {
                GatewayFailure f = q->upstream_error < 0 ? gateway_failure_for_transport(q->upstream_error, GATEWAY_ENDPOINT_CHAT)
                                                         : gateway_failure_for_status(q->status, GATEWAY_ENDPOINT_CHAT);
                bool cancelled = q->cut || q->upstream_error == -ECANCELED;
                bool finished = !cancelled && f == GATEWAY_FAILURE_NONE;
                LedgerRecord rec = {
                        .time = now,
                        .app = q->app ?: (char *) "unknown",
                        .via = (char *) "endpoint",
                        .model = (char *) strempty(model),
                        .status = (char *) (finished ? "finished" : cancelled ? "cancelled" : "failed"),
                        .error = (char *) (finished    ? ""
                                           : cancelled ? BUS_ERROR_CANCELLED
                                                       : strempty(gateway_failure_to_bus_error(f))),
                        .input_tokens = u.input,
                        .output_tokens = u.output,
                        .cache_read_tokens = u.cache_read,
                        .cache_write_tokens = u.cache_write,
                        .cost_usd = cost,
                        .latency_first_ms = (double) q->first_byte_usec / 1000.0,
                        .latency_total_ms = (double) total / 1000.0,
                        .attempts = 1,
                        .privacy_tier = (char *) strempty(q->privacy_tier),
                };
                context_request_booked(e->context, rec.app, q->estimate, &rec);
                q->admitted = false;
        }

        if (q->status > 0) {
                /* The error's type tells a daily budget from spent credits
                 * (context_gateway_status() decides what a 402 means). */
                _cleanup_free_ char *type = NULL, *message = NULL;

                if (q->status >= 400 && q->tap.n > 0)
                        (void) chat_parse_error_body(q->tap.p, q->tap.n, &type, &message);
                context_gateway_status(e->context, q->status, type, message);
        }
        context_request_finished(e->context);
}

/* An admitted request that never reached the gateway: its estimate goes back. */
static void ep_release(EpRequest *q) {
        if (!q->admitted)
                return;
        q->admitted = false;
        context_request_booked(q->endpoint->context, q->app, q->estimate, NULL);
}

/* ---- upstream callbacks ------------------------------------------------ */

static int on_up_send(HttpRequest *hr, unsigned n, void *userdata) {
        /* Never a second send of a POST: the gateway may have acted on it. */
        return n > 1 ? -ECONNRESET : 0;
}

static int on_up_headers(HttpRequest *hr, long status, void *userdata) {
        EpRequest *q = userdata;
        const char *ct = http_request_get_header(hr, "content-type");

        q->status = status;
        q->headers_ready = true;
        q->first_byte_usec = now_usec(CLOCK_MONOTONIC) - q->started_usec;
        q->buffer_error = status < 200 || status >= 300;
        q->sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
        free(q->privacy_tier);
        q->privacy_tier = http_request_get_header(hr, "x-privacy-tier") ? strdup(http_request_get_header(hr, "x-privacy-tier")) : NULL;
        if (q->sse && !q->buffer_error) {
                if (chat_stream_new(q->route.format, &q->stream) < 0)
                        return -ENOMEM;
                /* The bytes go out as they came; only model and usage are read. */
                chat_stream_set_usage_only(q->stream, true);
        }
        ep_resume(q);
        return 0;
}

static size_t ep_pending(EpRequest *q) {
        return q->out.n - q->out_off;
}

static int on_up_body(HttpRequest *hr, const void *data, size_t n, void *userdata) {
        EpRequest *q = userdata;

        if (q->buffer_error) {
                /* Held in tap until the end, when it is redacted into out:
                 * no byte of it goes out before. */
                if (q->tap.n + n > ENDPOINT_MAX_ERROR_BODY)
                        return 0; /* the rest of an overlong error is dropped */
                return buf_append(&q->tap, data, n);
        }
        if (ep_pending(q) >= ENDPOINT_HIGH_WATER)
                return HTTP_BODY_PAUSE;
        if (q->out_off > 0 && q->out_off == q->out.n) {
                buf_clear(&q->out);
                q->out_off = 0;
        } else if (q->out_off >= ENDPOINT_COMPACT) {
                /* What the client has taken goes, or the buffer would grow
                 * with the stream instead of with the client's lag. */
                memmove(q->out.p, q->out.p + q->out_off, ep_pending(q));
                q->out.n = ep_pending(q);
                q->out_off = 0;
        }
        if (buf_append(&q->out, data, n) < 0)
                return -ENOMEM;
        if (q->stream)
                (void) chat_stream_feed(q->stream, data, n, NULL, NULL);
        else if (q->tap.n + n <= ENDPOINT_MAX_TAP_BODY)
                (void) buf_append(&q->tap, data, n);
        ep_resume(q);
        return 0;
}

static void on_up_done(HttpRequest *hr, int error, void *userdata) {
        EpRequest *q = userdata;

        q->upstream_done = true;
        q->upstream_error = error;
        if (q->buffer_error && q->tap.n > 0) {
                const char *key = context_llm_key(q->endpoint->context);
                _cleanup_free_ char *red = key ? key_redact(q->tap.p, key) : NULL;
                if (key && !red)
                        q->upstream_error = -ENOMEM; /* never unredacted */
                else
                        (void) buf_append(&q->out, red ?: q->tap.p, red ? strlen(red) : q->tap.n);
        }
        if (error < 0 && !q->headers_ready) {
                const char *msg = http_request_get_error_message(hr);
                (void) ep_refuse(q, error == -ETIMEDOUT ? 504 : 502, q->route.format == CHAT_API_ANTHROPIC ? "api_error" : "gateway_error",
                                 "gateway_unavailable", msg ?: "The gateway could not be reached.");
                endpoint_book_request(q);
        }
        /* An answer is booked by its content reader once the last byte went
         * to the client, before the end of the response: the booking does
         * not delay the first byte, and a client that has the whole
         * response finds it in the ledger. */
        ep_resume(q);
}

/* ---- the content reader ----------------------------------------------- */

static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max) {
        EpRequest *q = cls;
        size_t n;

        if (q->cut)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        n = MIN(ep_pending(q), max);
        if (n > 0) {
                memcpy(buf, q->out.p + q->out_off, n);
                q->out_off += n;
                if (q->out_off == q->out.n) {
                        buf_clear(&q->out);
                        q->out_off = 0;
                }
                if (q->hr && ep_pending(q) < ENDPOINT_HIGH_WATER / 2)
                        http_request_unpause(q->hr); /* may append at once */
                return (ssize_t) n;
        }
        if (q->upstream_done) {
                endpoint_book_request(q);
                return q->upstream_error < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
        }
        ep_suspend(q);
        return 0;
}

static enum MHD_Result queue_stream(EpRequest *q) {
        struct MHD_Response *resp;
        enum MHD_Result k;
        const char *line;

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, ENDPOINT_RESPONSE_BLOCK, on_read, q, NULL);
        if (!resp)
                return MHD_NO;
        for (size_t i = 0; (line = http_request_get_header_line(q->hr, i)); i++) {
                const char *colon = strchr(line, ':');
                _cleanup_free_ char *name = NULL;
                const char *v;
                if (!colon || colon == line)
                        continue;
                name = strndup(line, (size_t) (colon - line));
                if (!name || !endpoint_response_header_keep(name))
                        continue;
                v = colon + 1 + strspn(colon + 1, " \t");
                (void) MHD_add_response_header(resp, name, v);
        }
        k = MHD_queue_response(q->conn, (unsigned) q->status, resp);
        MHD_destroy_response(resp);
        q->state = EP_STREAMING;
        return k;
}

/* ---- starting the upstream request ------------------------------------- */

static int ep_start_upstream(EpRequest *q) {
        Context *c = q->endpoint->context;
        const char *key = context_llm_key(c), *ct = NULL;
        _cleanup_free_ char *url = NULL;
        _cleanup_(erase_and_freep) char *auth = NULL;
        int r;

        if (!key)
                return ep_refuse(q, 503, q->route.format == CHAT_API_ANTHROPIC ? "api_error" : "no_key", "no_key",
                                 "The service has no gateway key: set one with 'bankr-llm key set'.");
        /* Chat.DefaultPrivacy raises the endpoint's traffic too, with the
         * tier's path prefix (the gateway's strongest tier wins). A gateway
         * URL that is itself a tier endpoint (…/zdr) takes no prefix. */
        if (chat_privacy_from_url(context_gateway_url(c)) == CHAT_PRIVACY_STANDARD) {
                ChatPrivacy min = context_default_privacy(c);

                r = endpoint_route_raise_privacy(&q->route, min == CHAT_PRIVACY_PRIVATE ? ENDPOINT_PRIVACY_PRIVATE
                                                            : min == CHAT_PRIVACY_ZDR  ? ENDPOINT_PRIVACY_ZDR
                                                                                        : ENDPOINT_PRIVACY_STANDARD);
                if (r == -E2BIG)
                        return ep_refuse(q, 414, "invalid_request_error", "uri_too_long",
                                         "The request target is too long.");
        }
        if (asprintf(&url, "%s%s", context_gateway_url(c), q->route.upstream_path) < 0)
                return -ENOMEM;
        r = http_request_new(c->http, "POST", url, &q->hr);
        if (r < 0)
                return r;
        http_request_set_userdata(q->hr, q);
        http_request_set_on_send(q->hr, on_up_send);
        http_request_set_on_headers(q->hr, on_up_headers);
        http_request_set_on_body(q->hr, on_up_body);
        http_request_set_on_done(q->hr, on_up_done);
        http_request_set_timeouts(q->hr, ENDPOINT_UPSTREAM_CONNECT_USEC, ENDPOINT_UPSTREAM_FIRST_BYTE_USEC, 0, 0);

        if (q->route.kind == ENDPOINT_ROUTE_MESSAGES || q->route.kind == ENDPOINT_ROUTE_COUNT_TOKENS)
                r = asprintf(&auth, "x-api-key: %s", key);
        else
                r = asprintf(&auth, "Authorization: Bearer %s", key);
        if (r < 0)
                return -ENOMEM;
        r = http_request_add_header(q->hr, auth);
        /* libcurl would add its own Expect and Accept; a caller's are not ours to add. */
        if (r >= 0)
                r = http_request_add_header(q->hr, "Expect:");
        if (r >= 0)
                r = http_request_add_header(q->hr, "Accept:");
        for (char **h = q->headers; r >= 0 && h && *h; h++) {
                if (strncasecmp(*h, "content-type:", 13) == 0) {
                        ct = *h + 13 + strspn(*h + 13, " \t");
                        continue;
                }
                r = http_request_add_header(q->hr, *h);
        }
        if (r >= 0 && !ct)
                r = http_request_add_header(q->hr, "Content-Type:");
        if (r >= 0)
                r = http_request_set_body(q->hr, q->body.p ?: "", q->body.n, ct);
        if (r < 0)
                return r;
        /* The copy went to http.c; ours is not needed any more. */
        buf_done(&q->body);

        q->started_usec = now_usec(CLOCK_MONOTONIC);
        r = http_request_start(q->hr);
        if (r < 0)
                return r;
        q->reached_gateway = true;
        return 0;
}

/* ---- models from the cache --------------------------------------------- */

static enum MHD_Result queue_models(EpRequest *q) {
        const ModelList *all = models_list(q->endpoint->context->models);
        _cleanup_free_ char *json = NULL;
        _cleanup_free_ Model *some = NULL;
        ModelList l;
        int r;

        if (!all)
                return MHD_NO;
        l = *all;
        if (q->token && q->token->models && q->token->models[0]) {
                /* A token limited to some models sees only those. */
                some = calloc(MAX(all->n, 1), sizeof(Model));
                if (!some)
                        return MHD_NO;
                l = (ModelList) { .models = some };
                for (size_t i = 0; i < all->n; i++)
                        if (token_allows_model(q->token, all->models[i].id))
                                some[l.n++] = all->models[i]; /* shallow: not freed here */
        }
        r = model_list_to_json(&l, &json);
        if (r < 0 || !json)
                return MHD_NO;
        return queue_json(q->conn, 200, json, NULL);
}

/* ---- the access handler ----------------------------------------------- */

typedef struct HeaderScan {
        EpRequest *q;
        const char *connection; /* the Connection header: what it lists is hop-by-hop */
        const char *token;
        size_t token_len;
        bool bad_credential;
        int error;
} HeaderScan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value) {
        HeaderScan *s = cls;
        _cleanup_free_ char *line = NULL;
        const char *t;
        size_t n;

        switch (endpoint_request_header_action(name, value)) {
        case ENDPOINT_HEADER_CREDENTIAL:
                t = endpoint_credential_token(name, value, &n);
                if (!t || (s->token && (n != s->token_len || memcmp(t, s->token, n) != 0)))
                        s->bad_credential = true; /* two different tokens, or none in it */
                else
                        s->token = t, s->token_len = n;
                return MHD_YES;
        case ENDPOINT_HEADER_DROP:
                return MHD_YES;
        case ENDPOINT_HEADER_FORWARD:
                if (endpoint_connection_lists(s->connection, name))
                        return MHD_YES;
                if (asprintf(&line, "%s: %s", name, value) < 0 || strv_extend(&s->q->headers, line) < 0)
                        s->error = -ENOMEM;
                return MHD_YES;
        }
        return MHD_YES;
}

static int ep_route(EpRequest *q, const char *method) {
        int r = endpoint_route_parse(method, q->target, &q->route);

        switch (r) {
        case 0:
                return 0;
        case -ENOENT:
                return ep_refuse(q, 404, q->route.format == CHAT_API_ANTHROPIC ? "not_found_error" : "not_found", "not_found",
                                 "No such route on the local endpoint.");
        case -EBADRQC:
                return ep_refuse(q, 405, q->route.format == CHAT_API_ANTHROPIC ? "invalid_request_error" : "method_not_allowed",
                                 "method_not_allowed", "This route does not take that method.");
        case -E2BIG:
                return ep_refuse(q, 414, "invalid_request_error", "uri_too_long", "The request target is too long.");
        default:
                return ep_refuse(q, 400, "invalid_request_error", "bad_request", "The request target is not a path.");
        }
}

static int ep_admit(EpRequest *q) {
        Endpoint *e = q->endpoint;
        const char *host, *cl;
        HeaderScan s = { .q = q };
        uint64_t now = now_usec(CLOCK_REALTIME);
        bool anth = q->route.format == CHAT_API_ANTHROPIC;
        Token *tk;

        if (q->listener->port > 0) {
                host = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Host");
                if (!endpoint_host_ok(host, q->listener->port))
                        return ep_refuse(q, 403, anth ? "permission_error" : "forbidden", "bad_host",
                                         "The Host header does not name this loopback endpoint.");
        }
        if (MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Origin"))
                return ep_refuse(q, 403, anth ? "permission_error" : "forbidden", "origin_refused",
                                 "Requests from web pages (with an Origin header) are refused.");
        cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > ENDPOINT_MAX_BODY)
                return ep_refuse(q, 413, anth ? "request_too_large" : "invalid_request_error", "request_too_large",
                                 "The request body is over the endpoint's limit of 32 MiB.");

        s.connection = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Connection");
        (void) MHD_get_connection_values(q->conn, MHD_HEADER_KIND, scan_header, &s);
        if (s.error < 0)
                return s.error;
        tk = s.bad_credential ? NULL : tokens_lookup(e->tokens, s.token, s.token_len, now);
        if (!tk)
                return ep_refuse(q, 401, anth ? "authentication_error" : "invalid_request_error", "invalid_token",
                                 s.token || s.bad_credential ? "The endpoint token is unknown, revoked or expired."
                                                             : "No endpoint token: send 'Authorization: Bearer TOKEN' "
                                                               "(from 'bankr-llm token').");
        q->token = tk;
        tk->n_inflight++;
        q->app = strdup(tk->app);
        if (!q->app)
                return -ENOMEM;
        if (token_budget_spent(tk))
                return ep_refuse(q, 402, "budget_exceeded", "budget_exceeded", "The token's budget is spent.");
        return 0;
}

static int ep_check_body(EpRequest *q) {
        bool anth = q->route.format == CHAT_API_ANTHROPIC;
        int r;

        if (q->too_big)
                return ep_refuse(q, 413, anth ? "request_too_large" : "invalid_request_error", "request_too_large",
                                 "The request body is over the endpoint's limit of 32 MiB.");
        r = endpoint_body_model(q->body.p, q->body.n, &q->model);
        if (r < 0)
                return r;
        if (!token_allows_model(q->token, q->model))
                return ep_refuse(q, 403, anth ? "permission_error" : "forbidden", "model_not_allowed",
                                 q->model ? "This token may not use that model." : "This token may only use its models: name one.");
        {
                /* The app's budget (Usage.SetBudget), as for Chat. */
                _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
                r = context_request_admit(q->endpoint->context, q->app, strempty(q->model), q->body.n, 0, &q->estimate, &err);
                if (r < 0)
                        return ep_refuse(q, 402, "budget_exceeded", "budget_exceeded",
                                         err.message ?: "The app's budget is spent.");
                q->admitted = true;
        }
        return 0;
}

/* Whether a refusal should wait for the request's body (ENDPOINT_DRAIN_MAX). */
static bool ep_drain_first(EpRequest *q) {
        const char *cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Length");
        char *end = NULL;
        unsigned long long n;

        if (!cl || q->refuse_status == 413)
                return false;
        errno = 0;
        n = strtoull(cl, &end, 10);
        return errno == 0 && end != cl && *end == 0 && n > 0 && n <= ENDPOINT_DRAIN_MAX;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
        EpRequest *q = *con_cls;
        int r;

        if (!q)
                return MHD_NO;
        q->conn = conn;

        if (q->refuse_body && (q->state == EP_NEW || q->state == EP_WAITING || *upload_data_size == 0))
                return queue_refusal(q);

        switch (q->state) {
        case EP_NEW:
                r = ep_route(q, method);
                if (r >= 0 && !q->refuse_body)
                        r = ep_admit(q);
                if (r < 0)
                        return MHD_NO;
                if (q->refuse_body && ep_drain_first(q)) {
                        q->draining = true;
                        q->state = EP_READING;
                        return MHD_YES;
                }
                if (q->refuse_body)
                        return queue_refusal(q);
                if (q->route.kind == ENDPOINT_ROUTE_MODELS) {
                        q->state = EP_DONE;
                        return queue_models(q);
                }
                q->state = EP_READING;
                return MHD_YES;

        case EP_READING:
                if (q->draining) {
                        /* A refusal waits for the end of the body (above). */
                        *upload_data_size = 0;
                        return MHD_YES;
                }
                if (*upload_data_size > 0) {
                        if (q->too_big || q->body.n + *upload_data_size > ENDPOINT_MAX_BODY) {
                                /* Without a Content-Length we learn late: cut it off. */
                                q->too_big = true;
                                buf_done(&q->body);
                                return MHD_NO;
                        }
                        if (buf_append(&q->body, upload_data, *upload_data_size) < 0)
                                return MHD_NO;
                        *upload_data_size = 0;
                        return MHD_YES;
                }
                q->state = EP_WAITING;
                r = ep_check_body(q);
                if (r >= 0 && !q->refuse_body)
                        r = ep_start_upstream(q);
                if (r < 0) {
                        log_warning_errno(r, "Endpoint: failed to start a request: %m");
                        (void) ep_refuse(q, 500, "api_error", "internal_error", "The endpoint failed to start the request.");
                }
                if (!q->reached_gateway)
                        ep_release(q);
                if (q->refuse_body)
                        return queue_refusal(q);
                ep_suspend(q);
                return MHD_YES;

        case EP_WAITING:
                if (q->headers_ready)
                        return queue_stream(q);
                ep_suspend(q);
                return MHD_YES;

        case EP_STREAMING:
        case EP_DONE:
                /* An answer is queued: what still comes of the body is not read. */
                *upload_data_size = 0;
                return MHD_YES;
        }
        return MHD_NO;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
        Listener *l = cls;
        Endpoint *e = l->endpoint;
        EpRequest *q;

        q = calloc(1, sizeof(EpRequest));
        if (!q)
                return NULL;
        q->endpoint = e;
        q->listener = l;
        q->conn = conn;
        q->target = strdup(uri);
        if (!q->target) {
                free(q);
                return NULL;
        }
        q->next = e->requests;
        if (e->requests)
                e->requests->prev = q;
        e->requests = q;
        return q;
}

static void ep_request_free(EpRequest *q) {
        Endpoint *e = q->endpoint;

        if (q->prev)
                q->prev->next = q->next;
        else
                e->requests = q->next;
        if (q->next)
                q->next->prev = q->prev;
        if (q->hr && http_request_is_running(q->hr)) {
                q->cut = true;
                http_request_cancel(q->hr);
        }
        endpoint_book_request(q);
        ep_release(q);
        q->hr = http_request_free(q->hr);
        if (q->token)
                q->token->n_inflight--;
        chat_stream_free(q->stream);
        buf_done(&q->body);
        buf_done(&q->out);
        buf_done(&q->tap);
        strv_free(q->headers);
        free(q->refuse_body);
        free(q->target);
        free(q->model);
        free(q->app);
        free(q->privacy_tier);
        free(q);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
        EpRequest *q = *con_cls;

        if (!q)
                return;
        *con_cls = NULL;
        ep_request_free(q);
}

/* ---- tokens going away ------------------------------------------------- */

/* Cuts every request on tk and forgets tk: one still waiting for its
 * answer gets a 401, one whose answer is flowing is cut off mid-stream. */
static void endpoint_drop_token(Endpoint *e, Token *tk) {
        for (EpRequest *q = e->requests; q; q = q->next) {
                if (q->token != tk)
                        continue;
                if (q->hr && http_request_is_running(q->hr)) {
                        http_request_cancel(q->hr);
                        q->upstream_done = true;
                        q->upstream_error = -ECANCELED;
                        q->cut = true;
                        endpoint_book_request(q);
                }
                q->token = NULL;
                tk->n_inflight--;
                if (q->state == EP_STREAMING || q->state == EP_DONE)
                        q->cut = true;
                else {
                        q->cut = false;
                        (void) ep_refuse(q, 401, q->route.format == CHAT_API_ANTHROPIC ? "authentication_error" : "invalid_request_error",
                                         "invalid_token", "The endpoint token was revoked.");
                }
                ep_resume(q);
        }
        tokens_remove(e->tokens, tk);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        const char *name, *old_owner, *new_owner;
        unsigned n = 0;
        Token *tk, *next;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || !isempty(new_owner))
                return 0;
        for (tk = tokens_first(e->tokens); tk; tk = next) {
                next = tk->next;
                if (tk->lifetime == TOKEN_LIFETIME_CONNECTION && streq_ptr(tk->owner, name)) {
                        endpoint_drop_token(e, tk);
                        n++;
                }
        }
        if (n > 0) {
                log_info("%s left the bus; revoked %u endpoint token(s) it had created.", name, n);
                endpoint_tokens_changed(e);
        }
        return 0;
}

/* ---- listening -------------------------------------------------------- */

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char buf[512];

        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        log_debug("libmicrohttpd (%s): %s", ((Listener *) cls)->what, buf);
}

static int listener_start(Endpoint *e, Listener *l, const char *what, unsigned flags, ...) {
        const union MHD_DaemonInfo *info;
        va_list ap;
        int fd, r;

        l->endpoint = e;
        l->what = what;
        va_start(ap, flags);
        l->daemon = MHD_start_daemon_va(flags | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, (uint16_t) l->port,
                                        NULL, NULL, on_access, l, ap);
        va_end(ap);
        if (!l->daemon)
                return -EADDRINUSE;
        info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        fd = info ? info->epoll_fd : -1;
        if (fd < 0) {
                MHD_stop_daemon(l->daemon);
                l->daemon = NULL;
                return -EIO;
        }
        r = sd_event_add_io(e->context->event, &l->io, fd, EPOLLIN, on_listener_io, l);
        if (r >= 0)
                r = wakeup_init(&l->wake, e->context->event, what, listener_run, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->io, what);
        listener_arm(l);
        return 0;
}

static void listener_stop(Listener *l) {
        l->io = sd_event_source_disable_unref(l->io);
        wakeup_done(&l->wake);
        if (l->daemon)
                MHD_stop_daemon(l->daemon);
        l->daemon = NULL;
}

#define COMMON_OPTIONS(e, l)                                                                      \
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (l), MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, (l), \
                MHD_OPTION_CONNECTION_LIMIT, (e)->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,   \
                (unsigned) ENDPOINT_CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,       \
                (size_t) ENDPOINT_CONNECTION_MEMORY

static int start_inet(Endpoint *e, unsigned port) {
        Listener *l = &e->listeners[L_INET];
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        const union MHD_DaemonInfo *info;
        int r;

        l->port = port;
        r = listener_start(e, l, "endpoint-127.0.0.1", 0, MHD_OPTION_SOCK_ADDR, &sa, COMMON_OPTIONS(e, l), MHD_OPTION_END);
        if (r < 0)
                return r;
        info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
        l->port = info ? info->port : port;
        return 0;
}

static void start_inet6(Endpoint *e) {
        Listener *l = &e->listeners[L_INET6];
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t) e->port),
                                   .sin6_addr = IN6ADDR_LOOPBACK_INIT };

        l->port = e->port;
        if (listener_start(e, l, "endpoint-::1", MHD_USE_IPv6, MHD_OPTION_SOCK_ADDR, &sa, COMMON_OPTIONS(e, l),
                           MHD_OPTION_END) < 0) {
                listener_stop(l);
                log_debug("Endpoint: not listening on [::1]:%u (no IPv6 loopback, or the port is taken there).", e->port);
        }
}

static int start_unix(Endpoint *e) {
        Listener *l = &e->listeners[L_UNIX];
        const char *rt = getenv("XDG_RUNTIME_DIR");
        _cleanup_free_ char *dir = NULL, *path = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        mode_t old;
        int fd, r;

        if (isempty(rt) || rt[0] != '/')
                return -ENXIO;
        if (asprintf(&dir, "%s/bankr-llm", rt) < 0 || asprintf(&path, "%s/endpoint.sock", dir) < 0)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* A socket left by a previous instance (we hold the bus name, so it is not live). */
        if (lstat(path, &st) >= 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                (void) unlink(path);
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        old = umask(0177);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        (void) chmod(path, 0600);
        l->port = 0;
        r = listener_start(e, l, "endpoint-unix", 0, MHD_OPTION_LISTEN_SOCKET, fd, COMMON_OPTIONS(e, l), MHD_OPTION_END);
        if (r < 0) {
                if (!l->daemon)
                        close(fd); /* else libmicrohttpd closes it, stopping */
                listener_stop(l);
                (void) unlink(path);
                return r;
        }
        e->socket_path = TAKE_PTR(path);
        return 0;
}

/* ---- sockets from systemd (bankr-llmd.socket) ----------------------- */

typedef union SockAddr {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
} SockAddr;

/* The listening sockets the user manager passed, by listener: -1 where
 * none. Only what the endpoint may listen on is taken: stream sockets on
 * 127.0.0.1 (Url names it) or ::1, and unix sockets with a path (an abstract one has
 * no permissions: anyone on the host could connect). Others are closed,
 * with a warning: nothing would listen on them anyway. */
static void take_passed_sockets(int fds[_L_MAX]) {
        int n;

        for (unsigned i = 0; i < _L_MAX; i++)
                fds[i] = -1;
        n = sd_listen_fds(true);
        if (n < 0) {
                log_warning_errno(n, "Endpoint: cannot read the sockets systemd passed: %m");
                return;
        }
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                SockAddr a = {};
                socklen_t len = sizeof(a);
                int which = -1;

                if (getsockname(fd, &a.sa, &len) < 0 || sd_is_socket(fd, a.sa.sa_family, SOCK_STREAM, 1) <= 0)
                        which = -1;
                else if (a.sa.sa_family == AF_INET && ntohl(a.in.sin_addr.s_addr) == INADDR_LOOPBACK)
                        which = L_INET;
                else if (a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a.in6.sin6_addr))
                        which = L_INET6;
                else if (a.sa.sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path) &&
                         a.un.sun_path[0] == '/')
                        which = L_UNIX;
                if (which < 0 || fds[which] >= 0) {
                        log_warning("Endpoint: ignoring socket %d from systemd: only one listening stream socket "
                                    "on 127.0.0.1, one on ::1 and one unix socket with a path are used.", fd);
                        close(fd);
                        continue;
                }
                if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                        log_warning_errno(errno, "Endpoint: ignoring socket %d from systemd: cannot make it "
                                                 "non-blocking: %m", fd);
                        close(fd);
                        continue;
                }
                fds[which] = fd;
        }
}

/* A listener on a socket systemd passed; its port (0 for the unix one). */
static int start_passed(Endpoint *e, unsigned which, int fd) {
        static const char *const what[_L_MAX] = {
                [L_INET] = "endpoint-127.0.0.1", [L_INET6] = "endpoint-::1", [L_UNIX] = "endpoint-unix",
        };
        Listener *l = &e->listeners[which];
        SockAddr a = {};
        socklen_t len = sizeof(a);
        int r;

        if (getsockname(fd, &a.sa, &len) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        l->port = which == L_INET ? ntohs(a.in.sin_port) : which == L_INET6 ? ntohs(a.in6.sin6_port) : 0;
        r = listener_start(e, l, what[which], which == L_INET6 ? MHD_USE_IPv6 : 0, MHD_OPTION_LISTEN_SOCKET, fd,
                           COMMON_OPTIONS(e, l), MHD_OPTION_END);
        if (r < 0) {
                if (!l->daemon)
                        close(fd); /* else libmicrohttpd closes it, stopping */
                listener_stop(l);
                return r;
        }
        if (which == L_UNIX) {
                free(e->socket_path);
                e->socket_path = strndup(a.un.sun_path, sizeof(a.un.sun_path));
                if (!e->socket_path)
                        return -ENOMEM;
                e->socket_passed = true;
        }
        return 0;
}

static unsigned read_kept_port(const char *path) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        uint64_t p = 0;

        if (read_full_file(path, 64 * 1024, &text, NULL) < 0)
                return 0;
        o = json_tokener_parse(text);
        if (!json_get_count(o, "port", &p) || p == 0 || p > 65535)
                return 0;
        return (unsigned) p;
}

static void keep_port(const char *path, unsigned port) {
        char text[64];
        int n = snprintf(text, sizeof(text), "{\n  \"port\": %u\n}\n", port);

        if (mkdir_parents(path, 0700) < 0 || write_file_atomic(path, text, (size_t) n, 0600) < 0)
                log_warning("Endpoint: could not keep the port in %s; it may change at the next start.", path);
}

static void endpoint_size_limits(Endpoint *e) {
        struct rlimit rl;
        /* chat.c's budget: 1024 requests × 3 descriptors + 64 spare. */
        const uint64_t chat = 1024 * 3 + 64;

        e->max_connections = ENDPOINT_MAX_CONNECTIONS;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY) {
                uint64_t budget = rl.rlim_cur > chat ? (rl.rlim_cur - chat) / ENDPOINT_FDS_PER_CONNECTION : 0;
                if (budget < e->max_connections) {
                        e->max_connections = (unsigned) MAX(budget, 16);
                        log_warning("Only %llu file descriptors may be open: the endpoint admits %u connections at a time.",
                                    (unsigned long long) rl.rlim_cur, e->max_connections);
                }
        }
}

static int state_path(const char *leaf, char **ret) {
        const char *s = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

        if (!isempty(s) && s[0] == '/')
                return asprintf(ret, "%s/bankr-llm/%s", s, leaf) < 0 ? -ENOMEM : 0;
        if (!isempty(home) && home[0] == '/')
                return asprintf(ret, "%s/.local/state/bankr-llm/%s", home, leaf) < 0 ? -ENOMEM : 0;
        return -ENXIO;
}

int endpoint_new(Context *c, Endpoint **ret) {
        _cleanup_(endpoint_freep) Endpoint *e = NULL;
        _cleanup_free_ char *tokens_path = NULL;
        int r;

        e = calloc(1, sizeof(Endpoint));
        if (!e)
                return -ENOMEM;
        e->context = c;
        endpoint_size_limits(e);

        r = state_path("tokens.json", &tokens_path);
        if (r >= 0)
                r = state_path("endpoint.json", &e->port_file);
        if (r < 0)
                return log_error_errno(r, "Cannot locate the state directory for endpoint tokens: HOME is not set.");
        r = tokens_new(tokens_path, &e->tokens);
        if (r < 0)
                return r;

        r = sd_bus_match_signal_async(c->bus, &e->owner_match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, e);
        if (r < 0)
                return log_error_errno(r, "Failed to watch for token creators leaving the bus: %m");

        *ret = TAKE_PTR(e);
        return 0;
}

void endpoint_start(Endpoint *e) {
        unsigned kept, first;
        int passed[_L_MAX];
        bool from_systemd = false;
        const char *env;
        int r;

        if (!e || e->listeners[L_INET].daemon || e->listeners[L_UNIX].daemon)
                return;
        take_passed_sockets(passed);
        env = getenv("BANKR_LLMD_ENDPOINT_PORT");
        first = ENDPOINT_PORT_DEFAULT;
        if (!isempty(env)) {
                unsigned long v = strtoul(env, NULL, 10);
                first = v <= 65535 ? (unsigned) v : ENDPOINT_PORT_DEFAULT;
        }
        kept = read_kept_port(e->port_file);
        if (kept > 0)
                first = kept;
        r = -EADDRINUSE;
        if (passed[L_INET] >= 0) {
                /* bankr-llmd.socket's port wins: it is where connections wait. */
                r = start_passed(e, L_INET, passed[L_INET]);
                if (r < 0)
                        log_warning_errno(r, "Endpoint: cannot use the loopback socket systemd passed: %m");
                else
                        from_systemd = true;
        }
        for (unsigned i = 0; r < 0 && first > 0 && i < ENDPOINT_PORT_TRIES && first + i <= 65535; i++) {
                listener_stop(&e->listeners[L_INET]);
                r = start_inet(e, first + i);
        }
        if (r < 0) {
                listener_stop(&e->listeners[L_INET]);
                r = start_inet(e, 0);
        }
        if (r < 0) {
                listener_stop(&e->listeners[L_INET]);
                log_warning_errno(r, "Endpoint: cannot listen on 127.0.0.1: %m");
        } else {
                e->port = e->listeners[L_INET].port;
                if (asprintf(&e->url, "http://127.0.0.1:%u", e->port) < 0)
                        e->url = NULL;
                if (e->port != kept)
                        keep_port(e->port_file, e->port);
                /* ::1 on the same port: systemd's when 127.0.0.1 is too. */
                if (!from_systemd || passed[L_INET6] < 0 || start_passed(e, L_INET6, TAKE_FD(passed[L_INET6])) < 0)
                        start_inet6(e);
                log_info("Endpoint listening on %s%s.", e->url, from_systemd ? " (bankr-llmd.socket's)" : "");
        }
        if (passed[L_INET6] >= 0)
                close(passed[L_INET6]);

        if (passed[L_UNIX] >= 0) {
                /* No socket of our own then: it could only replace the user
                 * manager's file (start_unix() removes what is in the way). */
                r = start_passed(e, L_UNIX, passed[L_UNIX]);
                if (r < 0)
                        log_warning_errno(r, "Endpoint: cannot use the unix socket systemd passed: %m");
                return;
        }
        r = start_unix(e);
        if (r < 0) {
                listener_stop(&e->listeners[L_UNIX]);
                log_warning_errno(r, "Endpoint: no unix socket in $XDG_RUNTIME_DIR: %m");
        }
}

Endpoint *endpoint_free(Endpoint *e) {
        if (!e)
                return NULL;
        for (unsigned i = 0; i < _L_MAX; i++)
                listener_stop(&e->listeners[i]);
        /* Stopping the daemons completed (and freed) every request. */
        if (e->socket_path && !e->socket_passed)
                (void) unlink(e->socket_path);
        sd_bus_slot_unref(e->owner_match);
        sd_event_source_disable_unref(e->tokens_changed);
        tokens_free(e->tokens);
        free(e->url);
        free(e->socket_path);
        free(e->port_file);
        free(e);
        return NULL;
}

/* ---- D-Bus ------------------------------------------------------------ */

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;

        if (streq(property, "Url"))
                return sd_bus_message_append(reply, "s", strempty(e->url));
        return sd_bus_message_append(reply, "s", strempty(e->socket_path));
}

static int append_token(sd_bus_message *m, const Token *tk) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "id", "s", tk->id, "app", "s",
                                          tk->app, "lifetime", "s", token_lifetime_to_string(tk->lifetime), "created_at",
                                          "t", tk->created_at, "expires_at", "t", tk->expires_at, "budget_usd", "d",
                                          tk->budget_usd, "spent_usd", "d", tk->spent_usd, "requests", "u", tk->requests,
                                          "last_used_at", "t", tk->last_used_at);
        if (r >= 0)
                r = bus_append_dict_strv(m, "models", tk->models);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int property_get_tokens(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        (void) tokens_gc(e->tokens, now);
        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (Token *tk = tokens_first(e->tokens); r >= 0 && tk; tk = tk->next) {
                if (tk->expires_at > 0 && now >= tk->expires_at)
                        continue;
                r = append_token(reply, tk);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static bool app_valid(const char *app) {
        /* What the ledger books under (Usage): 1 to 255 letters, digits, '.', '_', '-'. */
        return app_id_is_valid(app, strlen(app));
}

typedef struct TokenOptions {
        TokenLifetime lifetime;
        uint32_t expires_s;
        bool has_expires;
        double budget_usd;
        char **models;
} TokenOptions;

typedef struct TokenOptionsRead {
        TokenOptions *options;
        sd_bus_error *error;
} TokenOptionsRead;

/* One entry of CreateToken's options, for bus_dict_walk(). */
static int read_option(sd_bus_message *m, const char *key, void *userdata) {
        TokenOptionsRead *t = userdata;
        TokenOptions *o = t->options;
        sd_bus_error *error = t->error;
        const char *s;
        int r;

        if (streq(key, "lifetime")) {
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option lifetime is a string.");
                o->lifetime = token_lifetime_from_string(s);
                if (o->lifetime < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown lifetime '%s': use connection, expiring or persistent.", s);
        } else if (streq(key, "expires_s")) {
                r = sd_bus_message_read(m, "v", "u", &o->expires_s);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option expires_s is a u (seconds).");
                o->has_expires = true;
        } else if (streq(key, "budget_usd")) {
                r = sd_bus_message_read(m, "v", "d", &o->budget_usd);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option budget_usd is a d (USD).");
                if (!(o->budget_usd >= 0) || o->budget_usd > 1e9)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option budget_usd must be a non-negative amount (0: none).");
        } else if (streq(key, "models")) {
                r = sd_bus_message_enter_container(m, 'v', "as");
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option models is an as.");
                o->models = strv_free(o->models);
                r = sd_bus_message_read_strv(m, &o->models);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                for (char **i = o->models; i && *i; i++)
                        if (isempty(*i) || strlen(*i) > 256)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option models holds an empty or overlong model id.");
        } else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown option '%s': known are lifetime, expires_s, budget_usd, models.", key);
        return 0;
}

static int read_options(sd_bus_message *m, TokenOptions *o, sd_bus_error *error) {
        return bus_dict_walk(m, read_option, &(TokenOptionsRead) { .options = o, .error = error });
}

static int method_create_token(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        TokenOptions o = { .lifetime = TOKEN_LIFETIME_CONNECTION };
        _cleanup_(erase_and_freep) char *secret = NULL;
        uint64_t expires_at = 0;
        const char *app;
        Token *tk;
        int r;

        r = sd_bus_message_read(m, "s", &app);
        if (r < 0)
                return r;
        if (!app_valid(app))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The app name must be 1 to 255 letters, digits, '.', '_' or '-', e.g. claude-code.");
        r = read_options(m, &o, error);
        if (r < 0) {
                strv_free(o.models);
                return r;
        }
        _cleanup_strv_free_ char **models = o.models;

        if (o.lifetime == TOKEN_LIFETIME_EXPIRING) {
                if (!o.has_expires || o.expires_s == 0 || o.expires_s > TOKEN_EXPIRES_MAX_S)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "An expiring token needs expires_s, from 1 second to 7 days (604800).");
                expires_at = now_usec(CLOCK_REALTIME) + (uint64_t) o.expires_s * USEC_PER_SEC;
        } else if (o.has_expires)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "expires_s goes with lifetime expiring only.");

        if (o.lifetime == TOKEN_LIFETIME_PERSISTENT) {
                /* It outlives the caller: never for a sandboxed app, and only with polkit's yes. */
                r = polkit_check_host_async(e->context->polkit, m, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
                r = polkit_check_async(e->context->polkit, m, ACTION_CREATE_TOKEN, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }

        r = tokens_create(e->tokens, app, o.lifetime,
                          o.lifetime == TOKEN_LIFETIME_CONNECTION ? sd_bus_message_get_sender(m) : NULL, expires_at,
                          o.budget_usd, models, &secret, &tk);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to create the token: %m");
        log_info("Endpoint: created %s token %s for %s.", token_lifetime_to_string(tk->lifetime), tk->id, tk->app);
        endpoint_tokens_changed(e);
        return sd_bus_reply_method_return(m, "ss", secret, tk->id);
}

static int method_revoke_token(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Endpoint *e = userdata;
        const char *id;
        Token *tk;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        tk = tokens_find(e->tokens, id);
        if (!tk)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "No token with id '%s'.", id);
        log_info("Endpoint: revoked token %s (%s).", tk->id, tk->app);
        endpoint_drop_token(e, tk);
        endpoint_tokens_changed(e);
        return sd_bus_reply_method_return(m, "");
}

const sd_bus_vtable endpoint_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Url", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SocketPath", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Tokens", "aa{sv}", property_get_tokens, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("CreateToken", SD_BUS_ARGS("s", app, "a{sv}", options), SD_BUS_RESULT("s", token, "s", id),
                                method_create_token, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("RevokeToken", SD_BUS_ARGS("s", id), SD_BUS_NO_RESULT, method_revoke_token,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

const char *endpoint_get_url(Endpoint *e) {
        return e ? e->url : NULL;
}
