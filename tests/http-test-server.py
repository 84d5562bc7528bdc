#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A tiny HTTP/1.1 server for tests/test-http.c (standard library only).

Listens on 127.0.0.1, port 0, prints "PORT <n>" on stdout once ready and
serves until killed. Endpoints (query string parameters in brackets):
  /hello                 "hello world" with Retry-After: 7 and X-Test: yes
  /echo                  answers the request body; X-Got-Content-Type,
                         X-Got-User-Agent, X-Got-Method echo request facts
  /drip[n,delay]         chunked body, n pieces "piece-<i>\n", delay s apart
  /big[size]             size bytes with Content-Length
  /bigchunked[size]      size bytes, chunked (no length known up front)
  /sleep[delay]          sleeps before answering "late"
  /hang                  Content-Length 1000, sends 10 bytes, then waits for the
                         client to close (counted in closed_mid_body)
  /status[code]          that status with the body "error body <code>"
  /stats                 {"connections","requests","closed_mid_body"}
  /reset                 zeroes the counters
"""

import http.server
import json
import select
import sys
import threading
import time
import urllib.parse

lock = threading.Lock()
stats = {"connections": 0, "requests": 0, "closed_mid_body": 0}


def bump(name, n=1):
    with lock:
        stats[name] += n


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        bump("connections")

    def send_body(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def wait_for_close(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.connection], [], [], 0.05)
            if r:
                try:
                    data = self.connection.recv(1)
                except OSError:
                    data = b""
                if not data:
                    return True
        return False

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def handle_any(self):
        bump("requests")
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = url.path

        if path == "/hello":
            self.send_body(200, b"hello world", [("Retry-After", "7"), ("X-Test", "yes")])
        elif path == "/echo":
            self.send_body(200, body, [
                ("X-Got-Content-Type", self.headers.get("Content-Type", "")),
                ("X-Got-User-Agent", self.headers.get("User-Agent", "")),
                ("X-Got-Method", self.command),
                ("X-Got-Authorization", "yes" if self.headers.get("Authorization") else "no"),
            ])
        elif path in ("/drip", "/bigchunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.flush()
            try:
                if path == "/drip":
                    n, delay = int(q.get("n", 5)), float(q.get("delay", 0.05))
                    for i in range(n):
                        self.chunk(b"piece-%d\n" % i)
                        time.sleep(delay)
                else:
                    left = int(q.get("size", 100000))
                    while left > 0:
                        k = min(left, 16384)
                        self.chunk(b"y" * k)
                        left -= k
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
        elif path == "/big":
            self.send_body(200, b"x" * int(q.get("size", 100000)))
        elif path == "/sleep":
            time.sleep(float(q.get("delay", 2)))
            try:
                self.send_body(200, b"late")
            except OSError:
                self.close_connection = True
        elif path == "/hang":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            if self.wait_for_close(10):
                bump("closed_mid_body")
            self.close_connection = True
        elif path == "/status":
            code = int(q.get("code", 500))
            self.send_body(code, b"error body %d" % code, [("Retry-After", "3")])
        elif path == "/stats":
            with lock:
                data = json.dumps(stats).encode()
            self.send_body(200, data, [("Content-Type", "application/json")])
        elif path == "/reset":
            with lock:
                for k in stats:
                    stats[k] = 0
            self.send_body(200, b"ok")
        else:
            self.send_body(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 50 clients connect at once

    def handle_error(self, request, client_address):
        # Clients that hang up early (cancel, size limits) are what we test.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
