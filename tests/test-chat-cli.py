#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llm chat against a private bus, the fake gateway and the built
daemon: prompts from arguments and pipes, exact output, --json, --usage,
options, the default model, errors and exit codes, Ctrl-C, and the
interactive conversation on a pseudo-terminal."""
import json
import os
import pty
import select
import signal
import subprocess
import time
import unittest

from harness import Env, TestCase, SLOW, CLI, wait_until
from fakegw import FakeGateway, Fault

KEY = FakeGateway.DEFAULT_KEY
REPLY = "Grüße — 日本語 🎉\n  indented line\ttab\n\nlast line without newline"


class ChatCliTest(TestCase):
    service_env = {"BANKR_LLM_KEY": KEY, "BANKR_LLMD_RETRY_BASE_MS": "10"}

    def setUp(self):
        self.env_args = {"keyring": False, "service_env": self.service_env}
        super().setUp()
        self.gw = self.env.gateway

    def chat(self, *args, input=None, timeout=30):
        return self.env.cli("chat", *args, input=input, timeout=timeout)

    def last_json(self, endpoint=None):
        reqs = self.gw.requests_for(endpoint) if endpoint else [r for r in self.gw.requests if r.endpoint in ("chat", "messages")]
        return reqs[-1].json


class Basics(ChatCliTest):
    def test_pipe_prints_exactly(self):
        self.gw.stream_options = {"reply": REPLY, "chunk_sizes": "random", "seed": 4, "chunk_max": 7}
        r = self.chat("-m", "gpt-5-mini", input="what now?\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, REPLY)  # no reflow, no added newline on a pipe
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.last_json("chat")["messages"], [{"role": "user", "content": "what now?\n"}])

    def test_prompt_from_arguments_and_dash(self):
        self.gw.stream_options = {"echo": True}
        r = self.chat("-m", "gpt-5-mini", "hello", "big   world")
        self.assertEqual(r.stdout, "You said: hello big   world")
        r = self.chat("-m", "gpt-5-mini", "-", input="from stdin")
        self.assertEqual(r.stdout, "You said: from stdin")

    def test_default_model(self):
        r = self.chat("hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_json()["model"], "claude-haiku-4.5")
        self.assertEqual(len(self.gw.requests_for("messages")), 1)
        self.env.write_config({"llmUrl": self.gw.url, "defaultModel": "gemini-3-flash"})
        r = self.chat("hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_json()["model"], "gemini-3-flash")
        r = self.chat("-m", "deepseek-v3.2", "hi")
        self.assertEqual(self.last_json()["model"], "deepseek-v3.2")

    def test_options_reach_the_gateway(self):
        r = self.chat("-m", "claude-sonnet-4.5", "-s", "be terse", "--max-tokens", "123", "--temperature", "0.25",
                      "--api", "openai", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = self.last_json("chat")
        self.assertEqual(j["messages"][0], {"role": "system", "content": "be terse"})
        self.assertEqual(j["max_completion_tokens"], 123)
        self.assertEqual(j["temperature"], 0.25)

    def test_fallback(self):
        self.gw.push_fault("chat", Fault.http(503, times=None, model="gpt-5-mini"))
        r = self.chat("-m", "gpt-5-mini", "--fallback", "deepseek-v3.2", "--json", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        o = json.loads(r.stdout)
        self.assertEqual(o["info"]["model"], "deepseek-v3.2")
        self.assertEqual(o["info"]["attempts"], 4)

    def test_json(self):
        self.gw.stream_options = {"reply": REPLY}
        self.gw.usage = {"input": 10, "output": 20, "cache_read": 0, "cache_write": 0}
        r = self.chat("-m", "gpt-5-mini", "--json", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        o = json.loads(r.stdout)
        self.assertEqual(o["text"], REPLY)
        info = o["info"]
        self.assertEqual(info["model"], "gpt-5-mini")
        self.assertEqual(info["input_tokens"], 10)
        self.assertEqual(info["output_tokens"], 20)
        self.assertAlmostEqual(info["cost_usd"], (10 * 0.25 + 20 * 2) / 1e6)
        for k in ("stop_reason", "cache_read_tokens", "cache_write_tokens", "attempts", "latency_first_ms",
                  "latency_total_ms"):
            self.assertIn(k, info)

    def test_usage(self):
        self.gw.usage = {"input": 10, "output": 20, "cache_read": 5, "cache_write": 1}
        r = self.chat("-m", "claude-haiku-4.5", "--usage", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "Hello, world!")
        self.assertIn("Tokens:  10 input, 20 output, 5 cache read, 1 cache write", r.stderr)
        self.assertIn("Cost:    $0.000112", r.stderr)  # (10*1 + 20*5 + 5*0.1 + 1*1.25) / 1e6
        self.assertRegex(r.stderr, r"Latency: first token \d+ ms, total \d+ ms \(1 attempt\)")

    def test_help(self):
        r = self.chat("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("claude-haiku-4.5", r.stdout)
        self.assertIn("--fallback", r.stdout)
        r = self.env.cli("--help")
        self.assertIn("chat", r.stdout)


class Errors(ChatCliTest):
    def test_exit_codes(self):
        r = self.chat("-m", "no-such-model", "hi")
        self.assertEqual(r.returncode, 9, r.stderr)
        self.assertTrue(r.stderr.startswith("Failed to chat: "), r.stderr)
        self.assertIn("no-such-model", r.stderr)
        self.gw.balance = 0
        r = self.chat("-m", "gpt-5-mini", "hi")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("credits", r.stderr)
        self.gw.balance = 10
        self.gw.llm_keys = {"other"}
        r = self.chat("-m", "gpt-5-mini", "hi")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.gw.llm_keys = {KEY}
        self.gw.push_fault("chat", Fault.http(500, times=None))
        r = self.chat("-m", "gpt-5-mini", "hi")
        self.assertEqual(r.returncode, 8, r.stderr)

    def test_partial_answer(self):
        self.gw.stream_options = {"reply": "one two three", "no_terminator": True}
        r = self.chat("-m", "gpt-5-mini", "hi")
        self.assertEqual(r.returncode, 8, r.stderr)
        self.assertEqual(r.stdout, "one two three")
        self.assertIn("incomplete", r.stderr)
        r = self.chat("-m", "gpt-5-mini", "--json", "hi")
        o = json.loads(r.stdout)
        self.assertEqual(o["text"], "one two three")
        self.assertEqual(o["error"]["name"], "bot.bankr.LLM1.Error.GatewayError")
        self.assertTrue(o["error"]["partial"])

    def test_usage_errors(self):
        for args in (["--max-tokens", "0", "hi"], ["--max-tokens", "x", "hi"], ["--temperature", "3", "hi"],
                     ["--api", "soap", "hi"], ["--bogus"], ["-m", "", "hi"],
                     ["--fallback", "a", "--fallback", "b", "--fallback", "c", "--fallback", "d", "--fallback", "e", "hi"]):
            r = self.chat(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertTrue(r.stderr, args)
        r = self.chat("-m", "gpt-5-mini", input="")
        self.assertEqual(r.returncode, 2)
        self.assertIn("empty", r.stderr)
        r = self.chat("-m", "gpt-5-mini", input=b"\xff\xfe bad")
        self.assertEqual(r.returncode, 2)
        self.assertIn("UTF-8", r.stderr)
        r = self.chat("-m", "bad model", "hi")  # the service says InvalidArgs
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("whitespace", r.stderr)
        self.assertEqual(self.gw.requests_for("chat"), [])


class NoKey(ChatCliTest):
    service_env = {}

    def test_no_key(self):
        r = self.chat("-m", "gpt-5-mini", "hi")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("bankr-llm key set", r.stderr)


class Interrupt(ChatCliTest):
    def test_ctrl_c_cancels(self):
        self.gw.stream_options = {"reply": " ".join("w%d" % i for i in range(300)), "drip": 0.05}
        with subprocess.Popen([CLI, "chat", "-m", "gpt-5-mini", "go"], env=self.env.environ, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as p:
            try:
                first = p.stdout.read(2)  # streamed before the end
                self.assertTrue(first.startswith(b"w"))
                p.send_signal(signal.SIGINT)
                _, err = p.communicate(timeout=10 * SLOW)
            finally:
                if p.poll() is None:
                    p.kill()
        self.assertEqual(p.returncode, 130, err)
        self.gw.wait_for(lambda: self.gw.disconnects, timeout=3)
        self.assertEqual(self.gw.disconnects[0].endpoint, "chat")
        wait_until(lambda: "cancelled" in self.env.log(), timeout=3, what="the service to log the cancel")


class Interactive(ChatCliTest):
    def read_until(self, fd, needle, timeout=10):
        buf = b""
        end = time.monotonic() + timeout * SLOW
        while needle not in buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in %r" % (needle, buf))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                buf += data
        return buf

    def test_conversation_keeps_history(self):
        self.gw.stream_options = {"echo": True}
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(CLI, [CLI, "chat", "-m", "gpt-5-mini", "-s", "sys"], self.env.environ)
        try:
            out = self.read_until(fd, b"> ")
            os.write(fd, b"first question\n")
            out = self.read_until(fd, b"> ")
            self.assertIn(b"You said: first question", out)
            os.write(fd, b"second one\n")
            out = self.read_until(fd, b"> ")
            self.assertIn(b"You said: second one", out)
            os.write(fd, b"\n")
            _, status = os.waitpid(pid, 0)
            pid = 0
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        finally:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
        msgs = self.last_json("chat")["messages"]
        self.assertEqual(msgs, [{"role": "system", "content": "sys"},
                                {"role": "user", "content": "first question"},
                                {"role": "assistant", "content": "You said: first question"},
                                {"role": "user", "content": "second one"}])


class FailedWrites(ChatCliTest):
    def test_full_stdout_fails_and_cancels(self):
        self.gw.stream_options = {"reply": REPLY}
        r = self.env.run(["sh", "-c", 'exec "$0" "$@" >/dev/full', CLI, "chat", "-m", "gpt-5-mini", "hi"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "Failed to write output: No space left on device\n")
        r = self.env.run(["sh", "-c", 'exec "$0" "$@" >&-', CLI, "chat", "-m", "gpt-5-mini", "hi"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "Failed to write output: Bad file descriptor\n")

    def test_closed_pipe_is_quiet(self):
        # "| head": the reader leaves on purpose; no message, exit 1, request cancelled.
        self.gw.stream_options = {"reply": " ".join("w%d" % i for i in range(300)), "drip": 0.02}
        with subprocess.Popen([CLI, "chat", "-m", "gpt-5-mini", "go"], env=self.env.environ, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as p:
            try:
                self.assertTrue(p.stdout.read(2).startswith(b"w"))
                p.stdout.close()
                _, err = p.communicate(timeout=10 * SLOW)
            finally:
                if p.poll() is None:
                    p.kill()
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(err, b"")
        self.gw.wait_for(lambda: self.gw.disconnects, timeout=5)


EVIL = ("Hi\x1b]52;c;ZWNobyBwd25lZA==\x07 there\x1b]0;owned\x1b\\\x1b[2J\x1b[H"
        "\u009b31m\u009d0;t\u009c \x7f\r\x08 Grüße\t日本 🎉\nend")
EVIL_SHOWN = ("Hi^[]52;c;ZWNobyBwd25lZA==^G there^[]0;owned^[\\^[[2J^[[H"
              "^[[31m^[]0;t^[\\ ^?^M^H Grüße\t日本 🎉\nend")


def run_on_pty(argv, env, timeout=20):
    """Runs argv with stdin, stdout and stderr on a pseudo-terminal (no
    output processing, so bytes arrive as written); returns (exit code, bytes)."""
    import termios
    import tty
    pid, fd = pty.fork()
    if pid == 0:
        try:
            tty.setraw(0)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    end = time.monotonic() + timeout * SLOW
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                out += data
        _, status = os.waitpid(pid, 0)
        pid = 0
        return os.waitstatus_to_exitcode(status), out
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


class TerminalFilter(ChatCliTest):
    def pty_chat(self, *args):
        return run_on_pty([CLI, "chat", "-m", "gpt-5-mini"] + list(args), self.env.environ)

    def test_escape_sequences_are_inert_on_a_terminal(self):
        # Whole, and cut into one-character deltas (sequences split across signals).
        for opts in ({"reply": EVIL}, {"deltas": list(EVIL)}, {"reply": EVIL, "chunk_sizes": "random", "chunk_max": 3}):
            self.gw.stream_options = opts
            code, out = self.pty_chat("hi")
            self.assertEqual(code, 0, out)
            self.assertNotIn(b"\x1b", out, opts)
            self.assertNotIn(b"\x07", out)
            self.assertNotIn("\u009b".encode(), out)
            self.assertNotIn("\u009d".encode(), out)
            self.assertEqual(out.decode(), EVIL_SHOWN + "\n", opts)  # plus the fresh line for the prompt

    def test_raw_and_pipes_are_exact(self):
        self.gw.stream_options = {"reply": EVIL}
        code, out = self.pty_chat("--raw", "hi")
        self.assertEqual(code, 0, out)
        self.assertEqual(out.decode(), EVIL + "\n")
        r = self.chat("-m", "gpt-5-mini", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, EVIL)
        code, out = self.pty_chat("--json", "hi")
        self.assertEqual(json.loads(out)["text"], EVIL)  # escaped by JSON…
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn("\u009b".encode(), out)  # …C1 controls too, on a terminal
        self.assertNotIn(b"\x7f", out)
        r = self.chat("-m", "gpt-5-mini", "--json", "hi")
        self.assertIn("\u009b", r.stdout)  # a pipe gets json-c's text as it is

    def test_gateway_error_message_is_inert(self):
        self.gw.stream_options = {"reply": "one two", "error_after": 1,
                                  "error_message": "upstream \x1b]0;owned\x07 failed \x1b[2J"}
        code, out = self.pty_chat("hi")
        self.assertEqual(code, 8, out)
        self.assertIn(b"Failed to chat", out)
        self.assertNotIn(b"\x1b", out)

    def test_models_table_is_inert(self):
        # The service refuses C0 controls in names; C1 controls (8-bit CSI,
        # OSC, ST) get through it, and some terminals execute them.
        evil = "Evil\u009b2J\u009d0;owned\u009c Model"
        for m in self.gw.models:
            if m["id"] == "gpt-5-mini":
                m["name"] = evil
        r = self.env.cli("models", "--refresh")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(evil, r.stdout)  # a pipe gets the data as it is
        code, out = run_on_pty([CLI, "models"], self.env.environ)
        self.assertEqual(code, 0, out)
        self.assertIn("Evil^[[2J^[]0;owned^[\\ Model".encode(), out)
        self.assertNotIn("\u009b".encode(), out)

if __name__ == "__main__":
    unittest.main(verbosity=2)
