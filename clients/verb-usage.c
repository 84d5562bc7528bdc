/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm usage [--by app|model|day|hour] | usage recent | budget: what
 * each application spent (bot.bankr.LLM1.Usage), as a table, a bar chart
 * per day, or JSON; and the budgets per application.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <langinfo.h>
#include <math.h>
#include <sys/ioctl.h>
#include <time.h>

#include "budget.h"
#include "cli.h"

#define USAGE_CALL_TIMEOUT_USEC (30 * USEC_PER_SEC)

/* ---- output helpers ------------------------------------------------------ */

static bool utf8_terminal(void) {
        const char *cs = nl_langinfo(CODESET);
        return cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
}

static unsigned terminal_width(void) {
        const char *e = getenv("COLUMNS");
        struct winsize ws;

        if (!isempty(e)) {
                char *end;
                unsigned long v = strtoul(e, &end, 10);
                if (*end == '\0' && v >= 20 && v <= 10000)
                        return (unsigned) v;
        }
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col >= 20)
                return ws.ws_col;
        return 80;
}

static void format_tokens(char *buf, size_t size, uint64_t n) {
        if (n >= 10000000000ULL)
                (void) snprintf(buf, size, "%.0fG", (double) n / 1e9);
        else if (n >= 10000000ULL)
                (void) snprintf(buf, size, "%.0fM", (double) n / 1e6);
        else if (n >= 100000ULL)
                (void) snprintf(buf, size, "%.0fk", (double) n / 1e3);
        else
                (void) snprintf(buf, size, "%" PRIu64, n);
}

static void format_usd(char *buf, size_t size, double usd) {
        if (usd != 0 && fabs(usd) < 0.01)
                (void) snprintf(buf, size, "$%.4f", usd);
        else
                (void) snprintf(buf, size, "$%.2f", usd);
}

/* Local time of usec: the date ("2026-11-30"), to the minute or to the second. */
typedef enum TimeFormat { TIME_DATE, TIME_MINUTE, TIME_SECOND } TimeFormat;

static void format_time(char *buf, size_t size, uint64_t usec, TimeFormat f) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        if (!localtime_r(&t, &tm))
                n = 0;
        else if (f == TIME_DATE)
                n = strftime(buf, size, "%Y-%m-%d", &tm);
        else if (f == TIME_MINUTE)
                n = strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
        else
                n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
        if (n == 0)
                (void) snprintf(buf, size, "@%" PRIu64, usec);
}

/* Appends the filter a{sv}: since (0: none), app (NULL: none). */
static int append_filter(sd_bus_message *m, uint64_t since, const char *app) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && since > 0)
                r = sd_bus_message_append(m, "{sv}", "since", "t", since);
        if (r >= 0 && app)
                r = sd_bus_message_append(m, "{sv}", "app", "s", app);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* Calls Usage.method (first argument first, of type "s" or "u", then the
 * filter) and reads the list it answers. With json, prints it and returns 1;
 * else 0 with the list in *ret. -EXIT_* after saying what failed. */
