#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A stand-in that owns bot.bankr.LLM1 (as any program of the user could)
and records every Key.Set it receives into the file given as argv[1].
With --systemd it also owns org.freedesktop.systemd1, so that the bus looks
like a systemd desktop's.  Prints "ready" once it owns its names."""
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

record = sys.argv[1]
open(record, "w").close()


class Key(dbus.service.Object):
    @dbus.service.method("bot.bankr.LLM1.Key", in_signature="ss", out_signature="")
    def Set(self, key, kind):
        with open(record, "a") as f:
            f.write("%s %s\n" % (kind, key))

    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="ss", out_signature="v")
    def Get(self, iface, prop):
        return dbus.Boolean(False) if prop == "Present" else dbus.String("")


DBusGMainLoop(set_as_default=True)
bus = dbus.SessionBus()
names = [dbus.service.BusName("bot.bankr.LLM1", bus, replace_existing=True, do_not_queue=True)]
if "--systemd" in sys.argv:
    names.append(dbus.service.BusName("org.freedesktop.systemd1", bus, do_not_queue=True))
Key(bus, "/bot/bankr/LLM1")
print("ready", flush=True)
GLib.MainLoop().run()
