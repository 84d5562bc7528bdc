/* SPDX-License-Identifier: MIT */
/*
 * safe_install() and safe_install_read() (common/safe-install.c), the file
 * writing under Setup.Install and Key.Import, on a scratch directory (tmpfs
 * when there is one: $FUZZ_SAFE_INSTALL_DIR, else /dev/shm, else $TMPDIR).
 *
 * Input: one flag byte, then the previous content, a NUL, the new content.
 * Flags: bit 0 key_inline; bit 1 a previous file exists; bit 2 the path is a
 * symlink to it; bit 3 the previous file is 0644 (else 0640); bit 4 the
 * directory does not exist yet.
 *
 * Invariants: the install succeeds; reading back gives exactly the new
 * content, through the symlink too (which stays a symlink); the mode is 0600
 * with key_inline, else the previous file's, else mode_if_new; a backup
 * exists exactly when a non-empty previous content was replaced by a
 * different one, and holds the previous content byte for byte; nothing else
 * is left in the directory (no temporary file).
 */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "safe-install.h"

static char root[256];

static void scratch_remove(void) {
        (void) rmdir(root);
}

static void scratch_init(void) {
        const char *base = getenv("FUZZ_SAFE_INSTALL_DIR");

        if (root[0])
                return;
        if (!base)
                base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ?: "/tmp");
        snprintf(root, sizeof root, "%s/fuzz-safe-install-%d", base, (int) getpid());
        FUZZ_CHECK(mkdir(root, 0700) == 0 || errno == EEXIST);
        atexit(scratch_remove);
}

static void write_file(const char *path, const char *text, size_t n, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(fchmod(fd, mode) == 0);
        FUZZ_CHECK(n == 0 || write(fd, text, n) == (ssize_t) n);
        FUZZ_CHECK(close(fd) == 0);
}

static void check_content(const char *path, const char *want, size_t n) {
        char *text = NULL, *err = NULL;
        FUZZ_CHECK(safe_install_read(path, &text, &err) == 0);
        FUZZ_CHECK(strlen(text) == n && memcmp(text, want, n) == 0);
        free(text);
        free(err);
}

/* Removes everything under dir (one level of subdirectory), counting the
 * regular files and symlinks seen. */
static unsigned clean(const char *dir) {
        unsigned files = 0;
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char p[512];
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                if (de->d_type == DT_DIR) {
                        files += clean(p);
                        FUZZ_CHECK(rmdir(p) == 0);
                } else {
                        files++;
                        FUZZ_CHECK(unlink(p) == 0);
                }
        }
        closedir(d);
        return files;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char dir[300], path[400], target[400];
        char *backup = NULL, *err = NULL;
        struct stat st;

        if (size < 1 || size > 64 * 1024)
                return 0;
        scratch_init();
        uint8_t flags = data[0];
        const char *rest = (const char *) data + 1;
        size_t rest_n = size - 1;
        const char *nul = memchr(rest, 0, rest_n);
        size_t old_n = nul ? (size_t) (nul - rest) : rest_n;
        bool key_inline = flags & 1, exists = flags & 2, via_link = exists && (flags & 4);
        mode_t old_mode = (flags & 8) ? 0644 : 0640;
        bool new_dir = !exists && (flags & 16);

        /* The new text: everything after the NUL, up to the next one. */
        char *new_text = strndup(nul ? nul + 1 : "", nul ? rest_n - old_n - 1 : 0);
        FUZZ_CHECK(new_text);
        size_t new_n = strlen(new_text);

        snprintf(dir, sizeof dir, "%s/%s", root, new_dir ? "new/sub" : "d");
        if (!new_dir)
                FUZZ_CHECK(mkdir(dir, 0700) == 0);
        snprintf(path, sizeof path, "%s/config.json", dir);
        snprintf(target, sizeof target, "%s/real.json", dir);
        if (exists) {
                write_file(via_link ? target : path, rest, old_n, old_mode);
                if (via_link)
                        FUZZ_CHECK(symlink("real.json", path) == 0);
                check_content(path, rest, old_n);
        } else {
                char *text = NULL;
                FUZZ_CHECK(safe_install_read(path, &text, &err) == -ENOENT && !text);
                free(err);
                err = NULL;
        }

        int r = safe_install(path, new_text, 0604, key_inline, &backup, &err);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(!err);
        check_content(path, new_text, new_n);
        FUZZ_CHECK(stat(path, &st) == 0);
        FUZZ_CHECK((st.st_mode & 07777) == (key_inline ? 0600 : exists ? old_mode : 0604));
        if (via_link) {
                FUZZ_CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
                check_content(target, new_text, new_n);
        }
        bool want_backup = exists && old_n > 0 && (old_n != new_n || memcmp(rest, new_text, new_n) != 0);
        FUZZ_CHECK(want_backup == (backup != NULL));
        if (backup) {
                FUZZ_CHECK(strncmp(backup, dir, strlen(dir)) == 0);
                check_content(backup, rest, old_n);
        }

        /* config.json (+ real.json) (+ the backup), nothing else. */
        unsigned files = clean(root);
        FUZZ_CHECK(files == 1u + via_link + (backup != NULL));

        free(backup);
        free(new_text);
        return 0;
}
