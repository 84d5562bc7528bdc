/* SPDX-License-Identifier: MIT */
/*
 * Unit test of service/http.c against tests/http-test-server.py, a local
 * stdlib server on 127.0.0.1 started (and killed) by this test.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include "http.h"
#include "log.h"

static sd_event *event;
static Http *http;
static char base[64];
static pid_t server_pid;
static unsigned n_failed;

#define CHECK(x)                                                                        \
        do {                                                                            \
                if (!(x)) {                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        n_failed++;                                                     \
                }                                                                       \
        } while (0)

/* What one request saw. */
typedef struct Result {
        bool done;
        int error;
        unsigned n_headers_calls;
        long headers_status;
        unsigned n_body_calls;
        char *streamed;
        size_t streamed_len;
        bool body_before_headers;
        /* behaviours */
        bool buffer_errors;     /* on_headers: buffer non-2xx */
        bool cancel_in_body;    /* on_body cancels its own request */
        bool free_in_body;      /* on_body frees its own request */
        HttpRequest *cancel_other; /* on_body cancels this one */
        bool free_in_done;      /* on_done frees the request */
        HttpRequest **self;     /* cleared when freed from a callback */
} Result;

static void result_done(Result *res) {
        free(res->streamed);
}

static int on_headers(HttpRequest *r, long status, void *userdata) {
        Result *res = userdata;
        res->n_headers_calls++;
        res->headers_status = status;
        if (res->buffer_errors && (status < 200 || status > 299))
                return HTTP_BODY_BUFFER;
        return 0;
}

static int on_body(HttpRequest *r, const void *data, size_t n, void *userdata) {
        Result *res = userdata;

        if (res->n_headers_calls == 0)
                res->body_before_headers = true;
        res->n_body_calls++;
        res->streamed = realloc(res->streamed, res->streamed_len + n + 1);
        memcpy(res->streamed + res->streamed_len, data, n);
        res->streamed_len += n;
        res->streamed[res->streamed_len] = 0;

        if (res->cancel_other) {
                http_request_cancel(res->cancel_other);
                res->cancel_other = NULL;
        }
        if (res->cancel_in_body)
                http_request_cancel(r);
        if (res->free_in_body) {
                http_request_free(r);
                *res->self = NULL;
        }
        return 0;
}

static void on_done(HttpRequest *r, int error, void *userdata) {
        Result *res = userdata;
        CHECK(!res->done);
        res->done = true;
        res->error = error;
        if (res->free_in_done) {
                http_request_free(r);
                *res->self = NULL;
        }
}

static void run_until(bool *flag, uint64_t timeout_usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        while (!*flag && now_usec(CLOCK_MONOTONIC) < deadline)
                (void) sd_event_run(event, 50 * USEC_PER_MSEC);
}

static void run_for(uint64_t usec) {
        bool never = false;
        run_until(&never, usec);
}

static HttpRequest *make(const char *method, const char *path, Result *res, bool stream) {
        HttpRequest *r = NULL;
        char url[256];

        snprintf(url, sizeof url, "%s%s", base, path);
        CHECK(http_request_new(http, method, url, &r) >= 0);
        http_request_set_userdata(r, res);
        http_request_set_on_done(r, on_done);
        http_request_set_on_headers(r, on_headers);
        if (stream)
                http_request_set_on_body(r, on_body);
        return r;
}

/* GETs a path synchronously (by running the loop); returns the body. */
static char *fetch(const char *path) {
        Result res = {};
        HttpRequest *r = make("GET", path, &res, false);
        char *body;

        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == 0);
        body = strdup(http_request_get_body(r, NULL));
        http_request_free(r);
        result_done(&res);
        return body;
}

