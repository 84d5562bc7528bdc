# SPDX-License-Identifier: MIT
"""Records the signals bankr-llmd sends (gdbus monitor on the test's private
bus), for asserting on PropertiesChanged, Low and Exhausted.

    with BusMonitor(env) as mon:
        ...
        mon.wait_for(lambda lines: any("Credits.Low" in l for l in lines))
        mon.count("Credits.Low (")
"""
import os
import subprocess
import time

from harness import BUS_NAME, wait_until


class BusMonitor:
    def __init__(self, env):
        self.env = env
        self.path = os.path.join(env.dir, "monitor-%d.txt" % time.monotonic_ns())
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self._file = open(self.path, "w")
        self.proc = subprocess.Popen(["gdbus", "monitor", "--session", "--dest", BUS_NAME], env=self.env.environ,
                                     stdout=self._file, stderr=subprocess.STDOUT)
        # gdbus prints the owner once its match rules are in place.
        wait_until(lambda: "is owned by" in self.text(), what="gdbus monitor to start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self._file.close()

    def text(self):
        with open(self.path, errors="replace") as f:
            return f.read()

    def lines(self):
        return [l for l in self.text().splitlines() if l.startswith("/")]

    def matching(self, needle):
        return [l for l in self.lines() if needle in l]

    def count(self, needle):
        return len(self.matching(needle))

    def changed(self, iface):
        """PropertiesChanged lines of one interface (short name, e.g. "Models")."""
        return self.matching("PropertiesChanged ('bot.bankr.LLM1.%s'" % iface)

    def wait_for(self, needle, n=1, timeout=5.0):
        wait_until(lambda: self.count(needle) >= n, timeout=timeout, what="%d× %s" % (n, needle))

    def settle(self, seconds=0.3):
        """Signals are asynchronous: give stragglers a moment before counting."""
        time.sleep(seconds)
