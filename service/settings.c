/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "json-strict.h"
#include "json-util.h"
#include "log.h"
#include "settings.h"
#include "util.h"

static char *settings_path(const char *state_dir) {
        char *p;
        if (asprintf(&p, "%s/settings.json", state_dir) < 0)
                return NULL;
        return p;
}

int settings_load(const char *state_dir, const char *fallback, char **ret_path, json_object **ret_root) {
        _cleanup_free_ char *path = settings_path(state_dir), *data = NULL;
        size_t size;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, SETTINGS_MAX_SIZE, &data, &size);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return log_warning_errno(r, "Failed to read %s: %m; %s.", path, fallback);
        *ret_root = json_tokener_parse(data);
        *ret_path = TAKE_PTR(path);
        return 0;
}

int settings_set(const char *state_dir, const char *key, json_object *value, char **ret_why) {
        _cleanup_free_ char *path = settings_path(state_dir), *data = NULL, *text = NULL, *what = NULL;
        _cleanup_(json_erase_and_putp) json_object *root = NULL;
        _cleanup_(json_object_putp) json_object *v = value;
        const char *remedy = NULL;
        size_t size;
        int r;

        if (!path || !v)
                return -ENOMEM;
        r = read_full_file(path, SETTINGS_MAX_SIZE, &data, &size);
        if (r >= 0) {
                if (memchr(data, 0, size)) {
                        if (asprintf(ret_why, "it holds NUL bytes; remove it or fix it by hand") < 0)
                                return -ENOMEM;
                        return -EBADMSG;
                }
                r = json_parse_strict(data, &root, &what, &remedy);
                if (r == -EBADMSG) {
                        if (asprintf(ret_why, "%s; %s", strna(what), strna(remedy)) < 0)
                                return -ENOMEM;
                        return r;
                }
                if (r < 0)
                        return r;
        } else if (r != -ENOENT)
                return r;
        if (!root) { /* no file, or an empty one */
                root = json_object_new_object();
                if (!root)
                        return -ENOMEM;
        }
        r = json_add(root, key, TAKE_PTR(v));
        if (r < 0)
                return r;
        r = json_to_text(root, &text);
        if (r < 0)
                return r;
        r = mkdir_p(state_dir, 0700);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0600);
}
