/* SPDX-License-Identifier: MIT */
/*
 * libcurl's multi interface on sd-event (see http.h for the contract).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * it next needs a kick (CURLMOPT_TIMERFUNCTION); we turn those into one io
 * source per socket, remembered through curl_multi_assign(), and one timer
 * source. Events go back in through curl_multi_socket_action(); finished
 * transfers come out of curl_multi_info_read() and find their HttpRequest
 * through CURLOPT_PRIVATE.
 *
 * curl forbids adding or removing easy handles from inside its own
 * callbacks, and our on_headers/on_body callbacks run there. So while we are
 * inside curl (Http.in_curl > 0) cancel, free and start only mark the
 * request; http_process() carries the work out once curl has returned.
 *
 * First-byte, idle and total timeouts are ours: one timer per request that
 * is re-armed lazily (received bytes only move a timestamp), so the
 * error says which limit was hit.
 */
#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include "http.h"
#include "log.h"

typedef enum RequestState {
        REQUEST_NEW,
        REQUEST_RUNNING,
        REQUEST_DONE,
        REQUEST_CANCELLED,
} RequestState;

typedef struct HttpSocket HttpSocket;
struct HttpSocket {
        Http *http;
        sd_event_source *source;
        HttpSocket *prev, *next;
};

struct Http {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;

        HttpRequest *requests; /* every request created and not yet freed */
        HttpSocket *sockets;   /* every socket curl asked us to watch */
        unsigned n_running;

        unsigned in_curl; /* > 0 while inside curl_multi_socket_action() */
        bool deferred;    /* some request has work waiting for http_process() */
};

struct HttpRequest {
        Http *http;
        HttpRequest *prev, *next;

        CURL *curl;
        char *method;
        char *url;
        char *host;
        long port;

        struct curl_slist *headers; /* may hold keys: wiped on free */
        char *body_out;
        size_t body_out_len;
        bool has_body;

        uint64_t connect_timeout, first_byte_timeout, idle_timeout, total_timeout;
        size_t max_body;

        http_headers_handler_t on_headers;
        http_body_handler_t on_body;
        http_done_handler_t on_done;
        void *userdata;

        RequestState state;
        bool in_multi;
        bool add_pending;
        bool remove_pending;
        bool free_pending;
        bool headers_done;
        bool buffering;

        int error; /* set when one of our callbacks aborted the transfer */
        char *error_message;

        long status;
        char **response_headers; /* raw "Name: value" lines of the last response */
        size_t n_response_headers;
        char *body;
        size_t body_len, body_alloc;

        sd_event_source *timer;
        uint64_t start, first_byte, last_rx, end; /* CLOCK_MONOTONIC µs */

        char errbuf[CURL_ERROR_SIZE];
};

static void http_process(Http *h);

/* ---- small helpers ---------------------------------------------------- */

