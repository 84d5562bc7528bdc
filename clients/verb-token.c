/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm token: mint a token for the local endpoint (Endpoint.CreateToken)
 * and print it. This is the credential helper the tools run: Claude Code's
 * apiKeyHelper, OpenClaw's exec SecretRef (--openclaw-exec speaks its
 * protocol), or a shell's $(bankr-llm token) for OpenCode.
 *
 * A token printed by a process that then exits cannot be a "connection"
 * token (it would die at once), so the default here is "expiring" with a
 * one-hour TTL; with --lifetime connection bankr-llm prints the token and
 * stays, holding it alive, until its standard input ends or it gets a
 * signal. The launchers (bankr-llm claude/opencode) use connection tokens
 * through cli_endpoint_token().
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "bus-util.h"
#include "cli.h"
#include "json-strict.h"

#define TOKEN_DEFAULT_TTL_S (60 * 60)
#define TOKEN_MAX_TTL_S (7 * 24 * 60 * 60)
#define OPENCLAW_REQUEST_MAX (64 * 1024)
#define OPENCLAW_REQUEST_TIMEOUT_MS 5000

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

int cli_parse_duration(const char *s, uint32_t *ret) {
        uint64_t n = 0, unit = 1;
        const char *p = s;

        if (isempty(s))
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                n = n * 10 + (uint64_t) (*p - '0');
                if (n > UINT32_MAX)
                        return -ERANGE;
        }
        if (p == s)
                return -EINVAL;
        if (streq(p, "") || streq(p, "s"))
                unit = 1;
        else if (streq(p, "m") || streq(p, "min"))
                unit = 60;
        else if (streq(p, "h"))
                unit = 60 * 60;
        else if (streq(p, "d"))
                unit = 24 * 60 * 60;
        else
                return -EINVAL;
        if (n == 0)
                return -EINVAL;
        if (n * unit > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) (n * unit);
        return 0;
}

/* The bus error when the service has no Endpoint interface: say so plainly. */
static int fail_create(const sd_bus_error *error, int r) {
        if (error && (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
                      sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT)))
                return cli_fail(EXIT_FAIL, "Failed to create a token: this bankr-llmd has no local endpoint "
                                           "(no bot.bankr.LLM1.Endpoint interface); update bankr-llmd.");
        return cli_fail_bus("create a token", error, r);
}

int cli_endpoint_token(sd_bus *bus, const TokenRequest *req, char **ret_token, char **ret_id) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *token, *id;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Endpoint"), "CreateToken");
        if (r < 0)
                return fail_create(NULL, r);
        r = sd_bus_message_append(m, "s", req->app);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}", "lifetime", "s", req->lifetime);
        if (r >= 0 && req->expires_s > 0)
                r = sd_bus_message_append(m, "{sv}", "expires_s", "u", req->expires_s);
        if (r >= 0 && req->budget_usd > 0)
                r = sd_bus_message_append(m, "{sv}", "budget_usd", "d", req->budget_usd);
        if (r >= 0 && req->models)
                r = bus_append_dict_strv(m, "models", req->models);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return fail_create(NULL, r);

        /* A persistent token asks polkit (create-token). */
        if (streq(req->lifetime, "persistent"))
                r = cli_call_interactive(bus, m, &error, &reply);
        else
                r = sd_bus_call(bus, m, 30 * USEC_PER_SEC, &error, &reply);
        if (r < 0)
                return fail_create(&error, r);
        r = sd_bus_message_read(reply, "ss", &token, &id);
        if (r < 0)
                return fail_create(NULL, r);
        if (isempty(token))
                return cli_fail(EXIT_FAIL, "Failed to create a token: bankr-llmd returned an empty one.");
        *ret_token = strdup(token);
        *ret_id = strdup(id);
        if (!*ret_token || !*ret_id) {
                erase_and_free(*ret_token);
                free(*ret_id);
                return cli_fail(EXIT_FAIL, "Out of memory.");
        }
        return 0;
}

/* Reads OpenClaw's exec request ({"protocolVersion":1,"provider":…,"ids":[…]})
 * from stdin; an empty stdin asks for "token". *ret_ids is NULL-terminated. */
