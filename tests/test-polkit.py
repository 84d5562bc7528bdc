#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""service/polkit.c against python-dbusmock's polkitd on a private system bus.

The module is driven through tests/test-polkit-helper.c, a tiny daemon on a
private session bus whose Guarded(action) method runs polkit_check_async()
and counts how often its body ran (Runs), so every case can prove that
nothing happened on a denial and exactly one thing on a grant.

Needs TEST_POLKIT_HELPER (set by meson) pointing at the built helper. Run
one case with: test-polkit.py PolkitTest.test_denied
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

from polkit_env import BusEnv, wait_for  # noqa: E402

HELPER = os.environ.get('TEST_POLKIT_HELPER', '')
NAME = 'bot.bankr.LLM1.Test.Polkit'
PATH = '/test'
IFACE = 'bot.bankr.LLM1.Test.Polkit'
NOT_AUTHORIZED = 'bot.bankr.LLM1.Error.NotAuthorized'
TOP_UP = 'bot.bankr.LLM1.top-up'
REVEAL = 'bot.bankr.LLM1.reveal-key'


def start_time_of(pid):
    with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
        return int(f.read().rsplit(')', 1)[1].split()[19])


class PolkitTest(unittest.TestCase):
    timeout_ms = None  # BANKR_LLMD_POLKIT_TIMEOUT_MS for the helper

    def setUp(self):
        if not HELPER or not os.access(HELPER, os.X_OK):
            self.skipTest('TEST_POLKIT_HELPER is not set to the built test-polkit-helper')
        self.tmp = tempfile.mkdtemp(prefix='test-polkit-')
        self.env = BusEnv(self.tmp)
        self.helper = None
        self.busctls = []
        self.env.start_session_bus()

    def tearDown(self):
        for p in self.busctls:
            if p.poll() is None:
                p.kill()
            p.communicate()
        self.stop_helper()
        self.env.stop()
        if os.environ.get('TEST_POLKIT_KEEP'):
            print(f'\nkept {self.tmp}', file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the helper daemon ----------------------------------------------

    def start_helper(self, timeout_ms=None):
        env = dict(self.env.environ)
        if timeout_ms is not None:
            env['BANKR_LLMD_POLKIT_TIMEOUT_MS'] = str(timeout_ms)
        env['BANKR_LLMD_DEBUG'] = '1'
        self.helper_log = open(os.path.join(self.tmp, 'helper.log'), 'w+b')  # pylint: disable=consider-using-with
        self.helper = subprocess.Popen([HELPER, NAME], env=env, stdin=subprocess.DEVNULL,
                                       stdout=self.helper_log, stderr=subprocess.STDOUT)
        bus = self.env.session_bus
        wait_for(lambda: self.helper.poll() is not None or bus.has_owner(NAME), what='the helper')
        self.assertIsNone(self.helper.poll(), 'the helper exited early:\n' + self.helper_output())
        self.proxy = bus.connection().get_object(NAME, PATH)

    def stop_helper(self):
        if self.helper is not None:
            if self.helper.poll() is None:
                self.helper.terminate()
                try:
                    self.helper.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.helper.kill()
                    self.helper.wait()
                    self.fail('the helper did not exit on SIGTERM')
            rc = self.helper.returncode
            self.helper = None
            self.helper_log.close()
            self.assertEqual(rc, 0, 'the helper failed')

    def helper_output(self):
        self.helper_log.flush()
        with open(self.helper_log.name, 'rb') as f:
            return f.read().decode(errors='replace')

    def guarded(self, action, timeout=20):
        return str(self.proxy.Guarded(action, dbus_interface=IFACE, timeout=timeout))

    def ping(self):
        self.proxy.Ping(dbus_interface=IFACE, timeout=5)

    def prop(self, name):
        return int(self.proxy.Get(IFACE, name, dbus_interface='org.freedesktop.DBus.Properties'))

    def runs(self):
        return self.prop('Runs')

    def pending(self):
        return self.prop('Pending')

    def assert_not_authorized(self, action, message_part):
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            self.guarded(action)
        self.assertEqual(cm.exception.get_dbus_name(), NOT_AUTHORIZED, str(cm.exception))
        self.assertIn(message_part, cm.exception.get_dbus_message())
        return cm.exception.get_dbus_message()

    def busctl_guarded(self, action, interactive=False):
        """Guarded(action) from a separate process, in the background."""
        p = subprocess.Popen(['busctl', '--user', f'--allow-interactive-authorization={"yes" if interactive else "no"}',
                              '--timeout=30', 'call', NAME, PATH, IFACE, 'Guarded', 's', action],
                             env=self.env.environ, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.busctls.append(p)
        return p

    def finish(self, p):
        out, err = p.communicate(timeout=30)
        return p.returncode, out.decode().strip(), err.decode().strip()

    # --- the cases ------------------------------------------------------

    def test_allowed(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        self.start_helper()
        self.assertEqual(self.guarded(TOP_UP), 'ok')
        self.assertEqual(self.runs(), 1)
        self.assertEqual(len(polkit.check_calls()), 1)
        # A second call is checked again: verdicts belong to one call only.
        self.assertEqual(self.guarded(TOP_UP), 'ok')
        self.assertEqual(self.runs(), 2)
        self.assertEqual(len(polkit.check_calls()), 2)
        self.assertEqual(self.pending(), 0)

    def test_denied(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([REVEAL])
        self.start_helper()
        msg = self.assert_not_authorized(TOP_UP, f'Authorization for "{TOP_UP}" was denied by polkit.')
        self.assertEqual(msg, f'Authorization for "{TOP_UP}" was denied by polkit.')
        self.assertEqual(self.runs(), 0)
        self.assertEqual([c['action'] for c in polkit.check_calls()], [TOP_UP])
        # The allowed one still works on the same daemon.
        self.assertEqual(self.guarded(REVEAL), 'ok')
        self.assertEqual(self.runs(), 1)

    def test_subject_is_the_calling_process(self):
        polkit = self.env.start_polkitd()
        polkit.allow_unknown()
        self.start_helper()
        self.assertEqual(self.guarded(TOP_UP), 'ok')
        [call] = polkit.check_calls()
        self.assertEqual(call['subject_kind'], 'unix-process')
        self.assertEqual(call['subject'], {'pid': os.getpid(),
                                           'start-time': start_time_of(os.getpid()),
                                           'uid': os.getuid()})
        self.assertEqual(call['action'], TOP_UP)
        self.assertEqual(call['details'], {})
        self.assertEqual(call['cancellation_id'], '')
        # dbus-python cannot set the allow-interactive flag: not interactive.
        self.assertEqual(call['flags'], 0)

    def test_interactive_flag_passes_through(self):
        polkit = self.env.start_polkitd()
        polkit.allow_unknown()
        self.start_helper()
        for interactive in (True, False):
            p = self.busctl_guarded(TOP_UP, interactive=interactive)
            rc, out, err = self.finish(p)
            self.assertEqual((rc, out), (0, 's "ok"'), err)
            call = polkit.check_calls()[-1]
            self.assertEqual(call['flags'], 1 if interactive else 0)
            # The subject is busctl, not us.
            self.assertEqual(call['subject']['pid'], p.pid)
        self.assertEqual(self.runs(), 2)

    def test_no_system_bus(self):
        # BusEnv points DBUS_SYSTEM_BUS_ADDRESS at a socket that does not exist.
        self.start_helper()
        self.assert_not_authorized(TOP_UP, 'Cannot check authorization: the system bus is not available.')
        self.assertEqual(self.runs(), 0)
        self.ping()

    def test_no_polkitd(self):
        self.env.start_system_bus()
        self.start_helper()
        self.assert_not_authorized(TOP_UP, 'polkit is not running')
        self.assertEqual(self.runs(), 0)

    def test_system_bus_restart(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        self.start_helper()
        self.assertEqual(self.guarded(TOP_UP), 'ok')

        self.env.stop_system_bus()
        self.assert_not_authorized(TOP_UP, 'the system bus is not available')
        self.assertEqual(self.runs(), 1)

        # Back at the same address: the next check connects again.
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        self.assertEqual(self.guarded(TOP_UP), 'ok')
        self.assertEqual(self.runs(), 2)

    def test_system_bus_lost_during_check(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        polkit.simulate_hang()
        self.start_helper()
        p = self.busctl_guarded(TOP_UP)
        wait_for(lambda: polkit.have_hanging_calls(), what='the check at polkit')
        t = time.monotonic()
        self.env.system_bus.stop()  # the bus daemon only; the mock follows it
        rc, _out, err = self.finish(p)
        self.assertNotEqual(rc, 0)
        self.assertIn('the system bus is not available', err)
        self.assertLess(time.monotonic() - t, 5, 'waited for the timeout instead of noticing the bus went')
        self.assertEqual(self.runs(), 0)

    def test_polkit_quits_during_check(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        polkit.simulate_hang()
        self.start_helper()
        p = self.busctl_guarded(TOP_UP)
        wait_for(lambda: polkit.have_hanging_calls(), what='the check at polkit')
        t = time.monotonic()
        self.env.stop_polkitd()
        rc, _out, err = self.finish(p)
        self.assertNotEqual(rc, 0)
        self.assertIn('Cannot check authorization: polkit stopped without answering.', err)
        self.assertLess(time.monotonic() - t, 5)
        self.assertEqual(self.runs(), 0)

    def test_slow_polkit_does_not_block(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        polkit.set_delay(2.0)
        self.start_helper()
        t0 = time.monotonic()
        p = self.busctl_guarded(TOP_UP)
        wait_for(lambda: self.pending() == 1, what='the check to be pending')
        for _ in range(5):
            t = time.monotonic()
            self.ping()
            self.assertLess(time.monotonic() - t, 0.5, 'Ping was held up by the polkit check')
        self.assertIsNone(p.poll(), 'Guarded answered before polkit did')
        self.assertEqual(self.runs(), 0, 'Guarded ran before polkit answered')
        rc, out, err = self.finish(p)
        self.assertEqual((rc, out), (0, 's "ok"'), err)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        self.assertEqual(self.runs(), 1)
        self.assertEqual(self.pending(), 0)

    def test_hung_polkit_times_out(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        polkit.simulate_hang()
        self.start_helper(timeout_ms=700)
        t = time.monotonic()
        msg = self.assert_not_authorized(TOP_UP, 'polkit did not answer within 0.7 s')
        elapsed = time.monotonic() - t
        self.assertEqual(msg, 'Cannot check authorization: polkit did not answer within 0.7 s.')
        self.assertGreater(elapsed, 0.6)
        self.assertLess(elapsed, 5)
        self.assertEqual(self.runs(), 0)
        self.assertEqual(self.pending(), 0)
        # An answer arriving after the timeout changes nothing.
        polkit.release_hanging_calls()
        self.ping()
        self.assertEqual(self.runs(), 0)

    def test_several_pending_checks(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP, REVEAL])
        polkit.simulate_hang()
        self.start_helper()
        callers = [self.busctl_guarded(a) for a in (TOP_UP, REVEAL, 'bot.bankr.LLM1.configure-auto-top-up')]
        wait_for(lambda: polkit.have_hanging_calls() and len(polkit.check_calls()) == 3,
                 what='three checks at polkit')
        self.assertEqual(self.pending(), 3)
        self.ping()
        self.assertEqual(self.runs(), 0)
        polkit.release_hanging_calls()
        results = [self.finish(p) for p in callers]
        self.assertEqual(results[0][:2], (0, 's "ok"'), results[0][2])
        self.assertEqual(results[1][:2], (0, 's "ok"'), results[1][2])
        self.assertNotEqual(results[2][0], 0)
        self.assertIn('was denied by polkit', results[2][2])
        self.assertEqual(self.runs(), 2)
        self.assertEqual(self.pending(), 0)

    def test_caller_leaves_before_the_answer(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        polkit.simulate_hang()
        self.start_helper()
        p = self.busctl_guarded(TOP_UP)
        wait_for(lambda: polkit.have_hanging_calls(), what='the check at polkit')
        p.kill()
        p.communicate()
        wait_for(lambda: self.pending() == 0, what='the check to be dropped')
        polkit.release_hanging_calls()
        self.ping()
        self.assertEqual(self.runs(), 0, 'the body ran for a caller that had left')

    def test_shutdown_with_a_pending_check(self):
        polkit = self.env.start_polkitd()
        polkit.set_allowed([TOP_UP])
        polkit.simulate_hang()
        self.start_helper()
        p = self.busctl_guarded(TOP_UP)
        wait_for(lambda: polkit.have_hanging_calls(), what='the check at polkit')
        self.stop_helper()  # exits cleanly (and leak-free under ASan) mid-check
        rc, _out, _err = self.finish(p)
        self.assertNotEqual(rc, 0)

    def test_dismissed_details(self):
        self.env.start_polkitd(template=False,
                               check_code="ret = (False, True, {'polkit.dismissed': 'true'})")
        self.start_helper()
        msg = self.assert_not_authorized(TOP_UP, 'The authentication dialog was dismissed.')
        self.assertEqual(msg, 'The authentication dialog was dismissed.')
        self.assertEqual(self.runs(), 0)

    def test_dismissed_cancelled_error(self):
        self.env.start_polkitd(
            template=False,
            check_code="raise dbus.exceptions.DBusException('The authentication was cancelled', "
                       "name='org.freedesktop.PolicyKit1.Error.Cancelled')")
        self.start_helper()
        self.assert_not_authorized(TOP_UP, 'The authentication dialog was dismissed.')
        self.assertEqual(self.runs(), 0)

    def test_challenge_without_interaction(self):
        polkit = self.env.start_polkitd(template=False, check_code='ret = (False, True, {})')
        self.start_helper()
        self.assert_not_authorized(TOP_UP, 'requires authentication, but the call did not allow '
                                           'interactive authorization')
        # An interactive caller that still ends up not authorized was denied.
        rc, _out, err = self.finish(self.busctl_guarded(TOP_UP, interactive=True))
        self.assertNotEqual(rc, 0)
        self.assertIn('was denied by polkit', err)
        self.assertEqual([c['flags'] for c in polkit.check_calls()], [0, 1])
        self.assertEqual(self.runs(), 0)

    def test_polkit_error(self):
        self.env.start_polkitd(
            template=False,
            check_code="raise dbus.exceptions.DBusException('Something broke', "
                       "name='org.freedesktop.PolicyKit1.Error.Failed')")
        self.start_helper()
        msg = self.assert_not_authorized(TOP_UP, 'Cannot check authorization: polkit failed')
        self.assertIn('org.freedesktop.PolicyKit1.Error.Failed', msg)
        self.assertEqual(self.runs(), 0)


if __name__ == '__main__':
    unittest.main(verbosity=2)
