#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bankr-llm-notify against a private session bus.

Each test gets its own dbus-daemon, HOME and XDG_* directories; python-dbusmock's
notification_daemon template plays the notification server, and a backend plays
bankr-llmd. The backend is tests/notify_standin.py by default; BANKR_NOTIFY_BACKEND
selects another one (see make_backend()), so the same cases can later run against
the real daemon and the fake gateway. Cases that kill and restart the service use
the stand-in whatever the choice.

Environment: BANKR_LLM_NOTIFY = the built agent (default: ../build/clients/…).
Run one case: /usr/bin/python3 tests/test-notify.py NotifyTest.test_low_crossing
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import dbus

from harness import PrivateBus, TestCase

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.environ.get('BANKR_LLM_NOTIFY',
                       os.path.join(HERE, '..', 'build', 'clients', 'bankr-llm-notify'))
PYTHON = '/usr/bin/python3'
SLOW = float(os.environ.get('BANKR_TEST_SLOW', '1'))  # >1 under sanitizers

SERVICE_NAME = 'bot.bankr.LLM1'
SERVICE_PATH = '/bot/bankr/LLM1'
AGENT_NAME = 'bot.bankr.LLM1.Notifier'
NOTIFY_NAME = 'org.freedesktop.Notifications'
NOTIFY_PATH = '/org/freedesktop/Notifications'
MOCK_IFACE = 'org.freedesktop.DBus.Mock'

TOP_UP_URL = 'https://bankr.bot/api'

def wait_for(predicate, timeout=5.0, what='condition'):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.05)


def stop_process(proc, timeout=5):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class StandinBackend:
    """bankr-llmd played by tests/notify_standin.py.

    The interface every backend offers: start(state, balance, threshold,
    key_source, key_kind), stop(), restart(...), set_credits(balance, state),
    set_key(source, kind), set_signals_first(bool), refresh()."""

    def __init__(self, test):
        self.test = test
        self.proc = None

    def start(self, state='ok', balance=20.0, threshold=5.0, key_source='keyring', key_kind='llm'):
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, 'notify_standin.py'), '--state', state,
             '--balance', str(balance), '--threshold', str(threshold),
             '--key-source', key_source, '--key-kind', key_kind],
            env=self.test.env, stdout=self.test.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.test.bus.name_has_owner(SERVICE_NAME), what='the stand-in service')

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        wait_for(lambda: not self.test.bus.name_has_owner(SERVICE_NAME), what='the service to leave')

    def restart(self, **kwargs):
        self.stop()
        self.start(**kwargs)

    def _control(self):
        return dbus.Interface(self.test.bus.get_object(SERVICE_NAME, SERVICE_PATH), 'bot.bankr.LLM1.Test')

    def set_credits(self, balance, state):
        self._control().SetCredits(dbus.Double(balance), state)

    def set_key(self, source, kind='llm'):
        self._control().SetKey(source, kind)

    def set_signals_first(self, first):
        self._control().SetSignalsFirst(first)

    def deprecate(self, model, replacement):
        self._control().Deprecate(model, replacement)

    def refresh(self):
        dbus.Interface(self.test.bus.get_object(SERVICE_NAME, SERVICE_PATH),
                       'bot.bankr.LLM1.Credits').Refresh()


def make_backend(test, restartable=False):
    """The real daemon with the fake gateway is to be added here as another
    backend with the same methods; until then (and for restart cases) the
    stand-in plays the service."""
    choice = os.environ.get('BANKR_NOTIFY_BACKEND', 'standin')
    if choice != 'standin' and not restartable:
        raise unittest.SkipTest(f'backend {choice!r} is not available yet')
    return StandinBackend(test)


