/* SPDX-License-Identifier: MIT */
/*
 * The Secret Service worker (see keyring.h): one thread runs libsecret's
 * blocking calls one job at a time and hands each result back to the event
 * loop over an eventfd, where the job's callback runs. Secrets handed over
 * are wiped when the job is freed.
 */
#include <libsecret/secret.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>

#include "bankr-names.h"
#include "keyring.h"
#include "log.h"

/* How long exiting waits for a job that is running in libsecret. */
#define KEYRING_EXIT_TIMEOUT_USEC (2 * USEC_PER_SEC)

typedef struct Job Job;
struct Job {
        Job *next;
        KeyringOp op;
        char kind[8];
        char *secret; /* in: for store; out: for lookup */
        KeyringStatus status;
        char *message;
        keyring_callback_t cb;
        void *userdata;
};

struct Keyring {
        sd_event_source *source;
        int efd;
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Job *todo, *todo_tail; /* guarded by lock */
        Job *running;          /* guarded by lock; owned by the worker */
        Job *done, *done_tail; /* guarded by lock */
        bool quit;             /* guarded by lock */
        bool reconnect;        /* guarded by lock: drop libsecret's service before the next job */
};

static const SecretSchema key_schema = {
        BANKR_SECRET_SCHEMA,
        SECRET_SCHEMA_DONT_MATCH_NAME,
        {
                { "kind", SECRET_SCHEMA_ATTRIBUTE_STRING },
                { NULL, 0 },
        },
        0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

static void job_free(Job *j) {
        if (!j)
                return;
        erase_and_free(j->secret);
        free(j->message);
        free(j);
}

static void classify_error(Job *j, GError *error) {
        _cleanup_free_ char *remote = NULL;

        if (g_dbus_error_is_remote_error(error))
                remote = g_dbus_error_get_remote_error(error);

        if ((remote && strstr(remote, "IsLocked")) || g_error_matches(error, SECRET_ERROR, SECRET_ERROR_IS_LOCKED)) {
                j->status = KEYRING_LOCKED;
                j->message = strdup("The keyring is locked. Unlock it (for example by logging in again, or with Seahorse) and try again.");
        } else if ((remote && (strstr(remote, "ServiceUnknown") || strstr(remote, "NameHasNoOwner"))) ||
                   g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
                   g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
                   error->domain == G_IO_ERROR || error->domain == G_SPAWN_ERROR) {
                j->status = KEYRING_UNAVAILABLE;
                j->message = strdup("No Secret Service keyring (such as gnome-keyring or KWallet) is running in this session.");
        } else if (j->op == KEYRING_STORE &&
                   ((remote && (strstr(remote, "UnknownObject") || strstr(remote, "UnknownMethod"))) ||
                    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
                    g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD)) &&
                   strstr(error->message, "/collection/")) {
                /* The "default" alias names a collection that is not there
                 * (gnome-keyring answers UnknownMethod, "Object does not
                 * exist at path …/collection/login"): a fresh user without
                 * a login keyring. */
                j->status = KEYRING_UNAVAILABLE;
                j->message = strdup("The keyring has no default collection (no login keyring), so there is nowhere "
                                    "to store the key. Create a keyring with Seahorse (\"Passwords and Keys\": "
                                    "+, Password Keyring) and make it the default, or log out and in again so "
                                    "that the login keyring is created; then try again.");
        } else {
                j->status = KEYRING_FAILED;
                if (asprintf(&j->message, "The keyring refused the request: %s", error->message) < 0)
                        j->message = NULL;
        }
}

static void run_job(Job *j) {
        GError *error = NULL;
        gchar *found;

        switch (j->op) {
        case KEYRING_LOOKUP:
                found = secret_password_lookup_sync(&key_schema, NULL, &error, "kind", j->kind, NULL); /* worker thread */
                if (found) {
                        j->secret = strdup(found);
                        secret_password_free(found);
                }
                break;
        case KEYRING_STORE:
                (void) secret_password_store_sync(&key_schema, SECRET_COLLECTION_DEFAULT, /* worker thread */
                                                  streq(j->kind, "llm") ? "Bankr LLM Gateway key" : "Bankr API key",
                                                  j->secret, NULL, &error, "kind", j->kind, NULL);
                break;
        case KEYRING_CLEAR:
                (void) secret_password_clear_sync(&key_schema, NULL, &error, "kind", j->kind, NULL); /* worker thread */
                break;
        }
        if (error) {
                classify_error(j, error);
                g_error_free(error);
        } else
                j->status = KEYRING_OK;
}

static void *worker(void *arg) {
        Keyring *k = arg;

        for (;;) {
                Job *j;

                pthread_mutex_lock(&k->lock);
                while (!k->todo && !k->quit)
                        pthread_cond_wait(&k->cond, &k->lock);
                if (k->quit) {
                        pthread_mutex_unlock(&k->lock);
                        return NULL;
                }
                j = k->todo;
                k->todo = j->next;
                if (!k->todo)
                        k->todo_tail = NULL;
                j->next = NULL;
                k->running = j; /* so that keyring_forget() still finds it */
                bool reconnect = TAKE_PTR(k->reconnect);
                pthread_mutex_unlock(&k->lock);

                /* libsecret caches one SecretService proxy per process, bound
                 * to the unique name of the keyring it first met. After the
                 * keyring restarted, that name is gone for good: drop the
                 * proxy so that the next call finds the new owner. */
                if (reconnect)
                        secret_service_disconnect(); /* worker thread */
                run_job(j);

                pthread_mutex_lock(&k->lock);
                k->running = NULL;
                if (k->done_tail)
                        k->done_tail->next = j;
                else
                        k->done = j;
                k->done_tail = j;
                pthread_mutex_unlock(&k->lock);

                uint64_t one = 1;
                (void) !write(k->efd, &one, sizeof one);
        }
}

