/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the bankr-llm verbs: connecting to the service with a
 * sentence the user can act on, mapping bus errors to documented exit codes,
 * reading D-Bus values as JSON, reading secrets without echo, and small
 * output helpers.
 */
#pragma once

#include <json-c/json.h>
#include <signal.h>
#include <systemd/sd-bus.h>

#include "bankr-names.h"
#include "bus-util.h"
#include "json-util.h"
#include "util.h"

/* Exit codes; documented in bankr-llm --help and docs/cli.md.
 *
 * The sign convention of clients/: every function returns 0 (or a
 * non-negative value it documents) on success and a negative number on
 * failure. Functions that print nothing return -errno. Functions that have
 * told the user what went wrong (cli_fail(), cli_usage(), cli_fail_bus(),
 * cli_bus(), the property readers, and every verb) return the negated exit
 * code, -EXIT_*: a caller passes it on unchanged ("if (r < 0) return r;").
 * Only main() turns it into the process's (positive) exit code. The one
 * exception is cli_exit_for_error(), a table lookup that gives the EXIT_*
 * value itself. */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,          /* anything not listed below */
        EXIT_USAGE = 2,         /* bad command line */
        EXIT_NO_SERVICE = 3,    /* no session bus, or bankr-llmd cannot be reached */
        EXIT_NO_KEY = 4,        /* no key configured */
        EXIT_UNAUTHORIZED = 5,  /* the gateway rejected the key (401/403) */
        EXIT_NO_CREDITS = 6,    /* credits exhausted (402) */
        EXIT_NOT_AUTHORIZED = 7,/* polkit said no */
        EXIT_GATEWAY = 8,       /* gateway unreachable, failing, rate limited or timed out */
        EXIT_NOT_FOUND = 9,     /* unknown model */
        EXIT_CONFIG = 10,       /* a config file we will not touch */
        EXIT_KEYRING = 11,      /* keyring unavailable or locked */
        EXIT_INTERRUPTED = 130, /* Ctrl-C */
};

/* A verb: 0, or -EXIT_* after telling the user (see the sign convention
 * above); the launchers give the tool's exit status negated. */
typedef int (*verb_func_t)(int argc, char *argv[]);

typedef struct Verb {
        const char *name;
        verb_func_t func;
        const char *summary; /* one line for the main --help */
} Verb;

/* Dispatch argv[0] among verbs; prints an error naming the valid ones. */
int dispatch_verb(const char *what, const Verb verbs[], int argc, char *argv[]);

/* Connects to the session bus. On failure prints what to do and returns
 * -EXIT_NO_SERVICE. */
int cli_bus(sd_bus **ret);

/* Prints "Failed to <what>: <message>" for a bus error (or -errno) and
 * returns the matching exit code, negated. UnknownMethod, UnknownInterface
 * and UnknownProperty from the running service mean that it is older than
 * this CLI: the sentence says so, with the service's Key.Version, and how
 * to restart it (exit code EXIT_NO_SERVICE). cli_fail() and cli_usage()
 * print their sentence and return -code and -EXIT_USAGE. */
int cli_fail_bus(const char *what, const sd_bus_error *error, int r);
int cli_fail(int code, const char *fmt, ...) _printf_(2, 3);
#define cli_usage(...) cli_fail(EXIT_USAGE, __VA_ARGS__)

/* Exit code (positive: a table lookup) for a bus error name
 * (bot.bankr.LLM1.Error.*); EXIT_FAIL for any other. */
int cli_exit_for_error(const char *name);

/* Property helpers; errors are printed, and returned as -EXIT_*. */
int cli_get_string(sd_bus *bus, const char *iface, const char *prop, char **ret);
int cli_get_bool(sd_bus *bus, const char *iface, const char *prop, bool *ret);

/* Calls a method without arguments that waits for the gateway (Refresh,
 * Validate), allowing longer than the service's own HTTP timeouts. Prints
 * nothing. */
int cli_call_gateway(sd_bus *bus, const char *iface, const char *method, sd_bus_error *error,
                     sd_bus_message **ret_reply);

