/* SPDX-License-Identifier: MIT */
/*
 * bench-gateway: a fast stand-in for the Bankr LLM Gateway, for benchmarks
 * only, so that the numbers measure bankr-llmd and not tests/fakegw.py.
 *
 * One thread, epoll, non-blocking sockets, 127.0.0.1 only, HTTP/1.1 with
 * keep-alive. Canned answers:
 *   POST …/chat/completions  OpenAI SSE (stream) or JSON, with usage
 *   POST …/messages          Anthropic SSE (stream) or JSON, with usage
 *   GET  …/models            a two-model list
 * The request body may hold "bench_chunks":N (deltas, default 8),
 * "bench_chunk_bytes":N (bytes of text per delta, default 16) and
 * "bench_interval_ms":N (pause between deltas, default 0); it is forwarded
 * byte for byte by the endpoint, so the client steers the answer. Without
 * "stream":true the answer is one JSON body of the same text. Any key is
 * accepted (the point is speed, not auth).
 *
 * Bounded: at most --max-conns connections (default 4096; more are closed
 * at once), requests up to 1 MiB, answers up to 1 GiB.
 *
 *   bench-gateway [--port N] [--port-file PATH] [--max-conns N]
 * prints "http://127.0.0.1:PORT" and serves until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX (1024 * 1024)
#define ANSWER_MAX (1024LL * 1024 * 1024)
#define OUT_LOW (256 * 1024) /* refill the output below this */

typedef enum { FMT_OPENAI, FMT_ANTHROPIC, FMT_MODELS, FMT_NOT_FOUND } Format;

typedef struct Conn {
        int fd;
        char *in;
        size_t in_len, in_size;
        char *out;
        size_t out_len, out_off, out_size;
        /* the answer being produced */
        bool busy, stream, keep_alive;
        Format fmt;
        long chunks, sent, chunk_bytes, interval_ms;
        uint64_t next_at; /* ms, monotonic: next delta when pacing */
        bool head_done, tail_done;
        struct Conn *prev, *next; /* all connections, for the timers */
} Conn;

static Conn *conns;
static int epfd, nconns, max_conns = 4096;

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int out_reserve(Conn *c, size_t more) {
        if (c->out_off > 0 && c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + more <= c->out_size)
                return 0;
        if (c->out_off > 0) {
                memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
                c->out_len -= c->out_off;
                c->out_off = 0;
                if (c->out_len + more <= c->out_size)
                        return 0;
        }
        size_t n = c->out_size ? c->out_size : 64 * 1024;
        while (n < c->out_len + more)
                n *= 2;
        char *p = realloc(c->out, n);
        if (!p)
                return -ENOMEM;
        c->out = p;
        c->out_size = n;
        return 0;
}

static int out_printf(Conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int out_printf(Conn *c, const char *fmt, ...) {
        va_list ap;
        int n;

        for (size_t room = 512;; room *= 2) {
                if (out_reserve(c, room) < 0)
                        return -ENOMEM;
                va_start(ap, fmt);
                n = vsnprintf(c->out + c->out_len, c->out_size - c->out_len, fmt, ap);
                va_end(ap);
                if (n < 0)
                        return -EINVAL;
                if ((size_t) n < c->out_size - c->out_len) {
                        c->out_len += (size_t) n;
                        return 0;
                }
                room = (size_t) n + 1;
        }
}

/* Chunked transfer encoding: one chunk. */
static int out_chunk(Conn *c, const char *data, size_t n) {
        if (out_printf(c, "%zx\r\n", n) < 0 || out_reserve(c, n + 2) < 0)
                return -ENOMEM;
        memcpy(c->out + c->out_len, data, n);
        c->out_len += n;
        memcpy(c->out + c->out_len, "\r\n", 2);
        c->out_len += 2;
        return 0;
}

static char text_buf[65536 + 1];

static long body_number(const char *body, size_t n, const char *key, long def, long max) {
        char pat[64];
        const char *p;

        snprintf(pat, sizeof pat, "\"%s\"", key);
        p = memmem(body, n, pat, strlen(pat));
        if (!p)
                return def;
        p += strlen(pat);
        while (p < body + n && (*p == ' ' || *p == ':'))
                p++;
        long v = strtol(p, NULL, 10);
        return v < 0 ? def : v > max ? max : v;
}

static void conn_free(Conn *c) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        free(c->in);
        free(c->out);
        free(c);
        nconns--;
}