static int usage_query(const char *method, const char *what, const char *first_type, const void *first,
                       uint64_t since, const char *app, bool json, json_object **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Usage"), method);
        if (r >= 0)
                r = streq(first_type, "s") ? sd_bus_message_append(m, "s", (const char *) first)
                                           : sd_bus_message_append(m, "u", *(const uint32_t *) first);
        if (r >= 0)
                r = append_filter(m, since, app);
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to %s: %s", what, strerror(-r));
        r = sd_bus_call(bus, m, USAGE_CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return cli_fail_bus(what, &error, r);
        r = cli_variant_to_json(reply, ret);
        if (r < 0 || !*ret || !json_object_is_type(*ret, json_type_array))
                return cli_fail(EXIT_FAIL, "Failed to %s: bankr-llmd sent an answer that is not a list.", what);
        if (json) {
                cli_print_json(*ret);
                return 1;
        }
        return 0;
}

/* The getopt loop of the usage and budget verbs. -h prints help (0: the
 * verb is done); -a/--app sets *app (where app is not NULL); -j/--json[=…]
 * sets *json (cli_parse_json_arg()); every other option goes to f, when not
 * NULL, which returns 0 or -EXIT_USAGE after saying what was wrong. 1 to go
 * on, -EXIT_USAGE after a bad option. */
typedef int (*usage_option_func_t)(int c, void *userdata);

static int parse_usage_options(int argc, char *argv[], const char *optstring, const struct option *options,
                               const char *help, const char **app, bool *json, usage_option_func_t f,
                               void *userdata) {
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, optstring, options, NULL)) >= 0) {
                if (c == 'h') {
                        fputs(help, stdout);
                        return 0;
                }
                if (c == 'a' && app)
                        *app = optarg;
                else if (c == 'j') {
                        if (cli_parse_json_arg(optarg, json) < 0)
                                return -EXIT_USAGE;
                } else {
                        r = f ? f(c, userdata) : -EXIT_USAGE;
                        if (r < 0)
                                return r;
                }
        }
        return 1;
}

/* Input tokens of a row or record, cached ones included. */
static uint64_t row_input_tokens(json_object *o) {
        return cli_json_uint(o, "input_tokens", 0) + cli_json_uint(o, "cache_read_tokens", 0) +
               cli_json_uint(o, "cache_write_tokens", 0);
}

/* ---- usage ------------------------------------------------------------------ */

static void print_table(json_object *rows, const char *key, const char *title) {
        size_t n = json_object_array_length(rows), w = strlen(title);
        uint64_t req = 0, err = 0, in = 0, out = 0;
        double cost = 0;
        char a[32], b[32], c[32];

        for (size_t i = 0; i < n; i++) {
                const char *k = cli_json_str(json_object_array_get_idx(rows, i), key);
                if (k)
                        w = MAX(w, MIN(strlen(k), (size_t) 48));
        }
        printf("%-*s %9s %7s %9s %9s %10s\n", (int) w, title, "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "COST");
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(rows, i);
                _cleanup_free_ char *buf = NULL;
                const char *k = cli_term_safe(stdout, cli_json_str(o, key) ?: "", &buf);
                uint64_t rq = cli_json_uint(o, "requests", 0), er = cli_json_uint(o, "errors", 0);
                uint64_t it = row_input_tokens(o);
                uint64_t ot = cli_json_uint(o, "output_tokens", 0);
                double co = cli_json_double(o, "cost_usd", 0);

                format_tokens(a, sizeof a, it);
                format_tokens(b, sizeof b, ot);
                format_usd(c, sizeof c, co);
                printf("%-*.*s %9" PRIu64 " %7" PRIu64 " %9s %9s %10s\n", (int) w, 48, k, rq, er, a, b, c);
                req += rq, err += er, in += it, out += ot, cost += co;
        }
        format_tokens(a, sizeof a, in);
        format_tokens(b, sizeof b, out);
        format_usd(c, sizeof c, cost);
        printf("%-*s %9" PRIu64 " %7" PRIu64 " %9s %9s %10s\n", (int) w, "total", req, err, a, b, c);
}

/* One bar of width cells for value/max: Unicode eighth blocks, or '#'. */
static void print_bar(double value, double max, unsigned cells, bool utf8) {
        static const char *const eighths[] = { "", "▏", "▎", "▍", "▌", "▋", "▊", "▉" };
        unsigned total = max > 0 ? (unsigned) llround(value / max * cells * 8) : 0, used;

        if (value > 0 && total == 0)
                total = 1; /* something spent shows */
        if (!utf8) {
                used = (total + 7) / 8;
                for (unsigned i = 0; i < used; i++)
                        putchar('#');
        } else {
                used = total / 8;
                for (unsigned i = 0; i < used; i++)
                        fputs("█", stdout);
                if (total % 8) {
                        fputs(eighths[total % 8], stdout);
                        used++;
                }
        }
        for (; used < cells; used++)
                putchar(' ');
}

