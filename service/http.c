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
 * is re-armed lazily (progress only moves a timestamp), so the error says
 * which limit was hit. The idle timeout measures time without progress, not
 * time without bytes, so a trickle cannot hold a request open: progress is
 * the end of the headers, then for a buffered body every HTTP_PROGRESS_BYTES
 * received (and its end), and for a streamed body every piece, or only what
 * the caller reports with http_request_note_progress() once it has asked to
 * (http_request_set_progress_by_caller(): a complete SSE event, say).
 */
#include <assert.h>
#include <malloc.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "wakeup.h"

typedef enum HttpRequestState {
        HTTP_REQUEST_NEW,
        HTTP_REQUEST_RUNNING,
        HTTP_REQUEST_DONE,
        HTTP_REQUEST_CANCELLED,
} HttpRequestState;

typedef struct HttpSocket HttpSocket;
struct HttpSocket {
        Http *http;
        sd_event_source *source;
        HttpSocket *prev, *next;
};

struct Http {
        sd_event *event;
        CURLM *multi;
        Wakeup wake; /* curl's timer */

        HttpRequest *requests; /* every request created and not yet freed */
        HttpSocket *sockets;   /* every socket curl asked us to watch */
        unsigned n_running, peak_running; /* the peak since n_running was last 0 */
        sd_event_source *trim; /* gives freed memory back after a burst */
        unsigned trims_left;

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

        http_send_handler_t on_send;
        http_headers_handler_t on_headers;
        http_body_handler_t on_body;
        http_done_handler_t on_done;
        void *userdata;

        HttpRequestState state;
        bool in_multi;
        bool add_pending;
        bool remove_pending;
        bool free_pending;
        bool headers_done;
        bool buffering;
        bool progress_by_caller;
        bool paused; /* on_body said HTTP_BODY_PAUSE */
        unsigned n_sends; /* times curl was about to send the request */
        size_t rx_since_progress; /* buffered body bytes since the last progress */

        int error; /* set when one of our callbacks aborted the transfer */
        char *error_message;

        long status;
        char **response_headers; /* raw "Name: value" lines of the last response */
        size_t n_response_headers, n_response_headers_allocated;
        char *body;
        size_t body_len, body_alloc;

        sd_event_source *timer;
        uint64_t start, first_byte, last_progress, end; /* CLOCK_MONOTONIC µs */

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

static void http_request_set_message(HttpRequest *hr, const char *fmt, ...) _printf_(2, 3);
static void http_request_set_message(HttpRequest *hr, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) free_and_vasprintf(&hr->error_message, fmt, ap); /* NULL on OOM: callers still get the errno */
        va_end(ap);
}

