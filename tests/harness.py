# SPDX-License-Identifier: MIT
"""A private desktop session for one test: temporary HOME and XDG dirs, a
private dbus-daemon whose servicedir activates the freshly built bankr-llmd,
the real gnome-keyring-daemon (unlocked, or absent, or locked), and the fake
gateway on 127.0.0.1.  Nothing here touches the developer's own session.

    with Env() as env:
        env.call("Key", "Set", "ss", "bk_...", "llm")
        env.cli("status")

Paths of the built programs come from the environment meson sets for tests
(BANKR_LLMD, BANKR_LLM, BANKR_LLM_NOTIFY, BANKR_LLMD_CATALOG).  Under the
sanitizer build, ASAN_OPTIONS/UBSAN_OPTIONS carry a log_path into the test's
directory; stop() fails the test if any report was written.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SRC = os.path.dirname(HERE)
BUILD = os.environ.get("BANKR_BUILD_DIR", os.path.join(SRC, "build"))
DAEMON = os.environ.get("BANKR_LLMD", os.path.join(BUILD, "service", "bankr-llmd"))
CLI = os.environ.get("BANKR_LLM", os.path.join(BUILD, "clients", "bankr-llm"))
NOTIFY = os.environ.get("BANKR_LLM_NOTIFY", os.path.join(BUILD, "clients", "bankr-llm-notify"))
CATALOG = os.environ.get("BANKR_LLMD_CATALOG", os.path.join(SRC, "data", "models.json"))
SLOW = float(os.environ.get("BANKR_TEST_SLOW", "1"))  # >1 under sanitizers

BUS_NAME = "bot.bankr.LLM1"
OBJ = "/bot/bankr/LLM1"
IFACE = "bot.bankr.LLM1."

SESSION_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{type}</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{servicedir}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
  <limit name="max_replies_per_connection">50000</limit>
  <limit name="max_connections_per_user">1000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
</busconfig>
"""

KEYRING_PASSWORD = b"test-password"


