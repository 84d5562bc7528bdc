/* SPDX-License-Identifier: MIT */
/* Unit names and /proc/PID/cgroup → desktop app id (common/app-id.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app-id.h"

static int failures;

static void unit(const char *u, int want_r, const char *want_id) {
        char *id = NULL;
        int r = app_id_from_unit(u, strlen(u), &id);

        if (r != want_r || (want_id && (!id || strcmp(id, want_id) != 0)) || (!want_id && id)) {
                fprintf(stderr, "FAIL unit %s\n  got %d \"%s\", want %d \"%s\"\n", u, r, id ? id : "(null)", want_r,
                        want_id ? want_id : "(null)");
                failures++;
        }
        free(id);
}

static void cgroup(const char *text, int want_r, const char *want_id) {
        char *id = NULL;
        int r = app_id_from_cgroup(text, strlen(text), &id);

        if (r != want_r || (want_id && (!id || strcmp(id, want_id) != 0))) {
                fprintf(stderr, "FAIL cgroup %s\n  got %d \"%s\", want %d \"%s\"\n", text, r, id ? id : "(null)",
                        want_r, want_id ? want_id : "(null)");
                failures++;
        }
        free(id);
}

int main(void) {
        /* Scopes: app[-<launcher>]-<ApplicationID>-<RANDOM>.scope */
        unit("app-gnome-org.gnome.Terminal-1234.scope", 0, "org.gnome.Terminal");
        unit("app-flatpak-org.x.Y-123.scope", 0, "org.x.Y");
        unit("app-org.kde.konsole-2390.scope", 0, "org.kde.konsole");
        unit("app-gnome-org.gnome.Evolution\\x2dalarm\\x2dnotify-2437.scope", 0, "org.gnome.Evolution-alarm-notify");
        unit("app-gnome-firefox-a1b2c3.scope", 0, "firefox");
        /* Services: app[-<launcher>]-<ApplicationID>[@<RANDOM>].service */
        unit("app-org.kde.konsole@12.service", 0, "org.kde.konsole");
        unit("app-gnome-org.gnome.Nautilus@0a1b.service", 0, "org.gnome.Nautilus");
        unit("app-org.gnome.Calculator.service", 0, "org.gnome.Calculator");
        unit("app-kde-org.kde.dolphin.service", 0, "org.kde.dolphin");
        /* Not this scheme. */
        unit("session-2.scope", -ENODATA, NULL);
        unit("gnome-terminal-server.service", -ENODATA, NULL);
        unit("app.slice", -ENODATA, NULL);
        unit("app-.scope", -ENODATA, NULL);
        unit("app-org.x.Y.scope", -ENODATA, NULL);   /* a scope needs -RANDOM */
        unit("app-org.x.Y-.scope", -ENODATA, NULL);
        unit("app-a-b-c-1.scope", -ENODATA, NULL);   /* two raw dashes in launcher-id */
        unit("app--x-1.scope", -ENODATA, NULL);
        unit("app-x-1.socket", -ENODATA, NULL);
        unit("", -ENODATA, NULL);
        /* Escapes that do not give a well-formed id. */
        unit("app-gnome-a\\x2fb-1.scope", -EINVAL, NULL);
        unit("app-gnome-a\\x0ab-1.scope", -EINVAL, NULL);
        unit("app-gnome-a\\x2-1.scope", -EINVAL, NULL);
        unit("app-gnome-a\\-1.scope", -EINVAL, NULL);
        unit("app-gnome-a b-1.scope", -EINVAL, NULL);

        /* /proc/PID/cgroup: the unified line; the innermost app unit wins. */
        cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
               "app-gnome-org.gnome.Terminal-1234.scope\n", 0, "org.gnome.Terminal");
        cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.gnome.Terminal-1.scope/"
               "app-org.kde.konsole@3.service\n", 0, "org.kde.konsole");
        cgroup("12:pids:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/"
               "app-flatpak-org.x.Y-99.scope\n0::/\n", 0, "org.x.Y");
        cgroup("0::/user.slice/user-1000.slice/session-2.scope\n", -ENODATA, NULL);
        cgroup("0::/\n", -ENODATA, NULL);
        cgroup("", -ENODATA, NULL);
        cgroup("garbage without colons\n", -ENODATA, NULL);
        cgroup("0::/app.slice/app-gnome-a\\x2fb-1.scope\n", -EINVAL, NULL);

        if (failures) {
                fprintf(stderr, "%d failure(s)\n", failures);
                return 1;
        }
        printf("app-id: all cases passed\n");
        return 0;
}
