/* SPDX-License-Identifier: MIT */
/*
 * The desktop application id of a process from the systemd unit it runs in,
 * following systemd's "Desktop Environment Integration" naming
 * (https://systemd.io/DESKTOP_ENVIRONMENTS/):
 *
 *   app[-<launcher>]-<ApplicationID>-<RANDOM>.scope
 *   app[-<launcher>]-<ApplicationID>[@<RANDOM>].service
 *
 * e.g. app-gnome-org.gnome.Terminal-1234.scope, app-flatpak-org.x.Y-123.scope
 * and app-org.kde.konsole@12.service. The launcher never holds a '-'; a '-'
 * inside the ApplicationID is escaped as "\x2d" (systemd-escape), so the
 * first unescaped dash after "app-" ends the launcher when there are two.
 * Pure: the caller reads /proc/PID/cgroup.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define APP_ID_MAX 255

/* Letters, digits, '.', '_' and '-' only, 1..APP_ID_MAX bytes: the ids we
 * show people and key budgets by. */
bool app_id_is_valid(const char *s, size_t n);

/* The ApplicationID of one unit name ("app-gnome-org.gnome.Terminal-1234.scope").
 * 0 and a new string; -ENODATA when the unit is not an app unit of that
 * scheme (e.g. "session-2.scope", "gnome-terminal-server.service"); -EINVAL
 * when the id it holds is not a well-formed one; -ENOMEM. */
int app_id_from_unit(const char *unit, size_t n, char **ret_app_id);

/* The ApplicationID from the text of /proc/PID/cgroup: the innermost path
 * component that is an app unit (so an app started from a terminal's scope
 * inside its own scope is named by its own). Same returns. */
int app_id_from_cgroup(const char *text, size_t size, char **ret_app_id);
