#!/usr/bin/python3
"""Self-test of tests/fakegw.py: wire formats, faults, control endpoints, disconnects."""

import http.client
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fakegw import FakeGateway, Fault, TINY_PNG  # noqa: E402

KEY = FakeGateway.DEFAULT_KEY
API_KEY = FakeGateway.DEFAULT_API_KEY


def sse_parse(data):
        """Decode an SSE body as real clients do: list of (event name or None, data)."""
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):
                text = text[1:]
        events, name, buf = [], None, []
        i, n = 0, len(text)
        while i < n:
                j = i
                while j < n and text[j] not in "\r\n":
                        j += 1
                line = text[i:j]
                if j < n and text[j] == "\r" and j + 1 < n and text[j + 1] == "\n":
                        j += 1
                i = j + 1
                if j >= n:
                        break  # an unterminated last line is not a complete line
                if line == "":
                        if buf:
                                events.append((name, "\n".join(buf)))
                        name, buf = None, []
                        continue
                if line.startswith(":"):
                        continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                        value = value[1:]
                if field == "data":
                        buf.append(value)
                elif field == "event":
                        name = value
        return events


def openai_text(events):
        out = []
        for _, d in events:
                if d == "[DONE]":
                        continue
                j = json.loads(d)
                for c in j.get("choices") or []:
                        t = c.get("delta", {}).get("content")
                        if t:
                                out.append(t)
        return out


def anthropic_text(events):
        out = []
        for _, d in events:
                j = json.loads(d)
                if j.get("type") == "content_block_delta" and j["delta"].get("type") == "text_delta":
                        out.append(j["delta"]["text"])
        return out


def raw_exchange(port, request, timeout=5):
        """Send raw bytes, read until the server closes or the body ends.

        Returns (status, headers, chunks, complete): for a chunked body the list of HTTP
        chunks and whether the final zero-size chunk arrived."""
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(request)
        f = s.makefile("rb")
        status = int(f.readline().split()[1])
        headers = {}
        while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                        break
                k, _, v = line.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
        chunks, complete = [], False
        if headers.get("transfer-encoding") == "chunked":
                while True:
                        line = f.readline()
                        if not line:
                                break
                        size = int(line.strip(), 16)
                        if size == 0:
                                f.readline()
                                complete = True
                                break
                        data = f.read(size)
                        chunks.append(data)
                        if len(data) < size:
                                break
                        if f.readline() != b"\r\n":
                                break
        else:
                n = int(headers.get("content-length", 0))
                data = f.read(n)
                chunks.append(data)
                complete = len(data) == n
        f.close()
        s.close()
        return status, headers, chunks, complete


def chat_request(path, body, headers):
        data = json.dumps(body).encode()
        h = "".join("%s: %s\r\n" % kv for kv in headers.items())
        return ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (path, h, len(data))).encode() + data


