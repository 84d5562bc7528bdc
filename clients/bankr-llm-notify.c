/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm-notify: a session agent that tells the user, once, when Bankr
 * LLM credits run low or out, or when the gateway rejects the key. It
 * follows bot.bankr.LLM1 on the session bus without ever starting it, and
 * talks to org.freedesktop.Notifications directly over sd-bus. Nothing
 * but bus signals wakes it up.
 */
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "bankr-names.h"
#include "bus-util.h"
#include "log.h"
#include "notify-spawn.h"
#include "notify-state.h"
#include "util.h"

#define BUDGET_NOTICES_MAX 256U

#define NOTIFY_NAME "org.freedesktop.Notifications"
#define NOTIFY_PATH "/org/freedesktop/Notifications"
#define NOTIFY_INTERFACE "org.freedesktop.Notifications"

#define APP_NAME "Bankr LLM"
#define TOP_UP_URL "https://bankr.bot/api"
#define TOLD_FILE "bankr-llm-notify.state"

typedef struct Context Context;

typedef struct TopicState {
        Context *context;
        Topic topic;
        Level now;          /* what the service says now */
        Level sending;      /* the level of the Notify in flight */
        sd_bus_slot *call;  /* Notify in flight: at most one per topic */
} TopicState;

struct Context {
        sd_event *event;
        sd_bus *bus;

        char *told_path; /* NULL without XDG_RUNTIME_DIR: nothing persists */
        Told told;       /* what the user was shown (persisted) */
        TopicState topic[_TOPIC_MAX];
        Facts facts;

        sd_bus_slot *credits_call, *key_call; /* GetAll in flight */
        bool credits_missing_logged;

        /* The notification server whose capabilities we know; NULL when
         * they must be asked for first. */
        char *server;
        bool server_actions;
        /* No server could be reached: wait for NameOwnerChanged. */
        bool server_absent;
        sd_bus_slot *caps_call;

        /* ModelDeprecated signals not shown yet (no server): id, replacement pairs. */
        char **deprecations_pending;

        /* BudgetReached: what we showed per app (this run only; bankr-llmd
         * itself sends the signal once per app and period, across its
         * restarts). */
        BudgetNotice *budgets;
        size_t n_budgets, n_budgets_allocated;
};

static void context_done(Context *c) {
        for (Topic t = 0; t < _TOPIC_MAX; t++)
                sd_bus_slot_unref(c->topic[t].call);
        sd_bus_slot_unref(c->credits_call);
        sd_bus_slot_unref(c->key_call);
        sd_bus_slot_unref(c->caps_call);
        sd_bus_flush_close_unref(c->bus);
        sd_event_unref(c->event);
        told_done(&c->told);
        strv_free(c->deprecations_pending);
        facts_done(&c->facts);
        for (size_t i = 0; i < c->n_budgets; i++)
                free(c->budgets[i].app);
        free(c->budgets);
        free(c->told_path);
        free(c->server);
}

static bool error_is_absent(const sd_bus_error *e) {
        return sd_bus_error_has_names(e,
                                      SD_BUS_ERROR_SERVICE_UNKNOWN,
                                      SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      SD_BUS_ERROR_NO_REPLY,
                                      SD_BUS_ERROR_DISCONNECTED,
                                      "org.freedesktop.DBus.Error.Spawn.ChildExited",
                                      "org.freedesktop.DBus.Error.Spawn.ExecFailed",
                                      "org.freedesktop.DBus.Error.Spawn.ServiceNotFound");
}

/* ---- the told file ---------------------------------------------------- */

static void told_load(Context *c) {
        _cleanup_free_ char *text = NULL;
        const char *dir = getenv("XDG_RUNTIME_DIR");
        int r;

        if (isempty(dir) || dir[0] != '/') {
                log_notice("XDG_RUNTIME_DIR is not set: a restart of this agent may repeat a notification.");
                return;
        }
        if (asprintf(&c->told_path, "%s/%s", dir, TOLD_FILE) < 0) {
                c->told_path = NULL;
                (void) log_oom();
                return;
        }

        r = read_full_file(c->told_path, 4096, &text, NULL);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                (void) log_warning_errno(r, "Failed to read %s, starting afresh: %m", c->told_path);
                return;
        }
        r = told_parse(text, &c->told);
        if (r < 0) {
                (void) log_warning_errno(r, "Failed to parse %s, starting afresh: %m", c->told_path);
                return;
        }
        log_debug("Already told in this session: credits %s, key %s.",
                  level_to_string(c->told.level[TOPIC_CREDITS]),
                  level_to_string(c->told.level[TOPIC_KEY]));
}