static int read_openclaw_request(char ***ret_ids) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_strv_free_ char **ids = NULL;
        json_object *a;
        size_t n = 0;
        int r;

        buf = malloc(OPENCLAW_REQUEST_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
                ssize_t k;

                r = poll(&p, 1, OPENCLAW_REQUEST_TIMEOUT_MS);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                k = read(STDIN_FILENO, buf + n, OPENCLAW_REQUEST_MAX - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n == OPENCLAW_REQUEST_MAX)
                        return -EFBIG;
                /* OpenClaw may keep stdin open: a complete object is enough. */
                buf[n] = 0;
                json_object_put(o);
                o = json_tokener_parse(buf);
                if (o)
                        break;
        }
        buf[n] = 0;
        if (!o && strspn(buf, " \t\r\n") < n) {
                tok = json_tokener_new();
                if (!tok)
                        return -ENOMEM;
                o = json_tokener_parse_ex(tok, buf, (int) n);
                if (!o)
                        return -EBADMSG;
        }
        if (o && json_object_object_get_ex(o, "ids", &a) && json_object_is_type(a, json_type_array))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *e = json_object_array_get_idx(a, i);
                        if (!json_object_is_type(e, json_type_string))
                                return -EBADMSG;
                        r = strv_extend(&ids, json_object_get_string(e));
                        if (r < 0)
                                return r;
                }
        else if (o && !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (!ids && (r = strv_extend(&ids, "token")) < 0)
                return r;
        *ret_ids = TAKE_PTR(ids);
        return 0;
}

/* {"protocolVersion":1,"values":{"token":TOKEN}}; ids other than "token" get
 * an entry in "errors". */
static int print_openclaw_response(char **ids, const char *token) {
        _cleanup_(json_erase_and_putp) json_object *o = json_object_new_object(), *values = json_object_new_object(),
                                                   *errors = json_object_new_object();
        bool any_error = false;

        if (!o || !values || !errors)
                return -ENOMEM;
        for (char **id = ids; *id; id++)
                if (streq(*id, "token"))
                        json_object_object_add(values, *id, json_object_new_string(token));
                else {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "message",
                                               json_object_new_string("bankr-llm knows only the id \"token\""));
                        json_object_object_add(errors, *id, e);
                        any_error = true;
                }
        json_object_object_add(o, "protocolVersion", json_object_new_int(1));
        json_object_object_add(o, "values", TAKE_PTR(values));
        if (any_error)
                json_object_object_add(o, "errors", TAKE_PTR(errors));
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        fputs(text, stdout);
        fputc('\n', stdout);
        /* The text holds the token: wipe json-c's buffer before it is freed. */
        explicit_bzero((char *) text, strlen(text));
        return 0;
}

/* --lifetime connection: hold the bus connection (and so the token) until
 * stdin ends or a signal comes. */
static int hold_connection(void) {
        static const int ending[] = { SIGINT, SIGTERM, SIGHUP };
        _cleanup_close_ int sfd = -EBADF;
        sigset_t mask;

        /* One ignored when we were started (nohup) stays ignored. */
        sigemptyset(&mask);
        cli_sigaddset_unignored(&mask, ending, ELEMENTSOF(ending));
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return cli_fail(EXIT_FAIL, "Failed to block signals: %s", strerror(errno));
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return cli_fail(EXIT_FAIL, "Failed to watch signals: %s", strerror(errno));
        for (;;) {
                struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
                char buf[256];

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return cli_fail(EXIT_FAIL, "Failed to wait: %s", strerror(errno));
                }
                if (p[1].revents)
                        return EXIT_OK;
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
                        ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
                        if (k <= 0 && !(k < 0 && errno == EINTR))
                                return EXIT_OK;
                }
        }
}

static void token_help(void) {
        printf("bankr-llm token [--app APP] [--lifetime connection|expiring|persistent] [--ttl DURATION]\n"
               "                [--budget USD] [--models M,...] [--json[=FORMAT]] [--openclaw-exec]\n\n"
               "Mint a token for bankr-llmd's local endpoint and print it on standard output.\n"
               "Tools send it instead of the key (Authorization: Bearer or x-api-key); the\n"
               "service adds the real key. This is the credential helper of the tool configs\n"
               "\"bankr-llm setup TOOL --install\" writes.\n\n"
               "  -a --app APP         who uses it, for the books (default: cli)\n"
               "  -l --lifetime L      expiring (the default): valid for --ttl;\n"
               "                       persistent: until revoked, survives restarts (asks\n"
               "                       polkit); connection: valid while this command runs,\n"
               "                       which then waits until its standard input ends or it\n"
               "                       gets SIGINT, SIGTERM or SIGHUP (one ignored when it\n"
               "                       started, as under nohup, stays ignored)\n"
               "  -t --ttl DURATION    with expiring: 90s, 30m, 12h, 7d (at most 7d; default 1h)\n"
               "  -b --budget USD      refuse requests (402) once the token spent this much\n"
               "  -m --models M,...    only these model ids (403 for others)\n"
               "  -j --json[=FORMAT]   print token, id, app, lifetime and expires_s as a JSON\n"
               "                       object; FORMAT is short, pretty (the default) or off\n"
               "     --openclaw-exec   speak OpenClaw's exec SecretRef protocol: read its\n"
               "                       request on standard input, answer the id \"token\"\n\n"
               "A token is printed once and never shown again; \"bankr-llm endpoint\" lists\n"
               "the live ones by id, \"bankr-llm endpoint revoke ID\" ends one.\n");
}

