/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous polkit checks (see polkit.h for the calling convention).
 *
 * One PolkitQuery per method call being authorized, found again by the
 * message (pointer, sender, cookie). A check runs in three asynchronous steps,
 * so the event loop never waits:
 *
 *   1. on the caller's bus: a match for the caller leaving, and
 *      GetConnectionCredentials for its pid and uid (the same answer
 *      sd_bus_query_sender_creds() would get, but without a blocking round
 *      trip to the bus daemon; a caller that is already gone fails here);
 *   2. on our own system-bus connection: CheckAuthorization with a
 *      unix-process subject (pid, start time, uid);
 *   3. the verdict is stored on the query, the original message is queued
 *      again, and the handler finds the verdict when it runs again. An idle
 *      event source forgets the verdicts once that re-run is over.
 *
 * A caller that leaves before polkit answers has its query dropped: nothing
 * is run on behalf of a process that no longer waits for it.
 */

#include <inttypes.h>

#include "bankr-llmd.h"
#include "log.h"
#include "polkit.h"
#include "proc-app.h"

#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_CHECK_ALLOW_USER_INTERACTION UINT32_C(1)
/* Not a polkit action (those have no parentheses): the check of
 * polkit_check_host_async(), answered here without asking polkitd. */
#define ACTION_HOST_ONLY "(host process)"

typedef struct Verdict {
        char *action;
        char *denial; /* NULL when granted, else the sentence for the caller */
} Verdict;

typedef struct PolkitQuery PolkitQuery;
struct PolkitQuery {
        Polkit *polkit;
        PolkitQuery *prev, *next;

        sd_bus_message *request; /* the parked method call, ref'd */
        char *sender;
        uint64_t cookie;

        /* The check in flight; action is NULL when none is. */
        char *action;
        bool interactive;
        uint64_t sent_usec; /* when CheckAuthorization went out */
        sd_bus_slot *vanish_slot;
        sd_bus_slot *creds_slot;
        sd_bus_slot *check_slot;

        /* Answers for this message, valid until its re-run is over. */
        Verdict *verdicts;
        size_t n_verdicts, n_verdicts_allocated;
        sd_event_source *forget_source;
};

struct Polkit {
        sd_event *event;
        sd_bus *system_bus; /* opened on first use, reopened after it died */
        uint64_t timeout_usec; /* 0: the defaults of polkit.h */
        PolkitQuery *queries;
};

static PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;

        if (q->polkit) {
                if (q->prev)
                        q->prev->next = q->next;
                else
                        q->polkit->queries = q->next;
                if (q->next)
                        q->next->prev = q->prev;
        }

        /* Unref'ing a pending call's slot cancels it: its callback never runs. */
        sd_bus_slot_unref(q->vanish_slot);
        sd_bus_slot_unref(q->creds_slot);
        sd_bus_slot_unref(q->check_slot);
        sd_event_source_disable_unref(q->forget_source);

        for (size_t i = 0; i < q->n_verdicts; i++) {
                free(q->verdicts[i].action);
                free(q->verdicts[i].denial);
        }
        free(q->verdicts);

        free(q->action);
        free(q->sender);
        sd_bus_message_unref(q->request);
        free(q);
        return NULL;
}

static bool polkit_query_in_flight(PolkitQuery *q) {
        return q->action;
}

static uint64_t polkit_timeout(Polkit *p, bool interactive) {
        if (p->timeout_usec > 0)
                return p->timeout_usec;
        return interactive ? POLKIT_TIMEOUT_INTERACTIVE_USEC : POLKIT_TIMEOUT_DEFAULT_USEC;
}

int polkit_new(sd_event *e, Polkit **ret) {
        _cleanup_(polkit_freep) Polkit *p = NULL;

        if (!e || !ret)
                return -EINVAL;

        p = calloc(1, sizeof(Polkit));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);

        /* Lets tests exercise the timeout path in a second rather than half a minute. */
        p->timeout_usec = getenv_msec("BANKR_LLMD_POLKIT_TIMEOUT_MS", 0, 1, MSEC_MAX);

        *ret = TAKE_PTR(p);
        return 0;
}

