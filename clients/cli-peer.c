/* SPDX-License-Identifier: MIT */
/*
 * The owner check of cli-peer.h. bankr-llmd is non-dumpable, so its
 * /proc/PID/exe cannot be read by the user; the systemd user manager knows
 * it instead. On a bus where the user manager is present (a systemd
 * desktop), the owner of bot.bankr.LLM1 must be the main process of
 * bankr-llmd.service, a unit that is not transient, and every file that
 * defines the unit (fragment and drop-ins) and its ExecStart program must
 * be installed by root and writable by nobody else. Where no user manager
 * is on the bus (a desktop without systemd, the test harness, which
 * activates bankr-llmd straight from dbus-daemon), there is nobody to ask:
 * the key goes to the owner, as with any D-Bus service.
 */
#include <sys/stat.h>
#include <systemd/sd-login.h>

#include "cli-peer.h"
#include "cli.h"

#define UNIT_NAME "bankr-llmd.service"
#define SYSTEMD_NAME "org.freedesktop.systemd1"

static int dbus_call(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **ret, const char *types,
                     const char *arg) {
        return sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", method,
                                  error, ret, types, arg);
}

/* Installed by the system: owned by root, writable by no one else, and so
 * is the directory it is in. */
static bool installed_file(const char *path) {
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        char *slash;

        if (isempty(path) || path[0] != '/' || stat(path, &st) < 0)
                return false;
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return false;
        dir = strdup(path);
        if (!dir)
                return false;
        slash = strrchr(dir, '/');
        if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        if (stat(dir, &st) < 0)
                return false;
        return st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* Asks the user manager about bankr-llmd.service. Returns NULL when it is
 * the installed unit with main process pid, or a sentence saying why not. */
static const char *check_unit(sd_bus *bus, pid_t pid) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *fragment = NULL;
        _cleanup_strv_free_ char **dropins = NULL;
        const char *path, *exec = NULL;
        uint32_t main_pid = 0;
        int transient = 1, r;

        r = sd_bus_call_method(bus, SYSTEMD_NAME, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                               "GetUnit", &error, &reply, "s", UNIT_NAME);
        if (r < 0 || sd_bus_message_read(reply, "o", &path) < 0)
                return "the systemd user manager does not know " UNIT_NAME;
        _cleanup_free_ char *unit_path = strdup(path);
        if (!unit_path)
                return "out of memory";
        reply = sd_bus_message_unref(reply);

        if (sd_bus_get_property_string(bus, SYSTEMD_NAME, unit_path, "org.freedesktop.systemd1.Unit", "FragmentPath",
                                       NULL, &fragment) < 0 ||
            sd_bus_get_property_strv(bus, SYSTEMD_NAME, unit_path, "org.freedesktop.systemd1.Unit", "DropInPaths", NULL,
                                     &dropins) < 0 ||
            sd_bus_get_property_trivial(bus, SYSTEMD_NAME, unit_path, "org.freedesktop.systemd1.Unit", "Transient", NULL,
                                        'b', &transient) < 0 ||
            sd_bus_get_property_trivial(bus, SYSTEMD_NAME, unit_path, "org.freedesktop.systemd1.Service", "MainPID",
                                        NULL, 'u', &main_pid) < 0 ||
            sd_bus_get_property(bus, SYSTEMD_NAME, unit_path, "org.freedesktop.systemd1.Service", "ExecStart", NULL,
                                &reply, "a(sasbttttuii)") < 0)
                return "the systemd user manager did not describe " UNIT_NAME;

        if (transient)
                return UNIT_NAME " is a transient unit";
        if ((pid_t) main_pid != pid)
                return "it is not the main process of " UNIT_NAME;
        if (!installed_file(fragment))
                return "the unit file of " UNIT_NAME " is not one installed by the system";
        for (char **d = dropins; d && *d; d++)
                if (!installed_file(*d))
                        return "a drop-in of " UNIT_NAME " is not one installed by the system";

        /* ExecStart: exactly one command, an installed bankr-llmd. */
        r = sd_bus_message_enter_container(reply, 'a', "(sasbttttuii)");
        if (r > 0)
                r = sd_bus_message_enter_container(reply, 'r', "sasbttttuii");
        if (r > 0)
                r = sd_bus_message_read(reply, "s", &exec);
        if (r <= 0 || !exec)
                return UNIT_NAME " has no ExecStart";
        exec = strdupa(exec);
        if (sd_bus_message_skip(reply, "asbttttuii") < 0 || sd_bus_message_exit_container(reply) < 0 ||
            sd_bus_message_at_end(reply, false) <= 0)
                return UNIT_NAME " runs more than one command";
        const char *base = strrchr(exec, '/');
        if (!base || !streq(base + 1, "bankr-llmd") || !installed_file(exec))
                return "the program " UNIT_NAME " runs is not an installed bankr-llmd";
        return NULL;
}

