#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Chat benchmark: bankr-llmd against a direct curl of the same request to
the same fake gateway (tests/fakegw.py, out of process, streaming as fast as
it can), side by side in one run.  Measures time to first token, relay
throughput, 256 concurrent streams, and the service's memory (idle, under
load, across 10,000 sequential requests).  Prints a Markdown table.

    ninja -C build bench-chat
    BANKR_BUILD_DIR=build /usr/bin/python3 bench/bench-chat.py [--quick]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests"))

from harness import Env  # noqa: E402
from fakegw import FakeGateway  # noqa: E402

BUILD = os.environ.get("BANKR_BUILD_DIR", os.path.join(SRC, "build"))
CLIENT = os.path.join(BUILD, "bench", "bench-chat-client")
KEY = FakeGateway.DEFAULT_KEY
MODEL = "gpt-5-mini"


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Gateway:
    def __init__(self, tmpdir):
        port_file = os.path.join(tmpdir, "fakegw.port")
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(SRC, "tests", "fakegw.py"), "--port-file", port_file],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().strip()

    def control(self, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(self.url + "/_control/" + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def stream(self, **opts):
        self.control("state", {"stream_options": opts})
        self.control("clear_requests", {})

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Sampler(threading.Thread):
    """Peak RSS of a process, sampled every few ms while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.running = True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.005)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def anon_kb(pid):
    """Anonymous memory (heap, stacks): what the service allocates, without
    the shared libraries' pages that RSS also counts."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, quick):
        self.quick = quick
        self.env = Env(keyring=False, gateway=False, daemon_args=())
        self.env.start()
        self.gw = Gateway(self.env.dir)
        self.env.write_service_file({"BANKR_LLM_URL": self.gw.url, "BANKR_API_URL": self.gw.url, "BANKR_LLM_KEY": KEY})
        self.pid = self.env.start_service()
        time.sleep(0.5)  # let the start-up fetches (models, credits) finish
        self.rows = []

    def close(self):
        try:
            self.env.stop()
        finally:
            self.gw.stop()

    def client(self, kind, mode, n):
        argv = [CLIENT, kind, mode, str(n)]
        if kind == "curl":
            argv += [self.gw.url, KEY]
        argv.append(MODEL)
        r = subprocess.run(argv, env=self.env.environ, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (argv, r.stderr))
        out = []
        for line in r.stdout.splitlines():
            ok, ttft, total, deltas, signals, nbytes = line.split()
            out.append({"ok": ok == "ok", "ttft": int(ttft) / 1000.0, "total": int(total) / 1000.0,
                        "deltas": int(deltas), "signals": int(signals), "bytes": int(nbytes)})
        return out

    def row(self, metric, service, curl, compare, target, verdict):
        self.rows.append((metric, service, curl, compare, target, verdict))

    def ttft(self):
        self.gw.stream()  # the default short answer
        n, blocks = (30, 2) if self.quick else (100, 4)
        svc, crl = [], []
        self.client("service", "sequential", 20)  # warm up both paths
        self.client("curl", "sequential", 20)
        for _ in range(blocks):
            # The first request of a block opens the connections: left out.
            svc += [r["ttft"] for r in self.client("service", "sequential", n + 1)[1:]]
            crl += [r["ttft"] for r in self.client("curl", "sequential", n + 1)[1:]]
        ms, mc = statistics.median(svc), statistics.median(crl)
        added = ms - mc
        self.row("time to first token, median (%d requests)" % len(svc), "%.3f ms" % ms, "%.3f ms" % mc,
                 "+%.3f ms" % added, "≤ +1 ms", "met" if added <= 1.0 else "missed")
        self.row("time to first token, p90", "%.3f ms" % pct(svc, 90), "%.3f ms" % pct(crl, 90),
                 "+%.3f ms" % (pct(svc, 90) - pct(crl, 90)), "", "")

    def throughput(self):
        n = 50000 if self.quick else 200000
        self.gw.stream(fast_deltas=n)
        res = {"service": [], "curl": []}
        for _ in range(3):
            for kind in ("service", "curl"):
                (r,) = self.client(kind, "sequential", 1)
                assert r["ok"] and r["bytes"] == 4 * n, r
                res[kind].append(r)
        med = {k: sorted(v, key=lambda r: r["total"])[1] for k, v in res.items()}
        s, c = med["service"], med["curl"]
        ds, dc = n / (s["total"] / 1000), n / (c["total"] / 1000)
        self.row("relay throughput, deltas/s (%d deltas)" % n, "%.0f" % ds, "%.0f" % dc, "×%.2f" % (ds / dc), "", "")
        self.row("relay throughput, text MB/s", "%.2f" % (s["bytes"] / s["total"] / 1000),
                 "%.2f" % (c["bytes"] / c["total"] / 1000), "×%.2f" % (ds / dc), "", "")
        self.row("Delta signals for %d upstream deltas" % n, "%d" % s["signals"], "(%d reads)" % c["signals"],
                 "", "", "")

    def concurrency(self):
        n = 256
        words = " ".join("word%d" % i for i in range(100))
        self.gw.stream(reply=words)
        svc, crl = [], []
        peak = 0
        failures = 0
        rounds = 1 if self.quick else 3
        for _ in range(rounds):
            sampler = Sampler(self.pid)
            sampler.start()
            r = self.client("service", "concurrent", n)
            peak = max(peak, sampler.stop())
            failures += sum(1 for x in r if not x["ok"] or x["bytes"] != len(words))
            svc += r
            r = self.client("curl", "concurrent", n)
            failures += sum(1 for x in r if not x["ok"] or x["bytes"] != len(words))
            crl += r
        for what in ("ttft", "total"):
            a = [x[what] for x in svc]
            b = [x[what] for x in crl]
            for p in (50, 99):
                self.row("%d concurrent streams, %s p%d" % (n, "first token" if what == "ttft" else "complete", p),
                         "%.1f ms" % pct(a, p), "%.1f ms" % pct(b, p), "%+.1f ms" % (pct(a, p) - pct(b, p)), "", "")
        self.row("%d concurrent streams, all complete (%d rounds)" % (n, rounds),
                 "%d/%d" % (len(svc) - failures if failures else len(svc), len(svc)), "%d/%d" % (len(crl), len(crl)),
                 "", "all", "met" if failures == 0 else "missed (%d failed)" % failures)
        return peak

    def memory(self, idle, loaded, idle_uss):
        self.row("service RSS idle", "%.1f MB" % (idle / 1024), "", "", "≤ 8 MB", "met" if idle <= 8 * 1024 else "missed")
        self.row("service anonymous memory (heap, stacks) idle", "%.1f MB" % (idle_uss / 1024), "", "", "", "")
        self.row("service RSS peak under 256 streams", "%.1f MB" % (loaded / 1024), "", "", "≤ 64 MB",
                 "met" if loaded <= 64 * 1024 else "missed")
        self.gw.stream()
        total = 2000 if self.quick else 10000
        chunk = total // 5
        points = []
        t = time.monotonic()
        for i in range(5):
            r = self.client("service", "sequential", chunk)
            assert all(x["ok"] for x in r)
            points.append(rss_kb(self.pid))
        secs = time.monotonic() - t
        growth = points[-1] - points[0]
        self.row("service RSS after %s sequential requests" % " / ".join(str(chunk * (i + 1)) for i in range(5)),
                 " / ".join("%.1f" % (p / 1024) for p in points) + " MB", "", "%+.1f MB from the first to the last" % (growth / 1024),
                 "flat", "met" if growth <= 512 else "missed")
        self.row("sequential requests per second (one client)", "%.0f" % (total / secs), "", "", "", "")

    def run(self):
        t = time.monotonic()
        idle, idle_uss = rss_kb(self.pid), anon_kb(self.pid)
        self.ttft()
        self.throughput()
        loaded = self.concurrency()
        self.memory(idle, loaded, idle_uss)
        self.elapsed = time.monotonic() - t

    def print(self):
        print("| metric | bankr-llmd | direct curl | service vs curl | target | verdict |")
        print("|---|---|---|---|---|---|")
        for r in self.rows:
            print("| " + " | ".join(r) + " |")
        print("\n(%.0f s; %s)" % (self.elapsed, " ".join(os.uname()[2:3]) + ", %d CPUs" % os.cpu_count()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    args = ap.parse_args()
    if not os.path.exists(CLIENT):
        sys.exit("%s is missing: ninja -C %s bench/bench-chat-client" % (CLIENT, BUILD))
    b = Bench(args.quick)
    try:
        b.run()
    finally:
        b.close()
    b.print()


if __name__ == "__main__":
    main()
