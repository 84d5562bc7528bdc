/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm setup TOOL | claude [ARGS...] | opencode [ARGS...]: tool
 * integrations through the Setup interface. "setup" shows or installs a
 * tool's config; the launchers mint a connection token for the local
 * endpoint (Endpoint.CreateToken), run the tool with the endpoint's URL and
 * that token and every argument untouched, and stay its parent: the token
 * dies with the launch, and the tool's exit code becomes ours. Nothing here
 * sees the key, so nothing asks polkit.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

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
        printf("bankr-llm setup TOOL [--install] [--key endpoint|env|inline] [--force]\n\n"
               "Connect a tool to the Bankr LLM Gateway with the current model list.\n"
               "TOOL is openclaw, opencode, claude or cursor.\n\n"
               "Without --install, print the config (OpenClaw, OpenCode, Claude Code's\n"
               "settings.json) or the instructions (Cursor; Claude Code with env or inline)\n"
               "on standard output; hints go to standard error.\n"
               "With --install, merge the bankr entries into the tool's config file\n"
               "(~/.openclaw/openclaw.json or $OPENCLAW_CONFIG_PATH, ~/.config/opencode/opencode.json,\n"
               "~/.claude/settings.json): everything else in the file is kept, and the previous\n"
               "version is saved next to it as FILE.bankr-backup-DATE-TIME.\n\n"
               "  --install       write the config file (openclaw, opencode, claude)\n"
               "  --key endpoint  point the tool at bankr-llmd's local endpoint; it gets a token\n"
               "                  from \"bankr-llm token\" (Claude Code apiKeyHelper, OpenClaw exec\n"
               "                  SecretRef, OpenCode {env:BANKR_LLM_TOKEN}, which \"bankr-llm\n"
               "                  opencode\" sets): no file holds the key (the default)\n"
               "  --key env       point it at the gateway, referring to $BANKR_API_KEY for the\n"
               "                  key (Claude Code: export lines only)\n"
               "  --key inline    write the key itself (asks polkit, like \"key reveal\")\n"
               "  --force         replace a config file that is not strict JSON (JSONC, JSON5\n"
               "                  or garbage); the old file is kept as the backup\n\n"
               "Cursor calls from its own servers, which cannot reach the local endpoint: it\n"
               "always gets the gateway's URL and the key.\n\n"
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
                fprintf(stderr, "\nTo write this into %s (keeping everything else), run:\n  bankr-llm setup %s --install%s%s\n",
                        pretty_path(path, &buf), setup_tool_to_string(t),
                        key_mode ? " --key " : "", strempty(key_mode));
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

        /* Where it goes (only key=inline would ask polkit: env has the same
         * path), to tell "unchanged" from "updated". */
        r = setup_call(bus, "Preview", &error, &preview, setup_tool_to_string(t),
                       streq_ptr(key_mode, "inline") ? "env" : key_mode, false);
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

        if (!key_mode || streq(key_mode, "endpoint")) {
                if (t == SETUP_TOOL_OPENCODE)
                        printf("OpenCode reads its token from $BANKR_LLM_TOKEN: start it with \"bankr-llm opencode\",\n"
                               "which sets it for the run, or export BANKR_LLM_TOKEN=$(bankr-llm token --app opencode).\n");
                else if (t == SETUP_TOOL_CLAUDE)
                        printf("Claude Code gets its token from \"bankr-llm token\" (apiKeyHelper); start it as usual.\n");
                else
                        printf("OpenClaw gets its token from \"bankr-llm token\" (an exec SecretRef); restart its\n"
                               "gateway or run \"openclaw secrets reload\" to use it.\n");
        } else if (streq(key_mode, "env")) {
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
                                return cli_usage("Unknown key mode \"%s\": use --key endpoint (the default), --key env or --key inline.", optarg);
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
        if (install && !setup_tool_can_install(t, key_mode ? setup_key_mode_from_string(key_mode) : SETUP_KEY_ENDPOINT))
                return cli_usage("%s has no config file to install%s: run \"bankr-llm setup %s%s%s\" for the instructions%s.",
                                 tool_title(t), t == SETUP_TOOL_CLAUDE ? " with this key mode" : "",
                                 setup_tool_to_string(t), key_mode ? " --key " : "", strempty(key_mode),
                                 t == SETUP_TOOL_CLAUDE ? ", install without --key (endpoint), or run \"bankr-llm claude [ARGS...]\"" : "");

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

/* What OpenCode's config holds for the bankr provider, as strict JSON:
 * PROVIDER_MISSING, PROVIDER_CURRENT (ours, for this endpoint),
 * PROVIDER_OUTDATED (ours, but an env-mode entry or another endpoint URL:
 * rewritten), PROVIDER_CUSTOM (someone else's values: left alone); not
 * strict JSON (JSONC is fine for OpenCode): -EBADMSG. */
enum {
        PROVIDER_MISSING,
        PROVIDER_CURRENT,
        PROVIDER_OUTDATED,
        PROVIDER_CUSTOM,
};

static int opencode_provider_state(const char *text, const char *url) {
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new();
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_free_ char *v1 = NULL;
        json_object *provider, *bankr, *options, *o;
        const char *key = NULL, *base = NULL;

        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int) strlen(text) + 1);
        if (!root)
                return -EBADMSG;
        if (!json_object_object_get_ex(root, "provider", &provider) || !json_object_is_type(provider, json_type_object) ||
            !json_object_object_get_ex(provider, "bankr", &bankr))
                return PROVIDER_MISSING;
        if (json_object_object_get_ex(bankr, "options", &options) && json_object_is_type(options, json_type_object)) {
                if (json_object_object_get_ex(options, "apiKey", &o) && json_object_is_type(o, json_type_string))
                        key = json_object_get_string(o);
                if (json_object_object_get_ex(options, "baseURL", &o) && json_object_is_type(o, json_type_string))
                        base = json_object_get_string(o);
        }
        if (streq_ptr(key, "{env:BANKR_API_KEY}"))
                return PROVIDER_OUTDATED; /* env mode: would send the key, which the launcher no longer has */
        if (!streq_ptr(key, "{env:" SETUP_OPENCODE_TOKEN_ENV "}"))
                return PROVIDER_CUSTOM;
        if (asprintf(&v1, "%s/v1", url) < 0)
                return -ENOMEM;
        return streq_ptr(base, v1) ? PROVIDER_CURRENT : PROVIDER_OUTDATED;
}

