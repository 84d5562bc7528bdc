/* SPDX-License-Identifier: MIT */
/*
 * Before the CLI sends a key over the bus: is the owner of bot.bankr.LLM1
 * the installed service, or a program that took the name while bankr-llmd
 * was not running? See "Who gets the key" in docs/architecture.md.
 */
#pragma once

#include <systemd/sd-bus.h>

/* Starts the service if needed and checks its owner. Returns 0 and the
 * owner's unique name (send the key there, not to the well-known name, so
 * that the check and the call reach the same connection), or prints why
 * not and returns -EXIT_*. what: "store the LLM key". */
int cli_peer_trusted(sd_bus *bus, const char *what, char **ret_unique);

/* Key.Set(key, kind) to the checked owner; prints errors, returns 0 or
 * -EXIT_*. */
int cli_peer_set_key(sd_bus *bus, const char *what, const char *key, const char *kind);