static long stat_value(const char *name) {
        _cleanup_free_ char *s = fetch("/stats");
        char key[64];
        const char *p;

        snprintf(key, sizeof key, "\"%s\": ", name);
        p = strstr(s, key);
        CHECK(p);
        return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void start_server(void) {
        int pipefd[2];
        char line[64] = {};
        FILE *f;
        int port = 0;

        CHECK(pipe(pipefd) == 0);
        server_pid = fork();
        if (server_pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                dup2(pipefd[1], STDOUT_FILENO);
                close(pipefd[0]);
                close(pipefd[1]);
                execl("/usr/bin/python3", "python3", SOURCE_ROOT "/tests/http-test-server.py", NULL);
                _exit(127);
        }
        close(pipefd[1]);
        f = fdopen(pipefd[0], "r");
        if (!fgets(line, sizeof line, f) || sscanf(line, "PORT %d", &port) != 1) {
                fprintf(stderr, "The test server did not start.\n");
                exit(EXIT_FAILURE);
        }
        fclose(f);
        snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
}

static void stop_server(void) {
        if (server_pid > 0) {
                (void) kill(server_pid, SIGTERM);
                (void) waitpid(server_pid, NULL, 0);
        }
}

static int closed_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        CHECK(bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
        CHECK(getsockname(fd, (struct sockaddr *) &sa, &l) == 0);
        close(fd); /* nothing listens there now */
        return ntohs(sa.sin_port);
}

static void test_invalid(void) {
        HttpRequest *r = NULL;

        CHECK(http_request_new(http, "GET", "ftp://127.0.0.1/", &r) == -EINVAL);
        CHECK(http_request_new(http, "GET", "http://user:pw@127.0.0.1/", &r) == -EINVAL);
        CHECK(http_request_new(http, "GET", "not a url", &r) == -EINVAL);
        CHECK(http_request_new(http, "get", "http://127.0.0.1/", &r) == -EINVAL);
        CHECK(!r);
}

static void test_get(void) {
        Result res = {};
        HttpRequest *r = make("GET", "/hello", &res, false);
        uint64_t fb, total;
        size_t len;

        CHECK(http_request_start(r) >= 0);
        CHECK(http_request_start(r) == -EBUSY);
        CHECK(http_n_running(http) == 1);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == 0);
        CHECK(http_n_running(http) == 0);
        CHECK(http_request_get_status(r) == 200);
        CHECK(res.n_headers_calls == 1 && res.headers_status == 200);
        CHECK(streq(http_request_get_body(r, &len), "hello world") && len == 11);
        CHECK(streq_ptr(http_request_get_header(r, "RETRY-after"), "7"));
        CHECK(streq_ptr(http_request_get_header(r, "x-test"), "yes"));
        CHECK(!http_request_get_header(r, "x-tes"));
        CHECK(!http_request_get_error_message(r));
        http_request_get_timing(r, &fb, &total);
        CHECK(fb > 0 && total >= fb);
        http_request_free(r);
        result_done(&res);
}

static void test_post(void) {
        static const char payload[] = "{\"model\":\"gpt-5-mini\"}";
        Result res = {};
        HttpRequest *r = make("POST", "/echo", &res, false);

        CHECK(http_request_add_header(r, "Authorization: Bearer bk_secret") >= 0);
        CHECK(http_request_add_header(r, "no colon") == -EINVAL);
        CHECK(http_request_add_header(r, "X-Evil: a\r\nX-Injected: b") == -EINVAL);
        CHECK(http_request_set_body(r, payload, strlen(payload), "application/json") >= 0);
        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == 0);
        CHECK(http_request_get_status(r) == 200);
        CHECK(streq(http_request_get_body(r, NULL), payload));
        CHECK(streq_ptr(http_request_get_header(r, "X-Got-Content-Type"), "application/json"));
        CHECK(streq_ptr(http_request_get_header(r, "X-Got-Method"), "POST"));
        CHECK(streq_ptr(http_request_get_header(r, "X-Got-Authorization"), "yes"));
        CHECK(startswith(strempty(http_request_get_header(r, "X-Got-User-Agent")), "bankr-llmd/" VERSION));
        http_request_free(r);
        result_done(&res);
}

static void test_stream(void) {
        Result res = {};
        HttpRequest *r = make("GET", "/drip?n=5&delay=0.05", &res, true);

        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == 0);
        CHECK(res.n_headers_calls == 1 && !res.body_before_headers);
        CHECK(res.n_body_calls >= 3); /* pieces as they come, not one lump */
        CHECK(res.streamed && streq(res.streamed, "piece-0\npiece-1\npiece-2\npiece-3\npiece-4\n"));
        CHECK(streq(http_request_get_body(r, NULL), "")); /* nothing buffered */
        http_request_free(r);
        result_done(&res);
}

static void test_error_body_buffered(void) {
        Result res = { .buffer_errors = true };
        HttpRequest *r = make("GET", "/status?code=429", &res, true);

        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == 0);
        CHECK(http_request_get_status(r) == 429);
        CHECK(res.n_body_calls == 0);
        CHECK(streq(http_request_get_body(r, NULL), "error body 429"));
        CHECK(streq_ptr(http_request_get_header(r, "retry-after"), "3"));
        http_request_free(r);
        result_done(&res);
}

