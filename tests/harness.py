# SPDX-License-Identifier: MIT
"""A private desktop session for one test: temporary HOME and XDG dirs, a
private dbus-daemon whose servicedir activates the freshly built bankr-llmd,
the real gnome-keyring-daemon (unlocked, or absent, or locked), and the fake
gateway on 127.0.0.1.  Nothing here touches the developer's own session.

    with Env() as env:
        env.call("Key", "Set", "bk_...", "llm")    # python-dbus
        env.cli("status")

or, for a test case, harness.TestCase (self.env, started and stopped).
Method calls and properties go through python-dbus, so that a failed call
raises dbus.exceptions.DBusException with the error's name
(get_dbus_name()) and message (get_dbus_message()).

Paths of the built programs come from the environment meson sets for tests
(BANKR_LLMD, BANKR_LLM, BANKR_LLM_NOTIFY, BANKR_LLMD_CATALOG).  Under the
sanitizer build, ASAN_OPTIONS/UBSAN_OPTIONS carry a log_path into the test's
directory; stop() fails the test if any report was written.
"""
import functools
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import dbus
    from dbus.exceptions import DBusException
except ImportError:
    # The package build runs the man and docs checks (SRC, BUILD only)
    # without python3-dbus; everything that talks to a bus needs it.
    dbus = None

    class DBusException(Exception):
        pass

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


