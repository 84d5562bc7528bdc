# SPDX-License-Identifier: MIT
"""A signal-level Chat client for the tests (dbus-python with the GLib main
loop, /usr/bin/python3).  Each ChatClient is its own bus connection (its own
unique name); all of them share GLib's default main context, so several
clients can stream at the same time in one test.

    c = ChatClient(env)
    path = c.start("gpt-5-mini", [("user", "hi")], {"max_tokens": dbus.UInt32(5)})
    res = c.wait(path)          # Result: .text (joined deltas), .deltas, .info,
                                # .error (name, message, partial) or None
"""
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)

# Closed connections stay referenced until the process ends: dbus-python
# raises "D-Bus connection does not have a Connection instance associated
# with it" inside GLib's dispatch when a message still queued for a
# connection arrives after its Python object was garbage-collected.
_closed = []

BUS_NAME = "bot.bankr.LLM1"
OBJ = "/bot/bankr/LLM1"
CHAT = "bot.bankr.LLM1.Chat"
REQUEST = "bot.bankr.LLM1.Request"
PROPS = "org.freedesktop.DBus.Properties"


def unwrap(v):
    """dbus-python values to plain Python."""
    if isinstance(v, dbus.Dictionary):
        return {str(k): unwrap(x) for k, x in v.items()}
    if isinstance(v, (dbus.Array, dbus.Struct, list, tuple)):
        return [unwrap(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    if isinstance(v, dbus.Double):
        return float(v)
    if isinstance(v, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64)):
        return int(v)
    return v


def options(d=None):
    return dbus.Dictionary(d or {}, signature="sv")


def messages(msgs):
    return dbus.Array([dbus.Struct((r, c), signature="ss") for r, c in msgs], signature="(ss)")


class Result:
    def __init__(self):
        self.deltas = []
        self.info = None
        self.error = None  # (name, message, partial)
        self.props = []    # PropertiesChanged dicts, in order
        self.done = False
        self.order = []    # signal names in arrival order

    @property
    def text(self):
        return "".join(self.deltas)


def run_until(predicate, timeout=10.0):
    """Runs the GLib main loop until predicate() is true; raises on timeout."""
    ctx = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s" % timeout)
        ctx.iteration(False) or time.sleep(0.001)
    # Drain what is already there (e.g. a stray signal that must not come).
    while ctx.pending():
        ctx.iteration(False)


def spin(seconds):
    ctx = GLib.MainContext.default()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.iteration(False) or time.sleep(0.002)


class ChatClient:
    def __init__(self, env, eavesdrop=False):
        self.bus = dbus.bus.BusConnection(env.bus_address)
        self.results = {}   # path -> Result
        self.stray = []     # signals for paths we never started
        self.all_signals = []
        # The match goes in before any Start: signals are unicast to us, so
        # nothing can be missed (and none of another client's can arrive).
        self.bus.add_signal_receiver(self._on_signal, dbus_interface=REQUEST, path_keyword="path",
                                     member_keyword="member")
        self.bus.add_signal_receiver(self._on_props, signal_name="PropertiesChanged", dbus_interface=PROPS,
                                     path_keyword="path")
        self.chat = dbus.Interface(self.bus.get_object(BUS_NAME, OBJ), CHAT)

    @property
    def unique_name(self):
        return self.bus.get_unique_name()

    def close(self):
        self.bus.close()
        _closed.append(self.bus)
        ctx = GLib.MainContext.default()
        while ctx.pending():
            ctx.iteration(False)

    def _result(self, path):
        return self.results.setdefault(str(path), Result())

    def _on_signal(self, *args, path=None, member=None):
        self.all_signals.append((str(path), str(member), unwrap(list(args))))
        if not str(path).startswith(OBJ + "/request/"):
            return
        r = self._result(path)
        r.order.append(str(member))
        if member == "Delta":
            r.deltas.append(str(args[0]))
        elif member == "Finished":
            r.info = unwrap(args[0])
            r.done = True
        elif member == "Failed":
            r.error = (str(args[0]), str(args[1]), bool(args[2]))
            r.done = True

    def _on_props(self, iface, changed, invalidated, path=None):
        if iface == REQUEST:
            r = self._result(path)
            r.props.append(unwrap(changed))
            r.order.append("PropertiesChanged")

    def start(self, model, msgs, opts=None, **kw):
        path = str(self.chat.Start(model, messages(msgs), options(opts), **kw))
        self._result(path)
        return path

    def start_async(self, model, msgs, opts, on_path, on_error):
        self.chat.Start(model, messages(msgs), options(opts), reply_handler=lambda p: on_path(str(p)),
                        error_handler=on_error)

    def complete(self, model, msgs, opts=None, timeout=60):
        text, info = self.chat.Complete(model, messages(msgs), options(opts), timeout=timeout)
        return str(text), unwrap(info)

    def wait(self, path, timeout=15.0):
        r = self._result(path)
        run_until(lambda: r.done, timeout)
        return r

    def wait_deltas(self, path, n=1, timeout=10.0):
        r = self._result(path)
        run_until(lambda: len(r.deltas) >= n or r.done, timeout)
        return r

    def request(self, path):
        return dbus.Interface(self.bus.get_object(BUS_NAME, path, introspect=False), REQUEST)

    def get(self, path, prop, iface=REQUEST):
        p = dbus.Interface(self.bus.get_object(BUS_NAME, path, introspect=False), PROPS)
        return unwrap(p.Get(iface, prop))

    def cancel(self, path):
        self.request(path).Cancel()


def error_name(exc):
    return exc.get_dbus_name() if isinstance(exc, dbus.exceptions.DBusException) else None
