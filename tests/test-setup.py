#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Setup interface and the setup/claude/opencode verbs, against a private
session bus, dbusmock's polkitd on a private system bus, the built daemon and
the fake gateway (with a key, so the live model list is used)."""
import glob
import json
import os
import shutil
import stat
import subprocess
import time
import unittest

import dbus

from fakegw import FakeGateway
from harness import DBusException, Env, wait_until, CATALOG

KEY = FakeGateway.DEFAULT_KEY
REVEAL = "bot.bankr.LLM1.reveal-key"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INVALID_CONFIG = "bot.bankr.LLM1.Error.InvalidConfig"
NOT_AUTHORIZED = "bot.bankr.LLM1.Error.NotAuthorized"
NO_KEY = "bot.bankr.LLM1.Error.NoKey"

# A stand-in for claude/opencode: records its arguments and environment.
STANDIN = """#!/usr/bin/python3
import json, os, sys
with open(os.environ["STANDIN_OUT"], "w") as f:
    json.dump({"argv0": sys.argv[0], "args": sys.argv[1:], "env": dict(os.environ)}, f)
sys.exit(int(os.environ.get("STANDIN_EXIT", "42")))
"""


def gv_options(**opts):
    """The a{sv} options: bools as b, ints as u, the rest as s."""
    def typed(v):
        if isinstance(v, bool):
            return dbus.Boolean(v)
        if isinstance(v, int):
            return dbus.UInt32(v)
        return dbus.String(v)
    return dbus.Dictionary({k: typed(v) for k, v in opts.items()}, signature="sv")


SIGNATURES = {"Preview": "sa{sv}", "Install": "sa{sv}", "Environment": "s"}


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def ordered(text):
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


def backups_of(path):
    return sorted(glob.glob(glob.escape(os.path.realpath(path)) + ".bankr-backup-*"))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def remove_block(text, member):
    """The text with the pretty-printed member (e.g. "bankr") removed, as
    if it had never been inserted: the rest must then match the original
    byte for byte."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith('"%s": {' % member):
            indent = line[:len(line) - len(line.lstrip())]
            j = i
            while lines[j] not in (indent + "}", indent + "},"):
                j += 1
            last = not lines[j].endswith(",")
            del lines[i:j + 1]
            if last and lines[i - 1].endswith(","):
                lines[i - 1] = lines[i - 1][:-1]
            return "\n".join(lines)
    raise AssertionError("no %s block in %r" % (member, text))


def set_immutable(path, on):
    r = subprocess.run(["chattr", "+i" if on else "-i", path], capture_output=True)
    return r.returncode == 0