static void format_duration(char *buf, size_t size, uint64_t usec) {
        if (usec >= USEC_PER_SEC && usec % USEC_PER_SEC == 0)
                (void) snprintf(buf, size, "%" PRIu64 " s", usec / USEC_PER_SEC);
        else if (usec >= USEC_PER_SEC)
                (void) snprintf(buf, size, "%.1f s", (double) usec / USEC_PER_SEC);
        else
                (void) snprintf(buf, size, "%" PRIu64 " ms", (usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static void request_set_message(HttpRequest *r, const char *fmt, ...) _printf_(2, 3);
static void request_set_message(HttpRequest *r, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);

        free(r->error_message);
        r->error_message = m; /* NULL on OOM: callers still get the errno */
}

static void response_headers_clear(HttpRequest *r) {
        for (size_t i = 0; i < r->n_response_headers; i++)
                free(r->response_headers[i]);
        free(r->response_headers);
        r->response_headers = NULL;
        r->n_response_headers = 0;
}

static void slist_erase_and_free(struct curl_slist *l) {
        for (struct curl_slist *i = l; i; i = i->next)
                if (i->data)
                        explicit_bzero(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

/* ---- sockets and curl's timer ----------------------------------------- */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpSocket *hs = userdata;
        Http *h = hs->http;
        int action = 0;
        int running;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;

        /* hs may be freed by the call below (CURL_POLL_REMOVE). */
        h->in_curl++;
        CURLMcode c = curl_multi_socket_action(h->multi, fd, action, &running);
        h->in_curl--;
        if (c != CURLM_OK)
                log_debug("curl_multi_socket_action() failed: %s", curl_multi_strerror(c));

        http_process(h);
        return 0;
}

static void http_socket_free(HttpSocket *hs) {
        if (!hs)
                return;
        if (hs->prev)
                hs->prev->next = hs->next;
        else
                hs->http->sockets = hs->next;
        if (hs->next)
                hs->next->prev = hs->prev;
        /* Unregisters from epoll at once: the fd number may come back soon. */
        sd_event_source_disable_unref(hs->source);
        free(hs);
}

static int curl_socket_cb(CURL *curl, curl_socket_t fd, int what, void *userdata, void *socketp) {
        Http *h = userdata;
        HttpSocket *hs = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (hs) {
                        (void) curl_multi_assign(h->multi, fd, NULL);
                        http_socket_free(hs);
                }
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (hs) {
                r = sd_event_source_set_io_events(hs->source, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(hs->source, events ? SD_EVENT_ON : SD_EVENT_OFF);
                if (r < 0) {
                        log_debug_errno(r, "Failed to update io watch for socket %d: %m", fd);
                        return -1;
                }
                return 0;
        }

        hs = calloc(1, sizeof(HttpSocket));
        if (!hs)
                return -1;
        hs->http = h;
        r = sd_event_add_io(h->event, &hs->source, fd, events, on_io, hs);
        if (r < 0) {
                log_debug_errno(r, "Failed to watch socket %d: %m", fd);
                free(hs);
                return -1;
        }
        (void) sd_event_source_set_description(hs->source, "http-socket");
        if (events == 0)
                (void) sd_event_source_set_enabled(hs->source, SD_EVENT_OFF);

        hs->next = h->sockets;
        if (h->sockets)
                h->sockets->prev = hs;
        h->sockets = hs;

        if (curl_multi_assign(h->multi, fd, hs) != CURLM_OK) {
                http_socket_free(hs);
                return -1;
        }
        return 0;
}

static int on_curl_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Http *h = userdata;
        int running;

        h->in_curl++;
        CURLMcode c = curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        h->in_curl--;
        if (c != CURLM_OK)
                log_debug("curl_multi_socket_action() failed: %s", curl_multi_strerror(c));

        http_process(h);
        return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userdata) {
        Http *h = userdata;
        int r;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF) < 0 ? -1 : 0;

        /* Never call curl from here (curl says so): fire from the loop. */
        r = sd_event_source_set_time(h->timer, now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_debug_errno(r, "Failed to arm curl timer: %m");
                return -1;
        }
        return 0;
}

/* ---- Http ------------------------------------------------------------- */

int http_new(sd_event *e, Http **ret) {
        static bool curl_initialized = false;
        int r;

        if (!e || !ret)
                return -EINVAL;

        if (!curl_initialized) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return log_error_errno(EIO, "Failed to initialize libcurl.");
                curl_initialized = true;
        }

        Http *h = calloc(1, sizeof(Http));
        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(e);

        h->multi = curl_multi_init();
        if (!h->multi) {
                http_free(h);
                return -ENOMEM;
        }

        if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX) != CURLM_OK) {
                http_free(h);
                return log_error_errno(EIO, "Failed to set up the curl multi handle.");
        }

        /* 1 µs accuracy: curl's most frequent request is "call me again now"
         * (after every added handle), and sd-event would otherwise delay it
         * by up to the accuracy to coalesce wakeups. */
        r = sd_event_add_time(e, &h->timer, CLOCK_MONOTONIC, 0, 1, on_curl_timer, h);
        if (r < 0) {
                http_free(h);
                return log_error_errno(r, "Failed to add curl timer: %m");
        }
        (void) sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(h->timer, "http-curl-timer");

        *ret = h;
        return 0;
}

static void request_destroy(HttpRequest *r);

