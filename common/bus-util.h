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

/* A method's options: an a{sv} in which each key may come once.
 * bus_read_options() walks it (bus_dict_walk()) and calls f inside each
 * entry's variant, with contents its signature; f reads the value (or fails
 * with an InvalidArgs sentence in error) and the walk leaves the variant. A
 * key given twice is refused before f sees it: InvalidArgs "Option NAME is
 * given twice." Negative on the first failure, else non-negative. */
typedef int (*bus_option_func_t)(sd_bus_message *m, const char *name, const char *contents, void *userdata,
                                 sd_bus_error *error);
int bus_read_options(sd_bus_message *m, bus_option_func_t f, void *userdata, sd_bus_error *error);

/* Readers for f above, for a value whose variant holds contents. An integer
 * option takes any integer type (gdbus sends int32 for a bare number) from
 * lo to hi; a string option an s. Anything else is InvalidArgs naming the
 * option ("Option NAME must be ..."). */
int bus_option_read_integer(sd_bus_message *m, const char *contents, const char *name, int64_t lo, int64_t hi,
                            int64_t *ret, sd_bus_error *error);
int bus_option_read_string(sd_bus_message *m, const char *contents, const char *name, const char **ret,
                           sd_bus_error *error);
