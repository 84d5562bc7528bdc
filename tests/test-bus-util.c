/* SPDX-License-Identifier: MIT */
/* common/bus-util.c: the a{sv} walker, the integer reader and the option
 * readers, on messages built and sealed in memory (a bus of a socket pair
 * that is never read). */
#include <stdarg.h>
#include <sys/socket.h>

#include "bus-util.h"
#include "test.h"
#include "util.h"

static sd_bus *bus;

/* A signal carrying what append() put in, sealed and ready to be read. */
static sd_bus_message *message_new(void) {
        sd_bus_message *m = NULL;

        ASSERT(sd_bus_message_new_signal(bus, &m, "/t", "t.T", "S") >= 0);
        return m;
}

static void message_seal(sd_bus_message *m) {
        ASSERT(sd_bus_message_seal(m, 1, 0) >= 0);
        ASSERT(sd_bus_message_rewind(m, true) >= 0);
}

typedef struct Seen {
        char keys[128];
        int32_t number;
        unsigned calls;
        int stop_at; /* 1-based entry whose callback fails, 0 for none */
} Seen;

static int on_entry(sd_bus_message *m, const char *key, void *userdata) {
        Seen *s = userdata;

        s->calls++;
        if (s->stop_at && (int) s->calls == s->stop_at)
                return -EPROTO;
        strncat(s->keys, key, sizeof s->keys - strlen(s->keys) - 2);
        strcat(s->keys, ",");
        if (strcmp(key, "n") == 0)
                return sd_bus_message_read(m, "v", "i", &s->number);
        return sd_bus_message_skip(m, "v");
}

static void test_dict_walk(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = message_new();
        Seen s = {};
        const char *after;

        ASSERT(sd_bus_message_append(m, "a{sv}s", 3, "a", "s", "x", "n", "i", (int32_t) -7, "c", "as", 2, "p", "q",
                                     "after") >= 0);
        message_seal(m);
        ASSERT(bus_dict_walk(m, on_entry, &s) >= 0);
        ASSERT_STREQ(s.keys, "a,n,c,");
        ASSERT(s.number == -7);
        /* m stands after the dict. */
        ASSERT(sd_bus_message_read(m, "s", &after) > 0);
        ASSERT_STREQ(after, "after");

        /* A failing callback ends the walk with its error. */
        ASSERT(sd_bus_message_rewind(m, true) >= 0);
        s = (Seen) { .stop_at = 2 };
        ASSERT(bus_dict_walk(m, on_entry, &s) == -EPROTO);
        ASSERT(s.calls == 2);
        ASSERT_STREQ(s.keys, "a,");

        /* An empty dict calls nothing. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *e = message_new();
        ASSERT(sd_bus_message_append(e, "a{sv}", 0) >= 0);
        message_seal(e);
        s = (Seen) {};
        ASSERT(bus_dict_walk(e, on_entry, &s) >= 0);
        ASSERT(s.calls == 0);

        /* Not an a{sv}: sd-bus's error, and no call. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *w = message_new();
        ASSERT(sd_bus_message_append(w, "a{ss}", 1, "k", "v") >= 0);
        message_seal(w);
        ASSERT(bus_dict_walk(w, on_entry, &s) < 0);
        ASSERT(s.calls == 0);
}

static void test_read_integer(void) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = message_new();
        int64_t v = 42;

        ASSERT(sd_bus_message_append(m, "ynqiuxtts", (uint8_t) 255, (int16_t) -32768, (uint16_t) 65535,
                                     (int32_t) INT32_MIN, (uint32_t) UINT32_MAX, (int64_t) INT64_MIN,
                                     (uint64_t) INT64_MAX, (uint64_t) UINT64_MAX, "s") >= 0);
        message_seal(m);
        ASSERT(bus_read_integer(m, 'y', &v) == 0 && v == 255);
        ASSERT(bus_read_integer(m, 'n', &v) == 0 && v == -32768);
        ASSERT(bus_read_integer(m, 'q', &v) == 0 && v == 65535);
        ASSERT(bus_read_integer(m, 'i', &v) == 0 && v == INT32_MIN);
        ASSERT(bus_read_integer(m, 'u', &v) == 0 && v == UINT32_MAX);
        ASSERT(bus_read_integer(m, 'x', &v) == 0 && v == INT64_MIN);
        ASSERT(bus_read_integer(m, 't', &v) == 0 && v == INT64_MAX);
        /* Beyond int64_t: clamped. */
        v = 0;
        ASSERT(bus_read_integer(m, 't', &v) == 0 && v == INT64_MAX);
        /* Not an integer type: refused, and the string is still there. */
        v = 42;
        ASSERT(bus_read_integer(m, 's', &v) == -EINVAL && v == 42);
        ASSERT(bus_read_integer(m, 'd', &v) == -EINVAL && v == 42);
        ASSERT(bus_read_integer(m, 0, &v) == -EINVAL && v == 42);
        const char *s;
        ASSERT(sd_bus_message_read(m, "s", &s) > 0);
        ASSERT_STREQ(s, "s");
        /* At the end: no value. */
        ASSERT(bus_read_integer(m, 'i', &v) < 0 && v == 42);
}