Http *http_free(Http *h) {
        if (!h)
                return NULL;

        /* Requests the caller still holds stay allocated, detached from us. */
        while (h->requests) {
                HttpRequest *r = h->requests;

                http_request_cancel(r);
                if (r->in_multi) {
                        (void) curl_multi_remove_handle(h->multi, r->curl);
                        r->in_multi = false;
                }
                r->remove_pending = false;
                r->timer = sd_event_source_disable_unref(r->timer);

                h->requests = r->next;
                if (h->requests)
                        h->requests->prev = NULL;
                r->prev = r->next = NULL;
                r->http = NULL;

                if (r->free_pending)
                        request_destroy(r);
        }

        if (h->multi)
                (void) curl_multi_cleanup(h->multi);
        while (h->sockets)
                http_socket_free(h->sockets);
        sd_event_source_disable_unref(h->timer);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

unsigned http_n_running(Http *h) {
        return h ? h->n_running : 0;
}

/* ---- requests --------------------------------------------------------- */

static bool method_is_valid(const char *m) {
        if (isempty(m) || strlen(m) > 16)
                return false;
        for (const char *p = m; *p; p++)
                if (*p < 'A' || *p > 'Z')
                        return false;
        return true;
}

static int parse_url(const char *url, char **ret_host, long *ret_port) {
        CURLU *u;
        char *scheme = NULL, *user = NULL, *password = NULL, *host = NULL, *port = NULL;
        int r = -EINVAL;

        u = curl_url();
        if (!u)
                return -ENOMEM;

        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
                goto finish;
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            !(streq(scheme, "http") || streq(scheme, "https")))
                goto finish;
        /* Credentials in a URL would end up in logs and messages. */
        if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
            curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK)
                goto finish;
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || isempty(host))
                goto finish;
        if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
                goto finish;

        *ret_port = strtol(port, NULL, 10);
        *ret_host = strdup(host);
        r = *ret_host ? 0 : -ENOMEM;

finish:
        curl_free(scheme);
        curl_free(user);
        if (password) {
                explicit_bzero(password, strlen(password));
                curl_free(password);
        }
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return r;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata);
static size_t write_cb(char *buf, size_t size, size_t n, void *userdata);

/* Which CA certificates verify the server: the system's, unless the
 * environment names others the way the curl tool reads them (libcurl itself
 * does not): CURL_CA_BUNDLE, else SSL_CERT_FILE, a PEM file; SSL_CERT_DIR, a
 * hashed directory. For a private gateway, and for the tests' own CA. */
static int request_set_ca_from_env(CURL *c) {
        static bool logged = false;
        const char *bundle = getenv("CURL_CA_BUNDLE"), *dir = getenv("SSL_CERT_DIR");
        const char *name = "CURL_CA_BUNDLE";

        if (isempty(bundle)) {
                bundle = getenv("SSL_CERT_FILE");
                name = "SSL_CERT_FILE";
        }
        if (!isempty(bundle) && curl_easy_setopt(c, CURLOPT_CAINFO, bundle) != CURLE_OK)
                return -EIO;
        if (!isempty(dir) && curl_easy_setopt(c, CURLOPT_CAPATH, dir) != CURLE_OK)
                return -EIO;
        if (!logged && (!isempty(bundle) || !isempty(dir))) {
                logged = true;
                if (!isempty(bundle))
                        log_info("TLS: trusting the CA certificates in %s (%s), not the system's.", bundle, name);
                if (!isempty(dir))
                        log_info("TLS: trusting the CA certificates in the directory %s (SSL_CERT_DIR).", dir);
        }
        return 0;
}

int http_request_new(Http *h, const char *method, const char *url, HttpRequest **ret) {
        _cleanup_free_ char *host = NULL;
        long port = 0;
        int r;

        if (!h || !ret || !url)
                return -EINVAL;
        if (!method_is_valid(method))
                return -EINVAL;
        r = parse_url(url, &host, &port);
        if (r < 0)
                return r;

        HttpRequest *req = calloc(1, sizeof(HttpRequest));
        if (!req)
                return -ENOMEM;
        req->http = h;
        req->max_body = HTTP_MAX_BODY_DEFAULT;
        req->port = port;
        req->host = TAKE_PTR(host);
        req->method = strdup(method);
        req->url = strdup(url);
        req->curl = curl_easy_init();
        req->body = calloc(1, 1);
        req->body_alloc = req->body ? 1 : 0;

        /* Link first so that request_destroy() can unlink in every case. */
        req->next = h->requests;
        if (h->requests)
                h->requests->prev = req;
        h->requests = req;

        if (!req->method || !req->url || !req->curl || !req->body) {
                request_destroy(req);
                return -ENOMEM;
        }

        CURL *c = req->curl;
        if (curl_easy_setopt(c, CURLOPT_URL, req->url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PRIVATE, req) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            /* A redirect is reported as its status: never carry keys elsewhere. */
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_USERAGENT, "bankr-llmd/" VERSION) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS) != CURLE_OK ||
            /* Waiting for a connection to multiplex on only pays off where
             * HTTP/2 is possible (TLS); on plain http it serialises
             * concurrent transfers behind the first answer. */
            curl_easy_setopt(c, CURLOPT_PIPEWAIT, strncasecmp(url, "https:", 6) == 0 ? 1L : 0L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 60L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 30L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            /* Our headers (the key) go to the server only, never to a proxy. */
            curl_easy_setopt(c, CURLOPT_HEADEROPT, (long) CURLHEADER_SEPARATE) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, req->errbuf) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERDATA, req) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, req) != CURLE_OK) {
                request_destroy(req);
                return log_error_errno(EIO, "Failed to set up a curl request.");
        }
        if (request_set_ca_from_env(c) < 0) {
                request_destroy(req);
                return log_error_errno(EIO, "Failed to set up a curl request.");
        }

        *ret = req;
        return 0;
}