static void told_save(Context *c) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (!c->told_path)
                return;
        r = told_format(&c->told, &text);
        if (r < 0) {
                (void) log_oom();
                return;
        }
        r = write_file_atomic(c->told_path, text, strlen(text), 0600);
        if (r < 0)
                (void) log_warning_errno(r, "Failed to write %s: %m", c->told_path);
}

/* Our notifications live on one server: a new one knows none of them. */
static void server_forget_ids(Context *c) {
        bool changed = c->told.server;

        for (Topic t = 0; t < _TOPIC_MAX; t++) {
                changed = changed || c->told.id[t] != 0;
                c->told.id[t] = 0;
        }
        free(c->told.server);
        c->told.server = NULL;
        if (changed)
                told_save(c);
}

static int server_adopt(Context *c, const char *unique) {
        if (isempty(unique) || streq_ptr(c->told.server, unique))
                return 0;
        server_forget_ids(c);
        c->told.server = strdup(unique);
        return c->told.server ? 0 : -ENOMEM;
}

/* ---- talking to the notification server ---------------------------- */

static int topic_sync(Context *c, Topic t);

static void deprecations_flush(Context *c);

static void sync_all(Context *c) {
        for (Topic t = 0; t < _TOPIC_MAX; t++)
                (void) topic_sync(c, t);
        deprecations_flush(c);
}

static int on_caps_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        _cleanup_strv_free_ char **caps = NULL;
        const sd_bus_error *e;
        int r;

        c->caps_call = sd_bus_slot_unref(c->caps_call);

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* Whatever went wrong, only a new owner of the name can
                 * change it: wait for one instead of retrying. */
                c->server_absent = true;
                if (error_is_absent(e))
                        log_info("No notification server is running; waiting for one to appear.");
                else
                        log_warning("Failed to ask the notification server for its capabilities, waiting for another one: %s",
                                    e->message ?: e->name);
                return 0;
        }

        r = sd_bus_message_read_strv(reply, &caps);
        if (r < 0) {
                c->server_absent = true;
                return log_warning_errno(r, "Failed to parse the notification server's capabilities: %m");
        }

        r = free_and_strdup(&c->server, sd_bus_message_get_sender(reply));
        if (r < 0)
                return log_oom();
        r = server_adopt(c, c->server);
        if (r < 0)
                return log_oom();
        c->server_actions = strv_contains(caps, "actions");
        log_debug("Notification server %s is there%s.", strna(c->server),
                  c->server_actions ? ", with actions" : ", without actions");

        sync_all(c);
        return 0;
}

static int server_ask_caps(Context *c) {
        int r;

        if (c->caps_call)
                return 0;

        /* Auto-start allowed: a desktop's server may be bus-activatable. */
        r = sd_bus_call_method_async(c->bus, &c->caps_call, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_INTERFACE,
                                     "GetCapabilities", on_caps_reply, c, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to ask the notification server for its capabilities: %m");
        return 0;
}

static int on_notify_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        TopicState *ts = userdata;
        Context *c = ts->context;
        Topic t = ts->topic;
        const sd_bus_error *e;
        uint32_t id;
        int r;

        ts->call = sd_bus_slot_unref(ts->call);

        e = sd_bus_message_get_error(reply);
        if (e) {
                if (error_is_absent(e)) {
                        log_info("The notification server went away; waiting for one to appear.");
                        c->server = mfree(c->server);
                        c->server_absent = true;
                } else
                        log_warning("Failed to show the %s notification: %s", topic_to_string(t), e->message ?: e->name);
                return 0;
        }

        r = sd_bus_message_read(reply, "u", &id);
        if (r < 0)
                return log_warning_errno(r, "Failed to parse the notification server's reply: %m");

        r = server_adopt(c, sd_bus_message_get_sender(reply));
        if (r < 0)
                return log_oom();
        c->told.id[t] = id;
        c->told.level[t] = ts->sending;
        told_save(c);

        /* The state may have moved on while we were waiting. */
        return topic_sync(c, t);
}

static int notification_close(Context *c, uint32_t id) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (id == 0)
                return 0;

        r = sd_bus_message_new_method_call(c->bus, &m, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_INTERFACE, "CloseNotification");
        if (r < 0)
                return log_error_errno(r, "Failed to create CloseNotification call: %m");
        /* Never start a server just to close something it cannot show. */
        (void) sd_bus_message_set_auto_start(m, false);
        r = sd_bus_message_append(m, "u", id);
        if (r < 0)
                return log_error_errno(r, "Failed to build CloseNotification call: %m");
        /* Fire and forget: NotificationClosed tells us when it is gone. */
        r = sd_bus_call_async(c->bus, NULL, m, NULL, NULL, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to close notification %" PRIu32 ": %m", id);
        return 0;
}