/* Before launching OpenCode: the provider must point at the endpoint and
 * read $BANKR_LLM_TOKEN. Never fatal: a config we cannot read or refuse to
 * rewrite (JSONC) may well work for OpenCode, so we warn and launch anyway. */
static void opencode_ensure_provider(sd_bus *bus, const char *url) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *preview = NULL, *reply = NULL;
        _cleanup_erase_ char *text = NULL;
        _cleanup_free_ char *err = NULL, *buf = NULL;
        const char *config, *path, *backup;
        int r, state = PROVIDER_MISSING;

        r = setup_call(bus, "Preview", &error, &preview, "opencode", "endpoint", false);
        if (r >= 0)
                r = sd_bus_message_read(preview, "ss", &config, &path);
        if (r < 0) {
                fprintf(stderr, "Warning: cannot tell whether OpenCode knows the bankr provider (%s); starting it anyway.\n",
                        sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return;
        }

        r = safe_install_read(path, &text, &err);
        if (r >= 0) {
                state = opencode_provider_state(text, url);
                if (state == PROVIDER_CURRENT)
                        return;
                if (state == PROVIDER_CUSTOM) {
                        fprintf(stderr,
                                "Note: the bankr provider in %s has its own apiKey, so OpenCode may not use the\n"
                                "token of this run; \"bankr-llm setup opencode --install\" points it at the endpoint.\n",
                                pretty_path(path, &buf));
                        return;
                }
                if (state < 0) {
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

        r = setup_call(bus, "Install", &error, &reply, "opencode", "endpoint", false);
        if (r >= 0)
                r = sd_bus_message_read(reply, "ss", &path, &backup);
        if (r < 0) {
                fprintf(stderr, "Warning: could not add the bankr provider to OpenCode's config: %s\nStarting OpenCode anyway.\n",
                        sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return;
        }
        if (state == PROVIDER_OUTDATED)
                fprintf(stderr, "Pointed the bankr provider in %s at the local endpoint.\n", pretty_path(path, &buf));
        else
                fprintf(stderr, "Added the bankr provider to %s; its models are bankr/<id>.\n", pretty_path(path, &buf));
}

/* Claude Code's settings.json "env" wins over the environment bankr-llm
 * passes: say so when it would send something else than the endpoint and
 * this run's token. Best effort, never fatal. */
static void claude_check_settings(const char *url) {
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new();
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_erase_ char *text = NULL;
        _cleanup_free_ char *path = NULL, *err = NULL, *buf = NULL;
        const char *dir = getenv("CLAUDE_CONFIG_DIR"), *home = getenv("HOME");
        json_object *env, *v;

        if (!tok || setup_tool_config_path_full(SETUP_TOOL_CLAUDE, home, NULL, NULL, dir, &path) < 0 ||
            safe_install_read(path, &text, &err) < 0)
                return;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int) strlen(text) + 1);
        if (!root || !json_object_object_get_ex(root, "env", &env) || !json_object_is_type(env, json_type_object))
                return;
        const char *const names[] = { "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY" };
        const char *shown = pretty_path(path, &buf);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (json_object_object_get_ex(env, names[i], NULL))
                        fprintf(stderr, "Warning: %s sets env.%s, which Claude Code uses instead of this run's token;\n"
                                        "\"bankr-llm setup claude --install\" removes it.\n",
                                shown, names[i]);
        if (json_object_object_get_ex(env, "ANTHROPIC_BASE_URL", &v) && json_object_is_type(v, json_type_string) &&
            !streq(json_object_get_string(v), url))
                fprintf(stderr, "Warning: %s sets env.ANTHROPIC_BASE_URL to another address, which Claude Code uses\n"
                                "instead of the local endpoint; \"bankr-llm setup claude --install\" points it there.\n",
                        shown);
}

/* The endpoint's Url; errors are printed (-exit code). */
static int endpoint_url(sd_bus *bus, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *url = NULL;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, OBJECT_PATH, IFACE("Endpoint"), "Url", &error, &url);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_PROPERTY) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT))
                        return cli_fail(EXIT_FAIL, "Failed to find the local endpoint: this bankr-llmd has none "
                                                    "(no bot.bankr.LLM1.Endpoint interface); update bankr-llmd.");
                return cli_fail_bus("find the local endpoint", &error, r);
        }
        /* As the generators write it: no trailing '/'. */
        for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
                url[n - 1] = 0;
        if (isempty(url))
                return cli_fail(EXIT_FAIL, "Failed to find the local endpoint: bankr-llmd is not listening "
                                            "(Endpoint.Url is empty); see its log.");
        *ret = TAKE_PTR(url);
        return 0;
}

