/* SPDX-License-Identifier: MIT */
/*
 * Model records: the fallback catalog, the gateway's /v1/models answer and
 * our cache file all become a ModelList. Pure code, no I/O beyond what the
 * caller hands in.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "util.h"

typedef struct Model {
        char *id;
        char *name;
        char *provider;              /* owned_by */
        char *api;                   /* "anthropic" for anthropic-owned models, else "openai" */
        uint32_t context_window;     /* default 128000 */
        uint32_t max_output_tokens;  /* default 32768 */
        char **input;                /* strv, default {"text"} */
        double price_input;          /* USD per 1M tokens */
        double price_output;
        double price_cache_read;
        double price_cache_write;
        /* What the gateway says beyond the basics (tolerant of spellings:
         * see model_from_json()). */
        char **output;               /* strv, output_modalities, default {"text"} */
        double price_image_output;   /* USD per generated image (pricing.image_output), 0: unknown */
        bool zdr;                    /* served with zero data retention (a "zdr" slot) */
        bool private_tier;           /* served on TEE compute (the "private" tier) */
        bool deprecated;             /* soft-deprecated: still works, migrate */
        char *replacement;           /* the model to use instead, or NULL */
} Model;

typedef struct ModelList {
        Model *models;
        size_t n;
} ModelList;

ModelList *model_list_free(ModelList *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(ModelList *, model_list_free);

/* True when the model goes through /v1/messages in api=auto. */
static inline bool model_is_anthropic(const Model *m) {
        return m && m->api && strcmp(m->api, "anthropic") == 0;
}

/* Parses {"data":[…]} (gateway or OpenAI/Anthropic style). Missing fields
 * are filled from the catalog entry with the same id, else the defaults.
 * Returns -EBADMSG with *ret_error set on a malformed answer. */
int model_list_from_gateway_json(const char *json, size_t len, const ModelList *catalog,
                                 ModelList **ret, char **ret_error);

/* Catalog and cache files use the same on-disk format as the gateway answer. */
int model_list_to_json(const ModelList *l, char **ret);

/* Deep copy. */
int model_list_copy(const ModelList *l, ModelList **ret);
bool model_list_equal(const ModelList *a, const ModelList *b);
const Model *model_list_find(const ModelList *l, const char *id);

/* Up to max ids closest to id (edit distance / prefix), as a strv. */
char **model_list_closest(const ModelList *l, const char *id, size_t max);
