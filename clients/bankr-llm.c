/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm: the command line over bankr-llmd's D-Bus API. Each verb lives
 * in a verb-*.c file; this one dispatches and prints the overview.
 */
#include <getopt.h>
#include <locale.h>

#include "cli.h"
#include "log.h"

static const Verb verbs[] = {
        { "status", verb_status, "show the gateway, the key source and the service version" },
        { "key", verb_key, "set, clear, import, validate or reveal the key" },
        { "config", verb_config, "get or set llmKey, apiKey, llmUrl, apiUrl (as in bankr config)" },
        { "login", verb_login, "store keys given as --llm-key/--api-key (bankr login compatible)" },
        { "credits", verb_credits, "show the credit balance; add credits; auto top-up" },
        { "chat", verb_chat, "ask a model and stream the answer (or talk interactively)" },
        { "models", verb_models, "list the gateway's models with context sizes and prices" },
        { "image", verb_image, "generate an image and write it to a file" },
        { "setup", verb_setup, "show or install the config of openclaw, opencode, claude or cursor" },
        { "claude", verb_claude, "run Claude Code through the gateway (all ARGS go to claude)" },
        { "opencode", verb_opencode, "run OpenCode through the gateway (all ARGS go to opencode)" },
        { "token", verb_token, "mint a token for the local endpoint (the tools' credential helper)" },
        { "endpoint", verb_endpoint, "show the local endpoint and its tokens; revoke a token" },
        { "usage", verb_usage, "show what each application spent, by app, model, day or hour" },
        { "budget", verb_budget, "show or set how much each application may spend" },
        /* VERBS: more verbs are added here */
        {}
};

static void help(void) {
        printf("Usage: bankr-llm [OPTIONS] COMMAND [ARGS...]\n\n"
               "Use the Bankr LLM Gateway through the bankr-llmd desktop service.\n\n"
               "Commands:\n");
        for (const Verb *v = verbs; v->name; v++)
                printf("  %-10s %s\n", v->name, v->summary);
        printf("\nOptions:\n"
               "  -h --help       show this help (COMMAND --help for a command)\n"
               "     --version    show the version\n"
               "     --no-ask-password\n"
               "                  never let polkit ask for a password (fail with exit code 7\n"
               "                  instead), and never ask for confirmation\n\n"
               "Exit codes:\n"
               "    0  success\n"
               "    1  failure not listed below, such as output that could not be written\n"
               "       (\"Failed to write output: No space left on device\"; a closed pipe,\n"
               "       as with \"| head\", ends the program without a message)\n"
               "    2  bad command line or arguments\n"
               "    3  the session bus or bankr-llmd cannot be reached, or the running\n"
               "       bankr-llmd is older than this bankr-llm (restart it)\n"
               "    4  no key is configured\n"
               "    5  the gateway rejected the key (401/403)\n"
               "    6  credits are exhausted, or the daily spend budget is used up (402)\n"
               "    7  not authorized (polkit said no, or the dialog was dismissed)\n"
               "    8  the gateway is unreachable, failing, rate limiting or timed out\n"
               "    9  unknown or retired model\n"
               "   10  a config file was not safe to change\n"
               "   11  the keyring is unavailable or locked\n"
               "  126  (claude, opencode) the tool exists but cannot be executed\n"
               "  127  (claude, opencode) the tool is not installed\n"
               "  any  (claude, opencode) otherwise the tool's own exit code\n"
               "128+N  (claude, opencode) the tool was ended by signal N\n"
               "  130  interrupted (Ctrl-C)\n\n"
               "Reference: docs/cli.md (installed in share/doc/bankr-llmd).\n");
}

static int run(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "no-ask-password", no_argument, NULL, 'N' },
                {}
        };
        int c;

        /* "+": stop at the verb, so its own options are left for it. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("bankr-llm %s\n", VERSION);
                        return 0;
                case 'N':
                        arg_no_ask = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }

        if (optind >= argc) {
                help();
                return -EXIT_USAGE;
        }
        return dispatch_verb("bankr-llm", verbs, argc - optind, argv + optind);
}

int main(int argc, char *argv[]) {
        int r;

        cli_guard_stdio();
        setlocale(LC_ALL, "");
        log_set_program("bankr-llm");
        log_prefix_levels = false;

        r = run(argc, argv);
        /* The one check of stdout for every verb: a full disk, a closed or
         * broken stdout is a failure, never a silent exit 0. */
        if (cli_flush_stdout() < 0 && r == 0)
                r = -EXIT_FAIL;
        /* The only place where an exit code is positive (cli.h). */
        return r < 0 ? -r : r;
}
