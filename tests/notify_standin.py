#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Stand-in for bankr-llmd's Credits and Key interfaces, for bankr-llm-notify's tests.

Owns bot.bankr.LLM1 on the session bus and serves /bot/bankr/LLM1 with the
properties and signals of dbus-api.md (Credits: Balance, State, UpdatedAt,
LowThreshold, Refresh(), Low(dd), Exhausted(); Key: Present, Source, Kind,
Masked, GatewayUrl), emitting PropertiesChanged with values like sd-bus does.

A control interface, bot.bankr.LLM1.Test, lets a test drive it:
  SetCredits(d balance, s state)  a "refresh" that found this answer: changed
                                  properties, then Low() when the state crosses
                                  into "low", Exhausted() on every "exhausted"
  SetKey(s source, s kind)        what Key.Source/Kind say
  SetSignalsFirst(b)              emit Low/Exhausted before PropertiesChanged
  Deprecate(ss)                   emit Models.ModelDeprecated(id, replacement)
  Quit()
"""

import argparse
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

NAME = 'bot.bankr.LLM1'
PATH = '/bot/bankr/LLM1'
CREDITS = 'bot.bankr.LLM1.Credits'
KEY = 'bot.bankr.LLM1.Key'
CONTROL = 'bot.bankr.LLM1.Test'
PROPS = 'org.freedesktop.DBus.Properties'
STATES = ('unknown', 'ok', 'low', 'exhausted', 'unauthorized')


def now_usec():
    return dbus.UInt64(int(time.time() * 1e6))


class StandIn(dbus.service.Object):
    def __init__(self, bus, args, loop):
        super().__init__(bus, PATH)
        self.loop = loop
        self.signals_first = False
        self.props = {
            CREDITS: {
                'Balance': dbus.Double(args.balance),
                'State': dbus.String(args.state),
                'UpdatedAt': now_usec() if args.state != 'unknown' else dbus.UInt64(0),
                'LowThreshold': dbus.Double(args.threshold),
            },
            KEY: {
                'Present': dbus.Boolean(args.key_source != 'none'),
                'Source': dbus.String(args.key_source),
                'Kind': dbus.String(args.key_kind),
                'Masked': dbus.String('bk_abc...wxyz' if args.key_source != 'none' else ''),
                'GatewayUrl': dbus.String('http://127.0.0.1:9'),
            },
        }

    def _iface(self, interface):
        if interface not in self.props:
            raise dbus.exceptions.DBusException(
                f'No such interface {interface}', name='org.freedesktop.DBus.Error.UnknownInterface')
        return self.props[interface]

    def _change(self, interface, values):
        changed = {k: v for k, v in values.items() if self.props[interface][k] != v or k == 'UpdatedAt'}
        self.props[interface].update(values)
        if changed:
            self.PropertiesChanged(interface, dbus.Dictionary(changed, signature='sv'),
                                   dbus.Array([], signature='s'))

    # org.freedesktop.DBus.Properties
    @dbus.service.method(PROPS, in_signature='ss', out_signature='v')
    def Get(self, interface, name):
        props = self._iface(interface)
        if name not in props:
            raise dbus.exceptions.DBusException(
                f'No such property {name}', name='org.freedesktop.DBus.Error.UnknownProperty')
        return props[name]

    @dbus.service.method(PROPS, in_signature='s', out_signature='a{sv}')
    def GetAll(self, interface):
        return dbus.Dictionary(self._iface(interface), signature='sv')

    @dbus.service.method(PROPS, in_signature='ssv', out_signature='')
    def Set(self, interface, name, value):
        if interface != CREDITS or name != 'LowThreshold':
            raise dbus.exceptions.DBusException(
                f'Property {name} is read-only', name='org.freedesktop.DBus.Error.PropertyReadOnly')
        self._change(CREDITS, {'LowThreshold': dbus.Double(value)})

    @dbus.service.signal(PROPS, signature='sa{sv}as')
    def PropertiesChanged(self, interface, changed, invalidated):
        pass

    # bot.bankr.LLM1.Credits
    @dbus.service.method(CREDITS, in_signature='', out_signature='d')
    def Refresh(self):
        self._change(CREDITS, {'UpdatedAt': now_usec()})
        return self.props[CREDITS]['Balance']

    @dbus.service.signal(CREDITS, signature='dd')
    def Low(self, balance, threshold):
        pass

    @dbus.service.signal(CREDITS, signature='')
    def Exhausted(self):
        pass

    # bot.bankr.LLM1.Models (only the signal the agent listens to)
    @dbus.service.signal('bot.bankr.LLM1.Models', signature='ss')
    def ModelDeprecated(self, model, replacement):
        pass

    # bot.bankr.LLM1.Test
    @dbus.service.method(CONTROL, in_signature='ss', out_signature='')
    def Deprecate(self, model, replacement):
        self.ModelDeprecated(model, replacement)

    @dbus.service.method(CONTROL, in_signature='ds', out_signature='')
    def SetCredits(self, balance, state):
        if state not in STATES:
            raise dbus.exceptions.DBusException(f'bad state {state}',
                                                name='org.freedesktop.DBus.Error.InvalidArgs')
        old = self.props[CREDITS]['State']
        threshold = self.props[CREDITS]['LowThreshold']

        def signals():
            if state == 'low' and old != 'low':
                self.Low(dbus.Double(balance), threshold)
            if state == 'exhausted':
                self.Exhausted()

        if self.signals_first:
            signals()
        self._change(CREDITS, {'Balance': dbus.Double(balance), 'State': dbus.String(state),
                               'UpdatedAt': now_usec()})
        if not self.signals_first:
            signals()

    @dbus.service.method(CONTROL, in_signature='ss', out_signature='')
    def SetKey(self, source, kind):
        self._change(KEY, {'Source': dbus.String(source), 'Kind': dbus.String(kind),
                           'Present': dbus.Boolean(source != 'none')})

    @dbus.service.method(CONTROL, in_signature='b', out_signature='')
    def SetSignalsFirst(self, first):
        self.signals_first = bool(first)

    @dbus.service.method(CONTROL, in_signature='', out_signature='')
    def Quit(self):
        GLib.idle_add(self.loop.quit)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--balance', type=float, default=20.0)
    p.add_argument('--state', choices=STATES, default='ok')
    p.add_argument('--threshold', type=float, default=5.0)
    p.add_argument('--key-source', default='keyring')
    p.add_argument('--key-kind', default='llm')
    args = p.parse_args()

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    loop = GLib.MainLoop()
    StandIn(bus, args, loop)
    # Claim the name last, so that whoever sees it can use everything.
    name = dbus.service.BusName(NAME, bus, do_not_queue=True)
    loop.run()
    del name
    return 0


if __name__ == '__main__':
    sys.exit(main())
