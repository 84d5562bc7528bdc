/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm credits add | credits auto: the credit verbs behind polkit
 * ("key reveal", also behind polkit, is in verb-key.c). Each call goes
 * through cli_call_interactive(), so that polkit can ask for a password, on
 * the terminal when no graphical agent is running.
 */
#include <getopt.h>
#include <math.h>
#include <json-c/json.h>

#include "cli.h"

#define TOP_UP_MIN 1.0
#define TOP_UP_MAX 1000.0
#define THRESHOLD_MIN 1.0
#define THRESHOLD_MAX 500.0
#define TOKENS_MAX 3

/* --- helpers ------------------------------------------------------------- */

static int parse_usd_arg(const char *what, const char *s, double lo, double hi, double *ret) {
        double v;

        if (cli_parse_usd(s, &v) < 0)
                return cli_usage("Invalid %s \"%s\": expected a number of US dollars such as 25 or 12.50.", what, s);
        if (v < lo || v > hi)
                return cli_usage("Invalid %s $%s: it must be between $%g and $%g.", what, s[0] == '$' ? s + 1 : s, lo, hi);
        *ret = v;
        return 0;
}

/* Same rule as the service: a symbol or an address, printable ASCII. */
static bool token_ok(const char *t) {
        size_t n = strlen(t);

        if (n == 0 || n > 100)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) t[i] <= ' ' || (unsigned char) t[i] >= 0x7f)
                        return false;
        return true;
}

static void print_usd_line(const char *label, double v) {
        printf("%s$%.2f\n", label, v);
}

/* Balance and State, when the service has them; false otherwise (an older
 * service, or one not yet able to tell). */
static bool get_balance(sd_bus *bus, double *ret_balance, char **ret_state) {
        _cleanup_(json_object_putp) json_object *props = NULL;
        char *state;

        if (cli_get_all(bus, IFACE("Credits"), NULL, &props) < 0 ||
            !cli_json_get(props, "Balance", json_type_double) || !cli_json_str(props, "State"))
                return false;
        state = strdup(cli_json_str(props, "State"));
        if (!state)
                return false;
        *ret_balance = cli_json_double(props, "Balance", 0);
        *ret_state = state;
        return true;
}

