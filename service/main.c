/* SPDX-License-Identifier: MIT */
/*
 * bankr-llmd: owns bot.bankr.LLM1 on the session bus and serves
 * /bot/bankr/LLM1. This file holds the Context's lifetime, option parsing,
 * signals and the name; every interface lives in its own module.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "bankr-config.h"
#include "http.h"
#include "keyring.h"
#include "log.h"
#include "chat.h"
#include "images.h"
#include "credits.h"
#include "key.h"
#include "models.h"
#include "setup.h"
#include "topup.h"
#include "polkit.h"
#include "usage.h"
#include "endpoint.h"

static void help(void) {
        printf("Usage: bankr-llmd [OPTIONS]\n\n"
               "The Bankr LLM Gateway service for the desktop session: keeps the gateway key\n"
               "in the keyring, caches the model list and the credit balance, and streams\n"
               "chat answers to D-Bus clients. Normally started by D-Bus activation.\n\n"
               "  -h --help       Show this help\n"
               "     --version    Show the version\n"
               "  -v --verbose    Log debug messages\n\n"
               "Environment: BANKR_LLM_KEY, BANKR_API_KEY, BANKR_LLM_URL, BANKR_API_URL,\n"
               "BANKR_CONFIG (default ~/.bankr/config.json), XDG_CACHE_HOME, XDG_CONFIG_HOME,\n"
               "XDG_STATE_HOME (endpoint port and tokens), XDG_RUNTIME_DIR (endpoint socket),\n"
               "BANKR_LLMD_ENDPOINT_PORT (the endpoint's first port to try; 0: any).\n"
               "Reference: docs/dbus-api.md and the interface XML in share/dbus-1/interfaces.\n");
}

/* Each stream holds a socket, and 1024 of them may be in flight. Raise the
 * soft RLIMIT_NOFILE to the hard one, as systemd's own daemons do
 * (rlimit_nofile_bump()): the soft limit of 1024 exists for programs that
 * still use select(), and nothing here does (sd-event and sd-bus use epoll
 * and poll, curl uses poll and our sd-event sockets, GLib uses poll).
 * bankr-llmd execs no programs; one that ever does must set the soft limit
 * back to FD_SETSIZE in the child first, as systemd's rlimit_nofile_safe()
 * does. chat.c sizes its request limits from the limit in force after this. */

static void raise_nofile_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(-errno, "Failed to raise the soft limit on open files: %m");
        else
                log_debug("Raised the soft limit on open files to %llu.", (unsigned long long) rl.rlim_cur);
}

