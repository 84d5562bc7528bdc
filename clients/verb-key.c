/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm status | key … (set, clear, import, validate, reveal) | config …
 * | login: the key, where it lives, whether it works.
 * Keys are handed to the service (and so to the keyring), never written to
 * a file; URLs go to ~/.bankr/config.json like the bankr CLI keeps them.
 */
#include <getopt.h>
#include <stdarg.h>
#include <json-c/json.h>

#include "bankr-config.h"
#include "cli-peer.h"
#include "cli.h"
#include "keyfmt.h"
#include "url.h"

static const char *source_text(const char *source) {
        if (streq_ptr(source, "env"))
                return "from the environment of bankr-llmd";
        if (streq_ptr(source, "keyring"))
                return "from the keyring";
        if (streq_ptr(source, "config"))
                return "from ~/.bankr/config.json (plaintext; run \"bankr-llm key import --remove-plaintext\")";
        return "";
}

/* A key given as an argument: visible in /proc/PID/cmdline (ps) to other
 * users until we overwrite it, which only shortens that window. */
static int key_from_argv(const char *what, char *arg, char **ret) {
        char *k = strdup(arg);
        if (!k)
                return -ENOMEM;
        explicit_bzero(arg, strlen(arg));
        fprintf(stderr,
                "Warning: the %s was given on the command line, where other users can read it (ps,\n"
                "/proc/PID/cmdline) while the program starts. Give \"-\" to read it from standard\n"
                "input instead, or use \"bankr-llm key set\".\n", what);
        *ret = k;
        return 0;
}

/* "-": from standard input (no echo on a terminal), as key set reads it. */
static int key_from_stdin(const char *prompt, char **ret) {
        int r = cli_read_secret(prompt, ret);
        if (r == -ENODATA)
                return cli_fail(EXIT_USAGE, "Failed to read the key: standard input was empty.");
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to read the key: %s", strerror(-r));
        return 0;
}

/* Connects, and reads the properties of the Key interface (Present, Source,
 * Kind, Masked, GatewayUrl, ApiUrl, ApiKeyMasked, ApiKeySource, Version) as a
 * JSON object. */
static int key_info_get(sd_bus **ret_bus, json_object **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = cli_get_all(bus, IFACE("Key"), &error, ret);
        if (r < 0)
                return cli_fail_bus("read the key status", &error, r);
        *ret_bus = TAKE_PTR(bus);
        return 0;
}

static void json_add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

