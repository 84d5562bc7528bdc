/* SPDX-License-Identifier: MIT */
/*
 * Who a process is, from /proc: whether it runs in a Flatpak sandbox (and
 * which app), the desktop app id of its systemd unit, its executable's
 * name. Small synchronous reads of /proc (no bus, no disk), fine on the
 * loop. The pid comes from the bus daemon (GetConnectionCredentials).
 */
#pragma once

#include <sys/types.h>

/* 1 and the app id when pid runs in a Flatpak sandbox
 * (/proc/PID/root/.flatpak-info exists; "(unnamed)" when it names no
 * well-formed app), 0 and NULL when it does not, <0 when that cannot be
 * told (-ESRCH: the process is gone; its root unreadable). */
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