/* Signals a launcher passes on to the tool. SIGINT and SIGQUIT from the
 * terminal reach the whole foreground process group, the tool included,
 * so those are forwarded only when some process sent them to us. One that
 * was ignored when we started (nohup, a background job) is left ignored:
 * the tool inherits that, as it would from a shell. */
static const int forwarded_signals[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT };

/* Variables a launched tool must not get: keys, and what would win over
 * the token we pass. */
static const char *const scrubbed_env[] = {
        "BANKR_LLM_KEY", "BANKR_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", SETUP_OPENCODE_TOKEN_ENV,
};

static __attribute__((noreturn)) void exec_child(const char *exe, char *argv[], SetupTool t, const char *url, const char *token,
                                  const sigset_t *old_mask) {
        for (size_t i = 0; i < ELEMENTSOF(scrubbed_env); i++)
                (void) unsetenv(scrubbed_env[i]);
        if (t == SETUP_TOOL_CLAUDE) {
                if (setenv("ANTHROPIC_BASE_URL", url, 1) < 0 || setenv("ANTHROPIC_AUTH_TOKEN", token, 1) < 0)
                        _exit(EXIT_FAIL);
        } else if (setenv(SETUP_OPENCODE_TOKEN_ENV, token, 1) < 0)
                _exit(EXIT_FAIL);
        (void) sigprocmask(SIG_SETMASK, old_mask, NULL);
        execv(exe, argv);
        fprintf(stderr, "Failed to run %s: %s\n", exe, strerror(errno));
        _exit(EXIT_CANNOT_EXEC);
}

