#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The ledger and budgets (bot.bankr.LLM1.Usage) against a private bus, the
fake gateway and the built daemon: every Chat request that reached the
gateway is one record equal to its Finished info; apps told apart (a
Flatpak sandbox built with bubblewrap, and a plain process); Summary and
Recent agree; records survive a restart; budgets refuse before anything is
sent, BudgetReached comes once; a corrupt and a locked database never cost
a chat answer; no prompt or answer text reaches the database or its WAL."""
import json
import math
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import unittest

import dbus

from harness import CLI, Env, NOTIFY, SLOW, wait_until, OBJ
from fakegw import FakeGateway, Fault
from chatclient import ChatClient, unwrap, run_until, spin

KEY = FakeGateway.DEFAULT_KEY
E = "bot.bankr.LLM1.Error."
INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
USAGE = "bot.bankr.LLM1.Usage"
MODEL = "gpt-5-mini"
SANDBOX_APP = "org.example.Spender"

SANDBOX_CLIENT = r'''
import json, sys
import dbus
bus = dbus.bus.BusConnection(sys.argv[1])
chat = dbus.Interface(bus.get_object("bot.bankr.LLM1", "/bot/bankr/LLM1", introspect=False), "bot.bankr.LLM1.Chat")
msgs = dbus.Array([dbus.Struct(("user", "hi from the sandbox"), signature="ss")], signature="(ss)")
try:
    text, info = chat.Complete(sys.argv[2], msgs, dbus.Dictionary({}, signature="sv"), timeout=30)
    print(json.dumps({"ok": True, "cost": float(info["cost_usd"])}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"ok": False, "name": e.get_dbus_name(), "message": e.get_dbus_message()}))
'''


def V(d):
    return dbus.Dictionary(d, signature="sv")


class UsageTest(unittest.TestCase):
    service_env = {}

    def setUp(self):
        env = {"BANKR_LLM_KEY": KEY, "BANKR_LLMD_RETRY_BASE_MS": "20", "BANKR_LLMD_LEDGER_RETRY_MS": "200"}
        env.update(self.service_env)
        self.env = Env(keyring=False, service_env=env)
        self.env.start()
        self.gw = self.env.gateway
        self.gw.usage = {"input": 1200, "output": 3400, "cache_read": 50, "cache_write": 7}
        self.before_start()
        self.c = ChatClient(self.env)
        self.usage = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), USAGE)

    def before_start(self):
        pass

    def tearDown(self):
        try:
            self.c.close()
        except Exception:
            pass
        self.env.stop(check=not self._outcome_failed())

    def _outcome_failed(self):
        res = getattr(self._outcome, "result", None)
        return bool(res and (res.failures or res.errors))

    @property
    def db_path(self):
        return os.path.join(self.env.home, ".local", "state", "bankr-llm", "usage.db")

    def assertBusError(self, name, fn, *args, **kw):
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.get_dbus_name(), name, cm.exception.get_dbus_message())
        return cm.exception.get_dbus_message()

    def run_one(self, model=MODEL, text="hello", opts=None):
        path = self.c.start(model, [("user", text)], opts)
        return self.c.wait(path, 15 * SLOW)

    def recent(self, n=100, f=None):
        return unwrap(self.usage.Recent(dbus.UInt32(n), V(f or {})))

    def summary(self, group="", f=None):
        return unwrap(self.usage.Summary(group, V(f or {})))

    def wait_records(self, n):
        def enough():
            try:
                return len(self.recent()) >= n
            except dbus.exceptions.DBusException:
                return False
        wait_until(enough, timeout=10, what="%d records" % n)
        return self.recent()


class Records(UsageTest):
    def test_finished_info_equals_record(self):
        res = self.run_one()
        self.assertIsNone(res.error)
        text, cinfo = self.c.complete(MODEL, [("user", "again")])
        recs = self.wait_records(2)
        self.assertEqual(len(recs), 2)
        # Newest first: Complete, then Start.
        for rec, info in ((recs[1], res.info), (recs[0], cinfo)):
            self.assertEqual(rec["status"], "finished")
            self.assertEqual(rec["error"], "")
            self.assertEqual(rec["via"], "dbus")
            self.assertEqual(rec["app"], "python3")
            for k in ("model", "privacy_tier", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                      "cost_usd", "attempts", "latency_first_ms", "latency_total_ms"):
                self.assertEqual(rec[k], info[k], k)
            self.assertGreater(rec["cost_usd"], 0)
            self.assertAlmostEqual(rec["time"] / 1e6, time.time(), delta=60)
        self.assertGreater(recs[0]["id"], recs[1]["id"])

    def test_failed_and_cancelled_are_booked_refused_are_not(self):
        for _ in range(3):
            self.gw.push_fault("chat", Fault.http(500))
        res = self.run_one()
        self.assertEqual(res.error[0], E + "GatewayUnavailable")
        self.gw.push_fault("chat", Fault.hang())
        path = self.c.start(MODEL, [("user", "slow")])
        self.gw.wait_for(lambda: len(self.gw.requests_for("chat")) >= 4, timeout=10 * SLOW)
        self.c.cancel(path)
        self.c.wait(path)
        recs = self.wait_records(2)
        self.assertEqual([r["status"] for r in recs], ["cancelled", "failed"])
        self.assertEqual(recs[0]["error"], E + "Cancelled")
        self.assertEqual(recs[1]["error"], E + "GatewayUnavailable")
        self.assertEqual(recs[1]["attempts"], 3)
        # Refused before anything was sent: no record.
        with self.assertRaises(dbus.exceptions.DBusException):
            self.c.start(MODEL, [("user", "x")], {"bogus": dbus.UInt32(1)})
        spin(0.3)
        self.assertEqual(len(self.recent()), 2)
        tot = self.summary()[0]
        self.assertEqual((tot["requests"], tot["errors"]), (2, 2))

    def test_summary_and_recent_agree(self):
        for model in ("gpt-5-mini", "claude-haiku-4.5", "gpt-5-mini"):
            self.assertIsNone(self.run_one(model).error)
        self.gw.push_fault("chat", Fault.http(400, "bad request"))
        self.run_one()
        recs = self.wait_records(4)
        keys = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        tot = self.summary()
        self.assertEqual(len(tot), 1)
        tot = tot[0]
        self.assertEqual(tot["requests"], len(recs))
        self.assertEqual(tot["errors"], 1)
        for k in keys:
            self.assertEqual(tot[k], sum(r[k] for r in recs), k)
        self.assertAlmostEqual(tot["cost_usd"], sum(r["cost_usd"] for r in recs), places=12)
        by_model = {r["model"]: r for r in self.summary("model")}
        self.assertEqual(sorted(by_model), sorted({r["model"] for r in recs}))
        for m, row in by_model.items():
            self.assertEqual(row["requests"], sum(1 for r in recs if r["model"] == m))
            self.assertAlmostEqual(row["cost_usd"], sum(r["cost_usd"] for r in recs if r["model"] == m), places=12)
        day = self.summary("app,day")
        self.assertEqual(len(day), 1)
        self.assertEqual(day[0]["app"], "python3")
        self.assertEqual(day[0]["day"], time.strftime("%Y-%m-%d"))
        hour = self.summary("hour")
        self.assertEqual(sum(r["requests"] for r in hour), 4)
        # Filters: a range that holds nothing, another app, one model.
        now = int(time.time() * 1e6)
        self.assertEqual(self.summary("", {"since": dbus.UInt64(now + 10**9)})[0]["requests"], 0)
        self.assertEqual(self.summary("", {"until": dbus.UInt64(now - 3600 * 10**6)})[0]["requests"], 0)
        self.assertEqual(self.summary("", {"app": "nobody"})[0]["requests"], 0)
        self.assertEqual(self.summary("", {"model": "claude-haiku-4.5"})[0]["requests"], 1)
        self.assertEqual(len(self.recent(2)), 2)
        self.assertEqual(len(self.recent(10, {"model": "claude-haiku-4.5"})), 1)

    def test_bad_arguments(self):
        for g in ("bogus", "app,", "app,app", ",", "day,nope", "APP"):
            self.assertBusError(INVALID, self.usage.Summary, g, V({}))
        self.assertBusError(INVALID, self.usage.Summary, "", V({"since": "yesterday"}))
        self.assertBusError(INVALID, self.usage.Summary, "", V({"colour": "red"}))
        self.assertBusError(INVALID, self.usage.Summary, "", V({"since": dbus.UInt64(10), "until": dbus.UInt64(5)}))
        self.assertBusError(INVALID, self.usage.Recent, dbus.UInt32(0), V({}))
        self.assertBusError(INVALID, self.usage.Recent, dbus.UInt32(10001), V({}))
        self.assertBusError(INVALID, self.usage.Recent, dbus.UInt32(1), V({"app": ""}))
        for app, limit, period in (("python3", float("nan"), "day"), ("python3", -1.0, "day"),
                                   ("python3", float("inf"), "day"), ("python3", 5.0, "year"),
                                   ("python3", 5.0, ""), ("", 5.0, "day"), ("bad app", 5.0, "day"),
                                   ("x/../y", 5.0, "day")):
            self.assertBusError(INVALID, self.usage.SetBudget, app, dbus.Double(limit), period)

    def test_restart_survival(self):
        self.assertIsNone(self.run_one().error)
        before = self.wait_records(1)
        self.c.close()
        self.env.restart_service()
        self.c = ChatClient(self.env)
        self.usage = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), USAGE)
        self.assertEqual(self.recent(), before)
        self.assertIsNone(self.run_one().error)
        self.assertEqual(len(self.wait_records(2)), 2)
        self.assertEqual(self.summary()[0]["requests"], 2)
        # WAL mode, the schema version, and the file's mode.
        db = sqlite3.connect(self.db_path)
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 1)
        db.close()
        self.assertEqual(os.stat(self.db_path).st_mode & 0o777, 0o600)

    def test_no_prompt_or_answer_text_on_disk(self):
        prompt = "PROMPT-needle-7f3a9c1e-do-not-store"
        reply = "ANSWER-needle-2b8d4e6f-do-not-store"
        self.gw.stream_options = {"reply": reply}
        res = self.run_one(text=prompt, opts={"system": "SYSTEM-needle-5c1d"})
        self.assertIsNone(res.error)
        self.assertIn(reply, res.text)
        self.wait_records(1)
        folder = os.path.dirname(self.db_path)
        names = os.listdir(folder)
        self.assertIn("usage.db", names)
        self.assertIn("usage.db-wal", names)
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            for needle in (prompt, reply, "SYSTEM-needle-5c1d", "needle"):
                self.assertNotIn(needle.encode(), data, name)


@unittest.skipUnless(shutil.which("bwrap"), "bubblewrap (bwrap) is not installed")
class TwoApps(UsageTest):
    def run_sandboxed(self):
        d = self.env.dir
        script = os.path.join(d, "sandboxed-client.py")
        info = os.path.join(d, "flatpak-info")
        with open(script, "w") as f:
            f.write(SANDBOX_CLIENT)
        with open(info, "w") as f:
            f.write("[Application]\nname=%s\nruntime=runtime/org.example.Platform/x86_64/1\n" % SANDBOX_APP)
        argv = ["bwrap", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--proc", "/proc",
                "--dev", "/dev", "--bind", d, d, "--ro-bind", info, "/.flatpak-info"]
        for link in ("bin", "sbin", "lib", "lib32", "lib64"):
            target = os.path.join("/", link)
            if os.path.islink(target):
                argv += ["--symlink", os.readlink(target), target]
        argv += ["/usr/bin/python3", script, self.env.environ["DBUS_SESSION_BUS_ADDRESS"], MODEL]
        r = self.env.run(argv, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_sandboxed_app_and_plain_process(self):
        out = self.run_sandboxed()
        self.assertTrue(out["ok"], out)
        self.assertIsNone(self.run_one().error)
        self.assertIsNone(self.run_one().error)
        self.wait_records(3)
        rows = {r["app"]: r for r in self.summary("app")}
        self.assertEqual(sorted(rows), sorted([SANDBOX_APP, "python3"]))
        self.assertEqual(rows[SANDBOX_APP]["requests"], 1)
        self.assertEqual(rows["python3"]["requests"], 2)
        self.assertAlmostEqual(rows[SANDBOX_APP]["cost_usd"], out["cost"], places=12)


class Budgets(UsageTest):
    LIMIT = 0.000001  # below the cost of one request of the fake

    def before_start(self):
        path = os.path.join(self.env.home, ".config", "bankr-llm", "budgets.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"budgets": [{"app": "python3", "limit_usd": self.LIMIT, "period": "day"}]}, f)

    def test_refused_before_sending_and_reached_once(self):
        reached = []
        self.c.bus.add_signal_receiver(lambda *a: reached.append(unwrap(list(a))), signal_name="BudgetReached",
                                       dbus_interface=USAGE)
        budgets = unwrap(self.env_get("Budgets"))
        self.assertEqual(len(budgets), 1)
        self.assertEqual(budgets[0]["app"], "python3")
        self.assertEqual(budgets[0]["period"], "day")
        self.assertEqual(budgets[0]["spent_usd"], 0.0)
        self.assertGreater(budgets[0]["resets_at"], time.time() * 1e6)
        self.assertLessEqual(budgets[0]["resets_at"], (time.time() + 25 * 3600) * 1e6)

        # The first may start (nothing spent yet) and overruns the tiny budget.
        res = self.run_one()
        self.assertIsNone(res.error)
        run_until(lambda: reached, 5 * SLOW)
        self.assertEqual(reached[0][0], "python3")
        self.assertAlmostEqual(reached[0][1], res.info["cost_usd"], places=12)
        self.assertAlmostEqual(reached[0][2], self.LIMIT, places=12)
        sent = len(self.gw.requests_for("chat"))

        # Then refused before anything is sent, for Start and Complete.
        for _ in range(3):
            msg = self.assertBusError(E + "BudgetExceeded", self.c.start, MODEL, [("user", "more")])
            self.assertIn("python3", msg)
            self.assertIn("resets at", msg)
        self.assertBusError(E + "BudgetExceeded", self.c.complete, MODEL, [("user", "more")])
        spin(0.3)
        self.assertEqual(len(self.gw.requests_for("chat")), sent)
        self.assertEqual(len(reached), 1)
        self.assertEqual(len(self.recent()), 1)
        budgets = unwrap(self.env_get("Budgets"))
        self.assertAlmostEqual(budgets[0]["spent_usd"], res.info["cost_usd"], places=12)

        # Across a restart too: the spending is read back, no second signal.
        self.c.close()
        self.env.restart_service()
        self.c = ChatClient(self.env)
        reached2 = []
        self.c.bus.add_signal_receiver(lambda *a: reached2.append(a), signal_name="BudgetReached",
                                       dbus_interface=USAGE)
        self.assertBusError(E + "BudgetExceeded", self.c.start, MODEL, [("user", "more")])
        spin(0.3)
        self.assertEqual(reached2, [])
        self.assertEqual(len(self.gw.requests_for("chat")), sent)

    def test_in_flight_spending_counts(self):
        # A budget that one request's estimate already fills: a second,
        # parallel one is refused while the first is in flight.
        self.gw.push_fault("chat", Fault(delay=1.0))
        p1 = self.c.start(MODEL, [("user", "one")], {"max_tokens": dbus.UInt32(100000)})
        self.gw.wait_for(lambda: len(self.gw.requests_for("chat")) >= 1, timeout=10 * SLOW)
        self.assertBusError(E + "BudgetExceeded", self.c.start, MODEL, [("user", "two")])
        self.c.wait(p1, 15 * SLOW)
        self.assertEqual(len(self.gw.requests_for("chat")), 1)

    def env_get(self, prop):
        p = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), "org.freedesktop.DBus.Properties")
        return p.Get(USAGE, prop)


class BudgetNotification(Budgets):
    """bankr-llm-notify shows BudgetReached once, with dbusmock's
    notification_daemon as the server."""
    test_refused_before_sending_and_reached_once = None
    test_in_flight_spending_counts = None

    def test_shown_once(self):
        notify = NOTIFY
        log = open(os.path.join(self.env.dir, "notify.log"), "w")
        mock = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--template", "notification_daemon"],
                                env=self.env.environ, stdout=log, stderr=subprocess.STDOUT)
        agent = None
        try:
            wait_until(lambda: self.c.bus.name_has_owner("org.freedesktop.Notifications"), timeout=10,
                       what="the mock notification server")
            agent = subprocess.Popen([notify, "--verbose"], env=self.env.environ, stdout=log,
                                     stderr=subprocess.STDOUT)
            wait_until(lambda: self.c.bus.name_has_owner("bot.bankr.LLM1.Notifier"), timeout=10, what="the agent")
            mock_obj = dbus.Interface(self.c.bus.get_object("org.freedesktop.Notifications",
                                                            "/org/freedesktop/Notifications"),
                                      "org.freedesktop.DBus.Mock")

            def budget_calls():
                return [a for _, a in mock_obj.GetMethodCalls("Notify") if "budget" in str(a[3])]

            self.assertIsNone(self.run_one().error)
            wait_until(lambda: budget_calls(), timeout=10, what="the budget notification")
            for _ in range(2):
                self.assertBusError(E + "BudgetExceeded", self.c.start, MODEL, [("user", "more")])
            time.sleep(0.5 * SLOW)
            calls = budget_calls()
            self.assertEqual(len(calls), 1, calls)
            self.assertEqual(str(calls[0][3]), "python3 reached its budget")
            self.assertIn("per day", str(calls[0][4]))
            self.assertIn("It resets on", str(calls[0][4]))
        finally:
            for p in (agent, mock):
                if p and p.poll() is None:
                    p.terminate()
                    p.wait(5)
            log.close()


class Schema(UsageTest):
    def test_retention_at_start(self):
        self.assertIsNone(self.run_one().error)
        self.wait_records(1)
        self.c.close()
        self.env.stop_service()
        old = int((time.time() - 401 * 86400) * 1e6)
        kept = int((time.time() - 399 * 86400) * 1e6)
        db = sqlite3.connect(self.db_path)
        for t in (old, kept):
            db.execute("INSERT INTO requests (time, app, via, model, status, error, input_tokens, output_tokens, "
                       "cache_read_tokens, cache_write_tokens, cost_usd, latency_first_ms, latency_total_ms, "
                       "attempts, privacy_tier) VALUES (?, 'old.app', 'dbus', 'm', 'finished', '', 1, 1, 0, 0, "
                       "0.5, 1, 2, 1, '')", (t,))
        db.commit()
        db.close()
        self.env.start_service()
        self.c = ChatClient(self.env)
        self.usage = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), USAGE)
        times = [r["time"] for r in self.wait_records(2)]
        self.assertIn(kept, times)
        self.assertNotIn(old, times)
        self.assertIn("older than 400 days", self.env.log())

    def test_newer_schema_is_left_alone(self):
        self.c.close()
        self.env.stop_service()
        os.makedirs(os.path.dirname(self.db_path), exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db_path + suffix):
                os.unlink(self.db_path + suffix)
        db = sqlite3.connect(self.db_path)
        db.execute("CREATE TABLE future (x)")
        db.execute("PRAGMA user_version = 99")
        db.commit()
        db.close()
        self.env.start_service()
        self.c = ChatClient(self.env)
        self.usage = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), USAGE)
        self.assertIsNone(self.run_one().error)
        msg = self.assertBusError(E + "LedgerUnavailable", self.usage.Summary, "", V({}))
        self.assertIn("newer bankr-llmd (schema 99", msg)
        db = sqlite3.connect(self.db_path)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 99)
        self.assertEqual([r[0] for r in db.execute("SELECT name FROM sqlite_master")], ["future"])
        db.close()


class CorruptDatabase(UsageTest):
    def before_start(self):
        os.makedirs(os.path.dirname(self.db_path), exist_ok=True)
        with open(self.db_path, "wb") as f:
            f.write(b"this is not a database, " * 400)

    def test_chat_still_answers_and_usage_says_why(self):
        res = self.run_one()
        self.assertIsNone(res.error)
        msg = self.assertBusError(E + "LedgerUnavailable", self.usage.Summary, "", V({}))
        self.assertIn("damaged", msg)
        self.assertIn(self.db_path, msg)
        self.assertBusError(E + "LedgerUnavailable", self.usage.Recent, dbus.UInt32(5), V({}))
        self.assertIn("damaged", self.env.log())
        # Moved away: a new database, with the record kept in memory meanwhile.
        os.rename(self.db_path, self.db_path + ".broken")
        recs = self.wait_records(1)
        self.assertEqual(recs[0]["cost_usd"], res.info["cost_usd"])


class LockedDatabase(UsageTest):
    def test_exclusive_lock_of_another_process(self):
        self.assertIsNone(self.run_one().error)
        self.wait_records(1)
        # Another process takes an exclusive lock and keeps it.
        locker = subprocess.Popen(
            ["/usr/bin/python3", "-c",
             "import sqlite3, sys, time\n"
             "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "db.execute('BEGIN EXCLUSIVE')\n"
             "db.execute('DELETE FROM daily')\n"
             "print('locked', flush=True)\n"
             "sys.stdin.read()\n"
             "db.execute('ROLLBACK')\n", self.db_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(locker.stdout.readline().strip(), "locked")
            t0 = time.monotonic()
            res = self.run_one()
            self.assertIsNone(res.error)
            self.assertLess(time.monotonic() - t0, 5 * SLOW)
            msg = self.assertBusError(E + "LedgerUnavailable", self.usage.Summary, "", V({}))
            self.assertIn("locked by another process", msg)
        finally:
            locker.stdin.close()
            locker.wait(10)
        recs = self.wait_records(2)
        self.assertEqual(recs[0]["cost_usd"], res.info["cost_usd"])
        # And the log says so once the lock is gone (the handle stayed open).
        wait_until(lambda: "works again" in self.env.log(), what="the log to say the database works again")


class Cli(UsageTest):
    def book_some(self):
        for model in ("gpt-5-mini", "claude-haiku-4.5", "gpt-5-mini"):
            self.assertIsNone(self.run_one(model).error)
        return self.wait_records(3)

    def test_usage_tables_and_json(self):
        recs = self.book_some()
        total = sum(r["cost_usd"] for r in recs)
        r = self.env.cli("usage")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Requests: 3 (0 failed or cancelled)", r.stdout)
        self.assertIn("$%.2f" % total, r.stdout)
        r = self.env.cli("usage", "--by", "model")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("MODEL"))
        self.assertTrue(any(l.startswith("claude-haiku-4.5 ") for l in lines))
        self.assertTrue(lines[-1].startswith("total"))
        r = self.env.cli("usage", "--by", "app", "--json=short")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual([x["app"] for x in rows], ["python3"])
        self.assertAlmostEqual(rows[0]["cost_usd"], total, places=12)
        r = self.env.cli("usage", "--by", "app,model", "--json")
        self.assertEqual(len(json.loads(r.stdout)), 2)
        r = self.env.cli("usage", "--app", "nobody", "--json=short")
        self.assertEqual(json.loads(r.stdout)[0]["requests"], 0)
        r = self.env.cli("usage", "--since", "2099-01-01", "--json=short")
        self.assertEqual(json.loads(r.stdout)[0]["requests"], 0)
        for bad in (["--by", "colour"], ["--by", "app,model"], ["--since", "yesterday"], ["extra"]):
            r = self.env.cli("usage", *bad)
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))

    def test_recent(self):
        recs = self.book_some()
        r = self.env.cli("usage", "recent", "-n", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3)
        self.assertIn("gpt-5-mini", lines[1])
        self.assertIn("claude-haiku-4.5", lines[2])
        r = self.env.cli("usage", "recent", "--json=short")
        self.assertEqual(json.loads(r.stdout), recs)
        for bad in ("0", "10001", "x", "-3"):
            self.assertEqual(self.env.cli("usage", "recent", "-n", bad).returncode, 2, bad)

    def chart(self, lang, columns):
        r = self.env.cli("usage", "--by", "day", "--since", "3d",
                         env={"LANG": lang, "LC_ALL": lang, "COLUMNS": str(columns)})
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def test_bar_chart_utf8_and_ascii(self):
        self.book_some()
        today = time.strftime("%Y-%m-%d")
        for lang, bar in (("C.UTF-8", "\u2588"), ("C", "#")):
            for columns in (60, 120):
                lines = self.chart(lang, columns)
                self.assertEqual(len(lines), 5, lines)  # 3 days back, today, total
                self.assertTrue(lines[3].startswith(today), lines)
                self.assertIn(bar, lines[3])
                self.assertIn("3 req", lines[3])
                for l in lines[:3]:
                    self.assertNotIn(bar, l)
                    self.assertIn("0 req", l)
                self.assertTrue(lines[-1].startswith("total"))
                for l in lines:
                    self.assertLessEqual(len(l), columns, l)
                if lang == "C":
                    self.assertTrue(all(ord(ch) < 128 for l in lines for ch in l), lines)
        # Wider terminal, longer bar.
        self.assertGreater(self.chart("C", 120)[3].count("#"), self.chart("C", 60)[3].count("#"))

    def test_budget_list(self):
        r = self.env.cli("budget")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("No app has a budget", r.stdout)
        self.assertEqual(json.loads(self.env.cli("budget", "--json").stdout), [])
        for bad in (["set", "python3"], ["set", "python3", "5/year"], ["set", "python3", "0/day"],
                    ["set", "python3", "-1/day"], ["clear"], ["frobnicate"]):
            r = self.env.cli("budget", *bad)
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))

    def test_no_session_bus(self):
        # One sentence and exit code 3 (no service), as every verb: not a
        # second, misleading failure of the call made without a bus.
        env = {k: v for k, v in self.env.environ.items()
               if k not in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")}
        for args in (["usage"], ["usage", "recent"], ["budget"], ["budget", "set", "python3", "5/day"],
                     ["budget", "clear", "python3"]):
            r = subprocess.run([CLI] + args, env=env, capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 3, (args, r.stderr))
            self.assertTrue(r.stderr.startswith("Failed to connect to the session bus"), (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 2, (args, r.stderr))


class CliBudgetFile(Budgets):
    def test_budget_list_shows_spending(self):
        res = self.run_one()
        self.assertIsNone(res.error)
        spin(0.3)
        r = self.env.cli("budget")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("python3", r.stdout)
        self.assertIn("spent: requests are refused", r.stdout)
        rows = json.loads(self.env.cli("budget", "--json=short").stdout)
        self.assertEqual(rows[0]["app"], "python3")
        self.assertAlmostEqual(rows[0]["spent_usd"], res.info["cost_usd"], places=12)

    test_refused_before_sending_and_reached_once = None
    test_in_flight_spending_counts = None


class SetBudgetPolkit(UsageTest):
    """SetBudget through the CLI, with dbusmock's polkitd deciding."""

    def setUp(self):
        from polkit_env import MockPolkitd
        env = {"BANKR_LLM_KEY": KEY, "BANKR_LLMD_POLKIT_TIMEOUT_MS": "3000"}
        self.env = Env(keyring=False, system_bus=True, service_env=env)
        self.env.start()
        self.env.write_service_file({"DBUS_SYSTEM_BUS_ADDRESS": self.env.environ["DBUS_SYSTEM_BUS_ADDRESS"]})
        self.gw = self.env.gateway

        class SystemBus:
            def __init__(self, address):
                self.address = address
                self._c = None

            def connection(self):
                if self._c is None:
                    self._c = dbus.bus.BusConnection(self.address)
                return self._c

            def has_owner(self, name):
                return self.connection().name_has_owner(name)

        self.polkit = MockPolkitd(SystemBus(self.env.environ["DBUS_SYSTEM_BUS_ADDRESS"]), self.env.dir,
                                  self.env.environ)
        self.c = ChatClient(self.env)
        self.usage = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), USAGE)

    def tearDown(self):
        super().tearDown()
        self.polkit.stop()

    def budgets(self):
        p = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), "org.freedesktop.DBus.Properties")
        return unwrap(p.Get(USAGE, "Budgets"))

    def test_set_and_clear(self):
        r = self.env.cli("budget", "set", "org.gnome.Terminal", "5/week")
        self.assertEqual(r.returncode, 7, r.stdout + r.stderr)
        self.assertEqual(self.budgets(), [])
        self.polkit.set_allowed(["bot.bankr.LLM1.configure-budget"])
        r = self.env.cli("budget", "set", "org.gnome.Terminal", "$5/week")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        b = self.budgets()
        self.assertEqual([(x["app"], x["limit_usd"], x["period"], x["spent_usd"]) for x in b],
                         [("org.gnome.Terminal", 5.0, "week", 0.0)])
        path = os.path.join(self.env.home, ".config", "bankr-llm", "budgets.json")
        wait_until(lambda: os.path.exists(path), what="budgets.json")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            self.assertEqual(json.load(f)["budgets"][0]["app"], "org.gnome.Terminal")
        # Kept across a restart.
        self.c.close()
        self.env.restart_service()
        self.c = ChatClient(self.env)
        self.assertEqual(len(self.budgets()), 1)
        r = self.env.cli("budget", "clear", "org.gnome.Terminal")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.budgets(), [])
        actions = {c["action"] for c in self.polkit.check_calls()}
        self.assertEqual(actions, {"bot.bankr.LLM1.configure-budget"})


