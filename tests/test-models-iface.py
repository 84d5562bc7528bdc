#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bot.bankr.LLM1.Models and "bankr-llm models" against a private bus, the real
keyring, the fake gateway and the built daemon: the live list, the cache
across restarts, the catalog without a key, background refreshes, and every
fault of the fake gateway (the service stays up, the old list is kept and the
error names the cause)."""
import json
import os
import subprocess
import time
import unittest

from busmonitor import BusMonitor
from fakegw import FakeGateway, Fault
from harness import Env, TestCase, wait_until, busctl_plain, CATALOG, SLOW

KEY = FakeGateway.DEFAULT_KEY
ERR = "bot.bankr.LLM1.Error."

# Short timeouts keep the fault cases quick; documented in docs/performance.md
# and docs/architecture.md.
FAST = {"BANKR_LLMD_FETCH_TIMEOUT_MS": str(int(1500 * SLOW))}


def catalog_ids():
    with open(CATALOG) as f:
        return [m["id"] for m in json.load(f)["data"]]


class ModelsTest(TestCase):
    service_env = {"BANKR_LLM_KEY": KEY, **FAST}
    keyring = True

    def setUp(self):
        self.env_args = {"service_env": self.service_env, "keyring": self.keyring}
        super().setUp()
        self.gw = self.env.gateway

    def models(self):
        return busctl_plain(self.env.get("Models", "Models"))

    def ids(self):
        return [m["id"] for m in self.models()]

    def wait_live(self):
        self.env.start_service()
        wait_until(lambda: self.env.get("Models", "Live"), what="a live model list")

    def assertAlive(self):
        self.env.call("org.freedesktop.DBus.Peer", "Ping")

    def assertNoKeyLeak(self):
        self.assertNotIn(KEY, self.env.log())
        self.assertEqual(self.env.files_containing(KEY), [])


class Live(ModelsTest):
    def test_live_list(self):
        self.wait_live()
        models = self.models()
        self.assertEqual([m["id"] for m in models], [m["id"] for m in self.gw.models])
        haiku = next(m for m in models if m["id"] == "claude-haiku-4.5")
        self.assertEqual(haiku, {
            "id": "claude-haiku-4.5", "name": "Claude Haiku 4.5", "provider": "anthropic", "api": "anthropic",
            "context_window": 200000, "max_output_tokens": 64000, "input": ["text", "image"],
            "pricing": {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25},
            "output": ["text"], "zdr": True, "private": False})
        self.assertEqual(next(m for m in models if m["id"] == "gpt-5-mini")["api"], "openai")
        updated = self.env.get("Models", "UpdatedAt")
        self.assertLess(abs(updated / 1e6 - time.time()), 60)

        reqs = self.gw.requests_for("models")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0].headers.get("x-api-key"), KEY)
        self.assertTrue(reqs[0].headers.get("user-agent", "").startswith("bankr-llmd/"))

        # The cache: written atomically, with the fetch time and the gateway.
        with open(os.path.join(self.env.cache_dir, "models.json")) as f:
            cache = json.load(f)
        self.assertEqual(cache["fetched_at"], updated)
        self.assertEqual(cache["gateway_url"], self.gw.url)
        self.assertEqual([m["id"] for m in cache["data"]], self.ids())
        self.assertEqual([n for n in os.listdir(self.env.cache_dir) if n != "models.json"], [])
        self.assertNoKeyLeak()

    def test_missing_fields_filled_from_catalog_and_defaults(self):
        self.gw.models = [{"id": "claude-opus-4.6", "owned_by": "anthropic"},
                          {"id": "brand-new", "display_name": "Brand New"}]
        self.wait_live()
        opus, new = self.models()
        self.assertEqual(opus["name"], "Claude Opus 4.6")
        self.assertEqual(opus["context_window"], 1000000)
        self.assertEqual(opus["pricing"]["output"], 25.0)
        self.assertEqual(new["name"], "Brand New")
        self.assertEqual(new["context_window"], 128000)
        self.assertEqual(new["max_output_tokens"], 32768)
        self.assertEqual(new["input"], ["text"])
        self.assertEqual(new["pricing"], {"input": 0.0, "output": 0.0, "cache_read": 0.0, "cache_write": 0.0})

    def test_get(self):
        self.wait_live()
        (m,) = self.env.call("Models", "Get", "gpt-5-mini")
        self.assertEqual(busctl_plain(m)["name"], "GPT 5 Mini")
        ok, (name, msg) = self.env.try_call("Models", "Get", "gpt5-mini")
        self.assertFalse(ok)
        self.assertEqual(name, ERR + "ModelNotFound")
        self.assertIn('"gpt-5-mini"', msg)
        self.assertIn("gpt5-mini", msg)
        ok, (name, msg) = self.env.try_call("Models", "Get", "zzzzzzzzzzzzzzzzzzzz")
        self.assertEqual(name, ERR + "ModelNotFound")
        self.assertIn("bankr-llm models", msg)
        ok, (name, msg) = self.env.try_call("Models", "Get", "")
        self.assertEqual(name, "org.freedesktop.DBus.Error.InvalidArgs")

    def test_refresh_and_changes_only_when_the_list_changed(self):
        self.wait_live()
        with BusMonitor(self.env) as mon:
            self.assertEqual(self.env.call("Models", "Refresh"), [True])
            mon.wait_for("'UpdatedAt'")
            mon.settle()
            self.assertEqual([l for l in mon.changed("Models") if "'Models'" in l], [])
            self.gw.models = self.gw.models[:2]
            self.assertEqual(self.env.call("Models", "Refresh"), [True])
            mon.wait_for("{'Models'")
            mon.settle()
            self.assertEqual(len([l for l in mon.changed("Models") if "'Models'" in l]), 1)
        self.assertEqual(len(self.ids()), 2)

    def test_concurrent_refresh_calls_share_one_fetch(self):
        self.wait_live()
        self.gw.clear_requests()
        self.gw.push_fault("models", Fault(delay=0.5))
        argv = ["busctl", "--user", "call", "bot.bankr.LLM1", "/bot/bankr/LLM1", "bot.bankr.LLM1.Models", "Refresh"]
        procs = [subprocess.Popen(argv, env=self.env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(5)]
        outs = [p.communicate(timeout=30) for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 5, outs)
        self.assertEqual(len(self.gw.requests_for("models")), 1)

    def test_background_refresh_after_ttl(self):
        self.env.restart_service({"BANKR_LLMD_MODELS_TTL_MS": str(int(800 * SLOW))})
        wait_until(lambda: self.env.get("Models", "Live"), what="a live list")
        self.gw.models = self.gw.models[:1]
        wait_until(lambda: len(self.ids()) == 1, timeout=10, what="the background refresh")
        n = len(self.gw.requests_for("models"))
        time.sleep(2 * SLOW)
        # Re-armed for the next TTL each time: a steady trickle, not a storm.
        self.assertLessEqual(len(self.gw.requests_for("models")) - n, 4)
        self.assertGreaterEqual(len(self.gw.requests_for("models")) - n, 1)


class Cache(ModelsTest):
    def test_cached_list_after_restart_with_gateway_down(self):
        self.wait_live()
        before = self.models()
        updated = self.env.get("Models", "UpdatedAt")
        self.env.stop_service()
        self.gw.stop()  # connection refused from now on
        self.env.start_service()
        # Served at once from the cache, not live, with the old fetch time.
        self.assertEqual(self.models(), before)
        self.assertFalse(self.env.get("Models", "Live"))
        self.assertEqual(self.env.get("Models", "UpdatedAt"), updated)
        r = self.env.cli("models")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"5 models from http://127\.0\.0\.1:\d+ \(cached, \d+ min old\)")
        # Refresh fails, names the cause, keeps the list.
        ok, (name, msg) = self.env.try_call("Models", "Refresh")
        self.assertEqual(name, ERR + "GatewayUnavailable")
        self.assertIn("Cannot reach the gateway at", msg)
        self.assertEqual(self.models(), before)
        r = self.env.cli("models", "--refresh")
        self.assertEqual(r.returncode, 8)
        self.assertIn("Failed to refresh the model list: Cannot reach the gateway", r.stderr)
        self.assertIn("claude-haiku-4.5", r.stdout)

    def test_fresh_cache_is_not_refetched_at_start(self):
        self.wait_live()
        self.env.stop_service()
        self.gw.clear_requests()
        self.env.start_service()
        time.sleep(0.5 * SLOW)
        self.assertEqual(self.gw.requests_for("models"), [])
        self.assertFalse(self.env.get("Models", "Live"))

    def test_stale_cache_is_refreshed_in_the_background(self):
        self.wait_live()
        self.env.stop_service()
        path = os.path.join(self.env.cache_dir, "models.json")
        with open(path) as f:
            cache = json.load(f)
        cache["fetched_at"] -= 2 * 3600 * 1000000
        cache["data"] = cache["data"][:1]
        with open(path, "w") as f:
            json.dump(cache, f)
        self.env.start_service()
        wait_until(lambda: self.env.get("Models", "Live"), what="the background refresh")
        self.assertEqual(len(self.ids()), 5)

    def test_cache_from_another_gateway_is_refreshed(self):
        self.wait_live()
        self.env.stop_service()
        path = os.path.join(self.env.cache_dir, "models.json")
        with open(path) as f:
            cache = json.load(f)
        cache["gateway_url"] = "http://127.0.0.1:9"
        with open(path, "w") as f:
            json.dump(cache, f)
        self.gw.clear_requests()
        self.env.start_service()
        wait_until(lambda: self.env.get("Models", "Live"), what="a refetch")
        self.assertEqual(len(self.gw.requests_for("models")), 1)

    def test_broken_cache_is_ignored(self):
        os.makedirs(self.env.cache_dir, exist_ok=True)
        with open(os.path.join(self.env.cache_dir, "models.json"), "w") as f:
            f.write('{"fetched_at": 5, "data": [')
        self.wait_live()
        self.assertIn("Ignoring the model cache", self.env.log())
        self.assertEqual(len(self.ids()), 5)


class NoKey(ModelsTest):
    service_env = {"BANKR_LLMD_MODELS_TTL_MS": "200", "BANKR_LLMD_CREDITS_INTERVAL_MS": "200", **FAST}

    def test_catalog_without_key_and_no_traffic(self):
        self.env.start_service()
        self.assertEqual(self.ids(), catalog_ids())
        self.assertFalse(self.env.get("Models", "Live"))
        self.assertEqual(self.env.get("Models", "UpdatedAt"), 0)
        ok, (name, msg) = self.env.try_call("Models", "Refresh")
        self.assertEqual(name, ERR + "NoKey")
        self.assertIn("bankr-llm key set", msg)
        r = self.env.cli("models")
        self.assertEqual(r.returncode, 0)
        self.assertIn("(built-in catalog)", r.stdout)
        self.assertIn("claude-opus-4.6", r.stdout)
        time.sleep(1.5 * SLOW)  # many TTLs and credit intervals
        self.assertEqual(self.gw.requests, [])

    def test_key_set_fetches_and_clear_goes_back_to_the_catalog(self):
        self.env.start_service()
        with BusMonitor(self.env) as mon:
            self.env.call("Key", "Set", KEY, "llm")
            wait_until(lambda: self.env.get("Models", "Live"), what="a live list after Key.Set")
            self.assertEqual(len(self.ids()), 5)
            self.env.call("Key", "Clear", "llm")
            wait_until(lambda: not self.env.get("Models", "Live"), what="the catalog after Key.Clear")
            self.assertEqual(self.ids(), catalog_ids())
            mon.settle()
            self.assertGreaterEqual(len([l for l in mon.changed("Models") if "'Models'" in l]), 2)
        n = len(self.gw.requests)
        time.sleep(1 * SLOW)
        self.assertEqual(len(self.gw.requests), n, "background traffic after the key was cleared")


class Catalog(ModelsTest):
    service_env = {}

    def test_missing_catalog_serves_an_empty_list(self):
        self.env.restart_service({"BANKR_LLMD_CATALOG": "/nonexistent/models.json"})
        self.assertEqual(self.models(), [])
        self.assertIn("model catalog /nonexistent/models.json", self.env.log())
        r = self.env.cli("models")
        self.assertEqual(r.returncode, 0)
        self.assertIn("No models", r.stdout)
        self.assertAlive()

    def test_broken_catalog_serves_an_empty_list(self):
        path = os.path.join(self.env.dir, "broken.json")
        with open(path, "w") as f:
            f.write('{"data": {"oops": 1}}')
        self.env.restart_service({"BANKR_LLMD_CATALOG": path})
        self.assertEqual(self.models(), [])
        self.assertIn("Ignoring the model catalog", self.env.log())
        self.assertAlive()


# (fault, error name, words the message must contain)
FAULTS = [
    ("401", lambda: Fault.http(401, "Invalid API key"), "Unauthorized", ["rejected the key (401)", "Invalid API key"]),
    ("403", lambda: Fault.http(403, "Key disabled"), "Unauthorized", ["(403)", "Key disabled"]),
    ("401-quoting-the-key", lambda: Fault.http(401, "Invalid API key %s" % KEY), "Unauthorized",
     ["Invalid API key ***."]),
    ("402", lambda: Fault.http(402), "PaymentRequired", ["(402)", "bankr-llm credits add"]),
    ("429", lambda: Fault.http(429), "RateLimited", ["429"]),
    ("500", lambda: Fault.http(500, "boom inside"), "GatewayUnavailable", ["HTTP 500", "boom inside"]),
    ("503", lambda: Fault.http(503), "GatewayUnavailable", ["HTTP 503"]),
    ("404", lambda: Fault.http(404, "no such route"), "GatewayError", ["HTTP 404", "no such route"]),
    ("html-502", lambda: Fault.html(502), "GatewayUnavailable", ["HTTP 502"]),
    ("html-200", lambda: Fault.html(200), "GatewayError", ["not valid JSON"]),
    ("delay", lambda: Fault(delay=3 * SLOW), "Timeout", ["did not send the model list in time"]),
    ("slow-drip", lambda: Fault(drip=0.3 * SLOW), "Timeout", ["in time"]),
    ("drop-mid-body", lambda: Fault(drop_after=200), "GatewayUnavailable", ["closed the connection"]),
    ("close", lambda: Fault(close=True), "GatewayUnavailable", ["Cannot reach the gateway"]),
    ("reset", lambda: Fault(reset=True), "GatewayUnavailable", ["Cannot reach the gateway"]),
    ("malformed", lambda: Fault.malformed(), "GatewayError", ["not valid JSON"]),
    ("wrong-types-0", lambda: Fault.wrong_types(0), "GatewayError", ['"data"']),
    ("wrong-types-1", lambda: Fault.wrong_types(1), "GatewayError", ["no usable model"]),
    ("huge", lambda: Fault.huge(16 * 1024 * 1024), "GatewayError", ["too large"]),
]


class Faults(ModelsTest):
    def test_every_fault_keeps_the_list_and_names_the_cause(self):
        self.wait_live()
        before = self.models()
        for label, make, name, words in FAULTS:
            with self.subTest(fault=label):
                # Every time, not once: curl rightly retries a request whose
                # reused keep-alive connection was closed before any answer.
                fault = make()
                fault.times = None
                self.gw.push_fault("models", fault)
                ok, err = self.env.try_call("Models", "Refresh")
                self.assertFalse(ok, label)
                self.assertEqual(err[0], ERR + name, err)
                for w in words:
                    self.assertIn(w, err[1])
                self.assertNotIn(KEY, err[1])
                self.assertAlive()
                self.assertEqual(self.models(), before)
                self.assertTrue(self.env.get("Models", "Live"))
                # The next good answer works again on the same service.
                self.gw.reset()
                self.assertEqual(self.env.call("Models", "Refresh"), [True])
        self.assertNoKeyLeak()

    def test_unauthorized_stops_background_fetches(self):
        self.env.restart_service({"BANKR_LLMD_MODELS_TTL_MS": "300"})
        wait_until(lambda: self.env.get("Models", "Live"), what="a live list")
        self.gw.llm_keys = {"bk_some_other_key_000000"}
        wait_until(lambda: any(r.status == 401 for r in self.gw.requests_for("models")), timeout=10,
                   what="a rejected background fetch")
        n = len(self.gw.requests_for("models"))
        time.sleep(1.5 * SLOW)
        self.assertEqual(len(self.gw.requests_for("models")), n)
        self.assertEqual(len(self.ids()), 5)  # still the last good list


class Cli(ModelsTest):
    def test_table_and_json(self):
        self.wait_live()
        r = self.env.cli("models")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^ID\s+NAME\s+PROVIDER\s+CONTEXT\s+IN/1M\s+OUT/1M\s+PRIVACY$")
        row = next(l for l in lines if l.startswith("claude-haiku-4.5 "))
        self.assertRegex(row, r"claude-haiku-4\.5\s+Claude Haiku 4\.5\s+anthropic\s+200K\s+\$1\s+\$5\s+zdr$")
        row = next(l for l in lines if l.startswith("gemini-3-flash "))
        self.assertRegex(row, r"1\.05M\s+\$0\.5\s+\$3\s+-$")
        r2 = self.env.cli("models", "--private")
        self.assertEqual([l.split()[0] for l in r2.stdout.splitlines()[1:] if l.strip() and " from " not in l
                          and not l.startswith(" ")], ["deepseek-v3.2"])
        r2 = self.env.cli("models", "--zdr", "--json=short")
        self.assertEqual(sorted(m["id"] for m in json.loads(r2.stdout)), ["claude-haiku-4.5", "deepseek-v3.2"])
        # Columns sized to the content: every row has the same width up to the prices.
        self.assertEqual(len({len(l) for l in lines[:6]}), 1, r.stdout)
        self.assertIn("5 models from %s (live)." % self.gw.url, r.stdout)

        r = self.env.cli("models", "--json")
        self.assertEqual(r.returncode, 0)
        data = json.loads(r.stdout)
        self.assertEqual(data, self.models())
        self.assertEqual(data[0]["pricing"]["cache_read"], 0.1)
        self.assertIn('"cache_read": 0.1,', r.stdout)

        r = self.env.cli("models", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--refresh", r.stdout)
        r = self.env.cli("models", "extra")
        self.assertEqual(r.returncode, 2)

    def test_refresh_flag(self):
        self.wait_live()
        self.gw.models = self.gw.models[:3]
        r = self.env.cli("models", "--refresh", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)), 3)
        self.gw.llm_keys = set()
        r = self.env.cli("models", "--refresh")
        self.assertEqual(r.returncode, 5)
        self.assertIn("rejected the key", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