int cli_peer_trusted(sd_bus *bus, const char *what, char **ret_unique) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *unique = NULL, *unit = NULL;
        const char *s, *why;
        uint32_t pid = 0;
        int has_systemd = 0, r;

        /* Start it the ordinary way (SystemdService= on a systemd desktop). */
        r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Peer", "Ping", &error, NULL, NULL);
        if (r < 0)
                return cli_fail_bus(what, &error, r);
        r = dbus_call(bus, "GetNameOwner", &error, &reply, "s", BUS_NAME);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return cli_fail_bus(what, &error, r);
        unique = strdup(s);
        if (!unique)
                return cli_fail(EXIT_FAIL, "Failed to %s: out of memory.", what);
        reply = sd_bus_message_unref(reply);

        r = dbus_call(bus, "NameHasOwner", &error, &reply, "s", SYSTEMD_NAME);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &has_systemd);
        if (r < 0)
                return cli_fail_bus(what, &error, r);
        reply = sd_bus_message_unref(reply);
        if (!has_systemd) {
                /* No user manager on this bus: nothing to ask (see above). */
                *ret_unique = TAKE_PTR(unique);
                return 0;
        }

        r = dbus_call(bus, "GetConnectionUnixProcessID", &error, &reply, "s", unique);
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &pid);
        if (r < 0)
                return cli_fail_bus(what, &error, r);

        r = sd_pid_get_user_unit((pid_t) pid, &unit);
        if (r < 0)
                why = "it does not run in a unit of the systemd user manager";
        else if (!streq(unit, UNIT_NAME))
                why = "it runs in another unit";
        else
                why = check_unit(bus, (pid_t) pid);
        if (why)
                return cli_fail(EXIT_NO_SERVICE,
                                "Failed to %s: refusing to send the key. %s is owned by PID %" PRIu32 "%s%s%s, which is "
                                "not the installed bankr-llmd (%s). Stop that program; if it is a bankr-llmd you "
                                "started by hand, stop it and let D-Bus start " UNIT_NAME ".",
                                what, BUS_NAME, pid, unit ? " (unit " : "", strempty(unit), unit ? ")" : "", why);
        *ret_unique = TAKE_PTR(unique);
        return 0;
}

int cli_peer_set_key(sd_bus *bus, const char *what, const char *key, const char *kind) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *owner = NULL;
        int r;

        r = cli_peer_trusted(bus, what, &owner);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, owner, OBJECT_PATH, IFACE("Key"), "Set");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", key, kind);
        if (r < 0)
                return cli_fail_bus(what, NULL, r);
        (void) sd_bus_message_sensitive(m);
        /* Storing in the keyring may wait for an unlock prompt. */
        r = sd_bus_call(bus, m, 120 * USEC_PER_SEC, &error, NULL);
        if (r < 0)
                return cli_fail_bus(what, &error, r);
        return 0;
}
