#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llmd over TLS: the fake gateway (and agent API) serves HTTPS on
127.0.0.1 with certificates made here by the openssl CLI from a test CA
that only this test trusts, through CURL_CA_BUNDLE (never the system store).

Streamed chat, models, credits and a top-up work; an untrusted certificate, one
for another host name and an expired one each give GatewayUnavailable with a
sentence that says which, sent nothing and were not retried.

make_test_pki(dir) is shared with tests/test-http2.py.
"""
import os
import shutil
import subprocess
import time
import unittest

import dbus

from chatclient import ChatClient
from fakegw import FakeGateway
import harness
from harness import Env, BUS_NAME, OBJ, SLOW

ERR = "bot.bankr.LLM1.Error."
KEY = FakeGateway.DEFAULT_KEY
API_KEY = FakeGateway.DEFAULT_API_KEY
MODEL = "gpt-5-mini"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_test_pki(d):
    """Writes into d: ca.pem (the test CA), and for each server certificate
    NAME.pem + NAME.key: good (127.0.0.1 and localhost), wronghost (only
    wrong.example), expired (127.0.0.1, ended before now) and untrusted
    (127.0.0.1, signed by another CA: other-ca.pem, which nobody trusts).
    Returns d."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                 "-subj", "/CN=bankr-llmd test %s" % ca,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    certs = {
        "good": ("ca", "IP:127.0.0.1,DNS:localhost", "2"),
        "wronghost": ("ca", "DNS:wrong.example", "2"),
        # -days -1: notAfter a day before notBefore (= now): expired at once.
        "expired": ("ca", "IP:127.0.0.1,DNS:localhost", "-1"),
        "untrusted": ("other-ca", "IP:127.0.0.1,DNS:localhost", "2"),
    }
    for name, (ca, san, days) in certs.items():
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" % san)
        _openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-days", days, "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)
    return d


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl CLI (scripts/deps.sh)")
class TLSTest(harness.TestCase):
    cert = "good"
    system_bus = False
    env_args = None  # the session is made here: a gateway of its own, over TLS

    def setUp(self):
        super().setUp()
        self.gw = None
        self.env = Env(gateway=False, keyring=False, system_bus=self.system_bus)
        self.env.start()
        d = os.path.join(self.env.dir, "pki")
        os.makedirs(d)
        self.pki = make_test_pki(d)
        self.gw = FakeGateway().use_tls(os.path.join(d, self.cert + ".pem"), os.path.join(d, self.cert + ".key"))
        self.gw.start()
        self.assertTrue(self.gw.url.startswith("https://127.0.0.1:"))
        self.env.write_service_file({
            "BANKR_LLM_URL": self.gw.url,
            "BANKR_API_URL": self.gw.url,
            "BANKR_LLM_KEY": KEY,
            "BANKR_API_KEY": API_KEY,
            "CURL_CA_BUNDLE": os.path.join(d, "ca.pem"),
            "BANKR_LLMD_FETCH_TIMEOUT_MS": "3000",
            "DBUS_SYSTEM_BUS_ADDRESS": self.env.environ["DBUS_SYSTEM_BUS_ADDRESS"],
        })
        self.chat = None

    def tearDown(self):
        failed = not self.passed
        if failed:
            print("\n--- bankr-llmd log ---\n" + self.env.log())
        if self.chat:
            self.chat.close()
        self.env.stop(check=not failed)
        if self.gw:
            self.gw.stop()

    def client(self):
        if not self.chat:
            self.chat = ChatClient(self.env)
        return self.chat


class Works(TLSTest):
    def test_streamed_chat(self):
        c = self.client()
        self.gw.reply_text = "Über TLS: one two three four five six seven."
        path = c.start(MODEL, [("user", "hi")])
        res = c.wait(path)
        self.assertIsNone(res.error, res.error)
        self.assertEqual(res.text, self.gw.reply_text)
        self.assertGreater(len(res.deltas), 3)
        reqs = self.gw.requests_for("chat")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].headers.get("authorization"), "Bearer " + KEY)
        self.assertEqual(self.gw.tls_failures, 0)
        self.assertIn("CURL_CA_BUNDLE", self.env.log())

    def test_cli_chat_models_credits(self):
        r = self.env.cli("chat", "-m", MODEL, "hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "Hello, world!")
        r = self.env.cli("models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("claude-haiku-4.5", r.stdout)
        r = self.env.cli("credits")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("12.50", r.stdout)
        self.assertTrue(self.gw.requests_for("models"))
        self.assertTrue(self.gw.requests_for("credits"))
        self.assertEqual(self.gw.tls_failures, 0)


class TopUp(TLSTest):
    system_bus = True

    def top_up(self, amount):
        polkit = self.env.start_polkitd()
        try:
            polkit.set_allowed(["bot.bankr.LLM1.top-up"])
            bus = dbus.bus.BusConnection(self.env.environ["DBUS_SESSION_BUS_ADDRESS"])
            try:
                obj = bus.get_object(BUS_NAME, OBJ, introspect=False)
                return obj.get_dbus_method("TopUp", "bot.bankr.LLM1.Credits")(
                    float(amount), "", signature="ds", timeout=30)
            finally:
                bus.close()
        finally:
            polkit.stop()

    def test_top_up(self):
        granted, balance, tx = self.top_up(25)
        self.assertEqual(float(granted), 25.0)
        self.assertAlmostEqual(float(balance), 37.5)
        reqs = self.gw.requests_for("topup")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].headers.get("x-api-key"), API_KEY)


