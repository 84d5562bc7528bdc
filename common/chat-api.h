/* SPDX-License-Identifier: MIT */
/*
 * What the chat modules share: which of the two wire formats the gateway
 * speaks — OpenAI Chat Completions (/v1/chat/completions) or Anthropic
 * Messages (/v1/messages) — and the token counts of one answer. The formats
 * themselves are in chat-request.h (bodies we send), chat-stream.h (the
 * streamed answer), http-error.h (error answers, Retry-After) and
 * chat-cost.h (prices).
 */
#pragma once

#include "util.h"

typedef enum ChatApi {
        CHAT_API_OPENAI,
        CHAT_API_ANTHROPIC,
        _CHAT_API_MAX,
        _CHAT_API_INVALID = -EINVAL,
} ChatApi;

/* "openai", "anthropic". */
DECLARE_STRING_TABLE_LOOKUP(chat_api, ChatApi);

/* Token counts, with input excluding the cached part in both formats:
 *  - OpenAI (final chunk's "usage"): input = prompt_tokens − cached_tokens
 *    − cache_write_tokens, output = completion_tokens, cache_read =
 *    prompt_tokens_details.cached_tokens, cache_write =
 *    prompt_tokens_details.cache_write_tokens (not sent by OpenAI itself,
 *    so usually 0; some gateways report it).
 *  - Anthropic: message_start's message.usage gives input_tokens,
 *    cache_creation_input_tokens (cache_write) and cache_read_input_tokens;
 *    message_delta's usage.output_tokens is cumulative and replaces output
 *    (any input/cache counts it carries replace those too). */
typedef struct ChatUsage {
        uint64_t input;
        uint64_t output;
        uint64_t cache_read;
        uint64_t cache_write;
} ChatUsage;
