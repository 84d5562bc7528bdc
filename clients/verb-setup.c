/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm setup TOOL | claude [ARGS...] | opencode [ARGS...]: tool
 * integrations through the Setup interface. "setup" shows or installs a
 * tool's config; the launchers get the tool's environment from the service
 * (polkit reveal-key) and exec the tool with every argument untouched.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "cli.h"
#include "model-list.h"
#include "safe-install.h"
#include "setup-gen.h"

/* Exit codes of the launchers when the tool cannot be run, as in sh(1). */
#define EXIT_CANNOT_EXEC 126
#define EXIT_COMMAND_NOT_FOUND 127

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

static const char *tool_title(SetupTool t) {
        static const char *const titles[_SETUP_TOOL_MAX] = {
                [SETUP_TOOL_OPENCLAW] = "OpenClaw",
                [SETUP_TOOL_OPENCODE] = "OpenCode",
                [SETUP_TOOL_CLAUDE] = "Claude Code",
                [SETUP_TOOL_CURSOR] = "Cursor",
        };
        return t >= 0 && t < _SETUP_TOOL_MAX ? titles[t] : "?";
}

/* ~/… for paths under HOME, for messages. */
static const char *pretty_path(const char *path, char **buf) {
        const char *home = getenv("HOME"), *rest;

        if (isempty(home) || streq(home, "/") || !(rest = startswith(path, home)) || rest[0] != '/')
                return path;
        if (asprintf(buf, "~%s", rest) < 0)
                return path;
        return *buf;
}

/* Calls a Setup method. Only Environment and key=inline need reveal-key, so
 * only they get a password agent; the others may still wait for the keyring. */
static int setup_call(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **ret_reply, const char *tool,
                      const char *key_mode, bool force) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Setup"), method);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", tool);
        if (r < 0)
                return r;
        if (streq(method, "Environment"))
                goto call;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (key_mode) {
                r = sd_bus_message_append(m, "{sv}", "key", "s", key_mode);
                if (r < 0)
                        return r;
        }
        if (force) {
                r = sd_bus_message_append(m, "{sv}", "force", "b", 1);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
call:
        if (streq(method, "Environment") || streq_ptr(key_mode, "inline"))
                return cli_call_interactive(bus, m, error, ret_reply);
        return sd_bus_call(bus, m, CLI_INTERACTIVE_TIMEOUT_USEC, error, ret_reply);
}

/* The service's model list (Models property), only as far as the default
 * hint needs it: id, name, provider, api. */
