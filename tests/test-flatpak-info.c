/* SPDX-License-Identifier: MIT */
/* The .flatpak-info reader (common/flatpak-info.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flatpak-info.h"

static int failures;

static void expect_scope(const char *text, int want_r, const char *want_id) {
        char *id = NULL;
        int r = flatpak_scope_app_id(text, strlen(text), &id);

        if (r != want_r || (want_id && (!id || strcmp(id, want_id) != 0))) {
                fprintf(stderr, "FAIL (scope): %s\n  got %d \"%s\", want %d \"%s\"\n", text, r, id ? id : "(null)",
                        want_r, want_id ? want_id : "(null)");
                failures++;
        }
        free(id);
}

static void expect(const char *text, int want_r, const char *want_id) {
        char *id = NULL;
        int r = flatpak_info_app_id(text, strlen(text), &id);

        if (r != want_r || (want_id && (!id || strcmp(id, want_id) != 0))) {
                fprintf(stderr, "FAIL: %s\n  got %d \"%s\", want %d \"%s\"\n", text, r, id ? id : "(null)", want_r,
                        want_id ? want_id : "(null)");
                failures++;
        }
        free(id);
}

int main(void) {
        expect("[Application]\nname=org.gnome.Calculator\nruntime=runtime/org.gnome.Platform/x86_64/47\n", 0,
               "org.gnome.Calculator");
        /* The key must be "name", in [Application]; other groups do not count. */
        expect("[Instance]\nname=org.wrong.One\n[Application]\nnames=x\nname=org.right.One\n", 0, "org.right.One");
        /* Spaces around the '=' and CRLF line ends, as GKeyFile allows. */
        expect("# c\r\n[Application]\r\n  name =  org.x.Y \t\r\n", 0, "org.x.Y");
        /* The first name of the group wins; [Application] over [Runtime]. */
        expect("[Application]\nname=a.b.c\nname=d.e.f\n", 0, "a.b.c");
        expect("[Runtime]\nname=org.freedesktop.Platform\n[Application]\nname=org.app.Id\n", 0, "org.app.Id");
        expect("[Runtime]\nname=org.freedesktop.Platform\n", 0, "org.freedesktop.Platform");
        /* A sandbox that names no app, or not a well-formed id. */
        expect("", -ENODATA, NULL);
        expect("[Application]\nruntime=x\n", -ENODATA, NULL);
        expect("name=outside.any.group\n", -ENODATA, NULL);
        expect("[Application]\nname=\n", -EINVAL, NULL);
        expect("[Application]\nname=../../etc/passwd\n", -EINVAL, NULL);
        expect("[Application]\nname=org.x.\033[2J\n", -EINVAL, NULL);
        /* No NUL needed at the end: the size is what counts. */
        {
                const char t[] = "[Application]\nname=org.cut.Here";
                char *id = NULL;
                if (flatpak_info_app_id(t, sizeof(t) - 1 - 5, &id) != 0 || strcmp(id, "org.cut") != 0) {
                        fprintf(stderr, "FAIL: size not honoured (%s)\n", id ? id : "(null)");
                        failures++;
                }
                free(id);
        }

        /* Scopes, cgroup v2 and the name=systemd line of v1/hybrid trees. */
        expect_scope("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
                     "app-flatpak-org.gnome.Calculator-4242.scope\n", 0, "org.gnome.Calculator");
        expect_scope("12:pids:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/"
                     "flatpak-com.example.App-77.scope\n0::/user.slice\n", 0, "com.example.App");
        /* Ids may hold '-' themselves; only the last "-digits" is the pid. */
        expect_scope("0::/a/app-flatpak-io.github.some-app-12.scope\n", 0, "io.github.some-app");
        /* Nested cgroups below the scope still name it. */
        expect_scope("0::/u/app-flatpak-org.x.Y-1.scope/sub\n", 0, "org.x.Y");
        /* Not Flatpak's. */
        expect_scope("0::/user.slice/user@1000.service/app.slice/app-gnome-org.gnome.Terminal-99.scope\n", -ENODATA,
                     NULL);
        expect_scope("0::/user.slice/user@1000.service/app.slice/bankr-llmd.service\n", -ENODATA, NULL);
        expect_scope("0::/user.slice/app-flatpak-org.x.Y.scope\n", -ENODATA, NULL);
        expect_scope("0::/user.slice/app-flatpak--12.scope\n", -ENODATA, NULL);
        expect_scope("", -ENODATA, NULL);
        expect_scope("3:cpu:/app-flatpak-org.x.Y-1.scope\n", -ENODATA, NULL); /* a v1 controller's tree */
        expect_scope("0::/app-flatpak-org.x\033Y-1.scope\n", -EINVAL, NULL);

        if (failures)
                return 1;
        printf("flatpak-info: all passed\n");
        return 0;
}
