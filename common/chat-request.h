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

/* The gateway's privacy tiers, weakest first: each contains the
 * guarantees of the ones before it, so the stronger of two is the larger. */
typedef enum ChatPrivacy {
        CHAT_PRIVACY_STANDARD,
        CHAT_PRIVACY_ZDR,
        CHAT_PRIVACY_PRIVATE,
        _CHAT_PRIVACY_MAX,
        _CHAT_PRIVACY_INVALID = -EINVAL,
} ChatPrivacy;

/* "standard", "zdr", "private" (exactly these: a tier is never guessed). */
DECLARE_STRING_TABLE_LOOKUP(chat_privacy, ChatPrivacy);
/* The same, case-insensitive, for what the gateway sends (X-Privacy-Tier). */
ChatPrivacy chat_privacy_from_header(const char *s);

static inline ChatPrivacy chat_privacy_max(ChatPrivacy a, ChatPrivacy b) {
        return a > b ? a : b;
}

/* The tier a model id's trailing ":zdr" or ":private" asks for (any case,
 * as the gateway matches it), CHAT_PRIVACY_STANDARD without one; *ret_len
 * (may be NULL) is the length of the id without the suffix. */
ChatPrivacy chat_privacy_from_model_suffix(const char *id, size_t *ret_len);
/* The tier a base URL pins with a last path segment "/zdr" or "/private"
 * (a tier endpoint), else CHAT_PRIVACY_STANDARD. */
ChatPrivacy chat_privacy_from_url(const char *url);

/* An image attached to the message at index message, already checked
 * (image_type_detect()). The data is the caller's. */
typedef struct ChatImage {
        size_t message;
        const char *mime;
        const void *data;
        size_t size;
} ChatImage;

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
        ChatPrivacy privacy;              /* STANDARD: no "privacy" field is sent */
        const ChatImage *images;          /* sorted by message index, or NULL */
        size_t n_images;
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
 * privacy: above CHAT_PRIVACY_STANDARD the body carries "privacy": "zdr" or
 * "private" (the standard tier sends nothing, so a tier endpoint such as
 * a gateway URL ending in /zdr never sees a conflicting field).
 *
 * images: a message with images has a content array: OpenAI
 * [{"type":"text","text":…}, {"type":"image_url","image_url":{"url":
 * "data:<mime>;base64,…"}}…], Anthropic [{"type":"image","source":
 * {"type":"base64","media_type":<mime>,"data":…}}…, {"type":"text",…}]
 * (images first, as Anthropic advises). The text part is left out when
 * the content is empty.
 *
 * Returns -EINVAL for an empty model, an image whose index is past the
 * messages or that belongs to a system message, no messages (for Anthropic: none left
 * after taking out the system ones), an unknown role, a NULL content, or a
 * temperature/top_p that is not a finite non-negative number. */
int chat_request_build(ChatApi api, const ChatRequestParams *p, char **ret_json);