int verb_token(int argc, char *argv[]) {
        enum { ARG_OPENCLAW_EXEC = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "app", required_argument, NULL, 'a' },
                { "lifetime", required_argument, NULL, 'l' },
                { "ttl", required_argument, NULL, 't' },
                { "budget", required_argument, NULL, 'b' },
                { "models", required_argument, NULL, 'm' },
                { "json", optional_argument, NULL, 'j' },
                { "openclaw-exec", no_argument, NULL, ARG_OPENCLAW_EXEC },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_strv_free_ char **models = NULL, **ids = NULL;
        _cleanup_(erase_and_freep) char *token = NULL;
        _cleanup_free_ char *id = NULL;
        TokenRequest req = { .app = "cli", .lifetime = "expiring" };
        bool json = false, openclaw = false, have_ttl = false;
        uint32_t ttl = TOKEN_DEFAULT_TTL_S;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ha:l:t:b:m:j", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        token_help();
                        return 0;
                case 'a':
                        if (isempty(optarg) || strlen(optarg) > 64 || strpbrk(optarg, " \t\n\r"))
                                return cli_usage("Invalid app name \"%s\": 1 to 64 characters, no spaces.", optarg);
                        req.app = optarg;
                        break;
                case 'l':
                        if (!streq(optarg, "connection") && !streq(optarg, "expiring") && !streq(optarg, "persistent"))
                                return cli_usage("Unknown lifetime \"%s\": use connection, expiring or persistent.", optarg);
                        req.lifetime = optarg;
                        break;
                case 't':
                        r = cli_parse_duration(optarg, &ttl);
                        if (r < 0 || ttl > TOKEN_MAX_TTL_S)
                                return cli_usage("Invalid TTL \"%s\": a duration from 1s to 7d, e.g. 90s, 30m, 12h, 7d.", optarg);
                        have_ttl = true;
                        break;
                case 'b':
                        if (cli_parse_usd(optarg, &req.budget_usd) < 0 || req.budget_usd <= 0)
                                return cli_usage("Invalid budget \"%s\": expected an amount in USD above 0, e.g. 5 or 2.50.", optarg);
                        break;
                case 'm':
                        models = strv_free(models);
                        for (const char *p = optarg;; ) {
                                size_t n = strcspn(p, ",");
                                _cleanup_free_ char *one = strndup(p, n);

                                if (!one)
                                        return cli_fail(EXIT_FAIL, "Out of memory.");
                                if (n == 0)
                                        return cli_usage("Invalid model list \"%s\": model ids separated by commas.", optarg);
                                if (!strv_contains(models, one) && strv_extend(&models, one) < 0)
                                        return cli_fail(EXIT_FAIL, "Out of memory.");
                                if (!p[n])
                                        break;
                                p += n + 1;
                        }
                        req.models = models;
                        break;
                CLI_CASE_JSON(json);
                case ARG_OPENCLAW_EXEC:
                        openclaw = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("token takes no arguments (\"%s\"). See bankr-llm token --help.", argv[optind]);
        if (have_ttl && !streq(req.lifetime, "expiring"))
                return cli_usage("--ttl applies to --lifetime expiring only.");
        if (openclaw && json)
                return cli_usage("--openclaw-exec prints OpenClaw's own JSON; drop --json.");
        if (openclaw && streq(req.lifetime, "connection"))
                return cli_usage("--openclaw-exec cannot hand out a connection token: it would die when bankr-llm exits.");
        if (streq(req.lifetime, "expiring"))
                req.expires_s = ttl;

        if (openclaw) {
                r = read_openclaw_request(&ids);
                if (r == -ENOMEM)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
                if (r < 0)
                        return cli_fail(EXIT_USAGE, "Failed to read OpenClaw's request on standard input: %s",
                                        r == -EBADMSG ? "not the JSON of its exec protocol" :
                                        r == -ETIMEDOUT ? "nothing came within 5 s" : strerror(-r));
        }

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = cli_endpoint_token(bus, &req, &token, &id);
        if (r < 0)
                return r;

        if (openclaw) {
                r = print_openclaw_response(ids, token);
                if (r < 0)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
        } else if (json) {
                _cleanup_(json_erase_and_putp) json_object *o = json_object_new_object();
                if (!o)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
                json_object_object_add(o, "token", json_object_new_string(token));
                json_object_object_add(o, "id", json_object_new_string(id));
                json_object_object_add(o, "app", json_object_new_string(req.app));
                json_object_object_add(o, "lifetime", json_object_new_string(req.lifetime));
                json_object_object_add(o, "expires_s", json_object_new_int64(req.expires_s));
                cli_print_json(o);
        } else
                printf("%s\n", token);

        if (streq(req.lifetime, "connection")) {
                if (cli_flush_stdout() < 0)
                        return -EXIT_FAIL;
                return hold_connection();
        }
        return 0;
}