static void request_destroy(HttpRequest *r) {
        if (r->http) {
                if (r->prev)
                        r->prev->next = r->next;
                else
                        r->http->requests = r->next;
                if (r->next)
                        r->next->prev = r->prev;
        }
        if (r->curl)
                curl_easy_cleanup(r->curl);
        sd_event_source_disable_unref(r->timer);
        slist_erase_and_free(r->headers);
        if (r->body_out) {
                explicit_bzero(r->body_out, r->body_out_len);
                free(r->body_out);
        }
        response_headers_clear(r);
        free(r->body);
        free(r->error_message);
        free(r->method);
        free(r->url);
        free(r->host);
        free(r);
}

/* Takes r out of the multi handle now, or once curl has returned. */
static void request_detach(HttpRequest *r) {
        r->add_pending = false;
        if (!r->in_multi)
                return;
        if (r->http->in_curl > 0) {
                r->remove_pending = true;
                r->http->deferred = true;
                return;
        }
        /* For an unfinished HTTP/1 transfer this closes the connection: it
         * never goes back to the pool half-read. */
        (void) curl_multi_remove_handle(r->http->multi, r->curl);
        r->in_multi = false;
}

static void request_stop(HttpRequest *r, RequestState state) {
        assert(r->state == REQUEST_RUNNING);
        r->state = state;
        r->end = now_usec(CLOCK_MONOTONIC);
        if (r->http)
                r->http->n_running--;
        if (r->timer)
                (void) sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
        request_detach(r);
}

void http_request_cancel(HttpRequest *r) {
        if (!r || r->state != REQUEST_RUNNING)
                return;
        log_debug("%s %s: cancelled", r->method, r->url);
        request_stop(r, REQUEST_CANCELLED);
}

HttpRequest *http_request_free(HttpRequest *r) {
        if (!r)
                return NULL;

        http_request_cancel(r);
        if (r->http && r->http->in_curl > 0) {
                /* curl may still hold r inside the callback that called us. */
                r->free_pending = true;
                r->http->deferred = true;
                return NULL;
        }
        request_destroy(r);
        return NULL;
}

int http_request_add_header(HttpRequest *r, const char *header) {
        if (!r || isempty(header) || !strchr(header, ':') || strpbrk(header, "\r\n"))
                return -EINVAL;
        if (r->state != REQUEST_NEW)
                return -EBUSY;

        struct curl_slist *l = curl_slist_append(r->headers, header);
        if (!l)
                return -ENOMEM;
        r->headers = l;
        return 0;
}

int http_request_set_body(HttpRequest *r, const void *data, size_t len, const char *content_type) {
        _cleanup_free_ char *ct = NULL;
        char *copy;
        int k;

        if (!r || (!data && len > 0))
                return -EINVAL;
        if (r->state != REQUEST_NEW || r->has_body)
                return -EBUSY;
        if (content_type && strpbrk(content_type, "\r\n"))
                return -EINVAL;

        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, data, len);
        copy[len] = 0;

        if (content_type) {
                if (asprintf(&ct, "Content-Type: %s", content_type) < 0) {
                        free(copy);
                        return -ENOMEM;
                }
                k = http_request_add_header(r, ct);
                if (k < 0) {
                        explicit_bzero(copy, len);
                        free(copy);
                        return k;
                }
        }

        r->body_out = copy;
        r->body_out_len = len;
        r->has_body = true;
        return 0;
}

void http_request_set_timeouts(HttpRequest *r, uint64_t connect_usec, uint64_t first_byte_usec,
                               uint64_t idle_usec, uint64_t total_usec) {
        if (!r || r->state != REQUEST_NEW)
                return;
        r->connect_timeout = connect_usec;
        r->first_byte_timeout = first_byte_usec;
        r->idle_timeout = idle_usec;
        r->total_timeout = total_usec;
}

