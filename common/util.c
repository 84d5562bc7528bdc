/* SPDX-License-Identifier: MIT */
/* Implementation of the helpers declared in util.h. */
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "util.h"

int free_and_vasprintf(char **dst, const char *fmt, va_list ap) {
        char *t;

        if (vasprintf(&t, fmt, ap) < 0)
                t = NULL;
        free(*dst);
        *dst = t;
        return t ? 0 : -ENOMEM;
}

int free_and_strdup(char **dst, const char *src) {
        char *t = NULL;

        if (src) {
                t = strdup(src);
                if (!t)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = t;
        return 0;
}

int erase_and_strdup(char **dst, const char *src) {
        char *t = NULL;

        if (src) {
                t = strdup(src);
                if (!t)
                        return -ENOMEM;
        }
        erase_and_free(*dst);
        *dst = t;
        return 0;
}

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        if (l)
                while (l[n])
                        n++;
        return n;
}

char **strv_copy(char *const *l) {
        size_t n = strv_length(l);
        char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i])
                        return strv_free(c);
        }
        return c;
}

bool strv_contains(char *const *l, const char *s) {
        if (l)
                for (; *l; l++)
                        if (streq(*l, s))
                                return true;
        return false;
}

int strv_extend(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        char **t = realloc(*l, sizeof(char *) * (n + 2));
        if (!t) {
                free(c);
                return -ENOMEM;
        }
        t[n] = c;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

uint64_t now_usec(int clock_id) {
        struct timespec ts;
        (void) clock_gettime(clock_id, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

void *greedy_realloc(void **p, size_t *allocated, size_t need, size_t size) {
        size_t a;
        void *q;

        if (need <= *allocated)
                return *p;
        if (size == 0 || need > SIZE_MAX / 2 / size)
                return NULL;
        a = MAX(need * 2, (size_t) 8);
        q = reallocarray(*p, a, size);
        if (!q)
                return NULL;
        *p = q;
        *allocated = a;
        return q;
}

uint64_t getenv_msec(const char *name, uint64_t def_usec, uint64_t min_ms, uint64_t max_ms) {
        const char *v = getenv(name);
        unsigned long long ms = 0;
        char *end = NULL;

        if (isempty(v))
                return def_usec;
        errno = 0;
        if (v[strspn(v, "0123456789")] == 0) /* only digits: strtoull() would take "-1" and " 1" */
                ms = strtoull(v, &end, 10);
        if (!end || errno != 0 || *end != 0 || ms < min_ms || ms > max_ms || ms > MSEC_MAX) {
                log_warning("Ignoring %s=%s: expected a whole number of milliseconds from %llu to %llu.", name, v,
                            (unsigned long long) min_ms, (unsigned long long) MIN(max_ms, MSEC_MAX));
                return def_usec;
        }
        return (uint64_t) ms * USEC_PER_MSEC;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(buf_done) Buf b = {};

        /* O_NONBLOCK: a FIFO at this path must not stall an event loop. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD; /* not a regular file */

        for (;;) {
                if (!buf_reserve(&b, 4096))
                        return -ENOMEM;
                ssize_t k = read(fd, b.p + b.n, b.alloc - b.n - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                b.n += (size_t) k;
                b.p[b.n] = 0;
                if (b.n > max)
                        return -EFBIG;
        }
        size_t size = b.n;
        int r = buf_steal(&b, ret);
        if (r >= 0 && ret_size)
                *ret_size = size;
        return r;
}

int pread_full(int fd, size_t size_hint, size_t max, void **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0, alloc = MIN(size_hint, max) + 1;

        buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t l = pread(fd, buf + n, alloc - n, (off_t) n);
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0)
                        return -errno;
                if (l == 0)
                        break;
                n += (size_t) l;
                if (n > max)
                        return -EFBIG;
                if (n == alloc) { /* larger than the hint (or the file grew): one more round */
                        size_t a = MIN(alloc * 2, max + 1);
                        uint8_t *p = a > alloc ? realloc(buf, a) : NULL;
                        if (!p)
                                return a > alloc ? -ENOMEM : -EFBIG;
                        buf = p;
                        alloc = a;
                }
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *tmp = NULL, *dcopy = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *p = data;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }
        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                p += k;
                size -= (size_t) k;
        }
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        /* Make the rename itself durable. */
        dcopy = strdup(path);
        if (dcopy) {
                _cleanup_close_ int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
        }
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0;
        *slash = 0;
        return mkdir_p(p, mode);
}

int daemon_parse_argv(const char *name, void (*help)(void), int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "verbose", no_argument, NULL, 'v' },
                {}
        };
        bool verbose = false;
        int c;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("%s %s\n", name, VERSION);
                        return 0;
                case 'v':
                        verbose = true;
                        break;
                default: /* '?': getopt said what was wrong */
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("This program takes no positional arguments.");
                return -EINVAL;
        }
        if (verbose)
                log_max_level = LOG_DEBUG;
        return 1;
}