static void response_headers_clear(HttpRequest *hr) {
        for (size_t i = 0; i < hr->n_response_headers; i++)
                free(hr->response_headers[i]);
        free(hr->response_headers);
        hr->response_headers = NULL;
        hr->n_response_headers = hr->n_response_headers_allocated = 0;
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

static void on_curl_timer(void *userdata) {
        Http *h = userdata;
        int running;

        h->in_curl++;
        CURLMcode c = curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        h->in_curl--;
        if (c != CURLM_OK)
                log_debug("curl_multi_socket_action() failed: %s", curl_multi_strerror(c));

        http_process(h);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userdata) {
        Http *h = userdata;
        int r;

        if (timeout_ms < 0) {
                wakeup_off(&h->wake);
                return 0;
        }

        /* Never call curl from here (curl says so): fire from the loop. Its
         * most frequent request, "now" (after every added handle), is a
         * defer source, not a timer. */
        r = wakeup_in(&h->wake, (uint64_t) timeout_ms * USEC_PER_MSEC);
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

        r = wakeup_init(&h->wake, e, "http-curl-timer", on_curl_timer, h);
        if (r < 0) {
                http_free(h);
                return log_error_errno(r, "Failed to add curl timer: %m");
        }

        *ret = h;
        return 0;
}

static void http_request_destroy(HttpRequest *hr);

Http *http_free(Http *h) {
        if (!h)
                return NULL;

        /* Requests the caller still holds stay allocated, detached from us. */
        while (h->requests) {
                HttpRequest *hr = h->requests;

                http_request_cancel(hr);
                if (hr->in_multi) {
                        (void) curl_multi_remove_handle(h->multi, hr->curl);
                        hr->in_multi = false;
                }
                hr->remove_pending = false;
                hr->timer = sd_event_source_disable_unref(hr->timer);

                h->requests = hr->next;
                if (h->requests)
                        h->requests->prev = NULL;
                hr->prev = hr->next = NULL;
                hr->http = NULL;

                if (hr->free_pending)
                        http_request_destroy(hr);
        }

        if (h->multi)
                (void) curl_multi_cleanup(h->multi);
        while (h->sockets)
                http_socket_free(h->sockets);
        wakeup_done(&h->wake);
        sd_event_source_disable_unref(h->trim);
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
static int prereq_cb(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port);

/* Which CA certificates verify the server: the system's, unless the
 * environment names others the way the curl tool reads them (libcurl itself
 * does not): CURL_CA_BUNDLE, else SSL_CERT_FILE, a PEM file; SSL_CERT_DIR, a
 * hashed directory. For a private gateway, and for the tests' own CA. */
static int http_request_set_ca_from_env(CURL *c) {
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

        HttpRequest *hr = calloc(1, sizeof(HttpRequest));
        if (!hr)
                return -ENOMEM;
        hr->http = h;
        hr->max_body = HTTP_MAX_BODY_DEFAULT;
        hr->port = port;
        hr->host = TAKE_PTR(host);
        hr->method = strdup(method);
        hr->url = strdup(url);
        hr->curl = curl_easy_init();
        hr->body = calloc(1, 1);
        hr->body_alloc = hr->body ? 1 : 0;

        /* Link first so that http_request_destroy() can unlink in every case. */
        hr->next = h->requests;
        if (h->requests)
                h->requests->prev = hr;
        h->requests = hr;

        if (!hr->method || !hr->url || !hr->curl || !hr->body) {
                http_request_destroy(hr);
                return -ENOMEM;
        }

        CURL *c = hr->curl;
        if (curl_easy_setopt(c, CURLOPT_URL, hr->url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PRIVATE, hr) != CURLE_OK ||
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
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, hr->errbuf) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERDATA, hr) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, prereq_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PREREQDATA, hr) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, hr) != CURLE_OK) {
                http_request_destroy(hr);
                return log_error_errno(EIO, "Failed to set up a curl request.");
        }
        if (http_request_set_ca_from_env(c) < 0) {
                http_request_destroy(hr);
                return log_error_errno(EIO, "Failed to set up a curl request.");
        }

        *ret = hr;
        return 0;
}

static void http_request_destroy(HttpRequest *hr) {
        if (hr->http) {
                if (hr->prev)
                        hr->prev->next = hr->next;
                else
                        hr->http->requests = hr->next;
                if (hr->next)
                        hr->next->prev = hr->prev;
        }
        if (hr->curl)
                curl_easy_cleanup(hr->curl);
        sd_event_source_disable_unref(hr->timer);
        slist_erase_and_free(hr->headers);
        if (hr->body_out) {
                explicit_bzero(hr->body_out, hr->body_out_len);
                free(hr->body_out);
        }
        response_headers_clear(hr);
        free(hr->body);
        free(hr->error_message);
        free(hr->method);
        free(hr->url);
        free(hr->host);
        free(hr);
}

/* Takes r out of the multi handle now, or once curl has returned. */
static void http_request_detach(HttpRequest *hr) {
        hr->add_pending = false;
        if (!hr->in_multi)
                return;
        if (hr->http->in_curl > 0) {
                hr->remove_pending = true;
                hr->http->deferred = true;
                return;
        }
        /* For an unfinished HTTP/1 transfer this closes the connection: it
         * never goes back to the pool half-read. */
        (void) curl_multi_remove_handle(hr->http->multi, hr->curl);
        hr->in_multi = false;
}

/* glibc keeps what a burst of requests freed (after 1,000 streams through
 * the endpoint, 70 MB of heap stayed resident, under 1 MB of it in use, for
 * as long as other requests went on): once a burst (at least HTTP_TRIM_MIN_PEAK at
 * once) fell to a quarter of its peak, malloc_trim() hands the free pages
 * back, a second later and again five seconds after that (a slow client
 * holds its connection, and what it frees, for a while after the gateway
 * is done). Not after the few requests of an ordinary start-up or refresh:
 * an idle service does not wake up. It runs on the loop: about 14 ms for
 * the heap 1,000 streams leave behind (the madvise() of the free pages),
 * about 1 ms when there is little to give back; a thread would not help,
 * since trimming holds the arena every allocation of the loop needs. */
#define HTTP_TRIM_AFTER_USEC USEC_PER_SEC
#define HTTP_TRIM_AGAIN_USEC (5 * USEC_PER_SEC)
#define HTTP_TRIM_MIN_PEAK 8U

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata);