static int append_actions(Context *c, sd_bus_message *m, MessageActions actions) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *p = NULL;
        char *probe[] = { (char *) "true", NULL };
        int r;

        if (c->server_actions) {
                switch (actions) {
                case ACTIONS_TOP_UP:
                        /* A terminal for the CLI, else the browser. */
                        if (terminal_command(probe, &argv) >= 0 || find_executable("xdg-open", &p) >= 0)
                                if (strv_extend(&l, "top-up") < 0 || strv_extend(&l, "Top up") < 0)
                                        return -ENOMEM;
                        break;
                case ACTIONS_SET_KEY:
                        /* Typing a key needs a terminal; no web fallback. */
                        if (terminal_command(probe, &argv) >= 0)
                                if (strv_extend(&l, "set-key") < 0 || strv_extend(&l, "Set key") < 0)
                                        return -ENOMEM;
                        break;
                default:
                        break;
                }
                if (actions != ACTIONS_NONE)
                        if (strv_extend(&l, "dismiss") < 0 || strv_extend(&l, "Dismiss") < 0)
                                return -ENOMEM;
        }

        r = sd_bus_message_append_strv(m, l);
        return r;
}

static int topic_notify(Context *c, Topic t, const Message *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        TopicState *ts = &c->topic[t];
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_INTERFACE, "Notify");
        if (r < 0)
                return log_error_errno(r, "Failed to create Notify call: %m");

        r = sd_bus_message_append(m, "susss", APP_NAME, c->told.id[t], msg->icon, msg->summary, msg->body);
        if (r >= 0)
                r = append_actions(c, m, msg->actions);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}i", 1, "urgency", "y", msg->urgency, (int32_t) -1);
        if (r < 0)
                return log_error_errno(r, "Failed to build Notify call: %m");

        r = sd_bus_call_async(c->bus, &ts->call, m, on_notify_reply, ts, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to send notification: %m");

        ts->sending = ts->now;
        log_info("%s: %s%s", msg->summary, msg->body, c->told.id[t] ? " (replacing the earlier one)" : "");
        return 0;
}

/* Brings what the user was told about a topic in line with what is true,
 * when a server is there to tell it. */
static int topic_sync(Context *c, Topic t) {
        TopicState *ts = &c->topic[t];
        Message msg = {};
        int r;

        if (ts->call || ts->now == c->told.level[t])
                return 0;

        r = message_for_transition(t, c->told.level[t], ts->now, &c->facts, &msg);
        if (r == -ENODATA) {
                c->told.level[t] = ts->now;
                told_save(c);
                return 0;
        }
        if (r < 0)
                return log_oom();

        if (msg.close_only) {
                log_info("The %s warning no longer applies; withdrawing it.", topic_to_string(t));
                (void) notification_close(c, c->told.id[t]);
                c->told.id[t] = 0;
                c->told.level[t] = ts->now;
                told_save(c);
                r = 0;
        } else if (c->server)
                r = topic_notify(c, t, &msg);
        else if (!c->server_absent)
                r = server_ask_caps(c);
        else
                r = 0; /* delivered when a server appears */

        message_done(&msg);
        return r;
}

/* ---- actions ----------------------------------------------------------- */

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        if (si->si_code == CLD_EXITED && si->si_status == 0)
                log_debug("Child %i finished.", (int) si->si_pid);
        else if (si->si_code == CLD_EXITED)
                log_warning("Child %i exited with status %i.", (int) si->si_pid, si->si_status);
        else
                log_warning("Child %i was killed by signal %s.", (int) si->si_pid, strsignal(si->si_status));

        /* The source held itself until now (see run_command()). */
        sd_event_source_unref(s);
        return 0;
}

static int run_command(Context *c, char *const *argv) {
        sd_event_source *s;
        pid_t pid;
        int r;

        r = spawn_detached(argv, &pid);
        if (r < 0)
                return log_error_errno(r, "Failed to start %s: %m", argv[0]);

        log_info("Started %s (%i).", argv[0], (int) pid);
        /* The source's reference is dropped by on_child_exit() once the
         * child is reaped; a child still running at exit is not waited for. */
        r = sd_event_add_child(c->event, &s, pid, WEXITED, on_child_exit, c);
        if (r < 0)
                return log_error_errno(r, "Failed to watch child %i: %m", (int) pid);
        return 0;
}

static int run_in_terminal_or_open(Context *c, char *const *command, const char *url) {
        _cleanup_strv_free_ char **argv = NULL;
        int r;

        r = terminal_command(command, &argv);
        if (r >= 0)
                return run_command(c, argv);
        if (r != -ENOENT)
                return log_oom();

        if (!url)
                return log_error_errno(r, "Failed to find a terminal emulator to run %s in.", command[0]);

        log_debug("No terminal emulator found, opening %s instead.", url);
        char *open_argv[] = { (char *) "xdg-open", (char *) url, NULL };
        return run_command(c, open_argv);
}

