/* SPDX-License-Identifier: MIT */
/* bankr-llm credits | key validate (placeholder until the Credits issue lands). */
#include "cli.h"

int verb_credits(int argc, char *argv[]) {
        if (argc > 1 && streq(argv[1], "add"))
                return verb_credits_add(argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "auto"))
                return verb_credits_auto(argc - 1, argv + 1);
        return cli_fail(EXIT_FAIL, "Failed to show credits: not available in this version.");
}

int verb_key_validate(int argc, char *argv[]) {
        return cli_fail(EXIT_FAIL, "Failed to validate the key: not available in this version.");
}
