/* SPDX-License-Identifier: MIT */
/* Small sd-bus message helpers shared by the daemon and the clients. */
#pragma once

#include <systemd/sd-bus.h>

/* Appends one {sv} entry whose value is an "as" (inside an open a{sv}). */
int bus_append_dict_strv(sd_bus_message *m, const char *key, char **strv);