static void test_max_body(void) {
        const char *paths[] = { "/big?size=100000", "/bigchunked?size=100000" };

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                Result res = {};
                HttpRequest *r = make("GET", paths[i], &res, false);

                http_request_set_max_body(r, 1000);
                CHECK(http_request_start(r) >= 0);
                run_until(&res.done, 5 * USEC_PER_SEC);
                CHECK(res.done && res.error == -EFBIG);
                CHECK(strstr(strempty(http_request_get_error_message(r)), "too large"));
                log_info("max body (%s): %s", paths[i], strna(http_request_get_error_message(r)));
                http_request_free(r);
                result_done(&res);
        }
}

static void test_refused(void) {
        Result res = {};
        HttpRequest *r = NULL;
        char url[64], expect[128];
        int port = closed_port();

        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/models", port);
        CHECK(http_request_new(http, "GET", url, &r) >= 0);
        http_request_set_userdata(r, &res);
        http_request_set_on_done(r, on_done);
        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == -ECONNREFUSED);
        snprintf(expect, sizeof expect, "Could not connect to 127.0.0.1 port %d: Connection refused", port);
        CHECK(streq_ptr(http_request_get_error_message(r), expect));
        log_info("refused: %s", strna(http_request_get_error_message(r)));
        http_request_free(r);
}

/* Out of descriptors when curl opens the socket: say so, never "refused". */
static void test_out_of_fds(void) {
        Result res = {};
        HttpRequest *r = NULL;
        struct rlimit old, low;
        char url[96];
        int fds[64], n = 0, fd;

        snprintf(url, sizeof url, "%s/v1/models", base);
        CHECK(http_request_new(http, "GET", url, &r) >= 0);
        http_request_set_userdata(r, &res);
        http_request_set_on_done(r, on_done);
        /* Leave no descriptor free: a low soft limit, and the rest filled. */
        CHECK(getrlimit(RLIMIT_NOFILE, &old) >= 0);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        low = (struct rlimit) { .rlim_cur = (rlim_t) fd + 16, .rlim_max = old.rlim_max };
        close(fd);
        CHECK(setrlimit(RLIMIT_NOFILE, &low) >= 0);
        while (n < (int) ELEMENTSOF(fds) && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
                fds[n++] = fd;
        CHECK(fd < 0 && errno == EMFILE);
        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        while (n > 0)
                close(fds[--n]);
        CHECK(setrlimit(RLIMIT_NOFILE, &old) >= 0);
        CHECK(res.done && res.error == -EMFILE);
        CHECK(strstr(strempty(http_request_get_error_message(r)), "out of file descriptors"));
        CHECK(!strstr(strempty(http_request_get_error_message(r)), "refused"));
        log_info("out of fds: %s (%d)", strna(http_request_get_error_message(r)), res.error);
        http_request_free(r);
}

/* A listener whose accept queue is full drops further SYNs: connecting to
 * it hangs until the connect timeout. */
static void test_connect_timeout(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof sa;
        int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd[2];
        Result res = {};
        HttpRequest *r = NULL;
        char url[64];

        CHECK(bind(lfd, (struct sockaddr *) &sa, sizeof sa) == 0);
        CHECK(listen(lfd, 0) == 0);
        CHECK(getsockname(lfd, (struct sockaddr *) &sa, &l) == 0);
        for (unsigned i = 0; i < ELEMENTSOF(cfd); i++) {
                cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                (void) connect(cfd[i], (struct sockaddr *) &sa, sizeof sa);
        }
        run_for(50 * USEC_PER_MSEC);

        snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
        CHECK(http_request_new(http, "GET", url, &r) >= 0);
        http_request_set_userdata(r, &res);
        http_request_set_on_done(r, on_done);
        http_request_set_timeouts(r, 300 * USEC_PER_MSEC, 0, 0, 0);
        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        CHECK(res.done && res.error == -ETIMEDOUT);
        CHECK(strstr(strempty(http_request_get_error_message(r)), "connect timeout"));
        log_info("connect timeout: %s", strna(http_request_get_error_message(r)));
        http_request_free(r);
        for (unsigned i = 0; i < ELEMENTSOF(cfd); i++)
                close(cfd[i]);
        close(lfd);
}

static void test_timeout(const char *path, uint64_t first_byte, uint64_t idle, uint64_t total,
                         const char *word) {
        Result res = {};
        HttpRequest *r = make("GET", path, &res, true);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), elapsed;

        http_request_set_timeouts(r, 2 * USEC_PER_SEC, first_byte, idle, total);
        CHECK(http_request_start(r) >= 0);
        run_until(&res.done, 5 * USEC_PER_SEC);
        elapsed = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(res.done && res.error == -ETIMEDOUT);
        CHECK(strstr(strempty(http_request_get_error_message(r)), word));
        CHECK(elapsed < 1500 * USEC_PER_MSEC);
        log_info("%s timeout after %.0f ms: %s", word, (double) elapsed / USEC_PER_MSEC,
                 strna(http_request_get_error_message(r)));
        http_request_free(r);
        result_done(&res);
}