/* --refresh of a verb that shows what the service holds: calls
 * IFACE.Refresh (cli_call_gateway()). 0 when it worked, or when it failed
 * with one of the error names in quiet (NULL-terminated, or NULL: none),
 * which the verb tells in its own words; else the failure, told as
 * "Failed to refresh WHAT: …" (cli_fail_bus()), -EXIT_*. */
int cli_refresh(sd_bus *bus, const char *iface, const char *what, const char *const *quiet);

/* polkit gives a person 5 minutes to type a password; wait a bit longer. */
#define CLI_INTERACTIVE_TIMEOUT_USEC (6 * 60 * USEC_PER_SEC)

/* Calls m for a method that polkit may have to ask a person about: allows
 * interactive authorization, starts pkttyagent for the duration when stdin
 * is a terminal (for when no graphical agent runs), and waits
 * CLI_INTERACTIVE_TIMEOUT_USEC. Prints nothing. */
int cli_call_interactive(sd_bus *bus, sd_bus_message *m, sd_bus_error *error, sd_bus_message **ret_reply);


/* D-Bus replies as JSON, so that every verb reads them the same way.
 *
 * cli_variant_to_json() converts the complete value at m's position: s, o
 * and g become strings; b a boolean; y, n, q, i, u, x and t integers; d a
 * number (cli_json_number()); arrays arrays; string-keyed dicts (a{sv},
 * a{sd}, …) objects; variants their contents, however nested. Anything else
 * (a future addition) is skipped and becomes NULL, not an error.
 * cli_dict_to_json() insists on a dict and so always returns an object.
 * cli_get_all() is Properties.GetAll of one interface as such an object; it
 * prints nothing, so each caller says what failed in its own words. */
int cli_variant_to_json(sd_bus_message *m, json_object **ret);
int cli_dict_to_json(sd_bus_message *m, json_object **ret);
int cli_get_all(sd_bus *bus, const char *iface, sd_bus_error *error, json_object **ret);

/* Typed reads of a member of a JSON object: NULL or def when it is absent
 * or of another type (numbers are read from doubles and integers alike). */
json_object *cli_json_get(json_object *o, const char *key, json_type type);
const char *cli_json_str(json_object *o, const char *key);
bool cli_json_bool(json_object *o, const char *key, bool def);
double cli_json_double(json_object *o, const char *key, double def);
int64_t cli_json_int(json_object *o, const char *key, int64_t def);
uint64_t cli_json_uint(json_object *o, const char *key, uint64_t def);

/* Prints o as every --json does: indented (or on one line after
 * --json=short), URLs without \/ escapes; on a terminal DEL and C1 controls
 * as \u escapes (the same JSON value). */
void cli_print_json(json_object *o);
/* --json[=short|pretty|off] (arg NULL for a bare --json or -j: pretty). Sets
 * how cli_print_json() writes; *ret_json tells whether to print JSON at all.
 * A bad value is reported; returns -EINVAL then (exit with EXIT_USAGE). */
int cli_parse_json_arg(const char *arg, bool *ret_json);
/* The -j/--json[=FORMAT] arm of a verb's getopt switch: a bad value was
 * reported by cli_parse_json_arg(), so the verb returns -EXIT_USAGE. */
#define CLI_CASE_JSON(json)                                     \
        case 'j':                                               \
                if (cli_parse_json_arg(optarg, &(json)) < 0)    \
                        return -EXIT_USAGE;                     \
                break

/* The command line of a verb that takes no arguments: only -h/--help and,
 * when ret_json is not NULL, -j/--json[=…] (cli_parse_json_arg()). optstring
 * is getopt's ("h", "hj"; a leading "+" stops at the first argument). 0
 * after printing help (the verb is done), 1 to go on, -EXIT_USAGE after
 * saying what was wrong ("NAME takes no arguments."). */
int cli_parse_no_args(int argc, char *argv[], const char *optstring, const char *name, const char *help,
                      bool *ret_json);

/* A double as the shortest decimal that reads back the same (12.5, 0.1, 1;
 * not 0.10000000000000001 or 1.0 as json-c would print it); NULL (JSON
 * null) when not finite. */
json_object *cli_json_number(double d);

/* "just now", "12 min ago", "3 h ago", "2 days ago", "never" (for 0), from
 * µs since the epoch. */
void cli_format_age(char *buf, size_t size, uint64_t updated_at);


