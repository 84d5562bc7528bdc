/* SPDX-License-Identifier: MIT */
/*
 * The shared pieces of cli.h: verb dispatch, the bus connection and the
 * sentence and exit code for each bus error (including a service older
 * than this CLI), property reads, JSON from D-Bus values, dollar amounts,
 * secrets without echo, pkttyagent for polkit, and the stdout checks.
 */
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>

#include <inttypes.h>
#include <time.h>

#include "cli.h"
#include "log.h"
#include "term-sanitize.h"

#define AGENT_READY_TIMEOUT_MSEC 5000

bool arg_no_ask = false;

static int stdout_errno = 0;

static ssize_t closed_write(void *cookie, const char *buf, size_t size) {
        errno = EBADF;
        return -1;
}

void cli_guard_stdio(void) {
        for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
                int null;

                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                null = open("/dev/null", (fd == STDIN_FILENO ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
                if (null < 0)
                        continue;
                if (null != fd) {
                        (void) dup3(null, fd, O_CLOEXEC);
                        close(null);
                }
                if (fd == STDOUT_FILENO) {
                        FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t) { .write = closed_write });
                        if (f)
                                stdout = f;
                }
        }
}

int cli_flush_stdout(void) {
        if (stdout_errno != 0)
                return -stdout_errno;
        errno = 0;
        if (fflush(stdout) == 0 && !ferror(stdout))
                return 0;
        stdout_errno = errno > 0 ? errno : EIO;
        if (stdout_errno != EPIPE)
                fprintf(stderr, "Failed to write output: %s\n", strerror(stdout_errno));
        return -stdout_errno;
}

int dispatch_verb(const char *what, const Verb verbs[], int argc, char *argv[]) {
        if (argc < 1 || isempty(argv[0]))
                return cli_usage("%s needs a command. See --help.", what);
        for (const Verb *v = verbs; v->name; v++)
                if (streq(v->name, argv[0]))
                        return v->func(argc, argv);

        fprintf(stderr, "Unknown command \"%s\" for %s. Valid commands:", argv[0], what);
        for (const Verb *v = verbs; v->name; v++)
                fprintf(stderr, " %s", v->name);
        fputc('\n', stderr);
        return -EXIT_USAGE;
}

const char *cli_term_safe(FILE *f, const char *s, char **buf) {
        *buf = NULL;
        if (!s || term_text_is_safe(s, strlen(s)) || !isatty(fileno(f)))
                return s;
        *buf = term_sanitize_string(s);
        return *buf ?: "(unprintable text)";
}

int cli_fail(int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -code;
}

int cli_bus(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_user(&bus);
        if (r == -ENOMEDIUM)
                return cli_fail(EXIT_NO_SERVICE,
                                "Failed to connect to the session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are not set.\n"
                                "Run bankr-llm inside your desktop session, or start one with dbus-run-session.");
        if (r < 0)
                return cli_fail(EXIT_NO_SERVICE,
                                "Failed to connect to the session bus: %s.\n"
                                "Is a D-Bus session running? Check DBUS_SESSION_BUS_ADDRESS.", strerror(-r));
        *ret = bus;
        return 0;
}

