/* SPDX-License-Identifier: MIT */
/* bankr-llm credits add | credits auto | key reveal (placeholder until the polkit issue lands). */
#include "cli.h"

int verb_credits_add(int argc, char *argv[]) {
        return cli_fail(EXIT_FAIL, "Failed to add credits: not available in this version.");
}

int verb_credits_auto(int argc, char *argv[]) {
        return cli_fail(EXIT_FAIL, "Failed to change auto top-up: not available in this version.");
}

int verb_key_reveal(int argc, char *argv[]) {
        return cli_fail(EXIT_FAIL, "Failed to reveal the key: not available in this version.");
}
