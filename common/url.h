/* SPDX-License-Identifier: MIT */
/*
 * Gateway and agent-API base URLs, normalised the way the bankr CLI and the
 * gateway accept them: "https://host[:port][/path]", no trailing slash, no
 * trailing "/v1". Plain http is accepted for loopback hosts only, so a key is
 * never sent in clear text across a network.
 */
#pragma once

#include "util.h"

#define DEFAULT_GATEWAY_URL "https://llm.bankr.bot"
#define DEFAULT_API_URL "https://api.bankr.bot"

/* Returns 0 and the normalised URL, or -EINVAL and a sentence saying what is
 * wrong (the input is quoted only when it contains no credentials). */
int url_normalize(const char *in, char **ret, char **ret_error);

/* True for localhost, 127.0.0.0/8 and ::1. */
bool url_host_is_loopback(const char *host);