static Topic topic_by_id(Context *c, sd_bus_message *m, uint32_t id) {
        /* Ids are per server: check the sender, so another server's (or
         * another app's) notification is never mistaken for ours. */
        if (id == 0 || !streq_ptr(sd_bus_message_get_sender(m), c->told.server))
                return _TOPIC_INVALID;
        for (Topic t = 0; t < _TOPIC_MAX; t++)
                if (c->told.id[t] == id)
                        return t;
        return _TOPIC_INVALID;
}

/* ActionInvoked (us) and NotificationClosed (uu): the id, the second
 * argument (of type `type`) and the topic. 1 for a notification of ours, 0
 * for another, -errno for a malformed signal (logged). */
static int read_id_signal(Context *c, sd_bus_message *m, const char *what, char type, uint32_t *ret_id,
                          void *ret_arg, Topic *ret_topic) {
        int r;

        r = sd_bus_message_read_basic(m, 'u', ret_id);
        if (r > 0)
                r = sd_bus_message_read_basic(m, type, ret_arg);
        if (r == 0)
                r = -ENXIO; /* missing, as sd_bus_message_read() says it */
        if (r < 0)
                return log_debug_errno(r, "Ignoring malformed %s: %m", what);
        *ret_topic = topic_by_id(c, m, *ret_id);
        return *ret_topic >= 0;
}

static int on_action_invoked(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const char *key;
        uint32_t id;
        Topic t;
        int r;

        r = read_id_signal(c, m, "ActionInvoked", 's', &id, &key, &t);
        if (r <= 0)
                return r;

        log_debug("Action \"%s\" on the %s notification.", key, topic_to_string(t));

        if (streq(key, "top-up")) {
                char *cmd[] = { (char *) "bankr-llm", (char *) "credits", (char *) "add", NULL };
                return run_in_terminal_or_open(c, cmd, TOP_UP_URL);
        }
        if (streq(key, "set-key")) {
                char *cmd[] = { (char *) "bankr-llm", (char *) "key", (char *) "set", NULL };
                return run_in_terminal_or_open(c, cmd, NULL);
        }
        if (streq(key, "dismiss"))
                return notification_close(c, id);

        return 0; /* "default" (a click on the body) and others: nothing */
}

static int on_notification_closed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        uint32_t id, reason;
        Topic t;
        int r;

        r = read_id_signal(c, m, "NotificationClosed", 'u', &id, &reason, &t);
        if (r <= 0)
                return r;

        /* Gone from the screen; the user was still told, so the level stays. */
        log_debug("The %s notification was closed (reason %" PRIu32 ").", topic_to_string(t), reason);
        c->told.id[t] = 0;
        told_save(c);
        return 0;
}

/* ---- following the service --------------------------------------------- */

static void levels_set(Context *c, const Level levels[_TOPIC_MAX]) {
        for (Topic t = 0; t < _TOPIC_MAX; t++)
                c->topic[t].now = levels[t];
}

static void levels_get(Context *c, Level levels[_TOPIC_MAX]) {
        for (Topic t = 0; t < _TOPIC_MAX; t++)
                levels[t] = c->topic[t].now;
}

typedef struct CreditsApply {
        Context *context;
        Level *levels;
} CreditsApply;

static int credits_entry(sd_bus_message *m, const char *name, void *userdata) {
        CreditsApply *a = userdata;
        Facts *f = &a->context->facts;
        const char *state;
        int r;

        if (streq(name, "Balance")) {
                r = sd_bus_message_read(m, "v", "d", &f->balance);
                f->have_balance = f->have_balance || r >= 0;
        } else if (streq(name, "LowThreshold")) {
                r = sd_bus_message_read(m, "v", "d", &f->threshold);
                f->have_threshold = f->have_threshold || r >= 0;
        } else if (streq(name, "State")) {
                r = sd_bus_message_read(m, "v", "s", &state);
                if (r >= 0 && credits_state_apply(state, a->levels) < 0)
                        log_debug("Ignoring unknown credits state \"%s\".", state);
                else if (r >= 0)
                        log_debug("Credits state: %s.", state);
        } else
                r = sd_bus_message_skip(m, "v");
        return r;
}

/* Reads an a{sv} of Credits properties into the context. */
static int credits_apply(Context *c, sd_bus_message *m) {
        Level levels[_TOPIC_MAX];
        int r;

        levels_get(c, levels);
        r = bus_dict_walk(m, credits_entry, &(CreditsApply) { c, levels });
        if (r < 0)
                return r;
        levels_set(c, levels);
        return 0;
}

