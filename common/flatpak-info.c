/* SPDX-License-Identifier: MIT */
/*
 * A minimal reader of the GKeyFile-format .flatpak-info (see
 * flatpak-info.h): groups in [brackets], "key=value" lines, '#' comments.
 * Only one value is wanted, so nothing else of the format is interpreted.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "flatpak-info.h"

#define APP_ID_MAX 255

static bool app_id_valid(const char *s, size_t n) {
        if (n == 0 || n > APP_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

static void trim(const char **s, size_t *n) {
        while (*n > 0 && (**s == ' ' || **s == '\t')) {
                (*s)++;
                (*n)--;
        }
        while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
                (*n)--;
}

int flatpak_info_app_id(const char *text, size_t size, char **ret_app_id) {
        enum { NONE, APPLICATION, RUNTIME } group = NONE;
        const char *p = text, *end = text + size;
        const char *found[3] = {}; /* the first name= of each group */
        size_t found_len[3] = {};
        const char *v;
        size_t vn;

        if (!text || !ret_app_id)
                return -EINVAL;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *line = p;
                size_t n = (size_t) ((nl ? nl : end) - p);

                p = nl ? nl + 1 : end;
                trim(&line, &n);
                if (n == 0 || line[0] == '#')
                        continue;
                if (line[0] == '[') {
                        if (n == 13 && memcmp(line, "[Application]", 13) == 0)
                                group = APPLICATION;
                        else if (n == 9 && memcmp(line, "[Runtime]", 9) == 0)
                                group = RUNTIME;
                        else
                                group = NONE;
                        continue;
                }
                if (group == NONE || found[group] || n < 5 || memcmp(line, "name", 4) != 0)
                        continue;

                v = line + 4;
                vn = n - 4;
                trim(&v, &vn);
                if (vn == 0 || v[0] != '=')
                        continue; /* "names=…" or another key starting with "name" */
                v++;
                vn--;
                trim(&v, &vn);
                found[group] = v;
                found_len[group] = vn;
        }

        v = found[APPLICATION] ?: found[RUNTIME];
        vn = found[APPLICATION] ? found_len[APPLICATION] : found_len[RUNTIME];
        if (!v)
                return -ENODATA;
        if (!app_id_valid(v, vn))
                return -EINVAL;
        *ret_app_id = strndup(v, vn);
        return *ret_app_id ? 0 : -ENOMEM;
}

/* "app-flatpak-ID-123.scope" or "flatpak-ID-123.scope" → ID (not copied). */
static bool scope_app_id(const char *unit, size_t n, const char **ret, size_t *ret_len) {
        static const char *const prefixes[] = { "app-flatpak-", "flatpak-" };
        const char *id = NULL;
        size_t digits = 0;

        if (n < 6 || memcmp(unit + n - 6, ".scope", 6) != 0)
                return false;
        n -= 6;
        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
                size_t l = strlen(prefixes[i]);
                if (n > l && memcmp(unit, prefixes[i], l) == 0) {
                        id = unit + l;
                        n -= l;
                        break;
                }
        }
        if (!id)
                return false;
        while (digits < n && id[n - 1 - digits] >= '0' && id[n - 1 - digits] <= '9')
                digits++;
        if (digits == 0 || digits + 1 >= n || id[n - 1 - digits] != '-')
                return false;
        *ret = id;
        *ret_len = n - digits - 1;
        return true;
}

int flatpak_scope_app_id(const char *text, size_t size, char **ret_app_id) {
        const char *p = text, *end = text + size;

        if (!text || !ret_app_id)
                return -EINVAL;

        /* "0::/user.slice/…/app-flatpak-ID-1.scope" (cgroup v2), or the
         * "N:name=systemd:/…" line of a v1 or hybrid tree. */
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *line = p, *path, *c;
                size_t n = (size_t) ((nl ? nl : end) - p);

                p = nl ? nl + 1 : end;
                if (!((n > 3 && memcmp(line, "0::", 3) == 0) ||
                      (memmem(line, n, ":name=systemd:", 14) != NULL)))
                        continue;
                path = memchr(line, ':', n);
                path = path ? memchr(path + 1, ':', (size_t) (line + n - path - 1)) : NULL;
                if (!path)
                        continue;
                path++;
                /* The innermost Flatpak scope on the path counts. */
                for (c = line + n; c > path;) {
                        const char *slash = c - 1, *id;
                        size_t idn;

                        while (slash > path && *slash != '/')
                                slash--;
                        const char *comp = *slash == '/' ? slash + 1 : slash;
                        if (scope_app_id(comp, (size_t) (c - comp), &id, &idn)) {
                                if (!app_id_valid(id, idn))
                                        return -EINVAL;
                                *ret_app_id = strndup(id, idn);
                                return *ret_app_id ? 0 : -ENOMEM;
                        }
                        c = slash;
                }
        }
        return -ENODATA;
}
