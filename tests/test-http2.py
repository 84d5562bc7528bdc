#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llmd over HTTP/2: nghttpx (Debian's nghttp2-proxy) terminates TLS
and h2 on 127.0.0.1 in front of the fake gateway (HTTP/1.1 behind it), with a
test CA (tests/test-tls.py's make_test_pki) trusted through CURL_CA_BUNDLE.

- 50 concurrent streamed chats share one TCP connection (nghttpx's access log
  names the client port of each stream) and each answer is exact;
- cancelling one stream (Request.Cancel) leaves the others intact and the
  connection in use;
- a GOAWAY in the middle (nghttpx reloading: SIGHUP makes the old worker send
  GOAWAY and finish what it has): the streams in flight finish exactly (one
  libcurl race aside, see the test), no POST reaches the gateway twice, and
  new requests go over a new connection.
"""
import collections
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from chatclient import ChatClient, run_until
from fakegw import FakeGateway
import harness
from harness import Env, wait_until, SLOW
from importlib.machinery import SourceFileLoader

HERE = os.path.dirname(os.path.abspath(__file__))
make_test_pki = SourceFileLoader("test_tls", os.path.join(HERE, "test-tls.py")).load_module().make_test_pki

NGHTTPX = shutil.which("nghttpx") or ("/usr/sbin/nghttpx" if os.path.exists("/usr/sbin/nghttpx") else None)
ERR = "bot.bankr.LLM1.Error."
MODEL = "gpt-5-mini"
WORDS = " alpha beta gamma delta epsilon zeta eta theta iota kappa"


def read_text(path):
    with open(path) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(NGHTTPX and shutil.which("openssl"), "needs nghttpx (nghttp2-proxy) and openssl")
class HTTP2Test(harness.TestCase):
    env_args = None  # the session is made here

    def setUp(self):
        super().setUp()
        self.env = Env(keyring=False)
        self.env.start()
        self.gw = self.env.gateway
        self.gw.stream_options = {"echo": True}
        d = os.path.join(self.env.dir, "pki")
        os.makedirs(d)
        make_test_pki(d)
        self.port = free_port()
        self.access_log = os.path.join(self.env.dir, "nghttpx-access.log")
        self.error_log = os.path.join(self.env.dir, "nghttpx-error.log")
        conf = os.path.join(self.env.dir, "nghttpx.conf")
        open(conf, "w").close()   # not /etc/nghttpx/nghttpx.conf
        self.pidfile = os.path.join(self.env.dir, "nghttpx.pid")
        self.proxy = subprocess.Popen([
            NGHTTPX, "--conf=" + conf,
            "-b127.0.0.1,%d" % self.gw.port, "-f127.0.0.1,%d" % self.port,
            "--workers=1", "--no-ocsp", "--pid-file=" + self.pidfile,
            "--accesslog-file=" + self.access_log,
            "--accesslog-format=$remote_port $alpn $method $path $status $pid",
            "--errorlog-file=" + self.error_log,
            "--frontend-http2-max-concurrent-streams=100",
            os.path.join(d, "good.key"), os.path.join(d, "good.pem")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, what="nghttpx listening")
        self.env.write_service_file({
            "BANKR_LLM_URL": "https://127.0.0.1:%d" % self.port,
            "BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY,
            "CURL_CA_BUNDLE": os.path.join(d, "ca.pem"),
        })
        self.chat = ChatClient(self.env)

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def tearDown(self):
        failed = not self.passed
        if failed:
            print("\n--- bankr-llmd log ---\n" + self.env.log())
            for p in (self.error_log, self.access_log):
                if os.path.exists(p):
                    print("\n--- %s ---\n%s" % (os.path.basename(p), read_text(p)[-4000:]))
        self.chat.close()
        self.env.stop(check=not failed)
        if self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(10)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()

    def chats(self):
        """(client port, alpn) of each chat POST nghttpx has logged."""
        out = []
        if os.path.exists(self.access_log):
            for line in read_text(self.access_log).splitlines():
                f = line.split()
                if len(f) >= 4 and f[2] == "POST" and f[3].endswith("/chat/completions"):
                    out.append((f[0], f[1]))
        return out

    def start(self, n, tag, opts=None):
        paths = {}
        for i in range(n):
            prompt = "%s %d%s" % (tag, i, WORDS)
            paths[self.chat.start(MODEL, [("user", prompt)], opts)] = "You said: " + prompt
        return paths

    def assertExact(self, paths, timeout=60):
        for path, want in paths.items():
            res = self.chat.wait(path, timeout * SLOW)
            self.assertIsNone(res.error, res.error)
            self.assertEqual(res.text, want)

    def test_many_streams_share_one_connection(self):
        # Warm up: the first request opens the connection (and the daemon's
        # own start-up fetches are done), so the 50 find it ready to share.
        self.assertExact(self.start(1, "warm-up"))
        paths = self.start(50, "request")
        self.assertExact(paths)
        wait_until(lambda: len(self.chats()) == 51, what="51 chat lines in the access log")
        logged = self.chats()
        self.assertEqual({alpn for _, alpn in logged}, {"h2"})
        self.assertEqual(len({port for port, _ in logged}), 1, logged)
        # Each POST reached the gateway once.
        bodies = [r.json["messages"][-1]["content"] for r in self.gw.requests_for("chat")]
        self.assertEqual(len(bodies), 51)
        self.assertEqual(len(set(bodies)), 51)

    def test_cancel_one_stream(self):
        self.assertExact(self.start(1, "warm-up"))
        slow = {"drip": 0.05}
        self.gw.stream_options = {"echo": True, **slow}
        paths = self.start(8, "request")
        victim = next(iter(paths))
        self.chat.wait_deltas(victim, 2, 20 * SLOW)
        self.chat.cancel(victim)
        res = self.chat.wait(victim, 20 * SLOW)
        self.assertEqual(res.error[0], ERR + "Cancelled", res.error)
        del paths[victim]
        self.assertExact(paths)
        # nghttpx ends the backend connection of the reset stream.
        wait_until(lambda: any(d.endpoint == "chat" for d in self.gw.disconnects), timeout=10,
                   what="the cancelled stream's backend disconnect")
        # The connection survived the RST_STREAM: a new request goes over it.
        self.gw.stream_options = {"echo": True}
        self.assertExact(self.start(1, "after"))
        wait_until(lambda: len(self.chats()) >= 10, what="the chats in the access log")
        ports = {port for port, _ in self.chats()}
        self.assertEqual(len(ports), 1, self.chats())

    def test_goaway_in_the_middle(self):
        self.assertExact(self.start(1, "warm-up"))
        self.gw.stream_options = {"echo": True, "drip": 0.2}   # about 3 s a stream
        before = self.start(10, "in-flight")
        for p in before:
            self.chat.wait_deltas(p, 1, 20 * SLOW)
        pid = int(read_text(self.pidfile))
        old_workers = set(self.worker_pids(pid))
        os.kill(pid, signal.SIGHUP)      # reload: the old worker sends GOAWAY, finishes
        self.assertFalse(any(self.chat.results[p].done for p in before), "the GOAWAY came too late")
        wait_until(lambda: set(self.worker_pids(pid)) - old_workers, timeout=10, what="a new nghttpx worker")
        # nghttpx spawns the new worker before it tells the old one to shut
        # down, so the GOAWAY may still be on its way: wait until the old
        # worker has begun, then until every stream in flight has had two
        # more deltas, written after the GOAWAY on the same connection, so
        # that libcurl has read it before the new requests start.
        wait_until(lambda: "Graceful shutdown commencing" in read_text(self.error_log),
                   timeout=10, what="the old worker's graceful shutdown")
        seen = {p: len(self.chat.results[p].deltas) for p in before}
        for p in before:
            self.chat.wait_deltas(p, seen[p] + 2, 20 * SLOW)
        self.assertFalse(any(self.chat.results[p].done for p in before), "the streams ended too early")
        self.gw.stream_options = {"echo": True}
        after = self.start(5, "new")
        self.assertExact(after)
        # The old worker closes the connection as soon as its last stream has
        # ended. libcurl 7.88 may then fail a send on it (EPIPE, the close's
        # RST) before it reads that last stream's end, and fail it: a known
        # libcurl race (curl issue #5611), not seen in 20 runs with no other load,
        # a few runs in 30 with the two cores busy. What the service must do
        # then: every word delivered, an honest "cut short" error, and no
        # second POST (the count below). Everything else must be exact.
        cut = []
        for path, want in before.items():
            res = self.chat.wait(path, 60 * SLOW)
            self.assertEqual(res.text, want)
            if res.error:
                cut.append(res.error)
                self.assertEqual(res.error[0], ERR + "GatewayUnavailable", res.error)
                self.assertIn("cut short after %d bytes" % len(want.encode()), res.error[1])
                self.assertRegex(res.error[1], "Broken pipe|Connection reset")
        self.assertLessEqual(len(cut), 1, cut)
        wait_until(lambda: len(self.chats()) == 16, timeout=15, what="16 chats in the access log")
        # The warm-up and the 10 in flight on the first connection, the 5
        # new ones on new connections. (libcurl 7.88 opens one for each of
        # them when they start together after the GOAWAY, instead of
        # multiplexing them on the first new one: a cost, not an error.)
        logged = self.chats()
        first = logged[0][0]
        counts = collections.Counter(port for port, _ in logged)
        self.assertEqual(counts.pop(first), 11, logged)
        self.assertEqual(sum(counts.values()), 5, logged)
        self.assertLessEqual(len(counts), 5, logged)
        # No POST was sent twice.
        bodies = [r.json["messages"][-1]["content"] for r in self.gw.requests_for("chat")]
        self.assertEqual(len(bodies), 16)
        self.assertEqual(len(set(bodies)), 16)

    @staticmethod
    def worker_pids(parent):
        out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]


if __name__ == "__main__":
    unittest.main(verbosity=2)
