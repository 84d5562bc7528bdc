/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Key (key.c): where the key comes from, resolved from six
 * sources.
 */
#pragma once

#include "bankr-llmd.h"

/* The six sources in the order of dbus-api.md: first match wins. */
typedef enum KeySource {
        KEY_SOURCE_ENV_LLM,     /* BANKR_LLM_KEY */
        KEY_SOURCE_KEYRING_LLM, /* keyring, kind=llm */
        KEY_SOURCE_CONFIG_LLM,  /* llmKey in ~/.bankr/config.json */
        KEY_SOURCE_ENV_API,     /* BANKR_API_KEY */
        KEY_SOURCE_KEYRING_API, /* keyring, kind=api */
        KEY_SOURCE_CONFIG_API,  /* apiKey in the config file */
        _KEY_SOURCE_MAX,
} KeySource;

typedef struct KeyResolution {
        const char *key;        /* the key in use (one of the sources), or NULL */
        const char *source;     /* "env", "keyring", "config" or "none" */
        const char *kind;       /* "llm", "api" or "" */
        const char *api_key;    /* the agent API key: the first API source, or NULL */
        const char *api_source; /* its source, or "none" */
} KeyResolution;

/* The pure resolution: sources[i] NULL or "" is absent. The strings of
 * *ret point into sources or are static. */
void key_resolve(const char *const sources[static _KEY_SOURCE_MAX], KeyResolution *ret);

/* --- the Key interface (needs the Context) ------------------------------- */


int keys_new(Context *c, Keys **ret);
Keys *keys_free(Keys *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Keys *, keys_free);
extern const sd_bus_vtable keys_vtable[];
/* Starts the first keyring lookups; ready() runs once they answered (or
 * after a few seconds without an answer). */
void keys_start(Keys *k, void (*ready)(Context *c));

/* The resolved state, read by the Context's accessors (context_llm_key() & co.,
 * which is what other modules use). k may be NULL. */
const char *keys_get_llm_key(const Keys *k);
const char *keys_get_api_key(const Keys *k);
const char *keys_get_gateway_url(const Keys *k);
const char *keys_get_api_url(const Keys *k);
