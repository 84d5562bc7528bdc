#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A desktop client of bankr-llmd in Python with Gio (python3-gi): shows the
credit balance, streams a chat answer as it arrives, and follows balance
changes.

    examples/chat-gio.py [-m MODEL] [--watch SECONDS] [--changes N] PROMPT...

The parts, in order:
  1. a Gio.DBusProxy for bot.bankr.LLM1.Credits: it activates the service,
     caches Balance/State and follows PropertiesChanged by itself;
  2. a subscription to the bot.bankr.LLM1.Request signals from the service,
     made before Chat.Start, so not one Delta is missed (they are unicast to
     this connection, and only arrive here);
  3. Chat.Start, which returns the request's object path at once; Delta
     pieces print as they come, Finished or Failed ends the answer;
  4. with --watch, the balance for that long afterwards (the service
     refreshes it a few seconds after a request), at most --changes changes.
"""
import argparse
import sys

import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME = "bot.bankr.LLM1"
PATH = "/bot/bankr/LLM1"


def show_balance(credits, prefix):
    balance = credits.get_cached_property("Balance")
    state = credits.get_cached_property("State")
    if balance is None or state is None:
        print("%s: unknown (is bankr-llmd running?)" % prefix, flush=True)
    else:
        print("%s: $%.2f (%s)" % (prefix, balance.unpack(), state.unpack()), flush=True)


def main():
    ap = argparse.ArgumentParser(description="Stream a chat answer from bankr-llmd.")
    ap.add_argument("-m", "--model", default="claude-haiku-4.5")
    ap.add_argument("--watch", type=float, default=0, metavar="SECONDS",
                    help="follow balance changes for this long after the answer")
    ap.add_argument("--changes", type=int, default=0, metavar="N",
                    help="stop watching after N balance changes (0: no limit)")
    ap.add_argument("prompt", nargs="+")
    args = ap.parse_args()

    bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    loop = GLib.MainLoop()
    status = {"code": 0, "request": None, "early": [], "changes": 0, "answering": True}

    # 1. Credits: the proxy loads the properties and follows PropertiesChanged.
    credits = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, NAME, PATH, NAME + ".Credits", None)
    show_balance(credits, "Balance")

    def on_credits_changed(proxy, changed, invalidated):
        if "Balance" in changed.keys() or "State" in changed.keys():
            show_balance(proxy, "Balance changed")
            status["changes"] += 1
            if not status["answering"] and args.changes and status["changes"] >= args.changes:
                loop.quit()
    credits.connect("g-properties-changed", on_credits_changed)

    # 2. Request signals, subscribed before Start (the sender is the service's
    #    unique name, which the proxy knows now that it is running).
    def on_request_signal(conn, sender, path, iface, signal, params):
        if status["request"] is None:
            status["early"].append((path, signal, params))  # Start has not answered yet
            return
        if path != status["request"]:
            return
        if signal == "Delta":
            sys.stdout.write(params[0])
            sys.stdout.flush()
        elif signal == "Finished":
            info = params[0]
            print("\n[%s: %d tokens in, %d out, $%.6f]" % (info.get("model", "?"), info.get("input_tokens", 0),
                                                           info.get("output_tokens", 0), info.get("cost_usd", 0.0)),
                  flush=True)
            answered()
        elif signal == "Failed":
            name, message, partial = params.unpack()
            print("\nFailed: %s (%s)" % (message, name), file=sys.stderr, flush=True)
            status["code"] = 1
            answered()

    def answered():
        status["answering"] = False
        if args.watch <= 0 or (args.changes and status["changes"] >= args.changes):
            loop.quit()
        else:
            GLib.timeout_add(int(args.watch * 1000), loop.quit)

    bus.signal_subscribe(credits.get_name_owner(), NAME + ".Request", None, None, None,
                         Gio.DBusSignalFlags.NONE, on_request_signal)

    # 3. Start the request: messages a(ss), options a{sv}.
    messages = [("user", " ".join(args.prompt))]
    try:
        reply = bus.call_sync(NAME, PATH, NAME + ".Chat", "Start",
                              GLib.Variant("(sa(ss)a{sv})", (args.model, messages, {})),
                              GLib.VariantType("(o)"), Gio.DBusCallFlags.NONE, -1, None)
    except GLib.Error as e:
        print("Chat.Start failed: %s" % e.message, file=sys.stderr)
        return 1
    status["request"] = reply.unpack()[0]
    for path, signal, params in status.pop("early"):
        on_request_signal(bus, None, path, NAME + ".Request", signal, params)

    loop.run()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
