/* SPDX-License-Identifier: MIT */
/* Small sd-bus message helpers shared by the daemon and the clients. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

/* Appends one {sv} entry whose value is an "as" (inside an open a{sv}). */
int bus_append_dict_strv(sd_bus_message *m, const char *key, char **strv);

/* Called by bus_dict_walk() for each entry, with m standing at the entry's
 * variant, which it must read or skip (sd_bus_message_skip(m, "v")). */
typedef int (*bus_dict_entry_func_t)(sd_bus_message *m, const char *key, void *userdata);

/* Walks the a{sv} at m's position, entry by entry, and leaves m after it.
 * A negative return from f ends the walk and is returned; so is any error
 * of sd-bus (-ENXIO when m does not stand at an a{sv}). Non-negative when
 * every entry was read. */
int bus_dict_walk(sd_bus_message *m, bus_dict_entry_func_t f, void *userdata);

/* The D-Bus integer types, as single-letter signatures. */
#define BUS_INTEGER_TYPES "ynqiuxt"

/* Reads the next value of m, a basic integer of type `type` (one of
 * BUS_INTEGER_TYPES), widened to an int64_t; a t above INT64_MAX becomes
 * INT64_MAX. -EINVAL, with nothing read, for any other type; else 0 or the
 * error of sd-bus. */
int bus_read_integer(sd_bus_message *m, char type, int64_t *ret);
