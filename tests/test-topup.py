#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The polkit-guarded methods (Credits.TopUp, Credits.SetAutoTopUp, Key.Reveal),
Credits.GetAutoTopUp, and the CLI verbs credits add, credits auto and key reveal,
against the built daemon on a private session bus, python-dbusmock's polkitd on a
private system bus, and the fake agent API (tests/fakegw.py).

Run one case with: test-topup.py TopUpTest.test_top_up_allowed
"""
import fcntl
import json
import os
import subprocess
import termios
import time
import unittest

import dbus

from harness import TestCase, wait_until, BUS_NAME, OBJ
from fakegw import FakeGateway, Fault

TOP_UP = "bot.bankr.LLM1.top-up"
CONFIGURE = "bot.bankr.LLM1.configure-auto-top-up"
REVEAL = "bot.bankr.LLM1.reveal-key"
CREDITS = "bot.bankr.LLM1.Credits"
KEY_IFACE = "bot.bankr.LLM1.Key"
ERR = "bot.bankr.LLM1.Error."
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"


class TopUpTest(TestCase):
    polkit_timeout_ms = "1500"
    system_bus = True
    api_key = FakeGateway.DEFAULT_API_KEY

    def setUp(self):
        self.env_args = {"system_bus": self.system_bus, "keyring": False, "service_env": {
            "BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY,
            "BANKR_API_KEY": self.api_key,
            "BANKR_LLMD_POLKIT_TIMEOUT_MS": self.polkit_timeout_ms,
        }}
        super().setUp()
        if self.system_bus:
            # The service is started by the session bus, which predates the
            # system bus: hand it the address explicitly.
            self.env.write_service_file({"DBUS_SYSTEM_BUS_ADDRESS": self.env.environ["DBUS_SYSTEM_BUS_ADDRESS"]})
        self.gw = self.env.gateway
        self.polkit = None
        self.bg = []
        if self.system_bus:
            self.polkit = self.env.start_polkitd()
        self.bus = self.env.bus()

    @property
    def obj(self):
        # A fresh proxy each time: one bound to a unique name would not
        # follow a restarted service.
        return self.bus.get_object(BUS_NAME, OBJ, introspect=False)

    def tearDown(self):
        for p in self.bg:
            if p.poll() is None:
                p.kill()
            p.communicate()
        if not self.passed:
            print("\n--- bankr-llmd log ---\n" + self.env.log())
        if self.polkit:
            self.polkit.stop()
        super().tearDown()

    # --- helpers ------------------------------------------------------------

    def call(self, iface, method, *args, signature=None, timeout=20):
        return self.obj.get_dbus_method(method, iface)(*args, signature=signature, timeout=timeout)

    def top_up(self, amount, token=""):
        return self.call(CREDITS, "TopUp", float(amount), token, signature="ds")

    def set_auto(self, settings):
        return self.call(CREDITS, "SetAutoTopUp", dbus.Dictionary(settings, signature="sv"), signature="a{sv}")

    def get_auto(self):
        return self.call(CREDITS, "GetAutoTopUp")

    def reveal(self):
        return self.call(KEY_IFACE, "Reveal")

    def agent_requests(self, endpoint):
        return self.gw.requests_for(endpoint)

    def actions_asked(self):
        return [c["action"] for c in self.polkit.check_calls()] if self.polkit else []

    def credits_prop(self, name):
        """A Credits property, or None while the interface lacks it."""
        try:
            return self.obj.Get(CREDITS, name, dbus_interface="org.freedesktop.DBus.Properties", timeout=10)
        except dbus.exceptions.DBusException:
            return None

    def assertNoKeyInLog(self):
        log = self.env.log()
        self.assertNotIn(FakeGateway.DEFAULT_API_KEY, log)
        self.assertNotIn(FakeGateway.DEFAULT_KEY, log)

    def gdbus_bg(self, iface, method, *args):
        argv = ["gdbus", "call", "--session", "--dest", BUS_NAME, "--object-path", OBJ,
                "--method", iface + "." + method, "--timeout", "30"] + list(args)
        p = subprocess.Popen(argv, env=self.env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.bg.append(p)
        return p


class Guarded(TopUpTest):
    """Each guarded method: allowed → it works with exactly one request;
    denied → NotAuthorized and nothing sent."""

    def test_top_up_allowed(self):
        self.polkit.set_allowed([TOP_UP])
        granted, balance, tx = self.top_up(25)
        self.assertEqual(float(granted), 25.0)
        self.assertAlmostEqual(float(balance), 37.5)
        self.assertTrue(str(tx).startswith("0x"), tx)
        reqs = self.agent_requests("topup")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].method, "POST")
        self.assertEqual(reqs[0].headers.get("x-api-key"), FakeGateway.DEFAULT_API_KEY)
        self.assertEqual(reqs[0].json, {"amountUsd": 25})
        self.assertEqual(self.actions_asked(), [TOP_UP])
        # The balance is updated at once, without waiting for a refresh.
        b = self.credits_prop("Balance")
        if b is not None:
            self.assertAlmostEqual(float(b), 37.5)
            self.assertEqual(str(self.credits_prop("State")), "ok")
        self.assertNoKeyInLog()

    def test_top_up_with_token_and_cents(self):
        self.polkit.set_allowed([TOP_UP])
        granted, _, _ = self.top_up(12.34, "WETH")
        self.assertAlmostEqual(float(granted), 12.34)
        reqs = self.agent_requests("topup")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].json, {"amountUsd": 12.34, "sourceToken": "WETH"})
        self.assertIn(b'"amountUsd":12.34', reqs[0].body)

    def test_top_up_denied(self):
        self.polkit.set_allowed([REVEAL, CONFIGURE])
        self.assertBusError(ERR + "NotAuthorized", self.top_up, 25, contains="denied")
        self.assertEqual(self.agent_requests("topup"), [])
        self.assertEqual(self.actions_asked(), [TOP_UP])
        b = self.credits_prop("Balance")
        if b is not None:
            self.assertNotAlmostEqual(float(b), 37.5)

    def test_set_auto_allowed(self):
        self.polkit.set_allowed([CONFIGURE])
        res = self.set_auto({"enabled": True, "amount_usd": 30.0, "threshold_usd": 10.0,
                             "tokens": dbus.Array(["USDC", "WETH"], signature="s")})
        self.assertEqual(bool(res["enabled"]), True)
        self.assertEqual(float(res["amount_usd"]), 30.0)
        self.assertEqual(float(res["threshold_usd"]), 10.0)
        self.assertEqual([str(t) for t in res["tokens"]], ["USDC", "WETH"])
        reqs = self.agent_requests("auto-topup")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].method, "POST")
        self.assertEqual(reqs[0].headers.get("x-api-key"), FakeGateway.DEFAULT_API_KEY)
        self.assertEqual(reqs[0].json, {"enabled": True, "amountUsd": 30, "thresholdUsd": 10,
                                        "tokens": ["USDC", "WETH"]})
        self.assertEqual(self.actions_asked(), [CONFIGURE])
        # And it reads back.
        got = self.get_auto()
        self.assertEqual(bool(got["enabled"]), True)
        self.assertEqual([str(t) for t in got["tokens"]], ["USDC", "WETH"])

    def test_set_auto_denied(self):
        self.polkit.set_allowed([TOP_UP, REVEAL])
        self.assertBusError(ERR + "NotAuthorized", self.set_auto, {"enabled": True}, contains="denied")
        self.assertEqual(self.agent_requests("auto-topup"), [])
        self.assertEqual(self.actions_asked(), [CONFIGURE])
        self.assertFalse(self.gw.auto_topup["enabled"])

    def test_reveal_allowed(self):
        self.polkit.set_allowed([REVEAL])
        self.assertEqual(str(self.reveal()), FakeGateway.DEFAULT_KEY)
        self.assertEqual(self.actions_asked(), [REVEAL])
        self.assertNoKeyInLog()

    def test_reveal_denied(self):
        self.polkit.set_allowed([TOP_UP, CONFIGURE])
        msg = self.assertBusError(ERR + "NotAuthorized", self.reveal, contains="denied")
        self.assertNotIn(FakeGateway.DEFAULT_KEY, msg)
        self.assertEqual(self.actions_asked(), [REVEAL])

    def test_get_auto_needs_no_authorization(self):
        self.gw.auto_topup = {"enabled": True, "amountUsd": 20, "thresholdUsd": 3.5,
                              "tokens": [{"address": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                                          "chain": "base", "symbol": "USDC", "name": "USD Coin", "decimals": 6},
                                         {"address": "0x1111111111111111111111111111111111111111",
                                          "chain": "base", "symbol": "?", "name": "Unknown token", "decimals": 18}],
                              "lastTopUpAt": "2026-01-02T03:04:05Z",
                              "lastError": {"message": "Token swap failed"}}
        got = self.get_auto()
        self.assertEqual(bool(got["enabled"]), True)
        self.assertEqual(float(got["amount_usd"]), 20.0)
        self.assertEqual(float(got["threshold_usd"]), 3.5)
        self.assertEqual([str(t) for t in got["tokens"]],
                         ["USDC", "0x1111111111111111111111111111111111111111"])
        self.assertEqual(str(got["last_top_up_at"]), "2026-01-02T03:04:05Z")
        self.assertEqual(str(got["last_error"]), "Token swap failed")
        self.assertEqual(self.actions_asked(), [])
        reqs = self.agent_requests("auto-topup")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].method, "GET")

    def test_credits_auto_on_a_terminal_is_inert(self):
        # The agent API's words (the last error) reach a terminal without
        # the C1 controls in them (the service refuses C0 ones).
        import pty
        import select
        from harness import CLI
        self.gw.auto_topup = {"enabled": True, "amountUsd": 20, "thresholdUsd": 3.5,
                              "tokens": [{"address": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                                          "chain": "base", "symbol": "USDC", "name": "USD Coin",
                                          "decimals": 6}],
                              "lastError": {"message": "swap \u009d0;owned\u009c failed \u009b2J"}}
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(CLI, [CLI, "credits", "auto"], self.env.environ)
            finally:
                os._exit(127)
        out = b""
        try:
            while True:
                r, _, _ = select.select([fd], [], [], 20)
                if not r:
                    break
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
        finally:
            os.waitpid(pid, 0)
            os.close(fd)
        self.assertIn("Last error: swap ^[]0;owned^[\\ failed ^[[2J".encode(), out)
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn("\u009b".encode(), out)
        self.assertNotIn("\u009d".encode(), out)

    def test_get_auto_last_error_quoting_a_key_is_redacted(self):
        api, llm = FakeGateway.DEFAULT_API_KEY, FakeGateway.DEFAULT_KEY
        self.gw.auto_topup = {"enabled": True, "amountUsd": 20, "thresholdUsd": 3.5, "tokens": [],
                              "lastError": {"message": "Swap with key %s failed; also %s" % (api[1:], llm[:-1])}}
        got = str(self.get_auto()["last_error"])
        self.assertTrue(got.startswith("Swap with key *** failed; also "), got)
        for key in (api, llm):
            for i in range(len(key) - 7):
                self.assertNotIn(key[i:i + 8], got)
        self.assertNoKeyInLog()

    def test_get_auto_defaults_have_no_last_fields(self):
        got = self.get_auto()
        self.assertEqual(set(got.keys()), {"enabled", "amount_usd", "threshold_usd", "tokens"})
        self.assertEqual([str(t) for t in got["tokens"]], ["USDC"])

    def test_concurrent_top_ups_are_separate(self):
        self.polkit.set_allowed([TOP_UP])
        ps = [self.gdbus_bg(CREDITS, "TopUp", "5", "''") for _ in range(3)]
        for p in ps:
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(len(self.agent_requests("topup")), 3)
        self.assertEqual(len(self.actions_asked()), 3)
        self.assertAlmostEqual(self.gw.balance, 27.5)


class Validation(TopUpTest):
    """Bad arguments are refused before polkit is asked or the agent API hears of them."""

    def test_top_up_bad_arguments(self):
        self.polkit.set_allowed([TOP_UP])
        for amount, token in ((0, ""), (0.99, ""), (1000.01, ""), (-5, ""), (float("nan"), ""),
                              (float("inf"), ""), (25, "US DC"), (25, "x" * 101), (25, "\tUSDC"),
                              (25, "USDC\u00e9")):
            self.assertBusError(INVALID_ARGS, self.top_up, amount, token)
        self.assertEqual(self.actions_asked(), [])
        self.assertEqual(self.agent_requests("topup"), [])
        # The bounds themselves are fine.
        self.top_up(1)
        self.top_up(1000)
        self.assertEqual(len(self.agent_requests("topup")), 2)

    def test_set_auto_bad_arguments(self):
        self.polkit.set_allowed([CONFIGURE])
        bad = [
            {},
            {"colour": "blue"},
            {"enabled": "yes"},
            {"amount_usd": dbus.Int32(30)},
            {"amount_usd": 0.5},
            {"amount_usd": 1000.5},
            {"threshold_usd": 0.0},
            {"threshold_usd": 500.01},
            {"threshold_usd": float("nan")},
            {"tokens": dbus.Array([], signature="s")},
            {"tokens": dbus.Array(["A", "B", "C", "D"], signature="s")},
            {"tokens": dbus.Array([""], signature="s")},
            {"tokens": dbus.Array(["USDC", "usdc"], signature="s")},
            {"tokens": "USDC"},
            {"enabled": True, "whatever": 1},
        ]
        for settings in bad:
            with self.subTest(settings=settings):
                msg = self.assertBusError(INVALID_ARGS, self.set_auto, settings)
                if "colour" in settings:
                    self.assertIn("colour", msg)
        self.assertEqual(self.actions_asked(), [])
        self.assertEqual(self.agent_requests("auto-topup"), [])

    def test_no_api_key(self):
        self.env.restart_service({"BANKR_API_KEY": None})
        self.polkit.set_allowed([TOP_UP, CONFIGURE])
        self.assertBusError(ERR + "NoKey", self.top_up, 25, contains="bankr-llm key set --api")
        self.assertBusError(ERR + "NoKey", self.set_auto, {"enabled": True})
        self.assertBusError(ERR + "NoKey", self.get_auto)
        self.assertEqual(self.actions_asked(), [])
        self.assertEqual(self.gw.requests_for("topup") + self.gw.requests_for("auto-topup"), [])


class Polkit(TopUpTest):
    def test_hung_polkit_times_out(self):
        self.polkit.simulate_hang(True)
        t0 = time.monotonic()
        self.assertBusError(ERR + "NotAuthorized", self.top_up, 25, contains="did not answer")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.agent_requests("topup"), [])
        self.assertBusError(ERR + "NotAuthorized", self.reveal, contains="did not answer")

    def test_polkit_not_running(self):
        self.polkit.stop()
        self.assertBusError(ERR + "NotAuthorized", self.top_up, 25, contains="polkit is not running")
        self.assertEqual(self.agent_requests("topup"), [])


class SlowPolkit(TopUpTest):
    polkit_timeout_ms = "15000"

    def test_other_calls_are_answered_meanwhile(self):
        self.polkit.set_allowed([TOP_UP])
        self.polkit.set_delay(2.0)
        self.env.start_service()
        t0 = time.monotonic()
        p = self.gdbus_bg(CREDITS, "TopUp", "10", "''")
        # (The mock answers nothing while it sleeps: don't ask it anything now.)
        time.sleep(0.3)
        t1 = time.monotonic()
        self.assertTrue(bool(self.obj.Get(KEY_IFACE, "Present", dbus_interface="org.freedesktop.DBus.Properties",
                                          timeout=5)))
        got = self.get_auto()
        self.assertEqual(float(got["amount_usd"]), 25.0)
        self.assertLess(time.monotonic() - t1, 1.0)
        self.assertIsNone(p.poll(), "the top-up was answered before polkit")
        self.assertEqual(self.agent_requests("topup"), [])
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("22.5", out.decode())
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        self.assertEqual(len(self.agent_requests("topup")), 1)
        self.assertEqual(self.actions_asked(), [TOP_UP])


class NoSystemBus(TopUpTest):
    system_bus = False

    def test_no_system_bus(self):
        self.assertBusError(ERR + "NotAuthorized", self.top_up, 25, contains="system bus")
        self.assertBusError(ERR + "NotAuthorized", self.set_auto, {"enabled": True})
        self.assertBusError(ERR + "NotAuthorized", self.reveal, contains="system bus")
        self.assertEqual(self.gw.requests_for("topup") + self.gw.requests_for("auto-topup"), [])
        # Reading needs no polkit.
        self.get_auto()


class AgentErrors(TopUpTest):
    """How the agent API's answers map to errors; never a second request."""

    def setUp(self):
        super().setUp()
        self.polkit.set_allowed([TOP_UP, CONFIGURE])

    def one_top_up_fails(self, fault, name, contains):
        self.gw.clear_requests()
        if fault is not None:
            self.gw.push_fault("topup", fault)
        msg = self.assertBusError(name, self.top_up, 25, contains=contains)
        self.assertEqual(len(self.agent_requests("topup")), 1, "a top-up was sent twice")
        self.assertNotIn(FakeGateway.DEFAULT_API_KEY, msg)
        return msg

    def test_402_insufficient_wallet_balance(self):
        self.one_top_up_fails(Fault.http(402), ERR + "PaymentRequired", ["Insufficient wallet balance", "wallet"])
        # A failed top-up is not an exhausted credit balance.
        state = self.credits_prop("State")
        if state is not None:
            self.assertNotEqual(str(state), "exhausted")

    def test_403_gateway_not_enabled(self):
        self.one_top_up_fails(Fault.http(403), ERR + "Unauthorized", "not enabled")

    def test_502_swap_failed(self):
        self.one_top_up_fails(Fault.http(502), ERR + "GatewayError", ["token swap", "Token swap failed"])

    def test_401_bad_api_key(self):
        self.gw.api_keys = {"bk_other"}
        self.one_top_up_fails(None, ERR + "Unauthorized", "key set --api")

    def test_api_key_quoted_by_the_agent_api_is_redacted(self):
        # Some servers quote the key they rejected; it must not reach a bus error.
        key = FakeGateway.DEFAULT_API_KEY
        msg = self.one_top_up_fails(Fault.http(401, "Invalid API key: %s (expired)" % key), ERR + "Unauthorized",
                                    "Invalid API key")
        self.assertIn("(expired)", msg)
        self.gw.push_fault("auto-topup", Fault.http(400, "bad request for key %s" % key))
        ok, err = self.env.try_call(CREDITS, "GetAutoTopUp")
        self.assertFalse(ok)
        self.assertIn("bad request for key", err[1])
        self.assertNotIn(key, err[1])
        self.assertNotIn(key, self.env.log())

    def test_500_may_have_gone_through(self):
        self.one_top_up_fails(Fault.http(500), ERR + "GatewayError", ["may or may not", "Internal server error"])

    def test_400_is_invalid_args(self):
        self.one_top_up_fails(Fault.http(400, "sourceToken is not supported"), INVALID_ARGS,
                              "sourceToken is not supported")

    def test_connection_dropped_after_sending(self):
        # An agent API connection in the pool first: libcurl resends a request
        # whose reused connection closes without an answer, and a top-up must
        # never be resent.
        self.get_auto()
        self.one_top_up_fails(Fault(close=True), ERR + "GatewayUnavailable", ["may have gone through", "balance"])
        self.one_top_up_fails(Fault(reset=True), ERR + "GatewayUnavailable", "may have gone through")
        self.one_top_up_fails(Fault(drop_after=10, chunked=True), ERR + "GatewayUnavailable",
                              "may have gone through")
        self.assertEqual(self.gw.pending_faults("topup"), [])

    def test_shutdown_with_a_top_up_in_flight(self):
        self.gw.push_fault("topup", Fault(hang=True))
        p = self.gdbus_bg(CREDITS, "TopUp", "10", "''")
        wait_until(lambda: len(self.agent_requests("topup")) == 1, what="the top-up request")
        self.env.stop_service()  # fails on a crash or a non-zero exit
        p.communicate(timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Exiting while a top-up of $10.00 was in flight: it may have gone through.", self.env.log())
        self.assertEqual(len(self.agent_requests("topup")), 1)

    def test_malformed_answer(self):
        self.one_top_up_fails(Fault.wrong_types(), ERR + "GatewayError", "may or may not have gone through")
        self.one_top_up_fails(Fault.malformed(), ERR + "GatewayError", "may or may not have gone through")

    def test_unreachable_agent_api_charged_nothing(self):
        self.env.restart_service({"BANKR_API_URL": "http://127.0.0.1:9"})
        msg = self.assertBusError(ERR + "GatewayUnavailable", self.top_up, 25, contains="Nothing was charged")
        self.assertNotIn("may have", msg)

    def test_auto_top_up_errors(self):
        self.gw.push_fault("auto-topup", Fault.http(403))
        self.assertBusError(ERR + "Unauthorized", self.get_auto, contains="not enabled")
        self.gw.push_fault("auto-topup", Fault.wrong_types())
        self.assertBusError(ERR + "GatewayError", self.get_auto)
        self.gw.push_fault("auto-topup", Fault.http(503))
        self.assertBusError(ERR + "GatewayError", self.set_auto, {"enabled": True}, contains="503")
        self.gw.clear_requests()
        self.assertBusError(INVALID_ARGS, self.set_auto, {"tokens": dbus.Array(["NOPE"], signature="s")},
                            contains="Unknown token")
        self.assertEqual(len(self.agent_requests("auto-topup")), 1)


class Cli(TopUpTest):
    def test_credits_add_yes_allowed(self):
        self.polkit.set_allowed([TOP_UP])
        r = self.env.cli("credits", "add", "25", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"Added \$25\.00 \(new balance \$37\.50, transaction 0x[0-9a-f]{64}\)\.")
        self.assertEqual(len(self.agent_requests("topup")), 1)
        calls = self.polkit.check_calls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["flags"], 1, "allow-interactive-authorization was not passed on")

    def test_no_ask_password(self):
        self.polkit.set_allowed([TOP_UP])
        r = self.env.cli("--no-ask-password", "credits", "add", "25")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--no-ask-password", r.stderr)
        r = self.env.cli("--no-ask-password", "credits", "add", "25", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        calls = self.polkit.check_calls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["flags"], 0, "allow-interactive-authorization was set")

    def test_credits_add_with_token(self):
        self.polkit.set_allowed([TOP_UP])
        r = self.env.cli("credits", "add", "$10.50", "--token", "USDC", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.agent_requests("topup")[0].json, {"amountUsd": 10.5, "sourceToken": "USDC"})

    def test_credits_add_denied(self):
        self.polkit.set_allowed([])
        r = self.env.cli("credits", "add", "25", "--yes")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn("Failed to add credits", r.stderr)
        self.assertEqual(r.stdout.count("Added"), 0)
        self.assertEqual(self.agent_requests("topup"), [])

    def test_credits_add_without_terminal_refuses(self):
        self.polkit.set_allowed([TOP_UP])
        r = self.env.cli("credits", "add", "25", input="y\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yes", r.stderr)
        self.assertIn("not a terminal", r.stderr)
        self.assertEqual(self.agent_requests("topup"), [])
        self.assertEqual(self.actions_asked(), [])

    def cli_on_terminal(self, args, answer):
        """Runs the CLI with a pseudo-terminal on stdin (answer typed ahead)."""
        from harness import CLI
        master, slave = os.openpty()
        try:
            os.write(master, answer.encode())
            def controlling_tty():
                # A session of its own with the pty as controlling terminal,
                # as in a real shell (pkttyagent opens /dev/tty).
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            r = subprocess.run([CLI] + args, stdin=slave, capture_output=True, env=self.env.environ, timeout=60,
                               preexec_fn=controlling_tty)
        finally:
            os.close(slave)
            os.close(master)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_credits_add_asks_on_a_terminal(self):
        self.polkit.set_allowed([TOP_UP])
        # pkttyagent registers with the ...WithOptions variant, which the
        # template lacks.
        self.polkit.mock.AddMethod("org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgentWithOptions",
                                   "(sa{sv})ssa{sv}", "", "")
        rc, out, err = self.cli_on_terminal(["credits", "add", "20"], "n\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("Add $20.00 of credits from your wallet? [y/N]", err)
        self.assertIn("Nothing was added", err)
        self.assertEqual(self.agent_requests("topup"), [])
        self.assertEqual(self.actions_asked(), [])
        if self.credits_prop("Balance") is not None:
            self.assertIn("Current balance: $12.50", out)

        rc, out, err = self.cli_on_terminal(["credits", "add", "20", "--token", "USDC"], "y\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("paid in USDC? [y/N]", err)
        self.assertIn("Added $20.00 (new balance $32.50", out)
        self.assertEqual(len(self.agent_requests("topup")), 1)
        calls = self.polkit.check_calls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["flags"], 1)
        if os.access("/usr/bin/pkttyagent", os.X_OK):
            # A text agent was registered for the CLI while the call was pending.
            regs = self.polkit.mock.GetMethodCalls("RegisterAuthenticationAgentWithOptions")
            self.assertEqual(len(regs), 1)
            # For the CLI's own process: its subject is the pid the check was made for.
            subject = regs[0][1][0][1]
            self.assertEqual(int(subject["pid"]), calls[0]["subject"]["pid"])

    def test_credits_add_bad_amounts(self):
        for a in ("0", "1001", "abc", "1e3", "nan", "", "25$", "-5"):
            r = self.env.cli("credits", "add", a, "--yes")
            self.assertEqual(r.returncode, 2, (a, r.stderr))
        r = self.env.cli("credits", "add", "--yes")
        self.assertEqual(r.returncode, 2)
        r = self.env.cli("credits", "add", "5", "--token", "a b", "--yes")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(self.agent_requests("topup"), [])

    def test_credits_add_payment_required_exit_code(self):
        self.polkit.set_allowed([TOP_UP])
        self.gw.push_fault("topup", Fault.http(402))
        r = self.env.cli("credits", "add", "25", "--yes")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("Insufficient wallet balance", r.stderr)

    def test_credits_auto_show_and_update(self):
        r = self.env.cli("credits", "auto")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Auto top-up: disabled", r.stdout)
        self.assertIn("$25.00 when the balance falls below $5.00", r.stdout)
        self.assertIn("USDC", r.stdout)

        self.polkit.set_allowed([CONFIGURE])
        r = self.env.cli("credits", "auto", "--enable", "--amount", "30", "--threshold", "10", "--tokens", "USDC,WETH")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Auto top-up: enabled", r.stdout)
        self.assertIn("$30.00 when the balance falls below $10.00", r.stdout)
        self.assertIn("USDC, WETH", r.stdout)
        posts = [q for q in self.agent_requests("auto-topup") if q.method == "POST"]
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0].json, {"enabled": True, "amountUsd": 30, "thresholdUsd": 10,
                                         "tokens": ["USDC", "WETH"]})
        self.assertEqual(self.polkit.check_calls()[0]["flags"], 1)

        r = self.env.cli("credits", "auto", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"enabled": True, "amount_usd": 30, "threshold_usd": 10,
                                                "tokens": ["USDC", "WETH"]})

        r = self.env.cli("credits", "auto", "--disable")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Auto top-up: disabled", r.stdout)

    def test_credits_auto_denied_and_conflicts(self):
        self.polkit.set_allowed([])
        r = self.env.cli("credits", "auto", "--enable")
        self.assertEqual(r.returncode, 7, r.stderr)
        r = self.env.cli("credits", "auto", "--enable", "--disable")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--enable and --disable", r.stderr)
        for args in (["--amount", "0"], ["--threshold", "600"], ["--tokens", "A,B,C,D"], ["--tokens", ","],
                     ["extra"]):
            r = self.env.cli("credits", "auto", *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        self.assertEqual([q for q in self.agent_requests("auto-topup") if q.method == "POST"], [])
        self.assertEqual(self.actions_asked(), [CONFIGURE])

    def test_key_reveal_prints_only_the_key(self):
        self.polkit.set_allowed([REVEAL])
        r = self.env.cli("key", "reveal")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, FakeGateway.DEFAULT_KEY + "\n")
        self.assertEqual(r.stderr, "")

    def test_key_reveal_denied(self):
        self.polkit.set_allowed([])
        r = self.env.cli("key", "reveal")
        self.assertEqual(r.returncode, 7)
        self.assertEqual(r.stdout, "")
        self.assertNotIn(FakeGateway.DEFAULT_KEY, r.stderr)

    def test_other_verbs_never_reveal(self):
        self.polkit.set_allowed([REVEAL])
        for args in (["status"], ["key", "status"], ["credits", "auto"]):
            r = self.env.cli(*args)
            self.assertNotIn(FakeGateway.DEFAULT_KEY, r.stdout + r.stderr)
        self.assertEqual(self.actions_asked(), [])

    def test_help(self):
        for args in (["credits", "add", "--help"], ["credits", "auto", "--help"], ["key", "reveal", "--help"]):
            r = self.env.cli(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("Exit codes", r.stdout)
            self.assertIn("7  not authorized", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
