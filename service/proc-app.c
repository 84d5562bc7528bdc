/* SPDX-License-Identifier: MIT */
/*
 * The app a process belongs to (see proc-app.h).
 */
#include <signal.h>

#include "app-id.h"
#include "flatpak-info.h"
#include "log.h"
#include "proc-app.h"

/* Reads /proc/PID/NAME, at most max bytes. */
static int read_proc_file(pid_t pid, const char *name, size_t max, char **ret_buf, size_t *ret_size) {
        char path[64];

        (void) snprintf(path, sizeof(path), "/proc/%i/%s", (int) pid, name);
        return read_full_file(path, max, ret_buf, ret_size);
}

int pid_flatpak_app(pid_t pid, char **ret_app_id) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        r = read_proc_file(pid, "cgroup", 64 * 1024, &buf, &size);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        r = flatpak_scope_app_id(buf, size, ret_app_id);
        if (r == 0)
                return 1;
        if (r == -ENOMEM)
                return r;
        if (r == -EINVAL)
                goto unnamed;
        buf = mfree(buf);

        r = read_proc_file(pid, "root/.flatpak-info", 64 * 1024, &buf, &size);
        if (r == -ENOENT) {
                /* No such file, or no such process any more: only the first is
                 * an answer. */
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        return -ESRCH;
                *ret_app_id = NULL;
                return 0;
        }
        if (r == -EACCES || r == -EPERM) {
                /* In our user namespace: the scope above has answered. */
                *ret_app_id = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        r = flatpak_info_app_id(buf, size, ret_app_id);
        if (r == 0)
                return 1;
        if (r == -ENOMEM)
                return r;
unnamed:
        /* A sandbox all the same; its name is not one to show. */
        *ret_app_id = strdup("(unnamed)");
        return *ret_app_id ? 1 : -ENOMEM;
}

static int pid_unit_app(pid_t pid, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        r = read_proc_file(pid, "cgroup", 64 * 1024, &buf, &size);
        if (r < 0)
                return r;
        return app_id_from_cgroup(buf, size, ret);
}

static int pid_comm(pid_t pid, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        r = read_proc_file(pid, "comm", 4096, &buf, &size);
        if (r < 0)
                return r;
        while (size > 0 && (buf[size - 1] == '\n' || buf[size - 1] == ' '))
                buf[--size] = '\0';
        if (size == 0)
                return -ENODATA;
        if (size > APP_ID_MAX)
                buf[size = APP_ID_MAX] = '\0';
        for (size_t i = 0; i < size; i++) {
                char c = buf[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-'))
                        buf[i] = '_';
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

int pid_app_id(pid_t pid, char **ret_app_id) {
        char *app = NULL;
        int r;

        r = pid_flatpak_app(pid, &app);
        if (r == -ENOMEM)
                return r;
        if (r > 0 && app_id_is_valid(app, strlen(app))) {
                *ret_app_id = app;
                return 0;
        }
        app = mfree(app);
        if (r > 0) {
                /* Sandboxed, but nameless: never mistake it for a host app. */
                *ret_app_id = strdup("flatpak-unnamed");
                return *ret_app_id ? 0 : -ENOMEM;
        }

        r = pid_unit_app(pid, &app);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                *ret_app_id = app;
                return 0;
        }

        r = pid_comm(pid, &app);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                *ret_app_id = app;
                return 0;
        }

        log_debug_errno(r, "Cannot tell the app of pid %i: %m", (int) pid);
        *ret_app_id = strdup("unknown");
        return *ret_app_id ? 0 : -ENOMEM;
}
