/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for safe_install(): a fresh home, modes, backups, symlinks,
 * a read-only directory (a read-only bind mount in a private mount namespace,
 * since root ignores permission bits; else the immutable flag; else skipped
 * with a message) and unchanged content. Everything happens in a temporary
 * directory.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "safe-install.h"
#include "test.h"

static char root[] = "/tmp/test-safe-install-XXXXXX";

static char *mfree_(char *p) {
        free(p);
        return NULL;
}

static char *P(const char *rel) {
        char *p;
        if (asprintf(&p, "%s/%s", root, rel) < 0)
                abort();
        return p;
}

static void put(const char *path, const char *text, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text) || fchmod(fd, mode) < 0) {
                fprintf(stderr, "Failed to write %s: %m\n", path);
                abort();
        }
}

static char *get(const char *path) {
        char *t = NULL;
        return read_full_file(path, 1 << 20, &t, NULL) < 0 ? NULL : t;
}

static mode_t mode_of(const char *path) {
        struct stat st;
        return lstat(path, &st) < 0 ? (mode_t) -1 : st.st_mode & 07777;
}

static bool is_link(const char *path) {
        struct stat st;
        return lstat(path, &st) >= 0 && S_ISLNK(st.st_mode);
}

/* Entries in dir, "." and ".." left out. */
static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        unsigned n = 0;
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_fresh_home(void) {
        _cleanup_free_ char *path = P("home/.openclaw/openclaw.json"), *oc = P("home/.config/opencode/opencode.json"),
                           *backup = NULL, *err = NULL, *text = NULL, *d1 = P("home/.openclaw"),
                           *d2 = P("home/.config"), *d3 = P("home/.config/opencode"), *h = P("home");

        EXPECT(mkdir(h, 0755) >= 0);
        EXPECT_R(safe_install(path, "{\"a\": 1}\n", 0644, false, &backup, &err), 0);
        EXPECT(!backup);
        EXPECT(streq_ptr(text = get(path), "{\"a\": 1}\n"));
        EXPECT(mode_of(path) == 0644);
        EXPECT(mode_of(d1) == 0700);
        EXPECT(count_entries(d1) == 1); /* no temporary file left behind */

        EXPECT_R(safe_install(oc, "{}\n", 0644, true, &backup, &err), 0);
        EXPECT(mode_of(oc) == 0600); /* inline key: 0600 whatever mode_if_new says */
        EXPECT(mode_of(d2) == 0700);
        EXPECT(mode_of(d3) == 0700);
        EXPECT(mode_of(h) == 0755); /* existing directories are left alone */
        EXPECT(!err);
}

static void test_modes_and_backups(void) {
        _cleanup_free_ char *path = P("modes.json"), *b1 = NULL, *b2 = NULL, *b3 = NULL, *err = NULL, *t = NULL,
                           *t1 = NULL, *t2 = NULL;

        put(path, "original\n", 0640);
        EXPECT_R(safe_install(path, "second\n", 0600, false, &b1, &err), 0);
        EXPECT(mode_of(path) == 0640); /* the file's mode is kept */
        EXPECT(streq_ptr(t = get(path), "second\n"));
        EXPECT(b1 && strstr(b1, "/modes.json.bankr-backup-"));
        EXPECT(streq_ptr(t1 = get(strempty(b1)), "original\n"));

        /* A second install keeps the first backup (the user's original). */
        EXPECT_R(safe_install(path, "third\n", 0600, false, &b2, &err), 0);
        EXPECT(b2 && !streq_ptr(b1, b2));
        EXPECT(streq_ptr(t2 = get(strempty(b2)), "second\n"));
        free(t1);
        EXPECT(streq_ptr(t1 = get(strempty(b1)), "original\n"));

        /* Inline key: chmod'ed down to 0600, even with the same content. */
        EXPECT_R(safe_install(path, "third\n", 0644, true, &b3, &err), 0);
        EXPECT(!b3);
        EXPECT(mode_of(path) == 0600);
        EXPECT(!err);
}

