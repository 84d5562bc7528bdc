/* SPDX-License-Identifier: MIT */
/*
 * The measuring end of bench/bench-chat.py: streams chat answers either
 * through bankr-llmd (Chat.Start + unicast Request signals, as any client
 * does) or straight from the gateway with libcurl, parsing the stream with
 * the same ChatStream code the service uses. Prints one line per request:
 *
 *     ok ttft_us total_us deltas signals bytes
 *
 * so the driver can compute medians and percentiles.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <poll.h>
#include <systemd/sd-bus.h>

#include "bankr-names.h"
#include "chat-request.h"
#include "chat-stream.h"
#include "util.h"

typedef struct Req {
        uint64_t t0, ttft, total;
        size_t deltas, signals, bytes;
        bool done, ok;
        char *path;
        /* curl side */
        CURL *curl;
        ChatStream *stream;
        struct curl_slist *headers;
} Req;

static Req *reqs;
static size_t n_reqs, n_done;
static const char *model = "gpt-5-mini";

static void report(const Req *r) {
        printf("%s %" PRIu64 " %" PRIu64 " %zu %zu %zu\n", r->ok ? "ok" : "fail", r->ttft, r->total, r->deltas,
               r->signals, r->bytes);
}

static void finish(Req *r, bool ok) {
        if (r->done)
                return;
        r->done = true;
        r->ok = ok;
        r->total = now_usec(CLOCK_MONOTONIC) - r->t0;
        n_done++;
}

/* ---- through the service ---------------------------------------------- */

static Req *hint; /* the latest started: the one a sequential run waits for */

static Req *find_path(const char *path) {
        if (hint && hint->path && streq(hint->path, path))
                return hint;
        for (size_t i = 0; i < n_reqs; i++)
                if (reqs[i].path && streq(reqs[i].path, path))
                        return &reqs[i];
        return NULL;
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(m);
        Req *r = find_path(sd_bus_message_get_path(m));
        const char *s;

        if (!r || r->done)
                return 0;
        if (streq(member, "Delta")) {
                if (sd_bus_message_read(m, "s", &s) < 0)
                        return 0;
                if (r->signals++ == 0)
                        r->ttft = now_usec(CLOCK_MONOTONIC) - r->t0;
                r->bytes += strlen(s);
        } else if (streq(member, "Finished")) {
                /* output_tokens = upstream deltas for the fake's answers */
                const char *key;
                if (sd_bus_message_enter_container(m, 'a', "{sv}") >= 0)
                        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                                uint32_t u;
                                if (sd_bus_message_read(m, "s", &key) >= 0 && streq(key, "output_tokens") &&
                                    sd_bus_message_read(m, "v", "u", &u) >= 0)
                                        r->deltas = u;
                                else
                                        (void) sd_bus_message_skip(m, "v");
                                (void) sd_bus_message_exit_container(m);
                        }
                finish(r, true);
        } else if (streq(member, "Failed")) {
                const char *name, *msg;
                if (sd_bus_message_read(m, "ss", &name, &msg) >= 0)
                        fprintf(stderr, "request failed: %s: %s\n", name, msg);
                finish(r, false);
        }
        return 0;
}

static int on_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Req *r = userdata;
        const char *path;

        if (sd_bus_message_is_method_error(m, NULL) || sd_bus_message_read(m, "o", &path) < 0) {
                fprintf(stderr, "Start failed: %s\n", sd_bus_message_get_error(m) ? sd_bus_message_get_error(m)->message : "?");
                finish(r, false);
                return 0;
        }
        r->path = strdup(path);
        hint = r;
        return 0;
}

static int service_start(sd_bus *bus, Req *r, const char *prompt) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        k = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE_CHAT, "Start");
        if (k >= 0)
                k = sd_bus_message_append(m, "sa(ss)a{sv}", model, 1, "user", prompt, 0);
        if (k < 0)
                return k;
        r->t0 = now_usec(CLOCK_MONOTONIC);
        return sd_bus_call_async(bus, NULL, m, on_start, r, 120 * USEC_PER_SEC);
}

