/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm endpoint [--json] | endpoint revoke ID: the local endpoint's
 * URL, unix socket and live tokens (Endpoint properties; never a token
 * itself), and RevokeToken.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <time.h>

#include "cli.h"

static int fail_endpoint(const char *what, const sd_bus_error *error, int r) {
        if (error && (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_PROPERTY) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT)))
                return cli_fail(EXIT_FAIL, "Failed to %s: this bankr-llmd has no local endpoint "
                                           "(no bot.bankr.LLM1.Endpoint interface); update bankr-llmd.", what);
        return cli_fail_bus(what, error, r);
}

/* "in 52 min", "in 3 h", "in 2 days", "expired" from µs since the epoch. */
static void format_until(char *buf, size_t size, uint64_t at) {
        uint64_t now = now_usec(CLOCK_REALTIME), s;

        if (at == 0) {
                snprintf(buf, size, "never");
                return;
        }
        if (at <= now) {
                snprintf(buf, size, "expired");
                return;
        }
        s = (at - now) / USEC_PER_SEC;
        if (s < 60)
                snprintf(buf, size, "in %" PRIu64 " s", s);
        else if (s < 2 * 3600)
                snprintf(buf, size, "in %" PRIu64 " min", s / 60);
        else if (s < 2 * 86400)
                snprintf(buf, size, "in %" PRIu64 " h", s / 3600);
        else
                snprintf(buf, size, "in %" PRIu64 " days", s / 86400);
}

/* Gateway- or caller-controlled text for the table: one line, inert. */
static void put_cell(const char *s, int width) {
        _cleanup_free_ char *buf = NULL;
        const char *t = cli_term_safe(stdout, strempty(s), &buf);

        printf("%-*s ", width, t);
}

static void endpoint_help(void) {
        printf("bankr-llm endpoint [--json[=FORMAT]]\n"
               "bankr-llm endpoint revoke ID\n\n"
               "Show bankr-llmd's local endpoint: the URL tools use instead of the gateway\n"
               "(OpenAI-format clients add /v1), its unix socket, and the live tokens by id,\n"
               "app, lifetime, expiry, budget, spending and use. Tokens themselves are never\n"
               "shown again after \"bankr-llm token\" printed them.\n\n"
               "  -j --json[=FORMAT]   print url, socket_path and tokens (each with id, app,\n"
               "                       lifetime, created_at, expires_at, budget_usd, spent_usd,\n"
               "                       requests, last_used_at, models; times in µs since the\n"
               "                       epoch, 0 for none) as a JSON object; FORMAT is short,\n"
               "                       pretty (the default) or off\n\n"
               "  revoke ID   end the token with this id at once; requests in flight on it\n"
               "              are cut\n");
}

static int endpoint_revoke(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        endpoint_help();
                        return 0;
                default:
                        return -EXIT_USAGE;
                }
        if (optind >= argc)
                return cli_usage("endpoint revoke needs a token id; \"bankr-llm endpoint\" lists them.");
        if (argc - optind > 1)
                return cli_usage("endpoint revoke takes one token id, not %d arguments.", argc - optind);
        if (isempty(argv[optind]))
                return cli_usage("The token id must not be empty; \"bankr-llm endpoint\" lists them.");

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, IFACE("Endpoint"), "RevokeToken", &error, NULL, "s",
                               argv[optind]);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS))
                        return cli_fail(EXIT_USAGE, "Failed to revoke the token: %s", error.message ?: "invalid id");
                return fail_endpoint("revoke the token", &error, r);
        }
        printf("Revoked token %s.\n", argv[optind]);
        return 0;
}

int verb_endpoint(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *props = NULL;
        json_object *tokens;
        const char *url, *sock;
        bool json = false;
        int c, r;

        if (argc > 1 && streq(argv[1], "revoke"))
                return endpoint_revoke(argc - 1, argv + 1);

        optind = 0;
        while ((c = getopt_long(argc, argv, "hj", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        endpoint_help();
                        return 0;
                CLI_CASE_JSON(json);
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("Unknown argument \"%s\" for endpoint. Valid subcommand: revoke.", argv[optind]);

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = cli_get_all(bus, IFACE("Endpoint"), &error, &props);
        if (r < 0)
                return fail_endpoint("read the endpoint", &error, r);
        url = cli_json_str(props, "Url");
        sock = cli_json_str(props, "SocketPath");
        tokens = cli_json_get(props, "Tokens", json_type_array);
        if (!url)
                return fail_endpoint("read the endpoint", NULL, -EBADMSG);

        if (json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (!o)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
                json_object_object_add(o, "url", json_object_new_string(url));
                json_object_object_add(o, "socket_path", json_object_new_string(strempty(sock)));
                json_object_object_add(o, "tokens", tokens ? json_object_get(tokens) : json_object_new_array());
                cli_print_json(o);
                return 0;
        }

        if (isempty(url))
                printf("URL:     (not listening; see the service's log)\n");
        else
                printf("URL:     %s  (OpenAI-format clients: %s/v1)\n", url, url);
        printf("Socket:  %s\n", isempty(sock) ? "(none)" : sock);
        if (!tokens || json_object_array_length(tokens) == 0) {
                printf("Tokens:  none (\"bankr-llm token\" mints one)\n");
                return 0;
        }
        printf("Tokens:  %zu\n\n", json_object_array_length(tokens));
        printf("%-16s %-14s %-10s %-12s %-9s %-9s %-8s %s\n", "ID", "APP", "LIFETIME", "EXPIRES", "BUDGET", "SPENT",
               "REQUESTS", "LAST USED");
        for (size_t i = 0; i < json_object_array_length(tokens); i++) {
                json_object *t = json_object_array_get_idx(tokens, i);
                char expires[32], used[32], budget[32], spent[32];
                double b = cli_json_double(t, "budget_usd", 0);

                format_until(expires, sizeof expires, cli_json_uint(t, "expires_at", 0));
                cli_format_age(used, sizeof used, cli_json_uint(t, "last_used_at", 0));
                if (b > 0)
                        snprintf(budget, sizeof budget, "$%.2f", b);
                else
                        snprintf(budget, sizeof budget, "-");
                snprintf(spent, sizeof spent, "$%.4f", cli_json_double(t, "spent_usd", 0));
                put_cell(cli_json_str(t, "id"), 16);
                put_cell(cli_json_str(t, "app"), 14);
                put_cell(cli_json_str(t, "lifetime"), 10);
                printf("%-12s %-9s %-9s %-8" PRIu64 " %s\n", expires, budget, spent, cli_json_uint(t, "requests", 0), used);
        }
        return 0;
}