class NotifyTest(TestCase):
    env_args = None  # a session of its own, below

    def setUp(self):
        super().setUp()
        if not os.access(AGENT, os.X_OK):
            self.skipTest(f'{AGENT} not built')
        self.tmp = tempfile.mkdtemp(prefix='test-notify-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.procs = []
        self.log = open(os.path.join(self.tmp, 'log'), 'w+')
        self.addCleanup(self.log.close)
        self.addCleanup(self._dump_log_on_failure)

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('DBUS_', 'XDG_')) and k not in ('DISPLAY', 'WAYLAND_DISPLAY', 'HOME')}
        env['HOME'] = os.path.join(self.tmp, 'home')
        for name in ('XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_CACHE_HOME'):
            env[name] = os.path.join(self.tmp, name.lower())
        for d in ('home', 'services', 'bin') + tuple(n.lower() for n in
                                                      ('XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME',
                                                       'XDG_DATA_HOME', 'XDG_CACHE_HOME')):
            os.makedirs(os.path.join(self.tmp, d), mode=0o700, exist_ok=True)
        env['TMPDIR'] = self.tmp
        env['NO_AT_BRIDGE'] = '1'

        session = PrivateBus(self.tmp, 'session', socket=os.path.join(self.tmp, 'bus'),
                             servicedir=os.path.join(self.tmp, 'services'), env=env)
        env['DBUS_SESSION_BUS_ADDRESS'] = session.start()
        self.addCleanup(session.stop)
        self.env = env

        self.bus = session.connection()
        self.addCleanup(self._stop_all)

        self.fakebin = os.path.join(self.tmp, 'bin')
        self.agent = None
        self.mock = None
        self.backend = make_backend(self, restartable=False)

    def _stop_all(self):
        if self.agent is not None:
            # Whatever the case did, the agent must have survived it.
            self.assertIsNone(self.agent.poll(), 'the agent died:\n' + self.agent_log())
        for p in reversed(self.procs):
            stop_process(p)
        if self.backend and self.backend.proc:
            stop_process(self.backend.proc)

    def _dump_log_on_failure(self):
        if not self.passed or os.environ.get('TEST_NOTIFY_SHOW_LOG'):
            sys.stderr.write(f'--- log of {self.id()} ---\n{self.agent_log()}--- end ---\n')

    # -- the pieces -------------------------------------------------------

    def start_mock(self, actions=False):
        params = '{"capabilities": "body body-markup actions"}' if actions else '{}'
        self.mock = subprocess.Popen([PYTHON, '-m', 'dbusmock', '--template', 'notification_daemon',
                                      '-p', params],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.procs.append(self.mock)
        wait_for(lambda: self.bus.name_has_owner(NOTIFY_NAME), what='the mock notification server')
        self.mock_obj = dbus.Interface(self.bus.get_object(NOTIFY_NAME, NOTIFY_PATH), MOCK_IFACE)

    def start_agent(self, path=None):
        env = dict(self.env)
        # Only our stand-ins: no real terminal or xdg-open may be found.
        env['PATH'] = path or self.fakebin
        self.agent = subprocess.Popen([AGENT, '--verbose'], env=env,
                                      stdout=self.log, stderr=subprocess.STDOUT)
        self.procs.append(self.agent)
        wait_for(lambda: self.bus.name_has_owner(AGENT_NAME) or self.agent.poll() is not None,
                 what='the agent')
        self.assertIsNone(self.agent.poll(), 'agent exited:\n' + self.agent_log())
        self.settle()
        return self.agent

    def stop_agent(self):
        self.agent.send_signal(signal.SIGTERM)
        self.assertEqual(self.agent.wait(5), 0)
        self.procs.remove(self.agent)
        self.agent = None

    def agent_log(self):
        self.log.flush()
        with open(os.path.join(self.tmp, 'log')) as f:
            return f.read()

    def settle(self):
        """Lets the agent catch up: a ping through it round-trips after every
        message the bus had queued for it before."""
        self.bus.call_blocking(AGENT_NAME, '/', 'org.freedesktop.DBus.Peer', 'Ping', '', [])
        time.sleep(0.2)

    def fake_tool(self, name):
        """A stand-in for name in the agent's PATH that records its argv."""
        record = os.path.join(self.tmp, name + '.args')
        path = os.path.join(self.fakebin, name)
        with open(path, 'w') as f:
            f.write(f'#!/bin/sh\nPATH=/usr/bin:/bin\nfor a in "$@"; do printf "%s\\0" "$a"; done > {record}.tmp\n'
                    f'mv {record}.tmp {record}\n')
        os.chmod(path, 0o755)
        return record

    @staticmethod
    def recorded_args(record):
        wait_for(lambda: os.path.exists(record), what=record)
        with open(record) as f:
            return f.read().split('\0')[:-1]

    def notifications(self):
        """Notify calls the server got: dicts with the arguments by name."""
        calls = self.mock_obj.GetMethodCalls('Notify')
        keys = ('app_name', 'replaces_id', 'icon', 'summary', 'body', 'actions', 'hints', 'timeout')
        return [dict(zip(keys, args)) for _, args in calls]

    def closes(self):
        return [int(args[0]) for _, args in self.mock_obj.GetMethodCalls('CloseNotification')]

    def wait_notifications(self, n):
        wait_for(lambda: len(self.notifications()) >= n, what=f'{n} notification(s)')
        self.settle()
        calls = self.notifications()
        self.assertEqual(len(calls), n, calls)
        return calls

    def assert_no_more(self, n):
        """Nothing beyond the n notifications we have seen."""
        self.settle()
        time.sleep(0.3)
        self.assertEqual(len(self.notifications()), n, self.notifications())

    @staticmethod
    def id_of(calls, index):
        """The id the mock answered for calls[index]: it numbers new
        notifications 1, 2, … and keeps replaces_id otherwise."""
        call = calls[index]
        if call['replaces_id']:
            return int(call['replaces_id'])
        return sum(1 for c in calls[:index + 1] if not c['replaces_id'])

    def told_file(self):
        with open(os.path.join(self.env['XDG_RUNTIME_DIR'], 'bankr-llm-notify.state')) as f:
            return f.read()

    # -- cases --------------------------------------------------------------

    def test_low_crossing(self):
        self.backend.start(state='ok', balance=20, threshold=5)
        self.start_mock()
        self.start_agent()
        self.assert_no_more(0)

        self.backend.set_credits(4.2, 'low')
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['app_name'], 'Bankr LLM')
        self.assertEqual(n['summary'], 'Bankr LLM credits are low')
        self.assertEqual(n['body'], '$4.20 left (threshold $5.00).')
        self.assertEqual(int(n['hints']['urgency']), 1)
        self.assertEqual(int(n['replaces_id']), 0)
        self.assertEqual(list(n['actions']), [])  # the server has no "actions"

        # Further refreshes below the threshold: nothing new.
        self.backend.set_credits(3.1, 'low')
        self.backend.refresh()
        self.backend.set_credits(1.0, 'low')
        self.assert_no_more(1)

    def test_low_signal_before_properties(self):
        self.backend.start(state='ok', balance=20, threshold=5)
        self.start_mock()
        self.start_agent()
        self.backend.set_signals_first(True)
        self.backend.set_credits(2.5, 'low')
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['body'], '$2.50 left (threshold $5.00).')
        self.assert_no_more(1)

    def test_low_then_ok_withdraws(self):
        self.backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        self.backend.set_credits(4, 'low')
        calls = self.wait_notifications(1)
        self.backend.set_credits(50, 'ok')
        wait_for(lambda: self.closes(), what='CloseNotification')
        self.assertEqual(self.closes(), [self.id_of(calls, 0)])
        self.assert_no_more(1)

    def test_exhausted_is_critical_and_recovery_replaces(self):
        self.backend.start(state='ok', balance=3)
        self.start_mock()
        self.start_agent()

        self.backend.set_credits(0, 'exhausted')
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['summary'], 'Bankr LLM credits used up')
        self.assertEqual(n['body'], 'Requests will fail until you top up:\nbankr-llm credits add')
        self.assertEqual(int(n['hints']['urgency']), 2)

        # Another 402 (Exhausted again): no second notification.
        self.backend.set_credits(0, 'exhausted')
        self.assert_no_more(1)

        self.backend.set_credits(25, 'ok')
        calls = self.wait_notifications(2)
        self.assertEqual(calls[1]['summary'], 'Bankr LLM credits topped up')
        self.assertEqual(calls[1]['body'], 'Balance: $25.00. Requests work again.')
        self.assertEqual(int(calls[1]['replaces_id']), self.id_of(calls, 0))
        self.assertLess(int(calls[1]['hints']['urgency']), 2)

    def test_low_then_exhausted_replaces(self):
        self.backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        self.backend.set_credits(1, 'low')
        self.wait_notifications(1)
        self.backend.set_credits(0, 'exhausted')
        calls = self.wait_notifications(2)
        self.assertEqual(int(calls[1]['hints']['urgency']), 2)
        self.assertEqual(int(calls[1]['replaces_id']), self.id_of(calls, 0))
        # Topped up, but still below the threshold: a recovery, not a new warning.
        self.backend.set_credits(3, 'low')
        calls = self.wait_notifications(3)
        self.assertEqual(calls[2]['summary'], 'Bankr LLM credits topped up')
        self.assertEqual(calls[2]['body'], '$3.00 left, still below the $5.00 threshold.')
        self.assertEqual(int(calls[2]['replaces_id']), self.id_of(calls, 0))

    def test_unauthorized_and_recovery(self):
        self.backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        self.backend.set_credits(20, 'unauthorized')
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['summary'], 'Bankr LLM key rejected')
        self.assertEqual(n['body'], 'Requests fail until you set a new one:\nbankr-llm key set')
        self.assertEqual(int(n['hints']['urgency']), 2)
        self.backend.refresh()
        self.backend.set_credits(20, 'unauthorized')
        self.assert_no_more(1)

        self.backend.set_credits(20, 'ok')
        calls = self.wait_notifications(2)
        self.assertEqual(calls[1]['summary'], 'Bankr LLM key accepted')
        self.assertEqual(int(calls[1]['replaces_id']), self.id_of(calls, 0))

    def test_unauthorized_key_from_environment(self):
        self.backend.start(state='ok', key_source='env', key_kind='api')
        self.start_mock()
        self.start_agent()
        self.backend.set_credits(20, 'unauthorized')
        (n,) = self.wait_notifications(1)
        self.assertIn('BANKR_API_KEY', n['body'])
        self.assertNotIn('key set', n['body'])

    def test_service_restarts(self):
        backend = StandinBackend(self)  # restart cases always use the stand-in
        self.backend = backend
        backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        backend.set_credits(0, 'exhausted')
        self.wait_notifications(1)

        # Back, still exhausted: the user knows already.
        backend.restart(state='exhausted', balance=0)
        self.assert_no_more(1)
        # Back knowing nothing yet, then the same answer again.
        backend.restart(state='unknown', balance=0)
        self.assert_no_more(1)
        backend.set_credits(0, 'exhausted')
        self.assert_no_more(1)

        # Back topped up: the recovery replaces the warning.
        backend.restart(state='ok', balance=40)
        calls = self.wait_notifications(2)
        self.assertEqual(calls[1]['body'], 'Balance: $40.00. Requests work again.')
        self.assertEqual(int(calls[1]['replaces_id']), self.id_of(calls, 0))

    def test_service_starts_after_agent(self):
        self.start_mock()
        self.start_agent()
        self.assertFalse(self.bus.name_has_owner(SERVICE_NAME))
        self.backend.start(state='low', balance=2, threshold=5)
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['body'], '$2.00 left (threshold $5.00).')

    def test_agent_never_activates_service(self):
        services = os.path.join(self.tmp, 'services')
        marker = os.path.join(self.tmp, 'activated')
        with open(os.path.join(services, 'bot.bankr.LLM1.service'), 'w') as f:
            f.write(f'[D-BUS Service]\nName={SERVICE_NAME}\nExec=/bin/sh -c "touch {marker}; sleep 5"\n')
        self.bus.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                               'ReloadConfig', '', [])
        self.start_mock()
        self.start_agent()
        time.sleep(0.3)
        self.assertFalse(os.path.exists(marker), 'the agent activated bankr-llmd')

    def test_agent_restart_does_not_repeat(self):
        self.backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        self.backend.set_credits(0, 'exhausted')
        calls = self.wait_notifications(1)
        self.assertIn('credits=exhausted', self.told_file())

        self.stop_agent()
        self.start_agent()
        self.assert_no_more(1)

        # The new agent still replaces the old notification.
        self.backend.set_credits(10, 'ok')
        calls = self.wait_notifications(2)
        self.assertEqual(int(calls[1]['replaces_id']), self.id_of(calls, 0))

    def test_deprecation_told_once_per_model(self):
        self.backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        self.backend.deprecate('gpt-5-mini', 'gpt-5.4')
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['summary'], 'The model gpt-5-mini is deprecated')
        self.assertIn('Use gpt-5.4 instead.', n['body'])
        self.backend.deprecate('gpt-5-mini', 'gpt-5.4')
        self.assert_no_more(1)
        # Another model is news; a markup-looking id is not shown at all.
        self.backend.deprecate('gemini-3-pro', '')
        calls = self.wait_notifications(2)
        self.assertIn('bankr-llm models', calls[1]['body'])
        self.backend.deprecate('<b>x</b>', 'y')
        self.assert_no_more(2)
        self.assertIn('deprecated=gpt-5-mini', self.told_file())
        # A new agent in the same session remembers.
        self.stop_agent()
        self.start_agent()
        self.backend.deprecate('gpt-5-mini', 'gpt-5.4')
        self.assert_no_more(2)

    def test_state_at_start_is_told_once(self):
        self.backend.start(state='exhausted', balance=0)
        self.start_mock()
        self.start_agent()
        (n,) = self.wait_notifications(1)
        self.assertEqual(int(n['hints']['urgency']), 2)

    def test_server_appears_late(self):
        self.backend.start(state='ok', balance=20)
        self.start_agent()
        self.backend.set_credits(4, 'low')
        self.settle()
        self.start_mock()
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['summary'], 'Bankr LLM credits are low')
        self.assertEqual(n['body'], '$4.00 left (threshold $5.00).')
        self.assert_no_more(1)

    def test_server_appears_late_stale_dropped(self):
        self.backend.start(state='ok', balance=20)
        self.start_agent()
        # Exhausted and recovered before anyone could show it: stale.
        self.backend.set_credits(0, 'exhausted')
        self.backend.set_credits(30, 'ok')
        # The key going bad is still true when the server comes.
        self.backend.set_credits(30, 'unauthorized')
        self.settle()
        self.start_mock()
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['summary'], 'Bankr LLM key rejected')
        self.assert_no_more(1)

    def test_server_restart_forgets_ids(self):
        self.backend.start(state='ok')
        self.start_mock()
        self.start_agent()
        self.backend.set_credits(0, 'exhausted')
        self.wait_notifications(1)
        stop_process(self.mock)
        wait_for(lambda: not self.bus.name_has_owner(NOTIFY_NAME), what='the server to leave')
        self.start_mock()
        self.backend.set_credits(30, 'ok')
        (n,) = self.wait_notifications(1)
        self.assertEqual(n['summary'], 'Bankr LLM credits topped up')
        self.assertEqual(int(n['replaces_id']), 0)  # the old id meant nothing to the new server

    def test_action_top_up_opens_page_without_terminal(self):
        record = self.fake_tool('xdg-open')
        self.backend.start(state='ok')
        self.start_mock(actions=True)
        agent = self.start_agent()
        self.backend.set_credits(0, 'exhausted')
        (n,) = self.wait_notifications(1)
        self.assertEqual(list(n['actions']), ['top-up', 'Top up', 'dismiss', 'Dismiss'])

        self.mock_obj.EmitSignal('', 'ActionInvoked', 'us', [dbus.UInt32(self.id_of([n], 0)), 'top-up'])
        self.assertEqual(self.recorded_args(record), [TOP_UP_URL])
        # Reaped: no zombie children left behind.
        wait_for(lambda: not self.zombie_children(agent.pid), what='the child to be reaped')

    def test_action_top_up_runs_cli_in_terminal(self):
        record = self.fake_tool('xterm')
        self.fake_tool('xdg-open')
        self.backend.start(state='ok')
        self.start_mock(actions=True)
        agent = self.start_agent()
        self.backend.set_credits(1, 'low')
        (n,) = self.wait_notifications(1)
        self.mock_obj.EmitSignal('', 'ActionInvoked', 'us', [dbus.UInt32(self.id_of([n], 0)), 'top-up'])
        args = self.recorded_args(record)
        self.assertEqual(args[:3], ['-e', '/bin/sh', '-c'])
        self.assertEqual(args[4:], ['sh', 'bankr-llm', 'credits', 'add'])
        self.assertIn('"$@"', args[3])
        wait_for(lambda: not self.zombie_children(agent.pid), what='the child to be reaped')

    def test_action_set_key_needs_terminal(self):
        self.fake_tool('xdg-open')
        self.backend.start(state='ok')
        self.start_mock(actions=True)
        self.start_agent()
        self.backend.set_credits(20, 'unauthorized')
        (n,) = self.wait_notifications(1)
        self.assertEqual(list(n['actions']), ['dismiss', 'Dismiss'])  # no terminal: no "Set key"

    def test_action_set_key_in_terminal(self):
        record = self.fake_tool('x-terminal-emulator')
        self.backend.start(state='ok')
        self.start_mock(actions=True)
        self.start_agent()
        self.backend.set_credits(20, 'unauthorized')
        (n,) = self.wait_notifications(1)
        self.assertEqual(list(n['actions']), ['set-key', 'Set key', 'dismiss', 'Dismiss'])
        self.mock_obj.EmitSignal('', 'ActionInvoked', 'us', [dbus.UInt32(self.id_of([n], 0)), 'set-key'])
        self.assertEqual(self.recorded_args(record)[-4:], ['sh', 'bankr-llm', 'key', 'set'])

    def test_action_dismiss_and_closed(self):
        self.fake_tool('xdg-open')
        self.backend.start(state='ok')
        self.start_mock(actions=True)
        self.start_agent()
        self.backend.set_credits(0, 'exhausted')
        calls = self.wait_notifications(1)
        nid = self.id_of(calls, 0)

        self.mock_obj.EmitSignal('', 'ActionInvoked', 'us', [dbus.UInt32(nid), 'dismiss'])
        wait_for(lambda: self.closes(), what='CloseNotification')
        self.assertEqual(self.closes(), [nid])
        # The mock answers with NotificationClosed: the id is forgotten, so
        # the recovery is a new notification rather than a replacement.
        self.settle()
        self.backend.set_credits(30, 'ok')
        calls = self.wait_notifications(2)
        self.assertEqual(int(calls[1]['replaces_id']), 0)

    def test_foreign_signals_ignored(self):
        record = self.fake_tool('xdg-open')
        self.backend.start(state='ok')
        self.start_mock(actions=True)
        self.start_agent()
        self.backend.set_credits(0, 'exhausted')
        calls = self.wait_notifications(1)
        # Another application's notification (id 99): not ours to act on.
        self.mock_obj.EmitSignal('', 'ActionInvoked', 'us', [dbus.UInt32(99), 'top-up'])
        self.mock_obj.EmitSignal('', 'NotificationClosed', 'uu', [dbus.UInt32(99), dbus.UInt32(2)])
        self.settle()
        self.assertFalse(os.path.exists(record))
        self.backend.set_credits(30, 'ok')
        calls = self.wait_notifications(2)
        self.assertEqual(int(calls[1]['replaces_id']), self.id_of(calls, 0))

    @staticmethod
    def zombie_children(pid):
        zombies = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open(f'/proc/{entry}/stat') as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(')') + 2:].split()
            if fields[0] == 'Z' and int(fields[1]) == pid:
                zombies.append(int(entry))
        return zombies

    @staticmethod
    def wakeups(pid):
        with open(f'/proc/{pid}/status') as f:
            status = dict(line.split(':', 1) for line in f if ':' in line)
        with open(f'/proc/{pid}/schedstat') as f:
            timeslices = int(f.read().split()[2])
        return (int(status['voluntary_ctxt_switches']), int(status['nonvoluntary_ctxt_switches']),
                timeslices)

    def test_idle_no_wakeups(self):
        self.backend.start(state='ok')
        self.start_mock()
        agent = self.start_agent()
        self.backend.set_credits(4, 'low')
        self.wait_notifications(1)
        time.sleep(0.5)
        before = self.wakeups(agent.pid)
        time.sleep(2)
        after = self.wakeups(agent.pid)
        self.assertEqual(before, after, 'the agent woke up while nothing happened')

    def test_help_and_version(self):
        out = subprocess.check_output([AGENT, '--help'], env=self.env, text=True)
        self.assertIn('--verbose', out)
        out = subprocess.check_output([AGENT, '--version'], env=self.env, text=True)
        self.assertTrue(out.startswith('bankr-llm-notify '))
        r = subprocess.run([AGENT, '--bogus'], env=self.env, capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)

    def test_second_instance_refuses(self):
        self.start_agent()
        r = subprocess.run([AGENT], env=self.env, capture_output=True, text=True, timeout=5)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('already running', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
