#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the gateway offers beyond plain chat (issue 16), against a private bus,
the fake gateway (which behaves as the bankr skill reference says) and the built
daemon: privacy tiers (option, Chat.DefaultPrivacy, X-Privacy-Tier, 422 and 400,
fail-closed on a downgrade), deprecations (headers, Models.ModelDeprecated, 410,
follow_replacement), the two kinds of 402, images in (file descriptors) and
Images.Generate (sealed memfds)."""
import base64
import fcntl
import json
import os
import subprocess
import time
import unittest

import dbus

from harness import Env, SLOW, wait_until, OBJ
from fakegw import FakeGateway, Fault, TINY_PNG
from chatclient import ChatClient, run_until, spin, unwrap

KEY = FakeGateway.DEFAULT_KEY
E = "bot.bankr.LLM1.Error."
INVALID = "org.freedesktop.DBus.Error.InvalidArgs"
CHAT = "bot.bankr.LLM1.Chat"
MODELS = "bot.bankr.LLM1.Models"
IMAGES = "bot.bankr.LLM1.Images"
F_GET_SEALS = 1034
SEALS = 0x0001 | 0x0002 | 0x0004 | 0x0008  # SEAL, SHRINK, GROW, WRITE
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32


class Base(unittest.TestCase):
    def setUp(self):
        self.env = Env(keyring=False, service_env={"BANKR_LLM_KEY": KEY, "BANKR_LLMD_RETRY_BASE_MS": "20"})
        self.env.start()
        self.gw = self.env.gateway
        self.c = ChatClient(self.env)
        self.props = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), "org.freedesktop.DBus.Properties")
        self.fds = []

    def tearDown(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.c.close()
        res = getattr(self._outcome, "result", None)
        self.env.stop(check=not (res and (res.failures or res.errors)))

    def assertBusError(self, name, fn, *args, **kw):
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.get_dbus_name(), name, cm.exception.get_dbus_message())
        return cm.exception.get_dbus_message()

    def complete(self, model="gpt-5-mini", msgs=(("user", "hello"),), opts=None):
        return self.c.complete(model, list(msgs), opts)

    def chat_bodies(self):
        return [r.json for r in self.gw.requests if r.endpoint in ("chat", "messages")]

    def file_fd(self, data, name="img"):
        path = os.path.join(self.env.dir, "tmp", name)
        with open(path, "wb") as f:
            f.write(data)
        fd = os.open(path, os.O_RDONLY)
        self.fds.append(fd)
        return fd

    def images_opt(self, *pairs):
        return dbus.Array([dbus.Struct((dbus.UInt32(i), dbus.types.UnixFd(fd)), signature="uh") for i, fd in pairs],
                          signature="(uh)")


class Privacy(Base):
    def test_option_goes_out_and_tier_is_reported(self):
        text, info = self.complete("claude-haiku-4.5", opts={"privacy": "zdr"})
        self.assertEqual(self.chat_bodies()[-1].get("privacy"), "zdr")
        self.assertEqual(info["privacy_tier"], "zdr")
        text, info = self.complete("claude-haiku-4.5")
        self.assertNotIn("privacy", self.chat_bodies()[-1])
        self.assertEqual(info["privacy_tier"], "standard")

    def test_unknown_tier_is_refused_and_nothing_sent(self):
        msg = self.assertBusError(INVALID, self.complete, opts={"privacy": "zdrr"})
        self.assertIn('"zdr"', msg)
        self.assertEqual(self.chat_bodies(), [])

    def test_zdr_unavailable_says_what_to_do(self):
        msg = self.assertBusError(INVALID, self.complete, "gpt-5-mini", opts={"privacy": "zdr"})
        self.assertIn("bankr-llm models --zdr", msg)
        self.assertIn("never downgrades", msg)

    def test_zdr_unavailable_moves_on_to_a_fallback_at_the_same_tier(self):
        text, info = self.complete("gpt-5-mini", opts={"privacy": "zdr", "fallback_models": ["deepseek-v3.2"]})
        self.assertEqual(info["privacy_tier"], "zdr")
        self.assertEqual([b["privacy"] for b in self.chat_bodies()], ["zdr", "zdr"])

    def test_model_suffix_counts(self):
        text, info = self.complete("deepseek-v3.2:private")
        self.assertEqual(info["privacy_tier"], "private")

    def test_downgraded_answer_is_discarded(self):
        self.gw.push_fault("chat", Fault(headers={"X-Privacy-Tier": "standard"}))
        msg = self.assertBusError(E + "GatewayError", self.complete, "deepseek-v3.2", opts={"privacy": "zdr"})
        self.assertIn("discarded", msg)

    def test_default_privacy_persists_and_stronger_wins(self):
        settings = os.path.join(self.env.home, ".config", "bankr-llm", "settings.json")
        os.makedirs(os.path.dirname(settings), exist_ok=True)
        with open(settings, "w") as f:
            json.dump({"low_threshold_usd": 3.5}, f)
        self.env.restart_service()
        self.c.close()
        self.c = ChatClient(self.env)
        self.props = dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), "org.freedesktop.DBus.Properties")
        self.assertEqual(self.props.Get(CHAT, "DefaultPrivacy"), "standard")
        self.props.Set(CHAT, "DefaultPrivacy", "zdr")
        with open(settings) as f:
            saved = json.load(f)
        self.assertEqual(saved, {"low_threshold_usd": 3.5, "default_privacy": "zdr"})
        text, info = self.complete("deepseek-v3.2")
        self.assertEqual(self.chat_bodies()[-1]["privacy"], "zdr")
        # An option cannot weaken it; a stronger one wins.
        self.complete("deepseek-v3.2", opts={"privacy": "standard"})
        self.assertEqual(self.chat_bodies()[-1]["privacy"], "zdr")
        text, info = self.complete("deepseek-v3.2", opts={"privacy": "private"})
        self.assertEqual(info["privacy_tier"], "private")
        self.assertBusError(INVALID, self.props.Set, CHAT, "DefaultPrivacy", "secret")
        self.env.restart_service()
        props = dbus.Interface(dbus.bus.BusConnection(self.env.bus_address).get_object("bot.bankr.LLM1", OBJ),
                               "org.freedesktop.DBus.Properties")
        self.assertEqual(props.Get(CHAT, "DefaultPrivacy"), "zdr")

    def test_tier_endpoint_conflict(self):
        self.env.restart_service({"BANKR_LLM_URL": self.gw.url + "/zdr"})
        c = ChatClient(self.env)
        try:
            # The same tier as the endpoint: no field, no conflict.
            text, info = c.complete("deepseek-v3.2", [("user", "hi")], {"privacy": "zdr"})
            self.assertEqual(info["privacy_tier"], "zdr")
            self.assertNotIn("privacy", self.chat_bodies()[-1])
            self.assertEqual(self.gw.requests[-1].path_tier, "zdr")
            with self.assertRaises(dbus.exceptions.DBusException) as cm:
                c.complete("deepseek-v3.2", [("user", "hi")], {"privacy": "private"})
            self.assertEqual(cm.exception.get_dbus_name(), INVALID)
            self.assertIn("tier endpoint", cm.exception.get_dbus_message())
        finally:
            c.close()


class Deprecation(Base):
    def test_headers_info_signal_once_and_models_dict(self):
        seen = []
        self.c.bus.add_signal_receiver(lambda i, r: seen.append((str(i), str(r))), signal_name="ModelDeprecated",
                                       dbus_interface=MODELS)
        self.gw.deprecated = {"gpt-5-mini": "gpt-5.4"}
        for _ in range(2):
            text, info = self.complete("gpt-5-mini")
            self.assertTrue(info["deprecated"])
            self.assertEqual(info["replacement"], "gpt-5.4")
        run_until(lambda: seen, 5)
        spin(0.3)
        self.assertEqual(seen, [("gpt-5-mini", "gpt-5.4")])
        m = unwrap(dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), MODELS).Get("gpt-5-mini"))
        self.assertEqual((m["deprecated"], m["replacement"]), (True, "gpt-5.4"))
        text, info = self.complete("claude-haiku-4.5")
        self.assertFalse(info["deprecated"])
        self.assertEqual(info["replacement"], "")

    def test_retired_names_replacement_and_follow(self):
        self.gw.retired = {"gpt-5-mini": "deepseek-v3.2"}
        msg = self.assertBusError(E + "ModelRetired", self.complete, "gpt-5-mini")
        self.assertIn('"deepseek-v3.2"', msg)
        self.assertIn("follow_replacement", msg)
        n = len(self.chat_bodies())
        text, info = self.complete("gpt-5-mini", opts={"follow_replacement": True})
        self.assertEqual(info["model"], "deepseek-v3.2")
        self.assertEqual([b["model"] for b in self.chat_bodies()[n:]], ["gpt-5-mini", "deepseek-v3.2"])

    def test_retired_without_replacement(self):
        self.gw.retired = {"gpt-5-mini": None}
        msg = self.assertBusError(E + "ModelRetired", self.complete, "gpt-5-mini", opts={"follow_replacement": True})
        self.assertIn("no replacement", msg)


class Budget(Base):
    def credits_state(self):
        return str(self.props.Get("bot.bankr.LLM1.Credits", "State"))

    def test_daily_budget_is_not_exhausted_credits(self):
        wait_until(lambda: self.credits_state() == "ok", 10 * SLOW, what="credits ok")
        self.gw.daily_budget = {"retry_after": 600}
        msg = self.assertBusError(E + "DailyBudgetExceeded", self.complete)
        self.assertIn("top-up does not help", msg)
        self.assertIn("10 minutes", msg)
        self.assertEqual(len(self.chat_bodies()), 1)  # no retry, no fallback
        time.sleep(0.3)
        self.assertEqual(self.credits_state(), "ok")

    def test_daily_budget_reset_in_body_and_anthropic(self):
        self.gw.daily_budget = {"resets_at": "2026-12-02T09:00:00Z"}
        msg = self.assertBusError(E + "DailyBudgetExceeded", self.complete, "claude-haiku-4.5")
        self.assertIn("2026-12-02T09:00:00Z", msg)

    def test_daily_budget_without_a_reset_time(self):
        self.gw.daily_budget = {}
        msg = self.assertBusError(E + "DailyBudgetExceeded", self.complete)
        self.assertIn("trailing 24 hours", msg)

    def test_daily_budget_as_a_code_beside_another_type(self):
        body = json.dumps({"error": {"message": "Over budget", "type": "insufficient_quota",
                                     "code": "daily_budget_exceeded"}})
        self.gw.push_fault("chat", Fault(status=402, body=body))
        self.assertBusError(E + "DailyBudgetExceeded", self.complete)

    def test_insufficient_credits_marks_exhausted(self):
        wait_until(lambda: self.credits_state() == "ok", 10 * SLOW, what="credits ok")
        self.gw.balance = 0
        self.assertBusError(E + "PaymentRequired", self.complete)
        wait_until(lambda: self.credits_state() == "exhausted", 5 * SLOW, what="exhausted")


class ImagesIn(Base):
    def test_openai_data_url(self):
        fd = self.file_fd(TINY_PNG)
        self.complete("gemini-3-flash", msgs=[("system", "s"), ("user", "what is this?")],
                      opts={"images": self.images_opt((1, fd))})
        content = self.chat_bodies()[-1]["messages"][1]["content"]
        self.assertEqual(content[0], {"type": "text", "text": "what is this?"})
        self.assertEqual(content[1]["type"], "image_url")
        self.assertEqual(content[1]["image_url"]["url"],
                         "data:image/png;base64," + base64.b64encode(TINY_PNG).decode())

    def test_anthropic_block_and_pipe(self):
        r, w = os.pipe()
        os.write(w, JPEG)
        os.close(w)
        self.fds.append(r)
        self.complete("claude-haiku-4.5", msgs=[("system", "s"), ("user", "look")],
                      opts={"images": self.images_opt((1, r))})
        msgs = self.chat_bodies()[-1]["messages"]
        self.assertEqual(len(msgs), 1)  # the system message went to "system"
        self.assertEqual(msgs[0]["content"][0], {"type": "image", "source": {
            "type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(JPEG).decode()}})
        self.assertEqual(msgs[0]["content"][1], {"type": "text", "text": "look"})

    def test_bad_input_is_refused_before_sending(self):
        text_fd = self.file_fd(b"just some text, not an image", "t.png")
        msg = self.assertBusError(INVALID, self.complete, "gemini-3-flash", opts={"images": self.images_opt((0, text_fd))})
        self.assertIn("not a PNG, JPEG, GIF or WebP", msg)
        good = self.file_fd(TINY_PNG)
        msg = self.assertBusError(INVALID, self.complete, "gemini-3-flash", opts={"images": self.images_opt((3, good))})
        self.assertIn("only 1 messages", msg)
        path = os.path.join(self.env.dir, "tmp", "big.png")
        with open(path, "wb") as f:
            f.write(TINY_PNG)
            f.truncate(21 * 1024 * 1024)
        big = os.open(path, os.O_RDONLY)
        self.fds.append(big)
        msg = self.assertBusError(E + "LimitExceeded", self.complete, "gemini-3-flash",
                                  opts={"images": self.images_opt((0, big))})
        self.assertIn("20 MiB", msg)
        msg = self.assertBusError(INVALID, self.complete, "gpt-5-mini", opts={"images": self.images_opt((0, good))})
        self.assertIn("does not take images", msg)
        r, w = os.pipe()
        os.write(w, TINY_PNG)  # the writer has not finished
        self.fds += [r, w]
        msg = self.assertBusError(INVALID, self.complete, "gemini-3-flash", opts={"images": self.images_opt((0, r))})
        self.assertIn("close your end", msg)
        self.assertEqual(self.chat_bodies(), [])
        # Nothing was lost: the same fd works in the next call.
        self.complete("gemini-3-flash", opts={"images": self.images_opt((0, good))})


class ImagesOut(Base):
    def generate(self, model, prompt, opts=None, bus=None):
        im = dbus.Interface((bus or self.c.bus).get_object("bot.bankr.LLM1", OBJ), IMAGES)
        fds, info = im.Generate(model, prompt, dbus.Dictionary(opts or {}, signature="sv"), timeout=60)
        return [f.take() for f in fds], unwrap(info)

    def test_sealed_memfds_and_cost(self):
        self.gw.models = self.gw.models + [{"id": "gpt-image-2", "owned_by": "openai", "name": "GPT Image 2",
                                            "input_modalities": ["text", "image"], "output_modalities": ["image"],
                                            "pricing": {"input": 5, "output": 0, "image_output": 0.04}}]
        dbus.Interface(self.c.bus.get_object("bot.bankr.LLM1", OBJ), MODELS).Refresh()
        fds, info = self.generate("", "a neon city", {"n": dbus.UInt32(2), "size": "1024x1024"})
        self.fds += fds
        self.assertEqual(len(fds), 2)
        for fd in fds:
            self.assertEqual(os.pread(fd, 1 << 20, 0), TINY_PNG)
            self.assertEqual(fcntl.fcntl(fd, F_GET_SEALS) & SEALS, SEALS)
        self.assertEqual(info["model"], "gpt-image-2")
        self.assertAlmostEqual(info["cost_usd"], 0.08)
        self.assertEqual(info["mime_types"], ["image/png", "image/png"])
        body = [r.json for r in self.gw.requests_for("images")][-1]
        self.assertEqual(body, {"model": "gpt-image-2", "prompt": "a neon city", "n": 2, "size": "1024x1024"})

    def test_bad_arguments(self):
        self.assertBusError(INVALID, self.generate, "gpt-5-mini", "a cat")
        self.assertBusError(INVALID, self.generate, "gpt-image-2", "  ")
        self.assertBusError(INVALID, self.generate, "gpt-image-2", "a cat", {"n": dbus.UInt32(5)})
        self.assertBusError(INVALID, self.generate, "gpt-image-2", "a cat", {"privacy": "max"})
        self.assertEqual(self.gw.requests_for("images"), [])

    def test_daily_budget_and_privacy(self):
        fds, info = self.generate("gpt-image-2", "a cat", {"privacy": "zdr"})
        self.fds += fds
        self.assertEqual(info["privacy_tier"], "zdr")
        self.gw.daily_budget = {}
        self.assertBusError(E + "DailyBudgetExceeded", self.generate, "gpt-image-2", "a cat")

    def test_caller_leaving_cancels(self):
        self.gw.push_fault("images", Fault(delay=30))
        p = subprocess.Popen(["gdbus", "call", "--session", "--dest", "bot.bankr.LLM1", "--object-path", OBJ,
                              "--method", IMAGES + ".Generate", "gpt-image-2", "a cat", "{}"],
                             env=dict(self.env.environ, DBUS_SESSION_BUS_ADDRESS=self.env.bus_address),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(self.gw.wait_for(lambda: self.gw.requests_for("images"), 10 * SLOW), "no image request")
            p.kill()
            p.wait()
            self.assertTrue(self.gw.wait_for(lambda: any(d.endpoint == "images" for d in self.gw.disconnects),
                                             10 * SLOW), "the transfer was not cut")
        finally:
            if p.poll() is None:
                p.kill()
        # The service is still fine.
        self.assertEqual(self.props.Get(CHAT, "ActiveRequests"), 0)


class Cli(Base):
    def test_chat_privacy_attach_and_deprecation_warning(self):
        path = os.path.join(self.env.dir, "tmp", "shot.png")
        with open(path, "wb") as f:
            f.write(TINY_PNG)
        self.gw.deprecated = {"gemini-3-flash": "gemini-3.8-flash"}
        r = self.env.cli("chat", "-m", "gemini-3-flash", "--privacy", "standard", "--attach", path, "--attach", path,
                         "what", "is", "this")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deprecated; use gemini-3.8-flash instead", r.stderr)
        content = self.chat_bodies()[-1]["messages"][0]["content"]
        self.assertEqual([p["type"] for p in content], ["text", "image_url", "image_url"])
        r = self.env.cli("chat", "--privacy", "max", "hi")
        self.assertEqual(r.returncode, 2)
        r = self.env.cli("chat", "--attach", path + ".missing", "hi")
        self.assertEqual(r.returncode, 2)
        self.assertIn("Cannot open", r.stderr)
        bad = os.path.join(self.env.dir, "tmp", "notes.png")
        with open(bad, "w") as f:
            f.write("not an image")
        r = self.env.cli("chat", "-m", "gemini-3-flash", "--attach", bad, "hi")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a PNG, JPEG, GIF or WebP", r.stderr)

    def test_image_verb(self):
        out = os.path.join(self.env.dir, "tmp", "cat.png")
        r = self.env.cli("image", "-o", out, "-n", "2", "a", "cat")
        self.assertEqual(r.returncode, 0, r.stderr)
        for n in ("cat-1.png", "cat-2.png"):
            with open(os.path.join(self.env.dir, "tmp", n), "rb") as f:
                self.assertEqual(f.read(), TINY_PNG)
        r = self.env.cli("image", "a", "cat")
        self.assertEqual(r.returncode, 2)
        self.gw.daily_budget = {}
        r = self.env.cli("image", "-o", out, "a", "cat")
        self.assertEqual(r.returncode, 6)
        self.assertIn("top-up does not help", r.stderr)

    def test_models_zdr(self):
        r = self.env.cli("models", "--zdr")
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [l.split()[0] for l in r.stdout.splitlines()[1:] if l.strip() and " from " not in l]
        self.assertEqual(sorted(ids), ["claude-haiku-4.5", "deepseek-v3.2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