static const struct {
        const char *name;
        int code;
} error_codes[] = {
        { BUS_ERROR_NO_KEY, EXIT_NO_KEY },
        { BUS_ERROR_UNAUTHORIZED, EXIT_UNAUTHORIZED },
        { BUS_ERROR_PAYMENT_REQUIRED, EXIT_NO_CREDITS },
        { BUS_ERROR_DAILY_BUDGET_EXCEEDED, EXIT_NO_CREDITS },
        { BUS_ERROR_NOT_AUTHORIZED, EXIT_NOT_AUTHORIZED },
        { BUS_ERROR_GATEWAY_UNAVAILABLE, EXIT_GATEWAY },
        { BUS_ERROR_GATEWAY_ERROR, EXIT_GATEWAY },
        { BUS_ERROR_RATE_LIMITED, EXIT_GATEWAY },
        { BUS_ERROR_TIMEOUT, EXIT_GATEWAY },
        { BUS_ERROR_MODEL_NOT_FOUND, EXIT_NOT_FOUND },
        { BUS_ERROR_MODEL_RETIRED, EXIT_NOT_FOUND },
        { BUS_ERROR_INVALID_CONFIG, EXIT_CONFIG },
        { BUS_ERROR_KEYRING_UNAVAILABLE, EXIT_KEYRING },
        { BUS_ERROR_CANCELLED, EXIT_INTERRUPTED },
        { "org.freedesktop.DBus.Error.InvalidArgs", EXIT_USAGE },
        { "org.freedesktop.DBus.Error.ServiceUnknown", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.NameHasNoOwner", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.Spawn.ChildExited", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.Spawn.ExecFailed", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.NoReply", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.UnknownMethod", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.UnknownInterface", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.UnknownProperty", EXIT_NO_SERVICE },
};

int cli_exit_for_error(const char *name) {
        if (name)
                for (size_t i = 0; i < ELEMENTSOF(error_codes); i++)
                        if (streq(name, error_codes[i].name))
                                return error_codes[i].code;
        return EXIT_FAIL;
}

static bool error_is_unknown_member(const char *name) {
        return streq_ptr(name, "org.freedesktop.DBus.Error.UnknownMethod") ||
                streq_ptr(name, "org.freedesktop.DBus.Error.UnknownInterface") ||
                streq_ptr(name, "org.freedesktop.DBus.Error.UnknownProperty");
}

/* A word of an sd-bus error message without its quotes and full stop. */
static char *bare_word(char *w) {
        size_t n;

        if (*w == '\'')
                w++;
        n = strlen(w);
        while (n > 0 && (w[n - 1] == '.' || w[n - 1] == '\''))
                w[--n] = '\0';
        return w;
}

/* What the service did not know, from sd-bus's wording ("Unknown method
 * Validate or interface bot.bankr.LLM1.Key.", "Unknown interface X or
 * property Y.", "Unknown interface 'X'."): "Key.Validate", "the interface
 * Models", or NULL for any other wording. */
static char *unknown_member_of(const char *message) {
        char a[128], b[128];
        const char *iface, *member;
        char *ret;

        if (!message)
                return NULL;
        if (sscanf(message, "Unknown method %127s or interface %127s", a, b) == 2)
                member = bare_word(a), iface = bare_word(b);
        else if (sscanf(message, "Unknown interface %127s or property %127s", b, a) == 2)
                member = bare_word(a), iface = bare_word(b);
        else if (sscanf(message, "Unknown interface %127s", b) == 1)
                member = NULL, iface = bare_word(b);
        else
                return NULL;
        if (startswith(iface, "bot.bankr.LLM1."))
                iface += strlen("bot.bankr.LLM1.");
        if ((member ? asprintf(&ret, "%s.%s", iface, member) : asprintf(&ret, "the interface %s", iface)) < 0)
                return NULL;
        return ret;
}

/* The Version property of the running service, on a connection of its own
 * (the caller's may be in any state); NULL if it has none (an old one). */
static char *service_version(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        char *v = NULL;

        if (sd_bus_open_user(&bus) < 0)
                return NULL;
        (void) sd_bus_set_method_call_timeout(bus, 5 * USEC_PER_SEC);
        if (sd_bus_get_property_string(bus, BUS_NAME, OBJECT_PATH, IFACE("Key"), "Version", NULL, &v) < 0)
                return NULL;
        return v;
}

int cli_fail_bus(const char *what, const sd_bus_error *error, int r) {
        if (error && sd_bus_error_is_set(error)) {
                /* May quote the gateway. */
                _cleanup_free_ char *buf = NULL;
                const char *message = cli_term_safe(stderr, error->message ?: error->name, &buf);
                int code = cli_exit_for_error(error->name);

                /* Its message is not quoted: in another wording than
                 * sd-bus's it may be anything (dbus-python sends a
                 * traceback). */
                if (error_is_unknown_member(error->name)) {
                        /* The service runs, but is not the one this CLI was
                         * built with: not a missing installation. */
                        _cleanup_free_ char *member = unknown_member_of(error->message), *safe_member = NULL;
                        _cleanup_free_ char *version = service_version(), *safe_version = NULL;
                        _cleanup_free_ char *version_text = NULL;

                        if (version && asprintf(&version_text, "version %s",
                                                cli_term_safe(stderr, version, &safe_version)) < 0)
                                version_text = NULL;
                        fprintf(stderr, "Failed to %s: the running bankr-llmd (%s) does not know %s: it is older "
                                        "than this bankr-llm (version %s); restart it (systemctl --user restart "
                                        "bankr-llmd) or update it.\n",
                                what, version_text ?: "an older version",
                                member ? cli_term_safe(stderr, member, &safe_member) :
                                streq(error->name, "org.freedesktop.DBus.Error.UnknownMethod") ? "this method" :
                                streq(error->name, "org.freedesktop.DBus.Error.UnknownInterface") ? "this interface" :
                                "this property", VERSION);
                        return -code;
                }
                if (code == EXIT_NO_SERVICE) {
                        fprintf(stderr, "Failed to %s: the bankr-llmd service cannot be reached (%s).\n"
                                        "Check that bankr-llmd is installed (its D-Bus activation file is "
                                        "bot.bankr.LLM1.service) or start it by hand.\n",
                                what, message);
                        return -code;
                }
                fprintf(stderr, "Failed to %s: %s\n", what, message);
                return -code;
        }
        if (r == -ETIMEDOUT)
                fprintf(stderr, "Failed to %s: bankr-llmd did not answer in time.\n", what);
        else
                fprintf(stderr, "Failed to %s: %s\n", what, strerror(r < 0 ? -r : EIO));
        return r == -ETIMEDOUT || r == -ECONNRESET || r == -ENOTCONN ? -EXIT_NO_SERVICE : -EXIT_FAIL;
}

int cli_get_string(sd_bus *bus, const char *iface, const char *prop, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, OBJECT_PATH, iface, prop, &error, ret);
        if (r < 0) {
                _cleanup_free_ char *what = NULL;
                if (asprintf(&what, "read %s.%s", iface, prop) < 0)
                        what = NULL;
                return cli_fail_bus(what ?: "read a property", &error, r);
        }
        return 0;
}