int verb_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *info = NULL;
        bool json = false;
        int r;

        r = cli_parse_no_args(argc, argv, "hj", "status",
                              "bankr-llm status [--json[=short|pretty|off]]\n\n"
                              "Show the gateway URL, where the key comes from (masked), the credit\n"
                              "balance and model list bankr-llmd holds (without asking the gateway),\n"
                              "and the version of the running service.\n\n"
                              "  -j --json[=short|pretty|off]\n"
                              "            print it as a JSON object: on one line (short), indented\n"
                              "            (pretty, what a bare --json or -j gives) or not (off)\n",
                              &json);
        if (r <= 0)
                return r;
        r = key_info_get(&bus, &info);
        if (r < 0)
                return r;

        /* What the service holds; both are answered from memory. */
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *credits = NULL, *models = NULL;
        (void) cli_get_all(bus, IFACE("Credits"), &error, &credits);
        sd_bus_error_free(&error);
        (void) cli_get_all(bus, IFACE("Models"), &error, &models);
        json_object *list = cli_json_get(models, "Models", json_type_array);
        size_t n_models = list ? json_object_array_length(list) : 0;
        bool live = cli_json_bool(models, "Live", false);
        const char *state = cli_json_str(credits, "State");
        double balance = cli_json_double(credits, "Balance", 0);
        char age[64];
        cli_format_age(age, sizeof age, cli_json_uint(credits, "UpdatedAt", 0));

        bool present = cli_json_bool(info, "Present", false);
        const char *gateway = cli_json_str(info, "GatewayUrl"), *api_url = cli_json_str(info, "ApiUrl"),
                   *source = cli_json_str(info, "Source"), *kind = cli_json_str(info, "Kind"),
                   *masked = cli_json_str(info, "Masked"), *api_source = cli_json_str(info, "ApiKeySource"),
                   *api_masked = cli_json_str(info, "ApiKeyMasked"), *version = cli_json_str(info, "Version");

        if (json) {
                json_object *o = json_object_new_object(), *k = json_object_new_object(), *a = json_object_new_object();
                json_add_str(o, "gateway_url", gateway);
                json_add_str(o, "api_url", api_url);
                json_object_object_add(k, "present", json_object_new_boolean(present));
                json_add_str(k, "source", source);
                json_add_str(k, "kind", kind);
                json_add_str(k, "masked", masked);
                json_object_object_add(o, "key", k);
                json_add_str(a, "source", api_source);
                json_add_str(a, "masked", api_masked);
                json_object_object_add(o, "api_key", a);
                if (credits) {
                        json_object *cr = json_object_new_object();
                        json_add_str(cr, "state", state);
                        json_object_object_add(cr, "balance_usd", cli_json_number(balance));
                        json_object_object_add(cr, "updated_at", json_object_new_uint64(cli_json_uint(credits, "UpdatedAt", 0)));
                        json_object_object_add(o, "credits", cr);
                }
                if (models) {
                        json_object *mo = json_object_new_object();
                        json_object_object_add(mo, "count", json_object_new_uint64(n_models));
                        json_object_object_add(mo, "live", json_object_new_boolean(live));
                        json_object_object_add(o, "models", mo);
                }
                json_add_str(o, "service_version", version);
                json_add_str(o, "cli_version", VERSION);
                cli_print_json(o);
                json_object_put(o);
                return 0;
        }

        printf("    Gateway: %s\n", strna(gateway));
        if (present)
                printf("        Key: %s (%s key, %s)\n", masked, streq_ptr(kind, "api") ? "API" : "LLM", source_text(source));
        else
                printf("        Key: none (set one with \"bankr-llm key set\")\n");
        if (!isempty(api_masked))
                printf("    API key: %s (%s)\n", api_masked, source_text(api_source));
        printf("  Agent API: %s\n", strna(api_url));
        if (credits) {
                if (!present)
                        printf("    Credits: unknown (no key)\n");
                else if (isempty(state) || streq(state, "unknown"))
                        printf("    Credits: unknown (\"bankr-llm credits --refresh\" asks the gateway)\n");
                else
                        printf("    Credits: $%.2f (%s, %s)\n", balance, state, age);
        }
        if (models)
                printf("     Models: %zu (%s)\n", n_models, live ? "live" : "cached or built-in catalog");
        printf("    Service: bankr-llmd %s\n", strna(version));
        printf("        CLI: bankr-llm %s\n", VERSION);
        return 0;
}

/* --- key ---------------------------------------------------------------- */

static int call_simple(sd_bus *bus, const char *what, const char *method, sd_bus_message **ret_reply, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Key"), method);
        if (r < 0)
                return cli_fail_bus(what, NULL, r);
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return cli_fail_bus(what, NULL, r);
        /* Storing in the keyring may wait for an unlock prompt. */
        r = sd_bus_call(bus, m, 120 * USEC_PER_SEC, &error, ret_reply);
        if (r < 0)
                return cli_fail_bus(what, &error, r);
        return 0;
}

static int store_key(sd_bus *bus, const char *key, const char *kind) {
        _cleanup_free_ char *what = NULL, *masked = key_mask(key);
        int r;

        if (asprintf(&what, "store the %s key", streq(kind, "api") ? "API" : "LLM") < 0)
                return -EXIT_FAIL;
        r = cli_peer_set_key(bus, what, key, kind); /* only to the installed service */
        if (r != 0)
                return r;
        printf("Stored the %s key %s in the keyring.\n", streq(kind, "api") ? "API" : "LLM", strempty(masked));
        return 0;
}