OPENAI_BODY = {"model": "gpt-5-mini", "stream": True, "stream_options": {"include_usage": True},
               "messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "say hello to me"}]}
ANTHROPIC_BODY = {"model": "claude-haiku-4.5", "max_tokens": 1024, "stream": True, "system": "Be brief.",
                  "messages": [{"role": "user", "content": "say hello to me"}]}
OPENAI_HDRS = {"Authorization": "Bearer " + KEY}
ANTHROPIC_HDRS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


class FakeGatewayTest(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
                cls.gw = FakeGateway().start()

        @classmethod
        def tearDownClass(cls):
                cls.gw.stop()

        def setUp(self):
                self.gw.reset()

        def call(self, method, path, body=None, headers=None, timeout=10):
                conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=timeout)
                if isinstance(body, (dict, list)):
                        body = json.dumps(body).encode()
                try:
                        conn.request(method, path, body=body, headers=headers or {})
                        r = conn.getresponse()
                        data = r.read()
                        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
                finally:
                        conn.close()

        def chat(self, fmt="openai", body=None, headers=None, **kw):
                if fmt == "openai":
                        b = dict(OPENAI_BODY, **(body or {}))
                        return self.call("POST", "/v1/chat/completions", b, headers or OPENAI_HDRS, **kw)
                b = dict(ANTHROPIC_BODY, **(body or {}))
                return self.call("POST", "/v1/messages?beta=true", b, headers or ANTHROPIC_HDRS, **kw)

        def stream_text(self, fmt, body=None):
                st, h, data = self.chat(fmt, body)
                self.assertEqual(st, 200, data)
                ev = sse_parse(data)
                return (openai_text(ev) if fmt == "openai" else anthropic_text(ev)), ev, data, h

        # --- privacy tiers, deprecations, budgets, images (as the bankr reference says) ----

        def test_privacy_tiers(self):
                auth = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
                body = {"model": "deepseek-v3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}
                st, h, _ = self.call("POST", "/v1/chat/completions", body, auth)
                self.assertEqual((st, h["x-privacy-tier"]), (200, "standard"))
                st, h, _ = self.call("POST", "/zdr/v1/chat/completions", body, auth)
                self.assertEqual((st, h["x-privacy-tier"]), (200, "zdr"))
                self.assertEqual(self.gw.requests[-1].path_tier, "zdr")
                st, h, _ = self.call("POST", "/v1/chat/completions", dict(body, model="deepseek-v3.2:PRIVATE"), auth)
                self.assertEqual((st, h["x-privacy-tier"]), (200, "private"))
                st, h, data = self.call("POST", "/zdr/v1/chat/completions", dict(body, privacy="private"), auth)
                self.assertEqual((st, json.loads(data)["error"]["type"]), (400, "privacy_conflict"))
                st, h, data = self.call("POST", "/v1/chat/completions", dict(body, privacy="zdrr"), auth)
                self.assertEqual((st, json.loads(data)["error"]["type"]), (400, "invalid_privacy"))
                st, h, data = self.call("POST", "/v1/chat/completions", dict(body, model="gpt-5-mini", privacy="zdr"), auth)
                self.assertEqual((st, json.loads(data)["error"]["type"], h["x-privacy-tier"]), (422, "zdr_unavailable", "zdr"))
                self.gw.account_privacy = "zdr"
                st, h, _ = self.call("POST", "/v1/chat/completions", dict(body, privacy="standard"), auth)
                self.assertEqual((st, h["x-privacy-tier"]), (200, "zdr"))  # the account wins: strongest

        def test_deprecation_budget_and_images(self):
                auth = {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}
                body = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
                self.gw.deprecated = {"gpt-5-mini": "gpt-5.4"}
                st, h, _ = self.call("POST", "/v1/chat/completions", body, auth)
                self.assertEqual((st, h["x-model-deprecated"], h["x-model-replacement"]), (200, "true", "gpt-5.4"))
                self.gw.retired = {"gpt-5-mini": "gpt-5.4"}
                st, h, _ = self.call("POST", "/v1/chat/completions", body, auth)
                self.assertEqual((st, h["x-model-replacement"]), (410, "gpt-5.4"))
                self.gw.retired = {}
                self.gw.daily_budget = {"retry_after": 60}
                st, h, data = self.call("POST", "/v1/chat/completions", body, auth)
                self.assertEqual((st, json.loads(data)["error"]["type"], h["retry-after"]), (402, "daily_budget_exceeded", "60"))
                self.gw.daily_budget = None
                self.gw.balance = 0
                st, h, data = self.call("POST", "/v1/chat/completions", body, auth)
                self.assertEqual((st, json.loads(data)["error"]["type"]), (402, "insufficient_credits"))
                self.gw.balance = 5
                st, h, data = self.call("POST", "/v1/images/generations", {"model": "gpt-image-2", "prompt": "x", "n": 2}, auth)
                self.assertEqual(st, 200, data)
                self.assertEqual([base64.b64decode(d["b64_json"]) for d in json.loads(data)["data"]], [TINY_PNG] * 2)
                st, _, _ = self.call("POST", "/v1/images/generations", {"model": "gpt-image-2", "prompt": "x", "n": 5}, auth)
                self.assertEqual(st, 400)
                st, _, _ = self.call("POST", "/v1/images/generations", {"model": "gpt-5-mini", "prompt": "x"}, auth)
                self.assertEqual(st, 404)

        # --- models and credits --------------------------------------------------------

        def test_models(self):
                for path, hdrs in (("/v1/models", {"X-API-Key": KEY}), ("/models?x=1", {"Authorization": "Bearer " + KEY})):
                        st, h, data = self.call("GET", path, headers=hdrs)
                        self.assertEqual(st, 200)
                        self.assertEqual(h["content-type"], "application/json")
                        j = json.loads(data)
                        self.assertEqual(j["object"], "list")
                        ids = {m["id"]: m for m in j["data"]}
                        self.assertEqual(ids["claude-haiku-4.5"]["owned_by"], "anthropic")
                        self.assertIn("gpt-5-mini", ids)
                        for m in j["data"]:
                                for f in ("name", "context_window", "max_output_tokens", "input_modalities", "pricing"):
                                        self.assertIn(f, m)
                reqs = self.gw.requests_for("models")
                self.assertEqual([r.path for r in reqs], ["/v1/models", "/models"])
                self.assertEqual(reqs[1].query, "x=1")
                self.assertEqual(reqs[0].headers["x-api-key"], KEY)
                st, _, data = self.call("GET", "/v1/models/gpt-5-mini", headers={"X-API-Key": KEY})
                self.assertEqual((st, json.loads(data)["id"]), (200, "gpt-5-mini"))

        def test_auth_errors(self):
                for hdrs in ({}, {"X-API-Key": "bk_wrong"}):
                        st, _, data = self.call("GET", "/v1/models", headers=hdrs)
                        self.assertEqual(st, 401)
                        self.assertIn("message", json.loads(data)["error"])
                st, _, data = self.chat("openai", headers={"x-api-key": KEY})  # chat wants Bearer
                self.assertEqual(st, 401)
                st, _, data = self.chat("anthropic", headers={"x-api-key": "bad", "anthropic-version": "2023-06-01"})
                self.assertEqual(st, 401)
                self.assertEqual(json.loads(data), {"type": "error", "error": {"type": "authentication_error",
                                                                              "message": "Invalid API key"}})
                st, _, data = self.call("POST", "/llm/credits/topup", {"amountUsd": 5}, {"X-API-Key": KEY})
                self.assertEqual((st, json.loads(data)), (401, {"error": "Invalid API key"}))

        def test_credits(self):
                st, _, data = self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                self.assertEqual((st, json.loads(data)), (200, {"balanceUsd": 12.5}))
                self.gw.balance = 0.75
                st, _, data = self.call("GET", "/credits", headers={"X-API-Key": KEY})
                self.assertEqual(json.loads(data), {"balanceUsd": 0.75})
                self.gw.balance = None
                st, _, data = self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                self.assertEqual(st, 402)
                self.assertIn("message", json.loads(data)["error"])
                st, _, data = self.chat("anthropic", body={"stream": False})
                self.assertEqual((st, json.loads(data)["error"]["type"]), (402, "billing_error"))

        def test_head_root_and_unknown(self):
                st, _, data = self.call("HEAD", "/")
                self.assertEqual((st, data), (200, b""))
                st, _, _ = self.call("GET", "/v1/nothing")
                self.assertEqual(st, 404)
                st, h, _ = self.call("POST", "/v1/models", {}, {"X-API-Key": KEY})
                self.assertEqual((st, h["allow"]), (405, "GET"))

        # --- chat: OpenAI --------------------------------------------------------------

        def test_openai_stream_transcript(self):
                texts, ev, data, h = self.stream_text("openai")
                self.assertEqual(h["transfer-encoding"], "chunked")
                self.assertTrue(h["content-type"].startswith("text/event-stream"))
                self.assertEqual("".join(texts), "Hello, world!")
                self.assertEqual(texts, ["Hello, ", "world!"])
                self.assertTrue(all(name is None for name, _ in ev))
                self.assertEqual(ev[-1][1], "[DONE]")
                chunks = [json.loads(d) for _, d in ev[:-1]]
                for c in chunks:
                        self.assertEqual(c["object"], "chat.completion.chunk")
                        self.assertIn("usage", c)
                self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
                self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
                self.assertEqual(chunks[-2]["choices"][0]["delta"], {})
                self.assertEqual(chunks[-1]["choices"], [])
                self.assertEqual(chunks[-1]["usage"], {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8,
                                                       "prompt_tokens_details": {"cached_tokens": 0}})
                self.assertTrue(all(c["usage"] is None for c in chunks[:-1]))
                self.assertIn(b'data: {"id":"chatcmpl-', data)  # compact JSON as OpenAI sends

        def test_openai_without_include_usage(self):
                texts, ev, _, _ = self.stream_text("openai", {"stream_options": None})
                self.assertEqual("".join(texts), "Hello, world!")
                for _, d in ev[:-1]:
                        j = json.loads(d)
                        self.assertNotIn("usage", j)
                        self.assertTrue(j["choices"])

        def test_openai_nonstream(self):
                st, h, data = self.chat("openai", {"stream": False})
                self.assertEqual(st, 200)
                self.assertIn("content-length", h)
                j = json.loads(data)
                self.assertEqual(j["object"], "chat.completion")
                self.assertEqual(j["choices"][0]["message"]["content"], "Hello, world!")
                self.assertEqual(j["choices"][0]["finish_reason"], "stop")
                self.assertEqual(j["usage"]["completion_tokens"], 2)

        def test_openai_validation(self):
                st, _, data = self.chat("openai", {"model": "no-such-model"})
                self.assertEqual(st, 404)
                self.assertEqual(json.loads(data)["error"]["code"], "model_not_found")
                st, _, data = self.chat("openai", {"messages": []})
                self.assertEqual(st, 400)
                st, _, data = self.chat("openai", {"messages": [{"role": "wizard", "content": "x"}]})
                self.assertEqual(st, 400)
                self.assertEqual(json.loads(data)["error"]["type"], "invalid_request_error")
                st, _, data = self.call("POST", "/chat/completions", b"{not json", OPENAI_HDRS)
                self.assertEqual(st, 400)

        # --- chat: Anthropic -----------------------------------------------------------

        def test_anthropic_stream_transcript(self):
                texts, ev, data, h = self.stream_text("anthropic")
                self.assertEqual(h["transfer-encoding"], "chunked")
                self.assertEqual("".join(texts), "Hello, world!")
                names = [n for n, _ in ev]
                self.assertEqual(names, ["message_start", "content_block_start", "ping", "content_block_delta",
                                         "content_block_delta", "content_block_stop", "message_delta", "message_stop"])
                for n, d in ev:
                        self.assertEqual(json.loads(d)["type"], n)
                start = json.loads(ev[0][1])["message"]
                self.assertEqual(start["usage"]["input_tokens"], 6)
                self.assertEqual(start["model"], "claude-haiku-4.5")
                md = json.loads(ev[-2][1])
                self.assertEqual(md["delta"]["stop_reason"], "end_turn")
                self.assertEqual(md["usage"], {"output_tokens": 2})
                req = self.gw.requests_for("messages")[0]
                self.assertEqual((req.path, req.query), ("/v1/messages", "beta=true"))

        def test_anthropic_nonstream_and_validation(self):
                st, _, data = self.chat("anthropic", {"stream": False})
                j = json.loads(data)
                self.assertEqual((st, j["type"], j["content"]), (200, "message", [{"type": "text", "text": "Hello, world!"}]))
                self.assertEqual(j["stop_reason"], "end_turn")
                b = dict(ANTHROPIC_BODY)
                del b["max_tokens"]
                st, _, data = self.call("POST", "/v1/messages", b, ANTHROPIC_HDRS)
                self.assertEqual(st, 400)
                self.assertEqual(json.loads(data)["error"]["type"], "invalid_request_error")
                st, _, _ = self.call("POST", "/v1/messages", ANTHROPIC_BODY, {"x-api-key": KEY})
                self.assertEqual(st, 400)
                st, _, data = self.chat("anthropic", {"model": "claude-3-sonnet"})
                self.assertEqual((st, json.loads(data)["error"]["type"]), (404, "not_found_error"))
                # Claude Code: Bearer auth, a system message inside messages
                st, _, data = self.chat("anthropic", {"messages": [{"role": "system", "content": "x"},
                                                                   {"role": "user", "content": "hi"}]},
                                        headers={"Authorization": "Bearer " + KEY, "anthropic-version": "2023-06-01"})
                self.assertEqual(st, 200)
                st, _, data = self.call("POST", "/v1/messages/count_tokens?beta=true", ANTHROPIC_BODY, ANTHROPIC_HDRS)
                self.assertEqual((st, json.loads(data)), (200, {"input_tokens": 6}))

        # --- answers, usage ------------------------------------------------------------

        def test_utf8_and_echo(self):
                self.gw.reply_text = "Grüße, 世界! 🎉 naïve   spaces\nnew line"
                for fmt in ("openai", "anthropic"):
                        texts, _, data, _ = self.stream_text(fmt)
                        self.assertEqual("".join(texts), self.gw.reply_text)
                        self.assertGreater(len(texts), 4)
                        self.assertIn("世界".encode(), data)  # raw UTF-8 on the wire
                self.gw.stream_options = {"echo": True, "ascii": True}
                texts, _, data, _ = self.stream_text("anthropic")
                self.assertEqual("".join(texts), "You said: say hello to me")
                self.gw.stream_options = {"reply": "été", "ascii": True}
                texts, _, data, _ = self.stream_text("openai")
                self.assertEqual("".join(texts), "été")
                self.assertIn(b"\\u00e9t\\u00e9", data)

        def test_usage_override(self):
                self.gw.usage = {"input": 10, "output": 3, "cache_read": 4, "cache_write": 2}
                _, ev, _, _ = self.stream_text("openai")
                u = json.loads(ev[-2][1])["usage"]
                self.assertEqual(u, {"prompt_tokens": 16, "completion_tokens": 3, "total_tokens": 19,
                                     "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2}})
                _, ev, _, _ = self.stream_text("anthropic")
                u = json.loads(ev[0][1])["message"]["usage"]
                self.assertEqual((u["input_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"]),
                                 (10, 4, 2))
                self.assertEqual(json.loads(ev[-2][1])["usage"]["output_tokens"], 3)

        def test_max_tokens_and_stop_sequences(self):
                self.gw.reply_text = "one two three four five"
                texts, ev, _, _ = self.stream_text("anthropic", {"max_tokens": 2})
                self.assertEqual("".join(texts), "one two ")
                self.assertEqual(json.loads(ev[-2][1])["delta"]["stop_reason"], "max_tokens")
                texts, ev, _, _ = self.stream_text("openai", {"max_completion_tokens": 3})
                self.assertEqual(json.loads(ev[-3][1])["choices"][0]["finish_reason"], "length")
                texts, ev, _, _ = self.stream_text("anthropic", {"stop_sequences": ["four"]})
                self.assertEqual("".join(texts), "one two three ")
                self.assertEqual(json.loads(ev[-2][1])["delta"], {"stop_reason": "stop_sequence", "stop_sequence": "four"})
                self.gw.stream_options = {"stop_reason": "refusal", "finish_reason": "content_filter"}
                _, ev, _, _ = self.stream_text("anthropic")
                self.assertEqual(json.loads(ev[-2][1])["delta"]["stop_reason"], "refusal")
                _, ev, _, _ = self.stream_text("openai")
                self.assertEqual(json.loads(ev[-3][1])["choices"][0]["finish_reason"], "content_filter")

        # --- stream scripts ---------------------------------------------------------------

        def test_stream_variants_parse_the_same(self):
                self.gw.reply_text = "The quick brown fox — jumps over ünïcode 🦊."
                checks = {"crlf": lambda b: b"\r\n\r\n" in b and b"\n\n" not in b.replace(b"\r\n", b""),
                          "cr": lambda b: b"\n" not in b and b"\r\r" in b,
                          "mixed_eol": lambda b: b"\r\n" in b and b"\r" in b.replace(b"\r\n", b""),
                          "comments": lambda b: b": keep-alive" in b,
                          "bom": lambda b: b.startswith(b"\xef\xbb\xbf"),
                          "multiline_data": lambda b: b"data: {\ndata: " in b,
                          "no_space": lambda b: b"data:{" in b and b"data: " not in b,
                          "unknown_events": lambda b: b"obfuscation" in b or b"thinking_delta" in b}
                for opt, check in checks.items():
                        for fmt in ("openai", "anthropic"):
                                with self.subTest(opt=opt, fmt=fmt):
                                        self.gw.stream_options = {opt: True}
                                        texts, ev, data, _ = self.stream_text(fmt)
                                        self.assertEqual("".join(texts), self.gw.reply_text)
                                        self.assertTrue(check(data), data[:300])
                                        name, last = ev[-1]
                                        if fmt == "openai":
                                                self.assertEqual((name, last), (None, "[DONE]"))
                                        else:
                                                self.assertEqual((name, json.loads(last)), ("message_stop", {"type": "message_stop"}))
                self.gw.stream_options = {"comments": True}
                _, ev, _, _ = self.stream_text("anthropic")
                self.assertGreater([n for n, _ in ev].count("ping"), 1)
                # every option at once
                self.gw.stream_options = {k: True for k in checks if k not in ("cr", "crlf")}
                for fmt in ("openai", "anthropic"):
                        texts, _, _, _ = self.stream_text(fmt)
                        self.assertEqual("".join(texts), self.gw.reply_text)

        def test_error_after_and_no_terminator(self):
                self.gw.reply_text = "a b c d"
                self.gw.push_fault("chat", Fault(error_after=2))
                texts, ev, _, _ = self.stream_text("openai")
                self.assertEqual(texts, ["a ", "b "])
                self.assertEqual(json.loads(ev[-1][1])["error"]["type"], "server_error")
                self.gw.push_fault("messages", Fault(error_after=1, error_type="api_error", error_message="boom"))
                texts, ev, _, _ = self.stream_text("anthropic")
                self.assertEqual(texts, ["a "])
                self.assertEqual(ev[-1][0], "error")
                self.assertEqual(json.loads(ev[-1][1]), {"type": "error", "error": {"type": "api_error", "message": "boom"}})
                self.gw.stream_options = {"no_terminator": True}
                texts, ev, _, _ = self.stream_text("openai")
                self.assertEqual("".join(texts), "a b c d")
                self.assertNotEqual(ev[-1][1], "[DONE]")
                _, ev, _, _ = self.stream_text("anthropic")
                self.assertEqual(ev[-1][0], "message_delta")

        def test_chunk_sizes(self):
                body = dict(OPENAI_BODY)
                req = chat_request("/v1/chat/completions", body, OPENAI_HDRS)
                _, _, whole, complete = raw_exchange(self.gw.port, req)
                self.assertTrue(complete)
                whole = b"".join(whole)
                for k in (1, 2, 7, 100, len(whole)):
                        self.gw.push_fault("chat", Fault(chunk_sizes=[k]))
                        st, _, chunks, complete = raw_exchange(self.gw.port, req)
                        self.assertTrue(complete)
                        self.assertTrue(all(len(c) == k for c in chunks[:-1]))
                        self.assertLessEqual(len(chunks[-1]), k)
                        self.assertEqual(openai_text(sse_parse(b"".join(chunks))), openai_text(sse_parse(whole)))
                runs = []
                for _ in range(2):
                        self.gw.push_fault("chat", Fault(chunk_sizes="random", seed=42, chunk_max=9))
                        runs.append([len(c) for c in raw_exchange(self.gw.port, req)[2]])
                self.assertEqual(runs[0], runs[1])
                self.assertTrue(all(1 <= n <= 9 for n in runs[0]))
                self.assertGreater(len(set(runs[0])), 3)
                # a plain JSON body too
                self.gw.push_fault("credits", Fault(chunk_sizes=[3], drip=0.001))
                st, _, data = self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                self.assertEqual(json.loads(data), {"balanceUsd": 12.5})

        def test_fast_deltas(self):
                self.gw.stream_options = {"fast_deltas": 20000}
                for fmt in ("openai", "anthropic"):
                        texts, ev, _, _ = self.stream_text(fmt)
                        self.assertEqual(len(texts), 20000)
                        self.assertEqual(set(texts), {"tok "})
                        if fmt == "openai":
                                self.assertEqual(json.loads(ev[-2][1])["usage"]["completion_tokens"], 20000)
                                self.assertEqual(ev[-1][1], "[DONE]")
                        else:
                                self.assertEqual(json.loads(ev[-2][1])["usage"]["output_tokens"], 20000)

        # --- transport faults ---------------------------------------------------------------

        def test_drop_after(self):
                req = chat_request("/v1/chat/completions", OPENAI_BODY, OPENAI_HDRS)
                self.gw.push_fault("chat", Fault(drop_after=150))
                st, h, chunks, complete = raw_exchange(self.gw.port, req)
                self.assertEqual((st, complete, len(b"".join(chunks))), (200, False, 150))
                self.gw.stream_options = {"drop_after": 10 ** 6}  # whole body, but no final chunk
                st, h, chunks, complete = raw_exchange(self.gw.port, req)
                self.assertFalse(complete)
                self.assertEqual(sse_parse(b"".join(chunks))[-1][1], "[DONE]")
                self.gw.push_fault("models", Fault(drop_after=100))
                conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=5)
                conn.request("GET", "/v1/models", headers={"X-API-Key": KEY})
                r = conn.getresponse()
                with self.assertRaises(http.client.IncompleteRead):
                        r.read()
                conn.close()
                self.assertEqual(self.gw.disconnects, [])  # our own drops are not client disconnects

        def test_fault_queue(self):
                self.gw.push_fault("credits", Fault.http(503, times=2, headers={"Retry-After": "1"}))
                self.gw.push_fault("*", Fault(status=500))
                self.gw.push_fault("credits", Fault.http(429, headers={"retry-after-ms": "200"}))
                got = []
                for _ in range(5):
                        st, h, data = self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                        got.append((st, h.get("retry-after"), h.get("retry-after-ms")))
                self.assertEqual(got, [(503, "1", None), (503, "1", None), (429, None, "200"), (500, None, None),
                                       (200, None, None)])
                self.assertEqual(json.loads(self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})[2]),
                                 {"balanceUsd": 12.5})
                # model filter, times=None, per-endpoint formats
                self.gw.push_fault("messages", Fault.http(529, model="claude-sonnet-4.5", times=None))
                for _ in range(3):
                        st, _, data = self.chat("anthropic", {"model": "claude-sonnet-4.5"})
                        self.assertEqual((st, json.loads(data)["error"]["type"]), (529, "overloaded_error"))
                self.assertEqual(self.chat("anthropic")[0], 200)
                self.gw.push_fault("topup", Fault.http(402))
                st, _, data = self.call("POST", "/llm/credits/topup", {"amountUsd": 5}, {"X-API-Key": API_KEY})
                self.assertEqual((st, json.loads(data)), (402, {"error": "Insufficient wallet balance"}))
                self.gw.push_fault("chat", Fault.http(400, "custom words"))
                st, _, data = self.chat("openai")
                self.assertEqual(json.loads(data)["error"]["message"], "custom words")
                self.gw.push_fault("models", Fault(status=200, body='{"data": []}', headers={"X-Extra": "1"}))
                st, h, data = self.call("GET", "/v1/models", headers={"X-API-Key": KEY})
                self.assertEqual((st, data, h["x-extra"]), (200, b'{"data": []}', "1"))
                self.assertEqual(self.gw.pending_faults("messages")[0].status, 529)

        def test_delay_and_request_times(self):
                self.gw.push_fault("credits", Fault(delay=0.3))
                t0 = time.monotonic()
                st, _, _ = self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                self.assertEqual(st, 200)
                self.assertGreaterEqual(time.monotonic() - t0, 0.3)
                self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                r = self.gw.requests_for("credits")
                self.assertLess(r[0].time, r[1].time)
                self.assertGreaterEqual(r[1].time - r[0].time, 0.3)

        def test_bad_bodies(self):
                self.gw.push_fault("models", Fault.html(502))
                st, h, data = self.call("GET", "/v1/models", headers={"X-API-Key": KEY})
                self.assertEqual((st, h["content-type"]), (502, "text/html"))
                self.assertIn(b"<html>", data)
                for ep, path in (("models", "/v1/models"), ("credits", "/v1/credits")):
                        self.gw.push_fault(ep, Fault.malformed())
                        st, _, data = self.call("GET", path, headers={"X-API-Key": KEY})
                        self.assertEqual(st, 200)
                        with self.assertRaises(ValueError):
                                json.loads(data)
                self.gw.push_fault("credits", Fault.wrong_types())
                self.assertEqual(json.loads(self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})[2]),
                                 {"balanceUsd": "lots"})
                self.gw.push_fault("models", Fault.wrong_types())
                self.assertEqual(json.loads(self.call("GET", "/v1/models", headers={"X-API-Key": KEY})[2])["data"], {})
                self.gw.push_fault("models", Fault.wrong_types(variant=1))
                self.assertEqual(json.loads(self.call("GET", "/v1/models", headers={"X-API-Key": KEY})[2])["data"][0]["id"], 42)
                for ep, path in (("models", "/v1/models"), ("credits", "/v1/credits")):
                        self.gw.push_fault(ep, Fault.huge(3 * 1024 * 1024))
                        st, h, data = self.call("GET", path, headers={"X-API-Key": KEY})
                        self.assertEqual(int(h["content-length"]), len(data))
                        self.assertGreaterEqual(len(data), 3 * 1024 * 1024)
                        json.loads(data)
                self.gw.push_fault("chat", Fault.malformed())
                st, _, data = self.chat("openai")
                with self.assertRaises(ValueError):
                        [json.loads(d) for _, d in sse_parse(data) if d != "[DONE]"]

        def test_close_and_reset(self):
                self.gw.push_fault("credits", Fault(close=True))
                with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                        self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                self.gw.push_fault("credits", Fault(reset=True))
                with self.assertRaises(ConnectionResetError):
                        self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})
                self.assertEqual(self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})[0], 200)

        def test_close_only_reused_connections(self):
                self.gw.push_fault("credits", Fault(close=True, reused_only=True))
                # A fresh connection is not affected, and leaves the fault queued.
                self.assertEqual(self.call("GET", "/v1/credits", headers={"X-API-Key": KEY})[0], 200)
                self.assertEqual(len(self.gw.pending_faults("credits")), 1)
                conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=5)
                try:
                        conn.request("GET", "/v1/credits", headers={"X-API-Key": KEY})
                        self.assertEqual(conn.getresponse().read() and 200, 200)
                        conn.request("GET", "/v1/credits", headers={"X-API-Key": KEY})
                        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                                conn.getresponse()
                finally:
                        conn.close()
                self.assertEqual(self.gw.pending_faults("credits"), [])
                self.assertEqual([r.reused for r in self.gw.requests_for("credits")], [False, False, True])

        def test_hang_then_client_gives_up(self):
                self.gw.push_fault("credits", Fault.hang())
                with self.assertRaises(socket.timeout):
                        self.call("GET", "/v1/credits", headers={"X-API-Key": KEY}, timeout=0.3)
                self.assertTrue(self.gw.wait_for(lambda: self.gw.disconnects))
                self.assertEqual(self.gw.disconnects, [("credits", 0)])

        def test_cancel_mid_stream_is_recorded(self):
                self.gw.reply_text = " ".join("word%d" % i for i in range(200))
                self.gw.stream_options = {"drip": 0.02}
                s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
                s.sendall(chat_request("/v1/chat/completions", OPENAI_BODY, OPENAI_HDRS))
                got = b""
                while got.count(b"word") < 3:
                        got += s.recv(4096)
                s.close()
                self.assertTrue(self.gw.wait_for(lambda: self.gw.disconnects, timeout=3))
                ep, sent = self.gw.disconnects[0]
                self.assertEqual(ep, "chat")
                self.assertGreater(sent, 0)
                self.assertLess(sent, 200 * 100)

        def test_keep_alive(self):
                conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=5)
                conn.request("GET", "/v1/credits", headers={"X-API-Key": KEY})
                conn.getresponse().read()
                sock = conn.sock
                conn.request("POST", "/v1/chat/completions", json.dumps(OPENAI_BODY), OPENAI_HDRS)
                data = conn.getresponse().read()
                self.assertEqual(openai_text(sse_parse(data)), ["Hello, ", "world!"])
                conn.request("GET", "/v1/models", headers={"X-API-Key": KEY})
                self.assertEqual(conn.getresponse().status, 200)
                self.assertIs(conn.sock, sock)
                conn.close()

        def test_concurrent_streams(self):
                self.gw.stream_options = {"echo": True, "drip": 0.005}
                results, errors = {}, []

                def worker(i):
                        try:
                                b = dict(OPENAI_BODY, messages=[{"role": "user", "content": "request number %d" % i}])
                                st, _, data = self.call("POST", "/v1/chat/completions", b, OPENAI_HDRS)
                                results[i] = "".join(openai_text(sse_parse(data)))
                        except Exception as e:  # noqa: BLE001
                                errors.append(e)
                threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
                for t in threads:
                        t.start()
                for t in threads:
                        t.join()
                self.assertEqual(errors, [])
                self.assertEqual(results, {i: "You said: request number %d" % i for i in range(40)})

        # --- agent API ----------------------------------------------------------------------

        def test_topup(self):
                h = {"X-API-Key": API_KEY}
                st, _, data = self.call("POST", "/llm/credits/topup", {"amountUsd": 10, "sourceToken": "USDC"}, h)
                j = json.loads(data)
                self.assertEqual((st, j["creditsGranted"], j["newBalance"]), (200, 10, 22.5))
                self.assertRegex(j["txHash"], r"^0x[0-9a-f]{64}$")
                self.assertEqual(self.gw.balance, 22.5)
                for bad in (0, 1001, "5", None, True):
                        st, _, data = self.call("POST", "/llm/credits/topup", {"amountUsd": bad}, h)
                        self.assertEqual(st, 400)
                        self.assertIsInstance(json.loads(data)["error"], str)
                self.assertEqual(len(self.gw.requests_for("topup")), 6)

        def test_auto_topup(self):
                h = {"X-API-Key": API_KEY}
                st, _, data = self.call("GET", "/llm/credits/auto-topup", headers=h)
                cfg = json.loads(data)["config"]
                self.assertEqual((st, cfg["enabled"], cfg["tokens"][0]["symbol"]), (200, False, "USDC"))
                for k in ("address", "chain", "symbol", "name", "decimals"):
                        self.assertIn(k, cfg["tokens"][0])
                st, _, data = self.call("POST", "/llm/credits/auto-topup",
                                        {"enabled": True, "amountUsd": 50, "tokens": ["USDC", "WETH"]}, h)
                cfg = json.loads(data)["config"]
                self.assertEqual((st, cfg["enabled"], cfg["amountUsd"], cfg["thresholdUsd"]), (200, True, 50, 5))
                self.assertEqual([t["symbol"] for t in cfg["tokens"]], ["USDC", "WETH"])
                self.assertEqual(json.loads(self.call("GET", "/llm/credits/auto-topup", headers=h)[2])["config"], cfg)
                for bad in ({"thresholdUsd": 600}, {"thresholdUsd": 0.5}, {"amountUsd": 1001}, {"tokens": []},
                            {"tokens": ["USDC", "WETH", "BNKR", "USDC"]}, {"tokens": ["NOPE"]}, {"enabled": "yes"}, {}):
                        st, _, data = self.call("POST", "/llm/credits/auto-topup", bad, h)
                        self.assertEqual(st, 400, bad)
                        self.assertIsInstance(json.loads(data)["error"], str)
                self.assertEqual(self.gw.auto_topup, cfg)

        # --- lifecycle ------------------------------------------------------------------------

        def test_stop_releases_hanging_requests(self):
                gw = FakeGateway().start()
                gw.push_fault("*", Fault.hang())
                errors = []

                def client():
                        try:
                                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
                                c.request("GET", "/v1/credits")
                                c.getresponse().read()
                        except Exception as e:  # noqa: BLE001
                                errors.append(e)
                t = threading.Thread(target=client)
                t.start()
                gw.wait_for(lambda: gw.requests)
                t0 = time.monotonic()
                gw.stop()
                t.join(5)
                self.assertLess(time.monotonic() - t0, 2)
                self.assertFalse(t.is_alive())
                self.assertEqual(len(errors), 1)


