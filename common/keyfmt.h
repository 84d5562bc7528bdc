/* SPDX-License-Identifier: MIT */
/*
 * What a key may look like, and how it is shown to people. A key is opaque
 * to us (the gateway's keys start with bk_, but we do not insist), so the
 * checks are about what cannot possibly be a key: empty, whitespace, control
 * characters, invalid UTF-8, absurd length.
 */
#pragma once

#include "util.h"

#define KEY_MAX_BYTES 4096

/* 0 if acceptable, else -EINVAL and a static sentence in *ret_reason. */
int key_check(const char *key, size_t len, const char **ret_reason);

/* "bk_abc...wxyz" (first 6, "...", last 4 characters), "****" for 8 or fewer
 * characters, "" for NULL/empty. Counts characters, not bytes. */
char *key_mask(const char *key);

/* Runs of the key at least this long (in bytes) are redacted. */
#define KEY_REDACT_RUN 8

/* A copy of s, a text some server sent, with the key replaced by "***"
 * wherever it is quoted: the whole key, however short; any run of
 * KEY_REDACT_RUN or more bytes of it (any piece, not only its start or end:
 * servers cut, and an echo may drop characters at either end), widened to
 * whole UTF-8 characters (overlapping runs become one "***");
 * and a start of the key longer than what key_mask() shows that ends the
 * text or stands before a "…" or "...". O(len(s) · log len(key)); the
 * temporary copy of the key's runs is wiped. NULL key or s: a plain copy
 * (NULL for NULL). Only for texts from outside: a short key would garble our
 * own sentences. */
char *key_redact(const char *s, const char *key);

/* "llm" or "api" → true. */
bool key_kind_valid(const char *kind);