void http_request_set_max_body(HttpRequest *r, size_t max) {
        if (r)
                r->max_body = max;
}

void http_request_set_on_headers(HttpRequest *r, http_headers_handler_t cb) {
        if (r)
                r->on_headers = cb;
}

void http_request_set_on_body(HttpRequest *r, http_body_handler_t cb) {
        if (r)
                r->on_body = cb;
}

void http_request_set_on_done(HttpRequest *r, http_done_handler_t cb) {
        if (r)
                r->on_done = cb;
}

void http_request_set_userdata(HttpRequest *r, void *userdata) {
        if (r)
                r->userdata = userdata;
}

void *http_request_get_userdata(HttpRequest *r) {
        return r ? r->userdata : NULL;
}

/* ---- completion -------------------------------------------------------- */

/* Stops r and reports error to its owner. Only called outside curl. */
static void request_complete(HttpRequest *r, int error) {
        uint64_t fb, total;

        if (r->state != REQUEST_RUNNING)
                return;
        request_stop(r, REQUEST_DONE);

        http_request_get_timing(r, &fb, &total);
        if (error < 0)
                log_debug("%s %s: failed after %.1f ms: %s", r->method, r->url,
                          (double) total / USEC_PER_MSEC, strna(r->error_message));
        else
                log_debug("%s %s: %ld, first byte %.1f ms, total %.1f ms, %zu bytes buffered",
                          r->method, r->url, r->status, (double) fb / USEC_PER_MSEC,
                          (double) total / USEC_PER_MSEC, r->body_len);

        if (r->on_done)
                r->on_done(r, error, r->userdata); /* may free r */
}

/* A server certificate that failed verification, in words a person can act
 * on. Nothing was sent. The numbers are OpenSSL's X509_V_ERR_* (curl's
 * OpenSSL backend reports them; for a host name mismatch it reports 0 and
 * checks the name itself); other backends fall back to curl's text.
 * -EKEYREJECTED: no retry, this does not heal in seconds. */
static int request_certificate_failed(HttpRequest *r, const char *detail) {
        long v = -1;

        (void) curl_easy_getinfo(r->curl, CURLINFO_SSL_VERIFYRESULT, &v);
        if (v == 10 /* CERT_HAS_EXPIRED */ || strstr(detail, "expired"))
                request_set_message(r, "The TLS certificate of %s has expired (%s). If the computer's clock is right, "
                                    "the server's operator must renew it.", r->host, detail);
        else if (v == 9 /* CERT_NOT_YET_VALID */ || strstr(detail, "not yet valid"))
                request_set_message(r, "The TLS certificate of %s is not valid yet (%s). Check the computer's clock.",
                                    r->host, detail);
        else if (v == 0 || v == 62 /* HOSTNAME_MISMATCH */ || strstr(detail, "host name"))
                request_set_message(r, "The TLS certificate of %s is for another host name (%s). Check the URL "
                                    "(llmUrl or BANKR_LLM_URL); something on the network may be intercepting the "
                                    "connection.", r->host, detail);
        else
                request_set_message(r, "The TLS certificate of %s is not trusted (%s). Check the URL and the network; "
                                    "for a gateway with a private CA, set CURL_CA_BUNDLE in the service's "
                                    "environment to its CA file.", r->host, detail);
        return -EKEYREJECTED;
}