/* Days from since (or the first day with data) to today, each with a bar. */
static void print_chart(json_object *rows, uint64_t since) {
        size_t n = json_object_array_length(rows);
        uint64_t now = (uint64_t) time(NULL) * USEC_PER_SEC, day, end, req_total = 0;
        bool utf8 = utf8_terminal();
        unsigned width = terminal_width(), cells;
        double max = 0, total = 0;
        char label[16], cost[32];

        for (size_t i = 0; i < n; i++)
                max = MAX(max, cli_json_double(json_object_array_get_idx(rows, i), "cost_usd", 0));
        if (since == 0 && n > 0) {
                /* From the first day with data: rows are ordered by day. */
                const char *first = cli_json_str(json_object_array_get_idx(rows, 0), "day");
                if (!first || budget_parse_when(first, now, &since) < 0)
                        since = now;
        } else if (since == 0)
                since = now;

        /* "2026-11-30 " + bar + " $12.34  1234 req" */
        cells = width > 11 + 24 ? width - 11 - 24 : 10;
        cells = MIN(cells, 100U);
        if (budget_period_bounds(BUDGET_DAY, since, &day, NULL) < 0)
                return;
        for (unsigned guard = 0; day <= now && guard < 4000; guard++) {
                double c = 0;
                uint64_t req = 0;

                format_time(label, sizeof label, day, TIME_DATE);
                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_array_get_idx(rows, i);
                        if (streq_ptr(cli_json_str(o, "day"), label)) {
                                c = cli_json_double(o, "cost_usd", 0);
                                req = cli_json_uint(o, "requests", 0);
                        }
                }
                format_usd(cost, sizeof cost, c);
                printf("%s ", label);
                print_bar(c, max, cells, utf8);
                printf(" %9s %6" PRIu64 " req\n", cost, req);
                total += c;
                req_total += req;
                if (budget_period_bounds(BUDGET_DAY, day, NULL, &end) < 0)
                        break;
                day = end;
        }
        format_usd(cost, sizeof cost, total);
        printf("%-10s %*s %9s %6" PRIu64 " req\n", "total", (int) cells, "", cost, req_total);
}

static int verb_usage_recent(int argc, char *argv[]);

static const char usage_help[] =
        "bankr-llm usage [--by app|model|day|hour] [--since WHEN] [--app APP] [--json[=FORMAT]]\n"
        "bankr-llm usage recent [-n N] [--app APP] [--json[=FORMAT]]\n\n"
        "Show what the applications using bankr-llmd spent: requests, errors, tokens\n"
        "and cost, from the ledger in ~/.local/state/bankr-llm/usage.db. Without --by,\n"
        "one total; --by day draws a bar chart of the cost per day (Unicode blocks,\n"
        "or '#' when the locale is not UTF-8; as wide as the terminal or $COLUMNS).\n\n"
        "  -b --by KEY          app, model, day or hour (comma-separated for several,\n"
        "                       e.g. app,model: then a JSON list)\n"
        "  -s --since WHEN      from: 7d, 24h, 30m, 2w back from now, today, a local\n"
        "                       date 2026-11-01 or time 2026-11-01T12:30 (default: all;\n"
        "                       30 days for --by day, 24 hours for --by hour)\n"
        "  -a --app APP         only this app (as \"usage --by app\" names it)\n"
        "  -j --json[=FORMAT]   print the rows as JSON (group keys, requests, errors,\n"
        "                       input_tokens, output_tokens, cache_read_tokens,\n"
        "                       cache_write_tokens, cost_usd); FORMAT is short, pretty\n"
        "                       (the default) or off\n\n"
        "  recent   the last requests one by one (see usage recent --help)\n\n"
        "Apps are Flatpak app ids, desktop app ids of systemd scopes\n"
        "(app-gnome-org.gnome.Terminal-1234.scope: org.gnome.Terminal), else the\n"
        "program's name. Budgets per app: bankr-llm budget.\n";