int cli_get_bool(sd_bus *bus, const char *iface, const char *prop, bool *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int b, r;

        r = sd_bus_get_property(bus, BUS_NAME, OBJECT_PATH, iface, prop, &error, &reply, "b");
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &b);
        if (r < 0)
                return cli_fail_bus("read a property", &error, r);
        *ret = b;
        return 0;
}

/* Characters checked first: strtod() alone would take " 1e3", "0x10", "-1"
 * and "inf". */
int cli_parse_usd(const char *s, double *ret) {
        locale_t c_locale;
        const char *p;
        char *end;
        double v;
        bool digits = false, dot = false;

        if (!s)
                return -EINVAL;
        if (s[0] == '$')
                s++;
        for (p = s; *p; p++) {
                if (*p >= '0' && *p <= '9')
                        digits = true;
                else if (*p == '.' && !dot)
                        dot = true;
                else
                        return -EINVAL;
        }
        if (!digits)
                return -EINVAL;
        c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
        if (!c_locale)
                return -ENOMEM;
        errno = 0;
        v = strtod_l(s, &end, c_locale);
        freelocale(c_locale);
        if (errno != 0 || *end != 0 || !isfinite(v))
                return -EINVAL;
        *ret = v;
        return 0;
}

int cli_call_gateway(sd_bus *bus, const char *iface, const char *method, sd_bus_error *error,
                     sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, iface, method);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 60 * USEC_PER_SEC, error, ret_reply);
}

int cli_refresh(sd_bus *bus, const char *iface, const char *what, const char *const *quiet) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *sentence = NULL;
        int r;

        r = cli_call_gateway(bus, iface, "Refresh", &error, NULL);
        if (r >= 0)
                return 0;
        for (const char *const *q = quiet; q && *q; q++)
                if (sd_bus_error_has_name(&error, *q))
                        return 0;
        if (asprintf(&sentence, "refresh %s", what) < 0)
                return cli_fail(EXIT_FAIL, "Out of memory.");
        return cli_fail_bus(sentence, &error, r);
}

