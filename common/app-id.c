/* SPDX-License-Identifier: MIT */
/*
 * Unit name → desktop app id (see app-id.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app-id.h"

bool app_id_is_valid(const char *s, size_t n) {
        if (!s || n == 0 || n > APP_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-'))
                        return false;
        }
        return true;
}

static const char *memrchr_c(const char *s, size_t n, char c) {
        while (n > 0) {
                n--;
                if (s[n] == c)
                        return s + n;
        }
        return NULL;
}

static bool random_part_ok(const char *s, size_t n) {
        /* RANDOM is a pid, a counter or a hex string; anything but a '-' or
         * '.' would do for systemd, we only ask it to be non-empty. */
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '-' || s[i] == '.' || s[i] == '/')
                        return false;
        return true;
}

/* Copies s[0..n) with "\xHH" escapes decoded; only printable ASCII results
 * are kept (app_id_is_valid() decides afterwards). */
static int unescape(const char *s, size_t n, char **ret) {
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\') {
                        unsigned v = 0;
                        if (i + 3 >= n || s[i + 1] != 'x')
                                goto bad;
                        for (size_t k = i + 2; k < i + 4; k++) {
                                char c = s[k];
                                v <<= 4;
                                if (c >= '0' && c <= '9')
                                        v |= (unsigned) (c - '0');
                                else if (c >= 'a' && c <= 'f')
                                        v |= (unsigned) (c - 'a' + 10);
                                else if (c >= 'A' && c <= 'F')
                                        v |= (unsigned) (c - 'A' + 10);
                                else
                                        goto bad;
                        }
                        if (v < 0x20 || v >= 0x7f)
                                goto bad;
                        *o++ = (char) v;
                        i += 3;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        *ret = out;
        return 0;
bad:
        free(out);
        return -EINVAL;
}

int app_id_from_unit(const char *unit, size_t n, char **ret_app_id) {
        const char *p, *end, *dash, *at;
        char *id = NULL;
        int r;

        if (!unit || !ret_app_id)
                return -EINVAL;
        if (n < 4 || memcmp(unit, "app-", 4) != 0)
                return -ENODATA;
        p = unit + 4;
        end = unit + n;

        if (n > 6 && memcmp(end - 6, ".scope", 6) == 0) {
                end -= 6;
                /* -<RANDOM> is mandatory for scopes. */
                dash = memrchr_c(p, (size_t) (end - p), '-');
                if (!dash || !random_part_ok(dash + 1, (size_t) (end - dash - 1)))
                        return -ENODATA;
                end = dash;
        } else if (n > 8 && memcmp(end - 8, ".service", 8) == 0) {
                end -= 8;
                /* @<RANDOM> is optional for services (a template instance). */
                at = memchr(p, '@', (size_t) (end - p));
                if (at)
                        end = at;
        } else
                return -ENODATA;

        /* Now "[<launcher>-]<ApplicationID>": at most one raw dash. */
        dash = memchr(p, '-', (size_t) (end - p));
        if (dash) {
                if (dash == p)
                        return -ENODATA; /* "app--x" */
                p = dash + 1;
                if (memchr(p, '-', (size_t) (end - p)))
                        return -ENODATA; /* not this scheme: "app-a-b-c.service" */
        }
        if (p >= end)
                return -ENODATA;

        r = unescape(p, (size_t) (end - p), &id);
        if (r < 0)
                return r;
        if (!app_id_is_valid(id, strlen(id))) {
                free(id);
                return -EINVAL;
        }
        *ret_app_id = id;
        return 0;
}

int app_id_from_cgroup(const char *text, size_t size, char **ret_app_id) {
        const char *p = text, *end = text + size;
        int best = -ENODATA;
        char *found = NULL;

        if (!text || !ret_app_id)
                return -EINVAL;

        /* "hierarchy-ID:controllers:path" lines; the unified one ("0::") on
         * every current system, named hierarchies on hybrid ones. The path of
         * whichever line names an app unit is as good as any. */
        while (p < end && !found) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *line = p, *lend = nl ? nl : end, *path, *c;

                p = nl ? nl + 1 : end;
                c = memchr(line, ':', (size_t) (lend - line));
                if (!c)
                        continue;
                c = memchr(c + 1, ':', (size_t) (lend - c - 1));
                if (!c)
                        continue;
                path = c + 1;

                /* Innermost first: walk the components from the end. */
                const char *ce = lend;
                while (ce > path) {
                        const char *cs = memrchr_c(path, (size_t) (ce - path), '/');
                        const char *start = cs ? cs + 1 : path;
                        int r;

                        if (ce > start) {
                                r = app_id_from_unit(start, (size_t) (ce - start), &found);
                                if (r == 0)
                                        break;
                                if (r == -ENOMEM)
                                        return r;
                                if (r == -EINVAL)
                                        best = -EINVAL;
                        }
                        if (!cs)
                                break;
                        ce = cs;
                }
        }
        if (!found)
                return best;
        *ret_app_id = found;
        return 0;
}
