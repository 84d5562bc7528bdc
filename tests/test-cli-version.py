#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llm against a bankr-llmd older than itself (tests/old_service.py,
which owns bot.bankr.LLM1 but lacks methods, interfaces and properties):
the CLI says so, with both versions and how to restart the service,
instead of "cannot be reached ... check that bankr-llmd is installed"."""
import os
import subprocess
import unittest

from harness import CLI, HERE, TestCase

OLD_VERSION = "0.0.9"


def cli_version():
    out = subprocess.run([CLI, "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[-1]


class OlderService(TestCase):
    env_args = {"keyring": False, "gateway": False}
    service_version = OLD_VERSION

    def setUp(self):
        super().setUp()
        argv = ["/usr/bin/python3", os.path.join(HERE, "old_service.py")]
        if self.service_version:
            argv += ["--version", self.service_version]
        self.old = subprocess.Popen(argv, env=self.env.environ, stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.stop_old)
        self.assertEqual(self.old.stdout.readline().strip(), "ready")

    def stop_old(self):
        self.old.terminate()
        self.old.wait(5)
        self.old.stdout.close()

    def assertOlder(self, r, member):
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        version = "version %s" % self.service_version if self.service_version else "an older version"
        self.assertIn("the running bankr-llmd (%s) does not know %s: it is older than this bankr-llm "
                      "(version %s); restart it (systemctl --user restart bankr-llmd) or update it."
                      % (version, member, cli_version()), " ".join(r.stderr.split()))
        self.assertNotIn("installed", r.stderr)
        self.assertNotIn("cannot be reached", r.stderr)

    def test_unknown_method(self):
        # dbus-python's own wording for a method it lacks (a traceback):
        # not quoted.
        r = self.env.cli("key", "validate")
        self.assertOlder(r, "this method")
        self.assertNotIn("Traceback", r.stderr)
        self.assertTrue(r.stderr.startswith("Failed to validate the key: "), r.stderr)

    def test_unknown_interface(self):
        r = self.env.cli("models")
        self.assertOlder(r, "the interface Models")

    def test_unknown_property(self):
        r = self.env.cli("credits", "--threshold", "3")
        self.assertOlder(r, "Credits.LowThreshold")

    def test_known_members_still_work(self):
        r = self.env.cli("key", "status")
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("No key.", r.stdout)


class OldestService(OlderService):
    """Without Key.Version (the first releases had none)."""
    service_version = ""


if __name__ == "__main__":
    unittest.main()