def wait_until(predicate, timeout=5.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


class Env:
    """One private session.  keyring: True (unlocked), False (none) or
    "locked".  gateway: start the fake gateway.  service_env: extra
    variables for bankr-llmd (e.g. BANKR_LLM_KEY)."""

    def __init__(self, keyring=True, gateway=True, service_env=None, system_bus=False,
                 daemon_args=("-v",)):
        self.keyring_mode = keyring
        self.want_gateway = gateway
        self.service_env = dict(service_env or {})
        self.want_system_bus = system_bus
        self.daemon_args = list(daemon_args)
        self.procs = []
        self._files = []
        self.gateway = None
        self.keyring_proc = None
        self.bus_pid = None
        self.system_bus_pid = None
        self.dir = None

    # ---- lifetime -------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)
        return False

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="bankr-test-")
        d = self.dir
        self.home = os.path.join(d, "home")
        for sub in ("home", "home/.config", "home/.cache", "home/.local/share", "runtime", "services", "san", "tmp"):
            os.makedirs(os.path.join(d, sub), mode=0o700, exist_ok=True)
        self.config_path = os.path.join(self.home, ".bankr", "config.json")
        self.cache_dir = os.path.join(self.home, ".cache", "bankr-llm")
        self.log_path = os.path.join(d, "bankr-llmd.log")

        env = {
            "HOME": self.home,
            "USER": os.environ.get("USER", "root"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
            "XDG_DATA_HOME": os.path.join(self.home, ".local/share"),
            "XDG_RUNTIME_DIR": os.path.join(d, "runtime"),
            "TMPDIR": os.path.join(d, "tmp"),
            "NO_AT_BRIDGE": "1",
            "GSETTINGS_BACKEND": "memory",
            "no_proxy": "127.0.0.1,localhost,::1",
            "NO_PROXY": "127.0.0.1,localhost,::1",
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                v = os.environ[k]
                if "log_path" not in v:
                    v += ":log_path=" + os.path.join(d, "san", k.split("_")[0].lower())
                env[k] = v
        for k in ("BANKR_LLMD", "BANKR_LLM", "BANKR_LLM_NOTIFY", "BANKR_LLMD_CATALOG", "BANKR_BUILD_DIR", "BANKR_TEST_SLOW"):
            if k in os.environ:
                env[k] = os.environ[k]
        self.environ = env

        if self.want_gateway:
            from fakegw import FakeGateway
            self.gateway = FakeGateway()
            self.gateway.start()

        self._start_bus()
        if self.want_system_bus:
            self._start_system_bus()
        if self.keyring_mode:
            self._start_keyring()
        self.write_service_file()

    def stop(self, check=True):
        problems = []
        try:
            self.stop_service()
        except AssertionError as e:
            problems.append(str(e))
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        for pid in (self.bus_pid, self.system_bus_pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if self.gateway:
            self.gateway.stop()
        for f in self._files:
            f.close()
        self._files = []
        reports = self.sanitizer_reports()
        if reports:
            problems.append("sanitizer reports:\n" + reports)
        keep = os.environ.get("BANKR_TEST_KEEP")
        if problems and self.dir:
            sys.stderr.write("test directory kept: %s\n" % self.dir)
            keep = True
        if self.dir and not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        if check and problems:
            raise AssertionError("\n".join(problems))

    def sanitizer_reports(self):
        out = []
        for f in sorted(glob.glob(os.path.join(self.dir or "/nonexistent", "san", "*"))):
            with open(f, errors="replace") as fh:
                out.append("== %s\n%s" % (os.path.basename(f), fh.read()))
        return "\n".join(out)

    # ---- buses ----------------------------------------------------------

    def _start_daemon(self, kind, socket, servicedir):
        conf = os.path.join(self.dir, "%s.conf" % kind)
        with open(conf, "w") as f:
            f.write(SESSION_CONF.format(type=kind, socket=socket, servicedir=servicedir))
        out = subprocess.run(["dbus-daemon", "--config-file=" + conf, "--fork", "--nosyslog", "--print-pid=1"],
                             env=self.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=10)
        pid = int(out.stdout.split()[0])
        wait_until(lambda: os.path.exists(socket), what="the bus socket")
        return pid

    def _start_bus(self):
        socket = os.path.join(self.dir, "bus")
        self.bus_address = "unix:path=" + socket
        self.environ["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        # Without a system bus of its own, a test sees a dead one: never the host's.
        self.environ.setdefault("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + os.path.join(self.dir, "no-system-bus"))
        self.bus_pid = self._start_daemon("session", socket, os.path.join(self.dir, "services"))

    def _start_system_bus(self):
        socket = os.path.join(self.dir, "system_bus")
        sysdir = os.path.join(self.dir, "system-services")
        os.makedirs(sysdir, exist_ok=True)
        self.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + socket
        self.system_bus_pid = self._start_daemon("system", socket, sysdir)

    def _start_keyring(self):
        p = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                             env=self.environ, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=self._logfile("keyring.log"))
        p.stdin.write(KEYRING_PASSWORD)
        p.stdin.close()
        self.procs.append(p)
        self.keyring_proc = p
        subprocess.run(["gdbus", "wait", "--session", "--timeout", "10", "org.freedesktop.secrets"],
                       env=self.environ, check=True, timeout=15)
        if self.keyring_mode == "locked":
            self.lock_keyring()

    def _logfile(self, name):
        f = open(os.path.join(self.dir, name), "w")
        self._files.append(f)
        return f

    def lock_keyring(self):
        self.busctl("call", "org.freedesktop.secrets", "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service", "Lock", "ao", "1",
                    "/org/freedesktop/secrets/collection/login")

    def kill_keyring(self):
        if self.keyring_proc and self.keyring_proc.poll() is None:
            self.keyring_proc.terminate()
            self.keyring_proc.wait(5)

    # ---- the service ----------------------------------------------------

    def service_environment(self):
        e = {
            # Never reach the real gateway from a test: default to a dead loopback port.
            "BANKR_LLM_URL": self.gateway.url if self.gateway else "http://127.0.0.1:9",
            "BANKR_API_URL": self.gateway.url if self.gateway else "http://127.0.0.1:9",
            "BANKR_LLMD_CATALOG": CATALOG,
            # The session bus started first and carries the dead default;
            # the daemon must see this test's system bus (or none).
            "DBUS_SYSTEM_BUS_ADDRESS": self.environ["DBUS_SYSTEM_BUS_ADDRESS"],
        }
        e.update(self.service_env)
        return {k: v for k, v in e.items() if v is not None}

    def write_service_file(self, extra_env=None):
        if extra_env is not None:
            self.service_env.update(extra_env)
        wrapper = os.path.join(self.dir, "run-bankr-llmd")
        lines = ["#!/bin/sh"]
        for k, v in sorted(self.service_environment().items()):
            lines.append("export %s=%s" % (k, shquote(v)))
        lines.append("exec %s %s 2>>%s" % (shquote(DAEMON), " ".join(shquote(a) for a in self.daemon_args),
                                            shquote(self.log_path)))
        with open(wrapper, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(wrapper, 0o755)
        with open(os.path.join(self.dir, "services", BUS_NAME + ".service"), "w") as f:
            f.write("[D-BUS Service]\nName=%s\nExec=%s\n" % (BUS_NAME, wrapper))
        # Let the bus re-read its servicedir.
        subprocess.run(["busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "ReloadConfig"], env=self.environ, capture_output=True, timeout=10)

    def service_pid(self):
        r = subprocess.run(["busctl", "--user", "--json=short", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", BUS_NAME],
                           env=self.environ, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["data"][0]

    def start_service(self):
        self.busctl("call", BUS_NAME, OBJ, "org.freedesktop.DBus.Peer", "Ping")
        return self.service_pid()

    def stop_service(self, timeout=10):
        """SIGTERM the daemon and wait; a crash or a non-zero exit fails."""
        pid = self.service_pid()
        if not pid:
            return
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid) or _is_zombie(pid), timeout=timeout,
                   what="bankr-llmd to exit")
        wait_until(lambda: self.service_pid() is None, timeout=timeout, what="the name to be released")

    def restart_service(self, extra_env=None):
        self.stop_service()
        self.write_service_file(extra_env)
        return self.start_service()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # ---- talking to it --------------------------------------------------

    def run(self, argv, input=None, check=False, timeout=30, env=None):
        e = dict(self.environ)
        if env:
            e.update(env)
        if isinstance(input, str):
            input = input.encode()
        r = subprocess.run(argv, input=input, env=e, capture_output=True, timeout=timeout * SLOW)
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d): %s%s" % (argv, r.returncode, r.stdout, r.stderr))
        return r

    def busctl(self, *args, check=True, timeout=30):
        return self.run(["busctl", "--user"] + list(args), check=check, timeout=timeout)

    def cli(self, *args, input=None, check=False, env=None, timeout=30):
        return self.run([CLI] + list(args), input=input, check=check, env=env, timeout=timeout)

    def call(self, iface, method, signature="", *args, check=True, path=OBJ, timeout=30):
        """Calls a method through busctl; returns the list of results, or
        raises BusError with .name and .message."""
        argv = ["busctl", "--user", "--json=short", "call", BUS_NAME, path, _iface(iface), method]
        if signature:
            argv += [signature] + [_arg(a) for a in args]
        r = self.run(argv, timeout=timeout)
        if r.returncode != 0:
            err = BusError(r.stderr.strip())
            if check:
                raise err
            return err
        if not r.stdout.strip():
            return []
        return json.loads(r.stdout)["data"]

    def get(self, iface, prop, path=OBJ):
        r = self.run(["busctl", "--user", "--json=short", "get-property", BUS_NAME, path, _iface(iface), prop],
                     check=True)
        return json.loads(r.stdout)["data"]

    def set(self, iface, prop, signature, value, path=OBJ, check=True):
        r = self.run(["busctl", "--user", "set-property", BUS_NAME, path, _iface(iface), prop, signature, _arg(value)])
        if r.returncode != 0:
            err = BusError(r.stderr.strip())
            if check:
                raise err
            return err
        return None

    def secret_lookup(self, kind="llm"):
        r = self.run(["secret-tool", "lookup", "kind", kind])
        return r.stdout if r.returncode == 0 else None

    def write_config(self, obj_or_text, mode=0o600):
        os.makedirs(os.path.dirname(self.config_path), mode=0o700, exist_ok=True)
        text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text, indent=2) + "\n"
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, self.config_path)

    def read_config(self):
        with open(self.config_path) as f:
            return f.read()

    def files_containing(self, needle, root=None):
        """Every file under root (default HOME) whose bytes contain needle."""
        needle = needle.encode() if isinstance(needle, str) else needle
        hits = []
        for dirpath, _, files in os.walk(root or self.home):
            for name in files:
                p = os.path.join(dirpath, name)
                try:
                    with open(p, "rb") as f:
                        if needle in f.read():
                            hits.append(p)
                except OSError:
                    pass
        return hits


class BusError(Exception):
    def __init__(self, text):
        super().__init__(text)
        self.text = text
        # busctl prints "Call failed: <message>"; the error name is not shown,
        # so tests that need it use gdbus (see call_gdbus).
        self.message = text.split(":", 1)[1].strip() if text.startswith("Call failed:") else text


def call_gdbus(env, iface, method, *args, path=OBJ, check=False, timeout=30):
    """gdbus call, which prints the error name: returns (ok, stdout or
    (error_name, message))."""
    argv = ["gdbus", "call", "--session", "--dest", BUS_NAME, "--object-path", path,
            "--method", _iface(iface) + "." + method] + list(args)
    r = env.run(argv, timeout=timeout)
    if r.returncode == 0:
        return True, r.stdout.strip()
    text = r.stderr.strip()
    # "Error: GDBus.Error:bot.bankr.LLM1.Error.NoKey: message"
    if "GDBus.Error:" in text:
        rest = text.split("GDBus.Error:", 1)[1]
        name, _, msg = rest.partition(": ")
        return False, (name.strip(), msg.strip())
    return False, ("", text)


def _iface(iface):
    return iface if "." in iface else IFACE + iface


def _arg(a):
    if isinstance(a, bool):
        return "true" if a else "false"
    return str(a)


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def shquote(s):
    return "'" + str(s).replace("'", "'\\''") + "'"
