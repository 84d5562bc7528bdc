/* SPDX-License-Identifier: MIT */
/*
 * Writing a user's config file without ever losing data: through symlinks,
 * atomically (temporary file in the same directory, fsync, rename, fsync of
 * the directory), keeping the file's mode and a backup of what it replaces.
 * Synchronous, quick local I/O, no global state: callable from a worker
 * thread or directly.
 *
 * Typical use, with setup_merge() deciding what to write:
 *
 *   r = safe_install_read(path, &old, &err);      -ENOENT: no file yet
 *   r = setup_merge(tool, old, provider, force, &new, &err);
 *   r = safe_install(path, new, 0600, key_inline, &backup, &err);
 *
 * A file setup_merge() refuses (not strict JSON) stays untouched unless the
 * user forces; with force, setup_merge() returns a fresh text and
 * safe_install() moves the old file aside to a kept backup like any other
 * previous version. A file safe_install_read() cannot hand over as text
 * (NUL bytes: -EBADMSG) is the same case: merge from NULL with force.
 *
 * Backups: "<file>.bankr-backup-YYYYmmdd-HHMMSS" (local time; "-2", "-3"…
 * when that name is taken) next to the real file, never overwritten, so a
 * second install cannot destroy the backup of the user's original. The
 * backup is the previous file itself (hard link; a copy where links are
 * refused), so it keeps its mode and owner. None is made when the content
 * does not change, or when there was no (or an empty) previous file.
 *
 * A backup never keeps a key that the new text drops (safe_install_full()):
 * each given secret found in the old text but not in the new one is
 * replaced in the backup by a placeholder, and that backup is a new 0600
 * file rather than a link to the old one. The key's old home is gone (the
 * rename replaces the inode; a backup link is the only other name it had).
 * A secret the caller says the old file holds but that is not found in it
 * verbatim (written with JSON escapes, say) cannot be redacted: then no
 * backup is made at all, rather than one with the key in it.
 *
 * Errors are sentences naming the path and the cause ("Cannot write /x/y:
 * the directory /x is on a read-only file system."); they never contain file
 * content. The returned text and buffers may hold a key: free with
 * erase_and_free().
 */
#pragma once

#include <sys/types.h>

#include "util.h"

/* Largest config file we read and rewrite: real ones are a few KiB. The
 * service merges on its event loop, so this also bounds the stall every
 * other client sees (about 50 ms at the cap; docs/performance.md). A
 * larger file is refused (-EFBIG) with a sentence naming its size and the
 * cap, and left untouched. The same cap as ~/.bankr/config.json's. */
#define SAFE_INSTALL_MAX_SIZE (1024U * 1024U)

/* Reads path (following symlinks) as text. -ENOENT (with no error text) when
 * nothing is there; a dangling symlink, a non-regular file, an unreadable,
 * too large or binary (NUL bytes: -EBADMSG) file give an error with a
 * sentence in *ret_error. */
int safe_install_read(const char *path, char **ret_text, char **ret_error);

/* Replaces the content of path (absolute) with new_text, as described above.
 * Mode: the existing file's; 0600 when key_inline (an existing file is
 * chmod'ed down to 0600 even when its content is unchanged); mode_if_new for
 * a new file. Missing directories are created 0700. On success
 * *ret_backup_path is the backup made, or NULL when none was needed. On
 * failure nothing has changed (directories it created are removed again, the
 * temporary file too) and *ret_error says what and where. */
int safe_install(const char *path, const char *new_text, mode_t mode_if_new, bool key_inline,
                 char **ret_backup_path, char **ret_error);

/* The same, with the secrets (NULL-terminated; NULL or empty for none) that
 * the old file may hold and that must not survive in a backup once the new
 * text no longer has them, and the text that stands in for them there.
 * Secrets shorter than 8 bytes are ignored (too likely to match other
 * text). */
int safe_install_full(const char *path, const char *new_text, mode_t mode_if_new, bool key_inline,
                      const char *const *secrets, const char *placeholder,
                      char **ret_backup_path, char **ret_error);