static void http_trim_in(Http *h, uint64_t usec) {
        if (!h->trim) {
                if (sd_event_add_time_relative(h->event, &h->trim, CLOCK_MONOTONIC, usec, 250 * USEC_PER_MSEC,
                                               on_trim, h) < 0)
                        return;
                (void) sd_event_source_set_description(h->trim, "http-trim");
        } else
                (void) sd_event_source_set_time_relative(h->trim, usec);
        (void) sd_event_source_set_enabled(h->trim, SD_EVENT_ONESHOT);
}

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata) {
        Http *h = userdata;

        (void) malloc_trim(0);
        if (h->trims_left > 0 && --h->trims_left > 0)
                http_trim_in(h, HTTP_TRIM_AGAIN_USEC);
        return 0;
}

static void http_trim_later(Http *h) {
        int enabled = SD_EVENT_OFF;

        h->trims_left = 2;
        /* One that is due stays due: a busy service declines often, and
         * moving the trim each time would put it off for as long. */
        if (h->trim && sd_event_source_get_enabled(h->trim, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        http_trim_in(h, HTTP_TRIM_AFTER_USEC);
}

static void http_request_stop(HttpRequest *hr, HttpRequestState state) {
        assert(hr->state == HTTP_REQUEST_RUNNING);
        hr->state = state;
        hr->end = now_usec(CLOCK_MONOTONIC);
        if (hr->http) {
                Http *h = hr->http;

                h->n_running--;
                if (h->peak_running >= HTTP_TRIM_MIN_PEAK && h->n_running <= h->peak_running / 4) {
                        http_trim_later(h);
                        h->peak_running = h->n_running; /* the next burst is measured from here */
                }
        }
        if (hr->timer)
                (void) sd_event_source_set_enabled(hr->timer, SD_EVENT_OFF);
        http_request_detach(hr);
}

void http_request_cancel(HttpRequest *hr) {
        if (!hr || hr->state != HTTP_REQUEST_RUNNING)
                return;
        log_debug("%s %s: cancelled", hr->method, hr->url);
        http_request_stop(hr, HTTP_REQUEST_CANCELLED);
}

HttpRequest *http_request_free(HttpRequest *hr) {
        if (!hr)
                return NULL;

        http_request_cancel(hr);
        if (hr->http && hr->http->in_curl > 0) {
                /* curl may still hold r inside the callback that called us. */
                hr->free_pending = true;
                hr->http->deferred = true;
                return NULL;
        }
        http_request_destroy(hr);
        return NULL;
}

int http_request_add_header(HttpRequest *hr, const char *header) {
        if (!hr || isempty(header) || !strchr(header, ':') || strpbrk(header, "\r\n"))
                return -EINVAL;
        if (hr->state != HTTP_REQUEST_NEW)
                return -EBUSY;

        struct curl_slist *l = curl_slist_append(hr->headers, header);
        if (!l)
                return -ENOMEM;
        hr->headers = l;
        return 0;
}

int http_request_set_body(HttpRequest *hr, const void *data, size_t len, const char *content_type) {
        _cleanup_free_ char *ct = NULL;
        char *copy;
        int k;

        if (!hr || (!data && len > 0))
                return -EINVAL;
        if (hr->state != HTTP_REQUEST_NEW || hr->has_body)
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
                k = http_request_add_header(hr, ct);
                if (k < 0) {
                        explicit_bzero(copy, len);
                        free(copy);
                        return k;
                }
        }

        hr->body_out = copy;
        hr->body_out_len = len;
        hr->has_body = true;
        return 0;
}

void http_request_set_timeouts(HttpRequest *hr, uint64_t connect_usec, uint64_t first_byte_usec,
                               uint64_t idle_usec, uint64_t total_usec) {
        if (!hr || hr->state != HTTP_REQUEST_NEW)
                return;
        hr->connect_timeout = connect_usec;
        hr->first_byte_timeout = first_byte_usec;
        hr->idle_timeout = idle_usec;
        hr->total_timeout = total_usec;
}

void http_request_set_max_body(HttpRequest *hr, size_t max) {
        if (hr)
                hr->max_body = max;
}

void http_request_set_on_send(HttpRequest *hr, http_send_handler_t cb) {
        hr->on_send = cb;
}

unsigned http_request_get_n_sends(HttpRequest *hr) {
        return hr ? hr->n_sends : 0;
}

void http_request_set_on_headers(HttpRequest *hr, http_headers_handler_t cb) {
        if (hr)
                hr->on_headers = cb;
}

void http_request_set_on_body(HttpRequest *hr, http_body_handler_t cb) {
        if (hr)
                hr->on_body = cb;
}

void http_request_set_on_done(HttpRequest *hr, http_done_handler_t cb) {
        if (hr)
                hr->on_done = cb;
}

void http_request_set_userdata(HttpRequest *hr, void *userdata) {
        if (hr)
                hr->userdata = userdata;
}

void *http_request_get_userdata(HttpRequest *hr) {
        return hr ? hr->userdata : NULL;
}

/* ---- completion -------------------------------------------------------- */

/* Stops r and reports error to its owner. Only called outside curl. */
static void http_request_complete(HttpRequest *hr, int error) {
        uint64_t fb, total;

        if (hr->state != HTTP_REQUEST_RUNNING)
                return;
        http_request_stop(hr, HTTP_REQUEST_DONE);

        http_request_get_timing(hr, &fb, &total);
        if (error < 0)
                log_debug("%s %s: failed after %.1f ms: %s", hr->method, hr->url,
                          (double) total / USEC_PER_MSEC, strna(hr->error_message));
        else
                log_debug("%s %s: %ld, first byte %.1f ms, total %.1f ms, %zu bytes buffered",
                          hr->method, hr->url, hr->status, (double) fb / USEC_PER_MSEC,
                          (double) total / USEC_PER_MSEC, hr->body_len);

        if (hr->on_done)
                hr->on_done(hr, error, hr->userdata); /* may free r */
}

/* Whether this process cannot open one more descriptor right now. */
static bool out_of_fds(long *ret_errno) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                close(fd);
                return false;
        }
        if (errno != EMFILE && errno != ENFILE)
                return false;
        *ret_errno = errno;
        return true;
}

