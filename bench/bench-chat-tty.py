#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llm chat on a terminal, with the terminal filter (default) and
without it (--raw), and into a pipe: wall time of one streamed answer of N
fast deltas from the fake gateway (tests/fakegw.py), median of R runs.
Prints a Markdown table.

    ninja -C build
    BANKR_BUILD_DIR=$PWD/build /usr/bin/python3 bench/bench-chat-tty.py [DELTAS] [RUNS]
"""
import os
import pty
import select
import statistics
import subprocess
import sys
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests"))

from harness import Env  # noqa: E402
from fakegw import FakeGateway  # noqa: E402

BUILD = os.environ.get("BANKR_BUILD_DIR", os.path.join(SRC, "build"))
CLI = os.path.join(BUILD, "clients", "bankr-llm")
os.environ.setdefault("BANKR_LLM", CLI)
os.environ.setdefault("BANKR_LLMD", os.path.join(BUILD, "service", "bankr-llmd"))
os.environ.setdefault("BANKR_LLMD_CATALOG", os.path.join(SRC, "data", "models.json"))


def on_pty(argv, env):
    pid, fd = pty.fork()
    if pid == 0:
        tty.setraw(0)
        os.execve(argv[0], argv, env)
    n = 0
    t0 = time.monotonic()
    while True:
        r, _, _ = select.select([fd], [], [], 30)
        if not r:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        n += len(data)
    os.waitpid(pid, 0)
    os.close(fd)
    return time.monotonic() - t0, n


def in_pipe(argv, env):
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0, len(r.stdout)


def main():
    deltas = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with Env(keyring=False, service_env={"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY}) as env:
        env.gateway.stream_options = {"fast_deltas": deltas, "fast_text": "tok\x1b[0m "}
        argv = [CLI, "chat", "-m", "gpt-5-mini", "go"]
        cases = [("terminal, filtered (default)", on_pty, argv),
                 ("terminal, --raw", on_pty, argv[:2] + ["--raw"] + argv[2:]),
                 ("pipe (never filtered)", in_pipe, argv)]
        in_pipe(argv, env.environ)  # warm up: activation, model list
        results = {name: [] for name, _, _ in cases}
        for _ in range(runs):
            for name, fn, a in cases:
                results[name].append(fn(a, env.environ))
        print("| %d deltas of \"tok\\e[0m \" | median s | MB/s written | bytes |" % deltas)
        print("|---|---|---|---|")
        for name, _, _ in cases:
            t = statistics.median(x[0] for x in results[name])
            b = results[name][-1][1]
            print("| %s | %.3f | %.2f | %d |" % (name, t, b / t / 1e6, b))


if __name__ == "__main__":
    main()