class PrivateBus:
    """One dbus-daemon of the given kind ("session" or "system") listening
    on socket, with SESSION_CONF (everything allowed) and only servicedir
    (or none: never the stock directories, whose services expect a
    desktop). The one helper for every private bus of the tests: Env's
    session and system buses, polkit_env's, test-notify's. start() again
    after stop() gives a bus at the same address (a restart)."""

    def __init__(self, directory, kind, socket=None, servicedir=None, env=None):
        self.directory = directory
        self.kind = kind
        self.socket = socket or os.path.join(directory, "%s_bus_socket" % kind)
        self.address = "unix:path=" + self.socket
        self.servicedir = servicedir
        self.env = env
        self.pid = None
        self._connection = None

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        conf = os.path.join(self.directory, "%s.conf" % self.kind)
        with open(conf, "w") as f:
            f.write(SESSION_CONF.format(type=self.kind, socket=self.socket,
                                        servicedir=self.servicedir or os.path.join(self.directory, "no-services")))
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        out = subprocess.run(["dbus-daemon", "--config-file=" + conf, "--fork", "--nosyslog", "--print-pid=1"],
                             env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             check=True, timeout=10)
        self.pid = int(out.stdout.split()[0])
        wait_until(lambda: os.path.exists(self.socket), what="the bus socket")
        return self.address

    def connection(self):
        """A dbus-python connection of the test's own (blocking calls need
        no main loop); follows a restart of the bus."""
        if self._connection is not None and not self._connection.get_is_connected():
            self._connection = None
        if self._connection is None:
            self._connection = dbus.bus.BusConnection(self.address)
        return self._connection

    def has_owner(self, name):
        return self.connection().name_has_owner(name)

    def close(self):
        """Closes the test's connection (the bus goes on)."""
        if self._connection is not None:
            try:
                self._connection.close()
            except DBusException:
                pass
            self._connection = None

    def stop(self):
        self.close()
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            # Not our child (it forked): wait until it is gone.
            try:
                wait_until(lambda: _is_zombie(self.pid), timeout=5, what="dbus-daemon %d to exit" % self.pid)
            except AssertionError:
                os.kill(self.pid, signal.SIGKILL)
            self.pid = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)


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
        self.session_bus = None
        self.system_bus = None  # a PrivateBus, with system_bus=True
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
        for bus in (self.system_bus, self.session_bus):
            if bus:
                bus.stop()
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

    @property
    def bus_address(self):
        return self.session_bus.address

    @property
    def bus_pid(self):
        return self.session_bus.pid if self.session_bus else None

    @bus_pid.setter
    def bus_pid(self, pid):  # None: the test stopped the bus itself
        self.session_bus.pid = pid

    def _start_bus(self):
        self.session_bus = PrivateBus(self.dir, "session", socket=os.path.join(self.dir, "bus"),
                                      servicedir=os.path.join(self.dir, "services"), env=self.environ)
        self.environ["DBUS_SESSION_BUS_ADDRESS"] = self.session_bus.address
        # Without a system bus of its own, a test sees a dead one: never the host's.
        self.environ.setdefault("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + os.path.join(self.dir, "no-system-bus"))
        self.session_bus.start()

    def _start_system_bus(self):
        sysdir = os.path.join(self.dir, "system-services")
        os.makedirs(sysdir, exist_ok=True)
        self.system_bus = PrivateBus(self.dir, "system", socket=os.path.join(self.dir, "system_bus"),
                                     servicedir=sysdir, env=self.environ)
        self.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.system_bus.address
        self.system_bus.start()

    def start_polkitd(self, **kwargs):
        """python-dbusmock's polkitd (polkit_env.MockPolkitd) on this Env's
        system bus (system_bus=True); stopped by stop()."""
        from polkit_env import MockPolkitd
        p = MockPolkitd(self.system_bus, self.dir, self.environ, **kwargs)
        self.procs.append(p.process)
        return p

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
        self.bus().call_blocking("org.freedesktop.secrets", "/org/freedesktop/secrets",
                                 "org.freedesktop.Secret.Service", "Lock", "ao",
                                 [["/org/freedesktop/secrets/collection/login"]])

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
        self.reload_bus_config()

    def reload_bus_config(self):
        """Lets the bus re-read its servicedir."""
        self._bus_call("ReloadConfig")

    def _bus_call(self, method, *args):
        """A call to the bus itself; None if it fails (or the bus is gone)."""
        try:
            return self.call("org.freedesktop.DBus", method, *args, dest="org.freedesktop.DBus",
                             path="/org/freedesktop/DBus", timeout=10)
        except DBusException:
            return None

    def service_pid(self):
        r = self._bus_call("GetConnectionUnixProcessID", BUS_NAME)
        return r[0] if r else None

    def start_service(self):
        """Activates the service (Peer.Ping); returns its PID."""
        self.call("org.freedesktop.DBus.Peer", "Ping", timeout=30)
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

    def bus(self):
        """The test's own python-dbus connection to the session bus."""
        return self.session_bus.connection()

    def call(self, iface, method, *args, signature=None, check=True, path=OBJ, timeout=30, dest=BUS_NAME):
        """Calls a method through python-dbus; returns the list of its
        results as plain Python values (plain()). A failure raises
        DBusException (get_dbus_name(), get_dbus_message()), or is
        returned with check=False. signature: of the arguments, when
        python-dbus would guess it wrongly (ints are guessed as i)."""
        try:
            reply = self.bus().call_blocking(dest, path, _iface(iface), method, signature, args,
                                             timeout=timeout * SLOW)
        except DBusException as e:
            if check:
                raise
            return e
        if reply is None:
            return []
        if type(reply) is tuple:
            return [plain(v) for v in reply]
        return [plain(reply)]

    def try_call(self, iface, method, *args, **kwargs):
        """call() that tells instead of raising: (True, results) or
        (False, (error name, message))."""
        r = self.call(iface, method, *args, check=False, **kwargs)
        if isinstance(r, DBusException):
            return False, (r.get_dbus_name(), r.get_dbus_message())
        return True, r

    def call_error(self, iface, method, *args, **kwargs):
        """A call that must fail: its (error name, message)."""
        e = self.call(iface, method, *args, check=False, **kwargs)
        if not isinstance(e, DBusException):
            raise AssertionError("%s.%s succeeded: %r" % (iface, method, e))
        return e.get_dbus_name(), e.get_dbus_message()

    def get(self, iface, prop, path=OBJ):
        return self.call("org.freedesktop.DBus.Properties", "Get", _iface(iface), prop, signature="ss",
                         path=path)[0]

    def set(self, iface, prop, signature, value, path=OBJ, check=True):
        """Properties.Set with the value typed by signature ("d", "u", ...)."""
        r = self.call("org.freedesktop.DBus.Properties", "Set", _iface(iface), prop,
                      _typed(signature, value), signature="ssv", path=path, check=check)
        return r if isinstance(r, DBusException) else None

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


class TestCase(unittest.TestCase):
    """A test case with its own session: setUp starts self.env =
    Env(**env_args) (unless env_args is None), tearDown stops it and, only
    when the test passed, fails it for sanitizer reports or a daemon that
    did not exit cleanly (a failed test keeps its own message). self.passed
    tells whether the test method returned, for subclasses that print logs
    on failure."""
    env_args = {}

    def run(self, result=None):
        # Whether the test method returned, without unittest's internals.
        name = self._testMethodName
        method = getattr(self, name)

        @functools.wraps(method)
        def recorded(*args, **kwargs):
            value = method(*args, **kwargs)
            self.passed = True
            return value

        self.passed = False
        setattr(self, name, recorded)
        try:
            return super().run(result)
        finally:
            delattr(self, name)

    def setUp(self):
        self.env = self._session = None
        if self.env_args is not None:
            self.env = self._session = Env(**self.env_args)
            try:
                self.env.start()
            except BaseException:
                self.env.stop(check=False)
                raise

    def tearDown(self):
        if self._session is not None:
            if not self.passed and os.environ.get("BANKR_TEST_SHOW_LOG"):
                sys.stderr.write("\n--- bankr-llmd log ---\n" + self._session.log())
            self._session.stop(check=self.passed)

    def assertBusError(self, name, fn, *args, contains=None, **kwargs):
        """fn(*args) raises DBusException name (with contains, a string or a
        list of them, in its message); returns the message."""
        with self.assertRaises(DBusException) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.get_dbus_name(), name, cm.exception.get_dbus_message())
        msg = cm.exception.get_dbus_message()
        for part in ([contains] if isinstance(contains, str) else contains or []):
            self.assertIn(part, msg)
        return msg