static int read_models(sd_bus *bus, ModelList **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *models = NULL;
        _cleanup_(model_list_freep) ModelList *l = NULL;
        size_t n;
        int r;

        r = sd_bus_get_property(bus, BUS_NAME, OBJECT_PATH, IFACE("Models"), "Models", NULL, &reply, "aa{sv}");
        if (r < 0)
                return r;
        r = cli_variant_to_json(reply, &models);
        if (r < 0)
                return r;
        if (!json_object_is_type(models, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(models);
        l = calloc(1, sizeof(ModelList));
        if (!l)
                return -ENOMEM;
        l->models = calloc(n ?: 1, sizeof(Model));
        if (!l->models)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(models, i);
                Model *model = &l->models[l->n++];

                if (free_and_strdup(&model->id, cli_json_str(o, "id")) < 0 ||
                    free_and_strdup(&model->name, cli_json_str(o, "name")) < 0 ||
                    free_and_strdup(&model->provider, cli_json_str(o, "provider")) < 0 ||
                    free_and_strdup(&model->api, cli_json_str(o, "api")) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* How to make a Bankr model the tool's default, from the service's list.
 * Best effort: nothing is printed when the list cannot be read. */
static void print_default_hint(sd_bus *bus, SetupTool t, FILE *f) {
        _cleanup_(model_list_freep) ModelList *l = NULL;
        _cleanup_free_ char *hint = NULL;

        if (read_models(bus, &l) < 0 || setup_default_hint(t, l, &hint) < 0)
                return;
        fprintf(f, "\n%s", hint);
}

static void setup_help(void) {
        printf("bankr-llm setup TOOL [--install] [--key env|inline] [--force]\n\n"
               "Connect a tool to the Bankr LLM Gateway with the current model list.\n"
               "TOOL is openclaw, opencode, claude or cursor.\n\n"
               "Without --install, print the config (OpenClaw, OpenCode) or the instructions\n"
               "(Claude Code, Cursor) on standard output; hints go to standard error.\n"
               "With --install, merge the bankr provider into the tool's config file\n"
               "(~/.openclaw/openclaw.json or $OPENCLAW_CONFIG_PATH, ~/.config/opencode/opencode.json):\n"
               "everything else in the file is kept, and the previous version is saved next\n"
               "to it as FILE.bankr-backup-DATE-TIME.\n\n"
               "  --install       write the config file (openclaw, opencode)\n"
               "  --key env       refer to $BANKR_API_KEY instead of writing the key (default)\n"
               "  --key inline    write the key itself (asks polkit, like \"key reveal\")\n"
               "  --force         replace a config file that is not strict JSON (JSONC, JSON5\n"
               "                  or garbage); the old file is kept as the backup\n\n"
               "See also: bankr-llm claude [ARGS...], bankr-llm opencode [ARGS...].\n");
}

static int setup_show(sd_bus *bus, SetupTool t, const char *key_mode) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *buf = NULL;
        const char *text, *path;
        int r;

        r = setup_call(bus, "Preview", &error, &reply, setup_tool_to_string(t), key_mode, false);
        if (r < 0)
                return cli_fail_bus("show the setup", &error, r);
        r = sd_bus_message_read(reply, "ss", &text, &path);
        if (r < 0)
                return cli_fail_bus("show the setup", NULL, r);

        fputs(text, stdout);
        (void) cli_flush_stdout();
        /* Standard output stays exactly the config, for redirection; the rest is for people. */
        if (!isempty(path))
                fprintf(stderr, "\nTo write this into %s (keeping everything else), run:\n  bankr-llm setup %s --install%s\n",
                        pretty_path(path, &buf), setup_tool_to_string(t),
                        streq_ptr(key_mode, "inline") ? " --key inline" : "");
        print_default_hint(bus, t, stderr);
        return 0;
}

/* The file's content, or NULL (no file, unreadable). Only to tell the user
 * whether the install changed anything. */
static char *read_quietly(const char *path) {
        char *text = NULL, *err = NULL;

        (void) safe_install_read(path, &text, &err);
        free(err);
        return text;
}

static int setup_install(sd_bus *bus, SetupTool t, const char *key_mode, bool force) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *preview = NULL, *reply = NULL;
        _cleanup_erase_ char *before = NULL, *after = NULL;
        _cleanup_free_ char *buf1 = NULL, *buf2 = NULL;
        const char *path, *backup, *text;
        int r;

        /* Where it goes (key=env never asks polkit), to tell "unchanged" from "updated". */
        r = setup_call(bus, "Preview", &error, &preview, setup_tool_to_string(t), NULL, false);
        if (r < 0)
                return cli_fail_bus("find the config file", &error, r);
        r = sd_bus_message_read(preview, "ss", &text, &path);
        if (r < 0)
                return cli_fail_bus("find the config file", NULL, r);
        before = read_quietly(path);

        r = setup_call(bus, "Install", &error, &reply, setup_tool_to_string(t), key_mode, force);
        if (r < 0) {
                _cleanup_free_ char *what = NULL;
                if (asprintf(&what, "set up %s", tool_title(t)) < 0)
                        what = NULL;
                return cli_fail_bus(what ?: "set up the tool", &error, r);
        }
        r = sd_bus_message_read(reply, "ss", &path, &backup);
        if (r < 0)
                return cli_fail_bus("set up the tool", NULL, r);
        after = read_quietly(path);

        if (!isempty(backup))
                printf("Updated %s (previous version saved as %s).\n", pretty_path(path, &buf1), pretty_path(backup, &buf2));
        else if (before && after && streq(before, after))
                printf("%s is already up to date.\n", pretty_path(path, &buf1));
        else if (!before)
                printf("Created %s.\n", pretty_path(path, &buf1));
        else
                printf("Updated %s.\n", pretty_path(path, &buf1));

        if (!streq_ptr(key_mode, "inline")) {
                if (t == SETUP_TOOL_OPENCODE)
                        printf("The config refers to {env:BANKR_API_KEY}: start OpenCode with \"bankr-llm opencode\",\n"
                               "which sets it, or export BANKR_API_KEY yourself.\n");
                else
                        printf("The config refers to ${BANKR_API_KEY}: export it before starting OpenClaw\n"
                               "(\"bankr-llm key reveal\" prints the key), or install with --key inline.\n");
        }
        print_default_hint(bus, t, stdout);
        return 0;
}

int verb_setup(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "install", no_argument, NULL, 'i' },
                { "key", required_argument, NULL, 'k' },
                { "force", no_argument, NULL, 'f' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *key_mode = NULL;
        bool install = false, force = false;
        SetupTool t;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hik:f", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        setup_help();
                        return 0;
                case 'i':
                        install = true;
                        break;
                case 'k':
                        if (setup_key_mode_from_string(optarg) < 0)
                                return cli_usage("Unknown key mode \"%s\": use --key env (the default) or --key inline.", optarg);
                        key_mode = optarg;
                        break;
                case 'f':
                        force = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind >= argc)
                return cli_usage("setup needs a tool: openclaw, opencode, claude or cursor. See bankr-llm setup --help.");
        if (argc - optind > 1)
                return cli_usage("setup takes one tool, not %d arguments.", argc - optind);
        t = setup_tool_from_string(argv[optind]);
        if (t < 0)
                return cli_usage("Unknown tool \"%s\": use openclaw, opencode, claude or cursor.", argv[optind]);
        if (force && !install)
                return cli_usage("--force only applies with --install.");
        if (install && !setup_tool_has_config(t))
                return cli_usage("%s has no config file to install: run \"bankr-llm setup %s\" for the instructions%s.",
                                 tool_title(t), setup_tool_to_string(t),
                                 t == SETUP_TOOL_CLAUDE ? ", or \"bankr-llm claude [ARGS...]\" to launch it" : "");

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        return install ? setup_install(bus, t, key_mode, force) : setup_show(bus, t, key_mode);
}

/* --- launchers ---------------------------------------------------------- */

/* Like execvp()'s search: the first executable regular file named name in
 * $PATH (an empty entry is the current directory). */
static int find_executable(const char *name, char **ret) {
        const char *path = getenv("PATH");

        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path;; ) {
                const char *end = strchrnul(p, ':');
                _cleanup_free_ char *candidate = NULL;
                struct stat st;

                if (asprintf(&candidate, "%.*s%s%s", (int) (end - p), p, end > p ? "/" : "", name) < 0)
                        return -ENOMEM;
                if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0) {
                        *ret = TAKE_PTR(candidate);
                        return 0;
                }
                if (!*end)
                        break;
                p = end + 1;
        }
        return -ENOENT;
}