typedef struct UsageArgs {
        const char *by;
        uint64_t since, now;
        bool have_since;
} UsageArgs;

static int usage_option(int c, void *userdata) {
        UsageArgs *a = userdata;

        switch (c) {
        case 'b':
                a->by = optarg;
                return 0;
        case 's':
                if (budget_parse_when(optarg, a->now, &a->since) < 0)
                        return cli_usage("Invalid time \"%s\" for --since: use e.g. 7d, 24h, today, "
                                         "2026-11-01 or 2026-11-01T12:30.", optarg);
                a->have_since = true;
                return 0;
        default:
                return -EXIT_USAGE;
        }
}

int verb_usage(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "by", required_argument, NULL, 'b' },
                { "since", required_argument, NULL, 's' },
                { "app", required_argument, NULL, 'a' },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        _cleanup_(json_object_putp) json_object *rows = NULL;
        UsageArgs args = { .now = (uint64_t) time(NULL) * USEC_PER_SEC };
        const char *by, *app = NULL;
        uint64_t since, now = args.now;
        bool json = false;
        int r;

        if (argc > 1 && streq(argv[1], "recent"))
                return verb_usage_recent(argc - 1, argv + 1);

        r = parse_usage_options(argc, argv, "hb:s:a:j", options, usage_help,
                                &app, &json, usage_option, &args);
        if (r <= 0)
                return r;
        by = args.by;
        since = args.since;
        if (optind < argc)
                return cli_usage("Unknown argument \"%s\" for usage. Valid subcommands: recent.", argv[optind]);
        if (by && !json && strchr(by, ','))
                return cli_usage("Grouping by several keys (%s) needs --json.", by);
        if (by && !strchr(by, ',') && !streq(by, "app") && !streq(by, "model") && !streq(by, "day") &&
            !streq(by, "hour"))
                return cli_usage("Invalid --by \"%s\": use app, model, day or hour.", by);
        if (!args.have_since && streq_ptr(by, "day"))
                (void) budget_period_bounds(BUDGET_DAY, now - 29 * 86400 * USEC_PER_SEC, &since, NULL);
        if (!args.have_since && streq_ptr(by, "hour"))
                since = now - 24 * 3600 * USEC_PER_SEC;

        r = usage_query("Summary", "read the usage", "s", by ?: "", since, app, json, &rows);
        if (r != 0)
                return r < 0 ? r : EXIT_OK;
        if (!by) {
                json_object *o = json_object_array_get_idx(rows, 0);
                char a[32], b[32], cc[32], d[32], e[32];
                format_tokens(a, sizeof a, cli_json_uint(o, "input_tokens", 0));
                format_tokens(b, sizeof b, cli_json_uint(o, "output_tokens", 0));
                format_tokens(d, sizeof d, cli_json_uint(o, "cache_read_tokens", 0));
                format_tokens(e, sizeof e, cli_json_uint(o, "cache_write_tokens", 0));
                format_usd(cc, sizeof cc, cli_json_double(o, "cost_usd", 0));
                printf("Requests: %" PRIu64 " (%" PRIu64 " failed or cancelled)\n"
                       "  Tokens: %s in, %s out, %s cache read, %s cache write\n"
                       "    Cost: %s\n",
                       cli_json_uint(o, "requests", 0), cli_json_uint(o, "errors", 0), a, b, d, e, cc);
                return EXIT_OK;
        }
        if (streq(by, "day"))
                print_chart(rows, since);
        else
                print_table(rows, by, streq(by, "app") ? "APP" : streq(by, "model") ? "MODEL" : "HOUR");
        return EXIT_OK;
}

