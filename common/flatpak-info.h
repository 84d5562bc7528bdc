/* SPDX-License-Identifier: MIT */
/*
 * The .flatpak-info file that Flatpak puts at the root of every sandbox
 * (and of the D-Bus proxy that speaks for the app on the session bus). It
 * is how a service tells a sandboxed caller from a host process, as the
 * desktop portals do: /proc/PID/root/.flatpak-info exists for the former.
 * Pure: the caller reads the file.
 */
#pragma once

#include <stddef.h>

/* The app id (the "name" key of the [Application] group, or of [Runtime]
 * for a runtime's sandbox) from the text of a .flatpak-info keyfile. Returns
 * 0 and a new string, -ENODATA when the file names no app, -EINVAL when the
 * name is not a well-formed id (it is shown to people: only letters, digits,
 * '.', '_' and '-', at most 255 bytes), -ENOMEM. */
int flatpak_info_app_id(const char *text, size_t size, char **ret_app_id);