/* A key the new text drops does not survive in the backup. */
static void test_backup_drops_a_removed_key(void) {
        static const char *const keys[] = { "bk_secret_0123456789", "short", NULL };
        _cleanup_free_ char *path = P("keyed.json"), *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL, *err = NULL,
                           *t1 = NULL, *t2 = NULL, *t3 = NULL;
        struct stat st, sb;

        put(path, "{\"apiKey\": \"bk_secret_0123456789\", \"x\": \"bk_secret_0123456789\", \"s\": \"short\"}\n", 0644);
        EXPECT_R(safe_install_full(path, "{\"apiKey\": \"{env:K}\", \"s\": \"short\"}\n", 0600, false, keys, "{env:K}", &b1,
                                  &err), 0);
        EXPECT(b1);
        /* Every copy of the key replaced; text shorter than 8 bytes left alone. */
        EXPECT(streq_ptr(t1 = get(strempty(b1)), "{\"apiKey\": \"{env:K}\", \"x\": \"{env:K}\", \"s\": \"short\"}\n"));
        EXPECT(stat(path, &st) == 0 && stat(strempty(b1), &sb) == 0);
        EXPECT(st.st_ino != sb.st_ino);          /* a copy, not a link to the old inode */
        EXPECT((sb.st_mode & 07777) == 0600);

        /* The new text keeps the key: nothing to hide, the backup is the old file. */
        put(path, "{\"apiKey\": \"bk_secret_0123456789\"}\n", 0600);
        EXPECT_R(safe_install_full(path, "{\"apiKey\": \"bk_secret_0123456789\", \"y\": 1}\n", 0600, true, keys, "{env:K}",
                                  &b2, &err), 0);
        EXPECT(streq_ptr(t2 = get(strempty(b2)), "{\"apiKey\": \"bk_secret_0123456789\"}\n"));

        /* Held but not verbatim (JSON escapes): no backup rather than one with the key. */
        put(path, "{\"apiKey\": \"\\u0062k_secret_0123456789\"}\n", 0600);
        static const char *const escaped[] = { "bk_secret_0123456789", NULL };
        EXPECT_R(safe_install_full(path, "{}\n", 0600, false, escaped, "{env:K}", &b3, &err), 0);
        EXPECT(!b3);
        EXPECT(streq_ptr(t3 = get(path), "{}\n"));

        /* No secrets: as safe_install(). */
        EXPECT_R(safe_install_full(path, "{\"z\": 1}\n", 0600, false, NULL, NULL, &b4, &err), 0);
        EXPECT(b4);
        EXPECT(!err);
}

static void test_unchanged(void) {
        _cleanup_free_ char *dir = P("same"), *path = P("same/config.json"), *b = NULL, *err = NULL, *t = NULL;
        struct stat st1, st2;

        EXPECT(mkdir(dir, 0700) >= 0);
        put(path, "{\"x\": true}\n", 0644);
        EXPECT(stat(path, &st1) >= 0);
        EXPECT_R(safe_install(path, "{\"x\": true}\n", 0600, false, &b, &err), 0);
        EXPECT(!b);
        EXPECT(count_entries(dir) == 1);
        EXPECT(stat(path, &st2) >= 0);
        EXPECT(st1.st_ino == st2.st_ino); /* not even rewritten */
        EXPECT(mode_of(path) == 0644);

        /* An empty previous file holds nothing to back up. */
        put(path, "", 0644);
        EXPECT_R(safe_install(path, "new\n", 0600, false, &b, &err), 0);
        EXPECT(!b);
        EXPECT(count_entries(dir) == 1);
        EXPECT(streq_ptr(t = get(path), "new\n"));
}

