/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm-notify's helpers for running what an action asks for: finding a
 * terminal emulator in PATH, building its command line, and starting a child
 * with posix_spawn (the caller reaps it through sd-event).
 */
#pragma once

#include <sys/types.h>

/* Finds name in $PATH (or takes it as is when it contains a '/').
 * Returns 0 and the full path, or -ENOENT. */
int find_executable(const char *name, char **ret);

/* Builds argv for running command (a NULL-terminated argv) in the first
 * terminal emulator found in PATH, so that the window stays open until the
 * user presses Enter. Returns -ENOENT when no terminal is found. */
int terminal_command(char *const *command, char ***ret_argv);

/* Starts argv[0] (a full path, or looked up in PATH) with a clean signal
 * mask in a session of its own, so that it outlives us and our signals. */
int spawn_detached(char *const *argv, pid_t *ret_pid);
