/* SPDX-License-Identifier: MIT */
/*
 * bench-dbus-get: times N Properties.Get calls of one bankr-llmd property on
 * the session bus (blocking sd-bus calls, one at a time, reply fully read)
 * and prints the latency distribution as one JSON object. Used by
 * bench-models-credits.py; results in docs/performance.md.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "bankr-names.h"
#include "util.h"

static unsigned arg_count = 2000;
static const char *arg_interface = IFACE_MODELS;
static const char *arg_property = "Models";

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int get_once(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "Get",
                               &error, &reply, "ss", arg_interface, arg_property);
        if (r < 0) {
                fprintf(stderr, "Failed to read %s.%s: %s\n", arg_interface, arg_property,
                        error.message ?: strerror(-r));
                return r;
        }
        /* Walk the whole value, as a client would. */
        return sd_bus_message_skip(reply, "v");
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "count", required_argument, NULL, 'n' },
                { "interface", required_argument, NULL, 'i' },
                { "property", required_argument, NULL, 'p' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hn:i:p:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("bench-dbus-get [--count N] [--interface IFACE] [--property NAME]\n\n"
                               "Time N Properties.Get calls on bot.bankr.LLM1 (default: Models.Models, 2000).\n");
                        return 0;
                case 'n':
                        arg_count = (unsigned) strtoul(optarg, NULL, 10);
                        if (arg_count < 1 || arg_count > 10000000) {
                                fprintf(stderr, "Invalid count: %s\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'i':
                        arg_interface = optarg;
                        break;
                case 'p':
                        arg_property = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ uint64_t *t = NULL;
        uint64_t sum = 0;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = sd_bus_open_user(&bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the session bus: %s\n", strerror(-r));
                return 1;
        }
        t = calloc(arg_count, sizeof(uint64_t));
        if (!t)
                return 1;

        for (unsigned i = 0; i < 20; i++) /* warm up: activation, caches */
                if (get_once(bus) < 0)
                        return 1;
        for (unsigned i = 0; i < arg_count; i++) {
                uint64_t a = now_ns();
                if (get_once(bus) < 0)
                        return 1;
                t[i] = now_ns() - a;
                sum += t[i];
        }
        qsort(t, arg_count, sizeof(uint64_t), cmp_u64);

        printf("{\"interface\": \"%s\", \"property\": \"%s\", \"count\": %u, "
               "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f}\n",
               arg_interface, arg_property, arg_count, t[arg_count / 2] / 1e3, t[arg_count * 90 / 100] / 1e3,
               t[arg_count * 99 / 100] / 1e3, t[arg_count - 1] / 1e3, (double) sum / arg_count / 1e3);
        return 0;
}
