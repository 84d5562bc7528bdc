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

/* The app id of the Flatpak scope a process runs in, from the text of its
 * /proc/PID/cgroup: flatpak run moves itself (and so the app and its D-Bus
 * proxy) into app-flatpak-ID-PID.scope (flatpak-ID-PID.scope before 1.6).
 * For when /proc/PID/root cannot be read: a service in a user namespace
 * (systemd's PrivateUsers=, implied by the sandbox of a user unit) may not
 * look at the roots of processes outside it. Returns 0 and a new string,
 * -ENODATA when the process is in no Flatpak scope, -EINVAL for an id that
 * is not well-formed, -ENOMEM. */
int flatpak_scope_app_id(const char *cgroup_text, size_t size, char **ret_app_id);
