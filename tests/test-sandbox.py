#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sandboxed callers: a Flatpak app reaches the session bus through its
D-Bus proxy, which polkit takes for an ordinary process of the active
session, so the service itself refuses sandboxed callers the calls that hand
out the key or change the host (Key.Set/Clear/Import/Reveal, Setup.Install,
Setup.Environment, inline Setup.Preview). The sandbox here is the one Flatpak
builds: bubblewrap with an empty root and a /.flatpak-info file in it."""
import json
import os
import shutil
import subprocess
import unittest

import harness

KEY = "bk_test_llm_0123456789abcdef"
APP_ID = "org.example.Curious"

CLIENT = r'''
import json, sys
import dbus
bus = dbus.bus.BusConnection(sys.argv[1])
obj = bus.get_object("bot.bankr.LLM1", "/bot/bankr/LLM1", introspect=False)
def call(iface, method, *args):
    try:
        getattr(dbus.Interface(obj, "bot.bankr.LLM1." + iface), method)(*args, timeout=20)
        return "ok"
    except dbus.exceptions.DBusException as e:
        return [e.get_dbus_name(), e.get_dbus_message()]
out = {
    "Set": call("Key", "Set", "bk_sandboxed_9999999999999", "llm"),
    "Clear": call("Key", "Clear", "llm"),
    "Import": call("Key", "Import", False),
    "Reveal": call("Key", "Reveal"),
    "Install": call("Setup", "Install", "opencode", dbus.Dictionary({}, signature="sv")),
    "Environment": call("Setup", "Environment", "claude"),
    "PreviewInline": call("Setup", "Preview", "opencode", dbus.Dictionary({"key": "inline"}, signature="sv")),
    "PreviewEnv": call("Setup", "Preview", "opencode", dbus.Dictionary({"key": "env"}, signature="sv")),
}
props = dbus.Interface(obj, "org.freedesktop.DBus.Properties")
out["Present"] = bool(props.Get("bot.bankr.LLM1.Key", "Present"))
out["Models"] = len(props.Get("bot.bankr.LLM1.Models", "Models"))
print(json.dumps(out))
'''


@unittest.skipUnless(shutil.which("bwrap"), "bubblewrap (bwrap) is not installed")
class SandboxedCaller(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.env.write_config({"llmKey": KEY})
        self.env.start_service()

    def run_sandboxed(self, info_text):
        d = self.env.dir
        script = os.path.join(d, "sandboxed-client.py")
        info = os.path.join(d, "flatpak-info")
        with open(script, "w") as f:
            f.write(CLIENT)
        with open(info, "w") as f:
            f.write(info_text)
        # An empty root (bwrap's tmpfs) with the system read-only, the test's
        # folder (the bus socket) and /.flatpak-info, as Flatpak lays it out.
        argv = ["bwrap", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--proc", "/proc",
                "--dev", "/dev", "--bind", d, d, "--ro-bind", info, "/.flatpak-info"]
        for link in ("bin", "sbin", "lib", "lib32", "lib64"):
            target = os.path.join("/", link)
            if os.path.islink(target):
                argv += ["--symlink", os.readlink(target), target]
        argv += ["/usr/bin/python3", script, self.env.environ["DBUS_SESSION_BUS_ADDRESS"]]
        r = self.env.run(argv, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def assertRefused(self, result, app):
        self.assertIsInstance(result, list, result)
        name, message = result
        self.assertEqual(name, "bot.bankr.LLM1.Error.NotAuthorized", message)
        self.assertIn("sandboxed application (Flatpak app %s)" % app, message)
        self.assertNotIn(KEY, message)

    def test_flatpak_app_cannot_read_or_change_the_key_or_host_files(self):
        before = self.env.read_config()
        out = self.run_sandboxed("[Application]\nname=%s\nruntime=runtime/org.gnome.Platform/x86_64/47\n\n"
                                 "[Instance]\ninstance-id=1234\n" % APP_ID)
        for method in ("Set", "Clear", "Import", "Reveal", "Install", "Environment", "PreviewInline"):
            self.assertRefused(out[method], APP_ID)
        # What hands out no key and changes nothing stays open to it.
        self.assertEqual(out["PreviewEnv"], "ok")
        self.assertTrue(out["Present"])
        self.assertGreater(out["Models"], 0)
        # Nothing changed on the host.
        self.assertEqual(self.env.read_config(), before)
        self.assertFalse(os.path.exists(os.path.join(self.env.home, ".config", "opencode")))
        self.assertEqual(self.env.get("Key", "Source"), "config")
        self.assertIn("Refused a call from the sandboxed app %s" % APP_ID, self.env.log())
        self.assertNotIn(KEY, self.env.log())

    def test_a_sandbox_without_a_readable_name_is_still_a_sandbox(self):
        out = self.run_sandboxed("[Application]\nname=../../etc/passwd\n")
        self.assertRefused(out["Set"], "(unnamed)")
        out = self.run_sandboxed("")
        self.assertRefused(out["Clear"], "(unnamed)")

    def test_host_caller_still_may(self):
        # The same calls from outside a sandbox go on to their usual checks.
        r = self.env.cli("key", "set", input="bk_host_caller_55555555555\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.env.secret_lookup("llm"), "bk_host_caller_55555555555")


if __name__ == "__main__":
    unittest.main(verbosity=2)
