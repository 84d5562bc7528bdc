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

/* Reads STATE_DIR/settings.json: 0, with *ret_path (for the caller's
 * messages) and *ret_root as json_tokener_parse() gives it (NULL when the
 * text is not JSON). Negative when there is nothing to read: -ENOENT (no
 * file), -ENOMEM, or a failure to read it, logged as a warning "Failed to
 * read PATH: ERROR; FALLBACK." (fallback: what the caller does instead). */
int settings_load(const char *state_dir, const char *fallback, char **ret_path, json_object **ret_root);

/* Rewrites STATE_DIR/settings.json with key set to value (taken over;
 * NULL: an allocation failed), keeping every other field. A file that
 * cannot be read back exactly (NUL bytes, not strict JSON, not an object)
 * is left as it is: -EBADMSG with *ret_why saying what is wrong, since
 * rewriting it would silently drop whatever else it holds. */
int settings_set(const char *state_dir, const char *key, json_object *value, char **ret_why);