/* A dollar amount as people write it: "25", "25.50", "$25" (digits and at
 * most one dot), in the C locale whatever LC_NUMERIC says. -EINVAL for
 * anything else, such as exponents, hex, signs, spaces, inf or nan. */
int cli_parse_usd(const char *s, double *ret);

/* Reads a secret: from stdin when it is not a terminal (one trailing newline
 * dropped), else with a no-echo prompt on the terminal. */
int cli_read_secret(const char *prompt, char **ret);

/* Output failures, checked in one place. cli_guard_stdio() runs first in
 * main(): a closed fd 0, 1 or 2 gets /dev/null (close-on-exec, so a launched
 * tool sees them closed again) so that no socket can take its number, and a
 * closed stdout becomes a stream whose every write fails with EBADF.
 * cli_flush_stdout() flushes stdout and checks its error flag; the first
 * failure is reported once on stderr ("Failed to write output: No space left
 * on device") and returned as -errno on this and every later call. EPIPE is
 * not reported (the reader went away on purpose, as with "| head"). main()
 * calls it after every verb and turns a failure into exit code 1 (a verb's
 * own non-zero code is kept). */
void cli_guard_stdio(void);
int cli_flush_stdout(void);

/* Gateway-controlled text (an error message, a model's id or name) as it may
 * be written to f: when f is a terminal, with control sequences made visible
 * and inert (common/term-sanitize.h); else s itself. A copy, if one was
 * needed, is left in *buf for the caller to free. Never NULL for non-NULL s;
 * NULL stays NULL. */
const char *cli_term_safe(FILE *f, const char *s, char **buf);

/* A token for the local endpoint (Endpoint.CreateToken; verb-token.c).
 * lifetime "connection", "expiring" (expires_s) or "persistent" (asks
 * polkit); budget_usd 0 and models NULL: none. Errors are printed; returns
 * -exit code. *ret_token is secret: free it with erase_and_free(). */
typedef struct TokenRequest {
        const char *app;
        const char *lifetime;
        uint32_t expires_s;
        double budget_usd;
        char **models;
} TokenRequest;
int cli_endpoint_token(sd_bus *bus, const TokenRequest *req, char **ret_token, char **ret_id);
/* "90", "90s", "30m", "12h", "7d" → seconds (1 to UINT32_MAX); -EINVAL, -ERANGE. */
int cli_parse_duration(const char *s, uint32_t *ret);

/* Adds each of sigs to mask, except those ignored when we were started
 * (nohup ignores SIGHUP, a shell's background job SIGINT and SIGQUIT):
 * those stay ignored, by us and by whatever we exec, as with exec itself. */
void cli_sigaddset_unignored(sigset_t *mask, const int sigs[], size_t n);

/* Process-wide options of the top-level command. */
extern bool arg_no_ask;

/* Verbs. */
int verb_status(int argc, char *argv[]);
int verb_key(int argc, char *argv[]);
int verb_config(int argc, char *argv[]);
int verb_login(int argc, char *argv[]);
int verb_models(int argc, char *argv[]);         /* verb-models.c */
int verb_credits(int argc, char *argv[]);        /* verb-credits.c; dispatches add/auto below */
int verb_credits_add(int argc, char *argv[]);    /* verb-topup.c */
int verb_credits_auto(int argc, char *argv[]);   /* verb-topup.c */
int verb_key_validate(int argc, char *argv[]);   /* verb-key.c */
int verb_key_reveal(int argc, char *argv[]);     /* verb-key.c */
int verb_chat(int argc, char *argv[]);           /* verb-chat.c */
int verb_image(int argc, char *argv[]);          /* verb-image.c */
int verb_setup(int argc, char *argv[]);          /* verb-setup.c */
int verb_claude(int argc, char *argv[]);         /* verb-setup.c */
int verb_opencode(int argc, char *argv[]);       /* verb-setup.c */
int verb_token(int argc, char *argv[]);          /* verb-token.c */
int verb_endpoint(int argc, char *argv[]);       /* verb-endpoint.c */
int verb_usage(int argc, char *argv[]);          /* verb-usage.c */
int verb_budget(int argc, char *argv[]);         /* verb-usage.c */

