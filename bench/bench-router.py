#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""npm's @musistudio/claude-code-router (a local gateway many Claude Code
users run) against a direct curl, side by side in one run and against the
same gateway stand-in as bench/bench-endpoint.py, bench/bench-gateway (C,
epoll, canned SSE in both wire formats), so that its numbers can be put next
to the local endpoint's:

  - time to first byte (curl's time_starttransfer), streamed, Anthropic
    /v1/messages in, direct vs. through the router, two routes:
      openai     the router turns the request into OpenAI
                 /v1/chat/completions upstream and the answer back into
                 Anthropic SSE (its usual use);
      anthropic  the "Anthropic" transformer: /v1/messages upstream, passed
                 through;
    medians of N alternating samples after 5 warm-ups, and the added time;
  - relay throughput of one large stream (curl's speed_download) on the
    anthropic route (the openai route drops the bench_* fields, so the
    stand-in cannot be steered through it): ratio to direct;
  - the router's RSS at the end.

The router runs from a private HOME (a temporary directory) on a free
loopback port, with an environment of its own (no proxies), so nothing of the
real user is read or touched. Install it into a private prefix first; with
--netns the whole bench runs in a new network namespace that has only
loopback, to show that the router needs no network:

    npm install -g --prefix /opt/ccr @musistudio/claude-code-router
    ninja -C build bench/bench-gateway
    BANKR_BUILD_DIR=$PWD/build /usr/bin/python3 bench/bench-router.py [--ccr /opt/ccr/bin/ccr] [--netns] [--quick]

Prints a table and, with --json FILE, writes the numbers.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BANKR_BUILD_DIR", os.path.join(SRC, "build"))
GATEWAY = os.path.join(BUILD, "bench", "bench-gateway")
KEY = "bk_bench_0123456789abcdef"
ROUTES = (("openai", "oai,bench-model"), ("anthropic", "ant,claude-bench"))


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl(url, body, what):
    """POST body to url/v1/messages; returns the values of the -w fields in what."""
    argv = ["curl", "-s", "-o", "/dev/null", "--noproxy", "*",
            "-w", "%{http_code} " + " ".join("%{" + w + "}" for w in what),
            "-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01",
            "-H", "x-api-key: " + KEY, "--data-binary", json.dumps(body), url + "/v1/messages"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    out = r.stdout.split()
    if not out or out[0] != "200":
        raise SystemExit("%s/v1/messages answered %s (curl exit %d)" % (url, out[0] if out else "nothing", r.returncode))
    return [float(v) for v in out[1:]]


def reexec_in_netns():
    argv = [a for a in sys.argv[1:] if a != "--netns"]
    # -r maps the caller to root in a user namespace, so that this works
    # unprivileged too where user namespaces are allowed.
    os.execvp("unshare", ["unshare", "-rn", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                          sys.executable, os.path.abspath(__file__)] + argv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ccr", default=os.environ.get("CCR", "/opt/ccr/bin/ccr"), help="the ccr command")
    ap.add_argument("--runs", type=int, default=200, help="TTFB samples per route and path")
    ap.add_argument("--mb", type=int, default=64, help="size of the throughput stream (0: skip)")
    ap.add_argument("--netns", action="store_true", help="run in a new network namespace with only loopback")
    ap.add_argument("--quick", action="store_true", help="a few samples of each, to check the setup")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    if args.netns:
        reexec_in_netns()
    if args.quick:
        args.runs, args.mb = 20, 16
    if not os.path.exists(GATEWAY):
        raise SystemExit("build bench/bench-gateway first: ninja -C build bench/bench-gateway")
    ccr = shutil.which(args.ccr)
    if not ccr:
        raise SystemExit("no %s: npm install -g --prefix /opt/ccr @musistudio/claude-code-router" % args.ccr)

    home = tempfile.mkdtemp(prefix="bench-router-")
    port_file = os.path.join(home, "gateway.port")
    gw = subprocess.Popen([GATEWAY, "--port-file", port_file], stdout=subprocess.DEVNULL)
    router = None
    log = None
    try:
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if gw.poll() is not None:
                raise SystemExit("bench-gateway exited")
            time.sleep(0.01)
        gw_url = "http://127.0.0.1:%d" % int(open(port_file).read())

        port = free_port()
        conf_dir = os.path.join(home, ".claude-code-router")
        os.makedirs(conf_dir)
        config = {
            "LOG": False,
            "HOST": "127.0.0.1",
            "PORT": port,
            "NON_INTERACTIVE_MODE": True,
            "API_TIMEOUT_MS": 600000,
            "Providers": [
                {"name": "oai", "api_base_url": gw_url + "/v1/chat/completions", "api_key": KEY,
                 "models": ["bench-model"]},
                {"name": "ant", "api_base_url": gw_url + "/v1/messages", "api_key": KEY,
                 "models": ["claude-bench"], "transformer": {"use": ["Anthropic"]}},
            ],
            "Router": {"default": "oai,bench-model"},
        }
        with open(os.path.join(conf_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
               "NO_PROXY": "*", "no_proxy": "*", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"}
        log = open(os.path.join(home, "ccr.log"), "w+")
        # "ccr start" serves in the foreground; SIGTERM stops it.
        router = subprocess.Popen([ccr, "start"], env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
        router_url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        while True:
            if router.poll() is not None:
                log.seek(0)
                raise SystemExit("ccr start exited %d:\n%s" % (router.returncode, log.read()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("ccr start does not listen on %d after 30 s" % port)
                time.sleep(0.1)
        version = subprocess.run([ccr, "-v"], env=env, cwd=home, capture_output=True, text=True).stdout.strip()
        res = {"gateway": "bench/bench-gateway", "router": version.split()[-1] if version else "?",
               "runs": args.runs}

        # Time to first byte, alternating direct and router. No bench_chunks:
        # the openai route would drop it; all paths answer the default 8 deltas.
        for name, model in ROUTES:
            d, r = [], []
            for i in range(args.runs + 5):
                body = {"model": "claude-bench", "stream": True, "max_tokens": 8,
                        "messages": [{"role": "user", "content": "hi"}]}
                a, = curl(gw_url, body, ["time_starttransfer"])
                body["model"] = model
                b, = curl(router_url, body, ["time_starttransfer"])
                if i >= 5:
                    d.append(a * 1000)
                    r.append(b * 1000)
            res["ttfb_%s_direct_ms" % name] = statistics.median(d)
            res["ttfb_%s_router_ms" % name] = statistics.median(r)
            res["ttfb_%s_added_ms" % name] = statistics.median(r) - statistics.median(d)

        # Throughput of one large stream, anthropic route.
        if args.mb:
            chunk = 4096
            body = {"model": "claude-bench", "stream": True, "max_tokens": 8,
                    "messages": [{"role": "user", "content": "hi"}],
                    "bench_chunks": args.mb * 1024 * 1024 // chunk, "bench_chunk_bytes": chunk}
            d, r = [], []
            for _ in range(3):
                speed, size = curl(gw_url, body, ["speed_download", "size_download"])
                d.append(speed)
                body["model"] = "ant,claude-bench"
                speed, rsize = curl(router_url, body, ["speed_download", "size_download"])
                body["model"] = "claude-bench"
                if rsize < size * 0.99:
                    raise SystemExit("the router relayed %d of %d bytes" % (rsize, size))
                r.append(speed)
            res["throughput_direct_mb_s"] = statistics.median(d) / 1e6
            res["throughput_router_mb_s"] = statistics.median(r) / 1e6
            res["throughput_ratio"] = statistics.median(r) / statistics.median(d)
        res["router_rss_kib"] = rss_kib(router.pid)
    finally:
        if router:
            router.terminate()
            try:
                router.wait(10)
            except subprocess.TimeoutExpired:
                router.kill()
                router.wait()
        if log:
            log.close()
        gw.terminate()
        gw.wait()
        shutil.rmtree(home, ignore_errors=True)

    def row(name, value):
        print("%-50s %12s" % (name, value))
    print("claude-code-router %s vs. direct curl, against bench/bench-gateway, %d samples"
          % (res["router"], res["runs"]))
    for name, _ in ROUTES:
        row("TTFB %s route, direct (median, ms)" % name, "%.3f" % res["ttfb_%s_direct_ms" % name])
        row("TTFB %s route, router (median, ms)" % name, "%.3f" % res["ttfb_%s_router_ms" % name])
        row("TTFB %s route, added (ms)" % name, "%.3f" % res["ttfb_%s_added_ms" % name])
    if args.mb:
        row("throughput direct, %d MB (MB/s)" % args.mb, "%.0f" % res["throughput_direct_mb_s"])
        row("throughput router, anthropic route (MB/s)", "%.0f" % res["throughput_router_mb_s"])
        row("throughput ratio", "%.3f" % res["throughput_ratio"])
    row("router RSS at the end (MB)", "%.1f" % (res["router_rss_kib"] / 1024))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
