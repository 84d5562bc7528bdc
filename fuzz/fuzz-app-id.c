/* SPDX-License-Identifier: MIT */
/*
 * Unit names and /proc/PID/cgroup text → app id: any bytes (a process
 * names its own transient scope) give a well-formed id or an error; never a
 * crash or a read past the end.
 */
#include <errno.h>
#include <string.h>

#include "app-id.h"
#include "fuzz.h"

static void check(int r, char *id) {
        if (r == 0) {
                size_t n = strlen(id);
                FUZZ_CHECK(n > 0 && n <= APP_ID_MAX);
                FUZZ_CHECK(strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n);
                free(id);
        } else
                FUZZ_CHECK(r == -ENODATA || r == -EINVAL || r == -ENOMEM);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *id = NULL;
        int r;

        r = app_id_from_unit((const char *) data, size, &id);
        check(r, id);
        id = NULL;
        r = app_id_from_cgroup((const char *) data, size, &id);
        check(r, id);
        return 0;
}
