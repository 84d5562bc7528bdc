#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A stand-in for an older bankr-llmd: owns bot.bankr.LLM1 and serves
/bot/bankr/LLM1 with the Key properties only. Every other method is
unknown to it (dbus-python's UnknownMethod and wording); Properties.Get,
GetAll and Set of anything else answer UnknownProperty and
UnknownInterface in sd-bus's wording, as a bankr-llmd without that member
would. --version V sets Key.Version (none without it: the oldest ones had
none). Prints "ready" once it owns the name."""
import argparse

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = "bot.bankr.LLM1"
PATH = "/bot/bankr/LLM1"
KEY = "bot.bankr.LLM1.Key"
PROPS = "org.freedesktop.DBus.Properties"
UNKNOWN_PROPERTY = "org.freedesktop.DBus.Error.UnknownProperty"
UNKNOWN_INTERFACE = "org.freedesktop.DBus.Error.UnknownInterface"


class OldService(dbus.service.Object):
    def __init__(self, bus, version):
        super().__init__(bus, PATH)
        self.key = {
            "Present": dbus.Boolean(False),
            "Source": dbus.String("none"),
            "Kind": dbus.String(""),
            "Masked": dbus.String(""),
            "GatewayUrl": dbus.String("http://127.0.0.1:9"),
        }
        if version:
            self.key["Version"] = dbus.String(version)

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, iface, prop):
        if iface == KEY and prop in self.key:
            return self.key[prop]
        raise dbus.exceptions.DBusException("Unknown interface %s or property %s." % (iface, prop),
                                            name=UNKNOWN_PROPERTY)

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        if iface == KEY:
            return dbus.Dictionary(self.key, signature="sv")
        raise dbus.exceptions.DBusException("Unknown interface '%s'." % iface, name=UNKNOWN_INTERFACE)

    @dbus.service.method(PROPS, in_signature="ssv", out_signature="")
    def Set(self, iface, prop, value):
        raise dbus.exceptions.DBusException("Unknown interface %s or property %s." % (iface, prop),
                                            name=UNKNOWN_PROPERTY)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="")
    args = parser.parse_args()
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(NAME, bus, do_not_queue=True)  # noqa: F841 (kept while running)
    OldService(bus, args.version)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