typedef struct Options {
        int64_t n;
        char word[32]; /* a copy: the message is gone when read_options() returns */
        unsigned calls;
} Options;

static int on_option(sd_bus_message *m, const char *name, const char *contents, void *userdata,
                     sd_bus_error *error) {
        Options *o = userdata;

        o->calls++;
        if (strcmp(name, "n") == 0)
                return bus_option_read_integer(m, contents, name, 1, 10, &o->n, error);
        if (strcmp(name, "word") == 0) {
                const char *w;
                int r = bus_option_read_string(m, contents, name, &w, error);
                if (r >= 0)
                        snprintf(o->word, sizeof o->word, "%s", w);
                return r;
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option \"%s\".", name);
}

/* Runs bus_read_options() over what append() put in; the error's message. */
static int read_options(const char *sig, Options *o, char *message, size_t size, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = message_new();
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        va_start(ap, size);
        ASSERT(sd_bus_message_appendv(m, sig, ap) >= 0);
        va_end(ap);
        message_seal(m);
        *o = (Options) {};
        r = bus_read_options(m, on_option, o, &error);
        snprintf(message, size, "%s", error.message ?: "");
        if (r < 0)
                ASSERT(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        return r;
}

static void test_read_options(void) {
        Options o;
        char msg[256];

        /* Any integer type; each variant is left behind for the next entry. */
        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 2, "n", "y", (uint8_t) 7, "word", "s", "hi") >= 0);
        ASSERT(o.n == 7 && o.calls == 2);
        ASSERT_STREQ(o.word, "hi");
        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 0) >= 0 && o.calls == 0);

        /* A key given twice is refused before the callback sees it. */
        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 2, "n", "i", 1, "n", "i", 2) < 0);
        ASSERT_STREQ(msg, "Option n is given twice.");
        ASSERT(o.calls == 1);

        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 1, "n", "i", 11) < 0);
        ASSERT_STREQ(msg, "Option n must be between 1 and 10, not 11.");
        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 1, "n", "s", "7") < 0);
        ASSERT_STREQ(msg, "Option n must be an integer (type u), not of type s.");
        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 1, "word", "u", 3) < 0);
        ASSERT_STREQ(msg, "Option word must be a string (type s), not of type u.");
        ASSERT(read_options("a{sv}", &o, msg, sizeof msg, 1, "other", "b", 1) < 0);
        ASSERT_STREQ(msg, "Unknown option \"other\".");
}

int main(void) {
        int fds[2];

        ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        ASSERT(sd_bus_new(&bus) >= 0);
        ASSERT(sd_bus_set_fd(bus, fds[0], fds[0]) >= 0);
        ASSERT(sd_bus_start(bus) >= 0);

        test_dict_walk();
        test_read_integer();
        test_read_options();

        sd_bus_close_unref(bus);
        (void) close(fds[1]);
        printf("all bus-util checks passed\n");
        return 0;
}
