#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""docs/dbus-reference.md is what scripts/gen-dbus-reference.py makes of
dbus/bot.bankr.LLM1.xml today, and it names every interface and member."""
import importlib.util
import os
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
spec = importlib.util.spec_from_file_location("gen", os.path.join(SRC, "scripts", "gen-dbus-reference.py"))
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)
PAGE = os.path.join(SRC, "docs", "dbus-reference.md")


class Reference(unittest.TestCase):
    def test_page_is_current(self):
        with open(PAGE, encoding="utf-8") as f:
            have = f.read()
        self.assertEqual(have, gen.render(),
                         "docs/dbus-reference.md is out of date: run "
                         "scripts/gen-dbus-reference.py > docs/dbus-reference.md")

    def test_every_member_is_documented(self):
        page = gen.render()
        root = ET.parse(gen.XML).getroot()
        for iface in root.findall("interface"):
            self.assertIn("## %s\n" % iface.get("name"), page)
            for m in iface:
                if m.tag in ("method", "signal"):
                    self.assertIn("#### %s\n" % m.get("name"), page)
                elif m.tag == "property":
                    self.assertIn("| `%s` | `%s` |" % (m.get("name"), m.get("type")), page)

    def test_drift_is_caught(self):
        # A changed XML gives a different page (the check is not vacuous).
        import tempfile
        with open(gen.XML, encoding="utf-8") as f:
            xml = f.read()
        with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as t:
            t.write(xml.replace('<method name="Validate">', '<method name="Validate2">'))
        try:
            self.assertNotEqual(gen.render(t.name), gen.render())
            self.assertIn("#### Validate2", gen.render(t.name))
        finally:
            os.unlink(t.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
