/* SPDX-License-Identifier: MIT */
/* Safe install of user config files (see safe-install.h). */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "safe-install.h"

/* Why errno r stopped us, in words a person can act on. dir is the
 * directory involved, for the causes that concern it. */
static const char *cause(int r, const char *dir, char *buf, size_t size) {
        switch (-r) {
        case EROFS:
                snprintf(buf, size, "the directory %s is on a read-only file system", dir);
                break;
        case EACCES:
                snprintf(buf, size, "permission denied (is the directory %s writable?)", dir);
                break;
        case EPERM:
                snprintf(buf, size, "operation not permitted (is %s or the file immutable?)", dir);
                break;
        case ENOSPC:
                snprintf(buf, size, "no space left on the device holding %s", dir);
                break;
        case EDQUOT:
                snprintf(buf, size, "disk quota exceeded in %s", dir);
                break;
        default:
                snprintf(buf, size, "%s", strerror(-r));
        }
        return buf;
}

/* Sets *ret_error (once) and returns r. */
static int set_error(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int set_error(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        char *e;

        if (!ret_error || *ret_error)
                return r;
        va_start(ap, fmt);
        if (vasprintf(&e, fmt, ap) >= 0)
                *ret_error = e;
        va_end(ap);
        return r;
}

static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* Where writes go: path itself, or the final target of a symlink (the link
 * stays a link). *ret_exists tells whether there is a file there. */
static int resolve_target(const char *path, char **ret_target, struct stat *ret_st, bool *ret_exists,
                          char **ret_error) {
        _cleanup_free_ char *target = NULL;
        struct stat st;
        char buf[256];

        if (lstat(path, &st) < 0) {
                if (errno != ENOENT)
                        return set_error(ret_error, -errno, "Cannot look at %s: %s.", path,
                                    cause(-errno, path, buf, sizeof buf));
                target = strdup(path);
                if (!target)
                        return -ENOMEM;
                *ret_target = TAKE_PTR(target);
                *ret_exists = false;
                return 0;
        }

        if (S_ISLNK(st.st_mode)) {
                target = realpath(path, NULL);
                if (!target) {
                        int r = -errno;
                        _cleanup_free_ char *dest = calloc(1, PATH_MAX);

                        if (!dest)
                                return -ENOMEM;
                        if (readlink(path, dest, PATH_MAX - 1) < 0)
                                strcpy(dest, "?");
                        if (r == -ENOENT)
                                return set_error(ret_error, -ENOLINK,
                                            "%s is a symbolic link to %s, which does not exist. "
                                            "Create the target or remove the link.", path, dest);
                        if (r == -ELOOP)
                                return set_error(ret_error, r, "%s is a symbolic link that loops (to %s).",
                                            path, dest);
                        return set_error(ret_error, r, "Cannot follow the symbolic link %s (to %s): %s.", path, dest,
                                    strerror(-r));
                }
                if (stat(target, &st) < 0)
                        return set_error(ret_error, -errno, "Cannot look at %s: %s.", target, strerror(errno));
        } else {
                target = strdup(path);
                if (!target)
                        return -ENOMEM;
        }

        if (!S_ISREG(st.st_mode))
                return set_error(ret_error, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
                            "%s is not a regular file; bankr-llm writes only regular files.", target);
        *ret_target = TAKE_PTR(target);
        *ret_st = st;
        *ret_exists = true;
        return 0;
}

/* The sentence for a file over SAFE_INSTALL_MAX_SIZE: its size and the cap. */
static int too_large(char **ret_error, const char *target, uint64_t size) {
        return set_error(ret_error, -EFBIG,
                         "%s is %.1f MiB (%" PRIu64 " bytes); bankr-llm rewrites config files of up to %u MiB (real ones are "
                         "a few KiB), so it was left untouched.",
                         target, (double) size / (1024.0 * 1024.0), size, SAFE_INSTALL_MAX_SIZE / 1024U / 1024U);
}

/* Reads target, which resolve_target() found to be a regular file. */
static int read_target(const char *target, char **ret_text, size_t *ret_size, struct stat *ret_st,
                       char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(erase_and_freep) char *text = NULL;
        size_t size = 0, alloc = 0;
        struct stat st;
        char buf[256];

        /* O_NONBLOCK: never hang on a FIFO swapped in behind our back. */
        fd = open(target, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return set_error(ret_error, -errno, "Cannot read %s: %s.", target, cause(-errno, target, buf, sizeof buf));
        if (fstat(fd, &st) < 0)
                return set_error(ret_error, -errno, "Cannot read %s: %s.", target, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return set_error(ret_error, -EINVAL, "%s is not a regular file; bankr-llm writes only regular files.",
                            target);
        if ((uint64_t) st.st_size > SAFE_INSTALL_MAX_SIZE)
                return too_large(ret_error, target, (uint64_t) st.st_size);

        for (;;) {
                if (size + 1 >= alloc) {
                        size_t na = MAX(alloc * 2, (size_t) st.st_size + 4096);
                        char *t = malloc(na);
                        if (!t)
                                return -ENOMEM;
                        if (text) {
                                memcpy(t, text, size);
                                explicit_bzero(text, alloc);
                                free(text);
                        }
                        text = t;
                        alloc = na;
                }
                ssize_t k = read(fd, text + size, alloc - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return set_error(ret_error, -errno, "Cannot read %s: %s.", target, strerror(errno));
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > SAFE_INSTALL_MAX_SIZE)
                        return too_large(ret_error, target, (uint64_t) size);
        }
        if (!text && !(text = calloc(1, 1)))
                return -ENOMEM;
        text[size] = 0;

        *ret_text = TAKE_PTR(text);
        *ret_size = size;
        *ret_st = st;
        return 0;
}

int safe_install_read(const char *path, char **ret_text, char **ret_error) {
        _cleanup_free_ char *target = NULL;
        _cleanup_(erase_and_freep) char *text = NULL;
        struct stat st;
        bool exists;
        size_t size;
        int r;

        if (isempty(path) || !ret_text)
                return -EINVAL;
        r = resolve_target(path, &target, &st, &exists, ret_error);
        if (r < 0)
                return r;
        if (!exists)
                return -ENOENT;
        r = read_target(target, &text, &size, &st, ret_error);
        if (r < 0)
                return r;
        if (strlen(text) != size)
                return set_error(ret_error, -EBADMSG,
                            "%s contains NUL bytes; it is not a text config file bankr-llm will rewrite. "
                            "Fix it by hand, or use --force to move it aside (it is kept as a backup) and write a fresh one.",
                            target);
        *ret_text = TAKE_PTR(text);
        return 0;
}

static void rmdir_created(char **created) {
        /* Deepest first. */
        for (size_t n = strv_length(created); n > 0; n--)
                (void) rmdir(created[n - 1]);
}

/* mkdir -p of dir with 0700 for what we create; *created lists those. */
static int make_dirs(const char *dir, char ***created, char **ret_error) {
        _cleanup_free_ char *p = strdup(dir);
        char buf[256];
        int r;

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char c = *s;
                *s = 0;
                if (mkdir(p, 0700) >= 0) {
                        /* Exactly 0700, whatever the umask. */
                        (void) chmod(p, 0700);
                        r = strv_extend(created, p);
                        if (r < 0)
                                return r;
                } else if (errno != EEXIST) {
                        _cleanup_free_ char *parent = dir_of(p);
                        return set_error(ret_error, -errno, "Cannot create the directory %s: %s.", p,
                                    cause(-errno, parent ?: p, buf, sizeof buf));
                } else {
                        struct stat st;
                        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                                return set_error(ret_error, -ENOTDIR, "Cannot create %s: %s exists and is not a directory.",
                                            dir, p);
                }
                if (c == 0)
                        break;
                *s = c;
        }
        return 0;
}

/* old with every secret that new_text no longer holds replaced by
 * placeholder: *ret is NULL when none had to go (the backup may be a link),
 * else the redacted copy. -ENOKEY when a secret cannot be found verbatim in
 * old although the caller expects it there: no backup can be made. */
#define SAFE_INSTALL_SECRET_MIN 8

static int redact_backup(const char *old, size_t old_size, const char *new_text, const char *const *secrets,
                         const char *placeholder, char **ret, size_t *ret_size) {
        _cleanup_(erase_and_freep) char *text = NULL;
        size_t size = old_size, pl = strlen(placeholder ?: "");

        *ret = NULL;
        *ret_size = 0;
        for (const char *const *s = secrets; s && *s; s++) {
                size_t sl = strlen(*s);
                char *hit;

                if (sl < SAFE_INSTALL_SECRET_MIN || strstr(new_text, *s))
                        continue; /* short, or kept in the file anyway */
                if (!text) {
                        text = malloc(old_size + 1);
                        if (!text)
                                return -ENOMEM;
                        memcpy(text, old, old_size);
                        text[old_size] = 0;
                }
                if (!strstr(text, *s)) {
                        /* Not verbatim, though the old file holds it (JSON escapes?). */
                        if (memmem(old, old_size, *s, sl) == NULL)
                                return -ENOKEY;
                        continue;
                }
                while ((hit = strstr(text, *s))) {
                        size_t at = (size_t) (hit - text), nsize = size - sl + pl;
                        char *n = malloc(nsize + 1);
                        if (!n)
                                return -ENOMEM;
                        memcpy(n, text, at);
                        memcpy(n + at, placeholder ?: "", pl);
                        memcpy(n + at + pl, text + at + sl, size - at - sl + 1);
                        erase_and_free(text);
                        text = n;
                        size = nsize;
                }
        }
        if (text && size == old_size && memcmp(text, old, old_size) == 0)
                return 0;
        *ret_size = size;
        *ret = TAKE_PTR(text);
        return 0;
}

/* The backup of target: a hard link to the current file (its inode, mode and
 * owner), or a copy of old where links are refused; always a copy when
 * redacted (old is then the redacted text). */
static int make_backup(const char *target, const char *old, size_t old_size, bool copy, char **ret_path,
                       char **ret_error) {
        _cleanup_free_ char *stamp_path = NULL;
        char stamp[32], buf[256];
        struct tm tm;
        time_t now = time(NULL);
        int r = 0;

        if (!localtime_r(&now, &tm) || strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm) == 0)
                return -EINVAL;

        for (unsigned n = 1; n < 1000; n++) {
                _cleanup_free_ char *p = NULL;
                _cleanup_close_ int fd = -EBADF;

                if ((n == 1 ? asprintf(&p, "%s.bankr-backup-%s", target, stamp) :
                              asprintf(&p, "%s.bankr-backup-%s-%u", target, stamp, n)) < 0)
                        return -ENOMEM;

                if (!copy && link(target, p) >= 0) {
                        *ret_path = TAKE_PTR(p);
                        return 0;
                }
                if (!copy && errno == EEXIST)
                        continue;
                if (!copy && (errno == EROFS || errno == ENOSPC || errno == EDQUOT || errno == EACCES)) {
                        _cleanup_free_ char *dir = dir_of(target);
                        return set_error(ret_error, -errno, "Cannot write the backup %s: %s.", p,
                                    cause(-errno, dir ?: target, buf, sizeof buf));
                }

                /* No hard links here (EPERM, EMLINK, ENOTSUP…): copy. */
                fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        _cleanup_free_ char *dir = dir_of(target);
                        return set_error(ret_error, -errno, "Cannot write the backup %s: %s.", p,
                                    cause(-errno, dir ?: target, buf, sizeof buf));
                }
                for (size_t done = 0; done < old_size;) {
                        ssize_t k = write(fd, old + done, old_size - done);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                r = -errno;
                                break;
                        }
                        done += (size_t) k;
                }
                if (r == 0 && fsync(fd) < 0)
                        r = -errno;
                if (r < 0) {
                        _cleanup_free_ char *dir = dir_of(target);
                        (void) unlink(p);
                        return set_error(ret_error, r, "Cannot write the backup %s: %s.", p,
                                    cause(r, dir ?: target, buf, sizeof buf));
                }
                *ret_path = TAKE_PTR(p);
                return 0;
        }
        return set_error(ret_error, -EEXIST, "Cannot write a backup of %s: too many backups from this second.", target);
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int safe_install(const char *path, const char *new_text, mode_t mode_if_new, bool key_inline,
                 char **ret_backup_path, char **ret_error) {
        return safe_install_full(path, new_text, mode_if_new, key_inline, NULL, NULL, ret_backup_path, ret_error);
}