class StandaloneTest(unittest.TestCase):
        def test_standalone_and_control(self):
                with tempfile.TemporaryDirectory() as d:
                        pf = os.path.join(d, "port")
                        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fakegw.py"), "--port-file", pf],
                                             stdout=subprocess.PIPE, text=True)
                        try:
                                url = p.stdout.readline().strip()
                                self.assertRegex(url, r"^http://127\.0\.0\.1:\d+$")
                                with open(pf) as f:
                                        self.assertEqual(url.rsplit(":", 1)[1], f.read().strip())

                                def req(method, path, obj=None, headers=None):
                                        data = json.dumps(obj).encode() if obj is not None else None
                                        r = urllib.request.Request(url + path, data=data, method=method,
                                                                   headers=headers or {})
                                        try:
                                                with urllib.request.urlopen(r, timeout=5) as resp:
                                                        return resp.status, json.loads(resp.read())
                                        except urllib.error.HTTPError as e:
                                                return e.code, json.loads(e.read())

                                kh = {"X-API-Key": KEY}
                                self.assertEqual(req("POST", "/_control/state", {"balance": 1.5, "reply_text": "yo",
                                                                                 "llm_keys": ["bk_other"]})[0], 200)
                                self.assertEqual(req("GET", "/v1/credits", headers=kh)[0], 401)
                                self.assertEqual(req("GET", "/v1/credits", headers={"X-API-Key": "bk_other"}),
                                                 (200, {"balanceUsd": 1.5}))
                                self.assertEqual(req("POST", "/_control/fault", {"endpoint": "credits", "kind": "http",
                                                                                 "status": 503})[0], 200)
                                self.assertEqual(req("GET", "/v1/credits", headers={"X-API-Key": "bk_other"})[0], 503)
                                self.assertEqual(req("POST", "/_control/fault", {"endpoint": "credits",
                                                                                 "body": "{}", "status": 200, "times": 2})[0], 200)
                                st, reqs = req("GET", "/_control/requests")
                                self.assertEqual([(r["endpoint"], r["status"]) for r in reqs],
                                                 [("credits", 401), ("credits", 200), ("credits", 503)])
                                self.assertEqual(reqs[0]["headers"]["x-api-key"], KEY)
                                self.assertEqual(req("GET", "/_control/disconnects"), (200, []))
                                self.assertEqual(req("POST", "/_control/state", {"nonsense": 1})[0], 400)
                                self.assertEqual(req("POST", "/_control/state", {"stream_options": {"bogus": 1}})[0], 400)
                                self.assertEqual(req("POST", "/_control/fault", {"endpoint": "x", "bogus": 1})[0], 400)
                                self.assertEqual(req("POST", "/_control/reset")[0], 200)
                                self.assertEqual(req("GET", "/v1/credits", headers=kh), (200, {"balanceUsd": 12.5}))
                                self.assertEqual(len(req("GET", "/_control/requests")[1]), 1)
                        finally:
                                p.send_signal(signal.SIGTERM)
                                rc = p.wait(5)
                                p.stdout.close()
                        self.assertEqual(rc, 0)


if __name__ == "__main__":
        unittest.main(verbosity=2)