/* A server certificate that failed verification, in words a person can act
 * on. Nothing was sent. The numbers are OpenSSL's X509_V_ERR_* (curl's
 * OpenSSL backend reports them; for a host name mismatch it reports 0 and
 * checks the name itself); other backends fall back to curl's text.
 * -EKEYREJECTED: no retry, this does not heal in seconds. */
static int http_request_certificate_failed(HttpRequest *hr, const char *detail) {
        long v = -1;

        (void) curl_easy_getinfo(hr->curl, CURLINFO_SSL_VERIFYRESULT, &v);
        if (v == 10 /* CERT_HAS_EXPIRED */ || strstr(detail, "expired"))
                http_request_set_message(hr, "The TLS certificate of %s has expired (%s). If the computer's clock is right, "
                                    "the server's operator must renew it.", hr->host, detail);
        else if (v == 9 /* CERT_NOT_YET_VALID */ || strstr(detail, "not yet valid"))
                http_request_set_message(hr, "The TLS certificate of %s is not valid yet (%s). Check the computer's clock.",
                                    hr->host, detail);
        else if (v == 0 || v == 62 /* HOSTNAME_MISMATCH */ || strstr(detail, "host name"))
                http_request_set_message(hr, "The TLS certificate of %s is for another host name (%s). Check the URL "
                                    "(llmUrl or BANKR_LLM_URL); something on the network may be intercepting the "
                                    "connection.", hr->host, detail);
        else
                http_request_set_message(hr, "The TLS certificate of %s is not trusted (%s). Check the URL and the network; "
                                    "for a gateway with a private CA, set CURL_CA_BUNDLE in the service's "
                                    "environment to its CA file.", hr->host, detail);
        return -EKEYREJECTED;
}

