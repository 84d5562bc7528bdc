/* SPDX-License-Identifier: MIT */
/*
 * The .flatpak-info and Flatpak-scope readers: any bytes (the file lies at the root of a
 * sandbox, which the app inside may shape) give an id that passes the
 * reader's own rules, or an error; never a crash or a read past the end.
 */
#include <errno.h>
#include <string.h>

#include "flatpak-info.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *id = NULL;
        int r;

        for (int which = 0; which < 2; which++) {
                r = which == 0 ? flatpak_info_app_id((const char *) data, size, &id)
                               : flatpak_scope_app_id((const char *) data, size, &id);
                if (r == 0) {
                        size_t n = strlen(id);
                        FUZZ_CHECK(n > 0 && n <= 255);
                        FUZZ_CHECK(strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
                        free(id);
                        id = NULL;
                } else
                        FUZZ_CHECK(r == -ENODATA || r == -EINVAL || r == -ENOMEM);
        }
        return 0;
}
