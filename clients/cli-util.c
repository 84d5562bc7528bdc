/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <termios.h>

#include "cli.h"
#include "log.h"

bool arg_no_ask = false;

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
        return EXIT_USAGE;
}

int cli_usage(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_USAGE;
}

int cli_fail(int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
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
        { "bot.bankr.LLM1.Error.NoKey", EXIT_NO_KEY },
        { "bot.bankr.LLM1.Error.Unauthorized", EXIT_UNAUTHORIZED },
        { "bot.bankr.LLM1.Error.PaymentRequired", EXIT_NO_CREDITS },
        { "bot.bankr.LLM1.Error.NotAuthorized", EXIT_NOT_AUTHORIZED },
        { "bot.bankr.LLM1.Error.GatewayUnavailable", EXIT_GATEWAY },
        { "bot.bankr.LLM1.Error.GatewayError", EXIT_GATEWAY },
        { "bot.bankr.LLM1.Error.RateLimited", EXIT_GATEWAY },
        { "bot.bankr.LLM1.Error.Timeout", EXIT_GATEWAY },
        { "bot.bankr.LLM1.Error.ModelNotFound", EXIT_NOT_FOUND },
        { "bot.bankr.LLM1.Error.InvalidConfig", EXIT_CONFIG },
        { "bot.bankr.LLM1.Error.KeyringUnavailable", EXIT_KEYRING },
        { "bot.bankr.LLM1.Error.Cancelled", EXIT_INTERRUPTED },
        { "org.freedesktop.DBus.Error.InvalidArgs", EXIT_USAGE },
        { "org.freedesktop.DBus.Error.ServiceUnknown", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.NameHasNoOwner", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.Spawn.ChildExited", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.Spawn.ExecFailed", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.NoReply", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.UnknownMethod", EXIT_NO_SERVICE },
        { "org.freedesktop.DBus.Error.UnknownInterface", EXIT_NO_SERVICE },
};

int cli_exit_for_error(const char *name) {
        if (name)
                for (size_t i = 0; i < ELEMENTSOF(error_codes); i++)
                        if (streq(name, error_codes[i].name))
                                return error_codes[i].code;
        return EXIT_FAIL;
}

int cli_fail_bus(const char *what, const sd_bus_error *error, int r) {
        int code = EXIT_FAIL;

        if (error && sd_bus_error_is_set(error)) {
                code = cli_exit_for_error(error->name);
                if (code == EXIT_NO_SERVICE) {
                        fprintf(stderr, "Failed to %s: the bankr-llmd service cannot be reached (%s).\n"
                                        "Check that bankr-llmd is installed (its D-Bus activation file is "
                                        "bot.bankr.LLM1.service) or start it by hand.\n",
                                what, error->message ?: error->name);
                        return code;
                }
                fprintf(stderr, "Failed to %s: %s\n", what, error->message ?: error->name);
                return code;
        }
        if (r == -ETIMEDOUT)
                fprintf(stderr, "Failed to %s: bankr-llmd did not answer in time.\n", what);
        else
                fprintf(stderr, "Failed to %s: %s\n", what, strerror(r < 0 ? -r : EIO));
        return r == -ETIMEDOUT || r == -ECONNRESET || r == -ENOTCONN ? EXIT_NO_SERVICE : EXIT_FAIL;
}

int cli_get_string(sd_bus *bus, const char *iface, const char *prop, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, OBJECT_PATH, iface, prop, &error, ret);
        if (r < 0) {
                _cleanup_free_ char *what = NULL;
                if (asprintf(&what, "read %s.%s", iface, prop) < 0)
                        what = NULL;
                return -cli_fail_bus(what ?: "read a property", &error, r);
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
                return -cli_fail_bus("read a property", &error, r);
        *ret = b;
        return 0;
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
