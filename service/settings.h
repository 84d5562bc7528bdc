/* SPDX-License-Identifier: MIT */
/*
 * settings.json in the state directory: the small file in which Credits
 * keeps low_threshold_usd and Chat default_privacy. Each module reads its
 * own field (with its own fallback); a change rewrites the file keeping
 * every other field.
 */
#pragma once

#include <json-c/json.h>

#define SETTINGS_MAX_SIZE (1024U * 1024U)

/* STATE_DIR/settings.json; NULL when out of memory. */
char *settings_path(const char *state_dir);

/* Reads path: 0 and *ret_root as json_tokener_parse() gives it (NULL when
 * the text is not JSON), -ENOENT when there is no file, else -errno. */
int settings_read(const char *path, json_object **ret_root);

/* Rewrites STATE_DIR/settings.json with key set to value (taken over;
 * NULL: an allocation failed), keeping every other field. A file that
 * cannot be read back exactly (NUL bytes, not strict JSON, not an object)
 * is left as it is: -EBADMSG with *ret_why saying what is wrong, since
 * rewriting it would silently drop whatever else it holds. */
int settings_set(const char *state_dir, const char *key, json_object *value, char **ret_why);
