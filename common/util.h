/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by everything: cleanup attributes, ownership
 * transfer, string predicates and secret wiping. Modelled on the habits of
 * systemd and dbus-broker; written for this project.
 */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
/* GLib defines the same three; keep its definitions where it came first. */
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#ifndef CLAMP
#define CLAMP(x, lo, hi) MIN(MAX((x), (lo)), (hi))
#endif

/* Hand ownership of a pointer over: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _p_ = (p);     \
                (p) = NULL;                  \
                _p_;                         \
        })
#define TAKE_FD(fd)                          \
        ({                                   \
                int _fd_ = (fd);             \
                (fd) = -EBADF;               \
                _fd_;                        \
        })

/* Defines fooP(type **p) calling foo(*p) when set, for use with _cleanup_. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)         \
        static inline void func##p(type *p) {          \
                if (*p)                                 \
                        (void) func(*p);                \
        }

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0)
                (void) close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Secrets: overwrite before the memory goes back to the allocator. */
static inline void *erase_and_free(void *p) {
        if (p) {
                explicit_bzero(p, strlen(p));
                free(p);
        }
        return NULL;
}
static inline void erase_and_freep(void *p) {
        erase_and_free(*(void **) p);
}
#define _cleanup_erase_ _cleanup_(erase_and_freep)

/* Replace *dst with a copy of src (NULL allowed). Returns -ENOMEM or 0. */
int free_and_strdup(char **dst, const char *src);
/* Same for secrets: the old value is wiped. */
int erase_and_strdup(char **dst, const char *src);
/* Replace *dst with the text fmt formats from ap, freeing the old one;
 * when out of memory *dst becomes NULL and -ENOMEM is returned, else 0. */
int free_and_vasprintf(char **dst, const char *fmt, va_list ap) _printf_(2, 0);

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)
#define isempty(s) (!(s) || !(s)[0])
static inline const char *strempty(const char *s) {
        return s ?: "";
}
static inline const char *strna(const char *s) {
        return s ?: "n/a";
}
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

/* Enum ↔ string through a table, in the spirit of systemd's string-table.h.
 * Given `static const char *const name##_table[N]` indexed by the enum:
 *  - DEFINE_STRING_TABLE_LOOKUP(name, type, invalid) defines
 *    name##_to_string(type) (NULL out of range) and
 *    name##_from_string(const char *) (invalid for NULL or an unknown name);
 *  - DEFINE_STRING_TABLE_TO_STRING(name, type, fallback): the first only,
 *    fallback out of range;
 *  - DEFINE_PRIVATE_…: the same as static functions;
 *  - DECLARE_STRING_TABLE_LOOKUP(name, type): the prototypes of the first. */
static inline bool string_table_index_ok(long long i, size_t n) {
        return i >= 0 && (unsigned long long) i < n; /* a function: enums may be unsigned */
}
#define _DEFINE_STRING_TABLE_TO_STRING(name, type, fallback, scope)             \
        scope const char *name##_to_string(type i) {                           \
                if (!string_table_index_ok((long long) i, ELEMENTSOF(name##_table))) \
                        return fallback;                                       \
                return name##_table[i] ?: (fallback);                          \
        }
#define _DEFINE_STRING_TABLE_FROM_STRING(name, type, invalid, scope)            \
        scope type name##_from_string(const char *s) {                         \
                if (s)                                                         \
                        for (size_t i = 0; i < ELEMENTSOF(name##_table); i++)  \
                                if (name##_table[i] && streq(s, name##_table[i])) \
                                        return (type) i;                       \
                return (type) (invalid);                                       \
        }
#define DECLARE_STRING_TABLE_LOOKUP(name, type)                                \
        const char *name##_to_string(type i);                                  \
        type name##_from_string(const char *s)
#define DEFINE_STRING_TABLE_LOOKUP(name, type, invalid)                         \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, NULL, )                     \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, invalid, )
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP(name, type, invalid)                 \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, NULL, static)               \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, invalid, static)
#define DEFINE_STRING_TABLE_TO_STRING(name, type, fallback)                     \
        _DEFINE_STRING_TABLE_TO_STRING(name, type, fallback, )
#define DEFINE_PRIVATE_STRING_TABLE_FROM_STRING(name, type, invalid)            \
        _DEFINE_STRING_TABLE_FROM_STRING(name, type, invalid, static)

/* Makes room for at least need elements of size bytes each in the array *p,
 * growing it geometrically; *allocated counts elements and is updated.
 * Returns the array, or NULL when out of memory (*p is then unchanged). */
void *greedy_realloc(void **p, size_t *allocated, size_t need, size_t size);
#define GREEDY_REALLOC(array, allocated, need) \
        greedy_realloc((void **) &(array), &(allocated), (need), sizeof((array)[0]))

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *l);
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Appends a copy of s; returns -ENOMEM or 0. */
int strv_extend(char ***l, const char *s);

/* Monotonic and realtime clocks in microseconds. */
uint64_t now_usec(int clock_id);
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
/* The most milliseconds that still fit in µs. */
#define MSEC_MAX (UINT64_MAX / USEC_PER_MSEC)

/* The command line of bankr-llmd and bankr-llm-notify: -h/--help (help()
 * prints it), --version ("NAME VERSION"), -v/--verbose (debug messages from
 * then on: log_max_level) and no arguments. 0 after --help or --version
 * (exit successfully), 1 to run, -EINVAL after a bad option (getopt said
 * which) or an argument (logged). */
int daemon_parse_argv(const char *name, void (*help)(void), int argc, char *argv[]);

/* A duration from the environment variable name, in milliseconds, returned
 * in µs. Unset or empty: def_usec. The value must be decimal digits only (no
 * sign, no space, no unit) from min_ms to max_ms; anything else is logged
 * as a warning and def_usec is used, so a typo never stops the daemon. */
uint64_t getenv_msec(const char *name, uint64_t def_usec, uint64_t min_ms, uint64_t max_ms);

/* Reads a whole regular file (at most max bytes; -EFBIG beyond; -EISDIR or
 * -EBADFD for a directory or anything else that is not a regular file).
 * NUL-terminated. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* Reads what fd holds with pread() from offset 0 to its end (a regular
 * file, memfd or block device; fd's own offset is not moved), with room
 * for size_hint bytes at first. At most max bytes: -EFBIG beyond. */
int pread_full(int fd, size_t size_hint, size_t max, void **ret, size_t *ret_size);

/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename. mode is applied to the new file. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* mkdir -p with the given mode for directories it creates. */
int mkdir_parents(const char *path, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