def _can_mount():
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    import tempfile
    d = tempfile.mkdtemp(prefix="bankr-mount-probe-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", d], capture_output=True)
        return ok
    finally:
        os.rmdir(d)


@unittest.skipUnless(_can_mount(), "needs root and tmpfs mounts")
class SmallDisk(UsageTest):
    """The state folder on a tiny tmpfs of its own: a full disk, and a
    read-only one (root ignores file modes, not a read-only mount)."""
    read_only_at_start = False

    def setUp(self):
        import tempfile
        self.mnt = tempfile.mkdtemp(prefix="bankr-state-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", self.mnt], check=True)
        self.service_env = {"XDG_STATE_HOME": self.mnt}
        super().setUp()

    def before_start(self):
        if self.read_only_at_start:
            subprocess.run(["mount", "-o", "remount,ro", self.mnt], check=True)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
            os.rmdir(self.mnt)

    @property
    def db_path(self):
        return os.path.join(self.mnt, "bankr-llm", "usage.db")

    def fill(self):
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        return filler


class FullDisk(SmallDisk):
    def test_full_disk(self):
        self.assertIsNone(self.run_one().error)
        self.wait_records(1)
        filler = self.fill()
        res = None
        for _ in range(30):  # until the WAL needs room it cannot get
            res = self.run_one()
            self.assertIsNone(res.error)
            try:
                self.summary()
            except dbus.exceptions.DBusException as e:
                self.assertEqual(e.get_dbus_name(), E + "LedgerUnavailable")
                self.assertIn("full", e.get_dbus_message())
                break
        else:
            self.fail("the full disk was never noticed")
        os.unlink(filler)
        recs = self.wait_records(2)
        self.assertEqual(recs[0]["cost_usd"], res.info["cost_usd"])


class ReadOnlyDisk(SmallDisk):
    read_only_at_start = True

    def test_read_only(self):
        res = self.run_one()
        self.assertIsNone(res.error)
        msg = self.assertBusError(E + "LedgerUnavailable", self.usage.Summary, "", V({}))
        self.assertIn("cannot be written", msg)
        subprocess.run(["mount", "-o", "remount,rw", self.mnt], check=True)
        recs = self.wait_records(1)
        self.assertEqual(recs[0]["cost_usd"], res.info["cost_usd"])


if __name__ == "__main__":
    unittest.main()
