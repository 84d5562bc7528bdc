/* SPDX-License-Identifier: MIT */
/* The .flatpak-info reader (common/flatpak-info.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flatpak-info.h"

static int failures;

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

        if (failures)
                return 1;
        printf("flatpak-info: all passed\n");
        return 0;
}