static int key_entry(sd_bus_message *m, const char *name, void *userdata) {
        Context *c = userdata;
        const char *v;
        int r;

        if (!streq(name, "Source") && !streq(name, "Kind"))
                return sd_bus_message_skip(m, "v");
        r = sd_bus_message_read(m, "v", "s", &v);
        if (r < 0)
                return r;
        return free_and_strdup(streq(name, "Source") ? &c->facts.key_source : &c->facts.key_kind, v);
}

/* Reads an a{sv} of Key properties: only the wording of the messages. */
static int key_apply(Context *c, sd_bus_message *m) {
        return bus_dict_walk(m, key_entry, c);
}

static int on_credits_getall(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const sd_bus_error *e;
        int r;

        c->credits_call = sd_bus_slot_unref(c->credits_call);

        e = sd_bus_message_get_error(reply);
        if (e) {
                if (error_is_absent(e))
                        log_debug("bankr-llmd is not running; waiting for it.");
                else if (!c->credits_missing_logged) {
                        /* E.g. an older service without Credits. Once is enough. */
                        log_warning("Failed to read the credits state from bankr-llmd: %s", e->message ?: e->name);
                        c->credits_missing_logged = true;
                }
                return 0;
        }

        r = credits_apply(c, reply);
        if (r < 0)
                return log_warning_errno(r, "Failed to parse the credits state from bankr-llmd: %m");

        sync_all(c);
        return 0;
}

static int on_key_getall(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        int r;

        c->key_call = sd_bus_slot_unref(c->key_call);

        if (sd_bus_message_is_method_error(reply, NULL))
                return 0; /* only used for wording */

        r = key_apply(c, reply);
        if (r < 0)
                return log_warning_errno(r, "Failed to parse the key properties from bankr-llmd: %m");
        return 0;
}

static int service_get_all(Context *c, const char *interface) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        bool credits = streq(interface, IFACE_CREDITS);
        sd_bus_slot **slot = credits ? &c->credits_call : &c->key_call;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, OBJECT_PATH,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r < 0)
                return log_error_errno(r, "Failed to create GetAll call: %m");
        /* Never start the service ourselves: it exits on idle, and a
         * watcher must not keep it (or its gateway polling) alive. */
        r = sd_bus_message_set_auto_start(m, false);
        if (r < 0)
                return log_error_errno(r, "Failed to disable auto-start: %m");
        r = sd_bus_message_append(m, "s", interface);
        if (r < 0)
                return log_error_errno(r, "Failed to build GetAll call: %m");

        *slot = sd_bus_slot_unref(*slot);
        /* Key (wording only) first, so it is in place when Credits speaks. */
        r = sd_bus_call_async(c->bus, slot, m, credits ? on_credits_getall : on_key_getall, c, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s properties: %m", interface);
        return 0;
}

static int service_read_all(Context *c) {
        int r;

        r = service_get_all(c, IFACE_KEY);
        if (r < 0)
                return r;
        return service_get_all(c, IFACE_CREDITS);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_strv_free_ char **invalidated = NULL;
        Context *c = userdata;
        const char *interface;
        bool credits;
        int r;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0)
                return log_debug_errno(r, "Ignoring malformed PropertiesChanged: %m");

        credits = streq(interface, IFACE_CREDITS);
        if (!credits && !streq(interface, IFACE_KEY))
                return 0;

        r = credits ? credits_apply(c, m) : key_apply(c, m);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &invalidated);
        if (r < 0)
                return log_warning_errno(r, "Failed to parse PropertiesChanged from bankr-llmd: %m");

        /* Names without values: fetch them. */
        if (strv_length(invalidated) > 0)
                return service_get_all(c, interface);

        if (credits)
                sync_all(c);
        return 0;
}

/* Credits.Low and Credits.Exhausted: the credits are at level, and so the
 * key works. */
static int credits_signal(Context *c, Level level) {
        c->topic[TOPIC_CREDITS].now = level;
        c->topic[TOPIC_KEY].now = LEVEL_NONE;
        sync_all(c);
        return 0;
}

static int on_low(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        double balance, threshold;
        int r;

        r = sd_bus_message_read(m, "dd", &balance, &threshold);
        if (r < 0)
                return log_debug_errno(r, "Ignoring malformed Credits.Low: %m");

        log_debug("Credits.Low: %.2f below %.2f.", balance, threshold);
        c->facts.balance = balance;
        c->facts.threshold = threshold;
        c->facts.have_balance = c->facts.have_threshold = true;
        return credits_signal(c, LEVEL_LOW);
}

