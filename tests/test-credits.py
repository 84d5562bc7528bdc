#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bot.bankr.LLM1.Credits, Key.Validate, "bankr-llm credits" and "bankr-llm key
validate" against a private bus, the real keyring, the fake gateway and the
built daemon: states and transitions, Low once per crossing, Exhausted on 402,
no background calls without a usable key, the low threshold, and faults."""
import json
import math
import os
import subprocess
import time
import unittest

import dbus

from busmonitor import BusMonitor
from fakegw import FakeGateway, Fault
from harness import Env, TestCase, wait_until, SLOW

KEY = FakeGateway.DEFAULT_KEY
ERR = "bot.bankr.LLM1.Error."
FAST = {"BANKR_LLMD_FETCH_TIMEOUT_MS": str(int(1500 * SLOW))}


class CreditsTest(TestCase):
    service_env = {"BANKR_LLM_KEY": KEY, **FAST}

    def setUp(self):
        self.env_args = {"service_env": self.service_env}
        super().setUp()
        self.gw = self.env.gateway

    def state(self):
        return self.env.get("Credits", "State")

    def balance(self):
        return self.env.get("Credits", "Balance")

    def start_ok(self):
        self.env.start_service()
        wait_until(lambda: self.state() == "ok", what="the first balance")

    def refresh(self):
        return self.env.try_call("Credits", "Refresh")

    def assertAlive(self):
        self.env.call("org.freedesktop.DBus.Peer", "Ping")


class States(CreditsTest):
    def test_first_balance_at_start(self):
        self.start_ok()
        self.assertEqual(self.balance(), 12.5)
        self.assertLess(abs(self.env.get("Credits", "UpdatedAt") / 1e6 - time.time()), 60)
        self.assertEqual(self.env.get("Credits", "LowThreshold"), 1.0)
        req = self.gw.requests_for("credits")[0]
        self.assertEqual(req.headers.get("x-api-key"), KEY)
        self.assertNotIn(KEY, self.env.log())

    def test_low_once_per_crossing(self):
        self.start_ok()
        with BusMonitor(self.env) as mon:
            self.gw.balance = 0.5
            self.assertEqual(self.env.call("Credits", "Refresh"), [0.5])
            self.assertEqual(self.state(), "low")
            mon.wait_for("Credits.Low (0.5, 1.0)")
            self.gw.balance = 0.4
            self.env.call("Credits", "Refresh")
            self.env.call("Credits", "Refresh")
            self.assertEqual(self.balance(), 0.4)
            mon.settle()
            self.assertEqual(mon.count("Credits.Low"), 1, mon.text())
            # Up above the threshold and down again: a new crossing.
            self.gw.balance = 5
            self.env.call("Credits", "Refresh")
            self.assertEqual(self.state(), "ok")
            self.gw.balance = 0.25
            self.env.call("Credits", "Refresh")
            mon.wait_for("Credits.Low (0.25, 1.0)")
            mon.settle()
            self.assertEqual(mon.count("Credits.Low"), 2)
            # PropertiesChanged comes before the signal, for clients that read State.
            lines = mon.lines()
            i = max(n for n, l in enumerate(lines) if "Credits.Low (0.25" in l)
            self.assertTrue(any("'State': <'low'>" in l for l in lines[:i]))

    def test_exhausted_on_402_and_recovery(self):
        self.start_ok()
        with BusMonitor(self.env) as mon:
            self.gw.balance = None
            ok, (name, msg) = self.refresh()
            self.assertEqual(name, ERR + "PaymentRequired")
            self.assertIn("bankr-llm credits add", msg)
            self.assertEqual(self.state(), "exhausted")
            self.assertEqual(self.balance(), 0.0)
            mon.wait_for("Credits.Exhausted ()")
            self.refresh()
            mon.settle()
            self.assertEqual(mon.count("Credits.Exhausted"), 1)
            # Exhausted to low after a small top-up is not a crossing below.
            self.gw.balance = 0.5
            self.env.call("Credits", "Refresh")
            self.assertEqual(self.state(), "low")
            mon.settle()
            self.assertEqual(mon.count("Credits.Low"), 0)
            self.gw.balance = 20
            self.env.call("Credits", "Refresh")
            self.assertEqual(self.state(), "ok")

    def test_unauthorized_and_new_key(self):
        self.start_ok()
        self.gw.llm_keys = set()
        ok, (name, msg) = self.refresh()
        self.assertEqual(name, ERR + "Unauthorized")
        self.assertIn("(401)", msg)
        self.assertEqual(self.state(), "unauthorized")
        new = "bk_test_new_key_0123456789"
        self.gw.llm_keys = {new}
        # The environment key wins over the keyring: restart with the new one.
        self.env.restart_service({"BANKR_LLM_KEY": new})
        wait_until(lambda: self.state() == "ok", what="the new key's balance")
        self.assertNotIn(new, self.env.log())

    def test_balance_changing_between_calls(self):
        self.env.restart_service({"BANKR_LLMD_CREDITS_INTERVAL_MS": str(int(300 * SLOW))})
        wait_until(lambda: self.state() == "ok", what="the first balance")
        for b in (11.25, 7.5, 0.75, 3.0):
            self.gw.balance = b
            wait_until(lambda: self.balance() == b, timeout=5, what="balance %s from the slow timer" % b)
        self.assertEqual(self.state(), "ok")

    def test_network_failure_keeps_the_last_value(self):
        self.start_ok()
        updated = self.env.get("Credits", "UpdatedAt")
        self.gw.stop()
        ok, (name, msg) = self.refresh()
        self.assertEqual(name, ERR + "GatewayUnavailable")
        self.assertIn("Cannot reach the gateway at http://127.0.0.1:", msg)
        self.assertEqual((self.state(), self.balance(), self.env.get("Credits", "UpdatedAt")), ("ok", 12.5, updated))


FAULTS = [
    ("500", lambda: Fault.http(500, "database on fire"), "GatewayUnavailable", ["HTTP 500", "database on fire"]),
    ("html-502", lambda: Fault.html(502), "GatewayUnavailable", ["HTTP 502"]),
    ("429", lambda: Fault.http(429), "RateLimited", ["429"]),
    ("404", lambda: Fault.http(404), "GatewayError", ["HTTP 404"]),
    ("delay", lambda: Fault(delay=3 * SLOW), "Timeout", ["did not send the balance in time"]),
    ("slow-drip", lambda: Fault(drip=1.0 * SLOW, chunk_sizes=[4]), "Timeout", ["in time"]),
    ("drop-mid-body", lambda: Fault(drop_after=5), "GatewayUnavailable", ["closed the connection"]),
    ("close", lambda: Fault(close=True), "GatewayUnavailable", ["Cannot reach"]),
    ("malformed", lambda: Fault.malformed(), "GatewayError", ["not valid JSON"]),
    ("wrong-types-0", lambda: Fault.wrong_types(0), "GatewayError", ['"balanceUsd" is not a number']),
    ("wrong-types-1", lambda: Fault.wrong_types(1), "GatewayError", ['no "balanceUsd"']),
    ("html-200", lambda: Fault.html(200), "GatewayError", ["not valid JSON"]),
    ("huge", lambda: Fault.huge(16 * 1024 * 1024), "GatewayError", ["too large"]),
]


class Faults(CreditsTest):
    def test_every_fault_keeps_the_last_value(self):
        self.start_ok()
        updated = self.env.get("Credits", "UpdatedAt")
        for label, make, name, words in FAULTS:
            with self.subTest(fault=label):
                fault = make()
                fault.times = None  # see test-models-iface.py: curl retries a closed reused connection
                self.gw.push_fault("credits", fault)
                ok, err = self.refresh()
                self.assertFalse(ok)
                self.assertEqual(err[0], ERR + name, err)
                for w in words:
                    self.assertIn(w, err[1])
                self.assertAlive()
                self.assertEqual((self.state(), self.balance()), ("ok", 12.5))
                self.assertEqual(self.env.get("Credits", "UpdatedAt"), updated)
                self.gw.reset()
        self.assertEqual(self.env.call("Credits", "Refresh"), [12.5])


class Background(CreditsTest):
    service_env = {"BANKR_LLMD_CREDITS_INTERVAL_MS": "200", "BANKR_LLMD_MODELS_TTL_MS": "200", **FAST}

    def test_no_background_calls_without_a_key(self):
        self.env.start_service()
        self.assertEqual(self.state(), "unknown")
        time.sleep(1.5 * SLOW)
        self.assertEqual(self.gw.requests, [], "requests without a key")
        ok, (name, msg) = self.refresh()
        self.assertEqual(name, ERR + "NoKey")
        self.assertEqual(self.gw.requests, [])

    def test_no_background_calls_with_a_rejected_key(self):
        self.env.restart_service({"BANKR_LLM_KEY": "bk_rejected_key_00000000"})
        wait_until(lambda: self.state() == "unauthorized", what="the rejection")
        time.sleep(1.5 * SLOW)
        # One question each (credits, models), then silence.
        self.assertEqual(len(self.gw.requests_for("credits")), 1)
        self.assertEqual(len(self.gw.requests_for("models")), 1)
        # A key in the keyring does not win over the environment; a new
        # environment key does, and the calls resume.
        self.env.restart_service({"BANKR_LLM_KEY": KEY})
        wait_until(lambda: len(self.gw.requests_for("credits")) >= 4, timeout=10, what="periodic refreshes")
        self.assertEqual(self.state(), "ok")

    def test_key_set_starts_and_clear_stops(self):
        self.env.start_service()
        self.env.call("Key", "Set", KEY, "llm")
        wait_until(lambda: self.state() == "ok", what="a balance after Key.Set")
        wait_until(lambda: len(self.gw.requests_for("credits")) >= 3, timeout=10, what="periodic refreshes")
        self.env.call("Key", "Clear", "llm")
        wait_until(lambda: self.state() == "unknown", what="unknown after Key.Clear")
        self.assertEqual(self.env.get("Credits", "UpdatedAt"), 0)
        time.sleep(0.3 * SLOW)
        n = len(self.gw.requests)
        time.sleep(1.2 * SLOW)
        self.assertEqual(len(self.gw.requests), n)

    def test_periodic_refresh_has_jitter(self):
        self.env.restart_service({"BANKR_LLM_KEY": KEY, "BANKR_LLMD_CREDITS_INTERVAL_MS": str(int(250 * SLOW)),
                                  "BANKR_LLMD_MODELS_TTL_MS": "3600000"})
        wait_until(lambda: len(self.gw.requests_for("credits")) >= 8, timeout=15, what="eight refreshes")
        t = [r.time for r in self.gw.requests_for("credits")][1:8]
        gaps = [b - a for a, b in zip(t, t[1:])]
        for g in gaps:
            self.assertGreater(g, 0.8 * 0.25 * SLOW - 0.05)
            self.assertLess(g, 1.2 * 0.25 * SLOW + 0.25)
        self.assertGreater(max(gaps) - min(gaps), 0.002, gaps)


class Threshold(CreditsTest):
    def test_threshold_validated_persisted_and_crossing(self):
        self.start_ok()
        for bad, words in (("-1.0", "negative"), ("nan", "NaN"), ("2000000.0", "at most"), ("inf", "at most")):
            ok, err = self.env.try_call("org.freedesktop.DBus.Properties", "Set", "bot.bankr.LLM1.Credits",
                                        "LowThreshold", dbus.Double(float(bad), variant_level=1), signature="ssv")
            self.assertFalse(ok, bad)
            self.assertEqual(err[0], "org.freedesktop.DBus.Error.InvalidArgs", err)
            self.assertIn(words, err[1])
        self.assertEqual(self.env.get("Credits", "LowThreshold"), 1.0)

        with BusMonitor(self.env) as mon:
            # A threshold above the balance is a crossing like any other.
            self.env.set("Credits", "LowThreshold", "d", 20.0)
            self.assertEqual(self.state(), "low")
            mon.wait_for("Credits.Low (12.5, 20.0)")
            self.env.set("Credits", "LowThreshold", "d", 25.0)
            self.env.set("Credits", "LowThreshold", "d", 0.0)
            self.assertEqual(self.state(), "ok")
            self.env.set("Credits", "LowThreshold", "d", 13.0)
            mon.wait_for("Credits.Low (12.5, 13.0)")
            mon.settle()
            self.assertEqual(mon.count("Credits.Low"), 2)
            self.assertEqual(len([l for l in mon.changed("Credits") if "LowThreshold" in l]), 4)

        path = os.path.join(self.env.home, ".config", "bankr-llm", "settings.json")
        with open(path) as f:
            self.assertEqual(json.load(f)["low_threshold_usd"], 13.0)
        # Other fields of settings.json are kept.
        with open(path, "w") as f:
            json.dump({"low_threshold_usd": 13.0, "someone_else": [1, 2]}, f)
        self.env.set("Credits", "LowThreshold", "d", 2.5)
        with open(path) as f:
            self.assertEqual(json.load(f), {"low_threshold_usd": 2.5, "someone_else": [1, 2]})
        self.env.restart_service()
        self.assertEqual(self.env.get("Credits", "LowThreshold"), 2.5)

    def test_unreadable_settings_file_is_never_rewritten(self):
        # settings.json is ours, but someone may have edited it: setting the
        # threshold must not replace what cannot be read back with a file
        # holding only the threshold.
        path = os.path.join(self.env.home, ".config", "bankr-llm", "settings.json")
        os.makedirs(os.path.dirname(path))
        self.start_ok()
        for text in ('{"low_threshold_usd": 3, "mine": [1, 2',  # truncated
                     '["low_threshold_usd", 3]',                 # not an object
                     '{"low_threshold_usd": 3} {"mine": 1}',     # trailing text
                     "{'low_threshold_usd': 3, 'mine': 1}"):     # not JSON
            with open(path, "w") as f:
                f.write(text)
            ok, err = self.env.try_call("org.freedesktop.DBus.Properties", "Set", "bot.bankr.LLM1.Credits",
                                        "LowThreshold", dbus.Double(7.5, variant_level=1), signature="ssv")
            self.assertFalse(ok, text)
            self.assertEqual(err[0], ERR + "InvalidConfig", (text, err))
            self.assertIn(path, err[1])
            self.assertIn("left untouched", err[1])
            with open(path) as f:
                self.assertEqual(f.read(), text)
            self.assertNotEqual(self.env.get("Credits", "LowThreshold"), 7.5)
        # An empty file holds nothing to lose.
        open(path, "w").close()
        self.env.set("Credits", "LowThreshold", "d", 7.5)
        with open(path) as f:
            self.assertEqual(json.load(f), {"low_threshold_usd": 7.5})
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_broken_settings_file(self):
        path = os.path.join(self.env.home, ".config", "bankr-llm", "settings.json")
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            f.write('{"low_threshold_usd": -5}')
        self.env.start_service()
        self.assertEqual(self.env.get("Credits", "LowThreshold"), 1.0)
        self.assertIn("Ignoring low_threshold_usd", self.env.log())


class SameKeyNewSource(CreditsTest):
    service_env = FAST

    def test_same_key_from_another_source_is_not_a_new_key(self):
        # Moving the key from the config file to the keyring changes Key.Source,
        # not the key: the balance, its state and Low stay as they are, and
        # nothing is fetched again.
        self.gw.balance = 0.5
        self.env.write_config({"llmKey": KEY})
        self.env.start_service()
        wait_until(lambda: self.state() == "low", what="the first balance")
        wait_until(lambda: self.env.get("Models", "Live"), what="the first model list")
        n_credits, n_models = len(self.gw.requests_for("credits")), len(self.gw.requests_for("models"))
        with BusMonitor(self.env) as mon:
            self.assertEqual(self.env.call("Key", "Import", True), ["keyring"])
            self.assertEqual(self.env.get("Key", "Source"), "keyring")
            mon.settle(0.5 * SLOW)
            self.assertEqual(mon.count("Credits.Low"), 0, mon.text())
            self.assertEqual(mon.changed("Credits"), [], mon.text())
            self.assertEqual(mon.changed("Models"), [], mon.text())
        self.assertEqual(self.state(), "low")
        self.assertEqual(len(self.gw.requests_for("credits")), n_credits)
        self.assertEqual(len(self.gw.requests_for("models")), n_models)


class Validate(CreditsTest):
    def test_good_key(self):
        self.start_ok()
        self.assertEqual(self.env.call("Key", "Validate"), [True, "The key works: $12.50 of credits left."])
        r = self.env.cli("key", "validate")
        self.assertEqual((r.returncode, r.stdout), (0, "The key works: $12.50 of credits left.\n"))

    def test_bad_key(self):
        self.env.start_service()
        self.gw.llm_keys = set()
        ok, msg = self.env.call("Key", "Validate")
        self.assertFalse(ok)
        self.assertTrue(msg.startswith("The gateway rejected the key (401): "), msg)
        self.assertEqual(self.state(), "unauthorized")
        r = self.env.cli("key", "validate")
        self.assertEqual(r.returncode, 5)
        self.assertIn("rejected the key", r.stderr)

    def test_exhausted(self):
        self.env.start_service()
        self.gw.balance = None
        ok, msg = self.env.call("Key", "Validate")
        self.assertTrue(ok)
        self.assertIn("exhausted", msg)
        self.assertEqual(self.env.cli("key", "validate").returncode, 6)

    def test_gateway_down(self):
        self.env.start_service()
        self.gw.stop()
        ok, msg = self.env.call("Key", "Validate")
        self.assertFalse(ok)
        self.assertTrue(msg.startswith("Cannot reach the gateway at http://127.0.0.1:"), msg)
        r = self.env.cli("key", "validate")
        self.assertEqual(r.returncode, 8)
        self.assertIn("Cannot reach the gateway", r.stderr)

    def test_concurrent_validate_and_refresh_share_one_call(self):
        self.start_ok()
        self.gw.clear_requests()
        self.gw.push_fault("credits", Fault(delay=0.5))
        base = ["busctl", "--user", "call", "bot.bankr.LLM1", "/bot/bankr/LLM1"]
        procs = [subprocess.Popen(base + (["bot.bankr.LLM1.Key", "Validate"] if i % 2 else
                                          ["bot.bankr.LLM1.Credits", "Refresh"]),
                                  env=self.env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(6)]
        outs = [p.communicate(timeout=30)[0].strip() for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 6)
        self.assertIn('bs true "The key works: $12.50 of credits left."', outs)
        self.assertIn("d 12.5", outs)
        self.assertEqual(len(self.gw.requests_for("credits")), 1)


class NoKey(CreditsTest):
    service_env = {}

    def test_validate_without_key(self):
        ok, msg = self.env.call("Key", "Validate")
        self.assertFalse(ok)
        self.assertTrue(msg.startswith("No key is set."), msg)
        r = self.env.cli("key", "validate")
        self.assertEqual(r.returncode, 4)
        r = self.env.cli("credits")
        self.assertEqual(r.returncode, 4)
        self.assertIn("no key is set", r.stdout)
        self.assertIn("bankr-llm key set", r.stdout)
        self.assertEqual(self.gw.requests, [])


class Cli(CreditsTest):
    def test_human_and_json(self):
        self.start_ok()
        r = self.env.cli("credits")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "Balance: $12.50\n  State: ok (warning below $1.00)\nUpdated: just now\n")
        r = self.env.cli("credits", "--json")
        self.assertEqual(r.returncode, 0)
        j = json.loads(r.stdout)
        self.assertEqual((j["balance_usd"], j["state"], j["low_threshold_usd"]), (12.5, "ok", 1.0))
        self.assertEqual(j["updated_at"], self.env.get("Credits", "UpdatedAt"))
        self.assertLess(j["age_s"], 60)

        self.gw.balance = 0.5
        r = self.env.cli("credits", "--refresh")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Balance: $0.50", r.stdout)
        self.assertIn("low, below $1.00", r.stdout)
        self.assertIn("bankr-llm credits add", r.stdout)

        self.gw.balance = None
        r = self.env.cli("credits", "--refresh")
        self.assertEqual(r.returncode, 6)
        self.assertIn("exhausted", r.stdout)
        self.assertIn("bankr-llm credits add", r.stdout)
        r = self.env.cli("credits", "--json")
        self.assertEqual(r.returncode, 6)
        self.assertEqual(json.loads(r.stdout)["state"], "exhausted")

        self.gw.llm_keys = set()
        r = self.env.cli("credits", "--refresh")
        self.assertEqual(r.returncode, 5)
        self.assertIn("rejected the key", r.stdout)
        self.assertIn("bankr-llm key set", r.stdout)

        self.gw.stop()
        r = self.env.cli("credits", "--refresh")
        self.assertEqual(r.returncode, 8)
        self.assertIn("Failed to refresh the balance: Cannot reach the gateway", r.stderr)

    def test_threshold_option(self):
        self.start_ok()
        r = self.env.cli("credits", "--threshold", "$20")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("low, below $20.00", r.stdout)
        self.assertEqual(self.env.get("Credits", "LowThreshold"), 20.0)
        for bad in ("-3", "abc", "1e9", "nan"):
            r = self.env.cli("credits", "--threshold", bad)
            self.assertEqual(r.returncode, 2, bad)
        r = self.env.cli("credits", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--threshold USD", r.stdout)
        r = self.env.cli("credits", "bogus")
        self.assertEqual(r.returncode, 2)
        r = self.env.cli("key", "validate", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Exit codes", r.stdout)


class AfterChat(CreditsTest):
    service_env = {"BANKR_LLM_KEY": KEY, "BANKR_LLMD_CREDITS_COALESCE_MS": "400", **FAST}

    def complete(self):
        return self.env.try_call("Chat", "Complete", "claude-haiku-4.5", [("user", "hi")], {}, signature="sa(ss)a{sv}")

    def test_burst_of_requests_gives_one_refresh(self):
        self.start_ok()
        ok, out = self.complete()
        self.assertTrue(ok, out)
        time.sleep(1 * SLOW)
        self.gw.clear_requests()
        procs = [subprocess.Popen(["gdbus", "call", "--session", "--dest", "bot.bankr.LLM1", "--object-path",
                                   "/bot/bankr/LLM1", "--method", "bot.bankr.LLM1.Chat.Complete",
                                   "claude-haiku-4.5", "[('user', 'hi')]", "{}"],
                                  env=self.env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(5)]
        for p in procs:
            p.communicate(timeout=30)
        wait_until(lambda: len(self.gw.requests_for("credits")) >= 1, what="the coalesced refresh")
        time.sleep(1 * SLOW)
        self.assertEqual(len(self.gw.requests_for("credits")), 1)
        first_chat_end = max(r.time for r in self.gw.requests_for("messages") + self.gw.requests_for("chat"))
        self.assertGreater(self.gw.requests_for("credits")[0].time, first_chat_end + 0.2)

    def test_402_from_chat_is_exhausted_at_once(self):
        self.start_ok()
        ok, out = self.complete()
        self.assertTrue(ok, out)
        with BusMonitor(self.env) as mon:
            self.gw.clear_requests()
            self.gw.push_fault("messages", Fault.http(402))
            ok, out = self.complete()
            self.assertFalse(ok)
            self.assertEqual(out[0], ERR + "PaymentRequired")
            wait_until(lambda: self.state() == "exhausted", what="exhausted from the chat's 402")
            mon.wait_for("Credits.Exhausted ()")
        self.assertEqual(self.balance(), 0.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
