/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm models: the model list the service holds (live, cached or the
 * built-in catalog), as a table for people or JSON for programs. The dicts
 * of Models.Models are turned into JSON objects with the same keys, and
 * the table is drawn from those.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <time.h>

#include "cli.h"

typedef struct ModelsInfo {
        json_object *models; /* array of objects */
        bool live;
        uint64_t updated_at;
        char *gateway;
} ModelsInfo;

static void models_info_done(ModelsInfo *i) {
        json_object_put(i->models);
        free(i->gateway);
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        *(sd_bus_message **) userdata = sd_bus_message_ref(m);
        return 0;
}

/* Sends both calls before waiting for either: one round trip, not two. */
static int call_two(sd_bus *bus, sd_bus_message **ret_models, sd_bus_message **ret_url, sd_bus_error *error) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *s1 = NULL, *s2 = NULL;
        sd_bus_message *a = NULL, *b = NULL;
        int r;

        r = sd_bus_call_method_async(bus, &s1, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "GetAll",
                                     on_reply, &a, "s", IFACE("Models"));
        if (r >= 0)
                r = sd_bus_call_method_async(bus, &s2, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties",
                                             "Get", on_reply, &b, "ss", IFACE("Key"), "GatewayUrl");
        while (r >= 0 && (!a || !b)) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX); /* the calls time out on their own */
        }
        if (r >= 0 && sd_bus_message_is_method_error(a, NULL))
                r = sd_bus_error_copy(error, sd_bus_message_get_error(a));
        else if (r >= 0 && sd_bus_message_is_method_error(b, NULL))
                r = sd_bus_error_copy(error, sd_bus_message_get_error(b));
        if (r < 0) {
                sd_bus_message_unref(a);
                sd_bus_message_unref(b);
                return r;
        }
        *ret_models = a;
        *ret_url = b;
        return 0;
}

static int models_info_get(sd_bus *bus, ModelsInfo *i) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *url = NULL;
        _cleanup_(json_object_putp) json_object *props = NULL;
        const char *gateway;
        int r;

        r = call_two(bus, &reply, &url, &error);
        if (r < 0)
                return cli_fail_bus("read the model list", &error, r);

        r = cli_dict_to_json(reply, &props);
        if (r >= 0) {
                i->models = json_object_get(cli_json_get(props, "Models", json_type_array));
                i->live = cli_json_bool(props, "Live", false);
                i->updated_at = cli_json_uint(props, "UpdatedAt", 0);
                if (!i->models)
                        r = -ENODATA;
        }
        if (r >= 0)
                r = sd_bus_message_read(url, "v", "s", &gateway);
        if (r >= 0 && free_and_strdup(&i->gateway, gateway) < 0)
                r = -ENOMEM;
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to parse the model list from bankr-llmd: %s",
                                 r == -ENODATA ? "no Models property" : strerror(-r));
        return 0;
}

/* 200000 → "200K", 1000000 → "1M", 1048576 → "1.05M". */
static void format_tokens(char *buf, size_t size, uint64_t n) {
        if (n >= 1000000 && n % 1000000 == 0)
                (void) snprintf(buf, size, "%" PRIu64 "M", n / 1000000);
        else if (n >= 1000000)
                (void) snprintf(buf, size, "%.2fM", (double) n / 1e6);
        else if (n >= 1000 && n % 1000 == 0)
                (void) snprintf(buf, size, "%" PRIu64 "K", n / 1000);
        else if (n >= 1000)
                (void) snprintf(buf, size, "%.1fK", (double) n / 1e3);
        else
                (void) snprintf(buf, size, "%" PRIu64, n);
}

/* "$25", "$0.25", "$0.0833": at most 4 decimals, no trailing zeros. */
static void format_price(char *buf, size_t size, double d) {
        char *p;

        (void) snprintf(buf, size, "$%.4f", d);
        p = buf + strlen(buf) - 1;
        while (p > buf && *p == '0')
                *p-- = 0;
        if (*p == '.')
                *p = 0;
}

static void print_table(const ModelsInfo *info) {
        static const char *const head[] = { "ID", "NAME", "PROVIDER", "CONTEXT", "IN/1M", "OUT/1M", "PRIVACY" };
        enum { N_COLS = ELEMENTSOF(head) };
        size_t n = json_object_array_length(info->models), width[N_COLS];
        for (size_t c = 0; c < N_COLS; c++)
                width[c] = strlen(head[c]);

        /* Two passes: measure, then print. */
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        printf("%-*s  %-*s  %-*s  %*s  %*s  %*s  %*s\n", (int) width[0], head[0], (int) width[1],
                               head[1], (int) width[2], head[2], (int) width[3], head[3], (int) width[4], head[4],
                               (int) width[5], head[5], (int) width[6], head[6]);
                }
                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_array_get_idx(info->models, i);
                        json_object *pricing = cli_json_get(o, "pricing", json_type_object);
                        char ctx[16], in[24], out[24];
                        const char *col[N_COLS];
                        /* The gateway's words: made inert on a terminal. */
                        _cleanup_free_ char *safe_id = NULL, *safe_name = NULL, *safe_provider = NULL;

                        format_tokens(ctx, sizeof ctx, cli_json_uint(o, "context_window", 0));
                        format_price(in, sizeof in, cli_json_double(pricing, "input", 0));
                        format_price(out, sizeof out, cli_json_double(pricing, "output", 0));
                        col[0] = cli_term_safe(stdout, strempty(cli_json_str(o, "id")), &safe_id);
                        col[1] = cli_term_safe(stdout, strempty(cli_json_str(o, "name")), &safe_name);
                        col[2] = cli_term_safe(stdout, strempty(cli_json_str(o, "provider")), &safe_provider);
                        col[3] = ctx;
                        col[4] = in;
                        col[5] = out;
                        /* The strongest tier the model is served at (private implies zdr). */
                        col[6] = cli_json_bool(o, "private", false) ? "private" :
                                 cli_json_bool(o, "zdr", false) ? "zdr" : "-";
                        if (pass == 0) {
                                for (size_t c = 0; c < N_COLS; c++)
                                        width[c] = MAX(width[c], strlen(col[c]));
                                continue;
                        }
                        printf("%-*s  %-*s  %-*s  %*s  %*s  %*s  %*s\n", (int) width[0], col[0], (int) width[1],
                               col[1], (int) width[2], col[2], (int) width[3], col[3], (int) width[4], col[4],
                               (int) width[5], col[5], (int) width[6], col[6]);
                }
        }
}

