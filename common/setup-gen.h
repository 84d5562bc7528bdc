/* SPDX-License-Identifier: MIT */
/*
 * Tool setup, the pure part: from a model list, the gateway URL and a key
 * mode to the text each tool wants (OpenClaw and OpenCode provider entries,
 * Claude Code's environment, Cursor's instructions), and the strict JSON
 * merge that puts our provider entry into a user's existing config while
 * keeping everything else, in order. Strings in, strings out: no I/O.
 *
 * The output has the same structure and fields as `bankr llm setup …` of the
 * bankr CLI (see shared/reference/bankr-cli-behaviour.md).
 *
 * Key handling: with SETUP_KEY_INLINE the returned text contains the key;
 * free it with erase_and_free(). With SETUP_KEY_ENV the text refers to an
 * environment variable instead:
 *   OpenClaw     "apiKey": "${BANKR_API_KEY}"
 *   OpenCode     "apiKey": "{env:BANKR_API_KEY}"
 *   Claude Code  export ANTHROPIC_AUTH_TOKEN="${BANKR_LLM_KEY}", with a comment
 *                saying to set it (bankr-llm key reveal) or to run
 *                `bankr-llm claude`, which sets both variables for one run
 *   Cursor       the step says to paste the output of `bankr-llm key reveal`
 */
#pragma once

#include <stdbool.h>

#include "model-list.h"

typedef enum SetupTool {
        SETUP_TOOL_OPENCLAW,
        SETUP_TOOL_OPENCODE,
        SETUP_TOOL_CLAUDE,
        SETUP_TOOL_CURSOR,
        _SETUP_TOOL_MAX,
        _SETUP_TOOL_INVALID = -EINVAL,
} SetupTool;

typedef enum SetupKeyMode {
        SETUP_KEY_ENV,
        SETUP_KEY_INLINE,
        _SETUP_KEY_MODE_MAX,
        _SETUP_KEY_MODE_INVALID = -EINVAL,
} SetupKeyMode;

/* "openclaw", "opencode", "claude", "cursor". */
DECLARE_STRING_TABLE_LOOKUP(setup_tool, SetupTool);
/* "env", "inline". */
DECLARE_STRING_TABLE_LOOKUP(setup_key_mode, SetupKeyMode);

/* True for tools with a config file we merge into (OpenClaw, OpenCode);
 * Claude Code and Cursor are print-only. */
bool setup_tool_has_config(SetupTool t);

/* The tool's config file: OpenClaw $OPENCLAW_CONFIG_PATH or
 * ~/.openclaw/openclaw.json; OpenCode $XDG_CONFIG_HOME/opencode/opencode.json
 * (~/.config when unset). The caller passes the environment values in (NULL
 * or "" when unset). -EOPNOTSUPP for print-only tools, -EINVAL without home. */
int setup_tool_config_path(SetupTool t, const char *home, const char *xdg_config_home,
                           const char *openclaw_config_path, char **ret);

/* The provider entry alone, as 2-space JSON with a trailing newline: the value
 * of models.providers.bankr (OpenClaw) or provider.bankr (OpenCode). This is
 * what setup_merge() takes. -EOPNOTSUPP for print-only tools. key is needed
 * (non-empty) with SETUP_KEY_INLINE and ignored with SETUP_KEY_ENV. */
int setup_provider_json(SetupTool t, const ModelList *models, const char *gateway_url,
                        SetupKeyMode mode, const char *key, char **ret);

/* What `bankr-llm setup TOOL` prints without --install:
 *   OpenClaw  {"models":{"providers":{"bankr":…}}}
 *   OpenCode  {"$schema":…,"provider":{"bankr":…}}
 *   Claude    the two export lines
 *   Cursor    the step-by-step instructions
 * JSON is 2-space pretty-printed; every text ends in a newline. */
int setup_preview(SetupTool t, const ModelList *models, const char *gateway_url,
                  SetupKeyMode mode, const char *key, char **ret);

/* How to make a Bankr model the tool's default (a few lines ending in a
 * newline), e.g. agents.defaults.model.primary = "bankr/<id>" for OpenClaw.
 * The model is the first of claude-opus-4.6, gemini-3-pro, gpt-5.2 present in
 * the list (Claude Code: the first anthropic model), else the first model. */
int setup_default_hint(SetupTool t, const ModelList *models, char **ret);

/* Puts provider_json (from setup_provider_json()) into the existing config
 * text (NULL, or only whitespace: a fresh file) and returns the whole new
 * file: only our entry changes; every other key, nested value and their order
 * stay, numbers keep their exact spelling. Output is 2-space JSON with a
 * trailing newline; merging the same entry twice gives identical text.
 *
 * The existing text must be strict JSON (RFC 8259) with an object at the top:
 * comments, trailing commas, single quotes, NaN, duplicate keys, invalid UTF-8,
 * trailing garbage and the like give -EBADMSG and a sentence in *ret_error
 * saying what is wrong, where, and how to proceed. So does a `models`,
 * `models.providers` or `provider` member that is not an object.
 *
 * With force, such a file is not refused: its content is discarded and a fresh
 * config is returned, together with 1 (instead of 0) and the reason in
 * *ret_error. The caller must then keep the old file (safe_install() keeps a
 * backup of whatever it replaces). Any other error: negative errno. */
int setup_merge(SetupTool t, const char *existing, const char *provider_json, bool force,
                char **ret_text, char **ret_error);

/* What stands for the key in the tool's config with SETUP_KEY_ENV
 * ("${BANKR_API_KEY}", "{env:BANKR_API_KEY}"); NULL for print-only tools. */
const char *setup_key_reference(SetupTool t);

/* The keys an existing config text holds in plaintext, for safe_install_full()
 * to keep out of a backup: the bankr provider's apiKey (unless it is the
 * environment reference) and every bk_… token of 8 or more key characters
 * anywhere in the text, so also in a file that is not JSON. *ret is a
 * NULL-terminated list (NULL for none); free it with setup_keys_free(),
 * which wipes the strings. */
int setup_inline_keys(SetupTool t, const char *existing, char ***ret);
char **setup_keys_free(char **l);
static inline void setup_keys_freep(char ***l) {
        setup_keys_free(*l);
}
