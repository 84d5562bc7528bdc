#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""--json=short|pretty|off on every bankr-llm verb that prints data (status,
models, credits, credits auto, chat), as systemd's tools take it; a bare
--json and -j still mean pretty, and a bad value is a usage error (exit 2)
that reaches neither the service nor the gateway."""
import json
import unittest

from harness import Env, wait_until
from fakegw import FakeGateway

VERBS = [
    ("status",),
    ("models",),
    ("credits",),
    ("credits", "auto"),
    ("chat", "-m", "gpt-5-mini", "hello"),
]


def stable(o):
    """Without credits' age_s, which may tick between two runs."""
    return {k: v for k, v in o.items() if k != "age_s"} if isinstance(o, dict) else o


class CliJson(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env(keyring=False, service_env={"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY,
                                                  "BANKR_API_KEY": FakeGateway.DEFAULT_API_KEY})
        cls.env.start()
        try:
            # The first balance arrives after activation: wait for it, or
            # the first "status" and the next may see different states.
            cls.env.start_service()
            wait_until(lambda: cls.env.get("Credits", "State") == "ok", what="the first balance")
        except BaseException:
            cls.env.stop(check=False)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()

    def run_verb(self, verb, *opts):
        # Options go before a chat prompt; they may follow any other verb.
        argv = list(verb[:1]) + list(opts) + list(verb[1:]) if verb[0] == "chat" else list(verb) + list(opts)
        r = self.env.cli(*argv)
        self.assertEqual(r.returncode, 0, "%s: %s" % (argv, r.stderr))
        return r.stdout

    def test_formats(self):
        for verb in VERBS:
            with self.subTest(verb=verb):
                pretty = self.run_verb(verb, "--json=pretty")
                self.assertGreater(pretty.count("\n"), 1, pretty)
                data = json.loads(pretty)
                if verb[0] != "chat":  # a chat answers once per request; compare shape only
                    for alias in (("--json",), ("-j",)):
                        self.assertEqual(stable(json.loads(self.run_verb(verb, *alias))), stable(data), alias)
                else:
                    self.assertEqual(json.loads(self.run_verb(verb, "-j")).keys(), data.keys())

                short = self.run_verb(verb, "--json=short")
                self.assertEqual(short.count("\n"), 1, short)
                self.assertTrue(short.endswith("\n"))
                if verb[0] != "chat":
                    self.assertEqual(stable(json.loads(short)), stable(data))
                self.assertNotIn("\\/", short)

                off = self.run_verb(verb, "--json=off")
                self.assertRaises(ValueError, json.loads, off)
                # The last one given wins, as with systemd's tools.
                if verb[0] != "chat":
                    self.assertEqual(self.run_verb(verb, "--json=short", "--json=off"), off)

    def test_bad_value_is_a_usage_error(self):
        # Nothing is asked of the gateway for a usage error (the service's own
        # background fetches of models and credits may still come).
        def asked():
            return [r for r in self.env.gateway.requests if r.endpoint not in ("models", "credits")]
        before = len(asked())
        for verb in VERBS:
            for bad in ("--json=", "--json=yes", "--json=SHORT", "--json=short,pretty"):
                with self.subTest(verb=verb, bad=bad):
                    argv = list(verb[:1]) + [bad] + list(verb[1:])
                    r = self.env.cli(*argv)
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertEqual(r.stdout, "")
                    self.assertIn("Invalid --json value", r.stderr)
                    self.assertIn("short, pretty or off", r.stderr)
        self.assertEqual(len(asked()), before)

    def test_help_names_the_formats(self):
        for verb in VERBS:
            r = self.env.cli(verb[0], *( [verb[1]] if verb[0] == "credits" and len(verb) > 1 else []), "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("--json[=", r.stdout)
            self.assertIn("short", r.stdout)
            self.assertIn("off", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