/* Starts pkttyagent for our process when we are on a terminal, so polkit
 * can ask for a password right here if no graphical agent is running. Its
 * absence is not an error: a graphical agent may answer, or polkit says no. */
static pid_t agent_open(void) {
        int fds[2];
        pid_t pid;
        char buf[1];

        if (!isatty(STDIN_FILENO) || access("/usr/bin/pkttyagent", X_OK) < 0)
                return 0;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return 0;

        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return 0;
        }
        if (pid == 0) {
                char pid_arg[32], fd_arg[32];
                int fd = fds[1];

                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                close(fds[0]);
                /* The one fd it must inherit: pkttyagent closes it once registered. */
                if (fd != 3) {
                        if (dup2(fd, 3) < 0)
                                _exit(EXIT_FAIL);
                        fd = 3;
                } else
                        (void) fcntl(fd, F_SETFD, 0);
                (void) snprintf(pid_arg, sizeof pid_arg, "%d", (int) getppid());
                (void) snprintf(fd_arg, sizeof fd_arg, "%d", fd);
                execl("/usr/bin/pkttyagent", "pkttyagent", "--process", pid_arg, "--notify-fd", fd_arg, "--fallback",
                      (char *) NULL);
                _exit(EXIT_FAIL);
        }

        close(fds[1]);
        /* Wait until it has registered (or died), so polkit finds it. */
        struct pollfd p = { .fd = fds[0], .events = POLLIN };
        if (poll(&p, 1, AGENT_READY_TIMEOUT_MSEC) > 0)
                (void) read(fds[0], buf, sizeof buf);
        close(fds[0]);
        return pid;
}

void cli_sigaddset_unignored(sigset_t *mask, const int sigs[], size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct sigaction sa;

                if (sigaction(sigs[i], NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
                        continue;
                sigaddset(mask, sigs[i]);
        }
}

static void agent_close(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGTERM);
        (void) waitpid(pid, NULL, 0);
}

int cli_call_interactive(sd_bus *bus, sd_bus_message *m, sd_bus_error *error, sd_bus_message **ret_reply) {
        pid_t agent = 0;
        int r;

        r = sd_bus_message_set_allow_interactive_authorization(m, !arg_no_ask);
        if (r < 0)
                return r;
        if (!arg_no_ask)
                agent = agent_open();
        r = sd_bus_call(bus, m, CLI_INTERACTIVE_TIMEOUT_USEC, error, ret_reply);
        agent_close(agent);
        return r;
}

json_object *cli_json_number(double d) {
        char buf[32];

        if (!isfinite(d))
                return NULL;
        for (int prec = 15; prec <= 17; prec++) {
                (void) snprintf(buf, sizeof buf, "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        return json_object_new_double_s(d, buf);
}

static bool json_short = false;

int cli_parse_json_arg(const char *arg, bool *ret_json) {
        if (!arg || streq(arg, "pretty")) {
                json_short = false;
                *ret_json = true;
        } else if (streq(arg, "short")) {
                json_short = true;
                *ret_json = true;
        } else if (streq(arg, "off"))
                *ret_json = false;
        else {
                (void) cli_usage("Invalid --json value \"%s\": expected short, pretty or off.", arg);
                return -EINVAL;
        }
        return 0;
}

int cli_parse_no_args(int argc, char *argv[], const char *optstring, const char *name, const char *help,
                      bool *ret_json) {
        static const struct option help_only[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        static const struct option with_json[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, optstring, ret_json ? with_json : help_only, NULL)) >= 0)
                switch (c) {
                case 'h':
                        fputs(help, stdout);
                        return 0;
                case 'j':
                        if (ret_json && cli_parse_json_arg(optarg, ret_json) >= 0)
                                break;
                        return -EXIT_USAGE;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc)
                return cli_usage("%s takes no arguments.", name);
        return 1;
}

void cli_print_json(json_object *o) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
        const char *s;

        flags |= json_short ? JSON_C_TO_STRING_PLAIN : JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED;
        s = json_object_to_json_string_ext(o, flags);

        /* json-c escapes C0 controls but writes DEL and the C1 controls
         * (U+0080-U+009F) raw, which a terminal may execute: on one, they
         * are written as \u escapes instead, the same JSON value. */
        if (isatty(STDOUT_FILENO))
                for (const char *p = s; *p; p++) {
                        unsigned char c = (unsigned char) *p;
                        if (c == 0x7f)
                                fputs("\\u007f", stdout);
                        else if (c == 0xc2 && (unsigned char) p[1] >= 0x80 && (unsigned char) p[1] < 0xa0) {
                                printf("\\u%04x", (unsigned char) p[1]);
                                p++;
                        } else
                                fputc(c, stdout);
                }
        else
                fputs(s, stdout);
        fputc('\n', stdout);
        (void) cli_flush_stdout();
}