/* y/yes on the terminal; anything else (or end of input) is no. */
static bool ask_yes_no(const char *question) {
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        fprintf(stderr, "%s [y/N] ", question);
        fflush(stderr);
        if (getline(&line, &cap, stdin) < 0) {
                fputc('\n', stderr);
                return false;
        }
        line[strcspn(line, "\r\n")] = 0;
        return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

/* --- credits add --------------------------------------------------------- */

static void credits_add_help(void) {
        printf("bankr-llm credits add AMOUNT [--token TOKEN] [--yes]\n\n"
               "Buy AMOUNT US dollars of LLM credits (1 to 1000) from your Bankr wallet,\n"
               "through the agent API with your Bankr API key (\"bankr-llm key set --api\").\n"
               "Shows the current balance and asks for confirmation first; polkit may then\n"
               "ask for your password (action bot.bankr.LLM1.top-up).\n\n"
               "  --token TOKEN   pay with this token (symbol such as USDC, or address)\n"
               "  -y --yes        do not ask for confirmation (needed without a terminal)\n"
               "  -h --help       show this help\n\n"
               "A top-up is sent once and never retried: if the answer is lost, check the\n"
               "balance with \"bankr-llm credits\" before trying again.\n\n"
               "Exit codes:\n"
               "    0  credits added\n"
               "    1  declined at the prompt, or another failure\n"
               "    2  bad AMOUNT or TOKEN, or no terminal to confirm on and no --yes\n"
               "    3  bankr-llmd cannot be reached\n"
               "    4  no Bankr API key is set\n"
               "    5  the API key was rejected, or the LLM gateway is not enabled for it\n"
               "    6  the wallet does not hold enough to pay\n"
               "    7  not authorized by polkit (denied, dismissed, or polkit unavailable)\n"
               "    8  the agent API failed, timed out, or the token swap failed\n");
}

int verb_credits_add(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "token", required_argument, NULL, 't' },
                { "yes", no_argument, NULL, 'y' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *state = NULL, *question = NULL;
        const char *token = "", *tx;
        double amount, granted, balance;
        bool yes = false;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ht:y", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        credits_add_help();
                        return 0;
                case 't':
                        if (!token_ok(optarg))
                                return cli_usage("Invalid --token \"%s\": give a token symbol such as USDC or a 0x… "
                                                 "address (printable, no spaces, at most 100 characters).",
                                                 optarg);
                        token = optarg;
                        break;
                case 'y':
                        yes = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind >= argc)
                return cli_usage("credits add needs an AMOUNT in US dollars (1 to 1000), e.g. \"bankr-llm credits add 25\".");
        if (optind + 1 < argc)
                return cli_usage("credits add takes one AMOUNT; got \"%s\" too.", argv[optind + 1]);
        r = parse_usd_arg("amount", argv[optind], TOP_UP_MIN, TOP_UP_MAX, &amount);
        if (r != 0)
                return r;

        /* Spending needs a yes from a person, or an explicit --yes. */
        if (!yes && (arg_no_ask || !isatty(STDIN_FILENO)))
                return cli_fail(EXIT_USAGE,
                                "Refusing to add credits without confirmation: %s.\n"
                                "Run it on a terminal, or pass --yes to confirm spending $%.2f from your wallet.",
                                arg_no_ask ? "--no-ask-password was given" : "standard input is not a terminal",
                                amount);

        r = cli_bus(&bus);
        if (r < 0)
                return r;

        if (get_balance(bus, &balance, &state)) {
                /* Just started, say: ask the gateway once rather than show nothing. */
                if (streq(state, "unknown") &&
                    sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, IFACE("Credits"), "Refresh", NULL, NULL, NULL) >= 0) {
                        state = mfree(state);
                        if (!get_balance(bus, &balance, &state))
                                state = NULL;
                }
                if (state && !streq(state, "unknown"))
                        print_usd_line("Current balance: ", balance);
        }

        if (!yes) {
                if (asprintf(&question, "Add $%.2f of credits from your wallet%s%s?", amount,
                             isempty(token) ? "" : ", paid in ", token) < 0)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
                if (!ask_yes_no(question))
                        return cli_fail(EXIT_FAIL, "Nothing was added.");
        }

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Credits"), "TopUp");
        if (r >= 0)
                r = sd_bus_message_append(m, "ds", amount, token);
        if (r < 0)
                return cli_fail_bus("add credits", NULL, r);
        r = cli_call_interactive(bus, m, &error, &reply);
        if (r < 0)
                return cli_fail_bus("add credits", &error, r);
        r = sd_bus_message_read(reply, "dds", &granted, &balance, &tx);
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Credits were added, but the answer could not be read (%s): check "
                                "\"bankr-llm credits\".", strerror(-r));

        _cleanup_free_ char *safe_tx = NULL;
        if (isempty(tx))
                printf("Added $%.2f (new balance $%.2f).\n", granted, balance);
        else
                printf("Added $%.2f (new balance $%.2f, transaction %s).\n", granted, balance,
                       cli_term_safe(stdout, tx, &safe_tx));
        return 0;
}

/* --- credits auto -------------------------------------------------------- */