static void print_footer(const ModelsInfo *info) {
        size_t n = json_object_array_length(info->models);
        char what[64];

        if (info->live)
                (void) snprintf(what, sizeof what, "live");
        else if (info->updated_at > 0) {
                uint64_t now = (uint64_t) time(NULL) * USEC_PER_SEC;
                uint64_t age_min = now > info->updated_at ? (now - info->updated_at) / (60 * USEC_PER_SEC) : 0;
                if (age_min >= 48 * 60)
                        (void) snprintf(what, sizeof what, "cached, %" PRIu64 " days old", age_min / (24 * 60));
                else if (age_min >= 120)
                        (void) snprintf(what, sizeof what, "cached, %" PRIu64 " h old", age_min / 60);
                else
                        (void) snprintf(what, sizeof what, "cached, %" PRIu64 " min old", age_min);
        } else
                (void) snprintf(what, sizeof what, "built-in catalog");

        printf("\n%zu model%s from %s (%s). Prices in USD per 1M tokens.\n", n, n == 1 ? "" : "s",
               strna(info->gateway), what);
}

int verb_models(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, 'j' },
                { "refresh", no_argument, NULL, 'r' },
                { "zdr", no_argument, NULL, 'Z' },
                { "private", no_argument, NULL, 'P' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(models_info_done) ModelsInfo info = {};
        bool json = false, refresh = false, only_zdr = false, only_private = false;
        int c, r, code = EXIT_OK;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hjr", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("bankr-llm models [--json[=FORMAT]] [--refresh] [--zdr|--private]\n\n"
                               "List the models of the gateway: id, name, provider, context window, the\n"
                               "price per 1M input/output tokens and the strongest privacy tier it is\n"
                               "served at (zdr: zero data retention; private: TEE compute, which includes\n"
                               "zdr). The list comes from bankr-llmd at once:\n"
                               "live from the gateway, its cache (refreshed in the background when older\n"
                               "than an hour), or the built-in catalog when no key is set.\n\n"
                               "  -j --json[=FORMAT]\n"
                               "                 print the full records as a JSON array; FORMAT is short\n"
                               "                 (one line), pretty (indented, the default) or off (table)\n"
                               "  -r --refresh   ask the gateway first (on failure the list held is shown\n"
                               "                 and the exit code says why)\n"
                               "     --zdr       only models with a zero-retention slot (for chat --privacy zdr)\n"
                               "     --private   only models served on TEE compute (for chat --privacy private)\n\n"
                               "A model flagged deprecated (by the list, or by an answer) is marked, with its\n"
                               "replacement, below the table.\n\n"
                               "Exit codes: 0 ok, 3 no service, 4 no key (with --refresh), 5 key rejected,\n"
                               "6 credits exhausted, 8 gateway unreachable or failing.\n");
                        return 0;
                CLI_CASE_JSON(json);
                case 'r':
                        refresh = true;
                        break;
                case 'Z':
                        only_zdr = true;
                        break;
                case 'P':
                        only_private = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("models takes no arguments.");

        r = cli_bus(&bus);
        if (r < 0)
                return r;

        if (refresh) {
                code = cli_refresh(bus, IFACE("Models"), "the model list", NULL);
                if (code == -EXIT_NO_SERVICE)
                        return code;
                /* On another failure the list held is still worth showing. */
        }

        r = models_info_get(bus, &info);
        if (r < 0)
                return r;
        if (only_zdr || only_private) {
                json_object *kept = json_object_new_array();
                if (!kept)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
                for (size_t i = 0; i < json_object_array_length(info.models); i++) {
                        json_object *o = json_object_array_get_idx(info.models, i);
                        if ((only_private && !cli_json_bool(o, "private", false)) ||
                            (only_zdr && !cli_json_bool(o, "zdr", false) && !cli_json_bool(o, "private", false)))
                                continue;
                        json_object_array_add(kept, json_object_get(o));
                }
                json_object_put(info.models);
                info.models = kept;
        }

        if (json) {
                cli_print_json(info.models);
                return code;
        }
        if (json_object_array_length(info.models) == 0)
                printf("No models: the built-in catalog is missing and the gateway has not answered yet.\n");
        else
                print_table(&info);
        for (size_t i = 0; i < json_object_array_length(info.models); i++) {
                json_object *o = json_object_array_get_idx(info.models, i);
                _cleanup_free_ char *b1 = NULL, *b2 = NULL;
                const char *repl = cli_json_str(o, "replacement");

                if (!cli_json_bool(o, "deprecated", false))
                        continue;
                printf("Deprecated: %s%s%s\n", cli_term_safe(stdout, strempty(cli_json_str(o, "id")), &b1),
                       isempty(repl) ? "" : ", use ", isempty(repl) ? "" : cli_term_safe(stdout, repl, &b2));
        }
        print_footer(&info);
        return code;
}