static int on_exhausted(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;

        log_debug("Credits.Exhausted.");
        return credits_signal(c, LEVEL_EXHAUSTED);
}

/* ---- budgets ------------------------------------------------------------ */

typedef struct BudgetEvent {
        Context *context;
        char *app;
        double spent, limit;
} BudgetEvent;

static BudgetNotice *budget_notice_find(Context *c, const char *app) {
        for (size_t i = 0; i < c->n_budgets; i++)
                if (streq(c->budgets[i].app, app))
                        return &c->budgets[i];
        return NULL;
}

static int on_budget_notify_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t id;
        const char *app;

        /* The app rides along in the slot's description. */
        app = NULL;
        (void) sd_bus_slot_get_description(sd_bus_get_current_slot(c->bus), &app);
        if (e) {
                log_warning("Failed to show the budget notification: %s", e->message ?: e->name);
                return 0;
        }
        if (sd_bus_message_read(reply, "u", &id) < 0 || !app)
                return 0;
        BudgetNotice *n = budget_notice_find(c, app);
        if (n)
                n->id = id;
        return 0;
}

static void budget_show(Context *c, const char *app, double spent, double limit, const char *period,
                        uint64_t resets_at) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(message_done) Message msg = {};
        BudgetNotice *n = budget_notice_find(c, app);
        sd_bus_slot *slot = NULL;
        int r;

        if (!budget_notice_wanted(n, resets_at)) {
                log_debug("Budget of %s: already shown for this period.", app);
                return;
        }
        if (!n) {
                if (c->n_budgets >= BUDGET_NOTICES_MAX)
                        return;
                if (!GREEDY_REALLOC(c->budgets, c->n_budgets_allocated, c->n_budgets + 1)) {
                        (void) log_oom();
                        return;
                }
                n = &c->budgets[c->n_budgets];
                *n = (BudgetNotice) { .app = strdup(app) };
                if (!n->app) {
                        (void) log_oom();
                        return;
                }
                c->n_budgets++;
        }
        n->resets_at = resets_at;

        r = budget_message(app, spent, limit, period, resets_at, &msg);
        if (r < 0) {
                (void) log_oom();
                return;
        }
        r = sd_bus_message_new_method_call(c->bus, &m, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_INTERFACE, "Notify");
        if (r >= 0)
                r = sd_bus_message_append(m, "susssasa{sv}i", APP_NAME, n->id, msg.icon, msg.summary, msg.body, 0, 1,
                                          "urgency", "y", msg.urgency, (int32_t) -1);
        if (r >= 0)
                r = sd_bus_call_async(c->bus, &slot, m, on_budget_notify_reply, c, 0);
        if (r < 0) {
                log_error_errno(r, "Failed to send the budget notification: %m");
                return;
        }
        (void) sd_bus_slot_set_description(slot, app);
        (void) sd_bus_slot_set_floating(slot, true);
        sd_bus_slot_unref(slot);
        log_info("%s: %s%s", msg.summary, msg.body, n->id ? " (replacing the earlier one)" : "");
}

static int on_budgets_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        BudgetEvent *ev = userdata;
        Context *c = ev->context;
        const char *period = NULL;
        uint64_t resets_at = 0;
        int r;

        /* Which period this is: the app's entry in Usage.Budgets. */
        if (!sd_bus_message_is_method_error(reply, NULL)) {
                r = sd_bus_message_enter_container(reply, 'v', "aa{sv}");
                if (r > 0)
                        r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
                while (r > 0 && (r = sd_bus_message_enter_container(reply, 'a', "{sv}")) > 0) {
                        const char *app = NULL, *per = NULL;
                        uint64_t at = 0;

                        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                                const char *key;
                                r = sd_bus_message_read(reply, "s", &key);
                                if (r >= 0 && streq(key, "app"))
                                        r = sd_bus_message_read(reply, "v", "s", &app);
                                else if (r >= 0 && streq(key, "period"))
                                        r = sd_bus_message_read(reply, "v", "s", &per);
                                else if (r >= 0 && streq(key, "resets_at"))
                                        r = sd_bus_message_read(reply, "v", "t", &at);
                                else if (r >= 0)
                                        r = sd_bus_message_skip(reply, "v");
                                if (r >= 0)
                                        r = sd_bus_message_exit_container(reply);
                                if (r < 0)
                                        break;
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r >= 0 && streq_ptr(app, ev->app)) {
                                period = per;
                                resets_at = at;
                                break;
                        }
                        if (r >= 0)
                                r = 1;
                }
        }
        budget_show(c, ev->app, ev->spent, ev->limit, period, resets_at);
        free(ev->app);
        free(ev);
        return 0;
}

