/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Setup (setup.c): tool configurations for the gateway.
 */
#pragma once

#include "bankr-llmd.h"

int setup_new(Context *c, Setup **ret);
Setup *setup_free(Setup *s);
extern const sd_bus_vtable setup_vtable[];