static void credits_auto_help(void) {
        printf("bankr-llm credits auto [--enable|--disable] [--amount USD] [--threshold USD]\n"
               "                       [--tokens A,B,C]\n\n"
               "Show the auto top-up settings, or change them: with auto top-up enabled, the\n"
               "gateway buys AMOUNT of credits from your wallet whenever the balance falls\n"
               "below THRESHOLD. Changing them asks polkit (action\n"
               "bot.bankr.LLM1.configure-auto-top-up), which may ask for your password.\n\n"
               "  --enable          turn auto top-up on\n"
               "  --disable         turn it off\n"
               "  --amount USD      how much to buy each time (1 to 1000)\n"
               "  --threshold USD   buy when the balance falls below this (1 to 500)\n"
               "  --tokens A,B      tokens to pay with, in order of preference (1 to 3)\n"
               "  -j --json[=FORMAT]\n"
               "                    print the settings as JSON: short (one line), pretty\n"
               "                    (indented, the default) or off (text)\n"
               "  -h --help         show this help\n\n"
               "Exit codes:\n"
               "    0  success\n"
               "    1  failure not listed below\n"
               "    2  bad option or value (--enable with --disable, out of range)\n"
               "    3  bankr-llmd cannot be reached\n"
               "    4  no Bankr API key is set\n"
               "    5  the API key was rejected, or the LLM gateway is not enabled for it\n"
               "    7  not authorized by polkit (changes only)\n"
               "    8  the agent API failed or timed out\n");
}

static int print_auto_settings(sd_bus_message *reply, bool json) {
        _cleanup_(json_object_putp) json_object *settings = NULL;
        json_object *tokens;
        const char *last_at, *last_error;
        double amount, threshold;
        bool enabled;
        size_t n_tokens;
        int r;

        r = cli_dict_to_json(reply, &settings);
        if (r < 0)
                return r;
        enabled = cli_json_bool(settings, "enabled", false);
        amount = cli_json_double(settings, "amount_usd", NAN);
        threshold = cli_json_double(settings, "threshold_usd", NAN);
        tokens = cli_json_get(settings, "tokens", json_type_array);
        n_tokens = tokens ? json_object_array_length(tokens) : 0;
        last_at = cli_json_str(settings, "last_top_up_at");
        last_error = cli_json_str(settings, "last_error");

        if (json) {
                json_object *o = json_object_new_object(), *arr = json_object_new_array();
                if (!o || !arr) {
                        json_object_put(o);
                        json_object_put(arr);
                        return -ENOMEM;
                }
                json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
                json_object_object_add(o, "amount_usd", isfinite(amount) ? json_object_new_double(amount) : NULL);
                json_object_object_add(o, "threshold_usd", isfinite(threshold) ? json_object_new_double(threshold) : NULL);
                for (size_t i = 0; i < n_tokens; i++)
                        json_object_array_add(arr, json_object_get(json_object_array_get_idx(tokens, i)));
                json_object_object_add(o, "tokens", arr);
                if (last_at)
                        json_object_object_add(o, "last_top_up_at", json_object_new_string(last_at));
                if (last_error)
                        json_object_object_add(o, "last_error", json_object_new_string(last_error));
                cli_print_json(o);
                json_object_put(o);
                return 0;
        }

        printf("  Auto top-up: %s\n", enabled ? "enabled" : "disabled");
        if (isfinite(amount) && isfinite(threshold))
                printf("       Amount: $%.2f when the balance falls below $%.2f\n", amount, threshold);
        printf("       Tokens: ");
        if (n_tokens == 0)
                printf("(the default)");
        /* The agent API's words: made inert on a terminal. */
        for (size_t i = 0; i < n_tokens; i++) {
                _cleanup_free_ char *buf = NULL;
                printf("%s%s", i > 0 ? ", " : "",
                       cli_term_safe(stdout, strempty(json_object_get_string(json_object_array_get_idx(tokens, i))), &buf));
        }
        printf("\n");
        _cleanup_free_ char *safe_at = NULL, *safe_error = NULL;
        if (last_at)
                printf("  Last top-up: %s\n", cli_term_safe(stdout, last_at, &safe_at));
        if (last_error)
                printf("   Last error: %s\n", cli_term_safe(stdout, last_error, &safe_error));
        return 0;
}