static const char usage_recent_help[] =
        "bankr-llm usage recent [-n N] [--app APP] [--json[=FORMAT]]\n\n"
        "Show the last requests that reached the gateway, newest first: when, which\n"
        "app, model, status, tokens in and out, cost and total latency. Records hold\n"
        "no prompt or answer text.\n\n"
        "  -n N                 how many (1 to 10000, default 20)\n"
        "  -a --app APP         only this app\n"
        "  -j --json[=FORMAT]   print the records as JSON (id, time, app, via, model,\n"
        "                       status, error, the token counts, cost_usd,\n"
        "                       latency_first_ms, latency_total_ms, attempts,\n"
        "                       privacy_tier); FORMAT is short, pretty or off\n";

static int recent_option(int c, void *userdata) {
        uint32_t *limit = userdata;
        char *end;
        unsigned long v;

        if (c != 'n')
                return -EXIT_USAGE;
        errno = 0;
        v = strtoul(optarg, &end, 10);
        if (errno || *end || optarg[0] == '-' || v < 1 || v > 10000)
                return cli_usage("Invalid -n \"%s\": a number of records from 1 to 10000.", optarg);
        *limit = (uint32_t) v;
        return 0;
}

static int verb_usage_recent(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "app", required_argument, NULL, 'a' },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        _cleanup_(json_object_putp) json_object *recs = NULL;
        const char *app = NULL;
        uint32_t limit = 20;
        bool json = false;
        int r;

        r = parse_usage_options(argc, argv, "hn:a:j", options, usage_recent_help,
                                &app, &json, recent_option, &limit);
        if (r <= 0)
                return r;
        if (optind < argc)
                return cli_usage("Unknown argument \"%s\" for usage recent.", argv[optind]);

        r = usage_query("Recent", "read the recent requests", "u", &limit, 0, app, json, &recs);
        if (r != 0)
                return r < 0 ? r : EXIT_OK;
        if (json_object_array_length(recs) == 0) {
                printf("No requests recorded%s.\n", app ? " for this app" : "");
                return EXIT_OK;
        }
        printf("%-19s %-24s %-22s %-9s %8s %8s %10s %8s\n", "TIME", "APP", "MODEL", "STATUS", "IN", "OUT", "COST",
               "TIME_MS");
        for (size_t i = 0; i < json_object_array_length(recs); i++) {
                json_object *o = json_object_array_get_idx(recs, i);
                _cleanup_free_ char *b1 = NULL, *b2 = NULL;
                char t[32], in[32], out[32], cost[32];

                format_time(t, sizeof t, cli_json_uint(o, "time", 0), TIME_SECOND);
                format_tokens(in, sizeof in, row_input_tokens(o));
                format_tokens(out, sizeof out, cli_json_uint(o, "output_tokens", 0));
                format_usd(cost, sizeof cost, cli_json_double(o, "cost_usd", 0));
                printf("%-19s %-24.24s %-22.22s %-9s %8s %8s %10s %8.0f\n", t,
                       cli_term_safe(stdout, cli_json_str(o, "app") ?: "", &b1),
                       cli_term_safe(stdout, cli_json_str(o, "model") ?: "", &b2),
                       cli_json_str(o, "status") ?: "", in, out, cost, cli_json_double(o, "latency_total_ms", 0));
        }
        return EXIT_OK;
}

/* ---- budget ----------------------------------------------------------------- */

static int set_budget(sd_bus *bus, const char *app, double usd, const char *period) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Usage"), "SetBudget");
        if (r >= 0)
                r = sd_bus_message_append(m, "sds", app, usd, period);
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to change the budget: %s", strerror(-r));
        r = cli_call_interactive(bus, m, &error, NULL);
        if (r < 0)
                return cli_fail_bus(usd > 0 ? "set the budget" : "clear the budget", &error, r);
        return 0;
}

