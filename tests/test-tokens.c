/* SPDX-License-Identifier: MIT */
/* Unit tests for the endpoint's tokens (service/tokens.c): minting, lookup,
 * expiry, the allowlist and budget, and the file of persistent tokens
 * (hashed only, mode 0600, survives a reload, a damaged one set aside). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "tokens.h"

static char dir[] = "/tmp/test-tokens-XXXXXX";

static void test_mint_and_lookup(void) {
        _cleanup_(tokens_freep) Tokens *t = NULL;
        char *s1 = NULL, *s2 = NULL;
        Token *a, *b;
        char *models[] = { "gpt-5-mini", NULL };

        ASSERT(tokens_new(NULL, &t) == 0);
        ASSERT(tokens_create(t, "app-a", TOKEN_LIFETIME_CONNECTION, ":1.5", 0, 0, NULL, &s1, &a) == 0);
        ASSERT(tokens_create(t, "app-b", TOKEN_LIFETIME_EXPIRING, NULL, now_usec(CLOCK_REALTIME) + USEC_PER_SEC, 1.0,
                             models, &s2, &b) == 0);
        ASSERT(strlen(s1) == TOKEN_SECRET_LEN && strncmp(s1, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0);
        ASSERT(strcmp(s1, s2) != 0 && strcmp(a->id, b->id) != 0);
        ASSERT(strncmp(a->id, "tok_", 4) == 0 && strlen(a->id) == 16);
        ASSERT(!strstr(s1, a->id + 4));
        ASSERT_STREQ(a->owner, ":1.5");

        ASSERT(tokens_lookup(t, s1, strlen(s1), now_usec(CLOCK_REALTIME)) == a);
        ASSERT(tokens_lookup(t, s2, strlen(s2), now_usec(CLOCK_REALTIME)) == b);
        ASSERT(!tokens_lookup(t, s1, strlen(s1) - 1, now_usec(CLOCK_REALTIME)));
        s1[10] ^= 1;
        ASSERT(!tokens_lookup(t, s1, strlen(s1), now_usec(CLOCK_REALTIME)));
        ASSERT(!tokens_lookup(t, "", 0, 0));
        ASSERT(tokens_find(t, b->id) == b);

        /* Expired: not found, and collected once nothing is in flight. */
        ASSERT(!tokens_lookup(t, s2, strlen(s2), b->expires_at));
        b->n_inflight = 1;
        ASSERT(tokens_gc(t, b->expires_at) == 0);
        b->n_inflight = 0;
        ASSERT(tokens_gc(t, b->expires_at) == 1);
        ASSERT(!tokens_find(t, "tok_nothing"));

        ASSERT(token_allows_model(a, "anything") && token_allows_model(a, NULL));
        erase_and_free(s1);
        erase_and_free(s2);
}

static void test_allowlist_and_budget(void) {
        _cleanup_(tokens_freep) Tokens *t = NULL;
        char *s = NULL;
        Token *tk;
        char *models[] = { "gpt-5-mini", "claude-haiku-4.5", NULL };

        ASSERT(tokens_new(NULL, &t) == 0);
        ASSERT(tokens_create(t, "x", TOKEN_LIFETIME_CONNECTION, ":1.1", 0, 0.5, models, &s, &tk) == 0);
        ASSERT(token_allows_model(tk, "claude-haiku-4.5"));
        ASSERT(!token_allows_model(tk, "gpt-5"));
        ASSERT(!token_allows_model(tk, NULL));
        ASSERT(!token_budget_spent(tk));
        tokens_charge(t, tk, 0.3, 7);
        ASSERT(!token_budget_spent(tk) && tk->requests == 1 && tk->last_used_at == 7);
        tokens_charge(t, tk, 0.2, 8);
        ASSERT(token_budget_spent(tk) && tk->requests == 2);
        tokens_remove(t, tk);
        ASSERT(!tokens_first(t));
        erase_and_free(s);
}

static bool file_contains(const char *path, const char *needle) {
        _cleanup_free_ char *text = NULL;
        size_t n;
        if (read_full_file(path, 1 << 20, &text, &n) < 0)
                return false;
        return strstr(text, needle) != NULL;
}

static void test_persistent_file(void) {
        _cleanup_free_ char *path = NULL, *bad = NULL;
        char *s = NULL, *s2 = NULL;
        Token *tk;
        struct stat st;
        Tokens *t = NULL;

        ASSERT(asprintf(&path, "%s/state/bankr-llm/tokens.json", dir) > 0);
        ASSERT(tokens_new(path, &t) == 0);
        ASSERT(tokens_create(t, "keeper", TOKEN_LIFETIME_PERSISTENT, NULL, 0, 0, NULL, &s, &tk) == 0);
        ASSERT(tokens_create(t, "fleeting", TOKEN_LIFETIME_CONNECTION, ":1.2", 0, 0, NULL, &s2, NULL) == 0);
        tokens_charge(t, tk, 0.25, 42);
        ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        ASSERT(!file_contains(path, s) && !file_contains(path, s + strlen(TOKEN_PREFIX)));
        ASSERT(file_contains(path, "keeper") && !file_contains(path, "fleeting"));
        t = tokens_free(t);

        ASSERT(tokens_new(path, &t) == 0);
        tk = tokens_lookup(t, s, strlen(s), 0);
        ASSERT(tk && tk->lifetime == TOKEN_LIFETIME_PERSISTENT);
        ASSERT_STREQ(tk->app, "keeper");
        ASSERT(tk->requests == 1 && tk->spent_usd == 0.25 && tk->last_used_at == 42);
        ASSERT(!tokens_lookup(t, s2, strlen(s2), 0));
        tokens_remove(t, tk);
        ASSERT(!file_contains(path, "keeper"));
        t = tokens_free(t);

        /* A damaged file is set aside, not silently lost. */
        ASSERT(write_file_atomic(path, "[{\"id\":1}", 9, 0600) == 0);
        ASSERT(tokens_new(path, &t) == 0);
        ASSERT(!tokens_first(t));
        ASSERT(asprintf(&bad, "%s.bad", path) > 0);
        ASSERT(access(bad, F_OK) == 0 && access(path, F_OK) != 0);
        t = tokens_free(t);
        erase_and_free(s);
        erase_and_free(s2);
}

int main(void) {
        ASSERT(mkdtemp(dir));
        test_mint_and_lookup();
        test_allowlist_and_budget();
        test_persistent_file();
        {
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "rm -rf -- %s", dir);
                (void) !system(cmd);
        }
        return test_exit_status();
}