/* key set and key clear: [--api] and no arguments. 0 after printing help,
 * 1 with *ret_kind "llm" or "api", -EXIT_USAGE after saying no_args. */
static int parse_kind_args(int argc, char *argv[], const char *help, const char *no_args, const char **ret_kind) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "api", no_argument, NULL, 'a' },
                {}
        };
        int c;

        *ret_kind = "llm";
        optind = 0;
        while ((c = getopt_long(argc, argv, "ha", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fputs(help, stdout);
                        return 0;
                case 'a':
                        *ret_kind = "api";
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("%s", no_args);
        return 1;
}

static int key_set(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_erase_ char *key = NULL;
        const char *kind;
        int r;

        r = parse_kind_args(argc, argv,
                            "bankr-llm key set [--api]\n\n"
                            "Store a key in the desktop keyring. The key is read from standard input,\n"
                            "or asked for without echo on a terminal; it is never taken from the\n"
                            "command line, where other users could see it.\n\n"
                            "  --api   store the Bankr API key (agent API, top-ups) instead of the LLM key\n",
                            "key set takes no arguments: the key is read from standard input, never from the command line.",
                            &kind);
        if (r <= 0)
                return r;

        r = cli_read_secret(streq(kind, "api") ? "Bankr API key: " : "Bankr LLM key: ", &key);
        if (r == -ENODATA)
                return cli_fail(EXIT_USAGE, "Failed to read the key: standard input was empty.");
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to read the key: %s", strerror(-r));

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        return store_key(bus, key, kind);
}

static int key_clear(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *kind;
        int r;

        r = parse_kind_args(argc, argv,
                            "bankr-llm key clear [--api]\n\n"
                            "Remove the LLM key (or with --api the API key) from the keyring.\n"
                            "Keys from the environment or ~/.bankr/config.json are not touched.\n",
                            "key clear takes no arguments.", &kind);
        if (r <= 0)
                return r;
        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = call_simple(bus, "remove the key from the keyring", "Clear", NULL, "s", kind);
        if (r != 0)
                return r;
        printf("Removed the %s key from the keyring.\n", streq(kind, "api") ? "API" : "LLM");
        return 0;
}

static int key_import(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "remove-plaintext", no_argument, NULL, 'r' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        bool remove = false;
        const char *source;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hr", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("bankr-llm key import [--remove-plaintext]\n\n"
                               "Copy llmKey and apiKey from ~/.bankr/config.json (or $BANKR_CONFIG) into\n"
                               "the keyring. With --remove-plaintext, also remove them from the file\n"
                               "(every other setting in it is kept).\n");
                        return 0;
                case 'r':
                        remove = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("key import takes no arguments.");
        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = call_simple(bus, "import the key", "Import", &reply, "b", remove);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "s", &source);
        if (r < 0)
                return cli_fail_bus("import the key", NULL, r);
        (void) bankr_config_path(&path);
        printf("Imported the key%s from %s into the keyring.\n", remove ? " and removed it" : "", strna(path));
        if (!remove)
                printf("The plaintext copy is still in the file; run \"bankr-llm key import --remove-plaintext\" to remove it.\n");
        if (streq(source, "env"))
                printf("Note: BANKR_LLM_KEY/BANKR_API_KEY in the service's environment still take precedence.\n");
        return 0;
}

static int key_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *info = NULL;
        int r;

        if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("bankr-llm key status\n\nShow whether a key is set, where it comes from, and its masked form.\n"
                       "Exit code 4 when there is no key.\n");
                return 0;
        }
        if (argc > 1)
                return cli_usage("key status takes no arguments.");
        r = key_info_get(&bus, &info);
        if (r < 0)
                return r;
        if (!cli_json_bool(info, "Present", false)) {
                printf("No key. Set one with \"bankr-llm key set\" or import one with \"bankr-llm key import\".\n");
                return -EXIT_NO_KEY;
        }
        printf("%s key %s, %s.\n", streq_ptr(cli_json_str(info, "Kind"), "api") ? "API" : "LLM",
               cli_json_str(info, "Masked"), source_text(cli_json_str(info, "Source")));
        return 0;
}