/* Turns curl's verdict into an errno and a sentence. */
static int http_request_map_result(HttpRequest *hr, CURLcode c) {
        const char *detail = hr->errbuf[0] ? hr->errbuf : curl_easy_strerror(c);
        long os_errno = 0;

        if (c == CURLE_OK)
                return 0;
        if (hr->error < 0) /* one of our callbacks stopped it and said why */
                return hr->error;

        switch (c) {
        case CURLE_COULDNT_RESOLVE_HOST:
                http_request_set_message(hr, "Could not resolve host %s.", hr->host);
                return -EHOSTUNREACH;
        case CURLE_COULDNT_RESOLVE_PROXY:
                http_request_set_message(hr, "Could not resolve the proxy host: %s", detail);
                return -EHOSTUNREACH;
        case CURLE_COULDNT_CONNECT:
                (void) curl_easy_getinfo(hr->curl, CURLINFO_OS_ERRNO, &os_errno);
                /* curl says "couldn't connect" when socket() itself fails, and
                 * does not always keep the errno: out of descriptors is ours,
                 * never the gateway refusing. */
                if (os_errno == EMFILE || os_errno == ENFILE || (os_errno <= 0 && out_of_fds(&os_errno))) {
                        http_request_set_message(hr, "bankr-llmd is out of file descriptors (%s); the request to %s was "
                                                 "not sent. Try again when fewer requests are in flight.",
                                                 os_errno == ENFILE ? "the system's table is full" : "its limit is reached",
                                                 hr->host);
                        return -(int) os_errno;
                }
                if (os_errno <= 0)
                        os_errno = ECONNREFUSED;
                http_request_set_message(hr, "Could not connect to %s port %ld: %s", hr->host, hr->port,
                                         strerror((int) os_errno));
                return -(int) os_errno;
        case CURLE_OPERATION_TIMEDOUT: {
                /* Our own timers catch everything but the connect phase. */
                char d[32];
                format_duration(d, sizeof d, hr->connect_timeout);
                if (hr->connect_timeout > 0)
                        http_request_set_message(hr, "Could not connect to %s port %ld within %s (connect timeout).",
                                                 hr->host, hr->port, d);
                else
                        http_request_set_message(hr, "Timed out talking to %s port %ld.", hr->host, hr->port);
                return -ETIMEDOUT;
        }
        case CURLE_GOT_NOTHING:
                http_request_set_message(hr, "%s port %ld closed the connection without answering.", hr->host, hr->port);
                return -ECONNRESET;
        case CURLE_PARTIAL_FILE:
                http_request_set_message(hr, "%s port %ld closed the connection before the answer was complete.",
                                         hr->host, hr->port);
                return -ECONNRESET;
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
                http_request_set_message(hr, "The connection to %s port %ld broke: %s", hr->host, hr->port, detail);
                return -ECONNRESET;
        case CURLE_PEER_FAILED_VERIFICATION:
                return http_request_certificate_failed(hr, detail);
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
                http_request_set_message(hr, "TLS with %s failed: %s", hr->host, detail);
                return -EPROTO;
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_BAD_CONTENT_ENCODING:
                http_request_set_message(hr, "Invalid answer from %s: %s", hr->host, detail);
                return -EPROTO;
        case CURLE_OUT_OF_MEMORY:
                http_request_set_message(hr, "Out of memory.");
                return -ENOMEM;
        default:
                http_request_set_message(hr, "Request to %s failed: %s", hr->host, detail);
                return -EIO;
        }
}

/* Runs what callbacks deferred, then hands finished transfers over. */
static void http_process(Http *h) {
        CURLMsg *msg;
        int left;

        /* Restart the scan after each step: handling one request may free others. */
        while (h->deferred && h->in_curl == 0) {
                HttpRequest *hr;

                for (hr = h->requests; hr; hr = hr->next)
                        if (hr->remove_pending || hr->free_pending || hr->add_pending)
                                break;
                if (!hr) {
                        h->deferred = false;
                        break;
                }

                if (hr->remove_pending) {
                        hr->remove_pending = false;
                        (void) curl_multi_remove_handle(h->multi, hr->curl);
                        hr->in_multi = false;
                }
                if (hr->free_pending) {
                        http_request_destroy(hr);
                        continue;
                }
                if (hr->add_pending) {
                        hr->add_pending = false;
                        if (curl_multi_add_handle(h->multi, hr->curl) != CURLM_OK) {
                                http_request_set_message(hr, "Could not start a request to %s.", hr->host);
                                http_request_complete(hr, -ENOMEM);
                                continue;
                        }
                        hr->in_multi = true;
                }
        }

        while ((msg = curl_multi_info_read(h->multi, &left))) {
                HttpRequest *hr = NULL;
                CURLcode result;
                CURL *easy;

                if (msg->msg != CURLMSG_DONE)
                        continue;

                /* msg dies with curl_multi_remove_handle(): copy first. */
                easy = msg->easy_handle;
                result = msg->data.result;
                if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &hr) != CURLE_OK || !hr) {
                        (void) curl_multi_remove_handle(h->multi, easy);
                        continue;
                }

                int error = http_request_map_result(hr, result);
                if (hr->in_multi) {
                        (void) curl_multi_remove_handle(h->multi, easy);
                        hr->in_multi = false;
                }
                if (error == 0)
                        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &hr->status);
                http_request_complete(hr, error);
        }
}

/* ---- timeouts ---------------------------------------------------------- */

