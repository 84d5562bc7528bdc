#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Chat and Request interfaces against a private bus, the real keyring, the
fake gateway and the built daemon: streaming in both wire formats, failover,
errors, cancellation, ownership, concurrency, limits and bad arguments."""
import json
import os
import subprocess
import time
import unittest

import dbus

from harness import Env, TestCase, SLOW, wait_until, OBJ
from fakegw import FakeGateway, Fault, split_deltas
from chatclient import ChatClient, error_name, run_until, spin

KEY = FakeGateway.DEFAULT_KEY
E = "bot.bankr.LLM1.Error."
INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
OPENAI_MODEL = "gpt-5-mini"
ANTHROPIC_MODEL = "claude-haiku-4.5"
PRICES = {  # the fake's pricing, USD per 1M tokens: input, output, cache_read, cache_write
    OPENAI_MODEL: (0.25, 2, 0.025, 0),
    ANTHROPIC_MODEL: (1, 5, 0.1, 1.25),
}
# Multi-byte UTF-8 of every length, so that splits land inside sequences.
UTF8_REPLY = "Grüße aus Köln — naïve café, 日本語のテキスト, emoji 🎉🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 end.\nSecond line: ½ ¾ ∑ ∞."


def U(n):
    return dbus.UInt32(n)


class ChatTest(TestCase):
    service_env = {}
    keyring = False

    def setUp(self):
        env = {"BANKR_LLM_KEY": KEY, "BANKR_LLMD_RETRY_BASE_MS": "20"}
        env.update(self.service_env)
        self.env_args = {"keyring": self.keyring, "service_env": env}
        super().setUp()
        self.gw = self.env.gateway
        self.clients = []
        self.c = self.client()

    def tearDown(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        super().tearDown()

    def client(self):
        c = ChatClient(self.env)
        self.clients.append(c)
        return c

    def active(self):
        return self.c.get(OBJ, "ActiveRequests", iface="bot.bankr.LLM1.Chat")

    def run_one(self, model=OPENAI_MODEL, msgs=(("user", "hello"),), opts=None, timeout=15):
        path = self.c.start(model, list(msgs), opts)
        return path, self.c.wait(path, timeout * SLOW)


class Streaming(ChatTest):
    USAGE = {"input": 11, "output": 7, "cache_read": 3, "cache_write": 2}

    def check_stream(self, model, transport, extra=None):
        self.gw.usage = dict(self.USAGE)
        opts = {"reply": UTF8_REPLY, "crlf": True, "comments": True}
        opts.update(transport)
        opts.update(extra or {})
        self.gw.stream_options = opts
        path, res = self.run_one(model, [("system", "be brief"), ("user", "say something")])
        what = "%s %r" % (model, opts)
        self.assertIsNone(res.error, what)
        self.assertEqual(res.text, UTF8_REPLY, what)
        for d in res.deltas:
            self.assertTrue(d, what)
        info = res.info
        self.assertEqual(info["model"], model)
        self.assertEqual(info["stop_reason"], "end_turn")
        self.assertEqual((info["input_tokens"], info["output_tokens"], info["cache_read_tokens"],
                          info["cache_write_tokens"]), (11, 7, 3, 2), what)
        p = PRICES[model]
        cost = (11 * p[0] + 7 * p[1] + 3 * p[2] + 2 * p[3]) / 1e6
        self.assertAlmostEqual(info["cost_usd"], cost, places=12)
        self.assertEqual(info["attempts"], 1)
        self.assertGreater(info["latency_first_ms"], 0)
        self.assertGreaterEqual(info["latency_total_ms"], info["latency_first_ms"])
        self.assertEqual(self.c.get(path, "Text"), UTF8_REPLY)
        self.assertEqual(self.c.get(path, "State"), "finished")
        # PropertiesChanged(State) came before the first Delta and after the last.
        self.assertEqual(res.order[0], "PropertiesChanged")
        self.assertEqual(res.props[0], {"State": "streaming"})
        self.assertEqual(res.props[-1], {"State": "finished"})
        self.assertEqual(res.order[-1], "Finished")
        return res

    def test_every_piece_size_both_formats(self):
        sizes = list(range(1, 40)) + [47, 64, 100, 128, 257, 512, 1000, 4096, 1 << 20]
        for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
            for n in sizes:
                self.check_stream(model, {"chunk_sizes": [n]})

    def test_random_pieces_both_formats(self):
        for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
            for seed in range(12):
                self.check_stream(model, {"chunk_sizes": "random", "seed": seed, "chunk_max": 1 + seed * 7})

    def test_line_endings_and_noise(self):
        variants = [{"cr": True}, {"mixed_eol": True}, {"bom": True}, {"multiline_data": True},
                    {"no_space": True}, {"ascii": True}, {"unknown_events": True}, {"crlf": False}]
        for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
            for v in variants:
                self.check_stream(model, {"chunk_sizes": "random", "seed": 3, "chunk_max": 9}, v)

    def test_many_deltas_one_signal_stream(self):
        # Deltas may be merged, never reordered, dropped or duplicated.
        deltas = ["%d," % i for i in range(3000)]
        self.gw.stream_options = {"deltas": deltas}
        _, res = self.run_one()
        self.assertIsNone(res.error)
        self.assertEqual(res.text, "".join(deltas))

    def test_stop_reasons(self):
        self.gw.stream_options = {"reply": "one two three four five"}
        _, res = self.run_one(OPENAI_MODEL, opts={"max_tokens": U(2)})
        self.assertEqual(res.info["stop_reason"], "max_tokens")
        self.assertEqual(res.text, "one two ")
        _, res = self.run_one(ANTHROPIC_MODEL, opts={"stop": ["four"]})
        self.assertEqual(res.info["stop_reason"], "stop_sequence")
        self.assertEqual(res.text, "one two three ")


class Routing(ChatTest):
    def test_anthropic_route(self):
        self.c.complete(ANTHROPIC_MODEL, [("system", "sys msg"), ("user", "hi")],
                        {"system": "opt system", "temperature": 0.5, "stop": ["x"]})
        (req,) = self.gw.requests_for("messages")
        self.assertEqual(req.path, "/v1/messages")
        self.assertEqual(req.headers["x-api-key"], KEY)
        self.assertNotIn("authorization", req.headers)
        self.assertEqual(req.headers["anthropic-version"], "2023-06-01")
        j = req.json
        self.assertEqual(j["system"], "opt system\n\nsys msg")
        self.assertEqual(j["messages"], [{"role": "user", "content": "hi"}])
        self.assertEqual(j["max_tokens"], 4096)
        self.assertTrue(j["stream"])
        self.assertEqual(j["stop_sequences"], ["x"])
        self.assertEqual(j["temperature"], 0.5)

    def test_openai_route(self):
        self.c.complete(OPENAI_MODEL, [("user", "hi")], {"system": "opt system", "max_tokens": U(77), "top_p": 0.5})
        (req,) = self.gw.requests_for("chat")
        self.assertEqual(req.path, "/v1/chat/completions")
        self.assertEqual(req.headers["authorization"], "Bearer " + KEY)
        self.assertNotIn("x-api-key", req.headers)
        j = req.json
        self.assertEqual(j["messages"][0], {"role": "system", "content": "opt system"})
        self.assertEqual(j["stream_options"], {"include_usage": True})
        self.assertEqual(j["max_completion_tokens"], 77)
        self.assertEqual(j["top_p"], 0.5)

    def test_forced_api(self):
        text, info = self.c.complete(ANTHROPIC_MODEL, [("user", "hi")], {"api": "openai"})
        self.assertEqual(text, "Hello, world!")
        self.assertEqual(len(self.gw.requests_for("chat")), 1)
        self.c.complete(OPENAI_MODEL, [("user", "hi")], {"api": "anthropic"})
        self.assertEqual(len(self.gw.requests_for("messages")), 1)
        self.c.complete("gemini-3-flash", [("user", "hi")], {"api": "auto"})
        self.assertEqual(len(self.gw.requests_for("chat")), 2)

    def test_unknown_record_claude_prefix_goes_to_messages(self):
        self.gw.models.append({"id": "claude-new-9", "object": "model", "owned_by": "anthropic"})
        self.c.complete("claude-new-9", [("user", "hi")])
        self.assertEqual(len(self.gw.requests_for("messages")), 1)

    def test_complete_through_busctl(self):
        # busctl as a client on purpose: its own argument syntax.
        r = self.env.busctl("--json=short", "call", "bot.bankr.LLM1", OBJ, "bot.bankr.LLM1.Chat", "Complete",
                            "sa(ss)a{sv}", OPENAI_MODEL, "1", "user", "hi", "1", "max_tokens", "u", "50")
        out = json.loads(r.stdout)["data"]
        self.assertEqual(out[0], "Hello, world!")
        self.assertEqual(out[1]["model"]["data"], OPENAI_MODEL)
        self.assertEqual(out[1]["attempts"]["data"], 1)
        self.assertEqual(out[1]["stop_reason"]["data"], "end_turn")
        r = self.env.run(["busctl", "--user", "call", "bot.bankr.LLM1", OBJ, "bot.bankr.LLM1.Chat", "Complete",
                          "sa(ss)a{sv}", "nope-model-x", "1", "user", "hi", "0"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("does not know the model", r.stderr)


class Failures(ChatTest):
    def test_mid_stream_error_event(self):
        for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
            self.gw.stream_options = {"reply": "one two three four", "error_after": 2,
                                      "error_type": "invalid_request_error", "error_message": "boom upstream"}
            path, res = self.run_one(model)
            self.assertEqual(res.text, "one two ")
            name, msg, partial = res.error
            self.assertEqual(name, E + "GatewayError")
            self.assertIn("boom upstream", msg)
            self.assertTrue(partial)
            self.assertEqual(self.c.get(path, "State"), "failed")
            self.assertEqual(res.info, None)

    def test_error_event_before_text_is_retried(self):
        self.gw.push_fault("messages", Fault(error_after=0, times=2))
        _, res = self.run_one(ANTHROPIC_MODEL)
        self.assertIsNone(res.error)
        self.assertEqual(res.text, "Hello, world!")
        self.assertEqual(res.info["attempts"], 3)

    def test_dropped_connection_mid_stream(self):
        self.gw.stream_options = {"reply": "alpha beta gamma delta epsilon zeta eta theta", "drop_after": 500}
        _, res = self.run_one(OPENAI_MODEL)
        self.assertTrue(res.deltas)
        self.assertTrue("alpha beta gamma delta epsilon zeta eta theta".startswith(res.text))
        self.assertNotEqual(res.text, "alpha beta gamma delta epsilon zeta eta theta")
        name, msg, partial = res.error
        self.assertEqual(name, E + "GatewayUnavailable")
        self.assertTrue(partial)
        self.assertIn("cut short", msg)
        self.assertEqual(len(self.gw.requests_for("chat")), 1)  # never retried after text

    def test_missing_terminator(self):
        for model in (OPENAI_MODEL, ANTHROPIC_MODEL):
            self.gw.stream_options = {"no_terminator": True}
            _, res = self.run_one(model)
            self.assertEqual(res.text, "Hello, world!")
            name, msg, partial = res.error
            self.assertEqual(name, E + "GatewayError")
            self.assertTrue(partial)
            self.assertIn("ended before it was complete", msg)

    def test_429_retry_after_honoured(self):
        self.gw.push_fault("chat", Fault.http(429, headers={"Retry-After": "1"}))
        _, res = self.run_one()
        self.assertIsNone(res.error)
        self.assertEqual(res.info["attempts"], 2)
        a, b = self.gw.requests_for("chat")
        self.assertEqual(a.status, 429)
        self.assertGreaterEqual(b.time - a.time, 0.95)
        self.assertLess(b.time - a.time, 3 * SLOW)

    def test_retry_after_ms(self):
        self.gw.push_fault("chat", Fault.http(529, headers={"retry-after-ms": "400"}))
        _, res = self.run_one()
        self.assertIsNone(res.error)
        a, b = self.gw.requests_for("chat")
        self.assertGreaterEqual(b.time - a.time, 0.38)

    def test_retry_after_beyond_cap_is_not_waited(self):
        self.gw.push_fault("chat", Fault.http(429, headers={"Retry-After": "120"}, times=None))
        t = time.monotonic()
        _, res = self.run_one()
        self.assertLess(time.monotonic() - t, 5)
        self.assertEqual(res.error[0], E + "RateLimited")
        self.assertIn("rate limiting", res.error[1])
        self.assertEqual(len(self.gw.requests_for("chat")), 1)

    def test_retry_after_past_the_deadline_moves_to_the_fallback(self):
        # Waiting 3 s would overrun timeout_s=2: the fallback is asked at once.
        self.gw.push_fault("chat", Fault.http(429, headers={"Retry-After": "3"}, model=OPENAI_MODEL))
        t = time.monotonic()
        _, res = self.run_one(OPENAI_MODEL, opts={"fallback_models": ["deepseek-v3.2"], "timeout_s": U(2)})
        self.assertIsNone(res.error)
        self.assertEqual(res.info["model"], "deepseek-v3.2")
        self.assertEqual(res.info["attempts"], 2)
        self.assertLess(time.monotonic() - t, 1.5 * SLOW)

    def test_429_after_retries(self):
        self.gw.push_fault("chat", Fault.http(429, message="slow down please", times=None))
        _, res = self.run_one()
        name, msg, partial = res.error
        self.assertEqual(name, E + "RateLimited")
        self.assertIn("slow down please", msg)
        self.assertIn("3 attempts", msg)
        self.assertFalse(partial)
        self.assertEqual(len(self.gw.requests_for("chat")), 3)

    def test_5xx_twice_then_success(self):
        self.gw.push_fault("chat", Fault.http(502, times=1))
        self.gw.push_fault("chat", Fault.html(503, times=1))
        _, res = self.run_one()
        self.assertIsNone(res.error)
        self.assertEqual(res.info["attempts"], 3)
        times = [r.time for r in self.gw.requests_for("chat")]
        self.assertEqual(len(times), 3)
        # Exponential backoff from a 20 ms base with ±25 % jitter.
        self.assertGreaterEqual(times[1] - times[0], 0.014)
        self.assertGreaterEqual(times[2] - times[1], 0.029)

    def test_5xx_forever_fallback_then_unavailable(self):
        self.gw.push_fault("*", Fault.http(503, message="all down", times=None))
        path, res = self.run_one(OPENAI_MODEL, opts={"fallback_models": [ANTHROPIC_MODEL]})
        name, msg, partial = res.error
        self.assertEqual(name, E + "GatewayUnavailable")
        self.assertIn("all down", msg)
        self.assertIn(ANTHROPIC_MODEL, msg)
        self.assertFalse(partial)
        self.assertEqual(len(self.gw.requests_for("chat")), 3)
        self.assertEqual(len(self.gw.requests_for("messages")), 3)
        self.assertEqual(self.c.get(path, "Model"), ANTHROPIC_MODEL)
        self.assertIn({"Model": ANTHROPIC_MODEL}, res.props)

    def test_fallback_succeeds(self):
        self.gw.push_fault("chat", Fault.http(500, times=None, model=OPENAI_MODEL))
        path, res = self.run_one(OPENAI_MODEL, opts={"fallback_models": ["deepseek-v3.2", ANTHROPIC_MODEL]})
        self.assertIsNone(res.error)
        self.assertEqual(res.info["model"], "deepseek-v3.2")
        self.assertEqual(res.info["attempts"], 4)
        self.assertEqual(self.c.get(path, "Model"), "deepseek-v3.2")

    def test_resend_on_a_reused_connection_is_counted(self):
        # A gateway closes a kept-alive connection right after reading the
        # POST; libcurl sends it again on a new one by itself. Every POST the
        # gateway saw is an attempt.
        _, res = self.run_one()
        self.assertIsNone(res.error)
        self.gw.clear_requests()
        self.gw.push_fault("chat", Fault(close=True, reused_only=True))
        _, res = self.run_one()
        self.assertIsNone(res.error)
        self.assertEqual(self.gw.pending_faults("chat"), [])
        self.assertEqual(len(self.gw.requests_for("chat")), 2)
        self.assertEqual(res.info["attempts"], 2)

    def test_resends_count_against_the_attempts(self):
        _, res = self.run_one()
        self.assertIsNone(res.error)
        self.gw.clear_requests()
        self.gw.push_fault("chat", Fault(close=True, times=None))
        _, res = self.run_one()
        name, msg, _ = res.error
        self.assertEqual(name, E + "GatewayUnavailable")
        posts = len(self.gw.requests_for("chat"))
        self.assertEqual(posts, 3)
        self.assertIn("(%d attempts.)" % posts, msg)

    def test_connection_refused(self):
        self.env.restart_service({"BANKR_LLM_URL": "http://127.0.0.1:9"})
        self.c = self.client()
        _, res = self.run_one()
        name, msg, partial = res.error
        self.assertEqual(name, E + "GatewayUnavailable")
        self.assertIn("127.0.0.1:9", msg)
        self.assertIn("3 attempts", msg)

    def test_402_payment_required(self):
        self.gw.balance = 0
        _, res = self.run_one()
        name, msg, _ = res.error
        self.assertEqual(name, E + "PaymentRequired")
        self.assertIn("bankr-llm credits add", msg)
        self.assertEqual(len(self.gw.requests_for("chat")), 1)
        msg = self.assertBusError(E + "PaymentRequired", self.c.complete, ANTHROPIC_MODEL, [("user", "hi")])
        # The Credits interface (when present) moves to "exhausted" at once.
        try:
            state = self.c.get(OBJ, "State", iface="bot.bankr.LLM1.Credits")
        except dbus.exceptions.DBusException:
            state = None
        if state is not None:
            self.assertEqual(state, "exhausted")

    def test_401_unauthorized(self):
        self.gw.llm_keys = {"bk_some_other_key"}
        _, res = self.run_one()
        name, msg, _ = res.error
        self.assertEqual(name, E + "Unauthorized")
        self.assertIn("Invalid API key", msg)
        self.assertNotIn(KEY, msg)
        self.assertEqual(len(self.gw.requests_for("chat")), 1)
        self.assertBusError(E + "Unauthorized", self.c.complete, ANTHROPIC_MODEL, [("user", "hi")])

    def test_key_echoed_by_gateway_is_scrubbed(self):
        self.gw.push_fault("chat", Fault.http(401, message="bad key " + KEY + " rejected"))
        _, res = self.run_one()
        self.assertNotIn(KEY, res.error[1])
        self.assertIn("bad key *** rejected", res.error[1])
        self.assertNotIn(KEY, self.env.log())

    def test_key_echoed_without_its_last_character_is_scrubbed(self):
        self.gw.push_fault("chat", Fault.http(401, message="key " + KEY[:-1] + " is not valid"))
        _, res = self.run_one()
        self.assertIn("key *** is not valid", res.error[1])
        self.assertNotIn(KEY[:10], self.env.log())

    def test_key_cut_by_the_message_cap_is_scrubbed(self):
        # Gateway messages are capped at 300 bytes: a key quoted at the cut
        # must not leave its first half behind.
        self.gw.push_fault("chat", Fault.http(401, message="x" * 285 + " " + KEY))
        _, res = self.run_one()
        self.assertEqual(res.error[0], E + "Unauthorized")
        self.assertNotIn(KEY[:10], res.error[1])
        self.assertIn("***", res.error[1])
        self.assertNotIn(KEY[:10], self.env.log())

    def test_answered_model_not_utf8(self):
        # A model name with a broken UTF-8 byte must not keep Finished (or
        # Complete's reply) from being sent.
        chunk = (b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt\xff-x","choices":'
                 b'[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}\n\n')
        body = chunk % (b"hi", b"null") + chunk % (b"", b'"stop"') + b"data: [DONE]\n\n"
        for _ in range(2):
            self.gw.push_fault("chat", Fault(status=200, body=body, content_type="text/event-stream"))
        _, res = self.run_one(timeout=5)
        self.assertIsNone(res.error)
        self.assertEqual(res.text, "hi")
        self.assertEqual(res.info["model"], OPENAI_MODEL)
        text, info = self.c.complete(OPENAI_MODEL, [("user", "hi")], timeout=10)
        self.assertEqual(text, "hi")
        self.assertEqual(info["model"], OPENAI_MODEL)

    def test_answered_model_equal_to_the_key_is_scrubbed(self):
        chunk = ('data: {"id":"c1","object":"chat.completion.chunk","model":"%s","choices":'
                 '[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}\n\n')
        body = (chunk % (KEY, "hi", "null") + chunk % (KEY, "", '"stop"') + "data: [DONE]\n\n").encode()
        self.gw.push_fault("chat", Fault(status=200, body=body, content_type="text/event-stream"))
        _, res = self.run_one(timeout=5)
        self.assertIsNone(res.error)
        self.assertEqual(res.info["model"], "***")
        self.assertNotIn(KEY, self.env.log())

    def test_unknown_model(self):
        _, res = self.run_one("claude-haiku-4.6")
        name, msg, _ = res.error
        self.assertEqual(name, E + "ModelNotFound")
        self.assertIn("claude-haiku-4.6", msg)
        self.assertIn("claude-haiku-4.5", msg)  # a close match is named
        self.assertEqual(len(self.gw.requests_for("messages")), 1)

    def test_bad_request(self):
        self.gw.push_fault("chat", Fault.http(400, message="messages: too weird"))
        _, res = self.run_one()
        self.assertEqual(res.error[0], E + "GatewayError")
        self.assertIn("too weird", res.error[1])

    def test_first_byte_timeout(self):
        self.gw.push_fault("chat", Fault(delay=3, times=None))
        _, res = self.run_one(opts={"first_byte_timeout_ms": U(300)})
        name, msg, _ = res.error
        self.assertEqual(name, E + "Timeout")
        self.assertIn("first-byte", msg)
        self.assertEqual(len(self.gw.requests_for("chat")), 3)

    def test_idle_timeout_after_text(self):
        # The first piece holds some text; the next one comes too late.
        self.gw.stream_options = {"reply": "a b c d e f", "drip": 1.5, "chunk_sizes": [700, 100000]}
        _, res = self.run_one(opts={"idle_timeout_ms": U(400)})
        name, msg, partial = res.error
        self.assertEqual(name, E + "Timeout")
        self.assertIn("idle", msg)
        self.assertTrue(partial)

    def test_idle_timeout_is_not_reset_by_a_trickle(self):
        # One byte every 50 ms: bytes keep coming, but no complete event for
        # seconds. The idle timeout ends it, not timeout_s.
        self.gw.stream_options = {"reply": "a b c d e f", "drip": 0.05, "chunk_sizes": [1]}
        t = time.monotonic()
        _, res = self.run_one(opts={"idle_timeout_ms": U(500), "timeout_s": U(6)}, timeout=20)
        name, msg, partial = res.error
        self.assertEqual(name, E + "Timeout")
        self.assertIn("idle timeout", msg)
        self.assertLess(time.monotonic() - t, 4.5 * SLOW)

    def test_idle_timeout_counts_events(self):
        # Events every 100 ms under a 400 ms idle timeout, one byte at a time
        # within each: the answer completes.
        self.gw.stream_options = {"reply": "a b c d e f g h", "drip": 0.1}
        _, res = self.run_one(opts={"idle_timeout_ms": U(400)})
        self.assertIsNone(res.error)
        self.assertEqual(res.text, "a b c d e f g h")

    def test_overall_timeout(self):
        self.gw.stream_options = {"reply": "a b c d e f g h i j", "drip": 0.3}
        t = time.monotonic()
        _, res = self.run_one(opts={"timeout_s": U(1)})
        self.assertEqual(res.error[0], E + "Timeout")
        self.assertIn("timeout_s", res.error[1])
        self.assertTrue(res.error[2])
        self.assertLess(time.monotonic() - t, 2.5 * SLOW)


class Ownership(ChatTest):
    service_env = {"BANKR_LLMD_REQUEST_LINGER_MS": "1500"}

    def test_cancel_mid_stream(self):
        self.gw.stream_options = {"reply": " ".join("w%d" % i for i in range(200)), "drip": 0.05}
        path = self.c.start(OPENAI_MODEL, [("user", "hi")])
        self.c.wait_deltas(path, 2)
        self.assertEqual(self.active(), 1)
        self.c.cancel(path)
        res = self.c.wait(path)
        self.assertEqual(res.error[0], E + "Cancelled")
        self.assertTrue(res.error[2])
        self.assertEqual(self.c.get(path, "State"), "cancelled")
        self.assertEqual(self.active(), 0)
        self.gw.wait_for(lambda: self.gw.disconnects, timeout=3)
        self.assertEqual(self.gw.disconnects[0].endpoint, "chat")
        n = len(res.deltas)
        spin(0.3)
        self.assertEqual(len(res.deltas), n)  # nothing after the end
        self.c.cancel(path)  # cancelling again is fine

    def test_cancel_by_other_client_refused(self):
        self.gw.stream_options = {"reply": "a b c d e f g h", "drip": 0.1}
        path = self.c.start(OPENAI_MODEL, [("user", "hi")])
        other = self.client()
        self.assertBusError(E + "NotAuthorized", other.cancel, path)
        self.assertBusError(E + "NotAuthorized", other.get, path, "Text")
        self.assertIn(other.get(path, "State"), ("pending", "streaming"))
        res = self.c.wait(path)
        self.assertIsNone(res.error)
        self.assertEqual(res.text, "a b c d e f g h")

    def test_owner_leaving_cancels(self):
        self.gw.stream_options = {"reply": " ".join("w%d" % i for i in range(200)), "drip": 0.05}
        a = self.client()
        path = a.start(OPENAI_MODEL, [("user", "hi")])
        a.wait_deltas(path, 2)
        self.assertEqual(self.active(), 1)
        t = time.monotonic()
        a.close()
        self.gw.wait_for(lambda: self.gw.disconnects, timeout=3)
        self.assertLess(time.monotonic() - t, 1.0 * SLOW)
        wait_until(lambda: self.active() == 0, timeout=3, what="ActiveRequests to drop")
        # Its object goes at once: nobody else may read it.
        wait_until(lambda: self._gone(path), timeout=3, what="the object to go")

    def test_owner_leaving_before_start_is_processed(self):
        self.gw.stream_options = {"drip": 0.05, "reply": " ".join("w%d" % i for i in range(100))}
        a = self.client()
        a.start_async(OPENAI_MODEL, [("user", "hi")], {}, lambda p: None, lambda e: None)
        a.bus.flush()
        a.close()
        self.gw.wait_for(lambda: self.gw.disconnects, timeout=5)
        wait_until(lambda: self.active() == 0, timeout=3, what="ActiveRequests to drop")

    def _gone(self, path):
        try:
            self.c.get(path, "State")
            return False
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name() in ("org.freedesktop.DBus.Error.UnknownObject",
                                         "org.freedesktop.DBus.Error.UnknownMethod",
                                         "org.freedesktop.DBus.Error.UnknownInterface")

    def test_linger_then_gone(self):
        path, res = self.run_one()
        self.assertEqual(self.c.get(path, "Text"), "Hello, world!")
        self.assertFalse(self._gone(path))
        wait_until(lambda: self._gone(path), timeout=5, what="the object to go after its linger")
        p2, _ = self.run_one()
        self.assertGreater(int(p2.rsplit("/", 1)[1]), int(path.rsplit("/", 1)[1]))

    def test_other_client_receives_nothing(self):
        spy = self.client()
        self.gw.stream_options = {"reply": "secret words for one client only", "chunk_sizes": [5]}
        path, res = self.run_one()
        self.assertEqual(res.text, "secret words for one client only")
        spin(0.2)
        self.assertEqual([s for s in spy.all_signals if s[0].startswith(OBJ + "/request")], [])
        self.assertEqual(spy.stray, [])

    def test_active_requests_property(self):
        seen = []
        self.c.bus.add_signal_receiver(lambda i, ch, inv: seen.append(dict(ch)) if i == "bot.bankr.LLM1.Chat" else None,
                                       signal_name="PropertiesChanged", dbus_interface="org.freedesktop.DBus.Properties",
                                       path=OBJ)
        self.gw.stream_options = {"reply": "a b c", "drip": 0.1}
        paths = [self.c.start(OPENAI_MODEL, [("user", "hi")]) for _ in range(3)]
        self.assertEqual(self.active(), 3)
        for p in paths:
            self.c.wait(p)
        self.assertEqual(self.active(), 0)
        run_until(lambda: len(seen) >= 6, 3)
        self.assertEqual([int(s["ActiveRequests"]) for s in seen], [1, 2, 3, 2, 1, 0])

    def test_shutdown_with_requests_in_flight(self):
        self.gw.stream_options = {"reply": " ".join("w%d" % i for i in range(100)), "drip": 0.05}
        path = self.c.start(OPENAI_MODEL, [("user", "hi")])
        self.c.wait_deltas(path, 1)
        self.env.stop_service()
        res = self.c.wait(path)
        self.assertEqual(res.error[0], E + "Cancelled")
        self.assertIn("stopping", res.error[1])
        self.gw.wait_for(lambda: self.gw.disconnects, timeout=3)


class Concurrency(ChatTest):
    def test_100_concurrent_from_several_clients(self):
        self.gw.stream_options = {"echo": True, "chunk_sizes": "random", "seed": 7, "chunk_max": 30}
        clients = [self.client() for _ in range(5)]
        want = {}
        errors = []
        for i in range(100):
            c = clients[i % len(clients)]
            prompt = "prompt number %d from client %d ✓" % (i, i % len(clients))
            model = OPENAI_MODEL if i % 2 else ANTHROPIC_MODEL

            def got(p, c=c, prompt=prompt):
                c._result(p)
                want[(c, p)] = "You said: " + prompt
            c.start_async(model, [("user", prompt)], {}, got, errors.append)
        run_until(lambda: len(want) + len(errors) == 100, 20 * SLOW)
        self.assertEqual(errors, [])
        run_until(lambda: all(c.results[p].done for c, p in want), 30 * SLOW)
        for (c, p), text in want.items():
            r = c.results[p]
            self.assertIsNone(r.error)
            self.assertEqual(r.text, text)
            self.assertEqual(r.info["stop_reason"], "end_turn")
        # Each client saw its own requests only.
        for c in clients:
            mine = {p for (cc, p) in want if cc is c}
            self.assertEqual(set(c.results), mine)
        self.assertEqual(self.active(), 0)

    def test_per_caller_limit(self):
        self.gw.push_fault("chat", Fault(hang=True, times=None))
        paths = [self.c.start(OPENAI_MODEL, [("user", "hi")]) for _ in range(128)]
        msg = self.assertBusError(E + "LimitExceeded", self.c.start, OPENAI_MODEL, [("user", "hi")])
        self.assertIn("128", msg)
        # Another client still may.
        other = self.client()
        p = other.start(OPENAI_MODEL, [("user", "hi")])
        self.assertEqual(self.active(), 129)
        other.cancel(p)
        for p in paths:
            self.c.cancel(p)
        self.assertEqual(self.active(), 0)
        self.gw.stop()  # release the hanging handlers now


class BadArguments(ChatTest):
    def bad(self, model, msgs, opts, name=INVALID, contains=None):
        for fn in (self.c.start, self.c.complete):
            msg = self.assertBusError(name, fn, model, msgs, opts)
            if contains:
                self.assertIn(contains, msg)
        return msg

    def test_bad_arguments(self):
        hi = [("user", "hi")]
        self.bad("", hi, {}, contains="empty")
        self.bad("gpt 5", hi, {}, contains="whitespace")
        self.bad("x" * 300, hi, {})
        self.bad(OPENAI_MODEL, [], {}, contains="empty")
        self.bad(OPENAI_MODEL, [("robot", "hi")], {}, contains="robot")
        self.bad(OPENAI_MODEL, [("system", "only a system prompt")], {}, contains="user")
        self.bad(OPENAI_MODEL, hi, {"bogus": "x"}, contains="Unknown option")
        self.bad(OPENAI_MODEL, hi, {"max_tokens": "many"}, contains="max_tokens")
        self.bad(OPENAI_MODEL, hi, {"max_tokens": U(0)}, contains="between")
        self.bad(OPENAI_MODEL, hi, {"max_tokens": U(1000001)})
        self.bad(OPENAI_MODEL, hi, {"temperature": 2.5}, contains="temperature")
        self.bad(OPENAI_MODEL, hi, {"temperature": float("nan")})
        self.bad(OPENAI_MODEL, hi, {"top_p": -0.1})
        self.bad(OPENAI_MODEL, hi, {"stop": ["a", "b", "c", "d", "e"]}, contains="at most 4")
        self.bad(OPENAI_MODEL, hi, {"stop": [""]})
        self.bad(OPENAI_MODEL, hi, {"stop": "x"}, contains="type as")
        self.bad(OPENAI_MODEL, hi, {"api": "grpc"}, contains="auto")
        self.bad(OPENAI_MODEL, hi, {"fallback_models": ["a", "b", "c", "d", "e"]})
        self.bad(OPENAI_MODEL, hi, {"fallback_models": [""]})
        self.bad(OPENAI_MODEL, hi, {"timeout_s": U(0)})
        self.bad(OPENAI_MODEL, hi, {"timeout_s": U(3601)})
        self.bad(OPENAI_MODEL, hi, {"connect_timeout_ms": U(99)})
        self.bad(OPENAI_MODEL, hi, {"first_byte_timeout_ms": U(600001)})
        self.bad(OPENAI_MODEL, hi, {"idle_timeout_ms": dbus.Int32(-5)})
        self.bad(OPENAI_MODEL, hi, {"system": dbus.UInt32(1)}, contains="type s")
        # gdbus sends a bare number as int32: accepted for integer options.
        text, _ = self.c.complete(OPENAI_MODEL, hi, {"max_tokens": dbus.Int32(50), "temperature": dbus.Int32(1)})
        self.assertEqual(text, "Hello, world!")
        self.assertEqual(self.gw.requests_for("chat")[-1].json["max_completion_tokens"], 50)
        self.assertEqual(self.active(), 0)

    def test_size_limit(self):
        big = "x" * (4 * 1024 * 1024)
        self.bad(OPENAI_MODEL, [("user", big), ("user", "y")], {}, name=E + "LimitExceeded", contains="4 MiB")
        self.bad(OPENAI_MODEL, [("user", big)], {"system": "z"}, name=E + "LimitExceeded")
        # Exactly at the limit is fine.
        text, _ = self.c.complete(OPENAI_MODEL, [("user", big)])
        self.assertEqual(text, "Hello, world!")

    def test_message_count_limit(self):
        # Empty messages cost no text but memory and time on the loop (a
        # million of them took 10 s and 1.1 GB): their number is capped.
        many = [("user", "")] * 10000 + [("user", "hi")]
        self.bad(OPENAI_MODEL, many, {}, name=E + "LimitExceeded", contains="10000 messages")
        text, _ = self.c.complete(OPENAI_MODEL, many[1:])
        self.assertEqual(text, "Hello, world!")


class ShortKey(ChatTest):
    # Keys are opaque: a one-character key is accepted, and scrubbing it
    # from gateway messages must neither overrun the buffer nor loop.
    service_env = {"BANKR_LLM_KEY": "*"}

    def test_short_key_scrubbed_safely(self):
        self.gw.llm_keys = {"*"}
        self.gw.push_fault("chat", Fault.http(401, message="bad key * and ** rejected"))
        _, res = self.run_one(timeout=5)
        name, msg, _ = res.error
        self.assertEqual(name, E + "Unauthorized")
        self.assertIn("rejected the key", msg)
        self.assertIn("bad key *** and ****** rejected", msg)


class NoKey(ChatTest):
    service_env = {"BANKR_LLM_KEY": None}

    def test_no_key(self):
        msg = self.assertBusError(E + "NoKey", self.c.start, OPENAI_MODEL, [("user", "hi")])
        self.assertIn("bankr-llm key set", msg)
        self.assertEqual(self.gw.requests_for("chat"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