/* Turns curl's verdict into an errno and a sentence. */
static int request_map_result(HttpRequest *r, CURLcode c) {
        const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(c);
        long os_errno = 0;

        if (c == CURLE_OK)
                return 0;
        if (r->error < 0) /* one of our callbacks stopped it and said why */
                return r->error;

        switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
                request_set_message(r, "Could not resolve host %s.", r->host);
                return -EHOSTUNREACH;
        case CURLE_COULDNT_RESOLVE_PROXY:
                request_set_message(r, "Could not resolve the proxy host: %s", detail);
                return -EHOSTUNREACH;
        case CURLE_COULDNT_CONNECT:
                (void) curl_easy_getinfo(r->curl, CURLINFO_OS_ERRNO, &os_errno);
                if (os_errno <= 0)
                        os_errno = ECONNREFUSED;
                request_set_message(r, "Could not connect to %s port %ld: %s", r->host, r->port,
                                    strerror((int) os_errno));
                return -(int) os_errno;
        case CURLE_OPERATION_TIMEDOUT: {
                /* Our own timers catch everything but the connect phase. */
                char d[32];
                format_duration(d, sizeof d, r->connect_timeout);
                if (r->connect_timeout > 0)
                        request_set_message(r, "Could not connect to %s port %ld within %s (connect timeout).",
                                            r->host, r->port, d);
                else
                        request_set_message(r, "Timed out talking to %s port %ld.", r->host, r->port);
                return -ETIMEDOUT;
        }
        case CURLE_GOT_NOTHING:
                request_set_message(r, "%s port %ld closed the connection without answering.", r->host, r->port);
                return -ECONNRESET;
        case CURLE_PARTIAL_FILE:
                request_set_message(r, "%s port %ld closed the connection before the answer was complete.",
                                    r->host, r->port);
                return -ECONNRESET;
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
                request_set_message(r, "The connection to %s port %ld broke: %s", r->host, r->port, detail);
                return -ECONNRESET;
        case CURLE_PEER_FAILED_VERIFICATION:
                return request_certificate_failed(r, detail);
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
                request_set_message(r, "TLS with %s failed: %s", r->host, detail);
                return -EPROTO;
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_BAD_CONTENT_ENCODING:
                request_set_message(r, "Invalid answer from %s: %s", r->host, detail);
                return -EPROTO;
        case CURLE_OUT_OF_MEMORY:
                request_set_message(r, "Out of memory.");
                return -ENOMEM;
        default:
                request_set_message(r, "Request to %s failed: %s", r->host, detail);
                return -EIO;
        }
}

/* Runs what callbacks deferred, then hands finished transfers over. */
static void http_process(Http *h) {
        CURLMsg *msg;
        int left;

        /* Restart the scan after each step: handling one request may free others. */
        while (h->deferred && h->in_curl == 0) {
                HttpRequest *r;

                for (r = h->requests; r; r = r->next)
                        if (r->remove_pending || r->free_pending || r->add_pending)
                                break;
                if (!r) {
                        h->deferred = false;
                        break;
                }

                if (r->remove_pending) {
                        r->remove_pending = false;
                        (void) curl_multi_remove_handle(h->multi, r->curl);
                        r->in_multi = false;
                }
                if (r->free_pending) {
                        request_destroy(r);
                        continue;
                }
                if (r->add_pending) {
                        r->add_pending = false;
                        if (curl_multi_add_handle(h->multi, r->curl) != CURLM_OK) {
                                request_set_message(r, "Could not start a request to %s.", r->host);
                                request_complete(r, -ENOMEM);
                                continue;
                        }
                        r->in_multi = true;
                }
        }

        while ((msg = curl_multi_info_read(h->multi, &left))) {
                HttpRequest *r = NULL;
                CURLcode result;
                CURL *easy;

                if (msg->msg != CURLMSG_DONE)
                        continue;

                /* msg dies with curl_multi_remove_handle(): copy first. */
                easy = msg->easy_handle;
                result = msg->data.result;
                if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &r) != CURLE_OK || !r) {
                        (void) curl_multi_remove_handle(h->multi, easy);
                        continue;
                }

                int error = request_map_result(r, result);
                if (r->in_multi) {
                        (void) curl_multi_remove_handle(h->multi, easy);
                        r->in_multi = false;
                }
                if (error == 0)
                        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
                request_complete(r, error);
        }
}

/* ---- timeouts ---------------------------------------------------------- */

/* The nearest deadline that applies now, UINT64_MAX for none. */
static uint64_t request_next_deadline(HttpRequest *r) {
        uint64_t next = UINT64_MAX;

        if (r->total_timeout > 0)
                next = MIN(next, r->start + r->total_timeout);
        if (r->first_byte == 0 && r->first_byte_timeout > 0)
                next = MIN(next, r->start + r->first_byte_timeout);
        if (r->first_byte > 0 && r->idle_timeout > 0)
                next = MIN(next, r->last_rx + r->idle_timeout);
        return next;
}