static int produce_delta(Conn *c) {
        char ev[65536 + 512];
        int n;
        const char *t = text_buf + (sizeof text_buf - 1 - (size_t) c->chunk_bytes);

        if (c->fmt == FMT_OPENAI)
                n = snprintf(ev, sizeof ev,
                             "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\","
                             "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n", t);
        else
                n = snprintf(ev, sizeof ev,
                             "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                             "\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n", t);
        return out_chunk(c, ev, (size_t) n);
}

/* Fills the output buffer with as much of the answer as is due. */
static int produce(Conn *c) {
        if (!c->busy)
                return 0;
        if (!c->head_done) {
                c->head_done = true;
                if (c->fmt == FMT_NOT_FOUND) {
                        static const char b[] = "{\"error\":{\"message\":\"not found\",\"type\":\"not_found\"}}";
                        c->busy = false;
                        return out_printf(c, "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                                             "content-length: %zu\r\n%s\r\n%s", sizeof b - 1,
                                          c->keep_alive ? "" : "connection: close\r\n", b);
                }
                if (c->fmt == FMT_MODELS) {
                        static const char b[] =
                                "{\"object\":\"list\",\"data\":[{\"id\":\"bench-model\",\"object\":\"model\",\"owned_by\":\"openai\"},"
                                "{\"id\":\"claude-bench\",\"object\":\"model\",\"owned_by\":\"anthropic\"}]}";
                        c->busy = false;
                        return out_printf(c, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                             "content-length: %zu\r\n%s\r\n%s", sizeof b - 1,
                                          c->keep_alive ? "" : "connection: close\r\n", b);
                }
                if (!c->stream) {
                        /* One JSON body with all the text. */
                        long long len = (long long) c->chunks * c->chunk_bytes;
                        const char *pre, *post;
                        char postbuf[512];
                        if (c->fmt == FMT_OPENAI) {
                                pre = "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"model\":\"bench-model\","
                                      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"";
                                snprintf(postbuf, sizeof postbuf,
                                         "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,"
                                         "\"completion_tokens\":%ld,\"total_tokens\":%ld,\"cost\":0.0001}}", c->chunks,
                                         c->chunks + 5);
                        } else {
                                pre = "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-bench\","
                                      "\"content\":[{\"type\":\"text\",\"text\":\"";
                                snprintf(postbuf, sizeof postbuf,
                                         "\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":5,\"output_tokens\":%ld}}",
                                         c->chunks);
                        }
                        post = postbuf;
                        if (out_printf(c, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %lld\r\n%s\r\n%s",
                                       (long long) strlen(pre) + len + (long long) strlen(post),
                                       c->keep_alive ? "" : "connection: close\r\n", pre) < 0)
                                return -ENOMEM;
                        for (long i = 0; i < c->chunks; i++) {
                                if (out_reserve(c, (size_t) c->chunk_bytes) < 0)
                                        return -ENOMEM;
                                memcpy(c->out + c->out_len, text_buf, (size_t) c->chunk_bytes);
                                c->out_len += (size_t) c->chunk_bytes;
                        }
                        c->busy = false;
                        return out_printf(c, "%s", post);
                }
                if (out_printf(c, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                                  "transfer-encoding: chunked\r\n%s\r\n", c->keep_alive ? "" : "connection: close\r\n") < 0)
                        return -ENOMEM;
                if (c->fmt == FMT_ANTHROPIC) {
                        static const char start[] =
                                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\","
                                "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-bench\",\"content\":[],"
                                "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
                                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                                "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
                        if (out_chunk(c, start, sizeof start - 1) < 0)
                                return -ENOMEM;
                }
                c->next_at = now_ms();
        }
        while (c->sent < c->chunks && c->out_len - c->out_off < OUT_LOW) {
                if (c->interval_ms > 0) {
                        uint64_t t = now_ms();
                        if (t < c->next_at)
                                return 0;
                        c->next_at = t + (uint64_t) c->interval_ms;
                }
                if (produce_delta(c) < 0)
                        return -ENOMEM;
                c->sent++;
                if (c->interval_ms > 0)
                        break;
        }
        if (c->sent < c->chunks)
                return 0;
        if (!c->tail_done) {
                char ev[1024];
                int n;
                c->tail_done = true;
                if (c->fmt == FMT_OPENAI)
                        n = snprintf(ev, sizeof ev,
                                     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\","
                                     "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                                     "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":%ld,\"total_tokens\":%ld,\"cost\":0.0001}}\n\n"
                                     "data: [DONE]\n\n", c->chunks, c->chunks + 5);
                else
                        n = snprintf(ev, sizeof ev,
                                     "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                                     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                                     "\"usage\":{\"output_tokens\":%ld}}\n\n"
                                     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", c->chunks);
                if (out_chunk(c, ev, (size_t) n) < 0 || out_printf(c, "0\r\n\r\n") < 0)
                        return -ENOMEM;
                c->busy = false;
        }
        return 0;
}

/* A complete request in c->in: start its answer. 0, or -EAGAIN for more. */
static int parse_request(Conn *c) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        size_t head, body_len = 0;
        char *p, *line_end;

        if (!end)
                return c->in_len >= 64 * 1024 ? -EINVAL : -EAGAIN;
        head = (size_t) (end - c->in) + 4;
        *end = 0;
        c->keep_alive = true;
        for (p = strstr(c->in, "\r\n"); p && p < end; p = line_end) {
                p += 2;
                line_end = strstr(p, "\r\n");
                if (!line_end)
                        line_end = end;
                if (strncasecmp(p, "content-length:", 15) == 0)
                        body_len = strtoul(p + 15, NULL, 10);
                else if (strncasecmp(p, "connection:", 11) == 0 && strcasestr(p + 11, "close"))
                        c->keep_alive = false;
        }
        if (body_len > REQ_MAX)
                return -EINVAL;
        if (c->in_len < head + body_len) {
                *end = '\r';
                return -EAGAIN;
        }
        const char *body = c->in + head;
        line_end = strstr(c->in, "\r\n");
        if (line_end)
                *line_end = 0;
        /* "METHOD PATH HTTP/1.1": the path without its query decides. */
        char *sp = strchr(c->in, ' '), *path = sp ? sp + 1 : "";
        char *q = strpbrk(path, " ?");
        if (q)
                *q = 0;
        size_t plen = strlen(path);
        if (plen >= 17 && strcmp(path + plen - 17, "/chat/completions") == 0)
                c->fmt = FMT_OPENAI;
        else if (plen >= 9 && strcmp(path + plen - 9, "/messages") == 0)
                c->fmt = FMT_ANTHROPIC;
        else if (plen >= 7 && strcmp(path + plen - 7, "/models") == 0)
                c->fmt = FMT_MODELS;
        else
                c->fmt = FMT_NOT_FOUND;
        c->stream = memmem(body, body_len, "\"stream\":true", 13) || memmem(body, body_len, "\"stream\": true", 14);
        c->chunks = body_number(body, body_len, "bench_chunks", 8, 10000000);
        c->chunk_bytes = body_number(body, body_len, "bench_chunk_bytes", 16, 65536);
        if (c->chunk_bytes < 1)
                c->chunk_bytes = 1;
        if ((long long) c->chunks * c->chunk_bytes > ANSWER_MAX)
                c->chunks = ANSWER_MAX / c->chunk_bytes;
        c->interval_ms = body_number(body, body_len, "bench_interval_ms", 0, 60000);
        c->sent = 0;
        c->busy = true;
        c->head_done = c->tail_done = false;
        memmove(c->in, c->in + head + body_len, c->in_len - head - body_len);
        c->in_len -= head + body_len;
        return 0;
}

static void conn_want(Conn *c, bool out) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = c };
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Reads, answers, writes what it can. false: close the connection. */
static bool conn_run(Conn *c, bool readable) {
        if (readable) {
                for (;;) {
                        if (c->in_len + 65536 > c->in_size) {
                                size_t n = c->in_size ? c->in_size * 2 : 131072;
                                if (n > REQ_MAX + 131072)
                                        return false;
                                char *p = realloc(c->in, n);
                                if (!p)
                                        return false;
                                c->in = p;
                                c->in_size = n;
                        }
                        ssize_t k = read(c->fd, c->in + c->in_len, c->in_size - c->in_len - 1);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN)
                                break;
                        if (k <= 0)
                                return false;
                        c->in_len += (size_t) k;
                        c->in[c->in_len] = 0;
                }
        }
        for (;;) {
                if (!c->busy && c->in_len > 0) {
                        int r = parse_request(c);
                        if (r == -EINVAL)
                                return false;
                }
                if (produce(c) < 0)
                        return false;
                while (c->out_off < c->out_len) {
                        ssize_t k = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN) {
                                conn_want(c, true);
                                return true;
                        }
                        if (k < 0)
                                return false;
                        c->out_off += (size_t) k;
                }
                c->out_off = c->out_len = 0;
                if (c->busy && c->interval_ms > 0 && c->sent < c->chunks) {
                        conn_want(c, false);
                        return true; /* the timer goes on */
                }
                if (c->busy)
                        continue;
                if (!c->keep_alive)
                        return false;
                if (c->in_len == 0 || !memmem(c->in, c->in_len, "\r\n\r\n", 4)) {
                        conn_want(c, false);
                        return true;
                }
        }
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "port", required_argument, NULL, 'p' },
                { "port-file", required_argument, NULL, 'f' },
                { "max-conns", required_argument, NULL, 'm' },
                {}
        };
        const char *port_file = NULL;
        int port = 0, c, lfd, sfd, one = 1;
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t sl = sizeof sa;
        sigset_t mask;

        while ((c = getopt_long(argc, argv, "p:f:m:", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        port = atoi(optarg);
                        break;
                case 'f':
                        port_file = optarg;
                        break;
                case 'm':
                        max_conns = atoi(optarg);
                        break;
                default:
                        return 2;
                }
        memset(text_buf, 'x', sizeof text_buf - 1);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);

        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((uint16_t) port);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 4096) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &sl) < 0) {
                perror("bench-gateway: listen");
                return 1;
        }
        printf("http://127.0.0.1:%u\n", ntohs(sa.sin_port));
        fflush(stdout);
        if (port_file) {
                char tmp[4096];
                snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
                FILE *f = fopen(tmp, "w");
                if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0 || rename(tmp, port_file) < 0) {
                        perror("bench-gateway: port file");
                        return 1;
                }
        }

        epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
        ev.data.ptr = &sfd;
        epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

        for (;;) {
                struct epoll_event evs[256];
                int timeout = -1;
                uint64_t t = now_ms();

                /* The paced streams' next deltas. */
                for (Conn *k = conns; k; k = k->next)
                        if (k->busy && k->interval_ms > 0 && k->head_done && k->sent < k->chunks) {
                                int left = k->next_at > t ? (int) (k->next_at - t) : 0;
                                if (timeout < 0 || left < timeout)
                                        timeout = left;
                        }
                int n = epoll_wait(epfd, evs, 256, timeout);
                if (n < 0 && errno != EINTR) {
                        perror("bench-gateway: epoll_wait");
                        return 1;
                }
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr == &sfd)
                                return 0;
                        if (!evs[i].data.ptr) {
                                for (;;) {
                                        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                                        if (fd < 0)
                                                break;
                                        if (nconns >= max_conns) {
                                                close(fd);
                                                continue;
                                        }
                                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                                        Conn *cn = calloc(1, sizeof(Conn));
                                        if (!cn) {
                                                close(fd);
                                                continue;
                                        }
                                        cn->fd = fd;
                                        cn->next = conns;
                                        if (conns)
                                                conns->prev = cn;
                                        conns = cn;
                                        nconns++;
                                        struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = cn };
                                        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
                                }
                                continue;
                        }
                        Conn *cn = evs[i].data.ptr;
                        if (!conn_run(cn, evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                                conn_free(cn);
                }
                /* Paced streams whose time has come. */
                t = now_ms();
                for (Conn *k = conns, *nx; k; k = nx) {
                        nx = k->next;
                        if (k->busy && k->interval_ms > 0 && k->head_done && k->sent < k->chunks && k->next_at <= t &&
                            !conn_run(k, false))
                                conn_free(k);
                }
        }
}