/* The elements of the array m has just entered, up to its end. For a dict,
 * entry is the signature inside its braces ("sv"). */
static int array_to_json(sd_bus_message *m, const char *entry, json_object *o) {
        int r;

        for (;;) {
                _cleanup_(json_object_putp) json_object *v = NULL;
                const char *key;

                if (!entry) {
                        r = sd_bus_message_at_end(m, false);
                        if (r != 0)
                                return r < 0 ? r : 0;
                        r = cli_variant_to_json(m, &v);
                        if (r < 0)
                                return r;
                        if (json_object_array_add(o, v) < 0)
                                return -ENOMEM;
                        TAKE_PTR(v);
                        continue;
                }

                r = sd_bus_message_enter_container(m, 'e', entry);
                if (r <= 0)
                        return r;
                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;
                r = cli_variant_to_json(m, &v);
                if (r < 0)
                        return r;
                if (json_object_object_add(o, key, v) < 0)
                        return -ENOMEM;
                TAKE_PTR(v);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
}

int cli_variant_to_json(sd_bus_message *m, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *contents;
        char type;
        union {
                const char *s;
                int b;
                int64_t i;
                uint64_t t;
                double d;
        } v;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;

        switch (type) {
        case 'v':
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r >= 0)
                        r = cli_variant_to_json(m, &o);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                break;

        case 'a': {
                /* "{sv}" → "sv"; dicts keyed by anything but strings are not used. */
                char entry[64] = "";
                bool dict = contents[0] == '{';

                if (dict) {
                        size_t l = strlen(contents);
                        if (l < 4 || l - 2 >= sizeof entry || contents[1] != 's')
                                goto skip;
                        memcpy(entry, contents + 1, l - 2);
                }
                o = dict ? json_object_new_object() : json_object_new_array();
                if (!o)
                        return -ENOMEM;
                r = sd_bus_message_enter_container(m, 'a', contents);
                if (r >= 0)
                        r = array_to_json(m, dict ? entry : NULL, o);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                break;
        }

        case 'y':
        case 'n':
        case 'q':
        case 'i':
        case 'u':
        case 'x':
                r = bus_read_integer(m, type, &v.i);
                if (r < 0)
                        return r;
                o = json_object_new_int64(v.i);
                if (!o)
                        return -ENOMEM;
                break;

        case 's':
        case 'o':
        case 'g':
        case 'b':
        case 't': /* all of it: bus_read_integer() would stop at INT64_MAX */
        case 'd':
                r = sd_bus_message_read_basic(m, type, &v);
                if (r < 0)
                        return r;
                switch (type) {
                case 'b':
                        o = json_object_new_boolean(v.b);
                        break;
                case 't':
                        o = json_object_new_uint64(v.t);
                        break;
                case 'd':
                        /* Not finite: JSON has no such number, so null. */
                        *ret = cli_json_number(v.d);
                        return 0;
                default:
                        o = json_object_new_string(v.s);
                }
                if (!o)
                        return -ENOMEM;
                break;

        default:
        skip:
                /* Anything else (a future addition) is skipped, not fatal. */
                r = sd_bus_message_skip(m, (char[]) { type, 0 });
                if (r < 0)
                        return r;
                break;
        }

        *ret = TAKE_PTR(o);
        return 0;
}