static void request_arm_timer(HttpRequest *r) {
        uint64_t next;

        if (!r->timer)
                return;
        next = request_next_deadline(r);
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(r->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(r->timer, next);
        (void) sd_event_source_set_enabled(r->timer, SD_EVENT_ONESHOT);
}

static int on_request_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpRequest *r = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char d[32];

        if (r->state != REQUEST_RUNNING)
                return 0;

        if (r->total_timeout > 0 && now >= r->start + r->total_timeout) {
                format_duration(d, sizeof d, r->total_timeout);
                request_set_message(r, "The request to %s did not complete within %s (total timeout).", r->host, d);
                request_complete(r, -ETIMEDOUT);
        } else if (r->first_byte == 0 && r->first_byte_timeout > 0 && now >= r->start + r->first_byte_timeout) {
                format_duration(d, sizeof d, r->first_byte_timeout);
                request_set_message(r, "No answer from %s within %s (first-byte timeout).", r->host, d);
                request_complete(r, -ETIMEDOUT);
        } else if (r->first_byte > 0 && r->idle_timeout > 0 && now >= r->last_rx + r->idle_timeout) {
                format_duration(d, sizeof d, r->idle_timeout);
                request_set_message(r, "The answer from %s stalled: nothing received for %s (idle timeout).",
                                    r->host, d);
                request_complete(r, -ETIMEDOUT);
        } else
                /* Bytes arrived since the timer was set: move on to the new deadline. */
                request_arm_timer(r);
        return 0;
}

/* ---- curl's data callbacks (run inside curl: see the banner) ----------- */

static void request_note_rx(HttpRequest *r) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        r->last_rx = now;
        if (r->first_byte == 0) {
                r->first_byte = now;
                /* The first-byte deadline is gone; the idle one may be nearer. */
                request_arm_timer(r);
        }
}

static void request_abort(HttpRequest *r, int error) {
        r->error = error;
        if (!r->error_message)
                request_set_message(r, "The request to %s was aborted: %s", r->host, strerror(-error));
}

static bool header_line_is(const char *line, size_t len, const char *name) {
        size_t n = strlen(name);
        return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata) {
        HttpRequest *r = userdata;
        size_t len = size * n;

        if (r->state != REQUEST_RUNNING)
                return 0;
        request_note_rx(r);

        if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
                /* A new response (after a 1xx): forget the previous one's headers. */
                response_headers_clear(r);
                r->headers_done = false;
                return len;
        }

        if ((len == 2 && buf[0] == '\r' && buf[1] == '\n') || (len == 1 && buf[0] == '\n')) {
                long status = 0;

                if (r->headers_done) /* end of trailers */
                        return len;
                (void) curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
                r->status = status;
                if (status >= 100 && status < 200)
                        return len;

                r->headers_done = true;
                r->buffering = !r->on_body;
                if (r->on_headers) {
                        int k = r->on_headers(r, status, r->userdata);
                        if (r->state != REQUEST_RUNNING)
                                return 0;
                        if (k < 0) {
                                request_abort(r, k);
                                return 0;
                        }
                        if (k == HTTP_BODY_BUFFER)
                                r->buffering = true;
                }

                if (r->buffering) {
                        curl_off_t cl = -1;
                        (void) curl_easy_getinfo(r->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                        if (cl > 0 && (uint64_t) cl > r->max_body) {
                                request_set_message(r, "The answer from %s is too large (%" PRIu64 " bytes, the limit is %zu).",
                                                    r->host, (uint64_t) cl, r->max_body);
                                request_abort(r, -EFBIG);
                                return 0;
                        }
                }
                return len;
        }

        /* An ordinary header line: keep it without the line break. */
        size_t l = len;
        while (l > 0 && (buf[l - 1] == '\r' || buf[l - 1] == '\n' || buf[l - 1] == ' ' || buf[l - 1] == '\t'))
                l--;
        if (l == 0 || r->n_response_headers >= 256)
                return len;
        char **a = realloc(r->response_headers, sizeof(char *) * (r->n_response_headers + 1));
        if (!a)
                return 0;
        r->response_headers = a;
        a[r->n_response_headers] = strndup(buf, l);
        if (!a[r->n_response_headers])
                return 0;
        r->n_response_headers++;
        return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *userdata) {
        HttpRequest *r = userdata;
        size_t len = size * n;

        if (r->state != REQUEST_RUNNING)
                return 0;
        request_note_rx(r);

        if (!r->headers_done)
                r->buffering = !r->on_body;

        if (r->buffering) {
                if (len > r->max_body - r->body_len) {
                        request_set_message(r, "The answer from %s is too large (over the limit of %zu bytes).",
                                            r->host, r->max_body);
                        request_abort(r, -EFBIG);
                        return 0;
                }
                if (r->body_len + len + 1 > r->body_alloc) {
                        size_t a = MAX(r->body_alloc * 2, r->body_len + len + 1);
                        char *p = realloc(r->body, a);
                        if (!p) {
                                request_set_message(r, "Out of memory.");
                                request_abort(r, -ENOMEM);
                                return 0;
                        }
                        r->body = p;
                        r->body_alloc = a;
                }
                memcpy(r->body + r->body_len, buf, len);
                r->body_len += len;
                r->body[r->body_len] = 0;
                return len;
        }

        int k = r->on_body(r, buf, len, r->userdata);
        if (r->state != REQUEST_RUNNING)
                return 0;
        if (k < 0) {
                request_abort(r, k);
                return 0;
        }
        return len;
}

