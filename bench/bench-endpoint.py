#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The local endpoint (bot.bankr.LLM1.Endpoint) against a direct curl, side by
side in one run and against the same gateway stand-in, bench/bench-gateway
(C, epoll, canned SSE in both wire formats), so that the numbers measure
bankr-llmd and not the Python fake gateway:

  - time to first byte (curl's time_starttransfer), streamed, OpenAI and
    Anthropic format, direct vs. through the endpoint: medians and the added
    time (goal: at most 0.25 ms);
  - relay throughput of one large stream (curl's speed_download): ratio to
    direct (goal: at least 0.95);
  - N concurrent paced streams (default 1,000): how many complete, and the
    daemon's RSS while they run (goal: all, and at most 48 MB);
  - M requests (default 10,000, 50 at a time): the daemon's RSS after half
    and after all of them (goal: flat, at most 48 MB).

With nghttpx (Debian's nghttp2-proxy) installed, the same TTFB and
throughput loops also run through it as a plain HTTP/1.1 reverse proxy in
front of the same stand-in (one worker, no TLS, no logging): what a
dedicated C relay costs on this machine, for scale. --no-reference skips it.

    ninja -C build bench-endpoint
    BANKR_BUILD_DIR=$PWD/build nice -n 10 /usr/bin/python3 bench/bench-endpoint.py [--quick]

Prints a table and, with --json FILE, writes the numbers. Needs a daemon with
the Endpoint interface; says so and exits 2 otherwise.

--heap-sites FILE runs the daemon with bench/heapsites.so preloaded and, 1.2 s
into the concurrent streams (all of them open), writes its live heap by call
site to FILE and prints it; the RSS figures of such a run are not the
daemon's own (the module's table counts in them).
"""
import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "tests"))
import harness  # noqa: E402
from harness import Env, CLI, BUILD  # noqa: E402

KEY = "bk_bench_0123456789abcdef"
GATEWAY = os.path.join(BUILD, "bench", "bench-gateway")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def curl(url, auth_header, body, fmt, what):
    path = "/v1/chat/completions" if fmt == "openai" else "/v1/messages"
    argv = ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "-w", "%{http_code} %{" + what + "}",
            "-H", "content-type: application/json", "-H", auth_header, "--data-binary", json.dumps(body), url + path]
    if fmt == "anthropic":
        argv[1:1] = ["-H", "anthropic-version: 2023-06-01"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    code, value = r.stdout.split()
    if code != "200":
        raise SystemExit("%s %s answered %s" % (url, path, code))
    return float(value)


async def one_stream(host, port, token, body, fmt):
    path = "/v1/chat/completions" if fmt == "openai" else "/v1/messages"
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(("POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\ncontent-type: application/json\r\n"
                      "anthropic-version: 2023-06-01\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                      % (path, host, port, token, len(data))).encode() + data)
        await writer.drain()
        got = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            got += chunk[-64:] if len(got) > 4096 else chunk
            got = got[-4096:]
        return (b"[DONE]" in got) if fmt == "openai" else (b"message_stop" in got)
    except OSError:
        return False
    finally:
        writer.close()


async def many(host, port, token, n, body, fmt, sample=None):
    tasks = [asyncio.ensure_future(one_stream(host, port, token, body, fmt)) for _ in range(n)]
    peak = 0
    if sample:
        while not all(t.done() for t in tasks):
            peak = max(peak, sample())
            await asyncio.sleep(0.1)
    results = await asyncio.gather(*tasks)
    return sum(1 for r in results if r), peak


async def requests(host, port, token, n, parallel, body):
    sem = asyncio.Semaphore(parallel)
    ok = 0

    async def one():
        nonlocal ok
        async with sem:
            if await one_stream(host, port, token, body, "openai"):
                ok += 1
    await asyncio.gather(*(one() for _ in range(n)))
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nghttpx(gw_port, tmp):
    """nghttpx as an HTTP/1.1 reverse proxy to the stand-in; its URL, or None."""
    exe = shutil.which("nghttpx")
    if not exe:
        return None, None
    port = free_port()
    conf = os.path.join(tmp, "nghttpx.conf")
    with open(conf, "w") as f:
        f.write("frontend=127.0.0.1,%d;no-tls\nbackend=127.0.0.1,%d\nworkers=1\nno-ocsp=yes\n"
                "accesslog-file=/dev/null\nerrorlog-file=%s\nlog-level=WARN\n"
                "backend-keep-alive-timeout=60s\n" % (port, gw_port, os.path.join(tmp, "nghttpx.log")))
    proc = subprocess.Popen([exe, "--conf", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, "http://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.01)
    proc.terminate()
    return None, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200, help="TTFB samples per format and path")
    ap.add_argument("--mb", type=int, default=256, help="size of the throughput stream")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="a few samples of each, to check the setup")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--no-reference", action="store_true", help="do not measure nghttpx as a reference relay")
    ap.add_argument("--heap-sites", metavar="FILE", help="the daemon's live heap by call site during the streams")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.mb, args.streams, args.requests = 20, 32, 100, 500

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams + 1024)), hard))

    if not os.path.exists(GATEWAY):
        raise SystemExit("build bench/bench-gateway first: ninja -C build bench/bench-gateway")
    if args.heap_sites:
        module = os.path.join(BUILD, "bench", "heapsites.so")
        if not os.path.exists(module):
            raise SystemExit("build bench/heapsites.so first: ninja -C build bench/heapsites.so")
        args.heap_sites = os.path.abspath(args.heap_sites)
        if os.path.exists(args.heap_sites):
            os.unlink(args.heap_sites)
        wrapper = os.path.join(tempfile.mkdtemp(prefix="bench-heapsites-"), "bankr-llmd")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexport LD_PRELOAD=%s HEAPSITES_OUT=%s\nexec %s \"$@\"\n"
                    % (harness.shquote(module), harness.shquote(args.heap_sites), harness.shquote(harness.DAEMON)))
        os.chmod(wrapper, 0o755)
        harness.DAEMON = wrapper
    port_file = "/tmp/bench-gateway-%d.port" % os.getpid()
    gw = subprocess.Popen([GATEWAY, "--port-file", port_file, "--max-conns", str(4 * args.streams + 64)],
                          stdout=subprocess.DEVNULL)
    env = None
    ref = None
    try:
        while not os.path.exists(port_file):
            time.sleep(0.01)
        gw_url = "http://127.0.0.1:%d" % int(open(port_file).read())
        os.unlink(port_file)

        env = Env(keyring=False, gateway=False, daemon_args=(),
                  service_env={"BANKR_LLM_KEY": KEY, "BANKR_LLM_URL": gw_url, "BANKR_API_URL": gw_url})
        env.start()
        pid = env.start_service()
        r = env.run(["busctl", "--user", "introspect", "bot.bankr.LLM1", "/bot/bankr/LLM1"], check=True)
        if "bot.bankr.LLM1.Endpoint" not in r.stdout:
            print("bankr-llmd has no bot.bankr.LLM1.Endpoint interface: nothing to measure yet.", file=sys.stderr)
            return 2
        ep_url = env.get("Endpoint", "Url")
        r = env.cli("token", "--app", "bench", "--ttl", "2h")
        if r.returncode != 0:
            raise SystemExit("bankr-llm token failed: " + r.stderr)
        token = r.stdout.strip()
        host, port = ep_url.split("//")[1].split(":")
        port = int(port)
        res = {"gateway": "bench/bench-gateway", "rss_start_kib": rss_kib(pid)}
        ref_url = None
        if not args.no_reference:
            ref, ref_url = start_nghttpx(int(gw_url.rsplit(":", 1)[1]), env.dir)
        res["reference"] = "nghttpx" if ref_url else None

        # Time to first byte, alternating direct and endpoint.
        for fmt in ("openai", "anthropic"):
            body = {"model": "bench-model" if fmt == "openai" else "claude-bench", "stream": True, "max_tokens": 8,
                    "messages": [{"role": "user", "content": "hi"}], "bench_chunks": 4}
            d, e, n = [], [], []
            for i in range(args.runs + 5):
                a = curl(gw_url, "Authorization: Bearer " + KEY, body, fmt, "time_starttransfer")
                b = curl(ep_url, "Authorization: Bearer " + token, body, fmt, "time_starttransfer")
                c = curl(ref_url, "Authorization: Bearer " + KEY, body, fmt, "time_starttransfer") if ref_url else 0
                if i >= 5:
                    d.append(a * 1000)
                    e.append(b * 1000)
                    n.append(c * 1000)
            res["ttfb_%s_direct_ms" % fmt] = statistics.median(d)
            res["ttfb_%s_endpoint_ms" % fmt] = statistics.median(e)
            res["ttfb_%s_added_ms" % fmt] = statistics.median(e) - statistics.median(d)
            if ref_url:
                res["ttfb_%s_reference_added_ms" % fmt] = statistics.median(n) - statistics.median(d)

        # Throughput of one large stream.
        chunk = 4096
        body = {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                "bench_chunks": args.mb * 1024 * 1024 // chunk, "bench_chunk_bytes": chunk}
        d, e, n = [], [], []
        for _ in range(5):
            d.append(curl(gw_url, "Authorization: Bearer " + KEY, body, "openai", "speed_download"))
            e.append(curl(ep_url, "Authorization: Bearer " + token, body, "openai", "speed_download"))
            if ref_url:
                n.append(curl(ref_url, "Authorization: Bearer " + KEY, body, "openai", "speed_download"))
        res["throughput_direct_mb_s"] = statistics.median(d) / 1e6
        res["throughput_endpoint_mb_s"] = statistics.median(e) / 1e6
        res["throughput_ratio"] = statistics.median(e) / statistics.median(d)
        if ref_url:
            res["throughput_reference_ratio"] = statistics.median(n) / statistics.median(d)

        # Concurrent paced streams (20 deltas, 100 ms apart: about 2 s each).
        body = {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                "bench_chunks": 20, "bench_interval_ms": 100}
        gw_host, gw_port = "127.0.0.1", int(gw_url.rsplit(":", 1)[1])
        ok_direct, _ = asyncio.run(many(gw_host, gw_port, KEY, args.streams, body, "openai"))
        started, told = time.monotonic(), False

        def sample():
            nonlocal told
            if args.heap_sites and not told and time.monotonic() - started > 1.2:
                os.kill(pid, signal.SIGUSR2)   # written at the daemon's next malloc()
                told = True
            return rss_kib(pid)
        ok, peak = asyncio.run(many(host, port, token, args.streams, body, "openai", sample))
        res.update(streams=args.streams, streams_complete_direct=ok_direct, streams_complete=ok,
                   rss_streams_peak_kib=peak)

        # Many small requests: RSS after half and after all.
        body = {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                "bench_chunks": 2}
        half = args.requests // 2
        ok1 = asyncio.run(requests(host, port, token, half, 50, body))
        res["rss_after_half_kib"] = rss_kib(pid)
        ok2 = asyncio.run(requests(host, port, token, args.requests - half, 50, body))
        res.update(requests=args.requests, requests_ok=ok1 + ok2, rss_after_all_kib=rss_kib(pid))
        # The service gives freed heap back a second after a burst (http.c).
        time.sleep(2)
        res["rss_idle_kib"] = rss_kib(pid)
    finally:
        if ref:
            ref.terminate()
            ref.wait()
        if env:
            env.stop(check=False)
        gw.terminate()
        gw.wait()

    def row(name, value, goal=""):
        print("%-44s %14s  %s" % (name, value, goal))
    print("bankr-llmd local endpoint vs. direct curl, against bench/bench-gateway")
    for fmt in ("openai", "anthropic"):
        row("TTFB %s direct (median, ms)" % fmt, "%.3f" % res["ttfb_%s_direct_ms" % fmt])
        row("TTFB %s endpoint (median, ms)" % fmt, "%.3f" % res["ttfb_%s_endpoint_ms" % fmt])
        row("TTFB %s added (ms)" % fmt, "%.3f" % res["ttfb_%s_added_ms" % fmt], "goal <= 0.25")
        if res["reference"]:
            row("TTFB %s added by nghttpx (ms)" % fmt, "%.3f" % res["ttfb_%s_reference_added_ms" % fmt], "reference")
    row("throughput direct (MB/s)", "%.0f" % res["throughput_direct_mb_s"])
    row("throughput endpoint (MB/s)", "%.0f" % res["throughput_endpoint_mb_s"])
    row("throughput ratio", "%.3f" % res["throughput_ratio"], "goal >= 0.95")
    if res["reference"]:
        row("throughput ratio through nghttpx", "%.3f" % res["throughput_reference_ratio"], "reference")
    row("concurrent streams complete (direct)", "%d/%d" % (res["streams_complete_direct"], res["streams"]))
    row("concurrent streams complete (endpoint)", "%d/%d" % (res["streams_complete"], res["streams"]), "goal: all")
    row("RSS at start (MB)", "%.1f" % (res["rss_start_kib"] / 1024))
    row("RSS peak during the streams (MB)", "%.1f" % (res["rss_streams_peak_kib"] / 1024), "goal <= 48")
    row("requests ok", "%d/%d" % (res["requests_ok"], res["requests"]))
    row("RSS after half the requests (MB)", "%.1f" % (res["rss_after_half_kib"] / 1024))
    row("RSS after all the requests (MB)", "%.1f" % (res["rss_after_all_kib"] / 1024), "goal <= 48, flat")
    row("RSS 2 s later, idle (MB)", "%.1f" % (res["rss_idle_kib"] / 1024))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    if args.heap_sites:
        print("\nThe daemon's live heap by call site, 1.2 s into the %d streams (%s;"
              " RSS above includes heapsites.so's table):" % (args.streams, args.heap_sites))
        if os.path.exists(args.heap_sites):
            with open(args.heap_sites) as f:
                print(f.read(), end="")
        else:
            print("(not written: the streams ended before the daemon allocated again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