static int on_budget_reached(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const char *app;
        double spent, limit;
        BudgetEvent *ev;
        int r;

        r = sd_bus_message_read(m, "sdd", &app, &spent, &limit);
        if (r < 0)
                return log_debug_errno(r, "Ignoring malformed Usage.BudgetReached: %m");
        log_debug("Usage.BudgetReached: %s spent %.4f of %.4f.", app, spent, limit);

        ev = calloc(1, sizeof(BudgetEvent));
        if (!ev || !(ev->app = strdup(app))) {
                free(ev);
                return log_oom();
        }
        ev->context = c;
        ev->spent = spent;
        ev->limit = limit;
        r = sd_bus_call_method_async(c->bus, NULL, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties",
                                     "Get", on_budgets_reply, ev, "ss", IFACE_USAGE, "Budgets");
        if (r < 0) {
                free(ev->app);
                free(ev);
                return log_warning_errno(r, "Failed to read the budgets: %m");
        }
        return 0;
}

/* ---- the deprecation topic: once per model ------------------------------ */

typedef struct DeprecationCall {
        Context *context;
        char *id;
} DeprecationCall;

static int on_deprecation_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        DeprecationCall *d = userdata;
        Context *c = d->context;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_warning("Failed to show the deprecation of %s: %s", d->id, e->message ?: e->name);
        else if (told_add_deprecated(&c->told, d->id) >= 0)
                told_save(c);
        free(d->id);
        free(d);
        return 0;
}

static int deprecation_notify(Context *c, const char *id, const char *replacement) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(message_done) Message msg = {};
        DeprecationCall *d;
        int r;

        r = message_for_deprecation(id, replacement, &msg);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(c->bus, &m, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_INTERFACE, "Notify");
        if (r >= 0)
                r = sd_bus_message_append(m, "susssasa{sv}i", APP_NAME, (uint32_t) 0, msg.icon, msg.summary, msg.body,
                                          0, 1, "urgency", "y", msg.urgency, (int32_t) -1);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(DeprecationCall));
        if (!d || !(d->id = strdup(id))) {
                free(d);
                return -ENOMEM;
        }
        d->context = c;
        r = sd_bus_call_async(c->bus, NULL, m, on_deprecation_reply, d, 0);
        if (r < 0) {
                free(d->id);
                free(d);
                return r;
        }
        log_info("%s: %s", msg.summary, msg.body);
        return 0;
}

static void deprecations_flush(Context *c) {
        _cleanup_strv_free_ char **l = NULL;

        if (!c->server || !c->deprecations_pending)
                return;
        l = TAKE_PTR(c->deprecations_pending);
        for (char **p = l; p[0] && p[1]; p += 2)
                if (!told_has_deprecated(&c->told, p[0]) && deprecation_notify(c, p[0], p[1]) < 0)
                        log_warning("Failed to show the deprecation of %s.", p[0]);
}

static int on_model_deprecated(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const char *id, *replacement;
        int r;

        r = sd_bus_message_read(m, "ss", &id, &replacement);
        if (r < 0)
                return log_debug_errno(r, "Ignoring malformed Models.ModelDeprecated: %m");
        if (!deprecation_id_ok(id)) {
                log_debug("Ignoring ModelDeprecated for an odd model id.");
                return 0;
        }
        if (told_has_deprecated(&c->told, id) || strv_contains(c->deprecations_pending, id)) {
                log_debug("Already told that %s is deprecated.", id);
                return 0;
        }
        if (strv_extend(&c->deprecations_pending, id) < 0 ||
            strv_extend(&c->deprecations_pending, deprecation_id_ok(replacement) ? replacement : "") < 0)
                return log_oom();
        if (!c->server) {
                (void) server_ask_caps(c); /* flushed once it answers */
                return 0;
        }
        deprecations_flush(c);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0)
                return log_debug_errno(r, "Ignoring malformed NameOwnerChanged: %m");

        if (streq(name, BUS_NAME)) {
                if (isempty(new_owner)) {
                        log_debug("bankr-llmd left the bus; waiting for it to come back.");
                        c->credits_call = sd_bus_slot_unref(c->credits_call);
                        c->key_call = sd_bus_slot_unref(c->key_call);
                        return 0;
                }
                log_debug("bankr-llmd is on the bus as %s.", new_owner);
                return service_read_all(c);
        }

        if (streq(name, NOTIFY_NAME)) {
                /* Any change of owner: ids and capabilities are void. */
                c->server = mfree(c->server);
                c->caps_call = sd_bus_slot_unref(c->caps_call);
                server_forget_ids(c);

                if (isempty(new_owner)) {
                        log_debug("The notification server left the bus.");
                        /* It may be bus-activatable: try again when needed. */
                        c->server_absent = false;
                        return 0;
                }
                log_debug("A notification server appeared as %s.", new_owner);
                c->server_absent = false;
                sync_all(c);
        }
        return 0;
}