static int xdg_dir(const char *env, const char *fallback, const char *leaf, char **ret) {
        const char *base = getenv(env), *home = getenv("HOME");
        char *p;

        if (!isempty(base) && base[0] == '/')
                p = NULL, (void) asprintf(&p, "%s/%s", base, leaf);
        else if (!isempty(home) && home[0] == '/')
                p = NULL, (void) asprintf(&p, "%s/%s/%s", home, fallback, leaf);
        else
                return -ENXIO;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static Context *context_free(Context *c) {
        if (!c)
                return NULL;
        /* Modules first (they hold bus slots and event sources), keyring last
         * but before the keys it may still call back into. */
        c->endpoint = endpoint_free(c->endpoint);
        c->chat = chat_free(c->chat);
        c->usage = usage_free(c->usage); /* after chat, which books into it; writes what is queued */
        c->images = images_free(c->images);
        c->setup = setup_free(c->setup);
        c->topup = topup_free(c->topup);
        c->credits = credits_free(c->credits);
        c->models = models_free(c->models);
        c->http = http_free(c->http);
        c->polkit = polkit_free(c->polkit);
        c->keyring = keyring_free(c->keyring);
        c->keys = keys_free(c->keys);
        sd_bus_flush_close_unref(c->bus);
        sd_event_unref(c->event);
        free(c->config_path);
        free(c->cache_dir);
        free(c->state_dir);
        free(c->catalog_path);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Context *, context_free);

static int context_new(Context **ret) {
        _cleanup_(context_freep) Context *c = NULL;
        const char *e;
        int r;

        c = calloc(1, sizeof(Context));
        if (!c)
                return log_oom();

        r = bankr_config_path(&c->config_path);
        if (r < 0)
                return log_error_errno(r, "Cannot locate the config file: HOME is not set and BANKR_CONFIG is not given.");
        r = xdg_dir("XDG_CACHE_HOME", ".cache", "bankr-llm", &c->cache_dir);
        if (r >= 0)
                r = xdg_dir("XDG_CONFIG_HOME", ".config", "bankr-llm", &c->state_dir);
        if (r < 0)
                return log_error_errno(r, "Cannot locate the cache and settings directories: HOME is not set.");
        e = getenv("BANKR_LLMD_CATALOG");
        c->catalog_path = strdup(!isempty(e) ? e : PKGDATADIR "/models.json");
        if (!c->catalog_path)
                return log_oom();

        r = sd_event_default(&c->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");

        *ret = TAKE_PTR(c);
        return 0;
}

static int on_name_lost(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        /* We never allow replacement, so only the bus taking it back gets here. */
        log_info("Lost the name %s; exiting.", BUS_NAME);
        return sd_event_exit(c->event, 0);
}

/* The session bus closed our connection (dbus-daemon exited, the session
 * ended). Nothing can reach us again: exit rather than keep the key in
 * memory and keep polling the gateway for nobody. The status is 0: the
 * session is ending or the bus restarts and activates us again on the next
 * call, so Restart=on-failure must not try to start us on a bus that is
 * gone (it would fail until the start limit). */
static int on_bus_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        log_info("The session bus went away; exiting.");
        return sd_event_exit(c->event, 0);
}

static int connect_bus(Context *c) {
        int r;

        r = sd_bus_open_user(&c->bus);
        if (r == -ENOMEDIUM)
                return log_error_errno(r, "No session bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set.");
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the session bus: %m");
        (void) sd_bus_set_description(c->bus, "session-bus");

        r = sd_bus_attach_event(c->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        /* sd-bus delivers the local Disconnected signal to matches when the
         * connection closes. */
        r = sd_bus_match_signal(c->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_bus_disconnected, c);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the session bus connection: %m");
        return 0;
}

static int export(Context *c) {
        static const struct {
                const char *interface;
                const sd_bus_vtable *vtable;
                size_t offset;
        } table[] = {
                { IFACE_KEY, keys_vtable, offsetof(Context, keys) },
                { IFACE_MODELS, models_vtable, offsetof(Context, models) },
                { IFACE_CREDITS, credits_vtable, offsetof(Context, credits) },
                /* The same interface: sd-bus serves and introspects both vtables as one. */
                { IFACE_CREDITS, topup_vtable, offsetof(Context, topup) },
                { IFACE_CHAT, chat_vtable, offsetof(Context, chat) },
                { IFACE_SETUP, setup_vtable, offsetof(Context, setup) },
                { IFACE_USAGE, usage_vtable, offsetof(Context, usage) },
                { IFACE_IMAGES, images_vtable, offsetof(Context, images) },
                { IFACE_ENDPOINT, endpoint_vtable, offsetof(Context, endpoint) },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                void *object = *(void **) ((char *) c + table[i].offset);
                r = sd_bus_add_object_vtable(c->bus, NULL, OBJECT_PATH, table[i].interface, table[i].vtable, object);
                if (r < 0)
                        return log_error_errno(r, "Failed to export %s: %m", table[i].interface);
        }
        return 0;
}

static int on_name_acquired(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Context *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t result = 0;
        int r;

        if (e) {
                log_error("Failed to acquire the name %s: %s", BUS_NAME, e->message ?: e->name);
                return sd_event_exit(c->event, -EIO);
        }
        if (sd_bus_message_read(reply, "u", &result) < 0 || (result != 1 && result != 4)) {
                log_error("The name %s is already owned by another process (is bankr-llmd already running?).",
                          BUS_NAME);
                return sd_event_exit(c->event, -EEXIST);
        }

        r = usage_start(c->usage);
        if (r < 0)
                log_warning_errno(r, "Failed to start the ledger: %m");
        endpoint_start(c->endpoint);
        (void) sd_notify(false, "READY=1\nSTATUS=Serving " BUS_NAME);
        log_info("bankr-llmd %s serving %s (gateway %s).", VERSION, BUS_NAME, context_gateway_url(c));
        return 0;
}

static void on_keys_ready(Context *c) {
        int r;

        /* Never ALLOW_REPLACEMENT: whoever took the name over with
         * REPLACE_EXISTING would receive the next key a client sends. And
         * DO_NOT_QUEUE: a second instance exits rather than wait in line. */
        r = sd_bus_call_method_async(c->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "RequestName", on_name_acquired, c, "su", BUS_NAME,
                                     (uint32_t) 0x4 /* DO_NOT_QUEUE */);
        if (r < 0) {
                log_error_errno(r, "Failed to request the name %s: %m", BUS_NAME);
                (void) sd_event_exit(c->event, r);
        }
}

static int run(int argc, char *argv[]) {
        _cleanup_(context_freep) Context *c = NULL;
        sigset_t mask;
        int r;

        log_set_program("bankr-llmd");
        r = daemon_parse_argv("bankr-llmd", help, argc, argv);
        if (r <= 0)
                return r;

        raise_nofile_limit();

        /* The key lives in this process: keep it out of core dumps and away
         * from ptrace by other processes of the same user. */
        (void) prctl(PR_SET_DUMPABLE, 0);
        (void) setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });

        r = context_new(&c);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_add_signal(c->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m");

        r = connect_bus(c);
        if (r < 0)
                return r;

        r = http_new(c->event, &c->http);
        if (r < 0)
                return log_error_errno(r, "Failed to set up HTTP: %m");
        r = polkit_new(c->event, &c->polkit);
        if (r < 0)
                return log_error_errno(r, "Failed to set up polkit checks: %m");
        r = keyring_new(c->event, &c->keyring);
        if (r < 0)
                return log_error_errno(r, "Failed to start the keyring worker: %m");
        r = keys_new(c, &c->keys);
        if (r < 0)
                return log_error_errno(r, "Failed to set up key handling: %m");
        r = models_new(c, &c->models);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the model list: %m");
        r = credits_new(c, &c->credits);
        if (r < 0)
                return log_error_errno(r, "Failed to set up credits: %m");
        r = topup_new(c, &c->topup);
        if (r < 0)
                return log_error_errno(r, "Failed to set up top-ups: %m");
        r = usage_new(c->event, c->bus, c->polkit, c->state_dir, &c->usage);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the ledger: %m");
        r = chat_new(c, &c->chat);
        if (r < 0)
                return log_error_errno(r, "Failed to set up chat: %m");
        r = images_new(c, &c->images);
        if (r < 0)
                return log_error_errno(r, "Failed to set up image generation: %m");
        r = setup_new(c, &c->setup);
        if (r < 0)
                return log_error_errno(r, "Failed to set up tool integration: %m");
        r = endpoint_new(c, &c->endpoint);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the local endpoint: %m");

        r = export(c);
        if (r < 0)
                return r;

        /* The name is taken once the keyring has answered (see on_keys_ready),
         * so the first caller never sees a half-initialised object. */
        keys_start(c->keys, on_keys_ready);

        r = sd_bus_match_signal(c->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                "NameLost", on_name_lost, c);
        if (r < 0)
                log_warning_errno(r, "Failed to watch for the loss of our name: %m");

        r = sd_event_loop(c->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r == -EEXIST || r == -EIO)
                return r; /* already logged */
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        log_info("Exiting.");
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