int verb_credits_auto(int argc, char *argv[]) {
        enum { ARG_ENABLE = 0x100, ARG_DISABLE, ARG_AMOUNT, ARG_THRESHOLD, ARG_TOKENS };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "enable", no_argument, NULL, ARG_ENABLE },
                { "disable", no_argument, NULL, ARG_DISABLE },
                { "amount", required_argument, NULL, ARG_AMOUNT },
                { "threshold", required_argument, NULL, ARG_THRESHOLD },
                { "tokens", required_argument, NULL, ARG_TOKENS },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_strv_free_ char **tokens = NULL;
        bool enable = false, disable = false, json = false;
        double amount = NAN, threshold = NAN;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hj", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        credits_auto_help();
                        return 0;
                case ARG_ENABLE:
                        enable = true;
                        break;
                case ARG_DISABLE:
                        disable = true;
                        break;
                case ARG_AMOUNT:
                        r = parse_usd_arg("--amount", optarg, TOP_UP_MIN, TOP_UP_MAX, &amount);
                        if (r != 0)
                                return r;
                        break;
                case ARG_THRESHOLD:
                        r = parse_usd_arg("--threshold", optarg, THRESHOLD_MIN, THRESHOLD_MAX, &threshold);
                        if (r != 0)
                                return r;
                        break;
                case ARG_TOKENS: {
                        _cleanup_free_ char *copy = strdup(optarg);
                        char *save = NULL;

                        if (!copy)
                                return cli_fail(EXIT_FAIL, "Out of memory.");
                        tokens = strv_free(tokens);
                        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                                t += strspn(t, " ");
                                t[strcspn(t, " ")] = 0;
                                if (!token_ok(t))
                                        return cli_usage("Invalid token \"%s\" in --tokens: give symbols such as USDC "
                                                         "or 0x… addresses, separated by commas.", t);
                                if (strv_contains(tokens, t))
                                        return cli_usage("--tokens lists \"%s\" twice.", t);
                                if (strv_extend(&tokens, t) < 0)
                                        return cli_fail(EXIT_FAIL, "Out of memory.");
                        }
                        if (strv_length(tokens) < 1 || strv_length(tokens) > TOKENS_MAX)
                                return cli_usage("--tokens takes 1 to %d tokens separated by commas, e.g. --tokens USDC,WETH.",
                                                 TOKENS_MAX);
                        break;
                }
                CLI_CASE_JSON(json);
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("credits auto takes options only; got \"%s\". See --help.", argv[optind]);
        if (enable && disable)
                return cli_usage("--enable and --disable contradict each other: give one of them.");

        r = cli_bus(&bus);
        if (r < 0)
                return r;

        if (!enable && !disable && isnan(amount) && isnan(threshold) && !tokens) {
                r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, IFACE("Credits"), "GetAutoTopUp", &error, &reply, NULL);
                if (r < 0)
                        return cli_fail_bus("read the auto top-up settings", &error, r);
        } else {
                r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Credits"), "SetAutoTopUp");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                if (r >= 0 && (enable || disable))
                        r = sd_bus_message_append(m, "{sv}", "enabled", "b", enable);
                if (r >= 0 && !isnan(amount))
                        r = sd_bus_message_append(m, "{sv}", "amount_usd", "d", amount);
                if (r >= 0 && !isnan(threshold))
                        r = sd_bus_message_append(m, "{sv}", "threshold_usd", "d", threshold);
                if (r >= 0 && tokens)
                        r = bus_append_dict_strv(m, "tokens", tokens);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return cli_fail_bus("change the auto top-up settings", NULL, r);
                r = cli_call_interactive(bus, m, &error, &reply);
                if (r < 0)
                        return cli_fail_bus("change the auto top-up settings", &error, r);
                if (!json)
                        printf("Auto top-up settings updated.\n");
        }

        r = print_auto_settings(reply, json);
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to read the auto top-up settings: %s", strerror(-r));
        return 0;
}

