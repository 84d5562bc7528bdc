#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The running daemon implements exactly the documented contract:
dbus/bot.bankr.LLM1.xml against live introspection (members, signatures,
directions, property access)."""
import os
import unittest
import xml.etree.ElementTree as ET

import dbus

from harness import Env, SRC, BUS_NAME, OBJ
from fakegw import FakeGateway

XML = os.path.join(SRC, "dbus", "bot.bankr.LLM1.xml")


def members(iface):
    out = {}
    for m in iface.findall("method"):
        out["method " + m.get("name")] = tuple((a.get("direction", "in"), a.get("type")) for a in m.findall("arg"))
    for s in iface.findall("signal"):
        out["signal " + s.get("name")] = tuple(a.get("type") for a in s.findall("arg"))
    for p in iface.findall("property"):
        out["property " + p.get("name")] = (p.get("type"), p.get("access"))
    return out


def interfaces(root):
    return {i.get("name"): members(i) for i in root.findall("interface") if i.get("name").startswith("bot.bankr.")}


class Introspection(unittest.TestCase):
    def test_contract_matches_the_daemon(self):
        doc = interfaces(ET.parse(XML).getroot())
        with Env(service_env={"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY}) as env:
            live_xml = env.run(["busctl", "--user", "--xml-interface", "introspect", BUS_NAME, OBJ], check=True).stdout
            live = interfaces(ET.fromstring(live_xml))
            # A request object, for the Request interface; its owner (us) must
            # stay on the bus, or it is cancelled and goes away.
            bus = dbus.bus.BusConnection(env.bus_address)
            try:
                chat = dbus.Interface(bus.get_object(BUS_NAME, OBJ), "bot.bankr.LLM1.Chat")
                env.gateway.stream_options = {"drip": 0.05}
                path = chat.Start("gpt-5-mini", [("user", "hi")], dbus.Dictionary({}, signature="sv"))
                req_xml = bus.get_object(BUS_NAME, path).Introspect(
                    dbus_interface="org.freedesktop.DBus.Introspectable")
            finally:
                bus.close()
            live.update(interfaces(ET.fromstring(str(req_xml))))
        self.assertEqual(sorted(doc), sorted(live))
        for name in doc:
            with self.subTest(interface=name):
                self.assertEqual(doc[name], live[name])


if __name__ == "__main__":
    unittest.main(verbosity=2)
