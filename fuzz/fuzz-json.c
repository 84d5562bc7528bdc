/* SPDX-License-Identifier: MIT */
/*
 * The strict JSON parser and the files we rewrite with it: the bankr config
 * file and tool configs (setup_merge). Invariants: whatever parses prints
 * to text that parses again to the same text; a merge either refuses with
 * a sentence or gives strict JSON that merging again leaves unchanged.
 */
#include <string.h>

#include "bankr-config.h"
#include "fuzz.h"
#include "json-strict.h"
#include "setup-gen.h"

/* Claude Code's settings.json entries (key mode endpoint). */
static const char claude_settings[] = "{\"apiKeyHelper\": \"/usr/bin/bankr-llm token --app claude-code\", "
                                      "\"env\": {\"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:1\"}}";
static const char provider[] = "{\"baseUrl\": \"https://llm.bankr.bot\", \"apiKey\": \"${BANKR_API_KEY}\", "
                               "\"api\": \"openai-completions\", \"models\": []}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text, *what = NULL, *out = NULL, *again = NULL, *err = NULL;
        struct json_object *o = NULL, *o2 = NULL;
        const char *remedy = NULL;
        BankrConfig *c = NULL;

        if (size > 256 * 1024)
                return 0;
        text = malloc(size + 1);
        FUZZ_CHECK(text);
        memcpy(text, data, size);
        text[size] = 0;

        int r = json_parse_strict(text, &o, &what, &remedy);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r == -EBADMSG)
                FUZZ_CHECK(what && remedy);
        if (r == 0 && o) {
                FUZZ_CHECK(json_to_text(o, &out) == 0);
                free(what);
                what = NULL;
                FUZZ_CHECK(json_parse_strict(out, &o2, &what, &remedy) == 0);
                FUZZ_CHECK(json_to_text(o2, &again) == 0);
                FUZZ_CHECK(strcmp(out, again) == 0);
        }
        json_erase_and_putp(&o);
        json_erase_and_putp(&o2);
        free(what);
        free(out);
        free(again);
        out = again = NULL;

        /* The bankr config file: parse, and edit only what parses. */
        r = bankr_config_parse(text, size, &c, &err);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r == 0) {
                const char *keys[] = { "llmKey", "llmUrl" };
                const char *values[] = { NULL, "https://x.example" };
                r = bankr_config_edit(text, keys, values, 2, &out);
                FUZZ_CHECK(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        BankrConfig *c2 = NULL;
                        FUZZ_CHECK(bankr_config_parse(out, strlen(out), &c2, NULL) == 0);
                        FUZZ_CHECK(c2->llm_key == NULL && strcmp(c2->llm_url, "https://x.example") == 0);
                        bankr_config_free(c2);
                }
        }
        bankr_config_free(c);
        free(err);
        free(out);
        err = out = NULL;

        /* Tool configs: refuse with a reason, or merge idempotently. */
        for (SetupTool t = SETUP_TOOL_OPENCLAW; t <= SETUP_TOOL_CLAUDE; t++) {
                const char *prov = t == SETUP_TOOL_CLAUDE ? claude_settings : provider;
                r = setup_merge(t, text, prov, false, &out, &err);
                FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
                if (r == -EBADMSG)
                        FUZZ_CHECK(err && *err);
                if (r == 0) {
                        char *err2 = NULL;
                        FUZZ_CHECK(setup_merge(t, out, prov, false, &again, &err2) == 0);
                        FUZZ_CHECK(strcmp(out, again) == 0);
                        free(err2);
                }
                free(out);
                free(again);
                free(err);
                out = again = err = NULL;
        }

        free(text);
        return 0;
}
