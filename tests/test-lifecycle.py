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

from harness import Env, TestCase, HERE, DAEMON, SLOW, wait_until, BUS_NAME

KEY = "bk_test_llm_0123456789abcdef"
PYTHON = "/usr/bin/python3"


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return not f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return False


class LifecycleTest(TestCase):
    env_args = {}


class KeyringRestart(LifecycleTest):
    def test_key_comes_back_when_the_keyring_restarts(self):
        env = self.env
        env.call("Key", "Set", KEY, "llm")
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


def limit_daemon(env, soft, hard):
    """Runs the daemon under prlimit --nofile=soft:hard from now on."""
    wrapper = os.path.join(env.dir, "run-bankr-llmd")
    with open(wrapper) as f:
        text = f.read()
    text = text.replace("\nexec ", "\nexec prlimit --nofile=%d:%d -- " % (soft, hard), 1)
    with open(wrapper, "w") as f:
        f.write(text)


def nofile_limits(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open files limit for %d" % pid)


class FileDescriptors(LifecycleTest):

    def setUp(self):
        from fakegw import FakeGateway
        self.env_args = {"service_env": {"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY}}
        super().setUp()

    def test_soft_limit_is_raised_to_the_hard_one(self):
        limit_daemon(self.env, 100, 4096)
        pid = self.env.start_service()
        self.assertEqual(nofile_limits(pid), (4096, 4096))

    def test_streams_leave_descriptors_for_the_rest(self):
        # A hard limit of 200: the documented 2 x 128 streams do not fit, and
        # must be refused (LimitExceeded) before they starve the buses, the
        # keyring and the gateway requests of descriptors.
        from chatclient import ChatClient
        from fakegw import Fault
        import dbus
        env, gw = self.env, self.env.gateway
        limit_daemon(env, 200, 200)
        env.start_service()
        gw.push_fault("chat", Fault(hang=True, times=None))
        clients = [ChatClient(env) for _ in range(2)]
        admitted, refused = 0, []
        try:
            for c in clients:
                for _ in range(128):
                    try:
                        c.start("gpt-5-mini", [("user", "hi")])
                        admitted += 1
                    except dbus.exceptions.DBusException as e:
                        refused.append((e.get_dbus_name(), e.get_dbus_message()))
            self.assertTrue(refused)
            self.assertEqual({n for n, _ in refused}, {"bot.bankr.LLM1.Error.LimitExceeded"}, refused[:3])
            self.assertIn("%d requests in flight" % admitted, refused[0][1])
            time.sleep(0.5 * SLOW)
            # Every admitted stream is still running: none failed for want of a socket.
            self.assertEqual(clients[0].get("/bot/bankr/LLM1", "ActiveRequests", iface="bot.bankr.LLM1.Chat"),
                             admitted)
            env.call("Models", "Refresh")
            env.call("Key", "Set", KEY, "api")
            self.assertEqual(env.secret_lookup("api"), KEY)
        finally:
            for c in clients:
                c.close()
            gw.stop()
        self.assertNotIn("Connection refused", env.log())
        self.assertNotIn("out of file descriptors", env.log())


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
        self.addCleanup(lambda: (p.terminate(), p.wait(5), p.stdout.close()))
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


class NoDefaultCollection(LifecycleTest):
    """A fresh user with no login keyring: gnome-keyring started on an empty
    keyrings directory without --unlock has no default collection."""
    env_args = {"keyring": False}

    def setUp(self):
        super().setUp()
        p = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--components=secrets"],
                             env=self.env.environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=self.env._logfile("keyring.log"))
        self.env.procs.append(p)
        self.env.keyring_proc = p
        subprocess.run(["gdbus", "wait", "--session", "--timeout", "10", "org.freedesktop.secrets"],
                       env=self.env.environ, check=True, timeout=15)

    def test_set_says_what_is_missing(self):
        ok, (name, msg) = self.env.try_call("Key", "Set", KEY, "llm")
        self.assertFalse(ok)
        self.assertEqual(name, "bot.bankr.LLM1.Error.KeyringUnavailable", msg)
        self.assertIn("no default collection", msg)
        self.assertIn("Seahorse", msg)
        self.assertNotIn("Object does not exist", msg)
        self.assertNotIn(KEY, msg)
        r = self.env.cli("key", "set", input=KEY + "\n")
        self.assertEqual(r.returncode, 11, r.stderr)
        self.assertIn("no default collection", r.stderr)
        self.assertFalse(self.env.get("Key", "Present"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