/* ---- start ------------------------------------------------------------- */

int http_request_start(HttpRequest *r) {
        CURL *c;
        int k = CURLE_OK;

        if (!r)
                return -EINVAL;
        if (!r->http)
                return -ESTALE;
        if (r->state != REQUEST_NEW)
                return -EBUSY;
        c = r->curl;

        if (streq(r->method, "GET") && !r->has_body)
                k = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        else if (streq(r->method, "HEAD"))
                k = curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else {
                if (r->has_body || streq(r->method, "POST")) {
                        k = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_out_len);
                        if (k == CURLE_OK)
                                k = curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body_out ?: "");
                        /* curl would wait up to a second for "100 Continue". */
                        if (k == CURLE_OK && http_request_add_header(r, "Expect:") < 0)
                                k = CURLE_OUT_OF_MEMORY;
                }
                if (!streq(r->method, "POST"))
                        k = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
        }
        if (k == CURLE_OK && r->headers)
                k = curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
        if (k == CURLE_OK && r->connect_timeout > 0)
                k = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                                     (long) MAX((r->connect_timeout + USEC_PER_MSEC - 1) / USEC_PER_MSEC, 1));
        if (k != CURLE_OK)
                return -EIO;

        r->start = now_usec(CLOCK_MONOTONIC);

        if (r->total_timeout > 0 || r->first_byte_timeout > 0 || r->idle_timeout > 0) {
                k = sd_event_add_time(r->http->event, &r->timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
                                      on_request_timer, r);
                if (k < 0)
                        return k;
                (void) sd_event_source_set_description(r->timer, "http-request-timeout");
                request_arm_timer(r);
        }

        if (r->http->in_curl > 0) {
                r->add_pending = true;
                r->http->deferred = true;
        } else {
                CURLMcode m = curl_multi_add_handle(r->http->multi, c);
                if (m != CURLM_OK) {
                        r->timer = sd_event_source_disable_unref(r->timer);
                        return m == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
                }
                r->in_multi = true;
        }

        r->state = REQUEST_RUNNING;
        r->http->n_running++;
        log_debug("%s %s: started", r->method, r->url);
        return 0;
}

/* ---- getters ----------------------------------------------------------- */

bool http_request_is_running(HttpRequest *r) {
        return r && r->state == REQUEST_RUNNING;
}

const char *http_request_get_method(HttpRequest *r) {
        return r ? r->method : NULL;
}

const char *http_request_get_url(HttpRequest *r) {
        return r ? r->url : NULL;
}

long http_request_get_status(HttpRequest *r) {
        return r ? r->status : 0;
}

const char *http_request_get_body(HttpRequest *r, size_t *ret_len) {
        if (ret_len)
                *ret_len = r ? r->body_len : 0;
        return r && r->body ? r->body : "";
}

const char *http_request_get_header(HttpRequest *r, const char *name) {
        if (!r || isempty(name))
                return NULL;
        for (size_t i = 0; i < r->n_response_headers; i++) {
                const char *line = r->response_headers[i];
                if (!header_line_is(line, strlen(line), name))
                        continue;
                const char *v = line + strlen(name) + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                return v;
        }
        return NULL;
}

const char *http_request_get_error_message(HttpRequest *r) {
        return r ? r->error_message : NULL;
}

void http_request_get_timing(HttpRequest *r, uint64_t *ret_first_byte_usec, uint64_t *ret_total_usec) {
        if (ret_first_byte_usec)
                *ret_first_byte_usec = r && r->start > 0 && r->first_byte > 0 ? r->first_byte - r->start : 0;
        if (ret_total_usec)
                *ret_total_usec = r && r->start > 0 && r->end > 0 ? r->end - r->start : 0;
}