static void test_symlinks(void) {
        _cleanup_free_ char *real_dir = P("dotfiles"), *real = P("dotfiles/openclaw.json"), *link_dir = P("linkhome"),
                           *link_path = P("linkhome/openclaw.json"), *chain = P("linkhome/chain.json"),
                           *b = NULL, *b2 = NULL, *err = NULL, *t = NULL, *t2 = NULL, *dangling = P("linkhome/dangling.json"),
                           *loop = P("linkhome/loop.json");

        EXPECT(mkdir(real_dir, 0700) >= 0);
        EXPECT(mkdir(link_dir, 0700) >= 0);
        put(real, "old\n", 0604);
        EXPECT(symlink("../dotfiles/openclaw.json", link_path) >= 0); /* relative */
        EXPECT(symlink(link_path, chain) >= 0);                       /* a chain */

        EXPECT_R(safe_install(link_path, "new\n", 0644, false, &b, &err), 0);
        EXPECT(is_link(link_path));
        EXPECT(streq_ptr(t = get(real), "new\n"));
        EXPECT(mode_of(real) == 0604);
        /* The backup sits next to the real file. */
        EXPECT(b && startswith(b, real_dir) && strstr(b, "/openclaw.json.bankr-backup-"));
        EXPECT(count_entries(link_dir) == 2);

        EXPECT_R(safe_install(chain, "newer\n", 0644, false, &b2, &err), 0);
        EXPECT(is_link(chain) && is_link(link_path));
        EXPECT(streq_ptr(t2 = get(real), "newer\n"));

        /* Dangling: a clear error, and the link stays as it was. */
        EXPECT(symlink("nowhere/x.json", dangling) >= 0);
        EXPECT_R(safe_install(dangling, "x\n", 0644, false, &b, &err), -ENOLINK);
        EXPECT(err && strstr(err, "is a symbolic link to nowhere/x.json, which does not exist"));
        EXPECT(is_link(dangling));
        err = mfree_(err);
        char *text = NULL;
        EXPECT_R(safe_install_read(dangling, &text, &err), -ENOLINK);
        EXPECT(err && strstr(err, "does not exist"));
        err = mfree_(err);

        EXPECT(symlink("loop.json", loop) >= 0);
        EXPECT_R(safe_install(loop, "x\n", 0644, false, &b, &err), -ELOOP);
        EXPECT(err && strstr(err, "loops"));
}

