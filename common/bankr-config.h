/* SPDX-License-Identifier: MIT */
/*
 * ~/.bankr/config.json, the file the bankr CLI reads and writes: a JSON
 * object with apiKey, apiUrl, llmKey and llmUrl, plus whatever else the user
 * or the CLI keeps there (which we always preserve, in order).
 */
#pragma once

#include "util.h"

#define BANKR_CONFIG_MAX_SIZE (1024 * 1024)

typedef struct BankrConfig {
        char *llm_key; /* secret */
        char *api_key; /* secret */
        char *llm_url;
        char *api_url;
} BankrConfig;

BankrConfig *bankr_config_free(BankrConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(BankrConfig *, bankr_config_free);

/* The four keys the config verbs accept, in documentation order. */
extern const char *const bankr_config_keys[];
bool bankr_config_key_valid(const char *name);
bool bankr_config_key_is_secret(const char *name);

/* BANKR_CONFIG, else $HOME/.bankr/config.json. */
int bankr_config_path(char **ret);

/* Parses the text. -EBADMSG with a sentence for anything that is not a JSON
 * object; fields of the wrong type are ignored (and named in *ret_warning). */
int bankr_config_parse(const char *text, size_t len, BankrConfig **ret, char **ret_error);

/* Loads path; a missing file gives an empty config and returns 0. */
int bankr_config_load(const char *path, BankrConfig **ret, char **ret_error);

/* Returns the text with key set to value (a string) or removed (value NULL),
 * every other member kept in place, pretty-printed like the bankr CLI (2
 * spaces, trailing newline). text may be NULL or empty for a new file.
 * -EBADMSG if text is not a JSON object. */
int bankr_config_edit(const char *text, const char *const *keys, const char *const *values, size_t n, char **ret);

/* Reads, edits and atomically rewrites path, keeping the file's mode (0600
 * for a new file, its directory 0700). Refuses (-EBADMSG) to touch a file
 * that does not parse, and (-EROFS) one the user made read-only (no owner
 * write bit), as the bankr CLI cannot write it either. */
int bankr_config_update_file(const char *path, const char *const *keys, const char *const *values, size_t n, char **ret_error);

/* 0 when path may be rewritten (also when it does not exist yet); -EROFS
 * when the user made it read-only (no owner write bit: we go by the mode,
 * not by access(), which says yes to root); another negative errno when it
 * cannot be checked. */
int bankr_config_check_writable(const char *path);

/* Removes each keys[i] from path only if the file still holds exactly the
 * string expected[i] there (NULL: leave that key alone), comparing when the
 * file is rewritten, so a value written meanwhile is never lost. Bit i of
 * *ret_kept is set for a key left because its value changed. Writes nothing
 * when nothing is to be removed. -EROFS (with a sentence) for a read-only
 * file, -EBADMSG for one that does not parse: both are left untouched. */
int bankr_config_remove_if_unchanged(const char *path, const char *const *keys, const char *const *expected, size_t n,
                                     unsigned *ret_kept, char **ret_error);
