#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The client side of the local endpoint: `bankr-llm token`, `bankr-llm
endpoint`, the launchers (`bankr-llm claude`/`opencode` run the tool as their
child with the endpoint's URL and a connection token) and Setup's key mode
"endpoint", against the built daemon, a private session bus, dbusmock's
polkitd and the fake gateway.

Everything that needs bot.bankr.LLM1.Endpoint skips, saying so, while the
daemon does not offer it; the command-line checks run regardless."""
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import CLI, busctl_plain

_spec = importlib.util.spec_from_file_location("test_setup", os.path.join(os.path.dirname(__file__), "test-setup.py"))
test_setup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(test_setup)
SetupBase, gv_options, read_bytes, backups_of, mode_of = (test_setup.SetupBase, test_setup.gv_options,
                                                          test_setup.read_bytes, test_setup.backups_of,
                                                          test_setup.mode_of)
KEY = test_setup.KEY

# A stand-in for claude/opencode: records its arguments and environment,
# then waits for STANDIN_RELEASE to exist (if set) and exits STANDIN_EXIT.
STANDIN = """#!/usr/bin/python3
import json, os, signal, sys, time
out = os.environ["STANDIN_OUT"]
if os.environ.get("STANDIN_CATCH_HUP"):   # a tool with its own SIGHUP handler
    signal.signal(signal.SIGHUP, lambda *_: open(out + ".hup", "w").close())
with open(out + ".tmp", "w") as f:
    json.dump({"argv0": sys.argv[0], "args": sys.argv[1:], "env": dict(os.environ), "pid": os.getpid()}, f)
os.rename(out + ".tmp", out)
release = os.environ.get("STANDIN_RELEASE")
while release and not os.path.exists(release):
    time.sleep(0.02)
sys.exit(int(os.environ.get("STANDIN_EXIT", "42")))
"""

def proc_state(pid):
    """What /proc says of a process that did not end: its state, its signal
    masks, where it waits."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("State", "SigQ", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"):
                    out[k] = v.strip()
        for name in ("wchan", "stack", "syscall"):
            try:
                with open("/proc/%d/%s" % (pid, name)) as f:
                    out[name] = f.read().strip()
            except OSError:
                pass
    except OSError as e:
        out["error"] = str(e)
    return out


def kill_all(*pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def endpoint_in(env):
    r = env.run(["busctl", "--user", "introspect", "bot.bankr.LLM1", "/bot/bankr/LLM1"], check=True)
    return "bot.bankr.LLM1.Endpoint" in r.stdout


class CliArgumentsTest(SetupBase):
    """What the CLI refuses before asking anyone, and what it says without an endpoint."""

    def test_token_usage_errors(self):
        for args in (["--ttl", "8d"], ["--ttl", "0"], ["--ttl", "1w"], ["--ttl", "-5m"], ["--ttl", ""],
                     ["--lifetime", "forever"], ["--lifetime", "persistent", "--ttl", "1h"],
                     ["--budget", "-1"], ["--budget", "0"], ["--budget", "1e3"], ["--models", ","],
                     ["--models", "a,,b"], ["--app", ""], ["--app", "two words"],
                     ["--openclaw-exec", "--json"], ["--openclaw-exec", "--lifetime", "connection"], ["extra"]):
            r = self.env.cli("token", *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), args)
            self.assertEqual(r.stdout, "", args)

    def test_endpoint_usage_errors(self):
        for args in (["revoke"], ["revoke", "a", "b"], ["revoke", ""], ["list"], ["--bogus"]):
            r = self.env.cli("endpoint", *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), args)

    def test_help(self):
        for verb in ("token", "endpoint"):
            r = self.env.cli(verb, "--help")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("bankr-llm " + verb, r.stdout)

    def test_without_endpoint(self):
        if endpoint_in(self.env):
            self.skipTest("this daemon has the Endpoint interface")
        for args in (["token"], ["endpoint"], ["endpoint", "revoke", "x"]):
            r = self.env.cli(*args)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertIn("no local endpoint", r.stderr)
        for tool in ("claude", "opencode"):
            r = self.env.cli(tool, "-p", "hi", env=self.standin(tool))
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("not started", r.stderr)
            self.assertFalse(os.path.exists(self.out))


class EndpointBase(SetupBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not endpoint_in(cls.env):
            cls.tearDownClass()
            raise unittest.SkipTest("bankr-llmd has no bot.bankr.LLM1.Endpoint interface yet (the server side, "
                                    "issue 14); these tests run once it does")
        cls.url = cls.env.get("Endpoint", "Url")
        cls.claude_path = os.path.join(cls.home, ".claude", "settings.json")

    def setUp(self):
        super().setUp()
        import shutil
        shutil.rmtree(os.path.join(self.home, ".claude"), ignore_errors=True)

    def standin(self, name, exit_code=42, release=None):
        p = os.path.join(self.bin, name)
        with open(p, "w") as f:
            f.write(STANDIN)
        os.chmod(p, 0o755)
        env = {"PATH": self.bin + ":/usr/bin:/bin", "STANDIN_OUT": self.out, "STANDIN_EXIT": str(exit_code)}
        if release:
            env["STANDIN_RELEASE"] = release
        return env

    def status(self, token, path="/v1/chat/completions", fmt="openai"):
        """The endpoint's HTTP status for a small request with this token."""
        model = self.env.gateway.models[0]["id"]
        if fmt == "openai":
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        else:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with NO_PROXY.open(req, timeout=20) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            e.read()
            return e.code

    def wait_refused(self, token):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.status(token) == 401:
                return
            time.sleep(0.05)
        self.fail("the token still works")

    def tokens(self):
        return busctl_plain(self.env.get("Endpoint", "Tokens"))

    def mint(self, *args):
        r = self.env.cli("token", "--json=short", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)


class TokenCliTest(EndpointBase):
    def test_token_default_is_expiring_one_hour(self):
        r = self.env.cli("token")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertTrue(token)
        self.assertNotEqual(token, KEY)
        self.assertNotEqual(self.status(token), 401)
        self.assertEqual(self.status(None), 401)
        entry = [t for t in self.tokens() if t["app"] == "cli"][-1]
        self.assertEqual(entry["lifetime"], "expiring")
        left = entry["expires_at"] / 1e6 - time.time()
        self.assertTrue(3500 < left <= 3600, left)
        self.assertNotIn(token, json.dumps(self.tokens()), "Tokens never shows a token")

    def test_json_budget_models_and_revoke(self):
        t = self.mint("--app", "mytool", "--ttl", "90s", "--budget", "2.50", "--models", "a-model,b-model")
        self.assertEqual((t["app"], t["lifetime"], t["expires_s"]), ("mytool", "expiring", 90))
        entry = [e for e in self.tokens() if e["id"] == t["id"]][0]
        self.assertEqual(entry["budget_usd"], 2.5)
        self.assertEqual(sorted(entry["models"]), ["a-model", "b-model"])
        r = self.env.cli("endpoint", "--json=short")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["url"], self.url)
        self.assertIn(t["id"], [e["id"] for e in doc["tokens"]])
        self.assertNotIn(t["token"], r.stdout)
        r = self.env.cli("endpoint")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.url, r.stdout)
        self.assertIn(t["id"], r.stdout)
        self.assertIn("mytool", r.stdout)
        r = self.env.cli("endpoint", "revoke", t["id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(t["id"], [e["id"] for e in self.tokens()])
        self.wait_refused(t["token"])

    def test_connection_token_lives_while_the_command_runs(self):
        p = subprocess.Popen([CLI, "token", "--lifetime", "connection", "--app", "held"], env=self.env.environ,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            token = p.stdout.readline().strip()
            self.assertTrue(token)
            self.assertNotEqual(self.status(token), 401)
            p.stdin.close()  # end of input: the command ends, the token dies
            self.assertEqual(p.wait(10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.wait_refused(token)

    def test_curl_with_a_token(self):
        # What docs/setup.md tells people to do by hand, in both formats and both auth headers.
        token = self.mint("--app", "curl")["token"]
        model = self.env.gateway.models[0]["id"]
        for path, header in (("/v1/chat/completions", "Authorization: Bearer " + token),
                             ("/v1/messages", "x-api-key: " + token)):
            body = json.dumps({"model": model, "max_tokens": 5, "stream": True,
                               "messages": [{"role": "user", "content": "hi"}]})
            r = self.env.run(["curl", "-sS", "--noproxy", "*", "-N", "-w", "\n%{http_code}", "-H", header,
                              "-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01",
                              "--data-binary", body, self.url + path])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.endswith("\n200"), r.stdout[-500:])
            self.assertIn("data:", r.stdout)

    def test_openclaw_exec_protocol(self):
        req = json.dumps({"protocolVersion": 1, "provider": "bankr", "ids": ["token"]})
        r = self.env.cli("token", "--app", "openclaw", "--openclaw-exec", input=req)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["protocolVersion"], 1)
        self.assertNotEqual(self.status(doc["values"]["token"]), 401)
        r = self.env.cli("token", "--openclaw-exec", input="not json")
        self.assertEqual(r.returncode, 2, r.stderr)


class LauncherTest(EndpointBase):
    ARGS = ["--help", "-m", "bankr/claude-haiku-4.5", "--", "two words", "", "--key", "inline", "-p", "say \"hi\" $HOME"]

    def run_held(self, tool, args=(), exit_code=42, env_extra=None, ignored=""):
        """Starts the launcher with a stand-in that waits; returns (process, record, release path).
        The launcher starts with every signal at its default but those
        named in ignored (say "HUP"), whatever the test runner ignores
        (nohup, a background job)."""
        release = os.path.join(self.env.dir, "release")
        if os.path.exists(release):
            os.unlink(release)
        env = dict(self.env.environ, **self.standin(tool, exit_code, release), **(env_extra or {}))
        argv = ["env", "--default-signal=HUP,INT,QUIT,TERM"] + (["--ignore-signal=" + ignored] if ignored else [])
        p = subprocess.Popen(argv + [CLI, tool] + list(args), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.out):
            if p.poll() is not None or time.monotonic() > deadline:
                out, err = p.communicate()
                self.fail("the stand-in did not start: %s %s" % (out, err))
            time.sleep(0.02)
        return p, self.standin_record(), release

    def test_claude_gets_url_and_a_connection_token(self):
        p, rec, release = self.run_held("claude", self.ARGS,
                                        env_extra={"BANKR_LLM_KEY": KEY, "BANKR_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY})
        try:
            self.assertEqual(rec["args"], self.ARGS)
            self.assertEqual(os.path.basename(rec["argv0"]), "claude")
            env = rec["env"]
            self.assertEqual(env["ANTHROPIC_BASE_URL"], self.url)
            token = env["ANTHROPIC_AUTH_TOKEN"]
            self.assertNotEqual(token, KEY)
            for name, value in env.items():
                self.assertNotIn(KEY, value, "the child's %s holds the key" % name)
            self.assertEqual(env["STANDIN_OUT"], self.out, "the rest of the environment is kept")
            self.assertNotEqual(self.status(token), 401)
            live = [t for t in self.tokens() if t["app"] == "claude-code"]
            self.assertEqual([t["lifetime"] for t in live], ["connection"])
        finally:
            open(release, "w").close()
            out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 42, err)
        self.assertEqual(out, "")
        self.wait_refused(token)
        self.assertEqual(self.polkit.check_calls(), [], "no polkit prompt")

    def test_exit_codes_and_signals_pass_through(self):
        for code in (0, 1, 3):
            r = self.env.cli("claude", env=self.standin("claude", code))
            self.assertEqual(r.returncode, code, r.stderr)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            os.unlink(self.out)
            p, rec, release = self.run_held("claude")
            p.send_signal(sig)
            try:
                out, err = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                state = {who: proc_state(pid) for who, pid in (("launcher", p.pid), ("tool", rec["pid"]))}
                kill_all(rec["pid"], p.pid)   # the tool holds our pipes too
                out, err = p.communicate()
                self.fail("%s: the launcher did not end: %s; its stderr: %s" % (sig.name, state, err))
            self.assertEqual(p.returncode, 128 + sig, (sig, err))
            with self.assertRaises(ProcessLookupError):
                os.kill(rec["pid"], 0)
            self.wait_refused(rec["env"]["ANTHROPIC_AUTH_TOKEN"])

    def test_a_signal_ignored_at_start_stays_ignored(self):
        # As under nohup: SIGHUP ignored by the launcher and inherited by
        # the tool; it neither ends the launcher nor is passed on, even to a
        # tool that handles SIGHUP itself. Other signals still are.
        p, rec, release = self.run_held("claude", ignored="HUP")
        try:
            self.assertTrue(int(proc_state(rec["pid"])["SigIgn"], 16) & (1 << (signal.SIGHUP - 1)),
                            "the tool does not inherit SIGHUP ignored")
            p.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertIsNone(p.poll(), "SIGHUP ended the launcher")
            os.kill(rec["pid"], 0)   # the tool is still there
        finally:
            if p.poll() is None:
                kill_all(rec["pid"], p.pid)
                p.communicate()
        os.unlink(self.out)
        p, rec, release = self.run_held("claude", ignored="HUP", env_extra={"STANDIN_CATCH_HUP": "1"})
        try:
            p.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertFalse(os.path.exists(self.out + ".hup"), "SIGHUP was passed on")
            p.send_signal(signal.SIGUSR1)   # not ignored: passed on, and ends the tool
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                kill_all(rec["pid"], p.pid)
                p.communicate()
        self.assertEqual(p.returncode, 128 + signal.SIGUSR1, err)
        self.wait_refused(rec["env"]["ANTHROPIC_AUTH_TOKEN"])

    def test_claude_settings_that_would_win_are_named(self):
        # Claude Code prefers its settings' env to the environment: say so.
        self.write(self.claude_path, json.dumps({"env": {"ANTHROPIC_AUTH_TOKEN": "mine",
                                                         "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}}) + "\n")
        r = self.env.cli("claude", "-p", "hi", env=self.standin("claude", 0))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("env.ANTHROPIC_AUTH_TOKEN", r.stderr)
        self.assertIn("env.ANTHROPIC_BASE_URL", r.stderr)
        self.assertNotIn("mine", r.stderr)
        # After setup: nothing to say.
        self.install("claude", key=None)
        r = self.env.cli("claude", "-p", "hi", env=self.standin("claude", 0))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Warning", r.stderr)

    def test_opencode_installs_the_endpoint_provider(self):
        # An env-mode entry from before is pointed at the endpoint.
        self.install("opencode", key="env")
        p, rec, release = self.run_held("opencode", ["run", "say hi"], env_extra={"BANKR_API_KEY": KEY})
        try:
            doc = json.loads(read_bytes(self.opencode_path))
            self.assertEqual(doc["provider"]["bankr"]["options"],
                             {"baseURL": self.url + "/v1", "apiKey": "{env:BANKR_LLM_TOKEN}"})
            token = rec["env"]["BANKR_LLM_TOKEN"]
            self.assertNotIn("BANKR_API_KEY", rec["env"])
            self.assertNotEqual(self.status(token), 401)
        finally:
            open(release, "w").close()
            out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 42, err)
        self.assertIn("at the local endpoint", err)
        self.wait_refused(token)


class EndpointSetupTest(EndpointBase):
    def test_previews_point_at_the_endpoint(self):
        text, path = self.preview("claude", key=None)
        self.assertEqual(path, self.claude_path)
        doc = json.loads(text)
        self.assertEqual(doc["env"]["ANTHROPIC_BASE_URL"], self.url)
        self.assertIn("token --app claude-code", doc["apiKeyHelper"])
        text, path = self.preview("openclaw", key=None)
        doc = json.loads(text)
        self.assertEqual(doc["models"]["providers"]["bankr"]["apiKey"],
                         {"source": "exec", "provider": "bankr", "id": "token"})
        self.assertEqual(doc["secrets"]["providers"]["bankr"]["command"], os.path.abspath(CLI))
        text, _ = self.preview("cursor", key=None)
        self.assertIn(self.env.gateway.url + "/v1", text, "Cursor keeps the gateway")
        self.assertNotIn(self.url, text)

    def test_claude_settings_merge(self):
        old = "bk_old_token_in_settings_0123"
        self.write(self.claude_path, json.dumps({"model": "opus", "env": {"FOO": "1", "ANTHROPIC_AUTH_TOKEN": old},
                                                 "permissions": {"allow": ["Bash(ls)"]}}, indent=2) + "\n", 0o600)
        path, backup = self.install("claude", key=None)
        self.assertEqual(path, self.claude_path)
        doc = json.loads(read_bytes(path))
        self.assertEqual(list(doc), ["model", "env", "permissions", "apiKeyHelper"])
        self.assertEqual(doc["permissions"], {"allow": ["Bash(ls)"]})
        self.assertEqual(doc["env"]["FOO"], "1")
        self.assertNotIn("ANTHROPIC_AUTH_TOKEN", doc["env"])
        self.assertTrue(backup)
        self.assertNotIn(old.encode(), read_bytes(backup))
        # The helper, run as Claude Code runs it (through a shell), gives a working token.
        r = subprocess.run(["sh", "-c", doc["apiKeyHelper"]], env=self.env.environ, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(self.status(r.stdout.strip(), "/v1/messages", "anthropic"), 401)

    def test_openclaw_exec_secret_ref_runs(self):
        path, _ = self.install("openclaw", key=None)
        prov = json.loads(read_bytes(path))["secrets"]["providers"]["bankr"]
        env = {k: self.env.environ[k] for k in prov["passEnv"] if k in self.env.environ}
        r = subprocess.run([prov["command"]] + prov["args"], env=env, capture_output=True, text=True, timeout=30,
                           input=json.dumps({"protocolVersion": 1, "provider": "bankr", "ids": ["token"]}))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(self.status(json.loads(r.stdout)["values"]["token"]), 401)

    def test_no_key_or_valid_token_on_disk(self):
        minted = []
        for tool in ("openclaw", "opencode", "claude", "cursor"):
            r = self.env.cli("setup", tool, *(["--install"] if tool != "cursor" else []))
            self.assertEqual(r.returncode, 0, (tool, r.stderr))
        doc = json.loads(read_bytes(self.claude_path))
        r = subprocess.run(["sh", "-c", doc["apiKeyHelper"]], env=self.env.environ, capture_output=True, text=True)
        minted.append(r.stdout.strip())
        minted.append(self.mint()["token"])
        p, rec, release = LauncherTest.run_held(self, "claude")
        minted.append(rec["env"]["ANTHROPIC_AUTH_TOKEN"])
        open(release, "w").close()
        p.communicate(timeout=20)
        for secret in [KEY] + minted:
            self.assertTrue(secret)
            self.assertEqual(self.env.files_containing(secret), [], "a secret on disk")
        # Anything token-like in any file under HOME is refused by the endpoint.
        words = set()
        for dirpath, _, files in os.walk(self.home):
            for name in files:
                try:
                    with open(os.path.join(dirpath, name), "rb") as f:
                        words.update(re.findall(rb"[A-Za-z0-9_\-.~+/=]{20,200}", f.read()))
                except OSError:
                    pass
        self.assertEqual(self.status(None), 401)
        for w in sorted(words)[:400]:
            self.assertEqual(self.status(w.decode()), 401, "a token that works is on disk: %r" % w[:12])


if __name__ == "__main__":
    unittest.main(verbosity=2)