int verb_key(int argc, char *argv[]) {
        static const Verb verbs[] = {
                { "set", key_set, NULL },
                { "clear", key_clear, NULL },
                { "import", key_import, NULL },
                { "status", key_status, NULL },
                { "validate", verb_key_validate, NULL },
                { "reveal", verb_key_reveal, NULL },
                {}
        };

        if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("bankr-llm key COMMAND\n\n"
                       "  set [--api]                   store a key in the keyring (read from stdin or a prompt)\n"
                       "  clear [--api]                 remove a key from the keyring\n"
                       "  import [--remove-plaintext]   copy keys from ~/.bankr/config.json into the keyring\n"
                       "  status                        show the key in use (masked) and its source\n"
                       "  validate                      ask the gateway whether the key works\n"
                       "  reveal                        print the key (asks polkit)\n");
                return 0;
        }
        return dispatch_verb("key", verbs, argc - 1, argv + 1);
}

/* --- config ------------------------------------------------------------- */

static int config_get(sd_bus *bus, const char *name, json_object *info) {
        if (streq(name, "llmUrl"))
                printf("%s\n", strna(cli_json_str(info, "GatewayUrl")));
        else if (streq(name, "apiUrl"))
                printf("%s\n", strna(cli_json_str(info, "ApiUrl")));
        else if (streq(name, "llmKey")) {
                if (cli_json_bool(info, "Present", false) && streq_ptr(cli_json_str(info, "Kind"), "llm"))
                        printf("%s (%s)\n", cli_json_str(info, "Masked"), source_text(cli_json_str(info, "Source")));
                else
                        printf("(not set)\n");
        } else if (streq(name, "apiKey")) {
                const char *masked = cli_json_str(info, "ApiKeyMasked");
                if (!isempty(masked))
                        printf("%s (%s)\n", masked, source_text(cli_json_str(info, "ApiKeySource")));
                else
                        printf("(not set)\n");
        }
        return 0;
}

static int invalid_config_key(const char *name) {
        return cli_usage("Unknown config key \"%s\". Valid keys: llmKey, apiKey, llmUrl, apiUrl.", name);
}