class TopUpUntrusted(TopUp):
    """A top-up that fails on the certificate was never sent: it says so."""
    cert = "untrusted"

    def test_top_up(self):
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            self.top_up(25)
        msg = cm.exception.get_dbus_message()
        self.assertEqual(cm.exception.get_dbus_name(), ERR + "GatewayUnavailable", msg)
        self.assertIn("The TLS certificate of 127.0.0.1 is not trusted", msg)
        self.assertIn("Nothing was charged.", msg)
        self.assertEqual(self.gw.requests_for("topup"), [])


class BadCertificate(TLSTest):
    """Each bad certificate: GatewayUnavailable naming the cause, the key never
    sent (the handshake fails first), no retry."""
    cert = None
    sentence = None

    def setUp(self):
        if self.cert is None:
            self.skipTest("base class")
        super().setUp()

    def check(self, name, message):
        self.assertEqual(name, ERR + "GatewayUnavailable", message)
        self.assertIn(self.sentence, message)
        self.assertIn("127.0.0.1", message)
        self.assertNotIn(KEY, message)
        self.assertEqual(self.gw.requests, [], "nothing may reach a server that failed verification")

    def settled_failures(self):
        """Handshakes (failed, or completed and then refused by the client for
        its host name) once the daemon's own start-up fetches are over."""
        last = -1
        while last != self.gw.tls_failures + self.gw.tls_connections:
            last = self.gw.tls_failures + self.gw.tls_connections
            time.sleep(0.5 * SLOW)
        return last

    def test_chat(self):
        self.env.start_service()
        before = self.settled_failures()
        c = self.client()
        res = c.wait(c.start(MODEL, [("user", "hi")]))
        self.assertIsNotNone(res.error)
        self.check(res.error[0], res.error[1])
        # Not retried: a certificate does not heal in seconds.
        self.assertEqual(self.settled_failures() - before, 1)

    def test_models_and_credits(self):
        self.env.start_service()
        for iface, method in (("Models", "Refresh"), ("Credits", "Refresh")):
            bus = dbus.bus.BusConnection(self.env.environ["DBUS_SESSION_BUS_ADDRESS"])
            try:
                obj = bus.get_object(BUS_NAME, OBJ, introspect=False)
                with self.assertRaises(dbus.exceptions.DBusException) as cm:
                    obj.get_dbus_method(method, "bot.bankr.LLM1." + iface)(timeout=30)
            finally:
                bus.close()
            self.check(cm.exception.get_dbus_name(), cm.exception.get_dbus_message())

    def test_cli_says_it(self):
        r = self.env.cli("chat", "-m", MODEL, "hello")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.sentence, r.stderr)


class Untrusted(BadCertificate):
    cert = "untrusted"
    sentence = "The TLS certificate of 127.0.0.1 is not trusted"


class WrongHost(BadCertificate):
    cert = "wronghost"
    sentence = "The TLS certificate of 127.0.0.1 is for another host name"


class Expired(BadCertificate):
    cert = "expired"
    sentence = "The TLS certificate of 127.0.0.1 has expired"


class NoTestCA(BadCertificate):
    """Without CURL_CA_BUNDLE the system store decides: the test CA is not in it."""
    cert = "good"
    sentence = "The TLS certificate of 127.0.0.1 is not trusted"

    def setUp(self):
        super().setUp()
        self.env.write_service_file({"CURL_CA_BUNDLE": None, "SSL_CERT_FILE": None, "SSL_CERT_DIR": None})


del BadCertificate

if __name__ == "__main__":
    unittest.main(verbosity=2)