/* ---- setup ------------------------------------------------------------- */

static int add_matches(Context *c) {
        static const char *const rules[] = {
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'",
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" NOTIFY_NAME "'",
                "type='signal',sender='" BUS_NAME "',path='" OBJECT_PATH "',"
                "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
                "type='signal',sender='" BUS_NAME "',path='" OBJECT_PATH "',"
                "interface='" IFACE_CREDITS "',member='Low'",
                "type='signal',sender='" BUS_NAME "',path='" OBJECT_PATH "',"
                "interface='" IFACE_CREDITS "',member='Exhausted'",
                "type='signal',sender='" BUS_NAME "',path='" OBJECT_PATH "',"
                "interface='" IFACE_USAGE "',member='BudgetReached'",
                "type='signal',sender='" BUS_NAME "',path='" OBJECT_PATH "',"
                "interface='" IFACE_MODELS "',member='ModelDeprecated'",
                "type='signal',sender='" NOTIFY_NAME "',path='" NOTIFY_PATH "',"
                "interface='" NOTIFY_INTERFACE "',member='ActionInvoked'",
                "type='signal',sender='" NOTIFY_NAME "',path='" NOTIFY_PATH "',"
                "interface='" NOTIFY_INTERFACE "',member='NotificationClosed'",
        };
        static const sd_bus_message_handler_t handlers[ELEMENTSOF(rules)] = {
                on_name_owner_changed,
                on_name_owner_changed,
                on_properties_changed,
                on_low,
                on_exhausted,
                on_budget_reached,
                on_model_deprecated,
                on_action_invoked,
                on_notification_closed,
        };
        int r;

        /* Synchronous on purpose: no signal may slip by before we read the
         * initial state. Floating slots: they live as long as the bus. */
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                r = sd_bus_add_match(c->bus, NULL, rules[i], handlers[i], c);
                if (r < 0)
                        return log_error_errno(r, "Failed to add match \"%s\": %m", rules[i]);
        }
        return 0;
}

static int setup(Context *c) {
        sigset_t mask;
        int r;

        /* SIGCHLD for sd_event_add_child(); TERM/INT for a clean exit. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");

        r = sd_event_default(&c->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");
        r = sd_event_add_signal(c->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m");

        r = sd_bus_open_user(&c->bus);
        if (r == -ENOMEDIUM)
                return log_error_errno(r, "Failed to connect to the session bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set.");
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the session bus: %m");
        (void) sd_bus_set_description(c->bus, "session-bus");
        r = sd_bus_set_exit_on_disconnect(c->bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set exit on disconnect: %m");
        r = sd_bus_attach_event(c->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        told_load(c);
        /* Nothing to say until the service tells us otherwise. */
        for (Topic t = 0; t < _TOPIC_MAX; t++)
                c->topic[t] = (TopicState) {
                        .context = c,
                        .topic = t,
                        .now = c->told.level[t],
                };

        r = add_matches(c);
        if (r < 0)
                return r;

        r = sd_bus_request_name(c->bus, BANKR_NOTIFIER_NAME, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Another bankr-llm-notify is already running in this session.");
        if (r < 0)
                return log_error_errno(r, "Failed to acquire bus name %s: %m", BANKR_NOTIFIER_NAME);

        return service_read_all(c);
}

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Shows desktop notifications when Bankr LLM credits run low or out, when\n"
               "the gateway rejects the key, or when an application reaches its budget.\n"
               "Follows bankr-llmd (bot.bankr.LLM1) on the session bus without starting\n"
               "it, and waits for a notification server when none is running. Started by\n"
               "the bankr-llm-notify.service user unit or by XDG autostart.\n\n"
               "  -h --help       Show this help\n"
               "     --version    Show the package version\n"
               "  -v --verbose    Log debug messages\n\n"
               "What the user was told is kept in $XDG_RUNTIME_DIR/%s,\n"
               "so a restart of this agent does not repeat a notification.\n",
               program_invocation_short_name, TOLD_FILE);
}

static int run(int argc, char *argv[]) {
        _cleanup_(context_done) Context c = {};
        int r;

        log_set_program("bankr-llm-notify");
        r = daemon_parse_argv("bankr-llm-notify", help, argc, argv);
        if (r <= 0)
                return r;

        r = setup(&c);
        if (r < 0)
                return r;

        (void) sd_notify(false, "READY=1\nSTATUS=Watching bankr-llmd.");
        r = sd_event_loop(c.event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
