/* SPDX-License-Identifier: MIT */
/*
 * Terminal lookup and posix_spawn for bankr-llm-notify's actions. See
 * notify-spawn.h.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>

#include "notify-spawn.h"
#include "util.h"

extern char **environ;

/* Tried in this order. xdg-terminal-exec is the emerging standard for "the
 * user's terminal", x-terminal-emulator the Debian administrator's choice;
 * then the common desktop terminals, xterm last. The second column is the
 * option after which the rest of the command line is the command to run
 * (NULL: the command follows directly). */
static const struct {
        const char *name;
        const char *exec_option;
} terminal_table[] = {
        { "xdg-terminal-exec",  NULL   },
        { "x-terminal-emulator", "-e"  },
        { "gnome-terminal",     "--"   },
        { "konsole",            "-e"   },
        { "xfce4-terminal",     "-x"   },
        { "mate-terminal",      "-x"   },
        { "foot",               NULL   },
        { "alacritty",          "-e"   },
        { "kitty",              NULL   },
        { "xterm",              "-e"   },
};

int find_executable(const char *name, char **ret) {
        const char *path;

        if (isempty(name))
                return -EINVAL;

        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return -errno;
                char *c = strdup(name);
                if (!c)
                        return -ENOMEM;
                *ret = c;
                return 0;
        }

        path = getenv("PATH");
        if (isempty(path))
                path = "/usr/local/bin:/usr/bin:/bin";

        for (const char *p = path;;) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *candidate = NULL;

                /* An empty element means the current directory: not for a
                 * session agent, skip it. */
                if (n > 0) {
                        if (asprintf(&candidate, "%.*s/%s", (int) n, p, name) < 0)
                                return -ENOMEM;
                        if (access(candidate, X_OK) == 0) {
                                *ret = TAKE_PTR(candidate);
                                return 0;
                        }
                }
                if (!p[n])
                        break;
                p += n + 1;
        }

        return -ENOENT;
}

/* Keeps the window open after the command ends so its output can be read;
 * the command arrives as "$@", never spliced into the script. */
static const char keep_open_script[] =
        "\"$@\"; status=$?; "
        "printf '\\n%s' 'Press Enter to close this window. '; "
        "read -r _; exit $status";

int terminal_command(char *const *command, char ***ret_argv) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *terminal = NULL;
        const char *option = NULL;
        int r = -ENOENT;

        if (!command || !command[0])
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(terminal_table); i++) {
                r = find_executable(terminal_table[i].name, &terminal);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0) {
                        option = terminal_table[i].exec_option;
                        break;
                }
        }
        if (r < 0)
                return -ENOENT;

        if (strv_extend(&argv, terminal) < 0 ||
            (option && strv_extend(&argv, option) < 0) ||
            strv_extend(&argv, "/bin/sh") < 0 ||
            strv_extend(&argv, "-c") < 0 ||
            strv_extend(&argv, keep_open_script) < 0 ||
            strv_extend(&argv, "sh") < 0)
                return -ENOMEM;
        for (char *const *c = command; *c; c++)
                if (strv_extend(&argv, *c) < 0)
                        return -ENOMEM;

        *ret_argv = TAKE_PTR(argv);
        return 0;
}

int spawn_detached(char *const *argv, pid_t *ret_pid) {
        posix_spawnattr_t attr;
        sigset_t none;
        pid_t pid;
        int r;

        if (!argv || !argv[0])
                return -EINVAL;

        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;

        /* We block SIGCHLD, SIGTERM and SIGINT for sd-event; the child must
         * not inherit that. A session of its own keeps it out of our
         * process group (a Ctrl-C on us is not meant for the terminal). */
        sigemptyset(&none);
        r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
        if (r == 0)
                r = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;

        *ret_pid = pid;
        return 0;
}
