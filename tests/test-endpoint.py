#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bot.bankr.LLM1.Endpoint: the local gateway inside bankr-llmd, against a
private bus, the real keyring, the fake gateway and the built daemon. Clients
are http.client (TCP and the unix socket) and curl. Covers every refusal
(no, wrong, revoked — also mid-stream —, expired token; Host; Origin; body
and header size; model allowlist; budget), byte-exact forwarding (the fake
records what arrived: the body is equal, the real key was added, the
caller's token and cookies are gone), streamed and unstreamed answers in
both formats with SSE arriving unbuffered, GET /v1/models from the cache,
token lifetimes (connection dies with its creator; persistent survives a
restart and is stored only hashed) and that no key or token reaches the log."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import unittest

import dbus

from fakegw import FakeGateway
from busmonitor import BusMonitor
from harness import Env, wait_until, SLOW

KEY = FakeGateway.DEFAULT_KEY
EP = "bot.bankr.LLM1.Endpoint"
OBJ = "/bot/bankr/LLM1"
PROPS = "org.freedesktop.DBus.Properties"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Client:
    """One bus connection of our own: connection tokens live as long as it."""

    def __init__(self, env):
        self.bus = dbus.bus.BusConnection(env.bus_address)
        self.obj = self.bus.get_object("bot.bankr.LLM1", OBJ)
        self.ep = dbus.Interface(self.obj, EP)

    def token(self, app="test-app", **opts):
        o = dbus.Dictionary({}, signature="sv")
        for k, v in opts.items():
            if k == "expires_s":
                v = dbus.UInt32(v)
            elif k == "budget_usd":
                v = dbus.Double(v)
            elif k == "models":
                v = dbus.Array(v, signature="s")
            o[k] = v
        tok, tid = self.ep.CreateToken(app, o)
        return str(tok), str(tid)

    def prop(self, name):
        return self.obj.Get(EP, name, dbus_interface=PROPS)

    def close(self):
        self.bus.close()


def chat_body(model="gpt-5-mini", stream=False, text="hello there"):
    b = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        b["stream"] = True
        b["stream_options"] = {"include_usage": True}
    # Odd spacing and key order: forwarding must keep the bytes, not re-encode.
    return (json.dumps(b, indent=1) + "\n").encode()


def messages_body(model="claude-haiku-4.5", stream=False):
    b = {"max_tokens": 50, "model": model, "messages": [{"role": "user", "content": "hi  there"}]}
    if stream:
        b["stream"] = True
    return json.dumps(b, separators=(", ", ": ")).encode()


class EndpointTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env(service_env={"BANKR_LLM_KEY": KEY, "BANKR_LLMD_ENDPOINT_PORT": "0"})
        cls.env.start()
        cls.env.start_service()
        cls.client = Client(cls.env)
        cls.url = str(cls.client.prop("Url"))
        cls.sock = str(cls.client.prop("SocketPath"))
        cls.port = int(cls.url.rsplit(":", 1)[1])
        cls.tok, cls.tid = cls.client.token()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.env.stop()

    def setUp(self):
        self.env.gateway.reset()
        self.env.gateway.clear_requests()

    def conn(self, unix=False):
        if unix:
            return UnixHTTPConnection(self.sock, timeout=30 * SLOW)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30 * SLOW)

    def request(self, method, path, body=None, headers=None, token=True, unix=False):
        h = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            h["Authorization"] = "Bearer " + (token if isinstance(token, str) else self.tok)
        h.update(headers or {})
        c = self.conn(unix)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    # ---- the basics -----------------------------------------------------

    def test_properties(self):
        self.assertTrue(self.url.startswith("http://127.0.0.1:"))
        self.assertTrue(self.sock.endswith("/bankr-llm/endpoint.sock"))
        self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)
        toks = [dict(t) for t in self.client.prop("Tokens")]
        mine = [t for t in toks if str(t["id"]) == self.tid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(str(mine[0]["app"]), "test-app")
        self.assertEqual(str(mine[0]["lifetime"]), "connection")
        for t in toks:
            self.assertNotIn(self.tok, json.dumps({k: str(v) for k, v in t.items()}))

    def test_models_from_cache(self):
        r, data = self.request("GET", "/v1/models")
        self.assertEqual(r.status, 200, data)
        ids = [m["id"] for m in json.loads(data)["data"]]
        self.assertIn("gpt-5-mini", ids)
        r2, data2 = self.request("GET", "/models", unix=True)
        self.assertEqual(r2.status, 200)
        self.assertEqual(json.loads(data2), json.loads(data))
        # Answered from the cache: no request reached the gateway for it.
        self.assertEqual(self.env.gateway.requests_for("models")[len(self.env.gateway.requests_for("models")):], [])

    # ---- forwarding ------------------------------------------------------

    def test_forwarding_is_byte_exact(self):
        body = chat_body()
        r, data = self.request("POST", "/v1/chat/completions", body,
                               {"Cookie": "session=secret", "X-Custom": "kept", "User-Agent": "tool/1.0",
                                "x-api-key": self.tok, "Accept": "application/json", "Connection": "keep-alive, X-Hop",
                                "X-Hop": "dropped", "Proxy-Authorization": "Basic eA=="})
        self.assertEqual(r.status, 200, data)
        self.assertEqual(json.loads(data)["choices"][0]["message"]["content"], "Hello, world!")
        rec = self.env.gateway.requests_for("chat")[-1]
        self.assertEqual(rec.body, body)
        self.assertEqual(rec.headers.get("authorization"), "Bearer " + KEY)
        self.assertEqual(rec.headers.get("x-custom"), "kept")
        self.assertEqual(rec.headers.get("user-agent"), "tool/1.0")
        self.assertEqual(rec.headers.get("content-type"), "application/json")
        self.assertEqual(rec.headers.get("accept"), "application/json")
        self.assertNotIn("proxy-authorization", rec.headers)
        self.assertNotIn("x-hop", rec.headers)
        self.assertNotIn("cookie", rec.headers)
        self.assertNotIn("x-api-key", rec.headers)
        for v in rec.headers.values():
            self.assertNotIn(self.tok, v)

    def test_messages_query_and_headers(self):
        body = messages_body()
        r, data = self.request("POST", "/v1/messages?beta=true", body,
                               {"anthropic-version": "2023-06-01", "anthropic-beta": "x-2025"}, token=False,
                               unix=True)
        self.assertEqual(r.status, 401)
        r, data = self.request("POST", "/v1/messages?beta=true", body,
                               {"anthropic-version": "2023-06-01", "anthropic-beta": "x-2025", "x-api-key": self.tok},
                               token=False, unix=True)
        self.assertEqual(r.status, 200, data)
        self.assertEqual(json.loads(data)["type"], "message")
        rec = self.env.gateway.requests_for("messages")[-1]
        self.assertEqual(rec.body, body)
        self.assertEqual(rec.query, "beta=true")
        self.assertEqual(rec.headers.get("x-api-key"), KEY)
        self.assertEqual(rec.headers.get("anthropic-beta"), "x-2025")

    def test_count_tokens_and_prefixes(self):
        r, data = self.request("POST", "/messages/count_tokens", messages_body(),
                               {"anthropic-version": "2023-06-01"})
        self.assertEqual(r.status, 200, data)
        self.assertIn("input_tokens", json.loads(data))
        # (deepseek-v3.2 is the fake's model served at every tier.)
        r, data = self.request("POST", "/zdr/v1/chat/completions", chat_body("deepseek-v3.2"))
        self.assertEqual(r.status, 200, data)
        self.assertEqual((self.env.gateway.requests[-1].path_tier, self.env.gateway.requests[-1].path),
                         ("zdr", "/v1/chat/completions"))
        r, data = self.request("POST", "/private/chat/completions", chat_body("deepseek-v3.2"))
        self.assertEqual(r.status, 200, data)
        self.assertEqual((self.env.gateway.requests[-1].path_tier, self.env.gateway.requests[-1].path),
                         ("private", "/v1/chat/completions"))
        r, data = self.request("POST", "/v1/images/generations",
                               json.dumps({"model": "gpt-image-2", "prompt": "a cat"}).encode())
        self.assertEqual(r.status, 200, data)
        self.assertIn("b64_json", json.loads(data)["data"][0])

    def test_default_privacy_raises_endpoint_traffic(self):
        self.env.set("Chat", "DefaultPrivacy", "s", "zdr")
        try:
            r, data = self.request("POST", "/v1/chat/completions", chat_body("deepseek-v3.2"))
            self.assertEqual(r.status, 200, data)
            self.assertEqual(self.env.gateway.requests[-1].path_tier, "zdr")
            # Failing closed: a model without zero data retention is refused
            # by the gateway, not served at a weaker tier.
            r, data = self.request("POST", "/v1/chat/completions", chat_body("gpt-5-mini"))
            self.assertEqual(r.status, 422, data)
            # A stronger tier asked for by the caller stays.
            r, data = self.request("POST", "/private/v1/chat/completions", chat_body("deepseek-v3.2"))
            self.assertEqual(r.status, 200, data)
            self.assertEqual(self.env.gateway.requests[-1].path_tier, "private")
        finally:
            self.env.set("Chat", "DefaultPrivacy", "s", "standard")
        r, data = self.request("POST", "/v1/chat/completions", chat_body())
        self.assertEqual(r.status, 200, data)
        self.assertIsNone(self.env.gateway.requests[-1].path_tier)

    def test_gateway_errors_pass_through(self):
        from fakegw import Fault
        self.env.gateway.push_fault("chat", Fault.http(429, "slow down", headers={"Retry-After": "7"}))
        r, data = self.request("POST", "/v1/chat/completions", chat_body())
        self.assertEqual(r.status, 429)
        self.assertEqual(r.getheader("retry-after"), "7")
        self.assertEqual(json.loads(data)["error"]["message"], "slow down")
        # An error that quotes the key comes back with the key redacted.
        self.env.gateway.push_fault("chat", Fault.http(401, "bad key " + KEY))
        r, data = self.request("POST", "/v1/chat/completions", chat_body())
        self.assertEqual(r.status, 401)
        self.assertNotIn(KEY, data.decode())
        self.assertIn("***", data.decode())
        # Also when the error body trickles in: no piece of it goes out before the end.
        err = json.dumps({"error": {"message": "bad key " + KEY, "type": "auth", "code": "x"}}).encode()
        self.env.gateway.push_fault("chat", Fault(status=401, body=err, chunk_sizes=[45, 10, 10, 10, 1000],
                                                  drip=0.1 * SLOW, chunked=True))
        r, data = self.request("POST", "/v1/chat/completions", chat_body())
        self.assertEqual(r.status, 401)
        self.assertNotIn(KEY[:12], data.decode())
        self.assertIn("***", data.decode())

    def test_streams_unbuffered_both_formats(self):
        self.env.gateway.stream_options = {"drip": 0.15 * SLOW}
        for path, body, extra in (("/v1/chat/completions", chat_body(stream=True, text="one two three four"), {}),
                                  ("/v1/messages", messages_body(stream=True), {"anthropic-version": "2023-06-01"})):
            self.env.gateway.reply_text = "alpha beta gamma delta"
            c = self.conn()
            h = {"Authorization": "Bearer " + self.tok, "Content-Type": "application/json", "Accept": "text/event-stream"}
            h.update(extra)
            c.request("POST", path, body=body, headers=h)
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.getheader("content-type").startswith("text/event-stream"))
            times, chunks = [], []
            while True:
                line = r.readline()
                if not line:
                    break
                if line.startswith(b"data:"):
                    times.append(time.monotonic())
                    chunks.append(line)
            c.close()
            self.assertGreaterEqual(len(times), 4, chunks)
            # Each event arrived on its own, about a drip apart: not all at the end.
            spread = times[-1] - times[0]
            self.assertGreater(spread, 0.3 * SLOW, "events arrived together: buffered")

    def test_answer_not_held_back(self):
        # The end of an answer goes out as soon as it arrived: the listener's
        # timer must not wait for sd-event's default accuracy (250 ms).
        body = chat_body()
        for unix in (False, True):
            totals = []
            c = self.conn(unix)
            for _ in range(7):
                t0 = time.monotonic()
                c.request("POST", "/v1/chat/completions", body=body,
                          headers={"Authorization": "Bearer " + self.tok, "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                totals.append(time.monotonic() - t0)
            c.close()
            totals.sort()
            self.assertLess(totals[3], 0.1 * SLOW, "answers held back: %r" % totals)

    def test_large_answer_slow_reader(self):
        # 12 MiB from the gateway to a client that waits before reading: the
        # relay pauses the gateway (backpressure) and loses no byte.
        from fakegw import Fault
        self.env.gateway.push_fault("chat", Fault.huge(12 * 1024 * 1024))
        c = self.conn()
        c.request("POST", "/v1/chat/completions", body=chat_body(),
                  headers={"Authorization": "Bearer " + self.tok, "Content-Type": "application/json"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        time.sleep(1.0)
        n = 0
        while True:
            b = r.read(256 * 1024)
            if not b:
                break
            n += len(b)
        c.close()
        self.assertEqual(n, 12 * 1024 * 1024)

    def test_books_on_token(self):
        c = Client(self.env)
        tok, tid = c.token(app="booker")
        self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.request("POST", "/v1/chat/completions", chat_body(stream=True), token=tok)
        t = [dict(x) for x in c.prop("Tokens") if str(dict(x)["id"]) == tid][0]
        self.assertEqual(int(t["requests"]), 2)
        self.assertGreater(float(t["spent_usd"]), 0)
        self.assertGreater(int(t["last_used_at"]), 0)
        # And in the ledger, under the token's app, via the endpoint.
        usage = dbus.Interface(c.obj, "bot.bankr.LLM1.Usage")

        def recent():
            return [dict(x) for x in usage.Recent(dbus.UInt32(10), dbus.Dictionary({"app": "booker"}, signature="sv"))]
        wait_until(lambda: len(recent()) == 2, timeout=5 * SLOW, what="two ledger records")
        for rec in recent():
            self.assertEqual(str(rec["via"]), "endpoint")
            self.assertEqual(str(rec["app"]), "booker")
            self.assertEqual(str(rec["status"]), "finished")
            self.assertEqual(str(rec["model"]), "gpt-5-mini")
            self.assertGreater(int(rec["input_tokens"]) + int(rec["output_tokens"]), 0)
            self.assertGreater(float(rec["cost_usd"]), 0)
        c.close()

    def test_tokens_signal_coalesced(self):
        # Spending is announced at most once a second, and the last word is
        # the final count; creating a token is announced at once.
        c = Client(self.env)
        with BusMonitor(self.env) as mon:
            tok, tid = c.token(app="signals")
            wait_until(lambda: len(mon.changed("Endpoint")) >= 1, timeout=5 * SLOW, what="Tokens changed on create")
            created = len(mon.changed("Endpoint"))
            start = time.monotonic()
            for _ in range(6):
                self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
            took = time.monotonic() - start
            wait_until(lambda: len(mon.changed("Endpoint")) > created, timeout=5 * SLOW, what="Tokens changed after requests")
            time.sleep(1.5)
            after = len(mon.changed("Endpoint")) - created
            self.assertGreaterEqual(after, 1)
            self.assertLessEqual(after, int(took) + 2)
        t = [dict(x) for x in c.prop("Tokens") if str(dict(x)["id"]) == tid][0]
        self.assertEqual(int(t["requests"]), 6)
        c.close()

    def test_curl_both_transports(self):
        body = chat_body()
        for extra in ([], ["--unix-socket", self.sock]):
            r = subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}"] + extra +
                               ["-H", "Authorization: Bearer " + self.tok, "-H", "Content-Type: application/json",
                                "--data-binary", "@-", self.url + "/v1/chat/completions"],
                               input=body, capture_output=True, timeout=30 * SLOW)
            out = r.stdout.decode()
            self.assertTrue(out.endswith("200"), out + r.stderr.decode())
            self.assertEqual(self.env.gateway.requests_for("chat")[-1].body, body)

    # ---- refusals --------------------------------------------------------

    def assertRefused(self, r, data, status, anthropic=False):
        self.assertEqual(r.status, status, data)
        o = json.loads(data)
        if anthropic:
            self.assertEqual(o["type"], "error")
            self.assertIn("type", o["error"])
            self.assertIn("message", o["error"])
        else:
            self.assertEqual(set(o["error"]), {"message", "type", "code"})

    def test_refusal_waits_for_a_small_body(self):
        # A refusal decided from the headers waits for the body, so that a
        # client still sending sees the 401, not a reset connection.
        body = messages_body()
        for unix in (False, True):
            if unix:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
            else:
                s = socket.create_connection(("127.0.0.1", self.port))
            s.settimeout(10 * SLOW)
            s.sendall(("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                       "anthropic-version: 2023-06-01\r\nContent-Length: %d\r\n\r\n" % (self.port, len(body))).encode())
            time.sleep(0.3)
            s.sendall(body[:10])
            time.sleep(0.2)
            s.sendall(body[10:])
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            s.close()
            self.assertTrue(got.startswith(b"HTTP/1.1 401"), got[:200])
        self.assertEqual(self.env.gateway.requests_for("messages"), [])

    def test_refusals(self):
        # What the endpoint forwarded (the service's own background fetches of
        # models and credits may land at any time).
        def forwarded():
            return len([q for q in self.env.gateway.requests if q.endpoint not in ("models", "credits")])
        n = forwarded()
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=False)
        self.assertRefused(r, d, 401)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token="bllm_" + "0" * 64)
        self.assertRefused(r, d, 401)
        r, d = self.request("POST", "/v1/messages", messages_body(), token="nope",
                            headers={"anthropic-version": "2023-06-01"})
        self.assertRefused(r, d, 401, anthropic=True)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), headers={"Host": "evil.example:%d" % self.port})
        self.assertRefused(r, d, 403)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), headers={"Host": "127.0.0.1:1"})
        self.assertRefused(r, d, 403)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), headers={"Origin": "https://evil.example"})
        self.assertRefused(r, d, 403)
        # Over the body cap: refused on the headers, before the body is read.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30 * SLOW)
        s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
                   (self.port, self.tok, 32 * 1024 * 1024 + 1)).encode())
        f = s.makefile("rb")
        r = http.client.HTTPResponse(s)
        r.begin()
        self.assertRefused(r, r.read(), 413)
        s.close()
        f.close()
        r, d = self.request("GET", "/v1/nothing")
        self.assertRefused(r, d, 404)
        r, d = self.request("GET", "/v1/chat/completions")
        self.assertRefused(r, d, 405)
        self.assertEqual(forwarded(), n, "a refused request reached the gateway")
        # Headers over the connection's memory: refused by libmicrohttpd itself.
        # The server may answer and close while the client is still sending
        # the 100 KB header; then the client sees the close, not the answer.
        try:
            r, d = self.request("POST", "/v1/chat/completions", chat_body(), headers={"X-Big": "y" * 100000})
            self.assertIn(r.status, (413, 431))
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertEqual(forwarded(), n, "a refused request reached the gateway")

    def test_model_allowlist_and_budget(self):
        c = Client(self.env)
        tok, _ = c.token(models=["gpt-5-mini"])
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.assertEqual(r.status, 200, d)
        r, d = self.request("POST", "/v1/messages", messages_body(), token=tok, headers={"anthropic-version": "2023-06-01"})
        self.assertRefused(r, d, 403, anthropic=True)
        r, d = self.request("GET", "/v1/models", token=tok)
        self.assertEqual(r.status, 200)
        self.assertEqual([m["id"] for m in json.loads(d)["data"]], ["gpt-5-mini"])
        tok2, _ = c.token(budget_usd=1e-9)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok2)
        self.assertEqual(r.status, 200, d)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok2)
        self.assertRefused(r, d, 402)
        self.assertEqual(json.loads(d)["error"]["type"], "budget_exceeded")
        c.close()

    def test_expiring(self):
        c = Client(self.env)
        tok, _ = c.token(lifetime="expiring", expires_s=1)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.assertEqual(r.status, 200, d)
        time.sleep(1.2)
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.assertRefused(r, d, 401)
        with self.assertRaises(dbus.DBusException):
            c.token(lifetime="expiring", expires_s=8 * 24 * 3600)
        with self.assertRaises(dbus.DBusException):
            c.token(lifetime="expiring")
        c.close()

    def test_connection_token_dies_with_creator(self):
        c = Client(self.env)
        tok, tid = c.token()
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.assertEqual(r.status, 200, d)
        c.close()
        wait_until(lambda: all(str(dict(t)["id"]) != tid for t in self.client.prop("Tokens")), timeout=5 * SLOW,
                   what="the token to go with its creator")
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.assertRefused(r, d, 401)

    def test_revoke_cuts_mid_stream(self):
        c = Client(self.env)
        tok, tid = c.token()
        self.env.gateway.stream_options = {"drip": 0.2 * SLOW}
        self.env.gateway.reply_text = " ".join("w%d" % i for i in range(40))
        conn = self.conn()
        conn.request("POST", "/v1/chat/completions", body=chat_body(stream=True),
                     headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.fp.readline())
        t0 = time.monotonic()
        c.ep.RevokeToken(tid)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, http.client.HTTPException)):
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    raise http.client.IncompleteRead(b"")
        self.assertLess(time.monotonic() - t0, 3 * SLOW)
        conn.close()
        # The gateway saw its client go.
        wait_until(lambda: self.env.gateway.disconnects, timeout=5 * SLOW, what="the upstream to be cut")
        r, d = self.request("POST", "/v1/chat/completions", chat_body(), token=tok)
        self.assertRefused(r, d, 401)
        c.close()

    def test_client_leaving_cuts_upstream(self):
        self.env.gateway.stream_options = {"drip": 0.2 * SLOW}
        self.env.gateway.reply_text = " ".join("w%d" % i for i in range(40))
        n = len(self.env.gateway.disconnects)
        conn = self.conn(unix=True)
        conn.request("POST", "/v1/chat/completions", body=chat_body(stream=True),
                     headers={"Authorization": "Bearer " + self.tok, "Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.readline())
        conn.close()
        r.close()
        wait_until(lambda: len(self.env.gateway.disconnects) > n, timeout=5 * SLOW,
                   what="the upstream transfer to be cut when the client left")

    def test_second_instance_leaves_the_endpoint_alone(self):
        from harness import DAEMON
        r = self.env.run([DAEMON], timeout=10 * SLOW,
                         env={"BANKR_LLM_KEY": KEY, "BANKR_LLM_URL": self.env.gateway.url})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already owned", r.stderr)
        self.assertNotIn("ndpoint", r.stderr)
        r, d = self.request("GET", "/v1/models", unix=True)
        self.assertEqual(r.status, 200)
        r, d = self.request("GET", "/v1/models")
        self.assertEqual(r.status, 200)

    def test_zz_no_secret_in_log(self):
        log = self.env.log()
        self.assertNotIn(KEY, log)
        self.assertNotIn(self.tok, log)
        self.assertNotIn(self.tok[5:], log)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_mid_stream(self):
        # Streams and a request still waiting for the gateway when the
        # service stops: it exits cleanly (the harness fails on a crash).
        from fakegw import Fault
        with Env(service_env={"BANKR_LLM_KEY": KEY, "BANKR_LLMD_ENDPOINT_PORT": "0"}) as env:
            env.start_service()
            c = Client(env)
            tok, _ = c.token()
            port = int(str(c.prop("Url")).rsplit(":", 1)[1])
            env.gateway.stream_options = {"drip": 0.2}
            env.gateway.reply_text = " ".join("w%d" % i for i in range(50))
            conns = []
            for i in range(3):
                if i == 2:
                    # The hang must meet the third request, not a slow first one.
                    wait_until(lambda: len(env.gateway.requests_for("chat")) == 2, timeout=10 * SLOW,
                               what="the first two streams to reach the gateway")
                    env.gateway.push_fault("chat", Fault.hang())
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * SLOW)
                conn.request("POST", "/v1/chat/completions", body=chat_body(stream=True),
                             headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
                conns.append(conn)
            r = conns[0].getresponse()
            self.assertTrue(r.readline())
            env.stop_service()
            for conn in conns:
                conn.close()
            c.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(shutil.which("systemd-socket-activate"), "needs systemd-socket-activate")
class SocketActivationTest(unittest.TestCase):
    """What bankr-llmd.socket hands the service, as systemd-socket-activate
    passes it (LISTEN_FDS): the first connection starts the daemon, which
    serves on the sockets it got, keeps their port and leaves the socket
    file to its owner; a socket it must not listen on is closed."""

    def test_first_connection_starts_the_service(self):
        with Env(service_env={"BANKR_LLM_KEY": KEY}) as env:
            port, other = free_port(), free_port()
            sock = os.path.join(env.dir, "passed.sock")
            wrapper = os.path.join(env.dir, "run-bankr-llmd")   # the service file's Exec: the daemon's environment
            # What dbus-daemon would give it, and the sockets.
            setenv = []
            for k, v in dict(env.environ, DBUS_SESSION_BUS_ADDRESS=env.bus_address).items():
                setenv += ["-E", "%s=%s" % (k, v)]
            act = subprocess.Popen(
                ["systemd-socket-activate", "-l", "127.0.0.1:%d" % port, "-l", sock, "-l", "0.0.0.0:%d" % other,
                 "--fdname=endpoint:endpoint:endpoint"] + setenv + [wrapper],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: os.path.exists(sock), timeout=10, what="the passed socket")
                self.assertIsNone(env.service_pid(), "started before any connection")
                # A request that waits in the backlog while the service starts.
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * SLOW)
                conn.request("POST", "/v1/chat/completions", body=chat_body(),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                self.assertEqual(r.status, 401, r.read())
                conn.close()
                self.assertIsNotNone(env.service_pid())
                c = Client(env)
                self.assertEqual(str(c.prop("Url")), "http://127.0.0.1:%d" % port)
                self.assertEqual(str(c.prop("SocketPath")), sock)
                tok, _ = c.token()
                u = UnixHTTPConnection(sock, timeout=30 * SLOW)
                u.request("GET", "/v1/models", headers={"Authorization": "Bearer " + tok})
                self.assertEqual(u.getresponse().status, 200)
                u.close()
                c.close()
                # 0.0.0.0 is not loopback: closed, with a warning.
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", other), 5).close()
                self.assertIn("ignoring socket", env.log())
                self.assertIn("(bankr-llmd.socket's)", env.log())
                with open(os.path.join(env.environ["HOME"], ".local", "state", "bankr-llm", "endpoint.json")) as f:
                    self.assertEqual(json.load(f)["port"], port)
                env.stop_service()
                self.assertTrue(os.path.exists(sock), "the daemon removed a socket that is not its own")
            finally:
                act.terminate()
                act.wait()


class PersistentTest(unittest.TestCase):
    def test_persistent_survives_restart_hashed(self):
        with Env(system_bus=True, service_env={"BANKR_LLM_KEY": KEY, "BANKR_LLMD_ENDPOINT_PORT": "0",
                                               "BANKR_LLMD_POLKIT_TIMEOUT_MS": "3000"}) as env:
            env.write_service_file({"DBUS_SYSTEM_BUS_ADDRESS": env.environ["DBUS_SYSTEM_BUS_ADDRESS"]})
            polkit = env.start_polkitd()
            env.start_service()
            c = Client(env)
            # Without polkit's yes: refused.
            with self.assertRaises(dbus.DBusException) as cm:
                c.token(app="keeper", lifetime="persistent")
            self.assertIn("NotAuthorized", cm.exception.get_dbus_name())
            polkit.set_allowed(["bot.bankr.LLM1.create-token"])
            url = str(c.prop("Url"))
            tok, tid = c.token(app="keeper", lifetime="persistent")
            c.close()
            state = os.path.join(env.home, ".local", "state", "bankr-llm")
            self.assertEqual(os.stat(os.path.join(state, "tokens.json")).st_mode & 0o777, 0o600)
            env.restart_service()
            c = Client(env)
            self.assertEqual(str(c.prop("Url")), url, "the port changed across a restart")
            ids = [str(dict(t)["id"]) for t in c.prop("Tokens")]
            self.assertIn(tid, ids)
            port = int(url.rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * SLOW)
            conn.request("POST", "/v1/chat/completions", body=chat_body(),
                         headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            # Stored hashed only: the token is in no file of the session.
            self.assertEqual(env.files_containing(tok), [])
            self.assertEqual(env.files_containing(tok[5:]), [])
            c.ep.RevokeToken(tid)
            c.close()
            with open(os.path.join(state, "tokens.json")) as f:
                self.assertEqual(json.load(f), [])
            polkit.stop()


if __name__ == "__main__":
    unittest.main()