Polkit *polkit_free(Polkit *p) {
        if (!p)
                return NULL;

        /* Parked calls are not answered: we only get here when shutting down,
         * and their callers see the connection go. */
        while (p->queries)
                polkit_query_free(p->queries);

        sd_bus_flush_close_unref(p->system_bus);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

void polkit_set_timeout(Polkit *p, uint64_t usec) {
        if (p)
                p->timeout_usec = usec;
}

unsigned polkit_pending(Polkit *p) {
        unsigned n = 0;

        if (!p)
                return 0;
        for (PolkitQuery *q = p->queries; q; q = q->next)
                if (polkit_query_in_flight(q))
                        n++;
        return n;
}

/* Our connection to the system bus, (re)opened on demand: the system bus may
 * have restarted or not have existed when the previous check ran. */
static int polkit_get_system_bus(Polkit *p, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (p->system_bus && sd_bus_is_open(p->system_bus) > 0) {
                *ret = p->system_bus;
                return 0;
        }
        p->system_bus = sd_bus_flush_close_unref(p->system_bus);

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_warning_errno(r, "Failed to connect to the system bus for polkit checks: %m");

        (void) sd_bus_set_description(bus, "polkit");

        r = sd_bus_attach_event(bus, p->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_warning_errno(r, "Failed to attach the system bus to the event loop: %m");

        *ret = p->system_bus = TAKE_PTR(bus);
        return 0;
}

/* Why polkit_get_system_bus() failed, for the caller. */
static const char *no_system_bus_message(int r) {
        if (r == -EMFILE || r == -ENFILE)
                return "Cannot check authorization: bankr-llmd is out of file descriptors; try again when fewer "
                       "requests are in flight.";
        return "Cannot check authorization: the system bus is not available.";
}

static bool polkit_query_matches(PolkitQuery *q, sd_bus_message *m) {
        uint64_t cookie = 0;

        if (q->request != m)
                return false;
        /* The same pointer is the same call as long as we hold our reference;
         * sender and cookie are checked as well so a verdict can never be
         * carried over to another call. */
        (void) sd_bus_message_get_cookie(m, &cookie);
        return streq_ptr(q->sender, sd_bus_message_get_sender(m)) && q->cookie == cookie;
}

static PolkitQuery *polkit_find_query(Polkit *p, sd_bus_message *m) {
        for (PolkitQuery *q = p->queries; q; q = q->next)
                if (polkit_query_matches(q, m))
                        return q;
        return NULL;
}

static int forget_handler(sd_event_source *s, void *userdata) {
        PolkitQuery *q = userdata;

        /* The re-queued call has been dispatched (bus events run before idle
         * ones); unless its handler started another check, we are done. */
        if (!polkit_query_in_flight(q))
                polkit_query_free(q);
        return 0;
}

static void polkit_query_end_check(PolkitQuery *q) {
        q->vanish_slot = sd_bus_slot_unref(q->vanish_slot);
        q->creds_slot = sd_bus_slot_unref(q->creds_slot);
        q->check_slot = sd_bus_slot_unref(q->check_slot);
        free(q->action);
        q->action = NULL;
}

/* Stores the verdict for the action in flight (denial == NULL: granted) and
 * hands the parked call back to its bus. */
static void polkit_query_complete(PolkitQuery *q, const char *denial) {
        Verdict *v;
        sd_bus *bus;
        int r;

        if (denial)
                log_debug("polkit: \"%s\" refused for %s: %s", q->action, strna(q->sender), denial);
        else
                log_debug("polkit: \"%s\" granted for %s.", q->action, strna(q->sender));

        if (!GREEDY_REALLOC(q->verdicts, q->n_verdicts_allocated, q->n_verdicts + 1))
                goto fail;
        v = &q->verdicts[q->n_verdicts];
        *v = (Verdict) {};
        if (denial) {
                v->denial = strdup(denial);
                if (!v->denial)
                        goto fail;
        }
        v->action = TAKE_PTR(q->action);
        q->n_verdicts++;

        polkit_query_end_check(q);

        if (!q->forget_source) {
                r = sd_event_add_defer(q->polkit->event, &q->forget_source, forget_handler, q);
                if (r < 0)
                        goto fail_errno;
                (void) sd_event_source_set_priority(q->forget_source, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_description(q->forget_source, "polkit-forget");
        }
        r = sd_event_source_set_enabled(q->forget_source, SD_EVENT_ONESHOT);
        if (r < 0)
                goto fail_errno;

        bus = sd_bus_message_get_bus(q->request);
        r = sd_bus_message_rewind(q->request, true);
        if (r < 0)
                goto fail_errno;
        r = sd_bus_enqueue_for_read(bus, q->request);
        if (r < 0)
                goto fail_errno;
        return;

fail:
        r = -ENOMEM;
fail_errno:
        /* We cannot hand the call back: answer it here, failing closed. */
        log_error_errno(r, "Failed to resume a method call after its polkit check: %m");
        (void) sd_bus_reply_method_errorf(q->request, BUS_ERROR_NOT_AUTHORIZED,
                                          "Cannot check authorization: internal error (%s).", strerror(-r));
        polkit_query_free(q);
}

static bool bus_error_is_unreachable(const sd_bus_error *e) {
        return sd_bus_error_has_names(e,
                                      SD_BUS_ERROR_SERVICE_UNKNOWN,
                                      SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               startswith(e->name, "org.freedesktop.DBus.Error.Spawn.");
}

static void format_timeout(uint64_t usec, char *buf, size_t size) {
        if (usec % USEC_PER_SEC == 0)
                (void) snprintf(buf, size, "%" PRIu64 " s", usec / USEC_PER_SEC);
        else
                (void) snprintf(buf, size, "%.1f s", (double) usec / USEC_PER_SEC);
}

static int check_reply_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        _cleanup_free_ char *denial = NULL;
        int authorized, challenge, r;
        bool dismissed = false;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                char t[32];

                if (sd_bus_is_open(sd_bus_message_get_bus(reply)) <= 0) {
                        log_warning("Lost the system bus while waiting for polkit.");
                        denial = strdup("Cannot check authorization: the system bus is not available.");
                } else if (bus_error_is_unreachable(e)) {
                        log_warning("polkit is not running on the system bus (%s).", e->name);
                        denial = strdup("Cannot check authorization: polkit is not running on the system bus.");
                } else if (sd_bus_error_has_name(e, "org.freedesktop.PolicyKit1.Error.Cancelled"))
                        denial = strdup("The authentication dialog was dismissed.");
                else if (sd_bus_error_has_names(e, SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_NO_REPLY)) {
                        uint64_t timeout = polkit_timeout(q->polkit, q->interactive);

                        /* NoReply is both sd-bus's own timeout and the bus telling
                         * us polkitd went away mid-call: tell them apart by the clock. */
                        if (now_usec(CLOCK_MONOTONIC) - q->sent_usec + 50 * USEC_PER_MSEC < timeout) {
                                log_warning("polkit quit without answering: %s", strna(e->message));
                                denial = strdup("Cannot check authorization: polkit stopped without answering.");
                        } else {
                                format_timeout(timeout, t, sizeof(t));
                                log_warning("polkit did not answer within %s.", t);
                                if (asprintf(&denial, "Cannot check authorization: polkit did not answer within %s.", t) < 0)
                                        denial = NULL;
                        }
                } else {
                        log_warning("polkit failed to check \"%s\": %s: %s", q->action, e->name, strna(e->message));
                        if (asprintf(&denial, "Cannot check authorization: polkit failed (%s: %s).",
                                     e->name, strna(e->message)) < 0)
                                denial = NULL;
                }
                if (!denial)
                        goto oom;
                polkit_query_complete(q, denial);
                return 0;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{ss}");
        while (r >= 0) {
                const char *key, *value;

                r = sd_bus_message_read(reply, "{ss}", &key, &value);
                if (r <= 0)
                        break;
                if (streq(key, "polkit.dismissed") && streq(value, "true"))
                        dismissed = true;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to parse polkit's answer: %m");
                denial = strdup("Cannot check authorization: polkit's answer could not be read.");
        } else if (authorized)
                denial = NULL;
        else if (dismissed)
                denial = strdup("The authentication dialog was dismissed.");
        else if (challenge && !q->interactive) {
                if (asprintf(&denial, "Authorization for \"%s\" requires authentication, "
                             "but the call did not allow interactive authorization.", q->action) < 0)
                        denial = NULL;
        } else if (asprintf(&denial, "Authorization for \"%s\" was denied by polkit.", q->action) < 0)
                denial = NULL;
        if ((r < 0 || !authorized) && !denial)
                goto oom;

        polkit_query_complete(q, denial);
        return 0;

oom:
        polkit_query_complete(q, "Cannot check authorization: out of memory.");
        return 0;
}

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. polkit
 * compares it with the process it finds under that pid, so a pid reused by
 * another process does not inherit the caller's rights. */
static int read_process_start_time(pid_t pid, uint64_t *ret) {
        _cleanup_free_ char *buf = NULL;
        char path[64];
        const char *s;
        int r;

        (void) snprintf(path, sizeof(path), "/proc/%i/stat", (int) pid);
        r = read_full_file(path, 4096, &buf, NULL);
        if (r < 0)
                return r;

        /* The command name may hold spaces and parentheses: start after the last ')'. */
        s = strrchr(buf, ')');
        if (!s)
                return -EIO;
        s++;
        for (int field = 3; field < 22; field++) {
                s += strspn(s, " ");
                s += strcspn(s, " ");
                if (*s == '\0')
                        return -EIO;
        }
        if (sscanf(s, " %" SCNu64, ret) != 1)
                return -EIO;
        return 0;
}

/* Step 2: we know who is calling; ask polkit. */
static void polkit_query_send_check(PolkitQuery *q, uint32_t pid, uint32_t uid) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *c = NULL;
        uint64_t start_time;
        sd_bus *bus;
        int r;

        r = read_process_start_time(pid, &start_time);
        if (r < 0) {
                log_debug_errno(r, "Failed to read the start time of pid %" PRIu32 ": %m", pid);
                polkit_query_complete(q, "Cannot check authorization: the calling process could not be identified.");
                return;
        }

        r = polkit_get_system_bus(q->polkit, &bus);
        if (r < 0) {
                polkit_query_complete(q, no_system_bus_message(r));
                return;
        }

        r = sd_bus_message_new_method_call(bus, &c, POLKIT_BUS_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(c, "(sa{sv})s",
                                          "unix-process", 3,
                                          "pid", "u", pid,
                                          "start-time", "t", start_time,
                                          "uid", "i", (int32_t) uid,
                                          q->action);
        if (r >= 0)
                r = sd_bus_message_append(c, "a{ss}us", 0,
                                          q->interactive ? POLKIT_CHECK_ALLOW_USER_INTERACTION : 0,
                                          "");
        q->sent_usec = now_usec(CLOCK_MONOTONIC);
        if (r >= 0)
                r = sd_bus_call_async(bus, &q->check_slot, c, check_reply_handler, q,
                                      polkit_timeout(q->polkit, q->interactive));
        if (r < 0) {
                log_warning_errno(r, "Failed to send CheckAuthorization to polkit: %m");
                polkit_query_complete(q, "Cannot check authorization: the system bus is not available.");
                return;
        }

        log_debug("polkit: checking \"%s\" for pid %" PRIu32 " (uid %" PRIu32 ")%s.",
                  q->action, pid, uid, q->interactive ? ", interactive" : "");
}

/* Step 2 of polkit_check_host_async(): the verdict from the caller's root. */
static void polkit_query_check_host(PolkitQuery *q, uint32_t pid) {
        _cleanup_free_ char *app = NULL, *denial = NULL;
        int r;

        r = pid_flatpak_app((pid_t) pid, &app);
        if (r == 0) {
                polkit_query_complete(q, NULL);
                return;
        }
        if (r < 0) {
                log_warning_errno(r, "Cannot tell whether pid %" PRIu32 " is sandboxed: %m", pid);
                if (asprintf(&denial, "Cannot check authorization: cannot tell whether the calling process runs "
                             "in a sandbox (%s).", r == -ESRCH ? "it has gone" : strerror(-r)) < 0)
                        denial = NULL;
                polkit_query_complete(q, denial ?: "Cannot check authorization: cannot tell whether the calling "
                                                   "process runs in a sandbox.");
                return;
        }
        log_info("Refused a call from the sandboxed app %s (pid %" PRIu32 ").", app, pid);
        if (asprintf(&denial, "The caller is a sandboxed application (Flatpak app %s). Sandboxed applications "
                     "may not read or change the gateway key or write the tools' config files on the host; "
                     "do this from outside the sandbox, e.g. with bankr-llm in a terminal.", app) < 0)
                denial = NULL;
        polkit_query_complete(q, denial ?: "The caller is a sandboxed application.");
}

static int creds_reply_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        uint32_t pid = 0, uid = UINT32_MAX;
        int r;

        q->creds_slot = sd_bus_slot_unref(q->creds_slot);

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                if (sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        log_debug("polkit: caller %s left before its check; dropping it.", strna(q->sender));
                        polkit_query_free(q);
                        return 0;
                }
                log_warning("Failed to get the credentials of %s: %s", strna(q->sender), strna(e->message));
                polkit_query_complete(q, "Cannot check authorization: the caller's credentials could not be read.");
                return 0;
        }

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0) {
                const char *key;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        break;
                if (streq(key, "ProcessID"))
                        r = sd_bus_message_read(reply, "v", "u", &pid);
                else if (streq(key, "UnixUserID"))
                        r = sd_bus_message_read(reply, "v", "u", &uid);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0 || pid == 0 || uid == UINT32_MAX) {
                log_warning("The bus did not tell the pid and uid of %s.", strna(q->sender));
                polkit_query_complete(q, "Cannot check authorization: the caller's credentials could not be read.");
                return 0;
        }

        if (streq(q->action, ACTION_HOST_ONLY)) {
                polkit_query_check_host(q, pid);
                return 0;
        }
        polkit_query_send_check(q, pid, uid);
        return 0;
}