/* The nearest deadline that applies now, UINT64_MAX for none. */
static uint64_t http_request_next_deadline(HttpRequest *hr) {
        uint64_t next = UINT64_MAX;

        if (hr->total_timeout > 0)
                next = MIN(next, hr->start + hr->total_timeout);
        if (hr->first_byte == 0 && hr->first_byte_timeout > 0)
                next = MIN(next, hr->start + hr->first_byte_timeout);
        if (hr->first_byte > 0 && hr->idle_timeout > 0)
                next = MIN(next, hr->last_progress + hr->idle_timeout);
        return next;
}

static void http_request_arm_timer(HttpRequest *hr) {
        uint64_t next;

        if (!hr->timer)
                return;
        next = http_request_next_deadline(hr);
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(hr->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(hr->timer, next);
        (void) sd_event_source_set_enabled(hr->timer, SD_EVENT_ONESHOT);
}

static int on_http_request_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpRequest *hr = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char d[32];

        if (hr->state != HTTP_REQUEST_RUNNING)
                return 0;

        if (hr->total_timeout > 0 && now >= hr->start + hr->total_timeout) {
                format_duration(d, sizeof d, hr->total_timeout);
                http_request_set_message(hr, "The request to %s did not complete within %s (total timeout).", hr->host, d);
                http_request_complete(hr, -ETIMEDOUT);
        } else if (hr->first_byte == 0 && hr->first_byte_timeout > 0 && now >= hr->start + hr->first_byte_timeout) {
                format_duration(d, sizeof d, hr->first_byte_timeout);
                http_request_set_message(hr, "No answer from %s within %s (first-byte timeout).", hr->host, d);
                http_request_complete(hr, -ETIMEDOUT);
        } else if (hr->first_byte > 0 && hr->idle_timeout > 0 && now >= hr->last_progress + hr->idle_timeout) {
                format_duration(d, sizeof d, hr->idle_timeout);
                http_request_set_message(hr, "The answer from %s stalled: no progress for %s (idle timeout).", hr->host, d);
                http_request_complete(hr, -ETIMEDOUT);
        } else
                /* Progress since the timer was set: move on to the new deadline. */
                http_request_arm_timer(hr);
        return 0;
}

/* ---- curl's data callbacks (run inside curl: see the banner) ----------- */

/* Bytes arrived: only the first one counts for the timeouts. */
static void http_request_note_rx(HttpRequest *hr) {
        if (hr->first_byte == 0) {
                hr->first_byte = hr->last_progress = now_usec(CLOCK_MONOTONIC);
                /* The first-byte deadline is gone; the idle one may be nearer. */
                http_request_arm_timer(hr);
        }
}

static void http_request_progress(HttpRequest *hr) {
        hr->last_progress = now_usec(CLOCK_MONOTONIC);
        hr->rx_since_progress = 0;
}

void http_request_note_progress(HttpRequest *hr) {
        if (hr && hr->state == HTTP_REQUEST_RUNNING && hr->first_byte > 0)
                http_request_progress(hr);
}

void http_request_set_progress_by_caller(HttpRequest *hr, bool b) {
        hr->progress_by_caller = b;
}

static void http_request_abort(HttpRequest *hr, int error) {
        hr->error = error;
        if (!hr->error_message)
                http_request_set_message(hr, "The request to %s was aborted: %s", hr->host, strerror(-error));
}

/* Runs each time curl is about to send the request: once, and again when it
 * resends it by itself after a reused connection closed before any answer
 * (the server may have read it: for a POST that can mean a second charge). */
static int prereq_cb(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port) {
        HttpRequest *hr = userdata;

        if (hr->state != HTTP_REQUEST_RUNNING)
                return CURL_PREREQFUNC_ABORT;
        hr->n_sends++;
        if (hr->n_sends > 1)
                log_debug("%s %s: the reused connection closed before any answer; curl sends the request again (send %u).",
                          hr->method, hr->url, hr->n_sends);
        if (hr->on_send) {
                int k = hr->on_send(hr, hr->n_sends, hr->userdata);
                if (hr->state != HTTP_REQUEST_RUNNING)
                        return CURL_PREREQFUNC_ABORT;
                if (k < 0) {
                        if (hr->n_sends > 1)
                                http_request_set_message(hr, "%s port %ld closed a reused connection after the request was "
                                                         "sent, without answering; it was not sent again.", hr->host, hr->port);
                        http_request_abort(hr, hr->n_sends > 1 ? -ECONNRESET : k);
                        return CURL_PREREQFUNC_ABORT;
                }
        }
        return CURL_PREREQFUNC_OK;
}

