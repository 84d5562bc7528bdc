/* SPDX-License-Identifier: MIT */
/*
 * Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without
 * libFuzzer, so the checked-in corpus (and any crash file) runs in the
 * normal test suite with any compiler. Arguments: files or directories.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

#define REPLAY_MAX_INPUT ((size_t) 16U * 1024U * 1024U)

static int replay_file(const char *path, unsigned *count) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        int r;

        r = read_full_file(path, REPLAY_MAX_INPUT, &buf, &n);
        if (r < 0) {
                fprintf(stderr, "Failed to read %s: %s\n", path, strerror(-r));
                return r;
        }
        /* A copy of exactly n bytes, so ASan sees reads past the end. */
        _cleanup_free_ uint8_t *exact = malloc(n ?: 1);
        if (!exact)
                return -ENOMEM;
        memcpy(exact, buf, n);
        (void) LLVMFuzzerTestOneInput(exact, n);
        (*count)++;
        return 0;
}

static int replay_path(const char *path, unsigned *count) {
        struct stat st;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "Failed to stat %s: %m\n", path);
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path, count);

        struct dirent **names = NULL;
        int n = scandir(path, &names, NULL, alphasort), r = 0;
        if (n < 0) {
                fprintf(stderr, "Failed to list %s: %m\n", path);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.' && r >= 0) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", path, names[i]->d_name) < 0)
                                r = -ENOMEM;
                        else
                                r = replay_path(p, count);
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++)
                if (replay_path(argv[i], &count) < 0)
                        return 1;
        if (count == 0) {
                fprintf(stderr, "No inputs found.\n");
                return 1;
        }
        printf("%s: %u inputs replayed\n", argv[0], count);
        return 0;
}
