# SPDX-License-Identifier: MIT
"""Private D-Bus buses and a mock polkitd for tests.

Reusable by any test that needs polkit decisions without touching the real
system: a private system bus (harness.PrivateBus of type system, allow-all policy)
with python-dbusmock's polkitd template on it, and optionally a private
session bus. Nothing here reads or writes outside the given directory.

    env = BusEnv(tmpdir)                 # fresh HOME, XDG_* in tmpdir
    env.start_session_bus()
    env.start_system_bus()
    polkit = env.start_polkitd()         # dbusmock --system --template polkitd
    polkit.set_allowed(['bot.bankr.LLM1.top-up'])
    subprocess.Popen([...], env=env.environ)
    ...
    polkit.check_calls()                 # what CheckAuthorization received
    env.stop()

Run with Debian's /usr/bin/python3: dbusmock and dbus-python live there.
"""

import os
import subprocess
import time

import dbus

from harness import PrivateBus

PYTHON = '/usr/bin/python3'

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority'
POLKIT_IFACE = 'org.freedesktop.PolicyKit1.Authority'
MOCK_IFACE = 'org.freedesktop.DBus.Mock'

def wait_for(predicate, timeout=10.0, interval=0.02, what='condition'):
    """Polls predicate() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


class MockPolkitd:
    """python-dbusmock's polkitd on a private system bus.

    With template=True (the default) it is dbusmock's polkitd template:
    everything is denied unless set_allowed()/allow_unknown() say otherwise.
    With template=False, an empty mock object whose CheckAuthorization runs
    the given Python code (dbusmock's AddMethod: set `ret`, or raise), for
    answers the template cannot give (dismissed dialogs, polkit errors).
    """

    def __init__(self, bus, directory, environ, template=True, check_code=None, log=None):
        self.bus = bus
        self.log = log or os.path.join(directory, 'polkitd-mock.log')
        if template:
            argv = [PYTHON, '-m', 'dbusmock', '--system', '--template', 'polkitd', '-l', self.log]
        else:
            argv = [PYTHON, '-m', 'dbusmock', '--system', '-l', self.log,
                    POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE]
        env = dict(environ)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address
        env['TMPDIR'] = directory  # dbusmock leaves dbusmock_data_* behind
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.process.poll() is not None or bus.has_owner(POLKIT_NAME),
                     what='the polkitd mock')
            if self.process.poll() is not None:
                raise RuntimeError(f'the polkitd mock exited with {self.process.returncode}')
            obj = bus.connection().get_object(POLKIT_NAME, POLKIT_PATH)
            self.mock = dbus.Interface(obj, MOCK_IFACE)
            if not template:
                self.mock.AddMethod(POLKIT_IFACE, 'CheckAuthorization', '(sa{sv})sa{ss}us', '(bba{ss})',
                                    check_code or 'ret = (False, False, {})')
        except BaseException:
            self.stop()
            raise

    # The template's controls.
    def set_allowed(self, actions):
        self.mock.SetAllowed(dbus.Array(actions, signature='s'))

    def allow_unknown(self, allow=True):
        self.mock.AllowUnknown(allow)

    def set_delay(self, seconds):
        self.mock.SetDelay(float(seconds))

    def simulate_hang(self, hang=True):
        self.mock.SimulateHang(hang)

    def release_hanging_calls(self):
        self.mock.ReleaseHangingCalls()

    def have_hanging_calls(self):
        return bool(self.mock.HaveHangingCalls())

    def check_calls(self):
        """CheckAuthorization calls received so far, oldest first, as dicts:
        subject_kind, subject (dict of plain values), action, details, flags,
        cancellation_id."""
        calls = []
        for _timestamp, args in self.mock.GetMethodCalls('CheckAuthorization'):
            (kind, subject), action, details, flags, cancellation_id = args
            calls.append({
                'subject_kind': str(kind),
                'subject': {str(k): _plain(v) for k, v in subject.items()},
                'action': str(action),
                'details': {str(k): str(v) for k, v in details.items()},
                'flags': int(flags),
                'cancellation_id': str(cancellation_id),
            })
        return calls

    def clear_calls(self):
        self.mock.ClearCalls()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _plain(value):
    if isinstance(value, (dbus.String, dbus.ObjectPath)):
        return str(value)
    if isinstance(value, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32,
                          dbus.Int64, dbus.UInt64)):
        return int(value)
    if isinstance(value, dbus.Boolean):
        return bool(value)
    return value


class BusEnv:
    """A throw-away environment: HOME and XDG_* inside directory, and the
    private buses started on demand. `environ` is what child processes get."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        home = os.path.join(directory, 'home')
        runtime = os.path.join(directory, 'runtime')
        for d in (home, runtime):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.environ = dict(os.environ)
        for var in ('DBUS_SESSION_BUS_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'DBUS_STARTER_ADDRESS',
                    'DBUS_STARTER_BUS_TYPE', 'DISPLAY', 'WAYLAND_DISPLAY'):
            self.environ.pop(var, None)
        self.environ.update({
            'HOME': home,
            'XDG_RUNTIME_DIR': runtime,
            'XDG_CONFIG_HOME': os.path.join(home, '.config'),
            'XDG_DATA_HOME': os.path.join(home, '.local', 'share'),
            'XDG_CACHE_HOME': os.path.join(home, '.cache'),
            'XDG_STATE_HOME': os.path.join(home, '.local', 'state'),
            'TMPDIR': directory,
            # Until a system bus is started, point at one that does not exist:
            # never fall back to the machine's real system bus.
            'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=' + os.path.join(directory, 'no-system-bus'),
        })
        self.session_bus = None
        self.system_bus = None
        self.polkitd = None
        self.servicedir = os.path.join(directory, 'services')
        os.makedirs(self.servicedir, exist_ok=True)

    def start_session_bus(self):
        self.session_bus = PrivateBus(os.path.join(self.directory, 'session'), 'session',
                                      servicedir=self.servicedir)
        self.environ['DBUS_SESSION_BUS_ADDRESS'] = self.session_bus.start()
        return self.session_bus

    def start_system_bus(self):
        """Starts (or restarts, at the same address) the private system bus."""
        if self.system_bus is None:
            self.system_bus = PrivateBus(os.path.join(self.directory, 'system'), 'system')
        self.environ['DBUS_SYSTEM_BUS_ADDRESS'] = self.system_bus.start()
        return self.system_bus

    def stop_system_bus(self):
        self.stop_polkitd()
        if self.system_bus is not None:
            self.system_bus.stop()

    def start_polkitd(self, **kwargs):
        """Mock polkitd on the private system bus (starting that bus if needed)."""
        if self.system_bus is None or self.system_bus.pid is None:
            self.start_system_bus()
        self.stop_polkitd()
        self.polkitd = MockPolkitd(self.system_bus, self.directory, self.environ, **kwargs)
        return self.polkitd

    def stop_polkitd(self):
        if self.polkitd is not None:
            self.polkitd.stop()
            self.polkitd = None

    def stop(self):
        self.stop_polkitd()
        for bus in (self.system_bus, self.session_bus):
            if bus is not None:
                bus.stop()
