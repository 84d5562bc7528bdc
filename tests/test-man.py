#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The built man pages: groff and man read them without a warning, whatis
finds their NAME lines, and every line of each program's --help (the same
sections as docs/cli.md) is in the page, so page and program cannot drift."""
import importlib.util
import os
import shutil
import subprocess
import unittest

from harness import SRC, BUILD

PAGES = {"bankr-llm.1": "bankr-llm", "bankr-llm-notify.1": "bankr-llm-notify", "bankr-llmd.8": "bankr-llmd"}
EXE = {"bankr-llm": "clients/bankr-llm", "bankr-llmd": "service/bankr-llmd", "bankr-llm-notify": "clients/bankr-llm-notify"}


def sections():
    spec = importlib.util.spec_from_file_location("gen", os.path.join(SRC, "scripts", "gen-cli-doc.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return [(t, [os.path.join(BUILD, EXE[os.path.basename(a[0])])] + a[1:]) for t, a in gen.SECTIONS]


class ManPages(unittest.TestCase):
    def page(self, name):
        path = os.path.join(BUILD, "man", name)
        self.assertTrue(os.path.exists(path), "%s not built (meson -Dman=true)" % path)
        return path

    def test_groff_has_no_warnings(self):
        for name in PAGES:
            r = subprocess.run(["groff", "-ww", "-man", "-z", self.page(name)], capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), name)

    @unittest.skipUnless(shutil.which("man"), "man-db is not installed")
    def test_man_has_no_warnings(self):
        env = dict(os.environ, MANROFFSEQ="", MANWIDTH="80", LANG="C.UTF-8")
        for name in PAGES:
            r = subprocess.run(["man", "--warnings", "-l", self.page(name)], capture_output=True, text=True, env=env)
            self.assertEqual((r.returncode, r.stderr), (0, ""), name)
            self.assertIn("NAME", r.stdout)

    @unittest.skipUnless(shutil.which("lexgrog"), "man-db is not installed")
    def test_whatis_line(self):
        for name, prog in PAGES.items():
            r = subprocess.run(["lexgrog", self.page(name)], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('"%s - ' % prog, r.stdout)

    @unittest.skipUnless(shutil.which("man"), "man-db is not installed")
    def test_every_help_line_is_in_the_page(self):
        env = dict(os.environ, MANWIDTH="200", LANG="C.UTF-8", MAN_KEEP_FORMATTING="")
        rendered = {}
        for name in PAGES:
            r = subprocess.run(["man", "-l", self.page(name)], capture_output=True, text=True, env=env)
            rendered[PAGES[name]] = [l.strip() for l in r.stdout.splitlines()]
        for title, argv in sections():
            help_ = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, LANG="C.UTF-8")).stdout
            page = rendered[title.split()[0]]
            if title.split()[0] != title:
                self.assertIn(title, page)
            for line in help_.splitlines():
                if line.strip():
                    self.assertIn(line.strip(), page, "%s: a --help line is missing from the man page "
                                  "(rebuild; man/gen-man.py)" % title)

    def test_daemon_page_points_at_the_xml(self):
        with open(self.page("bankr-llmd.8")) as f:
            text = f.read().replace("\\-", "-")
        self.assertIn("/usr/share/dbus-1/interfaces/bot.bankr.LLM1.xml", text)
        for section in ("FILES", "ENVIRONMENT", "D-BUS API"):
            self.assertIn(".SH " + section, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