static Job *pop_done(Keyring *k) {
        Job *j;

        pthread_mutex_lock(&k->lock);
        j = k->done;
        if (j) {
                k->done = j->next;
                if (!k->done)
                        k->done_tail = NULL;
                j->next = NULL;
        }
        pthread_mutex_unlock(&k->lock);
        return j;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Keyring *k = userdata;
        uint64_t n;
        Job *j;

        (void) !read(fd, &n, sizeof n);

        /* One at a time: a callback may free the owner of a later job, and
         * keyring_forget() only reaches jobs still on the list. */
        while ((j = pop_done(k))) {
                if (j->cb)
                        j->cb(j->op, j->kind, j->status, j->secret, j->message, j->userdata);
                job_free(j);
        }
        return 0;
}

int keyring_new(sd_event *e, Keyring **ret) {
        _cleanup_(keyring_freep) Keyring *k = NULL;
        int r;

        k = calloc(1, sizeof(Keyring));
        if (!k)
                return -ENOMEM;
        k->efd = -EBADF;
        pthread_mutex_init(&k->lock, NULL);
        pthread_cond_init(&k->cond, NULL);

        k->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (k->efd < 0)
                return -errno;
        r = sd_event_add_io(e, &k->source, k->efd, EPOLLIN, on_done, k);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(k->source, "keyring-done");

        r = -pthread_create(&k->thread, NULL, worker, k);
        if (r < 0)
                return r;
        k->thread_started = true;

        *ret = TAKE_PTR(k);
        return 0;
}

/* Jobs that will not be dispatched: their owners still hear of them. */
static void job_list_cancel(Job *j) {
        while (j) {
                Job *n = j->next;
                if (j->cb)
                        j->cb(j->op, j->kind, KEYRING_CANCELLED, NULL, "bankr-llmd is shutting down.", j->userdata);
                job_free(j);
                j = n;
        }
}

static int join_bounded(Keyring *k) {
        struct timespec ts;
        uint64_t until = now_usec(CLOCK_REALTIME) + KEYRING_EXIT_TIMEOUT_USEC;

        ts.tv_sec = (time_t) (until / USEC_PER_SEC);
        ts.tv_nsec = (long) (until % USEC_PER_SEC) * 1000;
        return -pthread_timedjoin_np(k->thread, NULL, &ts);
}

Keyring *keyring_free(Keyring *k) {
        Job *todo, *done;
        int r = 0;

        if (!k)
                return NULL;

        /* Once quit is set the worker takes no more jobs: the queues are ours. */
        pthread_mutex_lock(&k->lock);
        k->quit = true;
        pthread_cond_signal(&k->cond);
        todo = TAKE_PTR(k->todo);
        done = TAKE_PTR(k->done);
        k->todo_tail = k->done_tail = NULL;
        pthread_mutex_unlock(&k->lock);
        job_list_cancel(todo);
        job_list_cancel(done);

        if (k->thread_started)
                r = join_bounded(k);
        sd_event_source_disable_unref(k->source);
        k->source = NULL;
        if (r < 0) {
                /* Stuck in libsecret (a keyring that does not answer, a prompt
                 * nobody answers). The worker still uses k, so k stays: the
                 * process is exiting, and the thread ends with it. */
                log_warning_errno(r, "The keyring did not finish a call within %u s; exiting without waiting for it.",
                                  (unsigned) (KEYRING_EXIT_TIMEOUT_USEC / USEC_PER_SEC));
                pthread_mutex_lock(&k->lock);
                if (k->running)
                        k->running->cb = NULL;
                pthread_mutex_unlock(&k->lock);
                (void) pthread_detach(k->thread);
                return NULL;
        }
        job_list_cancel(k->done); /* what finished meanwhile */
        k->done = NULL;
        closep(&k->efd);
        pthread_mutex_destroy(&k->lock);
        pthread_cond_destroy(&k->cond);
        free(k);
        return NULL;
}

int keyring_submit(Keyring *k, KeyringOp op, const char *kind, const char *secret, keyring_callback_t cb, void *userdata) {
        Job *j;

        if (!kind || strlen(kind) >= sizeof j->kind)
                return -EINVAL;
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        j->op = op;
        strcpy(j->kind, kind);
        if (secret) {
                j->secret = strdup(secret);
                if (!j->secret) {
                        free(j);
                        return -ENOMEM;
                }
        }
        j->cb = cb;
        j->userdata = userdata;

        pthread_mutex_lock(&k->lock);
        if (k->todo_tail)
                k->todo_tail->next = j;
        else
                k->todo = j;
        k->todo_tail = j;
        pthread_cond_signal(&k->cond);
        pthread_mutex_unlock(&k->lock);
        return 0;
}

void keyring_reconnect(Keyring *k) {
        pthread_mutex_lock(&k->lock);
        k->reconnect = true;
        pthread_mutex_unlock(&k->lock);
}

void keyring_forget(Keyring *k, void *userdata) {
        pthread_mutex_lock(&k->lock);
        if (k->running && k->running->userdata == userdata)
                k->running->cb = NULL;
        for (Job *j = k->todo; j; j = j->next)
                if (j->userdata == userdata)
                        j->cb = NULL;
        for (Job *j = k->done; j; j = j->next)
                if (j->userdata == userdata)
                        j->cb = NULL;
        pthread_mutex_unlock(&k->lock);
}
