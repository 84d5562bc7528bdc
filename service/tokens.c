/* SPDX-License-Identifier: MIT */
/*
 * Scoped tokens of the endpoint (see tokens.h). SHA-256 and the constant-
 * time comparison come from OpenSSL's libcrypto: libcurl already maps it
 * into the daemon (Debian's libcurl4 is the OpenSSL flavour), so it adds a
 * build dependency (libssl-dev) but no library at run time.
 */
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "json-util.h"
#include "log.h"
#include "tokens.h"

static const char *const token_lifetime_table[_TOKEN_LIFETIME_MAX] = {
        [TOKEN_LIFETIME_CONNECTION] = "connection",
        [TOKEN_LIFETIME_EXPIRING] = "expiring",
        [TOKEN_LIFETIME_PERSISTENT] = "persistent",
};

DEFINE_STRING_TABLE_LOOKUP(token_lifetime, TokenLifetime, _TOKEN_LIFETIME_INVALID);

struct Tokens {
        char *path;
        Token *head;
};

static void token_free(Token *tk) {
        if (!tk)
                return;
        free(tk->id);
        free(tk->app);
        free(tk->owner);
        strv_free(tk->models);
        explicit_bzero(tk->hash, sizeof(tk->hash));
        free(tk);
}

static int hash_secret(const void *s, size_t n, uint8_t ret[TOKEN_HASH_LEN]) {
        /* Fetched once: EVP_sha256() makes every EVP_Digest() look the
         * algorithm up again in OpenSSL 3, under a lock, on each request. */
        static EVP_MD *md = NULL;
        unsigned len = 0;

        if (!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
                return -EIO;
        if (EVP_Digest(s, n, ret, &len, md, NULL) != 1 || len != TOKEN_HASH_LEN)
                return -EIO;
        return 0;
}

static void hex(const uint8_t *b, size_t n, char *ret) {
        static const char d[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = d[b[i] >> 4];
                ret[2 * i + 1] = d[b[i] & 15];
        }
        ret[2 * n] = 0;
}

static int unhex(const char *s, uint8_t *ret, size_t n) {
        if (!s || strlen(s) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < 2 * n; i++) {
                int v = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
                if (v < 0)
                        return -EINVAL;
                if (i % 2 == 0)
                        ret[i / 2] = (uint8_t) (v << 4);
                else
                        ret[i / 2] |= (uint8_t) v;
        }
        return 0;
}

static int random_bytes(void *p, size_t n) {
        size_t done = 0;
        while (done < n) {
                ssize_t k = getrandom((char *) p + done, n - done, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        return 0;
}

/* ---- the file ---------------------------------------------------------- */

static int tokens_save(Tokens *t) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        const char *s;
        char h[2 * TOKEN_HASH_LEN + 1];
        int r;

        if (!t->path)
                return 0;
        if (!a)
                return -ENOMEM;
        for (Token *tk = t->head; tk; tk = tk->next) {
                json_object *o, *m;
                if (tk->lifetime != TOKEN_LIFETIME_PERSISTENT)
                        continue;
                o = json_object_new_object();
                if (json_append(a, o) < 0)
                        return -ENOMEM;
                hex(tk->hash, sizeof(tk->hash), h);
                m = json_object_new_array();
                for (char **i = tk->models; i && *i; i++)
                        if (json_append(m, json_object_new_string(*i)) < 0)
                                return -ENOMEM;
                if (json_add(o, "id", json_object_new_string(tk->id)) < 0 ||
                    json_add(o, "app", json_object_new_string(tk->app)) < 0 ||
                    json_add(o, "sha256", json_object_new_string(h)) < 0 ||
                    json_add(o, "created_at", json_object_new_uint64(tk->created_at)) < 0 ||
                    json_add(o, "budget_usd", json_new_double_short(tk->budget_usd)) < 0 ||
                    json_add(o, "spent_usd", json_new_double_short(tk->spent_usd)) < 0 ||
                    json_add(o, "requests", json_object_new_uint64(tk->requests)) < 0 ||
                    json_add(o, "last_used_at", json_object_new_uint64(tk->last_used_at)) < 0 ||
                    json_add(o, "models", m) < 0)
                        return -ENOMEM;
        }
        s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        r = mkdir_parents(t->path, 0700);
        if (r >= 0)
                r = write_file_atomic(t->path, s, strlen(s), 0600);
        if (r < 0)
                log_warning_errno(r, "Failed to save the persistent endpoint tokens to %s: %m", t->path);
        return r;
}

static int tokens_load(Tokens *t) {
        _cleanup_free_ char *text = NULL, *bad = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL;
        json_tokener *tok;
        const char *err = NULL;
        size_t n;
        int r;

        r = read_full_file(t->path, 4 * 1024 * 1024, &text, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "Failed to read %s: %m", t->path);
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        a = json_parse_n(tok, text, n, &err);
        json_tokener_free(tok);
        if (!a || !json_object_is_type(a, json_type_array))
                goto damaged;

        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *m;
                const char *id = json_get_string(o, "id", NULL), *app = json_get_string(o, "app", NULL);
                Token *tk;
                uint64_t u;

                if (!id || !app)
                        goto damaged;
                tk = calloc(1, sizeof(Token));
                if (!tk)
                        return -ENOMEM;
                tk->lifetime = TOKEN_LIFETIME_PERSISTENT;
                tk->id = strdup(id);
                tk->app = strdup(app);
                if (!tk->id || !tk->app || unhex(json_get_string(o, "sha256", NULL), tk->hash, TOKEN_HASH_LEN) < 0) {
                        token_free(tk);
                        goto damaged;
                }
                (void) json_get_count(o, "created_at", &tk->created_at);
                (void) json_get_count(o, "last_used_at", &tk->last_used_at);
                if (json_get_count(o, "requests", &u))
                        tk->requests = (uint32_t) MIN(u, UINT32_MAX);
                tk->budget_usd = json_object_get_double(json_get(o, "budget_usd"));
                tk->spent_usd = json_object_get_double(json_get(o, "spent_usd"));
                m = json_get(o, "models");
                for (size_t j = 0; m && json_object_is_type(m, json_type_array) && j < json_object_array_length(m); j++) {
                        const char *s = json_object_get_string(json_object_array_get_idx(m, j));
                        if (s && strv_extend(&tk->models, s) < 0) {
                                token_free(tk);
                                return -ENOMEM;
                        }
                }
                tk->next = t->head;
                t->head = tk;
        }
        return 0;

damaged:
        while (t->head) {
                Token *tk = t->head;
                t->head = tk->next;
                token_free(tk);
        }
        if (asprintf(&bad, "%s.bad", t->path) >= 0 && rename(t->path, bad) >= 0)
                log_warning("%s is damaged (%s); set it aside as %s. Persistent endpoint tokens must be created again.",
                            t->path, err ?: "not a list of tokens", bad);
        else
                log_warning("%s is damaged (%s). Persistent endpoint tokens must be created again.", t->path,
                            err ?: "not a list of tokens");
        return 0;
}

int tokens_new(const char *path, Tokens **ret) {
        Tokens *t = calloc(1, sizeof(Tokens));
        int r;

        if (!t)
                return -ENOMEM;
        if (path) {
                t->path = strdup(path);
                if (!t->path) {
                        free(t);
                        return -ENOMEM;
                }
                r = tokens_load(t);
                if (r < 0) {
                        tokens_free(t);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

Tokens *tokens_free(Tokens *t) {
        if (!t)
                return NULL;
        while (t->head) {
                Token *tk = t->head;
                t->head = tk->next;
                token_free(tk);
        }
        free(t->path);
        free(t);
        return NULL;
}

int tokens_create(Tokens *t, const char *app, TokenLifetime lifetime, const char *owner, uint64_t expires_at,
                  double budget_usd, char *const *models, char **ret_secret, Token **ret) {
        uint8_t raw[32], idraw[6];
        char *secret;
        Token *tk;
        int r;

        if (!t || isempty(app) || lifetime < 0 || lifetime >= _TOKEN_LIFETIME_MAX)
                return -EINVAL;
        r = random_bytes(raw, sizeof(raw));
        if (r >= 0)
                r = random_bytes(idraw, sizeof(idraw));
        if (r < 0)
                return r;

        secret = malloc(TOKEN_SECRET_LEN + 1);
        tk = calloc(1, sizeof(Token));
        if (!secret || !tk)
                goto oom;
        memcpy(secret, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
        hex(raw, sizeof(raw), secret + strlen(TOKEN_PREFIX));
        explicit_bzero(raw, sizeof(raw));
        r = hash_secret(secret, TOKEN_SECRET_LEN, tk->hash);
        if (r < 0) {
                erase_and_free(secret);
                token_free(tk);
                return r;
        }
        tk->id = malloc(4 + 2 * sizeof(idraw) + 1);
        if (!tk->id)
                goto oom;
        memcpy(tk->id, "tok_", 4);
        hex(idraw, sizeof(idraw), tk->id + 4);
        tk->app = strdup(app);
        tk->owner = owner ? strdup(owner) : NULL;
        tk->models = models && *models ? strv_copy(models) : NULL;
        if (!tk->app || (owner && !tk->owner) || (models && *models && !tk->models))
                goto oom;
        tk->lifetime = lifetime;
        tk->created_at = now_usec(CLOCK_REALTIME);
        tk->expires_at = expires_at;
        tk->budget_usd = budget_usd;

        tk->next = t->head;
        t->head = tk;
        if (lifetime == TOKEN_LIFETIME_PERSISTENT) {
                r = tokens_save(t);
                if (r < 0) {
                        t->head = tk->next;
                        token_free(tk);
                        erase_and_free(secret);
                        return r;
                }
        }
        *ret_secret = secret;
        if (ret)
                *ret = tk;
        return 0;

oom:
        explicit_bzero(raw, sizeof(raw));
        erase_and_free(secret);
        token_free(tk);
        return -ENOMEM;
}

Token *tokens_lookup(Tokens *t, const char *secret, size_t n, uint64_t now) {
        uint8_t h[TOKEN_HASH_LEN];
        Token *found = NULL;

        if (!t || !secret || n == 0 || hash_secret(secret, n, h) < 0)
                return NULL;
        /* Every hash is compared, whatever matched before. */
        for (Token *tk = t->head; tk; tk = tk->next)
                if (CRYPTO_memcmp(h, tk->hash, sizeof(h)) == 0)
                        found = tk;
        explicit_bzero(h, sizeof(h));
        if (found && found->expires_at > 0 && now >= found->expires_at)
                return NULL;
        return found;
}

Token *tokens_find(Tokens *t, const char *id) {
        for (Token *tk = t ? t->head : NULL; tk; tk = tk->next)
                if (streq(tk->id, id))
                        return tk;
        return NULL;
}

Token *tokens_first(Tokens *t) {
        return t ? t->head : NULL;
}

void tokens_remove(Tokens *t, Token *tk) {
        bool persistent;

        for (Token **p = &t->head; *p; p = &(*p)->next)
                if (*p == tk) {
                        *p = tk->next;
                        persistent = tk->lifetime == TOKEN_LIFETIME_PERSISTENT;
                        token_free(tk);
                        if (persistent)
                                (void) tokens_save(t);
                        return;
                }
}

unsigned tokens_gc(Tokens *t, uint64_t now) {
        unsigned n = 0;

        for (Token **p = &t->head; *p;) {
                Token *tk = *p;
                if (tk->expires_at > 0 && now >= tk->expires_at && tk->n_inflight == 0) {
                        *p = tk->next;
                        token_free(tk);
                        n++;
                } else
                        p = &tk->next;
        }
        return n;
}

void tokens_charge(Tokens *t, Token *tk, double cost_usd, uint64_t now) {
        if (cost_usd > 0)
                tk->spent_usd += cost_usd;
        if (tk->requests < UINT32_MAX)
                tk->requests++;
        tk->last_used_at = now;
        if (tk->lifetime == TOKEN_LIFETIME_PERSISTENT)
                (void) tokens_save(t);
}

bool token_allows_model(const Token *tk, const char *model) {
        if (!tk->models || !tk->models[0])
                return true;
        return model && strv_contains(tk->models, model);
}