def busctl_plain(v):
    """A busctl --json=short value ({"type", "data"} wrappers) as plain Python."""
    if isinstance(v, dict) and set(v) == {"type", "data"}:
        return busctl_plain(v["data"])
    if isinstance(v, dict):
        return {k: busctl_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [busctl_plain(x) for x in v]
    return v


def plain(v):
    """A python-dbus value as plain Python: str, int, float, bool, list,
    dict (structs become lists, as busctl --json shows them)."""
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath, dbus.Signature)):
        return str(v)
    if isinstance(v, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64)):
        return int(v)
    if isinstance(v, dbus.Double):
        return float(v)
    if isinstance(v, dict):
        return {plain(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def _typed(signature, value):
    """value as the python-dbus type of a one-type signature, in a variant."""
    types = {"s": dbus.String, "b": dbus.Boolean, "d": dbus.Double, "y": dbus.Byte, "n": dbus.Int16,
             "q": dbus.UInt16, "i": dbus.Int32, "u": dbus.UInt32, "x": dbus.Int64, "t": dbus.UInt64,
             "o": dbus.ObjectPath}
    if signature in types:
        return types[signature](value, variant_level=1)
    if signature.startswith("a{s"):
        return dbus.Dictionary(value, signature=signature[2:-1], variant_level=1)
    if signature.startswith("a"):
        return dbus.Array(value, signature=signature[1:], variant_level=1)
    raise ValueError("no python-dbus type for %r" % signature)


def _iface(iface):
    return iface if "." in iface else IFACE + iface


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def shquote(s):
    return "'" + str(s).replace("'", "'\\''") + "'"