static void test_read(void) {
        _cleanup_free_ char *path = P("read.json"), *nul = P("nul.json"), *missing = P("missing.json"), *text = NULL,
                           *err = NULL, *err2 = NULL, *err3 = NULL;
        char *t = NULL;

        put(path, "{\"k\": 1}\n", 0600);
        EXPECT_R(safe_install_read(path, &text, &err), 0);
        EXPECT(streq_ptr(text, "{\"k\": 1}\n"));
        EXPECT_R(safe_install_read(missing, &t, &err), -ENOENT);
        EXPECT(!err);

        {
                _cleanup_close_ int fd = open(nul, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                EXPECT(fd >= 0 && write(fd, "{}\0x", 4) == 4);
        }
        EXPECT_R(safe_install_read(nul, &t, &err), -EBADMSG);
        EXPECT(err && strstr(err, "NUL bytes") && strstr(err, "--force"));

        EXPECT_R(safe_install_read(root, &t, &err2), -EISDIR);
        EXPECT(err2 && strstr(err2, "not a regular file"));
        EXPECT_R(safe_install(root, "x", 0600, false, NULL, &err3), -EISDIR);
        EXPECT_R(safe_install("relative/path.json", "x", 0600, false, NULL, NULL), -EINVAL);

        /* The size cap: 1 MiB is read, one byte more is refused, naming both. */
        {
                _cleanup_free_ char *big = P("big.json"), *e = NULL, *e2 = NULL, *t2 = NULL;
                _cleanup_free_ char *fill = malloc(SAFE_INSTALL_MAX_SIZE + 2);
                EXPECT(fill != NULL);
                memset(fill, ' ', SAFE_INSTALL_MAX_SIZE + 1);
                fill[0] = '{';
                fill[SAFE_INSTALL_MAX_SIZE - 1] = '}';
                fill[SAFE_INSTALL_MAX_SIZE] = 0;
                put(big, fill, 0600);
                EXPECT_R(safe_install_read(big, &t2, &e), 0);
                erase_and_free(t2);
                t2 = NULL;
                fill[SAFE_INSTALL_MAX_SIZE] = '\n';
                fill[SAFE_INSTALL_MAX_SIZE + 1] = 0;
                put(big, fill, 0600);
                EXPECT_R(safe_install_read(big, &t2, &e2), -EFBIG);
                EXPECT(e2 && strstr(e2, "1.0 MiB (1048577 bytes)") && strstr(e2, "up to 1 MiB") && strstr(e2, "untouched"));
        }
}

/* Runs in a child: the checks are made there and reported by exit code. */
static int readonly_checks(const char *dir, const char *path, const char *fresh, const char *expect) {
        _cleanup_free_ char *b = NULL, *err = NULL, *err2 = NULL, *t = NULL;
        unsigned before = count_entries(dir);
        int bad = 0, r;

        r = safe_install(path, "changed\n", 0600, false, &b, &err);
        if (r >= 0 || !err || !strstr(err, expect) || !strstr(err, path)) {
                fprintf(stderr, "read-only dir: r=%d err=%s\n", r, strna(err));
                bad++;
        } else
                printf("read-only directory refused: %s\n", err);
        if (!streq_ptr(t = get(path), "precious\n") || count_entries(dir) != before) {
                fprintf(stderr, "read-only dir: something changed\n");
                bad++;
        }
        /* A new file under a new directory: refused, and nothing is left. */
        r = safe_install(fresh, "x\n", 0600, false, &b, &err2);
        if (r >= 0 || !err2 || count_entries(dir) != before) {
                fprintf(stderr, "read-only dir (new file): r=%d err=%s\n", r, strna(err2));
                bad++;
        }
        return bad;
}

static void test_readonly_dir(void) {
        _cleanup_free_ char *dir = P("ro"), *path = P("ro/config.json"), *fresh = P("ro/sub/new.json");
        pid_t pid;
        int status, r;

        EXPECT(mkdir(dir, 0700) >= 0);
        put(path, "precious\n", 0644);

        if (geteuid() != 0) {
                EXPECT(chmod(dir, 0500) >= 0);
                EXPECT(readonly_checks(dir, path, fresh, "permission denied") == 0);
                (void) chmod(dir, 0700);
                return;
        }

        /* Root: a read-only bind mount of dir in a mount namespace of a child. */
        pid = fork();
        if (pid < 0)
                abort();
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount(dir, dir, NULL, MS_BIND, NULL) < 0 ||
                    mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
                        _exit(77);
                r = readonly_checks(dir, path, fresh, "is on a read-only file system");
                fflush(stdout);
                _exit(r == 0 ? 0 : 1);
        }
        if (waitpid(pid, &status, 0) < 0)
                abort();
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 77) {
                test_failures++;
                return;
        }

        /* No mount namespace here: try the immutable flag. */
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int flags = 0;
        if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0) {
                int nf = flags | FS_IMMUTABLE_FL;
                if (ioctl(fd, FS_IOC_SETFLAGS, &nf) >= 0) {
                        EXPECT(readonly_checks(dir, path, fresh, "not permitted") == 0);
                        (void) ioctl(fd, FS_IOC_SETFLAGS, &flags);
                        return;
                }
        }
        printf("SKIP read-only directory case: running as root without a mount namespace or the immutable flag\n");
}

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        (void) (type == FTW_DP ? rmdir(p) : unlink(p));
        return 0;
}

int main(void) {
        umask(022);
        if (!mkdtemp(root)) {
                fprintf(stderr, "Failed to create a temporary directory: %m\n");
                return EXIT_FAILURE;
        }

        test_fresh_home();
        test_modes_and_backups();
        test_backup_drops_a_removed_key();
        test_unchanged();
        test_symlinks();
        test_read();
        test_readonly_dir();

        (void) nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

        if (test_failures > 0) {
                fprintf(stderr, "%u EXPECT(s) failed\n", test_failures);
                return EXIT_FAILURE;
        }
        printf("safe-install: all checks passed\n");
        return EXIT_SUCCESS;
}