int safe_install_full(const char *path, const char *new_text, mode_t mode_if_new, bool key_inline,
                      const char *const *secrets, const char *placeholder,
                      char **ret_backup_path, char **ret_error) {
        _cleanup_free_ char *target = NULL, *dir = NULL, *base_tmp = NULL, *tmp = NULL, *backup = NULL;
        _cleanup_(erase_and_freep) char *old = NULL;
        _cleanup_strv_free_ char **created = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t old_size = 0, new_size;
        struct stat st = {};
        bool exists;
        mode_t mode;
        char buf[256];
        int r;

        if (isempty(path) || path[0] != '/' || !new_text)
                return -EINVAL;
        new_size = strlen(new_text);

        r = resolve_target(path, &target, &st, &exists, ret_error);
        if (r < 0)
                return r;
        dir = dir_of(target);
        if (!dir)
                return -ENOMEM;

        if (exists) {
                r = read_target(target, &old, &old_size, &st, ret_error);
                if (r < 0)
                        return r;
                mode = key_inline ? 0600 : (st.st_mode & 07777);
        } else
                mode = key_inline ? 0600 : (mode_if_new & 07777);

        if (exists && old_size == new_size && memcmp(old, new_text, new_size) == 0) {
                /* Nothing to write; only tighten the mode for an inline key. */
                if ((st.st_mode & 07777) != mode && chmod(target, mode) < 0)
                        return set_error(ret_error, -errno, "Cannot change the mode of %s to %04o: %s.", target,
                                    (unsigned) mode, cause(-errno, dir, buf, sizeof buf));
                if (ret_backup_path)
                        *ret_backup_path = NULL;
                return 0;
        }

        if (!exists) {
                r = make_dirs(dir, &created, ret_error);
                if (r < 0)
                        goto fail;
        }

        {
                const char *slash = strrchr(target, '/');
                if (asprintf(&tmp, "%s/.%s.bankr-XXXXXX", dir, slash ? slash + 1 : target) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = set_error(ret_error, -errno, "Cannot write %s: %s.", target, cause(-errno, dir, buf, sizeof buf));
                free(tmp);
                tmp = NULL;
                goto fail;
        }
        if (fchmod(fd, mode) < 0) {
                r = set_error(ret_error, -errno, "Cannot write %s: %s.", target, cause(-errno, dir, buf, sizeof buf));
                goto fail;
        }
        /* Written as root for someone else (tests, admin tools): keep the owner. */
        if (exists && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0) &&
            fchown(fd, st.st_uid, st.st_gid) < 0) {
                r = set_error(ret_error, -errno, "Cannot write %s: %s.", target, cause(-errno, dir, buf, sizeof buf));
                goto fail;
        }
        r = write_all(fd, new_text, new_size);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r < 0) {
                r = set_error(ret_error, r, "Cannot write %s: %s.", target, cause(r, dir, buf, sizeof buf));
                goto fail;
        }

        if (exists && old_size > 0) {
                _cleanup_(erase_and_freep) char *redacted = NULL;
                size_t redacted_size = 0;

                r = redact_backup(old, old_size, new_text, secrets, placeholder, &redacted, &redacted_size);
                if (r == -ENOKEY)
                        r = 0; /* no backup rather than one with the key */
                else if (r < 0)
                        goto fail;
                else {
                        r = make_backup(target, redacted ?: old, redacted ? redacted_size : old_size, !!redacted,
                                        &backup, ret_error);
                        if (r < 0)
                                goto fail;
                }
        }

        if (rename(tmp, target) < 0) {
                r = set_error(ret_error, -errno, "Cannot write %s: %s.", target, cause(-errno, dir, buf, sizeof buf));
                goto fail;
        }
        free(tmp);
                tmp = NULL;

        /* Make the rename (and the backup's name) durable. */
        {
                _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
        }

        if (ret_backup_path)
                *ret_backup_path = TAKE_PTR(backup);
        return 0;

fail:
        if (tmp)
                (void) unlink(tmp);
        if (backup)
                (void) unlink(backup);
        rmdir_created(created);
        return r;
}
