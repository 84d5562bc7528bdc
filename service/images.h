/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Images (images.c): Generate asks the gateway's
 * POST /v1/images/generations (no streaming: one JSON answer) and returns
 * each image as a sealed memfd. The caller leaving the bus cancels its
 * calls, as for chat.
 */
#pragma once

#include "bankr-llmd.h"

/* Settled numbers, documented in dbus/bot.bankr.LLM1.xml. */
#define IMAGES_TIMEOUT_USEC_DEFAULT (180 * USEC_PER_SEC) /* a large image takes a minute or two */
#define IMAGES_TIMEOUT_S_MAX 600U
#define IMAGES_MAX_N 4U                                   /* the gateway's cap on n */
#define IMAGES_PROMPT_MAX ((size_t) 32U * 1024U)         /* bytes */
#define IMAGES_MAX_PER_CALLER 8U                          /* calls in flight per caller */
#define IMAGES_DEFAULT_MODEL "gpt-image-2"

int images_new(Context *c, Images **ret);
Images *images_free(Images *im);
extern const sd_bus_vtable images_vtable[];
