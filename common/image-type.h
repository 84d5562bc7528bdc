/* SPDX-License-Identifier: MIT */
/*
 * Images by their content, for Chat's "images" option and Images.Generate:
 * the type of a PNG, JPEG, GIF or WebP by its first bytes (never by a name
 * or by what the sender claims), and the base64 both directions need (a
 * data: URL or an Anthropic base64 source out, the gateway's b64_json in).
 * Pure code; fuzz/fuzz-image-type.c feeds it anything.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Bytes of one image the service accepts or returns at most: 20 MiB
 * decoded, what the providers accept for one image (Anthropic's API
 * refuses larger requests, OpenAI's own cap is 20 MB). */
#define IMAGE_SIZE_MAX ((size_t) 20U * 1024U * 1024U)
/* Images per chat request at most (all of them together stay within
 * IMAGE_SIZE_MAX as well: the request body is built in memory). */
#define IMAGE_MAX_PER_REQUEST 16U

/* "image/png", "image/jpeg", "image/gif" or "image/webp" by the magic
 * bytes at the start of data, or NULL for anything else (too short
 * included). */
const char *image_type_detect(const void *data, size_t n);

/* Standard base64 (RFC 4648, with padding) of n bytes; NUL-terminated.
 * Returns 0, -ENOMEM, or -EFBIG when the result would overflow. */
int base64_encode(const void *data, size_t n, char **ret, size_t *ret_len);
/* The same into out, which holds at least BASE64_LEN(n) bytes (no NUL is
 * written); returns the length. Pieces of a multiple of 3 bytes encode to
 * pieces of the whole. */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)
size_t base64_encode_to(const void *data, size_t n, char *out);
/* Decodes standard base64 (padding optional; white space skipped; the URL
 * alphabet's - and _ accepted too). At most max bytes of output, else
 * -EFBIG; anything else that is not base64 is -EINVAL. */
int base64_decode(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_size);
