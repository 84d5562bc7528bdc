#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Lifecycles around bankr-llmd (issue 11, item 3): the keyring restarting,
the session bus going away, file descriptors running out, someone else
asking for the name, a keyring without a default collection.  Private bus,
real gnome-keyring, fake gateway, the built daemon and CLI."""
import os
import signal
import subprocess
import sys
import time
import unittest

from harness import Env, HERE, DAEMON, wait_until, BUS_NAME

KEY = "bk_test_llm_0123456789abcdef"
PYTHON = "/usr/bin/python3"


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return not f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return False


class LifecycleTest(unittest.TestCase):
    env_args = {}

    def setUp(self):
        self.env = Env(**self.env_args)
        self.env.start()

    def tearDown(self):
        res = getattr(self._outcome, "result", None)
        self.env.stop(check=not (res and (res.failures or res.errors)))


class KeyringRestart(LifecycleTest):
    def test_key_comes_back_when_the_keyring_restarts(self):
        env = self.env
        env.call("Key", "Set", "ss", KEY, "llm")
        self.assertTrue(env.get("Key", "Present"))
        pid = env.service_pid()
        env.kill_keyring()
        wait_until(lambda: env.get("Key", "Present") is False, what="the key to go with the keyring")
        env._start_keyring()  # the same login keyring, unlocked again
        self.assertEqual(env.secret_lookup("llm"), KEY)
        wait_until(lambda: env.get("Key", "Present"), timeout=10, what="the key to come back with the keyring")
        self.assertEqual(env.get("Key", "Source"), "keyring")
        self.assertEqual(env.service_pid(), pid)
        self.assertIn("Secret Service", env.log())


class BusGone(LifecycleTest):
    env_args = {"service_env": {"BANKR_LLM_KEY": KEY}}

    def test_exits_when_the_session_bus_dies(self):
        env = self.env
        pid = env.start_service()
        self.assertTrue(alive(pid))
        os.kill(env.bus_pid, signal.SIGTERM)
        env.bus_pid = None
        wait_until(lambda: not alive(pid), timeout=10, what="bankr-llmd to exit with the bus")
        log = env.log()
        self.assertIn("The session bus went away", log)
        self.assertIn("Exiting.", log)
        self.assertNotIn(KEY, log)


class NameTakeover(LifecycleTest):
    def request_name(self, flags):
        r = self.env.busctl("--json=short", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "RequestName", "su", BUS_NAME, str(flags))
        import json
        return json.loads(r.stdout)["data"][0]

    def test_replace_existing_does_not_take_the_name(self):
        pid = self.env.start_service()
        # REPLACE_EXISTING | DO_NOT_QUEUE: 3 is "exists", 1 would be "primary owner".
        self.assertEqual(self.request_name(0x2 | 0x4), 3)
        time.sleep(0.3)
        self.assertTrue(alive(pid))
        self.assertEqual(self.env.service_pid(), pid)
        self.assertTrue(self.env.get("Key", "Version"))

    def test_replace_option_is_gone(self):
        r = self.env.run([DAEMON, "--help"], check=True)
        self.assertNotIn("--replace", r.stdout)

    def start_impostor(self, systemd):
        record = os.path.join(self.env.dir, "impostor.record")
        argv = [PYTHON, os.path.join(HERE, "impostor.py"), record] + (["--systemd"] if systemd else [])
        p = subprocess.Popen(argv, env=self.env.environ, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (p.terminate(), p.wait(5)))
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p, record

    def test_cli_refuses_to_send_a_key_to_an_impostor_under_systemd(self):
        # A desktop with a systemd user manager on the bus: the owner of the
        # name must be bankr-llmd.service; a stand-in process is not.
        p, record = self.start_impostor(systemd=True)
        for argv in (["key", "set"], ["config", "set", "llmKey", KEY], ["login", "--llm-key", KEY]):
            r = self.env.cli(*argv, input=KEY + "\n")
            self.assertNotEqual(r.returncode, 0, (argv, r.stdout, r.stderr))
            self.assertIn("not the installed bankr-llmd", r.stderr, argv)
            self.assertIn("PID %d" % p.pid, r.stderr)
            self.assertNotIn(KEY, r.stderr)
        with open(record) as f:
            self.assertEqual(f.read(), "")

    def test_cli_without_systemd_still_sends_to_the_service(self):
        # No systemd user manager on this bus (the harness, a desktop
        # without systemd): the check cannot ask systemd and lets it through.
        r = self.env.cli("key", "set", input=KEY + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.env.secret_lookup("llm"), KEY)


if __name__ == "__main__":
    unittest.main(verbosity=2)
