/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm credits [--refresh] [--threshold USD]: the balance bankr-llmd
 * holds and the low-credit threshold. "credits add" and "credits auto" live
 * in verb-topup.c; whether the key works ("key validate") in verb-key.c.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <time.h>

#include "cli.h"

typedef struct CreditsInfo {
        double balance, threshold;
        const char *state;
        uint64_t updated_at;
        json_object *props; /* owns state */
} CreditsInfo;

static void credits_info_done(CreditsInfo *i) {
        json_object_put(i->props);
}

static int credits_info_get(sd_bus *bus, CreditsInfo *i) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = cli_get_all(bus, IFACE("Credits"), &error, &i->props);
        if (r < 0)
                return cli_fail_bus("read the balance", &error, r);
        i->balance = cli_json_double(i->props, "Balance", 0);
        i->threshold = cli_json_double(i->props, "LowThreshold", 0);
        i->updated_at = cli_json_uint(i->props, "UpdatedAt", 0);
        i->state = cli_json_str(i->props, "State");
        if (!i->state)
                return cli_fail(EXIT_FAIL, "Failed to parse the balance from bankr-llmd: no State property");
        return 0;
}

static int exit_for_state(const char *state) {
        if (streq_ptr(state, "exhausted"))
                return -EXIT_NO_CREDITS;
        if (streq_ptr(state, "unauthorized"))
                return -EXIT_UNAUTHORIZED;
        return EXIT_OK;
}

static int set_threshold(sd_bus *bus, double d) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_set_property(bus, BUS_NAME, OBJECT_PATH, IFACE("Credits"), "LowThreshold", &error, "d", d);
        if (r < 0)
                return cli_fail_bus("set the low-credit threshold", &error, r);
        return 0;
}

int verb_credits(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, 'j' },
                { "refresh", no_argument, NULL, 'r' },
                { "threshold", required_argument, NULL, 't' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(credits_info_done) CreditsInfo info = {};
        bool json = false, refresh = false, present = true;
        double threshold = NAN;
        int c, r, code = EXIT_OK;

        if (argc > 1 && streq(argv[1], "add"))
                return verb_credits_add(argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "auto"))
                return verb_credits_auto(argc - 1, argv + 1);

        optind = 0;
        while ((c = getopt_long(argc, argv, "hjrt:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("bankr-llm credits [--json[=FORMAT]] [--refresh] [--threshold USD]\n"
                               "bankr-llm credits add AMOUNT [--token TOKEN] [--yes]\n"
                               "bankr-llm credits auto [--enable|--disable] [OPTIONS]\n\n"
                               "Show the gateway credit balance bankr-llmd holds: the amount, the state\n"
                               "(ok, low, exhausted, unauthorized, unknown) and when the gateway last\n"
                               "answered. bankr-llmd refreshes it every 10 minutes and a few seconds after\n"
                               "chat requests; --refresh asks the gateway now.\n\n"
                               "  -j --json[=FORMAT]   print balance_usd, state, updated_at (µs since the\n"
                               "                       epoch), age_s and low_threshold_usd as a JSON object;\n"
                               "                       FORMAT is short (one line), pretty (indented, the\n"
                               "                       default) or off (the text above)\n"
                               "  -r --refresh         ask the gateway now\n"
                               "  -t --threshold USD   warn (state \"low\", desktop notification) below this\n"
                               "                       balance; 0 turns the warning off; kept across restarts\n\n"
                               "  add    buy credits with the agent API key (see credits add --help)\n"
                               "  auto   show or change auto top-up (see credits auto --help)\n\n"
                               "Exit codes: 0 ok or low, 4 no key, 5 the gateway rejected the key,\n"
                               "6 credits exhausted, 8 gateway unreachable or failing (with --refresh;\n"
                               "the last known balance is still shown).\n");
                        return 0;
                CLI_CASE_JSON(json);
                case 'r':
                        refresh = true;
                        break;
                case 't':
                        if (cli_parse_usd(optarg, &threshold) < 0)
                                return cli_usage("Invalid threshold \"%s\": expected an amount in USD, e.g. 2.50.", optarg);
                        if (threshold < 0 || threshold > 1000000)
                                return cli_usage("The threshold must be between 0 and 1000000 USD.");
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("Unknown argument \"%s\" for credits. Valid subcommands: add, auto.", argv[optind]);

        r = cli_bus(&bus);
        if (r < 0)
                return r;

        if (!isnan(threshold)) {
                r = set_threshold(bus, threshold);
                if (r != 0)
                        return r;
        }
        if (refresh) {
                /* Exhausted and rejected keys are told below, as states. */
                code = cli_refresh(bus, IFACE("Credits"), "the balance",
                                   (const char *const[]) { BUS_ERROR_PAYMENT_REQUIRED, BUS_ERROR_UNAUTHORIZED, NULL });
                if (code == -EXIT_NO_SERVICE || code == -EXIT_NO_KEY)
                        return code;
        }

        r = credits_info_get(bus, &info);
        if (r < 0)
                return r;
        if (streq(info.state, "unknown")) {
                r = cli_get_bool(bus, IFACE("Key"), "Present", &present);
                if (r < 0)
                        return r;
        }
        if (code == EXIT_OK)
                code = exit_for_state(info.state);
        if (code == EXIT_OK && !present)
                code = -EXIT_NO_KEY;

        if (json) {
                json_object *o = json_object_new_object();
                uint64_t now = (uint64_t) time(NULL) * USEC_PER_SEC;

                json_object_object_add(o, "balance_usd", cli_json_number(info.balance));
                json_object_object_add(o, "state", json_object_new_string(info.state));
                json_object_object_add(o, "updated_at", json_object_new_uint64(info.updated_at));
                json_object_object_add(o, "age_s", info.updated_at == 0 ? NULL :
                                       json_object_new_int64(now > info.updated_at ? (int64_t) ((now - info.updated_at) / USEC_PER_SEC) : 0));
                json_object_object_add(o, "low_threshold_usd", cli_json_number(info.threshold));
                cli_print_json(o);
                json_object_put(o);
                return code;
        }

        char age[32];
        cli_format_age(age, sizeof age, info.updated_at);

        if (streq(info.state, "ok"))
                printf("Balance: $%.2f\n  State: ok (warning below $%.2f)\nUpdated: %s\n", info.balance,
                       info.threshold, age);
        else if (streq(info.state, "low"))
                printf("Balance: $%.2f\n  State: low, below $%.2f. Add credits with \"bankr-llm credits add AMOUNT\".\n"
                       "Updated: %s\n", info.balance, info.threshold, age);
        else if (streq(info.state, "exhausted"))
                printf("Balance: $0.00\n  State: exhausted: the gateway refuses requests until you add credits.\n"
                       "         Add some with \"bankr-llm credits add AMOUNT\", or turn on auto top-up\n"
                       "         with \"bankr-llm credits auto --enable\".\n"
                       "Updated: %s\n", age);
        else if (streq(info.state, "unauthorized"))
                printf("Balance: unknown\n  State: unauthorized: the gateway rejected the key.\n"
                       "         Set a valid key with \"bankr-llm key set\"; \"bankr-llm status\" shows which\n"
                       "         key is in use.\n"
                       "Updated: %s\n", age);
        else if (!present)
                printf("Balance: unknown\n  State: no key is set. Set one with \"bankr-llm key set\".\n");
        else
                printf("Balance: unknown\n  State: the gateway has not answered yet%s.\n",
                       refresh ? "" : " (try \"bankr-llm credits --refresh\")");
        return code;
}

