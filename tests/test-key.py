#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Key interface, config handling, activation and the key-related CLI verbs,
against a private bus, the real gnome-keyring and the built daemon."""
import json
import os
import signal
import stat
import subprocess
import time
import unittest

from harness import Env, TestCase, wait_until, DAEMON, CLI, OBJ, BUS_NAME, SLOW

KEY = "bk_test_llm_0123456789abcdef"
KEY2 = "bk_test_other_9876543210zyx"
API = "bk_test_api_aaaabbbbccccdddd"


def key_props(env):
    return {p: env.get("Key", p) for p in ("Present", "Source", "Kind", "Masked", "GatewayUrl")}


class KeyTest(TestCase):
    env_args = {}

    def assertNoKeyLeak(self, *keys):
        for k in keys:
            self.assertEqual(self.env.files_containing(k), [], "key found in a file under HOME")
            self.assertNotIn(k, self.env.log(), "key found in the service log")


class Activation(KeyTest):
    def test_activation_and_introspection(self):
        self.assertIsNone(self.env.service_pid())
        pid = self.env.start_service()
        self.assertTrue(pid)
        r = self.env.busctl("introspect", BUS_NAME, OBJ)
        for iface in ("bot.bankr.LLM1.Key", "bot.bankr.LLM1.Models", "bot.bankr.LLM1.Credits",
                      "bot.bankr.LLM1.Chat", "bot.bankr.LLM1.Setup", "org.freedesktop.DBus.Properties"):
            self.assertIn(iface, r.stdout)
        for member in (".Set", ".Clear", ".Import", ".Present", ".Source", ".Kind", ".Masked", ".GatewayUrl"):
            self.assertIn(member, r.stdout)
        r = self.env.run(["gdbus", "introspect", "--session", "--dest", BUS_NAME, "--object-path", OBJ], check=True)
        self.assertIn("interface bot.bankr.LLM1.Key", r.stdout)
        self.assertIn("Set(in  s key,", r.stdout)
        self.assertIn("readonly b Present", r.stdout)
        self.assertIn("Version", r.stdout)

    def test_initial_state_without_key(self):
        p = key_props(self.env)
        self.assertEqual(p, {"Present": False, "Source": "none", "Kind": "", "Masked": "",
                             "GatewayUrl": self.env.gateway.url})

    def test_sigterm_stops_cleanly(self):
        pid = self.env.start_service()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: self.env.service_pid() is None, what="exit")
        self.assertIn("Exiting.", self.env.log())

    def test_name_already_owned(self):
        self.env.start_service()
        r = self.env.run([DAEMON], timeout=10)
        self.assertNotEqual(r.returncode, 0)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("already owned", lines[0])
        self.assertTrue(lines[0].startswith("<3>"), lines[0])

    def test_no_session_bus(self):
        e = {"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": ""}
        env = dict(self.env.environ)
        env.pop("DBUS_SESSION_BUS_ADDRESS")
        env.pop("XDG_RUNTIME_DIR")
        r = subprocess.run([DAEMON], env=env, capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("No session bus", r.stderr)
        r = subprocess.run([CLI, "status"], env=env, capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertIn("session bus", r.stderr)

    def test_unreachable_service(self):
        # A bus without the activation file: the CLI says what to do.
        os.unlink(os.path.join(self.env.dir, "services", BUS_NAME + ".service"))
        self.env.reload_bus_config()
        r = self.env.cli("status")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("bankr-llmd", r.stderr)
        self.assertTrue(r.stderr.startswith("Failed to "), r.stderr)

    def test_help_and_version(self):
        r = self.env.run([DAEMON, "--help"], check=True)
        self.assertIn("--verbose", r.stdout)
        r = self.env.run([DAEMON, "--version"], check=True)
        self.assertRegex(r.stdout, r"^bankr-llmd \d+\.\d+")
        r = self.env.run([DAEMON, "--bogus"])
        self.assertNotEqual(r.returncode, 0)
        r = self.env.cli("--version", check=True)
        self.assertRegex(r.stdout, r"^bankr-llm \d+\.\d+")
        r = self.env.cli("--help", check=True)
        for verb in ("status", "key", "config", "login"):
            self.assertIn(verb, r.stdout)
        self.assertIn("Exit codes", r.stdout)
        for verb in (["status"], ["key"], ["key", "set"], ["key", "clear"], ["key", "import"],
                     ["key", "status"], ["config"], ["login"]):
            r = self.env.cli(*verb, "--help")
            self.assertEqual(r.returncode, 0, verb)
            self.assertIn("bankr-llm " + verb[0], r.stdout)
        r = self.env.cli("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Valid commands", r.stderr)

    def test_ready_notification(self):
        # READY=1 reaches NOTIFY_SOCKET when started by a service manager.
        import socket
        path = os.path.join(self.env.dir, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(path)
        s.settimeout(10)
        p = subprocess.Popen([DAEMON], env=dict(self.env.environ, NOTIFY_SOCKET=path,
                                                **self.env.service_environment()),
                             stderr=subprocess.PIPE)
        try:
            msg = s.recv(4096).decode()
            self.assertIn("READY=1", msg)
        finally:
            p.terminate()
            _, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0, err)
            # stderr lines carry syslog priorities for journald
            for line in err.decode().splitlines():
                self.assertRegex(line, r"^<\d>")


    def test_idle_service_does_not_wake_up(self):
        # No polling: with nothing to do, no thread of the daemon runs.
        self.env.restart_service({"BANKR_LLM_KEY": KEY})
        pid = self.env.service_pid()

        def switches():
            total = 0
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            return total

        # Start-up work settles first (fetches, the ledger's first reads, the
        # endpoint's listeners): wait for a quiet half second, however long
        # a loaded machine takes to get there, then measure.
        deadline = time.monotonic() + 20 * SLOW
        last = switches()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = switches()
            if now == last:
                break
            last = now
        before = switches()
        time.sleep(3.0)
        self.assertEqual(switches() - before, 0, "bankr-llmd woke up while idle")


class KeyringStorage(KeyTest):
    def test_set_and_clear_busctl(self):
        self.env.call("Key", "Set", KEY, "llm")
        self.assertEqual(self.env.secret_lookup("llm"), KEY)
        p = key_props(self.env)
        self.assertEqual(p["Present"], True)
        self.assertEqual(p["Source"], "keyring")
        self.assertEqual(p["Kind"], "llm")
        self.assertEqual(p["Masked"], "bk_tes...cdef")
        self.assertNoKeyLeak(KEY)

        self.env.call("Key", "Set", API, "api")
        self.assertEqual(self.env.secret_lookup("api"), API)
        self.assertEqual(self.env.get("Key", "ApiKeySource"), "keyring")

        self.env.call("Key", "Clear", "llm")
        self.assertIsNone(self.env.secret_lookup("llm"))
        # The API key now doubles as the LLM key.
        self.assertEqual(self.env.get("Key", "Kind"), "api")
        self.assertEqual(self.env.get("Key", "Masked"), "bk_tes...dddd")
        self.env.call("Key", "Clear", "api")
        self.assertEqual(self.env.get("Key", "Present"), False)
        self.assertEqual(self.env.get("Key", "Source"), "none")
        self.assertNoKeyLeak(KEY, API)

    def test_set_and_clear_cli(self):
        r = self.env.cli("key", "set", input=KEY + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bk_tes...cdef", r.stdout)
        self.assertNotIn(KEY, r.stdout + r.stderr)
        self.assertEqual(self.env.secret_lookup("llm"), KEY)
        r = self.env.cli("key", "set", "--api", input=API)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.env.secret_lookup("api"), API)
        r = self.env.cli("key", "status")
        self.assertEqual(r.returncode, 0)
        self.assertIn("bk_tes...cdef", r.stdout)
        self.assertIn("keyring", r.stdout)
        r = self.env.cli("key", "clear")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(self.env.secret_lookup("llm"))
        r = self.env.cli("key", "clear", "--api")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.env.cli("key", "status")
        self.assertEqual(r.returncode, 4)
        # The key is never taken from the command line.
        r = self.env.cli("key", "set", KEY)
        self.assertEqual(r.returncode, 2)
        r = self.env.cli("key", "set", input="")
        self.assertEqual(r.returncode, 2)
        self.assertIn("empty", r.stderr)
        self.assertNoKeyLeak(KEY, API)

    def test_secret_tool_item_is_found_by_the_service(self):
        # An item stored by another program is picked up (keyring signals).
        self.env.start_service()
        self.env.run(["secret-tool", "store", "--label", "x", "kind", "llm"], input=KEY2, check=True)
        wait_until(lambda: self.env.get("Key", "Present"), what="the keyring item to be seen")
        self.assertEqual(self.env.get("Key", "Masked"), "bk_tes...0zyx")
        self.env.run(["secret-tool", "clear", "kind", "llm"], check=True)
        wait_until(lambda: not self.env.get("Key", "Present"), what="the item removal to be seen")

    def test_bad_keys_change_nothing(self):
        self.env.call("Key", "Set", KEY, "llm")
        cases = {
            "": "empty",
            "bk_has space": "whitespace",
            " bk_leading": "whitespace",
            "bk_trailing\n": "whitespace",
            "bk_tab\there": "whitespace",
            "bk_ctrl\x01x": "control",
            "bk_del\x7fx": "control",
            "bk_" + "a" * 4096: "4 KiB",
        }
        for bad, why in cases.items():
            ok, res = self.env.try_call("Key", "Set", bad, "llm")
            self.assertFalse(ok, repr(bad))
            self.assertEqual(res[0], "org.freedesktop.DBus.Error.InvalidArgs", res)
            self.assertIn(why, res[1])
            self.assertNotIn(bad.strip() or "@@", res[1])
        ok, res = self.env.try_call("Key", "Set", KEY2, "weird")
        self.assertFalse(ok)
        self.assertEqual(res[0], "org.freedesktop.DBus.Error.InvalidArgs")
        ok, res = self.env.try_call("Key", "Clear", "LLM")
        self.assertFalse(ok)
        # Invalid UTF-8 through the CLI (sd-bus refuses to send it; nothing changes).
        r = self.env.cli("key", "set", input=b"bk_\xff\xfe")
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.startswith("Failed to "), r.stderr)
        r = self.env.cli("key", "set", input="bk_two\nlines")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("whitespace", r.stderr)
        self.assertEqual(self.env.secret_lookup("llm"), KEY)
        self.assertEqual(self.env.get("Key", "Masked"), "bk_tes...cdef")


class NoKeyring(KeyTest):
    env_args = {"keyring": False}

    def test_set_fails_other_sources_work(self):
        self.env.write_config({"llmKey": KEY})
        self.assertEqual(self.env.get("Key", "Source"), "config")
        ok, res = self.env.try_call("Key", "Set", KEY2, "llm")
        self.assertFalse(ok)
        self.assertEqual(res[0], "bot.bankr.LLM1.Error.KeyringUnavailable")
        self.assertIn("No Secret Service", res[1])
        self.assertNotIn(KEY2, res[1])
        self.assertEqual(self.env.get("Key", "Masked"), "bk_tes...cdef")
        r = self.env.cli("key", "set", input=KEY2)
        self.assertEqual(r.returncode, 11)
        self.assertIn("Failed to store the LLM key: No Secret Service", r.stderr)


class LockedKeyring(KeyTest):
    env_args = {"keyring": "locked"}

    def test_set_fails_locked(self):
        self.env.write_config({"apiKey": API})
        ok, res = self.env.try_call("Key", "Set", KEY, "llm")
        self.assertFalse(ok)
        self.assertEqual(res[0], "bot.bankr.LLM1.Error.KeyringUnavailable")
        self.assertIn("locked", res[1])
        self.assertEqual(self.env.get("Key", "Source"), "config")
        self.assertEqual(self.env.get("Key", "Kind"), "api")


class HungKeyring(KeyTest):
    """A Secret Service that owns its name but never answers: libsecret's
    blocking calls sit in the worker thread for their D-Bus timeout."""
    env_args = {"keyring": False}

    def test_shutdown_does_not_wait_for_a_stuck_keyring_call(self):
        env = self.env
        hole = subprocess.Popen(
            ["/usr/bin/python3", "-c",
             "import dbus, sys, time\n"
             "b = dbus.bus.BusConnection(sys.argv[1])\n"
             "b.request_name('org.freedesktop.secrets')\n"
             "print('ready', flush=True)\n"
             "time.sleep(120)\n",
             env.environ["DBUS_SESSION_BUS_ADDRESS"]],
            env=env.environ, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(hole.stdout.readline().strip(), "ready")
            env.write_config({"llmKey": KEY})
            # Takes the name once the keyring start-up wait (3 s) is over.
            env.start_service()
            self.assertEqual(env.get("Key", "Source"), "config")
            # A store queued behind the stuck lookups.
            setter = subprocess.Popen(["gdbus", "call", "--session", "--dest", BUS_NAME, "--object-path", OBJ,
                                       "--method", "bot.bankr.LLM1.Key.Set", KEY2, "llm"],
                                      env=env.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)
            start = time.monotonic()
            env.stop_service(timeout=8)
            self.assertLess(time.monotonic() - start, 8)
            _, err = setter.communicate(timeout=10)
            self.assertNotEqual(setter.returncode, 0)
            self.assertIn("did not finish a call", env.log())
            self.assertNotIn(KEY2, env.log())
        finally:
            hole.kill()
            hole.wait()


class Resolution(KeyTest):
    def test_order_and_precedence(self):
        env = self.env
        env.write_config({"apiKey": "bk_cfg_api_000000001"})
        self.assertEqual((env.get("Key", "Source"), env.get("Key", "Kind")), ("config", "api"))
        env.call("Key", "Set", "bk_ring_api_00000002", "api")
        self.assertEqual((env.get("Key", "Source"), env.get("Key", "Kind")), ("keyring", "api"))
        env.restart_service({"BANKR_API_KEY": "bk_env_api_000000003"})
        self.assertEqual((env.get("Key", "Source"), env.get("Key", "Kind"), env.get("Key", "Masked")),
                         ("env", "api", "bk_env...0003"))
        env.write_config({"apiKey": "bk_cfg_api_000000001", "llmKey": "bk_cfg_llm_000000004"})
        wait_until(lambda: env.get("Key", "Kind") == "llm", what="config llmKey to win over env api")
        self.assertEqual((env.get("Key", "Source"), env.get("Key", "Masked")), ("config", "bk_cfg...0004"))
        env.call("Key", "Set", "bk_ring_llm_00000005", "llm")
        self.assertEqual((env.get("Key", "Source"), env.get("Key", "Masked")), ("keyring", "bk_rin...0005"))
        env.restart_service({"BANKR_LLM_KEY": "bk_env_llm_000000006"})
        self.assertEqual((env.get("Key", "Source"), env.get("Key", "Kind"), env.get("Key", "Masked")),
                         ("env", "llm", "bk_env...0006"))
        # And back down the chain.
        env.restart_service({"BANKR_LLM_KEY": None})
        self.assertEqual(env.get("Key", "Masked"), "bk_rin...0005")
        env.call("Key", "Clear", "llm")
        self.assertEqual(env.get("Key", "Masked"), "bk_cfg...0004")

    def test_gateway_url_sources(self):
        env = self.env
        env.restart_service({"BANKR_LLM_URL": None})
        self.assertEqual(env.get("Key", "GatewayUrl"), "https://llm.bankr.bot")
        self.assertEqual(env.get("Key", "ApiUrl"), env.gateway.url)
        env.write_config({"llmUrl": "https://gw.example.com/v1/"})
        wait_until(lambda: env.get("Key", "GatewayUrl") == "https://gw.example.com", what="llmUrl")
        env.restart_service({"BANKR_LLM_URL": "http://127.0.0.1:4242/v1"})
        self.assertEqual(env.get("Key", "GatewayUrl"), "http://127.0.0.1:4242")
        # Invalid values are skipped with a warning, never used.
        env.restart_service({"BANKR_LLM_URL": "http://evil.example.com"})
        self.assertEqual(env.get("Key", "GatewayUrl"), "https://gw.example.com")
        self.assertIn("Ignoring BANKR_LLM_URL", env.log())
        env.write_config({"llmUrl": "not a url"})
        wait_until(lambda: env.get("Key", "GatewayUrl") == "https://llm.bankr.bot", what="fallback")


class ConfigFile(KeyTest):
    def test_edited_while_running_emits_properties_changed(self):
        env = self.env
        env.start_service()
        mon = subprocess.Popen(["gdbus", "monitor", "--session", "--dest", BUS_NAME, "--object-path", OBJ],
                               env=env.environ, stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.3)
            env.write_config({"other": 1, "llmKey": KEY})
            wait_until(lambda: env.get("Key", "Present"), what="Present")
            self.assertEqual(env.get("Key", "Source"), "config")
            time.sleep(0.3)
        finally:
            mon.terminate()
            out = mon.communicate(timeout=5)[0]
        self.assertIn("PropertiesChanged", out)
        self.assertIn("'Present': <true>", out)
        self.assertNotIn(KEY, out)
        # Removing the file: back to nothing.
        os.unlink(env.config_path)
        wait_until(lambda: not env.get("Key", "Present"), what="Present false")
        # Creating the directory and the file later is seen too.
        os.rmdir(os.path.dirname(env.config_path))
        time.sleep(0.1)
        env.write_config({"llmKey": KEY2})
        wait_until(lambda: env.get("Key", "Present"), what="a new ~/.bankr to be seen")

    def test_malformed_file_left_untouched(self):
        env = self.env
        env.write_config({"llmKey": KEY})
        env.start_service()
        self.assertEqual(env.get("Key", "Source"), "config")
        bad = '{ "llmKey": "%s", // a comment\n  "apiUrl": 3, }\n' % KEY
        env.write_config(bad)
        wait_until(lambda: not env.get("Key", "Present"), what="malformed file treated as empty")
        # Touch it a few times: logged once.
        for _ in range(3):
            os.utime(env.config_path)
            time.sleep(0.1)
        time.sleep(0.2)
        self.assertEqual(env.log().count("Ignoring " + env.config_path), 1, env.log())
        ok, res = env.try_call("Key", "Import", True)
        self.assertFalse(ok)
        self.assertEqual(res[0], "bot.bankr.LLM1.Error.InvalidConfig")
        self.assertIn("untouched", res[1])
        r = env.cli("config", "set", "llmUrl", "https://x.example")
        self.assertEqual(r.returncode, 10, r.stderr)
        self.assertEqual(env.read_config(), bad)
        self.assertNotIn(KEY, env.log())

    def test_import_with_and_without_removal(self):
        env = self.env
        cfg = {"apiUrl": "https://api.example.com", "llmKey": KEY, "nested": {"a": [1, 2, {"b": None}]},
               "apiKey": API, "zzz": "last"}
        env.write_config(cfg, mode=0o640)
        res = env.call("Key", "Import", False)
        self.assertEqual(res, ["keyring"])
        self.assertEqual(env.secret_lookup("llm"), KEY)
        self.assertEqual(env.secret_lookup("api"), API)
        self.assertEqual(json.loads(env.read_config()), cfg)
        self.assertEqual(env.get("Key", "Source"), "keyring")

        r = env.cli("key", "import", "--remove-plaintext")
        self.assertEqual(r.returncode, 0, r.stderr)
        after = env.read_config()
        self.assertEqual(list(json.loads(after).items()),
                         [("apiUrl", "https://api.example.com"), ("nested", {"a": [1, 2, {"b": None}]}),
                          ("zzz", "last")])
        self.assertTrue(after.endswith("}\n"))
        self.assertEqual(stat.S_IMODE(os.stat(env.config_path).st_mode), 0o640)
        self.assertNoKeyLeak(KEY, API)
        # Nothing left to import.
        ok, res = env.try_call("Key", "Import", False)
        self.assertFalse(ok)
        self.assertEqual(res[0], "bot.bankr.LLM1.Error.NoKey")
        r = env.cli("key", "import")
        self.assertEqual(r.returncode, 4)


    def test_import_keeps_a_key_written_while_the_keyring_is_busy(self):
        env = self.env
        env.write_config({"llmKey": KEY, "other": 1})
        env.start_service()
        # Hold the keyring so that the store is still pending when the file changes.
        os.kill(env.keyring_proc.pid, signal.SIGSTOP)
        try:
            importer = subprocess.Popen(["gdbus", "call", "--session", "--dest", BUS_NAME, "--object-path", OBJ,
                                         "--method", "bot.bankr.LLM1.Key.Import", "true"],
                                        env=env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            env.write_config({"llmKey": KEY2, "other": 1})
            time.sleep(0.2)
        finally:
            os.kill(env.keyring_proc.pid, signal.SIGCONT)
        out, err = importer.communicate(timeout=30)
        self.assertEqual(importer.returncode, 0, err)
        # The keyring holds what was imported; the new key stays in the file.
        self.assertEqual(env.secret_lookup("llm"), KEY)
        self.assertEqual(json.loads(env.read_config()), {"llmKey": KEY2, "other": 1})
        self.assertIn("changed while it was being imported", env.log())
        self.assertEqual(env.get("Key", "Source"), "keyring")
        self.assertNotIn(KEY, env.log())
        self.assertNotIn(KEY2, env.log())

    def test_import_refuses_a_read_only_file(self):
        env = self.env
        cfg = {"llmKey": KEY, "apiKey": API}
        env.write_config(cfg, mode=0o400)
        before = env.read_config()
        ok, res = env.try_call("Key", "Import", True)
        self.assertFalse(ok)
        self.assertEqual(res[0], "bot.bankr.LLM1.Error.InvalidConfig")
        self.assertIn("read-only", res[1])
        self.assertIn("nothing was imported", res[1])
        self.assertEqual(env.read_config(), before)
        self.assertEqual(stat.S_IMODE(os.stat(env.config_path).st_mode), 0o400)
        self.assertIsNone(env.secret_lookup("llm"))
        self.assertIsNone(env.secret_lookup("api"))
        r = env.cli("key", "import", "--remove-plaintext")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("read-only", r.stderr)
        # config set leaves it alone too.
        r = env.cli("config", "set", "llmUrl", "https://x.example")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("read-only", r.stderr)
        self.assertEqual(env.read_config(), before)
        # Without removal the file is only read: that works.
        self.assertEqual(env.call("Key", "Import", False), ["keyring"])
        self.assertEqual(env.secret_lookup("llm"), KEY)
        self.assertEqual(env.read_config(), before)
        self.assertNotIn(KEY, env.log())
        self.assertNotIn(API, env.log())


class Cli(KeyTest):
    def test_status_human_and_json(self):
        env = self.env
        env.gateway.llm_keys.add(KEY)
        r = env.cli("status")
        self.assertIn("Credits: unknown (no key)", r.stdout)
        self.assertIn("Models: 23 (cached or built-in catalog)", r.stdout)
        env.call("Key", "Set", KEY, "llm")
        wait_until(lambda: env.get("Models", "Live"), what="the live model list")
        wait_until(lambda: env.get("Credits", "State") == "ok", what="the balance")
        r = env.cli("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(env.gateway.url, r.stdout)
        self.assertIn("bk_tes...cdef", r.stdout)
        self.assertIn("keyring", r.stdout)
        self.assertRegex(r.stdout, r"Service: bankr-llmd \d")
        # What the service holds about credits and models, without a gateway call.
        self.assertIn("Credits: $12.50 (ok, just now)", r.stdout)
        self.assertIn("Models: 5 (live)", r.stdout)
        r = env.cli("status", "--json")
        self.assertEqual(r.returncode, 0)
        j = json.loads(r.stdout)
        self.assertEqual(j["gateway_url"], env.gateway.url)
        self.assertEqual(j["key"], {"present": True, "source": "keyring", "kind": "llm", "masked": "bk_tes...cdef"})
        self.assertEqual((j["credits"]["state"], j["credits"]["balance_usd"]), ("ok", 12.5))
        self.assertEqual(j["models"], {"count": 5, "live": True})
        self.assertNotIn(KEY, r.stdout)
        r = env.cli("status", "extra")
        self.assertEqual(r.returncode, 2)

    def test_config_get_set_and_login(self):
        env = self.env
        r = env.cli("config", "set", "llmUrl", "http://127.0.0.1:5555/v1/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(env.read_config()), {"llmUrl": "http://127.0.0.1:5555"})
        self.assertEqual(stat.S_IMODE(os.stat(env.config_path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(env.config_path)).st_mode), 0o700)
        # The service's environment (BANKR_LLM_URL) still wins.
        self.assertEqual(env.cli("config", "get", "llmUrl").stdout.strip(), env.gateway.url)
        r = env.cli("config", "set", "llmUrl", "http://example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Failed to set llmUrl", r.stderr)
        self.assertIn("https", r.stderr)
        r = env.cli("config", "set", "apiUrl", "https://api.example.com")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = env.cli("config", "set", "nope", "x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("llmKey, apiKey, llmUrl, apiUrl", r.stderr)
        r = env.cli("config", "get", "nope")
        self.assertEqual(r.returncode, 2)
        # Keys go to the keyring, not the file.
        r = env.cli("config", "set", "llmKey", KEY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(env.secret_lookup("llm"), KEY)
        self.assertNotIn(KEY, env.read_config())
        r = env.cli("config", "set", "apiKey", "-", input=API)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(env.secret_lookup("api"), API)
        r = env.cli("config", "get")
        self.assertEqual(r.returncode, 0)
        self.assertIn("llmKey: bk_tes...cdef", r.stdout)
        self.assertIn("apiKey: bk_tes...dddd", r.stdout)
        self.assertNotIn(KEY, r.stdout)
        r = env.cli("config", "set", "llmUrl", "")
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("llmUrl", json.loads(env.read_config()))
        env.call("Key", "Clear", "llm")
        env.call("Key", "Clear", "api")
        r = env.cli("login", "--llm-key", KEY2, "--api-key", API)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(env.secret_lookup("llm"), KEY2)
        self.assertEqual(env.secret_lookup("api"), API)
        r = env.cli("login")
        self.assertEqual(r.returncode, 2)
        self.assertNoKeyLeak(KEY, KEY2, API)


class FailedWrites(KeyTest):
    """Every verb that prints fails (exit 1, one sentence on stderr) when
    its output cannot be written, instead of exiting 0."""

    def run_to(self, target, *args, input=None):
        # target: a shell redirection of fd 1 (">/dev/full" or ">&-").
        return self.env.run(["sh", "-c", 'exec "$0" "$@" %s' % target, CLI] + list(args), input=input)

    def test_full_and_closed_stdout(self):
        env = self.env
        env.gateway.llm_keys.add(KEY)
        env.call("Key", "Set", KEY, "llm")
        wait_until(lambda: env.get("Models", "Live"), what="the live model list")
        verbs = [["status"], ["status", "--json"], ["models"], ["models", "--json"], ["credits"],
                 ["key", "status"], ["config", "get"], ["config", "get", "llmUrl"],
                 ["setup", "opencode", "--key", "env"], ["--help"], ["chat", "--help"]]
        for args in verbs:
            self.assertEqual(env.cli(*args).returncode, 0, args)
            for target, message in ((">/dev/full", "No space left on device"), (">&-", "Bad file descriptor")):
                r = self.run_to(target, *args)
                self.assertEqual(r.returncode, 1, (args, target, r.stderr))
                self.assertEqual(r.stderr.count("Failed to write output: %s" % message), 1, (args, target, r.stderr))
        # A verb that changes something and then cannot say so still fails.
        r = self.run_to(">/dev/full", "key", "set", input=KEY2)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Failed to write output", r.stderr)
        # A failing verb keeps its own exit code.
        env.call("Key", "Clear", "llm")
        r = self.run_to(">/dev/full", "key", "status")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("Failed to write output", r.stderr)


class KeysOffTheCommandLine(KeyTest):
    def test_dash_reads_stdin_and_argv_warns(self):
        env = self.env
        # login, as "bankr login --llm-key KEY" is used, still works, with a warning.
        r = env.cli("login", "--llm-key", KEY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(env.secret_lookup("llm"), KEY)
        self.assertIn("Warning: the LLM key was given on the command line", r.stderr)
        self.assertNotIn(KEY, r.stderr + r.stdout)
        # "-": from stdin, no warning.
        r = env.cli("login", "--llm-key", "-", input=KEY2 + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(env.secret_lookup("llm"), KEY2)
        self.assertNotIn("Warning", r.stderr)
        r = env.cli("login", "--api-key", "-", "--llm-key", KEY, input=API)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((env.secret_lookup("llm"), env.secret_lookup("api")), (KEY, API))
        self.assertIn("Warning: the LLM key", r.stderr)
        self.assertNotIn("API key was given", r.stderr)
        r = env.cli("login", "--llm-key", "-", "--api-key", "-", input=KEY)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("Only one key", r.stderr)
        r = env.cli("login", "--llm-key", "-", input="")
        self.assertEqual(r.returncode, 2, r.stderr)
        # config set: the same.
        r = env.cli("config", "set", "llmKey", KEY2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Warning: the LLM key was given on the command line", r.stderr)
        self.assertEqual(env.secret_lookup("llm"), KEY2)
        r = env.cli("config", "set", "apiKey", "-", input=API + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Warning", r.stderr)
        self.assertEqual(env.secret_lookup("api"), API)
        self.assertNoKeyLeak(KEY, KEY2, API)

    def test_argv_is_overwritten(self):
        # Cheap extra defence: once read, the key is gone from /proc/PID/cmdline
        # (the call waits on the keyring, which we hold up by stopping the service).
        env = self.env
        env.start_service()
        os.kill(env.service_pid(), signal.SIGSTOP)
        try:
            for args in (["login", "--llm-key", KEY], ["config", "set", "llmKey", KEY]):
                with subprocess.Popen([CLI] + args, env=env.environ, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE) as p:
                    try:
                        cmdline = lambda: open("/proc/%d/cmdline" % p.pid, "rb").read()
                        wait_until(lambda: cmdline().count(b"\0") >= len(args) and KEY.encode() not in cmdline(),
                                   what="the key to leave the command line of %s" % args)
                    finally:
                        p.kill()
                        p.communicate()
        finally:
            os.kill(env.service_pid(), signal.SIGCONT)


if __name__ == "__main__":
    unittest.main(verbosity=2)