static const char budget_help[] =
        "bankr-llm budget [--json[=FORMAT]]\n"
        "bankr-llm budget set APP USD/PERIOD\n"
        "bankr-llm budget clear APP\n\n"
        "Show or change how much each application may spend. PERIOD is day, week\n"
        "(from Monday) or month, in local time; \"5/day\", \"$0.50/week\", \"20/month\"\n"
        "(a bare amount is per day). Once an app has spent its budget, bankr-llmd\n"
        "refuses its requests (BudgetExceeded) before anything is sent, until the\n"
        "period resets; requests in flight count with their most possible cost.\n"
        "Changing a budget asks polkit (bot.bankr.LLM1.configure-budget): usually\n"
        "your password.\n\n"
        "  -j --json[=FORMAT]   print app, limit_usd, period, spent_usd and resets_at\n"
        "                       (µs since the epoch) per budget; FORMAT is short,\n"
        "                       pretty or off\n\n"
        "Exit codes: 2 bad arguments, 7 not authorized.\n";

int verb_budget(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *all = NULL;
        json_object *list;
        bool json = false;
        int r;

        r = parse_usage_options(argc, argv, "+hj", options, budget_help,
                                NULL, &json, NULL, NULL);
        if (r <= 0)
                return r;

        if (optind < argc && streq(argv[optind], "set")) {
                double usd;
                BudgetPeriod p;

                if (argc - optind != 3)
                        return cli_usage("Usage: bankr-llm budget set APP USD/PERIOD, e.g. budget set org.gnome.Terminal 5/day.");
                if (budget_parse_spec(argv[optind + 2], &usd, &p) < 0 || usd <= 0)
                        return cli_usage("Invalid budget \"%s\": an amount above 0 and a period, e.g. 5/day, "
                                         "0.50/week or 20/month.", argv[optind + 2]);
                r = cli_bus(&bus);
                if (r < 0)
                        return r;
                r = set_budget(bus, argv[optind + 1], usd, budget_period_to_string(p));
                if (r != 0)
                        return r;
                printf("Budget of %s: $%.2f per %s.\n", argv[optind + 1], usd, budget_period_to_string(p));
                return EXIT_OK;
        }
        if (optind < argc && streq(argv[optind], "clear")) {
                if (argc - optind != 2)
                        return cli_usage("Usage: bankr-llm budget clear APP.");
                r = cli_bus(&bus);
                if (r < 0)
                        return r;
                r = set_budget(bus, argv[optind + 1], 0, "");
                if (r != 0)
                        return r;
                printf("%s has no budget now.\n", argv[optind + 1]);
                return EXIT_OK;
        }
        if (optind < argc)
                return cli_usage("Unknown argument \"%s\" for budget. Valid subcommands: set, clear.", argv[optind]);

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = cli_get_all(bus, IFACE("Usage"), &error, &all);
        if (r < 0)
                return cli_fail_bus("read the budgets", &error, r);
        list = cli_json_get(all, "Budgets", json_type_array);
        if (json) {
                _cleanup_(json_object_putp) json_object *empty = json_object_new_array();
                cli_print_json(list ?: empty);
                return EXIT_OK;
        }
        if (!list || json_object_array_length(list) == 0) {
                printf("No app has a budget. Set one with \"bankr-llm budget set APP USD/PERIOD\".\n");
                return EXIT_OK;
        }
        printf("%-32s %10s %-6s %10s  %s\n", "APP", "LIMIT", "PERIOD", "SPENT", "RESETS");
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *o = json_object_array_get_idx(list, i);
                double lim = cli_json_double(o, "limit_usd", 0), sp = cli_json_double(o, "spent_usd", 0);
                char l[32], s[32], t[32];

                format_usd(l, sizeof l, lim);
                format_usd(s, sizeof s, sp);
                format_time(t, sizeof t, cli_json_uint(o, "resets_at", 0), TIME_MINUTE);
                printf("%-32s %10s %-6s %10s  %s%s\n", cli_json_str(o, "app") ?: "", l, cli_json_str(o, "period") ?: "",
                       s, t, sp >= lim ? "  (spent: requests are refused)" : "");
        }
        return EXIT_OK;
}
