/* SPDX-License-Identifier: MIT */
/*
 * The Secret Service keyring, off the event loop. libsecret's calls block
 * (they may wait on gnome-keyring or a prompt), so one worker thread runs
 * them in order and hands results back to sd-event through an eventfd.
 * Items use the schema bot.bankr.LLM1.Key with the attribute "kind".
 */
#pragma once

#include <systemd/sd-event.h>

#include "util.h"

typedef struct Keyring Keyring;

typedef enum KeyringOp {
        KEYRING_LOOKUP,
        KEYRING_STORE,
        KEYRING_CLEAR,
} KeyringOp;

typedef enum KeyringStatus {
        KEYRING_OK,
        KEYRING_UNAVAILABLE, /* no Secret Service on the bus, or no bus */
        KEYRING_LOCKED,
        KEYRING_FAILED,
        KEYRING_CANCELLED, /* never ran, or its result was dropped: the daemon is exiting */
} KeyringStatus;

/* Called on the loop. secret is the looked-up key (NULL if none) or, for a
 * store, the key that was stored; it is wiped after the call; message is a sentence for people when status != KEYRING_OK.
 * Every submitted job gets exactly one call, unless forgotten: jobs still
 * queued when the keyring is freed get KEYRING_CANCELLED from keyring_free(),
 * so that their owners can release what they hold (and change nothing). */
typedef void (*keyring_callback_t)(KeyringOp op, const char *kind, KeyringStatus status, const char *secret,
                                   const char *message, void *userdata);

int keyring_new(sd_event *e, Keyring **ret);
/* Waits a little for a job running in libsecret; one still stuck then (a
 * keyring that does not answer, a prompt nobody answers) is abandoned to
 * the exiting process rather than holding up the exit. */
Keyring *keyring_free(Keyring *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Keyring *, keyring_free);

/* Queue an operation; the callback runs later on the loop, in queue order. */
int keyring_submit(Keyring *k, KeyringOp op, const char *kind, const char *secret, keyring_callback_t cb, void *userdata);

/* The Secret Service changed owner (the keyring restarted): the jobs queued
 * from now on talk to the new owner, not to the unique name libsecret met
 * first. */
void keyring_reconnect(Keyring *k);

/* Forget callbacks for userdata (its owner is going away). */
void keyring_forget(Keyring *k, void *userdata);
