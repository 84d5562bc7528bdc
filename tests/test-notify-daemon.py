#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llm-notify end to end: the built daemon, the fake gateway, the real
keyring and python-dbusmock's notification_daemon on a private bus.  The
gateway's balance and answers drive the daemon's Credits state; the agent
turns that into notifications.  (tests/test-notify.py covers the agent's
finer behaviour against a stand-in service.)"""
import os
import subprocess
import time
import unittest

import dbus

from harness import Env, NOTIFY, wait_until
from fakegw import FakeGateway

NOTIFY_NAME = "org.freedesktop.Notifications"
NOTIFY_PATH = "/org/freedesktop/Notifications"


class NotifyWithDaemon(unittest.TestCase):
    def setUp(self):
        self.env = Env(service_env={
            "BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY,
            # Refresh only when the test asks; the background timer stays out of the way.
            "BANKR_LLMD_CREDITS_INTERVAL_MS": "3600000",
        })
        self.env.start()
        self.addCleanup(self.env.stop)
        self.env.gateway.balance = 20.0
        self.env.set("Credits", "LowThreshold", "d", 5.0)
        self.env.call("Credits", "Refresh")
        self.assertEqual(self.env.get("Credits", "State"), "ok")

        self.mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon"],
                                     env=self.env.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self._stop, self.mock)
        self.bus = dbus.bus.BusConnection(self.env.bus_address)
        self.addCleanup(self.bus.close)
        wait_until(lambda: self.bus.name_has_owner(NOTIFY_NAME), what="the notification server")
        self.mock_obj = dbus.Interface(self.bus.get_object(NOTIFY_NAME, NOTIFY_PATH), "org.freedesktop.DBus.Mock")

        self.agent_log = open(os.path.join(self.env.dir, "agent.log"), "w")
        self.addCleanup(self.agent_log.close)
        env = dict(self.env.environ, PATH=os.path.join(self.env.dir, "tmp"))  # no terminal, no xdg-open
        self.agent = subprocess.Popen([NOTIFY, "--verbose"], env=env, stdout=self.agent_log, stderr=subprocess.STDOUT)
        self.addCleanup(self._stop, self.agent)
        wait_until(lambda: self.bus.name_has_owner("bot.bankr.LLM1.Notifier"), what="the agent")
        self.settle()

    @staticmethod
    def _stop(p):
        if p.poll() is None:
            p.terminate()
            p.wait(5)

    def settle(self):
        self.bus.call_blocking("bot.bankr.LLM1.Notifier", "/", "org.freedesktop.DBus.Peer", "Ping", "", [])
        time.sleep(0.3)

    def notifications(self):
        keys = ("app_name", "replaces_id", "icon", "summary", "body", "actions", "hints", "timeout")
        return [dict(zip(keys, args)) for _, args in self.mock_obj.GetMethodCalls("Notify")]

    def refresh(self, expect_error=False):
        r = self.env.call("Credits", "Refresh", check=not expect_error)
        self.settle()
        return r

    def test_low_once_then_exhausted_then_recovery(self):
        self.assertEqual(self.notifications(), [])

        self.env.gateway.balance = 4.2
        self.refresh()
        calls = self.notifications()
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["summary"], "Bankr LLM credits are low")
        self.assertEqual(calls[0]["body"], "$4.20 left (threshold $5.00).")

        # Further refreshes below the threshold: nothing new.
        self.env.gateway.balance = 3.9
        self.refresh()
        self.refresh()
        self.assertEqual(len(self.notifications()), 1)

        # 402: critical, replacing the low warning.
        self.env.gateway.balance = None
        self.refresh(expect_error=True)
        self.assertEqual(self.env.get("Credits", "State"), "exhausted")
        calls = self.notifications()
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual(calls[1]["summary"], "Bankr LLM credits used up")
        self.assertEqual(int(calls[1]["hints"]["urgency"]), 2)
        self.assertEqual(int(calls[1]["replaces_id"]), 1)

        # A top-up elsewhere: recovery replaces it again.
        self.env.gateway.balance = 25.0
        self.refresh()
        calls = self.notifications()
        self.assertEqual(len(calls), 3, calls)
        self.assertEqual(calls[2]["summary"], "Bankr LLM credits topped up")
        self.assertEqual(int(calls[2]["replaces_id"]), 1)

    def test_rejected_key_and_a_new_one(self):
        self.env.gateway.llm_keys = {"bk_some_other_key_000000"}
        self.refresh(expect_error=True)
        self.assertEqual(self.env.get("Credits", "State"), "unauthorized")
        calls = self.notifications()
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["summary"], "Bankr LLM key rejected")
        self.assertEqual(int(calls[0]["hints"]["urgency"]), 2)

        # The user stores a working key in the keyring... but BANKR_LLM_KEY
        # in the service's environment wins, so accept the old key again.
        self.env.gateway.llm_keys = {FakeGateway.DEFAULT_KEY}
        self.refresh()
        calls = self.notifications()
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual(calls[1]["summary"], "Bankr LLM key accepted")
        self.assertEqual(int(calls[1]["replaces_id"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
