/* SPDX-License-Identifier: MIT */
/*
 * Who a process is, from /proc: whether it runs in a Flatpak sandbox (and
 * which app), the desktop app id of its systemd unit, its executable's
 * name. Small synchronous reads of /proc (no bus, no disk), fine on the
 * loop. The pid comes from the bus daemon (GetConnectionCredentials).
 */
#pragma once

#include <sys/types.h>

/* 1 and the app id when pid runs in a Flatpak sandbox, 0 and NULL when it
 * does not, <0 when that cannot be told (-ESRCH: the process is gone; its
 * files unreadable). Two signs, either one enough: the Flatpak scope the
 * process runs in (its /proc/PID/cgroup, readable by anyone), and the
 * .flatpak-info at the root of its sandbox. The root cannot be looked at
 * from inside a user namespace (systemd gives the sandboxed user unit one),
 * so there the scope decides. "(unnamed)" for a sandbox that names no
 * well-formed app. polkit.c refuses such callers what hands out the key;
 * usage.c books them under the app id. */
int pid_flatpak_app(pid_t pid, char **ret_app_id);

/* The app of a D-Bus caller for the ledger and budgets:
 *   1. the Flatpak app id when it is sandboxed;
 *   2. else the desktop app id of its systemd scope or unit, from
 *      /proc/PID/cgroup (app-gnome-org.gnome.Terminal-1234.scope →
 *      org.gnome.Terminal; see common/app-id.h);
 *   3. else its executable's name (/proc/PID/comm), characters outside
 *      [A-Za-z0-9._-] replaced by '_';
 *   4. else "unknown".
 * Always a well-formed app id (app_id_is_valid()). -ENOMEM only. */
int pid_app_id(pid_t pid, char **ret_app_id);