static bool header_line_is(const char *line, size_t len, const char *name) {
        size_t n = strlen(name);
        return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata) {
        HttpRequest *hr = userdata;
        size_t len = size * n;

        if (hr->state != HTTP_REQUEST_RUNNING)
                return 0;
        http_request_note_rx(hr);

        if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
                /* A new response (after a 1xx): forget the previous one's headers. */
                response_headers_clear(hr);
                hr->headers_done = false;
                return len;
        }

        if ((len == 2 && buf[0] == '\r' && buf[1] == '\n') || (len == 1 && buf[0] == '\n')) {
                long status = 0;

                if (hr->headers_done) /* end of trailers */
                        return len;
                (void) curl_easy_getinfo(hr->curl, CURLINFO_RESPONSE_CODE, &status);
                hr->status = status;
                if (status >= 100 && status < 200)
                        return len;

                hr->headers_done = true;
                hr->buffering = !hr->on_body;
                http_request_progress(hr);
                if (hr->on_headers) {
                        int k = hr->on_headers(hr, status, hr->userdata);
                        if (hr->state != HTTP_REQUEST_RUNNING)
                                return 0;
                        if (k < 0) {
                                http_request_abort(hr, k);
                                return 0;
                        }
                        if (k == HTTP_BODY_BUFFER)
                                hr->buffering = true;
                }

                if (hr->buffering) {
                        curl_off_t cl = -1;
                        (void) curl_easy_getinfo(hr->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                        if (cl > 0 && (uint64_t) cl > hr->max_body) {
                                http_request_set_message(hr, "The answer from %s is too large (%" PRIu64 " bytes, the limit is %zu).",
                                                         hr->host, (uint64_t) cl, hr->max_body);
                                http_request_abort(hr, -EFBIG);
                                return 0;
                        }
                }
                return len;
        }

        /* An ordinary header line: keep it without the line break. */
        size_t l = len;
        while (l > 0 && (buf[l - 1] == '\r' || buf[l - 1] == '\n' || buf[l - 1] == ' ' || buf[l - 1] == '\t'))
                l--;
        if (l == 0 || hr->n_response_headers >= 256)
                return len;
        if (!GREEDY_REALLOC(hr->response_headers, hr->n_response_headers_allocated, hr->n_response_headers + 1))
                return 0;
        hr->response_headers[hr->n_response_headers] = strndup(buf, l);
        if (!hr->response_headers[hr->n_response_headers])
                return 0;
        hr->n_response_headers++;
        return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *userdata) {
        HttpRequest *hr = userdata;
        size_t len = size * n;

        if (hr->state != HTTP_REQUEST_RUNNING)
                return 0;
        http_request_note_rx(hr);

        if (!hr->headers_done)
                hr->buffering = !hr->on_body;

        if (hr->buffering) {
                if (len > hr->max_body - hr->body_len) {
                        http_request_set_message(hr, "The answer from %s is too large (over the limit of %zu bytes).",
                                                 hr->host, hr->max_body);
                        http_request_abort(hr, -EFBIG);
                        return 0;
                }
                if (hr->body_len + len + 1 > hr->body_alloc) {
                        size_t a = MAX(hr->body_alloc * 2, hr->body_len + len + 1);
                        char *p = realloc(hr->body, a);
                        if (!p) {
                                http_request_set_message(hr, "Out of memory.");
                                http_request_abort(hr, -ENOMEM);
                                return 0;
                        }
                        hr->body = p;
                        hr->body_alloc = a;
                }
                memcpy(hr->body + hr->body_len, buf, len);
                hr->body_len += len;
                hr->body[hr->body_len] = 0;
                hr->rx_since_progress += len;
                if (hr->rx_since_progress >= HTTP_PROGRESS_BYTES)
                        http_request_progress(hr);
                return len;
        }

        if (!hr->progress_by_caller)
                http_request_progress(hr);
        int k = hr->on_body(hr, buf, len, hr->userdata);
        if (hr->state != HTTP_REQUEST_RUNNING)
                return 0;
        if (k < 0) {
                http_request_abort(hr, k);
                return 0;
        }
        if (k == HTTP_BODY_PAUSE) {
                /* libcurl keeps these bytes and offers them again after
                 * http_request_unpause(). */
                hr->paused = true;
                return CURL_WRITEFUNC_PAUSE;
        }
        return len;
}

/* ---- start ------------------------------------------------------------- */

