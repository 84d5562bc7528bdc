#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: "bankr-llm models" and "bankr-llm credits" against a warm
bankr-llmd, next to a direct curl of the same endpoints on the fake gateway,
in one run; then Models/Credits property reads over D-Bus (bench-dbus-get).

Everything runs in a private session built by tests/harness.py (temporary
HOME, private dbus-daemon, real gnome-keyring); the fake gateway runs as its
own process (tests/fakegw.py --port-file), so it does not share a GIL with
the timing loop. Prints a Markdown report for docs/performance.md.

    /usr/bin/python3 bench/bench-models-credits.py [--runs N] [--dbus-count N]
    (BANKR_BUILD_DIR selects the build directory; default build/)
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "tests"))

from harness import Env, BUILD, CLI, wait_until  # noqa: E402
from fakegw import FakeGateway  # noqa: E402

KEY = FakeGateway.DEFAULT_KEY
BENCH_GET = os.path.join(BUILD, "bench", "bench-dbus-get")


def start_gateway(tmp):
    port_file = os.path.join(tmp, "fakegw.port")
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(SRC, "tests", "fakegw.py"), "--port-file", port_file],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file):
        if time.monotonic() > deadline or p.poll() is not None:
            p.kill()
            raise SystemExit("the fake gateway did not start")
        time.sleep(0.02)
    with open(port_file) as f:
        url = "http://127.0.0.1:%d" % int(f.read())
    # A realistic list: the 23 models of the shipped catalog.
    with open(os.path.join(SRC, "data", "models.json")) as f:
        models = json.load(f)["data"]
    req = urllib.request.Request(url + "/_control/state", data=json.dumps({"models": models}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    return p, url


def timed(argv, environ):
    t = time.perf_counter()
    r = subprocess.run(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.decode(errors="replace")))
    return dt * 1000


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=60, help="runs per command (default 60)")
    ap.add_argument("--dbus-count", type=int, default=2000, help="D-Bus reads per property (default 2000)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bankr-bench-")
    gw_proc, url = start_gateway(tmp)
    env = Env(gateway=False, daemon_args=(),  # no -v: a warm service logs nothing per call
              service_env={"BANKR_LLM_URL": url, "BANKR_API_URL": url, "BANKR_LLM_KEY": KEY})
    try:
        env.start()
        env.start_service()
        wait_until(lambda: env.get("Models", "Live") and env.get("Credits", "State") == "ok", timeout=10,
                   what="a warm service")
        e = env.environ
        curl = ["curl", "-sS", "-o", "/dev/null", "--fail", "-H", "X-API-Key: " + KEY]
        cmds = [
            ("bankr-llm models", [CLI, "models"]),
            ("curl /v1/models", curl + [url + "/v1/models"]),
            ("bankr-llm credits", [CLI, "credits"]),
            ("curl /v1/credits", curl + [url + "/v1/credits"]),
        ]
        for _ in range(5):  # warm up page cache, the service's and the fake's code paths
            for _, argv in cmds:
                timed(argv, e)
        times = {name: [] for name, _ in cmds}
        for _ in range(args.runs):  # interleaved, so drift hits all alike
            for name, argv in cmds:
                times[name].append(timed(argv, e))

        dbus = []
        for iface, prop in (("bot.bankr.LLM1.Models", "Models"), ("bot.bankr.LLM1.Credits", "Balance")):
            r = subprocess.run([BENCH_GET, "--count", str(args.dbus_count), "--interface", iface, "--property", prop],
                               env=e, capture_output=True, text=True, check=True)
            dbus.append(json.loads(r.stdout))
        n_models = len(env.get("Models", "Models"))
    finally:
        env.stop(check=False)
        gw_proc.terminate()
        gw_proc.wait(5)

    print("Run: %s, %s, %d CPUs, python %s; %d runs per command, interleaved, after 5 warm-up rounds; "
          "%d models in the list.\n" % (time.strftime("%Y-%m-%d"), platform.release(), os.cpu_count(),
                                         platform.python_version(), args.runs, n_models))
    print("| command | median ms | p90 ms | min ms | vs curl (median) |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in cmds:
        t = times[name]
        ref = "curl /v1/models" if "models" in name else "curl /v1/credits"
        ratio = statistics.median(t) / statistics.median(times[ref])
        print("| `%s` | %.2f | %.2f | %.2f | %s |" % (name, statistics.median(t), pct(t, 90), min(t),
                                                       "1.00" if name == ref else "%.2f" % ratio))
    print("\n| D-Bus Properties.Get | p50 µs | p90 µs | p99 µs | max µs | count |")
    print("|---|---:|---:|---:|---:|---:|")
    for d in dbus:
        print("| `%s.%s` | %.1f | %.1f | %.1f | %.1f | %d |" % (
            d["interface"].rsplit(".", 1)[1], d["property"], d["p50_us"], d["p90_us"],
            d["p99_us"], d["max_us"], d["count"]))
    worst = max(statistics.median(times["bankr-llm models"]), statistics.median(times["bankr-llm credits"]))
    print("\nTarget: CLI median <= 5 ms warm: %s (%.2f ms)." % ("met" if worst <= 5 else "NOT met", worst))


if __name__ == "__main__":
    main()