/* Idle means no progress: a buffered body trickling bytes, or a streamed one
 * whose caller sees no progress in them, is stopped by the idle timeout. */
static void test_idle_is_progress(bool stream, bool caller_notes) {
        Result res = {};
        HttpRequest *r = make("GET", "/drip?n=40&delay=0.05", &res, stream);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), elapsed;

        http_request_set_timeouts(r, 2 * USEC_PER_SEC, 2 * USEC_PER_SEC, 300 * USEC_PER_MSEC, 0);
        if (stream)
                http_request_set_progress_by_caller(r, true);
        CHECK(http_request_start(r) >= 0);
        while (!res.done && now_usec(CLOCK_MONOTONIC) - t0 < 5 * USEC_PER_SEC) {
                CHECK(sd_event_run(event, 20 * USEC_PER_MSEC) >= 0);
                if (caller_notes)
                        http_request_note_progress(r);
        }
        elapsed = now_usec(CLOCK_MONOTONIC) - t0;
        CHECK(res.done);
        if (caller_notes)
                CHECK(res.error == 0 && elapsed >= 1500 * USEC_PER_MSEC);
        else {
                CHECK(res.error == -ETIMEDOUT);
                CHECK(strstr(strempty(http_request_get_error_message(r)), "idle"));
                CHECK(elapsed < 1200 * USEC_PER_MSEC);
        }
        log_info("trickle (%s, %s): %.0f ms, %s", stream ? "streamed" : "buffered",
                 caller_notes ? "progress reported" : "no progress", (double) elapsed / USEC_PER_MSEC,
                 strna(http_request_get_error_message(r)));
        http_request_free(r);
        result_done(&res);
}

static void test_cancel(void) {
        Result a = { .cancel_in_body = true }, b = {};
        HttpRequest *ra, *rb;
        long closed;

        free(fetch("/reset"));

        /* a cancels itself from inside on_body; b is cancelled from outside. */
        ra = make("GET", "/hang", &a, true);
        rb = make("GET", "/hang", &b, true);
        CHECK(http_request_start(ra) >= 0);
        CHECK(http_request_start(rb) >= 0);
        bool started = false;
        for (unsigned i = 0; i < 100 && !started; i++) {
                run_for(20 * USEC_PER_MSEC);
                started = b.n_body_calls > 0 && a.n_body_calls > 0;
        }
        CHECK(started);
        CHECK(!http_request_is_running(ra));
        http_request_cancel(rb);
        CHECK(!http_request_is_running(rb));
        CHECK(http_n_running(http) == 0);

        /* The server must see both connections closed, not parked in a pool. */
        for (unsigned i = 0; i < 40; i++) {
                closed = stat_value("closed_mid_body");
                if (closed >= 2)
                        break;
                run_for(50 * USEC_PER_MSEC);
        }
        CHECK(closed == 2);
        CHECK(!a.done && !b.done);
        http_request_free(ra);
        http_request_free(rb);
        result_done(&a);
        result_done(&b);
}

static void test_cancel_other_and_free_in_callbacks(void) {
        Result a = {}, b = {}, c = { .free_in_body = true }, d = { .free_in_done = true };
        HttpRequest *ra, *rb, *rc, *rd;

        ra = make("GET", "/drip?n=3&delay=0.05", &a, true);
        rb = make("GET", "/drip?n=20&delay=0.1", &b, true);
        rc = make("GET", "/drip?n=20&delay=0.1", &c, true);
        rd = make("GET", "/hello", &d, false);
        a.cancel_other = rb;
        c.self = &rc;
        d.self = &rd;
        CHECK(http_request_start(rb) >= 0);
        CHECK(http_request_start(ra) >= 0);
        CHECK(http_request_start(rc) >= 0);
        CHECK(http_request_start(rd) >= 0);
        run_until(&a.done, 5 * USEC_PER_SEC);
        run_until(&d.done, 5 * USEC_PER_SEC);
        run_for(300 * USEC_PER_MSEC);
        CHECK(a.done && a.error == 0);
        CHECK(!b.done && !http_request_is_running(rb));
        CHECK(!c.done && !rc);
        CHECK(d.done && d.error == 0 && !rd);
        CHECK(http_n_running(http) == 0);
        http_request_free(ra);
        http_request_free(rb);
        result_done(&a);
        result_done(&b);
        result_done(&c);
        result_done(&d);
}