/* A strict JSON object with provider.bankr: 1; without: 0; not strict JSON
 * (JSONC is fine for OpenCode): -EBADMSG. */
static int opencode_has_provider(const char *text) {
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new();
        json_object *root, *provider;
        int r;

        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int) strlen(text) + 1);
        if (!root)
                return -EBADMSG;
        r = json_object_object_get_ex(root, "provider", &provider) && json_object_is_type(provider, json_type_object) &&
            json_object_object_get_ex(provider, "bankr", NULL);
        json_object_put(root);
        return r;
}

/* bankr llm opencode installs the provider first when the config lacks it.
 * Never fatal: a config we cannot read or refuse to rewrite (JSONC) may
 * well work for OpenCode, so we warn and launch anyway. */
static void opencode_ensure_provider(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *preview = NULL, *reply = NULL;
        _cleanup_erase_ char *text = NULL;
        _cleanup_free_ char *err = NULL, *buf = NULL;
        const char *config, *path, *backup;
        int r;

        r = setup_call(bus, "Preview", &error, &preview, "opencode", NULL, false);
        if (r >= 0)
                r = sd_bus_message_read(preview, "ss", &config, &path);
        if (r < 0) {
                fprintf(stderr, "Warning: cannot tell whether OpenCode knows the bankr provider (%s); starting it anyway.\n",
                        sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return;
        }

        r = safe_install_read(path, &text, &err);
        if (r >= 0) {
                r = opencode_has_provider(text);
                if (r > 0)
                        return;
                if (r < 0) {
                        fprintf(stderr,
                                "Warning: %s is not strict JSON (comments?), so bankr-llm cannot check or add the bankr\n"
                                "provider; starting OpenCode anyway. \"bankr-llm setup opencode\" shows the entry to add.\n",
                                pretty_path(path, &buf));
                        return;
                }
        } else if (r != -ENOENT) {
                fprintf(stderr, "Warning: %s; starting OpenCode anyway.\n", strna(err));
                return;
        }

        r = setup_call(bus, "Install", &error, &reply, "opencode", "env", false);
        if (r >= 0)
                r = sd_bus_message_read(reply, "ss", &path, &backup);
        if (r < 0) {
                fprintf(stderr, "Warning: could not add the bankr provider to OpenCode's config: %s\nStarting OpenCode anyway.\n",
                        sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return;
        }
        fprintf(stderr, "Added the bankr provider to %s; its models are bankr/<id>.\n", pretty_path(path, &buf));
}

static int launch(SetupTool t, const char *binary, const char *install_hint, int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *exe = NULL, *what = NULL;
        const char *name, *value;
        int r;

        /* No option parsing here: every argument is the tool's, even --help. */
        (void) argc;

        /* Before asking for the key: no point handing it out for nothing. */
        r = find_executable(binary, &exe);
        if (r == -ENOMEM)
                return cli_fail(EXIT_FAIL, "Out of memory.");
        if (r < 0)
                return cli_fail(EXIT_COMMAND_NOT_FOUND, "%s is not installed: no \"%s\" in $PATH.\nInstall it with: %s",
                                tool_title(t), binary, install_hint);

        r = cli_bus(&bus);
        if (r < 0)
                return r;

        if (t == SETUP_TOOL_OPENCODE)
                opencode_ensure_provider(bus);

        r = setup_call(bus, "Environment", &error, &reply, setup_tool_to_string(t), NULL, false);
        if (r < 0) {
                if (asprintf(&what, "get the key for %s", binary) < 0)
                        what = NULL;
                r = cli_fail_bus(what ?: "get the key", &error, r);
                fprintf(stderr, "%s was not started.\n", binary);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "{ss}");
        if (r < 0)
                return cli_fail_bus("read the environment", NULL, r);
        while ((r = sd_bus_message_read(reply, "{ss}", &name, &value)) > 0)
                if (setenv(name, value, 1) < 0)
                        return cli_fail(EXIT_FAIL, "Failed to set %s: %s", name, strerror(errno));
        if (r < 0)
                return cli_fail_bus("read the environment", NULL, r);

        reply = sd_bus_message_unref(reply);
        bus = sd_bus_flush_close_unref(bus);
        if (cli_flush_stdout() < 0) {
                fprintf(stderr, "%s was not started.\n", binary);
                return -EXIT_FAIL;
        }
        fflush(stderr);

        /* The tool's exit code becomes ours. */
        execv(exe, argv);
        return cli_fail(EXIT_CANNOT_EXEC, "Failed to run %s: %s", exe, strerror(errno));
}

int verb_claude(int argc, char *argv[]) {
        return launch(SETUP_TOOL_CLAUDE, "claude", "npm install -g @anthropic-ai/claude-code", argc, argv);
}

int verb_opencode(int argc, char *argv[]) {
        return launch(SETUP_TOOL_OPENCODE, "opencode", "npm install -g opencode-ai", argc, argv);
}