/* Waits for the child, passing signals on; returns its exit code (128+N
 * when signal N ended it, as shells report it). */
static int wait_child(pid_t pid, int sfd) {
        for (;;) {
                struct signalfd_siginfo si;
                ssize_t k;
                int status;
                pid_t w;

                w = waitpid(pid, &status, WNOHANG);
                if (w == pid) {
                        if (WIFEXITED(status))
                                return WEXITSTATUS(status);
                        if (WIFSIGNALED(status))
                                return 128 + WTERMSIG(status);
                        continue;
                }
                if (w < 0 && errno != EINTR)
                        return cli_fail(EXIT_FAIL, "Failed to wait for the tool: %s", strerror(errno));

                k = read(sfd, &si, sizeof si);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k != sizeof si)
                        return cli_fail(EXIT_FAIL, "Failed to read a signal: %s", k < 0 ? strerror(errno) : "short read");
                if (si.ssi_signo == SIGCHLD)
                        continue;
                /* From the terminal (the kernel): the tool got it too. */
                if ((si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT) && si.ssi_code == SI_KERNEL)
                        continue;
                (void) kill(pid, (int) si.ssi_signo);
        }
}

static int launch(SetupTool t, const char *binary, const char *app, const char *install_hint, int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(erase_and_freep) char *token = NULL;
        _cleanup_free_ char *exe = NULL, *url = NULL, *id = NULL;
        _cleanup_close_ int sfd = -EBADF;
        sigset_t mask, old_mask;
        pid_t pid;
        int r, code;

        /* No option parsing here: every argument is the tool's, even --help. */
        (void) argc;

        /* Before minting a token: no point handing one out for nothing. */
        r = find_executable(binary, &exe);
        if (r == -ENOMEM)
                return cli_fail(EXIT_FAIL, "Out of memory.");
        if (r < 0)
                return cli_fail(EXIT_COMMAND_NOT_FOUND, "%s is not installed: no \"%s\" in $PATH.\nInstall it with: %s",
                                tool_title(t), binary, install_hint);

        r = cli_bus(&bus);
        if (r < 0)
                return r;

        r = endpoint_url(bus, &url);
        if (r < 0) {
                fprintf(stderr, "%s was not started.\n", binary);
                return r;
        }
        if (t == SETUP_TOOL_OPENCODE)
                opencode_ensure_provider(bus, url);
        else
                claude_check_settings(url);

        /* A connection token: it lives as long as this process's bus
         * connection, which we keep open (and idle) until the tool ends. */
        r = cli_endpoint_token(bus, &(TokenRequest) { .app = app, .lifetime = "connection" }, &token, &id);
        if (r < 0) {
                fprintf(stderr, "%s was not started.\n", binary);
                return r;
        }

        if (cli_flush_stdout() < 0) {
                fprintf(stderr, "%s was not started.\n", binary);
                return -EXIT_FAIL;
        }
        fflush(stderr);

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        cli_sigaddset_unignored(&mask, forwarded_signals, ELEMENTSOF(forwarded_signals));
        if (sigprocmask(SIG_BLOCK, &mask, &old_mask) < 0)
                return cli_fail(EXIT_FAIL, "Failed to block signals: %s", strerror(errno));
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return cli_fail(EXIT_FAIL, "Failed to watch signals: %s", strerror(errno));

        pid = fork();
        if (pid < 0)
                return cli_fail(EXIT_FAIL, "Failed to start %s: %s", binary, strerror(errno));
        if (pid == 0)
                exec_child(exe, argv, t, url, token, &old_mask);

        /* The parent needs only the connection, not the token text. */
        token = erase_and_free(token);
        code = wait_child(pid, sfd);
        (void) sigprocmask(SIG_SETMASK, &old_mask, NULL);
        /* The tool's exit status, negated as verbs return it (see cli.h). */
        return code > 0 ? -code : code;
}

int verb_claude(int argc, char *argv[]) {
        return launch(SETUP_TOOL_CLAUDE, "claude", "claude-code", "npm install -g @anthropic-ai/claude-code", argc, argv);
}

int verb_opencode(int argc, char *argv[]) {
        return launch(SETUP_TOOL_OPENCODE, "opencode", "opencode", "npm install -g opencode-ai", argc, argv);
}