#define N_CONCURRENT 50

static void test_concurrent(void) {
        Result res[N_CONCURRENT] = {};
        HttpRequest *r[N_CONCURRENT];
        bool all = false;

        for (unsigned i = 0; i < N_CONCURRENT; i++) {
                r[i] = make("GET", i % 2 ? "/hello" : "/drip?n=3&delay=0.02", &res[i], i % 2 == 0);
                CHECK(http_request_start(r[i]) >= 0);
        }
        CHECK(http_n_running(http) == N_CONCURRENT);
        for (unsigned k = 0; k < 500 && !all; k++) {
                run_for(20 * USEC_PER_MSEC);
                all = true;
                for (unsigned i = 0; i < N_CONCURRENT; i++)
                        all = all && res[i].done;
        }
        CHECK(all);
        for (unsigned i = 0; i < N_CONCURRENT; i++) {
                if (res[i].error != 0)
                        log_error("request %u: %s", i, strna(http_request_get_error_message(r[i])));
                CHECK(res[i].error == 0 && http_request_get_status(r[i]) == 200);
                if (i % 2)
                        CHECK(streq(http_request_get_body(r[i], NULL), "hello world"));
                else
                        CHECK(streq_ptr(res[i].streamed, "piece-0\npiece-1\npiece-2\n"));
                http_request_free(r[i]);
                result_done(&res[i]);
        }
}

static void test_keepalive(void) {
        Http *saved = http;

        free(fetch("/reset"));
        /* A fresh pool: every connection it uses is counted. */
        CHECK(http_new(event, &http) >= 0);
        for (unsigned i = 0; i < 10; i++)
                free(fetch("/hello"));
        long connections = stat_value("connections"), requests = stat_value("requests");
        http_free(http);
        http = saved;
        log_info("keep-alive: %ld connections for %ld requests", connections, requests);
        CHECK(requests >= 11);
        CHECK(connections == 1);
}

static void test_free_http_with_running(void) {
        Result res = {};
        Http *h2 = NULL;
        HttpRequest *r = NULL;
        char url[128];

        CHECK(http_new(event, &h2) >= 0);
        snprintf(url, sizeof url, "%s/hang", base);
        CHECK(http_request_new(h2, "GET", url, &r) >= 0);
        http_request_set_userdata(r, &res);
        http_request_set_on_done(r, on_done);
        CHECK(http_request_start(r) >= 0);
        run_for(100 * USEC_PER_MSEC);
        http_free(h2);
        CHECK(!http_request_is_running(r));
        CHECK(http_request_start(r) == -ESTALE || http_request_start(r) == -EBUSY);
        run_for(100 * USEC_PER_MSEC);
        CHECK(!res.done);
        http_request_free(r);
}

int main(int argc, char *argv[]) {
        log_set_program("test-http");
        log_prefix_levels = false;
        if (getenv("TEST_DEBUG"))
                log_max_level = LOG_DEBUG;

        /* Never go through a proxy to reach 127.0.0.1. */
        setenv("NO_PROXY", "127.0.0.1,localhost", 1);
        setenv("no_proxy", "127.0.0.1,localhost", 1);

        start_server();
        CHECK(sd_event_default(&event) >= 0);
        CHECK(http_new(event, &http) >= 0);

        test_invalid();
        test_get();
        test_post();
        test_stream();
        test_error_body_buffered();
        test_max_body();
        test_refused();
        test_out_of_fds();
        test_connect_timeout();
        test_timeout("/sleep?delay=3", 300 * USEC_PER_MSEC, 0, 0, "first-byte");
        test_timeout("/hang", 2 * USEC_PER_SEC, 300 * USEC_PER_MSEC, 0, "idle");
        test_timeout("/drip?n=60&delay=0.05", 2 * USEC_PER_SEC, USEC_PER_SEC, 400 * USEC_PER_MSEC, "total");
        test_idle_is_progress(false, false);
        test_idle_is_progress(true, false);
        test_idle_is_progress(true, true);
        test_cancel();
        test_cancel_other_and_free_in_callbacks();
        test_concurrent();
        test_keepalive();
        test_free_http_with_running();

        http_free(http);
        sd_event_unref(event);
        stop_server();

        if (n_failed > 0) {
                fprintf(stderr, "%u check(s) failed.\n", n_failed);
                return EXIT_FAILURE;
        }
        fprintf(stderr, "All HTTP tests passed.\n");
        return EXIT_SUCCESS;
}
