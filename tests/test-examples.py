#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The examples in examples/ run against a private bus, the built daemon and
the fake gateway: the Python (Gio) and GJS clients stream the answer from
Chat.Start's Delta/Finished signals and see the balance change after the
request; the shell one answers through busctl/gdbus."""
import os
import shutil
import unittest

from harness import Env, TestCase, SRC, SLOW, wait_until
from fakegw import FakeGateway

EX = os.path.join(SRC, "examples")
REPLY = "Grüße — streamed in pieces, 日本語 too."


class Examples(TestCase):
    env_args = {"keyring": False, "service_env": {"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY,
                                                  "BANKR_LLMD_CREDITS_COALESCE_MS": "200"}}

    def setUp(self):
        super().setUp()
        self.gw = self.env.gateway
        self.gw.reply_text = REPLY
        self.gw.balance = 12.5
        self.env.start_service()
        wait_until(lambda: self.env.get("Credits", "State") == "ok", what="a first balance")
        # The chat "costs" something: the refresh after it sees the new balance.
        self.gw.balance = 7.25

    def check_client(self, argv):
        r = self.env.run(argv + ["-m", "claude-haiku-4.5", "--watch", str(10 * SLOW), "--changes", "1",
                                 "Say", "hi"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.split("\n")
        self.assertEqual(lines[0], "Balance: $12.50 (ok)")
        self.assertEqual(lines[1], REPLY)
        self.assertRegex(lines[2], r"^\[claude-haiku-4\.5: \d+ tokens in, \d+ out, \$[0-9.]+\]$")
        self.assertEqual(lines[3], "Balance changed: $7.25 (ok)")
        # Streamed: the fake gateway sent the answer in several deltas.
        chat = [q for q in self.gw.requests if q.endpoint in ("chat", "messages")]
        self.assertEqual(len(chat), 1)
        self.assertTrue(chat[0].json.get("stream"))

    def test_python_gio(self):
        self.check_client(["/usr/bin/python3", os.path.join(EX, "chat-gio.py")])

    @unittest.skipUnless(shutil.which("gjs"), "gjs is not installed")
    def test_gjs(self):
        self.check_client(["gjs", os.path.join(EX, "chat.js")])

    def test_shell(self):
        r = self.env.run(["sh", os.path.join(EX, "chat.sh"), "gpt-5-mini", "Say hi"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.split("\n")
        self.assertEqual(lines[0], "Balance: $12.50 (ok)")
        self.assertEqual(lines[1], REPLY)
        self.assertRegex(lines[2], r"^\[gpt-5-mini: \d+ tokens in, \d+ out\]$")
        self.assertRegex(lines[3], r"^\(<uint32 \d+>,\)$")
        self.assertRegex(lines[4], r"^Balance now: \$(12\.50|7\.25) \(ok\)$")

    def test_python_reports_a_failure(self):
        r = self.env.run(["/usr/bin/python3", os.path.join(EX, "chat-gio.py"), "-m", "no-such-model", "hi"],
                         timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no-such-model", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