static int service_loop(sd_bus *bus, size_t until) {
        int k;

        while (n_done < until) {
                k = sd_bus_process(bus, NULL);
                if (k < 0)
                        return k;
                if (k > 0)
                        continue;
                k = sd_bus_wait(bus, UINT64_MAX);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* The service allows 128 requests in flight per client: concurrent runs
 * spread over several connections of this many requests each. */
#define PER_CONNECTION 64U

static int open_connection(sd_bus **ret) {
        sd_bus *bus = NULL;
        int k;

        k = sd_bus_open_user(&bus);
        if (k < 0)
                return k;
        k = sd_bus_match_signal(bus, NULL, NULL, NULL, IFACE_REQUEST, NULL, on_signal, NULL);
        if (k < 0) {
                sd_bus_unref(bus);
                return k;
        }
        *ret = bus;
        return 0;
}

/* sequential: one at a time; concurrent: all at once. */
static int run_service(size_t n, bool concurrent) {
        sd_bus *buses[64] = {};
        size_t n_buses = concurrent ? MIN((n + PER_CONNECTION - 1) / PER_CONNECTION, ELEMENTSOF(buses)) : 1;
        char prompt[64];
        int k = 0;

        for (size_t b = 0; b < MAX(n_buses, (size_t) 1); b++) {
                k = open_connection(&buses[b]);
                if (k < 0)
                        goto out;
        }
        for (size_t i = 0; i < n; i++) {
                sd_bus *bus = buses[concurrent ? i % n_buses : 0];
                snprintf(prompt, sizeof prompt, "request %zu", i);
                k = service_start(bus, &reqs[i], prompt);
                if (k < 0)
                        goto out;
                if (!concurrent) {
                        k = service_loop(bus, i + 1);
                        if (k < 0)
                                goto out;
                        free(reqs[i].path);
                        reqs[i].path = NULL;
                }
        }
        /* Serve every connection until all requests are done. */
        while (concurrent && n_done < n) {
                struct pollfd p[64];
                bool progress = false;
                for (size_t b = 0; b < n_buses; b++)
                        while ((k = sd_bus_process(buses[b], NULL)) > 0)
                                progress = true;
                if (k < 0)
                        goto out;
                if (progress || n_done >= n)
                        continue;
                for (size_t b = 0; b < n_buses; b++) {
                        p[b].fd = sd_bus_get_fd(buses[b]);
                        p[b].events = (short) sd_bus_get_events(buses[b]);
                }
                (void) poll(p, n_buses, 100);
        }
        k = 0;
out:
        for (size_t b = 0; b < ELEMENTSOF(buses); b++)
                sd_bus_flush_close_unref(buses[b]);
        return k;
}

/* ---- straight to the gateway ------------------------------------------ */

static int on_delta(const char *text, size_t len, void *userdata) {
        Req *r = userdata;
        if (r->deltas++ == 0)
                r->ttft = now_usec(CLOCK_MONOTONIC) - r->t0;
        r->bytes += len;
        return 0;
}

static const ChatStreamCallbacks callbacks = { .delta = on_delta };

static size_t on_write(char *buf, size_t size, size_t n, void *userdata) {
        Req *r = userdata;
        if (chat_stream_feed(r->stream, buf, size * n, &callbacks, r) < 0)
                return 0;
        r->signals++; /* network reads */
        return size * n;
}

static int curl_setup(Req *r, const char *url, const char *auth, const char *body, CURLSH *share) {
        if (chat_stream_new(CHAT_API_OPENAI, &r->stream) < 0)
                return -ENOMEM;
        r->curl = curl_easy_init();
        r->headers = curl_slist_append(NULL, auth);
        r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
        r->headers = curl_slist_append(r->headers, "Accept: text/event-stream");
        if (!r->curl || !r->headers)
                return -ENOMEM;
        curl_easy_setopt(r->curl, CURLOPT_URL, url);
        curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(r->curl, CURLOPT_PRIVATE, r);
        curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
        if (share)
                curl_easy_setopt(r->curl, CURLOPT_SHARE, share);
        return 0;
}

static void curl_cleanup(Req *r) {
        curl_easy_cleanup(r->curl);
        curl_slist_free_all(r->headers);
        chat_stream_free(r->stream);
        r->curl = NULL;
        r->headers = NULL;
        r->stream = NULL;
}

static int run_curl(size_t n, bool concurrent, const char *gateway, const char *key) {
        _cleanup_free_ char *url = NULL, *auth = NULL, *body = NULL;
        ChatMessage msg = { "user", "request" };
        ChatRequestParams p = CHAT_REQUEST_PARAMS_INIT;
        CURLM *multi = curl_multi_init();
        int k;

        p.model = model;
        p.messages = &msg;
        p.n_messages = 1;
        k = chat_request_build(CHAT_API_OPENAI, &p, &body);
        if (k < 0)
                return k;
        if (asprintf(&url, "%s/v1/chat/completions", gateway) < 0 || asprintf(&auth, "Authorization: Bearer %s", key) < 0)
                return -ENOMEM;
        /* Like the service: connections are kept and reused. */
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) MAX(n, (size_t) 16));

        for (size_t i = 0; i < n; i++) {
                k = curl_setup(&reqs[i], url, auth, body, NULL);
                if (k < 0)
                        return k;
                reqs[i].t0 = now_usec(CLOCK_MONOTONIC);
                curl_multi_add_handle(multi, reqs[i].curl);
                if (concurrent && i + 1 < n)
                        continue;
                int running = 1;
                while (running) {
                        CURLMsg *m;
                        int left;
                        curl_multi_perform(multi, &running);
                        while ((m = curl_multi_info_read(multi, &left)))
                                if (m->msg == CURLMSG_DONE) {
                                        Req *r = NULL;
                                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
                                        (void) chat_stream_finish(r->stream, &callbacks, r);
                                        finish(r, m->data.result == CURLE_OK && chat_stream_is_terminated(r->stream));
                                        curl_multi_remove_handle(multi, m->easy_handle);
                                }
                        if (running)
                                curl_multi_poll(multi, NULL, 0, 1000, NULL);
                }
                if (!concurrent)
                        curl_cleanup(&reqs[i]);
        }
        for (size_t i = 0; i < n; i++)
                curl_cleanup(&reqs[i]);
        curl_multi_cleanup(multi);
        return 0;
}