int verb_config(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *info = NULL;
        int r;

        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
                printf("bankr-llm config get [KEY]\n"
                       "bankr-llm config set KEY VALUE\n\n"
                       "Keys, as in the bankr CLI: llmKey, apiKey, llmUrl, apiUrl.\n"
                       "llmKey and apiKey are stored in the keyring, not in the file, and are shown\n"
                       "masked (use \"bankr-llm key reveal\" to see one). For them give VALUE as \"-\"\n"
                       "to read the key from standard input (without echo on a terminal): a key\n"
                       "written on the command line can be read by other users (ps,\n"
                       "/proc/PID/cmdline) while the program starts; it is overwritten once read,\n"
                       "which shortens that time but does not close it, and a warning says so.\n"
                       "llmUrl and apiUrl are written to\n"
                       "~/.bankr/config.json (or $BANKR_CONFIG); an empty VALUE removes the setting.\n");
                return argc < 2 ? -EXIT_USAGE : 0;
        }

        if (streq(argv[1], "get")) {
                if (argc > 3)
                        return cli_usage("config get takes at most one key.");
                if (argc == 3 && !bankr_config_key_valid(argv[2]))
                        return invalid_config_key(argv[2]);
                r = key_info_get(&bus, &info);
                if (r < 0)
                        return r;
                if (argc == 3)
                        return config_get(bus, argv[2], info);
                for (const char *const *k = bankr_config_keys; *k; k++) {
                        printf("%s: ", *k);
                        config_get(bus, *k, info);
                }
                return 0;
        }

        if (streq(argv[1], "set")) {
                if (argc != 4)
                        return cli_usage("Usage: bankr-llm config set KEY VALUE");
                const char *name = argv[2], *value = argv[3];
                if (!bankr_config_key_valid(name))
                        return invalid_config_key(name);

                if (bankr_config_key_is_secret(name)) {
                        _cleanup_erase_ char *key = NULL;
                        bool llm = streq(name, "llmKey");
                        if (streq(value, "-")) {
                                r = key_from_stdin(llm ? "Bankr LLM key: " : "Bankr API key: ", &key);
                                if (r != 0)
                                        return r;
                        } else if (key_from_argv(llm ? "LLM key" : "API key", argv[3], &key) < 0)
                                return cli_fail(EXIT_FAIL, "Out of memory.");
                        r = cli_bus(&bus);
                        if (r < 0)
                                return r;
                        return store_key(bus, key, llm ? "llm" : "api");
                }

                _cleanup_free_ char *normalized = NULL, *err = NULL, *path = NULL;
                if (!isempty(value)) {
                        r = url_normalize(value, &normalized, &err);
                        if (r < 0)
                                return cli_fail(EXIT_USAGE, "Failed to set %s: %s", name, strna(err));
                }
                r = bankr_config_path(&path);
                if (r < 0)
                        return cli_fail(EXIT_FAIL, "Failed to set %s: HOME is not set.", name);
                const char *keys[] = { name };
                const char *values[] = { normalized };
                r = bankr_config_update_file(path, keys, values, 1, &err);
                if (r < 0)
                        return cli_fail(r == -EBADMSG ? EXIT_CONFIG : EXIT_FAIL, "Failed to set %s: %s.", name, strna(err));
                if (normalized)
                        printf("Set %s to %s in %s.\n", name, normalized, path);
                else
                        printf("Removed %s from %s.\n", name, path);
                return 0;
        }

        return cli_usage("Unknown config command \"%s\": use get or set.", argv[1]);
}

/* --- login (compatibility with "bankr login --llm-key") ----------------- */

int verb_login(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "llm-key", required_argument, NULL, 'l' },
                { "api-key", required_argument, NULL, 'a' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_erase_ char *llm = NULL, *api = NULL;
        int c, r, stdin_kind = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("bankr-llm login --llm-key KEY|- [--api-key KEY|-]\n\n"
                               "Compatibility with \"bankr login\": store the keys in the keyring.\n"
                               "A KEY of \"-\" is read from standard input (without echo on a terminal);\n"
                               "one of the two can come that way. A key written on the command line can be\n"
                               "read by other users (ps, /proc/PID/cmdline) while the program starts: it is\n"
                               "overwritten once read, which shortens that time but does not close it, and\n"
                               "a warning says so. Prefer \"-\" or \"bankr-llm key set\".\n");
                        return 0;
                case 'l':
                case 'a': {
                        char **k = c == 'l' ? &llm : &api;
                        if (*k)
                                return cli_usage("--%s was given twice.", c == 'l' ? "llm-key" : "api-key");
                        if (streq(optarg, "-")) {
                                if (stdin_kind)
                                        return cli_usage("Only one key can be read from standard input.");
                                stdin_kind = c;
                                *k = strdup("-");
                        } else if (key_from_argv(c == 'l' ? "LLM key" : "API key", optarg, k) < 0)
                                *k = NULL;
                        if (!*k)
                                return cli_fail(EXIT_FAIL, "Out of memory.");
                        break;
                }
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("login takes no positional arguments.");
        if (!llm && !api)
                return cli_usage("login needs --llm-key KEY (and optionally --api-key KEY).");
        if (stdin_kind) {
                char **k = stdin_kind == 'l' ? &llm : &api;
                erase_and_free(*k);
                *k = NULL;
                r = key_from_stdin(stdin_kind == 'l' ? "Bankr LLM key: " : "Bankr API key: ", k);
                if (r != 0)
                        return r;
        }

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        if (llm) {
                r = store_key(bus, llm, "llm");
                if (r != 0)
                        return r;
        }
        if (api) {
                r = store_key(bus, api, "api");
                if (r != 0)
                        return r;
        }
        return 0;
}