static int vanish_handler(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (!streq_ptr(name, q->sender) || !isempty(new_owner))
                return 0;

        log_debug("polkit: caller %s left while \"%s\" was being checked; dropping it.",
                  name, strna(q->action));
        polkit_query_free(q);
        return 0;
}

/* Step 1: watch the caller, and ask its bus who it is. */
static int polkit_query_start(PolkitQuery *q, const char *action, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(q->request);
        _cleanup_free_ char *match = NULL;
        int r;

        q->action = strdup(action);
        if (!q->action)
                return -ENOMEM;

        r = sd_bus_message_get_allow_interactive_authorization(q->request);
        q->interactive = r > 0;

        /* Our callers come through a bus daemon, which vouches for their
         * credentials; a direct peer-to-peer connection is not expected. */
        if (!sd_bus_is_bus_client(bus) || !q->sender)
                return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED,
                                        "Cannot check authorization: the caller is not on a message bus.");

        if (asprintf(&match,
                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
                     q->sender) < 0)
                return -ENOMEM;
        r = sd_bus_add_match_async(bus, &q->vanish_slot, match, vanish_handler, NULL, q);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the caller of a guarded method: %m");

        /* Sent after the match, and the bus handles our messages in order: if
         * the caller left before the match was in place, this call fails. */
        r = sd_bus_call_method_async(bus, &q->creds_slot,
                                     "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionCredentials", creds_reply_handler, q, "s", q->sender);
        if (r < 0)
                return log_error_errno(r, "Failed to ask for the credentials of the caller: %m");

        return 0;
}