int main(int argc, char *argv[]) {
        int k;

        if (argc < 4 || (!streq(argv[1], "service") && !streq(argv[1], "curl")) ||
            (!streq(argv[2], "sequential") && !streq(argv[2], "concurrent")) ||
            (streq(argv[1], "curl") && argc < 6)) {
                fprintf(stderr, "Usage: bench-chat-client service sequential|concurrent N [MODEL]\n"
                                "       bench-chat-client curl sequential|concurrent N GATEWAY_URL KEY [MODEL]\n");
                return 2;
        }
        n_reqs = strtoul(argv[3], NULL, 10);
        reqs = calloc(MAX(n_reqs, (size_t) 1), sizeof(Req));
        if (!reqs)
                return 1;
        bool concurrent = streq(argv[2], "concurrent");
        if (streq(argv[1], "service")) {
                if (argc > 4)
                        model = argv[4];
                k = run_service(n_reqs, concurrent);
        } else {
                if (argc > 6)
                        model = argv[6];
                curl_global_init(CURL_GLOBAL_DEFAULT);
                k = run_curl(n_reqs, concurrent, argv[4], argv[5]);
        }
        if (k < 0) {
                fprintf(stderr, "bench-chat-client: %s\n", strerror(-k));
                return 1;
        }
        for (size_t i = 0; i < n_reqs; i++) {
                report(&reqs[i]);
                free(reqs[i].path);
        }
        free(reqs);
        return 0;
}
