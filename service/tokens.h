/* SPDX-License-Identifier: MIT */
/*
 * The endpoint's scoped tokens: minted over D-Bus, presented over HTTP.
 *
 * A token is "bllm_" and 64 hex digits (32 random bytes from getrandom()).
 * Only its SHA-256 is kept, in memory and, for persistent tokens, in
 * tokens.json (mode 0600, written atomically); the token itself exists only
 * in the CreateToken reply. A presented token is hashed and compared with
 * every stored hash in constant time (CRYPTO_memcmp, no early exit), so
 * neither the time nor a log line tells anything about it. No function here
 * logs a token or a hash.
 *
 * Pure bookkeeping without a bus or a loop (the endpoint does those): the
 * endpoint counts the requests in flight on a token (n_inflight), cuts them
 * before tokens_remove(), and books each answer with tokens_charge().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define TOKEN_PREFIX "bllm_"
#define TOKEN_SECRET_LEN (sizeof(TOKEN_PREFIX) - 1 + 64)
#define TOKEN_HASH_LEN 32
/* expiring tokens: at most 7 days */
#define TOKEN_EXPIRES_MAX_S (7U * 24U * 3600U)

typedef enum TokenLifetime {
        TOKEN_LIFETIME_CONNECTION,
        TOKEN_LIFETIME_EXPIRING,
        TOKEN_LIFETIME_PERSISTENT,
        _TOKEN_LIFETIME_MAX,
        _TOKEN_LIFETIME_INVALID = -EINVAL,
} TokenLifetime;

const char *token_lifetime_to_string(TokenLifetime i);
TokenLifetime token_lifetime_from_string(const char *s);

typedef struct Token {
        char *id;            /* "tok_" + 12 hex digits: names the token, proves nothing */
        char *app;
        TokenLifetime lifetime;
        char *owner;         /* unique bus name of the creator (connection tokens) */
        uint64_t created_at; /* µs since the epoch */
        uint64_t expires_at; /* 0: never */
        double budget_usd;   /* 0: none */
        double spent_usd;
        uint32_t requests;
        uint64_t last_used_at;
        char **models;       /* allowlist; NULL or empty: all */
        uint8_t hash[TOKEN_HASH_LEN];
        unsigned n_inflight; /* the endpoint's requests on it */
        struct Token *next;
} Token;

typedef struct Tokens Tokens;

/* path: the file persistent tokens live in (NULL: none are kept). Reads
 * it; a damaged file is logged and set aside as path + ".bad", never
 * silently dropped. */
int tokens_new(const char *path, Tokens **ret);
Tokens *tokens_free(Tokens *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tokens *, tokens_free);

/* Mints a token. expires_at 0 for none; models copied. *ret_secret is the
 * token (malloc'd; the caller wipes it with erase_and_free()). */
int tokens_create(Tokens *t, const char *app, TokenLifetime lifetime, const char *owner, uint64_t expires_at,
                  double budget_usd, char *const *models, char **ret_secret, Token **ret);

/* The live token that secret[0..n) is, or NULL (unknown, or expired at
 * now). Compares the hash with every token's in constant time. */
Token *tokens_lookup(Tokens *t, const char *secret, size_t n, uint64_t now);
Token *tokens_find(Tokens *t, const char *id);
Token *tokens_first(Tokens *t);

/* Unlinks and frees tk (the caller cut its requests first); saves the
 * file when it was persistent. */
void tokens_remove(Tokens *t, Token *tk);
/* Removes expired tokens with nothing in flight. Returns how many. */
unsigned tokens_gc(Tokens *t, uint64_t now);

/* Books one finished request on tk. */
void tokens_charge(Tokens *t, Token *tk, double cost_usd, uint64_t now);

/* Whether tk may use model (allowlist; NULL model passes only an empty list). */
bool token_allows_model(const Token *tk, const char *model);
/* Whether tk's budget is spent. */
static inline bool token_budget_spent(const Token *tk) {
        return tk->budget_usd > 0 && tk->spent_usd >= tk->budget_usd;
}
