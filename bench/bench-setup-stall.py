#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How long Setup.Install keeps the service's event loop busy: a client
pings the service (org.freedesktop.DBus.Peer.Ping, answered on the loop)
without pause while Install merges into an OpenCode config of a given size
and shape; the longest ping is the stall every other client saw.  Prints a
Markdown table.

    BANKR_BUILD_DIR=build /usr/bin/python3 bench/bench-setup-stall.py [SIZE_KIB...]
"""
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import dbus  # noqa: E402

from harness import Env, BUS_NAME, OBJ  # noqa: E402
from fakegw import FakeGateway  # noqa: E402


def members(n):
    """Many small members, the shape of a real config."""
    one = {"a": [1, 2.5, "some text"], "b": True, "c": None}
    per = len(json.dumps({"k00000": one}, indent=2))
    out = {"$schema": "https://opencode.ai/config.json"}
    for i in range(max(1, n // per)):
        out["k%05d" % i] = one
    return json.dumps(out, indent=2)


def numbers(n):
    """One long array of numbers (number spelling is kept: the slow case)."""
    return json.dumps({"x": [12345.678] * (n // 11)})


def string(n):
    """One long string."""
    return json.dumps({"x": "a" * n})


SHAPES = {"members": members, "numbers": numbers, "string": string}


class Pinger(threading.Thread):
    def __init__(self, address):
        super().__init__(daemon=True)
        self.bus = dbus.bus.BusConnection(address)
        self.peer = dbus.Interface(self.bus.get_object(BUS_NAME, OBJ), "org.freedesktop.DBus.Peer")
        self.lock = threading.Lock()
        self.worst = 0.0
        self.stop = False

    def run(self):
        while not self.stop:
            t = time.monotonic()
            self.peer.Ping(timeout=60)
            d = time.monotonic() - t
            with self.lock:
                self.worst = max(self.worst, d)

    def take(self):
        with self.lock:
            w, self.worst = self.worst, 0.0
        return w


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [64, 256, 1023, 1025, 15 * 1024]
    env = Env(keyring=False, service_env={"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY})
    env.start()
    try:
        env.start_service()
        path = os.path.join(env.home, ".config", "opencode", "opencode.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pinger = Pinger(env.environ["DBUS_SESSION_BUS_ADDRESS"])
        pinger.start()
        time.sleep(0.5)
        idle = pinger.take()
        print("| shape | file size | Install took | longest ping during it | answer |")
        print("|---|---|---|---|---|")
        print("| (idle, 0.5 s) | | | %.1f ms | |" % (idle * 1000))
        for kib in sizes:
            for shape, make in SHAPES.items():
                text = make(kib * 1024 - 64)  # at most the size asked for
                with open(path, "w") as f:
                    f.write(text)
                time.sleep(0.2)
                pinger.take()
                t = time.monotonic()
                r = env.run(["gdbus", "call", "--session", "--dest", BUS_NAME, "--object-path", OBJ,
                             "--method", "bot.bankr.LLM1.Setup.Install", "opencode", "{}"], timeout=120)
                took = time.monotonic() - t
                time.sleep(0.05)
                worst = pinger.take()
                answer = "ok" if r.returncode == 0 else r.stderr.strip().split("Error.", 1)[-1][:90]
                print("| %s | %.2f MiB | %.0f ms | %.1f ms | %s |" % (shape, len(text) / 1048576, took * 1000,
                                                                     worst * 1000, answer.replace("|", "/")))
                for b in os.listdir(os.path.dirname(path)):
                    if ".bankr-backup-" in b:
                        os.unlink(os.path.join(os.path.dirname(path), b))
        pinger.stop = True
    finally:
        env.stop(check=False)


if __name__ == "__main__":
    main()
