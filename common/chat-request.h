/* SPDX-License-Identifier: MIT */
/*
 * The JSON bodies of streamed chat requests, in the OpenAI and the
 * Anthropic format. Pure code: parameters in, text out.
 */
#pragma once

#include <math.h>

#include "chat-api.h"

typedef struct ChatMessage {
        const char *role; /* "system", "user" or "assistant" */
        const char *content;
} ChatMessage;

/* Frees an array of n messages whose contents are owned by it (the roles
 * are static strings), as the daemon keeps them. Returns NULL. */
ChatMessage *chat_messages_free(ChatMessage *messages, size_t n);

typedef struct ChatRequestParams {
        const char *model;
        const ChatMessage *messages;
        size_t n_messages;
        const char *system;               /* NULL or "": none */
        uint32_t max_tokens;              /* 0: unset */
        uint32_t model_max_output_tokens; /* the model's own limit, 0: unknown */
        double temperature;               /* NAN: unset */
        double top_p;                     /* NAN: unset */
        char *const *stop;                /* strv, NULL or empty: none */
} ChatRequestParams;

#define CHAT_REQUEST_PARAMS_INIT { .temperature = NAN, .top_p = NAN }

/* Anthropic requires max_tokens. When the caller sets none we send
 * min(model_max_output_tokens, CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS), or the
 * default alone when the model's limit is unknown. */
#define CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS 4096U

/* Builds the JSON body of a streamed request ("stream": true always).
 *
 * OpenAI: the "system" option becomes a leading system message; system-role
 * messages stay where they are; max_tokens is sent as
 * "max_completion_tokens" (the current name; the deprecated "max_tokens" is
 * refused by reasoning models); "stop" as is; and
 * "stream_options": {"include_usage": true} so the usage arrives.
 *
 * Anthropic: "system" is a top-level field holding the option followed by
 * every system-role message, joined with "\n\n", and those messages are
 * removed from "messages"; "stop" becomes "stop_sequences"; "max_tokens" is
 * always present (see above). Consecutive messages with the same role are
 * passed on as they are: the gateway accepts them.
 *
 * Returns -EINVAL for an empty model, no messages (for Anthropic: none left
 * after taking out the system ones), an unknown role, a NULL content, or a
 * temperature/top_p that is not a finite non-negative number. */
int chat_request_build(ChatApi api, const ChatRequestParams *p, char **ret_json);