int cli_dict_to_json(sd_bus_message *m, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0 || type != 'a' || !startswith(contents, "{s"))
                return -EBADMSG;
        r = cli_variant_to_json(m, &o);
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        *ret = TAKE_PTR(o);
        return 0;
}

int cli_get_all(sd_bus *bus, const char *iface, sd_bus_error *error, json_object **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "GetAll", error, &reply,
                               "s", iface);
        if (r < 0)
                return r;
        return cli_dict_to_json(reply, ret);
}

json_object *cli_json_get(json_object *o, const char *key, json_type type) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

const char *cli_json_str(json_object *o, const char *key) {
        return json_object_get_string(cli_json_get(o, key, json_type_string));
}

bool cli_json_bool(json_object *o, const char *key, bool def) {
        json_object *v = cli_json_get(o, key, json_type_boolean);
        return v ? json_object_get_boolean(v) : def;
}

/* A number of either JSON type, or NULL. */
static json_object *json_get_number(json_object *o, const char *key) {
        return cli_json_get(o, key, json_type_double) ?: cli_json_get(o, key, json_type_int);
}

double cli_json_double(json_object *o, const char *key, double def) {
        json_object *v = json_get_number(o, key);
        return v ? json_object_get_double(v) : def;
}

int64_t cli_json_int(json_object *o, const char *key, int64_t def) {
        json_object *v = json_get_number(o, key);
        return v ? json_object_get_int64(v) : def;
}

uint64_t cli_json_uint(json_object *o, const char *key, uint64_t def) {
        json_object *v = json_get_number(o, key);
        return v ? json_object_get_uint64(v) : def;
}

int cli_read_secret(const char *prompt, char **ret) {
        _cleanup_erase_ char *line = NULL;
        size_t cap = 0;
        ssize_t n;

        if (isatty(STDIN_FILENO)) {
                struct termios old, quiet;
                bool restore = false;

                fputs(prompt, stderr);
                fflush(stderr);
                if (tcgetattr(STDIN_FILENO, &old) == 0) {
                        quiet = old;
                        quiet.c_lflag &= ~(tcflag_t) ECHO;
                        quiet.c_lflag |= ECHONL;
                        restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
                }
                n = getline(&line, &cap, stdin);
                if (restore)
                        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        } else {
                /* Whole stdin, so a key with an accidental inner newline is
                 * refused by the service instead of silently cut. */
                FILE *f = open_memstream(&line, &cap);
                char buf[4096];
                size_t k;
                if (!f)
                        return -ENOMEM;
                n = 0;
                while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) {
                        fwrite(buf, 1, k, f);
                        n += (ssize_t) k;
                        if (n > 64 * 1024)
                                break;
                }
                explicit_bzero(buf, sizeof buf);
                fclose(f);
        }
        if (n <= 0 || !line)
                return -ENODATA;
        size_t l = strlen(line);
        if (l > 0 && line[l - 1] == '\n')
                line[--l] = 0;
        if (l > 0 && line[l - 1] == '\r')
                line[--l] = 0;
        *ret = TAKE_PTR(line);
        return 0;
}

void cli_format_age(char *buf, size_t size, uint64_t updated_at) {
        uint64_t now = (uint64_t) time(NULL) * USEC_PER_SEC, s;

        if (updated_at == 0) {
                (void) snprintf(buf, size, "never");
                return;
        }
        s = now > updated_at ? (now - updated_at) / USEC_PER_SEC : 0;
        if (s < 60)
                (void) snprintf(buf, size, "just now");
        else if (s < 2 * 3600)
                (void) snprintf(buf, size, "%" PRIu64 " min ago", s / 60);
        else if (s < 2 * 86400)
                (void) snprintf(buf, size, "%" PRIu64 " h ago", s / 3600);
        else
                (void) snprintf(buf, size, "%" PRIu64 " days ago", s / 86400);
}
