/* SPDX-License-Identifier: MIT */
/* The two stream transcripts of wire-protocols.md, exactly as real upstreams
 * send them, and a helper to change their line endings; shared by the SSE
 * and chat-wire unit tests. */
#pragma once

#include <stdlib.h>
#include <string.h>

static const char openai_transcript[] =
        "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1761564674,\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n"
        "\n"
        "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1761564674,\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null}\n"
        "\n"
        "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1761564674,\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n"
        "\n"
        "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1761564674,\"model\":\"gpt-5-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n"
        "\n"
        "data: [DONE]\n"
        "\n";

static const char anthropic_transcript[] =
        "event: message_start\n"
        "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_01\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-haiku-4.5\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n"
        "\n"
        "event: content_block_start\n"
        "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n"
        "\n"
        "event: ping\n"
        "data: {\"type\": \"ping\"}\n"
        "\n"
        "event: content_block_delta\n"
        "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n"
        "\n"
        "event: content_block_stop\n"
        "data: {\"type\": \"content_block_stop\", \"index\": 0}\n"
        "\n"
        "event: message_delta\n"
        "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\": null}, \"usage\": {\"output_tokens\": 15}}\n"
        "\n"
        "event: message_stop\n"
        "data: {\"type\": \"message_stop\"}\n"
        "\n";

/* Rewrites every "\n" as eol (aborts when out of memory: tests only). */
static inline char *with_eol(const char *t, const char *eol) {
        size_t n = 0, el = strlen(eol);
        char *r = malloc(strlen(t) * el + 1);

        if (!r)
                abort();
        for (; *t; t++)
                if (*t == '\n') {
                        memcpy(r + n, eol, el);
                        n += el;
                } else
                        r[n++] = *t;
        r[n] = 0;
        return r;
}