class SetupBase(unittest.TestCase):
    """One session per class (daemon, buses, polkit mock, gateway); each
    test starts from config directories that do not exist yet."""
    service_env = {"BANKR_LLM_KEY": KEY}

    @classmethod
    def setUpClass(cls):
        cls.env = Env(keyring=False, system_bus=True, service_env=cls.service_env)
        cls.env.start()
        try:
            cls.polkit = cls.env.start_polkitd()
            cls.env.write_service_file({"DBUS_SYSTEM_BUS_ADDRESS": cls.env.environ["DBUS_SYSTEM_BUS_ADDRESS"]})
            cls.env.start_service()
        except BaseException:
            cls.env.stop(check=False)
            raise
        cls.home = cls.env.home
        cls.openclaw_path = os.path.join(cls.home, ".openclaw", "openclaw.json")
        cls.opencode_dir = os.path.join(cls.home, ".config", "opencode")
        cls.opencode_path = os.path.join(cls.opencode_dir, "opencode.json")
        cls.bin = os.path.join(cls.env.dir, "bin")
        os.makedirs(cls.bin, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.polkit.stop()
        log = cls.env.log()
        cls.env.stop()
        assert KEY not in log, "the key is in the service log"

    def setUp(self):
        self.polkit.set_allowed([])
        self.polkit.clear_calls()
        self._immutable = []
        for d in (os.path.join(self.home, ".openclaw"), self.opencode_dir, os.path.join(self.home, "dotfiles"),
                  self.bin):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(self.bin)
        self.out = os.path.join(self.env.dir, "standin.json")
        if os.path.exists(self.out):
            os.unlink(self.out)

    def tearDown(self):
        for p in self._immutable:
            set_immutable(p, False)

    # ---- helpers ----------------------------------------------------------

    def try_setup(self, method, *args):
        """(True, results) or (False, (error name, message))."""
        return self.env.try_call("Setup", method, *args, signature=SIGNATURES[method])

    def preview(self, tool, **opts):
        ok, out = self.try_setup("Preview", tool, gv_options(**opts))
        self.assertTrue(ok, out)
        return tuple(out)

    def install(self, tool, **opts):
        ok, out = self.try_setup("Install", tool, gv_options(**opts))
        self.assertTrue(ok, out)
        return tuple(out)

    def install_error(self, tool, **opts):
        ok, out = self.try_setup("Install", tool, gv_options(**opts))
        self.assertFalse(ok, "Install succeeded: %s" % (out,))
        return out

    def write(self, path, data, mode=0o644):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(path, mode)

    def allow_reveal(self):
        self.polkit.set_allowed([REVEAL])

    def standin(self, name, exit_code=42):
        p = os.path.join(self.bin, name)
        with open(p, "w") as f:
            f.write(STANDIN)
        os.chmod(p, 0o755)
        return {"PATH": self.bin + ":/usr/bin:/bin", "STANDIN_OUT": self.out, "STANDIN_EXIT": str(exit_code)}

    def standin_record(self):
        with open(self.out) as f:
            return json.load(f)

    def require_models(self):
        """The model list comes from the Models module; wait for the live list."""
        if isinstance(self.env.call("org.freedesktop.DBus.Properties", "Get", "bot.bankr.LLM1.Models", "Live",
                                    check=False), DBusException):
            self.skipTest("the Models interface has no Live property yet")
        wait_until(lambda: self.env.get("Models", "Live"), timeout=10, what="the live model list")


class PreviewTest(SetupBase):
    def test_tools_property(self):
        self.assertEqual(self.env.get("Setup", "Tools"), ["openclaw", "opencode", "claude", "cursor"])
        r = self.env.run(["busctl", "--user", "introspect", "bot.bankr.LLM1", "/bot/bankr/LLM1", "bot.bankr.LLM1.Setup"],
                         check=True)
        self.assertRegex(r.stdout, r"\.Tools\s+property\s+as\s+.*const")
        for m in (".Preview", ".Install", ".Environment"):
            self.assertIn(m, r.stdout)

    def test_preview_openclaw_live(self):
        self.require_models()
        text, path = self.preview("openclaw")
        self.assertEqual(path, self.openclaw_path)
        doc = json.loads(text)
        self.assertEqual(list(doc), ["models"])
        bankr = doc["models"]["providers"]["bankr"]
        self.assertEqual(bankr["baseUrl"], self.env.gateway.url)
        self.assertEqual(bankr["apiKey"], "${BANKR_API_KEY}")
        self.assertEqual(bankr["api"], "openai-completions")
        ids = [m["id"] for m in bankr["models"]]
        self.assertEqual(ids, [m["id"] for m in self.env.gateway.models])
        for m in bankr["models"]:
            self.assertEqual(m.get("api") == "anthropic-messages", m["id"].startswith("claude-"), m)
            for field in ("name", "input", "contextWindow", "maxTokens", "cost"):
                self.assertIn(field, m)
        self.assertNotIn(KEY, text)
        self.assertEqual(self.polkit.check_calls(), [], "env mode must not ask polkit")

    def test_preview_opencode_live(self):
        self.require_models()
        text, path = self.preview("opencode", key="env")
        self.assertEqual(path, self.opencode_path)
        doc = json.loads(text)
        self.assertEqual(doc["$schema"], "https://opencode.ai/config.json")
        bankr = doc["provider"]["bankr"]
        self.assertEqual(bankr["npm"], "@ai-sdk/openai-compatible")
        self.assertEqual(bankr["options"], {"baseURL": self.env.gateway.url + "/v1", "apiKey": "{env:BANKR_API_KEY}"})
        self.assertEqual(list(bankr["models"]), [m["id"] for m in self.env.gateway.models])

    def test_preview_print_only_tools(self):
        text, path = self.preview("claude")
        self.assertEqual(path, "")
        self.assertIn('export ANTHROPIC_BASE_URL="%s"' % self.env.gateway.url, text)
        self.assertIn("ANTHROPIC_AUTH_TOKEN", text)
        self.assertNotIn(KEY, text)
        text, path = self.preview("cursor")
        self.assertEqual(path, "")
        self.assertIn(self.env.gateway.url + "/v1", text)
        self.assertNotIn(KEY, text)

    def test_preview_inline_needs_reveal_key(self):
        ok, (name, msg) = self.try_setup("Preview", "claude", gv_options(key="inline"))
        self.assertFalse(ok)
        self.assertEqual(name, NOT_AUTHORIZED)
        self.assertEqual([c["action"] for c in self.polkit.check_calls()], [REVEAL])
        self.allow_reveal()
        text, _ = self.preview("claude", key="inline")
        self.assertIn('export ANTHROPIC_AUTH_TOKEN="%s"' % KEY, text)
        text, _ = self.preview("openclaw", key="inline")
        self.assertEqual(json.loads(text)["models"]["providers"]["bankr"]["apiKey"], KEY)

    def test_bad_arguments(self):
        cases = [
            ("Preview", "vim", gv_options()),
            ("Preview", "openclaw", gv_options(key="plain")),
            ("Preview", "openclaw", gv_options(force=True)),
            ("Preview", "openclaw", gv_options(color="red")),
            ("Preview", "openclaw", gv_options(key=True)),
            ("Install", "openclaw", gv_options(force="yes")),
            ("Install", "openclaw", gv_options(key="")),
            ("Install", "openclaw", gv_options(mode="0600")),
            ("Install", "claude", gv_options()),
            ("Install", "cursor", gv_options()),
            ("Install", "", gv_options()),
        ]
        for method, tool, opts in cases:
            ok, out = self.try_setup(method, tool, opts)
            self.assertFalse(ok, (method, tool, opts, out))
            self.assertEqual(out[0], INVALID_ARGS, (method, tool, opts, out))
            self.assertTrue(out[1].split("\n")[0].endswith("."), out)
        ok, (name, msg) = self.try_setup("Install", "claude", gv_options())
        self.assertIn("prints instructions only", msg)
        ok, (name, msg) = self.try_setup("Environment", "openclaw")
        self.assertEqual(name, INVALID_ARGS)
        self.assertFalse(os.path.exists(self.openclaw_path))
        self.assertEqual(self.polkit.check_calls(), [], "bad arguments must not ask polkit")


class InstallTest(SetupBase):
    def test_fresh_home(self):
        for tool, path, top in (("openclaw", self.openclaw_path, os.path.join(self.home, ".openclaw")),
                                ("opencode", self.opencode_path, self.opencode_dir)):
            p, backup = self.install(tool)
            self.assertEqual(p, path)
            self.assertEqual(backup, "")
            self.assertEqual(mode_of(top), 0o700)
            self.assertEqual(mode_of(path), 0o600)
            text, _ = self.preview(tool)
            self.assertEqual(json.loads(read_bytes(path)), json.loads(text))
            self.assertNotIn(KEY.encode(), read_bytes(path))
            self.assertEqual(os.listdir(top), [os.path.basename(path)], "nothing else left behind")

    def test_existing_nested_settings_kept(self):
        original = json.dumps({
            "meta": {"lastTouchedVersion": "2026.1.5", "note": "caf\u00e9 \u2603"},
            "models": {
                "mode": "merge",
                "providers": {
                    "other": {"baseUrl": "http://127.0.0.1:1/v1", "models": [{"id": "x", "name": "X"}]},
                },
                "after": [1, 2, {"deep": {"deeper": [None, True, False]}}],
            },
            "agents": {"defaults": {"model": {"primary": "other/x"}, "workspace": "~/w"}},
            "zeta": [],
            "alpha": {},
        }, indent=2, ensure_ascii=False) + "\n"
        # Numbers keep their spelling: put a few in by hand.
        original = original.replace('"zeta": []', '"zeta": [\n    1.50,\n    1e3,\n    -0,\n    12345678901234567890\n  ]')
        self.write(self.openclaw_path, original, 0o640)
        before = ordered(original)

        path, backup = self.install("openclaw")
        after_text = read_bytes(path).decode()
        after = ordered(after_text)
        # Same members in the same order, with bankr added to the providers.
        self.assertEqual([k for k, _ in after], [k for k, _ in before])
        models = dict(after)["models"]
        self.assertEqual([k for k, _ in dict(models)["providers"]], ["other", "bankr"])
        # Everything but our entry is byte for byte what it was.
        self.assertEqual(remove_block(after_text, "bankr"), original)
        self.assertEqual(mode_of(path), 0o640, "the file's mode is kept with key=env")
        self.assertTrue(backup)
        self.assertEqual(read_bytes(backup).decode(), original)
        self.assertEqual(backups_of(path), [backup])

        # Our entry replaced in place, not duplicated or moved.
        self.write(self.opencode_path, json.dumps({"provider": {"a": {}, "bankr": {"old": 1}, "z": {}},
                                                   "theme": "dark"}, indent=2) + "\n", 0o600)
        path, _ = self.install("opencode")
        after = ordered(read_bytes(path).decode())
        self.assertEqual([k for k, _ in after], ["$schema", "provider", "theme"])
        prov = dict(after)["provider"]
        self.assertEqual([k for k, _ in prov], ["a", "bankr", "z"])
        self.assertNotIn("old", dict(dict(prov)["bankr"]))

    def test_second_install_is_idempotent(self):
        self.write(self.opencode_path, '{\n  "theme": "dark"\n}\n', 0o600)
        path, backup1 = self.install("opencode")
        first = read_bytes(path)
        self.assertTrue(backup1)
        st1 = os.stat(path)
        path, backup2 = self.install("opencode")
        self.assertEqual(backup2, "")
        self.assertEqual(read_bytes(path), first)
        self.assertEqual(backups_of(path), [backup1], "no new backup when nothing changed")
        self.assertEqual(os.stat(path).st_ino, st1.st_ino, "an unchanged file is not rewritten")

    def check_refused(self, path, content, *needles):
        self.write(path, content, 0o644)
        st = os.stat(path)
        name, msg = self.install_error("opencode" if "opencode" in path else "openclaw")
        self.assertEqual(name, INVALID_CONFIG, msg)
        self.assertIn(path, msg)
        self.assertIn("force", msg)
        for n in needles:
            self.assertIn(n, msg)
        self.assertEqual(read_bytes(path), content.encode() if isinstance(content, str) else content)
        st2 = os.stat(path)
        self.assertEqual((st2.st_ino, st2.st_mtime_ns, stat.S_IMODE(st2.st_mode)),
                         (st.st_ino, st.st_mtime_ns, 0o644))
        self.assertEqual(backups_of(path), [])
        self.assertEqual(os.listdir(os.path.dirname(path)), [os.path.basename(path)])
        return msg

    def test_too_large_refused_quickly(self):
        # Merging runs on the service's loop: a huge file would stall every
        # client, so files over the cap are refused, naming size and cap.
        big = '{"x": [%s]}\n' % ", ".join(["12345.678"] * 200000)  # 2.1 MiB
        self.write(self.opencode_path, big, 0o644)
        t = time.monotonic()
        name, msg = self.install_error("opencode")
        self.assertLess(time.monotonic() - t, 1.0)
        self.assertEqual(name, INVALID_CONFIG, msg)
        self.assertIn(self.opencode_path, msg)
        self.assertIn("2.1 MiB (%d bytes)" % len(big), msg)
        self.assertIn("up to 1 MiB", msg)
        self.assertEqual(read_bytes(self.opencode_path), big.encode())
        self.assertEqual(backups_of(self.opencode_path), [])

    def test_jsonc_and_json5_refused(self):
        self.check_refused(self.opencode_path, '{\n  // my theme\n  "theme": "dark",\n}\n')
        self.check_refused(self.openclaw_path, "{\n  agents: { defaults: { model: 'x' } },\n}\n")
        self.check_refused(self.openclaw_path, '{"models": []}\n')  # no place for a provider

    def test_garbage_with_and_without_force(self):
        garbage = b"\x00\x01 not json at all \xff\n"
        self.check_refused(self.openclaw_path, garbage)
        self.check_refused(self.opencode_path, "[1, 2, 3]\n")

        path, backup = self.install("openclaw", force=True)
        self.assertTrue(backup)
        self.assertEqual(read_bytes(backup), garbage)
        self.assertEqual(mode_of(backup), 0o644)
        text, _ = self.preview("openclaw")
        self.assertEqual(json.loads(read_bytes(path)), json.loads(text))

        path, backup = self.install("opencode", force=True)
        self.assertEqual(read_bytes(backup), b"[1, 2, 3]\n")
        self.assertEqual(list(json.loads(read_bytes(path))), ["$schema", "provider"])

    def test_read_only_directory(self):
        self.write(self.openclaw_path, '{\n  "x": 1\n}\n', 0o600)
        d = os.path.dirname(self.openclaw_path)
        if os.geteuid() == 0:
            if not set_immutable(d, True):
                self.skipTest("root without the immutable flag here")
            self._immutable.append(d)
        else:
            os.chmod(d, 0o500)
        try:
            name, msg = self.install_error("openclaw")
        finally:
            if os.geteuid() != 0:
                os.chmod(d, 0o700)
        self.assertEqual(name, ACCESS_DENIED, msg)
        self.assertIn(self.openclaw_path, msg)
        self.assertEqual(read_bytes(self.openclaw_path), b'{\n  "x": 1\n}\n')
        self.assertEqual(os.listdir(d), ["openclaw.json"])

    def test_symlinked_file(self):
        real = os.path.join(self.home, "dotfiles", "opencode.json")
        self.write(real, '{\n  "theme": "dark"\n}\n', 0o600)
        os.makedirs(self.opencode_dir, mode=0o700)
        os.symlink("../../dotfiles/opencode.json", self.opencode_path)
        path, backup = self.install("opencode")
        self.assertEqual(path, self.opencode_path)
        self.assertTrue(os.path.islink(self.opencode_path))
        self.assertEqual(os.readlink(self.opencode_path), "../../dotfiles/opencode.json")
        self.assertIn("bankr", json.loads(read_bytes(real))["provider"])
        self.assertEqual(os.path.dirname(backup), os.path.dirname(real))
        self.assertEqual(read_bytes(backup), b'{\n  "theme": "dark"\n}\n')

    def test_modes(self):
        self.write(self.openclaw_path, "{}\n", 0o644)
        self.install("openclaw")
        self.assertEqual(mode_of(self.openclaw_path), 0o644, "key=env keeps the mode")
        self.allow_reveal()
        self.install("openclaw", key="inline")
        self.assertEqual(mode_of(self.openclaw_path), 0o600, "an inline key makes it 0600")
        for b in backups_of(self.openclaw_path):
            self.assertNotIn(KEY.encode(), read_bytes(b))

    def test_inline_denied_changes_nothing(self):
        name, msg = self.install_error("openclaw", key="inline")
        self.assertEqual(name, NOT_AUTHORIZED)
        self.assertFalse(os.path.exists(os.path.dirname(self.openclaw_path)), "nothing created")
        self.write(self.opencode_path, '{\n  "theme": "dark"\n}\n', 0o644)
        name, msg = self.install_error("opencode", key="inline", force=True)
        self.assertEqual(name, NOT_AUTHORIZED)
        self.assertEqual(read_bytes(self.opencode_path), b'{\n  "theme": "dark"\n}\n')
        self.assertEqual(mode_of(self.opencode_path), 0o644)
        self.assertEqual(backups_of(self.opencode_path), [])

    def test_inline_allowed(self):
        self.allow_reveal()
        path, _ = self.install("opencode", key="inline")
        self.assertEqual(json.loads(read_bytes(path))["provider"]["bankr"]["options"]["apiKey"], KEY)
        self.assertEqual(mode_of(path), 0o600)
        calls = self.polkit.check_calls()
        self.assertEqual([c["action"] for c in calls], [REVEAL])
        self.assertEqual(calls[0]["subject_kind"], "unix-process")
        # Back to env: the key leaves the file, and no backup keeps it.
        path, backup = self.install("opencode")
        self.assertNotIn(KEY.encode(), read_bytes(path))
        self.assertTrue(backup)
        self.assertNotIn(KEY.encode(), read_bytes(backup))
        self.assertEqual(json.loads(read_bytes(backup))["provider"]["bankr"]["options"]["apiKey"], "{env:BANKR_API_KEY}")
        self.assertEqual(mode_of(backup), 0o600)
        self.assertEqual(self.env.files_containing(KEY), [])

    def test_no_backup_keeps_a_removed_key(self):
        self.allow_reveal()
        # OpenClaw: inline, then env.
        self.write(self.openclaw_path, '{\n  "theme": "dark"\n}\n', 0o644)
        self.install("openclaw", key="inline")
        self.install("openclaw")
        self.assertNotIn(KEY.encode(), read_bytes(self.openclaw_path))
        for b in backups_of(self.openclaw_path):
            self.assertNotIn(KEY.encode(), read_bytes(b), b)
        self.assertEqual(json.loads(read_bytes(self.openclaw_path))["theme"], "dark")
        # An old key the user wrote by hand, in a file replaced with --force (not JSON).
        old = "bk_handwritten_0123456789abc"
        self.write(self.opencode_path, '{ // mine\n  "provider": {"bankr": {"options": {"apiKey": "%s"}}},\n}\n' % old,
                   0o600)
        path, backup = self.install("opencode", force=True)
        self.assertTrue(backup)
        self.assertNotIn(old.encode(), read_bytes(backup))
        self.assertIn(b"// mine", read_bytes(backup))  # the rest of the old file is kept
        self.assertEqual(self.env.files_containing(KEY), [])
        self.assertEqual(self.env.files_containing(old), [])


class EnvironmentTest(SetupBase):
    def test_environment(self):
        ok, (name, _) = self.try_setup("Environment", "claude")
        self.assertEqual(name, NOT_AUTHORIZED)
        self.allow_reveal()
        ok, out = self.try_setup("Environment", "claude")
        self.assertTrue(ok, out)
        self.assertEqual(out[0], {"ANTHROPIC_BASE_URL": self.env.gateway.url, "ANTHROPIC_AUTH_TOKEN": KEY})
        ok, out = self.try_setup("Environment", "opencode")
        self.assertEqual(out[0], {"BANKR_API_KEY": KEY})


class CliSetupTest(SetupBase):
    def test_show(self):
        r = self.env.cli("setup", "openclaw")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)  # standard output is the config alone
        self.assertIn("bankr", doc["models"]["providers"])
        self.assertIn("bankr-llm setup openclaw --install", r.stderr)
        self.assertFalse(os.path.exists(self.openclaw_path))
        r = self.env.cli("setup", "claude")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ANTHROPIC_BASE_URL", r.stdout)

    def test_show_hint_from_models(self):
        self.require_models()
        r = self.env.cli("setup", "openclaw")
        self.assertIn("agents.defaults.model.primary", r.stderr)
        self.assertIn('"bankr/', r.stderr)

    def test_install_messages(self):
        r = self.env.cli("setup", "openclaw", "--install")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Created ~/.openclaw/openclaw.json.", r.stdout)
        self.assertIn("${BANKR_API_KEY}", r.stdout)
        r = self.env.cli("setup", "openclaw", "--install")
        self.assertIn("~/.openclaw/openclaw.json is already up to date.", r.stdout)
        with open(self.openclaw_path) as f:
            doc = json.load(f)
        doc["agents"] = {"defaults": {}}
        doc["models"]["providers"]["bankr"]["baseUrl"] = "http://127.0.0.1:9"  # an outdated entry
        self.write(self.openclaw_path, json.dumps(doc, indent=2) + "\n", 0o600)
        r = self.env.cli("setup", "openclaw", "--install")
        self.assertEqual(r.returncode, 0, r.stderr)
        backups = backups_of(self.openclaw_path)
        self.assertEqual(len(backups), 1, (r.stdout, os.listdir(os.path.dirname(self.openclaw_path))))
        backup = backups[0]
        self.assertIn("Updated ~/.openclaw/openclaw.json (previous version saved as ~/.openclaw/%s)."
                      % os.path.basename(backup), r.stdout)

    def test_usage_errors(self):
        for args in (["setup"], ["setup", "vim"], ["setup", "claude", "--install"], ["setup", "cursor", "--install"],
                     ["setup", "openclaw", "--key", "plain"], ["setup", "openclaw", "--force"],
                     ["setup", "openclaw", "opencode"]):
            r = self.env.cli(*args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), args)
        r = self.env.cli("setup", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--install", r.stdout)

    def test_install_refused_and_forced(self):
        self.write(self.opencode_path, "{ // jsonc\n}\n", 0o600)
        r = self.env.cli("setup", "opencode", "--install")
        self.assertEqual(r.returncode, 10, r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(read_bytes(self.opencode_path), b"{ // jsonc\n}\n")
        r = self.env.cli("setup", "opencode", "--install", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("previous version saved as", r.stdout)

    def test_install_inline_denied(self):
        r = self.env.cli("setup", "openclaw", "--install", "--key", "inline")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertFalse(os.path.exists(self.openclaw_path))
        self.allow_reveal()
        r = self.env.cli("setup", "openclaw", "--install", "--key", "inline")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(mode_of(self.openclaw_path), 0o600)
        self.assertNotIn("BANKR_API_KEY", r.stdout)


class LauncherTest(SetupBase):
    ARGS = ["--help", "-m", "bankr/claude-haiku-4.5", "--", "two words", "", "--key", "inline", "-p", "say \"hi\" $HOME"]

    def test_claude_passes_everything_through(self):
        self.allow_reveal()
        env = self.standin("claude")
        r = self.env.cli("claude", *self.ARGS, env=env)
        self.assertEqual(r.returncode, 42, r.stderr)
        rec = self.standin_record()
        self.assertEqual(rec["args"], self.ARGS)
        self.assertEqual(os.path.basename(rec["argv0"]), "claude")
        self.assertEqual(rec["env"]["ANTHROPIC_BASE_URL"], self.env.gateway.url)
        self.assertEqual(rec["env"]["ANTHROPIC_AUTH_TOKEN"], KEY)
        self.assertEqual(rec["env"]["STANDIN_OUT"], self.out, "the rest of the environment is kept")
        self.assertEqual(r.stdout, "")

    def test_exit_codes_propagate(self):
        self.allow_reveal()
        for code in (0, 1, 3):
            r = self.env.cli("claude", env=self.standin("claude", code))
            self.assertEqual(r.returncode, code, r.stderr)
            self.assertEqual(self.standin_record()["args"], [])

    def test_denied_means_no_launch(self):
        for tool in ("claude", "opencode"):
            env = self.standin(tool)
            r = self.env.cli(tool, "--version", env=env)
            self.assertEqual(r.returncode, 7, r.stderr)
            self.assertIn("not started", r.stderr)
            self.assertIn("Failed to get the key for %s" % tool, r.stderr)
            self.assertFalse(os.path.exists(self.out))

    def test_missing_binary(self):
        for tool, hint in (("claude", "npm install -g @anthropic-ai/claude-code"),
                           ("opencode", "npm install -g opencode-ai")):
            r = self.env.cli(tool, "--help", env={"PATH": self.bin})
            self.assertEqual(r.returncode, 127, r.stderr)
            self.assertIn(hint, r.stderr)
            self.assertIn("not installed", r.stderr)
        self.assertEqual(self.polkit.check_calls(), [], "no key is asked for a missing tool")
        self.assertFalse(os.path.exists(self.opencode_path), "nothing installed for a missing tool")

    def test_opencode_installs_provider_first(self):
        self.allow_reveal()
        env = self.standin("opencode", 0)
        r = self.env.cli("opencode", "run", "-m", "bankr/gpt-5-mini", "say hi", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Added the bankr provider", r.stderr)
        doc = json.loads(read_bytes(self.opencode_path))
        self.assertEqual(doc["provider"]["bankr"]["options"]["apiKey"], "{env:BANKR_API_KEY}")
        self.assertEqual(mode_of(self.opencode_path), 0o600)
        rec = self.standin_record()
        self.assertEqual(rec["args"], ["run", "-m", "bankr/gpt-5-mini", "say hi"])
        self.assertEqual(rec["env"]["BANKR_API_KEY"], KEY)
        # Present now: left alone, even when it differs from what we would write.
        doc["provider"]["bankr"]["options"]["apiKey"] = "mine"
        self.write(self.opencode_path, json.dumps(doc, indent=2) + "\n", 0o600)
        before = read_bytes(self.opencode_path)
        r = self.env.cli("opencode", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Added", r.stderr)
        self.assertEqual(read_bytes(self.opencode_path), before)

    def test_opencode_with_jsonc_config_still_launches(self):
        self.allow_reveal()
        content = b'{\n  // mine\n  "provider": { "bankr": {} },\n}\n'
        self.write(self.opencode_path, content, 0o600)
        r = self.env.cli("opencode", "--help", env=self.standin("opencode"))
        self.assertEqual(r.returncode, 42, r.stderr)
        self.assertIn("not strict JSON", r.stderr)
        self.assertEqual(read_bytes(self.opencode_path), content)
        self.assertEqual(self.standin_record()["args"], ["--help"])


class OpenclawConfigPathTest(SetupBase):
    """OPENCLAW_CONFIG_PATH in the service's environment, as OpenClaw reads it."""
    service_env = {"BANKR_LLM_KEY": KEY, "OPENCLAW_CONFIG_PATH": "~/custom/oc.json"}

    def test_config_path_override(self):
        custom = os.path.join(self.home, "custom", "oc.json")
        _, path = self.preview("openclaw")
        self.assertEqual(path, custom)
        path, _ = self.install("openclaw")
        self.assertEqual(path, custom)
        self.assertIn("bankr", json.loads(read_bytes(custom))["models"]["providers"])
        self.assertFalse(os.path.exists(self.openclaw_path))
        shutil.rmtree(os.path.dirname(custom))
        # busctl's own syntax works too (documented in docs/setup.md).
        r = self.env.busctl("call", "bot.bankr.LLM1", "/bot/bankr/LLM1", "bot.bankr.LLM1.Setup", "Install",
                            "sa{sv}", "openclaw", "0")
        self.assertIn(custom, r.stdout)

    def test_relative_config_path_refused(self):
        self.env.restart_service({"OPENCLAW_CONFIG_PATH": "relative/oc.json"})
        try:
            ok, (name, msg) = self.try_setup("Install", "openclaw", gv_options())
            self.assertFalse(ok)
            self.assertIn("not an absolute path", msg)
        finally:
            self.env.restart_service({"OPENCLAW_CONFIG_PATH": "~/custom/oc.json"})


class NoKeyTest(SetupBase):
    """No key anywhere: the catalog feeds the configs, nothing hands out a key."""
    service_env = {}

    def test_preview_uses_catalog(self):
        if isinstance(self.env.call("org.freedesktop.DBus.Properties", "Get", "bot.bankr.LLM1.Models", "Models",
                                    check=False), DBusException):
            self.skipTest("the Models interface has no Models property yet")
        text, _ = self.preview("opencode")
        with open(CATALOG) as f:
            catalog = [m["id"] for m in json.load(f)["data"]]
        self.assertEqual(list(json.loads(text)["provider"]["bankr"]["models"]), catalog)

    def test_no_key_errors(self):
        self.allow_reveal()
        for method, args in (("Environment", ["claude"]), ("Install", ["openclaw", gv_options(key="inline")]),
                             ("Preview", ["claude", gv_options(key="inline")])):
            ok, out = self.try_setup(method, *args)
            self.assertFalse(ok)
            self.assertEqual(out[0], NO_KEY, out)
            self.assertIn("bankr-llm key set", out[1])
        self.assertEqual(self.polkit.check_calls(), [], "no prompt when there is no key")
        self.assertFalse(os.path.exists(self.openclaw_path))
        # key=env works without a key.
        path, _ = self.install("openclaw")
        self.assertTrue(os.path.exists(path))

    def test_launcher_without_key(self):
        self.allow_reveal()
        r = self.env.cli("claude", env=self.standin("claude"))
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("not started", r.stderr)
        self.assertFalse(os.path.exists(self.out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
