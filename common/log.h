/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr with syslog priority prefixes ("<3>…"), which journald
 * turns back into levels. Never pass a secret to these functions.
 */
#pragma once

#include <syslog.h>

#include "util.h"

extern int log_max_level;      /* LOG_INFO by default; LOG_DEBUG with -v */
extern bool log_prefix_levels; /* "<N>" prefixes; off for interactive CLIs */

void log_set_program(const char *name);

/* Logs and returns -abs(error) (or 0 when error is 0); %m means error. */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_oom() log_full_errno(LOG_ERR, ENOMEM, "Out of memory.")