/* --- key validate -------------------------------------------------------- */

/* key validate and key reveal: no arguments, then the bus. 0 after --help,
 * 1 with *ret_bus, -EXIT_* after saying what failed. */
static int key_verb_connect(int argc, char *argv[], const char *optstring, const char *name, const char *help,
                            sd_bus **ret_bus) {
        int r;

        r = cli_parse_no_args(argc, argv, optstring, name, help, NULL);
        if (r <= 0)
                return r;
        r = cli_bus(ret_bus);
        return r < 0 ? r : 1;
}

int verb_key_validate(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *state = NULL;
        const char *message;
        bool present = true;
        int r, ok;

        r = key_verb_connect(argc, argv, "h", "key validate",
                             "bankr-llm key validate\n\n"
                             "Ask the gateway (its credits endpoint) whether the key in use works, and\n"
                             "say so in a sentence.\n\n"
                             "Exit codes: 0 the key works, 4 no key is set, 5 the gateway rejected the\n"
                             "key, 6 the key works but the credits are exhausted, 8 the gateway cannot\n"
                             "be reached or failed.\n",
                             &bus);
        if (r <= 0)
                return r;

        r = cli_call_gateway(bus, IFACE("Key"), "Validate", &error, &reply);
        if (r < 0)
                return cli_fail_bus("validate the key", &error, r);
        r = sd_bus_message_read(reply, "bs", &ok, &message);
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to parse the answer of bankr-llmd: %s", strerror(-r));

        /* The answer also updated Credits.State, which says what kind of
         * failure (or success) this was. */
        r = cli_get_string(bus, IFACE("Credits"), "State", &state);
        if (r < 0)
                return r;
        if (!ok) {
                r = cli_get_bool(bus, IFACE("Key"), "Present", &present);
                if (r < 0)
                        return r;
        }

        _cleanup_free_ char *safe = NULL;
        if (ok) {
                printf("%s\n", cli_term_safe(stdout, message, &safe));
                return streq(state, "exhausted") ? -EXIT_NO_CREDITS : 0;
        }
        fprintf(stderr, "%s\n", cli_term_safe(stderr, message, &safe));
        if (!present)
                return -EXIT_NO_KEY;
        return streq(state, "unauthorized") ? -EXIT_UNAUTHORIZED : -EXIT_GATEWAY;
}

/* --- key reveal ---------------------------------------------------------- */

int verb_key_reveal(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *key;
        int r;

        r = key_verb_connect(argc, argv, "+h", "key reveal",
                             "bankr-llm key reveal\n\n"
                             "Print the key in use, followed by a newline, and nothing else on standard\n"
                             "output (for scripts: KEY=$(bankr-llm key reveal)). polkit decides first\n"
                             "(action bot.bankr.LLM1.reveal-key): allowed in an active session, a\n"
                             "password elsewhere.\n\n"
                             "Exit codes:\n"
                             "    0  the key was printed\n"
                             "    1  failure not listed below\n"
                             "    3  bankr-llmd cannot be reached\n"
                             "    4  there is no key\n"
                             "    7  not authorized by polkit (denied, dismissed, or polkit unavailable)\n",
                             &bus);
        if (r <= 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Key"), "Reveal");
        if (r < 0)
                return cli_fail_bus("reveal the key", NULL, r);
        r = cli_call_interactive(bus, m, &error, &reply);
        if (r < 0)
                return cli_fail_bus("reveal the key", &error, r);
        /* Wiped when the reply is freed. */
        (void) sd_bus_message_sensitive(reply);
        r = sd_bus_message_read(reply, "s", &key);
        if (r < 0)
                return cli_fail(EXIT_FAIL, "Failed to read the key from the answer: %s", strerror(-r));
        (void) printf("%s\n", key);
        if (cli_flush_stdout() < 0) /* reported there */
                return -EXIT_FAIL;
        return 0;
}