int http_request_start(HttpRequest *hr) {
        CURL *c;
        int k = CURLE_OK;

        if (!hr)
                return -EINVAL;
        if (!hr->http)
                return -ESTALE;
        if (hr->state != HTTP_REQUEST_NEW)
                return -EBUSY;
        c = hr->curl;

        if (streq(hr->method, "GET") && !hr->has_body)
                k = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        else if (streq(hr->method, "HEAD"))
                k = curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else {
                if (hr->has_body || streq(hr->method, "POST")) {
                        k = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) hr->body_out_len);
                        if (k == CURLE_OK)
                                k = curl_easy_setopt(c, CURLOPT_POSTFIELDS, hr->body_out ?: "");
                        /* curl would wait up to a second for "100 Continue". */
                        if (k == CURLE_OK && http_request_add_header(hr, "Expect:") < 0)
                                k = CURLE_OUT_OF_MEMORY;
                }
                if (!streq(hr->method, "POST"))
                        k = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, hr->method);
        }
        if (k == CURLE_OK && hr->headers)
                k = curl_easy_setopt(c, CURLOPT_HTTPHEADER, hr->headers);
        if (k == CURLE_OK && hr->connect_timeout > 0)
                k = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                                     (long) MAX((hr->connect_timeout + USEC_PER_MSEC - 1) / USEC_PER_MSEC, 1));
        if (k != CURLE_OK)
                return -EIO;

        hr->start = now_usec(CLOCK_MONOTONIC);

        if (hr->total_timeout > 0 || hr->first_byte_timeout > 0 || hr->idle_timeout > 0) {
                k = sd_event_add_time(hr->http->event, &hr->timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
                                      on_http_request_timer, hr);
                if (k < 0)
                        return k;
                (void) sd_event_source_set_description(hr->timer, "http-request-timeout");
                http_request_arm_timer(hr);
        }

        if (hr->http->in_curl > 0) {
                hr->add_pending = true;
                hr->http->deferred = true;
        } else {
                CURLMcode m = curl_multi_add_handle(hr->http->multi, c);
                if (m != CURLM_OK) {
                        hr->timer = sd_event_source_disable_unref(hr->timer);
                        return m == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
                }
                hr->in_multi = true;
        }

        hr->state = HTTP_REQUEST_RUNNING;
        hr->http->n_running++;
        hr->http->peak_running = MAX(hr->http->peak_running, hr->http->n_running);
        log_debug("%s %s: started", hr->method, hr->url);
        return 0;
}

/* ---- getters ----------------------------------------------------------- */

bool http_request_is_running(HttpRequest *hr) {
        return hr && hr->state == HTTP_REQUEST_RUNNING;
}

const char *http_request_get_method(HttpRequest *hr) {
        return hr ? hr->method : NULL;
}

const char *http_request_get_url(HttpRequest *hr) {
        return hr ? hr->url : NULL;
}

long http_request_get_status(HttpRequest *hr) {
        return hr ? hr->status : 0;
}

const char *http_request_get_body(HttpRequest *hr, size_t *ret_len) {
        if (ret_len)
                *ret_len = hr ? hr->body_len : 0;
        return hr && hr->body ? hr->body : "";
}

const char *http_request_get_header(HttpRequest *hr, const char *name) {
        if (!hr || isempty(name))
                return NULL;
        for (size_t i = 0; i < hr->n_response_headers; i++) {
                const char *line = hr->response_headers[i];
                if (!header_line_is(line, strlen(line), name))
                        continue;
                const char *v = line + strlen(name) + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                return v;
        }
        return NULL;
}

const char *http_request_get_header_line(HttpRequest *hr, size_t i) {
        return hr && i < hr->n_response_headers ? hr->response_headers[i] : NULL;
}

void http_request_unpause(HttpRequest *hr) {
        if (!hr || !hr->paused || hr->state != HTTP_REQUEST_RUNNING)
                return;
        hr->paused = false;
        /* May call write_cb (and so on_body) at once, with the kept bytes. */
        (void) curl_easy_pause(hr->curl, CURLPAUSE_CONT);
}

const char *http_request_get_error_message(HttpRequest *hr) {
        return hr ? hr->error_message : NULL;
}

void http_request_get_timing(HttpRequest *hr, uint64_t *ret_first_byte_usec, uint64_t *ret_total_usec) {
        if (ret_first_byte_usec)
                *ret_first_byte_usec = hr && hr->start > 0 && hr->first_byte > 0 ? hr->first_byte - hr->start : 0;
        if (ret_total_usec)
                *ret_total_usec = hr && hr->start > 0 && hr->end > 0 ? hr->end - hr->start : 0;
}