static int polkit_query_new(Polkit *p, sd_bus_message *m, PolkitQuery **ret) {
        PolkitQuery *q;

        q = calloc(1, sizeof(PolkitQuery));
        if (!q)
                return -ENOMEM;

        q->request = sd_bus_message_ref(m);
        (void) sd_bus_message_get_cookie(m, &q->cookie);
        if (sd_bus_message_get_sender(m)) {
                q->sender = strdup(sd_bus_message_get_sender(m));
                if (!q->sender) {
                        polkit_query_free(q);
                        return -ENOMEM;
                }
        }

        q->polkit = p;
        q->next = p->queries;
        if (q->next)
                q->next->prev = q;
        p->queries = q;

        *ret = q;
        return 0;
}

int polkit_check_async(Polkit *p, sd_bus_message *m, const char *action, sd_bus_error *error) {
        PolkitQuery *q;
        sd_bus *bus;
        int r;

        if (!p || !m || isempty(action))
                return -EINVAL;

        q = polkit_find_query(p, m);
        if (q) {
                for (size_t i = 0; i < q->n_verdicts; i++) {
                        if (!streq(q->verdicts[i].action, action))
                                continue;
                        if (!q->verdicts[i].denial)
                                return 1;
                        return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED, q->verdicts[i].denial);
                }
                if (polkit_query_in_flight(q)) {
                        if (streq(q->action, action))
                                return 0;
                        /* One check at a time per call; handlers check in sequence. */
                        return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED,
                                                "Cannot check authorization: another check is running for this call.");
                }
        }

        /* Fail at once when there is no system bus to ask: no need to park the
         * call. The host check asks only the session bus. */
        if (!streq(action, ACTION_HOST_ONLY)) {
                r = polkit_get_system_bus(p, &bus);
                if (r < 0)
                        return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED, no_system_bus_message(r));
        }

        if (!q) {
                r = polkit_query_new(p, m, &q);
                if (r < 0)
                        return r;
        }

        r = polkit_query_start(q, action, error);
        if (r < 0) {
                if (q->n_verdicts > 0)
                        polkit_query_end_check(q); /* keep earlier verdicts for this dispatch */
                else
                        polkit_query_free(q);
                if (sd_bus_error_is_set(error))
                        return r;
                return sd_bus_error_setf(error, BUS_ERROR_NOT_AUTHORIZED,
                                         "Cannot check authorization: internal error (%s).", strerror(-r));
        }

        /* The handler stops here and runs again once polkit has answered. */
        return 0;
}

int polkit_check_host_async(Polkit *p, sd_bus_message *m, sd_bus_error *error) {
        return polkit_check_async(p, m, ACTION_HOST_ONLY, error);
}
