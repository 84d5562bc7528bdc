/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "log.h"

int log_max_level = LOG_INFO;
bool log_prefix_levels = true;
static const char *program = NULL;

void log_set_program(const char *name) {
        program = name;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        int saved = errno;
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        char buf[2048];
        errno = error; /* for %m */
        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        if (log_prefix_levels)
                fprintf(stderr, "<%d>", level);
        if (log_max_level >= LOG_DEBUG)
                fprintf(stderr, "%s (%s:%d): %s\n", program ?: "bankr", file, line, buf);
        else if (program && !log_prefix_levels)
                fprintf(stderr, "%s: %s\n", program, buf);
        else
                fprintf(stderr, "%s\n", buf);
        errno = saved;
        return -error;
}
