/* SPDX-License-Identifier: MIT */
/* Unit tests for the key resolution of service/key.c: six sources, first
 * match wins, in the order of the D-Bus contract (BANKR_LLM_KEY → keyring
 * llm → llmKey → BANKR_API_KEY → keyring api → apiKey). */
#include "key.h"
#include "test.h"

static KeyResolution resolve(const char *env_llm, const char *ring_llm, const char *cfg_llm, const char *env_api,
                             const char *ring_api, const char *cfg_api) {
        const char *const sources[_KEY_SOURCE_MAX] = { env_llm, ring_llm, cfg_llm, env_api, ring_api, cfg_api };
        KeyResolution r;

        key_resolve(sources, &r);
        return r;
}

static void expect(KeyResolution r, const char *key, const char *source, const char *kind, const char *api_key,
                   const char *api_source) {
        if (key)
                ASSERT_STREQ(r.key, key);
        else
                ASSERT(!r.key);
        ASSERT_STREQ(r.source, source);
        ASSERT_STREQ(r.kind, kind);
        if (api_key)
                ASSERT_STREQ(r.api_key, api_key);
        else
                ASSERT(!r.api_key);
        ASSERT_STREQ(r.api_source, api_source);
}

int main(void) {
        /* Nothing anywhere. */
        expect(resolve(NULL, NULL, NULL, NULL, NULL, NULL), NULL, "none", "", NULL, "none");
        /* Empty strings count as absent. */
        expect(resolve("", "", "", "", "", ""), NULL, "none", "", NULL, "none");

        /* Each LLM source beats everything after it. */
        expect(resolve("e1", "r1", "c1", "e2", "r2", "c2"), "e1", "env", "llm", "e2", "env");
        expect(resolve(NULL, "r1", "c1", "e2", "r2", "c2"), "r1", "keyring", "llm", "e2", "env");
        expect(resolve(NULL, NULL, "c1", "e2", "r2", "c2"), "c1", "config", "llm", "e2", "env");
        expect(resolve("", "r1", "c1", NULL, NULL, NULL), "r1", "keyring", "llm", NULL, "none");

        /* Without an LLM key, the API key serves as the key, in its own order. */
        expect(resolve(NULL, NULL, NULL, "e2", "r2", "c2"), "e2", "env", "api", "e2", "env");
        expect(resolve(NULL, NULL, NULL, NULL, "r2", "c2"), "r2", "keyring", "api", "r2", "keyring");
        expect(resolve(NULL, NULL, NULL, NULL, NULL, "c2"), "c2", "config", "api", "c2", "config");

        /* The agent API key never comes from an LLM source. */
        expect(resolve("e1", NULL, NULL, NULL, NULL, NULL), "e1", "env", "llm", NULL, "none");
        expect(resolve(NULL, NULL, "c1", NULL, "r2", NULL), "c1", "config", "llm", "r2", "keyring");
        expect(resolve(NULL, "r1", NULL, NULL, NULL, "c2"), "r1", "keyring", "llm", "c2", "config");
        return test_exit_status();
}
